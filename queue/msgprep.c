/*
 * msgprep — message preparation of the sendmail front end: stored-form (LF)
 * text from standard input, envelope addresses, -t recipient extraction,
 * Bcc: removal, missing Date:/Message-ID:/From: fields. See msgprep.h.
 *
 * Must never: write anything anywhere but into the caller's buffers, accept
 * a NUL byte, leave a CR before a line end, or let a -F full name break out
 * of its From: field.
 */
#include "msgprep.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "header.h"
#include "mem.h"

/* Longest piece of an offending address quoted back in an error message. */
#define ERR_QUOTE_MAX 200

/* ------------------------------------------------------------- input ---- */

void msgprep_input_init(struct msgprep_input *in, unsigned flags, uint64_t limit, struct buf *text)
{
    memset(in, 0, sizeof(*in));
    in->flags = flags;
    in->limit = limit;
    in->text = text;
    in->first_line = 1;
}

static int too_big(const struct msgprep_input *in, struct buf *err)
{
    buf_printf(err, "message is larger than message_size_limit (%llu bytes)",
               (unsigned long long)in->limit);
    return EX_DATAERR;
}

/* One input line p[0..n), its LF already removed. */
static int take_line(struct msgprep_input *in, const char *p, size_t n, struct buf *err)
{
    while (n > 0 && p[n - 1] == '\r') /* CR LF (and CR CR LF) end a line like LF */
        n--;
    if (in->first_line) {
        in->first_line = 0;
        if (n >= 5 && memcmp(p, "From ", 5) == 0)
            return EX_OK; /* mbox separator line: not part of the message */
    }
    if (!(in->flags & MSGPREP_IGNORE_DOTS) && n == 1 && p[0] == '.') {
        in->ended = 1; /* sendmail without -i: a lone "." ends the message */
        return EX_OK;
    }
    if (memchr(p, '\0', n)) {
        buf_adds(err, "message contains a NUL byte");
        return EX_DATAERR;
    }
    buf_add(in->text, p, n);
    buf_addc(in->text, '\n'); /* queue.h: stored lines end in LF */
    if (in->limit && in->text->len > in->limit)
        return too_big(in, err);
    return EX_OK;
}

int msgprep_input_feed(struct msgprep_input *in, const char *p, size_t n, struct buf *err)
{
    while (n > 0 && !in->ended) {
        const char *lf = memchr(p, '\n', n);
        if (!lf) {
            buf_add(&in->line, p, n);
            if (in->limit && in->line.len > in->limit)
                return too_big(in, err);
            return EX_OK;
        }
        size_t chunk = (size_t)(lf - p);
        int rc;
        if (in->line.len > 0) {
            buf_add(&in->line, p, chunk);
            rc = take_line(in, in->line.s, in->line.len, err);
            buf_clear(&in->line);
        } else {
            rc = take_line(in, p, chunk, err);
        }
        if (rc != EX_OK)
            return rc;
        p = lf + 1;
        n -= chunk + 1;
    }
    return EX_OK;
}

int msgprep_input_finish(struct msgprep_input *in, struct buf *err)
{
    int rc = EX_OK;
    if (!in->ended && in->line.len > 0)
        rc = take_line(in, in->line.s, in->line.len, err);
    buf_clear(&in->line);
    return rc;
}

void msgprep_input_free(struct msgprep_input *in)
{
    buf_free(&in->line);
}

int msgprep_read_fd(int fd, unsigned flags, uint64_t limit, struct buf *text, struct buf *err)
{
    struct msgprep_input in;
    char chunk[65536];
    int rc = EX_OK;
    msgprep_input_init(&in, flags, limit, text);
    while (rc == EX_OK && !in.ended) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            buf_printf(err, "error reading the message: %s", strerror(errno));
            rc = EX_TEMPFAIL;
        } else if (r == 0) {
            break;
        } else {
            rc = msgprep_input_feed(&in, chunk, (size_t)r, err);
        }
    }
    if (rc == EX_OK)
        rc = msgprep_input_finish(&in, err);
    msgprep_input_free(&in);
    return rc;
}

/* --------------------------------------------------------- addresses ---- */

static void quote_for_error(struct buf *err, const char *s, size_t len)
{
    if (len <= ERR_QUOTE_MAX) {
        buf_add(err, s, len);
        return;
    }
    buf_add(err, s, ERR_QUOTE_MAX);
    buf_adds(err, "...");
}

static const char *origin(const struct msgprep_config *cfg)
{
    if (cfg->myorigin && cfg->myorigin[0])
        return cfg->myorigin;
    return cfg->myhostname;
}

/* Parse one address (flags for addr_parse) and write its qualified text
 * ("" for the null sender) to out. Returns 0 or -1 with *why. */
