/*
 * state_cold — the active window of the state side (state.h; design in
 * docs/INTERNALS.md "The state side"): a file whose records in the current
 * checkpoint describe it exactly (not changed since), that is in active/,
 * has no message in flight and no cleaner work pending, may be FROZEN: its
 * messages are freed and it keeps its counts, its recipients' number, its
 * earliest due time (one due-heap entry) and the place of its records in
 * the checkpoint. Anything that touches one of its messages THAWS it: its
 * records are read back (pread on the checkpoint the journal keeps open)
 * and applied. The replay freezes every file it reads from the checkpoint
 * as soon as the next one starts; after each checkpoint the files beyond
 * the first queue_active_limit recipients (by earliest due time) are frozen.
 *
 * Must never: freeze a file whose checkpoint records are stale, or lose a
 * frozen file's state (a thaw that cannot read it back is fatal: the
 * restart replays the checkpoint, which holds it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "state_impl.h"
#include "state_record.h"

int state_can_freeze(const struct state *s, const struct file_slot *fs)
{
    const struct state_file *f = &fs->f;
    if (!s->j || fs->cold || fs->dirty || fs->forgotten || fs->cp_off == 0 || !f->msg ||
        f->place != QUEUE_ACTIVE || f->removing || fs->creq_refs > 0)
        return 0;
    for (uint32_t i = 0; i < f->nmsg; i++)
        if (f->msg[i].in_flight)
            return 0;
    return 1;
}

void state_freeze(struct state *s, struct file_slot *fs)
{
    struct state_file *f = &fs->f;
    struct state_counts c;
    state_count_msgs(f, &c);
    fs->cold_counts =
        (struct file_counts){(uint32_t)c.total,    (uint32_t)c.incoming, (uint32_t)c.active,
                             (uint32_t)c.deferred, (uint32_t)c.hold,     c.oldest_arrival_us};
    fs->cold_due = -1;
    for (uint32_t i = 0; i < f->nmsg; i++) {
        int64_t when = state_msg_due(&f->msg[i]);
        if (when >= 0 && (fs->cold_due < 0 || when < fs->cold_due))
            fs->cold_due = when;
    }
    state_free_msgs(f);
    fs->cold = 1;
    s->hot_rcpts -= fs->rcpts;
    fs->gen++; /* its messages' due entries are stale now */
    if (s->open_done && !s->readonly && fs->cold_due >= 0)
        state_push_due(s, fs->cold_due, fs, NULL);
}

struct thaw {
    struct state *s;
    struct file_slot *fs;
    int bad;
};

static int thaw_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                       size_t len)
{
    struct thaw *t = arg;
    if (type == SREC_FILE) {
        struct srec r;
        if (srec_decode(type, p, len, &r) != 0 || strcmp(r.id, t->fs->f.fid) != 0 || t->fs->f.msg) {
            if (r.msgs)
                srec_free(&r);
            return -1;
        }
        state_init_msgs(&t->fs->f, &r);
        t->fs->cold = 0;
        srec_free(&r);
        return 0;
    }
    if (type != SREC_MESSAGE || !t->fs->f.msg)
        return -1;
    return state_apply_payload(t->s, type, p, len, 0);
}

void state_thaw(struct state *s, struct file_slot *fs)
{
    struct buf data = BUF_INIT;
    struct thaw t = {s, fs, 0};
    int was = s->applying_checkpoint;
    s->applying_checkpoint = 1; /* its own records: it stays clean */
    if (sj_checkpoint_read(s->j, fs->cp_off, fs->cp_len, &data) != 0 ||
        sj_records_each((const unsigned char *)data.s, data.len, thaw_record, &t) != 0 || fs->cold)
        log_fatal("state: %s: cannot read its state back from the checkpoint: %s", fs->f.fid,
                  strerror(errno));
    s->applying_checkpoint = was;
    s->hot_rcpts += fs->rcpts;
    buf_free(&data);
    if (s->open_done && !s->readonly)
        state_index_file(s, &fs->f);
}

/* A file of the index read back unchanged leaves memory again: its index
 * record describes it. Only if the due cursor has not passed that record
 * (else nothing would schedule it): then it stays, frozen in memory. */
