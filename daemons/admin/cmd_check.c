/*
 * cmd_check — `onehop check` (SPEC 1): validate onehop.conf, routes, sites
 * and aliases of the configuration directory DIR.
 *
 * Every mistake is printed on standard output as `FILE:LINE: message`, FILE
 * being DIR/NAME as the directory was given, followed by a count on standard
 * error. Exit status: 0 (and no output) when all is well, 1 when anything is
 * wrong, 2 on a usage error. The checks are confcheck.h's, which the master
 * also applies to a reload. It never changes a file and never talks to a
 * running instance.
 */
#include <stdio.h>

#include "admin/commands.h"
#include "confcheck.h"

int cmd_check(const char *confdir, int argc, char **argv)
{
    if (argc > 1)
        return admin_usage_error("check", "unexpected argument \"%s\"", argv[1]);
    struct diag d = DIAG_INIT;
    struct conf c;
    conf_check_dir(confdir, &c, &d);
    diag_print(&d, stdout);
    fflush(stdout);
    int status = d.n ? admin_fail("%zu mistake%s in %s", d.n, d.n == 1 ? "" : "s", confdir) : 0;
    diag_free(&d);
    conf_free(&c);
    return status;
}
