/*
 * remotedrive — plays the router towards a real onehop-remote, for the
 * integration tests (tests/integration/test_remote.py) until the router
 * exists:
 *
 *   remotedrive CONFDIR ONEHOP_REMOTE [TIMEOUT_S]
 *
 * Starts ONEHOP_REMOTE -C CONFDIR with one end of a socketpair named by
 * ONEHOP_CHANNEL_REMOTE, reads jobs from standard input, one a line:
 *
 *   MSGID HOP[,HOP...] [RCPT...]
 *
 * opens message MSGID of CONFDIR's queue (queue_dir of onehop.conf) with
 * queue_msg_open() (the router's way: a verified O_RDONLY descriptor, offset
 * and length), and sends it as an RP_JOB (remote_proto.h) with the
 * envelope's sender and recipients (with their ORCPT and NOTIFY), or the
 * RCPTs of the line instead. Job ids are the line numbers (1, 2, ...); all
 * jobs are sent at once. Prints one JSON object a line on standard output:
 *
 *   {"job":1,"id":"MSGID","index":0,"rcpt":"b@b.test","class":"ok","reply":"250 ...",
 *    "relay":"mx.b.test[127.0.0.2]:2525","delay_ms":12,"tls":"none","flags":0}
 *   {"job":1,"done":1}
 *
 * and once every job is done closes the channel and waits for the daemon
 * to exit (it stops when its router goes away). Exit status: 0 when every
 * job was done and the daemon exited 0; 1 otherwise (said on stderr:
 * TIMEOUT_S seconds, default 60, bound the whole run); 64 on usage.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel_core.h"
#include "conf.h"
#include "diag.h"
#include "json.h"
#include "mem.h"
#include "queue.h"
#include "remote_proto.h"

struct driver {
    struct queue *q;
    int fd;
    pid_t pid;
    char **ids; /* MSGID per job id - 1 */
    size_t njobs, done;
    struct buf *rcpts; /* the recipients per job, NUL-separated, for the output */
    time_t deadline;
};

static int remaining_ms(const struct driver *dr)
{
    time_t now = time(NULL);
    return now >= dr->deadline ? 0 : (int)(dr->deadline - now) * 1000;
}

static uint32_t notify_bits(const char *s)
{
    uint32_t bits = 0;
    if (!s)
        return 0;
    static const struct {
        const char *word;
        uint32_t bit;
    } words[] = {{"NEVER", RP_NOTIFY_NEVER},
                 {"SUCCESS", RP_NOTIFY_SUCCESS},
                 {"FAILURE", RP_NOTIFY_FAILURE},
                 {"DELAY", RP_NOTIFY_DELAY}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(s, words[i].word))
            bits |= words[i].bit;
    return bits;
}

static pid_t spawn_remote(const char *confdir, const char *program, int child_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char num[16];
    snprintf(num, sizeof(num), "%d", child_fd);
    setenv(RP_CHANNEL_ENV, num, 1);
    execl(program, program, "-C", confdir, (char *)NULL);
    perror(program);
    _exit(127);
}

/* Split line into words (in place); the count. */
static size_t split(char *line, char **w, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && n < max; tok = strtok(NULL, " \t\r\n"))
        w[n++] = tok;
    return n;
}

static int send_job(struct driver *dr, char *line)
{
    char *w[RP_RCPT_MAX + 2];
    size_t nw = split(line, w, RP_RCPT_MAX + 2);
    if (nw < 2) {
        fprintf(stderr, "remotedrive: a job line needs MSGID and HOPS\n");
        return -1;
    }
    struct queue_msg_fd m;
    const char *why = "";
    if (queue_msg_open(dr->q, w[0], &m, &why) < 0) {
        fprintf(stderr, "remotedrive: %s: %s (%s)\n", w[0], strerror(errno), why);
        return -1;
    }
    const struct queue_msg *msg = &m.file.msg[m.index];
    struct rp_job j = {0};
    struct rp_rcpt rc[RP_RCPT_MAX];
    char *hops[RP_HOPS_MAX];
    j.job = dr->njobs + 1;
    j.queue_id = w[0];
    j.offset = m.offset;
    j.length = m.length;
    j.arrival_us = msg->arrival_us;
    j.sender = msg->sender;
    if (nw > 2) {
        for (size_t i = 2; i < nw; i++)
            rc[j.nrcpt++] = (struct rp_rcpt){w[i], "", 0};
    } else {
        for (size_t i = 0; i < msg->nrcpt && j.nrcpt < RP_RCPT_MAX; i++)
            rc[j.nrcpt++] =
                (struct rp_rcpt){msg->rcpt[i].addr, msg->rcpt[i].orcpt ? msg->rcpt[i].orcpt : "",
                                 notify_bits(msg->rcpt[i].notify)};
    }
    j.rcpt = rc;
    for (char *tok = strtok(w[1], ","); tok && j.nhops < RP_HOPS_MAX; tok = strtok(NULL, ","))
        hops[j.nhops++] = tok;
    j.hops = hops;
    struct buf rec = BUF_INIT;
    rp_put_job(&rec, &j);
    dr->ids = xrealloc(dr->ids, (dr->njobs + 1) * sizeof(*dr->ids));
    dr->rcpts = xrealloc(dr->rcpts, (dr->njobs + 1) * sizeof(*dr->rcpts));
    dr->ids[dr->njobs] = xstrdup(w[0]);
    dr->rcpts[dr->njobs] = (struct buf)BUF_INIT;
    for (size_t i = 0; i < j.nrcpt; i++)
        buf_add(&dr->rcpts[dr->njobs], rc[i].address, strlen(rc[i].address) + 1);
    dr->njobs++;
    int rcode = chan_send_record(dr->fd, rec.s, rec.len, &m.fd, 1, remaining_ms(dr));
    if (rcode < 0)
        fprintf(stderr, "remotedrive: sending job %zu: %s\n", dr->njobs, strerror(errno));
    buf_free(&rec);
    queue_msg_fd_close(&m);
    return rcode;
}

