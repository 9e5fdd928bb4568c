/*
 * test_dnsclient — the asynchronous DNS cache client against a fake dnscache
 * in the same loop: answers are matched by id (also when ids wrap), a
 * dnscache restart is survived by sending again once on a new connection,
 * and every way the daemon can be missing (not running, connection lost
 * twice, a write refused, silent) ends each request with a temporary
 * failure at once instead of a hang. The blocking client is covered by the
 * integration tests (`onehop dns`).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "channel_core.h"
#include "dnsclient.h"
#include "mem.h"

enum fake_mode { ANSWER, REVERSE_PAIRS, CLOSE_ON_REQUEST, CLOSE_FIRST, SHUT_READ, SILENT };

struct fake {
    uv_loop_t *loop;
    uv_pipe_t listener;
    uv_pipe_t peer;
    int have_peer;
    enum fake_mode mode;
    struct chan_in in; /* the client's requests (channel_core's framing) */
    char scratch[4096];
    uint32_t held_id, held_type;
    int holding, listener_closed;
    unsigned requests, connections;
    uint32_t last_qtype;
};

struct outcome {
    int calls;
    uint32_t qtype;
    enum dns_status status;
    char reason[256];
    uint32_t order[8];
    int n;
    int keep; /* copy the answer into kept (dnsclient_answer_copy) */
    struct dnsp_answer kept;
};

static char sock_path[108];
static struct fake fake;

static void fake_reply(struct fake *f, uint32_t id, uint32_t qtype)
{
    unsigned char v4[4] = {127, 0, 0, (unsigned char)id};
    struct dnsp_host h = {0, "h.test", DNS_STATUS_OK, "", 60, v4, 1, NULL, 0};
    struct dnsp_answer a = {id, qtype, "h.test", "h.test", DNS_STATUS_OK, "", 60, 0, &h, 1};
    struct buf out = BUF_INIT;
    dnsp_put_answer(&out, DNSP_ANSWER, &a);
    uv_buf_t b = uv_buf_init(out.s, (unsigned)out.len);
    assert_int_equal(uv_try_write((uv_stream_t *)&f->peer, &b, 1), (int)out.len);
    buf_free(&out);
}

static void fake_request(struct fake *f, const char *rec, size_t len)
{
    struct buf name = BUF_INIT;
    uint32_t id, qtype;
    const char *why;
    assert_int_equal(dnsp_get_lookup(rec, len, &id, &qtype, &name, &why), 0);
    buf_free(&name);
    f->requests++;
    f->last_qtype = qtype;
    if (f->mode == ANSWER || f->mode == CLOSE_FIRST) {
        fake_reply(f, id, qtype);
    } else if (f->mode == REVERSE_PAIRS && !f->holding) {
        f->held_id = id;
        f->held_type = qtype;
        f->holding = 1;
    } else if (f->mode == REVERSE_PAIRS) {
        fake_reply(f, id, qtype);
        fake_reply(f, f->held_id, f->held_type);
        f->holding = 0;
    }
}

static void fake_peer_closed(uv_handle_t *h)
{
    fake.have_peer = 0;
}

static void fake_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    *b = uv_buf_init(fake.scratch, sizeof(fake.scratch));
}

static void fake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct chan_record rec;
    if (n < 0) {
        uv_close((uv_handle_t *)st, fake_peer_closed);
        return;
    }
    assert_int_equal(chan_in_feed(&fake.in, b->base, (size_t)n, NULL, 0), 0);
    while (chan_in_pop(&fake.in, &rec) == 1) {
        if (fake.mode == CLOSE_ON_REQUEST || (fake.mode == CLOSE_FIRST && fake.connections == 1)) {
            chan_in_free(&fake.in); /* the next connection starts afresh */
            chan_in_init(&fake.in, 0, 0);
            uv_close((uv_handle_t *)st, fake_peer_closed);
            return;
        }
        fake_request(&fake, rec.data, rec.len);
    }
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* SHUT_READ after the first connection: accept and close at once. */
static void fake_refuse(uv_stream_t *listener)
{
    uv_pipe_t *p = xcalloc(1, sizeof(*p));
    uv_pipe_init(fake.loop, p, 0);
    assert_int_equal(uv_accept(listener, (uv_stream_t *)p), 0);
    uv_close((uv_handle_t *)p, free_handle);
}

