/*
 * newaliases — `newaliases`, `sendmail -bi` and `sendmail -I` (SPEC 1):
 * validate CONFDIR/aliases and make a running router reload it.
 *
 * Each mistake is printed as FILE:LINE: message (common/aliases.h finds
 * them); any mistake means exit 1 and no reload, so a broken file never
 * replaces a good one in a running router. onehop keeps no compiled alias
 * database: the router reads the text file, so validating is all there is
 * to build. A running router is then asked on its control socket
 * (common/router_ctl.h: NEWALIASES) to validate it again and read routes,
 * sites and aliases anew; its answer (refusal, FILE:LINE: messages) is
 * printed. With no router running the file is only validated, and that is
 * said.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "diag.h"
#include "router_ctl.h"
#include "safeio.h"
#include "sendmail.h"

#define RELOAD_TIMEOUT_MS 120000

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
    struct rctl_request req = {RCTL_NEWALIASES, RCTL_SEL_NAMED, NULL, 0};
    enum rctl_ask_result asked =
        rctl_ask(c->run_dir, c->queue_dir, &req, "newaliases", RELOAD_TIMEOUT_MS);
    if (asked != RCTL_ASK_NOT_RUNNING)
        return asked == RCTL_ASK_DONE ? 0 : 1;
    if (sendmail_router_running(c) > 0) {
        fprintf(stderr,
                "newaliases: %s is valid, but onehop's router is starting: run "
                "newaliases again once it runs\n",
                c->config_dir);
        return 1;
    }
    fprintf(stderr, "newaliases: aliases are valid; onehop is stopped: the router reads them "
                    "when it starts\n");
    return 0;
}
