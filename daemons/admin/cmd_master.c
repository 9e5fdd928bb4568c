/*
 * cmd_master — `onehop start [--foreground]`, `stop`, `reload` and
 * `status [--json]` (SPEC 1): the commands that drive onehop-master.
 *
 * start execs daemon_dir/onehop-master, which returns once every daemon
 * accepts work (or with the daemon's own error). stop, reload and status
 * speak to the running master on run_dir/master.sock (master_proto.h):
 * stop returns when every daemon and the master are gone; reload fails,
 * printing the configuration's errors, when `onehop check` would refuse
 * the new configuration (the running one is kept); status lists each
 * process (name, pid, user, uid, uptime, restarts, state) and the queue
 * counts of `onehop qstat`. With no master running, stop, reload and status
 * say that the instance is stopped and exit 1 (status still prints the
 * queue counts). metrics prints the Prometheus text the master gathers
 * from every running daemon (master/scrape.h; docs/metrics.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/commands.h"
#include "channel_core.h"
#include "conf.h"
#include "diag.h"
#include "ipc.h"
#include "json.h"
#include "master_proto.h"
#include "qlist.h"
#include "safeio.h"

#define REQUEST_TIMEOUT_MS 10000
/* the master's stop bound (30 s by default) and some room */
#define STOP_WAIT_MS 45000
#define MASTER_EXIT_WAIT_MS 5000

static int load_conf(const char *confdir, struct conf *c)
{
    struct diag d = DIAG_INIT;
    int rc = conf_load(c, confdir, &d);
    if (rc < 0) {
        diag_print(&d, stderr);
        conf_free(c);
        admin_fail("the configuration has errors (see onehop check)");
    }
    diag_free(&d);
    return rc;
}

/* The arguments of a command that takes at most the one option flag (or
 * none, flag NULL): 0 with *on set, or the usage error's status. */
static int flag_argument(const char *name, const char *flag, int argc, char **argv, int *on)
{
    *on = 0;
    for (int i = 1; i < argc; i++) {
        if (flag && strcmp(argv[i], flag) == 0)
            *on = 1;
        else
            return admin_usage_error(name, "unexpected argument \"%s\"", argv[i]);
    }
    return 0;
}

/* A command's start: its arguments, then the configuration. 0 with c
 * loaded (the caller frees it), or the exit status (c freed). */
static int begin(const char *name, const char *flag, int argc, char **argv, const char *confdir,
                 struct conf *c, int *on)
{
    int rc = flag_argument(name, flag, argc, argv, on);
    if (rc == 0 && load_conf(confdir, c) < 0)
        rc = 1;
    return rc;
}

/* ---------------------------------------------------------------- start ---- */

int cmd_start(const char *confdir, int argc, char **argv)
{
    struct conf c;
    int foreground, rc = begin("start", "--foreground", argc, argv, confdir, &c, &foreground);
    if (rc)
        return rc;
    struct buf path = BUF_INIT;
    path_join(&path, c.daemon_dir, "onehop-master");
    conf_free(&c);
    char *args[] = {path.s, "-C", (char *)confdir, foreground ? "--foreground" : NULL, NULL};
    fflush(stdout);
    execv(path.s, args);
    rc = admin_fail("cannot run %s: %s", path.s, strerror(errno));
    buf_free(&path);
    return rc;
}

/* ------------------------------------------------------- the control socket ---- */

/* Connect to the master: fd, or -1 (not running: ENOENT, ECONNREFUSED). */
static int connect_master(const struct conf *c, struct buf *err)
{
    struct buf path = BUF_INIT;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    path_join(&path, c->run_dir, MASTER_SOCKET_NAME);
    if (path.len >= sizeof(sa.sun_path)) {
        buf_printf(err, "%s: path too long for a socket", path.s);
        buf_free(&path);
        return -1;
    }
    memcpy(sa.sun_path, path.s, path.len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        buf_free(&path);
        return fd;
    }
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
        buf_printf(err, "the instance %s is stopped", c->config_dir);
    else
        buf_printf(err, "cannot reach the master at %s: %s", path.s, strerror(e));
    if (fd >= 0)
        close(fd);
    buf_free(&path);
    errno = e;
    return -1;
}

static int send_request(int fd, enum mctl_type type)
{
    struct buf rec = BUF_INIT;
    mctl_encode_request(&rec, type);
    int rc = chan_send_record(fd, rec.s, rec.len, NULL, 0, REQUEST_TIMEOUT_MS);
    buf_free(&rec);
    return rc;
}

/* Read the next answer record into rec and decode it: 0, or -1 with a
 * message already printed. */
