/*
 * queue_commit — building and committing a new queue file, the steps in
 * the order they happen (queue.h "writing"; their crash points are in
 * docs/INTERNALS.md). It calls downward only: queue_slots.c (take, refill),
 * queue_place.c (the rename into incoming/ and the from= lines),
 * queue_fs.c and queue_format.c.
 *
 * Through tmp/ (server mode's group commits, and the fallback):
 *   1. create tmp/FID (O_EXCL, 0640) and flock it LOCK_EX; if a recovery
 *      sweep removed it between the create and the lock, start over
 *   2. write a zero header, each message's content (its CRC-32C kept for
 *      its 'M' record), then the envelope
 *   3. pwrite the real header, naming FID, fdatasync the file
 *   4. log each message's from= line and rename tmp/FID to incoming/HH/FID
 *      without replacing anything: the COMMIT POINT (queue_place.c)
 *   5. fsync incoming/HH: the commit is durable; only now is success told
 * Through a commit slot (QUEUE_OPEN_SLOTS, the one-shot injector):
 *   1. take a free slot: a pre-made empty file of slots/ whose directory
 *      entry is already durable, locked LOCK_EX (queue_slots.c)
 *   2. as above, into the slot
 *   3. choose the file id now (commit time), pwrite the header naming it
 *      (with the CRC-32C of the body, which is what tells a complete image
 *      from one whose blocks were flushed out of order), fdatasync: the
 *      COMMIT POINT (data durable in a durable entry)
 *   4. log the from= line, rename slots/S to incoming/HH/FID, no directory
 *      fsync: a rename is atomic, so after a crash the file is under one of
 *      the two names and recovery renames a committed slot; only then is
 *      success told
 *   5. refill slots/ when it runs low (one directory fsync per batch)
 * A failure at any step removes the tmp file (empties the slot) and reports
 * errno; nothing is ever visible half-written.
 * Must never: report success before the data and a name of it are durable
 * (through a slot: the slot's name until the rename is durable too), or
 * leave a tmp file or a non-empty slot behind on a failure it survives.
 */
#include "queue_impl.h"
#include "queue_modes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mem.h"
#include "sysdeps.h"
#include "safeio.h"

#define WRITE_CHUNK (256u * 1024)

struct queue_writer {
    struct queue *q;
    int fd;
    int slot;             /* fd is slots/tmp_name (a commit slot), not tmp/tmp_name */
    int refill;           /* slots/ runs low: refill after the commit */
    uint32_t body_crc;    /* of everything written at offset >= 64 */
    uint32_t msg_crc;     /* of the open message's content so far */
    struct qf_header hdr; /* once written: rewritten if the id must change */
    char tmp_name[QUEUE_FILE_ID_LEN + 1];
    uint64_t created_us;
    struct buf out; /* bytes not yet written; they start at out_off */
    uint64_t out_off;
    uint64_t msg_start;           /* content offset of the open message */
    struct buf env;               /* the envelope section so far */
    struct queue_log_msg *logged; /* per message, for its from= line */
    size_t logged_cap;
    unsigned nmsg;
    int error; /* errno of the first failure, sticky */
};

static uint64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Create and lock tmp/FID; 0 or -1 with errno. */
static int create_tmp(struct queue_writer *w)
{
    for (int tries = 0; tries < 100; tries++) {
        queue_file_id_new(w->tmp_name, &w->created_us);
        int fd = openat(w->q->dir_fd[QDIR_TMP], w->tmp_name,
                        O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, QUEUE_FILE_MODE);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        struct stat st;
        int r;
        do
            r = flock(fd, LOCK_EX);
        while (r < 0 && errno == EINTR);
        if (r == 0 && fstat(fd, &st) == 0 && st.st_nlink > 0) {
            w->fd = fd;
            return 0;
        }
        close(fd); /* swept before we locked it: take another name */
    }
    errno = EAGAIN;
    return -1;
}

int queue_writer_begin(struct queue *q, struct queue_writer **out)
{
    struct queue_writer *w = xcalloc(1, sizeof(*w));
    w->q = q;
    w->fd = -1;
    if (q->flags & QUEUE_OPEN_SLOTS) {
        w->fd = queue_slot_take(q, w->tmp_name, &w->refill);
        w->slot = w->fd >= 0;
    }
    if (!w->slot && create_tmp(w) != 0) {
        int e = errno;
        free(w);
        errno = e;
        return -1;
    }
    static const char zero[QF_HEADER_SIZE];
    buf_add(&w->out, zero, sizeof(zero)); /* the header is written last */
    w->msg_start = QF_HEADER_SIZE;
    *out = w;
    return 0;
}

