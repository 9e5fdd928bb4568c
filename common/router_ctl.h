/*
 * router_ctl — the records of the router's control socket
 * (run_dir/router.sock), spoken by `onehop flush`, `hold`, `release`,
 * `delete`, `sendmail -q` and `newaliases` (ipc.h records). The router
 * accepts only the instance's owner (the uid that started the master) and
 * root, by peer credentials (SO_PEERCRED); anyone else is closed at once,
 * without an answer.
 *
 *     client -> router   RCTL_REQUEST  u32 op (RCTL_FLUSH ...), u32 select
 *                                      (RCTL_SEL_*), u32 nargs, nargs x str arg
 *     router -> client   RCTL_NOTE     u32 stream (RCTL_TO_STDOUT, RCTL_TO_STDERR),
 *                                      str text (one line, no newline)
 *                        RCTL_DONE     u32 status (0 done, 1 failed), u32 count
 *                                      (messages or recipients acted on), str
 *                                      summary ("" or one line)
 *
 * What each op takes (anything else is refused by the decoder):
 *   FLUSH        select NAMED; no arg (every deferred recipient), or one:
 *                a queue ID or "@DOMAIN"
 *   HOLD, RELEASE, DELETE   select NAMED with 1..RCTL_ARGS_MAX queue IDs, or
 *                ALL / DEFERRED with none
 *   RELOAD, NEWALIASES      select NAMED, no arg
 * An argument holds no control character (it goes into log lines); queue
 * IDs are checked by the router (an unknown one is a NOTE), not here.
 *
 * One request per connection; the answer is any number of NOTEs and one
 * DONE, sent only once every change the request made is durable in the
 * state journal (queue/state.h). Must never: decode a record that is not
 * exactly one of these (short, long, unknown op or select, an argument
 * count that does not fit the op).
 *
 * The client side (blocking, no libuv: it links into the static sendmail)
 * is here too: rctl_connect and rctl_call.
 */
#ifndef ONEHOP_ROUTER_CTL_H
#define ONEHOP_ROUTER_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define ROUTER_SOCKET_NAME "router.sock"
#define ROUTER_SOCKET_FALLBACK_DIR "state" /* under queue_dir: the router's own */
#define RCTL_RECORD_MAX (2u * 1024 * 1024)
#define RCTL_ARGS_MAX 65536
#define RCTL_ARG_MAX 1024   /* a queue ID or "@" and a domain */
#define RCTL_TEXT_MAX 65536 /* a note or a summary */

enum rctl_type { RCTL_REQUEST = 1, RCTL_NOTE = 10, RCTL_DONE = 11 };

enum rctl_op {
    RCTL_FLUSH = 1,
    RCTL_HOLD = 2,
    RCTL_RELEASE = 3,
    RCTL_DELETE = 4,
    RCTL_RELOAD = 5,
    RCTL_NEWALIASES = 6
};
#define RCTL_OP_LAST RCTL_NEWALIASES

enum rctl_select { RCTL_SEL_NAMED = 0, RCTL_SEL_ALL = 1, RCTL_SEL_DEFERRED = 2 };

enum rctl_stream { RCTL_TO_STDOUT = 0, RCTL_TO_STDERR = 1 };

struct rctl_request {
    uint32_t op;     /* enum rctl_op */
    uint32_t select; /* enum rctl_select */
    char **args;     /* decoded: allocated (rctl_request_free) */
    size_t nargs;
};

struct rctl_note {
    uint32_t stream; /* enum rctl_stream */
    const char *text;
};

struct rctl_done {
    uint32_t status; /* 0 done, 1 failed */
    uint32_t count;
    const char *summary;
};

/* "flush", "hold", ... ("?" for anything else). */
const char *rctl_op_name(uint32_t op);
/* NULL when op, select and nargs fit together (the table above), else why. */
const char *rctl_request_check(uint32_t op, uint32_t select, size_t nargs);

/* Append one record to out. */
void rctl_put_request(struct buf *out, const struct rctl_request *req);
void rctl_put_note(struct buf *out, enum rctl_stream stream, const char *text);
void rctl_put_done(struct buf *out, uint32_t status, uint32_t count, const char *summary);

/* The record type of rec[0..len), or 0 when its header is unreadable. */
uint16_t rctl_record_type(const void *rec, size_t len);
/* Decode one whole record: 0, or -1 with *why. A request is allocated
 * (rctl_request_free, also after a failure); a note's and a done's text
 * point into text (the caller's buffer, replaced). */
int rctl_get_request(const void *rec, size_t len, struct rctl_request *req, const char **why);
void rctl_request_free(struct rctl_request *req);
int rctl_get_note(const void *rec, size_t len, struct rctl_note *n, struct buf *text,
                  const char **why);
int rctl_get_done(const void *rec, size_t len, struct rctl_done *d, struct buf *text,
                  const char **why);

/* ---------------------------------------------------- the client side ---- */

/* The socket's path in run_dir (fallback 0) or in queue_dir/state/
 * (fallback 1), into path. */
void rctl_socket_path(const char *run_dir, const char *queue_dir, int fallback, struct buf *path);
/* Connect to the router's socket (run_dir's, else the one in
 * queue_dir/state/): a blocking descriptor, or -1 with errno (ENOENT or
 * ECONNREFUSED: no router runs; EACCES: the socket is not ours;
 * ENAMETOOLONG). */
int rctl_connect(const char *run_dir, const char *queue_dir);
/* Send req on fd and read the answer, at most timeout_ms in all: each NOTE
 * goes to on_note (may be NULL), the DONE fills *done (its summary valid
 * until the next call with the same text buffer). 0, or -1 with *why:
 * errno EPIPE / ECONNRESET or a clean EOF (errno 0) before the DONE mean
 * the router closed the connection without an answer (a refused peer, or a
 * router that stopped); ETIMEDOUT; EPROTO for a malformed answer. */
typedef void rctl_note_fn(void *arg, const struct rctl_note *n);
int rctl_call(int fd, const struct rctl_request *req, int timeout_ms, rctl_note_fn *on_note,
              void *arg, struct rctl_done *done, struct buf *text, const char **why);

/* The whole exchange for a command: connect to the router, send req,
 * print each NOTE (to its stream) and the DONE's summary (to standard
 * error), each line prefixed with "PROGRAM: ". Returns what happened;
 * everything but RCTL_ASK_NOT_RUNNING has been told to the user. */
enum rctl_ask_result {
    RCTL_ASK_DONE,        /* DONE with status 0 */
    RCTL_ASK_FAILED,      /* DONE with status 1 (the notes say why) */
    RCTL_ASK_NOT_RUNNING, /* no router listens (no socket, or nobody behind it) */
    RCTL_ASK_REFUSED,     /* the socket is not ours, or the router closed without an answer */
    RCTL_ASK_ERROR        /* no answer in time, a malformed answer, another error */
};
enum rctl_ask_result rctl_ask(const char *run_dir, const char *queue_dir,
                              const struct rctl_request *req, const char *program, int timeout_ms);

#endif