static void fake_connection(uv_stream_t *listener, int status)
{
    assert_int_equal(status, 0);
    if (fake.mode == SHUT_READ && fake.connections == 1) {
        fake.connections++;
        fake_refuse(listener);
        return;
    }
    assert_int_equal(fake.have_peer, 0);
    uv_pipe_init(fake.loop, &fake.peer, 0);
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&fake.peer), 0);
    fake.have_peer = 1;
    fake.connections++;
    if (fake.mode == SHUT_READ) {
        /* the client's next writes fail (EPIPE); it reads no end */
        uv_os_fd_t fd;
        assert_int_equal(uv_fileno((uv_handle_t *)&fake.peer, &fd), 0);
        assert_int_equal(shutdown(fd, SHUT_RD), 0);
        return; /* and never read: the connection stays open */
    }
    uv_read_start((uv_stream_t *)&fake.peer, fake_alloc, fake_read);
}

static void fake_start(enum fake_mode mode)
{
    memset(&fake, 0, sizeof(fake));
    chan_in_init(&fake.in, 0, 0);
    fake.loop = uv_default_loop();
    fake.mode = mode;
    unlink(sock_path);
    uv_pipe_init(fake.loop, &fake.listener, 0);
    assert_int_equal(uv_pipe_bind(&fake.listener, sock_path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fake.listener, 8, fake_connection), 0);
}

static void fake_listener_closed(uv_handle_t *h)
{
    fake.listener_closed = 1;
}

static void fake_stop(void)
{
    if (fake.have_peer && !uv_is_closing((uv_handle_t *)&fake.peer))
        uv_close((uv_handle_t *)&fake.peer, fake_peer_closed);
    uv_close((uv_handle_t *)&fake.listener, fake_listener_closed);
    /* the handles live in `fake`: their close must finish before it is reused */
    for (int i = 0; i < 100 && (fake.have_peer || !fake.listener_closed); i++)
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    assert_true(fake.listener_closed && !fake.have_peer);
    chan_in_free(&fake.in);
    unlink(sock_path);
}

static void on_answer(void *arg, const struct dnsp_answer *a)
{
    struct outcome *o = arg;
    o->calls++;
    o->qtype = a->qtype;
    o->status = a->status;
    snprintf(o->reason, sizeof(o->reason), "%s", a->reason);
    if (a->nhosts == 1 && a->hosts[0].nv4 == 1 && o->n < 8)
        o->order[o->n++] = a->hosts[0].v4[3];
    if (o->keep)
        dnsclient_answer_copy(&o->kept, a);
}

/* Run the loop until every outcome has a call, or the bound passes. */
static void run_until(struct outcome *o, int n, uint64_t bound_ms)
{
    uint64_t end = uv_now(uv_default_loop()) + bound_ms;
    for (;;) {
        int done = 1;
        for (int i = 0; i < n; i++)
            done &= o[i].calls > 0;
        if (done || uv_now(uv_default_loop()) > end)
            return;
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    }
}

/* n lookups of qtype name into o[0..n), then the loop until each is called back. */
static void lookup_n(struct dnsclient *c, uint32_t qtype, const char *name, struct outcome *o,
                     int n)
{
    for (int i = 0; i < n; i++)
        dnsclient_lookup(c, qtype, name, on_answer, &o[i]);
    run_until(o, n, 3000);
}

/* Each of o[0..n) called back once, with status and (unless NULL) reason. */
static void expect_each(const struct outcome *o, int n, enum dns_status status, const char *reason)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, status);
        if (reason)
            assert_string_equal(o[i].reason, reason);
    }
}

static void finish(struct dnsclient *c)
{
    dnsclient_free(c);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

static void test_not_running_fails_at_once(void **state)
{
    struct outcome o = {0};
    unlink(sock_path);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_MX, "b.test", on_answer, &o);
    assert_int_equal(o.calls, 0); /* never inside dnsclient_lookup() */
    run_until(&o, 1, 2000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, DNS_STATUS_TEMPFAIL);
    assert_non_null(strstr(o.reason, "dnscache is not running"));
    finish(c);
}

static void test_answers_matched_by_id(void **state)
{
    struct outcome o[2] = {{0}};
    fake_start(REVERSE_PAIRS);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &o[0]);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &o[1]);
    run_until(o, 2, 3000);
    assert_int_equal(o[0].calls, 1);
    assert_int_equal(o[1].calls, 1);
    assert_int_equal(o[0].status, DNS_STATUS_OK);
    assert_int_equal(o[0].order[0], 1); /* id 1's own answer, sent second */
    assert_int_equal(o[1].order[0], 2);
    assert_int_equal(fake.connections, 1);
    finish(c);
    fake_stop();
}

