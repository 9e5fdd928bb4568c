/*
 * queue_format — the bytes of a queue file (queue.h "file format"): the
 * header, the envelope records and (formats 1 and 2) the state log, encoded
 * and decoded, and the checks a reader makes against them: the file id of a
 * format 3 header against the file's name, a message's content against the
 * CRC-32C its 'M' record carries.
 *
 * Decoding never trusts a byte: every length is checked against what is
 * there before it is used, every count against the bytes that could hold it
 * (so a forged count cannot make us allocate gigabytes), every offset against
 * the file's own layout. Strings with control characters are refused in the
 * envelope (they end up in SMTP commands and log lines) and replaced by '?'
 * in state log texts (those come from remote servers).
 * Must never: read past a buffer, allocate from an unchecked count, or abort
 * on bad input.
 */
#include "queue_impl.h"

#include <pthread.h>
#include <string.h>

#include "mem.h"

/* Smallest encodings, used to bound counts by the bytes available. */
#define MIN_RCPT_RECORD (5 + 3 * 4)
#define MIN_ATTR_RECORD (5 + 2 * 4)
#define LOG_OVERHEAD 9 /* type, length, CRC */

/* ------------------------------------------------------------ CRC-32C ---- */
/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): with the SSE4.2
 * crc32 instruction, 8 bytes a step, where the CPU has it (cpuid, once);
 * else a table, 8 bytes a step (slicing by 8). Both give the same values:
 * every message's content is summed on commit and again on each read, so
 * a byte-at-a-time table was the injector's largest user-space cost. */
static uint32_t crc_table[8][256];
static int crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define CRC_HW_POSSIBLE 1
static int cpu_has_sse42(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *s,
                                                            size_t n)
{
    unsigned long long c = crc;
    for (; n && ((uintptr_t)s & 7); n--)
        c = __builtin_ia32_crc32qi((unsigned)c, *s++);
    for (; n >= 8; n -= 8, s += 8) {
        unsigned long long v;
        memcpy(&v, s, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    for (; n; n--)
        c = __builtin_ia32_crc32qi((unsigned)c, *s++);
    return (uint32_t)c;
}
#else
#define CRC_HW_POSSIBLE 0
#endif

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if CRC_HW_POSSIBLE
    crc_hw = cpu_has_sse42();
#endif
}

/* Slicing by 8: crc already inverted, returned inverted. */
static uint32_t crc_sliced(uint32_t crc, const unsigned char *s, size_t n)
{
    for (; n >= 8; n -= 8, s += 8) {
        uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
                             (uint32_t)s[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][s[4]] ^
              crc_table[2][s[5]] ^ crc_table[1][s[6]] ^ crc_table[0][s[7]];
    }
    for (; n; n--)
        crc = crc_table[0][(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return crc;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_table_init);
#if CRC_HW_POSSIBLE
    if (crc_hw)
        return ~crc_sse42(~crc, p, n);
#endif
    return ~crc_sliced(~crc, p, n);
}

uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_table_init);
    return ~crc_sliced(~crc, p, n);
}

/* A fuzz build accepts any checksum, so the fuzzer reaches the parsers
 * behind them (ONEHOP_FUZZING is defined only there). */
static int crc_ok(uint32_t stored, uint32_t computed)
{
#ifdef ONEHOP_FUZZING
    (void)stored;
    (void)computed;
    return 1;
#else
    return stored == computed;
#endif
}

int qf_crc_ok(uint32_t stored, uint32_t computed)
{
    return crc_ok(stored, computed);
}

/* ------------------------------------------------------ integer coding ---- */
void qf_put_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_add(b, x, 4);
}

void qf_put_u64(struct buf *b, uint64_t v)
{
    qf_put_u32(b, (uint32_t)(v >> 32));
    qf_put_u32(b, (uint32_t)v);
}

void qf_put_str(struct buf *b, const char *s, size_t n)
{
    qf_put_u32(b, (uint32_t)n);
    buf_add(b, s, n);
}

uint32_t qf_get_u32_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t qf_get_u64_at(const unsigned char *p)
{
    return (uint64_t)qf_get_u32_at(p) << 32 | qf_get_u32_at(p + 4);
}

