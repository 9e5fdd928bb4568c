/*
 * state — the router's state side on the journal (contract: state.h;
 * records: state_record.h; design and crash table: docs/INTERNALS.md "The
 * state side").
 *
 * One code path for live changes and replay: a change is encoded as its
 * record payload, applied to memory by the same state_apply_record() the
 * replay uses, and queued in the journal. Memory: files in a pointer array
 * sorted by file id (new files arrive in id order, so inserts append), each
 * file's messages in one array, a binary min-heap of (due time, message)
 * entries checked lazily when popped (a stale entry is dropped; every change
 * that can make a message due earlier pushes a fresh one), and the list of
 * cleaner requests not yet done. A forgotten file is freed only when no
 * heap entry points at it any more (a count per file).
 *
 * Must never: hand out a cleaner request before its 'N' record is durable,
 * apply a live change that the replay would apply differently, or read a
 * message file to answer what is due.
 */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue_impl.h"
#include "safeio.h"
#include "state_impl.h"
#include "state_record.h"

static struct file_slot *slot_of(struct state_file *f)
{
    return (struct file_slot *)f;
}

/* ------------------------------------------------------------ files ---- */

static size_t file_pos(const struct state *s, const char *fid, int *found)
{
    size_t lo = 0, hi = s->nfiles;
    *found = 0;
    if (hi > 0 && strcmp(s->files[hi - 1]->f.fid, fid) < 0)
        return hi; /* the common case: a new file after every known one */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->files[mid]->f.fid, fid);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct file_slot *state_slot_find(const struct state *s, const char *fid)
{
    int found;
    size_t pos = file_pos(s, fid, &found);
    return found ? s->files[pos] : NULL;
}

static size_t gone_pos(const struct state *s, const char *fid, int *found)
{
    size_t lo = 0, hi = s->ngone;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->gone[mid].fid, fid);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int state_index_superseded(const struct state *s, const char *fid)
{
    int found;
    gone_pos(s, fid, &found);
    return found || state_slot_find(s, fid) != NULL;
}

/* An index file's record superseded by its removal. */
static void note_gone(struct state *s, const struct file_slot *fs)
{
    int found;
    size_t pos = gone_pos(s, fs->f.fid, &found);
    if (found)
        return;
    s->gone = xgrow(s->gone, &s->gonecap, s->ngone + 1, sizeof(s->gone[0]));
    memmove(&s->gone[pos + 1], &s->gone[pos], (s->ngone - pos) * sizeof(s->gone[0]));
    memcpy(s->gone[pos].fid, fs->f.fid, sizeof(s->gone[pos].fid));
    s->gone[pos].nmsg = fs->f.nmsg;
    s->gone[pos].counts = fs->idx_counts;
    s->ngone++;
}

static void insert_slot(struct state *s, size_t pos, struct file_slot *fs)
{
    s->files = xgrow(s->files, &s->filecap, s->nfiles + 1, sizeof(s->files[0]));
    memmove(&s->files[pos + 1], &s->files[pos], (s->nfiles - pos) * sizeof(s->files[0]));
    s->files[pos] = fs;
    s->nfiles++;
}

/* A file of the index, into memory as a frozen slot (its state is its
 * records in the checkpoint, read back by the thaw). */
static struct file_slot *slot_from_index(struct state *s, const struct sx_entry *e, size_t pos)
{
    struct file_slot *fs = xcalloc(1, sizeof(*fs));
    memcpy(fs->f.fid, e->fid, sizeof(fs->f.fid));
    fs->f.place = QUEUE_ACTIVE;
    fs->f.nmsg = e->nmsg;
    fs->cold = 1;
    fs->rcpts = e->rcpts;
    fs->cp_off = e->cp_off;
    fs->cp_len = e->cp_len;
    fs->cp_nrec = e->cp_nrec;
    fs->cold_due = e->due;
    fs->cold_counts = e->counts;
    fs->indexed = 1;
    fs->idx_due = e->due;
    fs->idx_counts = e->counts;
    insert_slot(s, pos, fs);
    return fs;
}

struct file_slot *state_slot_get(struct state *s, const char *fid)
{
    int found;
    size_t pos = file_pos(s, fid, &found);
    if (found)
        return s->files[pos];
    struct sx_entry e;
    int in = 0;
    if (s->index && queue_file_id_valid(fid)) {
        gone_pos(s, fid, &found);
        in = found ? 0 : sx_find(s->index, fid, &e, NULL);
    }
    if (in < 0)
        log_fatal("state: the index of checkpoint %llu cannot be read: %s",
                  (unsigned long long)sx_number(s->index), strerror(errno));
    return in == 1 ? slot_from_index(s, &e, pos) : NULL;
}

/* The file with its messages in memory (a frozen one is thawed). */
struct state_file *state_file_find(const struct state *s, const char *fid)
{
    struct file_slot *fs = state_slot_get((struct state *)s, fid);
    if (fs && fs->cold) {
        state_thaw((struct state *)s, fs);
        fs->lent = 1; /* state_file_done() may freeze it again */
    }
    return fs ? &fs->f : NULL;
}

int state_knows_file(const struct state *s, const char *fid)
{
    if (state_slot_find(s, fid))
        return 1;
    struct sx_entry e;
    return s->index && queue_file_id_valid(fid) && !state_index_superseded(s, fid) &&
           sx_find(s->index, fid, &e, NULL) == 1;
}

