/*
 * statebench — the state side's benchmarks (bench/state_bench.sh; results
 * in bench/RESULTS.md). Not a test: it prints measurements.
 *
 *   statebench outcomes QUEUE_DIR CALLERS OUTCOMES
 *       Queues OUTCOMES/20 messages of 20 recipients (100 messages a file),
 *       learns and takes them, then forks CALLERS processes that each send
 *       one recipient outcome at a time over a socketpair and wait for its
 *       acknowledgement, as delivery daemons would. The owner loop is the
 *       router's: poll, record every outcome that arrived (state_delivered),
 *       one state_flush (group commit), then acknowledge them. Prints
 *       "outcomes=N callers=C seconds=S rate=R fdatasyncs=F per_outcome=X".
 *   statebench make-files QUEUE_DIR N
 *       N one-message files (one recipient, 500 bytes) straight into
 *       active/, as taken files of a queue of one-shot injections: one file
 *       committed by the queue library, then N copies of its image, each
 *       under a new file id written into its header (header CRC redone;
 *       every reader checks it). A benchmark's fixture only: the copies are
 *       not fsynced (N one-shot commits would take hours of fsyncs).
 *   statebench take-all QUEUE_DIR
 *       Moves every file of incoming/ to active/ (what the cleaner's TAKE
 *       does), so that a start-up measures messages that are due.
 *   statebench startup QUEUE_DIR [checkpoint]
 *       Opens the state as its owner, learns the files, and asks for the
 *       first due message; prints "open=S learn=S first_due=S files=N
 *       messages=M learned=L ... recipients_in_memory=R files_in_memory=F"
 *       (seconds). With "checkpoint": then writes a
 *       checkpoint (so the next start replays it instead of the files).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "queue_impl.h" /* the header's encoding, for make-files */
#include "safeio.h"
#include "state.h"

#define RCPTS 20
#define MSGS_PER_FILE 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "statebench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct queue *open_queue(const char *dir)
{
    struct queue *q;
    const char *why = NULL;
    if (queue_open(&q, dir, QUEUE_OPEN_CREATE, &why) != 0)
        die(why ? why : "queue_open");
    return q;
}

static struct state *open_state(struct queue *q)
{
    struct state *s;
    const char *why = NULL;
    if (state_open(&s, q, 0, NULL, &why) != 0)
        die(why ? why : "state_open");
    return s;
}

/* nmsg messages of RCPTS recipients; their ids appended to ids. */
static void make_messages(struct queue *q, size_t nmsg, char (*ids)[QUEUE_ID_LEN + 1])
{
    const char *rcpt[RCPTS];
    char names[RCPTS][32];
    for (int k = 0; k < RCPTS; k++) {
        snprintf(names[k], sizeof(names[k]), "rcpt%d@b.test", k);
        rcpt[k] = names[k];
    }
    struct queue_envelope env = {"bench@a.test", rcpt, NULL, NULL, RCPTS, NULL, 0};
    for (size_t done = 0; done < nmsg;) {
        struct queue_writer *w;
        char fid[QUEUE_FILE_ID_LEN + 1];
        unsigned index;
        size_t first = done;
        if (queue_writer_begin(q, &w) != 0)
            die("queue_writer_begin");
        for (; done < nmsg && done - first < MSGS_PER_FILE; done++)
            if (queue_writer_data(w, "Subject: b\n\nx\n", 14) != 0 ||
                queue_writer_end_msg(w, &env, &index) != 0)
                die("queue_writer");
        if (queue_writer_commit(w, fid) != 0)
            die("queue_writer_commit");
        for (size_t i = first; i < done; i++)
            queue_msg_id(fid, (unsigned)(i - first), ids[i]);
    }
}

static void serve_takes(struct queue *q, struct state *s)
{
    struct state_clean_req r;
    if (state_flush(s) != 0)
        die("state_flush");
    while (state_clean_next(s, &r))
        if (r.kind == CLEAN_TAKE && queue_take(q, r.id) == 0)
            state_clean_done(s, &r, 0);
    if (state_flush(s) != 0)
        die("state_flush");
}

