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

void lp_put_job(struct buf *out, const struct lp_job *j)
{
    struct ipc_writer w;
    ipc_begin(&w, out, LP_JOB);
    ipc_add_u64(&w, j->job);
    ipc_add_str(&w, j->queue_id);
    ipc_add_u64(&w, j->offset);
    ipc_add_u64(&w, j->length);
    ipc_add_u64(&w, j->arrival_us);
    ipc_add_str(&w, j->sender);
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

static int get_strdup(struct ipc_reader *r, size_t max, char **out)
{
    const char *s;
    if (ipc_get_str(r, max, &s) < 0)
        return -1;
    *out = xstrdup(s);
    return 0;
}

/* One recipient's five fields into rc; -1 (with *why for a bad value). */
static int get_rcpt(struct ipc_reader *r, struct lp_rcpt *rc, const char **why)
{
    if (get_strdup(r, RP_ADDR_MAX, &rc->recipient) < 0 ||
        get_strdup(r, RP_ADDR_MAX, &rc->original) < 0 ||
        get_strdup(r, RP_ADDR_MAX, &rc->orcpt) < 0 || ipc_get_u32(r, &rc->notify) < 0 ||
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
    if (ipc_get_u32(r, &n) < 0)
        return -1;
    if (n == 0 || n > LP_RCPT_MAX) {
        *why = "job: recipient count out of range";
        return -1;
    }
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
    int rc = ipc_open(&r, rec, len) == 0 && r.type == LP_JOB ? 0 : -1;
    if (rc < 0 && !r.error)
        *why = "unexpected record type";
    if (rc == 0)
        rc = ipc_get_u64(&r, &j->job) < 0 || get_strdup(&r, RP_TEXT_MAX, &j->queue_id) < 0 ||
                     ipc_get_u64(&r, &j->offset) < 0 || ipc_get_u64(&r, &j->length) < 0 ||
                     ipc_get_u64(&r, &j->arrival_us) < 0 ||
                     get_strdup(&r, RP_ADDR_MAX, &j->sender) < 0 || get_rcpts(&r, j, why) < 0
                 ? -1
                 : 0;
    if (rc == 0 && j->offset + j->length < j->offset) {
        *why = "job: content range overflows";
        rc = -1;
    }
    if (rc == 0 && ipc_end(&r) < 0)
        rc = -1;
    if (rc < 0 && !*why)
        *why = r.error ? r.error : "bad field";
    ipc_close(&r);
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
