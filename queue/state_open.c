/*
 * state_open — the state side's life cycle (state.h): open (lock, replay,
 * rebuild the due index, re-ask the cleaner for what a crash left undone),
 * learning the message files of incoming/ and active/ (with the one-time
 * migration of a format 1/2 file's own state log), checkpoints, close.
 *
 * Must never: read a file the state already knows, import a file's state
 * log twice (the 'T' record of a file is written once, with its migration
 * right after it, in the same group commit), or write into state/ when
 * opened read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue_impl.h"
#include "safeio.h"
#include "state_impl.h"
#include "state_record.h"

#define CHECKPOINT_MIN_BYTES (64ull * 1024 * 1024)

/* ------------------------------------------------------------ records ---- */

static void put_file_record(struct buf *p, const struct state_file *f)
{
    srec_put_str(p, f->fid, QUEUE_FILE_ID_LEN);
    buf_addc(p, (char)f->place);
    qf_put_u32(p, f->nmsg);
    for (uint32_t i = 0; i < f->nmsg; i++) {
        qf_put_u32(p, f->msg[i].nrcpt);
        qf_put_u64(p, f->msg[i].arrival_us);
        qf_put_u64(p, f->msg[i].size);
    }
}

static int msg_has_state(const struct state_msg *m)
{
    if (m->held || m->deleted || m->flags)
        return 1;
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct state_rcpt *r = &m->rcpt[k];
        if (r->state != SRCPT_PENDING || r->attempts || r->flags || r->route || r->reason)
            return 1;
    }
    return 0;
}

static void put_str_or_empty(struct buf *p, const char *s)
{
    srec_put_str(p, s, s ? strlen(s) : 0);
}

static void put_message_record(struct buf *p, const struct state_msg *m)
{
    char id[QUEUE_ID_LEN + 1];
    state_msg_id(m, id);
    srec_put_str(p, id, QUEUE_ID_LEN);
    buf_addc(p, (char)m->held);
    buf_addc(p, (char)m->deleted);
    qf_put_u32(p, m->flags);
    qf_put_u32(p, m->nrcpt);
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct state_rcpt *r = &m->rcpt[k];
        buf_addc(p, (char)r->state);
        qf_put_u32(p, r->attempts);
        qf_put_u64(p, (uint64_t)r->last_try);
        qf_put_u64(p, (uint64_t)r->next_try);
        qf_put_u32(p, r->flags);
        put_str_or_empty(p, r->reason);
        put_str_or_empty(p, r->route);
    }
}

/* A message-state record may not exceed a journal record: recipients'
 * texts are cut so that it fits (each recipient keeps its state). */
static void put_message_fitting(struct buf *p, struct state_msg *m)
{
    put_message_record(p, m);
    if (p->len <= SJ_RECORD_MAX)
        return;
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        free(m->rcpt[k].route);
        m->rcpt[k].route = NULL;
        if (m->rcpt[k].reason && strlen(m->rcpt[k].reason) > 2)
            m->rcpt[k].reason[2] = '\0';
    }
    buf_clear(p);
    put_message_record(p, m);
}

/* --------------------------------------------------------- learning ---- */

/* The recipient state a format 1/2 file's own log left (migration). */
static void import_file_log(struct state_msg *m, const struct queue_msg *qm)
{
    m->held = (uint8_t)(qm->held != 0);
    m->deleted = (uint8_t)(qm->deleted != 0);
    m->flags = qm->flags;
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct queue_rcpt *in = &qm->rcpt[k];
        struct state_rcpt *r = &m->rcpt[k];
        r->state = in->state == QRCPT_DELIVERED ? SRCPT_DELIVERED
                   : in->state == QRCPT_BOUNCED ? SRCPT_BOUNCED
                   : in->attempts > 0           ? SRCPT_DEFERRED
                                                : SRCPT_PENDING;
        r->attempts = in->attempts;
        r->flags = in->flags;
        r->last_try = in->last_try;
        r->next_try = in->next_try;
        r->reason = in->last_reason ? xstrdup(in->last_reason) : NULL;
    }
}