static void put_u32_at(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_u64_at(unsigned char *p, uint64_t v)
{
    put_u32_at(p, (uint32_t)(v >> 32));
    put_u32_at(p + 4, (uint32_t)v);
}

/* -------------------------------------------------------------- cursor ---- */
struct cur {
    const unsigned char *p;
    size_t len, pos;
    int bad;
};

static int cur_have(struct cur *c, size_t n)
{
    if (c->bad || c->len - c->pos < n)
        c->bad = 1;
    return !c->bad;
}

static uint32_t cur_u32(struct cur *c)
{
    if (!cur_have(c, 4))
        return 0;
    c->pos += 4;
    return qf_get_u32_at(c->p + c->pos - 4);
}

static uint64_t cur_u64(struct cur *c)
{
    if (!cur_have(c, 8))
        return 0;
    c->pos += 8;
    return qf_get_u64_at(c->p + c->pos - 8);
}

enum str_mode { STR_STRICT, STR_SANITIZE };

/* A length-prefixed string, copied NUL-terminated; NULL (and c->bad) when
 * longer than max, past the end, or (STR_STRICT) holding a control byte. */
static char *cur_str(struct cur *c, size_t max, enum str_mode mode)
{
    uint32_t n = cur_u32(c);
    if (c->bad || n > max || !cur_have(c, n)) {
        c->bad = 1;
        return NULL;
    }
    char *s = xstrndup((const char *)c->p + c->pos, n);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != 0x7f)
            continue;
        if (mode == STR_STRICT) {
            free(s);
            c->bad = 1;
            return NULL;
        }
        s[i] = '?';
    }
    c->pos += n;
    return s;
}

static int cur_done(const struct cur *c)
{
    return !c->bad && c->pos == c->len;
}

/* -------------------------------------------------------------- header ---- */
/* Version 2: created_us at 40, header CRC at 48. Version 3: the file id at
 * 40..56 (checked against the name by every reader), header CRC at 56. */
#define V2_CRC_AT 48
#define V3_FID_AT 40
#define V3_CRC_AT 56

void qf_header_encode(const struct qf_header *h, unsigned char *out)
{
    memset(out, 0, QF_HEADER_SIZE);
    memcpy(out, h->version == 2 ? QF_MAGIC_V2 : QF_MAGIC, 8);
    put_u64_at(out + 8, h->env_off);
    put_u32_at(out + 16, h->env_len);
    put_u32_at(out + 20, h->env_crc);
    put_u64_at(out + 24, h->committed_len);
    put_u32_at(out + 32, h->nmsg);
    put_u32_at(out + 36, h->body_crc);
    if (h->version == 2) {
        put_u64_at(out + 40, h->created_us);
        put_u32_at(out + V2_CRC_AT, crc32c(0, out, V2_CRC_AT));
    } else {
        memcpy(out + V3_FID_AT, h->fid, QUEUE_FILE_ID_LEN);
        put_u32_at(out + V3_CRC_AT, crc32c(0, out, V3_CRC_AT));
    }
}

static int all_zero(const unsigned char *p, size_t n)
{
    while (n--)
        if (*p++)
            return 0;
    return 1;
}

static int header_version(const unsigned char *p)
{
    if (memcmp(p, QF_MAGIC, 8) == 0)
        return 3;
    if (memcmp(p, QF_MAGIC_V2, 8) == 0)
        return 2;
    return memcmp(p, QF_MAGIC_V1, 8) == 0 ? 1 : 0;
}

/* The version-dependent part: checksum, reserved bytes, file id or time. */
static int header_tail_decode(const unsigned char *p, struct qf_header *h, const char **why)
{
    size_t crc_at = h->version == 3 ? V3_CRC_AT : V2_CRC_AT;
    if (!crc_ok(qf_get_u32_at(p + crc_at), crc32c(0, p, crc_at)))
        return *why = "header checksum mismatch", -1;
    if ((h->version == 1 && !all_zero(p + 36, 4)) ||
        !all_zero(p + crc_at + 4, QF_HEADER_SIZE - crc_at - 4))
        return *why = "header reserved bytes not zero", -1;
    h->fid[0] = '\0';
    if (h->version != 3) {
        h->created_us = qf_get_u64_at(p + 40);
        return 0;
    }
    memcpy(h->fid, p + V3_FID_AT, QUEUE_FILE_ID_LEN);
    h->fid[QUEUE_FILE_ID_LEN] = '\0';
    if (strlen(h->fid) != QUEUE_FILE_ID_LEN || !queue_file_id_valid(h->fid) ||
        queue_id_time(h->fid, &h->created_us) != 0)
        return *why = "header file id malformed", -1;
    return 0;
}

