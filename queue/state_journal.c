/*
 * state_journal — append-only journal with group commit, checkpoints and
 * replay (contract and file layout: state_journal.h; the crash table:
 * docs/INTERNALS.md "The state side").
 *
 * Must never: move sj_durable() before fdatasync returned, append after a
 * torn tail (it is cut first), delete a file it could not parse (damage is
 * renamed aside), or read past a buffer.
 */
#include "state_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "queue_impl.h" /* crc32c, qf_put_u32/u64, qf_get_u32/u64_at */
#include "safeio.h"

#define SEGMENT_MAGIC "OHSTJRN1"
#define CHECKPOINT_MAGIC "OHSTCKP1"
#define SEGMENT_PREFIX "journal."
#define CHECKPOINT_PREFIX "checkpoint."
#define NUMBER_DIGITS 16

struct sj {
    char *dir;
    int dir_fd, lock_fd, seg_fd; /* seg_fd: the segment appended to, -1 read-only */
    int cp_fd;                   /* the checkpoint replayed or last written, or -1 */
    uid_t dir_uid;               /* state/'s owner: the files made in it are its */
    gid_t dir_gid;
    unsigned flags;
    uint64_t segment;       /* number of the segment appended to */
    uint64_t cp_number;     /* of the checkpoint replayed or last written (cp_fd) */
    uint64_t seg_len;       /* its durable length */
    uint64_t journal_bytes; /* segment bytes since the checkpoint */
    struct buf pending;     /* encoded records not yet written */
    uint64_t last, durable; /* sequence numbers */
    uint64_t pending_first; /* sequence of the first record in pending */
    unsigned long syncs;
    int broken;
    sj_step_hook *hook;
    void *hook_arg;
};

/* A checkpoint being written: records go out through a bounded buffer. */
#define SNAPSHOT_BUFFER (256u * 1024)
struct sj_snapshot {
    struct sj *j;
    int fd;           /* checkpoint.S.tmp */
    struct buf out;   /* encoded, not yet written */
    uint64_t written; /* bytes of the file before out */
    uint64_t count;
    int error; /* a write failed: errno in saved_errno */
    int saved_errno;
    int stepped;     /* "checkpoint-write" reached */
    uint64_t number; /* the checkpoint's */
};

/* A file made in state/ by root (an admin command while no router runs)
 * is given to state/'s owner, the router's account, which must read it. */
static void adopt(const struct sj *j, int fd)
{
    if (geteuid() == 0 && fchown(fd, j->dir_uid, j->dir_gid) != 0)
        log_warn("state: cannot give a new file of %s to its owner: %s", j->dir, strerror(errno));
}

static void step(struct sj *j, const char *name)
{
    if (j->hook)
        j->hook(name, j->hook_arg);
}

/* --------------------------------------------------------- encoding ---- */

static void encode_record(struct buf *out, unsigned type, const void *payload, size_t len)
{
    size_t start = out->len;
    buf_addc(out, (char)type);
    qf_put_u32(out, (uint32_t)len);
    buf_add(out, payload, len);
    qf_put_u32(out, crc32c(0, out->s + start, out->len - start));
}

static void encode_header(unsigned char *out, const char *magic, uint64_t number)
{
    struct buf b = BUF_INIT;
    buf_add(&b, magic, 8);
    qf_put_u64(&b, number);
    qf_put_u32(&b, crc32c(0, b.s, 16));
    memcpy(out, b.s, SJ_HEADER_SIZE);
    buf_free(&b);
}

static int header_valid(const unsigned char *p, size_t len, const char *magic, uint64_t *number)
{
    if (len < SJ_HEADER_SIZE || memcmp(p, magic, 8) != 0 ||
        !qf_crc_ok(qf_get_u32_at(p + 16), crc32c(0, p, 16)))
        return 0;
    *number = qf_get_u64_at(p + 8);
    return 1;
}

/* ------------------------------------------------------------ source ---- */

/* What a parse reads: an image in memory (the fuzz target, sj_records_each)
 * or a file read through a window of at most SOURCE_WINDOW bytes (the
 * replay: a checkpoint or segment is never held whole in memory). */
#define SOURCE_WINDOW (256u * 1024)

struct source {
    const unsigned char *mem; /* an image, or NULL: read fd */
    int fd;
    uint64_t size;
    struct buf win; /* fd: the bytes at win_off */
    uint64_t win_off;
    int error;   /* fd: a read failed (not damage: an I/O error) */
    uint64_t at; /* where the record handed to fn starts */
};

