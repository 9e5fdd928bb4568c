/*
 * dns_msg — strict DNS message reader. See dns_msg.h for the contract.
 *
 * Every read goes through need(), which compares the bytes wanted with what
 * is left; nothing here trusts a count or a length found in the message (the
 * Exchange IMS crash on MX answers over 1,500 bytes is exactly that bug).
 */
#include "dnscache/dns_msg.h"

#include <string.h>

/* 1 if n bytes are available at off. */
static int need(const struct dns_msg *m, size_t off, size_t n)
{
    return off <= m->len && n <= m->len - off;
}

uint16_t dns_get16(const struct dns_msg *m, size_t off)
{
    return (uint16_t)((m->p[off] << 8) | m->p[off + 1]);
}

uint32_t dns_get32(const struct dns_msg *m, size_t off)
{
    return ((uint32_t)m->p[off] << 24) | ((uint32_t)m->p[off + 1] << 16) |
           ((uint32_t)m->p[off + 2] << 8) | m->p[off + 3];
}

static int plain_name_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Append one label in presentation form; returns the new text length. */
static size_t append_label(char *out, size_t text, const uint8_t *label, size_t n)
{
    static const char digits[] = "0123456789";
    if (text > 0)
        out[text++] = '.';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = label[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (plain_name_byte(c)) {
            out[text++] = (char)c;
        } else {
            out[text++] = '\\';
            out[text++] = digits[c / 100];
            out[text++] = digits[c / 10 % 10];
            out[text++] = digits[c % 10];
        }
    }
    return text;
}

/* RFC 1035 4.1.4: a pointer is two bytes with the top bits 11; it must point
 * to an earlier byte ("a prior occurance"), which together with the length
 * bound and the pointer count makes every walk finite. */
static int follow_pointer(const struct dns_msg *m, size_t *pos, unsigned *pointers,
                          const char **why)
{
    if (!need(m, *pos, 2)) {
        *why = "compression pointer runs past the end";
        return -1;
    }
    size_t target = (size_t)((m->p[*pos] & 0x3f) << 8) | m->p[*pos + 1];
    if (target >= *pos) {
        *why = "compression pointer does not point backwards (loop)";
        return -1;
    }
    if (++*pointers > DNS_NAME_MAX_POINTERS) {
        *why = "too many compression pointers in a name";
        return -1;
    }
    *pos = target;
    return 0;
}

int dns_name_at(const struct dns_msg *m, size_t off, char *out, size_t *end, const char **why)
{
    size_t pos = off, wire = 0, text = 0, after = 0;
    unsigned pointers = 0;
    for (;;) {
        if (!need(m, pos, 1)) {
            *why = "name runs past the end";
            return -1;
        }
        uint8_t c = m->p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pointers == 0)
                after = pos + 2;
            if (follow_pointer(m, &pos, &pointers, why) < 0)
                return -1;
            continue;
        }
        if (c & 0xc0) {
            *why = "reserved label type";
            return -1;
        }
        wire += 1 + (size_t)c;
        if (wire > DNS_NAME_WIRE_MAX) {
            *why = "name longer than 255 bytes";
            return -1;
        }
        if (c == 0) {
            if (pointers == 0)
                after = pos + 1;
            break;
        }
        if (!need(m, pos + 1, c)) {
            *why = "label runs past the end";
            return -1;
        }
        text = append_label(out, text, m->p + pos + 1, c);
        pos += 1 + (size_t)c;
    }
    if (text == 0)
        out[text++] = '.';
    out[text] = '\0';
    if (end)
        *end = after;
    return 0;
}

/* A name inside RDATA must end exactly where the caller says (or before). */
static int check_name_within(const struct dns_msg *m, size_t off, size_t limit, size_t *end,
                             const char **why)
{
    char scratch[DNS_NAME_TEXT_MAX + 1];
    if (dns_name_at(m, off, scratch, end, why) < 0)
        return -1;
    if (*end > limit) {
        *why = "name runs past its record data";
        return -1;
    }
    return 0;
}

static int check_rdata_is_name(const struct dns_msg *m, size_t off, size_t limit, const char **why)
{
    size_t end;
    if (check_name_within(m, off, limit, &end, why) < 0)
        return -1;
    if (end != limit) {
        *why = "bytes after the name in record data";
        return -1;
    }
    return 0;
}

static int check_rdata_mx(const struct dns_msg *m, size_t off, size_t limit, const char **why)
{
    if (limit - off < 3) {
        *why = "MX record data too short";
        return -1;
    }
    return check_rdata_is_name(m, off + 2, limit, why);
}

/* RFC 1035 3.3.13: MNAME, RNAME, then five 32-bit fields. */
static int check_rdata_soa(const struct dns_msg *m, size_t off, size_t limit, const char **why)
{
    size_t end;
    if (check_name_within(m, off, limit, &end, why) < 0)
        return -1;
    if (check_name_within(m, end, limit, &end, why) < 0)
        return -1;
    if (limit - end != 20) {
        *why = "SOA record data has the wrong length";
        return -1;
    }
    return 0;
}