static void test_connection_lost_fails_requests_in_flight(void **state)
{
    struct outcome o[3] = {{0}};
    fake_start(CLOSE_ON_REQUEST);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    lookup_n(c, DNSP_QTYPE_ROUTE, "b.test", o, 3);
    expect_each(o, 3, DNS_STATUS_TEMPFAIL, "connection to dnscache lost");
    assert_int_equal(fake.connections, 2); /* sent once more on a new connection, lost again */
    /* the daemon is back: the next lookup connects again */
    struct outcome again = {0};
    fake.mode = ANSWER;
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &again);
    run_until(&again, 1, 3000);
    assert_int_equal(again.status, DNS_STATUS_OK);
    assert_int_equal(fake.connections, 3);
    finish(c);
    fake_stop();
}

/* The dnscache restarts with requests in flight: each is sent again once
 * on the new connection and answered, none fails. */
static void test_restart_retries_once_after_reconnecting(void **state)
{
    struct outcome o[3] = {{0}};
    fake_start(CLOSE_FIRST);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    lookup_n(c, DNSP_QTYPE_A, "h.test", o, 3);
    expect_each(o, 3, DNS_STATUS_OK, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(o[i].order[0], i + 1); /* its own answer, by id */
    assert_int_equal(fake.connections, 2);
    assert_int_equal(fake.requests, 3);
    finish(c);
    fake_stop();
}

/* Ids wrap past UINT32_MAX (skipping 0): a lost connection still ends
 * every request in flight at once, and answers still find their request. */
static void test_ids_wrap(void **state)
{
    struct outcome lost[3] = {{0}}, answered[3] = {{0}};
    fake_start(CLOSE_ON_REQUEST);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_set_last_id(c, UINT32_MAX - 1); /* ids UINT32_MAX, 1, 2 */
    lookup_n(c, DNSP_QTYPE_A, "h.test", lost, 3);
    expect_each(lost, 3, DNS_STATUS_TEMPFAIL, "connection to dnscache lost");
    fake.mode = ANSWER;
    dnsclient_set_last_id(c, UINT32_MAX - 1);
    lookup_n(c, DNSP_QTYPE_A, "h.test", answered, 3);
    expect_each(answered, 3, DNS_STATUS_OK, NULL);
    assert_int_equal(answered[0].order[0], 255); /* id UINT32_MAX: low byte 255 */
    assert_int_equal(answered[1].order[0], 1);   /* then 1: 0 is never an id */
    assert_int_equal(answered[2].order[0], 2);
    finish(c);
    fake_stop();
}

/* The daemon takes no more input (writes fail with EPIPE) but does not
 * close: the failed write ends the connection at once, not the timeout. */
static void test_failed_write_fails_at_once(void **state)
{
    struct outcome first = {0}, second = {0};
    fake_start(SHUT_READ);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 30000);
    uint64_t start = uv_now(uv_default_loop());
    dnsclient_lookup(c, DNSP_QTYPE_MX, "b.test", on_answer,
                     &first); /* queued before the shutdown */
    for (int i = 0; i < 200 && fake.connections < 1; i++)
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    assert_int_equal(fake.connections, 1);
    dnsclient_lookup(c, DNSP_QTYPE_MX, "b.test", on_answer, &second); /* refused: EPIPE */
    run_until(&second, 1, 3000);
    run_until(&first, 1, 1000);
    assert_int_equal(second.calls, 1);
    assert_int_equal(second.status, DNS_STATUS_TEMPFAIL);
    /* both were sent once more on a new connection, which the daemon closed */
    assert_string_equal(second.reason, "connection to dnscache lost");
    assert_string_equal(first.reason, "connection to dnscache lost");
    assert_true(uv_now(uv_default_loop()) - start < 2000);
    assert_int_equal(fake.connections, 2);
    finish(c);
    fake_stop();
}

/* The answer is the client's during the callback only; a copy is the caller's. */
static void test_answer_copy_outlives_callback(void **state)
{
    struct outcome o = {0};
    o.keep = 1;
    fake_start(ANSWER);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &o);
    run_until(&o, 1, 3000);
    finish(c); /* nothing of the client's is left */
    assert_int_equal(o.kept.status, DNS_STATUS_OK);
    assert_string_equal(o.kept.name, "h.test");
    assert_string_equal(o.kept.canon, "h.test");
    assert_int_equal(o.kept.ttl, 60);
    assert_int_equal(o.kept.nhosts, 1);
    assert_string_equal(o.kept.hosts[0].name, "h.test");
    assert_int_equal(o.kept.hosts[0].nv4, 1);
    const unsigned char want[4] = {127, 0, 0, 1};
    assert_memory_equal(o.kept.hosts[0].v4, want, 4);
    assert_null(o.kept.hosts[0].v6);
    dnsp_answer_free(&o.kept);
    fake_stop();
}

