/*
 * statetool — drives the state side's journal (queue/state_journal.h) for
 * the crash tests of tests/integration/test_state_crash.py.
 *
 *   statetool append STATE_DIR COUNT GROUP CHECKPOINT_EVERY [STEP:N]
 *       Replays STATE_DIR (the owner's open: repairs what a crash left),
 *       then appends COUNT records numbered after the highest one replayed,
 *       GROUP records per flush (group commit), and writes a checkpoint
 *       (snapshot: every number known so far) after every CHECKPOINT_EVERY
 *       records (0: never). Prints "ack N" for each record only after the
 *       flush that made it durable returned. STEP:N kills the process with
 *       SIGKILL at the Nth time the journal reaches crash point STEP
 *       ("append", "commit", "segment-new", "checkpoint-write",
 *       "checkpoint-synced", "checkpoint-renamed", "segment-remove").
 *   statetool dump STATE_DIR
 *       Replays (as the owner) and prints every number, one per line, then
 *       "report checkpoint=C records=R torn=T damaged=D removed=X".
 *   statetool route CONFDIR ONEHOP_QUEUE [KEEP_ID...]
 *       Plays the router's part towards a real cleaner (queue/state.h,
 *       queue/clean_proto.h): starts ONEHOP_QUEUE -C CONFDIR --clean on a
 *       socketpair, opens the state of CONFDIR's queue (queue_dir =
 *       CONFDIR/queue), learns the files, hands every request the state
 *       gives out to the cleaner and records the answers ("KIND ID ok
 *       CHANGED" or "KIND ID err ERRNO" per request), delivers every due
 *       recipient (a KEEP_ID's are deferred an hour instead, "451 kept"),
 *       and serves the cleaner again until no request is left. With
 *       STATETOOL_KILL_AFTER_SEND=N it kills itself (SIGKILL) once the Nth
 *       request was sent and before its answer is recorded. With
 *       STATETOOL_WINDOW=N the active window is N recipients and a
 *       checkpoint is written after the first requests (so files are
 *       frozen, and thawed as they are delivered), and after each
 *       message's outcomes one as the router's loop would (when the files
 *       in memory pass the window: each writes the index of what freezes).
 *       Prints "deliver ID" before a message's outcomes are recorded and
 *       "ack ID" once they are durable. With STATETOOL_KILL_AT=STEP:N it
 *       kills itself (SIGKILL) at the Nth time the state's journal reaches
 *       crash point STEP (those of append, and "index-synced",
 *       "index-renamed" of the state's index).
 * Exit status: 0, 1 on an error (printed), 64 on usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "channel_core.h"
#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "safeio.h"
#include "state.h"
#include "state_journal.h"

#define REC_NUMBER 'n'

struct numbers {
    unsigned long long *v;
    size_t n, cap, top;
};

static void numbers_add(struct numbers *ns, unsigned long long x)
{
    ns->v = xgrow(ns->v, &ns->cap, ns->n + 1, sizeof(ns->v[0]));
    ns->v[ns->n++] = x;
    if (x > ns->top)
        ns->top = x;
}

static int replay_number(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                         size_t len)
{
    char text[32];
    if (type != REC_NUMBER || len == 0 || len >= sizeof(text))
        return 1;
    memcpy(text, p, len);
    text[len] = '\0';
    numbers_add(arg, strtoull(text, NULL, 10));
    return 0;
}

struct crash {
    const char *step;
    unsigned long at, seen;
};

static void crash_hook(const char *step, void *arg)
{
    struct crash *c = arg;
    if (c->step && strcmp(step, c->step) == 0 && ++c->seen == c->at) {
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
}

static int snapshot_numbers(void *arg, struct sj_snapshot *s)
{
    const struct numbers *ns = arg;
    for (size_t i = 0; i < ns->n; i++) {
        char text[32];
        int len = snprintf(text, sizeof(text), "%llu", ns->v[i]);
        sj_snapshot_add(s, REC_NUMBER, text, (size_t)len);
    }
    return 0;
}

static int open_journal(const char *dir, struct sj **j, struct numbers *ns, struct sj_report *r)
{
    const char *why = NULL;
    if (sj_open(j, dir, SJ_OPEN_CREATE, replay_number, ns, r, &why) != 0) {
        fprintf(stderr, "statetool: %s: %s: %s\n", dir, why, strerror(errno));
        return -1;
    }
    return 0;
}

static int flush_and_ack(struct sj *j, unsigned long long first, unsigned long long last)
{
    if (sj_flush(j) != 0) {
        fprintf(stderr, "statetool: flush: %s\n", strerror(errno));
        return -1;
    }
    for (unsigned long long x = first; x <= last; x++)
        printf("ack %llu\n", x);
    fflush(stdout);
    return 0;
}

static int run_append(const char *dir, unsigned long count, unsigned long group,
                      unsigned long every, struct crash *c)
{
    struct numbers ns = {0};
    struct sj_report r;
    struct sj *j;
    if (open_journal(dir, &j, &ns, &r) != 0)
        return 1;
    sj_set_step_hook(j, crash_hook, c);
    unsigned long long next = ns.top + 1, first = next;
    int rc = 0;
    for (unsigned long i = 1; i <= count && rc == 0; i++, next++) {
        char text[32];
        int len = snprintf(text, sizeof(text), "%llu", next);
        sj_add(j, REC_NUMBER, text, (size_t)len);
        numbers_add(&ns, next);
        if (i % group == 0 || i == count) {
            rc = flush_and_ack(j, first, next);
            first = next + 1;
        }
        if (rc == 0 && every && i % every == 0 && sj_checkpoint(j, snapshot_numbers, &ns) != 0) {
            fprintf(stderr, "statetool: checkpoint: %s\n", strerror(errno));
            rc = -1;
        }
    }
    sj_close(j);
    free(ns.v);
    return rc == 0 ? 0 : 1;
}

static int run_dump(const char *dir)
{
    struct numbers ns = {0};
    struct sj_report r;
    struct sj *j;
    if (open_journal(dir, &j, &ns, &r) != 0)
        return 1;
    for (size_t i = 0; i < ns.n; i++)
        printf("%llu\n", ns.v[i]);
    printf("report checkpoint=%llu records=%lu torn=%llu damaged=%lu removed=%lu\n",
           (unsigned long long)r.checkpoint, r.records, (unsigned long long)r.torn_bytes, r.damaged,
           r.removed);
    sj_close(j);
    free(ns.v);
    return 0;
}

/* ------------------------------------------------------------ route ---- */