void state_free_msgs(struct state_file *f)
{
    for (uint32_t i = 0; f->msg && i < f->nmsg; i++) {
        struct state_msg *m = &f->msg[i];
        for (uint32_t k = 0; k < m->nrcpt; k++) {
            free(m->rcpt[k].reason);
            free(m->rcpt[k].route);
        }
        free(m->rcpt);
    }
    free(f->msg);
    f->msg = NULL;
}

static void free_file(struct file_slot *fs)
{
    state_free_msgs(&fs->f);
    free(fs);
}

/* Out of the sorted array and freed (once no due entry points at it). */
void state_drop_slot(struct state *s, struct file_slot *fs)
{
    int found;
    size_t pos = file_pos(s, fs->f.fid, &found);
    if (!found || s->files[pos] != fs)
        return;
    memmove(&s->files[pos], &s->files[pos + 1], (s->nfiles - pos - 1) * sizeof(s->files[0]));
    s->nfiles--;
    fs->forgotten = 1;
    fs->gen++; /* its due entries are stale */
    if (!fs->cold)
        s->hot_rcpts -= fs->rcpts;
    if (fs->heap_refs == 0)
        free_file(fs);
}

static void forget_file(struct state *s, struct state_file *f)
{
    struct file_slot *fs = slot_of(f);
    if (fs->indexed)
        note_gone(s, fs); /* its index record must not come back */
    state_drop_slot(s, fs);
}

/* f's messages as a 'T' record describes them, all pending. */
void state_init_msgs(struct state_file *f, const struct srec *r)
{
    f->nmsg = r->nmsg;
    f->nfinished = 0;
    f->msg = xcalloc(r->nmsg, sizeof(*f->msg));
    for (uint32_t i = 0; i < r->nmsg; i++) {
        struct state_msg *m = &f->msg[i];
        m->file = f;
        m->index = (uint16_t)i;
        m->nrcpt = r->msgs[i].nrcpt;
        m->arrival_us = r->msgs[i].arrival_us;
        m->size = r->msgs[i].size;
        m->rcpt = xcalloc(m->nrcpt, sizeof(*m->rcpt));
    }
}

static struct state_file *add_file(struct state *s, const struct srec *r)
{
    int found;
    size_t pos = file_pos(s, r->id, &found);
    if (found)
        return NULL;
    if (!s->replaying && state_knows_file(s, r->id))
        return NULL; /* in the index */
    struct file_slot *fs = xcalloc(1, sizeof(*fs));
    struct state_file *f = &fs->f;
    memcpy(f->fid, r->id, sizeof(f->fid));
    f->place = r->place;
    state_init_msgs(f, r);
    for (uint32_t i = 0; i < r->nmsg; i++)
        fs->rcpts += r->msgs[i].nrcpt;
    s->hot_rcpts += fs->rcpts;
    insert_slot(s, pos, fs);
    return f;
}

/* The message of a message id: its file, then the index whose id it is
 * (ids of one file sort by index, so a binary search finds it). */