/* A file's records: 'T', and 'K' for each message its own log changed. */
static void file_records(struct state *s, const struct queue_file *qf, enum queue_place place,
                         int *migrated)
{
    struct state_file tmp = {0};
    memcpy(tmp.fid, qf->fid, sizeof(tmp.fid));
    tmp.place = (uint8_t)place;
    tmp.nmsg = (uint32_t)qf->nmsg;
    tmp.msg = xcalloc(qf->nmsg, sizeof(*tmp.msg));
    for (size_t i = 0; i < qf->nmsg; i++) {
        struct state_msg *m = &tmp.msg[i];
        m->file = &tmp;
        m->index = (uint16_t)i;
        m->nrcpt = (uint32_t)qf->msg[i].nrcpt;
        m->arrival_us = qf->msg[i].arrival_us;
        m->size = qf->msg[i].size;
        m->rcpt = xcalloc(m->nrcpt, sizeof(*m->rcpt));
        import_file_log(m, &qf->msg[i]);
    }
    struct buf p = BUF_INIT;
    put_file_record(&p, &tmp);
    state_record_add(s, SREC_FILE, &p);
    for (uint32_t i = 0; i < tmp.nmsg; i++) {
        struct state_msg *m = &tmp.msg[i];
        if (msg_has_state(m)) {
            buf_clear(&p);
            put_message_fitting(&p, m);
            state_record_add(s, SREC_MESSAGE, &p);
            *migrated = 1;
        }
        for (uint32_t k = 0; k < m->nrcpt; k++) {
            free(m->rcpt[k].reason);
            free(m->rcpt[k].route);
        }
        free(m->rcpt);
    }
    free(tmp.msg);
    buf_free(&p);
}

static void learn_one(struct state *s, const char *fid, long *added)
{
    struct queue_file qf;
    if (queue_load(s->q, fid, &qf) != 0) {
        if (errno == EBADMSG)
            state_need_clean(s, CLEAN_QUARANTINE, fid, "the file does not parse");
        else if (errno != ENOENT)
            log_warn("state: %s: cannot read: %s", fid, strerror(errno));
        return;
    }
    int migrated = 0;
    file_records(s, &qf, qf.place, &migrated);
    if (migrated)
        log_info("state: %s: its own state log (format %d) imported into the journal", fid,
                 qf.version);
    struct state_file *f = state_file_find(s, fid);
    if (f) /* TAKE if in incoming/; a migrated file may be finished already */
        state_ensure_clean_needs(s, f);
    *added += (long)qf.nmsg;
    queue_file_free(&qf);
}

/* Learning a large queue (a first start, a lost state/) holds what it
 * learns until a checkpoint lets it freeze: one is written whenever the
 * recipients in memory pass twice the window (state_maybe_checkpoint), so
 * the window bounds the learning too. */
static void bound_learning(struct state *s)
{
    if (state_maybe_checkpoint(s, 0) < 0)
        log_warn("state: a checkpoint while learning failed: %s", strerror(errno));
}

/* What learning found: the files not known yet, and which of the
 * index's records were listed (a bit each, by record number). */
struct learning {
    struct buf unknown; /* file ids, QUEUE_FILE_ID_LEN + 1 bytes each */
    unsigned char *listed;
};

/* One listed file: known (a slot, marked seen; or the index's, marked
 * listed), or noted as unknown. */
static void note_listed(struct state *s, enum queue_place place, const char *fid,
                        struct learning *l)
{
    struct file_slot *fs = state_slot_find(s, fid);
    if (fs) {
        fs->seen = s->pass;
        return;
    }
    if (place == QUEUE_ACTIVE && s->index && !state_index_superseded(s, fid)) {
        struct sx_entry e;
        uint64_t pos;
        int in = sx_find(s->index, fid, &e, &pos);
        if (in < 0)
            log_fatal("state: the index cannot be read: %s", strerror(errno));
        if (in == 1) {
            l->listed[pos / 8] |= (unsigned char)(1u << (pos % 8));
            return;
        }
    }
    buf_add(&l->unknown, fid, QUEUE_FILE_ID_LEN + 1);
}

