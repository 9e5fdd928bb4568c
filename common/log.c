/*
 * log — Postfix-style log lines to syslog, stderr or a file. See log.h.
 *
 * Cost per line: one write(2) (file or stderr target), nothing else: the
 * process id is learned once and again in a child after fork(2)
 * (pthread_atfork), the time zone once by localtime_r.
 *
 * Must never: allocate (it is called when memory ran out), write a line in
 * more than one write(2), pass caller text as a format, or log a pid that
 * is not the caller's (a forked child logs its own).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum target { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };

static struct {
    enum target target;
    int fd;
    int also_stderr;
    char ident[64];
    char host[256];
} lg = {TARGET_STDERR, -1, 0, "onehop", ""};

static void (*fatal_hook)(const char *text);

static pid_t known_pid; /* 0: to be learned (first line, or a child after fork) */

static void forget_pid(void)
{
    known_pid = 0;
}

/* This process's id without a getpid(2) per line. */
static long own_pid(void)
{
    static int watching_fork;
    if (!watching_fork) {
        watching_fork = 1;
        pthread_atfork(NULL, NULL, forget_pid);
    }
    if (!known_pid)
        known_pid = getpid();
    return (long)known_pid;
}

static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void log_set_hostname(const char *name)
{
    copy_str(lg.host, sizeof(lg.host), name);
}

void log_also_stderr(int on)
{
    lg.also_stderr = on;
}

int log_open(const char *service, const char *target)
{
    log_close();
    snprintf(lg.ident, sizeof(lg.ident), "onehop/%s", service);
    if (!lg.host[0] && gethostname(lg.host, sizeof(lg.host) - 1) != 0)
        copy_str(lg.host, sizeof(lg.host), "localhost");
    if (!target || strcmp(target, "stderr") == 0) {
        lg.target = TARGET_STDERR;
        return 0;
    }
    if (strcmp(target, "syslog") == 0) {
        openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        lg.target = TARGET_SYSLOG;
        return 0;
    }
    int fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        lg.target = TARGET_STDERR;
        errno = e;
        return -1;
    }
    lg.fd = fd;
    lg.target = TARGET_FILE;
    return 0;
}

void log_close(void)
{
    if (lg.target == TARGET_FILE && lg.fd >= 0)
        close(lg.fd);
    if (lg.target == TARGET_SYSLOG)
        closelog();
    lg.fd = -1;
    lg.target = TARGET_STDERR;
}

/* Replace control characters in place so one event stays one line. */
static void escape_controls(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void write_line(int fd, const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

void log_vline(int prio, const char *prefix, const char *fmt, va_list ap)
{
    int saved = errno;
    char text[LOG_LINE_MAX];
    size_t off = (size_t)snprintf(text, sizeof(text), "%s", prefix);
    if (off < sizeof(text))
        vsnprintf(text + off, sizeof(text) - off, fmt, ap);
    escape_controls(text);
    if (prio == LOG_CRIT && fatal_hook)
        fatal_hook(text + strlen(prefix));

    char line[LOG_LINE_MAX + 512];
    if (lg.target == TARGET_SYSLOG) {
        syslog(prio, "%s", text);
    } else if (lg.target == TARGET_FILE) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        int n = snprintf(line, sizeof(line) - 1, "%s %s %s[%ld]: %s", stamp, lg.host, lg.ident,
                         own_pid(), text);
        size_t len = n < 0 ? 0 : (size_t)n >= sizeof(line) - 1 ? sizeof(line) - 2 : (size_t)n;
        line[len++] = '\n';
        write_line(lg.fd, line, len);
    }
    if (lg.target == TARGET_STDERR || lg.also_stderr) {
        int n = snprintf(line, sizeof(line) - 1, "%s[%ld]: %s", lg.ident, own_pid(), text);
        size_t len = n < 0 ? 0 : (size_t)n >= sizeof(line) - 1 ? sizeof(line) - 2 : (size_t)n;
        line[len++] = '\n';
        write_line(STDERR_FILENO, line, len);
    }
    errno = saved;
}

#define LOG_WITH(prio, prefix)                                                                     \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vline(prio, prefix, fmt, ap);                                                          \
        va_end(ap);                                                                                \
    } while (0)

void log_info(const char *fmt, ...)
{
    LOG_WITH(LOG_INFO, "");
}

/* syslog's ident is openlog's: set again for the line, then back. */
static void set_ident(const char *ident)
{
    copy_str(lg.ident, sizeof(lg.ident), ident);
    if (lg.target == TARGET_SYSLOG)
        openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_info_as(const char *service, const char *fmt, ...)
{
    char own[sizeof(lg.ident)], other[sizeof(lg.ident)];
    copy_str(own, sizeof(own), lg.ident);
    snprintf(other, sizeof(other), "onehop/%s", service);
    set_ident(other);
    LOG_WITH(LOG_INFO, "");
    set_ident(own);
}

void log_warn(const char *fmt, ...)
{
    LOG_WITH(LOG_WARNING, "warning: ");
}

void log_error(const char *fmt, ...)
{
    LOG_WITH(LOG_ERR, "error: ");
}

static int fatal_status = 1;

void log_set_fatal_hook(void (*hook)(const char *text))
{
    fatal_hook = hook;
}

void log_set_fatal_status(int status)
{
    fatal_status = status;
}

void log_fatal(const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ");
    exit(fatal_status);
}

void log_die(int status, const char *fmt, ...)
{
    LOG_WITH(LOG_CRIT, "fatal: ");
    exit(status);
}
