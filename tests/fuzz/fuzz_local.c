/*
 * fuzz_local — libFuzzer target for what onehop-local reads from the
 * router (common/local_proto.c): any bytes as an LP_JOB record. A decoded
 * job must name 1..LP_RCPT_MAX recipients, each an address, a |command or
 * a /file with a known origin, and encode again to the same bytes (the
 * decoder loses or invents nothing). Crashes, sanitizer reports and leaks
 * are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "local_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lp_job j;
    struct buf again = BUF_INIT;
    const char *why;
    if (lp_get_job(data, size, &j, &why) == 0) {
        if (j.nrcpt == 0 || j.nrcpt > LP_RCPT_MAX)
            __builtin_trap();
        for (size_t i = 0; i < j.nrcpt; i++)
            if (!j.rcpt[i].recipient[0] || j.rcpt[i].origin > LP_FROM_ALIASES)
                __builtin_trap();
        lp_put_job(&again, &j);
        if (again.len != size || memcmp(again.s, data, size) != 0)
            __builtin_trap();
        lp_job_free(&j);
    } else if (!why || j.rcpt || j.queue_id || j.sender) {
        __builtin_trap();
    }
    buf_free(&again);
    return 0;
}
