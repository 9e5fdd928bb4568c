/*
 * fuzz_journal — the state side's journal and checkpoint parser
 * (queue/state_journal.h sj_parse_image): any bytes as a segment (first
 * input byte even) or a checkpoint (odd). It must refuse or accept without
 * reading out of bounds, leaking or aborting; what it accepts must add up:
 * valid bytes within the image, every record handed out within bounds and
 * at most SJ_RECORD_MAX long, a refusal always with a reason. Every record
 * handed out is also applied to a state (queue/state.h state_apply_record),
 * so the record decoder and the model meet the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "state_journal.h"

struct seen {
    size_t bytes;
    struct state *state;
};

static int check_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                        size_t len)
{
    struct seen *s = arg;
    if (len > SJ_RECORD_MAX || (len > 0 && !p))
        abort();
    unsigned char sum = 0;
    for (size_t i = 0; i < len; i++) /* touch every byte (ASan checks the bounds) */
        sum ^= p[i];
    (void)sum;
    s->bytes += len + SJ_RECORD_OVERHEAD;
    state_apply_record(s->state, type, p, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int checkpoint = data[0] & 1;
    struct seen s = {0, state_new_detached()};
    uint64_t number;
    size_t valid;
    const char *why = NULL;
    int rc =
        sj_parse_image(data + 1, size - 1, checkpoint, &number, check_record, &s, &valid, &why);
    struct state_counts c;
    state_count(s.state, &c);
    state_close(s.state);
    if (rc != 0 && !why)
        abort(); /* a refusal always says why */
    if (valid > size - 1 || s.bytes > valid + SJ_RECORD_OVERHEAD + 8)
        abort();
    if (rc == 0 && !checkpoint && SJ_HEADER_SIZE + valid != size - 1)
        abort(); /* a whole segment is header + records, nothing else */
    return 0;
}
