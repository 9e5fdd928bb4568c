/*
 * qshape — the table of `onehop qshape` (SPEC 1), as Postfix's qshape(1)
 * prints it: the queued messages by recipient domain and by age.
 *
 *                                          T  5 10 20 40 80 160 320 640 1280 1280+
 *                                   TOTAL  3  1  0  0  0  0   0   0   0    0     2
 *                                  b.test  2  1  0  0  0  0   0   0   0    0     1
 *                                  c.test  1  0  0  0  0  0   0   0   0    0     1
 *
 * T is the row's total; bucket i counts the messages whose age (minutes
 * since arrival) is in [5 * 2^(i-1), 5 * 2^i), the first [0, 5), the last
 * "1280+" everything from 1280 minutes on (qshape's defaults: -t 5 -b 10).
 * A message counts once in each domain it has pending recipients in (two
 * recipients in one domain: once), and once in TOTAL. Domains are the part
 * after the last '@', lower-cased, a trailing dot dropped (an address
 * without a domain counts under its own name); rows go by total,
 * descending, then by length and name. Widths as qshape's: each column as
 * wide as its heading or TOTAL's figure and a space (at least 3), the
 * domain column takes what is left of 80 (at least 18); a longer domain is
 * cut from the left behind a '+'.
 *
 * JSON: {"queue": "all", "columns": ["T", "5", ... "1280+"], "rows":
 * [{"domain": "TOTAL", "total": N, "buckets": [10 counts]}, ...]}.
 * Must never: count a message twice in one row, or read past its inputs.
 */
#ifndef ONEHOP_ADMIN_QSHAPE_H
#define ONEHOP_ADMIN_QSHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define QSHAPE_BUCKETS 10
#define QSHAPE_TICK_MINUTES 5

struct qshape_row {
    char *domain;
    unsigned long total;
    unsigned long n[QSHAPE_BUCKETS];
    struct qshape_row *next_in_slot; /* the lookup table's chain */
};

struct qshape {
    struct qshape_row total;
    struct qshape_row **rows; /* in insertion order, sorted by qshape_sort */
    size_t nrows, cap;
    struct qshape_row **slot; /* the lookup table */
    size_t nslots;
};

/* The bucket (0 .. QSHAPE_BUCKETS - 1) of a message age_seconds old (a
 * negative age, a clock step back, is 0). */
unsigned qshape_bucket(int64_t age_seconds);
/* The domain address counts under, lower-cased, into out. */
void qshape_domain(const char *address, struct buf *out);

void qshape_init(struct qshape *t);
/* One message age_seconds old with pending recipients addrs[0..n): once in
 * TOTAL, once in each of their domains. A message with none is skipped. */
void qshape_add_message(struct qshape *t, int64_t age_seconds, const char *const *addrs, size_t n);
/* Rows by total descending, then shorter domain first, then by name. */
void qshape_sort(struct qshape *t);
void qshape_text(const struct qshape *t, struct buf *out);
void qshape_json(const struct qshape *t, const char *queue, struct buf *out);
void qshape_free(struct qshape *t);

#endif