int qf_header_decode(const unsigned char *p, size_t len, struct qf_header *h, const char **why)
{
    if (len < QF_HEADER_SIZE || (h->version = header_version(p)) == 0)
        return *why = "not a queue file (bad magic)", -1;
    if (header_tail_decode(p, h, why) != 0)
        return -1;
    h->body_crc = qf_get_u32_at(p + 36);
    h->env_off = qf_get_u64_at(p + 8);
    h->env_len = qf_get_u32_at(p + 16);
    h->env_crc = qf_get_u32_at(p + 20);
    h->committed_len = qf_get_u64_at(p + 24);
    h->nmsg = qf_get_u32_at(p + 32);
    if (h->env_off < QF_HEADER_SIZE || h->env_len > QF_ENVELOPE_MAX ||
        h->env_off > UINT64_MAX - h->env_len || h->committed_len != h->env_off + h->env_len)
        return *why = "header offsets inconsistent", -1;
    if (h->nmsg == 0 || h->nmsg > QUEUE_FILE_MSGS_MAX)
        return *why = "header message count out of range", -1;
    return 0;
}

int qf_header_names(const struct qf_header *h, const char *fid, const char **why)
{
    if (h->version == 3 && strcmp(h->fid, fid) != 0)
        return *why = "file id in the header does not match the file's name", -1;
    return 0;
}

/* ------------------------------------------------------------ envelope ---- */
void qf_env_record(struct buf *env, char type, const struct buf *payload)
{
    buf_addc(env, type);
    qf_put_u32(env, (uint32_t)payload->len);
    buf_add(env, payload->s, payload->len);
}

struct env_state {
    const struct qf_header *h;
    struct queue_file *f;
    struct queue_msg *open; /* message between 'M' and 'E', or NULL */
    size_t nmsg_done, nattr, nrcpt;
    uint64_t next_content; /* where the next message's content must start */
    size_t bytes_left;     /* envelope bytes after the current record */
};

