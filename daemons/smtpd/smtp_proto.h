/*
 * smtp_proto — the ESMTP server dialogue (RFC 5321) as a pure state
 * machine: bytes in, replies and events out, no I/O, no clock, no
 * look-ups. onehop-smtpd drives it on TCP sessions and `sendmail -bs`
 * (onehop-smtpd --bs) on standard input/output; the fuzz target drives it
 * with arbitrary bytes.
 *
 *     smtp_proto_init(&p, &cfg, &hooks, arg);
 *     smtp_proto_greeting(&p);             220 into p.out
 *     smtp_proto_input(&p, bytes, n);      replies appended to p.out
 *     ... the host writes p.out, and closes once p.closing is set
 *     smtp_proto_data_result(&p, "250 2.0.0 Ok: queued as ID")
 *                                          after hooks->data_end
 *
 * Extensions: PIPELINING (RFC 2920: every whole command in the input is
 * answered in order; only the end of DATA waits for the host), SIZE (RFC
 * 1870), 8BITMIME, ENHANCEDSTATUSCODES (RFC 2034), DSN (RFC 3461: RET,
 * ENVID, NOTIFY, ORCPT passed to the host), SMTPUTF8 (RFC 6531), STARTTLS
 * (RFC 3207: whatever follows the command in the input is discarded),
 * CHUNKING (RFC 3030 BDAT, without BINARYMIME; see below).
 *
 * Input rules (SPEC 3): only <CR><LF>.<CR><LF> ends DATA: a "." line ends
 * the message only when it and the line before it (or the DATA command)
 * end in CRLF, so \n.\r\n, \r\n.\n, \r.\r\n and \n.\n stay content. Bare
 * LF ends a line (smtpd_bare_newline = normalize) or refuses the command
 * or message (reject); a bare CR inside content is a line break
 * (normalize) or refuses the message (reject). Content reaches the host
 * with every line ending in CRLF and the dot-stuffing removed, so what is
 * relayed on has no bare LF or CR. Command lines over SMTP_CMD_MAX and
 * text lines over SMTP_TEXT_MAX bytes (with the CRLF, RFC 5321 4.5.3.1.4
 * and .6) are refused and never buffered whole; a message over
 * size_limit (declared with SIZE= or counted) gets 552 and nothing is
 * queued: the host hears data_abort and drops what it had.
 *
 * BDAT (RFC 3030): "BDAT n [LAST]" is followed by exactly n bytes of
 * content, taken by count whatever they contain (never read as commands,
 * never dot-unstuffed); pipelined chunks are read one after the other. The
 * content goes through the same line rules as DATA's: a line split across
 * chunks is joined, bare LF and bare CR are line breaks (normalize) or
 * refuse the message (reject), text lines over SMTP_TEXT_MAX are refused,
 * and a last line without its CRLF gets one (as Postfix). The size limit
 * counts every chunk of the message: one chunk over it gets 552 and
 * nothing is queued. Any refused BDAT (its chunk read and thrown away)
 * ends the transaction, so later BDATs of it get 503 (RFC 3030 2: the
 * client must not go on); DATA and RCPT in a BDAT transaction get 503;
 * RSET, EHLO/HELO and STARTTLS abort it (data_abort). A BDAT whose size
 * cannot be read leaves the input out of step: 501 and the session ends.
 *
 * Error counter: every 4xx/5xx reply to a command counts; at error_limit
 * the session ends with 421.
 *
 * Must never: read past what it was given, keep more than SMTP_CMD_MAX
 * (command) or SMTP_TEXT_MAX (data) bytes of one line, answer a command
 * out of order, or end a message at anything but CRLF.CRLF.
 */
#ifndef ONEHOP_SMTPD_SMTP_PROTO_H
#define ONEHOP_SMTPD_SMTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SMTP_CMD_MAX 512    /* RFC 5321 4.5.3.1.4, with the CRLF */
#define SMTP_TEXT_MAX 1000  /* RFC 5321 4.5.3.1.6, with the CRLF */
#define SMTP_JUNK_MAX 65536 /* bytes of one over-long command line before 421 */
#define SMTP_ERROR_LIMIT 20 /* 4xx/5xx command replies before 421 */

struct smtp_proto_cfg {
    const char *hostname;    /* greeting, EHLO, 421 texts */
    uint64_t size_limit;     /* message_size_limit; 0: none */
    unsigned max_rcpt;       /* smtpd_max_recipients */
    int bare_newline_reject; /* smtpd_bare_newline = reject */
    int tls_offered;         /* STARTTLS is available */
    unsigned error_limit;    /* 0: SMTP_ERROR_LIMIT */
};

/* The transaction the host sees (valid from MAIL until the reset). */
struct smtp_txn {
    struct buf sender; /* local@domain, "" for the null sender */
    char *ret, *envid; /* RFC 3461, NULL when not given */
    int smtputf8, body_8bit;
    uint64_t declared_size;
    char **rcpt, **orcpt, **notify; /* orcpt/notify "" when not given */
    size_t nrcpt, rcpt_cap;
};

struct smtp_proto;

