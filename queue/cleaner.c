/*
 * cleaner — `onehop-queue --clean` (cleaner.h, clean_proto.h): the only
 * process that renames, punches or unlinks committed message files, on the
 * router's request, as the queue account (qmail-clean's role: the router
 * may read the messages but can change none of them).
 *
 * Each request names one file id or message id. The id's form is checked
 * first (queue.h "ids": 16 or 18 characters of the base-32 alphabet, so no
 * '/' and no '.' ever reaches a path); the file is looked up only in its own
 * bucket of incoming/ or active/, opened O_NOFOLLOW|O_NONBLOCK, and acted on
 * only when it is a regular file (a FIFO or symlink named like a queue file
 * is refused; QUARANTINE moves it without opening it). Files are locked as
 * queue.h's LOCKING RULE says (LOCK_EX to move, punch or unlink).
 *
 * Every request is idempotent, because the router re-sends, after a crash,
 * each request whose need its journal recorded: a file already taken,
 * already gone, already quarantined, or a range already punched answers
 * CLEAN_OK with changed 0. No request fsyncs (docs/INTERNALS.md "Ownership
 * and the cleaner": a change lost in a power cut is re-sent by the
 * router's replay, and none of them can lose a message).
 * Must never: touch a file a request did not name, or state/; change a
 * byte when reclaiming that is not content of a reclaimed message; answer
 * before the change is done.
 */
#include "cleaner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel_core.h"
#include "daemon_link.h"
#include "inject_proto.h"
#include "log.h"
#include "queue_impl.h"

/* What a request did: err 0 is CLEAN_OK. */
struct outcome {
    int err;
    int changed;
    uint64_t bytes;
    struct buf text;
};

static void ok(struct outcome *o, int changed, uint64_t bytes, const char *text)
{
    o->changed = changed;
    o->bytes = bytes;
    buf_sets(&o->text, text);
}

static void fail(struct outcome *o, int err, const char *what)
{
    o->err = err ? err : EIO;
    buf_clear(&o->text);
    buf_printf(&o->text, "%s: %s", what, strerror(o->err));
}

/* 1 if place holds a regular file named fid (no symlink followed). */
static int place_has_file(struct queue *q, enum queue_place place, const char *fid)
{
    struct buf rel = BUF_INIT;
    struct stat st;
    queue_rel_path(fid, &rel);
    int found = fstatat(q->dir_fd[place], buf_cstr(&rel), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode);
    buf_free(&rel);
    return found;
}

/* Before any open: an entry named fid in incoming/ or active/ that is not a
 * regular file (a FIFO would block an open, a symlink points anywhere) is
 * refused by its type alone. 0 when all is well, -1 when answered. Only the
 * queue account can put a name there, so nothing can swap it afterwards
 * but itself (and the opens are O_NOFOLLOW anyway). *found: the first place
 * holding a regular file of that name (incoming/, then active/), or -1. */
