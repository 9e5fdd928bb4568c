/*
 * dnsproto — the request/answer protocol of the DNS cache (onehop-dnscache),
 * spoken over its Unix socket `run_dir/dnscache.sock` in records of the
 * common codec (ipc.h). Clients: remote, router, the `onehop dns` command
 * (through dnsclient.h).
 *
 * Requests (client -> dnscache), answered in any order, matched by id:
 *
 *   DNSP_LOOKUP   u32 id, u32 qtype, str name
 *                 qtype: DNSP_QTYPE_A, _AAAA, _MX, _ROUTE, _ADDR or _RDNS; name absolute,
 *                 without a trailing dot (one is accepted and removed),
 *                 never extended by a search list (SPEC D1).
 *                 -> one DNSP_ANSWER with the same id
 *   DNSP_DUMP     u32 what (DNSP_DUMP_COUNTERS | DNSP_DUMP_ENTRIES)
 *                 -> DNSP_COUNTER records, then DNSP_ENTRY records (each an
 *                    answer as below, id 0, from cache), then DNSP_END
 *   DNSP_FLUSH    str name ("" = every name)
 *                 -> DNSP_FLUSHED u64 entries removed
 * A malformed request gets DNSP_ERROR str text, and the connection is closed.
 *
 * DNSP_ANSWER (and DNSP_ENTRY):
 *   u32 id, u32 qtype, str name, str canonical name (end of the CNAME chain,
 *   = name when there was none), u32 status (enum dns_status), str reason
 *   ("" when ok), u32 ttl (seconds the answer may still be used: the
 *   remaining TTL of a cached answer; for ROUTE the minimum over the MX set
 *   and every host's A and AAAA answers; for ADDR the smaller of the A and
 *   AAAA answers'; 0 = use for this delivery only),
 *   u32 flags (DNSP_F_*), u32 nhosts, then nhosts times:
 *     u32 preference, str host, u32 status, str reason, u32 ttl,
 *     bytes IPv4 addresses (4 bytes each), bytes IPv6 addresses (16 each)
 *
 * What the hosts are, per qtype:
 *   A, AAAA  one host: the name itself (preference 0) with its addresses.
 *   MX       one host per MX record, without addresses, sorted by preference
 *            (equal preferences in the order of the answer). A null MX
 *            (RFC 7505) is status DNSP null-MX with no host.
 *   ROUTE    the delivery view of SPEC D1: the MX hosts sorted by preference,
 *            each with its A and AAAA addresses and its own status (ok,
 *            nodata, nxdomain, tempfail) and reason, so that the remote
 *            daemon can apply D4 (every MX host NXDOMAIN is permanent, a mix
 *            with temporary failures is temporary) and D5 (drop hosts at or
 *            after our own preference). No MX: the implicit MX of RFC 5321
 *            5.1, one host = the domain (flag DNSP_F_IMPLICIT_MX). The overall
 *            status is ok when any host has an address; otherwise tempfail
 *            if any host failed temporarily, nxdomain if every host is
 *            NXDOMAIN, else nodata. At most DNSP_ROUTE_MAX_HOSTS hosts, the
 *            best preferences first (flag DNSP_F_HOSTS_CAPPED when more).
 *   ADDR     the address view of one host, for `[host]` next hops and
 *            `relayhost` (SPEC 4, D2): its A and AAAA answers in one request
 *            (both asked, each cached and expiring on its own), as one host
 *            = the name (preference 0) with both families' addresses, its
 *            status and reason as a ROUTE host's (ok when it has any
 *            address; tempfail when either lookup failed temporarily;
 *            nxdomain when the name does not exist; else nodata; the reason
 *            names the family, "A: ..." / "AAAA: ...") and its ttl the
 *            smaller of the two answers' TTLs. The answer's status, reason
 *            and ttl are the host's; the canonical name is the A answer's
 *            (the AAAA answer's when A failed).
 *   RDNS     the client-name view (SPEC 8, onehop-smtpd's "connect from
 *            NAME[ADDR]"): the request name is the reverse name of one
 *            address (dnsp_reverse_name: d.c.b.a.in-addr.arpa, or the 32
 *            nibbles under ip6.arpa); the hosts are its PTR names (at most
 *            DNSP_RDNS_MAX_NAMES, in answer order), each with its addresses
 *            of that address's family (A for IPv4, AAAA for IPv6) and its
 *            status. Forward-confirmed as Postfix does: the answer is ok
 *            only when one of those names has the address among its own,
 *            and its canonical name is then that name. Otherwise the
 *            canonical name is the request name and the status: the PTR
 *            answer's (nxdomain, nodata, tempfail) when it had no name;
 *            tempfail when no name confirms and a forward lookup failed
 *            temporarily; else nodata with the reason "hostname H does not
 *            resolve to address A". ttl: the smallest of the parts'.
 *
 * Who randomizes (SPEC D1): not the cache. It returns equal preferences and
 * addresses in a stable order so that one cached answer serves everyone;
 * the remote daemon shuffles equal preferences and each host's addresses at
 * use time, for every delivery attempt.
 *
 * Contract: every decoder treats its input as hostile (ipc.h): a short,
 * long or wrongly typed record is an error, never a guess.
 */
