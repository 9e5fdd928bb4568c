/*
 * bs — `sendmail -bs` (SPEC 2): one SMTP session on standard input and
 * output with the server's own protocol engine (smtp_proto.h), for a local
 * user. Each message is handed to a one-shot `onehop-queue` (daemon_dir)
 * and answered 250 only after its INJ_OK (the commit); a queue that cannot
 * be run or fails temporarily gives 451/452, a permanent failure 554/552.
 * The submitter is trusted as mynetworks is (it is a local user: the relay
 * rules of relay.h apply with no client address), and local recipients
 * are still validated at RCPT. No STARTTLS. Plain blocking I/O: one
 * client, nothing else to serve.
 *
 * Exit status: 0 after QUIT or end of input, 75 when the configuration
 * cannot be read.
 */
#ifndef ONEHOP_SMTPD_BS_H
#define ONEHOP_SMTPD_BS_H

#include "conf.h"

int bs_main(struct conf *c, const char *confdir);

#endif
