/*
 * remotedrive — plays the router towards a real onehop-remote, for the
 * integration tests (tests/integration/test_remote.py) until the router
 * exists:
 *
 *   remotedrive CONFDIR ONEHOP_REMOTE [TIMEOUT_S]
 *
 * Starts ONEHOP_REMOTE -C CONFDIR with one end of a socketpair named by
 * ONEHOP_CHANNEL_REMOTE, reads jobs from standard input, one a line:
 *
 *   MSGID HOP[,HOP...] [RCPT...]
 *
 * opens message MSGID of CONFDIR's queue (queue_dir of onehop.conf) with
 * queue_msg_open() (the router's way: a verified O_RDONLY descriptor, offset
 * and length), and sends it as an RP_JOB (remote_proto.h) with the
 * envelope's sender and recipients (with their ORCPT and NOTIFY), or the
 * RCPTs of the line instead. Job ids are the line numbers (1, 2, ...); all
 * jobs are sent at once. Prints one JSON object a line on standard output:
 *
 *   {"job":1,"id":"MSGID","index":0,"rcpt":"b@b.test","class":"ok","reply":"250 ...",
 *    "relay":"mx.b.test[127.0.0.2]:2525","delay_ms":12,"tls":"none","flags":0}
 *   {"job":1,"done":1}
 *
 * and once every job is done closes the channel and waits for the daemon
 * to exit (it stops when its router goes away; chandrive.h, shared with
 * localdrive). Exit status: 0 when every job was done and the daemon
 * exited 0; 1 otherwise (said on stderr: TIMEOUT_S seconds, default 60,
 * bound the whole run); 64 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "queue.h"
#include "remote_proto.h"
#include "chandrive.h"

/* Split line into words (in place); the count. */
static size_t split(char *line, char **w, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && n < max; tok = strtok(NULL, " \t\r\n"))
        w[n++] = tok;
    return n;
}

/* "MSGID HOP[,HOP...] [RCPT...]": one RP_JOB. */
static int send_job(struct chandrive *dr, char *line)
{
    char *w[RP_RCPT_MAX + 2];
    size_t nw = split(line, w, RP_RCPT_MAX + 2);
    if (nw < 2) {
        fprintf(stderr, "remotedrive: a job line needs MSGID and HOPS\n");
        return -1;
    }
    struct queue_msg_fd m;
    const char *why = "";
    if (queue_msg_open(dr->q, w[0], &m, &why) < 0) {
        fprintf(stderr, "remotedrive: %s: %s (%s)\n", w[0], strerror(errno), why);
        return -1;
    }
    const struct queue_msg *msg = &m.file.msg[m.index];
    struct rp_job j = {0};
    struct rp_rcpt rc[RP_RCPT_MAX];
    const char *addrs[RP_RCPT_MAX];
    char *hops[RP_HOPS_MAX];
    j.job = chandrive_next_job(dr);
    j.queue_id = w[0];
    j.offset = m.offset;
    j.length = m.length;
    j.arrival_us = msg->arrival_us;
    j.sender = msg->sender;
    if (nw > 2) {
        for (size_t i = 2; i < nw; i++)
            rc[j.nrcpt++] = (struct rp_rcpt){w[i], "", 0};
    } else {
        for (size_t i = 0; i < msg->nrcpt && j.nrcpt < RP_RCPT_MAX; i++)
            rc[j.nrcpt++] =
                (struct rp_rcpt){msg->rcpt[i].addr, msg->rcpt[i].orcpt ? msg->rcpt[i].orcpt : "",
                                 chandrive_notify_bits(msg->rcpt[i].notify)};
    }
    for (size_t i = 0; i < j.nrcpt; i++)
        addrs[i] = rc[i].address;
    j.rcpt = rc;
    for (char *tok = strtok(w[1], ","); tok && j.nhops < RP_HOPS_MAX; tok = strtok(NULL, ","))
        hops[j.nhops++] = tok;
    j.hops = hops;
    struct buf rec = BUF_INIT;
    rp_put_job(&rec, &j);
    int rcode = chandrive_send(dr, w[0], addrs, j.nrcpt, &rec, m.fd);
    buf_free(&rec);
    queue_msg_fd_close(&m);
    return rcode;
}

int main(int argc, char **argv)
{
    struct chandrive dr = {
        .name = "remotedrive", .channel_env = RP_CHANNEL_ENV, .max_record = RP_RECORD_MAX};
    int rc = chandrive_start(&dr, argc, argv);
    if (rc != 0)
        return rc;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && getline(&line, &cap, stdin) > 0)
        if (line[0] != '\n' && line[0] != '#')
            rc = send_job(&dr, line);
    free(line);
    return chandrive_finish(&dr, rc);
}
