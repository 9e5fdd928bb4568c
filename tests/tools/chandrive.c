/*
 * chandrive — the router's side shared by localdrive and remotedrive. See
 * chandrive.h.
 */
#include "chandrive.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "conf.h"
#include "diag.h"
#include "json.h"
#include "mem.h"
#include "remote_proto.h"

int chandrive_remaining_ms(const struct chandrive *dr)
{
    time_t now = time(NULL);
    return now >= dr->deadline ? 0 : (int)(dr->deadline - now) * 1000;
}

uint64_t chandrive_next_job(const struct chandrive *dr)
{
    return dr->njobs + 1;
}

uint32_t chandrive_notify_bits(const char *notify)
{
    static const struct {
        const char *word;
        uint32_t bit;
    } words[] = {{"NEVER", RP_NOTIFY_NEVER},
                 {"SUCCESS", RP_NOTIFY_SUCCESS},
                 {"FAILURE", RP_NOTIFY_FAILURE},
                 {"DELAY", RP_NOTIFY_DELAY}};
    uint32_t bits = 0;
    for (size_t i = 0; notify && i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(notify, words[i].word))
            bits |= words[i].bit;
    return bits;
}

static pid_t spawn_daemon(const struct chandrive *dr, const char *confdir, const char *program,
                          int child_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char num[16];
    snprintf(num, sizeof(num), "%d", child_fd);
    setenv(dr->channel_env, num, 1);
    execl(program, program, "-C", confdir, (char *)NULL);
    perror(program);
    _exit(127);
}

static int open_queue(struct chandrive *dr, const char *confdir)
{
    struct conf c;
    struct diag dg = DIAG_INIT;
    const char *why = "";
    int rc = conf_load(&c, confdir, &dg);
    if (rc == 0 && queue_open(&dr->q, c.queue_dir, 0, &why) < 0) {
        fprintf(stderr, "%s: queue %s: %s\n", dr->name, c.queue_dir, why);
        rc = -1;
    } else if (rc < 0)
        diag_print(&dg, stderr);
    diag_free(&dg);
    conf_free(&c);
    return rc;
}

int chandrive_start(struct chandrive *dr, int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s CONFDIR DAEMON [TIMEOUT_S]\n", dr->name);
        return 64;
    }
    dr->deadline = time(NULL) + (argc == 4 ? atoi(argv[3]) : 60);
    signal(SIGPIPE, SIG_IGN);
    if (open_queue(dr, argv[1]) < 0)
        return 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    int child = dup(sv[1]); /* without close-on-exec: the daemon's end */
    close(sv[1]);
    dr->fd = sv[0];
    dr->pid = spawn_daemon(dr, argv[1], argv[2], child);
    close(child);
    return 0;
}

int chandrive_send(struct chandrive *dr, const char *msgid, const char *const *rcpts, size_t n,
                   const struct buf *rec, int fd)
{
    dr->ids = xrealloc(dr->ids, (dr->njobs + 1) * sizeof(*dr->ids));
    dr->rcpts = xrealloc(dr->rcpts, (dr->njobs + 1) * sizeof(*dr->rcpts));
    dr->ids[dr->njobs] = xstrdup(msgid);
    dr->rcpts[dr->njobs] = (struct buf)BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_add(&dr->rcpts[dr->njobs], rcpts[i], strlen(rcpts[i]) + 1);
    dr->njobs++;
    int rc = chan_send_record(dr->fd, rec->s, rec->len, &fd, 1, chandrive_remaining_ms(dr));
    if (rc < 0)
        fprintf(stderr, "%s: sending job %zu: %s\n", dr->name, dr->njobs, strerror(errno));
    return rc < 0 ? -1 : 0;
}

/* The n-th recipient of job's list. */
static const char *job_rcpt(const struct chandrive *dr, uint64_t job, uint32_t index)
{
    const struct buf *b = &dr->rcpts[job - 1];
    size_t at = 0;
    for (uint32_t i = 0; i < index && at < b->len; i++)
        at += strlen(b->s + at) + 1;
    return at < b->len ? b->s + at : "?";
}