static int attr_name_valid(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int env_msg(struct env_state *st, struct cur *c, const char **why)
{
    if (st->open || st->nmsg_done >= st->f->nmsg)
        return *why = "envelope message record out of place", -1;
    struct queue_msg *m = &st->f->msg[st->nmsg_done];
    uint32_t index = cur_u32(c);
    m->content_offset = cur_u64(c);
    m->size = cur_u64(c);
    m->content_crc = st->h->version == 3 ? cur_u32(c) : 0;
    m->arrival_us = cur_u64(c);
    uint32_t nrcpt = cur_u32(c), nattr = cur_u32(c);
    m->sender = cur_str(c, QF_STR_MAX, STR_STRICT);
    if (!cur_done(c))
        return *why = "envelope message record malformed", -1;
    if (index != st->nmsg_done || m->content_offset != st->next_content ||
        m->size > st->h->env_off - m->content_offset)
        return *why = "envelope message index or content range wrong", -1;
    if (nrcpt == 0 || nrcpt > QUEUE_RCPT_MAX || nrcpt > st->bytes_left / MIN_RCPT_RECORD ||
        nattr > QUEUE_ATTR_MAX || nattr > st->bytes_left / MIN_ATTR_RECORD)
        return *why = "envelope recipient or attribute count out of range", -1;
    m->index = index;
    queue_msg_id(st->f->fid, index, m->id);
    m->rcpt = xcalloc(nrcpt, sizeof(*m->rcpt));
    m->nrcpt = nrcpt;
    m->attr = nattr ? xcalloc(nattr, sizeof(*m->attr)) : NULL;
    m->nattr = nattr;
    st->next_content = m->content_offset + m->size;
    st->open = m;
    st->nattr = st->nrcpt = 0;
    return 0;
}

static int env_attr(struct env_state *st, struct cur *c, const char **why)
{
    if (!st->open || st->nattr >= st->open->nattr)
        return *why = "envelope attribute out of place", -1;
    struct queue_attr *a = &st->open->attr[st->nattr++];
    a->name = cur_str(c, QUEUE_ATTR_LEN_MAX, STR_STRICT);
    a->value = cur_str(c, QUEUE_ATTR_LEN_MAX, STR_STRICT);
    if (!cur_done(c) || !attr_name_valid(a->name))
        return *why = "envelope attribute malformed", -1;
    return 0;
}

static int env_rcpt(struct env_state *st, struct cur *c, const char **why)
{
    if (!st->open || st->nrcpt >= st->open->nrcpt)
        return *why = "envelope recipient out of place", -1;
    struct queue_rcpt *r = &st->open->rcpt[st->nrcpt++];
    r->addr = cur_str(c, QF_STR_MAX, STR_STRICT);
    r->orcpt = cur_str(c, QF_STR_MAX, STR_STRICT);
    r->notify = cur_str(c, QF_STR_MAX, STR_STRICT);
    if (!cur_done(c) || !r->addr[0])
        return *why = "envelope recipient malformed", -1;
    return 0;
}

static int env_end(struct env_state *st, struct cur *c, const char **why)
{
    if (!st->open || st->nrcpt != st->open->nrcpt || st->nattr != st->open->nattr || !cur_done(c))
        return *why = "envelope message end out of place", -1;
    st->open = NULL;
    st->nmsg_done++;
    return 0;
}

static int env_record(struct env_state *st, char type, struct cur *c, const char **why)
{
    switch (type) {
    case 'M':
        return env_msg(st, c, why);
    case 'A':
        return env_attr(st, c, why);
    case 'R':
        return env_rcpt(st, c, why);
    case 'E':
        return env_end(st, c, why);
    default:
        return *why = "envelope record of unknown type", -1;
    }
}

int qf_envelope_parse(const unsigned char *p, size_t len, const struct qf_header *h,
                      struct queue_file *f, const char **why)
{
    struct env_state st = {h, f, NULL, 0, 0, 0, QF_HEADER_SIZE, 0};
    f->msg = xcalloc(h->nmsg, sizeof(*f->msg));
    f->nmsg = h->nmsg;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 5)
            return *why = "envelope record cut short", -1;
        uint32_t rlen = qf_get_u32_at(p + pos + 1);
        if (rlen > len - pos - 5)
            return *why = "envelope record longer than the envelope", -1;
        struct cur c = {p + pos + 5, rlen, 0, 0};
        st.bytes_left = len - pos - 5 - rlen;
        if (env_record(&st, (char)p[pos], &c, why) != 0)
            return -1;
        pos += 5 + (size_t)rlen;
    }
    if (st.open || st.nmsg_done != h->nmsg)
        return *why = "envelope incomplete", -1;
    if (st.next_content != h->env_off)
        return *why = "content does not end where the envelope starts", -1;
    return 0;
}

/* ----------------------------------------------------------- state log ---- */
static int type_kind(char type, enum qf_log_kind *k)
{
    static const char types[] = "dbfhrxg";
    const char *p = type ? strchr(types, type) : NULL;
    if (!p)
        return -1;
    *k = (enum qf_log_kind)(p - types);
    return 0;
}

/* Decode one record payload into u; *text receives an allocated string. */
static int log_decode(char type, struct cur *c, struct qf_log_record *u, char **text)
{
    memset(u, 0, sizeof(*u));
    u->rcpt = QUEUE_NO_RCPT;
    *text = NULL;
    if (type_kind(type, &u->kind) != 0)
        return -1;
    u->msg = cur_u32(c);
    if (u->kind == QUPD_DELIVERED || u->kind == QUPD_BOUNCED || u->kind == QUPD_DEFERRED ||
        u->kind == QUPD_FLAGS)
        u->rcpt = cur_u32(c);
    if (u->kind == QUPD_FLAGS)
        u->flags = cur_u32(c);
    u->time = (int64_t)(cur_u64(c) & INT64_MAX);
    if (u->kind == QUPD_DEFERRED)
        u->next_try = (int64_t)(cur_u64(c) & INT64_MAX);
    if (u->kind <= QUPD_DEFERRED || u->kind == QUPD_DELETE)
        *text = cur_str(c, QF_LOG_RECORD_MAX, STR_SANITIZE);
    u->text = *text;
    return cur_done(c) ? 0 : -1;
}

