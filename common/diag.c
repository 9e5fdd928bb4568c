/*
 * diag — collected FILE:LINE: errors. See diag.h.
 */
#include "diag.h"

#include <stdarg.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

void diag_add(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
{
    struct buf text = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    d->v = xgrow(d->v, &d->cap, d->n + 1, sizeof(*d->v));
    d->v[d->n].file = xstrdup(file);
    d->v[d->n].line = line;
    d->v[d->n].text = buf_steal(&text);
    d->n++;
}

void diag_sort_by_line(struct diag *d, size_t from)
{
    /* insertion sort: stable, and the items of one file are few */
    for (size_t i = from + 1; i < d->n; i++) {
        struct diag_item item = d->v[i];
        size_t j = i;
        while (j > from && d->v[j - 1].line > item.line) {
            d->v[j] = d->v[j - 1];
            j--;
        }
        d->v[j] = item;
    }
}

void diag_print(const struct diag *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].line)
            fprintf(f, "%s:%u: %s\n", d->v[i].file, d->v[i].line, d->v[i].text);
        else
            fprintf(f, "%s: %s\n", d->v[i].file, d->v[i].text);
    }
}

/* Line 0 is "the file as a whole": FILE: message, as diag_print writes it. */
void diag_log(const struct diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].line)
            log_error("%s:%u: %s", d->v[i].file, d->v[i].line, d->v[i].text);
        else
            log_error("%s: %s", d->v[i].file, d->v[i].text);
    }
}

void diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].text);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
