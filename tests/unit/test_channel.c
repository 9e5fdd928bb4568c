/*
 * test_channel — the channel on real socketpairs and a real libuv loop:
 * framing across reads, backpressure against a peer that stops reading,
 * descriptors passed with records (and closed when a record is refused),
 * oversized and malformed records, a peer dying inside a record, the
 * blocking helpers, and a listener that refuses an account by its peer
 * credentials (a child that setuid()s to nobody; needs root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "channel.h"
#include "ipc.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers ---- */

struct seen {
    int records, closes, drains;
    uint16_t last_type;
    char reason[128];
    char content[64]; /* what a received descriptor read */
    int fd_cloexec;
    int kept_fd;        /* the number of a descriptor left to the channel */
    const char *reject; /* what on_record answers */
    struct channel *ch;
};

static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void make_record(struct buf *out, uint16_t type, size_t payload)
{
    struct ipc_writer w;
    struct buf bytes = BUF_INIT;
    for (size_t i = 0; i < payload; i++)
        buf_addc(&bytes, (char)('a' + i % 26));
    ipc_begin(&w, out, type);
    ipc_add_bytes(&w, bytes.s ? bytes.s : "", payload);
    ipc_finish(&w);
    buf_free(&bytes);
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct seen *s = arg;
    struct ipc_reader r;
    assert_int_equal(ipc_open(&r, rec->data, rec->len), 0);
    s->last_type = r.type;
    ipc_close(&r);
    s->records++;
    if (rec->nfds > 0 && s->reject) {
        s->kept_fd = rec->fd[0];
    } else if (rec->nfds > 0) {
        int fd = chan_record_take_fd(rec, 0);
        s->fd_cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
        ssize_t n = pread(fd, s->content, sizeof(s->content) - 1, 0);
        assert_true(n >= 0);
        s->content[n] = '\0';
        close(fd);
    }
    return s->reject;
}

static int inside_send; /* set around a channel_send of the tests */

static void on_drain(void *arg, struct channel *ch)
{
    assert_int_equal(inside_send, 0); /* from the loop only */
    ((struct seen *)arg)->drains++;
}

static void on_close(void *arg, struct channel *ch, const char *reason)
{
    struct seen *s = arg;
    s->closes++;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    s->ch = NULL;
}

static const struct channel_ops ops = {on_record, on_drain, on_close};

