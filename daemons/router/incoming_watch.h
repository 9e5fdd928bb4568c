/*
 * incoming_watch — the names of the files committed into incoming/, as the
 * kernel reports them (inotify: IN_MOVED_TO, IN_CREATE on each of the
 * QUEUE_BUCKETS bucket directories; the commit is the rename into place,
 * queue.h), so that the router learns a new file without listing every
 * bucket of incoming/ and active/ at each trigger pull.
 *
 * Contract: a file committed after incoming_watch_open() returned is either
 * named by a later incoming_watch_take(), or incoming_watch_take() returns
 * -1 ("list everything": the kernel's event queue overflowed, a bucket went
 * away) and the watch is broken from then on (incoming_watch_ok() is 0;
 * the caller falls back to full listings and may open a new watch). The
 * names are hints: a named file may be known already, or gone.
 * Must never: drop an overflow silently, or name a file outside incoming/.
 */
#ifndef ONEHOP_ROUTER_INCOMING_WATCH_H
#define ONEHOP_ROUTER_INCOMING_WATCH_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"

struct incoming_watch;

/* Called (from the loop) when names or an overflow are waiting. */
typedef void incoming_watch_cb(void *arg);

/* Watch queue_dir/incoming/HH for every bucket. NULL (errno) if the kernel
 * refuses a watch: the caller lists instead. */
struct incoming_watch *incoming_watch_open(uv_loop_t *loop, const char *queue_dir,
                                           incoming_watch_cb *cb, void *arg);
/* The file ids reported since the last call, appended to out
 * (QUEUE_FILE_ID_LEN + 1 bytes each, NUL-terminated): their number, or -1
 * when something may have been missed (see the top): once, then 0. */
long incoming_watch_take(struct incoming_watch *w, struct buf *out);
int incoming_watch_ok(const struct incoming_watch *w);
/* Stop watching; the handle is freed once libuv closed it. */
void incoming_watch_close(struct incoming_watch *w);

#endif
