/*
 * qlist — the queue listing (mailq layout or JSON), one message's details,
 * and the counts of qstat. See qlist.h.
 *
 * Must never: change the queue, take the owner lock, or print a byte from a
 * queue file raw to a terminal (text output goes through
 * qlist_add_printable, JSON through json_add_*).
 */
#include "qlist.h"

#include <errno.h>
#include <string.h>

#include "header.h"
#include "json.h"
#include "msgprep.h"

/* Postfix's mailq columns, the id column widened to an id and its mark. */
#define ID_COLUMN (QUEUE_ID_LEN + 1)
#define LINE_FORMAT "%-*s %8s %-20s %s\n"
#define REASON_RIGHT_EDGE 76 /* Postfix right-aligns "(reason)" to column 76 */

int qlist_open(const char *queue_dir, struct queue **q, const char **why)
{
    *q = NULL;
    if (queue_open(q, queue_dir, 0, why) == 0)
        return 0;
    if (errno == ENOENT) { /* never created: nothing was ever queued */
        *q = NULL;
        return 0;
    }
    return -1;
}

void qlist_add_printable(struct buf *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_addc(out, (char)(c < 0x20 || c == 0x7f ? '?' : c));
    }
}

const char *qlist_rcpt_state(const struct queue_rcpt *r)
{
    if (r->state == QRCPT_PENDING)
        return r->attempts > 0 ? "deferred" : "pending";
    return queue_rcpt_state_name(r->state);
}

static int64_t arrival_seconds(const struct queue_msg *m)
{
    return (int64_t)(m->arrival_us / 1000000);
}

static int write_buf(FILE *out, const struct buf *b)
{
    if (b->len && fwrite(b->s, 1, b->len, out) != b->len)
        return -1;
    return 0;
}

/* ------------------------------------------------------- mailq (text) ---- */

struct mailq_state {
    FILE *out;
    struct buf line;
    unsigned long requests;
    uint64_t bytes;
    int error;
};

/* Postfix's arrival column: asctime() cut to 20 characters, local time. */
static void add_arrival(struct buf *out, int64_t secs)
{
    char text[32];
    time_t t = (time_t)secs;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(text, sizeof(text), "%a %b %e %H:%M:%S", &tm);
    buf_adds(out, text);
}

static void add_reason_line(struct buf *out, const char *reason)
{
    struct buf shown = BUF_INIT;
    qlist_add_printable(&shown, reason[0] ? reason : "reason unavailable");
    int pad = REASON_RIGHT_EDGE - (int)shown.len;
    buf_printf(out, "%*s(%s)\n", pad > 0 ? pad : 0, "", buf_cstr(&shown));
    buf_free(&shown);
}

static void add_message_lines(struct buf *out, const struct queue_file *f,
                              const struct queue_msg *m)
{
    enum queue_state st = queue_msg_state(m, f->place);
    struct buf id = BUF_INIT, size = BUF_INIT, when = BUF_INIT, addr = BUF_INIT;
    buf_printf(&id, "%s%s", m->id, st == QSTATE_ACTIVE ? "*" : st == QSTATE_HOLD ? "!" : "");
    buf_printf(&size, "%llu", (unsigned long long)m->size);
    add_arrival(&when, arrival_seconds(m));
    qlist_add_printable(&addr, m->sender[0] ? m->sender : "MAILER-DAEMON");
    buf_printf(out, LINE_FORMAT, ID_COLUMN, buf_cstr(&id), buf_cstr(&size), buf_cstr(&when),
               buf_cstr(&addr));
    const char *previous = "";
    for (size_t k = 0; k < m->nrcpt; k++) {
        const struct queue_rcpt *r = &m->rcpt[k];
        if (r->state != QRCPT_PENDING)
            continue; /* as Postfix: only what is still to be delivered */
        const char *reason = r->last_reason ? r->last_reason : "";
        if (strcmp(reason, previous) != 0)
            add_reason_line(out, reason);
        previous = reason;
        buf_clear(&addr);
        qlist_add_printable(&addr, r->addr);
        buf_printf(out, LINE_FORMAT, ID_COLUMN, "", "", "", buf_cstr(&addr));
    }
    buf_free(&id);
    buf_free(&size);
    buf_free(&when);
    buf_free(&addr);
}