static uint64_t writer_pos(const struct queue_writer *w)
{
    return w->out_off + w->out.len;
}

static int flush_out(struct queue_writer *w)
{
    if (w->error)
        return errno = w->error, -1;
    if (w->out.len && write_all(w->fd, w->out.s, w->out.len) != 0) {
        w->error = errno ? errno : EIO;
        return -1;
    }
    size_t skip = w->out_off < QF_HEADER_SIZE ? (size_t)(QF_HEADER_SIZE - w->out_off) : 0;
    if (skip < w->out.len)
        w->body_crc = crc32c(w->body_crc, w->out.s + skip, w->out.len - skip);
    w->out_off += w->out.len;
    buf_clear(&w->out);
    return 0;
}

int queue_writer_data(struct queue_writer *w, const void *p, size_t n)
{
    if (w->error)
        return errno = w->error, -1;
    buf_add(&w->out, p, n);
    w->msg_crc = crc32c(w->msg_crc, p, n);
    return w->out.len >= WRITE_CHUNK ? flush_out(w) : 0;
}

static void add_str_record(struct buf *rec, const char *s)
{
    qf_put_str(rec, s ? s : "", s ? strlen(s) : 0);
}

static void env_message(struct queue_writer *w, const struct queue_envelope *env, uint64_t size)
{
    struct buf rec = BUF_INIT;
    qf_put_u32(&rec, w->nmsg);
    qf_put_u64(&rec, w->msg_start);
    qf_put_u64(&rec, size);
    if (w->q->write_version == 3)
        qf_put_u32(&rec, w->msg_crc); /* each message verified on its own */
    qf_put_u64(&rec, now_usec());
    qf_put_u32(&rec, (uint32_t)env->nrcpt);
    qf_put_u32(&rec, (uint32_t)env->nattr);
    add_str_record(&rec, env->sender);
    qf_env_record(&w->env, 'M', &rec);
    for (size_t i = 0; i < env->nattr; i++) {
        buf_clear(&rec);
        add_str_record(&rec, env->attr[i].name);
        add_str_record(&rec, env->attr[i].value);
        qf_env_record(&w->env, 'A', &rec);
    }
    for (size_t i = 0; i < env->nrcpt; i++) {
        buf_clear(&rec);
        add_str_record(&rec, env->rcpt[i]);
        add_str_record(&rec, env->rcpt_orcpt ? env->rcpt_orcpt[i] : "");
        add_str_record(&rec, env->rcpt_notify ? env->rcpt_notify[i] : "");
        qf_env_record(&w->env, 'R', &rec);
    }
    buf_clear(&rec);
    qf_env_record(&w->env, 'E', &rec);
    buf_free(&rec);
}

int queue_writer_end_msg(struct queue_writer *w, const struct queue_envelope *env, unsigned *index)
{
    if (w->error)
        return errno = w->error, -1;
    if (w->nmsg >= QUEUE_FILE_MSGS_MAX || env->nrcpt == 0 || env->nrcpt > QUEUE_RCPT_MAX ||
        env->nattr > QUEUE_ATTR_MAX) {
        errno = EINVAL;
        return -1;
    }
    uint64_t size = writer_pos(w) - w->msg_start;
    env_message(w, env, size);
    if (w->env.len > QF_ENVELOPE_MAX) {
        w->error = E2BIG;
        return errno = E2BIG, -1;
    }
    if (index)
        *index = w->nmsg;
    w->logged = xgrow(w->logged, &w->logged_cap, w->nmsg + 1, sizeof(*w->logged));
    w->logged[w->nmsg] = (struct queue_log_msg){xstrdup(env->sender ? env->sender : ""), size,
                                                env->nrcpt, NULL, NULL};
    queue_log_msg_origin(&w->logged[w->nmsg], env->attr, env->nattr);
    w->nmsg++;
    w->msg_start = writer_pos(w);
    w->msg_crc = 0;
    return 0;
}

