/*
 * xmetrics — onehop-remote's counters and histogram. See xmetrics.h.
 */
#include "remote/xmetrics.h"

#include "metrics.h"

static struct metric *conns[3], *attempt;

/* From a reused connection to a local sink to the slowest timeouts. */
static const double attempt_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2.5,  5,     10,   30,  60,   300};

void xmetrics_start(void)
{
    if (attempt)
        return;
    conns[XM_CONNECT_ATTEMPT] =
        metric_counter("onehop_remote_connection_attempts_total",
                       "Outbound SMTP connections attempted, by destination.", "destination");
    conns[XM_CONNECTED] =
        metric_counter("onehop_remote_connections_total",
                       "Outbound SMTP connections established, by destination.", "destination");
    conns[XM_REUSED] =
        metric_counter("onehop_remote_connections_reused_total",
                       "Transactions on a kept connection, by destination.", "destination");
    attempt = metric_histogram("onehop_remote_attempt_seconds",
                               "Duration of each delivery attempt (DNS, connections, SMTP), "
                               "by destination.",
                               "destination", attempt_bounds,
                               sizeof(attempt_bounds) / sizeof(attempt_bounds[0]));
}

void xmetrics_connection(const char *dest, enum xmetrics_conn what)
{
    xmetrics_start();
    metric_inc(conns[what], dest);
}

void xmetrics_attempt_done(const char *dest, double seconds)
{
    xmetrics_start();
    metric_observe(attempt, dest, seconds);
}
