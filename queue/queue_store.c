/*
 * queue_store — opening the queue, finding, locking, reading and listing
 * queue files (queue.h "layout", "locking", "reading").
 *
 * Every path is resolved relative to descriptors opened once on queue_dir
 * and its subdirectories, so the process's cwd never matters. A file is
 * opened O_NOFOLLOW|O_NONBLOCK (a FIFO or symlink named like a queue file
 * never hangs or misleads a reader) and read under LOCK_SH; a file found
 * corrupt is reported (logged) and left in place for recovery or the
 * cleaner to quarantine: readers only read. The caller goes on with the
 * next one.
 * Must never: return a message of a file it could not fully validate, or
 * stop a listing because one file is bad.
 */
#include "queue_impl.h"
#include "queue_modes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "safeio.h"

const char *const queue_dir_names[QDIR_COUNT] = {"incoming", "active", "corrupt", "tmp", "lock"};
/* queue.h "layout": the router's group may list and read the places, never
 * tmp/ or lock/ (writer side only) */
static const mode_t queue_dir_modes[QDIR_COUNT] = {
    QUEUE_PLACE_MODE, QUEUE_PLACE_MODE, QUEUE_PLACE_MODE, QUEUE_PRIVATE_MODE, QUEUE_PRIVATE_MODE};

