/*
 * dnsbench — load generator for bench/dns/run.sh: cached lookups per second
 * and their latency, against onehop-dnscache (its Unix socket, the records
 * of dnsproto.h) or against any DNS server through c-ares (unbound here).
 *
 *   dnsbench cache SOCKET NAMES CLIENTS SECONDS     N connections, 1 request each in flight
 *   dnsbench cache-pipe SOCKET NAMES CLIENTS SECONDS
 *                     one connection, N requests in flight (how remote and
 *                     router use the cache: dnsclient.h multiplexes them)
 *   dnsbench dns IP:PORT NAMES CLIENTS SECONDS      c-ares, N queries in flight
 *   dnsbench warm-cache SOCKET NAMES                every name once (64 in flight)
 *   dnsbench warm-dns IP:PORT NAMES                 the same through c-ares
 *
 * NAMES is a file of names, one a line; requests walk it in order, so every
 * cached name is used. Every answer is decoded (dnsp_get_answer, or
 * ares_parse_a_reply) and must be an A answer with an address; anything
 * else counts as an error. Output, one line:
 *   target=cache clients=16 lookups=N seconds=S rate=R p50_us=X p99_us=Y errors=E
 * Closed loop: each client sends its next request when its answer is in.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "channel_core.h"
#include "dnsproto.h"
#include "mem.h"
#include "safeio.h"

struct bench {
    char **names;
    size_t nnames, next;
    uint64_t start_ns, end_ns;
    uint32_t *lat_us;
    size_t nlat, caplat;
    uint64_t done, errors, limit; /* limit: stop after this many (warm-up), 0 = by time */
    int stopping;
};

static struct bench B;

static const char *next_name(void)
{
    return B.names[B.next++ % B.nnames];
}

static void record_latency(uint64_t sent_ns, int ok)
{
    uint64_t us = (uv_hrtime() - sent_ns) / 1000;
    B.lat_us = xgrow(B.lat_us, &B.caplat, B.nlat + 1, sizeof(*B.lat_us));
    B.lat_us[B.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    B.done++;
    B.errors += !ok;
}

/* 1 while more requests should be sent. */
static int keep_going(void)
{
    if (B.limit)
        return B.next < B.limit;
    return uv_hrtime() < B.end_ns;
}

static void load_names(const char *path)
{
    struct buf text = BUF_INIT;
    if (read_file(path, &text, 0) < 0) {
        perror(path);
        exit(1);
    }
    size_t cap = 0;
    char *s = text.s, *line;
    while ((line = strsep(&s, "\n")) != NULL) {
        if (!*line)
            continue;
        B.names = xgrow(B.names, &cap, B.nnames + 1, sizeof(*B.names));
        B.names[B.nnames++] = xstrdup(line);
    }
    buf_free(&text);
    if (B.nnames == 0) {
        fprintf(stderr, "dnsbench: no names in %s\n", path);
        exit(1);
    }
}

/* ------------------------------------------------------ onehop-dnscache ---- */

/* Every read lands here first and is fed at once into its connection's
 * reader (channel_core's framing): one loop, one read at a time. */
static char read_scratch[65536];

static void scratch_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    *b = uv_buf_init(read_scratch, sizeof(read_scratch));
}

/* Feed what a read callback got; a lost connection ends the run. */
static void take_bytes(struct chan_in *in, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        fprintf(stderr, "dnsbench: connection lost: %s\n", uv_strerror((int)n));
        exit(1);
    }
    chan_in_feed(in, b->base, (size_t)n, NULL, 0);
}

/* The next whole answer record: 1, or 0 when more bytes are needed; a bad
 * record ends the run. */
static int next_answer(struct chan_in *in, struct chan_record *rec)
{
    int r = chan_in_pop(in, rec);
    if (r < 0) {
        fprintf(stderr, "dnsbench: bad record: %s\n", in->error);
        exit(1);
    }
    return r;
}

struct conn {
    uv_pipe_t pipe;
    uv_connect_t connect;
    struct chan_in in;
    struct buf out;
    uv_write_t write;
    uint64_t sent_ns;
    int busy_write;
};

static void cache_send(struct conn *c);

static void on_cache_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->busy_write = 0;
    if (status < 0) {
        fprintf(stderr, "dnsbench: write: %s\n", uv_strerror(status));
        exit(1);
    }
}

static void cache_send(struct conn *c)
{
    if (!keep_going()) {
        uv_close((uv_handle_t *)&c->pipe, NULL);
        return;
    }
    buf_clear(&c->out);
    dnsp_put_lookup(&c->out, (uint32_t)B.next, DNSP_QTYPE_A, next_name());
    c->sent_ns = uv_hrtime();
    uv_buf_t b = uv_buf_init(c->out.s, (unsigned)c->out.len);
    if (uv_try_write((uv_stream_t *)&c->pipe, &b, 1) == (int)c->out.len)
        return;
    c->write.data = c;
    c->busy_write = 1;
    uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, on_cache_written);
}

