/*
 * smtp_wire — the bytes of an SMTP client session (RFC 5321), free of I/O
 * so that each rule is unit-tested:
 *   - replies: lines "CODE-text" ... "CODE text" (4.2.1), all with the same
 *     code; at most SMTP_REPLY_MAX bytes and SMTP_REPLY_LINES lines (a
 *     server that sends more is broken or hostile: a protocol error);
 *   - the EHLO reply's extensions (PIPELINING, SIZE, 8BITMIME,
 *     ENHANCEDSTATUSCODES, STARTTLS, DSN, SMTPUTF8);
 *   - whether text needs SMTPUTF8 (RFC 6531: any byte >= 0x80);
 *   - the message on the wire: stored content has LF line ends; each LF
 *     becomes CRLF and a line starting with "." gets one more (4.5.2,
 *     dot-stuffing); the end is CRLF "." CRLF, with a CRLF added first when
 *     the content does not end in a line end.
 * Must never: read or write outside its buffers, or accept a reply line
 * without a three-digit code.
 */
#ifndef ONEHOP_REMOTE_SMTP_WIRE_H
#define ONEHOP_REMOTE_SMTP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SMTP_REPLY_MAX 65536
#define SMTP_REPLY_LINES 256

struct smtp_reply {
    int code;
    struct buf text;  /* "CODE line1 line2 ..." (lines joined by one space), for logs */
    struct buf lines; /* each line's text after the code, one per '\n' (EHLO keywords) */
};

struct smtp_reader {
    struct buf in;   /* bytes not yet taken */
    unsigned nlines; /* lines of the reply being read */
    int code;        /* its code, 0 before its first line */
};

void smtp_reader_init(struct smtp_reader *r);
void smtp_reader_free(struct smtp_reader *r);
void smtp_reply_free(struct smtp_reply *rep);
/* Append bytes received. */
void smtp_reader_feed(struct smtp_reader *r, const void *p, size_t n);
/* The next whole reply into rep (replaced): 1, 0 (more bytes needed), or
 * -1 with *why (malformed, mixed codes, too long). */
int smtp_reader_next(struct smtp_reader *r, struct smtp_reply *rep, const char **why);

struct smtp_ext {
    int pipelining, eightbitmime, enhancedstatuscodes, starttls, dsn, smtputf8;
    int has_size;
    uint64_t size; /* SIZE's limit; 0: none announced (RFC 1870 4) */
};
/* The extensions of an EHLO reply (its first line is the greeting). */
void smtp_ext_parse(const struct smtp_reply *ehlo, struct smtp_ext *ext);

struct smtp_dot {
    int at_line_start; /* 1 before the first byte and after each LF */
};
void smtp_dot_init(struct smtp_dot *d);
/* Encode p[0..n) of stored content onto out. */
void smtp_dot_encode(struct smtp_dot *d, const char *p, size_t n, struct buf *out);
/* The end of the message: CRLF if the last line was not ended, then ".\r\n". */
void smtp_dot_finish(struct smtp_dot *d, struct buf *out);
/* What one pass over the stored content learns, chunk by chunk. */
struct smtp_scan {
    int at_line_start; /* 1 before the first byte and after each LF */
    int in_header;     /* before the empty line that ends the header (RFC 5322 2.1) */
    int eightbit;      /* a byte >= 0x80 anywhere */
    int header_8bit;   /* a byte >= 0x80 in the header: UTF-8 header fields (RFC 6532) */
};
void smtp_scan_init(struct smtp_scan *sc);
/* Bytes on the wire for content p[0..n) (without the final dot): for SIZE. */
uint64_t smtp_wire_size(const char *p, size_t n, struct smtp_scan *sc);
/* 1 if s has a byte >= 0x80: an address that needs SMTPUTF8 (RFC 6531 3.3). */
int smtp_text_is_utf8(const char *s);

#endif