static struct state_msg *find_msg(const struct state *s, const char *msgid)
{
    if (!queue_id_valid(msgid))
        return NULL;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    memcpy(fid, msgid, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    struct state_file *f = state_file_find(s, fid);
    if (!f)
        return NULL;
    size_t lo = 0, hi = f->nmsg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        queue_msg_id(fid, (unsigned)mid, id);
        int c = strcmp(id, msgid);
        if (c == 0)
            return &f->msg[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void state_msg_id(const struct state_msg *m, char *out)
{
    queue_msg_id(m->file->fid, m->index, out);
}

/* ------------------------------------------------------ message state ---- */

static int rcpt_final(const struct state_rcpt *r)
{
    return r->state == SRCPT_DELIVERED || r->state == SRCPT_BOUNCED;
}

/* Kept as counts, so that an outcome costs the same in a file of 1,024
 * messages of 10,000 recipients as in a file of one. */
static int msg_finished(const struct state_msg *m)
{
    return m->deleted || m->nfinal == m->nrcpt;
}

static int file_finished(const struct state_file *f)
{
    return f->nfinished == f->nmsg;
}

/* Keep the file's count of finished messages after m changed (was: whether
 * m was finished before the change). */
static void count_finished(struct state_msg *m, int was)
{
    int now = msg_finished(m);
    if (now && !was)
        m->file->nfinished++;
    else if (was && !now)
        m->file->nfinished--;
}

static void set_rcpt_state(struct state_msg *m, struct state_rcpt *x, uint8_t st)
{
    int was = msg_finished(m), final_before = rcpt_final(x);
    x->state = st;
    if (rcpt_final(x) && !final_before)
        m->nfinal++;
    else if (final_before && !rcpt_final(x))
        m->nfinal--;
    count_finished(m, was);
}

enum state_msg_state state_msg_state(const struct state_msg *m)
{
    if (msg_finished(m))
        return SMSG_FINISHED;
    if (m->held)
        return SMSG_HOLD;
    if (m->file->place == QUEUE_INCOMING)
        return SMSG_INCOMING;
    for (uint32_t k = 0; k < m->nrcpt; k++)
        if (m->rcpt[k].state == SRCPT_PENDING)
            return SMSG_ACTIVE;
    return m->in_flight ? SMSG_ACTIVE : SMSG_DEFERRED;
}

const char *state_msg_state_name(enum state_msg_state st)
{
    static const char *const names[] = {"incoming", "active", "deferred", "hold", "finished"};
    return st <= SMSG_FINISHED ? names[st] : "unknown";
}

const char *state_rcpt_state_name(enum state_rcpt_state st)
{
    static const char *const names[] = {"pending", "deferred", "delivered", "bounced"};
    return st <= SRCPT_BOUNCED ? names[st] : "unknown";
}

const struct state_msg *state_find(const struct state *s, const char *msgid)
{
    const struct state_msg *m = find_msg(s, msgid);
    if (!m || msg_finished(m)) {
        errno = ENOENT;
        return NULL;
    }
    return m;
}

const struct state_file *state_find_file(const struct state *s, const char *fid)
{
    return state_file_find(s, fid);
}

/* The next file id after `after` ("" for the first) among the slots and
 * the index records they do not supersede; 0 when there is none. */
static int next_file_id(struct state *s, struct sx_iter *it, const char *after, char *fid)
{
    int found;
    size_t pos = after[0] ? file_pos(s, after, &found) : 0;
    if (after[0] && found)
        pos++;
    const char *slot = pos < s->nfiles ? s->files[pos]->f.fid : NULL;
    struct sx_entry e;
    int in;
    while ((in = sx_iter_peek(it, &e)) == 1 &&
           (strcmp(e.fid, after) <= 0 || state_index_superseded(s, e.fid)))
        sx_iter_next(it);
    if (in < 0)
        log_fatal("state: the index cannot be read: %s", strerror(errno));
    const char *pick = in == 1 && (!slot || strcmp(e.fid, slot) < 0) ? e.fid : slot;
    if (!pick)
        return 0;
    memcpy(fid, pick, QUEUE_FILE_ID_LEN + 1);
    return 1;
}

int state_each(struct state *s, state_each_fn *fn, void *arg)
{
    int rc = 0;
    char fid[QUEUE_FILE_ID_LEN + 1] = "";
    struct sx_iter it;
    sx_iter_start(&it, s->index);
    while (rc == 0 && next_file_id(s, &it, fid, fid)) {
        const struct state_file *f = state_file_find(s, fid);
        for (uint32_t k = 0; f && k < f->nmsg && rc == 0; k++)
            if (!msg_finished(&f->msg[k]))
                rc = fn(&f->msg[k], arg);
        state_file_done(s, fid); /* a frozen file is frozen again: one at a time */
    }
    sx_iter_free(&it);
    return rc;
}

static void add_counts(struct state_counts *c, const struct state_counts *x)
{
    c->total += x->total;
    c->incoming += x->incoming;
    c->active += x->active;
    c->deferred += x->deferred;
    c->hold += x->hold;
    if (x->oldest_arrival_us &&
        (c->oldest_arrival_us == 0 || x->oldest_arrival_us < c->oldest_arrival_us))
        c->oldest_arrival_us = x->oldest_arrival_us;
}

static void take_counts(struct state_counts *c, const struct file_counts *x)
{
    c->total -= x->total;
    c->incoming -= x->incoming;
    c->active -= x->active;
    c->deferred -= x->deferred;
    c->hold -= x->hold;
}

/* The index's part: its totals less the records superseded; its oldest
 * message is its first file's (file ids sort by arrival) not superseded. */
static void count_index(const struct state *s, struct state_counts *c)
{
    const struct sx_totals *t = sx_totals(s->index);
    *c = (struct state_counts){t->total, t->incoming, t->active, t->deferred, t->hold, 0};
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i]->indexed)
            take_counts(c, &s->files[i]->idx_counts);
    for (size_t i = 0; i < s->ngone; i++)
        take_counts(c, &s->gone[i].counts);
    struct sx_entry e;
    for (uint64_t pos = 0; pos < sx_files(s->index) && sx_get(s->index, pos, &e) == 0; pos++)
        if (e.counts.total > 0 && !state_index_superseded(s, e.fid)) {
            c->oldest_arrival_us = e.counts.oldest_arrival_us;
            break;
        }
}

void state_count(const struct state *s, struct state_counts *c)
{
    memset(c, 0, sizeof(*c));
    if (s->index)
        count_index(s, c);
    for (size_t i = 0; i < s->nfiles; i++) {
        struct state_counts one;
        if (s->files[i]->cold) {
            const struct file_counts *x = &s->files[i]->cold_counts;
            one = (struct state_counts){x->total,    x->incoming, x->active,
                                        x->deferred, x->hold,     x->oldest_arrival_us};
            add_counts(c, &one);
        } else {
            state_count_msgs(&s->files[i]->f, &one);
            add_counts(c, &one);
        }
    }
}

/* The counts of one file's unfinished messages. */
void state_count_msgs(const struct state_file *f, struct state_counts *c)
{
    memset(c, 0, sizeof(*c));
    {
        for (uint32_t k = 0; k < f->nmsg; k++) {
            const struct state_msg *m = &f->msg[k];
            enum state_msg_state st = state_msg_state(m);
            if (st == SMSG_FINISHED)
                continue;
            c->total++;
            c->incoming += st == SMSG_INCOMING;
            c->active += st == SMSG_ACTIVE;
            c->deferred += st == SMSG_DEFERRED;
            c->hold += st == SMSG_HOLD;
            if (c->oldest_arrival_us == 0 || m->arrival_us < c->oldest_arrival_us)
                c->oldest_arrival_us = m->arrival_us;
        }
    }
}

/* ------------------------------------------------------------- heap ---- */

static void heap_swap(struct state *s, size_t a, size_t b)
{
    struct due t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

/* Heap order: by due time, then first pushed first (arrival order among
 * the due now, and a file's messages one after another). */
static int due_before(const struct due *a, const struct due *b)
{
    return a->when != b->when ? a->when < b->when : a->order < b->order;
}

void state_push_due(struct state *s, int64_t when, struct file_slot *fs, struct state_msg *m)
{
    s->heap = xgrow(s->heap, &s->heapcap, s->nheap + 1, sizeof(s->heap[0]));
    size_t i = s->nheap++;
    s->heap[i].when = when;
    s->heap[i].fs = fs;
    s->heap[i].m = m;
    s->heap[i].gen = fs->gen;
    s->heap[i].order = s->pushes++;
    fs->heap_refs++;
    while (i > 0 && due_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_sift_down(struct state *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && due_before(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->nheap && due_before(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

/* Drop the entries a freeze or a forgotten file made stale (the messages
 * they point at are freed) and rebuild the heap: after a checkpoint froze
 * files, the due index holds one entry per frozen file, not one per
 * message it had. */
void state_heap_compact(struct state *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->nheap; i++) {
        struct due d = s->heap[i];
        if (d.gen == d.fs->gen && !d.fs->forgotten) {
            s->heap[kept++] = d;
            continue;
        }
        if (--d.fs->heap_refs == 0 && d.fs->forgotten)
            free_file(d.fs);
    }
    s->nheap = kept;
    for (size_t i = kept / 2; i-- > 0;)
        heap_sift_down(s, i);
    if (s->heapcap > 1024 && kept < s->heapcap / 4) { /* give the memory back */
        s->heapcap = kept * 2 > 1024 ? kept * 2 : 1024;
        s->heap = xrealloc(s->heap, s->heapcap * sizeof(s->heap[0]));
    }
}

static struct due heap_pop(struct state *s)
{
    struct due top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    heap_sift_down(s, 0);
    struct file_slot *fs = top.fs;
    fs->heap_refs--;
    if (fs->forgotten && fs->heap_refs == 0) {
        free_file(fs);
        top.fs = NULL;
        top.m = NULL;
    }
    return top;
}

/* When m is due: the earliest next try of a recipient still to deliver
 * (0: now); -1 if it is not to be delivered at all. */
int64_t state_msg_due(const struct state_msg *m)
{
    if (m->held || m->file->removing || m->file->place != QUEUE_ACTIVE || msg_finished(m))
        return -1;
    int64_t when = -1;
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct state_rcpt *r = &m->rcpt[k];
        if (rcpt_final(r))
            continue;
        int64_t t = r->state == SRCPT_PENDING ? 0 : r->next_try;
        if (when < 0 || t < when)
            when = t;
    }
    return when;
}

static void index_msg(struct state *s, struct state_msg *m)
{
    int64_t when = state_msg_due(m);
    if (!s->replaying && !s->readonly && !m->in_flight && when >= 0)
        state_push_due(s, when, slot_of(m->file), m);
}

void state_index_file(struct state *s, struct state_file *f)
{
    for (uint32_t i = 0; f->msg && i < f->nmsg; i++)
        index_msg(s, &f->msg[i]);
}

void state_index_all(struct state *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        struct file_slot *fs = s->files[i];
        if (fs->cold && fs->cold_due >= 0)
            state_push_due(s, fs->cold_due, fs, NULL);
        else if (!fs->cold)
            state_index_file(s, &fs->f);
    }
}

void state_free_all(struct state *s)
{
    for (size_t i = 0; i < s->nheap; i++) {
        struct file_slot *fs = s->heap[i].fs;
        if (--fs->heap_refs == 0 && fs->forgotten)
            free_file(fs);
    }
    s->nheap = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        free_file(s->files[i]);
    s->nfiles = 0;
    free(s->files);
    free(s->heap);
    free(s->creq);
    free(s->gone);
    buf_free(&s->clean_check);
    sx_iter_free(&s->replay_it);
    sx_close(s->index);
    s->index = NULL;
    s->gone = NULL;
    s->files = NULL;
    s->heap = NULL;
    s->creq = NULL;
}

/* The index's next due file not superseded: 1 and its time, or 0. */
static int index_due(struct state *s, int64_t *when, char *fid)
{
    int in;
    while (s->index && (in = sx_due_peek(s->index, when, fid)) == 1 &&
           state_index_superseded(s, fid))
        sx_due_next(s->index); /* its slot is scheduled by the heap */
    if (s->index && in < 0)
        log_fatal("state: the index cannot be read: %s", strerror(errno));
    return s->index && in == 1;
}

/* The index's file due at or before now comes into memory (thawed: its
 * messages go into the heap): 1, or 0 if none is due. */
static int thaw_index_due(struct state *s, int64_t now, int64_t *when)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    if (!index_due(s, when, fid) || *when > now || (s->nheap > 0 && s->heap[0].when <= *when))
        return 0;
    sx_due_next(s->index);
    state_file_find(s, fid); /* a slot now: superseded, scheduled by the heap */
    return 1;
}

int state_next_due(struct state *s, int64_t now, const struct state_msg **out, int64_t *next_wakeup)
{
    *out = NULL;
    int64_t idx_when = 0;
    for (;;) {
        if (thaw_index_due(s, now, &idx_when))
            continue;
        if (s->nheap == 0 || s->heap[0].when > now)
            break;
        struct due d = heap_pop(s);
        if (!d.fs || d.gen != d.fs->gen || d.fs->forgotten)
            continue; /* its file was freed, frozen or dropped since (m is gone) */
        if (!d.m && d.fs->cold && !d.fs->forgotten) {
            state_thaw(s, d.fs); /* a frozen file's time has come: indexed again */
            continue;
        }
        if (!d.m || d.fs->cold || d.m->in_flight || state_msg_due(d.m) != d.when)
            continue; /* stale: freed, in flight, thawed already, or superseded */
        d.m->in_flight = 1;
        *out = d.m;
        break;
    }
    if (next_wakeup) {
        char fid[QUEUE_FILE_ID_LEN + 1];
        *next_wakeup = s->nheap > 0 ? s->heap[0].when : 0;
        if (index_due(s, &idx_when, fid) && (*next_wakeup == 0 || idx_when < *next_wakeup))
            *next_wakeup = idx_when;
    }
    return *out != NULL;
}

void state_dispatch_done(struct state *s, const char *msgid)
{
    struct state_msg *m = find_msg(s, msgid);
    if (!m || !m->in_flight)
        return;
    m->in_flight = 0;
    index_msg(s, m);
}

/* ---------------------------------------------------- cleaner queue ---- */

/* Requests are mostly answered in the order they were handed out, so the
 * one answered is found near the front. */
static struct creq *creq_find(struct state *s, int kind, const char *id)
{
    for (size_t i = 0; i < s->ncreq; i++)
        if (!s->creq[i].done && s->creq[i].r.kind == kind && strcmp(s->creq[i].r.id, id) == 0)
            return &s->creq[i];
    return NULL;
}

/* The file a request is about (its id, or its message's id's file part). */
static struct file_slot *creq_file(const struct state *s, const char *id)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    memcpy(fid, id, QUEUE_FILE_ID_LEN); /* ids are checked: at least that long */
    fid[QUEUE_FILE_ID_LEN] = '\0';
    return state_slot_find(s, fid);
}

static void creq_add(struct state *s, int kind, const char *id, const char *why, uint64_t seq)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    struct file_slot *fs = state_slot_get(s, fid);
    if (fs && fs->cold)
        state_thaw(s, fs); /* a file with work pending stays in memory */
    if (fs)
        fs->creq_refs++;
    s->creq = xgrow(s->creq, &s->creqcap, s->ncreq + 1, sizeof(s->creq[0]));
    struct creq *c = &s->creq[s->ncreq++];
    memset(c, 0, sizeof(*c));
    c->r.kind = kind;
    snprintf(c->r.id, sizeof(c->r.id), "%s", id);
    snprintf(c->r.why, sizeof(c->r.why), "%s", why ? why : "");
    c->seq = seq;
}

/* Marked done; the done ones are squeezed out once they are half of all. */
static void creq_drop(struct state *s, struct creq *c)
{
    struct file_slot *fs = creq_file(s, c->r.id);
    if (fs && fs->creq_refs > 0)
        fs->creq_refs--;
    c->done = 1;
    if (++s->ncreq_done * 2 < s->ncreq)
        return;
    size_t out = 0;
    for (size_t i = 0; i < s->ncreq; i++)
        if (!s->creq[i].done)
            s->creq[out++] = s->creq[i];
    s->ncreq = out;
    s->ncreq_done = 0;
}

size_t state_clean_pending(const struct state *s)
{
    return s->ncreq - s->ncreq_done;
}

int state_clean_next(struct state *s, struct state_clean_req *r)
{
    uint64_t durable = s->j ? sj_durable(s->j) : 0;
    for (size_t i = 0; i < s->ncreq; i++) {
        struct creq *c = &s->creq[i];
        if (c->done || c->handed || c->failed || c->seq > durable)
            continue;
        c->handed = 1;
        *r = c->r;
        return 1;
    }
    return 0;
}

void state_clean_retry(struct state *s)
{
    for (size_t i = 0; i < s->ncreq; i++)
        s->creq[i].failed = 0;
}

/* ---------------------------------------------------------- applying ---- */

/* A text of a record (a remote server's reply, a reason): control
 * characters and NULs become '?', as in queue files' state logs. */
static void set_text(char **field, const char *text, size_t len)
{
    free(*field);
    *field = text && len ? xstrndup(text, len) : NULL;
    for (size_t i = 0; *field && i < len; i++) {
        unsigned char c = (unsigned char)(*field)[i];
        if (c < 0x20 || c == 0x7f)
            (*field)[i] = '?';
    }
}

static int apply_outcome(struct state *s, const struct srec *r)
{
    struct state_msg *m = find_msg(s, r->id);
    if (!m || r->rcpt >= m->nrcpt)
        return -1;
    struct state_rcpt *x = &m->rcpt[r->rcpt];
    set_rcpt_state(m, x,
                   r->type == SREC_DELIVERED ? SRCPT_DELIVERED
                   : r->type == SREC_BOUNCED ? SRCPT_BOUNCED
                                             : SRCPT_DEFERRED);
    if (r->type != SREC_SUSPENDED) { /* 'S': no attempt was made */
        x->attempts++;
        x->last_try = r->time;
    }
    x->next_try = r->type == SREC_DEFERRED || r->type == SREC_SUSPENDED ? r->next_try : 0;
    set_text(&x->reason, r->text, r->text_len);
    if (!m->in_flight)
        index_msg(s, m);
    return 0;
}

/* 'W': due now, not an attempt (state_retry_now). A recipient no longer
 * deferred (an outcome recorded after it) keeps its state. */
static int apply_retry_now(struct state *s, const struct srec *r)
{
    struct state_msg *m = find_msg(s, r->id);
    if (!m || r->rcpt >= m->nrcpt)
        return -1;
    struct state_rcpt *x = &m->rcpt[r->rcpt];
    if (x->state != SRCPT_DEFERRED)
        return 0;
    x->next_try = r->time;
    if (!m->in_flight)
        index_msg(s, m);
    return 0;
}

static int apply_message_flag(struct state *s, const struct srec *r)
{
    struct state_msg *m = find_msg(s, r->id);
    if (!m)
        return -1;
    int was = msg_finished(m);
    if (r->type == SREC_HOLD)
        m->held = 1;
    else if (r->type == SREC_RELEASE)
        m->held = 0;
    else
        m->deleted = 1;
    count_finished(m, was);
    if (r->type == SREC_RELEASE)
        index_msg(s, m);
    return 0;
}

static int apply_flags_or_route(struct state *s, const struct srec *r)
{
    struct state_msg *m = find_msg(s, r->id);
    if (!m || (r->rcpt >= m->nrcpt && !(r->type == SREC_FLAGS && r->rcpt == QUEUE_NO_RCPT)))
        return -1;
    if (r->type == SREC_ROUTE)
        set_text(&m->rcpt[r->rcpt].route, r->text, r->text_len);
    else if (r->rcpt == QUEUE_NO_RCPT)
        m->flags |= r->bits;
    else
        m->rcpt[r->rcpt].flags |= r->bits;
    return 0;
}

static int apply_message_state(struct state *s, const struct srec *r)
{
    struct state_msg *m = find_msg(s, r->id);
    if (!m || m->nrcpt != r->nrcpt)
        return -1;
    int was = msg_finished(m);
    m->held = r->held;
    m->deleted = r->deleted;
    m->flags = r->bits;
    count_finished(m, was);
    for (uint32_t k = 0; k < m->nrcpt; k++) {
        const struct srec_rcpt *in = &r->rcpts[k];
        struct state_rcpt *x = &m->rcpt[k];
        set_rcpt_state(m, x, in->state);
        x->attempts = in->attempts;
        x->flags = in->flags;
        x->last_try = in->last_try;
        x->next_try = in->next_try;
        set_text(&x->reason, in->reason, in->reason_len);
        set_text(&x->route, in->route, in->route_len);
    }
    return 0;
}

static void mark_asked(struct state *s, int kind, const char *id, int asked)
{
    if (kind == CLEAN_RECLAIM) {
        struct state_msg *m = find_msg(s, id);
        if (m)
            m->reclaim_asked = (uint8_t)asked;
    } else {
        struct state_file *f = state_file_find(s, id);
        if (f && kind == CLEAN_TAKE)
            f->take_asked = (uint8_t)asked;
        else if (f)
            f->removing = (uint8_t)asked;
    }
}

/* 1 if a request of this kind for id is queued and not done. The flags of
 * the message or file answer in O(1); only a QUARANTINE of a file the state
 * does not know is looked up in the queue. */
static int already_asked(struct state *s, int kind, const char *id)
{
    if (kind == CLEAN_RECLAIM) {
        struct state_msg *m = find_msg(s, id);
        return m && m->reclaim_asked;
    }
    struct state_file *f = state_file_find(s, id);
    if (f)
        return kind == CLEAN_TAKE ? f->take_asked : f->removing;
    return creq_find(s, kind, id) != NULL;
}

static int apply_clean_need(struct state *s, const struct srec *r, uint64_t seq)
{
    char why[128];
    snprintf(why, sizeof(why), "%.*s", (int)r->text_len, r->text ? r->text : "");
    if (!already_asked(s, r->kind, r->id))
        creq_add(s, r->kind, r->id, why, seq);
    mark_asked(s, r->kind, r->id, 1);
    return 0;
}

static int apply_clean_done(struct state *s, const struct srec *r)
{
    struct creq *c = creq_find(s, r->kind, r->id);
    if (c)
        creq_drop(s, c);
    struct state_file *f = r->kind == CLEAN_RECLAIM ? NULL : state_file_find(s, r->id);
    if (!f)
        return 0;
    if (r->kind == CLEAN_TAKE && r->err == 0) {
        f->place = QUEUE_ACTIVE;
        state_index_file(s, f);
    } else if (r->kind != CLEAN_TAKE || r->err == ENOENT) {
        forget_file(s, f); /* removed, quarantined, or gone from both places */
    }
    return 0;
}

static int apply_decoded(struct state *s, const struct srec *r, uint64_t seq)
{
    switch (r->type) {
    case SREC_FILE: {
        struct state_file *f = add_file(s, r);
        if (f)
            state_index_file(s, f); /* learned in active/: due at once */
        return f ? 0 : -1;
    }
    case SREC_MESSAGE:
        return apply_message_state(s, r);
    case SREC_DELIVERED:
    case SREC_BOUNCED:
    case SREC_DEFERRED:
    case SREC_SUSPENDED:
        return apply_outcome(s, r);
    case SREC_RETRY_NOW:
        return apply_retry_now(s, r);
    case SREC_HOLD:
    case SREC_RELEASE:
    case SREC_DELETE:
        return apply_message_flag(s, r);
    case SREC_FLAGS:
    case SREC_ROUTE:
        return apply_flags_or_route(s, r);
    case SREC_CLEAN_NEED:
        return apply_clean_need(s, r, seq);
    case SREC_CLEAN_DONE:
        return apply_clean_done(s, r);
    }
    return -1;
}

/* Apply one record; a change outside the checkpoint's own records makes
 * its file dirty (its records in the checkpoint no longer describe it). */
int state_apply_payload(struct state *s, unsigned type, const unsigned char *p, size_t len,
                        uint64_t seq)
{
    struct srec r;
    if (srec_decode(type, p, len, &r) != 0)
        return -1;
    int rc = apply_decoded(s, &r, seq);
    struct file_slot *fs = rc == 0 ? creq_file(s, r.id) : NULL;
    if (fs && !s->applying_checkpoint)
        fs->dirty = 1;
    srec_free(&r);
    return rc;
}

int state_apply_record(struct state *s, unsigned type, const unsigned char *p, size_t len)
{
    return state_apply_payload(s, type, p, len, 0);
}

int state_replay_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                        size_t len)
{
    struct state *s = arg;
    struct srec peek;
    char id[QUEUE_ID_LEN + 1] = "";
    if (srec_decode(type, p, len, &peek) == 0) {
        snprintf(id, sizeof(id), "%s", peek.id);
        srec_free(&peek);
    }
    if (state_replay_skip(s, o, type, id))
        return 0; /* a file of the index: it stays on disk */
    int own = o == SJ_FROM_CHECKPOINT && (type == SREC_FILE || type == SREC_MESSAGE);
    state_replay_note(s, o, type, id, len, 0); /* before: a new file ends the one before */
    s->applying_checkpoint = own;
    if (state_apply_payload(s, type, p, len, 0) != 0)
        log_warn("state: a journal record of type %u that does not apply was skipped", type);
    s->applying_checkpoint = 0;
    if (own)
        state_replay_note(s, o, type, id, len, 1); /* after: the record's place is noted */
    return 0; /* a record that does not apply is skipped, never a crash loop */
}

