/*
 * mailbox — Maildir and mbox delivery. See mailbox.h.
 */
#include "local/mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "safeio.h"

/* ------------------------------------------------------------ Maildir ---- */

static unsigned maildir_counter;

/* maildir(5): a host name's '/' and ':' would break the name's syntax. */
static void add_host(struct buf *b, const char *host)
{
    for (const char *p = host; *p; p++) {
        if (*p == '/')
            buf_adds(b, "\\057");
        else if (*p == ':')
            buf_adds(b, "\\072");
        else
            buf_addc(b, *p);
    }
}

static void unique_name(struct buf *b, const char *host)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    buf_printf(b, "%lld.M%ldP%ldQ%u.", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
               ++maildir_counter);
    add_host(b, host);
}

static int ensure_dirs(const char *dir, struct buf *path)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    if (mkdir_p(dir, 0700) < 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        buf_clear(path);
        path_join(path, dir, subs[i]);
        if (mkdir(path->s, 0700) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* a + b, held at the int64_t range: a user's maildirsize may hold any numbers */
static int64_t add_saturated(int64_t a, int64_t b)
{
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        return b < 0 ? INT64_MIN : INT64_MAX;
    return sum;
}

void maildirsize_parse(char *text, struct maildir_quota *q)
{
    q->max_bytes = q->max_count = 0;
    q->bytes = q->count = 0;
    char *line = text, *next;
    int first = 1;
    for (; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (first) {
            for (char *p = line; *p;) {
                char *end;
                unsigned long long v = strtoull(p, &end, 10);
                if (end == p)
                    break;
                if (*end == 'S')
                    q->max_bytes = v;
                else if (*end == 'C')
                    q->max_count = v;
                p = *end ? end + 1 : end;
                while (*p == ',')
                    p++;
            }
            first = 0;
            continue;
        }
        char *end;
        long long b = strtoll(line, &end, 10); /* out of range: held at the limit */
        if (end == line)
            continue;
        long long c = strtoll(end, NULL, 10);
        q->bytes = add_saturated(q->bytes, b);
        q->count = add_saturated(q->count, c);
    }
}

/* The quota of dir: 0 when it has no maildirsize (or no limit), 1 with *q. */
static int quota_read(const char *dir, struct maildir_quota *q)
{
    struct buf path = BUF_INIT, text = BUF_INIT;
    path_join(&path, dir, "maildirsize");
    int rc = read_file(path.s, &text, 1024 * 1024);
    buf_free(&path);
    if (rc < 0) {
        buf_free(&text);
        return 0;
    }
    buf_cstr(&text); /* NUL-terminated, an empty file too */
    maildirsize_parse(text.s, q);
    buf_free(&text);
    return q->max_bytes || q->max_count;
}

static int quota_exceeded(const char *dir, uint64_t size)
{
    struct maildir_quota q;
    if (!quota_read(dir, &q))
        return 0;
    if (q.max_bytes && (q.bytes < 0 ? 0 : (uint64_t)q.bytes) + size > q.max_bytes)
        return 1;
    return q.max_count && (q.count < 0 ? 0 : (uint64_t)q.count) + 1 > q.max_count;
}

static void quota_add(const char *dir, uint64_t size)
{
    struct buf path = BUF_INIT, line = BUF_INIT;
    path_join(&path, dir, "maildirsize");
    int fd = open(path.s, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        buf_printf(&line, "%llu 1\n", (unsigned long long)size);
        if (write_all(fd, line.s, line.len) < 0)
            log_warn("%s: cannot update: %m", path.s);
        close(fd);
    }
    buf_free(&path);
    buf_free(&line);
}

/* The message into tmp/NAME, on disk; its size in *size. 0 or -1 errno. */
static int write_tmp(const char *tmp, const struct msgsrc *src, const struct buf *prefix,
                     uint64_t *size)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = msgcopy_to_fd(src, 0, prefix, fd, size);
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    errno = saved;
    return rc;
}

void maildir_deliver(const char *dir, const struct msgsrc *src, const struct buf *prefix,
                     const char *hostname, struct outcome *o)
{
    static const char relay[] = "local:maildir";
    struct buf path = BUF_INIT, name = BUF_INIT, tmp = BUF_INIT, new = BUF_INIT;
    uint64_t size = 0;
    if (ensure_dirs(dir, &path) < 0) {
        outcome_errno(o, relay, errno, "cannot make the maildir");
        goto out;
    }
    unique_name(&name, hostname);
    buf_clear(&path);
    path_join(&path, dir, "tmp");
    path_join(&tmp, path.s, name.s);
    if (write_tmp(tmp.s, src, prefix, &size) < 0) {
        outcome_errno(o, relay, errno, "cannot write the maildir");
        unlink(tmp.s);
        goto out;
    }
    if (quota_exceeded(dir, size)) {
        unlink(tmp.s);
        outcome_set(o, RP_TEMP, relay, "4.2.2 maildir quota exceeded (maildirsize)");
        goto out;
    }
    buf_printf(&name, ",S=%llu", (unsigned long long)size);
    buf_clear(&path);
    path_join(&path, dir, "new");
    path_join(&new, path.s, name.s);
    if (rename(tmp.s, new.s) < 0) {
        outcome_errno(o, relay, errno, "cannot move the message into new/");
        unlink(tmp.s);
        goto out;
    }
    if (fsync_dir(new.s) < 0) { /* rename done, not yet durable: it may repeat */
        outcome_errno(o, relay, errno, "cannot sync new/");
        unlink(new.s);
        goto out;
    }
    quota_add(dir, size);
    outcome_set(o, RP_OK, relay, "2.0.0 delivered to maildir");
out:
    buf_free(&path);
    buf_free(&name);
    buf_free(&tmp);
    buf_free(&new);
}

/* --------------------------------------------------------------- mbox ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* PATH.lock, O_EXCL. 1 taken, 0 not possible here (the directory does
 * not let us: go on with the fcntl lock), -1 with errno (timed out). */
static int dotlock_take(const char *lock)
{
    for (long waited = 0; waited < MBOX_LOCK_WAIT * 1000L; waited += 100) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return 1;
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS)
            return 0;
        if (errno != EEXIST)
            return -1;
        struct stat st;
        if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > MBOX_LOCK_STALE) {
            log_warn("%s: removing a stale lock (%lld s old)", lock,
                     (long long)(time(NULL) - st.st_mtime));
            unlink(lock);
            continue;
        }
        sleep_ms(100);
    }
    errno = EAGAIN;
    return -1;
}

