/*
 * server — the dnscache's Unix socket (run_dir/dnscache.sock): accepts the
 * clients (remote, router, `onehop dns`), reads their requests in the
 * records of dnsproto.h and answers each, in any order, by id.
 *
 * Contract:
 *   - the socket is created mode 0660 (the instance's accounts only), and a
 *     live dnscache already serving the path is never displaced;
 *   - every record is checked (ipc.h); a malformed one gets DNSP_ERROR and
 *     the connection is closed, other clients are not affected;
 *   - a client may pipeline requests; past SERVER_INFLIGHT_MAX unanswered
 *     ones the server stops reading from it until half are answered, and a
 *     client that does not read its answers (SERVER_OUTPUT_MAX queued) is
 *     disconnected, so no client can make the daemon grow without bound;
 *   - the answers to what one read brought leave in one write, at once;
 *     answers completed later (upstream) leave together once per loop turn.
 */
#ifndef ONEHOP_DNSCACHE_SERVER_H
#define ONEHOP_DNSCACHE_SERVER_H

#include <uv.h>

#include "buf.h"
#include "dnscache/dns_cache.h"
#include "dnscache/lookup.h"

#define SERVER_INFLIGHT_MAX 4096
#define SERVER_OUTPUT_MAX (64u * 1024 * 1024)

struct server;

struct server_info {
    const char *servers; /* upstream servers, for the dump */
    uint64_t cache_max;
};

/* Listen on path; NULL with err on failure. */
struct server *server_start(uv_loop_t *loop, const char *path, struct lookup *l,
                            struct dns_cache *cache, struct buf *err);
void server_set_info(struct server *s, const struct server_info *info);
/* Close the socket and every connection; unlink the path. Requests still in
 * flight are answered into nothing. The memory goes with the loop's close
 * callbacks. */
void server_stop(struct server *s);

#endif
