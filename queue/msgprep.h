/*
 * msgprep — what the sendmail front end does to a message before it hands
 * it to onehop-queue (SPEC section 2):
 *
 * Input (msgprep_input_*): the bytes read on standard input become the
 * queue's stored form (queue.h "content"): every line ends in LF. A line may
 * end in LF or CR LF; every carriage return right before the line end is
 * dropped, so the relayed copy (to which the SMTP client adds CR) never holds
 * CR CR LF; a last line without a line end gets one. A leading mbox
 * "From " line is dropped (sendmail and Postfix practice). Unless
 * MSGPREP_IGNORE_DOTS (-i, -oi), a line holding only "." ends the message
 * and the rest of the input is not read (there is no dot-stuffing on
 * standard input). A NUL byte, or text longer than the size limit, is
 * refused (EX_DATAERR) as soon as it is seen.
 *
 * Envelope (msgprep_begin): the sender (-f/-r; "" or "<>" is the null
 * sender) and each command-line argument, which is an RFC 5322 address list
 * as in sendmail ("a@b, Name <c@d>"). A bare local part gets "@myorigin"
 * (Postfix practice); every address must pass addr_parse() (RFC 5321).
 *
 * Message (msgprep_finish): the header section is parsed (folded fields
 * included); with MSGPREP_EXTRACT (-t) the recipients of To:, Cc: and Bcc:
 * are added to those of the command line, or, when the message has any
 * Resent- field, those of Resent-To:, Resent-Cc: and Resent-Bcc: (RFC 5322
 * 3.6.6, as sendmail and Postfix do). Bcc: and Resent-Bcc: are always
 * removed. Missing Message-ID:, Date: and From: fields are added at the end
 * of the header section (RFC 5322 3.6: Date: and From: are required). The
 * body is separated from the header by an empty line even when the input
 * had none. Duplicate recipients are dropped. No recipient at all is a usage
 * error (EX_USAGE), as in Postfix.
 *
 * Results are sysexits.h codes: EX_OK, EX_USAGE (no recipients), EX_DATAERR
 * (bad address, NUL byte, too big), EX_TEMPFAIL (reading failed); on any
 * other than EX_OK, err holds a one-line explanation. Nothing here writes to
 * the queue, logs, or exits.
 */
#ifndef ONEHOP_MSGPREP_H
#define ONEHOP_MSGPREP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addrlist.h"
#include "buf.h"

enum {
    MSGPREP_EXTRACT = 1,    /* -t: recipients from the header too */
    MSGPREP_IGNORE_DOTS = 2 /* -i, -oi: a lone "." is an ordinary line */
};

struct msgprep_config {
    const char *myhostname; /* Message-ID domain; MAILER-DAEMON's domain */
    const char *myorigin;   /* appended to bare local parts */
    uint64_t size_limit;    /* message_size_limit in bytes; 0: none */
};

struct msgprep_request {
    unsigned flags;
    const char *sender;     /* -f/-r, else the user's login name; "" or "<>": null sender */
    const char *full_name;  /* -F, or NULL: the generated From: has no display name */
    char *const *rcpt_args; /* command-line recipients */
    size_t nrcpt_args;
    time_t now;         /* for Date: and Message-ID: */
    const char *unique; /* unique text for the generated Message-ID's left part */
};

struct prepared_message {
    char *sender;         /* "local@domain", or "" for the null sender */
    struct addrlist rcpt; /* qualified, in order of appearance, without duplicates */
    struct buf content;   /* header section, empty line, body; LF lines (queue.h) */
};

/* ---- reading standard input ---- */
struct msgprep_input {
    unsigned flags;
    uint64_t limit;
    struct buf *text; /* canonical text is appended here */
    struct buf line;  /* the line being assembled */
    int first_line;   /* for the mbox "From " line */
    int ended;        /* the lone "." was seen */
};

void msgprep_input_init(struct msgprep_input *in, unsigned flags, uint64_t limit, struct buf *text);
/* Feed the next n input bytes. Returns EX_OK (0) to go on, EX_DATAERR with err
 * set; in->ended tells that the rest of the input is to be ignored. */
int msgprep_input_feed(struct msgprep_input *in, const char *p, size_t n, struct buf *err);
/* End of input: completes a last line without line end. EX_OK or EX_DATAERR. */
int msgprep_input_finish(struct msgprep_input *in, struct buf *err);
void msgprep_input_free(struct msgprep_input *in);
/* All of the above on a file descriptor; EX_TEMPFAIL when read(2) fails. */
int msgprep_read_fd(int fd, unsigned flags, uint64_t limit, struct buf *text, struct buf *err);

/* ---- preparing the message ---- */
/* Envelope sender and command-line recipients into m (which must be zeroed).
 * EX_OK, EX_DATAERR, or EX_USAGE (no recipient and no MSGPREP_EXTRACT): these
 * can be checked before any input is read. */
int msgprep_begin(const struct msgprep_config *cfg, const struct msgprep_request *req,
                  struct prepared_message *m, struct buf *err);
/* The canonical text (from msgprep_input) into m->content, adding header
 * recipients with MSGPREP_EXTRACT. EX_OK, EX_USAGE or EX_DATAERR. */
int msgprep_finish(const struct msgprep_config *cfg, const struct msgprep_request *req,
                   const char *text, size_t len, struct prepared_message *m, struct buf *err);
void prepared_message_free(struct prepared_message *m);

/* RFC 5322 3.3 date-time of t in local time, e.g. "Sun, 22 Nov 2026 09:57:16 +0000". */
void msgprep_format_date(time_t t, struct buf *out);

#endif
