/*
 * qshape — buckets, rows and the two renderings of `onehop qshape`. See
 * qshape.h. Rows are found through a small chained hash table on the
 * domain (FNV-1a: the input is the administrator's own queue, and a queue
 * of a million messages with many domains must not be quadratic).
 */
#include "admin/qshape.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mem.h"

#define TERMINAL_WIDTH 80
#define DOMAIN_WIDTH_MIN 18

unsigned qshape_bucket(int64_t age_seconds)
{
    /* qshape: m = age / tick; m < 1 -> the first; else 1 + floor(log2 m) */
    int64_t m = age_seconds / (60 * QSHAPE_TICK_MINUTES);
    unsigned b = 0;
    while (m >= 1 && b < QSHAPE_BUCKETS - 1) {
        b++;
        m /= 2;
    }
    return b;
}

void qshape_domain(const char *address, struct buf *out)
{
    const char *at = strrchr(address, '@');
    const char *d = at ? at + 1 : address;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '.')
        n--;
    buf_clear(out);
    for (size_t i = 0; i < n; i++)
        buf_addc(out, (char)tolower((unsigned char)d[i]));
    buf_cstr(out);
}

void qshape_init(struct qshape *t)
{
    memset(t, 0, sizeof(*t));
    t->total.domain = xstrdup("TOTAL");
    t->nslots = 1024;
    t->slot = xcalloc(t->nslots, sizeof(*t->slot));
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void grow_slots(struct qshape *t)
{
    size_t n = t->nslots * 2;
    struct qshape_row **slot = xcalloc(n, sizeof(*slot));
    for (size_t i = 0; i < t->nrows; i++) {
        struct qshape_row *r = t->rows[i];
        size_t k = fnv1a(r->domain) & (n - 1);
        r->next_in_slot = slot[k];
        slot[k] = r;
    }
    free(t->slot);
    t->slot = slot;
    t->nslots = n;
}

static struct qshape_row *row_for(struct qshape *t, const char *domain)
{
    size_t k = fnv1a(domain) & (t->nslots - 1);
    for (struct qshape_row *r = t->slot[k]; r; r = r->next_in_slot)
        if (strcmp(r->domain, domain) == 0)
            return r;
    struct qshape_row *r = xcalloc(1, sizeof(*r));
    r->domain = xstrdup(domain);
    r->next_in_slot = t->slot[k];
    t->slot[k] = r;
    t->rows = xgrow(t->rows, &t->cap, t->nrows + 1, sizeof(*t->rows));
    t->rows[t->nrows++] = r;
    if (t->nrows > t->nslots)
        grow_slots(t);
    return r;
}

static void count_in(struct qshape_row *r, unsigned b)
{
    r->total++;
    r->n[b]++;
}

/* 1 if row r was already counted for this message (rows[0..n)). */
static int counted(struct qshape_row *const *rows, size_t n, const struct qshape_row *r)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i] == r)
            return 1;
    return 0;
}

void qshape_add_message(struct qshape *t, int64_t age_seconds, const char *const *addrs, size_t n)
{
    if (n == 0)
        return;
    unsigned b = qshape_bucket(age_seconds);
    struct buf domain = BUF_INIT;
    struct qshape_row **done = xcalloc(n, sizeof(*done));
    size_t ndone = 0;
    count_in(&t->total, b);
    for (size_t i = 0; i < n; i++) {
        qshape_domain(addrs[i], &domain);
        struct qshape_row *r = row_for(t, buf_cstr(&domain));
        if (!counted(done, ndone, r)) {
            done[ndone++] = r;
            count_in(r, b);
        }
    }
    free(done);
    buf_free(&domain);
}

