/*
 * safeio — write/read/fsync helpers that retry EINTR and short transfers.
 * See safeio.h.
 */
#include "safeio.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int read_all(int fd, struct buf *out, size_t max)
{
    size_t start = out->len;
    for (;;) {
        buf_reserve_read(out);
        ssize_t r = read(fd, out->s + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        out->len += (size_t)r;
        out->s[out->len] = '\0';
        if (max && out->len - start > max) {
            errno = EFBIG;
            return -1;
        }
    }
}

int read_file(const char *path, struct buf *out, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size < (max ? max : (uint64_t)1 << 30))
        buf_reserve(out, (size_t)st.st_size + 1); /* whole file, then EOF */
    int r = read_all(fd, out, max);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int fsync_dir(const char *path)
{
    struct stat st;
    struct buf dir = BUF_INIT;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        buf_sets(&dir, path);
    } else {
        const char *slash = strrchr(path, '/');
        if (!slash)
            buf_sets(&dir, ".");
        else if (slash == path)
            buf_sets(&dir, "/");
        else
            buf_set(&dir, path, (size_t)(slash - path));
    }
    int fd = open(buf_cstr(&dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    buf_free(&dir);
    if (fd < 0)
        return -1;
    int r;
    do
        r = fsync(fd);
    while (r < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int mkdir_p(const char *path, mode_t mode)
{
    struct buf p = BUF_INIT;
    buf_sets(&p, path);
    int rc = 0;
    for (size_t i = 1; i <= p.len && rc == 0; i++) {
        if (i < p.len && p.s[i] != '/')
            continue;
        char saved = p.s[i];
        p.s[i] = '\0';
        if (mkdir(p.s, mode) != 0 && errno != EEXIST)
            rc = -1;
        p.s[i] = saved;
    }
    /* mkdir's EEXIST does not say a directory is there: a file in the way
     * of the last component is ENOTDIR (one earlier fails mkdir itself). */
    struct stat st;
    if (rc == 0 && stat(path, &st) != 0) {
        rc = -1;
    } else if (rc == 0 && !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        rc = -1;
    }
    int e = errno;
    buf_free(&p);
    errno = e;
    return rc;
}

void path_join(struct buf *dst, const char *dir, const char *name)
{
    buf_clear(dst);
    if (name[0] != '/') {
        buf_adds(dst, dir);
        if (dst->len && dst->s[dst->len - 1] != '/')
            buf_addc(dst, '/');
    }
    buf_adds(dst, name);
}
