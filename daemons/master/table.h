/*
 * table — the daemons the master starts, as data (ARCHITECTURE
 * "Processes"): one row per daemon, one row per channel between two of
 * them. A daemon that lands later is one more row here and nothing else.
 *
 * A row names the program (in daemon_dir) and its arguments (after
 * `-C DIR`), the SPEC 7 account suffix (`user` base name + "-" + suffix;
 * NULL keeps root, as local delivery must), when it is started (always, or
 * only once its program exists in daemon_dir), the listening sockets the
 * master binds for it, and its restart policy. Channels are socketpairs
 * the master makes between two rows; each end is given to its daemon as a
 * fixed descriptor (fd >= 0) or as a descriptor named by an environment
 * variable ONEHOP_CHANNEL_<NAME>. An end whose daemon is not started (its
 * program is not there yet) stays open in the master, so the other end
 * never sees its peer vanish.
 *
 * What a daemon inherits (and nothing else: every other descriptor is
 * closed): 0 /dev/null (unless a channel end is fd 0), 1 and 2 the master's
 * (/dev/null once it runs in the background), the master link
 * (daemon_link.h, ONEHOP_MASTER_FD), its channel ends, and its listening
 * sockets, named in ONEHOP_LISTEN_FDS ("3,4": bound and listening, in the
 * order of smtp_listen).
 */
#ifndef ONEHOP_MASTER_TABLE_H
#define ONEHOP_MASTER_TABLE_H

#include <stddef.h>

enum start_when {
    START_ALWAYS,    /* a missing program is an error */
    START_IF_PRESENT /* started once its program exists in daemon_dir */
};

enum listen_kind {
    LISTEN_NONE,
    LISTEN_SMTP /* every address of smtp_listen (port 25 needs root: only here) */
};

/* The order of a stop (SPEC 1 `onehop stop`: nothing lost, nothing done
 * twice). STOP_FIRST daemons are told first: those that deliver (local,
 * remote) finish the deliveries under way, answer the router, and then
 * close their master link (still running, their channel to the router
 * open); the router is told once every STOP_FIRST daemon has exited or
 * closed its link, so it journals those outcomes before it exits; the
 * daemons the router needs to the end (the cleaner, the dnscache) last. */
enum stop_step { STOP_FIRST, STOP_ROUTER, STOP_LAST };

struct restart_policy {
    unsigned backoff_first_ms; /* delay before the first restart, doubled at each exit */
    unsigned backoff_max_ms;   /* the longest delay */
    unsigned loop_exits;       /* this many exits ... */
    unsigned loop_window_s;    /* ... within this many seconds: a crash loop, no restart */
};

#define ROW_ARGS_MAX 4

struct daemon_row {
    const char *name;               /* status and log name: "dnscache" */
    const char *program;            /* file name in daemon_dir */
    const char *args[ROW_ARGS_MAX]; /* after -C DIR; NULL-terminated */
    const char *account;            /* SPEC 7 suffix ("dns"), NULL: keeps root */
    enum start_when when;
    enum listen_kind listen;
    struct restart_policy restart;
    enum stop_step stop_step;
};

struct channel_end {
    const char *daemon; /* a row name */
    int fd;             /* fixed descriptor number, or -1: ONEHOP_CHANNEL_<NAME> */
};

struct channel_row {
    const char *name; /* upper case, for the variable: "CLEANER" */
    struct channel_end a, b;
};

const struct daemon_row *table_daemons(size_t *n);
const struct channel_row *table_channels(size_t *n);
/* The row named name, or NULL. */
const struct daemon_row *table_find(const char *name);

#endif