/* The ADDR view ([host] next hops, relayhost) goes through as asked. */
static void test_address_view_request(void **state)
{
    struct outcome o = {0};
    fake_start(ANSWER);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_ADDR, "h.test", on_answer, &o);
    run_until(&o, 1, 3000);
    assert_int_equal(fake.last_qtype, DNSP_QTYPE_ADDR);
    assert_int_equal(o.qtype, DNSP_QTYPE_ADDR);
    assert_int_equal(o.status, DNS_STATUS_OK);
    assert_int_equal(o.order[0], 1);
    finish(c);
    fake_stop();
}

/* The daemon's listen backlog is full (connect says EAGAIN): the client
 * tries again shortly instead of failing the request as "not running". */
static void test_full_backlog_is_waited_for(void **state)
{
    struct outcome o = {0};
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    unlink(sock_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_int_equal(connect(probe, (struct sockaddr *)&sa, sizeof(sa)), -1);
    assert_int_equal(errno, EAGAIN); /* the backlog is full */
    close(probe);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &o);
    uint64_t end = uv_now(uv_default_loop()) + 300;
    while (uv_now(uv_default_loop()) < end)
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    assert_int_equal(o.calls, 0);   /* waiting, not failed */
    close(accept(lfd, NULL, NULL)); /* room again: the client gets in */
    end = uv_now(uv_default_loop()) + 3000;
    int cfd = -1;
    while (cfd < 0 && uv_now(uv_default_loop()) < end) {
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    }
    assert_true(cfd >= 0);
    struct buf rec = BUF_INIT;
    int fds[CHAN_FDS_MAX];
    unsigned nfds;
    const char *why;
    assert_int_equal(chan_recv_record(cfd, 0, 0, 3000, &rec, fds, &nfds, &why), 1);
    struct buf name = BUF_INIT;
    uint32_t id, qtype;
    assert_int_equal(dnsp_get_lookup(rec.s, rec.len, &id, &qtype, &name, &why), 0);
    struct dnsp_answer a = {id, qtype, "h.test", "h.test", DNS_STATUS_OK, "", 60, 0, NULL, 0};
    buf_clear(&rec);
    dnsp_put_answer(&rec, DNSP_ANSWER, &a);
    assert_int_equal(chan_send_record(cfd, rec.s, rec.len, NULL, 0, 3000), 0);
    run_until(&o, 1, 3000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, DNS_STATUS_OK);
    finish(c);
    buf_free(&rec);
    buf_free(&name);
    close(cfd);
    close(filler);
    close(lfd);
    unlink(sock_path);
}

static void test_silent_daemon_times_out(void **state)
{
    struct outcome o = {0};
    fake_start(SILENT);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 1200);
    dnsclient_lookup(c, DNSP_QTYPE_MX, "b.test", on_answer, &o);
    run_until(&o, 1, 5000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, DNS_STATUS_TEMPFAIL);
    assert_string_equal(o.reason, "dnscache did not answer in time");
    finish(c);
    fake_stop();
}

static void test_cancelled_request_is_never_called_back(void **state)
{
    struct outcome cancelled = {0}, kept = {0};
    fake_start(ANSWER);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    struct dnsclient_req *r = dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &cancelled);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &kept);
    dnsclient_cancel(r);
    run_until(&kept, 1, 3000);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(cancelled.calls, 0);
    finish(c);
    fake_stop();
}

static void test_free_while_connecting(void **state)
{
    struct outcome o = {0};
    fake_start(ANSWER);
    struct dnsclient *c = dnsclient_new(uv_default_loop(), sock_path, 5000);
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &o);
    finish(c); /* pending requests dropped, no callback, no use after free */
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 0);
    fake_stop();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as every daemon does: a refused write is an error, not a death */
    snprintf(sock_path, sizeof(sock_path), "/tmp/onehop-test-dnsclient-%d.sock", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_running_fails_at_once),
        cmocka_unit_test(test_answers_matched_by_id),
        cmocka_unit_test(test_connection_lost_fails_requests_in_flight),
        cmocka_unit_test(test_restart_retries_once_after_reconnecting),
        cmocka_unit_test(test_ids_wrap),
        cmocka_unit_test(test_failed_write_fails_at_once),
        cmocka_unit_test(test_answer_copy_outlives_callback),
        cmocka_unit_test(test_address_view_request),
        cmocka_unit_test(test_full_backlog_is_waited_for),
        cmocka_unit_test(test_silent_daemon_times_out),
        cmocka_unit_test(test_cancelled_request_is_never_called_back),
        cmocka_unit_test(test_free_while_connecting),
    };
    int failed = cmocka_run_group_tests_name("dnsclient", tests, NULL, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    uv_loop_close(uv_default_loop());
    unlink(sock_path);
    return failed;
}