static void source_mem(struct source *src, const unsigned char *p, size_t len)
{
    memset(src, 0, sizeof(*src));
    src->mem = p;
    src->fd = -1;
    src->size = len;
}

/* n bytes at off (valid until the next call), or NULL past the end. */
static const unsigned char *source_get(struct source *src, uint64_t off, size_t n)
{
    if (off > src->size || n > src->size - off)
        return NULL;
    if (src->mem)
        return src->mem + off;
    if (off >= src->win_off && off + n <= src->win_off + src->win.len)
        return (const unsigned char *)src->win.s + (off - src->win_off);
    size_t want = n > SOURCE_WINDOW ? n : SOURCE_WINDOW;
    if (want > src->size - off)
        want = (size_t)(src->size - off);
    buf_clear(&src->win);
    buf_reserve(&src->win, want);
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(src->fd, src->win.s + got, want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            src->error = 1; /* shorter than fstat said, or EIO */
            return NULL;
        }
        got += (size_t)r;
    }
    src->win.len = got;
    src->win_off = off;
    return (const unsigned char *)src->win.s;
}

/* The record at pos: its total size and *rec (its bytes), or 0 if cut
 * short or bad. */
static size_t record_at(struct source *src, uint64_t pos, const unsigned char **rec)
{
    const unsigned char *p = source_get(src, pos, SJ_RECORD_OVERHEAD);
    if (!p)
        return 0;
    uint32_t len = qf_get_u32_at(p + 1);
    if (len > SJ_RECORD_MAX || !(p = source_get(src, pos, SJ_RECORD_OVERHEAD + (size_t)len)))
        return 0;
    if (!qf_crc_ok(qf_get_u32_at(p + 5 + len), crc32c(0, p, 5 + (size_t)len)))
        return 0;
    *rec = p;
    return SJ_RECORD_OVERHEAD + len;
}

static int parse_records(struct source *src, int checkpoint, sj_replay_fn *fn, void *arg,
                         size_t *valid, const char **why)
{
    uint64_t pos = SJ_HEADER_SIZE, len = src->size;
    uint64_t count = 0;
    enum sj_origin origin = checkpoint ? SJ_FROM_CHECKPOINT : SJ_FROM_JOURNAL;
    while (pos < len) {
        const unsigned char *rec;
        size_t n = record_at(src, pos, &rec);
        if (n == 0)
            break;
        unsigned type = rec[0];
        const unsigned char *payload = rec + 5;
        size_t plen = n - SJ_RECORD_OVERHEAD;
        if (checkpoint && type == SJ_TYPE_END) {
            *valid = (size_t)(pos + n - SJ_HEADER_SIZE);
            if (plen != 8 || qf_get_u64_at(payload) != count || pos + n != len) {
                *why = "checkpoint end record does not match its contents";
                return -1;
            }
            return 0;
        }
        src->at = pos;
        if (fn && fn(arg, origin, type, payload, plen) != 0) {
            *valid = (size_t)(pos - SJ_HEADER_SIZE);
            *why = "a record was refused";
            return -2;
        }
        count++;
        pos += n;
    }
    *valid = (size_t)(pos - SJ_HEADER_SIZE);
    if (checkpoint) {
        *why = "checkpoint cut short or damaged";
        return -1;
    }
    if (pos == len)
        return 0;
    *why = "record cut short or failing its CRC";
    /* A torn append lies within the last write (one flush, SJ_FLUSH_MAX). */
    return len - pos <= SJ_FLUSH_MAX ? 1 : -1;
}

static int parse_source(struct source *src, int checkpoint, uint64_t *number, sj_replay_fn *fn,
                        void *arg, size_t *valid, const char **why)
{
    *valid = 0;
    *number = 0;
    const unsigned char *h = source_get(src, 0, SJ_HEADER_SIZE);
    if (!h ||
        !header_valid(h, SJ_HEADER_SIZE, checkpoint ? CHECKPOINT_MAGIC : SEGMENT_MAGIC, number)) {
        *why = "bad file header";
        /* A segment whose header never reached the disk: torn at creation. */
        return !checkpoint && src->size <= SJ_HEADER_SIZE ? 1 : -1;
    }
    return parse_records(src, checkpoint, fn, arg, valid, why);
}

