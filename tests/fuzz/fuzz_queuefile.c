/*
 * fuzz_queuefile — the queue file reader (queue/queue.h queue_parse): any
 * bytes as a whole queue file image. It must refuse or accept without
 * reading out of bounds, leaking, or aborting; an accepted file must be
 * self-consistent (ids, content ranges inside the file, states computable).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

static void check_accepted(const struct queue_file *f, size_t size)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        const struct queue_msg *m = &f->msg[i];
        if (!queue_id_valid(m->id) || m->content_offset + m->size > size || m->nrcpt == 0)
            abort();
        (void)queue_state_name(queue_msg_state(m, f->place));
        for (size_t r = 0; r < m->nrcpt; r++)
            if (!m->rcpt[r].addr || m->rcpt[r].state > QRCPT_BOUNCED)
                abort();
    }
    if (f->committed_len + f->log_len + f->torn_bytes != size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct queue_file f;
    const char *why = NULL;
    if (queue_parse(data, size, "0PKX3B2Q7ZM012KG", &f, &why) == 0) {
        check_accepted(&f, size);
        queue_file_free(&f);
    } else if (!why) {
        abort(); /* a refusal always says why */
    }
    return 0;
}
