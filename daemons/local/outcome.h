/*
 * outcome — what one local delivery came to: the class the router records
 * (remote_proto.h RP_OK / RP_TEMP / RP_PERM), the text with its RFC 3463
 * enhanced status code first ("2.0.0 delivered to maildir", "4.2.2
 * mailbox full") and the relay ("local:maildir"...). Every step of a
 * delivery fills one; nothing else decides temporary or permanent.
 */
#ifndef ONEHOP_LOCAL_OUTCOME_H
#define ONEHOP_LOCAL_OUTCOME_H

#include "buf.h"
#include "remote_proto.h"

struct outcome {
    enum rp_class cls;
    struct buf text;
    const char *relay; /* static */
};

void outcome_set(struct outcome *o, enum rp_class cls, const char *relay, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A failed system call on the way to a mailbox or file: always temporary
 * (SPEC: disk full, quota, permissions are temporary), the code by errno:
 * EDQUOT, EFBIG 4.2.2 (mailbox full), ENOSPC 4.3.1 (system full), EACCES,
 * EPERM, EROFS 4.2.0, others 4.3.0; text "WHAT: strerror". */
void outcome_errno(struct outcome *o, const char *relay, int err, const char *what);
void outcome_free(struct outcome *o);

#endif