unsigned queue_writer_count(const struct queue_writer *w)
{
    return w->nmsg;
}

uint64_t queue_writer_msg_size(const struct queue_writer *w)
{
    return writer_pos(w) - w->msg_start;
}

/* Steps 2-3: envelope, header naming fid, fdatasync. */
static int write_and_sync(struct queue_writer *w, const char *fid)
{
    struct qf_header *h = &w->hdr;
    memset(h, 0, sizeof(*h));
    h->version = w->q->write_version;
    h->env_off = writer_pos(w);
    h->env_len = (uint32_t)w->env.len;
    h->env_crc = crc32c(0, w->env.s, w->env.len);
    h->committed_len = h->env_off + h->env_len;
    h->nmsg = w->nmsg;
    h->created_us = w->created_us;
    buf_add(&w->out, w->env.s, w->env.len);
    if (flush_out(w) != 0)
        return -1;
    h->body_crc = w->body_crc;
    return queue_write_header(w->fd, h, fid);
}

/* Step 4 (queue_place.c): the image into incoming/ under fid (the tmp
 * name, or the id chosen at a slot's commit), its from= lines logged. */
static int place(struct queue_writer *w, char *fid, char *bucket)
{
    struct queue *q = w->q;
    int from_dir = w->slot ? q->slots_fd : q->dir_fd[QDIR_TMP];
    if (!w->slot)
        memcpy(fid, w->tmp_name, QUEUE_FILE_ID_LEN + 1);
    return queue_place_incoming(q, from_dir, w->tmp_name, w->fd, &w->hdr, w->logged, w->nmsg, fid,
                                bucket);
}

static void writer_free(struct queue_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    buf_free(&w->out);
    buf_free(&w->env);
    for (unsigned k = 0; k < w->nmsg; k++) {
        free(w->logged[k].sender);
        queue_log_msg_free_origin(&w->logged[k]);
    }
    free(w->logged);
    free(w);
}

/* The slot is given back empty; after a commit point that was not followed
 * by success the emptying is made durable, so recovery cannot commit it. */
static void slot_release(struct queue_writer *w, int synced)
{
    if (ftruncate(w->fd, 0) == 0 && synced)
        fdatasync(w->fd);
}

/* Steps 3-5 of a slot commit. */
static int commit_slot(struct queue_writer *w, char *fid)
{
    char bucket[3];
    queue_file_id_new(fid, &w->created_us); /* ids sort by commit time */
    if (write_and_sync(w, fid) != 0) {
        int e = errno;
        slot_release(w, 1);
        return errno = e, -1;
    }
    if (place(w, fid, bucket) != 0) {
        int e = errno;
        slot_release(w, 1);
        return errno = e, -1;
    }
    if (w->refill)
        queue_slots_refill(w->q);
    return 0;
}

int queue_writer_commit(struct queue_writer *w, char *fid)
{
    char bucket[3];
    int e;
    if (w->slot) {
        int rc = w->nmsg ? commit_slot(w, fid) : (slot_release(w, 0), errno = EINVAL, -1);
        e = errno;
        writer_free(w);
        errno = e;
        return rc;
    }
    if (w->nmsg == 0) {
        e = EINVAL;
    } else if (write_and_sync(w, w->tmp_name) != 0) {
        e = errno;
    } else if (place(w, fid, bucket) != 0) {
        e = errno;
    } else if (queue_fsync_subdir(w->q, QDIR_INCOMING, bucket) != 0) {
        /* Committed but maybe not durable: take it back, report failure. */
        e = errno;
        queue_log_not_queued(w->nmsg, fid, e);
        struct buf rel = BUF_INIT;
        queue_rel_path(fid, &rel);
        unlinkat(w->q->dir_fd[QDIR_INCOMING], buf_cstr(&rel), 0);
        buf_free(&rel);
        writer_free(w);
        return errno = e, -1;
    } else {
        writer_free(w);
        return 0;
    }
    unlinkat(w->q->dir_fd[QDIR_TMP], w->tmp_name, 0);
    writer_free(w);
    errno = e;
    return -1;
}

void queue_writer_abort(struct queue_writer *w)
{
    if (!w)
        return;
    if (w->slot)
        slot_release(w, 0);
    else
        unlinkat(w->q->dir_fd[QDIR_TMP], w->tmp_name, 0);
    writer_free(w);
}
