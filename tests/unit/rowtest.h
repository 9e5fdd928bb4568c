/*
 * rowtest — run one cmocka test per row of a decision table, so that every
 * row is counted, named and reported on its own (STYLE.md: a unit test per
 * decision-table row). Header-only, for tests/unit/test_*.c.
 *
 *     struct rowtest t = ROWTEST_INIT;
 *     for (i...) rowtest_add(&t, test_fn, &rows[i], "parse_uint %s", rows[i].in);
 *     return rowtest_run(&t, "strparse");
 *
 * test_fn receives the row as *state.
 */
#ifndef ONEHOP_ROWTEST_H
#define ONEHOP_ROWTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "buf.h"
#include "mem.h"

struct rowtest {
    struct CMUnitTest *v;
    size_t n, cap;
};

#define ROWTEST_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
#define ROWS(t) (sizeof(t) / sizeof((t)[0]))

static inline void rowtest_add(struct rowtest *t, CMUnitTestFunction fn, const void *row,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static inline void rowtest_add(struct rowtest *t, CMUnitTestFunction fn, const void *row,
                               const char *fmt, ...)
{
    struct buf name = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&name, fmt, ap);
    va_end(ap);
    struct buf shown = BUF_INIT; /* control characters as \xNN, one name a line */
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.s[i];
        if (c < 0x20 || c == 0x7f)
            buf_printf(&shown, "\\x%02x", c);
        else
            buf_addc(&shown, (char)c);
    }
    buf_free(&name);
    t->v = xgrow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
    t->v[t->n].name = buf_steal(&shown);
    t->v[t->n].test_func = fn;
    t->v[t->n].setup_func = NULL;
    t->v[t->n].teardown_func = NULL;
    t->v[t->n].initial_state = (void *)(uintptr_t)row;
    t->n++;
}

static inline int rowtest_run(struct rowtest *t, const char *group)
{
    int failed = _cmocka_run_group_tests(group, t->v, t->n, NULL, NULL);
    for (size_t i = 0; i < t->n; i++)
        free((void *)(uintptr_t)t->v[i].name);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    return failed;
}

#endif
