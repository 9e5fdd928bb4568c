/*
 * classify — SPEC D4 for one SMTP delivery attempt, as ONE TABLE OF DATA:
 * what a failure at each stage of the dialogue means for the recipients
 * (the table is also written in docs/remote-classification.md; each row
 * has its own unit test in tests/unit/test_remote_classify.c).
 *
 * The rule of D4: a recipient is bounced only on a 5xx reply to MAIL, RCPT
 * or DATA (or to the final dot) from a server that accepted the session.
 * Everything else (refused, reset, timeouts, 4xx, 421 at any stage, a
 * greeting that rejects us with 4xx or 5xx) ends this address for the
 * recipients still open, and the next address / MX is tried; a recipient
 * that no address settles is deferred (temporary).
 *
 * Must never: classify a failure that happened before the server accepted
 * the session, or a 4xx reply, as permanent.
 */
#ifndef ONEHOP_REMOTE_CLASSIFY_H
#define ONEHOP_REMOTE_CLASSIFY_H

#include "remote_proto.h"

enum smtp_stage {
    STAGE_CONNECT,  /* TCP connect */
    STAGE_GREETING, /* the 220 banner */
    STAGE_EHLO,
    STAGE_HELO,
    STAGE_MAIL,
    STAGE_RCPT,
    STAGE_DATA,    /* the DATA command (354 expected) */
    STAGE_CONTENT, /* the message, the final dot and its reply */
    STAGE_COUNT
};

enum smtp_event {
    EVENT_REFUSED, /* connection refused */
    EVENT_TIMEOUT, /* the stage's smtp_*_timeout ran out */
    EVENT_LOST,    /* reset, closed, or a reply we cannot parse */
    EVENT_421,     /* 421: the server closes the session (RFC 5321 3.8) */
    EVENT_4XX,     /* any other 4xx (or a reply code the stage does not expect) */
    EVENT_5XX,     /* 5xx */
    EVENT_TOO_BIG, /* our message exceeds the server's SIZE (RFC 1870) */
    EVENT_NO_UTF8, /* the envelope needs SMTPUTF8 and the server does not offer it (RFC 6531) */
    EVENT_COUNT
};

enum smtp_action {
    ACT_NEXT_ADDRESS, /* this session is over: every open recipient goes on to the next address */
    ACT_TRY_HELO,     /* EHLO refused: fall back to HELO (RFC 5321 4.1.1.1, 3.2) */
    ACT_RCPT_NEXT, /* this recipient: temporary here, tried at the next address; session goes on */
    ACT_RCPT_BOUNCE, /* this recipient: permanent; the session goes on */
    ACT_TXN_BOUNCE   /* every recipient of the transaction: permanent */
};

struct d4_row {
    enum smtp_stage stage;
    enum smtp_event event;
    enum smtp_action action;
    enum rp_class last_resort; /* a recipient's class when no later address settles it */
    int maybe_delivered;       /* the server may have taken the message: say so in the log */
};

/* The row for (stage, event), or NULL when that pair cannot happen (a
 * refused connection after the greeting...): the caller treats NULL as
 * ACT_NEXT_ADDRESS, temporary. */
const struct d4_row *d4_classify(enum smtp_stage stage, enum smtp_event event);
/* The whole table, for tests and documentation. */
const struct d4_row *d4_rows(size_t *n);
/* The event of a reply code at a stage that did not get the code it wanted. */
enum smtp_event d4_event_of_code(int code);
const char *smtp_stage_name(enum smtp_stage s); /* "RCPT TO", ... (Postfix's "in reply to") */

#endif
