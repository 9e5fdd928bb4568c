/*
 * queue_access — configuration and queue opening for the queue subcommands
 * of `onehop`. See queue_access.h.
 */
#include "admin/queue_access.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/commands.h"
#include "diag.h"
#include "qlist.h"

int admin_conf_open(const char *confdir, struct conf *c)
{
    struct diag d = DIAG_INIT;
    if (conf_load(c, confdir, &d) != 0) {
        diag_print(&d, stderr);
        diag_free(&d);
        conf_free(c);
        return admin_fail("the configuration has errors (see onehop check)");
    }
    diag_free(&d);
    return 0;
}

int admin_queue_attach(struct conf *c, struct queue **q)
{
    const char *why = NULL;
    *q = NULL;
    if (qlist_open(c->queue_dir, q, &why) != 0) {
        int e = errno;
        admin_fail("%s: %s: %s", c->queue_dir, why ? why : "cannot open", strerror(e));
        conf_free(c);
        return 1;
    }
    return 0;
}

int admin_queue_open(const char *confdir, struct conf *c, struct queue **q)
{
    *q = NULL;
    return admin_conf_open(confdir, c) != 0 ? 1 : admin_queue_attach(c, q);
}

void admin_queue_close(struct conf *c, struct queue *q)
{
    queue_close(q);
    conf_free(c);
}
