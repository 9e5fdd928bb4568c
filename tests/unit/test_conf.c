/*
 * test_conf — onehop.conf (SPEC 3), a test per row: every key's default,
 * good and bad values of every type, syntax (continuation lines, comments,
 * missing '=', unknown keys with their line numbers), $ expansion (loops,
 * unknown names), relative paths, cross-key checks, and conf_load/conf_dir.
 * Each row writes DIR/onehop.conf in a fresh mkdtemp directory under /tmp and
 * loads it; expected messages are golden `FILE:LINE: message` lines.
 *
 * In expectations, @DIR@ is the configuration directory, @FILE@ its
 * onehop.conf, @HOST@ the lower-cased system host name, @EXEDIR@ the
 * directory of this test program.
 */
#include "rowtest.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "safeio.h"
#include "strparse.h"

static char test_dir[64]; /* the mkdtemp directory, holding one onehop.conf at a time */
static char *host_name;   /* @HOST@ */
static char *exe_dir;     /* @EXEDIR@ */

/* ------------------------------------------------- reading any field ---- */

enum field_kind { F_STR, F_LIST, F_U64, F_INT };

struct field {
    const char *name;
    enum field_kind kind;
    size_t offset;
};

#define F(name, kind)                                                                              \
    {                                                                                              \
#name, kind, offsetof(struct conf, name)                                                   \
    }

/* The test's own view of struct conf, independent of conf.c's table. */
static const struct field fields[] = {
    F(myhostname, F_STR),
    F(myorigin, F_STR),
    F(local_domains, F_LIST),
    F(relay_domains, F_LIST),
    F(mynetworks, F_LIST),
    F(smtp_listen, F_LIST),
    F(queue_dir, F_STR),
    F(daemon_dir, F_STR),
    F(run_dir, F_STR),
    F(log, F_STR),
    F(dns_servers, F_LIST),
    F(dns_cache_size, F_U64),
    F(dns_min_ttl, F_U64),
    F(dns_max_ttl, F_U64),
    F(dns_negative_max_ttl, F_U64),
    F(dns_serve_stale, F_INT),
    F(dns_serve_stale_max, F_U64),
    F(dns_timeout, F_U64),
    F(dns_lookup_timeout, F_U64),
    F(remote_port, F_U64),
    F(relayhost, F_STR),
    F(site_direct_smtp, F_INT),
    F(retry_min, F_U64),
    F(retry_max, F_U64),
    F(queue_lifetime, F_U64),
    F(delay_warning, F_U64),
    F(queue_active_limit, F_U64),
    F(remote_concurrency, F_U64),
    F(remote_destination_concurrency, F_U64),
    F(remote_destination_rate, F_U64),
    F(local_concurrency, F_U64),
    F(local_command_timeout, F_U64),
    F(message_size_limit, F_U64),
    F(smtpd_max_recipients, F_U64),
    F(smtpd_timeout, F_U64),
    F(smtpd_bare_newline, F_INT),
    F(smtpd_client_connection_limit, F_U64),
    F(smtpd_connection_limit, F_U64),
    F(smtp_connect_timeout, F_U64),
    F(smtp_greeting_timeout, F_U64),
    F(smtp_command_timeout, F_U64),
    F(smtp_data_timeout, F_U64),
    F(smtpd_tls_cert, F_STR),
    F(smtpd_tls_key, F_STR),
    F(smtp_tls, F_INT),
    F(smtp_max_addresses, F_U64),
    F(smtp_connection_reuse_limit, F_U64),
    F(smtp_connection_idle, F_U64),
    F(mailbox, F_STR),
    F(local_users, F_INT),
    F(user, F_STR),
    F(metrics_file, F_STR),
};

static const struct field *find_field(const char *name)
{
    for (size_t i = 0; i < ROWS(fields); i++) {
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    }
    fail_msg("no field %s in the test's table", name);
    return NULL;
}

/* The field as text: a list as "a, b", NULL as "(null)", numbers in decimal. */
static void field_text(const struct conf *c, const char *name, struct buf *out)
{
    const struct field *f = find_field(name);
    const char *base = (const char *)c + f->offset;
    buf_clear(out);
    switch (f->kind) {
    case F_STR: {
        const char *s = *(char *const *)(const void *)base;
        buf_adds(out, s ? s : "(null)");
        break;
    }
    case F_LIST: {
        const struct conf_list *l = (const struct conf_list *)(const void *)base;
        for (size_t i = 0; i < l->n; i++)
            buf_printf(out, "%s%s", i ? ", " : "", l->v[i]);
        break;
    }
    case F_U64:
        buf_printf(out, "%llu", (unsigned long long)*(const uint64_t *)(const void *)base);
        break;
    case F_INT:
        buf_printf(out, "%d", *(const int *)(const void *)base);
        break;
    }
}

