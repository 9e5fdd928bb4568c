/*
 * test_daemon_link — the master link's records and the daemon's plain side
 * (common/daemon_link.h), and the control socket's records
 * (common/master_proto.h): exact wire bytes, round trips, every malformed
 * record refused, the environment variable's forms, records read in order
 * from one read, end of file, and a log_die() before READY reaching the
 * master as FAILED with its text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "daemon_link.h"
#include "ipc.h"
#include "log.h"
#include "master_proto.h"

/* ---------------------------------------------------------------- records ---- */

static void test_ready_wire_bytes(void **state)
{
    struct buf b = BUF_INIT;
    daemon_link_encode(&b, DLINK_READY, NULL);
    static const unsigned char want[] = {0, 0, 0, 8, 0, DLINK_READY, 0, 0};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.s, want, sizeof(want));
    buf_free(&b);
}

static void test_round_trip_each_type(void **state)
{
    static const int types[] = {DLINK_READY, DLINK_FAILED,  DLINK_RELOAD,
                                DLINK_STOP,  DLINK_METRICS, DLINK_METRICS_TEXT};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct buf b = BUF_INIT, text = BUF_INIT;
        daemon_link_encode(&b, (enum dlink_type)types[i], "port 25 in use");
        assert_int_equal(daemon_link_decode(b.s, b.len, &text), types[i]);
        int has_text = types[i] == DLINK_FAILED || types[i] == DLINK_METRICS_TEXT;
        assert_string_equal(buf_cstr(&text), has_text ? "port 25 in use" : "");
        buf_free(&b);
        buf_free(&text);
    }
}

static void test_failed_text_is_capped(void **state)
{
    char *big = malloc(DLINK_TEXT_MAX + 100);
    memset(big, 'x', DLINK_TEXT_MAX + 99);
    big[DLINK_TEXT_MAX + 99] = '\0';
    struct buf b = BUF_INIT, text = BUF_INIT;
    daemon_link_encode(&b, DLINK_FAILED, big);
    assert_true(b.len <= DLINK_RECORD_MAX);
    assert_int_equal(daemon_link_decode(b.s, b.len, &text), DLINK_FAILED);
    assert_int_equal(text.len, DLINK_TEXT_MAX);
    free(big);
    buf_free(&b);
    buf_free(&text);
}

static void test_malformed_records_are_refused(void **state)
{
    struct buf text = BUF_INIT;
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    ipc_begin(&w, &b, 9); /* unknown type */
    ipc_finish(&w);
    assert_int_equal(daemon_link_decode(b.s, b.len, &text), -1);
    buf_clear(&b);
    ipc_begin(&w, &b, DLINK_READY); /* a field READY does not have */
    ipc_add_u32(&w, 1);
    ipc_finish(&w);
    assert_int_equal(daemon_link_decode(b.s, b.len, &text), -1);
    buf_clear(&b);
    ipc_begin(&w, &b, DLINK_FAILED); /* FAILED without its text */
    ipc_finish(&w);
    assert_int_equal(daemon_link_decode(b.s, b.len, &text), -1);
    buf_clear(&b);
    daemon_link_encode(&b, DLINK_STOP, NULL);
    assert_int_equal(daemon_link_decode(b.s, b.len - 1, &text), -1); /* cut short */
    buf_free(&b);
    buf_free(&text);
}

/* ------------------------------------------------------------ environment ---- */

static void test_open_without_variable(void **state)
{
    struct daemon_link l;
    const char *why = NULL;
    unsetenv(DAEMON_LINK_ENV);
    assert_int_equal(daemon_link_open(&l, &why), 0);
    assert_int_equal(l.fd, -1);
    assert_int_equal(daemon_link_ready(&l), 0); /* a no-op */
    assert_int_equal(daemon_link_next(&l), 0);
    daemon_link_close(&l);
}