/* A place listed a bucket at a time: one bucket's names in memory. */
static int list_place(struct state *s, enum queue_place place, struct learning *l)
{
    for (unsigned b = 0; b < QUEUE_BUCKETS; b++) {
        char **fids;
        size_t n;
        if (queue_list_bucket(s->q, place, b, &fids, &n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            note_listed(s, place, fids[i], l);
        queue_ids_free(fids, n);
    }
    return 0;
}

static void record_gone(struct state *s, const char *fid)
{
    log_warn("state: %s: the file is gone from the queue; its messages are forgotten", fid);
    struct buf p = BUF_INIT;
    srec_put_clean(&p, CLEAN_REMOVE, fid, NULL, 1, ENOENT);
    state_record_add(s, SREC_CLEAN_DONE, &p);
    buf_free(&p);
}

/* Files the state knows that are in neither place any more (removed by
 * hand, or the state outlived them): recorded as gone. Slots first, then
 * the index's records that no slot supersedes and that were not listed. */
static void forget_unlisted(struct state *s, const struct learning *l)
{
    for (size_t i = s->nfiles; i-- > 0;) {
        struct state_file *f = &s->files[i]->f;
        if (s->files[i]->seen == s->pass || f->removing)
            continue;
        record_gone(s, f->fid);
    }
    struct buf gone = BUF_INIT;
    struct sx_iter it;
    struct sx_entry e;
    int in;
    sx_iter_start(&it, s->index);
    while ((in = sx_iter_peek(&it, &e)) == 1) {
        if (!(l->listed[it.pos / 8] & (1u << (it.pos % 8))) && !state_index_superseded(s, e.fid))
            buf_add(&gone, e.fid, QUEUE_FILE_ID_LEN + 1);
        sx_iter_next(&it);
    }
    if (in < 0)
        log_fatal("state: the index cannot be read: %s", strerror(errno));
    sx_iter_free(&it);
    for (size_t at = 0; at < gone.len; at += QUEUE_FILE_ID_LEN + 1)
        record_gone(s, gone.s + at); /* each read back (thawed) and forgotten */
    buf_free(&gone);
}

static int by_fid(const void *a, const void *b)
{
    return memcmp(a, b, QUEUE_FILE_ID_LEN);
}

/* The unknown files learned in file id order (= arrival: new files come
 * after every known one, so the slots' array grows at its end). */
static void learn_unknown(struct state *s, struct learning *l, long *added)
{
    size_t n = l->unknown.len / (QUEUE_FILE_ID_LEN + 1);
    if (n > 1)
        qsort(l->unknown.s, n, QUEUE_FILE_ID_LEN + 1, by_fid);
    for (size_t i = 0; i < n; i++) {
        const char *fid = l->unknown.s + i * (QUEUE_FILE_ID_LEN + 1);
        if (i > 0 && by_fid(fid - (QUEUE_FILE_ID_LEN + 1), fid) == 0)
            continue; /* named twice (state_learn_named) */
        learn_one(s, fid, added);
        struct file_slot *fs = state_slot_find(s, fid);
        if (fs)
            fs->seen = s->pass;
        bound_learning(s);
    }
}

/* A learning pass of the owner: 0, or -1 (EROFS) for a reader. */
static int learning_begin(struct state *s)
{
    if (s->readonly)
        return errno = EROFS, -1;
    s->pass++;
    return 0;
}

long state_learn_named(struct state *s, const char *fids, size_t n)
{
    if (learning_begin(s) != 0)
        return -1;
    long added = 0;
    struct learning l = {BUF_INIT, NULL};
    for (size_t i = 0; i < n; i++) {
        const char *fid = fids + i * (QUEUE_FILE_ID_LEN + 1);
        if (queue_file_id_valid(fid) && !state_knows_file(s, fid))
            buf_add(&l.unknown, fid, QUEUE_FILE_ID_LEN + 1);
    }
    learn_unknown(s, &l, &added);
    buf_free(&l.unknown);
    return added;
}

long state_learn_files(struct state *s)
{
    if (learning_begin(s) != 0)
        return -1;
    long added = 0;
    struct learning l = {BUF_INIT, NULL};
    l.listed = xcalloc(s->index ? sx_files(s->index) / 8 + 1 : 1, 1);
    int rc = list_place(s, QUEUE_INCOMING, &l) == 0 && list_place(s, QUEUE_ACTIVE, &l) == 0;
    if (rc) {
        forget_unlisted(s, &l);
        learn_unknown(s, &l, &added);
    }
    buf_free(&l.unknown);
    free(l.listed);
    return rc ? added : -1;
}

/* ------------------------------------------------------- checkpoint ---- */

struct due_key {
    int64_t due;
    char fid[QUEUE_FILE_ID_LEN + 1];
};

struct snapshot_ctx {
    struct state *s;
    uint64_t bytes;
    struct cp_place *places; /* per file (s->files order): where its records land */
    /* The new index (state_index.h), written beside the checkpoint. */
    struct sx_writer w;
    int idx_fd, index_ok;
    struct due_key *dues; /* of the slots going into it */
    size_t ndues, duecap;
    /* Records of old index files copied from the old checkpoint, gathered
     * into runs (they lie next to each other there). */
    uint64_t run_off, run_len;
    unsigned long run_nrec;
};

static void snapshot_add(struct snapshot_ctx *c, struct sj_snapshot *snap, unsigned type,
                         const struct buf *p)
{
    sj_snapshot_add(snap, type, p->s, p->len);
    c->bytes += p->len + SJ_RECORD_OVERHEAD;
}

/* Copy len bytes of the old checkpoint at off into the new one. */
static int copy_old(struct snapshot_ctx *c, struct sj_snapshot *snap, uint64_t off, uint64_t len,
                    unsigned long nrec)
{
    struct buf p = BUF_INIT;
    int rc = len ? sj_checkpoint_read(c->s->j, off, (size_t)len, &p) : 0;
    if (rc == 0 && len)
        sj_snapshot_add_raw(snap, p.s, p.len, nrec);
    c->bytes += len;
    buf_free(&p);
    return rc;
}

static int run_flush(struct snapshot_ctx *c, struct sj_snapshot *snap)
{
    int rc = copy_old(c, snap, c->run_off, c->run_len, c->run_nrec);
    c->run_len = 0;
    c->run_nrec = 0;
    return rc;
}

/* An old index file's records go out unchanged (in a run); its record in
 * the new index points at where they land. */
static int snapshot_indexed(struct snapshot_ctx *c, struct sj_snapshot *snap, struct sx_entry *e)
{
    if (c->run_len && (c->run_off + c->run_len != e->cp_off || c->run_len > 256 * 1024) &&
        run_flush(c, snap) != 0)
        return -1;
    if (c->run_len == 0)
        c->run_off = e->cp_off;
    uint64_t at = sj_snapshot_offset(snap) + c->run_len;
    c->run_len += e->cp_len;
    c->run_nrec += e->cp_nrec;
    e->cp_off = at;
    sx_writer_add(&c->w, e);
    return 0;
}

/* A file's records, contiguous (a frozen file's are copied from the old
 * checkpoint); where they land is noted in *to for the new one. */
static int snapshot_file(struct snapshot_ctx *c, struct sj_snapshot *snap, struct file_slot *fs,
                         struct cp_place *to)
{
    struct state_file *f = &fs->f;
    struct buf p = BUF_INIT;
    to->off = sj_snapshot_offset(snap);
    if (fs->cold) {
        to->len = fs->cp_len;
        to->nrec = fs->cp_nrec;
        return copy_old(c, snap, fs->cp_off, fs->cp_len, fs->cp_nrec);
    }
    put_file_record(&p, f);
    snapshot_add(c, snap, SREC_FILE, &p);
    to->nrec = 1;
    for (uint32_t i = 0; i < f->nmsg; i++) {
        if (!msg_has_state(&f->msg[i]))
            continue;
        buf_clear(&p);
        put_message_fitting(&p, &f->msg[i]);
        snapshot_add(c, snap, SREC_MESSAGE, &p);
        to->nrec++;
    }
    to->len = (uint32_t)(sj_snapshot_offset(snap) - to->off);
    buf_free(&p);
    return 0;
}

/* A slot written: into the new index too if it is to be frozen. */
static void index_slot(struct snapshot_ctx *c, const struct file_slot *fs,
                       const struct cp_place *at)
{
    if (!fs->will_freeze)
        return;
    struct sx_entry e;
    state_slot_entry(fs, at, &e);
    sx_writer_add(&c->w, &e);
    if (e.due < 0)
        return;
    c->dues = xgrow(c->dues, &c->duecap, c->ndues + 1, sizeof(c->dues[0]));
    c->dues[c->ndues].due = e.due;
    memcpy(c->dues[c->ndues].fid, e.fid, sizeof(e.fid));
    c->ndues++;
}

static int by_due_key(const void *a, const void *b)
{
    const struct due_key *x = a, *y = b;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    return strcmp(x->fid, y->fid);
}

/* Every file in file id order: the slots, and the old index's files that
 * no slot supersedes. */
static int snapshot_files(struct snapshot_ctx *c, struct sj_snapshot *snap)
{
    struct state *s = c->s;
    struct sx_iter it;
    struct sx_entry e;
    size_t i = 0;
    int rc = 0, in;
    sx_iter_start(&it, s->index);
    while (rc == 0 && ((in = sx_iter_peek(&it, &e)) != 0 || i < s->nfiles)) {
        if (in < 0) {
            rc = -1;
        } else if (in == 1 && state_index_superseded(s, e.fid)) {
            sx_iter_next(&it);
        } else if (in == 1 && (i == s->nfiles || strcmp(e.fid, s->files[i]->f.fid) < 0)) {
            rc = snapshot_indexed(c, snap, &e);
            sx_iter_next(&it);
        } else if ((rc = run_flush(c, snap)) == 0 &&
                   (rc = snapshot_file(c, snap, s->files[i], &c->places[i])) == 0) {
            index_slot(c, s->files[i], &c->places[i]);
            i++;
        }
    }
    sx_iter_free(&it);
    return rc == 0 ? run_flush(c, snap) : rc;
}

/* The new index's due records: the old index's (not superseded) merged
 * with the slots', both in (due, fid) order. */
static void index_dues(struct snapshot_ctx *c)
{
    struct state *s = c->s;
    if (c->ndues) /* qsort's base may not be NULL, even for no element */
        qsort(c->dues, c->ndues, sizeof(c->dues[0]), by_due_key);
    size_t k = 0;
    struct due_key old;
    int in = 0;
    if (s->index)
        sx_due_rewind(s->index);
    for (;;) {
        while (s->index && (in = sx_due_peek(s->index, &old.due, old.fid)) == 1 &&
               state_index_superseded(s, old.fid))
            sx_due_next(s->index);
        if (in < 0)
            c->w.error = EIO;
        int has_old = s->index && in == 1;
        if (!has_old && k == c->ndues)
            break;
        if (has_old && (k == c->ndues || by_due_key(&old, &c->dues[k]) < 0)) {
            sx_writer_add_due(&c->w, old.due, old.fid);
            sx_due_next(s->index);
        } else {
            sx_writer_add_due(&c->w, c->dues[k].due, c->dues[k].fid);
            k++;
        }
    }
    if (s->index)
        sx_due_rewind(s->index); /* a failed checkpoint goes on with the old index */
}

/* The index file written and renamed into place before the checkpoint's
 * own rename: a crash leaves either the old pair or the new index beside
 * the old checkpoint (not used: its number does not match). */
static void index_finish(struct snapshot_ctx *c, struct sj_snapshot *snap)
{
    struct buf tmp = BUF_INIT, final = BUF_INIT;
    state_index_name(&tmp, sj_snapshot_number(snap), 1);
    state_index_name(&final, sj_snapshot_number(snap), 0);
    index_dues(c);
    if (sx_writer_finish(&c->w, sj_snapshot_number(snap), sj_snapshot_offset(snap)) == 0) {
        sj_step(c->s->j, "index-synced");
        c->index_ok = sj_file_rename(c->s->j, buf_cstr(&tmp), buf_cstr(&final)) == 0;
    }
    if (c->index_ok)
        sj_step(c->s->j, "index-renamed");
    else
        log_warn("state: cannot write %s: %s (the checkpoint is written without it)",
                 buf_cstr(&final), strerror(errno));
    if (!c->index_ok)
        sj_file_remove(c->s->j, buf_cstr(&tmp));
    buf_free(&tmp);
    buf_free(&final);
}

/* The whole state: every file, then the cleaner requests not yet done;
 * the index of the files to be frozen beside it. */
static int snapshot_all(void *arg, struct sj_snapshot *snap)
{
    struct snapshot_ctx *c = arg;
    struct state *s = c->s;
    struct buf p = BUF_INIT, name = BUF_INIT;
    state_index_name(&name, sj_snapshot_number(snap), 1);
    c->idx_fd = sj_file_make(s->j, buf_cstr(&name));
    buf_free(&name);
    sx_writer_begin(&c->w, c->idx_fd);
    if (c->idx_fd < 0)
        c->w.error = errno;
    if (snapshot_files(c, snap) != 0) {
        buf_free(&p);
        return -1;
    }
    for (size_t i = 0; i < s->ncreq; i++) {
        if (s->creq[i].done)
            continue;
        buf_clear(&p);
        srec_put_clean(&p, s->creq[i].r.kind, s->creq[i].r.id, s->creq[i].r.why, 0, 0);
        snapshot_add(c, snap, SREC_CLEAN_NEED, &p);
    }
    buf_free(&p);
    index_finish(c, snap);
    if (!c->index_ok && s->index) {
        errno = EIO; /* its files live only in the old index: keep the old pair */
        return -1;
    }
    return 0;
}

/* The index files but the current one (leftovers of a crash, the one
 * before the last checkpoint). */
static void remove_other_indexes(struct state *s)
{
    char **names;
    size_t n;
    struct buf keep = BUF_INIT;
    if (s->index)
        state_index_name(&keep, sx_number(s->index), 0);
    if (sj_file_list(s->j, SX_PREFIX, &names, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!s->index || strcmp(names[i], buf_cstr(&keep)) != 0)
            sj_file_remove(s->j, names[i]);
        free(names[i]);
    }
    free(names);
    buf_free(&keep);
}

/* After a checkpoint with its index: open it, and the frozen files leave
 * memory; without one, they are frozen in memory (as before the index). */
static void take_new_index(struct state *s, struct snapshot_ctx *c)
{
    struct sx *x = NULL;
    const char *why = "cannot open it";
    if (c->index_ok) {
        struct buf name = BUF_INIT;
        uint64_t n = sj_checkpoint_number(s->j);
        state_index_name(&name, n, 0);
        int fd = sj_file_open(s->j, buf_cstr(&name));
        if (fd < 0 || sx_open(&x, fd, n, sj_checkpoint_size(s->j), &why) != 0)
            log_warn("state: %s cannot be used (%s): files stay in memory", buf_cstr(&name), why);
        buf_free(&name);
    }
    if (x) {
        state_index_installed(s, x);
    } else if (c->index_ok) {
        /* files that were only in the old index are now only in this one */
        log_fatal("state: the index just written cannot be read back: %s", why);
    } else {
        sx_close(s->index); /* the old one belongs to the old checkpoint */
        s->index = NULL;
        s->ngone = 0;
        for (size_t i = 0; i < s->nfiles; i++) {
            struct file_slot *fs = s->files[i];
            fs->indexed = 0;
            if (fs->will_freeze && !fs->cold && state_can_freeze(s, fs))
                state_freeze(s, fs);
            fs->will_freeze = 0;
        }
        state_heap_compact(s);
        s->hot_after_checkpoint = s->hot_rcpts;
    }
    remove_other_indexes(s);
}

int state_maybe_checkpoint(struct state *s, int force)
{
    if (s->readonly || !s->j)
        return 0;
    uint64_t limit = 2 * s->checkpoint_bytes;
    if (limit < CHECKPOINT_MIN_BYTES)
        limit = CHECKPOINT_MIN_BYTES;
    if (!force && sj_journal_bytes(s->j) < limit && !state_window_exceeded(s))
        return 0;
    state_choose_frozen(s);
    struct snapshot_ctx c;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.places = xcalloc(s->nfiles + 1, sizeof(struct cp_place));
    c.idx_fd = -1;
    int rc = sj_checkpoint(s->j, snapshot_all, &c);
    if (c.idx_fd >= 0)
        close(c.idx_fd);
    sx_writer_free(&c.w);
    free(c.dues);
    if (rc != 0) {
        for (size_t i = 0; i < s->nfiles; i++)
            s->files[i]->will_freeze = 0;
        free(c.places); /* the old checkpoint (and index) still hold every frozen file */
        return -1;
    }
    s->checkpoint_bytes = c.bytes;
    for (size_t i = 0; i < s->nfiles; i++) { /* the new checkpoint describes every file */
        struct file_slot *fs = s->files[i];
        fs->cp_off = c.places[i].off;
        fs->cp_len = c.places[i].len;
        fs->cp_nrec = c.places[i].nrec;
        fs->dirty = 0;
    }
    free(c.places);
    take_new_index(s, &c);
    return 1;
}

/* ------------------------------------------------------------- open ---- */

/* The files and messages known: in memory, and in the index (less the
 * records that slots supersede or that were forgotten). */
static void open_report(const struct state *s, struct state_open_report *rep)
{
    rep->files = s->nfiles;
    for (size_t i = 0; i < s->nfiles; i++)
        rep->messages += s->files[i]->f.nmsg;
    if (!s->index)
        return;
    rep->files += sx_files(s->index) - s->ngone;
    rep->messages += sx_totals(s->index)->nmsg;
    for (size_t i = 0; i < s->ngone; i++)
        rep->messages -= s->gone[i].nmsg;
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i]->indexed) {
            rep->files--;
            rep->messages -= s->files[i]->f.nmsg;
        }
}