static int fcntl_lock(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    for (long waited = 0; waited < MBOX_LOCK_WAIT * 1000L; waited += 100) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return -1;
        sleep_ms(100);
    }
    errno = EAGAIN;
    return -1;
}

/* "From SENDER Sun Dec  6 22:34:25 2026\n" (the asctime form mbox readers parse). */
static void from_line(struct buf *b, const char *sender)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    buf_printf(b, "From %s %s\n", sender[0] ? sender : "MAILER-DAEMON", date);
}

/* Append the message to the locked fd; on failure cut it back to old. */
static int mbox_append(int fd, const struct msgsrc *src, const struct buf *head)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    off_t old = st.st_size;
    uint64_t written;
    if (lseek(fd, 0, SEEK_END) >= 0 &&
        msgcopy_to_fd(src, MSGCOPY_FROM_QUOTE | MSGCOPY_MBOX_END, head, fd, &written) == 0 &&
        fsync(fd) == 0)
        return 0;
    int saved = errno;
    if (ftruncate(fd, old) < 0 || fsync(fd) < 0)
        log_error("cannot cut a mailbox back to %lld bytes after a failed write: %m",
                  (long long)old);
    errno = saved;
    return -1;
}

/* Open the mailbox for appending: a regular file with one link, never
 * through a symbolic link; made (0600) when missing. -1 with errno. */
static int mbox_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    int bad = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) || st.st_nlink != 1 ? EPERM : 0;
    if (bad) {
        close(fd);
        errno = bad;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

void mbox_deliver(const char *path, const struct msgsrc *src, const struct buf *prefix,
                  const char *sender, const char *relay, struct outcome *o)
{
    if (strcmp(path, "/dev/null") == 0) {
        outcome_set(o, RP_OK, relay, "2.0.0 delivered to /dev/null");
        return;
    }
    struct buf lock = BUF_INIT, head = BUF_INIT;
    buf_printf(&lock, "%s.lock", path);
    int locked = dotlock_take(lock.s);
    if (locked < 0) {
        outcome_errno(o, relay, errno, "cannot lock the mailbox (dot-lock)");
        buf_free(&lock);
        return;
    }
    int fd = mbox_open(path);
    if (fd < 0) {
        outcome_errno(o, relay, errno, "cannot open the mailbox");
    } else if (fcntl_lock(fd) < 0) {
        outcome_errno(o, relay, errno, "cannot lock the mailbox (fcntl)");
    } else {
        from_line(&head, sender);
        buf_add(&head, prefix->s, prefix->len);
        if (mbox_append(fd, src, &head) < 0)
            outcome_errno(o, relay, errno, "cannot write the mailbox");
        else
            outcome_set(o, RP_OK, relay, "2.0.0 delivered to %s",
                        strcmp(relay, "local:file") == 0 ? "file" : "mailbox");
    }
    if (fd >= 0)
        close(fd); /* releases the fcntl lock */
    if (locked > 0)
        unlink(lock.s);
    buf_free(&lock);
    buf_free(&head);
}
