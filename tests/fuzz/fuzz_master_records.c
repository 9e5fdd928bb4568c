/*
 * fuzz_master_records — libFuzzer target for the master's two record
 * readers: the master link (common/daemon_link.h, what the master reads
 * from each daemon and a daemon from the master) and the control socket
 * (common/master_proto.h, what the master reads from `onehop`).
 *
 * Input: byte 0 picks the reader (even: daemon_link_decode, odd:
 * mctl_decode), the rest is framed as on the wire (channel_core's reader with the
 * reader's maximum) and each whole record decoded. Besides crashes,
 * sanitizer reports and leaks, it traps when a record decoded as FAILED
 * carries more than DLINK_TEXT_MAX bytes (METRICS_TEXT: METRICS_TEXT_MAX),
 * or when a decoded record of a type without fields has any.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "channel_core.h"
#include "daemon_link.h"
#include "ipc.h"
#include "master_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_one(int control, const uint8_t *rec, size_t len)
{
    if (!control) {
        struct buf text = BUF_INIT;
        int type = daemon_link_decode(rec, len, &text);
        int has_text = type == DLINK_FAILED || type == DLINK_METRICS_TEXT;
        if (type == DLINK_FAILED && text.len > DLINK_TEXT_MAX)
            __builtin_trap();
        if (type == DLINK_METRICS_TEXT && text.len > METRICS_TEXT_MAX)
            __builtin_trap();
        if (type > 0 && !has_text && len != IPC_HEADER_SIZE)
            __builtin_trap();
        buf_free(&text);
        return;
    }
    struct ipc_reader r;
    struct mctl_msg m;
    if (mctl_decode(&r, rec, len, &m) == 0 && m.type <= MCTL_METRICS && len != IPC_HEADER_SIZE)
        __builtin_trap();
    ipc_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int control = data[0] & 1;
    size_t max = control ? MCTL_RECORD_MAX : DLINK_RECORD_MAX;
    struct chan_in in;
    struct chan_record rec;
    chan_in_init(&in, max, 0);
    chan_in_feed(&in, data + 1, size - 1, NULL, 0);
    while (chan_in_pop(&in, &rec) == 1)
        decode_one(control, (const uint8_t *)rec.data, rec.len);
    chan_in_free(&in);
    return 0;
}