int state_open(struct state **out, struct queue *q, unsigned flags, struct state_open_report *rep,
               const char **why)
{
    struct state_open_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof(*rep));
    struct state *s = xcalloc(1, sizeof(*s));
    s->q = q;
    s->readonly = (flags & STATE_OPEN_READONLY) != 0;
    s->active_limit = STATE_ACTIVE_LIMIT_DEFAULT;
    s->replay_at = &rep->journal;
    struct buf dir = BUF_INIT;
    path_join(&dir, queue_path(q), "state");
    s->replaying = 1;
    int rc = sj_open(&s->j, buf_cstr(&dir), s->readonly ? SJ_OPEN_READONLY : SJ_OPEN_CREATE,
                     state_replay_record, s, &rep->journal, why);
    if (rc == 0)
        state_replay_end(s);
    s->replaying = 0;
    s->open_done = 1;
    buf_free(&dir);
    if (rc != 0 && s->readonly && errno == ENOENT) {
        rc = 0; /* no state yet: nothing was ever taken */
        s->j = NULL;
    }
    if (rc != 0) {
        int e = errno;
        state_free_all(s);
        free(s);
        errno = e;
        *out = NULL;
        return -1;
    }
    open_report(s, rep);
    if (!s->readonly) {
        state_index_all(s);
        size_t frozen = 0;
        for (size_t i = 0; i < s->nfiles; i++)
            if (!s->files[i]->cold) /* a frozen file has no work pending */
                state_ensure_clean_needs(s, &s->files[i]->f);
            else
                frozen++;
        s->checkpoint_bytes = sj_journal_bytes(s->j);
        remove_other_indexes(s);
        /* What is valid becomes the new base; a checkpoint read whole (no
         * index: written before it, or its index lost) gets one, so that
         * its frozen files leave memory. */
        if ((rep->journal.damaged || (!s->index && frozen > 0)) && state_flush(s) == 0)
            state_maybe_checkpoint(s, 1);
    }
    *out = s;
    return 0;
}

