/*
 * inject_txn — request decoding, envelope validation and content handling
 * of one injection transaction. See inject_txn.h.
 */
#include "inject_txn.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "addr.h"
#include "inject_proto.h"
#include "log.h"
#include "mem.h"

#define DSN_PARAM_MAX 500 /* ORCPT / NOTIFY text (RFC 3461 4.2: xtext, short) */

/* ---------------------------------------------------------------- decoding ---- */
static int decode_fields(struct ipc_reader *r, struct inj_request *q, const char **why)
{
    switch (q->type) {
    case INJ_BEGIN:
        return ipc_get_str(r, INJ_RECORD_MAX, &q->s1);
    case INJ_ATTR:
        if (ipc_get_str(r, INJ_RECORD_MAX, &q->s1) != 0)
            return -1;
        return ipc_get_str(r, INJ_RECORD_MAX, &q->s2);
    case INJ_RCPT:
        if (ipc_get_str(r, INJ_RECORD_MAX, &q->s1) != 0 ||
            ipc_get_str(r, INJ_RECORD_MAX, &q->s2) != 0)
            return -1;
        return ipc_get_str(r, INJ_RECORD_MAX, &q->s3);
    case INJ_DATA:
        return ipc_get_bytes(r, INJ_DATA_MAX, &q->data, &q->n);
    case INJ_END:
    case INJ_ABORT:
        return 0;
    default:
        *why = "unknown record type";
        return -1;
    }
}

