/*
 * test_router_ctl — the records of the router's control socket
 * (router_ctl.h): a request, a note and a done round-trip exactly; one row
 * per line of the table of what each op takes (accepted or refused); the
 * decoders refuse a truncated record, trailing bytes, a wrong type, an
 * argument count past the fields, a control character in an argument, an
 * unknown stream or status; the client
 * (rctl_call) over a socketpair: notes in order, the done, the request as
 * sent, and a peer that closes without an answer.
 */
#include "rowtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel_core.h"
#include "ipc.h"
#include "router_ctl.h"

static void test_request_round_trip(void **state)
{
    char *ids[] = {"0PKX3B2Q7ZM012KG00", "0PKX3B2Q7ZM012KG01"};
    struct rctl_request in = {RCTL_DELETE, RCTL_SEL_NAMED, ids, 2}, out;
    struct buf rec = BUF_INIT;
    const char *why = NULL;
    (void)state;
    rctl_put_request(&rec, &in);
    assert_int_equal(rctl_record_type(rec.s, rec.len), RCTL_REQUEST);
    assert_int_equal(rctl_get_request(rec.s, rec.len, &out, &why), 0);
    assert_int_equal(out.op, RCTL_DELETE);
    assert_int_equal(out.select, RCTL_SEL_NAMED);
    assert_int_equal(out.nargs, 2);
    assert_string_equal(out.args[0], ids[0]);
    assert_string_equal(out.args[1], ids[1]);
    rctl_request_free(&out);
    buf_free(&rec);
}

static void test_note_and_done_round_trip(void **state)
{
    struct buf rec = BUF_INIT, text = BUF_INIT;
    struct rctl_note n;
    struct rctl_done d;
    const char *why = NULL;
    (void)state;
    rctl_put_note(&rec, RCTL_TO_STDERR, "0PKX3B2Q7ZM012KG00: no such message in the queue");
    assert_int_equal(rctl_get_note(rec.s, rec.len, &n, &text, &why), 0);
    assert_int_equal(n.stream, RCTL_TO_STDERR);
    assert_string_equal(n.text, "0PKX3B2Q7ZM012KG00: no such message in the queue");
    buf_clear(&rec);
    rctl_put_done(&rec, 1, 7, "Deleted: 7 messages");
    assert_int_equal(rctl_get_done(rec.s, rec.len, &d, &text, &why), 0);
    assert_int_equal(d.status, 1);
    assert_int_equal(d.count, 7);
    assert_string_equal(d.summary, "Deleted: 7 messages");
    /* a note is not a done, nor the other way round */
    assert_int_equal(rctl_get_note(rec.s, rec.len, &n, &text, &why), -1);
    assert_int_equal(rctl_get_request(rec.s, rec.len, &(struct rctl_request){0}, &why), -1);
    buf_free(&rec);
    buf_free(&text);
}

/* ---------------------------------------------------- what each op takes ---- */

struct check_row {
    uint32_t op, select;
    size_t nargs;
    int ok;
};

static const struct check_row check_rows[] = {
    {RCTL_FLUSH, RCTL_SEL_NAMED, 0, 1},
    {RCTL_FLUSH, RCTL_SEL_NAMED, 1, 1},
    {RCTL_FLUSH, RCTL_SEL_NAMED, 2, 0},
    {RCTL_FLUSH, RCTL_SEL_ALL, 0, 0},
    {RCTL_HOLD, RCTL_SEL_NAMED, 1, 1},
    {RCTL_HOLD, RCTL_SEL_NAMED, 0, 0},
    {RCTL_HOLD, RCTL_SEL_ALL, 0, 1},
    {RCTL_RELEASE, RCTL_SEL_DEFERRED, 0, 1},
    {RCTL_RELEASE, RCTL_SEL_NAMED, 3, 1},
    {RCTL_DELETE, RCTL_SEL_ALL, 1, 0},
    {RCTL_DELETE, RCTL_SEL_DEFERRED, 0, 1},
    {RCTL_DELETE, RCTL_SEL_NAMED, RCTL_ARGS_MAX, 1},
    {RCTL_DELETE, RCTL_SEL_NAMED, RCTL_ARGS_MAX + 1, 0},
    {RCTL_DELETE, 3, 0, 0},
    {RCTL_RELOAD, RCTL_SEL_NAMED, 0, 1},
    {RCTL_RELOAD, RCTL_SEL_NAMED, 1, 0},
    {RCTL_NEWALIASES, RCTL_SEL_NAMED, 0, 1},
    {RCTL_NEWALIASES, RCTL_SEL_ALL, 0, 0},
    {0, RCTL_SEL_NAMED, 0, 0},
    {RCTL_OP_LAST + 1, RCTL_SEL_NAMED, 0, 0},
};