static int mailq_entry(const struct queue_file *f, const struct queue_msg *m, void *arg)
{
    struct mailq_state *s = arg;
    buf_clear(&s->line);
    if (s->requests == 0)
        buf_printf(&s->line, LINE_FORMAT, ID_COLUMN, "-Queue ID-", "--Size--",
                   "----Arrival Time----", "-Sender/Recipient-------");
    else
        buf_addc(&s->line, '\n');
    add_message_lines(&s->line, f, m);
    s->requests++;
    s->bytes += m->size;
    if (write_buf(s->out, &s->line) != 0) {
        s->error = errno;
        return -1;
    }
    return 0;
}

static int print_mailq(struct queue *q, FILE *out)
{
    struct mailq_state s = {out, BUF_INIT, 0, 0, 0};
    int rc = q ? queue_scan(q, mailq_entry, &s) : 0;
    buf_free(&s.line);
    if (rc != 0) {
        if (s.error)
            errno = s.error;
        return -1;
    }
    if (s.requests == 0)
        fprintf(out, "Mail queue is empty\n");
    else
        fprintf(out, "\n-- %llu Kbytes in %lu Request%s.\n", (unsigned long long)(s.bytes / 1024),
                s.requests, s.requests == 1 ? "" : "s");
    return 0;
}

/* ------------------------------------------------------------- JSON ---- */

static void json_add_time(struct buf *out, int64_t secs)
{
    if (secs > 0)
        json_add_int(out, secs);
    else
        buf_adds(out, "null");
}

static void json_add_rcpt(struct buf *out, const struct queue_rcpt *r, int detailed)
{
    buf_addc(out, '{');
    json_field_cstr(out, "address", r->addr);
    json_field_cstr(out, "state", qlist_rcpt_state(r));
    json_field_cstr(out, "reason", r->last_reason);
    if (detailed) {
        json_field_uint(out, "attempts", r->attempts);
        json_add_key(out, "last_attempt");
        json_add_time(out, r->last_try);
        json_add_key(out, "next_attempt");
        json_add_time(out, r->state == QRCPT_PENDING ? r->next_try : 0);
        json_field_cstr(out, "orcpt", r->orcpt);
        json_field_cstr(out, "notify", r->notify);
    }
    buf_addc(out, '}');
}

/* The fields every listing has, without the closing brace. */
static void json_open_message(struct buf *out, const struct queue_file *f,
                              const struct queue_msg *m, int detailed)
{
    buf_addc(out, '{');
    json_field_cstr(out, "id", m->id);
    json_field_cstr(out, "state", queue_state_name(queue_msg_state(m, f->place)));
    json_field_uint(out, "size", m->size);
    json_add_key(out, "arrival");
    json_add_int(out, arrival_seconds(m));
    json_field_cstr(out, "sender", m->sender);
    json_add_key(out, "recipients");
    buf_addc(out, '[');
    for (size_t k = 0; k < m->nrcpt; k++) {
        if (k > 0)
            buf_addc(out, ',');
        json_add_rcpt(out, &m->rcpt[k], detailed);
    }
    buf_addc(out, ']');
}

struct json_state {
    FILE *out;
    struct buf item;
    unsigned long n;
    int error;
};

static int json_entry(const struct queue_file *f, const struct queue_msg *m, void *arg)
{
    struct json_state *s = arg;
    buf_clear(&s->item);
    if (s->n++ > 0)
        buf_addc(&s->item, ',');
    json_open_message(&s->item, f, m, 0);
    buf_addc(&s->item, '}');
    if (write_buf(s->out, &s->item) != 0) {
        s->error = errno;
        return -1;
    }
    return 0;
}

static int print_json_queue(struct queue *q, FILE *out)
{
    struct json_state s = {out, BUF_INIT, 0, 0};
    fputs("{\"messages\":[", out);
    int rc = q ? queue_scan(q, json_entry, &s) : 0;
    buf_free(&s.item);
    if (rc != 0) {
        if (s.error)
            errno = s.error;
        return -1;
    }
    fputs("]}\n", out);
    return 0;
}

int qlist_print_queue(struct queue *q, unsigned flags, FILE *out)
{
    int rc = (flags & QLIST_JSON) ? print_json_queue(q, out) : print_mailq(q, out);
    if (fflush(out) != 0)
        rc = -1;
    return rc;
}

/* ------------------------------------------------------- one message ---- */

/* The route, when the router recorded one as the attribute "route". */
static const char *recorded_route(const struct queue_msg *m)
{
    for (size_t k = 0; k < m->nattr; k++)
        if (strcmp(m->attr[k].name, "route") == 0)
            return m->attr[k].value;
    return NULL;
}

