/*
 * dns_msg — a strict reader of DNS messages (RFC 1035 4.1) received from
 * upstream resolvers: the header, the question, and every resource record of
 * the answer, authority and additional sections.
 *
 * Contract: dns_msg_parse() walks the whole message once and checks every
 * length against the buffer before it is used: section counts against the
 * records really present, each RR's fixed part and RDLENGTH against the end,
 * the RDATA of A (4 bytes), AAAA (16), MX, CNAME, NS, PTR and SOA against
 * their own layout, and every name (RFC 1035 3.1 and 4.1.4): labels of at
 * most 63 bytes, at most 255 bytes in all, compression pointers only to
 * earlier bytes and at most DNS_NAME_MAX_POINTERS of them (so a pointer
 * loop ends), no reserved label types. A message that passes can then be
 * iterated with dns_rr_next() and its names read with dns_name_at(), which
 * cannot fail on it. Trailing bytes after the last counted record are an
 * error (a hostile or broken peer).
 *
 * Names are given in presentation form: lower-case ASCII, no trailing dot
 * (the root is "."), bytes other than letters, digits, '-' and '_' written
 * as \DDD (RFC 1035 5.1), so a name is always a printable C string.
 *
 * It must never read outside p[0..len), write outside the caller's
 * DNS_NAME_TEXT_MAX + 1 byte buffers, or allocate.
 */
#ifndef ONEHOP_DNS_MSG_H
#define ONEHOP_DNS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_SIZE 12
#define DNS_NAME_WIRE_MAX 255    /* RFC 1035 2.3.4 */
#define DNS_LABEL_MAX 63         /* RFC 1035 2.3.4 */
#define DNS_NAME_MAX_POINTERS 64 /* more compression pointers than this in one name: hostile */
/* Presentation form bound: at most 254 label bytes, each at most 4 characters
 * ("\DDD"), plus the dots between at most 127 labels. */
#define DNS_NAME_TEXT_MAX 1152

#define DNS_TYPE_A 1
#define DNS_TYPE_NS 2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA 6
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_OPT 41
#define DNS_CLASS_IN 1

/* Header flag bits (RFC 1035 4.1.1). */
#define DNS_FLAG_QR 0x8000
#define DNS_FLAG_AA 0x0400
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_RA 0x0080
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xf)
#define DNS_RCODE(flags) ((flags)&0xf)

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5
};

enum dns_section { DNS_SECTION_ANSWER, DNS_SECTION_AUTHORITY, DNS_SECTION_ADDITIONAL };

struct dns_msg {
    const uint8_t *p;
    size_t len;
    uint16_t id, flags;
    uint16_t qdcount, ancount, nscount, arcount;
    /* The question (when qdcount is 1; qname is "" when qdcount is 0). */
    char qname[DNS_NAME_TEXT_MAX + 1];
    uint16_t qtype, qclass;
    size_t rr_start; /* offset of the first resource record */
};

struct dns_rr {
    enum dns_section section;
    size_t name_off; /* owner name, for dns_name_at() */
    uint16_t type, rclass;
    uint32_t ttl; /* RFC 2181 8: a TTL with the top bit set is read as 0 */
    size_t rdata_off;
    uint16_t rdlength;
};

struct dns_rr_iter {
    size_t off;
    unsigned index; /* records read so far, over all sections */
};

/* Check and index the message p[0..len). Returns 0, or -1 with *why set to a
 * static reason ("compression pointer loop", "record runs past the end"...).
 * qdcount above 1 is refused (no resolver sends it). */
int dns_msg_parse(struct dns_msg *m, const void *p, size_t len, const char **why);

void dns_rr_iter_init(const struct dns_msg *m, struct dns_rr_iter *it);
/* Next record of any section: 1 and *rr filled, or 0 at the end. */
int dns_rr_next(const struct dns_msg *m, struct dns_rr_iter *it, struct dns_rr *rr);

/* Decode the name at offset off into out (DNS_NAME_TEXT_MAX + 1 bytes); when
 * end is not NULL, *end is the offset just after the name in place. Returns
 * 0, or -1 and *why for a bad name (possible only on unchecked offsets). */
int dns_name_at(const struct dns_msg *m, size_t off, char *out, size_t *end, const char **why);

/* Readers of RDATA fields of a checked record (no bounds to fail). */
uint16_t dns_get16(const struct dns_msg *m, size_t off);
uint32_t dns_get32(const struct dns_msg *m, size_t off);

#endif
