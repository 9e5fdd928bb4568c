/*
 * queue_recover — recovery: whatever a crash (kill -9, power loss) left at
 * any step of docs/INTERNALS.md's state machine is brought back to a clean
 * queue with no human action. Two parts, each a function of its own:
 *
 * queue_recover_writer(): the writer side, what the queue account's cleaner
 * runs on the router's RECOVER request (names and types only, no file is
 * parsed but a dead writer's slot):
 *   tmp/ file whose writer is gone      removed (we hold its lock: rule 2)
 *   slot of a dead writer (unlocked)    complete, CRC-valid image: renamed into
 *                                       incoming/ (its from= line logged,
 *                                       bucket fsynced); partial or invalid:
 *                                       emptied and fsynced; empty: left (made
 *                                       ready if a refill was cut)
 *   foreign name, or a FIFO, symlink or moved to corrupt/, logged
 *     directory named like a queue file
 *   file id in the wrong bucket / at    moved to its own bucket
 *     the top of incoming/ or active/
 *   missing bucket directory            created
 * queue_recover_files(): the committed files, read one by one (what
 * `onehop-queue --recover` adds while no router runs):
 *   file that does not parse (any       moved to corrupt/, logged
 *     format: also a format 3 file whose header names another id)
 *   formats 1 and 2 only, their state log:
 *   torn append at a state log's end    cut off (never acknowledged)
 *   file whose messages are all done    unlinked (crash before its unlink)
 * Calls queue_slots.c (settling a slot), queue_read.c, queue_fs.c.
 * Must never: remove a tmp/ file whose writer still runs, touch a slot whose
 * lock is held, remove a file with a pending recipient, or open anything in
 * a way that blocks (a FIFO) or follows a symlink.
 */
#include "queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "sysdeps.h"

/* ---------------------------------------------------------------- tmp/ ---- */
static void sweep_tmp_one(struct queue *q, const char *name, struct queue_recovery *r)
{
    int dir = q->dir_fd[QDIR_TMP];
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP && unlinkat(dir, name, 0) == 0) /* a symlink: never ours */
            r->tmp_removed++;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        if (queue_move_corrupt(q, dir, name, name, "not a regular file in tmp/") == 0)
            r->strays++;
        return;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        queue_still_named(dir, name, fd) && unlinkat(dir, name, 0) == 0)
        r->tmp_removed++;
    close(fd);
}

static void sweep_tmp(struct queue *q, struct queue_recovery *r)
{
    struct queue_names n = {NULL, 0, 0};
    if (queue_names_read(q->dir_fd[QDIR_TMP], NULL, 0, &n) != 0) {
        log_warn("recovery: cannot read %s/tmp: %m", q->path);
        return;
    }
    for (size_t i = 0; i < n.n; i++)
        sweep_tmp_one(q, n.v[i], r);
    queue_names_free(&n);
}

/* --------------------------------------------------------------- slots/ ---- */
static void sweep_slots(struct queue *q, struct queue_recovery *r)
{
    struct queue_names n = {NULL, 0, 0};
    int dir = queue_slots_dir(q);
    if (dir < 0 || queue_names_read(dir, NULL, 0, &n) != 0) {
        log_warn("recovery: cannot read %s/slots: %m", q->path);
        return;
    }
    for (size_t i = 0; i < n.n; i++) {
        int fd = openat(dir, n.v[i], O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (!queue_file_id_valid(n.v[i]) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            if (queue_move_corrupt(q, dir, n.v[i], n.v[i], "foreign file in slots/") == 0)
                r->strays++;
            continue;
        }
        /* a held lock is a live writer: never touched */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && queue_still_named(dir, n.v[i], fd)) {
            enum slot_outcome o = queue_slot_settle(q, fd, n.v[i]);
            r->slots_committed += o == SLOT_COMMITTED;
            r->slots_freed += o == SLOT_DROPPED;
            r->quarantined += o == SLOT_QUARANTINED;
        }
        close(fd);
    }
    queue_names_free(&n);
}

