/*
 * cmd_qshape — `onehop qshape [--json] [deferred|active|hold|all]` (SPEC
 * 1): where mail piles up, by recipient domain and age (qshape.h has the
 * table). The queue named: deferred (messages waiting for a retry), active
 * (incoming and active: not tried yet or being tried, Postfix qshape's
 * default pair), hold, or all (the default: every queued message).
 *
 * The truth is the router's state side (queue/state.h, opened read-only
 * without the lock, as `onehop queue` does: safe beside a running router):
 * each message's state and which recipients are still pending (not
 * delivered, not bounced); the addresses and arrival come from the message
 * files. A file no router has learned yet counts as its file says; when
 * state/ cannot be read, every message counts as its file says. Read-only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/commands.h"
#include "admin/qshape.h"
#include "admin/queue_access.h"
#include "mem.h"
#include "state.h"

#define STATE_OPEN_TRIES 5 /* a checkpoint under the reader: start over */

enum which { WHICH_ALL, WHICH_DEFERRED, WHICH_ACTIVE, WHICH_HOLD };

static const char *const which_names[] = {[WHICH_ALL] = "all",
                                          [WHICH_DEFERRED] = "deferred",
                                          [WHICH_ACTIVE] = "active",
                                          [WHICH_HOLD] = "hold"};

struct shape_scan {
    struct queue *q;
    struct state *st; /* NULL: state/ unreadable or absent */
    enum which which;
    time_t now;
    struct qshape table;
    const char **addrs; /* the pending recipients of one message */
    size_t cap;
};

static int state_selected(enum which w, const char *state)
{
    switch (w) {
    case WHICH_DEFERRED:
        return strcmp(state, "deferred") == 0;
    case WHICH_ACTIVE:
        return strcmp(state, "incoming") == 0 || strcmp(state, "active") == 0;
    case WHICH_HOLD:
        return strcmp(state, "hold") == 0;
    default:
        return strcmp(state, "finished") != 0;
    }
}

/* One message: its state, its pending recipients (from the state when it
 * knows the message, else from the file). */
static void shape_message(struct shape_scan *sc, const struct queue_file *f, size_t index,
                          const struct state_file *sf)
{
    const struct queue_msg *m = &f->msg[index];
    const struct state_msg *sm =
        sf && index < sf->nmsg && sf->msg[index].nrcpt == m->nrcpt ? &sf->msg[index] : NULL;
    const char *state = sm ? state_msg_state_name(state_msg_state(sm))
                           : queue_state_name(queue_msg_state(m, f->place));
    if (!state_selected(sc->which, state))
        return;
    size_t n = 0;
    sc->addrs = xgrow(sc->addrs, &sc->cap, m->nrcpt + 1, sizeof(*sc->addrs));
    for (size_t k = 0; k < m->nrcpt; k++) {
        int pending = sm ? sm->rcpt[k].state == SRCPT_PENDING || sm->rcpt[k].state == SRCPT_DEFERRED
                         : m->rcpt[k].state == QRCPT_PENDING;
        if (pending)
            sc->addrs[n++] = m->rcpt[k].addr;
    }
    int64_t age = (int64_t)sc->now - (int64_t)(m->arrival_us / 1000000);
    qshape_add_message(&sc->table, age, sc->addrs, n);
}

static void shape_file(struct shape_scan *sc, const char *fid)
{
    struct queue_file f;
    if (queue_load(sc->q, fid, &f) != 0)
        return; /* gone meanwhile, or corrupt: left for the router's recovery */
    const struct state_file *sf = sc->st ? state_find_file(sc->st, fid) : NULL;
    for (size_t k = 0; k < f.nmsg; k++)
        shape_message(sc, &f, k, sf);
    if (sc->st) /* a frozen file read back is frozen again: one at a time */
        state_file_done(sc->st, fid);
    queue_file_free(&f);
}

static int shape_place(struct shape_scan *sc, enum queue_place place)
{
    char **fids;
    size_t n;
    if (queue_list_files(sc->q, place, &fids, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        shape_file(sc, fids[i]);
    queue_ids_free(fids, n);
    return 0;
}

/* The state, read-only; NULL when it cannot be read (EACCES: the files
 * alone) or is not there yet. -1 on another error. */
static int open_state(struct queue *q, struct state **st)
{
    const char *why = NULL;
    *st = NULL;
    for (int tries = 0; tries < STATE_OPEN_TRIES; tries++) {
        if (state_open(st, q, STATE_OPEN_READONLY, NULL, &why) == 0)
            return 0;
        if (errno == EACCES || errno == ENOENT)
            return 0;
        if (errno != EAGAIN)
            return admin_fail("cannot read the queue state of %s: %s: %s", queue_path(q),
                              why ? why : "error", strerror(errno));
    }
    return admin_fail("the queue state of %s changed under every read; try again", queue_path(q));
}

static int parse_args(int argc, char **argv, int *json, enum which *which)
{
    int named = 0;
    *json = 0;
    *which = WHICH_ALL;
    for (int i = 1; i < argc; i++) {
        int found = 0;
        if (strcmp(argv[i], "--json") == 0) {
            *json = found = 1;
            continue;
        }
        for (unsigned w = 0; w < sizeof(which_names) / sizeof(which_names[0]); w++)
            if (strcmp(argv[i], which_names[w]) == 0) {
                *which = (enum which)w;
                found = 1;
            }
        if (!found || named++)
            return admin_usage_error("qshape", "unexpected argument \"%s\"", argv[i]);
    }
    return 0;
}

int cmd_qshape(const char *confdir, int argc, char **argv)
{
    int json;
    struct shape_scan sc = {0};
    int rc = parse_args(argc, argv, &json, &sc.which);
    if (rc != 0)
        return rc;
    struct conf c;
    if (admin_queue_open(confdir, &c, &sc.q) != 0)
        return 1;
    qshape_init(&sc.table);
    sc.now = time(NULL);
    if (sc.q && open_state(sc.q, &sc.st) != 0)
        rc = 1;
    if (rc == 0 && sc.q && (shape_place(&sc, QUEUE_INCOMING) || shape_place(&sc, QUEUE_ACTIVE)))
        rc = admin_fail("cannot read the queue %s: %s", c.queue_dir, strerror(errno));
    if (rc == 0) {
        struct buf out = BUF_INIT;
        qshape_sort(&sc.table);
        if (json)
            qshape_json(&sc.table, which_names[sc.which], &out);
        else
            qshape_text(&sc.table, &out);
        if (fwrite(out.s, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
            rc = admin_fail("cannot write the table: %s", strerror(errno));
        buf_free(&out);
    }
    free(sc.addrs);
    qshape_free(&sc.table);
    state_close(sc.st);
    admin_queue_close(&c, sc.q);
    return rc;
}