static int result_json(struct chandrive *dr, const struct buf *rec, struct buf *out)
{
    struct rp_result r;
    struct buf text = BUF_INIT;
    const char *why = NULL;
    int ok =
        rp_get_result(rec->s, rec->len, &r, &text, &why) == 0 && r.job > 0 && r.job <= dr->njobs;
    if (ok) {
        json_field_uint(out, "job", r.job);
        json_field_cstr(out, "id", dr->ids[r.job - 1]);
        json_field_uint(out, "index", r.index);
        json_field_cstr(out, "rcpt", job_rcpt(dr, r.job, r.index));
        json_field_cstr(out, "class", rp_class_name(r.cls));
        json_field_cstr(out, "reply", r.reply);
        json_field_cstr(out, "relay", r.relay);
        json_field_uint(out, "delay_ms", r.delay_ms);
        json_field_cstr(out, "tls", r.tls);
        json_field_uint(out, "flags", r.flags);
    } else {
        fprintf(stderr, "%s: bad result: %s\n", dr->name, why ? why : "unknown job");
    }
    buf_free(&text);
    return ok ? 0 : -1;
}

static int done_json(struct chandrive *dr, const struct buf *rec, struct buf *out)
{
    uint64_t job;
    uint32_t n;
    const char *why;
    if (rp_get_done(rec->s, rec->len, &job, &n, &why) < 0) {
        fprintf(stderr, "%s: bad done record: %s\n", dr->name, why);
        return -1;
    }
    json_field_uint(out, "job", job);
    json_field_uint(out, "done", n);
    dr->done++;
    return 0;
}

static int print_record(struct chandrive *dr, const struct buf *rec)
{
    struct buf out = BUF_INIT;
    uint16_t type = rp_record_type(rec->s, rec->len);
    buf_adds(&out, "{");
    int rc = type == RP_RESULT ? result_json(dr, rec, &out)
             : type == RP_DONE ? done_json(dr, rec, &out)
                               : -1;
    if (type != RP_RESULT && type != RP_DONE)
        fprintf(stderr, "%s: unexpected record type %u\n", dr->name, type);
    buf_adds(&out, "}\n");
    if (rc == 0) {
        fwrite(out.s, 1, out.len, stdout);
        fflush(stdout);
    }
    buf_free(&out);
    return rc;
}

static int read_results(struct chandrive *dr)
{
    struct buf rec = BUF_INIT;
    int rc = 0;
    while (rc == 0 && dr->done < dr->njobs) {
        int fds[CHAN_FDS_MAX];
        unsigned nfds = 0;
        const char *why = "";
        int got = chan_recv_record(dr->fd, dr->max_record, 0, chandrive_remaining_ms(dr), &rec, fds,
                                   &nfds, &why);
        if (got <= 0) {
            fprintf(stderr, "%s: %zu of %zu jobs done: %s\n", dr->name, dr->done, dr->njobs,
                    got == 0 ? "the daemon closed its channel" : why);
            rc = -1;
        } else {
            rc = print_record(dr, &rec);
        }
    }
    buf_free(&rec);
    return rc;
}

/* The daemon stops once its channel closes; a bounded wait, then SIGKILL. */
static int wait_daemon(struct chandrive *dr)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t got = waitpid(dr->pid, &status, WNOHANG);
        if (got == dr->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(10000);
    }
    fprintf(stderr, "%s: the daemon did not exit within 10 s; killed\n", dr->name);
    kill(dr->pid, SIGKILL);
    waitpid(dr->pid, &status, 0);
    return 1;
}

int chandrive_finish(struct chandrive *dr, int rc)
{
    if (rc == 0)
        rc = read_results(dr);
    close(dr->fd);
    int status = wait_daemon(dr);
    if (status != 0)
        fprintf(stderr, "%s: the daemon exited with status %d\n", dr->name, status);
    for (size_t i = 0; i < dr->njobs; i++) {
        free(dr->ids[i]);
        buf_free(&dr->rcpts[i]);
    }
    free(dr->ids);
    free(dr->rcpts);
    queue_close(dr->q);
    return rc == 0 && status == 0 ? 0 : 1;
}