#ifndef ONEHOP_DNSPROTO_H
#define ONEHOP_DNSPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

#define DNSP_SOCKET_NAME "dnscache.sock"
#define DNSP_NAME_MAX 253     /* a request name, presentation form */
#define DNSP_REQUEST_MAX 4096 /* longest request record */
#define DNSP_ANSWER_MAX IPC_RECORD_MAX
#define DNSP_ROUTE_MAX_HOSTS 32
#define DNSP_RDNS_MAX_NAMES 4 /* PTR names checked for one address */
#define DNSP_TEXT_MAX 4096    /* reasons */
#define DNSP_HOST_MAX 2048    /* a host name in an answer (escaped form) */

enum dnsp_record {
    DNSP_LOOKUP = 1,
    DNSP_ANSWER = 2,
    DNSP_DUMP = 3,
    DNSP_COUNTER = 4,
    DNSP_ENTRY = 5,
    DNSP_END = 6,
    DNSP_FLUSH = 7,
    DNSP_FLUSHED = 8,
    DNSP_ERROR = 9
};

enum dnsp_qtype {
    DNSP_QTYPE_A = 1,
    DNSP_QTYPE_MX = 15,
    DNSP_QTYPE_AAAA = 28,
    DNSP_QTYPE_ROUTE = 0xff01, /* not a DNS type: the composed delivery view */
    DNSP_QTYPE_ADDR = 0xff02,  /* not a DNS type: A and AAAA of one host together */
    DNSP_QTYPE_RDNS = 0xff03   /* not a DNS type: PTR of an address, forward-confirmed */
};

enum dns_status {
    DNS_STATUS_OK = 0,
    DNS_STATUS_NODATA = 1,   /* the name exists, no record of that type */
    DNS_STATUS_NXDOMAIN = 2, /* the name does not exist (permanent) */
    DNS_STATUS_NULLMX = 3,   /* RFC 7505 "MX 0 .": accepts no mail (permanent) */
    DNS_STATUS_TEMPFAIL = 4, /* SERVFAIL, timeout, REFUSED, malformed...: retry later */
    DNS_STATUS_INVALID = 5   /* the request itself was wrong (bad name or type) */
};

enum {
    DNSP_F_FROM_CACHE = 1,   /* every part came from the cache */
    DNSP_F_STALE = 2,        /* RFC 8767: an expired answer served after an upstream failure */
    DNSP_F_IMPLICIT_MX = 4,  /* ROUTE: no MX, the domain itself (RFC 5321 5.1) */
    DNSP_F_HOSTS_CAPPED = 8, /* ROUTE: more MX hosts than DNSP_ROUTE_MAX_HOSTS */
    DNSP_F_COALESCED = 16    /* joined an upstream query already in flight */
};

enum { DNSP_DUMP_COUNTERS = 1, DNSP_DUMP_ENTRIES = 2 };

struct dnsp_host {
    uint32_t pref;
    char *name;
    enum dns_status status;
    char *reason;
    uint32_t ttl;
    unsigned char *v4; /* nv4 addresses of 4 bytes */
    size_t nv4;
    unsigned char *v6; /* nv6 addresses of 16 bytes */
    size_t nv6;
};

