/*
 * daemon_args — the start every libuv daemon's main() shares:
 *
 *     onehop-NAME [-C DIR]
 *
 * daemon_begin() reads the one option, loads DIR/onehop.conf (conf_dir:
 * -C, else $ONEHOP_CONFIG, else the compiled-in directory), prints its
 * errors as `FILE:LINE: message`, opens the log as onehop/SERVICE and
 * ignores SIGPIPE (a peer that goes away is an error return, never a
 * signal). Must never: start anything, or leave c to free on failure.
 */
#ifndef ONEHOP_DAEMON_ARGS_H
#define ONEHOP_DAEMON_ARGS_H

#include "conf.h"

/* 0 with c loaded and *confdir set, or the status main() returns: 2 after
 * a usage line on stderr, 1 after the configuration errors. */
int daemon_begin(int argc, char **argv, const char *service, struct conf *c, const char **confdir);

#endif
