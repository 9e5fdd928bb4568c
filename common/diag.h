/*
 * diag — a list of configuration errors, each reported as
 *
 *     FILE:LINE: message
 *
 * (SPEC section 1, `onehop check`). Parsers add to a diag instead of printing
 * so that one run reports every mistake in every file, and so that a daemon
 * can log them and a command can print them. LINE 0 means "the file as a
 * whole" and prints as FILE: message.
 */
#ifndef ONEHOP_DIAG_H
#define ONEHOP_DIAG_H

#include <stdio.h>
#include <stddef.h>

struct diag_item {
    char *file;
    unsigned line;
    char *text;
};

struct diag {
    struct diag_item *v;
    size_t n, cap;
};

#define DIAG_INIT {NULL, 0, 0}

void diag_add(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sort the items added since index `from` by line number, keeping the
 * order of items of one line (stable), so a file reads top to bottom. */
void diag_sort_by_line(struct diag *d, size_t from);
/* Print every item, one per line, in the order added. */
void diag_print(const struct diag *d, FILE *f);
/* Log every item with log_error(). */
void diag_log(const struct diag *d);
void diag_free(struct diag *d);

#endif