/* ---------------------------------------------------------------- open ---- */
static int open_dir_at(int at, const char *name)
{
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* 1 if this process may set the set-gid bit of a file of group gid. */
static int may_set_gid(gid_t gid)
{
    if (geteuid() == 0 || getegid() == gid)
        return 1;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* A directory just made gets its mode (queue.h "layout") whatever the
 * umask. A set-gid bit inherited from the parent stays: files made in it
 * must carry the router's group. A process outside the directory's group
 * cannot set that bit, and its chmod(2) would clear an inherited one, so it
 * leaves such a directory as mkdir made it (onehop-queue's umask is 027). */
static int set_dir_mode(int at, const char *name, mode_t mode)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    mode_t want = mode | (st.st_mode & S_ISGID);
    if (!may_set_gid(st.st_gid)) {
        if (st.st_mode & S_ISGID)
            return 0;
        want &= ~(mode_t)S_ISGID;
    }
    return (st.st_mode & 07777) == want ? 0 : fchmodat(at, name, want, 0);
}

/* mkdir name under at (mode as set_dir_mode) if missing; *made set when created. */
static int ensure_dir_at(int at, const char *name, mode_t mode, int *made)
{
    if (mkdirat(at, name, mode & 0777) == 0) {
        *made = 1;
        return set_dir_mode(at, name, mode);
    }
    struct stat st;
    if (errno == EEXIST && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

static int ensure_buckets(int dir_fd)
{
    int made = 0;
    for (unsigned i = 0; i < QUEUE_BUCKETS; i++) {
        char name[3];
        snprintf(name, sizeof(name), "%02x", i);
        if (ensure_dir_at(dir_fd, name, QUEUE_PLACE_MODE, &made) != 0)
            return -1;
    }
    return made ? fsync(dir_fd) : 0;
}

static int create_layout(struct queue *q)
{
    int made = 0;
    for (int d = 0; d < QDIR_COUNT; d++)
        if (ensure_dir_at(q->root_fd, queue_dir_names[d], queue_dir_modes[d], &made) != 0)
            return -1;
    return made ? fsync(q->root_fd) : 0;
}

static int open_subdirs(struct queue *q)
{
    for (int d = 0; d < QDIR_COUNT; d++) {
        if (q->dir_fd[d] < 0 && (q->dir_fd[d] = open_dir_at(q->root_fd, queue_dir_names[d])) < 0)
            return -1;
    }
    return 0;
}

/* With QUEUE_OPEN_CREATE, a queue whose layout is incomplete is completed
 * (a complete one costs nothing more: the common case of onehop-queue). A
 * bucket that goes missing later is made again when a file needs it. */
static int open_layout(struct queue *q, unsigned flags)
{
    if (open_subdirs(q) == 0)
        return 0;
    if (!(flags & QUEUE_OPEN_CREATE) || errno != ENOENT || create_layout(q) != 0 ||
        open_subdirs(q) != 0)
        return -1;
    for (int d = QDIR_INCOMING; d <= QDIR_ACTIVE; d++)
        if (ensure_buckets(q->dir_fd[d]) != 0)
            return -1;
    return 0;
}

/* fsync every ancestor of path, nearest first (".", for a relative path,
 * last): the entries mkdir_p just made on the way are then durable. */
static int fsync_ancestors(const char *path)
{
    struct buf p = BUF_INIT;
    buf_sets(&p, path);
    int rc = 0;
    char *slash;
    while (rc == 0 && p.len > 1 && (slash = strrchr(p.s, '/')) != NULL) {
        buf_truncate(&p, slash == p.s ? 1 : (size_t)(slash - p.s));
        rc = fsync_dir(p.s);
    }
    if (rc == 0 && path[0] != '/')
        rc = fsync_dir(".");
    int e = errno;
    buf_free(&p);
    errno = e;
    return rc;
}

/* queue_dir itself, when missing: QUEUE_ROOT_MODE (its parents as the
 * umask leaves 0755), each new directory's parent fsynced (a queue_dir made
 * by onehop-queue must survive a power cut with the message committed into
 * it). Only the layout
 * below it is made; state/ belongs to the router and is never created or
 * touched here. */
static int make_queue_dir(const char *queue_dir)
{
    struct stat st;
    if (stat(queue_dir, &st) == 0)
        return 0;
    if (mkdir_p(queue_dir, 0755) != 0 || fsync_ancestors(queue_dir) != 0)
        return -1;
    return set_dir_mode(AT_FDCWD, queue_dir, QUEUE_ROOT_MODE);
}

int queue_open(struct queue **out, const char *queue_dir, unsigned flags, const char **why)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    q->path = xstrdup(queue_dir);
    q->owner_fd = -1;
    q->slots_fd = -1;
    q->flags = flags;
    q->write_version = QF_VERSION;
    q->root_fd = -1;
    for (int d = 0; d < QDIR_COUNT; d++)
        q->dir_fd[d] = -1;
    if ((flags & QUEUE_OPEN_CREATE) && make_queue_dir(queue_dir) != 0) {
        *why = "cannot create the queue directory";
    } else if ((q->root_fd = open(queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        *why = "cannot open the queue directory";
    } else if (open_layout(q, flags) != 0) {
        *why = "queue directory layout missing or not usable";
    } else {
        *out = q;
        return 0;
    }
    int e = errno;
    queue_close(q);
    errno = e;
    return -1;
}

void queue_close(struct queue *q)
{
    if (!q)
        return;
    queue_unlock_owner(q);
    if (q->slots_fd >= 0)
        close(q->slots_fd);
    for (int d = 0; d < QDIR_COUNT; d++)
        if (q->dir_fd[d] >= 0)
            close(q->dir_fd[d]);
    if (q->root_fd >= 0)
        close(q->root_fd);
    free(q->path);
    free(q);
}

const char *queue_path(const struct queue *q)
{
    return q->path;
}

int queue_lock_owner(struct queue *q, int wait)
{
    if (q->owner_fd >= 0)
        return 0;
    int fd = openat(q->dir_fd[QDIR_LOCK], "owner", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int r;
    do
        r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    q->owner_fd = fd;
    return 0;
}

void queue_unlock_owner(struct queue *q)
{
    if (q->owner_fd >= 0)
        close(q->owner_fd);
    q->owner_fd = -1;
}

int queue_fsync_subdir(struct queue *q, int dir, const char *sub)
{
    int fd = open_dir_at(q->dir_fd[dir], sub);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int queue_make_bucket(struct queue *q, int dir, const char *bucket)
{
    int made = 0;
    if (ensure_dir_at(q->dir_fd[dir], bucket, QUEUE_PLACE_MODE, &made) != 0)
        return -1;
    return made ? fsync(q->dir_fd[dir]) : 0;
}

/* ------------------------------------------------------------- locking ---- */
void queue_rel_path(const char *fid, struct buf *out)
{
    char bucket[3];
    queue_bucket(fid, bucket);
    buf_clear(out);
    buf_printf(out, "%s/%s", bucket, fid);
}

static int lock_fd(int fd, int lock)
{
    int r;
    do
        r = flock(fd, lock);
    while (r < 0 && errno == EINTR);
    return r;
}

int queue_still_named(int dir_fd, const char *rel, int fd)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || fstatat(dir_fd, rel, &b, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_nlink > 0;
}

int queue_open_locked(struct queue *q, enum queue_place place, const char *fid, int lock, int flags)
{
    struct buf rel = BUF_INIT;
    if (place == QUEUE_CORRUPT)
        buf_sets(&rel, fid);
    else
        queue_rel_path(fid, &rel);
    int fd = -1;
    for (int tries = 0; tries < 5; tries++) {
        /* O_NONBLOCK: a FIFO named like a queue file must not hang us; it
         * is refused below, as anything that is not a regular file is */
        fd = openat(q->dir_fd[place], buf_cstr(&rel), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ELOOP)
            errno = EBADMSG; /* a symlink: never a queue file */
        if (fd < 0)
            break;
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            fd = -1;
            errno = EBADMSG;
            break;
        }
        if (lock_fd(fd, lock) == 0 && queue_still_named(q->dir_fd[place], buf_cstr(&rel), fd))
            break;
        close(fd); /* moved or removed while we waited: look again */
        fd = -1;
        errno = ENOENT;
    }
    buf_free(&rel);
    return fd;
}

int queue_locate_locked(struct queue *q, const char *fid, int lock, int flags,
                        enum queue_place *place)
{
    /* A file only moves incoming -> active, so looking in that order twice
     * finds it even if it moves while we look. */
    for (int round = 0; round < 2; round++) {
        for (int p = QUEUE_INCOMING; p <= QUEUE_ACTIVE; p++) {
            int fd = queue_open_locked(q, (enum queue_place)p, fid, lock, flags);
            if (fd >= 0) {
                *place = (enum queue_place)p;
                return fd;
            }
            if (errno != ENOENT)
                return -1;
        }
    }
    errno = ENOENT;
    return -1;
}

/* ------------------------------------------------------------- reading ---- */
static int pread_exact(int fd, struct buf *out, size_t n, uint64_t off)
{
    buf_clear(out);
    buf_reserve(out, n + 1);
    while (out->len < n) {
        ssize_t r = pread(fd, out->s + out->len, n - out->len, (off_t)(off + out->len));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EBADMSG;
            return -1;
        }
        out->len += (size_t)r;
    }
    out->s[out->len] = '\0';
    return 0;
}

/* What the header says against what is there: the name (format 3 carries
 * its file id), and the length (format 3 has no state log, so the file
 * ends where the commit did; older files may be longer by their log). */
static int check_layout(const struct qf_header *h, const char *fid, uint64_t size, const char **why)
{
    if (qf_header_names(h, fid, why) != 0)
        return -1;
    if (h->committed_len > size)
        return *why = "file shorter than its committed length", -1;
    if (h->version == 3 && h->committed_len != size)
        return *why = "bytes after the committed length (format 3 has no state log)", -1;
    if (size - h->committed_len > QF_ENVELOPE_MAX)
        return *why = "state log too large", -1;
    return 0;
}

static int parse_parts(const unsigned char *env, size_t env_len, const unsigned char *log,
                       size_t log_len, struct queue_file *f, const struct qf_header *h,
                       const char **why)
{
    if (!qf_crc_ok(h->env_crc, crc32c(0, env, env_len)))
        return *why = "envelope checksum mismatch", -1;
    if (qf_envelope_parse(env, env_len, h, f, why) != 0)
        return -1;
    f->committed_len = h->committed_len;
    f->version = h->version;
    return qf_log_replay(log, log_len, f, why);
}

static void file_reset(struct queue_file *f, const char *fid, enum queue_place place)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->fid, sizeof(f->fid), "%s", fid);
    f->place = place;
}

int queue_parse(const void *data, size_t len, const char *fid, struct queue_file *out,
                const char **why)
{
    const unsigned char *p = data;
    struct qf_header h;
    file_reset(out, fid, QUEUE_ACTIVE);
    if (qf_header_decode(p, len, &h, why) != 0 || check_layout(&h, fid, len, why) != 0)
        return -1;
    /* Format 2 only: a format 3 file's body CRC stops holding once finished
     * messages' ranges are punched out; its readers check each message's
     * own CRC when they hand the content out (queue_msg_open). */
    if (h.version == 2 &&
        !qf_crc_ok(h.body_crc, crc32c(0, p + QF_HEADER_SIZE, h.committed_len - QF_HEADER_SIZE)))
        return *why = "body checksum mismatch", -1;
    const unsigned char *log = p + h.committed_len;
    if (parse_parts(p + h.env_off, h.env_len, log, len - h.committed_len, out, &h, why) != 0) {
        queue_file_free(out);
        return -1;
    }
    return 0;
}

int queue_read_meta(int fd, const char *fid, enum queue_place place, struct queue_file *f,
                    const char **why)
{
    struct buf hdr = BUF_INIT, env = BUF_INIT, log = BUF_INIT;
    struct qf_header h;
    struct stat st;
    int rc = -1;
    file_reset(f, fid, place);
    *why = NULL;
    if (fstat(fd, &st) != 0 || pread_exact(fd, &hdr, QF_HEADER_SIZE, 0) != 0)
        goto out;
    if (qf_header_decode((unsigned char *)hdr.s, hdr.len, &h, why) != 0 ||
        check_layout(&h, fid, (uint64_t)st.st_size, why) != 0)
        goto out;
    if (pread_exact(fd, &env, h.env_len, h.env_off) != 0 ||
        pread_exact(fd, &log, (size_t)((uint64_t)st.st_size - h.committed_len), h.committed_len) !=
            0)
        goto out;
    rc = parse_parts((unsigned char *)env.s, env.len, (unsigned char *)log.s, log.len, f, &h, why);
out:
    if (rc != 0) {
        if (*why)
            errno = EBADMSG;
        else if (errno == EBADMSG)
            *why = "file ends early";
        int e = errno;
        queue_file_free(f);
        file_reset(f, fid, place);
        errno = e;
    }
    buf_free(&hdr);
    buf_free(&env);
    buf_free(&log);
    return rc;
}

/* CRC-32C of fd's bytes [off, off + len), read 1 MiB at a time. */
static int crc_range(int fd, uint64_t off, uint64_t len, uint32_t *crc)
{
    struct buf chunk = BUF_INIT;
    int rc = 0;
    for (uint64_t end = off + len; off < end && rc == 0;) {
        uint64_t n = end - off > 1024 * 1024 ? 1024 * 1024 : end - off;
        rc = pread_exact(fd, &chunk, (size_t)n, off);
        if (rc == 0)
            *crc = crc32c(*crc, chunk.s, chunk.len);
        off += n;
    }
    buf_free(&chunk);
    return rc;
}

/* errno EBADMSG, and *why "file ends early" when a short read said so
 * without a reason (an I/O errno is kept). */
static void corrupt_errno(const char **why)
{
    if (*why || errno == EBADMSG) {
        if (!*why)
            *why = "file ends early";
        errno = EBADMSG;
    }
}

int queue_check_body(int fd, int require_crc, struct qf_header *h, const char **why)
{
    struct buf hdr = BUF_INIT;
    struct stat st;
    uint32_t crc = 0;
    int rc = -1;
    *why = NULL;
    if (fstat(fd, &st) != 0 || pread_exact(fd, &hdr, QF_HEADER_SIZE, 0) != 0)
        goto out;
    if (qf_header_decode((unsigned char *)hdr.s, hdr.len, h, why) != 0)
        goto out;
    if (h->version == 1 && require_crc) {
        *why = "a version 1 queue file (no body checksum)";
    } else if (h->committed_len > (uint64_t)st.st_size) {
        *why = "file shorter than its committed length";
    } else if (h->version >= 2 &&
               crc_range(fd, QF_HEADER_SIZE, h->committed_len - QF_HEADER_SIZE, &crc) != 0) {
        /* errno set by the read */
    } else if (h->version >= 2 && !qf_crc_ok(h->body_crc, crc)) {
        *why = "body checksum mismatch";
    } else {
        rc = 0;
    }
out:
    if (rc != 0)
        corrupt_errno(why);
    buf_free(&hdr);
    return rc;
}

/* Message index of f, read from fd, against its checksum: format 3, the CRC
 * of its own 'M' record (given the content when the caller read it, else
 * read here); format 2, the body CRC of the whole file; format 1 has none. */
static int verify_content(int fd, const struct queue_file *f, size_t index,
                          const struct buf *content, const char **why)
{
    const struct queue_msg *m = &f->msg[index];
    struct qf_header h;
    uint32_t crc = 0;
    *why = NULL;
    if (f->version == 2)
        return queue_check_body(fd, 0, &h, why);
    if (f->version != 3)
        return 0;
    if (content)
        crc = crc32c(0, content->s, content->len);
    else if (crc_range(fd, m->content_offset, m->size, &crc) != 0)
        return corrupt_errno(why), -1;
    if (!qf_crc_ok(m->content_crc, crc)) {
        *why = "message content checksum mismatch";
        return errno = EBADMSG, -1;
    }
    return 0;
}

/* A reader met a corrupt file: it says so and leaves it where it is (the
 * listings only read); recovery, or the router through the cleaner, moves
 * it to corrupt/. */
static void report_corrupt(const char *fid, const char *why)
{
    log_warn("%s: queue file is corrupt (%s): left for recovery", fid,
             why ? why : "not a regular file");
}

int queue_load(struct queue *q, const char *fid, struct queue_file *out)
{
    enum queue_place place;
    const char *why = NULL;
    if (!queue_file_id_valid(fid)) {
        errno = EINVAL;
        return -1;
    }
    int fd = queue_locate_locked(q, fid, LOCK_SH, O_RDONLY, &place);
    if (fd < 0) {
        if (errno == EBADMSG)
            report_corrupt(fid, NULL);
        return -1;
    }
    int rc = queue_read_meta(fd, fid, place, out, &why);
    int e = errno;
    if (rc != 0 && e == EBADMSG)
        report_corrupt(fid, why);
    close(fd);
    errno = e;
    return rc;
}

/* The message of f named id, unfinished (formats 1 and 2 carry their state
 * log): its index, or -1 with errno ENOENT. */
static int find_msg(const struct queue_file *f, const char *id, size_t *index)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        if (strcmp(f->msg[i].id, id) == 0 && !qf_msg_finished(&f->msg[i])) {
            *index = i;
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

int queue_find(struct queue *q, const char *id, struct queue_file *out, size_t *index)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    if (queue_load(q, fid, out) != 0)
        return -1;
    if (find_msg(out, id, index) == 0)
        return 0;
    queue_file_free(out);
    errno = ENOENT;
    return -1;
}

void queue_file_free(struct queue_file *f)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        struct queue_msg *m = &f->msg[i];
        for (size_t r = 0; r < m->nrcpt; r++) {
            free(m->rcpt[r].addr);
            free(m->rcpt[r].orcpt);
            free(m->rcpt[r].notify);
            free(m->rcpt[r].last_reason);
        }
        for (size_t a = 0; a < m->nattr; a++) {
            free(m->attr[a].name);
            free(m->attr[a].value);
        }
        free(m->rcpt);
        free(m->attr);
        free(m->sender);
    }
    free(f->msg);
    f->msg = NULL;
    f->nmsg = 0;
}

int queue_content_open(struct queue *q, const struct queue_file *f)
{
    enum queue_place place;
    int fd = queue_locate_locked(q, f->fid, LOCK_SH, O_RDONLY, &place);
    if (fd >= 0)
        flock(fd, LOCK_UN); /* content never changes: no lock needed to read it */
    return fd;
}

int queue_content_read(struct queue *q, const struct queue_file *f, size_t index, struct buf *out)
{
    const char *why;
    if (index >= f->nmsg) {
        errno = EINVAL;
        return -1;
    }
    const struct queue_msg *m = &f->msg[index];
    int fd = queue_content_open(q, f);
    if (fd < 0)
        return -1;
    struct buf tmp = BUF_INIT;
    int rc = pread_exact(fd, &tmp, (size_t)m->size, m->content_offset);
    why = NULL;
    if (rc != 0)
        corrupt_errno(&why);
    else
        rc = verify_content(fd, f, index, &tmp, &why);
    int e = errno;
    close(fd);
    if (rc == 0)
        buf_add(out, tmp.s, tmp.len);
    else if (e == EBADMSG)
        log_warn("%s: %s: not handed out", m->id, why);
    buf_free(&tmp);
    errno = e;
    return rc;
}

/* queue_msg_open once its file is open (fd) in place. */
static int msg_open_fd(int fd, const char *fid, enum queue_place place, const char *id,
                       struct queue_msg_fd *out, const char **why)
{
    if (queue_read_meta(fd, fid, place, &out->file, why) != 0)
        return -1;
    flock(fd, LOCK_UN); /* the content never changes: read it unlocked */
    if (find_msg(&out->file, id, &out->index) != 0 ||
        verify_content(fd, &out->file, out->index, NULL, why) != 0) {
        int e = errno;
        queue_file_free(&out->file);
        return errno = e, -1;
    }
    out->fd = fd;
    out->offset = out->file.msg[out->index].content_offset;
    out->length = out->file.msg[out->index].size;
    out->place = place;
    return 0;
}

int queue_msg_open(struct queue *q, const char *id, struct queue_msg_fd *out, const char **why)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    enum queue_place place;
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    *why = NULL;
    if (!queue_id_valid(id))
        return *why = "not a message id", errno = EINVAL, -1;
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    int fd = queue_locate_locked(q, fid, LOCK_SH, O_RDONLY, &place);
    if (fd < 0) {
        if (errno == EBADMSG)
            *why = "not a regular file";
        return -1;
    }
    if (msg_open_fd(fd, fid, place, id, out, why) != 0) {
        int e = errno;
        if (e == EBADMSG)
            log_warn("%s: %s: not handed out", id, *why);
        close(fd);
        return errno = e, -1;
    }
    return 0;
}

