/*
 * localdrive — plays the router towards a real onehop-local, for the
 * integration tests (tests/integration/test_local.py):
 *
 *   localdrive CONFDIR ONEHOP_LOCAL [TIMEOUT_S]
 *
 * Starts ONEHOP_LOCAL -C CONFDIR with one end of a socketpair named by
 * ONEHOP_CHANNEL_LOCAL, reads jobs from standard input:
 *
 *   job MSGID
 *   rcpt ORIGIN ORIGINAL RECIPIENT...     (RECIPIENT: the rest of the line)
 *   end
 *
 * opens message MSGID of CONFDIR's queue (queue_dir of onehop.conf) with
 * queue_msg_open() (the router's way: a verified O_RDONLY descriptor, offset
 * and length), and sends it as an LP_JOB (local_proto.h) with the
 * envelope's sender and the rcpt lines as its recipients (ORIGIN: 0 an
 * address, 1 from the aliases; ORIGINAL "-": the recipient itself), or the
 * envelope's recipients when there is none. Job ids are 1, 2, ...; all
 * jobs are sent at once. Prints one JSON object a line on standard output:
 *
 *   {"job":1,"id":"MSGID","index":0,"rcpt":"alice@host","class":"ok",
 *    "reply":"2.0.0 delivered to maildir","relay":"local:maildir","delay_ms":12,"tls":"none"}
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
#include "local_proto.h"

struct driver {
    struct queue *q;
    int fd;
    pid_t pid;
    char **ids; /* MSGID per job id - 1 */
    size_t njobs, done;
    struct buf *rcpts; /* the recipients per job, NUL-separated, for the output */
    time_t deadline;
    char *msgid; /* the job being read */
    struct lp_rcpt rcpt[LP_RCPT_MAX];
    size_t nrcpt;
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

static pid_t spawn_local(const char *confdir, const char *program, int child_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char num[16];
    snprintf(num, sizeof(num), "%d", child_fd);
    setenv(LP_CHANNEL_ENV, num, 1);
    execl(program, program, "-C", confdir, (char *)NULL);
    perror(program);
    _exit(127);
}

static void forget_rcpts(struct driver *dr)
{
    for (size_t i = 0; i < dr->nrcpt; i++) {
        free(dr->rcpt[i].recipient);
        free(dr->rcpt[i].original);
    }
    dr->nrcpt = 0;
    free(dr->msgid);
    dr->msgid = NULL;
}

/* "rcpt ORIGIN ORIGINAL RECIPIENT...": one recipient of the job. */
static int add_rcpt(struct driver *dr, char *line)
{
    char *origin = strtok(line, " "), *original = strtok(NULL, " "), *rest = strtok(NULL, "\n");
    if (!origin || !original || !rest || dr->nrcpt >= LP_RCPT_MAX) {
        fprintf(stderr, "localdrive: rcpt ORIGIN ORIGINAL RECIPIENT\n");
        return -1;
    }
    struct lp_rcpt *rc = &dr->rcpt[dr->nrcpt++];
    rc->recipient = xstrdup(rest);
    rc->original = xstrdup(strcmp(original, "-") == 0 ? rest : original);
    rc->orcpt = "";
    rc->notify = 0;
    rc->origin = (uint32_t)atoi(origin);
    return 0;
}