static int refuse_odd_entry_at(struct queue *q, const char *fid, struct outcome *o, int *found)
{
    struct buf rel = BUF_INIT;
    struct stat st;
    int rc = 0;
    queue_rel_path(fid, &rel);
    *found = -1;
    for (int p = QUEUE_INCOMING; p <= QUEUE_ACTIVE && rc == 0; p++) {
        if (fstatat(q->dir_fd[p], buf_cstr(&rel), &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            if (*found < 0)
                *found = p;
            continue;
        }
        fail(o, S_ISLNK(st.st_mode) ? ELOOP : EBADMSG,
             S_ISLNK(st.st_mode) ? "a symbolic link, never followed" : "not a regular file");
        rc = -1;
    }
    buf_free(&rel);
    return rc;
}

static int refuse_odd_entry(struct queue *q, const char *fid, struct outcome *o)
{
    int found;
    return refuse_odd_entry_at(q, fid, o, &found);
}

/* The file fid, wherever it is (incoming/ or active/), opened and locked
 * LOCK_EX; -1 when it is not there (answered OK 0: a repeated request) or
 * cannot be opened (answered ERR). */
static int open_named(struct queue *q, const char *fid, int flags, enum queue_place *place,
                      struct outcome *o)
{
    int found;
    if (refuse_odd_entry_at(q, fid, o, &found) != 0)
        return -1;
    int fd = -1;
    if (found >= 0) { /* where the look saw it: the one open, as a rule */
        fd = queue_open_locked(q, (enum queue_place)found, fid, LOCK_EX, flags);
        if (fd >= 0)
            *place = (enum queue_place)found;
    }
    if (fd < 0)
        fd = queue_locate_locked(q, fid, LOCK_EX, flags, place);
    if (fd >= 0)
        return fd;
    if (errno == ENOENT)
        ok(o, 0, 0, "already gone");
    else
        fail(o, errno, errno == EBADMSG ? "not a regular file" : "cannot open it");
    return -1;
}

/* -------------------------------------------------------------- TAKE ---- */
static void do_take(struct queue *q, const char *fid, struct outcome *o)
{
    if (refuse_odd_entry(q, fid, o) != 0)
        return;
    if (queue_take(q, fid) == 0) {
        log_info("%s: taken: moved to active/", fid);
        ok(o, 1, 0, "taken");
        return;
    }
    int e = errno;
    if (e == ENOENT && place_has_file(q, QUEUE_ACTIVE, fid))
        ok(o, 0, 0, "already taken");
    else if (e == ENOENT) /* a TAKE replayed after the file's REMOVE went through */
        ok(o, 0, 0, "already gone");
    else
        fail(o, e, e == EBADMSG ? "not a regular file" : "cannot move it to active/");
}

/* ------------------------------------------------------------ REMOVE ---- */
static void do_remove(struct queue *q, const char *fid, struct outcome *o)
{
    enum queue_place place;
    int fd = open_named(q, fid, O_RDONLY, &place, o);
    if (fd < 0)
        return;
    struct buf rel = BUF_INIT;
    queue_rel_path(fid, &rel);
    int rc = unlinkat(q->dir_fd[place], buf_cstr(&rel), 0);
    int e = errno;
    buf_free(&rel);
    close(fd);
    if (rc != 0) {
        fail(o, e, "cannot unlink it");
        return;
    }
    log_info("%s: unlinked from %s/", fid, queue_dir_names[place]);
    ok(o, 1, 0, place == QUEUE_ACTIVE ? "unlinked from active/" : "unlinked from incoming/");
}

/* ----------------------------------------------------------- RECLAIM ---- */
/* RECLAIM: a finished message's content is no longer needed. Its exact byte
 * range is punched (PUNCH_HOLE|KEEP_SIZE: the file keeps its length, whole
 * blocks inside are freed, the bytes of the partial blocks at its ends are
 * zeroed), widened to the whole edge block when the rest of that block is
 * content of neighbours reclaimed before. Message content never holds a NUL
 * byte (msgcheck refuses it), so a zero byte of the content area is a
 * reclaimed one: an edge block whose other bytes are all zero and all lie
 * between the header and the envelope holds nothing anybody needs, and the
 * later of two neighbours frees the block they share. The header's block
 * and the envelope's are never freed. A content of all zeros is a message
 * already reclaimed. */

/* One buffer for every content read: a request's reads fit in it (a 4 KiB
 * message and its two edge blocks in one pread), and it is never allocated
 * per request. */
static char zero_buf[256 * 1024];

/* The allocation unit: the larger of the page size and the file system's
 * block st_blksize (a hole is only ever made of whole ones). */
static uint64_t block_unit(const struct stat *st)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t unit = page > 0 ? (uint64_t)page : 4096;
    if (st->st_blksize > 0 && (uint64_t)st->st_blksize > unit)
        unit = (uint64_t)st->st_blksize;
    return unit;
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* One pread of up to n bytes at off, retried on EINTR: the count read (> 0),
 * or -1 with errno (EBADMSG for a file that ends before off + 1). */
static ssize_t pread_some(int fd, char *buf, size_t n, uint64_t off)
{
    for (;;) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = EBADMSG;
        return r > 0 ? r : -1;
    }
}

/* 1 if bytes [a, b) of fd are all zero (holes skipped with SEEK_DATA), 0 if
 * not, -1 with errno on a read error or a file shorter than b. */
