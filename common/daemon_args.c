/*
 * daemon_args — the shared start of a daemon's main(). See daemon_args.h.
 */
#include "daemon_args.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "log.h"

int daemon_begin(int argc, char **argv, const char *service, struct conf *c, const char **confdir)
{
    const char *opt_C = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            opt_C = argv[++i];
        else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2])
            opt_C = argv[i] + 2;
        else {
            fprintf(stderr, "usage: onehop-%s [-C DIR]\n", service);
            return 2;
        }
    }
    *confdir = conf_dir(opt_C);
    struct diag dg = DIAG_INIT;
    int rc = conf_load(c, *confdir, &dg);
    if (rc < 0) {
        diag_print(&dg, stderr);
        conf_free(c);
    }
    diag_free(&dg);
    if (rc < 0)
        return 1;
    if (log_open(service, c->log) < 0)
        log_warn("cannot open log %s: %m; logging to stderr", c->log);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}
