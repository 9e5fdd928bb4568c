/*
 * conf — onehop.conf (SPEC section 3), table-driven. See conf.h.
 *
 * Syntax, as Postfix main.cf:
 *   - `key = value`, the key starting in the first column;
 *   - a line starting with white space continues the previous logical line
 *     (joined with one space);
 *   - blank lines and lines whose first non-blank character is `#` are
 *     ignored, also between a line and its continuation. Only whole-line
 *     comments exist: a `#` after a value is part of the value (Postfix does
 *     the same), so `retry_min = 5m # five` is a bad duration;
 *   - `$name` and `${name}` expand to the value of another key, after defaults
 *     (so a default such as `local_domains = $myhostname, localhost` follows a
 *     configured myhostname); `$$` is a literal `$`. Expansion is textual,
 *     memoized, and a key met again while it is being expanded is a loop;
 *     the recursion depth is bounded by the number of keys. An unknown $name
 *     is an error.
 * Each mistake is one diag item `FILE:LINE: message`, and parsing goes on.
 * A key whose value is bad keeps its default.
 *
 * Values are checked by type (a row of the key table each): host names,
 * domain lists (lower-cased, trailing dot removed), CIDR lists, listen and
 * DNS server addresses, paths, durations, sizes, integers with a range,
 * booleans, enumerations, a next hop. Relative paths (queue_dir, run_dir,
 * daemon_dir, smtpd_tls_cert, smtpd_tls_key, log when a path, mailbox when
 * not starting with `~`, `/` or `%h`) are made absolute against the
 * configuration directory (SPEC 1). An empty daemon_dir (the default) is the
 * directory of the running executable, found through /proc/self/exe when the
 * configuration is loaded or parsed. Empty smtpd_tls_cert/key are "" (no
 * STARTTLS); an empty relayhost is NULL.
 *
 * How defaults and errors combine: every key is first set from its default
 * alone (pass A, which cannot fail). Then every key written in the file, and
 * every key whose default refers to another key, is expanded and parsed with
 * the file's values (pass B); a key is resolved before its value is used in
 * another's expansion, so `$key` always expands to a value that parsed. A bad
 * value falls back to its default (evaluated again if it refers to other
 * keys, else pass A's). Only keys written in the file report errors, so one
 * mistake is one item; items come out in line order.
 *
 * Never: print, exit, or leave a field NULL (except relayhost) after
 * conf_parse()/conf_load() return.
 */
#include "conf.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "netaddr.h"
#include "safeio.h"
#include "strparse.h"

#ifndef ONEHOP_SYSCONFDIR
#define ONEHOP_SYSCONFDIR "/etc/onehop"
#endif

#define CONF_FILE_MAX (4u << 20)   /* bytes of onehop.conf */
#define CONF_VALUE_MAX (64u << 10) /* bytes of one value after expansion */
#define DIAG_QUOTE_MAX 120         /* bytes of a value shown in a message */
#define TEN_YEARS (10ULL * 365 * 86400)

enum conf_type {
    CT_HOSTNAME, /* one RFC 1123 host name */
    CT_DOMAINS,  /* list of domains */
    CT_NETWORKS, /* list of CIDR networks */
    CT_LISTEN,   /* list of IP:PORT, [IPv6]:PORT, *:PORT */
    CT_SERVERS,  /* list of IP, IP:PORT, [IPv6]:PORT */
    CT_PATH,     /* non-empty path, relative to the config dir */
    CT_OPT_PATH, /* path or empty */
    CT_DAEMON_DIR,
    CT_LOG,
    CT_MAILBOX,
    CT_UINT,
    CT_SIZE,
    CT_DURATION,
    CT_BOOL,
    CT_ENUM,
    CT_RELAYHOST,
    CT_USER
};

static const char *const type_names[] = {
    [CT_HOSTNAME] = "hostname",   [CT_DOMAINS] = "domain list",  [CT_NETWORKS] = "network list",
    [CT_LISTEN] = "address list", [CT_SERVERS] = "address list", [CT_PATH] = "path",
    [CT_OPT_PATH] = "path",       [CT_DAEMON_DIR] = "path",      [CT_LOG] = "log target",
    [CT_MAILBOX] = "mailbox",     [CT_UINT] = "integer",         [CT_SIZE] = "size",
    [CT_DURATION] = "duration",   [CT_BOOL] = "boolean",         [CT_ENUM] = "enumeration",
    [CT_RELAYHOST] = "next hop",  [CT_USER] = "string",
};

struct conf_word {
    const char *word;
    int value;
};

static const struct conf_word tls_words[] = {
    {"none", SMTP_TLS_NONE}, {"may", SMTP_TLS_MAY}, {"encrypt", SMTP_TLS_ENCRYPT}, {NULL, 0}};
