/*
 * sendmail — what the files of the sendmail program (sendmail.c,
 * sendmail_inject.c, newaliases.c) share. Not a library interface: only the
 * sendmail / mailq / newaliases binary links these.
 */
#ifndef ONEHOP_SENDMAIL_H
#define ONEHOP_SENDMAIL_H

#include "buf.h"
#include "conf.h"
#include "msgprep.h"
#include "queue.h"

/* Hand the prepared message to onehop-queue in one-shot mode
 * (inject_proto.h): runs DAEMON_DIR/onehop-queue -C CONFIG_DIR (absolute:
 * onehop-queue ignores the caller's cwd) with the envelope and content.
 * notify is the -N value for every recipient ("" for none).
 * id NULL: nothing is needed afterwards, so sendmail BECOMES onehop-queue
 * (execve, see sendmail_inject.c): the call returns only when that could not
 * be done, and the process's exit status is onehop-queue's (0, 65, 70, 75).
 * id not NULL: onehop-queue runs as a child and its one reply is read.
 * Returns a sysexits code: EX_OK with id[QUEUE_ID_LEN + 1] filled,
 * EX_DATAERR (permanent refusal), EX_TEMPFAIL (nothing queued, retry later),
 * EX_SOFTWARE (protocol failure). Messages for the user go to standard
 * error, prefixed by "sendmail: ", unless onehop-queue already printed its
 * own. */
int sendmail_inject(const struct conf *c, const struct prepared_message *m, const char *notify,
                    char *id);

/* mailq for a user who may not read the queue: becomes (execve)
 * DAEMON_DIR/onehop-queue -C CONFIG_DIR --list, which reads it with the
 * queue account's rights when installed set-uid, and whose exit status and
 * output are then mailq's. Returns only when the exec failed (EX_TEMPFAIL,
 * reported). */
int sendmail_exec_lister(const struct conf *c, const char *program);

/* newaliases / sendmail -bi / -I: validate CONFDIR/aliases, printing
 * FILE:LINE: message for each mistake; when a router is running, ask onehop
 * to reload. Returns the exit status (0, or 1 on any error). */
int sendmail_newaliases(const struct conf *c, const char *confdir);

/* 1 when a router owns the queue of c (queue.h rule 3: the owner lock is
 * held), 0 when none does or the queue does not exist, -1 on error (errno). */
int sendmail_router_running(const struct conf *c);

/* Run DAEMON_DIR/onehop -C CONFIG_DIR ARGS... and wait; returns its exit
 * status (or 75 with a message when it cannot run). replace: exec it in
 * place of this process instead (never returns on success). */
int sendmail_run_onehop(const struct conf *c, const char *const *args, int replace);

#endif