static struct channel *open_channel(uv_loop_t *loop, int fd, struct seen *s, size_t max_record,
                                    unsigned max_fds, size_t high)
{
    struct channel_opts o = {"test", max_record, max_fds, high, 0, 0};
    struct buf err = BUF_INIT;
    struct channel *ch = channel_open(loop, fd, &o, &ops, s, &err);
    assert_non_null(ch);
    buf_free(&err);
    s->ch = ch;
    return ch;
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A loop and a socketpair whose sv[1] is a receiving channel; before is the
 * count of open descriptors before any of it existed. */
struct rig {
    unsigned before;
    uv_loop_t loop;
    int sv[2];
    struct seen rx;
};

static void rig_start(struct rig *r, size_t max_record, unsigned max_fds)
{
    memset(r, 0, sizeof(*r));
    r->before = open_fds();
    uv_loop_init(&r->loop);
    pair(r->sv);
    r->rx.kept_fd = -1;
    open_channel(&r->loop, r->sv[1], &r->rx, max_record, max_fds, 0);
}

/* Run the loop until *flag reaches want, at most bound_ms. */
static void run_until(uv_loop_t *loop, const int *flag, int want, int bound_ms)
{
    uint64_t end = uv_now(loop) + (uint64_t)bound_ms;
    while (*flag < want && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        uv_update_time(loop);
    }
}

static void finish_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* A file holding text, open O_RDONLY; its path is unlinked at once. */
static int text_fd(const char *text)
{
    char path[64];
    test_temp_file(path, sizeof(path), "channel", text);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* ------------------------------------------------------------------- core ---- */

static void test_core_frames_across_feeds(void **state)
{
    struct buf recs = BUF_INIT;
    make_record(&recs, 7, 10);
    make_record(&recs, 8, 0);
    struct chan_in in;
    struct chan_record rec;
    chan_in_init(&in, 0, 0);
    for (size_t i = 0; i < recs.len; i++) { /* one byte at a time */
        assert_int_equal(chan_in_feed(&in, recs.s + i, 1, NULL, 0), 0);
        int rc = chan_in_pop(&in, &rec);
        assert_int_equal(rc, i == 23 - 1 || i == recs.len - 1); /* 8 + 1 + 4 + 10 bytes */
    }
    assert_int_equal(chan_in_pop(&in, &rec), 0);
    assert_int_equal(chan_in_partial(&in), 0);
    chan_in_free(&in);
    buf_free(&recs);
}

static void test_core_rejects_bad_lengths(void **state)
{
    struct chan_in in;
    struct chan_record rec;
    const unsigned char short_len[8] = {0, 0, 0, 3, 0, 1, 0, 0};
    const unsigned char long_len[8] = {0, 0, 4, 0, 0, 1, 0, 0}; /* 1024 > 64 */
    chan_in_init(&in, 64, 0);
    chan_in_feed(&in, short_len, sizeof(short_len), NULL, 0);
    assert_int_equal(chan_in_pop(&in, &rec), -1);
    assert_string_equal(in.error, "record length shorter than its header");
    assert_int_equal(chan_in_feed(&in, short_len, 1, NULL, 0), -1); /* sticky */
    chan_in_free(&in);
    chan_in_init(&in, 64, 0);
    chan_in_feed(&in, long_len, sizeof(long_len), NULL, 0);
    assert_int_equal(chan_in_pop(&in, &rec), -1);
    assert_string_equal(in.error, "record longer than the channel allows");
    chan_in_free(&in);
}

static void test_core_descriptor_inside_record_refused(void **state)
{
    struct buf recs = BUF_INIT;
    make_record(&recs, 1, 20);
    unsigned before = open_fds();
    int fd = text_fd("x");
    struct chan_in in;
    chan_in_init(&in, 0, 1);
    /* descriptors ending a read on byte 5 of a record: never guessed at */
    assert_int_equal(chan_in_feed(&in, recs.s, 6, &fd, 1), -1);
    assert_string_equal(in.error, "descriptors arrived inside a record");
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    chan_in_free(&in);
    assert_int_equal(open_fds(), before);
    buf_free(&recs);
}

/* ---------------------------------------------------------- backpressure ---- */

static void test_backpressure_pauses_and_resumes(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct seen s = {0};
    const size_t high = 64 * 1024;
    struct channel *ch = open_channel(&loop, sv[0], &s, 0, 0, high);
    struct buf rec = BUF_INIT;
    make_record(&rec, 3, 1000);
    int sent = 0, rc;
    /* the peer (sv[1]) reads nothing: the writer is told to stop at the mark */
    while ((rc = channel_send(ch, rec.s, rec.len, NULL, 0)) == 1)
        assert_true(++sent < 10000);
    assert_int_equal(rc, 0);
    size_t pending = channel_pending(ch);
    assert_true(pending >= high);
    assert_true(pending < high + rec.len); /* bounded: the mark plus one record */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s.drains, 0);
    /* the peer reads: the queue drains below the low mark and the writer hears it */
    char sink[65536];
    size_t got = 0, want = (size_t)(sent + 1) * rec.len;
    uint64_t end = uv_now(&loop) + 5000;
    while (got < want && uv_now(&loop) < end) {
        ssize_t n = recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_update_time(&loop);
    }
    assert_int_equal(got, want);
    assert_int_equal(s.drains, 1);
    assert_int_equal(channel_pending(ch), 0);
    assert_int_equal(channel_send(ch, rec.s, rec.len, NULL, 0), 1);
    channel_close(ch);
    close(sv[1]);
    buf_free(&rec);
    finish_loop(&loop);
    assert_int_equal(s.closes, 0); /* channel_close() calls nothing back */
}

/* Records sent corked pass the mark; the uncork writes them all (the socket
 * takes them): on_drain comes from the loop afterwards, not inside the call. */
static void test_drain_in_uncork_is_reported_from_the_loop(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    pair(sv);
    struct seen s = {0};
    struct channel *ch = open_channel(&loop, sv[0], &s, 0, 0, 16 * 1024);
    struct buf rec = BUF_INIT;
    make_record(&rec, 3, 1000);
    channel_cork(ch);
    int n = 0;
    while (channel_send(ch, rec.s, rec.len, NULL, 0) == 1)
        assert_true(++n < 100);
    assert_true(channel_pending(ch) >= 16 * 1024);
    inside_send = 1;
    channel_uncork(ch);
    inside_send = 0;
    assert_int_equal(channel_pending(ch), 0); /* all in the socket now */
    assert_int_equal(s.drains, 0);
    run_until(&loop, &s.drains, 1, 3000);
    assert_int_equal(s.drains, 1);
    channel_close(ch);
    close(sv[1]);
    buf_free(&rec);
    finish_loop(&loop);
}

static void test_writer_past_hard_limit_is_closed(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    pair(sv);
    struct seen s = {0};
    struct channel_opts o = {"stubborn", 0, 0, 8192, 0, 32768};
    struct buf err = BUF_INIT;
    struct channel *ch = channel_open(&loop, sv[0], &o, &ops, &s, &err);
    struct buf rec = BUF_INIT;
    make_record(&rec, 3, 4000);
    int rc, n = 0;
    while ((rc = channel_send(ch, rec.s, rec.len, NULL, 0)) >= 0)
        assert_true(++n < 100000); /* ignores the 0 */
    assert_int_equal(s.closes, 1);
    assert_string_equal(s.reason, "peer does not read: write queue over its limit");
    close(sv[1]);
    buf_free(&rec);
    buf_free(&err);
    finish_loop(&loop);
}

/* ---------------------------------------------------------- descriptors ---- */

static void test_descriptor_arrives_and_reads_the_file(void **state)
{
    unsigned before = open_fds();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    pair(sv);
    struct seen tx = {0}, rx = {0};
    struct channel *a = open_channel(&loop, sv[0], &tx, 0, 0, 0);
    open_channel(&loop, sv[1], &rx, 0, 1, 0);
    struct buf rec = BUF_INIT;
    make_record(&rec, 5, 3);
    int fd = text_fd("the message file");
    /* a record before and after, in one stream with the descriptor's */
    assert_int_equal(channel_send(a, rec.s, rec.len, NULL, 0), 1);
    assert_int_equal(channel_send(a, rec.s, rec.len, &fd, 1), 1);
    assert_int_equal(channel_send(a, rec.s, rec.len, NULL, 0), 1);
    run_until(&loop, &rx.records, 3, 3000);
    assert_int_equal(rx.records, 3);
    assert_string_equal(rx.content, "the message file");
    assert_int_equal(rx.fd_cloexec, 1);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the sender's copy went once sent */
    channel_close(a);
    run_until(&loop, &rx.closes, 1, 3000);
    assert_int_equal(rx.closes, 1);
    assert_string_equal(rx.reason, "peer closed the connection");
    buf_free(&rec);
    finish_loop(&loop);
    assert_int_equal(open_fds(), before);
}

/* ------------------------------------------------------------- rounds ---- */

/* Bytes the kernel holds for the receiver of fd's socket, buffer overhead
 * of each write included (SIOCOUTQ of a Unix socket counts whole skbs): a
 * measure of how many writes carried the same bytes. */
static int queued_for_peer(int fd)
{
    int n = -1;
    assert_int_equal(ioctl(fd, SIOCOUTQ, &n), 0);
    return n;
}

/* A loop, a socketpair and a sending channel on sv[0] (batching rounds or
 * not); sv[1] is left for the test to read. */
static struct channel *round_sender(uv_loop_t *loop, int sv[2], struct seen *tx, int batched)
{
    uv_loop_init(loop);
    pair(sv);
    struct channel *a = open_channel(loop, sv[0], tx, 0, 0, 0);
    if (batched)
        channel_batch_rounds(a);
    return a;
}

/* Three records sent in one round with nobody reading: what the kernel
 * holds for them afterwards, batched (1) or not (0). */
static int three_records_outq(int batched)
{
    uv_loop_t loop;
    int sv[2];
    struct seen tx = {0};
    struct channel *a = round_sender(&loop, sv, &tx, batched);
    struct buf rec = BUF_INIT;
    make_record(&rec, 5, 40);
    for (int i = 0; i < 3; i++)
        assert_int_equal(channel_send(a, rec.s, rec.len, NULL, 0), 1);
    if (batched) /* nothing leaves before the round ends */
        assert_int_equal(queued_for_peer(sv[0]), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    int outq = queued_for_peer(sv[0]);
    char got[1024];
    assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), (ssize_t)(3 * rec.len));
    channel_close(a);
    close(sv[1]);
    buf_free(&rec);
    finish_loop(&loop);
    return outq;
}