static const struct conf_word local_users_words[] = {
    {"passwd", LOCAL_USERS_PASSWD}, {"any", LOCAL_USERS_ANY}, {NULL, 0}};
static const struct conf_word bare_newline_words[] = {
    {"normalize", BARE_NEWLINE_NORMALIZE}, {"reject", BARE_NEWLINE_REJECT}, {NULL, 0}};

_Static_assert(sizeof(enum smtp_tls_policy) == sizeof(int), "enum fields are set as int");
_Static_assert(sizeof(enum local_users_mode) == sizeof(int), "enum fields are set as int");
_Static_assert(sizeof(enum bare_newline_mode) == sizeof(int), "enum fields are set as int");

struct conf_key {
    const char *name;
    enum conf_type type;
    const char *default_text;      /* as written in onehop.conf; NULL: the system host name */
    size_t offset;                 /* of the field in struct conf */
    uint64_t min, max;             /* CT_UINT, CT_SIZE, CT_DURATION */
    const struct conf_word *words; /* CT_ENUM */
};

#define KEY(name, type, def, min, max, words)                                                      \
    {                                                                                              \
#name, type, def, offsetof(struct conf, name), min, max, words                             \
    }
#define STR(name, type, def) KEY(name, type, def, 0, 0, NULL)
#define NUM(name, type, def, min, max) KEY(name, type, def, min, max, NULL)
#define ENUM(name, def, words) KEY(name, CT_ENUM, def, 0, 0, words)

