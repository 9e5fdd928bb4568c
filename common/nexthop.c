/*
 * nexthop — parse and print the next hops of static routes, site gateways and
 * relayhost (SPEC 3, 4, 5). See nexthop.h for the forms.
 *
 * Contract: all or nothing; on failure nothing is allocated and *why is a
 * static reason. A bare IP address (1.2.3.4, 1.2.3.4:25, 2001:db8::1) is
 * taken as [1.2.3.4]: an MX lookup of an address is meaningless, so it is
 * the address itself (kind NEXTHOP_HOST, is_ip). nexthop_format() prints the
 * canonical form, which nexthop_parse() reads back to the same value (a host
 * named `local.` or `error.` keeps its trailing dot there).
 * In a list, `error:TEXT` takes the rest of the list as its text (commas
 * included): nothing after a bounce could ever be tried.
 * Never: resolve a name.
 */
#include "nexthop.h"

#include <string.h>
#include <strings.h>

#include "mem.h"
#include "netaddr.h"
#include "strparse.h"

#define ERROR_PREFIX "error:"
#define ERROR_PREFIX_LEN (sizeof(ERROR_PREFIX) - 1)

static int is_error_form(const char *s)
{
    return strncasecmp(s, ERROR_PREFIX, ERROR_PREFIX_LEN) == 0;
}

static int parse_error_form(char *s, unsigned flags, struct nexthop *out, const char **why)
{
    if (flags & NEXTHOP_NO_ERROR) {
        *why = "error: is not allowed here";
        return -1;
    }
    char *text = str_trim(s + ERROR_PREFIX_LEN);
    if (text[0] == '\0') {
        *why = "error: needs a text, e.g. error:5.1.2 no such domain";
        return -1;
    }
    out->kind = NEXTHOP_ERROR;
    out->text = xstrdup(text);
    return 0;
}

static int parse_host_form(const char *s, struct nexthop *out, const char **why)
{
    struct hostport hp;
    if (hostport_parse(s, 0, &hp, why) < 0)
        return -1;
    out->is_ip = hp.family != 0;
    /* SPEC 4: [host] means the host's own addresses, no MX lookup. */
    out->kind = (hp.bracketed || out->is_ip) ? NEXTHOP_HOST : NEXTHOP_MX;
    out->host = hp.host;
    out->port = hp.port;
    return 0;
}

static int parse_trimmed(char *s, unsigned flags, struct nexthop *out, const char **why)
{
    if (s[0] == '\0') {
        *why = "empty next hop";
        return -1;
    }
    if (strcasecmp(s, "local") == 0) {
        if (flags & NEXTHOP_NO_LOCAL) {
            *why = "local is not allowed here";
            return -1;
        }
        out->kind = NEXTHOP_LOCAL;
        return 0;
    }
    if (is_error_form(s))
        return parse_error_form(s, flags, out, why);
    return parse_host_form(s, out, why);
}

int nexthop_parse(const char *s, unsigned flags, struct nexthop *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    char *copy = xstrdup(s);
    int rc = parse_trimmed(str_trim(copy), flags, out, why);
    free(copy);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Length of the list item starting at s: up to the next comma, or all the
 * rest for an error: item. */
static size_t list_item_length(const char *s)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (is_error_form(p))
        return strlen(s);
    const char *comma = strchr(s, ',');
    return comma ? (size_t)(comma - s) : strlen(s);
}

int nexthop_parse_list(const char *s, unsigned flags, struct nexthop **out, size_t *n,
                       const char **why)
{
    struct nexthop *v = NULL;
    size_t count = 0, cap = 0;
    const char *p = s;
    for (;;) {
        size_t len = list_item_length(p);
        char *item = xstrndup(p, len);
        v = xgrow(v, &cap, count + 1, sizeof(*v));
        int rc = nexthop_parse(item, flags, &v[count], why);
        free(item);
        if (rc < 0) {
            nexthop_list_free(v, count);
            *out = NULL;
            *n = 0;
            return -1;
        }
        count++;
        if (p[len] != ',')
            break;
        p += len + 1;
    }
    *out = v;
    *n = count;
    return 0;
}

void nexthop_free(struct nexthop *nh)
{
    free(nh->host);
    free(nh->text);
    memset(nh, 0, sizeof(*nh));
}

void nexthop_list_free(struct nexthop *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        nexthop_free(&v[i]);
    free(v);
}

void nexthop_format(const struct nexthop *nh, struct buf *out)
{
    switch (nh->kind) {
    case NEXTHOP_LOCAL:
        buf_adds(out, "local");
        return;
    case NEXTHOP_ERROR:
        buf_adds(out, ERROR_PREFIX);
        buf_adds(out, nh->text);
        return;
    case NEXTHOP_HOST:
        buf_printf(out, "[%s]", nh->host);
        break;
    case NEXTHOP_MX:
        buf_adds(out, nh->host);
        /* a host named "local" or "error" keeps a trailing dot, so that the
         * text does not read back as the local or error: forms */
        if (strcmp(nh->host, "local") == 0 || strcmp(nh->host, "error") == 0)
            buf_addc(out, '.');
        break;
    }
    if (nh->port)
        buf_printf(out, ":%u", (unsigned)nh->port);
}
