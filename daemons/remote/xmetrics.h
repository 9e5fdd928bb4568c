/*
 * xmetrics — onehop-remote's metrics (common/metrics.h; listed in
 * docs/metrics.md), by destination (the job's first next hop, as the
 * per-destination concurrency counts it: `b.test`, `[192.0.2.1]:25`):
 * connections attempted, established and reused, and the duration of each
 * delivery attempt (from the job's start to every recipient's result: DNS,
 * connections, the SMTP transactions).
 *
 * Must never: change a delivery; it only counts.
 */
#ifndef ONEHOP_REMOTE_XMETRICS_H
#define ONEHOP_REMOTE_XMETRICS_H

enum xmetrics_conn { XM_CONNECT_ATTEMPT, XM_CONNECTED, XM_REUSED };

/* Register the families (at start, so that every scrape names them). */
void xmetrics_start(void);
void xmetrics_connection(const char *dest, enum xmetrics_conn what);
void xmetrics_attempt_done(const char *dest, double seconds);

#endif
