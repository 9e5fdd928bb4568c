/*
 * fuzz_clean — libFuzzer target for the cleaner's request parser
 * (queue/clean_proto.c, as onehop-queue --clean reads its input) and the
 * router's reply parser.
 *
 * Input: a byte stream, cut into records by channel_core's reader with the channel's
 * limit (CLEAN_RECORD_MAX), as cleaner_serve meets them; each record is
 * decoded as a request and as a reply.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when the decoder
 * accepts a record that the encoder would not produce byte for byte from
 * what was decoded (no second way to say a request), and when an id that
 * the cleaner's id check (queue.h's id validators) would let near a path
 * holds a '/' or a '.' or is not exactly a file id or message id long.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "channel_core.h"
#include "clean_proto.h"
#include "queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 16

static void check_id(const struct clean_request *rq)
{
    int valid = rq->type == CLEAN_RECLAIM ? queue_id_valid(rq->id) : queue_file_id_valid(rq->id);
    if (!valid)
        return;
    size_t want = rq->type == CLEAN_RECLAIM ? QUEUE_ID_LEN : QUEUE_FILE_ID_LEN;
    if (strlen(rq->id) != want || strchr(rq->id, '/') || strchr(rq->id, '.'))
        __builtin_trap();
}

static void request(const uint8_t *rec, size_t len)
{
    struct ipc_reader r;
    struct clean_request rq;
    const char *why;
    if (clean_request_decode(&r, rec, len, &rq, &why) == 0) {
        struct buf again = BUF_INIT;
        clean_request_encode(&again, rq.type, rq.id, rq.why);
        if (again.len != len || memcmp(again.s, rec, len) != 0)
            __builtin_trap();
        buf_free(&again);
        if (rq.type != CLEAN_RECOVER)
            check_id(&rq);
    } else if (!why) {
        __builtin_trap(); /* a refusal always says why */
    }
    ipc_close(&r);
}

static void reply(const uint8_t *rec, size_t len)
{
    struct ipc_reader r;
    struct clean_reply rp;
    const char *why;
    if (clean_reply_decode(&r, rec, len, &rp, &why) == 0) {
        struct buf again = BUF_INIT;
        if (rp.ok && rp.changed <= 1)
            clean_reply_ok(&again, (int)rp.changed, rp.bytes, rp.text);
        else if (!rp.ok)
            clean_reply_err(&again, (int)rp.err, rp.text);
        if (again.len && (again.len != len || memcmp(again.s, rec, len) != 0))
            __builtin_trap();
        buf_free(&again);
    }
    ipc_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chan_in in;
    struct chan_record rec;
    chan_in_init(&in, CLEAN_RECORD_MAX, 0);
    chan_in_feed(&in, data, size, NULL, 0);
    for (int n = 0; n < MAX_RECORDS && chan_in_pop(&in, &rec) == 1; n++) {
        request((const uint8_t *)rec.data, rec.len);
        reply((const uint8_t *)rec.data, rec.len);
    }
    chan_in_free(&in);
    return 0;
}
