/*
 * control — the master's control socket, run_dir/master.sock (protocol:
 * master_proto.h), for `onehop stop`, `reload` and `status`. Only root and
 * the master's own uid may connect (peer credentials, checked by the
 * channel listener); the socket file is 0600 as well.
 */
#ifndef ONEHOP_MASTER_CONTROL_H
#define ONEHOP_MASTER_CONTROL_H

#include "master/master.h"

/* 0, or -1 with err (e.g. the path is held by a live master). */
int control_start(struct master *m, struct buf *err);
/* Answer every client waiting for the end of the stop, close the socket. */
void control_finish(struct master *m);

/* Implemented by main.c: re-check the configuration and reload; 0, or -1
 * with the errors (FILE:LINE: message lines) in err. */
int master_reload(struct master *m, struct buf *err);

#endif
