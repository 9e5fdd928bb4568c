/*
 * dnsproto — encode and decode the DNS cache protocol. See dnsproto.h for
 * the records. Decoders check every field through the codec (ipc.h), bound
 * every count by the fields really present before allocating, and refuse
 * address lists that are not whole addresses.
 */
#include "dnsproto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

#define HOST_FIELDS 7
#define HEAD_FIELDS 9

const char *dnsp_qtype_name(uint32_t qtype)
{
    switch (qtype) {
    case DNSP_QTYPE_A:
        return "A";
    case DNSP_QTYPE_AAAA:
        return "AAAA";
    case DNSP_QTYPE_MX:
        return "MX";
    case DNSP_QTYPE_ROUTE:
        return "ROUTE";
    case DNSP_QTYPE_ADDR:
        return "ADDR";
    case DNSP_QTYPE_RDNS:
        return "RDNS";
    default:
        return "?";
    }
}

uint32_t dnsp_qtype_parse(const char *s)
{
    static const uint32_t types[] = {DNSP_QTYPE_A,     DNSP_QTYPE_AAAA, DNSP_QTYPE_MX,
                                     DNSP_QTYPE_ROUTE, DNSP_QTYPE_ADDR, DNSP_QTYPE_RDNS};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(s, dnsp_qtype_name(types[i])) == 0)
            return types[i];
    return 0;
}

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_STATUS_OK:
        return "ok";
    case DNS_STATUS_NODATA:
        return "nodata";
    case DNS_STATUS_NXDOMAIN:
        return "nxdomain";
    case DNS_STATUS_NULLMX:
        return "null-mx";
    case DNS_STATUS_TEMPFAIL:
        return "tempfail";
    case DNS_STATUS_INVALID:
        return "invalid";
    }
    return "invalid";
}

void dnsp_reverse_name(int family, const unsigned char *addr, struct buf *out)
{
    static const char hex[] = "0123456789abcdef";
    if (family == 4) {
        buf_printf(out, "%u.%u.%u.%u.in-addr.arpa", addr[3], addr[2], addr[1], addr[0]);
        return;
    }
    for (int i = 15; i >= 0; i--)
        buf_printf(out, "%c.%c.", hex[addr[i] & 15], hex[addr[i] >> 4]);
    buf_adds(out, "ip6.arpa");
}

/* One decimal label of in-addr.arpa: 0..255 without leading zeros. */
static const char *reverse_octet(const char *s, unsigned char *octet)
{
    unsigned v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9' && n < 4; n++)
        v = v * 10 + (unsigned)(s[n] - '0');
    if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0') || s[n] != '.')
        return NULL;
    *octet = (unsigned char)v;
    return s + n + 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int dnsp_reverse_parse(const char *name, int *family, unsigned char addr[16])
{
    const char *s = name;
    for (int i = 3; i >= 0 && s; i--)
        s = reverse_octet(s, &addr[i]);
    if (s && strcmp(s, "in-addr.arpa") == 0) {
        *family = 4;
        return 0;
    }
    s = name;
    memset(addr, 0, 16);
    for (int i = 0; i < 32; i++, s += 2) {
        int v = hex_value(s[0]);
        if (v < 0 || s[1] != '.')
            return -1;
        addr[15 - i / 2] |= (unsigned char)(i % 2 ? v << 4 : v);
    }
    if (strcmp(s, "ip6.arpa") != 0)
        return -1;
    *family = 6;
    return 0;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int dnsp_name_normalize(char *name, const char **why)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    if (n == 0 || n > DNSP_NAME_MAX) {
        *why = n ? "name longer than 253 characters" : "empty name";
        return -1;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] - 'A' + 'a');
        if (name[i] == '.') {
            if (label == 0) {
                *why = "empty label in name";
                return -1;
            }
            label = 0;
        } else if (!name_char(name[i])) {
            *why = "name has a character other than letters, digits, '-', '_' and '.'";
            return -1;
        } else if (++label > 63) {
            *why = "label longer than 63 characters";
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ encoding ---- */

void dnsp_put_lookup(struct buf *out, uint32_t id, uint32_t qtype, const char *name)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_LOOKUP);
    ipc_add_u32(&w, id);
    ipc_add_u32(&w, qtype);
    ipc_add_str(&w, name);
    ipc_finish(&w);
}

