/*
 * commands — the subcommands of the `onehop` admin command (SPEC section 1).
 *
 * Each subcommand lives in its own cmd_NAME.c and has this signature: it gets
 * the configuration directory (already resolved from -C / $ONEHOP_CONFIG /
 * the default) and its own arguments (argv[0] is the subcommand name), and
 * returns the exit status: 0 success, 1 failure (message on stderr), 2 usage
 * error (usage on stderr; use admin_usage_error()).
 */
#ifndef ONEHOP_ADMIN_COMMANDS_H
#define ONEHOP_ADMIN_COMMANDS_H

#define EXIT_USAGE 2

struct admin_command {
    const char *name;
    int (*run)(const char *confdir, int argc, char **argv);
    const char *synopsis; /* e.g. "check" or "queue [--json] | queue show ID [--json]" */
};

/* Print "onehop: message" and the subcommand's synopsis; returns EXIT_USAGE. */
int admin_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "onehop: message" to stderr; returns 1. */
int admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_check(const char *confdir, int argc, char **argv);
/* the master (engineer "master"): cmd_master.c */
int cmd_start(const char *confdir, int argc, char **argv);
int cmd_stop(const char *confdir, int argc, char **argv);
int cmd_reload(const char *confdir, int argc, char **argv);
int cmd_status(const char *confdir, int argc, char **argv);
int cmd_metrics(const char *confdir, int argc, char **argv);
/* queue inspection and management (engineer "inject") */
int cmd_queue(const char *confdir, int argc, char **argv);
int cmd_qstat(const char *confdir, int argc, char **argv);
int cmd_delete(const char *confdir, int argc, char **argv);
int cmd_hold(const char *confdir, int argc, char **argv);
int cmd_release(const char *confdir, int argc, char **argv);
/* the router's control socket (engineer "control"): cmd_manage.c, cmd_qshape.c */
int cmd_flush(const char *confdir, int argc, char **argv);
int cmd_qshape(const char *confdir, int argc, char **argv);
/* the DNS cache (engineer "dns") */
int cmd_dns(const char *confdir, int argc, char **argv);
/* the routing decision (engineer "route"): cmd_route.c, common/routing.h */
int cmd_route(const char *confdir, int argc, char **argv);

#endif
