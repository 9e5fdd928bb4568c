/*
 * proto_util — the decoding and encoding steps local_proto and remote_proto
 * share on top of the record codec (ipc.h): opening a record of one type
 * and its end check, a string copied out, a count checked against its limit
 * before anything is allocated, and the head both job records start with
 * (job id, queue id, content range, arrival, sender).
 *
 * Every reader step returns 0, or -1 with the reason left for proto_close
 * (*why set here for a value out of range; the reader's own error else).
 * Must never: allocate for a count it has not checked, or leave a reason
 * NULL on a failure.
 */
#ifndef ONEHOP_PROTO_UTIL_H
#define ONEHOP_PROTO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

/* Open rec as a record of type want; -1 with *why (the reader closed). */
int proto_open(struct ipc_reader *r, const void *rec, size_t len, uint16_t want, const char **why);
/* The end check and the close: rc stays -1 when a field failed before;
 * on -1 *why names the failure. Returns rc. */
int proto_close(struct ipc_reader *r, int rc, const char **why);
/* A string of at most max bytes, copied into *out (the caller frees). */
int proto_get_strdup(struct ipc_reader *r, size_t max, char **out);
/* A count in 1..max; out_of_range becomes *why past it (or at 0). */
int proto_get_count(struct ipc_reader *r, uint32_t max, uint32_t *n, const char *out_of_range,
                    const char **why);

/* The head of a job record, as pointers into the caller's job. */
struct proto_job_head {
    uint64_t *job;
    char **queue_id;
    uint64_t *offset, *length, *arrival_us;
    char **sender;
};
void proto_put_job_head(struct ipc_writer *w, uint64_t job, const char *queue_id, uint64_t offset,
                        uint64_t length, uint64_t arrival_us, const char *sender);
/* Reads the head; a content range that overflows is refused. */
int proto_get_job_head(struct ipc_reader *r, const struct proto_job_head *h, const char **why);

#endif
