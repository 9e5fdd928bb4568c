/*
 * conf — onehop.conf (SPEC section 3): every key with its type and default,
 * parsed into one typed structure that every program reads.
 *
 * Syntax: `key = value`; `#` starts a comment line (whole lines only, as in
 * Postfix: a `#` after a value is part of it); a line starting with white
 * space continues the previous value; lists are separated by commas and/or
 * white space. `$name` and `${name}` expand to the value of another key
 * (after defaults), so `local_domains = $myhostname, localhost` works; `$$`
 * is a literal `$`.
 * Unknown keys, bad values, a missing `=` and unknown `$names` are reported
 * to a diag as `FILE:LINE: message`; a key given twice: the last wins.
 *
 * Relative paths (queue_dir, run_dir, daemon_dir, log when a path,
 * smtpd_tls_cert/key, mailbox when not starting with `~`, `/` or `%h`) are
 * made absolute against the configuration directory (SPEC 1). An empty
 * daemon_dir (the default) becomes the directory of the running executable
 * (/proc/self/exe) in conf_load()/conf_parse().
 *
 * The configuration directory is `-C DIR`, else $ONEHOP_CONFIG, else the
 * compiled-in ONEHOP_SYSCONFDIR (/etc/onehop): see conf_dir().
 */
#ifndef ONEHOP_CONF_H
#define ONEHOP_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "nexthop.h"

struct conf_list {
    char **v;
    size_t n;
};

enum smtp_tls_policy { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT };
enum local_users_mode { LOCAL_USERS_PASSWD, LOCAL_USERS_ANY };
enum bare_newline_mode { BARE_NEWLINE_NORMALIZE, BARE_NEWLINE_REJECT };

struct conf {
    char *config_dir;   /* absolute */
    char *config_file;  /* config_dir/onehop.conf */

    char *myhostname;
    char *myorigin;                 /* domain added to bare sender names; default $myhostname */
    struct conf_list local_domains; /* lower-case */
    struct conf_list relay_domains;
    struct conf_list mynetworks;    /* validated CIDR text */
    struct conf_list smtp_listen;   /* validated HOST:PORT text; empty list disables */
    char *queue_dir;
    char *daemon_dir;
    char *run_dir;
    char *log;                      /* "syslog", "stderr" or an absolute path */
    struct conf_list dns_servers;   /* validated; empty: /etc/resolv.conf */
    uint64_t dns_cache_size;
    uint64_t dns_min_ttl, dns_max_ttl, dns_negative_max_ttl; /* seconds */
    int dns_serve_stale;            /* RFC 8767, default no */
    uint64_t dns_serve_stale_max;   /* seconds an expired answer may be served; default 1d */
    uint64_t dns_timeout;           /* seconds per upstream try; default 5s */
    uint64_t dns_lookup_timeout;    /* seconds a whole lookup may take; default 15s */
    uint64_t remote_port;
    char *relayhost;                /* NULL or validated next hop text (canonical form) */
    int site_direct_smtp;
    uint64_t retry_min, retry_max, queue_lifetime, delay_warning; /* seconds */
    uint64_t queue_active_limit; /* recipients the router keeps in memory at once */
    uint64_t remote_concurrency, remote_destination_concurrency, local_concurrency;
    uint64_t remote_destination_rate; /* messages per second to one destination; 0: unlimited */
    uint64_t local_command_timeout;   /* seconds a |command delivery may take */
    uint64_t message_size_limit;
    uint64_t smtpd_max_recipients;
    uint64_t smtpd_timeout;
    enum bare_newline_mode smtpd_bare_newline;
    uint64_t smtpd_client_connection_limit; /* sessions from one client address at once */
    uint64_t smtpd_connection_limit;        /* sessions at once */
    uint64_t smtp_connect_timeout, smtp_greeting_timeout, smtp_command_timeout, smtp_data_timeout;
    char *smtpd_tls_cert, *smtpd_tls_key; /* "" (never NULL): no STARTTLS */
    enum smtp_tls_policy smtp_tls;
    uint64_t smtp_max_addresses;
    uint64_t smtp_connection_reuse_limit, smtp_connection_idle;
    char *mailbox;
    enum local_users_mode local_users;
    char *user;
    char *metrics_file; /* "" (never NULL): none; else the master writes `onehop metrics` there */
};

/* The configuration directory: opt_C if given, else $ONEHOP_CONFIG, else
 * ONEHOP_SYSCONFDIR. Returned string is static or opt_C itself. */
const char *conf_dir(const char *opt_C);

/* Load DIR/onehop.conf (a missing file means all defaults). Errors go to d;
 * returns 0 when there were none, -1 otherwise (c is then still filled with
 * what could be parsed, defaults elsewhere, and must be freed). */
int conf_load(struct conf *c, const char *dir, struct diag *d);
/* Parse configuration text as if it were the file `fname` in `dir` (fuzzing, tests). */
int conf_parse(struct conf *c, const char *dir, const char *fname, const char *text, size_t len,
               struct diag *d);
void conf_free(struct conf *c);

/* For `onehop check`, docs and tests: the table of keys. */
struct conf_key_info {
    const char *name;
    const char *default_text;
    const char *type; /* "string", "list", "path", "duration", "size", "integer", "boolean", ... */
};
const struct conf_key_info *conf_keys(size_t *n);

/* 1 if domain (lower-case) is in the list, matched exactly. */
int conf_list_has(const struct conf_list *l, const char *domain);

#endif
