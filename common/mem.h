/*
 * mem — allocation that never returns NULL: on exhaustion the process logs
 * and exits (fail-stop; a daemon is restarted by the master, a command
 * reports a temporary failure).
 */
#ifndef ONEHOP_MEM_H
#define ONEHOP_MEM_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow an array of `size`-byte elements to hold at least `need`; updates *cap. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
