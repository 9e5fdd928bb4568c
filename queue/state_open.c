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

static int learn_place(struct state *s, enum queue_place place, long *added)
{
    char **fids;
    size_t n;
    if (queue_list_files(s->q, place, &fids, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct file_slot *fs = state_slot_find(s, fids[i]); /* a frozen one stays so */
        if (!fs) {
            learn_one(s, fids[i], added);
            bound_learning(s);
            fs = state_slot_find(s, fids[i]);
        }
        if (fs)
            fs->seen = s->pass;
    }
    queue_ids_free(fids, n);
    return 0;
}

/* Files the state knows that are in neither place any more (removed by
 * hand, or the state outlived them): recorded as gone. */
static void forget_unlisted(struct state *s)
{
    for (size_t i = s->nfiles; i-- > 0;) {
        struct state_file *f = &s->files[i]->f;
        if (s->files[i]->seen == s->pass || f->removing)
            continue;
        log_warn("state: %s: the file is gone from the queue; its messages are forgotten", f->fid);
        struct buf p = BUF_INIT;
        srec_put_clean(&p, CLEAN_REMOVE, f->fid, NULL, 1, ENOENT);
        state_record_add(s, SREC_CLEAN_DONE, &p);
        buf_free(&p);
    }
}

long state_learn_files(struct state *s)
{
    if (s->readonly) {
        errno = EROFS;
        return -1;
    }
    s->pass++;
    long added = 0;
    if (learn_place(s, QUEUE_INCOMING, &added) != 0 || learn_place(s, QUEUE_ACTIVE, &added) != 0)
        return -1;
    forget_unlisted(s);
    return added;
}

/* ------------------------------------------------------- checkpoint ---- */

struct snapshot_ctx {
    struct state *s;
    uint64_t bytes;
    struct cp_place *places; /* per file (s->files order): where its records land */
};

static void snapshot_add(struct snapshot_ctx *c, struct sj_snapshot *snap, unsigned type,
                         const struct buf *p)
{
    sj_snapshot_add(snap, type, p->s, p->len);
    c->bytes += p->len + SJ_RECORD_OVERHEAD;
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
        if (sj_checkpoint_read(c->s->j, fs->cp_off, fs->cp_len, &p) != 0) {
            buf_free(&p);
            return -1;
        }
        sj_snapshot_add_raw(snap, p.s, p.len, fs->cp_nrec);
        c->bytes += p.len;
        to->len = fs->cp_len;
        to->nrec = fs->cp_nrec;
        buf_free(&p);
        return 0;
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

/* The whole state: every file, then the cleaner requests not yet done. */
static int snapshot_all(void *arg, struct sj_snapshot *snap)
{
    struct snapshot_ctx *c = arg;
    struct state *s = c->s;
    struct buf p = BUF_INIT;
    for (size_t i = 0; i < s->nfiles; i++)
        if (snapshot_file(c, snap, s->files[i], &c->places[i]) != 0) {
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
    return 0;
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
    struct snapshot_ctx c = {s, 0, xcalloc(s->nfiles + 1, sizeof(struct cp_place))};
    if (sj_checkpoint(s->j, snapshot_all, &c) != 0) {
        free(c.places); /* the old checkpoint still holds every frozen file */
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
    state_freeze_beyond_window(s);
    return 1;
}

/* ------------------------------------------------------------- open ---- */

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
    rep->files = s->nfiles;
    for (size_t i = 0; i < s->nfiles; i++)
        rep->messages += s->files[i]->f.nmsg;
    if (!s->readonly) {
        state_index_all(s);
        for (size_t i = 0; i < s->nfiles; i++)
            if (!s->files[i]->cold) /* a frozen file has no work pending */
                state_ensure_clean_needs(s, &s->files[i]->f);
        s->checkpoint_bytes = sj_journal_bytes(s->j);
        if (rep->journal.damaged && state_flush(s) == 0)
            state_maybe_checkpoint(s, 1); /* what is valid becomes the new base */
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
