/*
 * safeio — the few file operations every durable step is built of, each
 * retrying EINTR and short transfers and reporting errno faithfully.
 */
#ifndef ONEHOP_SAFEIO_H
#define ONEHOP_SAFEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

int write_all(int fd, const void *p, size_t n);
/* Read until EOF into out (appending); -1 with errno, or with errno = EFBIG
 * when more than max bytes arrive (0: no limit). */
int read_all(int fd, struct buf *out, size_t max);
/* Read a whole file; -1 with errno. */
int read_file(const char *path, struct buf *out, size_t max);
/* fsync the directory holding path (or the directory itself if is_dir). */
int fsync_dir(const char *path);
/* mkdir -p with mode; 0 if it exists already as a directory. */
int mkdir_p(const char *path, mode_t mode);
/* dst = dir + "/" + name unless name is absolute. */
void path_join(struct buf *dst, const char *dir, const char *name);

#endif