void dnsp_put_dump(struct buf *out, uint32_t what)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_DUMP);
    ipc_add_u32(&w, what);
    ipc_finish(&w);
}

void dnsp_put_flush(struct buf *out, const char *name)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_FLUSH);
    ipc_add_str(&w, name);
    ipc_finish(&w);
}

void dnsp_put_counter(struct buf *out, const char *name, uint64_t value)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_COUNTER);
    ipc_add_str(&w, name);
    ipc_add_u64(&w, value);
    ipc_finish(&w);
}

void dnsp_put_end(struct buf *out, uint32_t count)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_END);
    ipc_add_u32(&w, count);
    ipc_finish(&w);
}

void dnsp_put_flushed(struct buf *out, uint64_t removed)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_FLUSHED);
    ipc_add_u64(&w, removed);
    ipc_finish(&w);
}

void dnsp_put_error(struct buf *out, const char *text)
{
    struct ipc_writer w;
    ipc_begin(&w, out, DNSP_ERROR);
    ipc_add_str(&w, text);
    ipc_finish(&w);
}

void dnsp_answer_begin(struct ipc_writer *w, struct buf *out, uint16_t record,
                       const struct dnsp_answer *head)
{
    ipc_begin(w, out, record);
    ipc_add_u32(w, head->id);
    ipc_add_u32(w, head->qtype);
    ipc_add_str(w, head->name ? head->name : "");
    ipc_add_str(w, head->canon ? head->canon : "");
    ipc_add_u32(w, (uint32_t)head->status);
    ipc_add_str(w, head->reason ? head->reason : "");
    ipc_add_u32(w, head->ttl);
    ipc_add_u32(w, head->flags);
    ipc_add_u32(w, (uint32_t)head->nhosts);
}

void dnsp_answer_add_host(struct ipc_writer *w, const struct dnsp_host *h)
{
    ipc_add_u32(w, h->pref);
    ipc_add_str(w, h->name ? h->name : "");
    ipc_add_u32(w, (uint32_t)h->status);
    ipc_add_str(w, h->reason ? h->reason : "");
    ipc_add_u32(w, h->ttl);
    ipc_add_bytes(w, h->v4, h->nv4 * 4);
    ipc_add_bytes(w, h->v6, h->nv6 * 16);
}

/* The same bytes as dnsp_answer_begin() + dnsp_answer_add_host() +
 * ipc_finish(), written after one reservation: answers are the hot path of
 * the cache (one per lookup). Sizes are measured first; anything the
 * generic writer would refuse (too many fields, too long a record) goes
 * through it, so its checks still apply. */