/* ------------------------------------------------------------ changes ---- */

/* Queue the record and apply it (the same path the replay takes). */
uint64_t state_record_add(struct state *s, unsigned type, const struct buf *payload)
{
    if (s->readonly) {
        errno = EROFS;
        return 0;
    }
    uint64_t seq = sj_last(s->j) + 1;
    if (state_apply_payload(s, type, (const unsigned char *)payload->s, payload->len, seq) != 0) {
        errno = EINVAL;
        return 0;
    }
    return sj_add(s->j, type, payload->s, payload->len);
}

void state_need_clean(struct state *s, int kind, const char *id, const char *why)
{
    if (already_asked(s, kind, id))
        return;
    struct buf p = BUF_INIT;
    srec_put_clean(&p, kind, id, why, 0, 0);
    state_record_add(s, SREC_CLEAN_NEED, &p);
    buf_free(&p);
}

/* After a change to m: ask for its space back, or its file's removal. */
void state_ensure_clean_needs(struct state *s, struct state_file *f)
{
    if (f->removing)
        return;
    if (file_finished(f)) {
        state_need_clean(s, CLEAN_REMOVE, f->fid, "");
        return;
    }
    if (f->place == QUEUE_INCOMING) /* a need cut off with a torn tail: asked again */
        state_need_clean(s, CLEAN_TAKE, f->fid, "");
    for (uint32_t i = 0; i < f->nmsg; i++) {
        struct state_msg *m = &f->msg[i];
        if (msg_finished(m) && !m->reclaim_asked) {
            char id[QUEUE_ID_LEN + 1];
            state_msg_id(m, id);
            state_need_clean(s, CLEAN_RECLAIM, id, "");
        }
    }
}