static int answer_ok(const char *rec, size_t len)
{
    struct dnsp_answer a;
    const char *why;
    if (dnsp_get_answer(rec, len, &a, &why) < 0)
        return 0;
    int ok = a.status == DNS_STATUS_OK && a.nhosts == 1 && a.hosts[0].nv4 >= 1;
    dnsp_answer_free(&a);
    return ok;
}

static void cache_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = st->data;
    struct chan_record rec;
    take_bytes(&c->in, n, b);
    while (next_answer(&c->in, &rec) == 1) {
        record_latency(c->sent_ns, answer_ok(rec.data, rec.len));
        cache_send(c);
    }
}

static void on_cache_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0) {
        fprintf(stderr, "dnsbench: connect: %s\n", uv_strerror(status));
        exit(1);
    }
    uv_read_start((uv_stream_t *)&c->pipe, scratch_alloc, cache_read);
    cache_send(c);
}

static void run_cache(const char *path, int clients)
{
    uv_loop_t *loop = uv_default_loop();
    struct conn *conns = xcalloc((size_t)clients, sizeof(*conns));
    for (int i = 0; i < clients; i++) {
        uv_pipe_init(loop, &conns[i].pipe, 0);
        conns[i].pipe.data = &conns[i];
        conns[i].connect.data = &conns[i];
        chan_in_init(&conns[i].in, 0, 0);
        uv_pipe_connect(&conns[i].connect, &conns[i].pipe, path, on_cache_connected);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < clients; i++) {
        chan_in_free(&conns[i].in);
        buf_free(&conns[i].out);
    }
    free(conns);
}

/* ------------------------------------- one connection, N in flight ---- */

struct pipe_client {
    uv_pipe_t pipe;
    uv_connect_t connect;
    struct chan_in in;
    struct buf out;
    uint64_t *sent_ns; /* by slot = request id */
    int inflight, open;
};

static struct pipe_client P;

static void pipe_queue(uint32_t slot)
{
    if (!keep_going()) {
        P.open--;
        return;
    }
    dnsp_put_lookup(&P.out, slot, DNSP_QTYPE_A, next_name());
    P.sent_ns[slot] = uv_hrtime();
}

static void on_pipe_written(uv_write_t *w, int status)
{
    struct buf *b = w->data;
    buf_free(b);
    free(b);
    free(w);
}

static void pipe_flush(void)
{
    if (P.out.len == 0)
        return;
    uv_buf_t b = uv_buf_init(P.out.s, (unsigned)P.out.len);
    int n = uv_try_write((uv_stream_t *)&P.pipe, &b, 1);
    if (n == (int)P.out.len) {
        buf_clear(&P.out);
        return;
    }
    if (n > 0)
        buf_consume(&P.out, (size_t)n);
    uv_write_t *w = xcalloc(1, sizeof(*w));
    struct buf *copy = xcalloc(1, sizeof(*copy));
    *copy = P.out;
    memset(&P.out, 0, sizeof(P.out));
    w->data = copy;
    b = uv_buf_init(copy->s, (unsigned)copy->len);
    uv_write(w, (uv_stream_t *)&P.pipe, &b, 1, on_pipe_written);
}

static void pipe_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct chan_record rec;
    take_bytes(&P.in, n, b);
    while (next_answer(&P.in, &rec) == 1) {
        struct dnsp_answer a;
        const char *why = "answer id out of range";
        if (dnsp_get_answer(rec.data, rec.len, &a, &why) < 0 || a.id >= (uint32_t)P.inflight) {
            fprintf(stderr, "dnsbench: bad answer: %s\n", why);
            exit(1);
        }
        int ok = a.status == DNS_STATUS_OK && a.nhosts == 1 && a.hosts[0].nv4 >= 1;
        record_latency(P.sent_ns[a.id], ok);
        pipe_queue(a.id);
        dnsp_answer_free(&a);
    }
    pipe_flush();
    if (P.open == 0)
        uv_close((uv_handle_t *)&P.pipe, NULL);
}

static void on_pipe_connected(uv_connect_t *req, int status)
{
    if (status < 0) {
        fprintf(stderr, "dnsbench: connect: %s\n", uv_strerror(status));
        exit(1);
    }
    uv_read_start((uv_stream_t *)&P.pipe, scratch_alloc, pipe_read);
    P.open = P.inflight;
    for (int i = 0; i < P.inflight; i++)
        pipe_queue((uint32_t)i);
    pipe_flush();
}

