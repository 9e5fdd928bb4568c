/*
 * newaliases — `newaliases`, `sendmail -bi` and `sendmail -I` (SPEC 1):
 * validate CONFDIR/aliases and make a running router reload it.
 *
 * Each mistake is printed as FILE:LINE: message (common/aliases.h finds
 * them); any mistake means exit 1 and no reload, so a broken file never
 * replaces a good one in a running router. onehop keeps no compiled alias
 * database: the router reads the text file, so validating is all there is
 * to build. When a router runs (it holds state/lock, queue.h rule 3),
 * `onehop -C CONFIG_DIR reload` is run to make it read the file again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "diag.h"
#include "safeio.h"
#include "sendmail.h"

int sendmail_router_running(const struct conf *c)
{
    struct queue *q = NULL;
    const char *why = NULL;
    if (queue_open(&q, c->queue_dir, 0, &why) != 0)
        return errno == ENOENT ? 0 : -1;
    int lock, running = 0;
    if (queue_hold_off_router(q, &lock) != 0)
        running = errno == EWOULDBLOCK ? 1 : -1;
    else if (lock >= 0)
        close(lock);
    int e = errno;
    queue_close(q);
    errno = e;
    return running;
}

int sendmail_newaliases(const struct conf *c, const char *confdir)
{
    struct aliases a = ALIASES_INIT;
    struct diag d = DIAG_INIT;
    struct buf path = BUF_INIT;
    path_join(&path, confdir, "aliases");
    int rc = aliases_load(&a, buf_cstr(&path), &d) == 0 ? 0 : 1;
    diag_print(&d, stderr);
    if (rc != 0)
        fprintf(stderr, "newaliases: %s has %zu error%s; nothing was reloaded\n", buf_cstr(&path),
                d.n, d.n == 1 ? "" : "s");
    aliases_free(&a);
    diag_free(&d);
    buf_free(&path);
    if (rc != 0)
        return 1;
    int running = sendmail_router_running(c);
    if (running < 0) {
        fprintf(stderr, "newaliases: cannot check the queue %s: %s\n", c->queue_dir,
                strerror(errno));
        return 1;
    }
    if (running) {
        const char *const args[] = {"reload", NULL};
        return sendmail_run_onehop(c, args, 0) == 0 ? 0 : 1;
    }
    return 0;
}
