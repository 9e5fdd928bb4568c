/*
 * msgcopy — the message as onehop-local writes it: the stored content
 * (bytes [offset, offset + length) of the descriptor the router passed,
 * LF line ends) read with pread in chunks, never wholly in memory, behind
 * the envelope lines of the caller (Return-Path:, Delivered-To:, an mbox
 * `From ` line), with
 *   - CR LF (and any run of CRs before an LF) turned into LF (the queue
 *     stores LF; a stray CR LF is not carried into a mailbox either),
 *   - MSGCOPY_FROM_QUOTE: every line that starts with "From " written as
 *     ">From " (mboxo quoting, as Postfix's local and qmail-local do),
 *   - MSGCOPY_MBOX_END: the message ended with a newline and followed by
 *     one empty line (an mbox message's separator).
 * Also the loop check of Delivered-To: (qmail's and Postfix's rule).
 * Must never: read past the range, or trust a length from the content.
 */
#ifndef ONEHOP_LOCAL_MSGCOPY_H
#define ONEHOP_LOCAL_MSGCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum { MSGCOPY_FROM_QUOTE = 1, MSGCOPY_MBOX_END = 2 };

struct msgsrc {
    int fd;
    uint64_t offset, length;
};

struct msgcopy {
    const struct msgsrc *src;
    unsigned flags;
    uint64_t pos;      /* next content byte to read, relative to offset */
    size_t pending_cr; /* CRs read and not yet written (an LF may follow) */
    int line_start;    /* the next byte starts a line */
    size_t held;       /* bytes of "From " matched at a line start, not yet written */
    char last;         /* the last byte written */
    int done;
    struct buf out; /* the bytes of the current chunk */
};

/* Start a copy: prefix (may be NULL) first, as it is, then the content. */
void msgcopy_init(struct msgcopy *c, const struct msgsrc *src, unsigned flags,
                  const struct buf *prefix);
/* The next chunk in *p, *n: 1; 0 at the end; -1 with errno (a read error
 * on the message: the caller's delivery is temporary). */
int msgcopy_next(struct msgcopy *c, const char **p, size_t *n);
void msgcopy_free(struct msgcopy *c);

/* The whole copy written to fd; total bytes in *written. 0, or -1 with
 * errno (of the write, or of the message's read). */
int msgcopy_to_fd(const struct msgsrc *src, unsigned flags, const struct buf *prefix, int fd,
                  uint64_t *written);

/* 1 if a Delivered-To: header field of the message names addr (compared
 * without case), 0 if none does, -1 with errno on a read error. Only the
 * header section is read (up to MSGCOPY_HEADER_MAX bytes). */
#define MSGCOPY_HEADER_MAX (1024u * 1024)
int msgcopy_delivered_to(const struct msgsrc *src, const char *addr);

#endif
