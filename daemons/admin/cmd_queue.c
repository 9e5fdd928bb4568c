/*
 * cmd_queue — `onehop queue [--json]` and `onehop queue show ID [--json]`
 * (SPEC 1): the queue listing (the same as `mailq` and `sendmail -bp`) and
 * one message in detail. The output formats are documented in queue/qlist.h
 * and onehop(8). Read-only: safe beside a running router (queue.h rule 1);
 * `show` verifies the message's content against its checksum first and
 * refuses (exit 1) a message that fails.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin/commands.h"
#include "admin/queue_access.h"
#include "qlist.h"
#include "strparse.h"

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

/* A message that fails its checks is never shown, and nothing is moved
 * here (the listings only read): the router has it quarantined through its
 * cleaner when it opens it for delivery. */
static int show_corrupt(struct queue *q, const char *id)
{
    struct queue_msg_fd m;
    const char *why = NULL;
    if (queue_msg_open(q, id, &m, &why) == 0) {
        queue_msg_fd_close(&m);
        return admin_fail("%s: changed while being read; try again", id);
    }
    return admin_fail("%s: message is corrupt (%s): not shown; left in the queue for the router "
                      "to quarantine",
                      id, why ? why : strerror(errno));
}

static int show_message(const char *confdir, const char *id, unsigned flags)
{
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    int rc = 0;
    if (qlist_print_message(q, id, flags, stdout) != 0)
        rc = errno == ENOENT    ? admin_fail("%s: no such message in the queue", id)
             : errno == EBADMSG ? show_corrupt(q, id)
                                : admin_fail("%s: %s", id, strerror(errno));
    admin_queue_close(&c, q);
    return rc;
}

static int list_queue(const char *confdir, unsigned flags, const struct qlist_filter *filter)
{
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    int rc = 0;
    if (qlist_print_selected(q, flags, filter, stdout) != 0)
        rc = admin_fail("cannot list the queue %s: %s", c.queue_dir, strerror(errno));
    admin_queue_close(&c, q);
    return rc;
}

/* Take the filter options out of the arguments (SPEC 1); 0, or the usage
 * error's exit status. */
static int take_filters(int *argc, char **argv, struct qlist_filter *f)
{
    int out = 0;
    memset(f, 0, sizeof(*f));
    f->now = time(NULL);
    for (int i = 0; i < *argc; i++) {
        const char *opt = argv[i];
        int is_filter = strcmp(opt, "--domain") == 0 || strcmp(opt, "--sender") == 0 ||
                        strcmp(opt, "--older-than") == 0;
        if (!is_filter) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc)
            return admin_usage_error("queue", "%s needs a value", opt);
        const char *value = argv[++i], *why = NULL;
        if (strcmp(opt, "--domain") == 0)
            f->domain = value;
        else if (strcmp(opt, "--sender") == 0)
            f->sender = value;
        else if (parse_duration(value, &f->older_than, &why) != 0)
            return admin_usage_error("queue", "--older-than \"%s\": %s", value, why);
    }
    *argc = out;
    return 0;
}

int cmd_queue(const char *confdir, int argc, char **argv)
{
    unsigned flags = take_json_flag(&argc, argv);
    struct qlist_filter filter;
    int rc = take_filters(&argc, argv, &filter);
    if (rc != 0)
        return rc;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return admin_usage_error("queue", "unknown option %s", argv[i]);
    if (argc == 1)
        return list_queue(confdir, flags, &filter);
    if (strcmp(argv[1], "show") != 0)
        return admin_usage_error("queue", "unknown argument \"%s\"", argv[1]);
    if (argc != 3)
        return admin_usage_error("queue", "queue show needs exactly one queue ID");
    return show_message(confdir, argv[2], flags);
}