/* SPEC 3: every key, its type and its default. */
static const struct conf_key keys[] = {
    STR(myhostname, CT_HOSTNAME, NULL),
    STR(myorigin, CT_HOSTNAME, "$myhostname"),
    STR(local_domains, CT_DOMAINS, "$myhostname, localhost"),
    STR(relay_domains, CT_DOMAINS, ""),
    STR(mynetworks, CT_NETWORKS, "127.0.0.0/8, ::1/128"),
    STR(smtp_listen, CT_LISTEN, "0.0.0.0:25, [::]:25"),
    STR(queue_dir, CT_PATH, "/var/spool/onehop"),
    STR(daemon_dir, CT_DAEMON_DIR, ""),
    STR(run_dir, CT_PATH, "/run/onehop"),
    STR(log, CT_LOG, "syslog"),
    STR(dns_servers, CT_SERVERS, ""),
    NUM(dns_cache_size, CT_UINT, "10000", 1, 100000000),
    NUM(dns_min_ttl, CT_DURATION, "0", 0, TEN_YEARS),
    NUM(dns_max_ttl, CT_DURATION, "86400", 0, TEN_YEARS),
    NUM(dns_negative_max_ttl, CT_DURATION, "300", 0, TEN_YEARS),
    KEY(dns_serve_stale, CT_BOOL, "no", 0, 0, NULL),
    NUM(dns_serve_stale_max, CT_DURATION, "1d", 0, TEN_YEARS),
    NUM(dns_timeout, CT_DURATION, "5s", 1, 3600),
    NUM(dns_lookup_timeout, CT_DURATION, "15s", 1, 3600),
    NUM(remote_port, CT_UINT, "25", 1, 65535),
    STR(relayhost, CT_RELAYHOST, ""),
    KEY(site_direct_smtp, CT_BOOL, "yes", 0, 0, NULL),
    NUM(retry_min, CT_DURATION, "300s", 1, TEN_YEARS),
    NUM(retry_max, CT_DURATION, "4000s", 1, TEN_YEARS),
    NUM(queue_lifetime, CT_DURATION, "5d", 0, TEN_YEARS),
    NUM(delay_warning, CT_DURATION, "0", 0, TEN_YEARS),
    NUM(queue_active_limit, CT_UINT, "20000", 1, 100000000),
    STR(metrics_file, CT_OPT_PATH, ""),
    NUM(remote_concurrency, CT_UINT, "100", 1, 100000),
    NUM(remote_destination_concurrency, CT_UINT, "20", 1, 100000),
    NUM(remote_destination_rate, CT_UINT, "0", 0, 100000),
    NUM(local_concurrency, CT_UINT, "10", 1, 100000),
    NUM(local_command_timeout, CT_DURATION, "3600s", 1, 86400),
    NUM(message_size_limit, CT_SIZE, "52428800", 1, 1ULL << 40),
    NUM(smtpd_max_recipients, CT_UINT, "1000", 1, 1000000),
    NUM(smtpd_timeout, CT_DURATION, "300s", 1, 86400),
    ENUM(smtpd_bare_newline, "normalize", bare_newline_words),
    NUM(smtpd_client_connection_limit, CT_UINT, "50", 1, 1000000),
    NUM(smtpd_connection_limit, CT_UINT, "10000", 1, 1000000),
    NUM(smtp_connect_timeout, CT_DURATION, "30s", 1, 86400),
    NUM(smtp_greeting_timeout, CT_DURATION, "300s", 1, 86400),
    NUM(smtp_command_timeout, CT_DURATION, "300s", 1, 86400),
    NUM(smtp_data_timeout, CT_DURATION, "600s", 1, 86400),
    STR(smtpd_tls_cert, CT_OPT_PATH, ""),
    STR(smtpd_tls_key, CT_OPT_PATH, ""),
    ENUM(smtp_tls, "may", tls_words),
    NUM(smtp_max_addresses, CT_UINT, "10", 1, 1000),
    NUM(smtp_connection_reuse_limit, CT_UINT, "100", 1, 1000000),
    NUM(smtp_connection_idle, CT_DURATION, "2s", 0, 86400),
    STR(mailbox, CT_MAILBOX, "~/Maildir/"),
    ENUM(local_users, "passwd", local_users_words),
    STR(user, CT_USER, "onehop"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* ------------------------------------------------------------ parser state */

enum expand_state { EXPAND_TODO, EXPAND_RUNNING, EXPAND_DONE };

struct setting {
    char *raw;     /* text as written, or the default */
    unsigned line; /* 0: the default */
    enum expand_state state;
    char *expanded; /* EXPAND_DONE: the text of the value */
    int in_loop;    /* part of a $ loop: falls back to the default */
};

struct parser {
    struct conf *c;
    const char *fname;
    struct diag *d; /* NULL: pass A, nothing is reported */
    struct setting set[NKEYS];
    size_t stack[NKEYS]; /* keys being expanded, outermost first */
    size_t depth;
    char *default_value[NKEYS]; /* pass A's texts */
};

/* Append s to b in double quotes, escaping what a terminal should not see,
 * cut after DIAG_QUOTE_MAX bytes. */
static void add_quoted(struct buf *b, const char *s)
{
    buf_addc(b, '"');
    size_t i = 0;
    for (; i < DIAG_QUOTE_MAX && s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            buf_printf(b, "\\x%02x", ch);
        else
            buf_addc(b, (char)ch);
    }
    buf_adds(b, s[i] ? "\"..." : "\"");
}

/* Report a mistake of key k (message prefixed "KEY: "), unless k was not
 * written in the file (pass A, or a default that follows a bad value). */
static void report(struct parser *p, size_t k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct parser *p, size_t k, const char *fmt, ...)
{
    if (!p->d || p->set[k].line == 0)
        return;
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    diag_add(p->d, p->fname, p->set[k].line, "%s: %s", keys[k].name, buf_cstr(&msg));
    buf_free(&msg);
}

/* Report "KEY: "VALUE": reason". */
static void report_value(struct parser *p, size_t k, const char *value, const char *why)
{
    struct buf q = BUF_INIT;
    add_quoted(&q, value);
    report(p, k, "%s: %s", buf_cstr(&q), why);
    buf_free(&q);
}

static int key_index(const char *name, size_t len)
{
    for (size_t k = 0; k < NKEYS; k++) {
        if (strlen(keys[k].name) == len && memcmp(keys[k].name, name, len) == 0)
            return (int)k;
    }
    return -1;
}

/* --------------------------------------------------------------- paths ---- */

/* Collapse "//" and "/./" (lexically; ".." is left alone, as symbolic links
 * make it mean something else); drop a trailing "/" unless keep_slash. */
static void path_clean(struct buf *b, int keep_slash)
{
    struct buf out = BUF_INIT;
    const char *s = buf_cstr(b);
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '/' && out.len && out.s[out.len - 1] == '/')
            continue;
        if (s[i] == '.' && out.len && out.s[out.len - 1] == '/' &&
            (s[i + 1] == '/' || s[i + 1] == '\0'))
            continue;
        buf_addc(&out, s[i]);
    }
    while (!keep_slash && out.len > 1 && out.s[out.len - 1] == '/')
        buf_truncate(&out, out.len - 1);
    buf_free(b);
    *b = out;
}

