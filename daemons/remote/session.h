/*
 * session — one SMTP client session (RFC 5321) with one address, for the
 * open recipients of one delivery (delivery.h), on the daemon's libuv
 * loop: connect (smtp_connect_timeout), the greeting
 * (smtp_greeting_timeout), EHLO with the HELO fallback, MAIL, RCPT and
 * DATA (smtp_command_timeout each; sent in one write when the server
 * offers PIPELINING, RFC 2920), the content with CRLF and dot-stuffing
 * and the final reply (smtp_data_timeout for each write and for the
 * reply), QUIT. SIZE (RFC 1870) is announced and checked, BODY=8BITMIME
 * given when offered (RFC 6152), DSN's NOTIFY and ORCPT passed when
 * offered (RFC 3461); ENHANCEDSTATUSCODES replies are kept as they come.
 * Every failure is classified by the D4 table (classify.h) and reported
 * to the delivery per recipient; the session then ends and the delivery
 * moves on to its next address.
 *
 * Connection reuse (SPEC D7): after a transaction that ended with the
 * final reply (or with every RCPT refused) the session says RSET and is
 * kept idle for smtp_connection_idle, for at most
 * smtp_connection_reuse_limit messages in all. A later session to the
 * same address and port (and MX host name) takes it instead of
 * connecting. The address is chosen first (D1 order and shuffling), the
 * cache only answers "is there an open connection to this address?", so
 * reuse never defeats the spreading over equal MX hosts. An idle
 * connection the server closes, or that says anything, is closed.
 *
 * Must never: block the loop, wait without a timer, send a line the
 * recipient's or sender's text could split (the caller validated them),
 * or call the delivery after it reported its end.
 */
#ifndef ONEHOP_REMOTE_SESSION_H
#define ONEHOP_REMOTE_SESSION_H

#include "remote/delivery.h"
#include "remote/mxorder.h"

struct session;

/* Start a session with t for d's open recipients; it reports through
 * delivery_note/delivery_settle and ends with delivery_session_ended(). */
struct session *session_start(struct delivery *d, const struct mx_target *t);
/* End at once (the daemon stops): the handles close, then
 * delivery_session_ended() runs from the loop as usual. */
void session_abort(struct session *s);
/* Close every idle connection of env (the daemon stops). */
void session_close_idle(struct remote_env *env);

#endif
