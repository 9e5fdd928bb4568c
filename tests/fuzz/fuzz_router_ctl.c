/*
 * fuzz_router_ctl — libFuzzer target for what the router reads on its
 * control socket and what the admin clients read back (common/router_ctl.c):
 * any bytes as a REQUEST, a NOTE and a DONE record. A decoded request must
 * fit its op (rctl_request_check) and encode again to the same bytes (the
 * decoder loses or invents nothing); a note's stream and a done's status
 * stay in range. Crashes, sanitizer reports and leaks are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "router_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rctl_request req;
    struct rctl_note n;
    struct rctl_done d;
    struct buf text = BUF_INIT, again = BUF_INIT;
    const char *why;
    if (rctl_get_request(data, size, &req, &why) == 0) {
        if (rctl_request_check(req.op, req.select, req.nargs) != NULL)
            __builtin_trap();
        rctl_put_request(&again, &req);
        if (again.len != size || memcmp(again.s, data, size) != 0)
            __builtin_trap();
    }
    rctl_request_free(&req);
    if (rctl_get_note(data, size, &n, &text, &why) == 0 && n.stream > RCTL_TO_STDERR)
        __builtin_trap();
    if (rctl_get_done(data, size, &d, &text, &why) == 0 && d.status > 1)
        __builtin_trap();
    buf_free(&text);
    buf_free(&again);
    return 0;
}