static int qualify(const struct msgprep_config *cfg, const char *s, size_t len, unsigned flags,
                   struct buf *out, const char **why)
{
    struct mailaddr a;
    if (addr_parse(s, len, flags, &a, why) < 0)
        return -1;
    buf_clear(out);
    if (a.is_null || a.domain) {
        addr_format(&a, out);
        addr_free(&a);
        return 0;
    }
    /* A bare local part gets @myorigin (Postfix append_at_myorigin); check
     * the result again, as it may now exceed the RFC 5321 limits. */
    buf_printf(out, "%s@%s", a.local, origin(cfg));
    addr_free(&a);
    if (addr_parse(out->s, out->len, 0, &a, why) < 0)
        return -1;
    buf_clear(out);
    addr_format(&a, out);
    addr_free(&a);
    return 0;
}

static void add_recipient(struct prepared_message *m, const char *addr)
{
    for (size_t k = 0; k < m->rcpt.n; k++)
        if (strcmp(m->rcpt.v[k], addr) == 0)
            return;
    addrlist_add(&m->rcpt, addr);
}

/* Every mailbox of the address list s[0..len) becomes a recipient; `where`
 * names the source in error messages ("command line", "To: header"). */
static int add_address_list(const struct msgprep_config *cfg, const char *s, size_t len,
                            const char *where, struct prepared_message *m, struct buf *err)
{
    struct addrlist found = ADDRLIST_INIT;
    struct buf addr = BUF_INIT;
    const char *why = NULL;
    int rc = EX_OK;
    if (addrlist_parse(s, len, &found, &why) < 0) {
        buf_printf(err, "bad address syntax in %s: %s: ", where, why);
        quote_for_error(err, s, len);
        rc = EX_DATAERR;
    }
    for (size_t k = 0; rc == EX_OK && k < found.n; k++) {
        if (qualify(cfg, found.v[k], strlen(found.v[k]), ADDR_ALLOW_BARE, &addr, &why) < 0) {
            buf_printf(err, "bad address in %s: <", where);
            quote_for_error(err, found.v[k], strlen(found.v[k]));
            buf_printf(err, ">: %s", why);
            rc = EX_DATAERR;
        } else {
            add_recipient(m, buf_cstr(&addr));
        }
    }
    addrlist_free(&found);
    buf_free(&addr);
    return rc;
}

static int set_sender(const struct msgprep_config *cfg, const char *sender,
                      struct prepared_message *m, struct buf *err)
{
    struct buf addr = BUF_INIT;
    const char *why = NULL;
    if (qualify(cfg, sender, strlen(sender), ADDR_ALLOW_NULL | ADDR_ALLOW_BARE, &addr, &why) < 0) {
        buf_adds(err, "bad sender address <");
        quote_for_error(err, sender, strlen(sender));
        buf_printf(err, ">: %s", why);
        buf_free(&addr);
        return EX_DATAERR;
    }
    m->sender = buf_steal(&addr);
    return EX_OK;
}

int msgprep_begin(const struct msgprep_config *cfg, const struct msgprep_request *req,
                  struct prepared_message *m, struct buf *err)
{
    int rc = set_sender(cfg, req->sender ? req->sender : "", m, err);
    for (size_t k = 0; rc == EX_OK && k < req->nrcpt_args; k++)
        rc = add_address_list(cfg, req->rcpt_args[k], strlen(req->rcpt_args[k]), "command line", m,
                              err);
    if (rc == EX_OK && !(req->flags & MSGPREP_EXTRACT) && m->rcpt.n == 0) {
        buf_adds(err, "recipient addresses must be specified on the command line or via the -t "
                      "option");
        rc = EX_USAGE;
    }
    return rc;
}

/* ------------------------------------------------------------ header ---- */

static int has_resent_fields(const struct header_block *hb)
{
    for (size_t k = 0; k < hb->n; k++)
        if (hb->v[k].name_len > 7 && strncasecmp(hb->v[k].name, "Resent-", 7) == 0)
            return 1;
    return 0;
}

static int is_recipient_field(const struct header *h, int resent)
{
    if (resent)
        return header_is(h, "Resent-To") || header_is(h, "Resent-Cc") || header_is(h, "Resent-Bcc");
    return header_is(h, "To") || header_is(h, "Cc") || header_is(h, "Bcc");
}

/* sendmail -t: recipients from the destination fields (RFC 5322 3.6.3, or
 * 3.6.6 when the message is being resent). */
static int extract_recipients(const struct msgprep_config *cfg, const struct header_block *hb,
                              struct prepared_message *m, struct buf *err)
{
    int resent = has_resent_fields(hb);
    struct buf where = BUF_INIT;
    int rc = EX_OK;
    for (size_t k = 0; rc == EX_OK && k < hb->n; k++) {
        const struct header *h = &hb->v[k];
        if (!is_recipient_field(h, resent))
            continue;
        buf_clear(&where);
        buf_add(&where, h->name, h->name_len);
        buf_adds(&where, ": header");
        rc = add_address_list(cfg, h->value, h->value_len, buf_cstr(&where), m, err);
    }
    buf_free(&where);
    return rc;
}

static int is_bcc_field(const struct header *h)
{
    return header_is(h, "Bcc") || header_is(h, "Resent-Bcc");
}

void msgprep_format_date(time_t t, struct buf *out)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    buf_printf(out, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7], tm.tm_mday,
               months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
               off / 60, off % 60);
}