/* Replace the @NAME@ placeholders of an expectation. */
static void expand_expectation(const char *in, struct buf *out)
{
    static const char *const names[] = {"@DIR@", "@FILE@", "@HOST@", "@EXEDIR@"};
    buf_clear(out);
    while (*in) {
        size_t i = 0;
        for (; i < ROWS(names); i++) {
            if (strncmp(in, names[i], strlen(names[i])) == 0)
                break;
        }
        if (i == ROWS(names)) {
            buf_addc(out, *in++);
            continue;
        }
        in += strlen(names[i]);
        if (i == 0)
            buf_adds(out, test_dir);
        else if (i == 1)
            buf_printf(out, "%s/onehop.conf", test_dir);
        else if (i == 2)
            buf_adds(out, host_name);
        else
            buf_adds(out, exe_dir);
    }
}

static void write_conf(const char *text)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/onehop.conf", test_dir);
    FILE *f = fopen(buf_cstr(&path), "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    buf_free(&path);
}

static void remove_conf(void)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/onehop.conf", test_dir);
    if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
        fail_msg("unlink %s: %s", buf_cstr(&path), strerror(errno));
    buf_free(&path);
}

static void assert_field(const struct conf *c, const char *key, const char *want)
{
    struct buf got = BUF_INIT, expected = BUF_INIT;
    field_text(c, key, &got);
    expand_expectation(want, &expected);
    if (strcmp(buf_cstr(&got), buf_cstr(&expected)) != 0)
        fail_msg("%s = \"%s\", want \"%s\"", key, buf_cstr(&got), buf_cstr(&expected));
    buf_free(&got);
    buf_free(&expected);
}

/* The diag items as "FILE:LINE: message" lines, each ending in '\n'. */
static void diag_text(const struct diag *d, struct buf *out)
{
    buf_clear(out);
    for (size_t i = 0; i < d->n; i++)
        buf_printf(out, "%s:%u: %s\n", d->v[i].file, d->v[i].line, d->v[i].text);
}

static void assert_diag(const struct diag *d, const char *want)
{
    struct buf got = BUF_INIT, expected = BUF_INIT;
    diag_text(d, &got);
    expand_expectation(want, &expected);
    if (strcmp(buf_cstr(&got), buf_cstr(&expected)) != 0)
        fail_msg("diag:\n%s\nwant:\n%s", buf_cstr(&got), buf_cstr(&expected));
    buf_free(&got);
    buf_free(&expected);
}

/* ------------------------------------------------------------ defaults ---- */

struct default_row {
    const char *key;
    const char *want;
};

/* SPEC 3, letter by letter, plus the keys conf.h adds. */
static const struct default_row default_rows[] = {
    {"myhostname", "@HOST@"},
    {"myorigin", "@HOST@"},
    {"local_domains", "@HOST@, localhost"},
    {"relay_domains", ""},
    {"mynetworks", "127.0.0.0/8, ::1/128"},
    {"smtp_listen", "0.0.0.0:25, [::]:25"},
    {"queue_dir", "/var/spool/onehop"},
    {"daemon_dir", "@EXEDIR@"},
    {"run_dir", "/run/onehop"},
    {"log", "syslog"},
    {"dns_servers", ""},
    {"dns_cache_size", "10000"},
    {"dns_min_ttl", "0"},
    {"dns_max_ttl", "86400"},
    {"dns_negative_max_ttl", "300"},
    {"dns_serve_stale", "0"},
    {"dns_serve_stale_max", "86400"},
    {"dns_timeout", "5"},
    {"dns_lookup_timeout", "15"},
    {"remote_port", "25"},
    {"relayhost", "(null)"},
    {"site_direct_smtp", "1"},
    {"retry_min", "300"},
    {"retry_max", "4000"},
    {"queue_lifetime", "432000"},
    {"delay_warning", "0"},
    {"queue_active_limit", "20000"},
    {"remote_concurrency", "100"},
    {"remote_destination_concurrency", "20"},
    {"remote_destination_rate", "0"},
    {"local_concurrency", "10"},
    {"local_command_timeout", "3600"},
    {"message_size_limit", "52428800"},
    {"smtpd_max_recipients", "1000"},
    {"smtpd_timeout", "300"},
    {"smtpd_bare_newline", "0"}, /* BARE_NEWLINE_NORMALIZE */
    {"smtpd_client_connection_limit", "50"},
    {"smtpd_connection_limit", "10000"},
    {"smtp_connect_timeout", "30"},
    {"smtp_greeting_timeout", "300"},
    {"smtp_command_timeout", "300"},
    {"smtp_data_timeout", "600"},
    {"smtpd_tls_cert", ""},
    {"smtpd_tls_key", ""},
    {"smtp_tls", "1"}, /* SMTP_TLS_MAY */
    {"smtp_max_addresses", "10"},
    {"smtp_connection_reuse_limit", "100"},
    {"smtp_connection_idle", "2"},
    {"mailbox", "~/Maildir/"},
    {"local_users", "0"}, /* LOCAL_USERS_PASSWD */
    {"user", "onehop"},
    {"metrics_file", ""},
};

/* A missing onehop.conf means every default, and no error. */
static void test_default(void **state)
{
    const struct default_row *r = *state;
    remove_conf();
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, test_dir, &d), 0);
    assert_int_equal(d.n, 0);
    assert_field(&c, r->key, r->want);
    conf_free(&c);
    diag_free(&d);
}

