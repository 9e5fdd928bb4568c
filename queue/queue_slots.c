/*
 * queue_slots — commit slots: pre-made empty files in queue_dir/slots/
 * whose directory entries are already durable, so that a one-shot commit
 * costs one fdatasync of an existing file (queue_commit.c, docs/INTERNALS.md
 * "Commit slots").
 *
 * A slot is FREE (empty, mode 0640, unlocked), TAKEN (locked LOCK_EX by a
 * live writer), NOT READY (mode 0, locked by its refiller until the fsync of
 * slots/ returned; found unlocked, its refiller died: whoever locks it fsyncs
 * slots/ and makes it ready), or LEFT OVER (not empty, unlocked: its writer
 * died).
 * A left-over slot holding a complete image whose body CRC matches was
 * committed (its fdatasync returned) and is renamed into incoming/; any other
 * left-over image was never committed and is emptied. Below the commit
 * (queue_commit.c takes and refills slots); calls queue_place.c (the
 * rename of a committed leftover), queue_read.c and queue_fs.c only.
 * Must never: touch a slot whose lock is held, use a slot whose directory
 * entry may not be durable, or empty a slot holding a committed image.
 */
#include "queue_impl.h"
#include "queue_modes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

#define SLOT_READY_MODE QUEUE_FILE_MODE

