/*
 * fuzz_dnsproto — libFuzzer target for the DNS cache protocol decoders
 * (common/dnsproto.c): any bytes as one record, read as each record type
 * the daemon and its clients accept; a decoded answer must encode again to
 * the same bytes (the daemon's one-step encoder against the decoder), the
 * daemon's allocation-free LOOKUP decoder agrees with the generic one, a
 * decoded request name is normalized without reading past its end, and a
 * name that dnsp_reverse_parse takes as the reverse name of an address is
 * the one dnsp_reverse_name gives for it (one cache key per address).
 * Crashes, sanitizer reports and leaks are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void answer_round_trip(const uint8_t *data, size_t size)
{
    struct dnsp_answer a;
    const char *why;
    if (dnsp_get_answer(data, size, &a, &why) < 0)
        return;
    struct buf again = BUF_INIT;
    dnsp_put_answer(&again, dnsp_record_type(data, size), &a);
    if (again.len != size || memcmp(again.s, data, size) != 0)
        __builtin_trap();
    buf_free(&again);
    dnsp_answer_free(&a);
}

/* A normalized name that is a reverse name is the one reverse name of its
 * address (one cache key per address). */
static void reverse_round_trip(const char *name)
{
    int family;
    unsigned char addr[16];
    if (dnsp_reverse_parse(name, &family, addr) < 0)
        return;
    struct buf again = BUF_INIT;
    if (family != 4 && family != 6)
        __builtin_trap();
    dnsp_reverse_name(family, addr, &again);
    if (strcmp(buf_cstr(&again), name) != 0)
        __builtin_trap();
    buf_free(&again);
}

static void requests(const uint8_t *data, size_t size)
{
    struct buf name = BUF_INIT;
    uint32_t id, qtype, what;
    uint64_t v;
    const char *why;
    char fast[DNSP_NAME_MAX + 2];
    uint32_t id2, qtype2;
    const char *why2;
    int rc = dnsp_get_lookup(data, size, &id, &qtype, &name, &why);
    /* the allocation-free decoder of the daemon must agree in every detail */
    if (dnsp_get_lookup_name(data, size, &id2, &qtype2, fast, &why2) != rc)
        __builtin_trap();
    if (rc == 0 && (id != id2 || qtype != qtype2 || strcmp(buf_cstr(&name), fast) != 0))
        __builtin_trap();
    if (rc < 0 && strcmp(why, why2) != 0)
        __builtin_trap();
    if (rc == 0) {
        char *copy = strdup(buf_cstr(&name));
        if (copy && dnsp_name_normalize(copy, &why) == 0) {
            if (strlen(copy) > DNSP_NAME_MAX)
                __builtin_trap();
            reverse_round_trip(copy);
        }
        free(copy);
    }
    dnsp_get_flush(data, size, &name, &why);
    dnsp_get_dump(data, size, &what, &why);
    dnsp_get_counter(data, size, &name, &v, &why);
    dnsp_get_end(data, size, &what, &why);
    dnsp_get_flushed(data, size, &v, &why);
    dnsp_get_error(data, size, &name, &why);
    buf_free(&name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    requests(data, size);
    answer_round_trip(data, size);
    return 0;
}
