/*
 * cmd_manage — the administrator's queue changes (SPEC 1):
 *
 *     onehop flush [ID | @DOMAIN]
 *     onehop delete ID... | --all | --deferred
 *     onehop hold ID...
 *     onehop release ID...
 *
 * They change the router's state side (queue/state.h), never a message
 * file. While a router runs they ask it on its control socket
 * (run_dir/router.sock, or queue_dir/state/router.sock under root;
 * common/router_ctl.h): it records the change, makes
 * it durable, logs it and answers; its notes and summary are printed as
 * they come. A peer the router does not admit (only the instance's owner
 * and root) is told so, exit 1. flush needs the router (it is the one that
 * delivers): with none running it says the instance is stopped, exit 1.
 *
 * With no router running, delete, hold and release act themselves: a
 * running router owns the state and holds queue_dir/state/lock for its
 * life, so they act only when they get that lock without waiting;
 * otherwise (a router starting, its socket not up yet) they change nothing
 * and say that onehop is running. Acting, they learn the message
 * files the state does not know yet, record each change in the journal,
 * flush it (one fdatasync) and only then report and log it as onehop/admin:
 * "ID: placed on hold", "ID: released from hold", "ID: removed". A deleted
 * message's file is reclaimed or removed later by the router's cleaner
 * (the request is in the journal). A summary in postsuper's words goes to
 * standard error. Exit status: 0 when every named message was acted on, 1
 * otherwise.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addrlist.h"
#include "admin/commands.h"
#include "admin/queue_access.h"
#include "log.h"
#include "router_ctl.h"
#include "state.h"

/* A request may act on a whole queue (delete --all): the router answers
 * once the journal is durable. */
#define ROUTER_CALL_TIMEOUT_MS 120000

enum action { ACTION_DELETE, ACTION_HOLD, ACTION_RELEASE };