static void run_cache_pipelined(const char *path, int inflight)
{
    uv_loop_t *loop = uv_default_loop();
    P.inflight = inflight;
    P.sent_ns = xcalloc((size_t)inflight, sizeof(*P.sent_ns));
    chan_in_init(&P.in, 0, 0);
    uv_pipe_init(loop, &P.pipe, 0);
    uv_pipe_connect(&P.connect, &P.pipe, path, on_pipe_connected);
    uv_run(loop, UV_RUN_DEFAULT);
    chan_in_free(&P.in);
    buf_free(&P.out);
    free(P.sent_ns);
}

/* ---------------------------------------------------------- c-ares/DNS ---- */

struct query {
    uint64_t sent_ns;
};

static ares_channel channel;

static void dns_send(struct query *q);

static void on_dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct query *q = arg;
    int ok = 0;
    if (status == ARES_SUCCESS) {
        struct ares_addrttl ttls[8];
        int n = 8;
        ok = ares_parse_a_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS && n >= 1;
    }
    if (status == ARES_EDESTRUCTION)
        return;
    record_latency(q->sent_ns, ok);
    dns_send(q);
}

static void dns_send(struct query *q)
{
    if (!keep_going())
        return;
    q->sent_ns = uv_hrtime();
    ares_query(channel, next_name(), 1, 1, on_dns_answer, q);
}

static void dns_loop(void)
{
    for (;;) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        unsigned bits = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
        int n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            /* ares.h's ARES_GETSOCK_WRITABLE shifts a signed 1 by up to 31 */
            short ev = (short)((((bits >> i) & 1u) ? POLLIN : 0) |
                               (((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
            if (ev) {
                pfd[n].fd = socks[i];
                pfd[n].events = ev;
                pfd[n].revents = 0;
                n++;
            }
        }
        if (n == 0)
            return;
        struct timeval tv, *tvp = ares_timeout(channel, NULL, &tv);
        int ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
        poll(pfd, (nfds_t)n, ms);
        for (int i = 0; i < n; i++) {
            ares_socket_t rd =
                pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t wr = pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD;
            if (rd != ARES_SOCKET_BAD || wr != ARES_SOCKET_BAD)
                ares_process_fd(channel, rd, wr);
        }
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    }
}

static void run_dns(const char *server, int clients)
{
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = 2000;
    o.tries = 2;
    ares_library_init(ARES_LIB_INIT_ALL);
    if (ares_init_options(&channel, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
            ARES_SUCCESS ||
        ares_set_servers_ports_csv(channel, server) != ARES_SUCCESS) {
        fprintf(stderr, "dnsbench: cannot use DNS server %s\n", server);
        exit(1);
    }
    struct query *qs = xcalloc((size_t)clients, sizeof(*qs));
    for (int i = 0; i < clients; i++)
        dns_send(&qs[i]);
    dns_loop();
    ares_destroy(channel);
    free(qs);
}

/* -------------------------------------------------------------- report ---- */

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *target, int clients)
{
    double seconds = (double)(uv_hrtime() - B.start_ns) / 1e9;
    qsort(B.lat_us, B.nlat, sizeof(*B.lat_us), by_value);
    uint32_t p50 = B.nlat ? B.lat_us[B.nlat / 2] : 0;
    uint32_t p99 = B.nlat ? B.lat_us[(size_t)((double)B.nlat * 0.99)] : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("target=%s clients=%d lookups=%llu seconds=%.2f rate=%.0f p50_us=%u p99_us=%u "
           "errors=%llu client_cpu=%.0f%%\n",
           target, clients, (unsigned long long)B.done, seconds, (double)B.done / seconds, p50, p99,
           (unsigned long long)B.errors, 100 * cpu / seconds);
}

static int usage(void)
{
    fprintf(stderr, "usage: dnsbench cache|cache-pipe|dns SOCKET|IP:PORT NAMES CLIENTS SECONDS\n"
                    "       dnsbench warm-cache|warm-dns SOCKET|IP:PORT NAMES\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    int warm = strncmp(argv[1], "warm-", 5) == 0;
    const char *target = warm ? argv[1] + 5 : argv[1];
    if (!warm && argc != 6)
        return usage();
    int clients = warm ? 64 : atoi(argv[4]);
    double seconds = warm ? 0 : atof(argv[5]);
    if (clients <= 0 || (!warm && seconds <= 0))
        return usage();
    load_names(argv[3]);
    B.limit = warm ? B.nnames : 0;
    B.start_ns = uv_hrtime();
    B.end_ns = B.start_ns + (uint64_t)(seconds * 1e9);
    if (strcmp(target, "cache") == 0)
        run_cache(argv[2], clients);
    else if (strcmp(target, "cache-pipe") == 0)
        run_cache_pipelined(argv[2], clients);
    else if (strcmp(target, "dns") == 0)
        run_dns(argv[2], clients);
    else
        return usage();
    report(target, clients);
    return B.errors ? 1 : 0;
}
