/*
 * cmd_manage — the administrator's queue changes (SPEC 1):
 *
 *     onehop delete ID... | --all | --deferred
 *     onehop hold ID...
 *     onehop release ID...
 *
 * Locking (queue.h rule 3): a running router owns the queue and keeps its
 * state in memory, so these commands change the queue themselves only when
 * they get the queue owner lock without waiting, that is when no router
 * runs; otherwise they change nothing and say that onehop is running. Each
 * change is durable (queue_update fdatasyncs) and logged as onehop/admin:
 * "ID: placed on hold", "ID: released from hold", and the queue library's
 * "ID: removed". A summary in postsuper's words goes to standard error.
 * Exit status: 0 when every named message was acted on, 1 otherwise.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addrlist.h"
#include "admin/commands.h"
#include "admin/queue_access.h"
#include "log.h"

enum action { ACTION_DELETE, ACTION_HOLD, ACTION_RELEASE };

static const struct {
    const char *command, *done, *logged;
} action_words[] = {
    [ACTION_DELETE] = {"delete", "Deleted", NULL},
    [ACTION_HOLD] = {"hold", "Placed on hold", "placed on hold"},
    [ACTION_RELEASE] = {"release", "Released from hold", "released from hold"},
};

struct selection {
    int all, deferred_only;
    char **ids;
    int nids;
};

static int parse_selection(enum action a, int argc, char **argv, struct selection *sel)
{
    const char *cmd = action_words[a].command;
    memset(sel, 0, sizeof(*sel));
    for (int i = 1; i < argc; i++) {
        if (a == ACTION_DELETE && strcmp(argv[i], "--all") == 0)
            sel->all = 1;
        else if (a == ACTION_DELETE && strcmp(argv[i], "--deferred") == 0)
            sel->deferred_only = 1;
        else if (argv[i][0] == '-')
            return admin_usage_error(cmd, "unknown option %s", argv[i]);
    }
    sel->ids = argv + 1;
    sel->nids = argc - 1 - sel->all - sel->deferred_only;
    if (sel->all + sel->deferred_only > 1 || ((sel->all || sel->deferred_only) && sel->nids > 0))
        return admin_usage_error(cmd, "give queue IDs, or --all, or --deferred");
    if (sel->nids == 0 && !sel->all && !sel->deferred_only)
        return admin_usage_error(cmd, "no queue ID given");
    return 0;
}

struct collect {
    struct addrlist *ids;
    int deferred_only;
};

static int collect_one(const struct queue_file *f, const struct queue_msg *m, void *arg)
{
    struct collect *c = arg;
    if (!c->deferred_only || queue_msg_state(m, f->place) == QSTATE_DEFERRED)
        addrlist_add(c->ids, m->id);
    return 0;
}

/* The ids the command acts on: those named, or every (deferred) message. */
static int collect_ids(struct queue *q, const struct selection *sel, struct addrlist *ids)
{
    if (!sel->all && !sel->deferred_only) {
        for (int i = 0; i < sel->nids; i++)
            if (strncmp(sel->ids[i], "--", 2) != 0)
                addrlist_add(ids, sel->ids[i]);
        return 0;
    }
    struct collect c = {ids, sel->deferred_only};
    return q ? queue_scan(q, collect_one, &c) : 0;
}

/* Who asked, for the deletion record: the login name of the real uid. */
static const char *who_asked(void)
{
    const struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "admin";
}

/* 1 if acted on, 0 if there was nothing to do (already held / not held),
 * -1 after printing why. */
static int act_on(struct queue *q, enum action a, const char *id)
{
    struct queue_file f;
    size_t index;
    if (!queue_id_valid(id)) {
        admin_fail("%s: not a queue ID", id);
        return -1;
    }
    if (!q || queue_find(q, id, &f, &index) != 0) {
        admin_fail("%s: no such message in the queue", id);
        return -1;
    }
    int held = f.msg[index].held,
        finished = queue_msg_state(&f.msg[index], f.place) == QSTATE_FINISHED;
    queue_file_free(&f);
    if (finished) {
        admin_fail("%s: no such message in the queue", id);
        return -1;
    }
    if ((a == ACTION_HOLD && held) || (a == ACTION_RELEASE && !held))
        return 0;
    int rc = a == ACTION_DELETE ? queue_delete(q, id, who_asked())
             : a == ACTION_HOLD ? queue_hold(q, id)
                                : queue_release(q, id);
    if (rc != 0) {
        admin_fail("%s: cannot %s: %s", id, action_words[a].command, strerror(errno));
        return -1;
    }
    if (action_words[a].logged)
        log_info("%s: %s", id, action_words[a].logged);
    return 1;
}

/* queue.h rule 3: act only as the queue owner, never beside a router. */
static int take_ownership(struct queue *q, enum action a)
{
    if (!q || queue_lock_owner(q, 0) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return admin_fail("cannot %s: onehop is running and its router owns the queue; stop it "
                          "with \"onehop stop\" and try again (nothing was changed)",
                          action_words[a].command);
    return admin_fail("cannot lock the queue %s: %s", queue_path(q), strerror(errno));
}

static int run_action(const char *confdir, enum action a, int argc, char **argv)
{
    struct selection sel;
    int rc = parse_selection(a, argc, argv, &sel);
    if (rc != 0)
        return rc;
    struct conf c;
    struct queue *q;
    if (admin_queue_open(confdir, &c, &q) != 0)
        return 1;
    if (take_ownership(q, a) != 0) {
        admin_queue_close(&c, q);
        return 1;
    }
    if (log_open("admin", c.log) != 0)
        log_open("admin", "stderr");
    struct addrlist ids = ADDRLIST_INIT;
    unsigned long done = 0;
    if (collect_ids(q, &sel, &ids) != 0)
        rc = admin_fail("cannot scan the queue %s: %s", c.queue_dir, strerror(errno));
    for (size_t i = 0; i < ids.n; i++) {
        int r = act_on(q, a, ids.v[i]);
        if (r < 0)
            rc = 1;
        else
            done += (unsigned long)r;
    }
    fprintf(stderr, "onehop: %s: %lu message%s\n", action_words[a].done, done,
            done == 1 ? "" : "s");
    addrlist_free(&ids);
    admin_queue_close(&c, q);
    return rc;
}

int cmd_delete(const char *confdir, int argc, char **argv)
{
    return run_action(confdir, ACTION_DELETE, argc, argv);
}

int cmd_hold(const char *confdir, int argc, char **argv)
{
    return run_action(confdir, ACTION_HOLD, argc, argv);
}

int cmd_release(const char *confdir, int argc, char **argv)
{
    return run_action(confdir, ACTION_RELEASE, argc, argv);
}
