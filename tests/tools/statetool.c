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
 * Exit status: 0, 1 on an error (printed), 64 on usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
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

static int usage(void)
{
    fprintf(stderr, "usage: statetool append STATE_DIR COUNT GROUP CHECKPOINT_EVERY [STEP:N]\n"
                    "       statetool dump STATE_DIR\n");
    return 64;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return run_dump(argv[2]);
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
