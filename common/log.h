/*
 * log — one line per event, in the Postfix style of SPEC section 8:
 *
 *     Nov 22 10:00:00 myhost onehop/queue[815]: 4Xb9kQz1Y2: from=<a@b>, size=1234, nrcpt=2
 *
 * The target is `syslog` (facility mail, ident "onehop/SERVICE"), `stderr`
 * (the line without date and host, as a daemon run in the foreground or a
 * command prints it), or a file path (opened O_APPEND; each line is one
 * write(2), so several processes can share the file). Before log_open() the
 * target is stderr with the service name "onehop".
 *
 * Warnings are prefixed "warning: ", errors "error: ", fatal ones "fatal: ",
 * as Postfix does, so existing log tools keep working. Lines longer than
 * LOG_LINE_MAX are cut, never overflowed; control characters are escaped.
 */
#ifndef ONEHOP_LOG_H
#define ONEHOP_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

#define LOG_LINE_MAX 4096

/* service: the part after "onehop/" (e.g. "queue"); target as above.
 * Returns 0, or -1 with errno when the file cannot be opened (the target
 * then stays stderr). */
int log_open(const char *service, const char *target);
/* The host name written in file lines (default: gethostname()). */
void log_set_hostname(const char *name);
/* Also copy every line to stderr (commands that want the user to see it). */
void log_also_stderr(int on);
void log_close(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One info line under another service's name ("onehop/SERVICE[PID]", this
 * process's pid): an event of that service written where it is known, as
 * the queue writes smtpd's and pickup's "ID: client=" / "ID: uid= from="
 * lines right before its own from= line (pflogsumm wants that order). */
void log_info_as(const char *service, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit status of log_fatal() (default 1): a program whose caller reads
 * its status, such as one-shot onehop-queue, sets its "temporary failure". */
void log_set_fatal_status(int status);
/* hook(text) is called with each fatal line's text (without "fatal: ")
 * before the process exits; NULL removes it. daemon_link.h uses it to
 * report a daemon's start-up failure to the master. */
void log_set_fatal_hook(void (*hook)(const char *text));
/* Log "fatal: ..." and exit with that status. */
noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "fatal: ..." and exit with the given status (e.g. 75 = EX_TEMPFAIL). */
noreturn void log_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vline(int prio, const char *prefix, const char *fmt, va_list ap);

#endif
