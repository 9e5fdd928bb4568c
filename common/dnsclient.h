/*
 * dnsclient — how remote, router and the `onehop dns` command ask the DNS
 * cache (onehop-dnscache) over run_dir/dnscache.sock, in the records of
 * dnsproto.h. Two flavours:
 *
 * Blocking (commands, tests): dnsc_open() connects; dnsc_lookup(),
 * dnsc_dump() and dnsc_flush() send one request and wait for its answer,
 * at most timeout_ms for each record read. When nothing listens on the
 * socket, dnsc_open() fails with DNSC_NOT_RUNNING so the caller can say
 * "dnscache is not running".
 *
 * Asynchronous (daemons, one libuv loop): dnsclient_lookup() queues a
 * request and calls back exactly once with the answer, unless cancelled.
 * The client talks over a channel (channel.h) that it opens on first use
 * and again after a loss; requests queued in one loop turn leave in one
 * write. When the connection drops (dnscache restarted, a write failed,
 * a bad record), each request already sent is sent once more on a new
 * connection; one lost a second time, one that finds the daemon not
 * running, and one with no answer within timeout_ms is called back with
 * a DNS_STATUS_TEMPFAIL answer and a reason, so the delivery is deferred
 * and retried (SPEC D4). It never hangs a caller.
 *
 * Request ids run through all of uint32 and wrap, skipping 0 and every id
 * still in flight. Callbacks never run inside dnsclient_lookup(); a
 * callback may start new lookups or cancel others, but must not free the
 * client. The answer a callback gets is valid during the call only:
 * dnsclient_answer_copy() keeps it.
 */
#ifndef ONEHOP_DNSCLIENT_H
#define ONEHOP_DNSCLIENT_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "dnsproto.h"

/* ---------------------------------------------------------- blocking ---- */

enum { DNSC_OK = 0, DNSC_NOT_RUNNING = -2, DNSC_ERROR = -1 };

struct dnsc {
    int fd;
    int timeout_ms;
    uint32_t next_id;
    struct buf rec;
};

/* The socket path of an instance: run_dir/dnscache.sock. */
void dnsc_socket_path(const char *run_dir, struct buf *out);
/* DNSC_OK, DNSC_NOT_RUNNING (nothing listens: ENOENT, ECONNREFUSED), or
 * DNSC_ERROR; err gets the reason either way. */
int dnsc_open(struct dnsc *c, const char *path, int timeout_ms, struct buf *err);
void dnsc_close(struct dnsc *c);
/* 0 with *a filled (free with dnsp_answer_free), or -1 with err. */
int dnsc_lookup(struct dnsc *c, uint32_t qtype, const char *name, struct dnsp_answer *a,
                struct buf *err);
/* The dump: on_counter for each counter, on_entry for each cache entry
 * (valid during the call); 0 or -1 with err. */
int dnsc_dump(struct dnsc *c, uint32_t what,
              void (*on_counter)(void *arg, const char *name, uint64_t value),
              void (*on_entry)(void *arg, const struct dnsp_answer *e), void *arg, struct buf *err);
/* name "" flushes everything; *removed = entries dropped. */
int dnsc_flush(struct dnsc *c, const char *name, uint64_t *removed, struct buf *err);

/* ------------------------------------------------------ asynchronous ---- */

struct dnsclient;
struct dnsclient_req;

/* a is valid only during the call (copy it with dnsclient_answer_copy). */
typedef void (*dnsclient_cb)(void *arg, const struct dnsp_answer *a);

/* A deep copy of src into dst, owned by the caller: free it with
 * dnsp_answer_free. */
void dnsclient_answer_copy(struct dnsp_answer *dst, const struct dnsp_answer *src);

struct dnsclient *dnsclient_new(uv_loop_t *loop, const char *socket_path, uint64_t timeout_ms);
/* qtype: DNSP_QTYPE_A, _AAAA, _MX, _ROUTE, or _ADDR (the address view of a
 * `[host]` next hop or `relayhost`: A and AAAA with their TTLs in one
 * request, dnsproto.h). The returned handle is valid until the callback
 * runs or the request is cancelled. */
struct dnsclient_req *dnsclient_lookup(struct dnsclient *c, uint32_t qtype, const char *name,
                                       dnsclient_cb cb, void *arg);
void dnsclient_cancel(struct dnsclient_req *r);
/* The id the next request gets is after id (tests: ids that wrap). */
void dnsclient_set_last_id(struct dnsclient *c, uint32_t id);
/* Requests still pending are dropped without callback; the memory goes
 * once the loop has run the handles' close callbacks. */
void dnsclient_free(struct dnsclient *c);

#endif
