/*
 * chandrive — what localdrive and remotedrive share when they play the
 * router towards a real onehop-local or onehop-remote for the integration
 * tests: the daemon started with one end of a socketpair named by its
 * channel variable, the queue of CONFDIR opened for the message
 * descriptors, jobs sent with their descriptor, and every RP_RESULT and
 * RP_DONE (remote_proto.h; local_proto.h answers with the same records)
 * printed as one JSON object a line:
 *
 *   {"job":1,"id":"MSGID","index":0,"rcpt":"b@b.test","class":"ok","reply":"250 ...",
 *    "relay":"mx.b.test[127.0.0.2]:2525","delay_ms":12,"tls":"none","flags":0}
 *   {"job":1,"done":1}
 *
 * Once every job is done the channel closes and the daemon must exit (it
 * stops when its router goes away; after 10 s it is killed). TIMEOUT_S
 * (default 60) bounds the whole run. Each driver reads its own job lines
 * and builds its own job record. Must never: wait without a bound, or
 * leave the daemon running.
 */
#ifndef ONEHOP_TESTS_CHANDRIVE_H
#define ONEHOP_TESTS_CHANDRIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "queue.h"

struct chandrive {
    const char *name;        /* the driver, for messages: "localdrive" */
    const char *channel_env; /* LP_CHANNEL_ENV, RP_CHANNEL_ENV */
    size_t max_record;       /* of the daemon's answers */
    struct queue *q;         /* CONFDIR's queue */
    int fd;                  /* the router's end */
    pid_t pid;
    char **ids;        /* MSGID per job id - 1 */
    struct buf *rcpts; /* the recipients per job, NUL-separated, for the output */
    size_t njobs, done;
    time_t deadline;
};

/* argv: DRIVER CONFDIR PROGRAM [TIMEOUT_S]. Opens the queue and starts
 * PROGRAM -C CONFDIR. 0, or the exit status to end with (64 usage). */
int chandrive_start(struct chandrive *dr, int argc, char **argv);
int chandrive_remaining_ms(const struct chandrive *dr);
/* The id the next job sent gets (1, 2, ...). */
uint64_t chandrive_next_job(const struct chandrive *dr);
/* "SUCCESS,FAILURE" (a queue file's NOTIFY) as RP_NOTIFY_* bits. */
uint32_t chandrive_notify_bits(const char *notify);
/* Send job record rec (for message msgid, with recipients rcpts[0..n))
 * with the message descriptor fd (still the caller's). 0 or -1 (said). */
int chandrive_send(struct chandrive *dr, const char *msgid, const char *const *rcpts, size_t n,
                   const struct buf *rec, int fd);
/* rc: the jobs' sending went well (0) or not. Reads every result (when
 * rc is 0), closes the channel, waits for the daemon, frees; the driver's
 * exit status: 0 when every job was done and the daemon exited 0, else 1. */
int chandrive_finish(struct chandrive *dr, int rc);

#endif