static int range_all_zero(int fd, uint64_t a, uint64_t b)
{
    while (a < b) {
        off_t d = lseek(fd, (off_t)a, SEEK_DATA);
        if (d < 0 || (uint64_t)d >= b)
            return d >= 0 || errno == ENXIO ? 1 : -1;
        a = (uint64_t)d;
        size_t n = b - a < sizeof(zero_buf) ? (size_t)(b - a) : sizeof(zero_buf);
        ssize_t r = pread_some(fd, zero_buf, n, a);
        if (r < 0)
            return -1;
        if (!all_zero(zero_buf, (size_t)r))
            return 0;
        a += (uint64_t)r;
    }
    return 1;
}

/* What punching content [lo, hi) looks like on disk: whether the content is
 * all zero already, and the range widened at each end over a block's
 * reclaimed remainder inside [content_start, content_end). */
struct punch_range {
    uint64_t lo, hi;
    int zero;
};

/* The same answers as range_all_zero over the content and each edge, from
 * ONE read of [a, b) into zero_buf (the common case: a small message). 0,
 * or -1 with errno. */
static int survey_one_read(int fd, uint64_t a, uint64_t b, uint64_t lo_b, uint64_t hi_b,
                           struct punch_range *pr)
{
    size_t n = (size_t)(b - a), got = 0;
    while (got < n) {
        ssize_t r = pread_some(fd, zero_buf + got, n - got, a + got);
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    uint64_t lo = pr->lo, hi = pr->hi;
    pr->zero = all_zero(zero_buf + (lo - a), (size_t)(hi - lo));
    if (lo_b < lo && lo_b >= a && all_zero(zero_buf + (lo_b - a), (size_t)(lo - lo_b)))
        pr->lo = lo_b;
    if (hi_b > hi && hi_b <= b && all_zero(zero_buf + (hi - a), (size_t)(hi_b - hi)))
        pr->hi = hi_b;
    return 0;
}

static int survey(int fd, const struct stat *st, uint64_t content_start, uint64_t content_end,
                  struct punch_range *pr)
{
    uint64_t unit = block_unit(st);
    uint64_t lo = pr->lo, hi = pr->hi;
    uint64_t lo_b = lo / unit * unit, hi_b = (hi + unit - 1) / unit * unit;
    uint64_t a = lo_b >= content_start ? lo_b : lo, b = hi_b <= content_end ? hi_b : hi;
    if (b - a <= sizeof(zero_buf))
        return survey_one_read(fd, a, b, lo_b, hi_b, pr);
    pr->zero = hi > lo ? range_all_zero(fd, lo, hi) : 1;
    if (pr->zero < 0)
        return -1;
    if (lo_b < lo && lo_b >= content_start && range_all_zero(fd, lo_b, lo) == 1)
        pr->lo = lo_b;
    if (hi_b > hi && hi_b <= content_end && range_all_zero(fd, hi, hi_b) == 1)
        pr->hi = hi_b;
    return 0;
}

static const struct queue_msg *find_msg(const struct queue_file *f, const char *id)
{
    for (size_t i = 0; i < f->nmsg; i++)
        if (strcmp(f->msg[i].id, id) == 0)
            return &f->msg[i];
    return NULL;
}

static void punch(int fd, const struct stat *st, const char *id, const struct queue_msg *m,
                  const struct qf_header *h, struct outcome *o)
{
    struct punch_range pr = {m->content_offset, m->content_offset + m->size, 1};
    if (m->size && survey(fd, st, QF_HEADER_SIZE, h->env_off, &pr) != 0) {
        fail(o, errno, "cannot read its content");
        return;
    }
    if (pr.zero) {
        ok(o, 0, 0, "already reclaimed");
        return;
    }
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pr.lo,
                  (off_t)(pr.hi - pr.lo)) != 0) {
        fail(o, errno, "cannot punch a hole");
        return;
    }
    log_info("%s: content reclaimed: %llu bytes punched at offset %llu", id,
             (unsigned long long)(pr.hi - pr.lo), (unsigned long long)pr.lo);
    ok(o, 1, pr.hi - pr.lo, "punched");
}