int queue_slots_dir(struct queue *q)
{
    if (q->slots_fd >= 0)
        return q->slots_fd;
    int fd = openat(q->root_fd, "slots", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && mkdirat(q->root_fd, "slots", QUEUE_PRIVATE_MODE) == 0) {
        fsync(q->root_fd);
        fd = openat(q->root_fd, "slots", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    }
    q->slots_fd = fd;
    return fd;
}

int queue_slots_refill(struct queue *q)
{
    int dir = queue_slots_dir(q);
    int fds[QUEUE_SLOT_BATCH], n = 0;
    if (dir < 0)
        return 0;
    for (int i = 0; i < QUEUE_SLOT_BATCH; i++) {
        char name[QUEUE_FILE_ID_LEN + 1];
        queue_file_id_new(name, NULL);
        /* mode 0: not ready, nobody takes it before its entry is durable;
         * locked, so that a writer finding one unlocked knows we died */
        int fd = openat(dir, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
        if (fd >= 0)
            fds[n++] = fd;
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
            close(fds[--n]); /* a writer got it first: it makes it ready itself */
    }
    int synced = n > 0 && fsync(dir) == 0;
    for (int i = 0; i < n; i++) {
        if (synced)
            fchmod(fds[i], SLOT_READY_MODE);
        close(fds[i]);
    }
    return synced ? n : 0;
}

/* The committed image in the locked slot fd: into incoming/ under the id
 * its header names (format 2: of its commit time), its messages' from=
 * lines logged (its writer died before it could: or, killed right after
 * logging them, before its rename, and then they are logged twice, never
 * not at all), the bucket fsynced. */
static enum slot_outcome commit_leftover(struct queue *q, int fd, const char *name,
                                         const struct qf_header *h)
{
    struct queue_file f;
    const char *why;
    char fid[QUEUE_FILE_ID_LEN + 1], bucket[3];
    struct qf_header hdr = *h;
    if (h->version == 3)
        memcpy(fid, h->fid, sizeof(fid)); /* the id its writer chose */
    else
        queue_file_id_at(fid, h->created_us);
    if (queue_read_meta(fd, fid, QUEUE_INCOMING, &f, &why) != 0) {
        if (errno != EBADMSG)
            return SLOT_ERROR;
        return queue_move_corrupt(q, q->slots_fd, name, fid, why) == 0 ? SLOT_QUARANTINED
                                                                       : SLOT_ERROR;
    }
    struct queue_log_msg *msgs = xcalloc(f.nmsg, sizeof(*msgs));
    for (size_t k = 0; k < f.nmsg; k++) {
        msgs[k] =
            (struct queue_log_msg){f.msg[k].sender, f.msg[k].size, f.msg[k].nrcpt, NULL, NULL};
        queue_log_msg_origin(&msgs[k], f.msg[k].attr, f.msg[k].nattr);
    }
    enum slot_outcome out = SLOT_ERROR;
    if (queue_place_incoming(q, q->slots_fd, name, fd, &hdr, msgs, f.nmsg, fid, bucket) == 0) {
        out = queue_fsync_subdir(q, QDIR_INCOMING, bucket) == 0 ? SLOT_COMMITTED : SLOT_ERROR;
        log_info("%s: committed slot %s of a dead writer moved to incoming/%s/%s", fid, name,
                 bucket, fid);
    }
    for (size_t k = 0; k < f.nmsg; k++)
        queue_log_msg_free_origin(&msgs[k]);
    free(msgs);
    queue_file_free(&f);
    return out;
}

enum slot_outcome queue_slot_settle(struct queue *q, int fd, const char *name)
{
    struct stat st;
    struct qf_header h;
    const char *why;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return SLOT_ERROR;
    if (st.st_nlink > 1) {
        /* also linked in incoming/ (a link+unlink rename cut short): drop the slot name */
        if (unlinkat(q->slots_fd, name, 0) != 0 || fsync(q->slots_fd) != 0)
            return SLOT_ERROR;
        return SLOT_COMMITTED;
    }
    if (st.st_size == 0) {
        if ((st.st_mode & 07777) != SLOT_READY_MODE) {
            /* a refill cut short: make the entry durable, then ready */
            if (fsync(q->slots_fd) != 0 || fchmod(fd, SLOT_READY_MODE) != 0)
                return SLOT_ERROR;
        }
        return SLOT_FREE;
    }
    if (queue_check_body(fd, 1, &h, &why) == 0)
        return commit_leftover(q, fd, name, &h);
    if (errno != EBADMSG)
        return SLOT_ERROR;
    /* never committed: its fdatasync did not return, nobody was told */
    if (ftruncate(fd, 0) != 0 || fsync(fd) != 0)
        return SLOT_ERROR;
    log_warn("slot %s: uncommitted image of a dead writer dropped (%s)", name, why);
    return SLOT_DROPPED;
}

/* Open and lock slots/name without waiting; -1 if it is taken or gone. */
static int lock_slot(int dir, const char *name, struct stat *st)
{
    int fd = openat(dir, name, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        queue_still_named(dir, name, fd) && fstat(fd, st) == 0)
        return fd;
    close(fd);
    return -1;
}

/* One pass over slots/; *names receives how many slots there are. */
static int take_pass(struct queue *q, char *name, size_t *names)
{
    int dir = q->slots_fd;
    struct queue_names s = {NULL, 0, 0};
    int taken = -1;
    *names = 0;
    if (queue_names_read(dir, NULL, 1, &s) != 0)
        return -1;
    *names = s.n;
    size_t start = s.n ? (size_t)getpid() % s.n : 0; /* concurrent writers spread out */
    for (size_t k = 0; k < s.n && taken < 0; k++) {
        const char *n = s.v[(start + k) % s.n];
        struct stat st;
        int fd = lock_slot(dir, n, &st);
        if (fd < 0)
            continue;
        /* Not empty: a dead writer's leftover. Empty but not ready: a dead
         * refiller's (settling fsyncs slots/ before making it ready). */
        if ((st.st_size == 0 && (st.st_mode & 07777) == SLOT_READY_MODE) ||
            queue_slot_settle(q, fd, n) == SLOT_FREE) {
            taken = fd;
            memcpy(name, n, QUEUE_FILE_ID_LEN + 1);
            break;
        }
        close(fd);
    }
    queue_names_free(&s);
    return taken;
}

int queue_slot_take(struct queue *q, char *name, int *refill)
{
    size_t names;
    *refill = 0;
    if (queue_slots_dir(q) < 0)
        return -1;
    int fd = take_pass(q, name, &names);
    if (fd < 0) {
        if (queue_slots_refill(q) == 0)
            return -1;
        fd = take_pass(q, name, &names);
    }
    *refill = fd >= 0 && names - 1 < QUEUE_SLOT_BATCH / 2;
    return fd;
}