/* An empty file gives the same defaults as a missing one. */
static void test_default_empty_file(void **state)
{
    (void)state;
    write_conf("# nothing but a comment\n\n");
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, test_dir, &d), 0);
    for (size_t i = 0; i < ROWS(default_rows); i++)
        assert_field(&c, default_rows[i].key, default_rows[i].want);
    conf_free(&c);
    diag_free(&d);
}

/* conf_keys() names every field exactly once, and every one has a default row. */
static void test_conf_keys(void **state)
{
    (void)state;
    size_t n;
    const struct conf_key_info *info = conf_keys(&n);
    assert_int_equal(n, ROWS(fields));
    assert_int_equal(n, ROWS(default_rows));
    for (size_t i = 0; i < n; i++) {
        find_field(info[i].name);
        assert_non_null(info[i].default_text);
        assert_non_null(info[i].type);
        int rows = 0;
        for (size_t j = 0; j < ROWS(default_rows); j++)
            rows += strcmp(default_rows[j].key, info[i].name) == 0;
        assert_int_equal(rows, 1);
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(info[i].name, info[j].name);
    }
}

/* ------------------------------------------------------- good values ---- */

struct value_row {
    const char *text; /* onehop.conf */
    const char *key;
    const char *want;
};

static const struct value_row value_rows[] = {
    /* host names */
    {"myhostname = Mail.Example.COM.\n", "myhostname", "mail.example.com"},
    {"myorigin = example.com\n", "myorigin", "example.com"},
    /* domain lists: lower-cased, trailing dot removed, commas and/or blanks */
    {"local_domains = Example.COM, b.example. c.example,d.example\n", "local_domains",
     "example.com, b.example, c.example, d.example"},
    {"relay_domains = relay.example\n", "relay_domains", "relay.example"},
    {"local_domains =\n", "local_domains", ""},
    /* networks */
    {"mynetworks = 10.0.0.0/8 192.168.1.0/24, 2001:db8::/32 [::1]/128 10.9.9.9\n", "mynetworks",
     "10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32, [::1]/128, 10.9.9.9"},
    {"mynetworks =\n", "mynetworks", ""},
    /* listen addresses */
    {"smtp_listen = 127.0.0.1:2525\n", "smtp_listen", "127.0.0.1:2525"},
    {"smtp_listen = *:25, [::1]:2525 [127.0.0.2]:26\n", "smtp_listen",
     "*:25, [::1]:2525, [127.0.0.2]:26"},
    {"smtp_listen =\n", "smtp_listen", ""},
    /* DNS servers */
    {"dns_servers = 127.0.0.1 127.0.0.1:5353, [::1]:53 ::1\n", "dns_servers",
     "127.0.0.1, 127.0.0.1:5353, [::1]:53, ::1"},
    /* paths: relative ones against the configuration directory */
    {"queue_dir = queue\n", "queue_dir", "@DIR@/queue"},
    {"queue_dir = ./spool/q/\n", "queue_dir", "@DIR@/spool/q"},
    {"queue_dir = /srv/q\n", "queue_dir", "/srv/q"},
    {"run_dir = run\n", "run_dir", "@DIR@/run"},
    {"daemon_dir = libexec\n", "daemon_dir", "@DIR@/libexec"},
    {"daemon_dir = /usr/libexec/onehop\n", "daemon_dir", "/usr/libexec/onehop"},
    {"daemon_dir =\n", "daemon_dir", "@EXEDIR@"},
    {"smtpd_tls_cert = tls/cert.pem\nsmtpd_tls_key = /etc/k.pem\n", "smtpd_tls_cert",
     "@DIR@/tls/cert.pem"},
    {"smtpd_tls_cert = tls/cert.pem\nsmtpd_tls_key = /etc/k.pem\n", "smtpd_tls_key", "/etc/k.pem"},
    {"metrics_file = metrics/onehop.prom\n", "metrics_file", "@DIR@/metrics/onehop.prom"},
    {"metrics_file = /var/lib/node_exporter/onehop.prom\n", "metrics_file",
     "/var/lib/node_exporter/onehop.prom"},
    /* log */
    {"log = stderr\n", "log", "stderr"},
    {"log = syslog\n", "log", "syslog"},
    {"log = log/onehop.log\n", "log", "@DIR@/log/onehop.log"},
    {"log = /var/log/onehop.log\n", "log", "/var/log/onehop.log"},
    /* mailbox */
    {"mailbox = ~/Mail/inbox\n", "mailbox", "~/Mail/inbox"},
    {"mailbox = /var/mail/%u\n", "mailbox", "/var/mail/%u"},
    {"mailbox = %h/Maildir/\n", "mailbox", "%h/Maildir/"},
    {"mailbox = mail/%d/%u/\n", "mailbox", "@DIR@/mail/%d/%u/"},
    /* integers */
    {"dns_cache_size = 1\n", "dns_cache_size", "1"},
    {"remote_port = 2525\n", "remote_port", "2525"},
    {"remote_port = 65535\n", "remote_port", "65535"},
    {"remote_concurrency = 5\n", "remote_concurrency", "5"},
    {"remote_destination_concurrency = 1\n", "remote_destination_concurrency", "1"},
    {"local_concurrency = 3\n", "local_concurrency", "3"},
    {"smtpd_max_recipients = 50\n", "smtpd_max_recipients", "50"},
    {"smtp_max_addresses = 2\n", "smtp_max_addresses", "2"},
    {"smtp_connection_reuse_limit = 1\n", "smtp_connection_reuse_limit", "1"},
    /* sizes */
    {"message_size_limit = 1000\n", "message_size_limit", "1000"},
    {"message_size_limit = 10m\n", "message_size_limit", "10485760"},
    {"message_size_limit = 64k\n", "message_size_limit", "65536"},
    /* durations: s, m, h, d; a bare number is seconds */
    {"retry_min = 60\n", "retry_min", "60"},
    {"retry_min = 1m\n", "retry_min", "60"},
    {"retry_max = 2h\n", "retry_max", "7200"},
    {"queue_lifetime = 1d\n", "queue_lifetime", "86400"},
    {"queue_lifetime = 0\n", "queue_lifetime", "0"},
    {"delay_warning = 4h\n", "delay_warning", "14400"},
    {"dns_min_ttl = 60s\n", "dns_min_ttl", "60"},
    {"dns_max_ttl = 1h\n", "dns_max_ttl", "3600"},
    {"dns_negative_max_ttl = 0\n", "dns_negative_max_ttl", "0"},
    {"dns_serve_stale_max = 2d\n", "dns_serve_stale_max", "172800"},
    {"dns_timeout = 2\n", "dns_timeout", "2"},
    {"dns_lookup_timeout = 1m\n", "dns_lookup_timeout", "60"},
    {"smtpd_timeout = 1m\n", "smtpd_timeout", "60"},
    {"smtp_connect_timeout = 5s\n", "smtp_connect_timeout", "5"},
    {"smtp_greeting_timeout = 1m\n", "smtp_greeting_timeout", "60"},
    {"smtp_command_timeout = 2m\n", "smtp_command_timeout", "120"},
    {"smtp_data_timeout = 20m\n", "smtp_data_timeout", "1200"},
    {"smtp_connection_idle = 0\n", "smtp_connection_idle", "0"},
    /* booleans */
    {"site_direct_smtp = no\n", "site_direct_smtp", "0"},
    {"site_direct_smtp = YES\n", "site_direct_smtp", "1"},
    {"dns_serve_stale = on\n", "dns_serve_stale", "1"},
    /* enumerations */
    {"smtp_tls = none\n", "smtp_tls", "0"},
    {"smtp_tls = may\n", "smtp_tls", "1"},
    {"smtp_tls = encrypt\n", "smtp_tls", "2"},
    {"local_users = any\n", "local_users", "1"},
    {"local_users = passwd\n", "local_users", "0"},
    {"smtpd_bare_newline = reject\n", "smtpd_bare_newline", "1"},
    {"smtpd_bare_newline = normalize\n", "smtpd_bare_newline", "0"},
    {"smtpd_client_connection_limit = 3\n", "smtpd_client_connection_limit", "3"},
    {"smtpd_connection_limit = 20000\n", "smtpd_connection_limit", "20000"},
    /* relayhost: one next hop, kept in its canonical form */
    {"relayhost = smarthost.example\n", "relayhost", "smarthost.example"},
    {"relayhost = Smarthost.Example:2525\n", "relayhost", "smarthost.example:2525"},
    {"relayhost = [smarthost.example]\n", "relayhost", "[smarthost.example]"},
    {"relayhost = [192.0.2.1]:587\n", "relayhost", "[192.0.2.1]:587"},
    {"relayhost = [2001:db8::1]:587\n", "relayhost", "[2001:db8::1]:587"},
    {"relayhost =\n", "relayhost", "(null)"},
    /* user */
    {"user = mta\n", "user", "mta"},
    /* syntax: a key given twice, the last wins */
    {"remote_port = 1\nremote_port = 2\n", "remote_port", "2"},
    /* syntax: no spaces around '=', CRLF line ends, trailing blanks */
    {"remote_port=26\r\n", "remote_port", "26"},
    {"remote_port   =   27   \t\n", "remote_port", "27"},
    /* syntax: no newline at the end of the file */
    {"remote_port = 28", "remote_port", "28"},
    /* continuation lines, also across comments and blank lines (as Postfix) */
    {"local_domains = a.example,\n  b.example\n\tc.example\n", "local_domains",
     "a.example, b.example, c.example"},
    {"local_domains = a.example\n# a comment\n\n  b.example\n", "local_domains",
     "a.example, b.example"},
    {"local_domains = a.example\n  # an indented comment\n  b.example\n", "local_domains",
     "a.example, b.example"},
    {"local_domains =\n  a.example\n", "local_domains", "a.example"},
    /* $ expansion, after defaults */
    {"myhostname = mx.example.com\n", "local_domains", "mx.example.com, localhost"},
    {"myhostname = mx.example.com\n", "myorigin", "mx.example.com"},
    {"local_domains = $myhostname, ${myorigin}, other.example\nmyorigin = o.example\n",
     "local_domains", "@HOST@, o.example, other.example"},
    {"relay_domains = $local_domains\nlocal_domains = l.example\n", "relay_domains", "l.example"},
    {"queue_dir = var/q\nrun_dir = $queue_dir/run\n", "run_dir", "@DIR@/var/q/run"},
    {"mailbox = /var/mail/$$%u\n", "mailbox", "/var/mail/$%u"},
    {"myorigin = ${myhostname}\nmyhostname = Z.example\n", "myorigin", "z.example"},
    {"remote_port = $remote_destination_concurrency$remote_destination_concurrency\n",
     "remote_port", "2020"},
};