/* The header of an open file (for the envelope offset and the format). */
static int read_header(int fd, struct qf_header *h, const char **why)
{
    unsigned char raw[QF_HEADER_SIZE];
    ssize_t r = pread(fd, raw, sizeof(raw), 0);
    if (r != (ssize_t)sizeof(raw)) {
        *why = "cannot read its header";
        errno = r < 0 ? errno : EBADMSG;
        return -1;
    }
    if (qf_header_decode(raw, sizeof(raw), h, why) != 0)
        return errno = EBADMSG, -1;
    return 0;
}

/* The last file a RECLAIM read: its header and envelope, kept while the
 * same inode carries the same id. A format 3 file never changes after its
 * commit but for punched content (queue.h), so what was read of it holds
 * for as long as that inode is linked under its id: the RECLAIMs of one
 * group file's messages, which come one after another, read it once.
 * Formats 1 and 2 (with a state log) are never kept. */
static struct {
    int valid;
    dev_t dev;
    ino_t ino;
    struct qf_header h;
    struct queue_file f;
} meta_cache;

static void meta_cache_drop(void)
{
    if (meta_cache.valid)
        queue_file_free(&meta_cache.f);
    meta_cache.valid = 0;
}

/* The header and envelope of fid, open in fd: from the cache when st is the
 * inode it holds, else read (and kept when format 3). */
static int file_meta(int fd, const struct stat *st, const char *fid, enum queue_place place,
                     const struct qf_header **h, const struct queue_file **f, const char **why)
{
    if (meta_cache.valid && meta_cache.dev == st->st_dev && meta_cache.ino == st->st_ino &&
        strcmp(meta_cache.f.fid, fid) == 0) {
        meta_cache.f.place = place;
        *h = &meta_cache.h;
        *f = &meta_cache.f;
        return 0;
    }
    meta_cache_drop();
    if (read_header(fd, &meta_cache.h, why) != 0 ||
        queue_read_meta(fd, fid, place, &meta_cache.f, why) != 0)
        return -1;
    meta_cache.valid = 1;
    meta_cache.dev = st->st_dev;
    meta_cache.ino = st->st_ino;
    *h = &meta_cache.h;
    *f = &meta_cache.f;
    return 0;
}

/* Reclaim message id in the open, locked file fd. */
static void reclaim_in(int fd, const char *fid, enum queue_place place, const char *id,
                       struct outcome *o)
{
    const struct queue_file *f;
    const struct qf_header *h;
    const char *why = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || file_meta(fd, &st, fid, place, &h, &f, &why) != 0) {
        fail(o, errno, why ? why : "cannot read its envelope");
        return;
    }
    const struct queue_msg *m = find_msg(f, id);
    if (!m)
        fail(o, ENOENT, "no such message in its file");
    else if (h->version == 2 && h->nmsg > 1)
        /* its body CRC covers every message: a hole would make the others
         * fail their check; the space comes back when the file is removed */
        fail(o, EOPNOTSUPP, "a format 2 group file is reclaimed only by its removal");
    else
        punch(fd, &st, id, m, h, o);
    if (h->version != 3)
        meta_cache_drop();
}

static void do_reclaim(struct queue *q, const char *id, struct outcome *o)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    enum queue_place place;
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    int fd = open_named(q, fid, O_RDWR, &place, o);
    if (fd < 0)
        return;
    reclaim_in(fd, fid, place, id, o);
    close(fd);
}

/* -------------------------------------------------------- QUARANTINE ---- */
/* Move the entry fid of place to corrupt/: a regular file under its lock,
 * anything else (a FIFO, a symlink) by its name alone, never opened.
 * 1 moved, 0 not there, -1 failed (errno). */
static int quarantine_from(struct queue *q, enum queue_place place, const char *fid,
                           const char *why)
{
    struct buf rel = BUF_INIT, what = BUF_INIT;
    struct stat st;
    int rc = 0;
    queue_rel_path(fid, &rel);
    if (fstatat(q->dir_fd[place], buf_cstr(&rel), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = errno == ENOENT ? 0 : -1;
    } else if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        rc = -1;
    } else if (S_ISREG(st.st_mode)) {
        rc = queue_quarantine(q, fid, place, why) == 0 ? 1 : errno == ENOENT ? 0 : -1;
    } else {
        buf_printf(&what, "not a regular file (%s)", why);
        rc = queue_move_corrupt(q, q->dir_fd[place], buf_cstr(&rel), fid, buf_cstr(&what)) == 0 ? 1
             : errno == ENOENT                                                                  ? 0
                               : -1;
    }
    int e = errno;
    buf_free(&rel);
    buf_free(&what);
    errno = e;
    return rc;
}