static void test_check_row(void **state)
{
    const struct check_row *row = *state;
    const char *why = rctl_request_check(row->op, row->select, row->nargs);
    if (row->ok)
        assert_null(why);
    else
        assert_non_null(why);
}

/* ------------------------------------------------------- bad records ---- */

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* A request with the given op, select and a claimed count, then nstr ids. */
static void raw_request(struct buf *rec, uint32_t op, uint32_t select, uint32_t claimed,
                        size_t nstr)
{
    struct ipc_writer w;
    ipc_begin(&w, rec, RCTL_REQUEST);
    ipc_add_u32(&w, op);
    ipc_add_u32(&w, select);
    ipc_add_u32(&w, claimed);
    for (size_t i = 0; i < nstr; i++)
        ipc_add_str(&w, "0PKX3B2Q7ZM012KG00");
    ipc_finish(&w);
}

static void test_bad_requests(void **state)
{
    struct buf rec = BUF_INIT;
    struct rctl_request req;
    const char *why = NULL;
    (void)state;
    raw_request(&rec, RCTL_HOLD, RCTL_SEL_NAMED, 3, 2); /* claims 3, holds 2 */
    assert_int_equal(rctl_get_request(rec.s, rec.len, &req, &why), -1);
    assert_non_null(why);
    assert_int_equal(req.nargs, 0);
    buf_clear(&rec);
    raw_request(&rec, RCTL_HOLD, RCTL_SEL_NAMED, 1, 2); /* a field left over */
    assert_int_equal(rctl_get_request(rec.s, rec.len, &req, &why), -1);
    buf_clear(&rec);
    struct rctl_request nl = {RCTL_FLUSH, RCTL_SEL_NAMED, (char *[]){"@b.test\nforged line"}, 1};
    rctl_put_request(&rec, &nl);
    assert_int_equal(rctl_get_request(rec.s, rec.len, &req, &why), -1);
    assert_string_equal(why, "request: a control character in an argument");
    buf_clear(&rec);
    raw_request(&rec, 99, RCTL_SEL_NAMED, 0, 0);
    assert_int_equal(rctl_get_request(rec.s, rec.len, &req, &why), -1);
    assert_string_equal(why, "request: unknown operation");
    buf_clear(&rec);
    raw_request(&rec, RCTL_FLUSH, RCTL_SEL_NAMED, 1, 1);
    assert_int_equal(rctl_get_request(rec.s, rec.len - 1, &req, &why), -1); /* truncated */
    buf_addc(&rec, 0);
    put_be32(rec.s, (uint32_t)rec.len); /* a trailing byte inside the record */
    assert_int_equal(rctl_get_request(rec.s, rec.len, &req, &why), -1);
    buf_free(&rec);
}

static void test_bad_note_and_done(void **state)
{
    struct buf rec = BUF_INIT, text = BUF_INIT;
    struct ipc_writer w;
    struct rctl_note n;
    struct rctl_done d;
    const char *why = NULL;
    (void)state;
    ipc_begin(&w, &rec, RCTL_NOTE);
    ipc_add_u32(&w, 2);
    ipc_add_str(&w, "x");
    ipc_finish(&w);
    assert_int_equal(rctl_get_note(rec.s, rec.len, &n, &text, &why), -1);
    assert_string_equal(why, "note: unknown stream");
    buf_clear(&rec);
    ipc_begin(&w, &rec, RCTL_DONE);
    ipc_add_u32(&w, 2);
    ipc_add_u32(&w, 0);
    ipc_add_str(&w, "");
    ipc_finish(&w);
    assert_int_equal(rctl_get_done(rec.s, rec.len, &d, &text, &why), -1);
    assert_string_equal(why, "done: unknown status");
    buf_clear(&rec);
    ipc_begin(&w, &rec, RCTL_DONE);
    ipc_add_u32(&w, 0);
    ipc_finish(&w); /* count and summary missing */
    assert_int_equal(rctl_get_done(rec.s, rec.len, &d, &text, &why), -1);
    buf_free(&rec);
    buf_free(&text);
}