/* The message an outcome or action names, unfinished; NULL with errno. */
static struct state_msg *live_msg(struct state *s, const char *msgid)
{
    struct state_msg *m = find_msg(s, msgid);
    if (!m || msg_finished(m)) {
        errno = ENOENT;
        return NULL;
    }
    return m;
}

/* f's cleaner needs are settled by the next state_flush(), for all the
 * outcomes of its group commit at once: a file whose messages all finish
 * in one group needs one REMOVE, not first a RECLAIM for each message. */
static void settle_needs_later(struct state *s, const struct state_file *f)
{
    struct buf *b = &s->clean_check;
    const size_t w = QUEUE_FILE_ID_LEN + 1;
    if (b->len >= w && memcmp(b->s + b->len - w, f->fid, w) == 0)
        return; /* noted last: a file's outcomes come one after another */
    buf_add(b, f->fid, w);
}

static void settle_needs(struct state *s)
{
    for (size_t at = 0; at < s->clean_check.len; at += QUEUE_FILE_ID_LEN + 1) {
        struct state_file *f = state_file_find(s, s->clean_check.s + at);
        if (f)
            state_ensure_clean_needs(s, f); /* asks nothing twice */
    }
    buf_clear(&s->clean_check);
}

static uint64_t outcome(struct state *s, unsigned type, const char *msgid, uint32_t rcpt,
                        int64_t now, int64_t next_try, const char *text)
{
    struct state_msg *m = live_msg(s, msgid);
    if (!m)
        return 0;
    if (rcpt >= m->nrcpt || rcpt_final(&m->rcpt[rcpt])) {
        errno = EINVAL;
        return 0;
    }
    struct buf p = BUF_INIT;
    srec_put_outcome(&p, msgid, rcpt, now, next_try,
                     type == SREC_DEFERRED || type == SREC_SUSPENDED, text);
    uint64_t seq = state_record_add(s, type, &p);
    buf_free(&p);
    if (seq)
        settle_needs_later(s, m->file);
    return seq;
}