/* The n-th recipient of job's list. */
static const char *job_rcpt(const struct driver *dr, uint64_t job, uint32_t index)
{
    const struct buf *b = &dr->rcpts[job - 1];
    size_t at = 0;
    for (uint32_t i = 0; i < index && at < b->len; i++)
        at += strlen(b->s + at) + 1;
    return at < b->len ? b->s + at : "?";
}

static int print_record(struct driver *dr, const struct buf *rec)
{
    struct buf out = BUF_INIT, text = BUF_INIT;
    const char *why;
    uint16_t type = rp_record_type(rec->s, rec->len);
    if (type == RP_RESULT) {
        struct rp_result r;
        if (rp_get_result(rec->s, rec->len, &r, &text, &why) < 0 || r.job == 0 ||
            r.job > dr->njobs) {
            fprintf(stderr, "remotedrive: bad result: %s\n", why ? why : "unknown job");
            return -1;
        }
        buf_adds(&out, "{");
        json_field_uint(&out, "job", r.job);
        json_field_cstr(&out, "id", dr->ids[r.job - 1]);
        json_field_uint(&out, "index", r.index);
        json_field_cstr(&out, "rcpt", job_rcpt(dr, r.job, r.index));
        json_field_cstr(&out, "class", rp_class_name(r.cls));
        json_field_cstr(&out, "reply", r.reply);
        json_field_cstr(&out, "relay", r.relay);
        json_field_uint(&out, "delay_ms", r.delay_ms);
        json_field_cstr(&out, "tls", r.tls);
        json_field_uint(&out, "flags", r.flags);
        buf_adds(&out, "}\n");
    } else if (type == RP_DONE) {
        uint64_t job;
        uint32_t n;
        if (rp_get_done(rec->s, rec->len, &job, &n, &why) < 0) {
            fprintf(stderr, "remotedrive: bad done record: %s\n", why);
            return -1;
        }
        buf_adds(&out, "{");
        json_field_uint(&out, "job", job);
        json_field_uint(&out, "done", n);
        buf_adds(&out, "}\n");
        dr->done++;
    } else {
        fprintf(stderr, "remotedrive: unexpected record type %u\n", type);
        return -1;
    }
    fwrite(out.s, 1, out.len, stdout);
    fflush(stdout);
    buf_free(&out);
    buf_free(&text);
    return 0;
}

static int read_results(struct driver *dr)
{
    struct buf rec = BUF_INIT;
    int rc = 0;
    while (dr->done < dr->njobs) {
        int fds[CHAN_FDS_MAX];
        unsigned nfds = 0;
        const char *why = "";
        int got =
            chan_recv_record(dr->fd, RP_RECORD_MAX, 0, remaining_ms(dr), &rec, fds, &nfds, &why);
        if (got <= 0) {
            fprintf(stderr, "remotedrive: %zu of %zu jobs done: %s\n", dr->done, dr->njobs,
                    got == 0 ? "the remote closed its channel" : why);
            rc = -1;
            break;
        }
        if (print_record(dr, &rec) < 0) {
            rc = -1;
            break;
        }
    }
    buf_free(&rec);
    return rc;
}

/* The daemon stops once its channel closes; a bounded wait, then SIGKILL. */
static int wait_remote(struct driver *dr)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t got = waitpid(dr->pid, &status, WNOHANG);
        if (got == dr->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    fprintf(stderr, "remotedrive: onehop-remote did not exit within 10 s; killed\n");
    kill(dr->pid, SIGKILL);
    waitpid(dr->pid, &status, 0);
    return 1;
}

static int open_queue(struct driver *dr, const char *confdir)
{
    struct conf c;
    struct diag dg = DIAG_INIT;
    const char *why = "";
    int rc = conf_load(&c, confdir, &dg);
    if (rc == 0 && queue_open(&dr->q, c.queue_dir, 0, &why) < 0) {
        fprintf(stderr, "remotedrive: queue %s: %s\n", c.queue_dir, why);
        rc = -1;
    } else if (rc < 0)
        diag_print(&dg, stderr);
    diag_free(&dg);
    conf_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    struct driver dr = {0};
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: remotedrive CONFDIR ONEHOP_REMOTE [TIMEOUT_S]\n");
        return 64;
    }
    dr.deadline = time(NULL) + (argc == 4 ? atoi(argv[3]) : 60);
    signal(SIGPIPE, SIG_IGN);
    if (open_queue(&dr, argv[1]) < 0)
        return 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    int child = dup(sv[1]); /* without close-on-exec: the daemon's end */
    close(sv[1]);
    dr.fd = sv[0];
    dr.pid = spawn_remote(argv[1], argv[2], child);
    close(child);
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && getline(&line, &cap, stdin) > 0)
        if (line[0] != '\n' && line[0] != '#')
            rc = send_job(&dr, line);
    free(line);
    if (rc == 0)
        rc = read_results(&dr);
    close(dr.fd);
    int status = wait_remote(&dr);
    if (status != 0)
        fprintf(stderr, "remotedrive: onehop-remote exited with status %d\n", status);
    for (size_t i = 0; i < dr.njobs; i++) {
        free(dr.ids[i]);
        buf_free(&dr.rcpts[i]);
    }
    free(dr.ids);
    free(dr.rcpts);
    queue_close(dr.q);
    return rc == 0 && status == 0 ? 0 : 1;
}
