/*
 * fuzz_state_index — the state side's index of frozen files
 * (queue/state_index.h): any bytes as the body of an index file (file
 * records, then due records; how many of each the first input byte
 * chooses) behind a header made valid for them (counts, both CRCs), so
 * that every check past the header runs: record order, fences, look-ups,
 * the walks and the due cursor. It must refuse or accept without reading
 * out of bounds, leaking or aborting; what it accepts must be consistent:
 * every record found by its file id, the walk in order, the cursor ending.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "queue_impl.h" /* crc32c, qf_put_u32/u64 */
#include "safeio.h"
#include "state_index.h"

#define NUMBER 7
#define CP_END 4096

/* The header state_index.h describes, for a body of nfiles and ndue
 * records. */
static void header(struct buf *h, const uint8_t *body, size_t len, uint64_t nfiles, uint64_t ndue)
{
    buf_add(h, "OHSTIDX1", 8);
    qf_put_u64(h, NUMBER);
    qf_put_u64(h, CP_END);
    qf_put_u64(h, nfiles);
    qf_put_u64(h, ndue);
    qf_put_u32(h, crc32c(0, body, len));
    qf_put_u32(h, 0);
    for (int i = 0; i < 7; i++)
        qf_put_u64(h, (uint64_t)i * 3);
    while (h->len < 124)
        buf_addc(h, 0);
    qf_put_u32(h, crc32c(0, h->s, 124));
}

static void exercise(struct sx *x)
{
    struct sx_iter it;
    struct sx_entry e, f;
    char last[QUEUE_FILE_ID_LEN + 1] = "";
    uint64_t n = 0, pos;
    sx_iter_start(&it, x);
    while (sx_iter_peek(&it, &e) == 1) {
        if (n > 0 && memcmp(last, e.fid, QUEUE_FILE_ID_LEN) >= 0)
            abort(); /* accepted only in order */
        memcpy(last, e.fid, sizeof(last));
        if (sx_find(x, e.fid, &f, &pos) == 1 && (pos != n || f.cp_off != e.cp_off))
            abort(); /* found where the walk saw it */
        if (sx_get(x, n, &f) != 0 || memcmp(f.fid, e.fid, QUEUE_FILE_ID_LEN) != 0)
            abort();
        sx_iter_next(&it);
        n++;
    }
    sx_iter_free(&it);
    if (n != sx_files(x))
        abort();
    int64_t due;
    char fid[QUEUE_FILE_ID_LEN + 1];
    uint64_t steps = 0;
    while (sx_due_peek(x, &due, fid) == 1 && steps++ <= sx_files(x)) {
        sx_find(x, fid, &f, NULL);
        sx_due_passed(x, due, fid);
        sx_due_next(x);
    }
    if (steps > sx_files(x) + 1)
        abort(); /* the cursor ends */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    uint64_t nfiles = data[0] % (len / SX_FILE_SIZE + 1);
    uint64_t ndue = (len - nfiles * SX_FILE_SIZE) / SX_DUE_SIZE;
    len = nfiles * SX_FILE_SIZE + ndue * SX_DUE_SIZE;
    struct buf h = BUF_INIT;
    header(&h, body, len, nfiles, ndue);
    FILE *tmp = tmpfile();
    if (!tmp)
        abort();
    int fd = dup(fileno(tmp));
    fclose(tmp);
    if (fd < 0 || write_all(fd, h.s, h.len) != 0 || write_all(fd, body, len) != 0)
        abort();
    buf_free(&h);
    struct sx *x = NULL;
    const char *why = NULL;
    if (sx_open(&x, fd, NUMBER, sx_checkpoint_size(CP_END), &why) == 0)
        exercise(x);
    else if (!why)
        abort(); /* a refusal always says why */
    sx_close(x);
    return 0;
}
