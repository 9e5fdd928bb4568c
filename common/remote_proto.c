/*
 * remote_proto — encode and decode the router <-> remote records. See
 * remote_proto.h. Decoders read every field through the codec (ipc.h),
 * check every count against its limit before allocating, and free what
 * they allocated when a record turns out bad.
 */
#include "remote_proto.h"

#include <string.h>

#include "ipc.h"
#include "mem.h"
#include "proto_util.h"

const char *rp_class_name(enum rp_class c)
{
    switch (c) {
    case RP_OK:
        return "ok";
    case RP_TEMP:
        return "temporary";
    case RP_PERM:
        return "permanent";
    }
    return "?";
}

void rp_put_job(struct buf *out, const struct rp_job *j)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RP_JOB);
    proto_put_job_head(&w, j->job, j->queue_id, j->offset, j->length, j->arrival_us, j->sender);
    ipc_add_u32(&w, (uint32_t)j->nrcpt);
    for (size_t i = 0; i < j->nrcpt; i++) {
        ipc_add_str(&w, j->rcpt[i].address);
        ipc_add_str(&w, j->rcpt[i].orcpt ? j->rcpt[i].orcpt : "");
        ipc_add_u32(&w, j->rcpt[i].notify);
    }
    ipc_add_u32(&w, (uint32_t)j->nhops);
    for (size_t i = 0; i < j->nhops; i++)
        ipc_add_str(&w, j->hops[i]);
    ipc_finish(&w);
}

void rp_put_result(struct buf *out, const struct rp_result *r)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RP_RESULT);
    ipc_add_u64(&w, r->job);
    ipc_add_u32(&w, r->index);
    ipc_add_u32(&w, (uint32_t)r->cls);
    ipc_add_str(&w, r->reply);
    ipc_add_str(&w, r->relay);
    ipc_add_u64(&w, r->delay_ms);
    ipc_add_str(&w, r->tls);
    ipc_add_u32(&w, r->flags);
    ipc_finish(&w);
}

void rp_put_done(struct buf *out, uint64_t job, uint32_t nresults)
{
    struct ipc_writer w;
    ipc_begin(&w, out, RP_DONE);
    ipc_add_u64(&w, job);
    ipc_add_u32(&w, nresults);
    ipc_finish(&w);
}

uint16_t rp_record_type(const void *rec, size_t len)
{
    const unsigned char *p = rec;
    if (len < IPC_HEADER_SIZE)
        return 0;
    return (uint16_t)(p[4] << 8 | p[5]);
}

static int get_rcpts(struct ipc_reader *r, struct rp_job *j, const char **why)
{
    uint32_t n;
    if (proto_get_count(r, RP_RCPT_MAX, &n, "job: recipient count out of range", why) < 0)
        return -1;
    j->rcpt = xcalloc(n, sizeof(*j->rcpt));
    for (; j->nrcpt < n; j->nrcpt++) {
        struct rp_rcpt *rc = &j->rcpt[j->nrcpt];
        if (proto_get_strdup(r, RP_ADDR_MAX, &rc->address) < 0)
            return -1;
        if (proto_get_strdup(r, RP_ADDR_MAX, &rc->orcpt) < 0 || ipc_get_u32(r, &rc->notify) < 0) {
            j->nrcpt++; /* its address is allocated: free it too */
            return -1;
        }
    }
    return 0;
}

static int get_hops(struct ipc_reader *r, struct rp_job *j, const char **why)
{
    uint32_t n;
    if (proto_get_count(r, RP_HOPS_MAX, &n, "job: next hop count out of range", why) < 0)
        return -1;
    j->hops = xcalloc(n, sizeof(*j->hops));
    for (; j->nhops < n; j->nhops++)
        if (proto_get_strdup(r, RP_TEXT_MAX, &j->hops[j->nhops]) < 0)
            return -1;
    return 0;
}

int rp_get_job(const void *rec, size_t len, struct rp_job *j, const char **why)
{
    struct ipc_reader r;
    memset(j, 0, sizeof(*j));
    *why = NULL;
    if (proto_open(&r, rec, len, RP_JOB, why) < 0)
        return -1;
    const struct proto_job_head head = {&j->job,    &j->queue_id,   &j->offset,
                                        &j->length, &j->arrival_us, &j->sender};
    int rc = proto_get_job_head(&r, &head, why) < 0 || get_rcpts(&r, j, why) < 0 ||
                     get_hops(&r, j, why) < 0
                 ? -1
                 : 0;
    rc = proto_close(&r, rc, why);
    if (rc < 0)
        rp_job_free(j);
    return rc;
}

void rp_job_free(struct rp_job *j)
{
    for (size_t i = 0; i < j->nrcpt; i++) {
        free(j->rcpt[i].address);
        free(j->rcpt[i].orcpt);
    }
    free(j->rcpt);
    for (size_t i = 0; i < j->nhops; i++)
        free(j->hops[i]);
    free(j->hops);
    free(j->queue_id);
    free(j->sender);
    memset(j, 0, sizeof(*j));
}

/* A string of the record appended to text with its NUL; its offset in *at. */
static int get_str_at(struct ipc_reader *r, struct buf *text, size_t *at)
{
    const char *s;
    if (ipc_get_str(r, RP_TEXT_MAX, &s) < 0)
        return -1;
    *at = text->len;
    buf_add(text, s, strlen(s) + 1);
    return 0;
}

int rp_get_result(const void *rec, size_t len, struct rp_result *res, struct buf *text,
                  const char **why)
{
    struct ipc_reader r;
    uint32_t cls;
    size_t reply = 0, relay = 0, tls = 0;
    *why = NULL;
    buf_clear(text);
    if (proto_open(&r, rec, len, RP_RESULT, why) < 0)
        return -1;
    int rc = ipc_get_u64(&r, &res->job) < 0 || ipc_get_u32(&r, &res->index) < 0 ||
                     ipc_get_u32(&r, &cls) < 0 || get_str_at(&r, text, &reply) < 0 ||
                     get_str_at(&r, text, &relay) < 0 || ipc_get_u64(&r, &res->delay_ms) < 0 ||
                     get_str_at(&r, text, &tls) < 0 || ipc_get_u32(&r, &res->flags) < 0
                 ? -1
                 : 0;
    if (rc == 0 && cls > RP_PERM) {
        *why = "result: unknown class";
        rc = -1;
    }
    if (rc == 0 && (res->flags & ~(uint32_t)RP_FLAGS_KNOWN)) {
        *why = "result: unknown flags";
        rc = -1;
    }
    rc = proto_close(&r, rc, why);
    if (rc == 0) {
        res->cls = (enum rp_class)cls;
        res->reply = text->s + reply;
        res->relay = text->s + relay;
        res->tls = text->s + tls;
    }
    return rc;
}

int rp_get_done(const void *rec, size_t len, uint64_t *job, uint32_t *nresults, const char **why)
{
    struct ipc_reader r;
    *why = NULL;
    if (proto_open(&r, rec, len, RP_DONE, why) < 0)
        return -1;
    int rc = ipc_get_u64(&r, job) < 0 || ipc_get_u32(&r, nresults) < 0 ? -1 : 0;
    return proto_close(&r, rc, why);
}