static void put_be32_at(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static unsigned char *put_u32_field(unsigned char *p, uint32_t v)
{
    p[0] = IPC_U32;
    put_be32_at(p + 1, v);
    return p + 5;
}

static unsigned char *put_counted_field(unsigned char *p, enum ipc_tag tag, const void *data,
                                        size_t n)
{
    p[0] = (unsigned char)tag;
    put_be32_at(p + 1, (uint32_t)n);
    if (n)
        memcpy(p + 5, data, n);
    return p + 5 + n;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Bytes of the answer's record; 0 when the generic writer must judge it. */
static size_t answer_size(const struct dnsp_answer *a)
{
    size_t n = IPC_HEADER_SIZE + HEAD_FIELDS * 5 + strlen(or_empty(a->name)) +
               strlen(or_empty(a->canon)) + strlen(or_empty(a->reason));
    if (a->nhosts > (UINT16_MAX - 1 - HEAD_FIELDS) / HOST_FIELDS)
        return 0;
    for (size_t i = 0; i < a->nhosts; i++) {
        const struct dnsp_host *h = &a->hosts[i];
        if (h->nv4 > IPC_RECORD_MAX / 4 || h->nv6 > IPC_RECORD_MAX / 16)
            return 0;
        n += HOST_FIELDS * 5 + strlen(or_empty(h->name)) + strlen(or_empty(h->reason)) +
             h->nv4 * 4 + h->nv6 * 16;
        if (n > IPC_RECORD_MAX)
            return 0;
    }
    return n > IPC_RECORD_MAX ? 0 : n;
}

static unsigned char *put_host_fields(unsigned char *p, const struct dnsp_host *h)
{
    const char *name = or_empty(h->name), *reason = or_empty(h->reason);
    p = put_u32_field(p, h->pref);
    p = put_counted_field(p, IPC_STR, name, strlen(name));
    p = put_u32_field(p, (uint32_t)h->status);
    p = put_counted_field(p, IPC_STR, reason, strlen(reason));
    p = put_u32_field(p, h->ttl);
    p = put_counted_field(p, IPC_BYTES, h->v4, h->nv4 * 4);
    return put_counted_field(p, IPC_BYTES, h->v6, h->nv6 * 16);
}

void dnsp_put_answer(struct buf *out, uint16_t record, const struct dnsp_answer *a)
{
    size_t size = answer_size(a);
    if (size == 0) {
        struct ipc_writer w;
        dnsp_answer_begin(&w, out, record, a);
        for (size_t i = 0; i < a->nhosts; i++)
            dnsp_answer_add_host(&w, &a->hosts[i]);
        ipc_finish(&w);
        return;
    }
    const char *name = or_empty(a->name), *canon = or_empty(a->canon);
    const char *reason = or_empty(a->reason);
    size_t name_len = strlen(name), canon_len = canon == name ? name_len : strlen(canon);
    buf_reserve(out, size);
    unsigned char *p = (unsigned char *)out->s + out->len;
    size_t nfields = HEAD_FIELDS + HOST_FIELDS * a->nhosts;
    put_be32_at(p, (uint32_t)size);
    p[4] = (unsigned char)(record >> 8);
    p[5] = (unsigned char)record;
    p[6] = (unsigned char)(nfields >> 8);
    p[7] = (unsigned char)nfields;
    p += IPC_HEADER_SIZE;
    p = put_u32_field(p, a->id);
    p = put_u32_field(p, a->qtype);
    p = put_counted_field(p, IPC_STR, name, name_len);
    p = put_counted_field(p, IPC_STR, canon, canon_len);
    p = put_u32_field(p, (uint32_t)a->status);
    p = put_counted_field(p, IPC_STR, reason, strlen(reason));
    p = put_u32_field(p, a->ttl);
    p = put_u32_field(p, a->flags);
    p = put_u32_field(p, (uint32_t)a->nhosts);
    for (size_t i = 0; i < a->nhosts; i++)
        p = put_host_fields(p, &a->hosts[i]);
    out->len += size;
    out->s[out->len] = '\0';
}

/* ------------------------------------------------------------ decoding ---- */

uint16_t dnsp_record_type(const void *rec, size_t len)
{
    const unsigned char *p = rec;
    return len >= IPC_HEADER_SIZE ? (uint16_t)(p[4] << 8 | p[5]) : 0;
}

/* Open rec as a record of the wanted type. */
static int open_as(struct ipc_reader *r, const void *rec, size_t len, uint16_t want,
                   const char **why)
{
    if (ipc_open(r, rec, len) < 0) {
        *why = r->error;
        ipc_close(r);
        return -1;
    }
    if (r->type != want) {
        *why = "unexpected record type";
        ipc_close(r);
        return -1;
    }
    return 0;
}

/* ipc_end(), then close; rc is -1 if anything failed along the way. */
static int finish(struct ipc_reader *r, int rc, const char **why)
{
    if (rc == 0 && ipc_end(r) < 0)
        rc = -1;
    if (rc < 0)
        *why = r->error ? r->error : "bad field";
    ipc_close(r);
    return rc;
}

static int get_str_into(struct ipc_reader *r, size_t max, struct buf *out)
{
    const char *s;
    if (ipc_get_str(r, max, &s) < 0)
        return -1;
    buf_sets(out, s);
    return 0;
}

int dnsp_get_lookup(const void *rec, size_t len, uint32_t *id, uint32_t *qtype, struct buf *name,
                    const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_LOOKUP, why) < 0)
        return -1;
    int rc = ipc_get_u32(&r, id) < 0 || ipc_get_u32(&r, qtype) < 0 ||
                     get_str_into(&r, DNSP_NAME_MAX + 1, name) < 0
                 ? -1
                 : 0;
    return finish(&r, rc, why);
}

