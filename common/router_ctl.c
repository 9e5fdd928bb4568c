/*
 * router_ctl — encode and decode the records of the router's control
 * socket, and the blocking client. See router_ctl.h. Decoders read every
 * field through the codec (ipc.h), check the argument count against the op
 * before allocating, and free what they allocated when a record turns out
 * bad. The client uses channel_core's blocking helpers only (no libuv:
 * sendmail links it statically against musl).
 */
#include "router_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "channel_core.h"
#include "ipc.h"
#include "mem.h"
#include "safeio.h"

static const char *const op_names[] = {
    [RCTL_FLUSH] = "flush",   [RCTL_HOLD] = "hold",     [RCTL_RELEASE] = "release",
    [RCTL_DELETE] = "delete", [RCTL_RELOAD] = "reload", [RCTL_NEWALIASES] = "newaliases",
};

const char *rctl_op_name(uint32_t op)
{
    return op >= RCTL_FLUSH && op <= RCTL_OP_LAST ? op_names[op] : "?";
}

const char *rctl_request_check(uint32_t op, uint32_t select, size_t nargs)
{
    if (op < RCTL_FLUSH || op > RCTL_OP_LAST)
        return "request: unknown operation";
    if (select > RCTL_SEL_DEFERRED)
        return "request: unknown selection";
    if (nargs > RCTL_ARGS_MAX)
        return "request: too many arguments";
    switch (op) {
    case RCTL_FLUSH:
        return select == RCTL_SEL_NAMED && nargs <= 1 ? NULL : "flush: at most one target";
    case RCTL_HOLD:
    case RCTL_RELEASE:
    case RCTL_DELETE:
        if (select == RCTL_SEL_NAMED)
            return nargs > 0 ? NULL : "request: no queue ID";
        return nargs == 0 ? NULL : "request: queue IDs with --all or --deferred";
    default:
        return select == RCTL_SEL_NAMED && nargs == 0 ? NULL : "request: takes no argument";
    }
}

/* ------------------------------------------------------------ encoding ---- */

void rctl_put_request(struct buf *out, const struct rctl_request *req)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RCTL_REQUEST);
    ipc_add_u32(&w, req->op);
    ipc_add_u32(&w, req->select);
    ipc_add_u32(&w, (uint32_t)req->nargs);
    for (size_t i = 0; i < req->nargs; i++)
        ipc_add_str(&w, req->args[i]);
    ipc_finish(&w);
}

void rctl_put_note(struct buf *out, enum rctl_stream stream, const char *text)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RCTL_NOTE);
    ipc_add_u32(&w, (uint32_t)stream);
    ipc_add_str(&w, text);
    ipc_finish(&w);
}

void rctl_put_done(struct buf *out, uint32_t status, uint32_t count, const char *summary)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RCTL_DONE);
    ipc_add_u32(&w, status);
    ipc_add_u32(&w, count);
    ipc_add_str(&w, summary ? summary : "");
    ipc_finish(&w);
}

/* ------------------------------------------------------------ decoding ---- */

uint16_t rctl_record_type(const void *rec, size_t len)
{
    const unsigned char *p = rec;
    if (len < IPC_HEADER_SIZE)
        return 0;
    return (uint16_t)(p[4] << 8 | p[5]);
}

/* Open rec as a record of type want; -1 with *why (reader closed). */
static int open_as(struct ipc_reader *r, const void *rec, size_t len, uint16_t want,
                   const char **why)
{
    if (ipc_open(r, rec, len) == 0 && r->type == want)
        return 0;
    *why = r->error ? r->error : "unexpected record type";
    ipc_close(r);
    return -1;
}

/* The end check and the close: rc stays -1 when a field failed before. */
static int close_as(struct ipc_reader *r, int rc, const char **why)
{
    if (rc == 0 && ipc_end(r) < 0)
        rc = -1;
    if (rc < 0 && !*why)
        *why = r->error ? r->error : "bad field";
    ipc_close(r);
    return rc;
}

