/*
 * confcheck — everything `onehop check` verifies in a configuration
 * directory (SPEC 1): onehop.conf, routes, sites and aliases, each parsed,
 * and the checks that need two files at once. The master refuses a reload
 * with exactly these errors, so reload and check never disagree.
 */
#ifndef ONEHOP_CONFCHECK_H
#define ONEHOP_CONFCHECK_H

#include "conf.h"
#include "diag.h"

/* Load confdir's configuration into c (the caller frees it with
 * conf_free, also on failure) and check every file; each mistake goes to
 * d as FILE:LINE: message. 0 when there is none, -1 otherwise. */
int conf_check_dir(const char *confdir, struct conf *c, struct diag *d);

#endif
