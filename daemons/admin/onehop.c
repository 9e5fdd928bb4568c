/*
 * onehop — the administration command (SPEC section 1):
 *
 *     onehop [-C DIR] COMMAND [ARGS...]
 *
 * Resolves the configuration directory (-C DIR, else $ONEHOP_CONFIG, else
 * the compiled-in default) and dispatches to the subcommand. Exit status: 0
 * success, 1 failure with a message on stderr, 2 usage error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin/commands.h"
#include "conf.h"
#include "log.h"

static const struct admin_command commands[] = {
    {"start", cmd_start, "start [--foreground]"},
    {"stop", cmd_stop, "stop"},
    {"reload", cmd_reload, "reload"},
    {"status", cmd_status, "status [--json]"},
    {"metrics", cmd_metrics, "metrics"},
    {"check", cmd_check, "check"},
    {"queue", cmd_queue,
     "queue [--json] [--domain D] [--sender S] [--older-than DURATION] | queue show ID [--json]"},
    {"qstat", cmd_qstat, "qstat [--json]"},
    {"qshape", cmd_qshape, "qshape [--json] [deferred|active|hold|all]"},
    {"flush", cmd_flush, "flush [ID | @DOMAIN]"},
    {"delete", cmd_delete, "delete ID... | --all | --deferred"},
    {"hold", cmd_hold, "hold ID..."},
    {"release", cmd_release, "release ID..."},
    {"dns", cmd_dns, "dns [--json] TYPE NAME | dns --dump [--json] | dns --flush [NAME]"},
    {"route", cmd_route, "route [--json] ADDRESS... | route --graph"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct admin_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fprintf(f, "usage: onehop [-C DIR] COMMAND [ARGS...]\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "    onehop %s\n", commands[i].synopsis);
}

int admin_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onehop: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    const struct admin_command *c = command ? find_command(command) : NULL;
    if (c)
        fprintf(stderr, "usage: onehop [-C DIR] %s\n", c->synopsis);
    else
        print_usage(stderr);
    return EXIT_USAGE;
}

int admin_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onehop: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 1;
}

int main(int argc, char **argv)
{
    const char *opt_C = NULL;
    int i = 1;
    log_open("admin", "stderr");
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-C") == 0) {
            if (i + 1 >= argc)
                return admin_usage_error(NULL, "-C needs a directory");
            opt_C = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-C", 2) == 0) {
            opt_C = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return 0;
        } else {
            return admin_usage_error(NULL, "unknown option %s", argv[i]);
        }
    }
    if (i >= argc)
        return admin_usage_error(NULL, "no command given");
    const struct admin_command *c = find_command(argv[i]);
    if (!c)
        return admin_usage_error(NULL, "unknown command \"%s\"", argv[i]);
    return c->run(conf_dir(opt_C), argc - i, argv + i);
}
