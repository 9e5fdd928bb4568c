/*
 * fuzz_inject — what onehop-queue does with the records a front end sends
 * (queue/inject_proto.h, queue/inject_txn.h): any bytes are framed into
 * records, decoded, and applied to transactions as the server mode does
 * (content kept in memory; no queue is touched). Nothing may crash, leak,
 * or accept content that breaks a limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel_core.h"
#include "inject_proto.h"
#include "inject_txn.h"
#include "ipc.h"

#define OPEN_MAX 8

static struct inj_txn *find(struct inj_txn *open, int *used, uint32_t txn)
{
    for (int i = 0; i < OPEN_MAX; i++)
        if (used[i] && open[i].txn == txn)
            return &open[i];
    return NULL;
}

static void apply(struct inj_txn *open, int *used, const struct inj_request *rq)
{
    struct inj_txn *t = find(open, used, rq->txn);
    if (rq->type == INJ_BEGIN) {
        for (int i = 0; i < OPEN_MAX && !t; i++) {
            if (!used[i]) {
                used[i] = 1;
                inj_txn_init(&open[i], rq->txn, 100000);
                inj_txn_sender(&open[i], rq->s1);
                return;
            }
        }
        return;
    }
    if (!t)
        return;
    switch (rq->type) {
    case INJ_ATTR:
        inj_txn_attr(t, rq->s1, rq->s2, 0);
        break;
    case INJ_RCPT:
        inj_txn_rcpt(t, rq->s1, rq->s2, rq->s3);
        break;
    case INJ_DATA:
        inj_txn_data(t, rq->data, rq->n);
        break;
    default: /* END, ABORT */
        if (rq->type == INJ_END) {
            inj_txn_end(t);
            if (!inj_txn_failed(t) &&
                (t->nrcpt == 0 || (t->data.len && memchr(t->data.s, 0, t->data.len))))
                abort(); /* accepted what a check must refuse */
        }
        used[t - open] = 0;
        inj_txn_free(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inj_txn open[OPEN_MAX];
    int used[OPEN_MAX] = {0};
    struct chan_in in;
    struct chan_record rec;
    chan_in_init(&in, INJ_RECORD_MAX, 0);
    chan_in_feed(&in, data, size, NULL, 0);
    while (chan_in_pop(&in, &rec) == 1) {
        const char *why;
        struct ipc_reader r;
        struct inj_request rq;
        if (inj_request_decode(&r, rec.data, rec.len, &rq, &why) == 0)
            apply(open, used, &rq);
        ipc_close(&r);
    }
    chan_in_free(&in);
    for (int i = 0; i < OPEN_MAX; i++)
        if (used[i])
            inj_txn_free(&open[i]);
    return 0;
}