static uint32_t most_attempts(const struct queue_msg *m)
{
    uint32_t most = 0;
    for (size_t k = 0; k < m->nrcpt; k++)
        if (m->rcpt[k].attempts > most)
            most = m->rcpt[k].attempts;
    return most;
}

/* The earliest next try of a pending, already tried recipient; 0 if none. */
static int64_t next_attempt(const struct queue_msg *m)
{
    int64_t next = 0;
    for (size_t k = 0; k < m->nrcpt; k++) {
        const struct queue_rcpt *r = &m->rcpt[k];
        if (r->state == QRCPT_PENDING && r->attempts > 0 && r->next_try > 0 &&
            (next == 0 || r->next_try < next))
            next = r->next_try;
    }
    return next;
}

static void json_add_headers(struct buf *out, const struct header_block *hb)
{
    json_add_key(out, "headers");
    buf_addc(out, '[');
    for (size_t k = 0; k < hb->n; k++) {
        const struct header *h = &hb->v[k];
        size_t skip = h->value_len > 0 && h->value[0] == ' ' ? 1 : 0;
        if (k > 0)
            buf_addc(out, ',');
        buf_addc(out, '{');
        json_add_key(out, "name");
        json_add_string(out, h->name, h->name_len);
        json_add_key(out, "value");
        json_add_string(out, h->value + skip, h->value_len - skip);
        buf_addc(out, '}');
    }
    buf_addc(out, ']');
}

static void json_add_attributes(struct buf *out, const struct queue_msg *m)
{
    json_add_key(out, "attributes");
    buf_addc(out, '{');
    for (size_t k = 0; k < m->nattr; k++) {
        json_field_cstr(out, m->attr[k].name, m->attr[k].value);
    }
    buf_addc(out, '}');
}

static void json_show(struct buf *out, const struct queue_file *f, const struct queue_msg *m,
                      const struct header_block *hb)
{
    json_open_message(out, f, m, 1);
    json_add_attributes(out, m);
    json_add_headers(out, hb);
    json_field_uint(out, "attempts", most_attempts(m));
    json_add_key(out, "next_attempt");
    json_add_time(out, next_attempt(m));
    json_field_cstr(out, "route", recorded_route(m));
    buf_adds(out, "}\n");
}

static void add_date_or_dash(struct buf *out, int64_t secs)
{
    if (secs > 0)
        msgprep_format_date((time_t)secs, out);
    else
        buf_addc(out, '-');
}

static void text_show_rcpt(struct buf *out, const struct queue_rcpt *r)
{
    buf_adds(out, "Recipient:   <");
    qlist_add_printable(out, r->addr);
    buf_printf(out, ">\n  state:     %s\n  attempts:  %u\n  last try:  ", qlist_rcpt_state(r),
               (unsigned)r->attempts);
    add_date_or_dash(out, r->last_try);
    if (r->state == QRCPT_PENDING && r->attempts > 0) {
        buf_adds(out, "\n  next try:  ");
        add_date_or_dash(out, r->next_try);
    }
    if (r->last_reason) {
        buf_adds(out, "\n  reason:    ");
        qlist_add_printable(out, r->last_reason);
    }
    buf_addc(out, '\n');
}

static void text_show(struct buf *out, const struct queue_file *f, const struct queue_msg *m,
                      const struct header_block *hb)
{
    buf_printf(out, "Queue ID:    %s\nState:       %s\nArrival:     ", m->id,
               queue_state_name(queue_msg_state(m, f->place)));
    add_date_or_dash(out, arrival_seconds(m));
    buf_printf(out, "\nSize:        %llu bytes\nSender:      <", (unsigned long long)m->size);
    qlist_add_printable(out, m->sender);
    buf_adds(out, ">\n");
    for (size_t k = 0; k < m->nattr; k++) {
        buf_adds(out, "Attribute:   ");
        qlist_add_printable(out, m->attr[k].name);
        buf_addc(out, '=');
        qlist_add_printable(out, m->attr[k].value);
        buf_addc(out, '\n');
    }
    if (recorded_route(m)) {
        buf_adds(out, "Route:       ");
        qlist_add_printable(out, recorded_route(m));
        buf_addc(out, '\n');
    }
    for (size_t k = 0; k < m->nrcpt; k++)
        text_show_rcpt(out, &m->rcpt[k]);
    buf_adds(out, "Headers:\n");
    for (size_t k = 0; k < hb->n; k++) {
        struct buf field = BUF_INIT;
        buf_add(&field, hb->v[k].raw, hb->v[k].raw_len);
        while (field.len > 0 && (field.s[field.len - 1] == '\n' || field.s[field.len - 1] == '\r'))
            buf_truncate(&field, field.len - 1);
        buf_adds(out, "  ");
        for (size_t i = 0; i < field.len; i++) /* folded lines stay indented */
            if (field.s[i] == '\n')
                buf_adds(out, "\n  ");
            else if ((unsigned char)field.s[i] < 0x20 && field.s[i] != '\t')
                buf_addc(out, '?');
            else
                buf_addc(out, field.s[i]);
        buf_addc(out, '\n');
        buf_free(&field);
    }
}

