/*
 * onehop-queue — the only program that writes new messages into the queue
 * (ARCHITECTURE "Processes"; protocol and exit codes in inject_proto.h).
 *
 *     onehop-queue [-C DIR]            one-shot: one message, exec'd by sendmail
 *     onehop-queue [-C DIR] --server   group-committing server for smtpd
 *     onehop-queue [-C DIR] --recover  queue recovery now (queue.h queue_recover),
 *                                      only when no router runs; not set-uid
 *     onehop-queue [-C DIR] --list     the queue in mailq layout, for a user
 *                                      who may not read the queue (sendmail -bp
 *                                      execs this); only reads
 *     onehop-queue [-C DIR] --clean    the cleaner: takes, reclaims, removes and
 *                                      quarantines message files on the router's
 *                                      request (clean_proto.h, cleaner.c); not
 *                                      set-uid
 *
 * It may be installed set-uid to the queue account, so before anything else
 * it makes its own world safe: umask 027, fds 0-2 open (else /dev/null),
 * every other fd closed, SIGPIPE ignored, cwd "/", the environment emptied
 * (after reading $ONEHOP_CONFIG), and the set-uid privilege dropped when the
 * configuration directory is not the compiled-in one (a user's own config
 * must not steer the queue account).
 * Must never: trust its caller's environment, cwd or extra fds, or say a
 * message is queued before its commit is durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleaner.h"
#include "daemon_link.h"
#include "conf.h"
#include "diag.h"
#include "inject_proto.h"
#include "inject_server.h"
#include "log.h"
#include "mem.h"
#include "qlist.h"
#include "queue.h"
#include "sysdeps.h"

#ifdef __SANITIZE_ADDRESS__
/* Sanitizer builds only (never installed), which
 * tests/integration/test_setuid_install.py also runs set-uid: LeakSanitizer
 * inspects the process at exit with ptrace, which the kernel refuses for a
 * set-uid process (and ASAN_OPTIONS is not read there), so such a run keeps
 * ASan and UBSan but checks no leaks. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return getuid() != geteuid() ? "detect_leaks=0" : "";
}
#endif

static void usage(void)
{
    fprintf(stderr, "usage: onehop-queue [-C DIR] [--server | --recover | --list | --clean]\n");
    exit(INJ_EX_USAGE);
}

/* fds 0, 1, 2 open (a closed one would let a later open() land on it);
 * every other one closed but keep (the master link, or -1). */
static void sane_fds(int keep)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n != fd)
            _exit(INJ_EX_TEMPFAIL);
    }
    unsigned first = keep >= 3 ? (unsigned)keep + 1 : 3;
    if ((keep > 3 && close_range(3, (unsigned)keep - 1, 0) != 0) ||
        close_range(first, ~0u, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < (max < 0 || max > 65536 ? 65536 : max); fd++)
            if (fd != keep)
                close((int)fd);
    }
}

static int running_setid(void)
{
    return getuid() != geteuid() || getgid() != getegid();
}

/* A user's own configuration gets the user's own rights, nothing more. */
static void drop_setid(void)
{
    gid_t g = getgid();
    uid_t u = getuid();
    if (setgroups(0, NULL) != 0 && errno != EPERM)
        _exit(INJ_EX_TEMPFAIL);
    if (setgid(g) != 0 || setuid(u) != 0 || geteuid() != u || getegid() != g)
        _exit(INJ_EX_TEMPFAIL);
}

struct options {
    const char *config_dir;
    int server, recover, list, clean;
};

static void parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0)
            o->server = 1;
        else if (strcmp(argv[i], "--recover") == 0)
            o->recover = 1;
        else if (strcmp(argv[i], "--list") == 0)
            o->list = 1;
        else if (strcmp(argv[i], "--clean") == 0)
            o->clean = 1;
        else if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            o->config_dir = argv[++i];
        else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2])
            o->config_dir = argv[i] + 2;
        else
            usage();
    }
    if (o->server + o->recover + o->list + o->clean > 1)
        usage();
}