struct smtp_hooks {
    /* MAIL accepted by syntax: NULL to go on, or a reply line (no CRLF)
     * such as "451 4.3.0 Queue unavailable". */
    const char *(*mail)(void *arg, struct smtp_proto *p);
    /* RCPT addr (local@domain): 0 to accept, else the reply in *reply. */
    int (*rcpt)(void *arg, struct smtp_proto *p, const char *addr, struct buf *reply);
    /* DATA with recipients: 0 and the host opened the message (354 follows),
     * else the refusal in *reply. */
    int (*data_begin)(void *arg, struct smtp_proto *p, struct buf *reply);
    /* Content: whole lines, each ending in CRLF, dot-stuffing removed. */
    void (*data)(void *arg, const char *s, size_t n);
    /* CRLF.CRLF: commit it and call smtp_proto_data_result() (later is fine). */
    void (*data_end)(void *arg);
    /* The message was refused (size, line length, bare newline) or the
     * session ends inside it: drop what was sent. */
    void (*data_abort)(void *arg);
    /* The 220 for STARTTLS is in p->out: write it, then start TLS and call
     * smtp_proto_tls_started(). */
    void (*starttls)(void *arg);
    /* A refused command: cmd ("RCPT"), the reply line (logs). May be NULL. */
    void (*reject)(void *arg, struct smtp_proto *p, const char *cmd, const char *reply);
};

enum smtp_state {
    SMTP_CMD,   /* reading commands */
    SMTP_DATA,  /* reading message content */
    SMTP_BDAT,  /* reading the bytes of a BDAT chunk */
    SMTP_WAIT,  /* CRLF.CRLF seen, waiting for smtp_proto_data_result */
    SMTP_TLS,   /* STARTTLS answered, waiting for the handshake */
    SMTP_CLOSED /* QUIT or 421: write p->out and close */
};

/* Commands counted for the "disconnect from" line (Postfix's order). */
enum smtp_cmd_id {
    CMD_HELO,
    CMD_EHLO,
    CMD_STARTTLS,
    CMD_MAIL,
    CMD_RCPT,
    CMD_DATA,
    CMD_BDAT,
    CMD_RSET,
    CMD_NOOP,
    CMD_VRFY,
    CMD_HELP,
    CMD_QUIT,
    CMD_UNKNOWN,
    CMD_COUNT
};

struct smtp_proto {
    struct smtp_proto_cfg cfg;
    const struct smtp_hooks *hooks;
    void *arg;
    enum smtp_state state;
    struct buf in;  /* input not yet taken */
    struct buf out; /* replies for the host to write */
    int closing;    /* set with SMTP_CLOSED */
    int running;    /* inside the input loop (a hook may answer at once) */
    int in_dropped; /* the input was forgotten inside the loop */
    /* session */
    struct buf helo;
    int esmtp, tls_active;
    unsigned errors;
    unsigned cmd_total[CMD_COUNT], cmd_ok[CMD_COUNT];
    /* command line reading */
    size_t junk; /* bytes of an over-long command line discarded */
    int junk_cr; /* the last discarded byte was CR */
    /* transaction */
    int in_mail;
    struct smtp_txn txn;
    /* DATA */
    uint64_t data_size;       /* content bytes passed on */
    size_t line_dropped;      /* bytes of the current (too long) line dropped */
    int prev_crlf;            /* the previous line ended in CRLF */
    const char *data_refusal; /* the reply for a refused message, NULL: fine */
    uint64_t messages;        /* messages accepted (250 after DATA) */
    /* BDAT (RFC 3030) */
    int bdat_txn;         /* the transaction sends its content with BDAT */
    int bdat_open;        /* the host has the message open (data_begin ran) */
    int bdat_last;        /* the chunk being read is the LAST one */
    uint64_t bdat_left;   /* bytes of the chunk still to read */
    uint64_t bdat_chunk;  /* size of the chunk being read */
    uint64_t bdat_total;  /* bytes of every chunk of the message */
    struct buf bdat_part; /* a content line not ended when its chunk ended */
    struct buf bdat_why;  /* the host's refusal of a BDAT (data_begin) */
};

void smtp_proto_init(struct smtp_proto *p, const struct smtp_proto_cfg *cfg,
                     const struct smtp_hooks *hooks, void *arg);
void smtp_proto_free(struct smtp_proto *p);
/* "220 HOST ESMTP onehop" */
void smtp_proto_greeting(struct smtp_proto *p);
/* Take n bytes from the client and answer every whole command. */
void smtp_proto_input(struct smtp_proto *p, const void *data, size_t n);
/* The outcome of the message of data_end: a reply line without CRLF.
 * Pipelined input that waited is processed next. */
void smtp_proto_data_result(struct smtp_proto *p, const char *reply);
/* The TLS handshake is done: RFC 3207 4.2, the session starts afresh. */
void smtp_proto_tls_started(struct smtp_proto *p);
/* End the session with "421 4.x.x HOST text" (shutdown, timeout, limits). */
void smtp_proto_close(struct smtp_proto *p, const char *code, const char *text);
/* Postfix's counts: "ehlo=1 mail=1 rcpt=0/1 data=1 quit=1 commands=4/5". */
void smtp_proto_counts(const struct smtp_proto *p, struct buf *out);
/* "ESMTP", "ESMTPS", "SMTP", "UTF8SMTPS"... (RFC 3848, 6531) */
const char *smtp_proto_protocol(const struct smtp_proto *p);

#endif