/* ------------------------------------------------------------ client ---- */

struct notes {
    char seen[4][64];
    uint32_t stream[4];
    int n;
};

static void collect_note(void *arg, const struct rctl_note *note)
{
    struct notes *ns = arg;
    if (ns->n < 4) {
        snprintf(ns->seen[ns->n], sizeof(ns->seen[ns->n]), "%s", note->text);
        ns->stream[ns->n++] = note->stream;
    }
}

static void test_client_call(void **state)
{
    int sv[2];
    struct buf answer = BUF_INIT, text = BUF_INIT, got = BUF_INIT;
    struct notes ns = {0};
    struct rctl_done d;
    const char *why = NULL;
    char *target[] = {"@b.test"};
    struct rctl_request req = {RCTL_FLUSH, RCTL_SEL_NAMED, target, 1}, back;
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    rctl_put_note(&answer, RCTL_TO_STDOUT, "first");
    rctl_put_note(&answer, RCTL_TO_STDERR, "second");
    rctl_put_done(&answer, 0, 3, "3 recipients due now");
    assert_int_equal(write(sv[1], answer.s, answer.len), (ssize_t)answer.len);
    assert_int_equal(rctl_call(sv[0], &req, 5000, collect_note, &ns, &d, &text, &why), 0);
    assert_int_equal(ns.n, 2);
    assert_string_equal(ns.seen[0], "first");
    assert_int_equal(ns.stream[0], RCTL_TO_STDOUT);
    assert_string_equal(ns.seen[1], "second");
    assert_int_equal(ns.stream[1], RCTL_TO_STDERR);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.count, 3);
    assert_string_equal(d.summary, "3 recipients due now");
    assert_int_equal(chan_recv_record(sv[1], RCTL_RECORD_MAX, 0, 5000, &got, NULL, NULL, &why), 1);
    assert_int_equal(rctl_get_request(got.s, got.len, &back, &why), 0);
    assert_int_equal(back.op, RCTL_FLUSH);
    assert_string_equal(back.args[0], "@b.test");
    rctl_request_free(&back);
    /* the peer goes away without an answer (a refused uid) */
    close(sv[1]);
    assert_int_equal(rctl_call(sv[0], &req, 5000, collect_note, &ns, &d, &text, &why), -1);
    assert_non_null(why);
    assert_true(errno == 0 || errno == EPIPE || errno == ECONNRESET);
    close(sv[0]);
    buf_free(&answer);
    buf_free(&text);
    buf_free(&got);
}

static void test_connect_without_router(void **state)
{
    (void)state;
    assert_int_equal(rctl_connect("/nonexistent-onehop-run-dir", "/nonexistent-onehop-queue"), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_request_round_trip, NULL, "request round trip");
    rowtest_add(&t, test_note_and_done_round_trip, NULL, "note and done round trip");
    for (size_t i = 0; i < ROWS(check_rows); i++)
        rowtest_add(&t, test_check_row, &check_rows[i], "%s select %u nargs %zu: %s",
                    rctl_op_name(check_rows[i].op), check_rows[i].select, check_rows[i].nargs,
                    check_rows[i].ok ? "accepted" : "refused");
    rowtest_add(&t, test_bad_requests, NULL, "bad requests refused");
    rowtest_add(&t, test_bad_note_and_done, NULL, "bad notes and dones refused");
    rowtest_add(&t, test_client_call, NULL, "client: notes, done, the request as sent, EOF");
    rowtest_add(&t, test_connect_without_router, NULL, "client: no router socket");
    return rowtest_run(&t, "router_ctl");
}