static void do_quarantine(struct queue *q, const char *fid, const char *why, struct outcome *o)
{
    const char *reason = why[0] ? why : "quarantined by the router";
    /* a file only moves incoming -> active: two rounds find it anyway */
    for (int round = 0; round < 2; round++) {
        for (int p = QUEUE_INCOMING; p <= QUEUE_ACTIVE; p++) {
            int rc = quarantine_from(q, (enum queue_place)p, fid, reason);
            if (rc > 0) {
                ok(o, 1, 0, "moved to corrupt/");
                return;
            }
            if (rc < 0) {
                fail(o, errno, "cannot move it to corrupt/");
                return;
            }
        }
    }
    struct stat st;
    int there = fstatat(q->dir_fd[QDIR_CORRUPT], fid, &st, AT_SYMLINK_NOFOLLOW) == 0;
    ok(o, 0, 0, there ? "already in corrupt/" : "already gone");
}

/* ----------------------------------------------------------- RECOVER ---- */
/* The writer side's recovery (queue_recover_writer: dead writers' tmp/
 * files and slots, strays, buckets), safe beside running writers and
 * beside another recovery: it takes no owner lock. The committed files are
 * the state side's to judge (it reads them at start and asks for
 * QUARANTINE). */
static void do_recover(struct queue *q, struct outcome *o)
{
    struct queue_recovery r;
    queue_recover_writer(q, &r);
    o->changed = r.tmp_removed || r.tails_repaired || r.quarantined || r.finished_removed ||
                 r.strays || r.slots_committed || r.slots_freed;
    buf_clear(&o->text);
    buf_printf(&o->text,
               "tmp_removed=%lu tails_repaired=%lu quarantined=%lu finished_removed=%lu "
               "strays=%lu slots_committed=%lu slots_freed=%lu",
               r.tmp_removed, r.tails_repaired, r.quarantined, r.finished_removed, r.strays,
               r.slots_committed, r.slots_freed);
}

void cleaner_start(struct queue *q)
{
    struct queue_recovery r;
    if (q)
        queue_recover_writer(q, &r);
}

/* ------------------------------------------------------------- dispatch ---- */
/* The id's form, before anything else: a file id, or for RECLAIM a message id. */
static int id_acceptable(const struct clean_request *rq)
{
    if (rq->type == CLEAN_RECOVER)
        return 1;
    return rq->type == CLEAN_RECLAIM ? queue_id_valid(rq->id) : queue_file_id_valid(rq->id);
}

void cleaner_apply(struct queue *q, const struct clean_request *rq, struct buf *reply)
{
    struct outcome o = {0, 0, 0, BUF_INIT};
    if (!id_acceptable(rq)) {
        log_warn("cleaner: refused a request with a malformed id \"%s\"", rq->id);
        fail(&o, EINVAL, rq->type == CLEAN_RECLAIM ? "not a message id" : "not a file id");
    } else if (rq->type == CLEAN_RECOVER) {
        do_recover(q, &o);
    } else if (rq->type == CLEAN_TAKE) {
        do_take(q, rq->id, &o);
    } else if (rq->type == CLEAN_RECLAIM) {
        do_reclaim(q, rq->id, &o);
    } else if (rq->type == CLEAN_REMOVE) {
        do_remove(q, rq->id, &o);
    } else {
        do_quarantine(q, rq->id, rq->why, &o);
    }
    if (o.err)
        clean_reply_err(reply, o.err, buf_cstr(&o.text));
    else
        clean_reply_ok(reply, o.changed, o.bytes, buf_cstr(&o.text));
    buf_free(&o.text);
}

/* --------------------------------------------------------------- serving ---- */
/* Between requests: wait for one on in_fd while hearing the master's link
 * (daemon_link.h). 1: a request is there; 0: stop (STOP, or the master
 * went away), with the reason logged. RELOAD has nothing to re-read. */