static int by_total(const void *a, const void *b)
{
    const struct qshape_row *x = *(const struct qshape_row *const *)a;
    const struct qshape_row *y = *(const struct qshape_row *const *)b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    size_t lx = strlen(x->domain), ly = strlen(y->domain);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

void qshape_sort(struct qshape *t)
{
    if (t->nrows > 1)
        qsort(t->rows, t->nrows, sizeof(*t->rows), by_total);
}

/* ------------------------------------------------------------ text ---- */

static void heading(unsigned i, struct buf *out)
{
    buf_clear(out);
    if (i == 0)
        buf_adds(out, "T");
    else if (i < QSHAPE_BUCKETS)
        buf_printf(out, "%u", QSHAPE_TICK_MINUTES << (i - 1));
    else
        buf_printf(out, "%u+", QSHAPE_TICK_MINUTES << (i - 2));
    buf_cstr(out);
}

static unsigned long cell(const struct qshape_row *r, unsigned i)
{
    return i == 0 ? r->total : r->n[i - 1];
}

static void add_right(struct buf *out, const char *s, size_t width)
{
    size_t n = strlen(s);
    for (; n < width; n++)
        buf_addc(out, ' ');
    buf_adds(out, s);
}

static void add_domain(struct buf *out, const char *d, size_t width)
{
    size_t n = strlen(d);
    if (n <= width) {
        add_right(out, d, width);
        return;
    }
    buf_addc(out, '+');
    buf_adds(out, d + n - (width - 1));
}

static void add_row(struct buf *out, const struct qshape_row *r, const size_t *w, size_t dw)
{
    struct buf n = BUF_INIT;
    add_domain(out, r->domain, dw);
    for (unsigned i = 0; i <= QSHAPE_BUCKETS; i++) {
        buf_clear(&n);
        buf_printf(&n, "%lu", cell(r, i));
        add_right(out, buf_cstr(&n), w[i]);
    }
    buf_addc(out, '\n');
    buf_free(&n);
}

void qshape_text(const struct qshape *t, struct buf *out)
{
    size_t w[QSHAPE_BUCKETS + 1], dw = TERMINAL_WIDTH;
    struct buf h = BUF_INIT, n = BUF_INIT;
    for (unsigned i = 0; i <= QSHAPE_BUCKETS; i++) {
        heading(i, &h);
        buf_clear(&n);
        buf_printf(&n, "%lu", cell(&t->total, i));
        size_t l = h.len > n.len ? h.len : n.len;
        w[i] = l > 2 ? l + 1 : 3;
        dw = dw > w[i] ? dw - w[i] : 0;
    }
    if (dw < DOMAIN_WIDTH_MIN)
        dw = DOMAIN_WIDTH_MIN;
    add_right(out, "", dw);
    for (unsigned i = 0; i <= QSHAPE_BUCKETS; i++) {
        heading(i, &h);
        add_right(out, h.s, w[i]);
    }
    buf_addc(out, '\n');
    add_row(out, &t->total, w, dw);
    for (size_t i = 0; i < t->nrows; i++)
        add_row(out, t->rows[i], w, dw);
    buf_free(&h);
    buf_free(&n);
}

/* ------------------------------------------------------------ JSON ---- */

static void json_row(struct buf *out, const struct qshape_row *r)
{
    buf_addc(out, '{');
    json_field_cstr(out, "domain", r->domain);
    json_field_uint(out, "total", r->total);
    json_add_key(out, "buckets");
    buf_addc(out, '[');
    for (unsigned i = 0; i < QSHAPE_BUCKETS; i++) {
        if (i)
            buf_addc(out, ',');
        json_add_uint(out, r->n[i]);
    }
    buf_adds(out, "]}");
}

void qshape_json(const struct qshape *t, const char *queue, struct buf *out)
{
    struct buf h = BUF_INIT;
    buf_addc(out, '{');
    json_field_cstr(out, "queue", queue);
    json_add_key(out, "columns");
    buf_addc(out, '[');
    for (unsigned i = 0; i <= QSHAPE_BUCKETS; i++) {
        heading(i, &h);
        if (i)
            buf_addc(out, ',');
        json_add_cstr(out, h.s);
    }
    buf_addc(out, ']');
    json_add_key(out, "rows");
    buf_addc(out, '[');
    json_row(out, &t->total);
    for (size_t i = 0; i < t->nrows; i++) {
        buf_addc(out, ',');
        json_row(out, t->rows[i]);
    }
    buf_adds(out, "]}\n");
    buf_free(&h);
}

void qshape_free(struct qshape *t)
{
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i]->domain);
        free(t->rows[i]);
    }
    free(t->rows);
    free(t->slot);
    free(t->total.domain);
    memset(t, 0, sizeof(*t));
}
