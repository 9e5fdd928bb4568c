/*
 * cmd_queue — `onehop queue [--json]` and `onehop queue show ID [--json]`
 * (SPEC 1): the queue listing (the same as `mailq` and `sendmail -bp`) and
 * one message in detail. The output formats are documented in queue/qlist.h
 * and onehop(8). Read-only: safe beside a running router (queue.h rule 1).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/commands.h"
#include "admin/queue_access.h"
#include "qlist.h"

/* Remove every "--json" from the arguments; returns QLIST_JSON if any. */
static unsigned take_json_flag(int *argc, char **argv)
{
    unsigned flags = 0;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            flags |= QLIST_JSON;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    return flags;
}

static int show_message(const char *confdir, const char *id, unsigned flags)
{
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    int rc = 0;
    if (qlist_print_message(q, id, flags, stdout) != 0)
        rc = errno == ENOENT ? admin_fail("%s: no such message in the queue", id)
                             : admin_fail("%s: %s", id, strerror(errno));
    admin_queue_close(&c, q);
    return rc;
}

static int list_queue(const char *confdir, unsigned flags)
{
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    int rc = 0;
    if (qlist_print_queue(q, flags, stdout) != 0)
        rc = admin_fail("cannot list the queue %s: %s", c.queue_dir, strerror(errno));
    admin_queue_close(&c, q);
    return rc;
}

int cmd_queue(const char *confdir, int argc, char **argv)
{
    unsigned flags = take_json_flag(&argc, argv);
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return admin_usage_error("queue", "unknown option %s", argv[i]);
    if (argc == 1)
        return list_queue(confdir, flags);
    if (strcmp(argv[1], "show") != 0)
        return admin_usage_error("queue", "unknown argument \"%s\"", argv[1]);
    if (argc != 3)
        return admin_usage_error("queue", "queue show needs exactly one queue ID");
    return show_message(confdir, argv[2], flags);
}