/* Arguments are queue IDs and domains: they go into log lines. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static int get_args(struct ipc_reader *r, struct rctl_request *req, const char **why)
{
    uint32_t n;
    if (ipc_get_u32(r, &req->op) < 0 || ipc_get_u32(r, &req->select) < 0 || ipc_get_u32(r, &n) < 0)
        return -1;
    if ((*why = rctl_request_check(req->op, req->select, n)) != NULL)
        return -1;
    req->args = xcalloc(n ? n : 1, sizeof(*req->args));
    for (; req->nargs < n; req->nargs++) {
        const char *s;
        if (ipc_get_str(r, RCTL_ARG_MAX, &s) < 0)
            return -1;
        if (has_control(s)) {
            *why = "request: a control character in an argument";
            return -1;
        }
        req->args[req->nargs] = xstrdup(s);
    }
    return 0;
}

int rctl_get_request(const void *rec, size_t len, struct rctl_request *req, const char **why)
{
    struct ipc_reader r;
    memset(req, 0, sizeof(*req));
    *why = NULL;
    if (open_as(&r, rec, len, RCTL_REQUEST, why) < 0)
        return -1;
    int rc = close_as(&r, get_args(&r, req, why), why);
    if (rc < 0)
        rctl_request_free(req);
    return rc;
}

void rctl_request_free(struct rctl_request *req)
{
    for (size_t i = 0; i < req->nargs; i++)
        free(req->args[i]);
    free(req->args);
    memset(req, 0, sizeof(*req));
}

/* A string of the record copied into text (the only one it holds). */
static int get_text(struct ipc_reader *r, struct buf *text)
{
    const char *s;
    if (ipc_get_str(r, RCTL_TEXT_MAX, &s) < 0)
        return -1;
    buf_set(text, s, strlen(s));
    buf_cstr(text);
    return 0;
}

int rctl_get_note(const void *rec, size_t len, struct rctl_note *n, struct buf *text,
                  const char **why)
{
    struct ipc_reader r;
    *why = NULL;
    if (open_as(&r, rec, len, RCTL_NOTE, why) < 0)
        return -1;
    int rc = ipc_get_u32(&r, &n->stream) < 0 || get_text(&r, text) < 0 ? -1 : 0;
    if (rc == 0 && n->stream > RCTL_TO_STDERR) {
        *why = "note: unknown stream";
        rc = -1;
    }
    rc = close_as(&r, rc, why);
    n->text = rc == 0 ? buf_cstr(text) : NULL;
    return rc;
}

int rctl_get_done(const void *rec, size_t len, struct rctl_done *d, struct buf *text,
                  const char **why)
{
    struct ipc_reader r;
    *why = NULL;
    if (open_as(&r, rec, len, RCTL_DONE, why) < 0)
        return -1;
    int rc =
        ipc_get_u32(&r, &d->status) < 0 || ipc_get_u32(&r, &d->count) < 0 || get_text(&r, text) < 0
            ? -1
            : 0;
    if (rc == 0 && d->status > 1) {
        *why = "done: unknown status";
        rc = -1;
    }
    rc = close_as(&r, rc, why);
    d->summary = rc == 0 ? buf_cstr(text) : NULL;
    return rc;
}

/* ---------------------------------------------------- the client side ---- */

void rctl_socket_path(const char *run_dir, const char *queue_dir, int fallback, struct buf *path)
{
    buf_clear(path);
    if (!fallback) {
        path_join(path, run_dir, ROUTER_SOCKET_NAME);
        return;
    }
    struct buf dir = BUF_INIT;
    path_join(&dir, queue_dir, ROUTER_SOCKET_FALLBACK_DIR);
    path_join(path, buf_cstr(&dir), ROUTER_SOCKET_NAME);
    buf_free(&dir);
}