static int is_phrase_char(unsigned char c)
{
    return c == ' ' || c >= 0x80 || (c > ' ' && c < 0x7f && !strchr("()<>[]:;@\\,.\"", c));
}

/* The -F full name as an RFC 5322 display-name: as it is when it is atoms
 * and spaces, else a quoted-string. Control characters (CR and LF above
 * all) are dropped so the name cannot add a header line. */
static void add_display_name(struct buf *out, const char *name)
{
    struct buf clean = BUF_INIT;
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            continue;
        plain &= is_phrase_char(*p);
        buf_addc(&clean, (char)*p);
    }
    const char *s = buf_cstr(&clean);
    if (plain && clean.len > 0 && s[0] != ' ' && s[clean.len - 1] != ' ') {
        buf_add(out, s, clean.len);
    } else {
        buf_addc(out, '"');
        for (size_t k = 0; k < clean.len; k++) {
            if (s[k] == '"' || s[k] == '\\')
                buf_addc(out, '\\');
            buf_addc(out, s[k]);
        }
        buf_addc(out, '"');
    }
    buf_free(&clean);
}

static int has_display_text(const char *name)
{
    for (; name && *name; name++)
        if ((unsigned char)*name > ' ' && *name != 0x7f)
            return 1;
    return 0;
}

static void add_from_field(const struct msgprep_config *cfg, const struct msgprep_request *req,
                           const struct prepared_message *m, struct buf *out)
{
    buf_adds(out, "From: ");
    int named = has_display_text(req->full_name);
    if (named) {
        add_display_name(out, req->full_name);
        buf_adds(out, " <");
    }
    if (m->sender[0])
        buf_adds(out, m->sender);
    else
        buf_printf(out, "MAILER-DAEMON@%s", cfg->myhostname);
    buf_adds(out, named ? ">\n" : "\n");
}

static void add_message_id_field(const struct msgprep_config *cfg,
                                 const struct msgprep_request *req, struct buf *out)
{
    struct tm tm;
    localtime_r(&req->now, &tm);
    buf_printf(out, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\n", tm.tm_year + 1900,
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               req->unique ? req->unique : "0", cfg->myhostname);
}

/* RFC 5322 3.6: Date: and From: are required, Message-ID: should be there;
 * add what is missing, after the existing fields (as Postfix does). */
static void add_missing_fields(const struct msgprep_config *cfg, const struct msgprep_request *req,
                               const struct header_block *hb, const struct prepared_message *m,
                               struct buf *out)
{
    if (!header_find(hb, "Message-ID"))
        add_message_id_field(cfg, req, out);
    if (!header_find(hb, "Date")) {
        buf_adds(out, "Date: ");
        msgprep_format_date(req->now, out);
        buf_addc(out, '\n');
    }
    if (!header_find(hb, "From"))
        add_from_field(cfg, req, m, out);
}

static void build_content(const struct msgprep_config *cfg, const struct msgprep_request *req,
                          const struct header_block *hb, const char *text, size_t len,
                          struct prepared_message *m)
{
    struct buf *out = &m->content;
    buf_clear(out);
    buf_reserve(out, len + 512);
    for (size_t k = 0; k < hb->n; k++) {
        const struct header *h = &hb->v[k];
        if (is_bcc_field(h))
            continue; /* Bcc: recipients stay invisible to the others */
        buf_add(out, h->raw, h->raw_len);
        if (h->raw_len == 0 || h->raw[h->raw_len - 1] != '\n')
            buf_addc(out, '\n');
    }
    add_missing_fields(cfg, req, hb, m, out);
    buf_addc(out, '\n'); /* the header/body separator, even if the input had none */
    buf_add(out, text + hb->body_offset, len - hb->body_offset);
}

int msgprep_finish(const struct msgprep_config *cfg, const struct msgprep_request *req,
                   const char *text, size_t len, struct prepared_message *m, struct buf *err)
{
    struct header_block hb = HEADER_BLOCK_INIT;
    int rc = EX_OK;
    header_block_parse(text, len, &hb);
    if (req->flags & MSGPREP_EXTRACT)
        rc = extract_recipients(cfg, &hb, m, err);
    if (rc == EX_OK && m->rcpt.n == 0) {
        buf_adds(err, (req->flags & MSGPREP_EXTRACT)
                          ? "no recipient addresses found in message header"
                          : "recipient addresses must be specified on the command line or via "
                            "the -t option");
        rc = EX_USAGE;
    }
    if (rc == EX_OK) {
        build_content(cfg, req, &hb, text, len, m);
        if (cfg->size_limit && m->content.len > cfg->size_limit) {
            buf_printf(err, "message is larger than message_size_limit (%llu bytes)",
                       (unsigned long long)cfg->size_limit);
            rc = EX_DATAERR;
        }
    }
    header_block_free(&hb);
    return rc;
}

void prepared_message_free(struct prepared_message *m)
{
    free(m->sender);
    m->sender = NULL;
    addrlist_free(&m->rcpt);
    buf_free(&m->content);
}