uint64_t state_delivered(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         const char *reply)
{
    return outcome(s, SREC_DELIVERED, msgid, rcpt, now, 0, reply);
}

uint64_t state_bounced(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                       const char *reason)
{
    return outcome(s, SREC_BOUNCED, msgid, rcpt, now, 0, reason);
}

uint64_t state_deferred(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                        int64_t next_try, const char *reason)
{
    return outcome(s, SREC_DEFERRED, msgid, rcpt, now, next_try, reason);
}

uint64_t state_suspended(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         int64_t next_try, const char *reason)
{
    return outcome(s, SREC_SUSPENDED, msgid, rcpt, now, next_try, reason);
}

uint64_t state_retry_now(struct state *s, const char *msgid, uint32_t rcpt, int64_t now,
                         const char *who)
{
    struct state_msg *m = live_msg(s, msgid);
    if (!m)
        return 0;
    if (rcpt >= m->nrcpt || m->rcpt[rcpt].state != SRCPT_DEFERRED) {
        errno = EINVAL;
        return 0;
    }
    struct buf p = BUF_INIT;
    srec_put_outcome(&p, msgid, rcpt, now, 0, 0, who);
    uint64_t seq = state_record_add(s, SREC_RETRY_NOW, &p);
    buf_free(&p);
    return seq;
}

