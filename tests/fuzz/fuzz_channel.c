/*
 * fuzz_channel — libFuzzer target for the channel's reader core
 * (common/channel_core.c: chan_in_feed / chan_in_pop).
 *
 * Input: byte 0 sets the reader: low two bits its max_fds (0..3), the
 * other six its max_record (0: IPC_RECORD_MAX, else 16 bytes per unit).
 * Then chunks, each one control byte and its bytes: the low six bits of the
 * control byte give the chunk length (1..64, cut at the end of the input),
 * the high two how many descriptors the "read" returned with it (copies of
 * /dev/null). After each chunk every whole record is popped, opened with
 * ipc_open, its descriptors taken or left to chan_record_close.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when a popped
 * record is not whole (its length differs from its header, or exceeds the
 * limit), when more descriptors come out than the reader allows, when a
 * failing reader has no error, or when any descriptor stays open at the
 * end (the lowest free descriptor number must be the same before and after).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "channel_core.h"
#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull = -1;

static int lowest_free_fd(void)
{
    int fd = dup(devnull);
    if (fd < 0)
        __builtin_trap();
    close(fd);
    return fd;
}

static uint32_t header_length(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Pop every whole record; 0 to go on, -1 once the reader failed. */
static int drain(struct chan_in *in, size_t max_record, unsigned max_fds, unsigned *took)
{
    struct chan_record rec;
    int rc;
    while ((rc = chan_in_pop(in, &rec)) == 1) {
        if (rec.len < IPC_HEADER_SIZE || header_length(rec.data) != rec.len ||
            rec.len > max_record || rec.nfds > max_fds)
            __builtin_trap();
        struct ipc_reader r;
        ipc_open(&r, rec.data, rec.len);
        ipc_end(&r);
        ipc_close(&r);
        if (rec.nfds > 0 && (*took)++ % 2 == 0) /* take some, leave others */
            close(chan_record_take_fd(&rec, 0));
        chan_record_close(&rec);
    }
    if (rc < 0 && !in->error)
        __builtin_trap();
    return rc < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (devnull < 0)
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (size < 1 || devnull < 0)
        return 0;
    int first_free = lowest_free_fd();
    unsigned max_fds = data[0] & 3;
    size_t max_record = (data[0] >> 2) ? (size_t)(data[0] >> 2) * 16 : IPC_RECORD_MAX;
    struct chan_in in;
    unsigned took = 0;
    chan_in_init(&in, max_record, max_fds);
    size_t pos = 1;
    while (pos < size) {
        uint8_t ctl = data[pos++];
        size_t n = (size_t)(ctl & 63) + 1;
        if (n > size - pos)
            n = size - pos;
        int fds[3];
        unsigned nfds = ctl >> 6;
        for (unsigned i = 0; i < nfds; i++)
            fds[i] = dup(devnull);
        int rc = chan_in_feed(&in, data + pos, n, fds, nfds);
        pos += n;
        if (rc < 0 && !in.error)
            __builtin_trap();
        if (rc < 0 || drain(&in, max_record, max_fds, &took) < 0)
            break;
    }
    chan_in_free(&in);
    if (lowest_free_fd() != first_free)
        __builtin_trap();
    return 0;
}
