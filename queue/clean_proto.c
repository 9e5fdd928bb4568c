/*
 * clean_proto — the records of the router-to-cleaner channel
 * (clean_proto.h): building requests and replies, and reading them back
 * with ipc.h's checked reader.
 *
 * The decoders check the record type against the side it comes from and
 * read exactly the fields that type has; anything else (an unknown type, a
 * missing or extra field, a string over its limit) is a protocol violation
 * and the caller closes the channel. They do not judge an id's form: that
 * is the cleaner's first step on every request (CLEAN_ERR EINVAL).
 * Must never: read past the record, or accept one with bytes left over.
 */
#include "clean_proto.h"

#include <string.h>

#include "queue.h"

/* Longest id field accepted by the decoder: a message id; anything longer
 * is refused by the cleaner anyway, so a little slack costs nothing. */
#define CLEAN_ID_FIELD_MAX (QUEUE_ID_LEN + 16)

/* A text field, cut to CLEAN_WHY_MAX bytes. */
static void add_text(struct ipc_writer *w, const char *s)
{
    size_t n = strlen(s);
    if (n <= CLEAN_WHY_MAX) {
        ipc_add_str(w, s);
        return;
    }
    struct buf cut = BUF_INIT;
    buf_add(&cut, s, CLEAN_WHY_MAX);
    ipc_add_str(w, buf_cstr(&cut));
    buf_free(&cut);
}

void clean_request_encode(struct buf *out, enum clean_type type, const char *id, const char *why)
{
    struct ipc_writer w;
    ipc_begin(&w, out, (uint16_t)type);
    if (type != CLEAN_RECOVER)
        ipc_add_str(&w, id ? id : "");
    if (type == CLEAN_QUARANTINE)
        add_text(&w, why ? why : "");
    ipc_finish(&w);
}

void clean_reply_ok(struct buf *out, int changed, uint64_t bytes, const char *text)
{
    struct ipc_writer w;
    ipc_begin(&w, out, CLEAN_OK);
    ipc_add_u32(&w, changed ? 1 : 0);
    ipc_add_u64(&w, bytes);
    add_text(&w, text);
    ipc_finish(&w);
}

void clean_reply_err(struct buf *out, int err, const char *text)
{
    struct ipc_writer w;
    ipc_begin(&w, out, CLEAN_ERR);
    ipc_add_u32(&w, (uint32_t)err);
    add_text(&w, text);
    ipc_finish(&w);
}

/* A text field, NUL-terminated in the reader's scratch (a NUL inside, or
 * more than CLEAN_WHY_MAX bytes, is refused). */
static int get_text(struct ipc_reader *r, const char **out)
{
    return ipc_get_str(r, CLEAN_WHY_MAX, out);
}

static int open_record(struct ipc_reader *r, const void *rec, size_t len, const char **why)
{
    *why = NULL;
    if (ipc_open(r, rec, len) == 0)
        return 0;
    *why = r->error;
    return -1;
}

static int end_record(struct ipc_reader *r, int rc, const char **why)
{
    if (rc == 0 && ipc_end(r) == 0)
        return 0;
    if (!*why)
        *why = r->error ? r->error : "malformed record";
    return -1;
}

int clean_request_decode(struct ipc_reader *r, const void *rec, size_t len,
                         struct clean_request *rq, const char **why)
{
    memset(rq, 0, sizeof(*rq));
    rq->id = rq->why = "";
    if (open_record(r, rec, len, why) != 0)
        return -1;
    rq->type = (enum clean_type)r->type;
    int rc = 0;
    switch (r->type) {
    case CLEAN_RECOVER:
        break;
    case CLEAN_QUARANTINE:
        rc = ipc_get_str(r, CLEAN_ID_FIELD_MAX, &rq->id) || get_text(r, &rq->why) ? -1 : 0;
        break;
    case CLEAN_TAKE:
    case CLEAN_RECLAIM:
    case CLEAN_REMOVE:
        rc = ipc_get_str(r, CLEAN_ID_FIELD_MAX, &rq->id);
        break;
    default:
        *why = "unknown request type";
        rc = -1;
    }
    return end_record(r, rc, why);
}

int clean_reply_decode(struct ipc_reader *r, const void *rec, size_t len, struct clean_reply *rp,
                       const char **why)
{
    memset(rp, 0, sizeof(*rp));
    rp->text = "";
    if (open_record(r, rec, len, why) != 0)
        return -1;
    int rc = 0;
    if (r->type == CLEAN_OK) {
        rp->ok = 1;
        rc = ipc_get_u32(r, &rp->changed) || ipc_get_u64(r, &rp->bytes) || get_text(r, &rp->text)
                 ? -1
                 : 0;
    } else if (r->type == CLEAN_ERR) {
        rc = ipc_get_u32(r, &rp->err) || get_text(r, &rp->text) ? -1 : 0;
    } else {
        *why = "unknown reply type";
        rc = -1;
    }
    return end_record(r, rc, why);
}
