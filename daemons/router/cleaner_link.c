/*
 * cleaner_link — the cleaner's channel, as cleaner_link.h says.
 */
#include "router/cleaner_link.h"

#include <errno.h>
#include <string.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "router/router.h"

/* Requests sent and not answered at most: the others wait in the state
 * (handed out as answers come back). A start with tens of thousands of new
 * files must not put all their TAKEs on the channel at once: its write
 * queue is bounded, and over the bound the channel closes. */
#define CLEAN_WINDOW 64

struct cleaner_link {
    struct router *r;
    struct channel *ch;
    int recovering;               /* RECOVER sent, not answered */
    struct state_clean_req *sent; /* handed out and sent, oldest first */
    size_t nsent, sent_cap;
};

static const char *kind_name(int kind)
{
    return kind == CLEAN_TAKE      ? "TAKE"
           : kind == CLEAN_RECLAIM ? "RECLAIM"
           : kind == CLEAN_REMOVE  ? "REMOVE"
                                   : "QUARANTINE";
}

static void send_request(struct cleaner_link *c, int kind, const char *id, const char *why)
{
    struct buf rec = BUF_INIT;
    clean_request_encode(&rec, (enum clean_type)kind, id, why);
    channel_send(c->ch, rec.s, rec.len, NULL, 0);
    buf_free(&rec);
}

/* SPEC 8: "ID: removed" for each message the file still held (those
 * reclaimed before were logged then). Read before the state forgets it. */
static void log_file_removed(struct cleaner_link *c, const char *fid)
{
    const struct state_file *f = state_find_file(c->r->s, fid);
    for (uint32_t i = 0; f && f->msg && i < f->nmsg; i++) {
        if (f->msg[i].reclaim_asked)
            continue;
        char id[QUEUE_ID_LEN + 1];
        queue_msg_id(fid, i, id);
        log_info("%s: removed", id);
    }
}

static void answered(struct cleaner_link *c, const struct state_clean_req *rq,
                     const struct clean_reply *rp)
{
    if (!rp->ok) {
        log_warn("cleaner: %s %s failed: %s (%s); asked again later", kind_name(rq->kind), rq->id,
                 strerror((int)rp->err), rp->text);
    } else if (rq->kind == CLEAN_REMOVE) {
        log_file_removed(c, rq->id);
    } else if (rq->kind == CLEAN_RECLAIM) {
        log_info("%s: removed", rq->id);
    }
    if (state_clean_done(c->r->s, rq, rp->ok ? 0 : rp->err) == 0)
        router_state_fail("recording the cleaner's answer");
}

static const char *on_record(void *arg, struct channel *ch, struct chan_record *rec)
{
    struct cleaner_link *c = arg;
    struct ipc_reader rd;
    struct clean_reply rp;
    const char *why = NULL;
    (void)ch;
    int rc = clean_reply_decode(&rd, rec->data, rec->len, &rp, &why);
    if (rc == 0 && c->recovering) {
        c->recovering = 0;
        if (rp.ok)
            log_info("cleaner: recovery done: %s", rp.text);
        else
            log_warn("cleaner: recovery failed: %s (%s)", strerror((int)rp.err), rp.text);
        ipc_close(&rd);
        router_recovered(c->r);
        return NULL;
    }
    if (rc == 0 && c->nsent == 0)
        why = "an answer to no request";
    if (rc == 0 && c->nsent > 0) {
        struct state_clean_req rq = c->sent[0];
        memmove(c->sent, c->sent + 1, (c->nsent - 1) * sizeof(*c->sent));
        c->nsent--;
        answered(c, &rq, &rp);
    }
    ipc_close(&rd);
    return rc == 0 && why == NULL ? NULL : why;
}

/* The cleaner is the master's to restart; its requests are in the journal
 * and are sent again by the next router (the master restarts the channel's
 * peers). */
static void on_close(void *arg, struct channel *ch, const char *reason)
{
    struct cleaner_link *c = arg;
    (void)ch;
    c->ch = NULL;
    log_warn("cleaner channel closed (%s)", reason);
    router_channel_lost(c->r, "the cleaner's channel closed");
}

struct cleaner_link *cleaner_link_open(struct router *r)
{
    static const struct channel_ops ops = {on_record, NULL, on_close};
    struct channel_opts opts = {"cleaner", CLEAN_RECORD_MAX, 0, 0, 0, 0};
    struct cleaner_link *c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->ch = router_channel(r, CLEANER_CHANNEL_ENV, &opts, &ops, c);
    c->recovering = 1;
    send_request(c, CLEAN_RECOVER, NULL, NULL);
    return c;
}

void cleaner_link_send(struct cleaner_link *c)
{
    struct state_clean_req rq;
    if (!c || !c->ch || c->recovering)
        return;
    while (c->nsent < CLEAN_WINDOW && state_clean_next(c->r->s, &rq)) {
        c->sent = xgrow(c->sent, &c->sent_cap, c->nsent + 1, sizeof(*c->sent));
        c->sent[c->nsent++] = rq;
        send_request(c, rq.kind, rq.id, rq.kind == CLEAN_QUARANTINE ? rq.why : NULL);
        if (!c->ch)
            return;
    }
}

void cleaner_link_retry(struct cleaner_link *c)
{
    if (c && c->ch && !c->recovering)
        state_clean_retry(c->r->s);
}

void cleaner_link_close(struct cleaner_link *c)
{
    if (!c)
        return;
    channel_close(c->ch);
    free(c->sent);
    free(c);
}
