/*
 * server — the dnscache's Unix socket (run_dir/dnscache.sock): accepts the
 * clients (remote, router, `onehop dns`), reads their requests in the
 * records of dnsproto.h over a channel each (channel.h) and answers each,
 * in any order, by id.
 *
 * Contract:
 *   - who may connect is decided by the peer's credentials (SO_PEERCRED),
 *     not by the socket's mode (SERVER_SOCKET_MODE, open to all): root, the
 *     daemon's own uid and, when the instance was started as root (the
 *     daemon runs as root or as the `user`-dns account, SPEC 7), the
 *     `user`-router, `user`-remote and `user`-smtpd accounts. Anyone else is closed at
 *     once with a log line naming the uid;
 *   - a live dnscache already serving the path is never displaced;
 *   - every record is checked (ipc.h); a malformed one gets DNSP_ERROR and
 *     the connection is closed, other clients are not affected;
 *   - a client may pipeline requests; past SERVER_INFLIGHT_MAX unanswered
 *     ones the server stops reading from it until half are answered, and
 *     while its unread answers are over the channel's high-water mark;
 *     a client whose unread answers pass SERVER_OUTPUT_MAX is
 *     disconnected, so no client can make the daemon grow without bound;
 *   - the answers to what one read brought leave in one write, at once;
 *     answers completed later (upstream) leave together once per loop turn.
 */
#ifndef ONEHOP_DNSCACHE_SERVER_H
#define ONEHOP_DNSCACHE_SERVER_H

#include <sys/types.h>

#include <uv.h>

#include "buf.h"
#include "dnscache/dns_cache.h"
#include "dnscache/lookup.h"

#define SERVER_INFLIGHT_MAX 4096
#define SERVER_OUTPUT_MAX (64u * 1024 * 1024)
#define SERVER_SOCKET_MODE 0666 /* the peer's credentials decide, see above */
#define SERVER_UIDS_MAX 4

struct server;

struct server_info {
    const char *servers; /* upstream servers, for the dump */
    uint64_t cache_max;
};

/* The uids that may connect, as above, into uids[SERVER_UIDS_MAX]; user is
 * conf's `user` (NULL: root and our own uid only). Returns the count. */
size_t server_allowed_uids(const char *user, uid_t *uids);
/* Listen on path for the accounts of `user`; NULL with err on failure. */
struct server *server_start(uv_loop_t *loop, const char *path, const char *user, struct lookup *l,
                            struct dns_cache *cache, struct buf *err);
void server_set_info(struct server *s, const struct server_info *info);
/* Close the socket and every connection; unlink the path. Requests still in
 * flight are answered into nothing. The memory goes with the loop's close
 * callbacks. */
void server_stop(struct server *s);

#endif