static int wait_request(int in_fd, struct daemon_link *link)
{
    if (!link || link->fd < 0)
        return 1;
    for (;;) {
        struct pollfd p[2] = {{in_fd, POLLIN, 0}, {link->fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return 1; /* the blocking read reports the trouble */
        if (p[1].revents) {
            int type;
            while ((type = daemon_link_next(link)) == DLINK_RELOAD)
                ;
            if (type == DLINK_STOP || type < 0) {
                log_info("cleaner: stopping (%s)", type < 0 ? link->why : "master");
                return 0;
            }
        }
        if (p[0].revents)
            return 1;
    }
}

int cleaner_serve(struct queue *q, int in_fd, int out_fd)
{
    return cleaner_serve_linked(q, in_fd, out_fd, NULL);
}

/* Act on every whole request held in `in`, their replies appended to
 * reply; -1 on a protocol violation (logged; the requests before it were
 * carried out and are answered). */
static int apply_held(struct queue *q, struct chan_in *in, struct buf *reply)
{
    struct chan_record rec;
    int rc;
    while ((rc = chan_in_pop(in, &rec)) == 1) {
        const char *why = NULL;
        struct ipc_reader r;
        struct clean_request rq;
        if (clean_request_decode(&r, rec.data, rec.len, &rq, &why) != 0) {
            log_error("cleaner: protocol error on input: %s", why ? why : "malformed record");
            ipc_close(&r);
            return -1;
        }
        cleaner_apply(q, &rq, reply);
        ipc_close(&r);
    }
    if (rc < 0)
        log_error("cleaner: protocol error on input: %s", in->error);
    return rc < 0 ? -1 : 0;
}

/* The router keeps a window of requests in flight: every request one read
 * brings is carried out, in order, and all their replies go back in one
 * write (each after its change, as before; a kill between leaves replies
 * unsent, which the router's re-sending covers: docs/INTERNALS.md). */
int cleaner_serve_linked(struct queue *q, int in_fd, int out_fd, struct daemon_link *link)
{
    struct chan_in in;
    struct buf reply = BUF_INIT;
    int status = -1;
    chan_in_init(&in, CLEAN_RECORD_MAX, 0); /* max_fds 0: a descriptor is a protocol error */
    while (status < 0) {
        int bad = apply_held(q, &in, &reply);
        if (reply.len && chan_send_record(out_fd, reply.s, reply.len, NULL, 0, -1) != 0) {
            log_error("cleaner: cannot write a reply: %m");
            status = INJ_EX_TEMPFAIL;
            continue;
        }
        buf_clear(&reply);
        if (bad) {
            status = INJ_EX_SOFTWARE;
            continue;
        }
        if (!wait_request(in_fd, link)) {
            status = INJ_EX_OK;
            continue;
        }
        ssize_t n = chan_in_read(&in, in_fd, 0); /* EINTR retried */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0 || (n == 0 && chan_in_partial(&in))) {
            log_error("cleaner: protocol error on input: %s", n == 0 ? "end of file inside a record"
                                                              : in.error ? in.error
                                                                         : strerror(errno));
            status = INJ_EX_SOFTWARE;
        } else if (n == 0) {
            status = INJ_EX_OK;
        }
    }
    chan_in_free(&in);
    buf_free(&reply);
    return status;
}

/* A socket on fd 0 is the whole channel (the master's socketpair: fd 1 is
 * then whatever the master's own output is); otherwise two pipes. */
static int reply_fd(void)
{
    struct stat st;
    return fstat(0, &st) == 0 && S_ISSOCK(st.st_mode) ? 0 : 1;
}

int cleaner_main(struct queue *q, const char *unavailable, int setid, struct daemon_link *link)
{
    if (setid) {
        fprintf(stderr, "onehop-queue: --clean runs as the queue account, never set-uid\n");
        return INJ_EX_USAGE;
    }
    if (!q) {
        fprintf(stderr, "onehop-queue: %s\n", unavailable);
        return INJ_EX_TEMPFAIL;
    }
    return cleaner_serve_linked(q, 0, reply_fd(), link);
}