/* A batching channel writes a round's records once: the kernel holds them
 * as one buffer, less than the three of an unbatched channel. */
static void test_round_records_leave_in_one_write(void **state)
{
    unsigned before = open_fds();
    int one = three_records_outq(1), three = three_records_outq(0);
    assert_true(one > 0);
    assert_true(one < three);
    assert_int_equal(open_fds(), before);
}

struct order_seen {
    int records;
    uint16_t type[64];
    char content[64][32]; /* what the record's descriptor read, "" for none */
};

static const char *on_ordered(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct order_seen *o = arg;
    struct ipc_reader r;
    assert_int_equal(ipc_open(&r, rec->data, rec->len), 0);
    assert_true(o->records < 64);
    o->type[o->records] = r.type;
    ipc_close(&r);
    o->content[o->records][0] = '\0';
    if (rec->nfds > 0) {
        int fd = chan_record_take_fd(rec, 0);
        ssize_t n = pread(fd, o->content[o->records], sizeof(o->content[0]) - 1, 0);
        assert_true(n >= 0);
        o->content[o->records][n] = '\0';
        close(fd);
    }
    o->records++;
    return NULL;
}

static const struct channel_ops ordered_ops = {on_ordered, NULL, on_close};

/* n records of payload bytes each in one round, a descriptor with every one
 * where i % fd_every == fd_at; the receiver must see them in order, each
 * descriptor with its own record. sndbuf > 0 makes the sender's socket
 * small, so that the round's writes are partial. */