static char *absolute_dir(const char *dir)
{
    struct buf b = BUF_INIT;
    if (dir[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        buf_adds(&b, cwd ? cwd : "/");
        free(cwd);
        buf_addc(&b, '/');
    }
    buf_adds(&b, dir);
    path_clean(&b, 0);
    return buf_steal(&b);
}

/* value made absolute against the configuration directory (SPEC 1). */
static char *resolve_path(const struct conf *c, const char *value, int keep_slash)
{
    struct buf b = BUF_INIT;
    path_join(&b, c->config_dir, value);
    path_clean(&b, keep_slash);
    return buf_steal(&b);
}

/* The directory of the running executable, or NULL. */
static char *executable_dir(void)
{
    struct buf b = BUF_INIT;
    for (size_t size = 256; size <= (1u << 16); size *= 2) {
        buf_reserve(&b, size);
        ssize_t n = readlink("/proc/self/exe", b.s, size);
        if (n < 0)
            break;
        if ((size_t)n < size) {
            b.len = (size_t)n;
            b.s[n] = '\0';
            char *slash = strrchr(b.s, '/');
            if (!slash)
                break;
            buf_truncate(&b, slash == b.s ? 1 : (size_t)(slash - b.s));
            return buf_steal(&b);
        }
    }
    buf_free(&b);
    return NULL;
}

/* ------------------------------------------------------ field handlers ---- */

#define FIELD(c, k, T) ((T *)(void *)((char *)(c) + keys[k].offset))

static void set_string(struct parser *p, size_t k, char *value)
{
    char **field = FIELD(p->c, k, char *);
    free(*field);
    *field = value;
}

static void set_list(struct parser *p, size_t k, char **v, size_t n)
{
    struct conf_list *field = FIELD(p->c, k, struct conf_list);
    strlist_free(field->v, field->n);
    field->v = v;
    field->n = n;
}

/* A domain as matched: lower-case, no trailing dot. Returns -1 if invalid. */
static int normalize_domain(char *s)
{
    if (!hostname_valid(s))
        return -1;
    size_t len = strlen(s);
    if (s[len - 1] == '.')
        s[len - 1] = '\0';
    str_lower(s);
    return 0;
}

static int parse_hostname(struct parser *p, size_t k, const char *text)
{
    char *name = xstrdup(text);
    if (normalize_domain(name) < 0) {
        report_value(p, k, text, "not a valid host name (RFC 1123)");
        free(name);
        return -1;
    }
    set_string(p, k, name);
    return 0;
}

/* Check one list item; 0 if good (the item may be rewritten in place). */
static int check_list_item(struct parser *p, size_t k, char *item)
{
    const char *why = NULL;
    struct cidr net;
    struct hostport hp;
    unsigned listen_flags = HP_REQUIRE_IP | HP_REQUIRE_PORT | HP_ALLOW_WILDCARD;
    switch (keys[k].type) {
    case CT_DOMAINS:
        if (normalize_domain(item) == 0)
            return 0;
        why = "not a valid domain name (RFC 1123)";
        break;
    case CT_NETWORKS:
        if (cidr_parse(item, &net, &why) == 0)
            return 0;
        break;
    case CT_LISTEN:
    case CT_SERVERS:
        if (hostport_parse(item, keys[k].type == CT_LISTEN ? listen_flags : HP_REQUIRE_IP, &hp,
                           &why) == 0) {
            hostport_free(&hp);
            return 0;
        }
        break;
    default:
        why = "not a list";
        break;
    }
    report_value(p, k, item, why);
    return -1;
}

static int parse_list(struct parser *p, size_t k, const char *text)
{
    char **v;
    size_t n = split_list(text, &v);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_list_item(p, k, v[i]) < 0)
            bad = 1;
    }
    if (bad) {
        strlist_free(v, n);
        return -1;
    }
    set_list(p, k, v, n);
    return 0;
}

static int parse_path(struct parser *p, size_t k, const char *text)
{
    if (text[0] == '\0') {
        if (keys[k].type == CT_PATH) {
            report(p, k, "must not be empty");
            return -1;
        }
        set_string(p, k, xstrdup("")); /* CT_OPT_PATH: off; CT_DAEMON_DIR: see finish() */
        return 0;
    }
    set_string(p, k, resolve_path(p->c, text, 0));
    return 0;
}

static int parse_log(struct parser *p, size_t k, const char *text)
{
    if (text[0] == '\0') {
        report(p, k, "must not be empty (syslog, stderr or a file path)");
        return -1;
    }
    if (strcmp(text, "syslog") == 0 || strcmp(text, "stderr") == 0)
        set_string(p, k, xstrdup(text));
    else
        set_string(p, k, resolve_path(p->c, text, 0));
    return 0;
}

/* SPEC 3: `~` the user's home, %u user, %d domain, %h home, %% a percent. */
static int parse_mailbox(struct parser *p, size_t k, const char *text)
{
    if (text[0] == '\0') {
        report(p, k, "must not be empty");
        return -1;
    }
    for (const char *s = strchr(text, '%'); s; s = strchr(s + 2, '%')) {
        if (s[1] != 'u' && s[1] != 'd' && s[1] != 'h' && s[1] != '%') {
            report_value(p, k, text, "unknown % escape (use %u, %d, %h or %%)");
            return -1;
        }
    }
    if (text[0] == '~' || text[0] == '/' || strncmp(text, "%h", 2) == 0)
        set_string(p, k, xstrdup(text));
    else
        set_string(p, k, resolve_path(p->c, text, 1));
    return 0;
}