/* The one layout a well-formed LOOKUP has: header, u32, u32, str. */
static int lookup_fast(const unsigned char *p, size_t len, uint32_t *id, uint32_t *qtype,
                       char name[DNSP_NAME_MAX + 2])
{
    enum { ID = IPC_HEADER_SIZE, QTYPE = ID + 5, NAME = QTYPE + 5, TEXT = NAME + 5 };
    if (len < TEXT || dnsp_record_type(p, len) != DNSP_LOOKUP || p[6] != 0 || p[7] != 3 ||
        p[ID] != IPC_U32 || p[QTYPE] != IPC_U32 || p[NAME] != IPC_STR)
        return -1;
    size_t n = (size_t)p[NAME + 1] << 24 | (size_t)p[NAME + 2] << 16 | (size_t)p[NAME + 3] << 8 |
               p[NAME + 4];
    if (n > DNSP_NAME_MAX + 1 || TEXT + n != len ||
        ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) != len ||
        memchr(p + TEXT, '\0', n))
        return -1;
    *id = (uint32_t)p[ID + 1] << 24 | (uint32_t)p[ID + 2] << 16 | (uint32_t)p[ID + 3] << 8 |
          p[ID + 4];
    *qtype = (uint32_t)p[QTYPE + 1] << 24 | (uint32_t)p[QTYPE + 2] << 16 |
             (uint32_t)p[QTYPE + 3] << 8 | p[QTYPE + 4];
    memcpy(name, p + TEXT, n);
    name[n] = '\0';
    return 0;
}

int dnsp_get_lookup_name(const void *rec, size_t len, uint32_t *id, uint32_t *qtype,
                         char name[DNSP_NAME_MAX + 2], const char **why)
{
    if (lookup_fast(rec, len, id, qtype, name) == 0)
        return 0;
    /* Anything else: the generic decoder, for its verdict and its reason. */
    struct buf b = BUF_INIT;
    int rc = dnsp_get_lookup(rec, len, id, qtype, &b, why);
    if (rc == 0) {
        memcpy(name, buf_cstr(&b), b.len);
        name[b.len] = '\0';
    }
    buf_free(&b);
    return rc;
}

int dnsp_get_dump(const void *rec, size_t len, uint32_t *what, const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_DUMP, why) < 0)
        return -1;
    return finish(&r, ipc_get_u32(&r, what), why);
}

int dnsp_get_flush(const void *rec, size_t len, struct buf *name, const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_FLUSH, why) < 0)
        return -1;
    return finish(&r, get_str_into(&r, DNSP_NAME_MAX + 1, name), why);
}

int dnsp_get_counter(const void *rec, size_t len, struct buf *name, uint64_t *value,
                     const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_COUNTER, why) < 0)
        return -1;
    int rc = get_str_into(&r, 128, name) < 0 || ipc_get_u64(&r, value) < 0 ? -1 : 0;
    return finish(&r, rc, why);
}

int dnsp_get_end(const void *rec, size_t len, uint32_t *count, const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_END, why) < 0)
        return -1;
    return finish(&r, ipc_get_u32(&r, count), why);
}

int dnsp_get_flushed(const void *rec, size_t len, uint64_t *removed, const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_FLUSHED, why) < 0)
        return -1;
    return finish(&r, ipc_get_u64(&r, removed), why);
}

int dnsp_get_error(const void *rec, size_t len, struct buf *text, const char **why)
{
    struct ipc_reader r;
    if (open_as(&r, rec, len, DNSP_ERROR, why) < 0)
        return -1;
    return finish(&r, get_str_into(&r, DNSP_TEXT_MAX, text), why);
}

