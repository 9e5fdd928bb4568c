/*
 * destination — SPEC D8: a next hop (the list of next hops of a job, as
 * its text "h1,h2") whose attempt failed at connection level is deferred
 * as a whole for a while, so that a dead destination does not take the
 * delivery slots of live ones (Postfix qmgr's "dead site", qmail's
 * per-host back-off).
 *
 *   - A job whose every recipient came back temporary without reaching any
 *     server (relay "none": connection refused or timed out, no address,
 *     DNS failure) marks its destination dead for the back-off of retry.h
 *     (retry_min, doubled per failure in a row, at most retry_max).
 *     Failures of jobs sent before it was marked do not extend it.
 *   - While dead, its recipients are not sent: the caller defers them to
 *     the end of the back-off ("delivery temporarily suspended") and they
 *     use no slot; their message ids are kept (at most DEST_WAITERS_MAX).
 *   - When the back-off has run out, one job goes as the probe; while it
 *     is out, the others wait as while dead.
 *   - Any job there that reaches a server (a success, or any reply) makes
 *     it alive again and hands back the ids that waited (they are woken:
 *     due now).
 * Only dead or probed destinations are kept. Memory only: after a restart
 * every destination is alive. Must never: hold a recipient back without
 * the caller recording its deferral (durable, with its next try).
 */
#ifndef ONEHOP_ROUTER_DESTINATION_H
#define ONEHOP_ROUTER_DESTINATION_H

#include <stddef.h>
#include <stdint.h>

#include "router/retry.h"

#define DEST_WAITERS_MAX 10000

enum dest_admit { DEST_SEND, DEST_PROBE, DEST_WAIT };

struct destinations;

struct destinations *dest_new(void);
void dest_free(struct destinations *ds);
/* May a job for key go at now? DEST_PROBE: yes, as the probe (the caller
 * reports its end like any job). DEST_WAIT: no; *wake: until when
 * (unix seconds), *why: the failure that made it dead (valid until the
 * next call). */
enum dest_admit dest_admit(struct destinations *ds, const char *key, int64_t now, int64_t *wake,
                           const char **why);
/* Remember id as waiting for key (woken by dest_reached). */
void dest_wait(struct destinations *ds, const char *key, const char *id);
/* A job for key failed at connection level. 1 if that made it dead. */
int dest_failed(struct destinations *ds, const char *key, const char *reason, int64_t now,
                const struct retry_policy *p);
/* A job for key reached a server: alive. The ids that waited, to wake,
 * into *ids (the caller frees each and the array), their count returned. */
size_t dest_reached(struct destinations *ds, const char *key, char ***ids);
/* Forget the marks of the destinations a recipient's recorded route names
 * (the route text of `onehop queue show`: each " -> KEY" in it, KEY as
 * the job key "h1,h2"), so that a flush of that recipient's domain tries
 * them now and leaves every other destination's mark alone. The count of
 * marks forgotten. */
size_t dest_forget_route(struct destinations *ds, const char *route);
/* Destinations dead or probed now (logs, tests). */
size_t dest_dead_count(const struct destinations *ds);

#endif
