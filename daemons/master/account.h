/*
 * account — who a daemon runs as (SPEC 7), and the directories the master
 * prepares for those accounts.
 *
 * Started by root, a daemon of row R runs as the account `user`-R.account
 * (onehop-dns, onehop-queue, ...) with that account's primary group and its
 * supplementary groups from the group database; real, effective and saved
 * ids are all set, so it can never get root back. The accounts come from
 * `make install` (INSTALL); a missing one is an error naming it, never
 * created here. A row without an account (local delivery) keeps root.
 * Started by an ordinary user, every daemon runs as that user, unchanged.
 *
 * Directories, when root (docs/INTERNALS.md "Ownership and the cleaner";
 * modes from queue_modes.h):
 *     queue_dir         USER-queue, group USER-router, 2755 (set-gid)
 *     queue_dir/state/  USER-router, group USER-router, 0700
 *     run_dir           root, group USER-dns, 1775: the master's pid file,
 *                       lock and control socket (root's, which the sticky
 *                       bit keeps from the group), and the dnscache's socket
 * The rest of the message tree is made by the queue account itself
 * (queue_open). As an ordinary user the directories are only created.
 * Must never: create an account, follow a symbolic link when changing an
 * owner, or leave a daemon with any id of root it was not meant to keep.
 */
#ifndef ONEHOP_MASTER_ACCOUNT_H
#define ONEHOP_MASTER_ACCOUNT_H

#include <sys/types.h>

#include "buf.h"

#define ACCOUNT_GROUPS_MAX 64

struct account {
    char *name; /* as shown by status */
    uid_t uid;
    gid_t gid;
    gid_t groups[ACCOUNT_GROUPS_MAX];
    int ngroups;
    int is_self; /* nothing to switch: the master's own ids */
};

/* The account for suffix (NULL: the master's own) of base name `user`,
 * when the master runs as root; the master's own user otherwise. 0, or
 * -1 with err ("account onehop-dns does not exist; make install creates
 * the accounts"). */
int account_resolve(struct account *a, const char *user, const char *suffix, struct buf *err);
void account_free(struct account *a);
/* In a child about to exec: become a (setgroups, setresgid, setresuid),
 * then check that no id of the old one is left. 0 or -1 with errno. */
int account_become(const struct account *a);
/* Create and own queue_dir and run_dir as above. 0, or -1 with err. */
int account_prepare_dirs(const char *queue_dir, const char *run_dir, const char *user,
                         struct buf *err);

#endif
