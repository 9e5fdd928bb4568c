/*
 * outcome — one delivery's class, text and relay. See outcome.h.
 */
#include "local/outcome.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

void outcome_set(struct outcome *o, enum rp_class cls, const char *relay, const char *fmt, ...)
{
    va_list ap;
    o->cls = cls;
    o->relay = relay;
    buf_clear(&o->text);
    va_start(ap, fmt);
    buf_vprintf(&o->text, fmt, ap);
    va_end(ap);
}

static const char *errno_status(int err)
{
    switch (err) {
    case EDQUOT:
    case EFBIG:
        return "4.2.2";
    case ENOSPC:
        return "4.3.1";
    case EACCES:
    case EPERM:
    case EROFS:
        return "4.2.0";
    default:
        return "4.3.0";
    }
}

void outcome_errno(struct outcome *o, const char *relay, int err, const char *what)
{
    outcome_set(o, RP_TEMP, relay, "%s %s: %s", errno_status(err), what, strerror(err));
}

void outcome_free(struct outcome *o)
{
    buf_free(&o->text);
}