static void test_open_refuses_a_bad_variable(void **state)
{
    struct daemon_link l;
    const char *why = NULL;
    int p[2];
    setenv(DAEMON_LINK_ENV, "three", 1);
    assert_int_equal(daemon_link_open(&l, &why), -1);
    assert_non_null(strstr(why, "not a descriptor number"));
    daemon_link_close(&l);
    assert_int_equal(pipe(p), 0);
    char num[16];
    snprintf(num, sizeof(num), "%d", p[0]);
    setenv(DAEMON_LINK_ENV, num, 1);
    assert_int_equal(daemon_link_open(&l, &why), -1); /* a pipe is not a socket */
    assert_non_null(strstr(why, "no stream socket"));
    assert_null(getenv(DAEMON_LINK_ENV));
    daemon_link_close(&l);
    close(p[0]);
    close(p[1]);
}

/* The daemon's link on one end of a socketpair; *master gets the other. */
static void open_linked(struct daemon_link *l, int *master)
{
    int sv[2];
    const char *why = NULL;
    char num[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    snprintf(num, sizeof(num), "%d", sv[1]);
    setenv(DAEMON_LINK_ENV, num, 1);
    assert_int_equal(daemon_link_open(l, &why), 0);
    assert_int_equal(l->fd, sv[1]);
    assert_null(getenv(DAEMON_LINK_ENV)); /* not passed on to what it runs */
    *master = sv[0];
}

static void test_records_in_one_read_come_in_order(void **state)
{
    struct daemon_link l;
    int master;
    open_linked(&l, &master);
    struct buf out = BUF_INIT;
    daemon_link_encode(&out, DLINK_RELOAD, NULL);
    daemon_link_encode(&out, DLINK_STOP, NULL);
    assert_int_equal(write(master, out.s, out.len), (ssize_t)out.len);
    assert_int_equal(daemon_link_next(&l), DLINK_RELOAD);
    assert_int_equal(daemon_link_next(&l), DLINK_STOP);
    assert_int_equal(daemon_link_next(&l), 0); /* nothing more: would block */
    close(master);
    assert_int_equal(daemon_link_next(&l), -1);
    assert_string_equal(l.why, "the master link closed");
    daemon_link_close(&l);
    buf_free(&out);
}

/* METRICS is answered by the link itself with the registry's text, and the
 * record after it is returned as usual. */
static void test_metrics_request_is_answered_by_the_link(void **state)
{
    struct daemon_link l;
    int master;
    open_linked(&l, &master);
    metric_inc(metric_counter("onehop_test_total", "A test counter.", NULL), NULL);
    struct buf out = BUF_INIT, rec = BUF_INIT, text = BUF_INIT;
    daemon_link_encode(&out, DLINK_METRICS, NULL);
    daemon_link_encode(&out, DLINK_RELOAD, NULL);
    assert_int_equal(write(master, out.s, out.len), (ssize_t)out.len);
    assert_int_equal(daemon_link_next(&l), DLINK_RELOAD);
    const char *why = NULL;
    assert_int_equal(chan_recv_record(master, DLINK_RECORD_MAX, 0, 1000, &rec, NULL, NULL, &why), 1);
    assert_int_equal(daemon_link_decode(rec.s, rec.len, &text), DLINK_METRICS_TEXT);
    assert_string_equal(buf_cstr(&text), "# HELP onehop_test_total A test counter.\n"
                                         "# TYPE onehop_test_total counter\n"
                                         "onehop_test_total 1\n");
    metrics_reset();
    close(master);
    daemon_link_close(&l);
    buf_free(&out);
    buf_free(&rec);
    buf_free(&text);
}

static void test_ready_reaches_the_master(void **state)
{
    struct daemon_link l;
    int master;
    open_linked(&l, &master);
    assert_int_equal(daemon_link_ready(&l), 0);
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why = NULL;
    assert_int_equal(chan_recv_record(master, DLINK_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why), 1);
    assert_int_equal(daemon_link_decode(rec.s, rec.len, &text), DLINK_READY);
    close(master);
    daemon_link_close(&l);
    buf_free(&rec);
    buf_free(&text);
}

static void test_a_malformed_record_ends_the_link(void **state)
{
    struct daemon_link l;
    int master;
    open_linked(&l, &master);
    static const unsigned char bad[] = {0, 0, 0, 8, 0, 77, 0, 0};
    assert_int_equal(write(master, bad, sizeof(bad)), (ssize_t)sizeof(bad));
    assert_int_equal(daemon_link_next(&l), -1);
    assert_non_null(strstr(l.why, "malformed"));
    close(master);
    daemon_link_close(&l);
}

static void test_fatal_before_ready_is_sent_as_failed(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct daemon_link l;
        const char *why = NULL;
        char num[16];
        close(sv[0]);
        snprintf(num, sizeof(num), "%d", sv[1]);
        setenv(DAEMON_LINK_ENV, num, 1);
        if (daemon_link_open(&l, &why) != 0)
            _exit(99);
        log_open("test", "/dev/null");
        log_die(7, "cannot listen on %s: %s", "127.0.0.1:25", "Address already in use");
    }
    close(sv[1]);
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why = NULL;
    assert_int_equal(chan_recv_record(sv[0], DLINK_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why), 1);
    assert_int_equal(daemon_link_decode(rec.s, rec.len, &text), DLINK_FAILED);
    assert_string_equal(buf_cstr(&text), "cannot listen on 127.0.0.1:25: Address already in use");
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    close(sv[0]);
    buf_free(&rec);
    buf_free(&text);
}