static int read_answer(int fd, int timeout_ms, struct buf *rec, struct ipc_reader *r,
                       struct mctl_msg *m)
{
    const char *why = NULL;
    unsigned nfds = 0;
    int fds[CHAN_FDS_MAX];
    int got = chan_recv_record(fd, MCTL_RECORD_MAX, 0, timeout_ms, rec, fds, &nfds, &why);
    if (got <= 0) {
        admin_fail("no answer from the master: %s", got == 0 ? "it closed the connection" : why);
        return -1;
    }
    if (mctl_decode(r, rec->s, rec->len, m) < 0) {
        ipc_close(r);
        admin_fail("the master's answer is malformed");
        return -1;
    }
    return 0;
}

/* One request whose answer is OK or ERR: 0 (OK text printed if any) or 1. */
static int simple_request(const struct conf *c, enum mctl_type type, int timeout_ms)
{
    struct buf err = BUF_INIT, rec = BUF_INIT;
    int rc = 1, fd = connect_master(c, &err);
    if (fd < 0) {
        admin_fail("%s", buf_cstr(&err));
    } else if (send_request(fd, type) < 0) {
        admin_fail("cannot send to the master: %s", strerror(errno));
    } else {
        struct ipc_reader r;
        struct mctl_msg m;
        if (read_answer(fd, timeout_ms, &rec, &r, &m) == 0) {
            if (m.type == MCTL_OK) {
                if (m.text && m.text[0])
                    printf("%s\n", m.text);
                rc = 0;
            } else {
                fprintf(stderr, "%s%s", m.text ? m.text : "",
                        m.text && m.text[0] && m.text[strlen(m.text) - 1] != '\n' ? "\n" : "");
                admin_fail("refused by the master");
            }
            ipc_close(&r);
        }
    }
    if (fd >= 0)
        close(fd);
    buf_free(&err);
    buf_free(&rec);
    return rc;
}

int cmd_reload(const char *confdir, int argc, char **argv)
{
    struct conf c;
    int none, rc = begin("reload", NULL, argc, argv, confdir, &c, &none);
    if (rc)
        return rc;
    rc = simple_request(&c, MCTL_RELOAD, REQUEST_TIMEOUT_MS);
    conf_free(&c);
    return rc;
}

static long master_pid(const struct conf *c)
{
    struct buf path = BUF_INIT, text = BUF_INIT;
    long pid = 0;
    path_join(&path, c->run_dir, MASTER_PID_NAME);
    if (read_file(buf_cstr(&path), &text, 64) == 0)
        pid = strtol(buf_cstr(&text), NULL, 10);
    buf_free(&path);
    buf_free(&text);
    return pid;
}

/* The master answers the stop just before it exits: wait (bounded) until
 * its process is gone, so that `onehop start` may follow at once. */
