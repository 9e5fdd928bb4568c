/*
 * received — the Received: header. See received.h.
 */
#include "smtpd/received.h"

#include <string.h>

static int helo_printable(const char *s)
{
    if (!*s || strlen(s) > 255)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s > '~' || *s == '(' || *s == ')' ||
            *s == ';')
            return 0;
    return 1;
}

void received_header(struct buf *out, const struct received_info *ri)
{
    char date[64];
    struct tm tm;
    localtime_r(&ri->when, &tm);
    if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        date[0] = '\0';
    buf_printf(out, "Received: from %s", helo_printable(ri->helo) ? ri->helo : "unknown");
    if (ri->client_addr)
        buf_printf(out, " (%s [%s])", ri->client_name, ri->client_addr);
    else
        buf_adds(out, " (local submission)");
    buf_printf(out, "\r\n\tby %s (onehop) with %s", ri->hostname, ri->protocol);
    if (ri->tls)
        buf_printf(out, " (%s)", ri->tls);
    if (ri->rcpt)
        buf_printf(out, "\r\n\tfor <%s>", ri->rcpt);
    buf_printf(out, "; %s\r\n", date);
}