/* A new state/ given to the account: made, handed over, and only then
 * made durable in queue_dir; on a failure removed again. */
static int make_dir_for(const char *dir, const struct passwd *pw, const char **why)
{
    if (mkdir(dir, 0700) != 0) {
        *why = "cannot make the state directory";
        return errno == EEXIST ? 0 : -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* 0700 exactly: not the set-gid bit queue_dir's 2755 hands down. */
    if (fd < 0 || fchown(fd, pw->pw_uid, pw->pw_gid) != 0 || fchmod(fd, 0700) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        rmdir(dir);
        *why = "cannot give the new state directory to the router's account";
        errno = e;
        return -1;
    }
    close(fd);
    struct buf parent = BUF_INIT;
    path_join(&parent, dir, "..");
    int rc = fsync_dir(buf_cstr(&parent));
    buf_free(&parent);
    if (rc != 0)
        *why = "cannot make the new state directory durable";
    return rc == 0 ? 1 : -1;
}

int state_dir_give(struct queue *q, const char *account, const char **why)
{
    struct buf dir = BUF_INIT;
    struct stat st;
    int rc = 0;
    path_join(&dir, queue_path(q), "state");
    if (geteuid() == 0 && account && lstat(buf_cstr(&dir), &st) != 0 && errno == ENOENT) {
        errno = 0;
        struct passwd *pw = getpwnam(account);
        if (pw)
            rc = make_dir_for(buf_cstr(&dir), pw, why);
        else if (errno != 0 && errno != ENOENT && errno != ESRCH) {
            *why = "cannot look up the router's account";
            rc = -1;
        }
    }
    buf_free(&dir);
    return rc;
}

void state_close(struct state *s)
{
    if (!s)
        return;
    sj_close(s->j);
    state_free_all(s);
    free(s);
}

struct state *state_new_detached(void)
{
    struct state *s = xcalloc(1, sizeof(*s));
    s->replaying = 1; /* no due index, no journal: records are only applied */
    return s;
}