int inj_request_decode(struct ipc_reader *r, const void *rec, size_t len, struct inj_request *out,
                       const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (ipc_open(r, rec, len) != 0) {
        *why = r->error;
        return -1;
    }
    out->type = r->type;
    if (ipc_get_u32(r, &out->txn) != 0 || decode_fields(r, out, why) != 0 || ipc_end(r) != 0) {
        if (!*why)
            *why = r->error ? r->error : "malformed record";
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- lifecycle ---- */
void inj_txn_init(struct inj_txn *t, uint32_t txn, uint64_t size_limit)
{
    memset(t, 0, sizeof(*t));
    t->txn = txn;
    t->status = INJ_EX_OK;
    msgcheck_init(&t->check, size_limit);
}

void inj_txn_free(struct inj_txn *t)
{
    for (size_t i = 0; i < t->nrcpt; i++) {
        free(t->rcpt[i]);
        free(t->orcpt[i]);
        free(t->notify[i]);
    }
    free(t->rcpt);
    free(t->orcpt);
    free(t->notify);
    for (size_t i = 0; i < t->nattr; i++) {
        free(t->attr[i].name);
        free(t->attr[i].value);
    }
    free(t->attr);
    free(t->sender);
    buf_free(&t->why);
    buf_free(&t->data);
    queue_writer_abort(t->w);
    t->w = NULL;
}

void inj_txn_fail(struct inj_txn *t, int status, const char *enhanced, const char *fmt, ...)
{
    if (t->status != INJ_EX_OK)
        return; /* the first failure is the one reported */
    va_list ap;
    va_start(ap, fmt);
    t->status = status;
    t->enhanced = enhanced;
    buf_clear(&t->why);
    buf_vprintf(&t->why, fmt, ap);
    va_end(ap);
    buf_free(&t->data); /* failed content is never written */
    queue_writer_abort(t->w);
    t->w = NULL;
}

int inj_txn_failed(const struct inj_txn *t)
{
    return t->status != INJ_EX_OK;
}

void inj_txn_commit_failed(struct inj_txn *t, int e)
{
    if (e == ENOSPC || e == EDQUOT)
        inj_txn_fail(t, INJ_EX_TEMPFAIL, "4.3.1", "insufficient system storage (%s)", strerror(e));
    else
        inj_txn_fail(t, INJ_EX_TEMPFAIL, "4.3.0", "queue file write error (%s)", strerror(e));
}

/* -------------------------------------------------------------- envelope ---- */
/* Printable text without control characters, at most max bytes. */
static int clean_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* Parse and normalise an address; NULL (failure recorded) if invalid. */
static char *checked_address(struct inj_txn *t, const char *s, unsigned flags, const char *code,
                             const char *what)
{
    struct mailaddr m;
    const char *why = "invalid";
    if (!clean_text(s, ADDR_PATH_MAX)) {
        inj_txn_fail(t, INJ_EX_DATAERR, code, "invalid %s address: too long or control characters",
                     what);
        return NULL;
    }
    if (addr_parse(s, strlen(s), flags, &m, &why) != 0) {
        inj_txn_fail(t, INJ_EX_DATAERR, code, "invalid %s address <%s>: %s", what, s, why);
        return NULL;
    }
    struct buf out = BUF_INIT;
    addr_format(&m, &out);
    addr_free(&m);
    return buf_steal(&out);
}

void inj_txn_sender(struct inj_txn *t, const char *sender)
{
    free(t->sender);
    t->sender = checked_address(t, sender, ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8, "5.1.7", "sender");
    if (!t->sender)
        t->sender = xstrdup("");
}

/* The attributes an injector may set (inject_proto.h). Others, such as the
 * "uid" onehop-queue records itself or what the router records later, can
 * never be forged by a caller of the set-uid onehop-queue. */
static int attr_name_ok(const char *s)
{
    static const char *const allowed[] = {"client", "client_address", "helo", "protocol",
                                          "auth",   "envid",          "ret",  "full_name"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcmp(s, allowed[i]) == 0)
            return 1;
    return 0;
}

void inj_txn_attr(struct inj_txn *t, const char *name, const char *value, int allow_uid)
{
    if (inj_txn_failed(t))
        return;
    if (t->nattr >= QUEUE_ATTR_MAX)
        return inj_txn_fail(t, INJ_EX_DATAERR, "5.5.4", "too many envelope attributes");
    int name_ok = allow_uid ? strcmp(name, "uid") == 0 || attr_name_ok(name) : attr_name_ok(name);
    if (!name_ok || !clean_text(value, QUEUE_ATTR_LEN_MAX))
        return inj_txn_fail(t, INJ_EX_DATAERR, "5.5.4", "invalid envelope attribute");
    t->attr = xgrow(t->attr, &t->attr_cap, t->nattr + 1, sizeof(*t->attr));
    t->attr[t->nattr].name = xstrdup(name);
    t->attr[t->nattr].value = xstrdup(value);
    t->nattr++;
}

void inj_txn_rcpt(struct inj_txn *t, const char *addr, const char *orcpt, const char *notify)
{
    t->nrcpt_asked++;
    if (inj_txn_failed(t))
        return;
    if (t->nrcpt >= QUEUE_RCPT_MAX)
        return inj_txn_fail(t, INJ_EX_DATAERR, "5.5.3", "too many recipients (the limit is %d)",
                            QUEUE_RCPT_MAX);
    if (!clean_text(orcpt, DSN_PARAM_MAX) || !clean_text(notify, DSN_PARAM_MAX))
        return inj_txn_fail(t, INJ_EX_DATAERR, "5.5.4", "invalid DSN parameter");
    char *a = checked_address(t, addr, ADDR_ALLOW_UTF8, "5.1.3", "recipient");
    if (!a)
        return;
    size_t cap = t->rcpt_cap;
    t->rcpt = xgrow(t->rcpt, &cap, t->nrcpt + 1, sizeof(*t->rcpt));
    cap = t->rcpt_cap;
    t->orcpt = xgrow(t->orcpt, &cap, t->nrcpt + 1, sizeof(*t->orcpt));
    t->notify = xgrow(t->notify, &t->rcpt_cap, t->nrcpt + 1, sizeof(*t->notify));
    t->rcpt[t->nrcpt] = a;
    t->orcpt[t->nrcpt] = xstrdup(orcpt);
    t->notify[t->nrcpt] = xstrdup(notify);
    t->nrcpt++;
}

/* --------------------------------------------------------------- content ---- */
static void flush_to_writer(struct inj_txn *t)
{
    if (!t->w || t->data.len == 0)
        return;
    if (queue_writer_data(t->w, t->data.s, t->data.len) != 0)
        inj_txn_commit_failed(t, errno);
    else
        buf_clear(&t->data);
}

void inj_txn_data(struct inj_txn *t, const void *p, size_t n)
{
    if (inj_txn_failed(t))
        return;
    if (msgcheck_feed(&t->check, p, n, &t->data) != 0)
        return inj_txn_fail(t, INJ_EX_DATAERR, t->check.enhanced, "%s", t->check.why);
    flush_to_writer(t);
}

void inj_txn_end(struct inj_txn *t)
{
    if (inj_txn_failed(t))
        return;
    if (msgcheck_finish(&t->check, &t->data) != 0)
        return inj_txn_fail(t, INJ_EX_DATAERR, t->check.enhanced, "%s", t->check.why);
    if (t->nrcpt == 0)
        return inj_txn_fail(t, INJ_EX_DATAERR, "5.5.1", "no recipients");
    flush_to_writer(t);
}

void inj_txn_spill(struct inj_txn *t, struct queue *q)
{
    if (inj_txn_failed(t) || t->w)
        return;
    if (queue_writer_begin(q, &t->w) != 0) {
        t->w = NULL;
        return inj_txn_commit_failed(t, errno);
    }
    flush_to_writer(t);
}

int inj_txn_commit(struct inj_txn *t, char *id)
{
    struct queue_envelope env;
    char fid[QUEUE_FILE_ID_LEN + 1];
    unsigned index;
    struct queue_writer *w = t->w;
    t->w = NULL; /* freed by the commit or the abort, whatever happens */
    inj_txn_envelope(t, &env);
    if (queue_writer_end_msg(w, &env, &index) != 0) {
        int e = errno;
        queue_writer_abort(w);
        errno = e;
        return -1;
    }
    if (queue_writer_commit(w, fid) != 0)
        return -1;
    queue_msg_id(fid, index, id);
    return 0;
}

void inj_txn_envelope(const struct inj_txn *t, struct queue_envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->sender = t->sender ? t->sender : "";
    env->rcpt = (const char *const *)t->rcpt;
    env->rcpt_orcpt = (const char *const *)t->orcpt;
    env->rcpt_notify = (const char *const *)t->notify;
    env->nrcpt = t->nrcpt;
    env->attr = t->attr;
    env->nattr = t->nattr;
}

uint64_t inj_txn_size(const struct inj_txn *t)
{
    return t->check.size;
}

/* --------------------------------------------------------------- replies ---- */
void inj_reply_ok(struct buf *out, uint32_t txn, const char *id)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_OK);
    ipc_add_u32(&w, txn);
    ipc_add_str(&w, id);
    ipc_finish(&w);
}

void inj_reply_fail(struct buf *out, const struct inj_txn *t)
{
    struct ipc_writer w;
    ipc_begin(&w, out, INJ_FAIL);
    ipc_add_u32(&w, t->txn);
    ipc_add_u32(&w, (uint32_t)t->status);
    ipc_add_str(&w, t->enhanced ? t->enhanced : "4.3.0");
    ipc_add_str(&w, t->why.len ? buf_cstr((struct buf *)&t->why) : "failed");
    ipc_finish(&w);
}

void inj_log_reject(const struct inj_txn *t)
{
    log_info("reject: from=<%s>, nrcpt=%zu: %s %s", t->sender ? t->sender : "", t->nrcpt_asked,
             t->enhanced ? t->enhanced : "", buf_cstr((struct buf *)&t->why));
}