static const char *kind_name(int kind)
{
    return kind == CLEAN_TAKE      ? "TAKE"
           : kind == CLEAN_RECLAIM ? "RECLAIM"
           : kind == CLEAN_REMOVE  ? "REMOVE"
                                   : "QUARANTINE";
}

static pid_t start_cleaner(const char *confdir, const char *binary, int *fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sv[1], 0);
        dup2(sv[1], 1);
        execl(binary, binary, "-C", confdir, "--clean", (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

struct router {
    struct state *s;
    int fd;
    unsigned long sent, kill_after;
};

/* One request to the cleaner and its answer, recorded. */
static int ask_cleaner(struct router *rt, const struct state_clean_req *r)
{
    struct buf out = BUF_INIT, rec = BUF_INIT;
    const char *why = NULL;
    clean_request_encode(&out, (enum clean_type)r->kind, r->id,
                         r->kind == CLEAN_QUARANTINE ? r->why : NULL);
    int rc = chan_send_record(rt->fd, out.s, out.len, NULL, 0, -1);
    buf_free(&out);
    if (rc == 0 && ++rt->sent == rt->kill_after) {
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
    if (rc != 0 || chan_recv_record(rt->fd, CLEAN_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why) != 1) {
        fprintf(stderr, "statetool: the cleaner: %s\n", why ? why : strerror(errno));
        buf_free(&rec);
        return -1;
    }
    struct ipc_reader rd;
    struct clean_reply rp;
    rc = clean_reply_decode(&rd, rec.s, rec.len, &rp, &why);
    if (rc == 0 && rp.ok)
        printf("%s %s ok %u\n", kind_name(r->kind), r->id, (unsigned)rp.changed);
    else if (rc == 0)
        printf("%s %s err %u\n", kind_name(r->kind), r->id, (unsigned)rp.err);
    uint32_t err = rc == 0 && !rp.ok ? rp.err : 0;
    ipc_close(&rd);
    buf_free(&rec);
    if (rc != 0)
        return -1;
    state_clean_done(rt->s, r, err);
    return state_flush(rt->s);
}

static int serve_cleaner(struct router *rt)
{
    struct state_clean_req r;
    if (state_flush(rt->s) != 0)
        return -1;
    while (state_clean_next(rt->s, &r))
        if (ask_cleaner(rt, &r) != 0)
            return -1;
    return 0;
}

static int kept(const char *id, char **keep, int nkeep)
{
    for (int i = 0; i < nkeep; i++)
        if (strcmp(keep[i], id) == 0)
            return 1;
    return 0;
}

/* Every due message's recipients: delivered, or deferred when kept. */
static int deliver_due(struct router *rt, char **keep, int nkeep)
{
    const struct state_msg *m;
    int64_t now = (int64_t)time(NULL);
    int looped = getenv("STATETOOL_WINDOW") != NULL;
    while (state_next_due(rt->s, now, &m, NULL)) {
        char id[QUEUE_ID_LEN + 1];
        state_msg_id(m, id);
        int defer = kept(id, keep, nkeep);
        if (!defer)
            printf("deliver %s\n", id);
        for (uint32_t k = 0; k < m->nrcpt; k++) {
            if (m->rcpt[k].state == SRCPT_DELIVERED || m->rcpt[k].state == SRCPT_BOUNCED)
                continue;
            uint64_t seq = defer ? state_deferred(rt->s, id, k, now, now + 3600, "451 kept")
                                 : state_delivered(rt->s, id, k, now, "250 ok");
            if (seq == 0)
                return -1;
        }
        state_dispatch_done(rt->s, id);
        if (!looped)
            continue;
        if (state_flush(rt->s) != 0 || state_maybe_checkpoint(rt->s, 0) < 0)
            return -1;
        if (!defer)
            printf("ack %s\n", id);
        fflush(stdout);
    }
    return state_flush(rt->s);
}

/* STATETOOL_WINDOW: a small window and a checkpoint, so files freeze. */
static int apply_window(struct router *rt)
{
    const char *window = getenv("STATETOOL_WINDOW");
    if (!window)
        return 0;
    state_set_active_limit(rt->s, strtoul(window, NULL, 10));
    return state_maybe_checkpoint(rt->s, 1) == 1 ? 0 : -1;
}

static int run_route(const char *confdir, const char *binary, char **keep, int nkeep)
{
    struct buf qdir = BUF_INIT;
    struct queue *q = NULL;
    struct router rt = {NULL, -1, 0, 0};
    const char *why = NULL, *kill_after = getenv("STATETOOL_KILL_AFTER_SEND");
    rt.kill_after = kill_after ? strtoul(kill_after, NULL, 10) : 0;
    log_open("statetool", "/dev/null");
    path_join(&qdir, confdir, "queue");
    pid_t pid = start_cleaner(confdir, binary, &rt.fd);
    struct crash c = {NULL, 0, 0};
    char *kill_at = getenv("STATETOOL_KILL_AT"), *colon = kill_at ? strchr(kill_at, ':') : NULL;
    if (colon) {
        *colon = '\0';
        c.step = kill_at;
        c.at = strtoul(colon + 1, NULL, 10);
    }
    int rc = pid > 0 && queue_open(&q, buf_cstr(&qdir), 0, &why) == 0 &&
                     state_open(&rt.s, q, 0, NULL, &why) == 0 &&
                     (sj_set_step_hook(state_journal(rt.s), crash_hook, &c), 1) &&
                     state_learn_files(rt.s) >= 0 && serve_cleaner(&rt) == 0 &&
                     apply_window(&rt) == 0 && deliver_due(&rt, keep, nkeep) == 0 &&
                     serve_cleaner(&rt) == 0
                 ? 0
                 : 1;
    if (rc != 0)
        fprintf(stderr, "statetool: route: %s: %s\n", why ? why : "failed", strerror(errno));
    printf("done\n");
    state_close(rt.s);
    queue_close(q);
    if (rt.fd >= 0)
        close(rt.fd); /* end of input: the cleaner exits */
    if (pid > 0)
        waitpid(pid, NULL, 0);
    buf_free(&qdir);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: statetool append STATE_DIR COUNT GROUP CHECKPOINT_EVERY [STEP:N]\n"
                    "       statetool dump STATE_DIR\n"
                    "       statetool route CONFDIR ONEHOP_QUEUE [KEEP_ID...]\n");
    return 64;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return run_dump(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "route") == 0)
        return run_route(argv[2], argv[3], argv + 4, argc - 4);
    if ((argc != 6 && argc != 7) || strcmp(argv[1], "append") != 0)
        return usage();
    struct crash c = {NULL, 0, 0};
    char *colon = argc == 7 ? strchr(argv[6], ':') : NULL;
    if (argc == 7) {
        if (!colon)
            return usage();
        *colon = '\0';
        c.step = argv[6];
        c.at = strtoul(colon + 1, NULL, 10);
    }
    unsigned long count = strtoul(argv[3], NULL, 10), group = strtoul(argv[4], NULL, 10);
    if (count == 0 || group == 0)
        return usage();
    return run_append(argv[2], count, group, strtoul(argv[5], NULL, 10), &c);
}
