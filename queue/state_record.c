/*
 * state_record — encoding and decoding of the state side's record payloads
 * (state_record.h). Decoding never trusts a byte: every length is checked
 * against what is left, every count against the bytes that could hold it,
 * every id against queue.h's alphabet.
 * Must never: read past a payload, allocate from an unchecked count.
 */
#include "state_record.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "queue_impl.h" /* qf_put_u32/u64, qf_get_u32/u64_at */

#define META_SIZE (4 + 8 + 8)
#define RCPT_MIN (1 + 4 + 8 + 8 + 4 + 4 + 4)

/* A reading position in one payload; bad is sticky (as ipc_reader's error). */
struct rd {
    const unsigned char *p;
    size_t left;
    int bad;
};

static const unsigned char *rd_take(struct rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

static uint8_t rd_u8(struct rd *r)
{
    const unsigned char *at = rd_take(r, 1);
    return at ? at[0] : 0;
}

static uint32_t rd_u32(struct rd *r)
{
    const unsigned char *at = rd_take(r, 4);
    return at ? qf_get_u32_at(at) : 0;
}

static int64_t rd_time(struct rd *r)
{
    const unsigned char *at = rd_take(r, 8);
    uint64_t v = at ? qf_get_u64_at(at) : 0;
    if (v > INT64_MAX)
        r->bad = 1;
    return (int64_t)v;
}

static const char *rd_str(struct rd *r, size_t max, size_t *len)
{
    uint32_t n = rd_u32(r);
    if (n > max)
        r->bad = 1;
    const unsigned char *at = rd_take(r, r->bad ? 0 : n);
    *len = r->bad ? 0 : n;
    return r->bad ? NULL : (const char *)at;
}

/* An id of exactly the given form into out; msgid_or_fid: either is fine. */
static void rd_id(struct rd *r, char *out, int want_msgid, int either)
{
    size_t n;
    const char *s = rd_str(r, QUEUE_ID_LEN, &n);
    out[0] = '\0';
    if (r->bad)
        return;
    memcpy(out, s, n);
    out[n] = '\0';
    int is_msg = n == QUEUE_ID_LEN && queue_id_valid(out);
    int is_file = n == QUEUE_FILE_ID_LEN && queue_file_id_valid(out);
    if (either ? !(is_msg || is_file) : want_msgid ? !is_msg : !is_file)
        r->bad = 1;
}

static void rd_text(struct rd *r, struct srec *out)
{
    out->text = rd_str(r, QUEUE_TEXT_MAX, &out->text_len);
}

static void decode_file(struct rd *r, struct srec *out)
{
    rd_id(r, out->id, 0, 0);
    out->place = rd_u8(r);
    out->nmsg = rd_u32(r);
    if (out->place > 1 || out->nmsg == 0 || out->nmsg > SREC_MSGS_MAX ||
        out->nmsg > r->left / META_SIZE || r->bad) {
        r->bad = 1;
        return;
    }
    out->msgs = xcalloc(out->nmsg, sizeof(*out->msgs));
    for (uint32_t i = 0; i < out->nmsg; i++) {
        out->msgs[i].nrcpt = rd_u32(r);
        out->msgs[i].arrival_us = (uint64_t)rd_time(r);
        out->msgs[i].size = (uint64_t)rd_time(r);
        if (out->msgs[i].nrcpt == 0 || out->msgs[i].nrcpt > SREC_RCPTS_MAX)
            r->bad = 1;
    }
}

static void decode_message(struct rd *r, struct srec *out)
{
    rd_id(r, out->id, 1, 0);
    out->held = rd_u8(r);
    out->deleted = rd_u8(r);
    out->bits = rd_u32(r);
    out->nrcpt = rd_u32(r);
    if (out->held > 1 || out->deleted > 1 || out->nrcpt == 0 || out->nrcpt > SREC_RCPTS_MAX ||
        out->nrcpt > r->left / RCPT_MIN || r->bad) {
        r->bad = 1;
        return;
    }
    out->rcpts = xcalloc(out->nrcpt, sizeof(*out->rcpts));
    for (uint32_t i = 0; i < out->nrcpt && !r->bad; i++) {
        struct srec_rcpt *x = &out->rcpts[i];
        x->state = rd_u8(r);
        x->attempts = rd_u32(r);
        x->last_try = rd_time(r);
        x->next_try = rd_time(r);
        x->flags = rd_u32(r);
        x->reason = rd_str(r, QUEUE_TEXT_MAX, &x->reason_len);
        x->route = rd_str(r, QUEUE_TEXT_MAX, &x->route_len);
        if (x->state > 3)
            r->bad = 1;
    }
}

static void decode_small(unsigned type, struct rd *r, struct srec *out)
{
    switch (type) {
    case SREC_DELIVERED:
    case SREC_BOUNCED:
    case SREC_DEFERRED:
    case SREC_RETRY_NOW:
    case SREC_SUSPENDED:
        rd_id(r, out->id, 1, 0);
        out->rcpt = rd_u32(r);
        out->time = rd_time(r);
        if (type == SREC_DEFERRED || type == SREC_SUSPENDED)
            out->next_try = rd_time(r);
        rd_text(r, out);
        break;
    case SREC_HOLD:
    case SREC_RELEASE:
    case SREC_DELETE:
        rd_id(r, out->id, 1, 0);
        out->time = rd_time(r);
        if (type == SREC_DELETE)
            rd_text(r, out);
        break;
    case SREC_FLAGS:
        rd_id(r, out->id, 1, 0);
        out->rcpt = rd_u32(r);
        out->bits = rd_u32(r);
        break;
    case SREC_ROUTE:
        rd_id(r, out->id, 1, 0);
        out->rcpt = rd_u32(r);
        rd_text(r, out);
        break;
    case SREC_CLEAN_NEED:
    case SREC_CLEAN_DONE:
        out->kind = rd_u8(r);
        rd_id(r, out->id, 0, 1);
        if (type == SREC_CLEAN_NEED)
            rd_text(r, out);
        else
            out->err = rd_u32(r);
        break;
    default:
        r->bad = 1;
    }
}

int srec_decode(unsigned type, const unsigned char *p, size_t len, struct srec *out)
{
    struct rd r = {p, len, 0};
    memset(out, 0, sizeof(*out));
    out->type = (enum state_rec_type)type;
    if (type == SREC_FILE)
        decode_file(&r, out);
    else if (type == SREC_MESSAGE)
        decode_message(&r, out);
    else
        decode_small(type, &r, out);
    if (r.bad || r.left != 0) {
        srec_free(out);
        return -1;
    }
    return 0;
}

void srec_free(struct srec *r)
{
    free(r->msgs);
    free(r->rcpts);
    r->msgs = NULL;
    r->rcpts = NULL;
}

/* --------------------------------------------------------- encoding ---- */

void srec_put_str(struct buf *out, const char *s, size_t n)
{
    if (n > QUEUE_TEXT_MAX)
        n = QUEUE_TEXT_MAX; /* longer texts are cut (queue.h QUEUE_TEXT_MAX) */
    qf_put_str(out, s ? s : "", s ? n : 0);
}

static void put_cstr(struct buf *out, const char *s)
{
    srec_put_str(out, s, s ? strlen(s) : 0);
}

void srec_put_outcome(struct buf *out, const char *msgid, uint32_t rcpt, int64_t time,
                      int64_t next_try, int deferred, const char *text)
{
    put_cstr(out, msgid);
    qf_put_u32(out, rcpt);
    qf_put_u64(out, (uint64_t)time);
    if (deferred)
        qf_put_u64(out, (uint64_t)next_try);
    put_cstr(out, text);
}

void srec_put_msg_time(struct buf *out, const char *msgid, int64_t time, const char *who)
{
    put_cstr(out, msgid);
    qf_put_u64(out, (uint64_t)time);
    if (who)
        put_cstr(out, who);
}

void srec_put_flags(struct buf *out, const char *msgid, uint32_t rcpt, uint32_t bits)
{
    put_cstr(out, msgid);
    qf_put_u32(out, rcpt);
    qf_put_u32(out, bits);
}

void srec_put_route(struct buf *out, const char *msgid, uint32_t rcpt, const char *route)
{
    put_cstr(out, msgid);
    qf_put_u32(out, rcpt);
    put_cstr(out, route);
}

void srec_put_clean(struct buf *out, int kind, const char *id, const char *why, int done,
                    uint32_t err)
{
    buf_addc(out, (char)kind);
    put_cstr(out, id);
    if (done)
        qf_put_u32(out, err);
    else
        put_cstr(out, why);
}