static int send_job(struct driver *dr)
{
    struct queue_msg_fd m;
    const char *why = "";
    if (!dr->msgid) {
        fprintf(stderr, "localdrive: end without job\n");
        return -1;
    }
    if (queue_msg_open(dr->q, dr->msgid, &m, &why) < 0) {
        fprintf(stderr, "localdrive: %s: %s (%s)\n", dr->msgid, strerror(errno), why);
        return -1;
    }
    const struct queue_msg *msg = &m.file.msg[m.index];
    if (dr->nrcpt == 0)
        for (size_t i = 0; i < msg->nrcpt && dr->nrcpt < LP_RCPT_MAX; i++) {
            struct lp_rcpt *rc = &dr->rcpt[dr->nrcpt++];
            rc->recipient = xstrdup(msg->rcpt[i].addr);
            rc->original = xstrdup(msg->rcpt[i].addr);
            rc->orcpt = msg->rcpt[i].orcpt ? msg->rcpt[i].orcpt : "";
            rc->notify = notify_bits(msg->rcpt[i].notify);
            rc->origin = LP_FROM_ADDRESS;
        }
    struct lp_job j = {dr->njobs + 1,   dr->msgid,   m.offset, m.length,
                       msg->arrival_us, msg->sender, dr->rcpt, dr->nrcpt};
    struct buf rec = BUF_INIT;
    lp_put_job(&rec, &j);
    dr->ids = xrealloc(dr->ids, (dr->njobs + 1) * sizeof(*dr->ids));
    dr->rcpts = xrealloc(dr->rcpts, (dr->njobs + 1) * sizeof(*dr->rcpts));
    dr->ids[dr->njobs] = xstrdup(dr->msgid);
    dr->rcpts[dr->njobs] = (struct buf)BUF_INIT;
    for (size_t i = 0; i < j.nrcpt; i++)
        buf_add(&dr->rcpts[dr->njobs], dr->rcpt[i].recipient, strlen(dr->rcpt[i].recipient) + 1);
    dr->njobs++;
    int rcode = chan_send_record(dr->fd, rec.s, rec.len, &m.fd, 1, remaining_ms(dr));
    if (rcode < 0)
        fprintf(stderr, "localdrive: sending job %zu: %s\n", dr->njobs, strerror(errno));
    buf_free(&rec);
    queue_msg_fd_close(&m);
    forget_rcpts(dr);
    return rcode;
}

static int take_line(struct driver *dr, char *line)
{
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "job ", 4) == 0) {
        forget_rcpts(dr);
        dr->msgid = xstrdup(line + 4);
        return 0;
    }
    if (strncmp(line, "rcpt ", 5) == 0)
        return add_rcpt(dr, line + 5);
    if (strcmp(line, "end") == 0)
        return send_job(dr);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    fprintf(stderr, "localdrive: not a job line: %s\n", line);
    return -1;
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
            fprintf(stderr, "localdrive: bad result: %s\n", why ? why : "unknown job");
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
        buf_adds(&out, "}\n");
    } else if (type == RP_DONE) {
        uint64_t job;
        uint32_t n;
        if (rp_get_done(rec->s, rec->len, &job, &n, &why) < 0) {
            fprintf(stderr, "localdrive: bad done record: %s\n", why);
            return -1;
        }
        buf_adds(&out, "{");
        json_field_uint(&out, "job", job);
        json_field_uint(&out, "done", n);
        buf_adds(&out, "}\n");
        dr->done++;
    } else {
        fprintf(stderr, "localdrive: unexpected record type %u\n", type);
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
            chan_recv_record(dr->fd, LP_RECORD_MAX, 0, remaining_ms(dr), &rec, fds, &nfds, &why);
        if (got <= 0) {
            fprintf(stderr, "localdrive: %zu of %zu jobs done: %s\n", dr->done, dr->njobs,
                    got == 0 ? "the local closed its channel" : why);
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
static int wait_daemon(struct driver *dr)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t got = waitpid(dr->pid, &status, WNOHANG);
        if (got == dr->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    fprintf(stderr, "localdrive: onehop-local did not exit within 10 s; killed\n");
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
        fprintf(stderr, "localdrive: queue %s: %s\n", c.queue_dir, why);
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
        fprintf(stderr, "usage: localdrive CONFDIR ONEHOP_LOCAL [TIMEOUT_S]\n");
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
    dr.pid = spawn_local(argv[1], argv[2], child);
    close(child);
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && getline(&line, &cap, stdin) > 0)
        rc = take_line(&dr, line);
    forget_rcpts(&dr);
    free(line);
    if (rc == 0)
        rc = read_results(&dr);
    close(dr.fd);
    int status = wait_daemon(&dr);
    if (status != 0)
        fprintf(stderr, "localdrive: onehop-local exited with status %d\n", status);
    for (size_t i = 0; i < dr.njobs; i++) {
        free(dr.ids[i]);
        buf_free(&dr.rcpts[i]);
    }
    free(dr.ids);
    free(dr.rcpts);
    queue_close(dr.q);
    return rc == 0 && status == 0 ? 0 : 1;
}
