/*
 * state_index — the frozen files' index beside a checkpoint (contract and
 * file layout: state_index.h). Reads go through bounded windows (pread);
 * writes through one buffer. Knows nothing of the state's meaning: it
 * stores and finds fixed-size records.
 *
 * Must never: hand out a record of an index whose CRCs or checkpoint match
 * failed, or read past the records its header counts.
 */
#include "state_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "queue_impl.h" /* crc32c, qf_put_u32/u64, qf_get_u32/u64_at */
#include "safeio.h"
#include "state_journal.h"

#define MAGIC "OHSTIDX1"
#define WINDOW (64u * 1024)
#define NO_DUE UINT64_MAX

struct sx {
    int fd;
    uint64_t number, nfiles, ndue;
    struct sx_totals tot;
    char (*fence)[QUEUE_FILE_ID_LEN]; /* the fid of record k * SX_FENCE */
    uint64_t nfence;
    uint64_t due_pos, due_first; /* the due cursor and its window */
    struct buf due_win;
};

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static uint64_t due_at(const struct sx *x)
{
    return SX_HEADER_SIZE + x->nfiles * SX_FILE_SIZE;
}

uint64_t sx_checkpoint_size(uint64_t cp_end)
{
    return cp_end + SJ_RECORD_OVERHEAD + 8; /* the end record: a u64 count */
}

/* -------------------------------------------------------------- records ---- */

static void decode_entry(const unsigned char *p, struct sx_entry *e)
{
    memcpy(e->fid, p, QUEUE_FILE_ID_LEN);
    e->fid[QUEUE_FILE_ID_LEN] = '\0';
    e->cp_off = qf_get_u64_at(p + 16);
    e->cp_len = qf_get_u32_at(p + 24);
    e->cp_nrec = qf_get_u32_at(p + 28);
    e->rcpts = qf_get_u32_at(p + 32);
    e->nmsg = qf_get_u32_at(p + 36);
    uint64_t due = qf_get_u64_at(p + 40);
    e->due = due == NO_DUE ? -1 : (int64_t)(due & INT64_MAX);
    e->counts.total = qf_get_u32_at(p + 48);
    e->counts.incoming = qf_get_u32_at(p + 52);
    e->counts.active = qf_get_u32_at(p + 56);
    e->counts.deferred = qf_get_u32_at(p + 60);
    e->counts.hold = qf_get_u32_at(p + 64);
    e->counts.oldest_arrival_us = qf_get_u64_at(p + 72);
}

static void encode_entry(struct buf *b, const struct sx_entry *e)
{
    buf_add(b, e->fid, QUEUE_FILE_ID_LEN);
    qf_put_u64(b, e->cp_off);
    qf_put_u32(b, e->cp_len);
    qf_put_u32(b, e->cp_nrec);
    qf_put_u32(b, e->rcpts);
    qf_put_u32(b, e->nmsg);
    qf_put_u64(b, e->due < 0 ? NO_DUE : (uint64_t)e->due);
    qf_put_u32(b, e->counts.total);
    qf_put_u32(b, e->counts.incoming);
    qf_put_u32(b, e->counts.active);
    qf_put_u32(b, e->counts.deferred);
    qf_put_u32(b, e->counts.hold);
    qf_put_u32(b, 0);
    qf_put_u64(b, e->counts.oldest_arrival_us);
}

/* ----------------------------------------------------------------- open ---- */

static int read_header(struct sx *x, uint64_t *cp_end, uint32_t *body_crc, const char **why)
{
    unsigned char h[SX_HEADER_SIZE];
    if (pread_all(x->fd, h, sizeof(h), 0) != 0)
        return *why = "cannot read its header", -1;
    if (memcmp(h, MAGIC, 8) != 0 || !qf_crc_ok(qf_get_u32_at(h + 124), crc32c(0, h, 124)))
        return *why = "bad header", -1;
    x->number = qf_get_u64_at(h + 8);
    *cp_end = qf_get_u64_at(h + 16);
    x->nfiles = qf_get_u64_at(h + 24);
    x->ndue = qf_get_u64_at(h + 32);
    *body_crc = qf_get_u32_at(h + 40);
    uint64_t *t[] = {&x->tot.total, &x->tot.incoming, &x->tot.active, &x->tot.deferred,
                     &x->tot.hold,  &x->tot.rcpts,    &x->tot.nmsg};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        *t[i] = qf_get_u64_at(h + 48 + 8 * i);
    if (x->nfiles > (UINT64_MAX / 2) / SX_FILE_SIZE || x->ndue > x->nfiles)
        return *why = "bad counts", -1;
    return 0;
}