static int get_status(struct ipc_reader *r, enum dns_status *out)
{
    uint32_t v;
    if (ipc_get_u32(r, &v) < 0)
        return -1;
    if (v > DNS_STATUS_INVALID) {
        r->error = r->error ? r->error : "unknown DNS status";
        return -1;
    }
    *out = (enum dns_status)v;
    return 0;
}

static int get_dup(struct ipc_reader *r, size_t max, char **out)
{
    const char *s;
    if (ipc_get_str(r, max, &s) < 0)
        return -1;
    *out = xstrdup(s);
    return 0;
}

/* n addresses of `size` bytes each, copied. */
static int get_addrs(struct ipc_reader *r, size_t size, unsigned char **out, size_t *n)
{
    const void *p;
    size_t len;
    if (ipc_get_bytes(r, DNSP_ANSWER_MAX, &p, &len) < 0)
        return -1;
    if (len % size != 0) {
        r->error = r->error ? r->error : "address list of partial addresses";
        return -1;
    }
    *n = len / size;
    *out = len ? xmalloc(len) : NULL;
    if (len)
        memcpy(*out, p, len);
    return 0;
}

static int get_host(struct ipc_reader *r, struct dnsp_host *h)
{
    if (ipc_get_u32(r, &h->pref) < 0 || get_dup(r, DNSP_HOST_MAX, &h->name) < 0 ||
        get_status(r, &h->status) < 0 || get_dup(r, DNSP_TEXT_MAX, &h->reason) < 0 ||
        ipc_get_u32(r, &h->ttl) < 0 || get_addrs(r, 4, &h->v4, &h->nv4) < 0 ||
        get_addrs(r, 16, &h->v6, &h->nv6) < 0)
        return -1;
    return 0;
}

static int get_head(struct ipc_reader *r, struct dnsp_answer *a, uint32_t *nhosts)
{
    if (ipc_get_u32(r, &a->id) < 0 || ipc_get_u32(r, &a->qtype) < 0 ||
        get_dup(r, DNSP_HOST_MAX, &a->name) < 0 || get_dup(r, DNSP_HOST_MAX, &a->canon) < 0 ||
        get_status(r, &a->status) < 0 || get_dup(r, DNSP_TEXT_MAX, &a->reason) < 0 ||
        ipc_get_u32(r, &a->ttl) < 0 || ipc_get_u32(r, &a->flags) < 0 || ipc_get_u32(r, nhosts) < 0)
        return -1;
    /* Allocate only for hosts whose fields are really in the record. */
    if (*nhosts > (uint32_t)(r->nfields - HEAD_FIELDS) / HOST_FIELDS) {
        r->error = "more hosts announced than present";
        return -1;
    }
    return 0;
}

int dnsp_get_answer(const void *rec, size_t len, struct dnsp_answer *a, const char **why)
{
    struct ipc_reader r;
    uint32_t nhosts = 0;
    memset(a, 0, sizeof(*a));
    uint16_t type = dnsp_record_type(rec, len);
    if (open_as(&r, rec, len, type == DNSP_ENTRY ? DNSP_ENTRY : DNSP_ANSWER, why) < 0)
        return -1;
    int rc = r.nfields < HEAD_FIELDS ? -1 : get_head(&r, a, &nhosts);
    if (rc == 0 && nhosts) {
        a->hosts = xcalloc(nhosts, sizeof(*a->hosts));
        for (; a->nhosts < nhosts && rc == 0; a->nhosts++)
            rc = get_host(&r, &a->hosts[a->nhosts]);
    }
    rc = finish(&r, rc, why);
    if (rc < 0)
        dnsp_answer_free(a);
    return rc;
}

void dnsp_answer_free(struct dnsp_answer *a)
{
    for (size_t i = 0; i < a->nhosts; i++) {
        free(a->hosts[i].name);
        free(a->hosts[i].reason);
        free(a->hosts[i].v4);
        free(a->hosts[i].v6);
    }
    free(a->hosts);
    free(a->name);
    free(a->canon);
    free(a->reason);
    memset(a, 0, sizeof(*a));
}
