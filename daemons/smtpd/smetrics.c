/*
 * smetrics — onehop-smtpd's counters. See smetrics.h.
 */
#include "smtpd/smetrics.h"

#include "metrics.h"

static struct metric *received, *connections, *sessions, *refused, *rejects;

void smetrics_start(void)
{
    if (received)
        return;
    received = metric_counter("onehop_smtpd_messages_total",
                              "Messages received by SMTP and queued.", NULL);
    connections =
        metric_counter("onehop_smtpd_connections_total", "SMTP client connections accepted.", NULL);
    sessions = metric_gauge("onehop_smtpd_sessions", "SMTP sessions open now.", NULL);
    refused = metric_counter("onehop_smtpd_refused_total",
                             "Connections refused at once (421: over a limit).", NULL);
    rejects = metric_counter("onehop_smtpd_rejects_total",
                             "Commands or messages rejected (NOQUEUE: reject).", NULL);
}

void smetrics_event(enum smetrics_event e)
{
    smetrics_start();
    switch (e) {
    case SM_CONNECT:
        metric_inc(connections, NULL);
        metric_add(sessions, NULL, 1);
        break;
    case SM_DISCONNECT:
        metric_add(sessions, NULL, -1);
        break;
    case SM_REFUSED:
        metric_inc(refused, NULL);
        break;
    case SM_REJECT:
        metric_inc(rejects, NULL);
        break;
    case SM_QUEUED:
        metric_inc(received, NULL);
        break;
    }
}