void state_file_done(struct state *s, const char *fid)
{
    struct file_slot *fs = state_slot_find(s, fid);
    if (!fs)
        return;
    int lent = fs->lent;
    fs->lent = 0;
    if (!lent || !state_can_freeze(s, fs))
        return;
    if (fs->indexed && s->index &&
        (fs->idx_due < 0 || !sx_due_passed(s->index, fs->idx_due, fs->f.fid)))
        state_drop_slot(s, fs);
    else
        state_freeze(s, fs);
}

/* ------------------------------------------------------------ replay ---- */

static void end_checkpoint_file(struct state *s)
{
    if (s->last_cp_file && state_can_freeze(s, s->last_cp_file))
        state_freeze(s, s->last_cp_file);
    s->last_cp_file = NULL;
}

void state_replay_note(struct state *s, enum sj_origin o, unsigned type, const char *id, size_t len,
                       int after)
{
    int own = o == SJ_FROM_CHECKPOINT && (type == SREC_FILE || type == SREC_MESSAGE);
    if (!after) {
        if (!own || type == SREC_FILE)
            end_checkpoint_file(s);
        return;
    }
    if (type == SREC_FILE) {
        struct file_slot *fs = state_slot_find(s, id);
        if (!fs)
            return;
        fs->cp_off = s->replay_at->at;
        fs->cp_len = (uint32_t)(len + SJ_RECORD_OVERHEAD);
        fs->cp_nrec = 1;
        s->last_cp_file = fs;
    } else if (s->last_cp_file) {
        s->last_cp_file->cp_len += (uint32_t)(len + SJ_RECORD_OVERHEAD);
        s->last_cp_file->cp_nrec++;
    }
}

void state_replay_end(struct state *s)
{
    end_checkpoint_file(s);
    sx_iter_free(&s->replay_it);
}

void state_index_name(struct buf *out, uint64_t n, int tmp)
{
    buf_clear(out);
    buf_printf(out, "%s%016llx%s", SX_PREFIX, (unsigned long long)n, tmp ? ".tmp" : "");
}

/* The index of the checkpoint the replay reads, if it has a good one. */
static void open_index(struct state *s)
{
    struct buf name = BUF_INIT;
    const char *why = "cannot open it";
    state_index_name(&name, s->replay_at->checkpoint, 0);
    int fd = sj_file_open(s->j, buf_cstr(&name));
    if (fd >= 0 &&
        sx_open(&s->index, fd, s->replay_at->checkpoint, sj_checkpoint_size(s->j), &why) == 0)
        sx_iter_start(&s->replay_it, s->index);
    else if (fd >= 0 || errno != ENOENT)
        log_warn("state: %s not used (%s): the checkpoint is read whole", buf_cstr(&name), why);
    buf_free(&name);
}

int state_replay_skip(struct state *s, enum sj_origin o, unsigned type, const char *id)
{
    if (o != SJ_FROM_CHECKPOINT) {
        s->replay_skipping = 0;
        return 0;
    }
    if (!s->index_tried) {
        s->index_tried = 1;
        open_index(s);
    }
    if (!s->index)
        return 0;
    if (type == SREC_MESSAGE)
        return s->replay_skipping;
    s->replay_skipping = 0;
    if (type != SREC_FILE)
        return 0;
    struct sx_entry e;
    int in; /* the checkpoint and the index are both in file id order */
    while ((in = sx_iter_peek(&s->replay_it, &e)) == 1 && strcmp(e.fid, id) < 0)
        sx_iter_next(&s->replay_it);
    if (in < 0)
        log_fatal("state: the index cannot be read: %s", strerror(errno));
    if (in == 1 && strcmp(e.fid, id) == 0) {
        sx_iter_next(&s->replay_it);
        s->replay_skipping = 1;
    }
    return s->replay_skipping;
}

/* ------------------------------------------------------------ window ---- */

int64_t state_file_due(const struct file_slot *fs)
{
    if (fs->cold)
        return fs->cold_due;
    int64_t due = -1;
    for (uint32_t i = 0; i < fs->f.nmsg; i++) {
        int64_t when = state_msg_due(&fs->f.msg[i]);
        if (when >= 0 && (due < 0 || when < due))
            due = when;
    }
    return due;
}