static int parse_number(struct parser *p, size_t k, const char *text)
{
    const struct conf_key *key = &keys[k];
    uint64_t v;
    const char *why;
    int rc;
    if (key->type == CT_DURATION)
        rc = parse_duration(text, &v, &why);
    else if (key->type == CT_SIZE)
        rc = parse_size(text, &v, &why);
    else
        rc = parse_uint(text, 0, UINT64_MAX, &v, &why);
    if (rc < 0) {
        report_value(p, k, text, why);
        return -1;
    }
    if (v < key->min || v > key->max) {
        struct buf range = BUF_INIT;
        buf_printf(&range, "out of range (%llu to %llu%s)", (unsigned long long)key->min,
                   (unsigned long long)key->max, key->type == CT_DURATION ? " seconds" : "");
        report_value(p, k, text, buf_cstr(&range));
        buf_free(&range);
        return -1;
    }
    *FIELD(p->c, k, uint64_t) = v;
    return 0;
}

static int parse_boolean(struct parser *p, size_t k, const char *text)
{
    int v;
    const char *why;
    if (parse_bool(text, &v, &why) < 0) {
        report_value(p, k, text, why);
        return -1;
    }
    *FIELD(p->c, k, int) = v;
    return 0;
}

static int parse_enum(struct parser *p, size_t k, const char *text)
{
    const struct conf_word *w = keys[k].words;
    struct buf choices = BUF_INIT;
    for (; w->word; w++) {
        if (strcasecmp(text, w->word) == 0) {
            *FIELD(p->c, k, int) = w->value;
            buf_free(&choices);
            return 0;
        }
        buf_printf(&choices, "%s%s", choices.len ? ", " : "must be one of ", w->word);
    }
    report_value(p, k, text, buf_cstr(&choices));
    buf_free(&choices);
    return -1;
}

/* relayhost: one next hop (SPEC 3), stored in its canonical form. */
static int parse_relayhost(struct parser *p, size_t k, const char *text)
{
    if (text[0] == '\0') {
        set_string(p, k, NULL);
        return 0;
    }
    struct nexthop nh;
    const char *why;
    if (nexthop_parse(text, NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &nh, &why) < 0) {
        report_value(p, k, text, why);
        return -1;
    }
    struct buf canonical = BUF_INIT;
    nexthop_format(&nh, &canonical);
    nexthop_free(&nh);
    set_string(p, k, buf_steal(&canonical));
    return 0;
}

