/*
 * classify — the D4 table (see classify.h and docs/remote-classification.md).
 * Read a row as: "a EVENT at STAGE: do ACTION; if nothing later settles the
 * recipient, it is LAST_RESORT".
 */
#include "remote/classify.h"

#include <stddef.h>

#define T RP_TEMP
#define P RP_PERM

static const struct d4_row table[] = {
    /* No session yet: never permanent (D4: refused, reset, timeouts). */
    {STAGE_CONNECT, EVENT_REFUSED, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_CONNECT, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_CONNECT, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    /* A greeting that rejects us (4xx or 5xx, "your IP is denied") is not
     * a server that accepted the session: next address, never a bounce. */
    {STAGE_GREETING, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_GREETING, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_GREETING, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_GREETING, EVENT_4XX, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_GREETING, EVENT_5XX, ACT_NEXT_ADDRESS, T, 0},
    /* EHLO refused: an old server; RFC 5321 3.2 says fall back to HELO. */
    {STAGE_EHLO, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_EHLO, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_EHLO, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_EHLO, EVENT_4XX, ACT_TRY_HELO, T, 0},
    {STAGE_EHLO, EVENT_5XX, ACT_TRY_HELO, T, 0},
    /* HELO refused as well: this server will not talk to us. */
    {STAGE_HELO, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_HELO, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_HELO, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_HELO, EVENT_4XX, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_HELO, EVENT_5XX, ACT_NEXT_ADDRESS, T, 0},
    /* MAIL: 5xx from a server that accepted the session bounces (D4 a);
     * SIZE over the server's limit is permanent for that host only (RFC
     * 1870 6): the next host may take it, and if none does it bounces. */
    {STAGE_MAIL, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_MAIL, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_MAIL, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_MAIL, EVENT_4XX, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_MAIL, EVENT_5XX, ACT_TXN_BOUNCE, P, 0},
    {STAGE_MAIL, EVENT_TOO_BIG, ACT_NEXT_ADDRESS, P, 0},
    /* An address with UTF-8 to a server without SMTPUTF8: RFC 6531 3.4
     * says this server cannot take it (5.6.7); as for SIZE, that host only. */
    {STAGE_MAIL, EVENT_NO_UTF8, ACT_NEXT_ADDRESS, P, 0},
    /* RCPT: each recipient on its own; some succeed while others fail. */
    {STAGE_RCPT, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_RCPT, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_RCPT, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_RCPT, EVENT_4XX, ACT_RCPT_NEXT, T, 0},
    {STAGE_RCPT, EVENT_5XX, ACT_RCPT_BOUNCE, P, 0},
    /* DATA command. */
    {STAGE_DATA, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_DATA, EVENT_LOST, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_DATA, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_DATA, EVENT_4XX, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_DATA, EVENT_5XX, ACT_TXN_BOUNCE, P, 0},
    /* The content and the final dot: a connection lost or timed out before
     * the final reply may have left the message delivered (RFC 1047):
     * temporary, and logged as possibly delivered. */
    {STAGE_CONTENT, EVENT_TIMEOUT, ACT_NEXT_ADDRESS, T, 1},
    {STAGE_CONTENT, EVENT_LOST, ACT_NEXT_ADDRESS, T, 1},
    {STAGE_CONTENT, EVENT_421, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_CONTENT, EVENT_4XX, ACT_NEXT_ADDRESS, T, 0},
    {STAGE_CONTENT, EVENT_5XX, ACT_TXN_BOUNCE, P, 0},
};

#undef T
#undef P

const struct d4_row *d4_rows(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const struct d4_row *d4_classify(enum smtp_stage stage, enum smtp_event event)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].stage == stage && table[i].event == event)
            return &table[i];
    return NULL;
}

enum smtp_event d4_event_of_code(int code)
{
    if (code == 421)
        return EVENT_421;
    if (code >= 500 && code <= 599)
        return EVENT_5XX;
    return EVENT_4XX; /* 4xx, and any code the stage does not expect: retry elsewhere */
}

const char *smtp_stage_name(enum smtp_stage s)
{
    static const char *const names[STAGE_COUNT] = {"connect",   "greeting", "EHLO", "HELO",
                                                   "MAIL FROM", "RCPT TO",  "DATA", "end of DATA"};
    return s < STAGE_COUNT ? names[s] : "?";
}