/* --recover, while no router runs: the writer side and the committed files
 * (queue.h queue_recover). Beside a running router nothing is done (it
 * recovers at start); when it cannot be told whether one runs, only the
 * writer side, which is safe beside one. Prints the counts. */
static int recover(struct inj_ctx *cx)
{
    struct queue_recovery r;
    int router_lock = -1;
    if (!cx->q) {
        fprintf(stderr, "onehop-queue: %s\n", cx->unavailable);
        return INJ_EX_TEMPFAIL;
    }
    if (running_setid()) {
        fprintf(stderr, "onehop-queue: --recover is for the queue owner, not set-uid use\n");
        return INJ_EX_USAGE;
    }
    if (queue_lock_owner(cx->q, 0) != 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, "onehop-queue: another recovery holds %s/lock/owner: nothing done\n",
                    queue_path(cx->q));
        else /* ENOSPC, EISDIR, EACCES...: say what really failed */
            fprintf(stderr, "onehop-queue: cannot lock %s/lock/owner: %s: nothing done\n",
                    queue_path(cx->q), strerror(errno));
        return INJ_EX_TEMPFAIL;
    }
    if (queue_hold_off_router(cx->q, &router_lock) == 0) {
        queue_recover(cx->q, &r);
    } else if (errno == EWOULDBLOCK) {
        fprintf(stderr, "onehop-queue: the queue is owned by a running router "
                        "(it recovers at start): nothing done\n");
        return INJ_EX_TEMPFAIL;
    } else {
        fprintf(stderr,
                "onehop-queue: cannot tell whether a router runs (%s/state/lock: %s): "
                "only the writer side recovered\n",
                queue_path(cx->q), strerror(errno));
        queue_recover_writer(cx->q, &r);
    }
    if (router_lock >= 0)
        close(router_lock);
    printf("tmp_removed=%lu tails_repaired=%lu quarantined=%lu finished_removed=%lu strays=%lu "
           "slots_committed=%lu slots_freed=%lu\n",
           r.tmp_removed, r.tails_repaired, r.quarantined, r.finished_removed, r.strays,
           r.slots_committed, r.slots_freed);
    return INJ_EX_OK;
}

/* --list: mailq's listing, read-only, with the queue account's rights when
 * set-uid (Postfix lets every user list the queue too). Exit 0, or 75 when
 * the queue cannot be read, 77 when this program may not read it either. */
static int list(const char *dir)
{
    struct conf c;
    struct diag d = DIAG_INIT;
    struct queue *q = NULL;
    const char *why = NULL;
    int rc = INJ_EX_OK;
    if (conf_load(&c, dir, &d) != 0) {
        diag_print(&d, stderr);
        rc = INJ_EX_TEMPFAIL;
    } else if (qlist_open(c.queue_dir, &q, &why) != 0) {
        int e = errno;
        fprintf(stderr, "onehop-queue: %s: %s: %s%s\n", c.queue_dir, why, strerror(e),
                e == EACCES ? " (onehop-queue is not set-uid to the queue's owner)" : "");
        rc = e == EACCES ? INJ_EX_NOPERM : INJ_EX_TEMPFAIL;
    } else if (qlist_print_queue(q, 0, stdout) != 0 || fflush(stdout) != 0) {
        rc = INJ_EX_TEMPFAIL;
    }
    queue_close(q);
    diag_free(&d);
    conf_free(&c);
    return rc;
}

/* --clean started by the master (daemon_link.h): READY once the queue is
 * open, else FAILED with the reason; then the cleaner hears STOP on the
 * link between requests (cleaner_serve_linked). */
static void clean_link_report(struct daemon_link *link, const struct inj_ctx *cx)
{
    if (cx->q)
        daemon_link_ready(link);
    else
        daemon_link_send(link, DLINK_FAILED, cx->unavailable);
}

