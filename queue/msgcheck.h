/*
 * msgcheck — onehop-queue's streaming check and normalisation of message
 * content (inject_proto.h limits; queue.h "content").
 *
 * Raw input in any chunking goes in; the stored form comes out: every line
 * ends in LF (the carriage returns right before a line end are dropped, so
 * CRLF and bare LF input are both accepted), a last line without a line end
 * gets one. The checks, each a permanent failure with an RFC 3463 code:
 *   a NUL byte                                      5.6.0
 *   a stored line longer than INJ_LINE_MAX bytes    5.6.0
 *   more than INJ_HEADERS_MAX header fields         5.6.0
 *   more stored bytes than the size limit           5.3.4
 * Header fields are counted in the header section: it ends at the first
 * empty line, or at the first line that is neither a field ("name:" with
 * printable name characters, RFC 5322 2.2) nor a continuation (starts with
 * white space) — that line is body, as Postfix treats it.
 * After the first failure further input is ignored (the caller drains it
 * and throws away what was emitted).
 * Must never: let a failed check pass, or hold more than a few CRs itself.
 */
#ifndef ONEHOP_MSGCHECK_H
#define ONEHOP_MSGCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct msgcheck {
    uint64_t size_limit; /* 0: none */
    uint64_t size;       /* stored bytes so far */
    uint64_t line_len;   /* stored bytes of the current line */
    size_t held_cr;      /* CRs seen but not yet emitted */
    unsigned nheaders;
    int in_header;              /* still in the header section */
    int line_kind;              /* header line classification state, see msgcheck.c */
    const char *enhanced, *why; /* first failure, or NULL */
};

void msgcheck_init(struct msgcheck *c, uint64_t size_limit);
/* Check raw bytes and append their stored form to out. 0, or -1 once a
 * check failed (c->enhanced, c->why set). */
int msgcheck_feed(struct msgcheck *c, const void *p, size_t n, struct buf *out);
/* End of input: ends the last line. 0 or -1 as above. */
int msgcheck_finish(struct msgcheck *c, struct buf *out);

#endif
