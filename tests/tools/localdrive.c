/*
 * localdrive — plays the router towards a real onehop-local, for the
 * integration tests (tests/integration/test_local.py):
 *
 *   localdrive CONFDIR ONEHOP_LOCAL [TIMEOUT_S]
 *
 * Starts ONEHOP_LOCAL -C CONFDIR with one end of a socketpair named by
 * ONEHOP_CHANNEL_LOCAL, reads jobs from standard input:
 *
 *   job MSGID
 *   rcpt ORIGIN ORIGINAL RECIPIENT...     (RECIPIENT: the rest of the line)
 *   end
 *
 * opens message MSGID of CONFDIR's queue (queue_dir of onehop.conf) with
 * queue_msg_open() (the router's way: a verified O_RDONLY descriptor, offset
 * and length), and sends it as an LP_JOB (local_proto.h) with the
 * envelope's sender and the rcpt lines as its recipients (ORIGIN: 0 an
 * address, 1 from the aliases; ORIGINAL "-": the recipient itself), or the
 * envelope's recipients when there is none. Job ids are 1, 2, ...; all
 * jobs are sent at once. Prints one JSON object a line on standard output:
 *
 *   {"job":1,"id":"MSGID","index":0,"rcpt":"alice@host","class":"ok",
 *    "reply":"2.0.0 delivered to maildir","relay":"local:maildir","delay_ms":12,"tls":"none"}
 *   {"job":1,"done":1}
 *
 * and once every job is done closes the channel and waits for the daemon
 * to exit (it stops when its router goes away; chandrive.h, shared with
 * remotedrive). Exit status: 0 when every job was done and the daemon
 * exited 0; 1 otherwise (said on stderr: TIMEOUT_S seconds, default 60,
 * bound the whole run); 64 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local_proto.h"
#include "mem.h"
#include "queue.h"
#include "remote_proto.h"
#include "chandrive.h"

struct job_lines {
    char *msgid; /* the job being read */
    struct lp_rcpt rcpt[LP_RCPT_MAX];
    size_t nrcpt;
};

static void forget_rcpts(struct job_lines *jl)
{
    for (size_t i = 0; i < jl->nrcpt; i++) {
        free(jl->rcpt[i].recipient);
        free(jl->rcpt[i].original);
    }
    jl->nrcpt = 0;
    free(jl->msgid);
    jl->msgid = NULL;
}

/* "rcpt ORIGIN ORIGINAL RECIPIENT...": one recipient of the job. */
static int add_rcpt(struct job_lines *jl, char *line)
{
    char *origin = strtok(line, " "), *original = strtok(NULL, " "), *rest = strtok(NULL, "\n");
    if (!origin || !original || !rest || jl->nrcpt >= LP_RCPT_MAX) {
        fprintf(stderr, "localdrive: rcpt ORIGIN ORIGINAL RECIPIENT\n");
        return -1;
    }
    struct lp_rcpt *rc = &jl->rcpt[jl->nrcpt++];
    rc->recipient = xstrdup(rest);
    rc->original = xstrdup(strcmp(original, "-") == 0 ? rest : original);
    rc->orcpt = "";
    rc->notify = 0;
    rc->origin = (uint32_t)atoi(origin);
    return 0;
}

/* Without rcpt lines: the envelope's recipients. */
static void envelope_rcpts(struct job_lines *jl, const struct queue_msg *msg)
{
    for (size_t i = 0; i < msg->nrcpt && jl->nrcpt < LP_RCPT_MAX; i++) {
        struct lp_rcpt *rc = &jl->rcpt[jl->nrcpt++];
        rc->recipient = xstrdup(msg->rcpt[i].addr);
        rc->original = xstrdup(msg->rcpt[i].addr);
        rc->orcpt = msg->rcpt[i].orcpt ? msg->rcpt[i].orcpt : "";
        rc->notify = chandrive_notify_bits(msg->rcpt[i].notify);
        rc->origin = LP_FROM_ADDRESS;
    }
}

static int send_job(struct chandrive *dr, struct job_lines *jl)
{
    struct queue_msg_fd m;
    const char *why = "";
    if (!jl->msgid) {
        fprintf(stderr, "localdrive: end without job\n");
        return -1;
    }
    if (queue_msg_open(dr->q, jl->msgid, &m, &why) < 0) {
        fprintf(stderr, "localdrive: %s: %s (%s)\n", jl->msgid, strerror(errno), why);
        return -1;
    }
    const struct queue_msg *msg = &m.file.msg[m.index];
    if (jl->nrcpt == 0)
        envelope_rcpts(jl, msg);
    struct lp_job j = {chandrive_next_job(dr), jl->msgid,   m.offset, m.length,
                       msg->arrival_us,        msg->sender, jl->rcpt, jl->nrcpt};
    const char *addrs[LP_RCPT_MAX];
    for (size_t i = 0; i < j.nrcpt; i++)
        addrs[i] = jl->rcpt[i].recipient;
    struct buf rec = BUF_INIT;
    lp_put_job(&rec, &j);
    int rc = chandrive_send(dr, jl->msgid, addrs, j.nrcpt, &rec, m.fd);
    buf_free(&rec);
    queue_msg_fd_close(&m);
    forget_rcpts(jl);
    return rc;
}

static int take_line(struct chandrive *dr, struct job_lines *jl, char *line)
{
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "job ", 4) == 0) {
        forget_rcpts(jl);
        jl->msgid = xstrdup(line + 4);
        return 0;
    }
    if (strncmp(line, "rcpt ", 5) == 0)
        return add_rcpt(jl, line + 5);
    if (strcmp(line, "end") == 0)
        return send_job(dr, jl);
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    fprintf(stderr, "localdrive: not a job line: %s\n", line);
    return -1;
}

int main(int argc, char **argv)
{
    struct chandrive dr = {
        .name = "localdrive", .channel_env = LP_CHANNEL_ENV, .max_record = LP_RECORD_MAX};
    struct job_lines jl = {0};
    int rc = chandrive_start(&dr, argc, argv);
    if (rc != 0)
        return rc;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && getline(&line, &cap, stdin) > 0)
        rc = take_line(&dr, &jl, line);
    forget_rcpts(&jl);
    free(line);
    return chandrive_finish(&dr, rc);
}