void queue_msg_fd_close(struct queue_msg_fd *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    queue_file_free(&m->file);
}

/* ------------------------------------------------------------- listing ---- */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct id_list {
    char **v;
    size_t n, cap;
};

static void list_add(struct id_list *l, const char *s)
{
    l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n++] = xstrdup(s);
}

/* Names in dir_fd/sub (dir_fd itself when sub is NULL): file ids only, or
 * every name but "." and ".." when any is set. */
static int list_dir(int dir_fd, const char *sub, int any, struct id_list *l)
{
    int fd = sub ? open_dir_at(dir_fd, sub) : dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return errno == ENOENT ? 0 : -1;
    }
    if (!sub)
        rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (any ? e->d_name[0] != '.' : queue_file_id_valid(e->d_name))
            list_add(l, e->d_name);
    }
    closedir(d);
    return 0;
}

int queue_list_files(struct queue *q, enum queue_place place, char ***fids, size_t *n)
{
    struct id_list l = {NULL, 0, 0};
    int rc = 0;
    if (place == QUEUE_CORRUPT) {
        rc = list_dir(q->dir_fd[place], NULL, 1, &l);
    } else {
        for (unsigned i = 0; i < QUEUE_BUCKETS && rc == 0; i++) {
            char name[3];
            snprintf(name, sizeof(name), "%02x", i);
            rc = list_dir(q->dir_fd[place], name, 0, &l);
        }
    }
    if (rc != 0) {
        int e = errno;
        queue_ids_free(l.v, l.n);
        errno = e;
        return -1;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    *fids = l.v;
    *n = l.n;
    return 0;
}

void queue_ids_free(char **fids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fids[i]);
    free(fids);
}