/* Load the configuration and open the queue; on failure cx->q stays NULL
 * and cx->unavailable says why (the modes answer 75). */
static void prepare(struct inj_ctx *cx, struct conf *c, const char *dir, unsigned qflags)
{
    struct diag d = DIAG_INIT;
    const char *why = NULL;
    static struct buf reason = BUF_INIT;
    memset(cx, 0, sizeof(*cx));
    cx->uid = getuid();
    if (conf_load(c, dir, &d) != 0) { /* e.g. a mistyped -C: never the default queue */
        diag_log(&d);
        if (d.n)
            buf_printf(&reason, "%s: %s", d.v[0].file, d.v[0].text);
        else
            buf_printf(&reason, "configuration errors in %s", dir);
        cx->unavailable = buf_cstr(&reason);
    }
    diag_free(&d);
    if (log_open("queue", c->log) != 0)
        log_warn("cannot open log %s: %m", c->log);
    cx->size_limit = c->message_size_limit;
    cx->run_dir = c->run_dir;
    if (cx->unavailable)
        return;
    if (queue_open(&cx->q, c->queue_dir, QUEUE_OPEN_CREATE | qflags, &why) != 0) {
        log_error("queue %s: %s: %m", c->queue_dir, why);
        buf_printf(&reason, "queue unavailable: %s", why);
        cx->unavailable = buf_cstr(&reason);
        cx->q = NULL;
    }
}

/* realpath() of dir, or dir itself when it does not resolve (a missing
 * directory is reported by conf_load). */
static char *canonical_dir(const char *dir)
{
    char *real = realpath(dir, NULL);
    return real ? real : xstrdup(dir);
}

int main(int argc, char **argv)
{
    struct options o;
    struct conf c;
    struct inj_ctx cx;
    umask(027); /* message files 0640, places 2750: the router's group reads */
    log_set_fatal_status(INJ_EX_TEMPFAIL); /* out of memory etc.: nothing queued, retry */
    /* the master's link (daemon_link.h) of --clean; a set-uid run has none */
    struct daemon_link link = {.fd = -1};
    const char *link_why = NULL;
    if (!running_setid() && daemon_link_open(&link, &link_why) < 0)
        fprintf(stderr, "onehop-queue: %s\n", link_why);
    sane_fds(link.fd);
    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv, &o);
    /* The configuration directory as a canonical absolute path, taken before
     * leaving the caller's cwd: "-C run" means the caller's run/, and
     * "/etc//onehop/" is the compiled-in directory (set-uid kept) while
     * anything else is not (set-uid dropped). */
    char *dir = canonical_dir(conf_dir(o.config_dir));
    if (chdir("/") != 0)
        _exit(INJ_EX_TEMPFAIL);
    char *sysdir = canonical_dir(ONEHOP_SYSCONFDIR);
    if (running_setid() && strcmp(dir, sysdir) != 0)
        drop_setid();
    free(sysdir);
    clearenv();
    if (o.list) {
        int rc = list(dir);
        free(dir);
        return rc;
    }
    /* one-shot commits go through a commit slot: one fdatasync of an
     * existing file; the server's group commits stay in tmp/ */
    prepare(&cx, &c, dir, o.recover || o.server || o.clean ? 0 : QUEUE_OPEN_SLOTS);
    cx.link = &link; /* --server under the master: READY, STOP (inject_server.h) */
    if (o.clean && !running_setid())
        cleaner_start(cx.q); /* before READY: the router starts on a recovered queue */
    if (o.clean)
        clean_link_report(&link, &cx);
    int status = o.clean     ? cleaner_main(cx.q, cx.unavailable, running_setid(), &link)
                 : o.recover ? recover(&cx)
                 : o.server  ? inject_server(&cx)
                             : inject_oneshot(&cx);
    queue_close(cx.q);
    conf_free(&c);
    free(dir);
    daemon_link_close(&link);
    return status;
}