static void send_round_and_check(int n, size_t payload, int fd_every, int fd_at, int sndbuf)
{
    unsigned before = open_fds();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    pair(sv);
    if (sndbuf > 0)
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    struct seen tx = {0};
    struct channel *a = open_channel(&loop, sv[0], &tx, 0, 0, 64u * 1024 * 1024);
    channel_batch_rounds(a);
    struct order_seen rx = {0};
    struct channel_opts o = {"rx", 0, 1, 0, 0, 0};
    struct buf err = BUF_INIT;
    struct channel *b = channel_open(&loop, sv[1], &o, &ordered_ops, &rx, &err);
    assert_non_null(b);
    for (int i = 0; i < n; i++) {
        struct buf rec = BUF_INIT;
        make_record(&rec, (uint16_t)(100 + i), payload);
        if (i % fd_every == fd_at) {
            char text[32];
            snprintf(text, sizeof(text), "file of record %d", i);
            int fd = text_fd(text);
            assert_true(channel_send(a, rec.s, rec.len, &fd, 1) >= 0);
        } else {
            assert_true(channel_send(a, rec.s, rec.len, NULL, 0) >= 0);
        }
        buf_free(&rec);
    }
    run_until(&loop, &rx.records, n, 5000);
    assert_int_equal(rx.records, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rx.type[i], 100 + i);
        char want[32] = "";
        if (i % fd_every == fd_at)
            snprintf(want, sizeof(want), "file of record %d", i);
        assert_string_equal(rx.content[i], want);
    }
    assert_int_equal(channel_pending(a), 0);
    channel_close(a);
    channel_close(b);
    buf_free(&err);
    finish_loop(&loop);
    assert_int_equal(open_fds(), before);
}

/* Three records, the middle one with a descriptor: it arrives with its
 * own record, the others with none. */
static void test_round_descriptor_in_the_middle(void **state)
{
    send_round_and_check(3, 20, 3, 1, 0);
}

/* A round larger than the socket takes: partial writes go on from the
 * writable event, in order, every descriptor with its record. */
static void test_round_partial_writes_keep_order_and_descriptors(void **state)
{
    send_round_and_check(60, 3000, 7, 3, 4096);
}

/* channel_close in the round that sent a record still writes it once. */
static void test_round_close_writes_what_is_queued(void **state)
{
    unsigned before = open_fds();
    uv_loop_t loop;
    int sv[2];
    struct seen tx = {0};
    struct channel *a = round_sender(&loop, sv, &tx, 1);
    struct buf rec = BUF_INIT;
    make_record(&rec, 9, 10);
    assert_int_equal(channel_send(a, rec.s, rec.len, NULL, 0), 1);
    channel_close(a);
    char got[256];
    assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), (ssize_t)rec.len);
    assert_memory_equal(got, rec.s, rec.len);
    close(sv[1]);
    buf_free(&rec);
    finish_loop(&loop);
    assert_int_equal(tx.closes, 0);
    assert_int_equal(open_fds(), before);
}