/* fn for every unfinished message of file fid; a file that is corrupt (or
 * not a regular file) is counted in *corrupt when given. */
static int scan_file(struct queue *q, const char *fid, queue_scan_fn *fn, void *arg,
                     unsigned long *corrupt)
{
    struct queue_file f;
    int rc = 0;
    if (queue_load(q, fid, &f) != 0) {
        if (errno == EBADMSG && corrupt)
            (*corrupt)++;
        return 0; /* gone meanwhile, or corrupt: reported, left for recovery */
    }
    for (size_t k = 0; k < f.nmsg && rc == 0; k++)
        if (!qf_msg_finished(&f.msg[k]))
            rc = fn(&f, &f.msg[k], arg);
    queue_file_free(&f);
    return rc;
}

static int scan_counting(struct queue *q, queue_scan_fn *fn, void *arg, unsigned long *corrupt)
{
    char **in, **act;
    size_t nin, nact, i = 0, k = 0;
    if (queue_list_files(q, QUEUE_INCOMING, &in, &nin) != 0)
        return -1;
    if (queue_list_files(q, QUEUE_ACTIVE, &act, &nact) != 0) {
        queue_ids_free(in, nin);
        return -1;
    }
    int rc = 0;
    while (rc == 0 && (i < nin || k < nact)) { /* merge: arrival order across both */
        if (k >= nact || (i < nin && strcmp(in[i], act[k]) < 0))
            rc = scan_file(q, in[i++], fn, arg, corrupt);
        else
            rc = scan_file(q, act[k++], fn, arg, corrupt);
    }
    queue_ids_free(in, nin);
    queue_ids_free(act, nact);
    return rc;
}