static void test_value(void **state)
{
    const struct value_row *r = *state;
    write_conf(r->text);
    struct conf c;
    struct diag d = DIAG_INIT;
    int rc = conf_load(&c, test_dir, &d);
    assert_diag(&d, "");
    assert_int_equal(rc, 0);
    assert_field(&c, r->key, r->want);
    conf_free(&c);
    diag_free(&d);
}

/* ------------------------------------------------------------ mistakes ---- */

struct bad_row {
    const char *text;
    const char *diag; /* golden FILE:LINE: lines */
    const char *key;  /* NULL, or a key that must keep this value */
    const char *want;
};

static const struct bad_row bad_rows[] = {
    /* syntax */
    {"foo = bar\n", "@FILE@:1: unknown key \"foo\"\n", NULL, NULL},
    {"\n# c\nremote_port = 26\nRemote_Port = 27\n", "@FILE@:4: unknown key \"Remote_Port\"\n",
     "remote_port", "26"},
    {"remote_port 26\n", "@FILE@:1: missing '=' in \"remote_port 26\" (expected key = value)\n",
     "remote_port", "25"},
    {"= 26\n", "@FILE@:1: missing key name before '='\n", NULL, NULL},
    {"  remote_port = 26\n",
     "@FILE@:1: continuation line (starts with white space) without a key = value line before "
     "it\n",
     "remote_port", "25"},
    {"retry_min = 5m # five minutes\n",
     "@FILE@:1: retry_min: \"5m # five minutes\": bad duration (use a number with an optional s, "
     "m, h or d suffix)\n",
     "retry_min", "300"},
    {"foo = a\n  b\nremote_port = 2\n", "@FILE@:1: unknown key \"foo\"\n", "remote_port", "2"},
    /* three mistakes, three items, each on its own line, in line order */
    {"remote_port = 0\n# fine\nlocal_domains = ok.example\nbogus = 1\n\nsmtp_tls = maybe\n",
     "@FILE@:1: remote_port: \"0\": out of range (1 to 65535)\n"
     "@FILE@:4: unknown key \"bogus\"\n"
     "@FILE@:6: smtp_tls: \"maybe\": must be one of none, may, encrypt\n",
     "local_domains", "ok.example"},
    /* a mistake in a continued value is reported at the line the value starts */
    {"# c\nmynetworks = 127.0.0.0/8,\n  10.0.0.1/8\n",
     "@FILE@:2: mynetworks: \"10.0.0.1/8\": host bits set beyond the prefix length\n", "mynetworks",
     "127.0.0.0/8, ::1/128"},
    /* integers */
    {"remote_port = 65536\n", "@FILE@:1: remote_port: \"65536\": out of range (1 to 65535)\n",
     "remote_port", "25"},
    {"remote_port = 99999\n", "@FILE@:1: remote_port: \"99999\": out of range (1 to 65535)\n",
     "remote_port", "25"},
    {"remote_port = -1\n", "@FILE@:1: remote_port: \"-1\": not a number\n", "remote_port", "25"},
    {"remote_port = 25x\n", "@FILE@:1: remote_port: \"25x\": not a number\n", "remote_port", "25"},
    {"remote_port =\n", "@FILE@:1: remote_port: \"\": not a number\n", "remote_port", "25"},
    {"dns_cache_size = 0\n", "@FILE@:1: dns_cache_size: \"0\": out of range (1 to 100000000)\n",
     "dns_cache_size", "10000"},
    {"remote_concurrency = 99999999999999999999999\n",
     "@FILE@:1: remote_concurrency: \"99999999999999999999999\": number too large\n",
     "remote_concurrency", "100"},
    {"smtp_max_addresses = 0\n", "@FILE@:1: smtp_max_addresses: \"0\": out of range (1 to 1000)\n",
     "smtp_max_addresses", "10"},
    /* sizes */
    {"message_size_limit = 10x\n",
     "@FILE@:1: message_size_limit: \"10x\": bad size (use a number of bytes with an optional k, "
     "m or g suffix)\n",
     "message_size_limit", "52428800"},
    {"message_size_limit = 0\n",
     "@FILE@:1: message_size_limit: \"0\": out of range (1 to 1099511627776)\n",
     "message_size_limit", "52428800"},
    /* durations */
    {"retry_max = 5w\n",
     "@FILE@:1: retry_max: \"5w\": bad duration (use a number with an optional s, m, h or d "
     "suffix)\n",
     "retry_max", "4000"},
    {"queue_lifetime = 5000d\n",
     "@FILE@:1: queue_lifetime: \"5000d\": duration longer than 10 years\n", "queue_lifetime",
     "432000"},
    {"dns_lookup_timeout = 0\n",
     "@FILE@:1: dns_lookup_timeout: \"0\": out of range (1 to 3600 seconds)\n",
     "dns_lookup_timeout", "15"},
    {"smtpd_timeout = 0\n", "@FILE@:1: smtpd_timeout: \"0\": out of range (1 to 86400 seconds)\n",
     "smtpd_timeout", "300"},
    {"smtp_data_timeout = -5s\n", "@FILE@:1: smtp_data_timeout: \"-5s\": not a number\n",
     "smtp_data_timeout", "600"},
    /* booleans */
    {"site_direct_smtp = maybe\n",
     "@FILE@:1: site_direct_smtp: \"maybe\": not a boolean (use yes or no)\n", "site_direct_smtp",
     "1"},
    /* enumerations */
    {"local_users = all\n", "@FILE@:1: local_users: \"all\": must be one of passwd, any\n",
     "local_users", "0"},
    {"smtpd_bare_newline = accept\n",
     "@FILE@:1: smtpd_bare_newline: \"accept\": must be one of normalize, reject\n",
     "smtpd_bare_newline", "0"},
    /* lists: every bad item is a mistake; the key keeps its default */
    {"mynetworks = 127.0.0.0/8, 10.0.0.0/33, example.com\n",
     "@FILE@:1: mynetworks: \"10.0.0.0/33\": bad prefix length (must be 0-32)\n"
     "@FILE@:1: mynetworks: \"example.com\": not an IP address\n",
     "mynetworks", "127.0.0.0/8, ::1/128"},
    {"smtp_listen = 127.0.0.1\n", "@FILE@:1: smtp_listen: \"127.0.0.1\": port missing\n",
     "smtp_listen", "0.0.0.0:25, [::]:25"},
    {"smtp_listen = localhost:25\n", "@FILE@:1: smtp_listen: \"localhost:25\": not an IP address\n",
     "smtp_listen", "0.0.0.0:25, [::]:25"},
    {"smtp_listen = 127.0.0.1:0\n",
     "@FILE@:1: smtp_listen: \"127.0.0.1:0\": bad port (must be 1-65535)\n", "smtp_listen",
     "0.0.0.0:25, [::]:25"},
    {"smtp_listen = ::1:25\n", "@FILE@:1: smtp_listen: \"::1:25\": port missing\n", "smtp_listen",
     "0.0.0.0:25, [::]:25"},
    {"dns_servers = ns.example\n", "@FILE@:1: dns_servers: \"ns.example\": not an IP address\n",
     "dns_servers", ""},
    {"dns_servers = 127.0.0.1:99999\n",
     "@FILE@:1: dns_servers: \"127.0.0.1:99999\": bad port (must be 1-65535)\n", "dns_servers", ""},
    {"local_domains = ok.example bad_domain.example\n",
     "@FILE@:1: local_domains: \"bad_domain.example\": not a valid domain name (RFC 1123)\n",
     "local_domains", "@HOST@, localhost"},
    /* host names */
    {"myhostname = not a host\n",
     "@FILE@:1: myhostname: \"not a host\": not a valid host name (RFC 1123)\n", "local_domains",
     "@HOST@, localhost"},
    /* paths */
    {"queue_dir =\n", "@FILE@:1: queue_dir: must not be empty\n", "queue_dir", "/var/spool/onehop"},
    {"log =\n", "@FILE@:1: log: must not be empty (syslog, stderr or a file path)\n", "log",
     "syslog"},
    {"mailbox = /var/mail/%x\n",
     "@FILE@:1: mailbox: \"/var/mail/%x\": unknown % escape (use %u, %d, %h or %%)\n", "mailbox",
     "~/Maildir/"},
    /* relayhost: a next hop, never local or error: */
    {"relayhost = local\n", "@FILE@:1: relayhost: \"local\": local is not allowed here\n",
     "relayhost", "(null)"},
    {"relayhost = error:5.0.0 no\n",
     "@FILE@:1: relayhost: \"error:5.0.0 no\": error: is not allowed here\n", "relayhost",
     "(null)"},
    {"relayhost = [192.0.2.1]:99999\n",
     "@FILE@:1: relayhost: \"[192.0.2.1]:99999\": bad port (must be 1-65535)\n", "relayhost",
     "(null)"},
    {"relayhost = a.example, b.example\n",
     "@FILE@:1: relayhost: \"a.example, b.example\": not a valid host name (RFC 1123)\n",
     "relayhost", "(null)"},
    /* user */
    {"user = on hop\n",
     "@FILE@:1: user: \"on hop\": not a user name (1 to 24 letters, digits, '_', '-' or '.')\n",
     "user", "onehop"},
    /* cross-key checks, at the later of the two lines */
    {"retry_max = 100s\nretry_min = 200s\n",
     "@FILE@:2: retry_min: retry_min (200s) must not be greater than retry_max (100s)\n", NULL,
     NULL},
    {"retry_max = 100s\n",
     "@FILE@:1: retry_max: retry_min (300s) must not be greater than retry_max (100s)\n", NULL,
     NULL},
    {"dns_min_ttl = 2d\n",
     "@FILE@:1: dns_min_ttl: dns_min_ttl (172800s) must not be greater than dns_max_ttl "
     "(86400s)\n",
     NULL, NULL},
    {"dns_timeout = 20s\n",
     "@FILE@:1: dns_timeout: dns_timeout (20s) must not be greater than dns_lookup_timeout "
     "(15s)\n",
     NULL, NULL},
    {"dns_lookup_timeout = 10s\ndns_timeout = 11s\n",
     "@FILE@:2: dns_timeout: dns_timeout (11s) must not be greater than dns_lookup_timeout "
     "(10s)\n",
     NULL, NULL},
    {"smtpd_tls_cert = cert.pem\n",
     "@FILE@:1: smtpd_tls_cert: smtpd_tls_cert and smtpd_tls_key must be set together\n", NULL,
     NULL},
    /* $ expansion */
    {"myorigin = $nosuchkey\n", "@FILE@:1: myorigin: unknown key in $ expansion: \"nosuchkey\"\n",
     "myorigin", "@HOST@"},
    {"myhostname = mx.example\nmyorigin = ${nosuch\n", "@FILE@:2: myorigin: missing '}' after ${\n",
     "myorigin", "mx.example"},
    {"mailbox = /var/mail/$\n",
     "@FILE@:1: mailbox: '$' must be followed by a key name ($name or ${name}); write $$ for "
     "'$'\n",
     "mailbox", "~/Maildir/"},
    {"myorigin = $myorigin\n",
     "@FILE@:1: myorigin: circular $ expansion ($myorigin -> $myorigin)\n", "myorigin", "@HOST@"},
    {"relay_domains = $local_domains\nlocal_domains = $relay_domains\n",
     "@FILE@:2: local_domains: circular $ expansion ($local_domains -> $relay_domains -> "
     "$local_domains)\n",
     "local_domains", "@HOST@, localhost"},
    /* a loop through a default: myorigin's default is $myhostname */
    {"myhostname = $myorigin\n",
     "@FILE@:1: myhostname: circular $ expansion ($myhostname -> $myorigin -> $myhostname)\n",
     "myhostname", "@HOST@"},
    /* a value that grows too long by expansion is refused, not built */
    {"log = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
     "mailbox = $log$log$log$log$log$log$log$log$log$log$log$log$log$log$log$log\n"
     "queue_dir = $mailbox$mailbox$mailbox$mailbox$mailbox$mailbox$mailbox$mailbox$mailbox"
     "$mailbox$mailbox$mailbox$mailbox$mailbox$mailbox$mailbox\n"
     "run_dir = $queue_dir$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir"
     "$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir$queue_dir\n",
     "@FILE@:4: run_dir: value longer than 65536 bytes\n", "run_dir", "/run/onehop"},
    /* a key that refers to a bad one gets the bad one's default */
    {"user = no way\nmyorigin = $user.example\n",
     "@FILE@:1: user: \"no way\": not a user name (1 to 24 letters, digits, '_', '-' or '.')\n",
     "myorigin", "onehop.example"},
    /* a bad myorigin falls back to its default, which follows myhostname */
    {"myhostname = mx.example\nmyorigin = bad_origin\n",
     "@FILE@:2: myorigin: \"bad_origin\": not a valid host name (RFC 1123)\n", "myorigin",
     "mx.example"},
    /* a NUL byte in a line: that line is refused, the others read */
    {NULL, "@FILE@:1: NUL byte in line\n", "remote_port", "26"},
};