static void test_rejected_record_descriptors_closed(void **state)
{
    struct rig r;
    rig_start(&r, 0, 1);
    r.rx.reject = "unexpected record";
    struct buf rec = BUF_INIT;
    make_record(&rec, 9, 3);
    int fd = text_fd("x");
    assert_int_equal(chan_send_record(r.sv[0], rec.s, rec.len, &fd, 1, 1000), 0);
    close(fd);
    run_until(&r.loop, &r.rx.closes, 1, 3000);
    assert_int_equal(r.rx.records, 1);
    assert_true(r.rx.kept_fd >= 0);
    assert_int_equal(fcntl(r.rx.kept_fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_string_equal(r.rx.reason, "unexpected record");
    close(r.sv[0]);
    buf_free(&rec);
    finish_loop(&r.loop);
}

/* The channel closed for reason without handing a record out, and no
 * descriptor it received stays open. */
static void rig_expect_closed(struct rig *r, const char *reason)
{
    run_until(&r->loop, &r->rx.closes, 1, 3000);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    assert_int_equal(r->rx.records, 0);
    assert_int_equal(r->rx.closes, 1); /* once */
    assert_string_equal(r->rx.reason, reason);
    finish_loop(&r->loop); /* sv[1] closed with the channel */
    close(r->sv[0]);
    assert_int_equal(open_fds(), r->before);
}

/* Descriptors where the channel takes none, or more than it allows. */
static void refused_descriptors(unsigned max_fds, unsigned nsend, const char *reason)
{
    struct rig r;
    rig_start(&r, 0, max_fds);
    struct buf rec = BUF_INIT;
    make_record(&rec, 9, 3);
    int fds[CHAN_FDS_MAX];
    for (unsigned i = 0; i < nsend; i++)
        fds[i] = text_fd("x");
    assert_int_equal(chan_send_record(r.sv[0], rec.s, rec.len, fds, nsend, 1000), 0);
    for (unsigned i = 0; i < nsend; i++)
        close(fds[i]);
    buf_free(&rec);
    rig_expect_closed(&r, reason);
}

static void test_descriptors_on_channel_taking_none(void **state)
{
    refused_descriptors(0, 1, "descriptors on a channel that takes none");
}

static void test_more_descriptors_than_allowed(void **state)
{
    refused_descriptors(2, 3, "more descriptors than a record may carry");
}

/* A hostile sender attaches a descriptor to the middle of a record. */
static void test_descriptor_inside_record_closes_channel(void **state)
{
    struct rig r;
    rig_start(&r, 0, 1);
    struct buf rec = BUF_INIT;
    make_record(&rec, 9, 30);
    assert_int_equal(send(r.sv[0], rec.s, 10, 0), 10);
    int fd = text_fd("x");
    assert_int_equal(chan_send_record(r.sv[0], rec.s + 10, rec.len - 10, &fd, 1, 1000), 0);
    close(fd);
    buf_free(&rec);
    rig_expect_closed(&r, "descriptors arrived inside a record");
}

/* -------------------------------------------------- malformed and closing ---- */

static void bad_bytes_close(const void *bytes, size_t n, size_t max_record, const char *reason)
{
    struct rig r;
    rig_start(&r, max_record, 0);
    assert_int_equal(send(r.sv[0], bytes, n, 0), (ssize_t)n);
    rig_expect_closed(&r, reason);
}

static void test_oversized_record_closes(void **state)
{
    struct buf rec = BUF_INIT;
    make_record(&rec, 2, 100); /* 113 bytes over a channel of 64 */
    bad_bytes_close(rec.s, rec.len, 64, "record longer than the channel allows");
    buf_free(&rec);
}

static void test_malformed_header_closes(void **state)
{
    const unsigned char bad[12] = {0, 0, 0, 5, 0, 1, 0, 0, 1, 2, 3, 4};
    bad_bytes_close(bad, sizeof(bad), 0, "record length shorter than its header");
}

static void reply_error(void *arg, struct channel *ch, const char *reason)
{
    struct buf out = BUF_INIT;
    struct ipc_writer w;
    ipc_begin(&w, &out, 99);
    ipc_add_str(&w, reason);
    ipc_finish(&w);
    channel_send(ch, out.s, out.len, NULL, 0);
    buf_free(&out);
}

/* A protocol that answers a bad request with an error record: it leaves
 * before the channel closes. */
static void test_error_reply_before_close(void **state)
{
    struct rig r;
    rig_start(&r, 0, 0);
    channel_set_error_reply(r.rx.ch, reply_error);
    const unsigned char bad[8] = {0, 0, 0, 2, 0, 1, 0, 0};
    assert_int_equal(send(r.sv[0], bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
    run_until(&r.loop, &r.rx.closes, 1, 3000);
    struct buf got = BUF_INIT;
    int fds[CHAN_FDS_MAX];
    unsigned nfds;
    const char *why = NULL, *text = NULL;
    assert_int_equal(chan_recv_record(r.sv[0], 0, 0, 1000, &got, fds, &nfds, &why), 1);
    struct ipc_reader rd;
    assert_int_equal(ipc_open(&rd, got.s, got.len), 0);
    assert_int_equal(rd.type, 99);
    assert_int_equal(ipc_get_str(&rd, 200, &text), 0);
    assert_string_equal(text, "record length shorter than its header");
    ipc_close(&rd);
    buf_free(&got);
    rig_expect_closed(&r, "record length shorter than its header");
}

/* A peer killed (SIGKILL) after half a record. */
static void test_peer_dying_mid_record(void **state)
{
    struct rig r;
    rig_start(&r, 0, 0);
    struct buf rec = BUF_INIT;
    make_record(&rec, 4, 200);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)!write(r.sv[0], rec.s, rec.len / 2);
        raise(SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    buf_free(&rec);
    close(r.sv[0]);
    r.sv[0] = open("/dev/null", O_RDONLY); /* rig_expect_closed closes it */
    rig_expect_closed(&r, "peer closed the connection inside a record");
}

/* A peer that goes away with records of ours unread resets the connection;
 * libuv reports that as POLLERR (UV_EBADF), which is still the peer gone,
 * not a bad descriptor. */
static void test_peer_closing_with_our_data_unread(void **state)
{
    struct rig r;
    rig_start(&r, 0, 0);
    struct buf rec = BUF_INIT;
    make_record(&rec, 4, 200);
    channel_send(r.rx.ch, rec.s, rec.len, NULL, 0);
    buf_free(&rec);
    struct pollfd p = {r.sv[0], POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1); /* our record is there, unread */
    close(r.sv[0]);
    r.sv[0] = open("/dev/null", O_RDONLY); /* rig_expect_closed closes it */
    rig_expect_closed(&r, "peer closed the connection");
}

/* ------------------------------------------------------------- blocking ---- */

static void test_blocking_helpers(void **state)
{
    int sv[2];
    pair(sv);
    struct buf recs = BUF_INIT, got = BUF_INIT;
    make_record(&recs, 1, 5);
    size_t one = recs.len;
    make_record(&recs, 2, 7);
    int fd = text_fd("blocking");
    assert_int_equal(chan_send_record(sv[0], recs.s, one, &fd, 1, 1000), 0);
    assert_int_equal(chan_send_record(sv[0], recs.s + one, recs.len - one, NULL, 0, 1000), 0);
    int fds[CHAN_FDS_MAX];
    unsigned nfds;
    const char *why = NULL;
    /* one record per call, never reading into the next */
    assert_int_equal(chan_recv_record(sv[1], 0, 1, 1000, &got, fds, &nfds, &why), 1);
    assert_int_equal(got.len, one);
    assert_int_equal(nfds, 1);
    char text[16] = {0};
    assert_int_equal(pread(fds[0], text, sizeof(text) - 1, 0), 8);
    assert_string_equal(text, "blocking");
    close(fds[0]);
    assert_int_equal(chan_recv_record(sv[1], 0, 1, 1000, &got, fds, &nfds, &why), 1);
    assert_int_equal(got.len, recs.len - one);
    assert_int_equal(nfds, 0);
    /* nothing more: a bounded wait */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(chan_recv_record(sv[1], 0, 1, 200, &got, fds, &nfds, &why), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(errno, ETIMEDOUT);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 150 && ms < 2000);
    /* half a record and EOF */
    assert_int_equal(write(sv[0], recs.s, 4), 4);
    close(sv[0]);
    assert_int_equal(chan_recv_record(sv[1], 0, 1, 1000, &got, fds, &nfds, &why), -1);
    assert_string_equal(why, "end of file inside a record");
    assert_int_equal(chan_recv_record(sv[1], 0, 1, 1000, &got, fds, &nfds, &why), 0);
    close(fd);
    close(sv[1]);
    buf_free(&recs);
    buf_free(&got);
}

/* --------------------------------------------------------------- listener ---- */

struct accepted {
    int n;
    uid_t uid;
};

static void on_accept(void *arg, int fd, const struct chan_cred *peer)
{
    struct accepted *a = arg;
    a->n++;
    a->uid = peer->uid;
    close(fd);
}

/* Connect to path as uid (a child); returns its pid. The child exits 0 if
 * the server closed the connection without a byte, 1 otherwise. */
static pid_t connect_as(const char *path, uid_t uid)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    if (uid != getuid() && setuid(uid) < 0)
        _exit(3);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        _exit(4);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        _exit(2);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    ssize_t n = read(fd, &c, 1);
    _exit(n == 0 ? 0 : n < 0 ? 10 + (errno & 0x7f) : 1);
}

static void test_listener_refuses_other_uids(void **state)
{
    if (geteuid() != 0) {
        if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
            fail_msg("CI=true: this test needs root (setuid to nobody)");
        skip();
    }
    struct passwd *nobody = getpwnam("nobody");
    assert_non_null(nobody);
    char dir[64], path[96];
    test_temp_dir(dir, sizeof(dir), "channel-listen");
    chmod(dir, 0755);
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct accepted acc = {0};
    uid_t allowed[] = {0};
    struct buf err = BUF_INIT;
    struct channel_listener *l =
        channel_listen_path(&loop, path, 0666, allowed, 1, on_accept, &acc, &err);
    assert_non_null(l);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    /* a second listener on a live path is refused */
    assert_null(channel_listen_path(&loop, path, 0666, allowed, 1, on_accept, &acc, &err));
    assert_non_null(strstr(buf_cstr(&err), "another process is serving"));
    run_until(&loop, &acc.n, 1, 3000);
    assert_int_equal(acc.n, 1); /* that probe came from root: let in */
    assert_int_equal(acc.uid, 0);
    pid_t refused = connect_as(path, nobody->pw_uid);
    int status = -1;
    uint64_t end = uv_now(&loop) + 5000;
    while (channel_listener_refused(l) < 1 && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_update_time(&loop);
    }
    assert_int_equal(waitpid(refused, &status, 0), refused);
    assert_int_equal(channel_listener_refused(l), 1);
    assert_int_equal(acc.n, 1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* connected, then closed at once */
    /* root (in the set) is let in */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    run_until(&loop, &acc.n, 2, 3000);
    assert_int_equal(acc.n, 2);
    assert_int_equal(acc.uid, 0);
    close(fd);
    channel_listener_close(l);
    finish_loop(&loop);
    unlink(path);
    rmdir(dir);
    buf_free(&err);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_frames_across_feeds),
        cmocka_unit_test(test_core_rejects_bad_lengths),
        cmocka_unit_test(test_core_descriptor_inside_record_refused),
        cmocka_unit_test(test_backpressure_pauses_and_resumes),
        cmocka_unit_test(test_drain_in_uncork_is_reported_from_the_loop),
        cmocka_unit_test(test_writer_past_hard_limit_is_closed),
        cmocka_unit_test(test_descriptor_arrives_and_reads_the_file),
        cmocka_unit_test(test_round_records_leave_in_one_write),
        cmocka_unit_test(test_round_descriptor_in_the_middle),
        cmocka_unit_test(test_round_partial_writes_keep_order_and_descriptors),
        cmocka_unit_test(test_round_close_writes_what_is_queued),
        cmocka_unit_test(test_rejected_record_descriptors_closed),
        cmocka_unit_test(test_descriptors_on_channel_taking_none),
        cmocka_unit_test(test_more_descriptors_than_allowed),
        cmocka_unit_test(test_descriptor_inside_record_closes_channel),
        cmocka_unit_test(test_oversized_record_closes),
        cmocka_unit_test(test_malformed_header_closes),
        cmocka_unit_test(test_error_reply_before_close),
        cmocka_unit_test(test_peer_dying_mid_record),
        cmocka_unit_test(test_peer_closing_with_our_data_unread),
        cmocka_unit_test(test_blocking_helpers),
        cmocka_unit_test(test_listener_refuses_other_uids),
    };
    return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