int sj_parse_image(const unsigned char *p, size_t len, int checkpoint, uint64_t *number,
                   sj_replay_fn *fn, void *arg, size_t *valid, const char **why)
{
    struct source src;
    source_mem(&src, p, len);
    return parse_source(&src, checkpoint, number, fn, arg, valid, why);
}

/* ------------------------------------------------------------ names ---- */

static void file_name(struct buf *out, const char *prefix, uint64_t number, const char *suffix)
{
    buf_clear(out);
    buf_printf(out, "%s%016llx%s", prefix, (unsigned long long)number, suffix);
}

/* The number of "PREFIX" + 16 hex digits (exactly), or 0 if name is not one. */
static uint64_t name_number(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || strlen(name) != plen + NUMBER_DIGITS)
        return 0;
    uint64_t v = 0;
    for (const char *s = name + plen; *s; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

static int tmp_name(const char *name)
{
    size_t n = strlen(name), plen = strlen(CHECKPOINT_PREFIX);
    return n > 4 && strncmp(name, CHECKPOINT_PREFIX, plen) == 0 &&
           strcmp(name + n - 4, ".tmp") == 0;
}

struct listing {
    uint64_t *segments, *checkpoints;
    size_t nseg, ncp, segcap, cpcap;
    char **tmps;
    size_t ntmp, tmpcap;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void listing_free(struct listing *l)
{
    free(l->segments);
    free(l->checkpoints);
    for (size_t i = 0; i < l->ntmp; i++)
        free(l->tmps[i]);
    free(l->tmps);
    memset(l, 0, sizeof(*l));
}

static int list_dir(int dir_fd, struct listing *l)
{
    memset(l, 0, sizeof(*l));
    DIR *d = fdopendir(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)); /* -1: EBADF */
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t n;
        if ((n = name_number(e->d_name, SEGMENT_PREFIX)) != 0) {
            l->segments = xgrow(l->segments, &l->segcap, l->nseg + 1, sizeof(uint64_t));
            l->segments[l->nseg++] = n;
        } else if ((n = name_number(e->d_name, CHECKPOINT_PREFIX)) != 0) {
            l->checkpoints = xgrow(l->checkpoints, &l->cpcap, l->ncp + 1, sizeof(uint64_t));
            l->checkpoints[l->ncp++] = n;
        } else if (tmp_name(e->d_name)) {
            l->tmps = xgrow(l->tmps, &l->tmpcap, l->ntmp + 1, sizeof(char *));
            l->tmps[l->ntmp++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (l->nseg > 1)
        qsort(l->segments, l->nseg, sizeof(uint64_t), cmp_u64);
    if (l->ncp > 1)
        qsort(l->checkpoints, l->ncp, sizeof(uint64_t), cmp_u64);
    return 0;
}

/* ------------------------------------------------------------ replay ---- */

/* Open file name for a streamed parse; *fd stays open (the caller's). */
static int source_open(int dir_fd, const char *name, struct source *src)
{
    source_mem(src, NULL, 0);
    src->fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (src->fd < 0)
        return -1;
    struct stat st;
    int ok = fstat(src->fd, &st) == 0;
    if (!ok || !S_ISREG(st.st_mode)) {
        int e = ok ? EINVAL : errno;
        close(src->fd);
        src->fd = -1;
        errno = e;
        return -1;
    }
    src->size = (uint64_t)st.st_size;
    return 0;
}

static void source_close(struct source *src)
{
    buf_free(&src->win);
    if (src->fd >= 0)
        close(src->fd);
    src->fd = -1;
}

/* Owner only: rename a damaged file aside (kept for a human) and log it. */
static void set_aside(struct sj *j, const char *name, const char *why, struct sj_report *r)
{
    r->damaged++;
    if (j->flags & SJ_OPEN_READONLY)
        return;
    struct buf to = BUF_INIT;
    buf_printf(&to, "damaged.%s.%lld", name, (long long)time(NULL));
    if (renameat(j->dir_fd, name, j->dir_fd, buf_cstr(&to)) == 0) {
        log_error("state: %s/%s is damaged (%s): set aside as %s; the state is rebuilt from "
                  "what is valid",
                  j->dir, name, why, buf_cstr(&to));
        fsync(j->dir_fd);
    } else {
        log_error("state: %s/%s is damaged (%s) and cannot be set aside: %s", j->dir, name, why,
                  strerror(errno));
    }
    buf_free(&to);
}

static void remove_leftover(struct sj *j, const char *name, struct sj_report *r)
{
    if (j->flags & SJ_OPEN_READONLY)
        return;
    if (unlinkat(j->dir_fd, name, 0) == 0)
        r->removed++;
}

struct replay {
    struct sj *j;
    sj_replay_fn *fn;
    void *arg;
    struct sj_report *r;
    struct source *src; /* the file being parsed */
    struct buf name;
};

static int recount_records(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                           size_t len)
{
    struct replay *rp = arg;
    rp->r->records++;
    rp->r->at = rp->src->at;
    return rp->fn ? rp->fn(rp->arg, o, type, p, len) : 0;
}

/* Parse the open source; a read error is -3 (not damage). */
static int parse_file(struct replay *rp, int checkpoint, uint64_t *number, sj_replay_fn *fn,
                      size_t *valid, const char **why)
{
    rp->src->error = 0;
    int rc = parse_source(rp->src, checkpoint, number, fn, rp, valid, why);
    if (rp->src->error) {
        errno = EIO;
        return -3;
    }
    return rc;
}

/* The newest checkpoint that replays whole, read twice through a window
 * (once to check it, so a damaged one applies nothing, then to apply it);
 * older ones (and damaged ones) are dealt with as the header says. Returns
 * its number, 0 if none. */
static int replay_checkpoint(struct replay *rp, const struct listing *l, uint64_t *chosen)
{
    *chosen = 0;
    for (size_t i = l->ncp; i-- > 0;) {
        uint64_t n = l->checkpoints[i], inside;
        size_t valid;
        const char *why = NULL;
        struct source src;
        file_name(&rp->name, CHECKPOINT_PREFIX, n, "");
        if (source_open(rp->j->dir_fd, buf_cstr(&rp->name), &src) != 0)
            return errno == ENOENT ? -1 : -3; /* ENOENT: removed under a reader */
        rp->src = &src;
        int rc = parse_file(rp, 1, &inside, NULL, &valid, &why);
        if (rc == 0 && inside != n) {
            rc = -1;
            why = "checkpoint number does not match its name";
        }
        if (rc == -3) {
            source_close(&src);
            return -3;
        }
        if (rc != 0) {
            source_close(&src);
            set_aside(rp->j, buf_cstr(&rp->name), why, rp->r);
            continue;
        }
        if (rp->j->cp_fd >= 0)
            close(rp->j->cp_fd);
        rp->j->cp_fd = src.fd; /* kept open: frozen files are read back from it */
        rp->r->checkpoint = n; /* the caller may look for what belongs to it */
        rp->j->cp_number = n;
        rc = parse_file(rp, 1, &inside, recount_records, &valid, &why);
        src.fd = -1;
        source_close(&src);
        if (rc != 0) {
            errno = rc == -3 ? EIO : EBADMSG;
            return rc == -3 ? -3 : -2;
        }
        *chosen = n;
        return 0;
    }
    return 0;
}

/* Owner: cut the torn tail of the last segment (or rewrite its header). */
static int cut_torn_tail(struct sj *j, uint64_t number, size_t valid)
{
    struct buf name = BUF_INIT;
    file_name(&name, SEGMENT_PREFIX, number, "");
    int fd = openat(j->dir_fd, buf_cstr(&name), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    buf_free(&name);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (valid == 0) { /* header torn at creation: write it again */
        unsigned char h[SJ_HEADER_SIZE];
        encode_header(h, SEGMENT_MAGIC, number);
        rc = ftruncate(fd, 0) == 0 && pwrite(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) ? 0 : -1;
    } else {
        rc = ftruncate(fd, (off_t)(SJ_HEADER_SIZE + valid));
    }
    if (rc == 0)
        rc = fdatasync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int replay_segment(struct replay *rp, uint64_t n, int last)
{
    struct sj *j = rp->j;
    uint64_t inside;
    size_t valid;
    const char *why = NULL;
    struct source src;
    file_name(&rp->name, SEGMENT_PREFIX, n, "");
    if (source_open(j->dir_fd, buf_cstr(&rp->name), &src) != 0)
        return errno == ENOENT ? -1 : -3;
    rp->src = &src;
    int rc = parse_file(rp, 0, &inside, recount_records, &valid, &why);
    uint64_t size = src.size;
    source_close(&src);
    if (rc == -2 || rc == -3) {
        errno = rc == -2 ? EBADMSG : EIO;
        return rc;
    }
    if (rc == 0 && inside != n) {
        rc = -1;
        why = "segment number does not match its name";
    }
    rp->r->segments++;
    if (rc == 1 && last) {
        rp->r->torn_bytes += size - (valid ? SJ_HEADER_SIZE + valid : 0);
        if (!(j->flags & SJ_OPEN_READONLY) && cut_torn_tail(j, n, valid) != 0)
            return -3;
        j->seg_len = SJ_HEADER_SIZE + valid;
    } else if (rc != 0) {
        set_aside(j, buf_cstr(&rp->name), why, rp->r);
        j->seg_len = 0; /* not appended to: a new segment is started */
    } else {
        j->seg_len = size;
    }
    j->journal_bytes += size;
    return 0;
}

static void remove_obsolete(struct replay *rp, const struct listing *l, uint64_t cp)
{
    for (size_t i = 0; i < l->ntmp; i++)
        remove_leftover(rp->j, l->tmps[i], rp->r);
    for (size_t i = 0; i < l->ncp; i++)
        if (l->checkpoints[i] < cp) {
            file_name(&rp->name, CHECKPOINT_PREFIX, l->checkpoints[i], "");
            remove_leftover(rp->j, buf_cstr(&rp->name), rp->r);
        }
    for (size_t i = 0; i < l->nseg; i++)
        if (l->segments[i] < cp) {
            file_name(&rp->name, SEGMENT_PREFIX, l->segments[i], "");
            remove_leftover(rp->j, buf_cstr(&rp->name), rp->r);
        }
}

/* One pass over state/. 0; -1: a file vanished (read-only: retry); -2: the
 * caller refused a record; -3: an I/O error. */
static int replay_once(struct replay *rp)
{
    struct listing l;
    uint64_t cp;
    if (list_dir(rp->j->dir_fd, &l) != 0)
        return -3;
    int rc = replay_checkpoint(rp, &l, &cp);
    rp->r->checkpoint = cp;
    uint64_t top = cp;
    for (size_t i = 0; rc == 0 && i < l.nseg; i++) {
        if (l.segments[i] < cp)
            continue;
        rc = replay_segment(rp, l.segments[i], i + 1 == l.nseg);
        top = l.segments[i];
    }
    rp->j->segment = top;
    if (rc == 0)
        remove_obsolete(rp, &l, cp);
    listing_free(&l);
    return rc;
}

/* ------------------------------------------------------------- open ---- */

static int open_dir(struct sj *j, const char *state_dir, const char **why)
{
    if ((j->flags & SJ_OPEN_CREATE) && mkdir(state_dir, 0700) == 0) {
        struct buf parent = BUF_INIT; /* the new entry in queue_dir made durable */
        path_join(&parent, state_dir, "..");
        fsync_dir(buf_cstr(&parent));
        buf_free(&parent);
    }
    j->dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (j->dir_fd < 0 || fstat(j->dir_fd, &st) != 0) {
        *why = "cannot open the state directory";
        return -1;
    }
    j->dir_uid = st.st_uid;
    j->dir_gid = st.st_gid;
    if (j->flags & SJ_OPEN_READONLY)
        return 0;
    j->lock_fd = openat(j->dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
        *why = "cannot open the state lock";
        return -1;
    }
    adopt(j, j->lock_fd);
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        *why = errno == EWOULDBLOCK ? "the state is owned by another process (a running router)"
                                    : "cannot lock the state";
        return -1;
    }
    return 0;
}

/* Create segment n (header, fdatasync, fsync of state/); it becomes the
 * one appended to. */
static int start_segment(struct sj *j, uint64_t n)
{
    struct buf name = BUF_INIT;
    unsigned char h[SJ_HEADER_SIZE];
    file_name(&name, SEGMENT_PREFIX, n, "");
    encode_header(h, SEGMENT_MAGIC, n);
    int fd = openat(j->dir_fd, buf_cstr(&name),
                    O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    buf_free(&name);
    if (fd < 0)
        return -1;
    adopt(j, fd);
    if (write_all(fd, h, sizeof(h)) != 0 || fdatasync(fd) != 0 || fsync(j->dir_fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    j->syncs += 2;
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    j->seg_fd = fd;
    j->segment = n;
    j->seg_len = SJ_HEADER_SIZE;
    j->journal_bytes += SJ_HEADER_SIZE;
    return 0;
}

static int open_append(struct sj *j)
{
    if (j->segment == 0 || j->seg_len == 0)
        return start_segment(j, j->segment + 1);
    struct buf name = BUF_INIT;
    file_name(&name, SEGMENT_PREFIX, j->segment, "");
    j->seg_fd = openat(j->dir_fd, buf_cstr(&name), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    buf_free(&name);
    return j->seg_fd >= 0 ? 0 : -1;
}

static int replay_all(struct sj *j, sj_replay_fn *fn, void *arg, struct sj_report *r,
                      const char **why)
{
    struct replay rp = {j, fn, arg, r, NULL, BUF_INIT};
    memset(r, 0, sizeof(*r));
    int rc = replay_once(&rp);
    buf_free(&rp.name);
    if (rc == -1) { /* a checkpoint removed a file under a reader */
        errno = EAGAIN;
        *why = "the state changed while it was read; try again";
    } else if (rc == -2) {
        *why = "the state refused a replayed record";
    } else if (rc != 0) {
        *why = "cannot read the state";
    }
    return rc == 0 ? 0 : -1;
}

int sj_open(struct sj **out, const char *state_dir, unsigned flags, sj_replay_fn *fn, void *arg,
            struct sj_report *report, const char **why)
{
    struct sj *j = xcalloc(1, sizeof(*j));
    struct sj_report local;
    const char *dummy = NULL;
    if (!report)
        report = &local;
    if (!why)
        why = &dummy;
    *why = NULL;
    j->dir = xstrdup(state_dir);
    j->flags = flags;
    j->dir_fd = j->lock_fd = j->seg_fd = j->cp_fd = -1;
    *out = j; /* already during the replay: fn may read the checkpoint back */
    if (open_dir(j, state_dir, why) != 0 || replay_all(j, fn, arg, report, why) != 0 ||
        (!(flags & SJ_OPEN_READONLY) && open_append(j) != 0)) {
        int e = errno;
        if (!*why)
            *why = "cannot open the journal";
        *out = NULL;
        sj_close(j);
        errno = e;
        return -1;
    }
    *out = j;
    return 0;
}

void sj_close(struct sj *j)
{
    if (!j)
        return;
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    if (j->lock_fd >= 0)
        close(j->lock_fd);
    if (j->cp_fd >= 0)
        close(j->cp_fd);
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    buf_free(&j->pending);
    free(j->dir);
    free(j);
}

/* ---------------------------------------------------- group commit ---- */

uint64_t sj_add(struct sj *j, unsigned type, const void *payload, size_t len)
{
    if (len > SJ_RECORD_MAX)
        log_fatal("state: a journal record of %zu bytes (at most %u)", len, SJ_RECORD_MAX);
    if (j->pending.len == 0)
        j->pending_first = j->last + 1;
    encode_record(&j->pending, type, payload, len);
    return ++j->last;
}

/* How many whole records of pending fit in max bytes (at least one). */
static size_t chunk_end(const struct buf *pending, size_t max, uint64_t *records)
{
    size_t pos = 0;
    *records = 0;
    while (pos < pending->len) {
        size_t n = SJ_RECORD_OVERHEAD + qf_get_u32_at((unsigned char *)pending->s + pos + 1);
        if (pos > 0 && pos + n > max)
            break;
        pos += n;
        (*records)++;
    }
    return pos;
}

static int write_chunk(struct sj *j)
{
    uint64_t records;
    size_t n = chunk_end(&j->pending, SJ_FLUSH_MAX, &records);
    if (write_all(j->seg_fd, j->pending.s, n) != 0) {
        int e = errno;
        /* Cut what may have landed, so the file ends at a record boundary. */
        if (ftruncate(j->seg_fd, (off_t)j->seg_len) != 0)
            j->broken = 1;
        errno = e;
        return -1;
    }
    step(j, "append");
    if (fdatasync(j->seg_fd) != 0) {
        j->broken = 1; /* the page cache's fate is unknown: fail-stop */
        return -1;
    }
    j->syncs++;
    step(j, "commit");
    j->seg_len += n;
    j->journal_bytes += n;
    buf_consume(&j->pending, n);
    j->durable = j->pending_first + records - 1;
    j->pending_first += records;
    return 0;
}

int sj_flush(struct sj *j)
{
    if (j->broken || j->seg_fd < 0) {
        errno = j->broken ? EIO : EBADF;
        return -1;
    }
    while (j->pending.len > 0)
        if (write_chunk(j) != 0)
            return -1;
    return 0;
}

uint64_t sj_durable(const struct sj *j)
{
    return j->durable;
}

uint64_t sj_last(const struct sj *j)
{
    return j->last;
}

size_t sj_pending_bytes(const struct sj *j)
{
    return j->pending.len;
}

uint64_t sj_journal_bytes(const struct sj *j)
{
    return j->journal_bytes;
}

unsigned long sj_syncs(const struct sj *j)
{
    return j->syncs;
}

void sj_set_step_hook(struct sj *j, sj_step_hook *hook, void *arg)
{
    j->hook = hook;
    j->hook_arg = arg;
}

/* ------------------------------------------------------ checkpoint ---- */

/* Write out what is buffered. The crash point "checkpoint-write" is the
 * first time part of the checkpoint is in the file. */
static void snapshot_drain(struct sj_snapshot *s)
{
    if (s->error || s->out.len == 0)
        return;
    size_t half = s->stepped ? 0 : s->out.len / 2;
    int rc = write_all(s->fd, s->out.s, half);
    if (rc == 0 && !s->stepped) {
        s->stepped = 1;
        step(s->j, "checkpoint-write");
    }
    if (rc == 0)
        rc = write_all(s->fd, s->out.s + half, s->out.len - half);
    if (rc != 0) {
        s->error = 1;
        s->saved_errno = errno;
        return;
    }
    s->written += s->out.len;
    buf_clear(&s->out);
}

void sj_snapshot_add(struct sj_snapshot *s, unsigned type, const void *payload, size_t len)
{
    if (len > SJ_RECORD_MAX)
        log_fatal("state: a checkpoint record of %zu bytes (at most %u)", len, SJ_RECORD_MAX);
    encode_record(&s->out, type, payload, len);
    s->count++;
    if (s->out.len >= SNAPSHOT_BUFFER)
        snapshot_drain(s);
}

uint64_t sj_snapshot_offset(const struct sj_snapshot *s)
{
    return s->written + s->out.len;
}

void sj_snapshot_add_raw(struct sj_snapshot *s, const void *p, size_t len, unsigned long records)
{
    buf_add(&s->out, p, len);
    s->count += records;
    if (s->out.len >= SNAPSHOT_BUFFER)
        snapshot_drain(s);
}

uint64_t sj_snapshot_number(const struct sj_snapshot *s)
{
    return s->number;
}

uint64_t sj_checkpoint_number(const struct sj *j)
{
    return j->cp_fd >= 0 ? j->cp_number : 0;
}

uint64_t sj_checkpoint_size(const struct sj *j)
{
    struct stat st;
    return j->cp_fd >= 0 && fstat(j->cp_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int sj_file_make(const struct sj *j, const char *name)
{
    int fd = openat(j->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        adopt(j, fd);
    return fd;
}

int sj_file_open(const struct sj *j, const char *name)
{
    return openat(j->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

int sj_file_rename(const struct sj *j, const char *from, const char *to)
{
    return renameat(j->dir_fd, from, j->dir_fd, to);
}

void sj_file_remove(const struct sj *j, const char *name)
{
    unlinkat(j->dir_fd, name, 0);
}

int sj_file_list(const struct sj *j, const char *prefix, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    size_t cap = 0;
    DIR *d = fdopendir(openat(j->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            *names = xgrow(*names, &cap, *n + 1, sizeof(char *));
            (*names)[(*n)++] = xstrdup(e->d_name);
        }
    closedir(d);
    return 0;
}

void sj_step(struct sj *j, const char *name)
{
    step(j, name);
}

int sj_checkpoint_read(const struct sj *j, uint64_t off, size_t len, struct buf *out)
{
    buf_clear(out);
    buf_reserve(out, len);
    ssize_t n = j->cp_fd >= 0 ? pread(j->cp_fd, out->s, len, (off_t)off) : -1;
    if (n != (ssize_t)len) {
        if (n >= 0 || j->cp_fd < 0)
            errno = EIO;
        return -1;
    }
    out->len = len;
    return 0;
}

int sj_records_each(const unsigned char *p, size_t len, sj_replay_fn *fn, void *arg)
{
    struct source src;
    source_mem(&src, p, len);
    for (uint64_t pos = 0; pos < len;) {
        const unsigned char *rec;
        size_t n = record_at(&src, pos, &rec);
        if (n == 0 || fn(arg, SJ_FROM_CHECKPOINT, rec[0], rec + 5, n - SJ_RECORD_OVERHEAD) != 0)
            return -1;
        pos += n;
    }
    return 0;
}

/* Start checkpoint name (a new file) with its header. */
static int snapshot_start(struct sj *j, const char *name, uint64_t n, struct sj_snapshot *s)
{
    unsigned char h[SJ_HEADER_SIZE];
    memset(s, 0, sizeof(*s));
    s->j = j;
    s->number = n;
    s->fd = openat(j->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s->fd < 0)
        return -1;
    adopt(j, s->fd);
    encode_header(h, CHECKPOINT_MAGIC, n);
    buf_add(&s->out, h, sizeof(h));
    return 0;
}

/* The end record, the rest written, fdatasync, closed. */
static int snapshot_finish(struct sj_snapshot *s)
{
    struct buf count = BUF_INIT;
    qf_put_u64(&count, s->count);
    encode_record(&s->out, SJ_TYPE_END, count.s, count.len);
    buf_free(&count);
    snapshot_drain(s);
    int rc = s->error ? -1 : fdatasync(s->fd);
    int e = s->error ? s->saved_errno : errno;
    if (rc == 0)
        s->j->syncs++;
    close(s->fd);
    buf_free(&s->out);
    errno = e;
    return rc;
}

static void remove_before(struct sj *j, uint64_t n)
{
    struct listing l;
    struct buf name = BUF_INIT;
    if (list_dir(j->dir_fd, &l) != 0)
        return;
    for (size_t i = 0; i < l.nseg; i++)
        if (l.segments[i] < n) {
            file_name(&name, SEGMENT_PREFIX, l.segments[i], "");
            unlinkat(j->dir_fd, buf_cstr(&name), 0);
            step(j, "segment-remove");
        }
    for (size_t i = 0; i < l.ncp; i++)
        if (l.checkpoints[i] < n) {
            file_name(&name, CHECKPOINT_PREFIX, l.checkpoints[i], "");
            unlinkat(j->dir_fd, buf_cstr(&name), 0);
        }
    buf_free(&name);
    listing_free(&l);
}

int sj_checkpoint(struct sj *j, sj_snapshot_fn *fn, void *arg)
{
    if (sj_flush(j) != 0)
        return -1;
    uint64_t n = j->segment + 1;
    if (start_segment(j, n) != 0) {
        j->broken = 1; /* the old segment was closed: nowhere to append */
        return -1;
    }
    step(j, "segment-new");
    struct buf tmp = BUF_INIT, final = BUF_INIT;
    file_name(&tmp, CHECKPOINT_PREFIX, n, ".tmp");
    file_name(&final, CHECKPOINT_PREFIX, n, "");
    struct sj_snapshot s;
    int rc = snapshot_start(j, buf_cstr(&tmp), n, &s);
    if (rc == 0) {
        int made = fn(arg, &s);
        int e = errno;
        rc = snapshot_finish(&s);
        if (made != 0) {
            rc = -1;
            errno = e;
        }
    }
    if (rc == 0) {
        step(j, "checkpoint-synced");
        rc = renameat(j->dir_fd, buf_cstr(&tmp), j->dir_fd, buf_cstr(&final));
    }
    if (rc == 0) {
        step(j, "checkpoint-renamed");
        if ((rc = fsync(j->dir_fd)) == 0)
            j->syncs++;
    }
    int fd = rc == 0 ? openat(j->dir_fd, buf_cstr(&final), O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (rc == 0 && fd < 0)
        rc = -1; /* the new one is on disk, but the caller keeps reading the old one */
    if (rc == 0) {
        if (j->cp_fd >= 0)
            close(j->cp_fd);
        j->cp_fd = fd;
        j->cp_number = n;
        remove_before(j, n);
        j->journal_bytes = j->seg_len;
    } else {
        int e = errno;
        unlinkat(j->dir_fd, buf_cstr(&tmp), 0); /* if still there */
        errno = e;
    }
    buf_free(&tmp);
    buf_free(&final);
    return rc;
}