struct dnsp_answer {
    uint32_t id;
    uint32_t qtype;
    char *name, *canon;
    enum dns_status status;
    char *reason;
    uint32_t ttl, flags;
    struct dnsp_host *hosts;
    size_t nhosts;
};

/* Names for output and parsing: "A", "AAAA", "MX", "ROUTE", "ADDR", "RDNS" (case-insensitive
 * on input; returns 0 when unknown) and "ok", "nodata", "nxdomain",
 * "null-mx", "tempfail", "invalid". */
const char *dnsp_qtype_name(uint32_t qtype);
uint32_t dnsp_qtype_parse(const char *s);
const char *dns_status_name(enum dns_status s);

/* Check and normalize a request name in place: trailing dot removed,
 * lower-cased; 1..253 characters, labels of 1..63 letters, digits, '-' or
 * '_'. Returns 0, or -1 with *why. */
int dnsp_name_normalize(char *name, const char **why);

/* The reverse name of an address (RFC 1035 3.5, RFC 3596 2.5): family 4
 * (4 bytes) gives "9.0.0.127.in-addr.arpa", family 6 (16 bytes) the 32
 * nibbles, lowest first, then "ip6.arpa". */
void dnsp_reverse_name(int family, const unsigned char *addr, struct buf *out);
/* The address of a reverse name (normalized: lower case, no final dot):
 * 0 with *family (4 or 6) and addr[0..4 or 16), or -1 when it is not the
 * reverse name of one whole address. */
int dnsp_reverse_parse(const char *name, int *family, unsigned char addr[16]);

/* ---- encoding ---- */
void dnsp_put_lookup(struct buf *out, uint32_t id, uint32_t qtype, const char *name);
void dnsp_put_dump(struct buf *out, uint32_t what);
void dnsp_put_flush(struct buf *out, const char *name);
void dnsp_put_counter(struct buf *out, const char *name, uint64_t value);
void dnsp_put_end(struct buf *out, uint32_t count);
void dnsp_put_flushed(struct buf *out, uint64_t removed);
void dnsp_put_error(struct buf *out, const char *text);
/* An answer in two steps: the head (with the number of hosts that follow),
 * then each host, then ipc_finish(w). */
void dnsp_answer_begin(struct ipc_writer *w, struct buf *out, uint16_t record,
                       const struct dnsp_answer *head);
void dnsp_answer_add_host(struct ipc_writer *w, const struct dnsp_host *h);
/* The whole answer a (head and a->hosts) as one record. */
void dnsp_put_answer(struct buf *out, uint16_t record, const struct dnsp_answer *a);

/* ---- decoding (rec[0..len) is one whole record, as framed by ipc_frame) ---- */
/* The record type, or 0 when the header is unreadable. */
uint16_t dnsp_record_type(const void *rec, size_t len);
/* Each returns 0, or -1 with *why (static or the codec's text). */
int dnsp_get_lookup(const void *rec, size_t len, uint32_t *id, uint32_t *qtype, struct buf *name,
                    const char **why);
/* The same, the name into a caller's array (no allocation on the way of a
 * well-formed request): at most DNSP_NAME_MAX + 1 bytes and its NUL. */
int dnsp_get_lookup_name(const void *rec, size_t len, uint32_t *id, uint32_t *qtype,
                         char name[DNSP_NAME_MAX + 2], const char **why);
int dnsp_get_dump(const void *rec, size_t len, uint32_t *what, const char **why);
int dnsp_get_flush(const void *rec, size_t len, struct buf *name, const char **why);
int dnsp_get_counter(const void *rec, size_t len, struct buf *name, uint64_t *value,
                     const char **why);
int dnsp_get_end(const void *rec, size_t len, uint32_t *count, const char **why);
int dnsp_get_flushed(const void *rec, size_t len, uint64_t *removed, const char **why);
int dnsp_get_error(const void *rec, size_t len, struct buf *text, const char **why);
/* DNSP_ANSWER or DNSP_ENTRY into a (allocated; free with dnsp_answer_free). */
int dnsp_get_answer(const void *rec, size_t len, struct dnsp_answer *a, const char **why);
void dnsp_answer_free(struct dnsp_answer *a);

#endif
