/*
 * spawn — start one daemon process: fork, give it exactly the descriptors
 * of table.h at their numbers, the environment variables naming them, its
 * account (account.h), and exec DAEMON_DIR/PROGRAM -C DIR ARGS...
 *
 * Errors of the child between fork and exec (a descriptor, the ids, the
 * exec itself) come back to spawn_daemon() through a close-on-exec pipe,
 * so the caller gets "cannot run /x/onehop-router: No such file" and not a
 * child that exits mysteriously.
 * The child gets a process group of its own, so that signals meant for the
 * master's group (a terminal's ^C) reach the daemons only through it.
 * Must never: leave the child any descriptor not listed, any id of root
 * it should not keep, or the master's signal mask and dispositions.
 */
#ifndef ONEHOP_MASTER_SPAWN_H
#define ONEHOP_MASTER_SPAWN_H

#include <sys/types.h>

#include "buf.h"
#include "master/account.h"

#define SPAWN_FDS_MAX 32

/* One descriptor the child gets: fd of the master becomes number `at` in
 * the child; env (if not NULL) is a variable set to that number. */
struct spawn_fd {
    int fd, at;
    const char *env;
};

struct spawn_req {
    const char *path;    /* the program */
    const char *confdir; /* -C */
    const char *const *args;
    const struct account *account;
    struct spawn_fd fds[SPAWN_FDS_MAX];
    unsigned nfds;
    const char *listen_env; /* "3,4" for ONEHOP_LISTEN_FDS, or NULL */
};

/* The pid, or -1 with err. */
pid_t spawn_daemon(const struct spawn_req *r, struct buf *err);

#endif
