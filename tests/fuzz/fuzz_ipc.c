/*
 * fuzz_ipc — libFuzzer target for the IPC record reader (common/ipc.c).
 *
 * Input: byte 0 chooses the channel limit for ipc_frame (0: IPC_RECORD_MAX,
 * else that many 16-byte units); byte 1 the number of ipc_get_* calls (up to
 * 31), then one byte per call: its low two bits choose u32 / u64 / str /
 * bytes, the other six the max given to str and bytes (63: no limit, else
 * 4 * value). The rest is a byte stream, cut into records by ipc_frame; each
 * record is opened, read with that call sequence, ended and closed.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when ipc_end accepts
 * a record that the writer would not produce byte for byte from the fields
 * read, when a failing call leaves no error, or when a string comes back
 * longer than its max or with a NUL inside.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 31
#define MAX_RECORDS 8

struct plan {
    size_t max;
    size_t nops;
    const uint8_t *ops;
};

static size_t op_max(uint8_t op)
{
    unsigned v = op >> 2;
    return v == 63 ? SIZE_MAX : 4u * v;
}

/* One call; what it read is written again into w. Returns its result. */
static int do_op(struct ipc_reader *r, uint8_t op, struct ipc_writer *w)
{
    uint32_t u32;
    uint64_t u64;
    const char *s;
    const void *p;
    size_t n, max = op_max(op);
    switch (op & 3) {
    case 0:
        if (ipc_get_u32(r, &u32) < 0)
            return -1;
        ipc_add_u32(w, u32);
        return 0;
    case 1:
        if (ipc_get_u64(r, &u64) < 0)
            return -1;
        ipc_add_u64(w, u64);
        return 0;
    case 2:
        if (ipc_get_str(r, max, &s) < 0)
            return -1;
        if (strlen(s) > max)
            __builtin_trap();
        ipc_add_str(w, s);
        return 0;
    default:
        if (ipc_get_bytes(r, max, &p, &n) < 0)
            return -1;
        if (n > max)
            __builtin_trap();
        ipc_add_bytes(w, p, n);
        return 0;
    }
}

static void read_record(const uint8_t *rec, size_t len, const struct plan *pl)
{
    struct ipc_reader r;
    struct ipc_writer w;
    struct buf again = BUF_INIT;
    if (ipc_open(&r, rec, len) < 0) {
        if (!r.error)
            __builtin_trap();
        ipc_close(&r);
        return;
    }
    ipc_begin(&w, &again, r.type);
    for (size_t i = 0; i < pl->nops; i++)
        if (do_op(&r, pl->ops[i], &w) < 0 && !r.error)
            __builtin_trap();
    if (ipc_end(&r) == 0) {
        ipc_finish(&w);
        if (r.error || again.len != len || memcmp(again.s, rec, len) != 0)
            __builtin_trap();
    } else if (!r.error) {
        __builtin_trap();
    }
    ipc_close(&r);
    buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct plan pl;
    if (size < 2)
        return 0;
    pl.max = (size_t)data[0] * 16;
    pl.nops = data[1] % (MAX_OPS + 1);
    if (size < 2 + pl.nops)
        return 0;
    pl.ops = data + 2;
    const uint8_t *stream = data + 2 + pl.nops;
    size_t avail = size - 2 - pl.nops;
    for (int i = 0; i < MAX_RECORDS; i++) {
        size_t reclen = 0;
        const char *why = NULL;
        int rc = ipc_frame(stream, avail, pl.max, &reclen, &why);
        if (rc < 0 && !why)
            __builtin_trap();
        if (rc <= 0)
            break;
        if (reclen < IPC_HEADER_SIZE || reclen > avail)
            __builtin_trap();
        read_record(stream, reclen, &pl);
        stream += reclen;
        avail -= reclen;
    }
    return 0;
}