static void test_bad(void **state)
{
    const struct bad_row *r = *state;
    if (r->text) {
        write_conf(r->text);
    } else {
        struct buf path = BUF_INIT;
        buf_printf(&path, "%s/onehop.conf", test_dir);
        FILE *f = fopen(buf_cstr(&path), "w");
        assert_non_null(f);
        static const char nul_line[] = "user = a\0b\nremote_port = 26\n";
        assert_int_equal(fwrite(nul_line, 1, sizeof(nul_line) - 1, f), sizeof(nul_line) - 1);
        assert_int_equal(fclose(f), 0);
        buf_free(&path);
    }
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, test_dir, &d), -1);
    assert_diag(&d, r->diag);
    if (r->key)
        assert_field(&c, r->key, r->want);
    /* whatever went wrong, every field is set */
    assert_non_null(c.myhostname);
    assert_non_null(c.daemon_dir);
    assert_non_null(c.mailbox);
    conf_free(&c);
    diag_free(&d);
}

/* -------------------------------------------------- loading and dirs ---- */

/* An onehop.conf that cannot be read is an error (a missing one is not). */
static void test_unreadable(void **state)
{
    (void)state;
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/onehop.conf", test_dir);
    remove_conf();
    assert_int_equal(mkdir(buf_cstr(&path), 0700), 0); /* a directory cannot be read */
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, test_dir, &d), -1);
    assert_diag(&d, "@FILE@:0: cannot read: Is a directory\n");
    assert_field(&c, "remote_port", "25");
    conf_free(&c);
    diag_free(&d);
    assert_int_equal(rmdir(buf_cstr(&path)), 0);
    buf_free(&path);
}

