/*
 * listen — the listening sockets the master binds for its daemons (SPEC 3
 * smtp_listen; port 25 needs root only here, the smtpd never has it).
 */
#ifndef ONEHOP_MASTER_LISTEN_H
#define ONEHOP_MASTER_LISTEN_H

#include "buf.h"
#include "master/master.h"

/* Bind and listen on every address of m->conf.smtp_listen into
 * m->listen_fds (close-on-exec, non-blocking; IPv6 sockets IPv6 only).
 * 0, or -1 with err ("cannot listen on 127.0.0.1:25: Address already in use"). */
int listen_smtp(struct master *m, struct buf *err);

#endif
