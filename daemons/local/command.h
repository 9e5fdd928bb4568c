/*
 * command — delivery to a |command target (from the aliases or a
 * ~/.forward), with the rights of the calling process (the delivery child
 * has become the target's user: agent.h).
 *
 * The command runs as `/bin/sh -c COMMAND` in a session of its own, in the
 * user's home directory (else /), with standard input the message
 * (Return-Path:, Delivered-To:, then the content with LF line ends; no
 * `From ` line, as qmail-local), standard output and error read back (the
 * first line goes into a failure's text), and only this environment:
 *
 *   SENDER              the envelope sender ("" for the null sender)
 *   RECIPIENT           the recipient address the target came from
 *   ORIGINAL_RECIPIENT  the envelope recipient as queued, before aliases
 *   LOCAL               RECIPIENT's local part (with its extension)
 *   EXTENSION           the part after '+' in LOCAL, "" when none
 *   DOMAIN              RECIPIENT's domain
 *   USER, LOGNAME       the account the command runs as
 *   HOME, SHELL         that account's home directory and login shell
 *   PATH                /usr/local/bin:/usr/bin:/bin
 *
 * A command still running after the timeout (local_command_timeout) is
 * killed with its whole process group (SIGKILL) and the delivery is
 * temporary (4.3.0). Its exit status decides the rest (exit_rows below,
 * the sysexits.h codes as sendmail and Postfix read them).
 * Must never: pass the daemon's environment or descriptors to the command,
 * or wait without a bound.
 */
#ifndef ONEHOP_LOCAL_COMMAND_H
#define ONEHOP_LOCAL_COMMAND_H

#include <sys/types.h>

#include "buf.h"
#include "local/msgcopy.h"
#include "local/outcome.h"

struct command_env {
    const char *sender, *recipient, *original, *local, *extension, *domain;
    const char *user, *home, *shell;
};

/* One row of the exit status table (sysexits.h, as Postfix's sys_exits.c). */
struct exit_row {
    int status;
    const char *name;  /* "EX_TEMPFAIL" */
    enum rp_class cls; /* RP_TEMP or RP_PERM */
    const char *dsn;   /* RFC 3463 */
    const char *text;
};

/* The table, for tests and the manual: *n rows. */
const struct exit_row *command_exit_rows(size_t *n);
/* The outcome of a finished command from its wait(2) status: 0 delivered;
 * a row of the table; any other exit status permanent (5.3.0); a signal
 * temporary (4.3.0). output: its first line, or "". */
void command_exit_outcome(int wait_status, const char *what, const char *output, struct outcome *o);

void command_deliver(const char *command, const struct command_env *env, const struct msgsrc *src,
                     const struct buf *prefix, unsigned timeout_s, struct outcome *o);

#endif