/* A relative DIR: diag names DIR/onehop.conf as given, paths become absolute. */
static void test_relative_dir(void **state)
{
    (void)state;
    write_conf("queue_dir = q\nbogus = 1\n");
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir("/tmp"), 0);
    const char *rel = test_dir + strlen("/tmp/");
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, rel, &d), -1);
    assert_int_equal(d.n, 1);
    struct buf want = BUF_INIT;
    buf_printf(&want, "%s/onehop.conf", rel);
    assert_string_equal(d.v[0].file, buf_cstr(&want));
    assert_int_equal(d.v[0].line, 2);
    assert_field(&c, "queue_dir", "@DIR@/q");
    assert_string_equal(c.config_dir, test_dir);
    assert_field(&c, "queue_dir", "@DIR@/q");
    buf_clear(&want);
    buf_printf(&want, "%s/onehop.conf", test_dir);
    assert_string_equal(c.config_file, buf_cstr(&want));
    conf_free(&c);
    diag_free(&d);
    buf_free(&want);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
}

/* conf_parse reports under the name it is given. */
static void test_conf_parse_name(void **state)
{
    (void)state;
    static const char text[] = "remote_port = 2525\nnope = 1\n";
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_parse(&c, "/etc/x", "test.conf", text, sizeof(text) - 1, &d), -1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].file, "test.conf");
    assert_int_equal(d.v[0].line, 2);
    assert_string_equal(c.config_dir, "/etc/x");
    assert_string_equal(c.config_file, "/etc/x/onehop.conf");
    assert_int_equal(c.remote_port, 2525);
    conf_free(&c);
    diag_free(&d);
}