/* ------------------------------------------------- names in the places ---- */
static int is_bucket_name(const char *s)
{
    return strlen(s) == 2 && strspn(s, "0123456789abcdef") == 2;
}

/* Put a file id found at dir_fd/rel into its own bucket of place. */
static void rehome(struct queue *q, enum queue_place place, int dir_fd, const char *rel,
                   const char *fid, struct queue_recovery *r)
{
    struct buf dst = BUF_INIT;
    char bucket[3];
    queue_bucket(fid, bucket);
    queue_rel_path(fid, &dst);
    if (queue_make_bucket(q, place, bucket) != 0 ||
        renameat2(dir_fd, rel, q->dir_fd[place], buf_cstr(&dst), RENAME_NOREPLACE) != 0) {
        if (queue_move_corrupt(q, dir_fd, rel, fid, "queue file in the wrong directory") == 0)
            r->strays++;
    } else {
        log_warn("%s: queue file was in the wrong directory: moved to %s/%s", fid,
                 queue_dir_names[place], buf_cstr(&dst));
    }
    buf_free(&dst);
}

/* What recovery makes of name at dir_fd/rel (a bucket's entry, or one at the
 * top of a place): a stray moved to corrupt/ (not a file id, or not a
 * regular file: a FIFO would hang its readers), a file id rehomed when in
 * the wrong place; 1 when it is a queue file where it belongs. */