int qlist_print_message(struct queue *q, const char *id, unsigned flags, FILE *out)
{
    struct queue_file f;
    size_t index;
    if (!q || !queue_id_valid(id)) {
        errno = ENOENT;
        return -1;
    }
    if (queue_find(q, id, &f, &index) != 0)
        return -1;
    const struct queue_msg *m = &f.msg[index];
    struct buf content = BUF_INIT, text = BUF_INIT;
    struct header_block hb = HEADER_BLOCK_INIT;
    int rc = -1;
    if (m->deleted || queue_msg_state(m, f.place) == QSTATE_FINISHED) {
        errno = ENOENT;
    } else if (queue_content_read(q, &f, index, &content) == 0) {
        header_block_parse(content.s ? content.s : "", content.len, &hb);
        if (flags & QLIST_JSON)
            json_show(&text, &f, m, &hb);
        else
            text_show(&text, &f, m, &hb);
        rc = write_buf(out, &text) == 0 && fflush(out) == 0 ? 0 : -1;
    }
    header_block_free(&hb);
    buf_free(&content);
    buf_free(&text);
    queue_file_free(&f);
    return rc;
}

/* ------------------------------------------------------------- qstat ---- */

static void add_age(struct buf *out, uint64_t secs)
{
    if (secs >= 86400)
        buf_printf(out, "%llud%02lluh", (unsigned long long)(secs / 86400),
                   (unsigned long long)(secs % 86400 / 3600));
    else if (secs >= 3600)
        buf_printf(out, "%lluh%02llum", (unsigned long long)(secs / 3600),
                   (unsigned long long)(secs % 3600 / 60));
    else
        buf_printf(out, "%llum%02llus", (unsigned long long)(secs / 60),
                   (unsigned long long)(secs % 60));
}

static void json_counts(struct buf *out, const struct queue_counts *c, int has_oldest, uint64_t age)
{
    buf_printf(out,
               "{\"total\":%lu,\"incoming\":%lu,\"active\":%lu,\"deferred\":%lu,\"hold\":%lu,"
               "\"corrupt\":%lu,\"oldest_age\":",
               c->total, c->incoming, c->active, c->deferred, c->hold, c->corrupt);
    if (has_oldest)
        json_add_uint(out, age);
    else
        buf_adds(out, "null");
    buf_adds(out, "}\n");
}

static void text_counts(struct buf *out, const struct queue_counts *c, int has_oldest, uint64_t age)
{
    buf_printf(out,
               "total:       %lu\nincoming:    %lu\nactive:      %lu\ndeferred:    %lu\n"
               "hold:        %lu\ncorrupt:     %lu\noldest_age:  ",
               c->total, c->incoming, c->active, c->deferred, c->hold, c->corrupt);
    if (has_oldest) {
        buf_printf(out, "%llu s (", (unsigned long long)age);
        add_age(out, age);
        buf_adds(out, ")\n");
    } else {
        buf_adds(out, "-\n");
    }
}

int qlist_print_counts(struct queue *q, unsigned flags, time_t now, FILE *out)
{
    struct queue_counts c;
    memset(&c, 0, sizeof(c));
    if (q && queue_count(q, &c) != 0)
        return -1;
    int has_oldest = c.total > 0 && c.oldest_arrival_us > 0;
    uint64_t oldest = c.oldest_arrival_us / 1000000;
    uint64_t age = has_oldest && (uint64_t)now > oldest ? (uint64_t)now - oldest : 0;
    struct buf text = BUF_INIT;
    if (flags & QLIST_JSON)
        json_counts(&text, &c, has_oldest, age);
    else
        text_counts(&text, &c, has_oldest, age);
    int rc = write_buf(out, &text) == 0 && fflush(out) == 0 ? 0 : -1;
    buf_free(&text);
    return rc;
}
