/*
 * upstream — the dnscache's questions to its upstream resolvers: c-ares
 * (Debian's 1.18) run inside the daemon's libuv loop, its sockets watched by
 * uv_poll handles and its timeouts by one uv_timer; no threads.
 *
 * Every query (SPEC D1, D3; issue 4.3):
 *   - is sent for the absolute name as given: ARES_FLAG_NOSEARCH, no search
 *     list, no HOSTALIASES (ARES_FLAG_NOALIASES);
 *   - carries EDNS0 with a 1232-byte UDP payload (DNS flag day 2020), and a
 *     truncated (TC) UDP answer is asked again over TCP by c-ares;
 *   - goes to the `dns_servers` of onehop.conf (IP, IP:PORT, [IPv6]:PORT),
 *     or to the nameservers of /etc/resolv.conf when that list is empty;
 *   - makes UPSTREAM_TRIES rounds over the servers in order, moving to the
 *     next server on a timeout or a refused connection; c-ares 1.18 gives
 *     each try `dns_timeout` in the first round and doubles it each round
 *     after (so a silent name costs 3 x dns_timeout per server: the caller
 *     bounds the whole with dns_lookup_timeout, lookup.h); a SERVFAIL or
 *     REFUSED answer is taken as the answer (ARES_FLAG_NOCHECKRESP: the
 *     recursive resolver behind it has retried already, and the class and
 *     reason of the failure reach the caller instead of c-ares 1.18's
 *     "could not contact DNS servers").
 * The callback gets the c-ares status and, when an answer came back (any
 * rcode), its raw bytes: c-ares 1.18 parses no TTL from MX answers, so the
 * caller reads them itself (dns_answer.h).
 *
 * Must never block, or call back after upstream_free() returned (pending
 * queries are called back with ARES_EDESTRUCTION inside it).
 */
#ifndef ONEHOP_DNSCACHE_UPSTREAM_H
#define ONEHOP_DNSCACHE_UPSTREAM_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "conf.h"

#define UPSTREAM_TRIES 2
#define UPSTREAM_EDNS_SIZE 1232

struct upstream;

/* status: an ARES_* code; abuf/alen: the answer when one arrived, else NULL. */
typedef void (*upstream_cb)(void *arg, int status, const unsigned char *abuf, int alen);

/* NULL with a reason in err when c-ares cannot start or a server is refused. */
struct upstream *upstream_new(uv_loop_t *loop, const struct conf *c, struct buf *err);
/* Change servers and timeout for later queries (reload); -1 with err. */
int upstream_configure(struct upstream *u, const struct conf *c, struct buf *err);
void upstream_query(struct upstream *u, const char *name, uint16_t qtype, upstream_cb cb,
                    void *arg);
/* The servers in use, "IP:PORT, ..." (for logs and the dump). */
void upstream_describe(struct upstream *u, struct buf *out);
/* Cancel everything (callbacks run with ARES_EDESTRUCTION) and close the
 * handles; the memory goes once the loop has run their close callbacks. */
void upstream_free(struct upstream *u);

#endif