static uint64_t message_action(struct state *s, unsigned type, const char *msgid, int64_t now,
                               const char *who)
{
    struct state_msg *m = live_msg(s, msgid);
    if (!m)
        return 0;
    struct buf p = BUF_INIT;
    srec_put_msg_time(&p, msgid, now, type == SREC_DELETE ? (who ? who : "") : NULL);
    uint64_t seq = state_record_add(s, type, &p);
    buf_free(&p);
    if (seq && type == SREC_DELETE)
        state_ensure_clean_needs(s, m->file);
    return seq;
}

uint64_t state_hold(struct state *s, const char *msgid, int64_t now)
{
    return message_action(s, SREC_HOLD, msgid, now, NULL);
}

uint64_t state_release(struct state *s, const char *msgid, int64_t now)
{
    return message_action(s, SREC_RELEASE, msgid, now, NULL);
}

uint64_t state_delete(struct state *s, const char *msgid, int64_t now, const char *who)
{
    return message_action(s, SREC_DELETE, msgid, now, who);
}

/* Record payload p (freed) for an unfinished message. */
static uint64_t record_for_live(struct state *s, const char *msgid, unsigned type, struct buf *p)
{
    uint64_t seq = live_msg(s, msgid) ? state_record_add(s, type, p) : 0;
    buf_free(p);
    return seq;
}

