/*
 * table — the rows of the master's daemons and channels. See table.h.
 *
 * Order is start order: the cleaner (queue account) first, so that the
 * router finds a recovered queue; the dnscache before those that ask it;
 * smtpd last, so nothing accepts mail before the rest is ready.
 */
#include "master/table.h"

#include <string.h>

/* 5 exits within 60 s is a crash loop; before that the delays are
 * 0.25 s, 0.5 s, 1 s, 2 s (and up to 30 s when exits are further apart). */
#define DEFAULT_RESTART                                                                            \
    {                                                                                              \
        250, 30000, 5, 60                                                                          \
    }

static const struct daemon_row daemons[] = {
    {"cleaner",
     "onehop-queue",
     {"--clean"},
     "queue",
     START_ALWAYS,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_LAST},
    {"dnscache",
     "onehop-dnscache",
     {NULL},
     "dns",
     START_ALWAYS,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_LAST},
    {"router",
     "onehop-router",
     {NULL},
     "router",
     START_IF_PRESENT,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_ROUTER},
    {"remote",
     "onehop-remote",
     {NULL},
     "remote",
     START_IF_PRESENT,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_FIRST},
    {"local",
     "onehop-local",
     {NULL},
     NULL,
     START_IF_PRESENT,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_FIRST},
    {"queue",
     "onehop-queue",
     {"--server"},
     "queue",
     START_ALWAYS,
     LISTEN_NONE,
     DEFAULT_RESTART,
     STOP_FIRST},
    {"smtpd",
     "onehop-smtpd",
     {NULL},
     "smtpd",
     START_IF_PRESENT,
     LISTEN_SMTP,
     DEFAULT_RESTART,
     STOP_FIRST},
};

/* The cleaner reads its requests on fd 0 (one socketpair: requests in,
 * replies out); the router finds its end in ONEHOP_CHANNEL_CLEANER. The
 * remote's jobs and results (common/remote_proto.h): ONEHOP_CHANNEL_REMOTE
 * in both. The local's (common/local_proto.h): ONEHOP_CHANNEL_LOCAL in both.
 * smtpd's messages go to the group-committing `onehop-queue --server`
 * (queue/inject_proto.h): its fd 0 carries requests and replies, smtpd
 * finds its end in ONEHOP_CHANNEL_QUEUE. */
static const struct channel_row channels[] = {
    {"CLEANER", {"router", -1}, {"cleaner", 0}},
    {"REMOTE", {"router", -1}, {"remote", -1}},
    {"LOCAL", {"router", -1}, {"local", -1}},
    {"QUEUE", {"smtpd", -1}, {"queue", 0}},
};

const struct daemon_row *table_daemons(size_t *n)
{
    *n = sizeof(daemons) / sizeof(daemons[0]);
    return daemons;
}

const struct channel_row *table_channels(size_t *n)
{
    *n = sizeof(channels) / sizeof(channels[0]);
    return channels;
}

const struct daemon_row *table_find(const char *name)
{
    size_t n;
    const struct daemon_row *rows = table_daemons(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}