/* user: the base of account names such as onehop-queue (SPEC 7). */
static int parse_user(struct parser *p, size_t k, const char *text)
{
    size_t len = strlen(text);
    int ok = len > 0 && len <= 24 && text[0] != '-';
    for (size_t i = 0; ok && i < len; i++) {
        char ch = text[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || ch == '.';
    }
    if (!ok) {
        report_value(p, k, text, "not a user name (1 to 24 letters, digits, '_', '-' or '.')");
        return -1;
    }
    set_string(p, k, xstrdup(text));
    return 0;
}

static int parse_value(struct parser *p, size_t k, const char *text)
{
    switch (keys[k].type) {
    case CT_HOSTNAME:
        return parse_hostname(p, k, text);
    case CT_DOMAINS:
    case CT_NETWORKS:
    case CT_LISTEN:
    case CT_SERVERS:
        return parse_list(p, k, text);
    case CT_PATH:
    case CT_OPT_PATH:
    case CT_DAEMON_DIR:
        return parse_path(p, k, text);
    case CT_LOG:
        return parse_log(p, k, text);
    case CT_MAILBOX:
        return parse_mailbox(p, k, text);
    case CT_UINT:
    case CT_SIZE:
    case CT_DURATION:
        return parse_number(p, k, text);
    case CT_BOOL:
        return parse_boolean(p, k, text);
    case CT_ENUM:
        return parse_enum(p, k, text);
    case CT_RELAYHOST:
        return parse_relayhost(p, k, text);
    case CT_USER:
        return parse_user(p, k, text);
    }
    return -1;
}

/* ----------------------------------------------------------- expansion ---- */

static void resolve_key(struct parser *p, size_t k);

static int default_refers(size_t k)
{
    return keys[k].default_text && strchr(keys[k].default_text, '$');
}

/* A loop: key j is referenced while being expanded. Every key of the cycle
 * falls back to its default; the loop is reported once, at the first key of
 * the cycle that was written in the file. */
static void report_loop(struct parser *p, size_t j)
{
    size_t from = 0;
    while (p->stack[from] != j)
        from++;
    struct buf cycle = BUF_INIT;
    for (size_t i = from; i < p->depth; i++) {
        buf_printf(&cycle, "$%s -> ", keys[p->stack[i]].name);
        p->set[p->stack[i]].in_loop = 1;
    }
    buf_printf(&cycle, "$%s", keys[j].name);
    for (size_t i = from; i < p->depth; i++) {
        if (p->set[p->stack[i]].line) {
            report(p, p->stack[i], "circular $ expansion (%s)", buf_cstr(&cycle));
            break;
        }
    }
    buf_free(&cycle);
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static void report_unknown_name(struct parser *p, size_t k, const char *name, size_t len)
{
    char *copy = xstrndup(name, len);
    struct buf q = BUF_INIT;
    add_quoted(&q, copy);
    report(p, k, "unknown key in $ expansion: %s", buf_cstr(&q));
    buf_free(&q);
    free(copy);
}

/* Read the name after '$' at *s ($name or ${name}); advances *s. Returns
 * the key index, or -1 after reporting the mistake against key k. */
static int expansion_name(struct parser *p, size_t k, const char **s)
{
    const char *name = *s, *end;
    if (*name == '{') {
        name++;
        end = strchr(name, '}');
        if (!end) {
            report(p, k, "missing '}' after ${");
            return -1;
        }
        *s = end + 1;
    } else {
        end = name;
        while (name_char(*end))
            end++;
        *s = end;
    }
    if (end == name) {
        report(p, k, "'$' must be followed by a key name ($name or ${name}); write $$ for '$'");
        return -1;
    }
    int j = key_index(name, (size_t)(end - name));
    if (j < 0)
        report_unknown_name(p, k, name, (size_t)(end - name));
    return j;
}

/* Key k's text with every $name replaced by that key's value text. */
static int expand_text(struct parser *p, size_t k, struct buf *out)
{
    const char *s = p->set[k].raw;
    while (*s && out->len <= CONF_VALUE_MAX) {
        const char *dollar = strchr(s, '$');
        size_t plain = dollar ? (size_t)(dollar - s) : strlen(s);
        buf_add(out, s, plain);
        s += plain;
        if (!dollar)
            break;
        if (*++s == '$') {
            buf_addc(out, '$'); /* $$ is a dollar sign */
            s++;
            continue;
        }
        int j = expansion_name(p, k, &s);
        if (j < 0)
            return -1;
        if (p->set[j].state == EXPAND_RUNNING) {
            report_loop(p, (size_t)j);
            return -1;
        }
        resolve_key(p, (size_t)j);
        buf_adds(out, p->set[j].expanded);
    }
    if (out->len > CONF_VALUE_MAX) {
        report(p, k, "value longer than %u bytes", CONF_VALUE_MAX);
        return -1;
    }
    return 0;
}

/* Expand and parse key k's current text; the text of the value, or NULL. */
static char *try_value(struct parser *p, size_t k)
{
    struct buf out = BUF_INIT;
    int rc = expand_text(p, k, &out);
    buf_cstr(&out); /* storage exists even for an empty value */
    char *text = xstrdup(str_trim(out.s));
    buf_free(&out);
    if (rc < 0 || p->set[k].in_loop || parse_value(p, k, text) < 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* A bad value written in the file falls back to the default: evaluated again
 * when it refers to other keys (myorigin = $myhostname follows a configured
 * myhostname), else the value and text of pass A. */
static char *fallback_value(struct parser *p, size_t k)
{
    struct setting *st = &p->set[k];
    if (st->line && default_refers(k)) {
        free(st->raw);
        st->raw = xstrdup(keys[k].default_text);
        st->line = 0;
        st->in_loop = 0;
        char *text = try_value(p, k);
        if (text)
            return text;
    }
    return xstrdup(p->default_value[k] ? p->default_value[k] : "");
}

/* Set key k from its text, once. Afterwards set[k].expanded holds the text
 * of its value, which is what $k expands to elsewhere: a bad value is never
 * carried into another key. The recursion is at most NKEYS deep, as a key
 * being resolved is never entered again (that is a loop). */
static void resolve_key(struct parser *p, size_t k)
{
    struct setting *st = &p->set[k];
    if (st->state != EXPAND_TODO)
        return;
    st->state = EXPAND_RUNNING;
    p->stack[p->depth++] = k;
    char *text = try_value(p, k);
    if (!text)
        text = fallback_value(p, k);
    p->depth--;
    st->expanded = text;
    st->state = EXPAND_DONE;
}

static void reset_expansion(struct parser *p)
{
    for (size_t k = 0; k < NKEYS; k++) {
        free(p->set[k].expanded);
        p->set[k].expanded = NULL;
        p->set[k].state = EXPAND_TODO;
        p->set[k].in_loop = 0;
    }
}

/* --------------------------------------------------------------- lines ---- */

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* One logical line `key = value` starting at file line `line`. */
static void assign(struct parser *p, char *text, unsigned line)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        struct buf q = BUF_INIT;
        add_quoted(&q, text);
        diag_add(p->d, p->fname, line, "missing '=' in %s (expected key = value)", buf_cstr(&q));
        buf_free(&q);
        return;
    }
    *eq = '\0';
    char *name = str_trim(text);
    int k = key_index(name, strlen(name));
    if (k < 0) {
        struct buf q = BUF_INIT;
        add_quoted(&q, name);
        if (name[0])
            diag_add(p->d, p->fname, line, "unknown key %s", buf_cstr(&q));
        else
            diag_add(p->d, p->fname, line, "missing key name before '='");
        buf_free(&q);
        return;
    }
    free(p->set[k].raw); /* a key given twice: the last wins */
    p->set[k].raw = xstrdup(str_trim(eq + 1));
    p->set[k].line = line;
}

struct logical_line {
    struct buf text;
    unsigned line; /* 0: none pending */
};

static void finish_logical(struct parser *p, struct logical_line *ll)
{
    if (ll->line)
        assign(p, ll->text.s, ll->line);
    buf_clear(&ll->text);
    ll->line = 0;
}

static void physical_line(struct parser *p, const char *s, size_t len, unsigned line,
                          struct logical_line *ll)
{
    if (memchr(s, '\0', len)) {
        diag_add(p->d, p->fname, line, "NUL byte in line");
        return;
    }
    char *copy = xstrndup(s, len);
    char *body = str_trim(copy);
    if (body[0] == '\0' || body[0] == '#') {
        free(copy); /* blank or comment line */
        return;
    }
    if (!is_blank(copy[0])) {
        finish_logical(p, ll);
        buf_sets(&ll->text, body);
        ll->line = line;
    } else if (ll->line) {
        buf_addc(&ll->text, ' '); /* continuation */
        buf_adds(&ll->text, body);
    } else {
        diag_add(p->d, p->fname, line,
                 "continuation line (starts with white space) "
                 "without a key = value line before it");
    }
    free(copy);
}

static void read_lines(struct parser *p, const char *text, size_t len)
{
    struct logical_line ll = {BUF_INIT, 0};
    unsigned line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        physical_line(p, text + pos, end - pos, line, &ll);
        pos = end + 1;
    }
    finish_logical(p, &ll);
    buf_free(&ll.text);
}

/* -------------------------------------------------------------- checks ---- */

/* Report that key a must not exceed key b, at whichever was written later. */
static void check_order(struct parser *p, const char *a, const char *b)
{
    size_t ka = (size_t)key_index(a, strlen(a)), kb = (size_t)key_index(b, strlen(b));
    uint64_t va = *FIELD(p->c, ka, uint64_t), vb = *FIELD(p->c, kb, uint64_t);
    if (va <= vb)
        return;
    size_t at = p->set[ka].line >= p->set[kb].line ? ka : kb;
    report(p, at, "%s (%llus) must not be greater than %s (%llus)", a, (unsigned long long)va, b,
           (unsigned long long)vb);
}

static void check_tls_pair(struct parser *p)
{
    size_t kc = (size_t)key_index("smtpd_tls_cert", 14),
           kk = (size_t)key_index("smtpd_tls_key", 13);
    int cert = p->c->smtpd_tls_cert[0] != '\0', key = p->c->smtpd_tls_key[0] != '\0';
    if (cert != key)
        report(p, cert ? kc : kk, "smtpd_tls_cert and smtpd_tls_key must be set together");
}

static void check_system_hostname(struct parser *p, const char *name)
{
    size_t k = (size_t)key_index("myhostname", 10);
    if (p->set[k].line == 0 && !hostname_valid(name)) {
        struct buf q = BUF_INIT;
        add_quoted(&q, name);
        diag_add(p->d, p->fname, 0,
                 "myhostname: the system host name %s is not a valid host name; set myhostname",
                 buf_cstr(&q));
        buf_free(&q);
    }
}

static void resolve_daemon_dir(struct parser *p)
{
    if (p->c->daemon_dir[0] != '\0')
        return;
    char *dir = executable_dir();
    if (!dir) {
        diag_add(p->d, p->fname, 0,
                 "daemon_dir: cannot find the directory of the running program; set daemon_dir");
        return;
    }
    free(p->c->daemon_dir);
    p->c->daemon_dir = dir;
}

/* ---------------------------------------------------------------- passes ---- */

static char *system_hostname(void)
{
    char name[256]; /* HOST_NAME_MAX is 64 on Linux; gethostname() truncates */
    if (gethostname(name, sizeof(name)) < 0)
        return xstrdup("");
    name[sizeof(name) - 1] = '\0';
    return xstrdup(name);
}

static void load_defaults(struct parser *p, const char *hostname)
{
    for (size_t k = 0; k < NKEYS; k++) {
        const char *def = keys[k].default_text ? keys[k].default_text : hostname;
        p->set[k].raw = xstrdup(def);
        p->set[k].line = 0;
    }
}

/* Pass A: every key from its default alone; these values are the fallback
 * for any bad value of pass B. */
static void pass_defaults(struct parser *p)
{
    struct diag *d = p->d;
    p->d = NULL;
    for (size_t k = 0; k < NKEYS; k++)
        resolve_key(p, k);
    p->d = d;
    for (size_t k = 0; k < NKEYS; k++) {
        p->default_value[k] = p->set[k].expanded;
        p->set[k].expanded = NULL;
    }
    reset_expansion(p);
}

/* Pass B: the keys written in the file, defaults that refer to other keys,
 * and (on demand) every key they refer to. */
static void pass_file(struct parser *p)
{
    for (size_t k = 0; k < NKEYS; k++) {
        if (p->set[k].line || default_refers(k))
            resolve_key(p, k);
    }
}

static void parser_free(struct parser *p)
{
    for (size_t k = 0; k < NKEYS; k++) {
        free(p->set[k].raw);
        free(p->set[k].expanded);
        free(p->default_value[k]);
    }
}

int conf_parse(struct conf *c, const char *dir, const char *fname, const char *text, size_t len,
               struct diag *d)
{
    struct diag local = DIAG_INIT;
    if (!d)
        d = &local;
    size_t errors_before = d->n;
    memset(c, 0, sizeof(*c));
    c->config_dir = absolute_dir(dir);
    c->config_file = resolve_path(c, "onehop.conf", 0);

    struct parser p;
    memset(&p, 0, sizeof(p));
    p.c = c;
    p.fname = fname;
    p.d = d;
    char *host = system_hostname();
    load_defaults(&p, hostname_valid(host) ? host : "localhost");
    pass_defaults(&p);
    read_lines(&p, text, len);
    pass_file(&p);
    check_system_hostname(&p, host);
    check_order(&p, "retry_min", "retry_max");
    check_order(&p, "dns_min_ttl", "dns_max_ttl");
    check_order(&p, "dns_timeout", "dns_lookup_timeout"); /* else no try could run its course */
    check_tls_pair(&p);
    resolve_daemon_dir(&p);
    free(host);
    parser_free(&p);

    diag_sort_by_line(d, errors_before);
    int rc = d->n > errors_before ? -1 : 0;
    diag_free(&local);
    return rc;
}

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int conf_load(struct conf *c, const char *dir, struct diag *d)
{
    struct buf fname = BUF_INIT, text = BUF_INIT;
    path_join(&fname, dir, "onehop.conf");
    int read_error = 0;
    if (read_file(buf_cstr(&fname), &text, CONF_FILE_MAX) < 0) {
        int err = errno;
        buf_clear(&text);
        if (err != ENOENT) { /* missing: all defaults */
            read_error = 1;
            if (d)
                diag_add(d, buf_cstr(&fname), 0, "cannot read: %s",
                         err == EFBIG ? "file too large" : strerror(err));
        } else if (!is_directory(dir)) {
            /* a mistyped -C must not silently mean "an empty instance with
             * the default queue" */
            read_error = 1;
            if (d)
                diag_add(d, dir, 0, "no such configuration directory");
        }
    }
    int rc = conf_parse(c, dir, buf_cstr(&fname), text.s ? text.s : "", text.len, d);
    buf_free(&fname);
    buf_free(&text);
    return read_error ? -1 : rc;
}

void conf_free(struct conf *c)
{
    for (size_t k = 0; k < NKEYS; k++) {
        switch (keys[k].type) {
        case CT_DOMAINS:
        case CT_NETWORKS:
        case CT_LISTEN:
        case CT_SERVERS: {
            struct conf_list *l = FIELD(c, k, struct conf_list);
            strlist_free(l->v, l->n);
            break;
        }
        case CT_HOSTNAME:
        case CT_PATH:
        case CT_OPT_PATH:
        case CT_DAEMON_DIR:
        case CT_LOG:
        case CT_MAILBOX:
        case CT_RELAYHOST:
        case CT_USER:
            free(*FIELD(c, k, char *));
            break;
        default:
            break;
        }
    }
    free(c->config_dir);
    free(c->config_file);
    memset(c, 0, sizeof(*c));
}

const char *conf_dir(const char *opt_C)
{
    if (opt_C && opt_C[0])
        return opt_C;
    const char *env = getenv("ONEHOP_CONFIG");
    if (env && env[0])
        return env;
    return ONEHOP_SYSCONFDIR;
}

const struct conf_key_info *conf_keys(size_t *n)
{
    static struct conf_key_info info[NKEYS];
    for (size_t k = 0; k < NKEYS; k++) {
        info[k].name = keys[k].name;
        info[k].default_text =
            keys[k].default_text ? keys[k].default_text : "(the system host name)";
        info[k].type = type_names[keys[k].type];
    }
    *n = NKEYS;
    return info;
}

int conf_list_has(const struct conf_list *l, const char *domain)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], domain) == 0)
            return 1;
    }
    return 0;
}
