/*
 * metrics — the counters, gauges and histograms of one process, and their
 * rendering in the Prometheus text exposition format, version 0.0.4
 * (`onehop metrics`, SPEC 1; the list of every metric: docs/metrics.md).
 *
 * One registry per process. A daemon registers its families once at start
 * and bumps them where it logs the event; the master link answers the
 * master's DLINK_METRICS with metrics_render() by itself (daemon_link.h),
 * so a daemon does nothing else. Registering the same name twice returns
 * the same family (a reload may run its set-up again).
 *
 * A family has at most one label (its name fixed at registration; NULL:
 * none). Each distinct label value is one series, at most
 * METRICS_SERIES_MAX per family: later values are counted under the value
 * "other", so a stream of new destinations cannot grow memory or the
 * scrape without bound. Histograms have fixed upper bounds (seconds).
 *
 * Rendered text: per family `# HELP name text` and `# TYPE name kind`,
 * then one line per series `name{label="value"} number` (a histogram: its
 * cumulative `name_bucket{...,le="B"}` lines up to le="+Inf", then
 * `name_sum` and `name_count`). Label values are escaped (\\ \" \n), as
 * are HELP texts (\\ \n). A family with no series yet and no label renders
 * its value 0, so a scrape always names every unlabelled metric.
 *
 * Must never: parse anything (the text is built, never read back), block,
 * or take a name that the format would reject (a bug: log_fatal).
 */
#ifndef ONEHOP_METRICS_H
#define ONEHOP_METRICS_H

#include <stddef.h>

#include "buf.h"

#define METRICS_SERIES_MAX 64
#define METRICS_BUCKETS_MAX 16
/* The rendered text of one process stays well under this (the master
 * link's record limit, daemon_link.h). */
#define METRICS_TEXT_MAX (512u * 1024)

struct metric;

/* name must match [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's ends in _total. */
struct metric *metric_counter(const char *name, const char *help, const char *label);
struct metric *metric_gauge(const char *name, const char *help, const char *label);
/* bounds: nbounds (<= METRICS_BUCKETS_MAX) increasing upper bounds. */
struct metric *metric_histogram(const char *name, const char *help, const char *label,
                                const double *bounds, size_t nbounds);

/* value: the label's value (NULL or ignored for a family without label). */
void metric_inc(struct metric *m, const char *value);
void metric_add(struct metric *m, const char *value, double v); /* counter: v >= 0 */
void metric_set(struct metric *m, const char *value, double v); /* gauge */
void metric_observe(struct metric *m, const char *value, double v);

/* Called at the start of each metrics_render(), e.g. to set gauges from
 * the state they describe (queue depth). At most 8 per process. */
typedef void metrics_collect_fn(void *arg);
void metrics_on_collect(metrics_collect_fn *fn, void *arg);

/* Append the whole registry's text to out. */
void metrics_render(struct buf *out);

/* Append one family's HELP and TYPE lines (the master renders the merged
 * families it builds itself with these and metrics_sample). */
void metrics_render_head(struct buf *out, const char *name, const char *help, const char *kind);
/* `name{label="value"} v\n` (label NULL: `name v`); value escaped. */
void metrics_render_sample(struct buf *out, const char *name, const char *label, const char *value,
                           double v);

/* Forget every family and hook (unit tests). */
void metrics_reset(void);

#endif