static int settle_name(struct queue *q, enum queue_place place, const char *rel, const char *name,
                       const char *bucket, struct queue_recovery *r)
{
    int dir = q->dir_fd[place];
    struct stat st;
    const char *stray = NULL;
    char right[3];
    if (!queue_file_id_valid(name))
        stray = "foreign file in the queue";
    else if (fstatat(dir, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0; /* gone meanwhile */
    else if (!S_ISREG(st.st_mode))
        stray = "not a regular file, named like a queue file";
    if (stray) {
        if (queue_move_corrupt(q, dir, rel, name, stray) == 0)
            r->strays++;
        return 0;
    }
    queue_bucket(name, right);
    if (bucket && strcmp(right, bucket) == 0)
        return 1;
    rehome(q, place, dir, rel, name, r);
    return 0;
}

/* queue_recover_files' check of one committed file. */
static void check_file(struct queue *q, enum queue_place place, const char *fid,
                       struct queue_recovery *r);

/* Every entry of bucket of place: settled; with files, each queue file
 * where it belongs is checked too. */
static void sweep_bucket(struct queue *q, enum queue_place place, const char *bucket, int files,
                         struct queue_recovery *r)
{
    struct queue_names n = {NULL, 0, 0};
    struct buf rel = BUF_INIT;
    if (queue_names_read(q->dir_fd[place], bucket, 0, &n) != 0)
        return;
    for (size_t i = 0; i < n.n; i++) {
        buf_clear(&rel);
        buf_printf(&rel, "%s/%s", bucket, n.v[i]);
        if (settle_name(q, place, buf_cstr(&rel), n.v[i], bucket, r) && files)
            check_file(q, place, n.v[i], r);
    }
    buf_free(&rel);
    queue_names_free(&n);
}

/* Entries at the top of incoming/ or active/ that are not buckets. */
static void sweep_top(struct queue *q, enum queue_place place, struct queue_recovery *r)
{
    struct queue_names n = {NULL, 0, 0};
    if (queue_names_read(q->dir_fd[place], NULL, 0, &n) != 0)
        return;
    for (size_t i = 0; i < n.n; i++)
        if (!is_bucket_name(n.v[i]))
            settle_name(q, place, n.v[i], n.v[i], NULL, r);
    queue_names_free(&n);
}

static void sweep_place(struct queue *q, enum queue_place place, int files,
                        struct queue_recovery *r)
{
    if (!files)
        sweep_top(q, place, r);
    for (unsigned i = 0; i < QUEUE_BUCKETS; i++) {
        char bucket[3];
        snprintf(bucket, sizeof(bucket), "%02x", i);
        if (!files && queue_make_bucket(q, place, bucket) != 0)
            log_warn("recovery: cannot create %s/%s/%s: %m", q->path, queue_dir_names[place],
                     bucket);
        sweep_bucket(q, place, bucket, files, r);
    }
}

/* ------------------------------------------------------- committed files ---- */
static void log_all_removed(const struct queue_file *f)
{
    for (size_t i = 0; i < f->nmsg; i++)
        log_info("%s: removed", f->msg[i].id);
}

/* Formats 1 and 2: a torn tail of the state log cut off, a file whose
 * messages are all finished unlinked (f read from fd, LOCK_EX held). */
static void settle_old_log(struct queue *q, enum queue_place place, int fd,
                           const struct queue_file *f, struct queue_recovery *r)
{
    if (f->torn_bytes && ftruncate(fd, (off_t)(f->committed_len + f->log_len)) == 0) {
        log_warn("%s: state log ends in an unfinished append: %llu bytes dropped", f->fid,
                 (unsigned long long)f->torn_bytes);
        r->tails_repaired++;
        fdatasync(fd);
    }
    struct buf rel = BUF_INIT;
    queue_rel_path(f->fid, &rel);
    if (qf_file_finished(f) && unlinkat(q->dir_fd[place], buf_cstr(&rel), 0) == 0) {
        log_all_removed(f);
        r->finished_removed++;
    }
    buf_free(&rel);
}

static void check_file(struct queue *q, enum queue_place place, const char *fid,
                       struct queue_recovery *r)
{
    struct queue_file f;
    const char *why;
    int fd = queue_open_locked(q, place, fid, LOCK_EX, O_RDWR);
    if (fd < 0)
        return;
    if (queue_read_meta(fd, fid, place, &f, &why) != 0) {
        if (errno == EBADMSG && queue_quarantine_locked(q, fid, place, why) == 0)
            r->quarantined++;
        close(fd);
        return;
    }
    if (f.version < 3)
        settle_old_log(q, place, fd, &f, r);
    queue_file_free(&f);
    close(fd);
}

/* -------------------------------------------------------------- entries ---- */
static void log_counts(const struct queue_recovery *r)
{
    if (r->tmp_removed || r->tails_repaired || r->quarantined || r->finished_removed || r->strays ||
        r->slots_committed || r->slots_freed)
        log_info("queue recovery: %lu uncommitted files removed, %lu state logs repaired, "
                 "%lu files quarantined, %lu finished files removed, %lu strays moved, "
                 "%lu committed slots moved to incoming, %lu partial slots emptied",
                 r->tmp_removed, r->tails_repaired, r->quarantined, r->finished_removed, r->strays,
                 r->slots_committed, r->slots_freed);
}

static void writer_side(struct queue *q, struct queue_recovery *r)
{
    sweep_tmp(q, r);
    sweep_slots(q, r);
    sweep_place(q, QUEUE_INCOMING, 0, r);
    sweep_place(q, QUEUE_ACTIVE, 0, r);
}

static void files_side(struct queue *q, struct queue_recovery *r)
{
    sweep_place(q, QUEUE_INCOMING, 1, r);
    sweep_place(q, QUEUE_ACTIVE, 1, r);
}

int queue_recover_writer(struct queue *q, struct queue_recovery *r)
{
    memset(r, 0, sizeof(*r));
    writer_side(q, r);
    log_counts(r);
    return 0;
}

int queue_recover_files(struct queue *q, struct queue_recovery *r)
{
    memset(r, 0, sizeof(*r));
    files_side(q, r);
    log_counts(r);
    return 0;
}

int queue_recover(struct queue *q, struct queue_recovery *r)
{
    memset(r, 0, sizeof(*r));
    writer_side(q, r);
    files_side(q, r);
    log_counts(r);
    return 0;
}
