/*
 * queue_fs — the queue's directories and the file operations every other
 * step stands on (queue.h "layout", "locking"): opening queue_dir and its
 * subdirectories (made with their modes, each new entry fsynced into its
 * parent), the owner lock, paths, per-file locks that check the path still
 * names the locked inode, names in a directory, a rename that never
 * replaces, and the move to corrupt/.
 *
 * Every path is resolved relative to descriptors opened once on queue_dir
 * and its subdirectories, so the process's cwd never matters. A queue file
 * is opened O_NOFOLLOW|O_NONBLOCK and must be a regular file: a FIFO or
 * symlink named like one never hangs or misleads anybody.
 * The bottom of the queue library: it calls nothing of the library but the
 * ids (queue_id.c).
 * Must never: follow a symlink inside the queue, block on a FIFO, or
 * replace an existing file by a rename.
 */
#include "queue_impl.h"
#include "queue_modes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "safeio.h"
#include "sysdeps.h"

const char *const queue_dir_names[QDIR_COUNT] = {"incoming", "active", "corrupt", "tmp", "lock"};
/* queue.h "layout": the router's group may list and read the places, never
 * tmp/ or lock/ (writer side only) */
static const mode_t queue_dir_modes[QDIR_COUNT] = {
    QUEUE_PLACE_MODE, QUEUE_PLACE_MODE, QUEUE_PLACE_MODE, QUEUE_PRIVATE_MODE, QUEUE_PRIVATE_MODE};

