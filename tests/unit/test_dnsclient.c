/*
 * test_dnsclient — the asynchronous DNS cache client against a fake dnscache
 * in the same loop: answers are matched by id, and every way the daemon can
 * be missing (not running, connection lost, silent) ends each request with a
 * temporary failure instead of a hang. The blocking client is covered by the
 * integration tests (`onehop dns`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnsclient.h"
#include "mem.h"

enum fake_mode { ANSWER, REVERSE_PAIRS, CLOSE_ON_REQUEST, SILENT };

struct fake {
    uv_loop_t *loop;
    uv_pipe_t listener;
    uv_pipe_t peer;
    int have_peer;
    enum fake_mode mode;
    struct buf in;
    uint32_t held_id, held_type;
    int holding, listener_closed;
    unsigned requests, connections;
};

struct outcome {
    int calls;
    enum dns_status status;
    char reason[256];
    uint32_t order[8];
    int n;
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
    if (f->mode == ANSWER) {
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
    buf_reserve(&fake.in, 4096);
    *b = uv_buf_init(fake.in.s + fake.in.len, (unsigned)(fake.in.cap - fake.in.len - 1));
}

static void fake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    size_t reclen;
    const char *why;
    if (n < 0) {
        uv_close((uv_handle_t *)st, fake_peer_closed);
        return;
    }
    fake.in.len += (size_t)n;
    while (ipc_frame(fake.in.s, fake.in.len, 0, &reclen, &why) == 1) {
        if (fake.mode == CLOSE_ON_REQUEST) {
            buf_clear(&fake.in);
            uv_close((uv_handle_t *)st, fake_peer_closed);
            return;
        }
        fake_request(&fake, fake.in.s, reclen);
        buf_consume(&fake.in, reclen);
    }
}

static void fake_connection(uv_stream_t *listener, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(fake.have_peer, 0);
    uv_pipe_init(fake.loop, &fake.peer, 0);
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&fake.peer), 0);
    fake.have_peer = 1;
    fake.connections++;
    uv_read_start((uv_stream_t *)&fake.peer, fake_alloc, fake_read);
}

static void fake_start(enum fake_mode mode)
{
    memset(&fake, 0, sizeof(fake));
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
    buf_free(&fake.in);
    unlink(sock_path);
}

static void on_answer(void *arg, const struct dnsp_answer *a)
{
    struct outcome *o = arg;
    o->calls++;
    o->status = a->status;
    snprintf(o->reason, sizeof(o->reason), "%s", a->reason);
    if (a->nhosts == 1 && a->hosts[0].nv4 == 1 && o->n < 8)
        o->order[o->n++] = a->hosts[0].v4[3];
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
    for (int i = 0; i < 3; i++)
        dnsclient_lookup(c, DNSP_QTYPE_ROUTE, "b.test", on_answer, &o[i]);
    run_until(o, 3, 3000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, DNS_STATUS_TEMPFAIL);
        assert_string_equal(o[i].reason, "connection to dnscache lost");
    }
    /* the daemon is back: the next lookup connects again */
    struct outcome again = {0};
    fake.mode = ANSWER;
    dnsclient_lookup(c, DNSP_QTYPE_A, "h.test", on_answer, &again);
    run_until(&again, 1, 3000);
    assert_int_equal(again.status, DNS_STATUS_OK);
    assert_int_equal(fake.connections, 2);
    finish(c);
    fake_stop();
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
    snprintf(sock_path, sizeof(sock_path), "/tmp/onehop-test-dnsclient-%d.sock", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_running_fails_at_once),
        cmocka_unit_test(test_answers_matched_by_id),
        cmocka_unit_test(test_connection_lost_fails_requests_in_flight),
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