uint64_t state_set_flags(struct state *s, const char *msgid, uint32_t rcpt, uint32_t bits)
{
    struct buf p = BUF_INIT;
    srec_put_flags(&p, msgid, rcpt, bits);
    return record_for_live(s, msgid, SREC_FLAGS, &p);
}

uint64_t state_set_route(struct state *s, const char *msgid, uint32_t rcpt, const char *route)
{
    struct buf p = BUF_INIT;
    srec_put_route(&p, msgid, rcpt, route);
    return record_for_live(s, msgid, SREC_ROUTE, &p);
}

uint64_t state_clean_done(struct state *s, const struct state_clean_req *r, uint32_t err)
{
    struct creq *c = creq_find(s, r->kind, r->id);
    int final = err == 0 || (r->kind == CLEAN_TAKE && err == ENOENT);
    if (!final) {
        if (c) {
            c->handed = 0;
            c->failed = 1;
        }
        return sj_last(s->j);
    }
    struct buf p = BUF_INIT;
    srec_put_clean(&p, r->kind, r->id, NULL, 1, err);
    uint64_t seq = state_record_add(s, SREC_CLEAN_DONE, &p);
    buf_free(&p);
    return seq;
}

int state_flush(struct state *s)
{
    if (s->readonly)
        return 0;
    settle_needs(s);
    return sj_flush(s->j);
}

uint64_t state_durable(const struct state *s)
{
    return s->j ? sj_durable(s->j) : 0;
}

struct sj *state_journal(struct state *s)
{
    return s->j;
}