int qf_update_valid(const struct queue_file *f, const struct qf_log_record *u)
{
    if (u->msg >= f->nmsg || (unsigned)u->kind > QUPD_FLAGS)
        return 0;
    const struct queue_msg *m = &f->msg[u->msg];
    switch (u->kind) {
    case QUPD_DELIVERED:
    case QUPD_BOUNCED:
    case QUPD_DEFERRED:
        return u->rcpt < m->nrcpt;
    case QUPD_FLAGS:
        return u->rcpt == QUEUE_NO_RCPT || u->rcpt < m->nrcpt;
    default:
        return 1;
    }
}

static void rcpt_result(struct queue_rcpt *r, const struct qf_log_record *u, int64_t t)
{
    if (r->state != QRCPT_PENDING)
        return; /* a final state sticks */
    r->attempts++;
    r->last_try = t;
    free(r->last_reason);
    r->last_reason = u->text ? xstrdup(u->text) : NULL;
    if (u->kind == QUPD_DEFERRED)
        r->next_try = u->next_try;
    else
        r->state = u->kind == QUPD_DELIVERED ? QRCPT_DELIVERED : QRCPT_BOUNCED;
}

void qf_apply(struct queue_file *f, const struct qf_log_record *u, int64_t now)
{
    struct queue_msg *m = &f->msg[u->msg];
    int64_t t = u->time > 0 ? u->time : now;
    switch (u->kind) {
    case QUPD_DELIVERED:
    case QUPD_BOUNCED:
    case QUPD_DEFERRED:
        rcpt_result(&m->rcpt[u->rcpt], u, t);
        break;
    case QUPD_HOLD:
        m->held = 1;
        break;
    case QUPD_RELEASE:
        m->held = 0;
        break;
    case QUPD_DELETE:
        m->deleted = 1;
        break;
    case QUPD_FLAGS:
        if (u->rcpt == QUEUE_NO_RCPT)
            m->flags |= u->flags;
        else
            m->rcpt[u->rcpt].flags |= u->flags;
        break;
    }
}

int qf_log_replay(const unsigned char *p, size_t len, struct queue_file *f, const char **why)
{
    size_t pos = 0;
    while (len - pos >= LOG_OVERHEAD) {
        uint32_t rlen = qf_get_u32_at(p + pos + 1);
        int whole = rlen <= QF_LOG_RECORD_MAX && rlen <= len - pos - LOG_OVERHEAD;
        if (!whole ||
            !crc_ok(qf_get_u32_at(p + pos + 5 + rlen), crc32c(0, p + pos, 5 + (size_t)rlen))) {
            /* A torn append (its writer died before fdatasync returned, so
             * nobody was told) lies within the last append, at most
             * QF_LOG_APPEND_MAX bytes. A bad record further from the end is
             * damage that would take the good records after it along. */
            if (len - pos > QF_LOG_APPEND_MAX)
                return *why = "state log record damaged before the end of the log", -1;
            break;
        }
        struct cur c = {p + pos + 5, rlen, 0, 0};
        struct qf_log_record u;
        char *text;
        int ok = log_decode((char)p[pos], &c, &u, &text) == 0 && qf_update_valid(f, &u);
        if (ok)
            qf_apply(f, &u, u.time);
        free(text);
        if (!ok)
            return *why = "state log record invalid", -1;
        pos += LOG_OVERHEAD + (size_t)rlen;
    }
    f->log_len = pos;
    f->torn_bytes = len - pos;
    return 0;
}

int qf_msg_finished(const struct queue_msg *m)
{
    if (m->deleted)
        return 1;
    for (size_t i = 0; i < m->nrcpt; i++)
        if (m->rcpt[i].state == QRCPT_PENDING)
            return 0;
    return 1;
}

int qf_file_finished(const struct queue_file *f)
{
    for (size_t i = 0; i < f->nmsg; i++)
        if (!qf_msg_finished(&f->msg[i]))
            return 0;
    return 1;
}