void state_slot_entry(const struct file_slot *fs, const struct cp_place *at, struct sx_entry *e)
{
    memset(e, 0, sizeof(*e));
    memcpy(e->fid, fs->f.fid, sizeof(e->fid));
    e->cp_off = at->off;
    e->cp_len = at->len;
    e->cp_nrec = at->nrec;
    e->rcpts = fs->rcpts;
    e->nmsg = fs->f.nmsg;
    e->due = state_file_due(fs);
    if (fs->cold) {
        e->counts = fs->cold_counts;
        return;
    }
    struct state_counts c;
    state_count_msgs(&fs->f, &c);
    e->counts =
        (struct file_counts){(uint32_t)c.total,    (uint32_t)c.incoming, (uint32_t)c.active,
                             (uint32_t)c.deferred, (uint32_t)c.hold,     c.oldest_arrival_us};
}

static int64_t file_due(const struct file_slot *fs)
{
    int64_t due = -1;
    for (uint32_t i = 0; i < fs->f.nmsg; i++) {
        int64_t when = state_msg_due(&fs->f.msg[i]);
        if (when >= 0 && (due < 0 || when < due))
            due = when;
    }
    return due < 0 ? INT64_MAX : due;
}

struct ranked {
    int64_t due;
    struct file_slot *fs;
};

static int by_due(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    return x->due < y->due ? -1 : x->due > y->due;
}

/* What a checkpoint may take into its index: as state_can_freeze, except
 * that the records it writes make any file clean. */
static int may_go_to_index(const struct file_slot *fs)
{
    const struct state_file *f = &fs->f;
    if (fs->cold)
        return 1;
    if (fs->forgotten || !f->msg || f->place != QUEUE_ACTIVE || f->removing || fs->creq_refs > 0)
        return 0;
    for (uint32_t i = 0; i < f->nmsg; i++)
        if (f->msg[i].in_flight)
            return 0;
    return 1;
}

void state_choose_frozen(struct state *s)
{
    struct ranked *r = xcalloc(s->nfiles + 1, sizeof(*r));
    size_t n = 0;
    unsigned long hot = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        struct file_slot *fs = s->files[i];
        fs->will_freeze = (uint8_t)fs->cold; /* what is frozen goes in */
        if (fs->cold)
            continue;
        if (may_go_to_index(fs))
            r[n++] = (struct ranked){file_due(fs), fs};
        else
            hot += fs->rcpts; /* in memory whatever happens */
    }
    qsort(r, n, sizeof(*r), by_due);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = r[i].fs->rcpts;
        if (hot + k <= s->active_limit)
            hot += k; /* due soonest: kept */
        else
            r[i].fs->will_freeze = 1;
    }
    free(r);
}

void state_index_installed(struct state *s, struct sx *index)
{
    sx_close(s->index);
    s->index = index;
    s->ngone = 0;
    for (size_t i = s->nfiles; i-- > 0;) {
        struct file_slot *fs = s->files[i];
        if (fs->will_freeze) {
            fs->will_freeze = 0;
            state_drop_slot(s, fs); /* its index record is its memory now */
        } else {
            fs->indexed = 0;
        }
    }
    state_heap_compact(s);
    s->hot_after_checkpoint = s->hot_rcpts;
}

unsigned long state_files_in_memory(const struct state *s)
{
    return s->nfiles;
}

unsigned long state_hot_recipients(const struct state *s)
{
    return s->hot_rcpts;
}

/* Files thawed since the last checkpoint (they came due, were touched) stay
 * in memory until a checkpoint lets them freeze again: one is due when the
 * recipients in memory pass twice the window, and at least a window more
 * than the last checkpoint left (what cannot freeze, in flight or with
 * cleaner work pending, must not make every call a checkpoint). */
int state_window_exceeded(const struct state *s)
{
    return s->hot_rcpts > 2 * s->active_limit &&
           s->hot_rcpts > s->hot_after_checkpoint + s->active_limit;
}

void state_set_active_limit(struct state *s, unsigned long limit)
{
    s->active_limit = limit > 0 ? limit : 1;
}
