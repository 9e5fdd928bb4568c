/*
 * smetrics — onehop-smtpd's metrics (common/metrics.h; listed in
 * docs/metrics.md), counted where the SPEC 8 lines are logged: messages
 * received by SMTP (`ID: client=...`, after the queue committed them; the
 * router counts every source in onehop_messages_received_total),
 * connections (`connect from`), sessions open now, connections refused at
 * once (over a limit) and commands or messages rejected (`NOQUEUE:
 * reject`).
 *
 * Must never: change a session; it only counts.
 */
#ifndef ONEHOP_SMTPD_SMETRICS_H
#define ONEHOP_SMTPD_SMETRICS_H

enum smetrics_event {
    SM_CONNECT,    /* a session began */
    SM_DISCONNECT, /* it ended */
    SM_REFUSED,    /* turned away with 421 at once */
    SM_REJECT,     /* NOQUEUE: reject */
    SM_QUEUED      /* a message committed */
};

/* Register the families (at start, so that every scrape names them). */
void smetrics_start(void);
void smetrics_event(enum smetrics_event e);

#endif