int queue_scan(struct queue *q, queue_scan_fn *fn, void *arg)
{
    return scan_counting(q, fn, arg, NULL);
}

enum queue_state queue_msg_state(const struct queue_msg *m, enum queue_place place)
{
    if (place == QUEUE_CORRUPT)
        return QSTATE_CORRUPT;
    if (qf_msg_finished(m))
        return QSTATE_FINISHED;
    if (m->held)
        return QSTATE_HOLD;
    if (place == QUEUE_INCOMING)
        return QSTATE_INCOMING;
    for (size_t i = 0; i < m->nrcpt; i++)
        if (m->rcpt[i].state == QRCPT_PENDING && m->rcpt[i].attempts == 0)
            return QSTATE_ACTIVE;
    return QSTATE_DEFERRED;
}

const char *queue_state_name(enum queue_state s)
{
    static const char *const names[] = {"incoming", "active",  "deferred",
                                        "hold",     "corrupt", "finished"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

const char *queue_rcpt_state_name(enum queue_rcpt_state s)
{
    static const char *const names[] = {"pending", "delivered", "bounced"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static int count_one(const struct queue_file *f, const struct queue_msg *m, void *arg)
{
    struct queue_counts *c = arg;
    switch (queue_msg_state(m, f->place)) {
    case QSTATE_INCOMING:
        c->incoming++;
        break;
    case QSTATE_ACTIVE:
        c->active++;
        break;
    case QSTATE_DEFERRED:
        c->deferred++;
        break;
    case QSTATE_HOLD:
        c->hold++;
        break;
    default:
        return 0;
    }
    c->total++;
    if (!c->oldest_arrival_us || m->arrival_us < c->oldest_arrival_us)
        c->oldest_arrival_us = m->arrival_us;
    return 0;
}

int queue_count(struct queue *q, struct queue_counts *c)
{
    memset(c, 0, sizeof(*c));
    if (scan_counting(q, count_one, c, &c->corrupt) < 0)
        return -1;
    char **fids;
    size_t n;
    if (queue_list_files(q, QUEUE_CORRUPT, &fids, &n) != 0)
        return -1;
    c->corrupt += n; /* quarantined, and found corrupt in place */
    queue_ids_free(fids, n);
    return 0;
}