/* A delivery daemon: `count` outcomes, numbers first, first+step, ... */
static void caller(int fd, unsigned first, unsigned step, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        unsigned n = first + i * step;
        char ack;
        if (write_all(fd, &n, sizeof(n)) != 0 || read(fd, &ack, 1) != 1)
            _exit(1);
    }
    _exit(0);
}

struct owner {
    struct state *s;
    char (*ids)[QUEUE_ID_LEN + 1];
    int *fds;
    unsigned callers;
    unsigned long recorded;
};

/* One loop iteration: record what arrived, one flush, acknowledge. */
static int owner_round(struct owner *o, struct pollfd *pfd, int64_t t)
{
    int *ready = xcalloc(o->callers, sizeof(int));
    int n = poll(pfd, o->callers, 10000), open = 0;
    for (unsigned c = 0; n > 0 && c < o->callers; c++) {
        if (pfd[c].fd < 0)
            continue;
        open++;
        if (!(pfd[c].revents & (POLLIN | POLLHUP)))
            continue;
        unsigned num;
        if (read(pfd[c].fd, &num, sizeof(num)) != (ssize_t)sizeof(num)) {
            pfd[c].fd = -1; /* the caller is done */
            continue;
        }
        if (state_delivered(o->s, o->ids[num / RCPTS], num % RCPTS, t, "250 ok") == 0)
            die("state_delivered");
        o->recorded++;
        ready[c] = 1;
    }
    if (state_flush(o->s) != 0)
        die("state_flush");
    for (unsigned c = 0; c < o->callers; c++)
        if (ready[c] && write_all(pfd[c].fd, "k", 1) != 0)
            die("acknowledge");
    free(ready);
    return open;
}

static int run_outcomes(const char *dir, unsigned callers, unsigned outcomes)
{
    size_t nmsg = (outcomes + RCPTS - 1) / RCPTS;
    char(*ids)[QUEUE_ID_LEN + 1] = xcalloc(nmsg, sizeof(*ids));
    struct queue *q = open_queue(dir);
    make_messages(q, nmsg, ids);
    struct state *s = open_state(q);
    if (state_learn_files(s) < 0)
        die("state_learn_files");
    serve_takes(q, s);
    struct pollfd *pfd = xcalloc(callers, sizeof(*pfd));
    for (unsigned c = 0; c < callers; c++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            die("socketpair");
        pid_t pid = fork();
        if (pid == 0) {
            close(sv[0]);
            caller(sv[1], c, callers, outcomes / callers + (c < outcomes % callers));
        }
        close(sv[1]);
        pfd[c].fd = sv[0];
        pfd[c].events = POLLIN;
    }
    struct owner o = {s, ids, NULL, callers, 0};
    unsigned long syncs = sj_syncs(state_journal(s));
    double start = now_s();
    int64_t t = (int64_t)time(NULL);
    while (o.recorded < outcomes && owner_round(&o, pfd, t) > 0)
        ;
    double secs = now_s() - start;
    unsigned long fsyncs = sj_syncs(state_journal(s)) - syncs;
    while (wait(NULL) > 0)
        ;
    printf("outcomes=%lu callers=%u seconds=%.3f rate=%.0f fdatasyncs=%lu per_outcome=%.4f\n",
           o.recorded, callers, secs, (double)o.recorded / secs, fsyncs,
           (double)fsyncs / (double)o.recorded);
    state_close(s);
    queue_close(q);
    free(ids);
    free(pfd);
    return o.recorded == outcomes ? 0 : 1;
}

static int run_take_all(const char *dir)
{
    struct queue *q = open_queue(dir);
    char **fids;
    size_t n;
    if (queue_list_files(q, QUEUE_INCOMING, &fids, &n) != 0)
        die("queue_list_files");
    for (size_t i = 0; i < n; i++)
        if (queue_take(q, fids[i]) != 0)
            die("queue_take");
    printf("taken=%zu\n", n);
    queue_ids_free(fids, n);
    queue_close(q);
    return 0;
}

