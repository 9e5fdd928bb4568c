/*
 * cmd_qstat — `onehop qstat [--json]` (SPEC 1): how many messages are
 * queued (total, incoming, active, deferred, hold; corrupt files too) and
 * the age of the oldest. Read-only: safe beside a running router.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin/commands.h"
#include "admin/queue_access.h"
#include "qlist.h"

int cmd_qstat(const char *confdir, int argc, char **argv)
{
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            flags |= QLIST_JSON;
        else
            return admin_usage_error("qstat", "unknown argument \"%s\"", argv[i]);
    }
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    int rc = 0;
    if (qlist_print_counts(q, flags, time(NULL), stdout) != 0)
        rc = admin_fail("cannot count the queue %s: %s", c.queue_dir, strerror(errno));
    admin_queue_close(&c, q);
    return rc;
}