static int connect_path(const struct buf *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path->len >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path->s, path->len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int rctl_connect(const char *run_dir, const char *queue_dir)
{
    struct buf path = BUF_INIT;
    rctl_socket_path(run_dir, queue_dir, 0, &path);
    int fd = connect_path(&path);
    int e = errno;
    if (fd < 0 && (e == ENOENT || e == ECONNREFUSED)) {
        rctl_socket_path(run_dir, queue_dir, 1, &path);
        fd = connect_path(&path);
        if (fd < 0 && errno != ENOENT && errno != ECONNREFUSED)
            e = errno; /* EACCES: state/ is not the caller's */
    }
    buf_free(&path);
    errno = e;
    return fd;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
    int64_t left = deadline - monotonic_ms();
    return left > 0 ? (int)left : 0;
}

/* One answer record: NOTE (1, on_note called), DONE (0, *done), or -1. */
static int read_answer(int fd, int64_t deadline, struct buf *rec, struct buf *text,
                       rctl_note_fn *on_note, void *arg, struct rctl_done *done, const char **why)
{
    int got = chan_recv_record(fd, RCTL_RECORD_MAX, 0, left_ms(deadline), rec, NULL, NULL, why);
    if (got == 0) {
        *why = "the router closed the connection without an answer";
        errno = 0;
    }
    if (got <= 0)
        return -1;
    struct rctl_note n;
    if (rctl_record_type(rec->s, rec->len) == RCTL_NOTE &&
        rctl_get_note(rec->s, rec->len, &n, text, why) == 0) {
        if (on_note)
            on_note(arg, &n);
        return 1;
    }
    if (rctl_get_done(rec->s, rec->len, done, text, why) == 0)
        return 0;
    errno = EPROTO;
    return -1;
}

int rctl_call(int fd, const struct rctl_request *req, int timeout_ms, rctl_note_fn *on_note,
              void *arg, struct rctl_done *done, struct buf *text, const char **why)
{
    struct buf rec = BUF_INIT;
    int64_t deadline = monotonic_ms() + timeout_ms;
    int rc;
    *why = NULL;
    rctl_put_request(&rec, req);
    if (chan_send_record(fd, rec.s, rec.len, NULL, 0, timeout_ms) < 0) {
        *why = errno == EPIPE || errno == ECONNRESET
                   ? "the router closed the connection without an answer"
                   : "cannot send the request";
        rc = -1;
    } else {
        while ((rc = read_answer(fd, deadline, &rec, text, on_note, arg, done, why)) == 1)
            ;
    }
    int e = errno;
    buf_free(&rec);
    errno = e;
    return rc;
}

/* ------------------------------------------------------------ rctl_ask ---- */

struct ask {
    const char *program;
};

static void print_note(void *arg, const struct rctl_note *n)
{
    const struct ask *k = arg;
    fprintf(n->stream == RCTL_TO_STDOUT ? stdout : stderr, "%s: %s\n", k->program, n->text);
}

static enum rctl_ask_result refused(const char *program, const char *run_dir, const char *how)
{
    fprintf(stderr,
            "%s: the router of %s %s: only the instance's owner or root may control it (you "
            "are uid %lu)\n",
            program, run_dir, how, (unsigned long)getuid());
    return RCTL_ASK_REFUSED;
}

enum rctl_ask_result rctl_ask(const char *run_dir, const char *queue_dir,
                              const struct rctl_request *req, const char *program, int timeout_ms)
{
    int fd = rctl_connect(run_dir, queue_dir);
    if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED))
        return RCTL_ASK_NOT_RUNNING;
    if (fd < 0 && (errno == EACCES || errno == EPERM))
        return refused(program, run_dir, "cannot be reached (permission denied)");
    if (fd < 0) {
        fprintf(stderr, "%s: cannot reach the router at %s/%s: %s\n", program, run_dir,
                ROUTER_SOCKET_NAME, strerror(errno));
        return RCTL_ASK_ERROR;
    }
    struct ask k = {program};
    struct rctl_done d;
    struct buf text = BUF_INIT;
    const char *why = NULL;
    int rc = rctl_call(fd, req, timeout_ms, print_note, &k, &d, &text, &why);
    int e = errno;
    close(fd);
    enum rctl_ask_result res = RCTL_ASK_ERROR;
    if (rc == 0) {
        if (d.summary[0])
            fprintf(stderr, "%s: %s\n", program, d.summary);
        res = d.status == 0 ? RCTL_ASK_DONE : RCTL_ASK_FAILED;
    } else if (e == 0 || e == EPIPE || e == ECONNRESET) {
        res = refused(program, run_dir, "closed the connection without an answer");
    } else {
        fprintf(stderr, "%s: no answer from the router: %s (%s)\n", program, why, strerror(e));
    }
    buf_free(&text);
    return res;
}