/* The image of one committed one-message file (removed from the queue). */
static void one_image(struct queue *q, struct buf *img)
{
    const char *rcpt[] = {"r@b.test"};
    struct queue_envelope env = {"bench@a.test", rcpt, NULL, NULL, 1, NULL, 0};
    struct queue_writer *w;
    char fid[QUEUE_FILE_ID_LEN + 1], body[501], bucket[3];
    memset(body, 'x', sizeof(body));
    memcpy(body, "Subject: b\n\n", 12);
    body[499] = '\n';
    unsigned index;
    if (queue_writer_begin(q, &w) != 0 || queue_writer_data(w, body, 500) != 0 ||
        queue_writer_end_msg(w, &env, &index) != 0 || queue_writer_commit(w, fid) != 0)
        die("queue_writer");
    struct buf path = BUF_INIT;
    queue_bucket(fid, bucket);
    path_join(&path, queue_path(q), "incoming");
    buf_printf(&path, "/%s/%s", bucket, fid);
    if (read_file(buf_cstr(&path), img, 0) != 0 || unlink(buf_cstr(&path)) != 0)
        die(buf_cstr(&path));
    buf_free(&path);
}

static int run_make_files(const char *dir, unsigned long n)
{
    struct queue *q = open_queue(dir);
    struct buf img = BUF_INIT, path = BUF_INIT;
    struct qf_header h;
    const char *why;
    one_image(q, &img);
    if (qf_header_decode((const unsigned char *)img.s, img.len, &h, &why) != 0)
        die(why);
    for (unsigned long i = 0; i < n; i++) {
        char bucket[3];
        queue_file_id_new(h.fid, NULL);
        qf_header_encode(&h, (unsigned char *)img.s);
        queue_bucket(h.fid, bucket);
        buf_clear(&path);
        path_join(&path, queue_path(q), "active");
        buf_printf(&path, "/%s/%s", bucket, h.fid);
        int fd = open(buf_cstr(&path), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 || write_all(fd, img.s, img.len) != 0 || close(fd) != 0)
            die(buf_cstr(&path));
    }
    printf("made=%lu size=%zu\n", n, img.len);
    buf_free(&img);
    buf_free(&path);
    queue_close(q);
    return 0;
}

static int run_startup(const char *dir, int checkpoint)
{
    double t0 = now_s();
    struct queue *q = open_queue(dir);
    struct state_open_report rep;
    struct state *s;
    const char *why = NULL;
    if (state_open(&s, q, 0, &rep, &why) != 0)
        die(why ? why : "state_open");
    double t1 = now_s();
    long learned = state_learn_files(s);
    if (learned < 0 || state_flush(s) != 0)
        die("state_learn_files");
    double t2 = now_s();
    const struct state_msg *m = NULL;
    state_next_due(s, (int64_t)time(NULL), &m, NULL);
    double t3 = now_s();
    struct state_counts c;
    state_count(s, &c);
    printf("open=%.3f learn=%.3f first_due=%.3f files_replayed=%lu messages=%lu learned=%ld "
           "due=%s recipients_in_memory=%lu files_in_memory=%lu\n",
           t1 - t0, t2 - t1, t3 - t0, rep.files, c.total, learned, m ? "yes" : "no",
           state_hot_recipients(s), state_files_in_memory(s));
    if (checkpoint && state_maybe_checkpoint(s, 1) != 1)
        die("checkpoint");
    if (checkpoint)
        printf("after the checkpoint: recipients_in_memory=%lu files_in_memory=%lu "
               "(queue_active_limit %d)\n",
               state_hot_recipients(s), state_files_in_memory(s), STATE_ACTIVE_LIMIT_DEFAULT);
    state_close(s);
    queue_close(q);
    return m ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* the writer's per-message log lines; STATEBENCH_LOG=stderr shows them */
    log_open("statebench", getenv("STATEBENCH_LOG") ? getenv("STATEBENCH_LOG") : "/dev/null");
    if (argc == 5 && strcmp(argv[1], "outcomes") == 0)
        return run_outcomes(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
                            (unsigned)strtoul(argv[4], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "make-files") == 0)
        return run_make_files(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "take-all") == 0)
        return run_take_all(argv[2]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "startup") == 0)
        return run_startup(argv[2], argc == 4 && strcmp(argv[3], "checkpoint") == 0);
    fprintf(stderr, "usage: statebench outcomes QUEUE_DIR CALLERS OUTCOMES\n"
                    "       statebench make-files QUEUE_DIR N\n"
                    "       statebench take-all QUEUE_DIR\n"
                    "       statebench startup QUEUE_DIR [checkpoint]\n");
    return 64;
}
