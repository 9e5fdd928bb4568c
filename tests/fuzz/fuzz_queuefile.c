/*
 * fuzz_queuefile — the queue file reader (queue/queue.h queue_parse): any
 * bytes as a whole queue file image. It must refuse or accept without
 * reading out of bounds, leaking, or aborting; an accepted file must be
 * self-consistent (ids, content ranges inside the file, states computable,
 * a format 3 file named by its header and ending at its commit).
 * Each input is parsed under a fixed file id and, when it looks like a
 * format 3 header, under the id that header names, so that the fuzzer gets
 * past the name check into the envelope (checksums pass in fuzz builds).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define FIXED_FID "0PKX3B2Q7ZM012KG"

static void check_accepted(const struct queue_file *f, const char *fid, size_t size)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        const struct queue_msg *m = &f->msg[i];
        if (!queue_id_valid(m->id) || strncmp(m->id, fid, QUEUE_FILE_ID_LEN) != 0 ||
            m->content_offset + m->size > size || m->nrcpt == 0)
            abort();
        (void)queue_state_name(queue_msg_state(m, f->place));
        for (size_t r = 0; r < m->nrcpt; r++)
            if (!m->rcpt[r].addr || m->rcpt[r].state > QRCPT_BOUNCED)
                abort();
    }
    if (f->committed_len + f->log_len + f->torn_bytes != size)
        abort();
    if (f->version == 3 && (f->committed_len != size || f->log_len != 0))
        abort(); /* format 3 carries no state log */
}

static void parse_as(const uint8_t *data, size_t size, const char *fid)
{
    struct queue_file f;
    const char *why = NULL;
    if (queue_parse(data, size, fid, &f, &why) == 0) {
        check_accepted(&f, fid, size);
        queue_file_free(&f);
    } else if (!why) {
        abort(); /* a refusal always says why */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_as(data, size, FIXED_FID);
    if (size >= 56 && memcmp(data, "OHQUEUE3", 8) == 0) {
        char fid[QUEUE_FILE_ID_LEN + 1];
        memcpy(fid, data + 40, QUEUE_FILE_ID_LEN);
        fid[QUEUE_FILE_ID_LEN] = '\0';
        if (queue_file_id_valid(fid))
            parse_as(data, size, fid);
    }
    return 0;
}
