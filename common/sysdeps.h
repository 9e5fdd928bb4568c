/*
 * sysdeps — the Linux calls that some C libraries have no wrapper for.
 *
 * glibc (2.34 and later) declares renameat2(2) and close_range(2); musl
 * 1.2.3, which builds the static injection programs (sendmail and
 * onehop-queue, see INSTALL "Static injection programs"), does not. With
 * musl these inline functions make the system calls directly, so the code
 * reads the same under both libraries. Include after <stdio.h> and
 * <unistd.h>.
 */
#ifndef ONEHOP_SYSDEPS_H
#define ONEHOP_SYSDEPS_H

#ifndef __GLIBC__
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1u << 0)
#endif

/* private names, so that a musl that declares them some day still builds */
#define renameat2 onehop_renameat2
#define close_range onehop_close_range

static inline int onehop_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                            unsigned int flags)
{
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

static inline int onehop_close_range(unsigned int first, unsigned int last, int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}
#endif

#endif