/* ---------------------------------------------------------------- open ---- */
static int open_dir_at(int at, const char *name)
{
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* 1 if this process may set the set-gid bit of a file of group gid. */
static int may_set_gid(gid_t gid)
{
    if (geteuid() == 0 || getegid() == gid)
        return 1;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* A directory just made gets its mode (queue.h "layout") whatever the
 * umask. A set-gid bit inherited from the parent stays: files made in it
 * must carry the router's group. A process outside the directory's group
 * cannot set that bit, and its chmod(2) would clear an inherited one, so it
 * leaves such a directory as mkdir made it (onehop-queue's umask is 027). */
static int set_dir_mode(int at, const char *name, mode_t mode)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    mode_t want = mode | (st.st_mode & S_ISGID);
    if (!may_set_gid(st.st_gid)) {
        if (st.st_mode & S_ISGID)
            return 0;
        want &= ~(mode_t)S_ISGID;
    }
    return (st.st_mode & 07777) == want ? 0 : fchmodat(at, name, want, 0);
}

/* mkdir name under at (mode as set_dir_mode) if missing; *made set when created. */
static int ensure_dir_at(int at, const char *name, mode_t mode, int *made)
{
    if (mkdirat(at, name, mode & 0777) == 0) {
        *made = 1;
        return set_dir_mode(at, name, mode);
    }
    struct stat st;
    if (errno == EEXIST && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

static int ensure_buckets(int dir_fd)
{
    int made = 0;
    for (unsigned i = 0; i < QUEUE_BUCKETS; i++) {
        char name[3];
        snprintf(name, sizeof(name), "%02x", i);
        if (ensure_dir_at(dir_fd, name, QUEUE_PLACE_MODE, &made) != 0)
            return -1;
    }
    return made ? fsync(dir_fd) : 0;
}

static int create_layout(struct queue *q)
{
    int made = 0;
    for (int d = 0; d < QDIR_COUNT; d++)
        if (ensure_dir_at(q->root_fd, queue_dir_names[d], queue_dir_modes[d], &made) != 0)
            return -1;
    return made ? fsync(q->root_fd) : 0;
}

static int open_subdirs(struct queue *q)
{
    for (int d = 0; d < QDIR_COUNT; d++) {
        if ((q->flags & QUEUE_OPEN_READER) && (d == QDIR_TMP || d == QDIR_LOCK))
            continue; /* the queue account's own (QUEUE_OPEN_READER) */
        if (q->dir_fd[d] < 0 && (q->dir_fd[d] = open_dir_at(q->root_fd, queue_dir_names[d])) < 0)
            return -1;
    }
    return 0;
}

/* With QUEUE_OPEN_CREATE, a queue whose layout is incomplete is completed
 * (a complete one costs nothing more: the common case of onehop-queue). A
 * bucket that goes missing later is made again when a file needs it. */
static int open_layout(struct queue *q, unsigned flags)
{
    if (open_subdirs(q) == 0)
        return 0;
    if (!(flags & QUEUE_OPEN_CREATE) || errno != ENOENT || create_layout(q) != 0 ||
        open_subdirs(q) != 0)
        return -1;
    for (int d = QDIR_INCOMING; d <= QDIR_ACTIVE; d++)
        if (ensure_buckets(q->dir_fd[d]) != 0)
            return -1;
    return 0;
}

/* fsync every ancestor of path, nearest first (".", for a relative path,
 * last): the entries mkdir_p just made on the way are then durable. */
static int fsync_ancestors(const char *path)
{
    struct buf p = BUF_INIT;
    buf_sets(&p, path);
    int rc = 0;
    char *slash;
    while (rc == 0 && p.len > 1 && (slash = strrchr(p.s, '/')) != NULL) {
        buf_truncate(&p, slash == p.s ? 1 : (size_t)(slash - p.s));
        rc = fsync_dir(p.s);
    }
    if (rc == 0 && path[0] != '/')
        rc = fsync_dir(".");
    int e = errno;
    buf_free(&p);
    errno = e;
    return rc;
}

/* queue_dir itself, when missing: QUEUE_ROOT_MODE (its parents as the
 * umask leaves 0755), each new directory's parent fsynced (a queue_dir made
 * by onehop-queue must survive a power cut with the message committed into
 * it). Only the layout
 * below it is made; state/ belongs to the router and is never created or
 * touched here. */
static int make_queue_dir(const char *queue_dir)
{
    struct stat st;
    if (stat(queue_dir, &st) == 0)
        return 0;
    if (mkdir_p(queue_dir, 0755) != 0 || fsync_ancestors(queue_dir) != 0)
        return -1;
    return set_dir_mode(AT_FDCWD, queue_dir, QUEUE_ROOT_MODE);
}

int queue_open(struct queue **out, const char *queue_dir, unsigned flags, const char **why)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    q->path = xstrdup(queue_dir);
    q->owner_fd = -1;
    q->slots_fd = -1;
    q->flags = flags;
    q->write_version = QF_VERSION;
    q->root_fd = -1;
    for (int d = 0; d < QDIR_COUNT; d++)
        q->dir_fd[d] = -1;
    if ((flags & QUEUE_OPEN_CREATE) && make_queue_dir(queue_dir) != 0) {
        *why = "cannot create the queue directory";
    } else if ((q->root_fd = open(queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        *why = "cannot open the queue directory";
    } else if (open_layout(q, flags) != 0) {
        *why = "queue directory layout missing or not usable";
    } else {
        *out = q;
        return 0;
    }
    int e = errno;
    queue_close(q);
    errno = e;
    return -1;
}

void queue_close(struct queue *q)
{
    if (!q)
        return;
    queue_unlock_owner(q);
    if (q->slots_fd >= 0)
        close(q->slots_fd);
    for (int d = 0; d < QDIR_COUNT; d++)
        if (q->dir_fd[d] >= 0)
            close(q->dir_fd[d]);
    if (q->root_fd >= 0)
        close(q->root_fd);
    free(q->path);
    free(q);
}

const char *queue_path(const struct queue *q)
{
    return q->path;
}

int queue_lock_owner(struct queue *q, int wait)
{
    if (q->owner_fd >= 0)
        return 0;
    int fd = openat(q->dir_fd[QDIR_LOCK], "owner", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int r;
    do
        r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    q->owner_fd = fd;
    return 0;
}

void queue_unlock_owner(struct queue *q)
{
    if (q->owner_fd >= 0)
        close(q->owner_fd);
    q->owner_fd = -1;
}

int queue_fsync_subdir(struct queue *q, int dir, const char *sub)
{
    int fd = open_dir_at(q->dir_fd[dir], sub);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int queue_make_bucket(struct queue *q, int dir, const char *bucket)
{
    int made = 0;
    if (ensure_dir_at(q->dir_fd[dir], bucket, QUEUE_PLACE_MODE, &made) != 0)
        return -1;
    return made ? fsync(q->dir_fd[dir]) : 0;
}

/* ------------------------------------------------------------- locking ---- */
void queue_rel_path(const char *fid, struct buf *out)
{
    char bucket[3];
    queue_bucket(fid, bucket);
    buf_clear(out);
    buf_printf(out, "%s/%s", bucket, fid);
}

static int lock_fd(int fd, int lock)
{
    int r;
    do
        r = flock(fd, lock);
    while (r < 0 && errno == EINTR);
    return r;
}

int queue_still_named(int dir_fd, const char *rel, int fd)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || fstatat(dir_fd, rel, &b, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_nlink > 0;
}

int queue_open_locked(struct queue *q, enum queue_place place, const char *fid, int lock, int flags)
{
    struct buf rel = BUF_INIT;
    if (place == QUEUE_CORRUPT)
        buf_sets(&rel, fid);
    else
        queue_rel_path(fid, &rel);
    int fd = -1;
    for (int tries = 0; tries < 5; tries++) {
        /* O_NONBLOCK: a FIFO named like a queue file must not hang us; it
         * is refused below, as anything that is not a regular file is */
        fd = openat(q->dir_fd[place], buf_cstr(&rel), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ELOOP)
            errno = EBADMSG; /* a symlink: never a queue file */
        if (fd < 0)
            break;
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            fd = -1;
            errno = EBADMSG;
            break;
        }
        if (lock_fd(fd, lock) == 0 && queue_still_named(q->dir_fd[place], buf_cstr(&rel), fd))
            break;
        close(fd); /* moved or removed while we waited: look again */
        fd = -1;
        errno = ENOENT;
    }
    buf_free(&rel);
    return fd;
}

int queue_locate_locked(struct queue *q, const char *fid, int lock, int flags,
                        enum queue_place *place)
{
    /* A file only moves incoming -> active, so looking in that order twice
     * finds it even if it moves while we look. */
    for (int round = 0; round < 2; round++) {
        for (int p = QUEUE_INCOMING; p <= QUEUE_ACTIVE; p++) {
            int fd = queue_open_locked(q, (enum queue_place)p, fid, lock, flags);
            if (fd >= 0) {
                *place = (enum queue_place)p;
                return fd;
            }
            if (errno != ENOENT)
                return -1;
        }
    }
    errno = ENOENT;
    return -1;
}

int queue_hold_off_router(struct queue *q, int *fd)
{
    *fd = openat(q->root_fd, "state/lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0)
        return errno == ENOENT ? 0 : -1; /* no state side yet: no router ever ran */
    struct stat st;
    int rc = fstat(*fd, &st);
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -1, errno = EBADMSG;
    if (rc == 0)
        rc = lock_fd(*fd, LOCK_SH | LOCK_NB);
    if (rc != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        errno = e;
        return -1;
    }
    return 0;
}

/* -------------------------------------------------------------- names ---- */
int queue_dir_open_at(int at, const char *name)
{
    return open_dir_at(at, name);
}

int queue_names_read(int dir_fd, const char *sub, int ids_only, struct queue_names *out)
{
    int fd =
        sub ? open_dir_at(dir_fd, sub) : openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (ids_only && !queue_file_id_valid(e->d_name)))
            continue;
        out->v = xgrow(out->v, &out->cap, out->n + 1, sizeof(*out->v));
        out->v[out->n++] = xstrdup(e->d_name);
    }
    closedir(d);
    return 0;
}

void queue_names_free(struct queue_names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
    memset(n, 0, sizeof(*n));
}

/* ------------------------------------------------------------ renaming ---- */
int queue_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to)
{
    if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* file system without RENAME_NOREPLACE: link(2) refuses to replace too */
    if (linkat(from_dir, from, to_dir, to, 0) != 0)
        return -1;
    unlinkat(from_dir, from, 0);
    return 0;
}

/* ------------------------------------------------------------ corrupt/ ---- */
int queue_move_corrupt(struct queue *q, int dir_fd, const char *rel, const char *base,
                       const char *why)
{
    struct buf dst = BUF_INIT;
    buf_sets(&dst, base);
    int rc = -1;
    for (int n = 1; n < 100; n++) {
        if (renameat2(dir_fd, rel, q->dir_fd[QDIR_CORRUPT], buf_cstr(&dst), RENAME_NOREPLACE) ==
            0) {
            rc = 0;
            break;
        }
        if (errno != EEXIST)
            break;
        buf_clear(&dst);
        buf_printf(&dst, "%s.%d", base, n);
    }
    if (rc == 0)
        log_warn("%s: %s: moved to corrupt/%s", base, why, buf_cstr(&dst));
    else
        log_error("%s: %s, and moving it to corrupt/ failed: %m", base, why);
    buf_free(&dst);
    return rc;
}

int queue_quarantine_locked(struct queue *q, const char *fid, enum queue_place from,
                            const char *why)
{
    struct buf rel = BUF_INIT, what = BUF_INIT;
    queue_rel_path(fid, &rel);
    buf_printf(&what, "queue file is corrupt (%s)", why ? why : "unknown");
    int rc = queue_move_corrupt(q, q->dir_fd[from], buf_cstr(&rel), fid, buf_cstr(&what));
    int e = errno;
    buf_free(&rel);
    buf_free(&what);
    errno = e;
    return rc;
}

int queue_quarantine(struct queue *q, const char *fid, enum queue_place from, const char *why)
{
    if (!queue_file_id_valid(fid) || from == QUEUE_CORRUPT) {
        errno = EINVAL;
        return -1;
    }
    int fd = queue_open_locked(q, from, fid, LOCK_EX, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = queue_quarantine_locked(q, fid, from, why);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}
