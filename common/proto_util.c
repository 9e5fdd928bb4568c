/*
 * proto_util — the steps the job protocols share. See proto_util.h.
 */
#include "proto_util.h"

#include "mem.h"
#include "remote_proto.h"

int proto_open(struct ipc_reader *r, const void *rec, size_t len, uint16_t want, const char **why)
{
    if (ipc_open(r, rec, len) == 0 && r->type == want)
        return 0;
    *why = r->error ? r->error : "unexpected record type";
    ipc_close(r);
    return -1;
}

int proto_close(struct ipc_reader *r, int rc, const char **why)
{
    if (rc == 0 && ipc_end(r) < 0)
        rc = -1;
    if (rc < 0 && !*why)
        *why = r->error ? r->error : "bad field";
    ipc_close(r);
    return rc;
}

int proto_get_strdup(struct ipc_reader *r, size_t max, char **out)
{
    const char *s;
    if (ipc_get_str(r, max, &s) < 0)
        return -1;
    *out = xstrdup(s);
    return 0;
}

int proto_get_count(struct ipc_reader *r, uint32_t max, uint32_t *n, const char *out_of_range,
                    const char **why)
{
    if (ipc_get_u32(r, n) < 0)
        return -1;
    if (*n == 0 || *n > max) {
        *why = out_of_range;
        return -1;
    }
    return 0;
}

void proto_put_job_head(struct ipc_writer *w, uint64_t job, const char *queue_id, uint64_t offset,
                        uint64_t length, uint64_t arrival_us, const char *sender)
{
    ipc_add_u64(w, job);
    ipc_add_str(w, queue_id);
    ipc_add_u64(w, offset);
    ipc_add_u64(w, length);
    ipc_add_u64(w, arrival_us);
    ipc_add_str(w, sender);
}

int proto_get_job_head(struct ipc_reader *r, const struct proto_job_head *h, const char **why)
{
    if (ipc_get_u64(r, h->job) < 0 || proto_get_strdup(r, RP_TEXT_MAX, h->queue_id) < 0 ||
        ipc_get_u64(r, h->offset) < 0 || ipc_get_u64(r, h->length) < 0 ||
        ipc_get_u64(r, h->arrival_us) < 0 || proto_get_strdup(r, RP_ADDR_MAX, h->sender) < 0)
        return -1;
    if (*h->offset + *h->length < *h->offset) {
        *why = "job: content range overflows";
        return -1;
    }
    return 0;
}
