/*
 * local_proto — encode and decode the router -> onehop-local LP_JOB record.
 * See local_proto.h; results travel as remote_proto.h's RP_RESULT/RP_DONE
 * and use its codec. The decoder reads every field through ipc.h, checks
 * the recipient count before allocating, refuses a recipient that is
 * neither an address nor a |command or /file target and an origin it does
 * not know, and frees what it allocated when the record turns out bad.
 */
#include "local_proto.h"

#include <string.h>

#include "ipc.h"
#include "mem.h"
#include "proto_util.h"

void lp_put_job(struct buf *out, const struct lp_job *j)
{
    struct ipc_writer w;
    ipc_begin(&w, out, LP_JOB);
    proto_put_job_head(&w, j->job, j->queue_id, j->offset, j->length, j->arrival_us, j->sender);
    ipc_add_u32(&w, (uint32_t)j->nrcpt);
    for (size_t i = 0; i < j->nrcpt; i++) {
        const struct lp_rcpt *rc = &j->rcpt[i];
        ipc_add_str(&w, rc->recipient);
        ipc_add_str(&w, rc->original ? rc->original : rc->recipient);
        ipc_add_str(&w, rc->orcpt ? rc->orcpt : "");
        ipc_add_u32(&w, rc->notify);
        ipc_add_u32(&w, rc->origin);
    }
    ipc_finish(&w);
}

/* 1 if s is a final recipient local delivery can take: "|command",
 * "/file", or local@domain with both parts non-empty. */
static int lp_recipient_valid(const char *s)
{
    if (s[0] == '|' || s[0] == '/')
        return s[1] != '\0';
    const char *at = strrchr(s, '@');
    return at && at != s && at[1] != '\0';
}

/* One recipient's five fields into rc; -1 (with *why for a bad value). */
static int get_rcpt(struct ipc_reader *r, struct lp_rcpt *rc, const char **why)
{
    if (proto_get_strdup(r, RP_ADDR_MAX, &rc->recipient) < 0 ||
        proto_get_strdup(r, RP_ADDR_MAX, &rc->original) < 0 ||
        proto_get_strdup(r, RP_ADDR_MAX, &rc->orcpt) < 0 || ipc_get_u32(r, &rc->notify) < 0 ||
        ipc_get_u32(r, &rc->origin) < 0)
        return -1;
    if (!lp_recipient_valid(rc->recipient)) {
        *why = "job: recipient is neither an address, a |command nor a /file";
        return -1;
    }
    if (rc->origin > LP_FROM_ALIASES) {
        *why = "job: unknown recipient origin";
        return -1;
    }
    return 0;
}

static int get_rcpts(struct ipc_reader *r, struct lp_job *j, const char **why)
{
    uint32_t n;
    if (proto_get_count(r, LP_RCPT_MAX, &n, "job: recipient count out of range", why) < 0)
        return -1;
    j->rcpt = xcalloc(n, sizeof(*j->rcpt));
    while (j->nrcpt < n)
        if (get_rcpt(r, &j->rcpt[j->nrcpt++], why) < 0)
            return -1; /* counted: what it allocated is freed with the job */
    return 0;
}

int lp_get_job(const void *rec, size_t len, struct lp_job *j, const char **why)
{
    struct ipc_reader r;
    memset(j, 0, sizeof(*j));
    *why = NULL;
    if (proto_open(&r, rec, len, LP_JOB, why) < 0)
        return -1;
    const struct proto_job_head head = {&j->job,    &j->queue_id,   &j->offset,
                                        &j->length, &j->arrival_us, &j->sender};
    int rc = proto_get_job_head(&r, &head, why) < 0 || get_rcpts(&r, j, why) < 0 ? -1 : 0;
    rc = proto_close(&r, rc, why);
    if (rc < 0)
        lp_job_free(j);
    return rc;
}

void lp_job_free(struct lp_job *j)
{
    for (size_t i = 0; i < j->nrcpt; i++) {
        free(j->rcpt[i].recipient);
        free(j->rcpt[i].original);
        free(j->rcpt[i].orcpt);
    }
    free(j->rcpt);
    free(j->queue_id);
    free(j->sender);
    memset(j, 0, sizeof(*j));
}
