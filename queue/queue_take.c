/*
 * queue_take — the cleaner's TAKE step (queue.h "places"; docs/INTERNALS.md
 * "Ownership and the cleaner"): a file of incoming/ moves to active/ once
 * the router has learned it. The move is a rename under LOCK_EX, never a
 * copy; no fsync is needed (a rename lost in a crash leaves the file in
 * incoming/, and the router asks for it again). Calls queue_fs.c only.
 * Must never: replace a file of active/, or move anything but a file id.
 */
#include "queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "sysdeps.h"

int queue_take(struct queue *q, const char *fid)
{
    if (!queue_file_id_valid(fid))
        return errno = EINVAL, -1;
    int fd = queue_open_locked(q, QUEUE_INCOMING, fid, LOCK_EX, O_RDONLY);
    if (fd < 0)
        return -1;
    struct buf rel = BUF_INIT;
    char bucket[3];
    queue_rel_path(fid, &rel);
    queue_bucket(fid, bucket);
    int rc = renameat2(q->dir_fd[QDIR_INCOMING], buf_cstr(&rel), q->dir_fd[QDIR_ACTIVE],
                       buf_cstr(&rel), RENAME_NOREPLACE);
    if (rc != 0 && errno == ENOENT && queue_make_bucket(q, QDIR_ACTIVE, bucket) == 0)
        rc = renameat2(q->dir_fd[QDIR_INCOMING], buf_cstr(&rel), q->dir_fd[QDIR_ACTIVE],
                       buf_cstr(&rel), RENAME_NOREPLACE);
    int e = errno;
    buf_free(&rel);
    close(fd);
    errno = e;
    return rc;
}