struct dir_row {
    const char *opt_C;
    const char *env; /* NULL: unset */
    const char *want;
};

static const struct dir_row dir_rows[] = {
    {"/srv/a", "/srv/env", "/srv/a"}, {NULL, "/srv/env", "/srv/env"},
    {NULL, NULL, ONEHOP_SYSCONFDIR},  {NULL, "", ONEHOP_SYSCONFDIR},
    {"", "/srv/env", "/srv/env"},
};

static void test_conf_dir(void **state)
{
    const struct dir_row *r = *state;
    if (r->env)
        setenv("ONEHOP_CONFIG", r->env, 1);
    else
        unsetenv("ONEHOP_CONFIG");
    assert_string_equal(conf_dir(r->opt_C), r->want);
    unsetenv("ONEHOP_CONFIG");
}

static void test_conf_list_has(void **state)
{
    (void)state;
    write_conf("local_domains = a.example, B.example\n");
    struct conf c;
    struct diag d = DIAG_INIT;
    assert_int_equal(conf_load(&c, test_dir, &d), 0);
    assert_int_equal(conf_list_has(&c.local_domains, "a.example"), 1);
    assert_int_equal(conf_list_has(&c.local_domains, "b.example"), 1);
    assert_int_equal(conf_list_has(&c.local_domains, "c.example"), 0);
    assert_int_equal(conf_list_has(&c.local_domains, "sub.a.example"), 0);
    assert_int_equal(conf_list_has(&c.relay_domains, "a.example"), 0);
    conf_free(&c);
    diag_free(&d);
}

