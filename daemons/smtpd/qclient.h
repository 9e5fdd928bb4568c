/*
 * qclient — smtpd's side of the channel to its persistent `onehop-queue
 * --server` (queue/inject_proto.h "server mode"): many transactions at
 * once over one channel, each answered by INJ_OK (committed: durable) or
 * INJ_FAIL.
 *
 *     t = qclient_begin(q, sender, done, arg);   INJ_BEGIN
 *     qclient_attr(q, t, name, value); qclient_rcpt(q, t, addr, orcpt, notify);
 *     qclient_data(q, t, bytes, n) ...            INJ_DATA, in chunks
 *     qclient_end(q, t);                          INJ_END: done() follows
 *     qclient_abort(q, t);                        INJ_ABORT: done() never
 *
 * (The records are written later than the calls: a transaction's go out
 * together at its end or with a chunk of content, and all of a loop
 * round's in one write before the loop waits; qclient.c says how.)
 *
 * done(arg, id, NULL) after INJ_OK; done(arg, NULL, reply) with an SMTP
 * reply line ("451 4.3.0 ...", "452 4.3.1 ...", "552 5.3.4 ...") after
 * INJ_FAIL, or when the channel closed before the answer (the queue server
 * died: nothing committed can be assumed, 451). qclient_forget() detaches
 * a transaction from its session (the session closed): its answer is then
 * dropped. A qclient that is down (qclient_up() == 0), or that has
 * INJ_TXN_MAX transactions open, takes nothing: qclient_begin returns NULL.
 * A transaction handle is valid until done() ran or it was aborted or
 * forgotten.
 *
 * Backpressure: while qclient_congested(), sessions should stop reading
 * their clients; on_drain(arg) says when to resume.
 *
 * Must never: report a message queued without INJ_OK, or call done twice.
 */
#ifndef ONEHOP_SMTPD_QCLIENT_H
#define ONEHOP_SMTPD_QCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef void qclient_done_cb(void *arg, const char *id, const char *reply);

struct qclient;
struct qtxn;

/* Drive fd (the QUEUE channel end); on_down(arg) once it closes. */
struct qclient *qclient_open(uv_loop_t *loop, int fd, void (*on_down)(void *),
                             void (*on_drain)(void *), void *arg);
void qclient_close(struct qclient *q);
int qclient_up(const struct qclient *q);
size_t qclient_pending(const struct qclient *q); /* transactions not answered */
int qclient_congested(const struct qclient *q);

struct qtxn *qclient_begin(struct qclient *q, const char *sender, qclient_done_cb *done, void *arg);
void qclient_attr(struct qclient *q, struct qtxn *t, const char *name, const char *value);
void qclient_rcpt(struct qclient *q, struct qtxn *t, const char *addr, const char *orcpt,
                  const char *notify);
void qclient_data(struct qclient *q, struct qtxn *t, const void *p, size_t n);
void qclient_end(struct qclient *q, struct qtxn *t);
void qclient_abort(struct qclient *q, struct qtxn *t);
void qclient_forget(struct qclient *q, struct qtxn *t);

#endif
