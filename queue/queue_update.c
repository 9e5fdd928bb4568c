/*
 * queue_update — changing committed queue files: recipient results, hold,
 * release, delete, taking a file into active/, quarantine (queue.h
 * "updates"; rule 1 of the LOCKING RULE). State records go only into the
 * state log of a format 1 or 2 file; a format 3 file never changes after
 * its commit (EOPNOTSUPP: its state is the router's journal). Calls
 * queue_read.c, queue_fs.c and queue_format.c only.
 *
 * An update appends records to the file's state log under LOCK_EX and
 * fdatasyncs before it returns, so the caller acts on a change only once it
 * is durable. A torn tail left by a writer that died is cut off first (it
 * was never acknowledged). When every message of the file is finished the
 * file is unlinked while still locked, and each newly finished message is
 * logged "ID: removed" (SPEC 8).
 * Must never: write into the committed part of a file, append after a torn
 * tail, or unlink a file with a pending recipient.
 */
#include "queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "sysdeps.h"
#include "safeio.h"

/* Cut a torn tail off a file held LOCK_EX. */
static int drop_torn_tail(int fd, const struct queue_file *f)
{
    if (f->torn_bytes == 0)
        return 0;
    log_warn("%s: state log ends in an unfinished append: %llu bytes dropped", f->fid,
             (unsigned long long)f->torn_bytes);
    if (ftruncate(fd, (off_t)(f->committed_len + f->log_len)) != 0)
        return -1;
    return 0;
}

static int append_records(int fd, const struct queue_file *f, const struct buf *recs)
{
    uint64_t off = f->committed_len + f->log_len;
    size_t done = 0;
    while (done < recs->len) {
        ssize_t w = pwrite(fd, recs->s + done, recs->len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    int r;
    do
        r = fdatasync(fd);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Log "ID: removed" for messages finished by these updates. */
static void log_removed(const struct queue_file *f, const int *was_finished)
{
    for (size_t i = 0; i < f->nmsg; i++)
        if (!was_finished[i] && qf_msg_finished(&f->msg[i]))
            log_info("%s: removed", f->msg[i].id);
}

static int updates_valid(const struct queue_file *f, const struct queue_update *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!qf_update_valid(f, &u[i]))
            return 0;
    return 1;
}

static void remove_finished(struct queue *q, const struct queue_file *f, int *finished)
{
    struct buf rel = BUF_INIT;
    queue_rel_path(f->fid, &rel);
    if (unlinkat(q->dir_fd[f->place], buf_cstr(&rel), 0) == 0 && finished)
        *finished = 1;
    buf_free(&rel);
}

/* The body of queue_update, with the file open and LOCK_EX held. */
static int update_locked(struct queue *q, int fd, struct queue_file *f,
                         const struct queue_update *u, size_t n, int *finished)
{
    int64_t now = (int64_t)time(NULL);
    if (!updates_valid(f, u, n))
        return errno = EINVAL, -1;
    if (drop_torn_tail(fd, f) != 0)
        return -1;
    /* Appends of at most QF_LOG_APPEND_MAX bytes each, so a torn append is
     * always within that many bytes of the end (qf_log_replay relies on it). */
    struct buf recs = BUF_INIT, one = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        buf_clear(&one);
        qf_log_encode(&one, &u[i], now);
        if (recs.len && recs.len + one.len > QF_LOG_APPEND_MAX) {
            rc = append_records(fd, f, &recs);
            f->log_len += recs.len;
            buf_clear(&recs);
        }
        buf_add(&recs, one.s, one.len);
    }
    if (rc == 0 && recs.len) {
        rc = append_records(fd, f, &recs);
        f->log_len += recs.len;
    }
    buf_free(&recs);
    buf_free(&one);
    if (rc != 0)
        return -1;
    int *was = xcalloc(f->nmsg, sizeof(*was));
    for (size_t i = 0; i < f->nmsg; i++)
        was[i] = qf_msg_finished(&f->msg[i]);
    for (size_t i = 0; i < n; i++)
        qf_apply(f, &u[i], now);
    log_removed(f, was);
    free(was);
    if (qf_file_finished(f))
        remove_finished(q, f, finished);
    return 0;
}

int queue_update(struct queue *q, const char *fid, const struct queue_update *u, size_t n,
                 int *finished)
{
    enum queue_place place;
    struct queue_file f;
    const char *why;
    if (finished)
        *finished = 0;
    if (!queue_file_id_valid(fid))
        return errno = EINVAL, -1;
    int fd = queue_locate_locked(q, fid, LOCK_EX, O_RDWR, &place);
    if (fd < 0)
        return -1;
    int rc;
    if (queue_read_meta(fd, fid, place, &f, &why) != 0) {
        rc = -1;
        if (errno == EBADMSG)
            queue_quarantine_locked(q, fid, place, why);
    } else if (f.version == 3) {
        /* immutable once committed: its delivery state is the router's */
        rc = -1;
        errno = EOPNOTSUPP;
        queue_file_free(&f);
    } else {
        rc = update_locked(q, fd, &f, u, n, finished);
        queue_file_free(&f);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int msg_action(struct queue *q, const char *id, enum queue_update_kind kind,
                      const char *text)
{
    struct queue_file f;
    size_t index;
    if (queue_find(q, id, &f, &index) != 0)
        return -1;
    struct queue_update u = {kind, (unsigned)index, QUEUE_NO_RCPT, 0, 0, 0, text};
    int rc = queue_update(q, f.fid, &u, 1, NULL);
    queue_file_free(&f);
    return rc;
}

int queue_hold(struct queue *q, const char *id)
{
    return msg_action(q, id, QUPD_HOLD, NULL);
}

int queue_release(struct queue *q, const char *id)
{
    return msg_action(q, id, QUPD_RELEASE, NULL);
}

int queue_delete(struct queue *q, const char *id, const char *who)
{
    return msg_action(q, id, QUPD_DELETE, who);
}

int queue_take(struct queue *q, const char *fid)
{
    if (!queue_file_id_valid(fid))
        return errno = EINVAL, -1;
    int fd = queue_open_locked(q, QUEUE_INCOMING, fid, LOCK_EX, O_RDONLY);
    if (fd < 0)
        return -1;
    struct buf rel = BUF_INIT;
    char bucket[3];
    queue_rel_path(fid, &rel);
    queue_bucket(fid, bucket);
    int rc = renameat2(q->dir_fd[QDIR_INCOMING], buf_cstr(&rel), q->dir_fd[QDIR_ACTIVE],
                       buf_cstr(&rel), RENAME_NOREPLACE);
    if (rc != 0 && errno == ENOENT && queue_make_bucket(q, QDIR_ACTIVE, bucket) == 0)
        rc = renameat2(q->dir_fd[QDIR_INCOMING], buf_cstr(&rel), q->dir_fd[QDIR_ACTIVE],
                       buf_cstr(&rel), RENAME_NOREPLACE);
    int e = errno;
    buf_free(&rel);
    close(fd);
    errno = e;
    return rc;
}