static int check_rdata(const struct dns_msg *m, const struct dns_rr *rr, const char **why)
{
    size_t off = rr->rdata_off, limit = rr->rdata_off + rr->rdlength;
    if (rr->rclass != DNS_CLASS_IN)
        return 0;
    switch (rr->type) {
    case DNS_TYPE_A:
        if (rr->rdlength != 4)
            *why = "A record data is not 4 bytes";
        return rr->rdlength == 4 ? 0 : -1;
    case DNS_TYPE_AAAA:
        if (rr->rdlength != 16)
            *why = "AAAA record data is not 16 bytes";
        return rr->rdlength == 16 ? 0 : -1;
    case DNS_TYPE_CNAME:
    case DNS_TYPE_NS:
    case DNS_TYPE_PTR:
        return check_rdata_is_name(m, off, limit, why);
    case DNS_TYPE_MX:
        return check_rdata_mx(m, off, limit, why);
    case DNS_TYPE_SOA:
        return check_rdata_soa(m, off, limit, why);
    default:
        return 0;
    }
}

/* Read the fixed part of the record at *pos (its name already checked). */
static int read_rr_fixed(const struct dns_msg *m, size_t name_end, struct dns_rr *rr,
                         const char **why)
{
    if (!need(m, name_end, 10)) {
        *why = "record header runs past the end";
        return -1;
    }
    rr->type = dns_get16(m, name_end);
    rr->rclass = dns_get16(m, name_end + 2);
    rr->ttl = dns_get32(m, name_end + 4);
    if (rr->ttl > 0x7fffffffu) /* RFC 2181 8 */
        rr->ttl = 0;
    rr->rdlength = dns_get16(m, name_end + 8);
    rr->rdata_off = name_end + 10;
    if (!need(m, rr->rdata_off, rr->rdlength)) {
        *why = "record data runs past the end";
        return -1;
    }
    return 0;
}

static enum dns_section section_of(const struct dns_msg *m, unsigned index)
{
    if (index < m->ancount)
        return DNS_SECTION_ANSWER;
    if (index < (unsigned)m->ancount + m->nscount)
        return DNS_SECTION_AUTHORITY;
    return DNS_SECTION_ADDITIONAL;
}

static int check_rr(const struct dns_msg *m, size_t *pos, unsigned index, const char **why)
{
    char scratch[DNS_NAME_TEXT_MAX + 1];
    struct dns_rr rr;
    size_t name_end;
    if (*pos >= m->len) {
        *why = "section counts larger than the data";
        return -1;
    }
    if (dns_name_at(m, *pos, scratch, &name_end, why) < 0)
        return -1;
    rr.name_off = *pos;
    rr.section = section_of(m, index);
    if (read_rr_fixed(m, name_end, &rr, why) < 0)
        return -1;
    if (check_rdata(m, &rr, why) < 0)
        return -1;
    *pos = rr.rdata_off + rr.rdlength;
    return 0;
}

static int parse_question(struct dns_msg *m, size_t *pos, const char **why)
{
    m->qname[0] = '\0';
    m->qtype = m->qclass = 0;
    if (m->qdcount == 0)
        return 0;
    if (m->qdcount > 1) {
        *why = "more than one question";
        return -1;
    }
    if (dns_name_at(m, *pos, m->qname, pos, why) < 0)
        return -1;
    if (!need(m, *pos, 4)) {
        *why = "question runs past the end";
        return -1;
    }
    m->qtype = dns_get16(m, *pos);
    m->qclass = dns_get16(m, *pos + 2);
    *pos += 4;
    return 0;
}

int dns_msg_parse(struct dns_msg *m, const void *p, size_t len, const char **why)
{
    memset(m, 0, sizeof(*m));
    m->p = p;
    m->len = len;
    if (len < DNS_HEADER_SIZE) {
        *why = "shorter than a DNS header";
        return -1;
    }
    m->id = dns_get16(m, 0);
    m->flags = dns_get16(m, 2);
    m->qdcount = dns_get16(m, 4);
    m->ancount = dns_get16(m, 6);
    m->nscount = dns_get16(m, 8);
    m->arcount = dns_get16(m, 10);
    size_t pos = DNS_HEADER_SIZE;
    if (parse_question(m, &pos, why) < 0)
        return -1;
    m->rr_start = pos;
    unsigned total = (unsigned)m->ancount + m->nscount + m->arcount;
    for (unsigned i = 0; i < total; i++)
        if (check_rr(m, &pos, i, why) < 0)
            return -1;
    if (pos != len) {
        *why = "bytes after the last record";
        return -1;
    }
    return 0;
}

void dns_rr_iter_init(const struct dns_msg *m, struct dns_rr_iter *it)
{
    it->off = m->rr_start;
    it->index = 0;
}

/* The end of a name already checked by dns_msg_parse(): labels up to the
 * root or the first pointer. */
static size_t skip_checked_name(const struct dns_msg *m, size_t pos)
{
    while (m->p[pos] != 0) {
        if ((m->p[pos] & 0xc0) == 0xc0)
            return pos + 2;
        pos += 1 + (size_t)m->p[pos];
    }
    return pos + 1;
}

int dns_rr_next(const struct dns_msg *m, struct dns_rr_iter *it, struct dns_rr *rr)
{
    const char *why;
    if (it->index >= (unsigned)m->ancount + m->nscount + m->arcount)
        return 0;
    rr->name_off = it->off;
    rr->section = section_of(m, it->index);
    if (read_rr_fixed(m, skip_checked_name(m, it->off), rr, &why) < 0)
        return 0;
    it->off = rr->rdata_off + rr->rdlength;
    it->index++;
    return 1;
}
