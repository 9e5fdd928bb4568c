/*
 * scrape — the master's side of `onehop metrics` and of metrics_file
 * (SPEC 1, 3; docs/metrics.md).
 *
 * A scrape sends DLINK_METRICS (daemon_link.h) to every running daemon and
 * waits at most SCRAPE_TIMEOUT_MS for their DLINK_METRICS_TEXT; a daemon
 * that does not answer in time is left out and counted in
 * onehop_metrics_scrape_errors_total{daemon}. The text is the master's own
 * families (onehop_up, onehop_daemon_restarts_total,
 * onehop_daemon_start_time_seconds, the scrape errors) followed by each
 * daemon's, in table order. Every family belongs to one process only, so
 * the concatenation names each family once.
 *
 * One scrape at a time: a request that comes while one runs waits for it
 * and gets the same text. The control clients waiting get MCTL_CHUNK
 * records (whole lines) and MCTL_OK; with metrics_file set, the same text
 * goes there every METRICS_FILE_PERIOD_S seconds: written to FILE.tmp,
 * fsync'd, renamed over FILE, the directory fsync'd, so node_exporter's
 * textfile collector never reads half a file.
 *
 * Must never: block the master's loop on a daemon, or write into a
 * channel that closed while it waited.
 */
#ifndef ONEHOP_MASTER_SCRAPE_H
#define ONEHOP_MASTER_SCRAPE_H

#include "master/master.h"

#define SCRAPE_TIMEOUT_MS 1000
#define METRICS_FILE_PERIOD_S 15

/* Register the master's families and start the metrics_file timer. */
void scrape_init(struct master *m);
/* A control client's MCTL_METRICS (client NULL: for metrics_file). */
void scrape_request(struct master *m, struct channel *client);
/* A daemon's DLINK_METRICS_TEXT. */
void scrape_answer(struct proc *p, const struct buf *text);
/* The control client closed: never answer it. */
void scrape_forget(struct channel *client);
/* Free what the scrapes kept (the loop's handles are closed already). */
void scrape_close(struct master *m);

#endif