static const struct {
    const char *command, *done, *logged;
} action_words[] = {
    [ACTION_DELETE] = {"delete", "Deleted", "removed"},
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

static int collect_one(const struct state_msg *m, void *arg)
{
    struct collect *c = arg;
    char id[QUEUE_ID_LEN + 1];
    state_msg_id(m, id);
    if (!c->deferred_only || state_msg_state(m) == SMSG_DEFERRED)
        addrlist_add(c->ids, id);
    return 0;
}

/* The ids the command acts on: those named, or every (deferred) message. */
static void collect_ids(struct state *s, const struct selection *sel, struct addrlist *ids)
{
    if (!sel->all && !sel->deferred_only) {
        for (int i = 0; i < sel->nids; i++)
            if (strncmp(sel->ids[i], "--", 2) != 0)
                addrlist_add(ids, sel->ids[i]);
        return;
    }
    struct collect c = {ids, sel->deferred_only};
    if (s)
        state_each(s, collect_one, &c);
}

/* Who asked, for the deletion record: the login name of the real uid. */
static const char *who_asked(void)
{
    const struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "admin";
}

/* 1 if a change was recorded, 0 if there was nothing to do (already held /
 * not held), -1 after printing why. */
static int act_on(struct state *s, enum action a, const char *id)
{
    if (!queue_id_valid(id)) {
        admin_fail("%s: not a queue ID", id);
        return -1;
    }
    const struct state_msg *m = s ? state_find(s, id) : NULL;
    if (!m) {
        admin_fail("%s: no such message in the queue", id);
        return -1;
    }
    if ((a == ACTION_HOLD && m->held) || (a == ACTION_RELEASE && !m->held))
        return 0;
    int64_t now = (int64_t)time(NULL);
    uint64_t seq = a == ACTION_DELETE ? state_delete(s, id, now, who_asked())
                   : a == ACTION_HOLD ? state_hold(s, id, now)
                                      : state_release(s, id, now);
    if (seq == 0) {
        admin_fail("%s: cannot %s: %s", id, action_words[a].command, strerror(errno));
        return -1;
    }
    return 1;
}

/* Open the state as its owner, never beside a router. As root, a state/
 * made now belongs to the instance's router account (SPEC 7: USER-router)
 * when it exists, never to root. */
static int take_ownership(struct queue *q, const struct conf *c, enum action a, struct state **s)
{
    const char *why = NULL;
    *s = NULL;
    if (!q)
        return 0;
    struct buf account = BUF_INIT;
    buf_printf(&account, "%s-router", c->user);
    int given = state_dir_give(q, buf_cstr(&account), &why);
    buf_free(&account);
    if (given < 0)
        return admin_fail("cannot %s: %s/state: %s: %s (nothing was changed)",
                          action_words[a].command, queue_path(q), why, strerror(errno));
    if (state_open(s, q, 0, NULL, &why) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return admin_fail("cannot %s: onehop is running and its router owns the queue; stop it "
                          "with \"onehop stop\" and try again (nothing was changed)",
                          action_words[a].command);
    return admin_fail("cannot open the queue state of %s: %s: %s", queue_path(q),
                      why ? why : "error", strerror(errno));
}

/* Make the changes durable, then log them (only what is durable is told). */
static int commit_and_log(struct state *s, enum action a, const struct addrlist *done)
{
    if (s && (state_flush(s) != 0 || state_maybe_checkpoint(s, 0) < 0))
        return admin_fail("cannot record the changes in the queue state: %s (nothing was "
                          "changed)",
                          strerror(errno));
    for (size_t i = 0; i < done->n; i++)
        log_info("%s: %s", done->v[i], action_words[a].logged);
    return 0;
}

/* The exit status of a request the router answered (or refused). */
static int router_exit(enum rctl_ask_result res)
{
    return res == RCTL_ASK_DONE ? 0 : 1;
}

/* Ask the running router: RCTL_ASK_NOT_RUNNING when none listens (the
 * caller acts itself), else what happened, told to the user. */
static enum rctl_ask_result ask_router(const struct conf *c, enum action a,
                                       const struct selection *sel)
{
    static const uint32_t ops[] = {
        [ACTION_DELETE] = RCTL_DELETE, [ACTION_HOLD] = RCTL_HOLD, [ACTION_RELEASE] = RCTL_RELEASE};
    struct rctl_request req = {ops[a],
                               sel->all             ? RCTL_SEL_ALL
                               : sel->deferred_only ? RCTL_SEL_DEFERRED
                                                    : RCTL_SEL_NAMED,
                               sel->all || sel->deferred_only ? NULL : sel->ids,
                               sel->all || sel->deferred_only ? 0 : (size_t)sel->nids};
    return rctl_ask(c->run_dir, c->queue_dir, &req, "onehop", ROUTER_CALL_TIMEOUT_MS);
}

static int run_action(const char *confdir, enum action a, int argc, char **argv)
{
    struct selection sel;
    int rc = parse_selection(a, argc, argv, &sel);
    if (rc != 0)
        return rc;
    struct conf c;
    struct queue *q;
    struct state *s;
    if (admin_conf_open(confdir, &c) != 0)
        return 1;
    enum rctl_ask_result asked = ask_router(&c, a, &sel);
    if (asked != RCTL_ASK_NOT_RUNNING) {
        conf_free(&c);
        return router_exit(asked);
    }
    if (admin_queue_attach(&c, &q) != 0)
        return 1;
    if (take_ownership(q, &c, a, &s) != 0) {
        admin_queue_close(&c, q);
        return 1;
    }
    if (s)
        state_set_active_limit(s, (unsigned long)c.queue_active_limit);
    if (log_open("admin", c.log) != 0)
        log_open("admin", "stderr");
    if (s && state_learn_files(s) < 0)
        rc = admin_fail("cannot read the queue %s: %s", c.queue_dir, strerror(errno));
    struct addrlist ids = ADDRLIST_INIT, done = ADDRLIST_INIT;
    collect_ids(s, &sel, &ids);
    for (size_t i = 0; i < ids.n; i++) {
        int r = act_on(s, a, ids.v[i]);
        if (r < 0)
            rc = 1;
        else if (r > 0)
            addrlist_add(&done, ids.v[i]);
    }
    size_t changed = done.n;
    if (commit_and_log(s, a, &done) != 0) {
        rc = 1;
        changed = 0;
    }
    fprintf(stderr, "onehop: %s: %zu message%s\n", action_words[a].done, changed,
            changed == 1 ? "" : "s");
    addrlist_free(&ids);
    addrlist_free(&done);
    state_close(s);
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

int cmd_flush(const char *confdir, int argc, char **argv)
{
    if (argc > 2)
        return admin_usage_error("flush", "give at most one queue ID or @DOMAIN");
    if (argc == 2 && argv[1][0] == '-')
        return admin_usage_error("flush", "unknown option %s", argv[1]);
    if (argc == 2 && argv[1][0] != '@' && !queue_id_valid(argv[1]))
        return admin_fail("%s: not a queue ID (flush ID, or flush @DOMAIN)", argv[1]);
    struct conf c;
    if (admin_conf_open(confdir, &c) != 0)
        return 1;
    struct rctl_request req = {RCTL_FLUSH, RCTL_SEL_NAMED, argv + 1, (size_t)(argc - 1)};
    enum rctl_ask_result asked =
        rctl_ask(c.run_dir, c.queue_dir, &req, "onehop", ROUTER_CALL_TIMEOUT_MS);
    int rc = router_exit(asked);
    if (asked == RCTL_ASK_NOT_RUNNING)
        admin_fail("cannot flush: the instance %s is stopped (no router runs); queued mail is "
                   "delivered when it starts (onehop start)",
                   c.config_dir);
    conf_free(&c);
    return rc;
}
