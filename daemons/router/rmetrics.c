/*
 * rmetrics — the router's counters and queue gauges. See rmetrics.h.
 */
#include "router/rmetrics.h"

#include <string.h>
#include <time.h>

#include "metrics.h"
#include "queue.h"
#include "state.h"
#include "router/router.h"

static struct metric *received, *delivered, *deferred, *bounced, *delay, *depth, *oldest;

/* Seconds from arrival to delivery: from a local mailbox write to a day
 * in the queue. */
static const double delay_bounds[] = {0.05, 0.1, 0.25, 0.5, 1,    2.5,  5,
                                      10,   30,  60,   300, 3600, 86400};

static void collect_queue(void *arg)
{
    struct router *r = arg;
    if (!r->s)
        return;
    struct state_counts c;
    state_count(r->s, &c);
    metric_set(depth, "incoming", (double)c.incoming);
    metric_set(depth, "active", (double)c.active);
    metric_set(depth, "deferred", (double)c.deferred);
    metric_set(depth, "hold", (double)c.hold);
    double now_us = (double)time(NULL) * 1e6;
    double age = c.oldest_arrival_us && now_us > (double)c.oldest_arrival_us
                     ? (now_us - (double)c.oldest_arrival_us) / 1e6
                     : 0;
    metric_set(oldest, NULL, (double)(long long)age);
}

void rmetrics_start(struct router *r)
{
    delivered = metric_counter("onehop_delivered_total",
                               "Recipients delivered (status=sent), by transport.", "transport");
    deferred =
        metric_counter("onehop_deferred_total",
                       "Delivery attempts deferred (status=deferred), by transport.", "transport");
    bounced = metric_counter("onehop_bounced_total",
                             "Recipients bounced (status=bounced), by transport.", "transport");
    delay =
        metric_histogram("onehop_delivery_delay_seconds",
                         "Seconds from arrival to delivery of each delivered recipient.",
                         "transport", delay_bounds, sizeof(delay_bounds) / sizeof(delay_bounds[0]));
    depth = metric_gauge("onehop_queue_messages",
                         "Messages in the queue by state (as onehop qstat).", "state");
    oldest = metric_gauge("onehop_queue_oldest_message_age_seconds",
                          "Age of the oldest message in the queue (0: empty).", NULL);
    static const char *const transports[] = {"remote", "local", "none"};
    for (size_t i = 0; i < 3; i++) { /* named from the start, for rate() */
        metric_add(delivered, transports[i], 0);
        metric_add(deferred, transports[i], 0);
        metric_add(bounced, transports[i], 0);
    }
    received = metric_counter("onehop_messages_received_total",
                              "Messages received, by source (smtp, sendmail, bounce).", "source");
    metric_add(received, "smtp", 0);
    metric_add(received, "sendmail", 0);
    metric_add(received, "bounce", 0);
    metrics_on_collect(collect_queue, r);
}

void rmetrics_result(int local, const struct rp_result *res)
{
    const char *transport = local ? "local" : "remote";
    if (res->cls == RP_OK) {
        metric_inc(delivered, transport);
        metric_observe(delay, transport, (double)res->delay_ms / 1000);
    } else {
        metric_inc(res->cls == RP_PERM ? bounced : deferred, transport);
    }
}

void rmetrics_router_status(const char *status)
{
    metric_inc(strcmp(status, "bounced") == 0 ? bounced : deferred, "none");
}

static const char *source_of(const struct queue_msg *qm)
{
    if (queue_attr_value(qm->attr, qm->nattr, "client_address"))
        return "smtp";
    return qm->sender[0] ? "sendmail" : "bounce";
}

void rmetrics_dispatch(const struct state_msg *m, const struct queue_msg *qm)
{
    if (m->nfinal)
        return;
    for (uint32_t k = 0; k < m->nrcpt; k++)
        if (m->rcpt[k].attempts)
            return;
    metric_inc(received, source_of(qm));
}