/* ----------------------------------------------------------- master_proto ---- */

static void test_mctl_proc_round_trip(void **state)
{
    struct mctl_proc p = {"dnscache", "onehop-dns", "crashloop", 4012, 105, 4, 1764770000};
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    struct mctl_msg m;
    mctl_encode_proc(&b, &p);
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), 0);
    assert_int_equal(m.type, MCTL_PROC);
    assert_string_equal(m.proc.name, "dnscache");
    assert_string_equal(m.proc.user, "onehop-dns");
    assert_string_equal(m.proc.state, "crashloop");
    assert_int_equal(m.proc.pid, 4012);
    assert_int_equal(m.proc.uid, 105);
    assert_int_equal(m.proc.restarts, 4);
    assert_int_equal(m.proc.started, 1764770000);
    ipc_close(&r);
    assert_int_equal(mctl_decode(&r, b.s, b.len - 1, &m), -1);
    ipc_close(&r);
    buf_free(&b);
}

static void test_mctl_text_and_requests(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    struct mctl_msg m;
    mctl_encode_text(&b, MCTL_ERR, "DIR/routes:2: no next hop");
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), 0);
    assert_int_equal(m.type, MCTL_ERR);
    assert_string_equal(m.text, "DIR/routes:2: no next hop");
    ipc_close(&r);
    buf_clear(&b);
    mctl_encode_request(&b, MCTL_STOP);
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), 0);
    assert_int_equal(m.type, MCTL_STOP);
    ipc_close(&r);
    buf_clear(&b);
    mctl_encode_request(&b, MCTL_METRICS);
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), 0);
    assert_int_equal(m.type, MCTL_METRICS);
    ipc_close(&r);
    buf_clear(&b);
    mctl_encode_text(&b, MCTL_CHUNK, "onehop_up 1\n");
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), 0);
    assert_int_equal(m.type, MCTL_CHUNK);
    assert_string_equal(m.text, "onehop_up 1\n");
    ipc_close(&r);
    buf_clear(&b);
    struct ipc_writer w;
    ipc_begin(&w, &b, 99);
    ipc_finish(&w);
    assert_int_equal(mctl_decode(&r, b.s, b.len, &m), -1);
    ipc_close(&r);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_wire_bytes),
        cmocka_unit_test(test_round_trip_each_type),
        cmocka_unit_test(test_failed_text_is_capped),
        cmocka_unit_test(test_malformed_records_are_refused),
        cmocka_unit_test(test_open_without_variable),
        cmocka_unit_test(test_open_refuses_a_bad_variable),
        cmocka_unit_test(test_records_in_one_read_come_in_order),
        cmocka_unit_test(test_metrics_request_is_answered_by_the_link),
        cmocka_unit_test(test_ready_reaches_the_master),
        cmocka_unit_test(test_a_malformed_record_ends_the_link),
        cmocka_unit_test(test_fatal_before_ready_is_sent_as_failed),
        cmocka_unit_test(test_mctl_proc_round_trip),
        cmocka_unit_test(test_mctl_text_and_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