/* The whole body read once through the window: its CRC checked, the
 * fence taken, the file records checked to be in order. */
static int check_body(struct sx *x, uint32_t body_crc, const char **why)
{
    uint64_t end = due_at(x) + x->ndue * SX_DUE_SIZE, pos = SX_HEADER_SIZE;
    unsigned char *win = xmalloc(WINDOW / SX_FILE_SIZE * SX_FILE_SIZE);
    uint32_t crc = 0;
    char last[QUEUE_FILE_ID_LEN] = {0};
    x->nfence = (x->nfiles + SX_FENCE - 1) / SX_FENCE;
    x->fence = xcalloc(x->nfence + 1, sizeof(*x->fence));
    int rc = 0;
    while (rc == 0 && pos < end) {
        size_t n = end - pos < WINDOW / SX_FILE_SIZE * SX_FILE_SIZE
                       ? (size_t)(end - pos)
                       : WINDOW / SX_FILE_SIZE * SX_FILE_SIZE;
        if (pread_all(x->fd, win, n, pos) != 0) {
            *why = "cannot read it";
            rc = -1;
            break;
        }
        crc = crc32c(crc, win, n);
        for (size_t off = 0; pos < due_at(x) && off + SX_FILE_SIZE <= n; off += SX_FILE_SIZE) {
            uint64_t k = (pos + off - SX_HEADER_SIZE) / SX_FILE_SIZE;
            if (k >= x->nfiles)
                break;
            if (k > 0 && memcmp(last, win + off, QUEUE_FILE_ID_LEN) >= 0) {
                *why = "file records out of order";
                rc = -1;
                break;
            }
            memcpy(last, win + off, QUEUE_FILE_ID_LEN);
            if (k % SX_FENCE == 0)
                memcpy(x->fence[k / SX_FENCE], win + off, QUEUE_FILE_ID_LEN);
        }
        pos += n;
    }
    free(win);
    if (rc == 0 && !qf_crc_ok(body_crc, crc)) {
        *why = "body checksum mismatch";
        rc = -1;
    }
    return rc;
}

int sx_open(struct sx **out, int fd, uint64_t number, uint64_t cp_size, const char **why)
{
    struct sx *x = xcalloc(1, sizeof(*x));
    x->fd = fd;
    uint64_t cp_end = 0;
    uint32_t body_crc = 0;
    struct stat st;
    int rc = read_header(x, &cp_end, &body_crc, why);
    if (rc == 0 && (x->number != number || sx_checkpoint_size(cp_end) != cp_size)) {
        *why = "it belongs to another checkpoint";
        rc = -1;
    }
    if (rc == 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                    (uint64_t)st.st_size != due_at(x) + x->ndue * SX_DUE_SIZE)) {
        *why = "its size does not match its header";
        rc = -1;
    }
    if (rc == 0)
        rc = check_body(x, body_crc, why);
    if (rc != 0) {
        sx_close(x);
        *out = NULL;
        return -1;
    }
    *out = x;
    return 0;
}

void sx_close(struct sx *x)
{
    if (!x)
        return;
    if (x->fd >= 0)
        close(x->fd);
    free(x->fence);
    buf_free(&x->due_win);
    free(x);
}

uint64_t sx_files(const struct sx *x)
{
    return x->nfiles;
}

uint64_t sx_number(const struct sx *x)
{
    return x->number;
}

const struct sx_totals *sx_totals(const struct sx *x)
{
    return &x->tot;
}

/* --------------------------------------------------------------- lookup ---- */

int sx_get(const struct sx *x, uint64_t pos, struct sx_entry *e)
{
    unsigned char p[SX_FILE_SIZE];
    if (pos >= x->nfiles || pread_all(x->fd, p, sizeof(p), SX_HEADER_SIZE + pos * SX_FILE_SIZE))
        return -1;
    decode_entry(p, e);
    return 0;
}