/* ---------------------------------------------------------------- main ---- */

static void setup_environment(void)
{
    test_temp_dir(test_dir, sizeof(test_dir), "conf");
    char name[256];
    if (gethostname(name, sizeof(name)) < 0)
        name[0] = '\0';
    name[sizeof(name) - 1] = '\0';
    host_name = str_lower(xstrdup(name));
    char *exe = realpath("/proc/self/exe", NULL);
    if (!exe) {
        perror("realpath /proc/self/exe");
        exit(1);
    }
    *strrchr(exe, '/') = '\0';
    exe_dir = exe;
}

static void cleanup_environment(void)
{
    remove_conf();
    rmdir(test_dir);
    free(host_name);
    free(exe_dir);
}

int main(void)
{
    setup_environment();
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(default_rows); i++)
        rowtest_add(&t, test_default, &default_rows[i], "default %s", default_rows[i].key);
    rowtest_add(&t, test_default_empty_file, NULL, "defaults from an empty file");
    rowtest_add(&t, test_conf_keys, NULL, "conf_keys covers struct conf");
    for (size_t i = 0; i < ROWS(value_rows); i++)
        rowtest_add(&t, test_value, &value_rows[i], "value %s: %s", value_rows[i].key,
                    value_rows[i].text);
    for (size_t i = 0; i < ROWS(bad_rows); i++)
        rowtest_add(&t, test_bad, &bad_rows[i], "mistake: %s",
                    bad_rows[i].text ? bad_rows[i].text : "NUL byte");
    rowtest_add(&t, test_unreadable, NULL, "unreadable onehop.conf");
    rowtest_add(&t, test_relative_dir, NULL, "relative configuration directory");
    rowtest_add(&t, test_conf_parse_name, NULL, "conf_parse file name");
    for (size_t i = 0; i < ROWS(dir_rows); i++)
        rowtest_add(&t, test_conf_dir, &dir_rows[i], "conf_dir -C %s env %s",
                    dir_rows[i].opt_C ? dir_rows[i].opt_C : "(none)",
                    dir_rows[i].env ? dir_rows[i].env : "(unset)");
    rowtest_add(&t, test_conf_list_has, NULL, "conf_list_has");
    int failed = rowtest_run(&t, "conf");
    cleanup_environment();
    return failed;
}