static void wait_exit(long pid)
{
    for (int waited = 0; pid > 0 && waited < MASTER_EXIT_WAIT_MS; waited += 10) {
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int cmd_stop(const char *confdir, int argc, char **argv)
{
    struct conf c;
    int none, rc = begin("stop", NULL, argc, argv, confdir, &c, &none);
    if (rc)
        return rc;
    long pid = master_pid(&c);
    rc = simple_request(&c, MCTL_STOP, STOP_WAIT_MS);
    if (rc == 0)
        wait_exit(pid);
    conf_free(&c);
    return rc;
}

/* --------------------------------------------------------------- status ---- */

/* As ps(1) shows an elapsed time: [[D-]HH:]MM:SS. */
static void add_uptime(struct buf *out, uint64_t secs)
{
    unsigned long long d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;
    if (d)
        buf_printf(out, "%llu-%02llu:%02llu:%02llu", d, h, m, s);
    else if (h)
        buf_printf(out, "%02llu:%02llu:%02llu", h, m, s);
    else
        buf_printf(out, "%02llu:%02llu", m, s);
}

static uint64_t uptime_of(const struct mctl_proc *p, time_t now)
{
    return p->started && (uint64_t)now > p->started ? (uint64_t)now - p->started : 0;
}

static void json_proc(struct buf *out, const struct mctl_proc *p, time_t now, int first)
{
    buf_adds(out, first ? "{" : ",{");
    json_field_cstr(out, "name", p->name);
    json_field_uint(out, "pid", p->pid);
    json_field_cstr(out, "user", p->user);
    json_field_uint(out, "uid", p->uid);
    json_field_uint(out, "uptime", uptime_of(p, now));
    json_field_uint(out, "started", p->started);
    json_field_uint(out, "restarts", p->restarts);
    json_field_cstr(out, "state", p->state);
    buf_addc(out, '}');
}

static void text_proc(struct buf *out, const struct mctl_proc *p, time_t now)
{
    struct buf up = BUF_INIT;
    if (p->pid)
        add_uptime(&up, uptime_of(p, now));
    else
        buf_adds(&up, "-");
    buf_printf(out, "%-10s %7lu  %-16s %6lu  %8s  %8lu  %s\n", p->name, (unsigned long)p->pid,
               p->user, (unsigned long)p->uid, buf_cstr(&up), (unsigned long)p->restarts, p->state);
    buf_free(&up);
}

/* The process records of a STATUS answer, as JSON members or text rows. */
static int read_processes(int fd, int json, struct buf *out)
{
    struct buf rec = BUF_INIT;
    time_t now = time(NULL);
    int n = 0, rc = -1;
    if (!json)
        buf_printf(out, "%-10s %7s  %-16s %6s  %8s  %8s  %s\n", "NAME", "PID", "USER", "UID",
                   "UPTIME", "RESTARTS", "STATE");
    for (;;) {
        struct ipc_reader r;
        struct mctl_msg m;
        if (read_answer(fd, REQUEST_TIMEOUT_MS, &rec, &r, &m) < 0)
            break;
        int type = m.type;
        if (type == MCTL_PROC && json)
            json_proc(out, &m.proc, now, n++ == 0);
        else if (type == MCTL_PROC)
            text_proc(out, &m.proc, now);
        ipc_close(&r);
        if (type != MCTL_PROC) {
            rc = type == MCTL_OK ? 0 : admin_fail("the master refused the status request");
            break;
        }
    }
    buf_free(&rec);
    return rc;
}

/* The counts of `onehop qstat` (JSON object or text), or a note why not. */
static void queue_counts(const struct conf *c, int json, struct buf *out)
{
    struct queue *q = NULL;
    const char *why = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int ok = f && qlist_open(c->queue_dir, &q, &why) == 0 &&
             qlist_print_counts(q, json ? QLIST_JSON : 0, time(NULL), f) == 0;
    int e = errno;
    if (f)
        fclose(f);
    if (q)
        queue_close(q);
    if (ok) {
        while (len && text[len - 1] == '\n')
            len--;
        buf_add(out, text, len);
    } else if (json) {
        buf_adds(out, "null");
    } else {
        buf_printf(out, "cannot count the queue %s: %s", c->queue_dir, strerror(e));
    }
    free(text);
}

int cmd_status(const char *confdir, int argc, char **argv)
{
    struct conf c;
    int json, rc = begin("status", "--json", argc, argv, confdir, &c, &json);
    if (rc)
        return rc;
    struct buf err = BUF_INIT, out = BUF_INIT;
    int fd = connect_master(&c, &err);
    int running = fd >= 0 && send_request(fd, MCTL_STATUS) == 0;
    if (json) {
        buf_adds(&out, "{");
        json_field_cstr(&out, "config_dir", c.config_dir);
        json_field_bool(&out, "running", running);
        json_add_key(&out, "processes");
        buf_addc(&out, '[');
    } else if (running) {
        buf_printf(&out, "instance %s: running\n", c.config_dir);
    }
    rc = running && read_processes(fd, json, &out) == 0 ? 0 : 1;
    if (json) {
        buf_addc(&out, ']');
        json_add_key(&out, "queue");
    } else {
        buf_adds(&out, "queue:\n");
    }
    queue_counts(&c, json, &out);
    buf_adds(&out, json ? "}\n" : "\n");
    fwrite(out.s, 1, out.len, stdout);
    fflush(stdout);
    if (!running)
        admin_fail("%s", err.len ? buf_cstr(&err) : "the master does not answer");
    if (fd >= 0)
        close(fd);
    conf_free(&c);
    buf_free(&err);
    buf_free(&out);
    return rc;
}

/* -------------------------------------------------------------- metrics ---- */

/* The metrics answer: MCTL_CHUNK records printed as they come, then OK. */
static int print_metrics(int fd)
{
    struct buf rec = BUF_INIT;
    int rc = 1;
    for (;;) {
        struct ipc_reader r;
        struct mctl_msg m;
        if (read_answer(fd, REQUEST_TIMEOUT_MS, &rec, &r, &m) < 0)
            break;
        int type = m.type;
        if (type == MCTL_CHUNK)
            fputs(m.text, stdout);
        else if (type == MCTL_OK)
            rc = 0;
        else
            admin_fail("the master refused the metrics request: %s", m.text ? m.text : "");
        ipc_close(&r);
        if (type != MCTL_CHUNK)
            break;
    }
    buf_free(&rec);
    return rc;
}

int cmd_metrics(const char *confdir, int argc, char **argv)
{
    struct conf c;
    int none, rc = begin("metrics", NULL, argc, argv, confdir, &c, &none);
    if (rc)
        return rc;
    struct buf err = BUF_INIT;
    int fd = connect_master(&c, &err);
    if (fd < 0)
        rc = admin_fail("%s", buf_cstr(&err));
    else if (send_request(fd, MCTL_METRICS) < 0)
        rc = admin_fail("cannot send to the master: %s", strerror(errno));
    else
        rc = print_metrics(fd);
    fflush(stdout);
    if (fd >= 0)
        close(fd);
    conf_free(&c);
    buf_free(&err);
    return rc;
}