/* The block of SX_FENCE records where fid is or would be: its first
 * record's number and its records in block; 0 records if fid is before
 * the first one; -1 on a read error. */
static int read_block(const struct sx *x, const char *fid, unsigned char *block, uint64_t *first,
                      uint64_t *n)
{
    *first = 0;
    *n = 0;
    if (x->nfiles == 0 || memcmp(fid, x->fence[0], QUEUE_FILE_ID_LEN) < 0)
        return 0;
    uint64_t lo = 0, hi = x->nfence; /* the last fence <= fid */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (memcmp(x->fence[mid], fid, QUEUE_FILE_ID_LEN) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    *first = lo * SX_FENCE;
    *n = x->nfiles - *first < SX_FENCE ? x->nfiles - *first : SX_FENCE;
    return pread_all(x->fd, block, (size_t)*n * SX_FILE_SIZE,
                     SX_HEADER_SIZE + *first * SX_FILE_SIZE);
}

int sx_find(const struct sx *x, const char *fid, struct sx_entry *e, uint64_t *pos)
{
    unsigned char block[SX_FENCE * SX_FILE_SIZE];
    uint64_t first, n;
    if (read_block(x, fid, block, &first, &n) != 0)
        return -1;
    for (uint64_t k = 0; k < n; k++)
        if (memcmp(block + k * SX_FILE_SIZE, fid, QUEUE_FILE_ID_LEN) == 0) {
            decode_entry(block + k * SX_FILE_SIZE, e);
            if (pos)
                *pos = first + k;
            return 1;
        }
    return 0;
}

/* ------------------------------------------------------------ iteration ---- */

void sx_iter_start(struct sx_iter *it, const struct sx *x)
{
    it->x = x;
    it->pos = 0;
    it->win_first = 0;
    it->win = (struct buf)BUF_INIT;
}

int sx_iter_peek(struct sx_iter *it, struct sx_entry *e)
{
    const struct sx *x = it->x;
    if (!x || it->pos >= x->nfiles)
        return 0;
    uint64_t have = it->win.len / SX_FILE_SIZE;
    if (it->pos < it->win_first || it->pos >= it->win_first + have) {
        uint64_t n = x->nfiles - it->pos < WINDOW / SX_FILE_SIZE ? x->nfiles - it->pos
                                                                 : WINDOW / SX_FILE_SIZE;
        buf_clear(&it->win);
        buf_reserve(&it->win, (size_t)n * SX_FILE_SIZE);
        if (pread_all(x->fd, it->win.s, (size_t)n * SX_FILE_SIZE,
                      SX_HEADER_SIZE + it->pos * SX_FILE_SIZE) != 0)
            return -1;
        it->win.len = (size_t)n * SX_FILE_SIZE;
        it->win_first = it->pos;
    }
    decode_entry((const unsigned char *)it->win.s + (it->pos - it->win_first) * SX_FILE_SIZE, e);
    return 1;
}

void sx_iter_next(struct sx_iter *it)
{
    it->pos++;
}

void sx_iter_seek(struct sx_iter *it, const char *fid)
{
    unsigned char block[SX_FENCE * SX_FILE_SIZE];
    uint64_t first, n, k = 0;
    if (!it->x)
        return;
    if (read_block(it->x, fid, block, &first, &n) != 0)
        log_fatal("state: the index cannot be read: %s", strerror(errno));
    while (k < n && memcmp(block + k * SX_FILE_SIZE, fid, QUEUE_FILE_ID_LEN) < 0)
        k++;
    it->pos = first + k;
}

void sx_iter_free(struct sx_iter *it)
{
    buf_free(&it->win);
}

/* ------------------------------------------------------------------ due ---- */

int sx_due_peek(struct sx *x, int64_t *due, char fid[QUEUE_FILE_ID_LEN + 1])
{
    if (x->due_pos >= x->ndue)
        return 0;
    uint64_t have = x->due_win.len / SX_DUE_SIZE;
    if (x->due_pos < x->due_first || x->due_pos >= x->due_first + have) {
        uint64_t n = x->ndue - x->due_pos < WINDOW / SX_DUE_SIZE ? x->ndue - x->due_pos
                                                                 : WINDOW / SX_DUE_SIZE;
        buf_clear(&x->due_win);
        buf_reserve(&x->due_win, (size_t)n * SX_DUE_SIZE);
        if (pread_all(x->fd, x->due_win.s, (size_t)n * SX_DUE_SIZE,
                      due_at(x) + x->due_pos * SX_DUE_SIZE) != 0)
            return -1;
        x->due_win.len = (size_t)n * SX_DUE_SIZE;
        x->due_first = x->due_pos;
    }
    const unsigned char *p =
        (const unsigned char *)x->due_win.s + (x->due_pos - x->due_first) * SX_DUE_SIZE;
    *due = (int64_t)(qf_get_u64_at(p) & INT64_MAX);
    memcpy(fid, p + 8, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    return 1;
}

void sx_due_next(struct sx *x)
{
    if (x->due_pos < x->ndue)
        x->due_pos++;
}

void sx_due_rewind(struct sx *x)
{
    x->due_pos = 0;
}

int sx_due_passed(const struct sx *x, int64_t due, const char *fid)
{
    int64_t at;
    char cur[QUEUE_FILE_ID_LEN + 1];
    if (sx_due_peek((struct sx *)x, &at, cur) != 1)
        return 1; /* at the end (or unreadable): everything is behind */
    return due < at || (due == at && memcmp(fid, cur, QUEUE_FILE_ID_LEN) < 0);
}

/* -------------------------------------------------------------- writing ---- */

static void drain(struct sx_writer *w)
{
    if (!w->error && w->out.len && write_all(w->fd, w->out.s, w->out.len) != 0)
        w->error = errno ? errno : EIO;
    if (!w->error)
        w->crc = crc32c(w->crc, w->out.s, w->out.len);
    w->written += w->out.len;
    buf_clear(&w->out);
}

void sx_writer_begin(struct sx_writer *w, int fd)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    unsigned char zero[SX_HEADER_SIZE] = {0};
    if (write_all(fd, zero, sizeof(zero)) != 0)
        w->error = errno ? errno : EIO;
    w->written = SX_HEADER_SIZE;
}

void sx_writer_add(struct sx_writer *w, const struct sx_entry *e)
{
    encode_entry(&w->out, e);
    w->nfiles++;
    w->tot.total += e->counts.total;
    w->tot.incoming += e->counts.incoming;
    w->tot.active += e->counts.active;
    w->tot.deferred += e->counts.deferred;
    w->tot.hold += e->counts.hold;
    w->tot.rcpts += e->rcpts;
    w->tot.nmsg += e->nmsg;
    if (w->out.len >= WINDOW)
        drain(w);
}

void sx_writer_add_due(struct sx_writer *w, int64_t due, const char *fid)
{
    qf_put_u64(&w->out, (uint64_t)due);
    buf_add(&w->out, fid, QUEUE_FILE_ID_LEN);
    w->ndue++;
    if (w->out.len >= WINDOW)
        drain(w);
}

int sx_writer_finish(struct sx_writer *w, uint64_t number, uint64_t cp_end)
{
    drain(w);
    if (w->error) {
        errno = w->error;
        return -1;
    }
    struct buf h = BUF_INIT;
    buf_add(&h, MAGIC, 8);
    qf_put_u64(&h, number);
    qf_put_u64(&h, cp_end);
    qf_put_u64(&h, w->nfiles);
    qf_put_u64(&h, w->ndue);
    qf_put_u32(&h, w->crc);
    qf_put_u32(&h, 0);
    const uint64_t t[] = {w->tot.total, w->tot.incoming, w->tot.active, w->tot.deferred,
                          w->tot.hold,  w->tot.rcpts,    w->tot.nmsg};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        qf_put_u64(&h, t[i]);
    while (h.len < 124)
        buf_addc(&h, 0);
    qf_put_u32(&h, crc32c(0, h.s, 124));
    int rc = pwrite(w->fd, h.s, h.len, 0) == (ssize_t)h.len ? 0 : -1;
    buf_free(&h);
    if (rc == 0) {
        do
            rc = fdatasync(w->fd);
        while (rc != 0 && errno == EINTR);
    } else if (errno == 0) {
        errno = EIO;
    }
    return rc;
}

void sx_writer_free(struct sx_writer *w)
{
    buf_free(&w->out);
}
