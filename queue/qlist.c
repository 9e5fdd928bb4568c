/*
 * qlist — the queue listing (mailq layout or JSON), one message's details,
 * and the counts of qstat, on the state side's truth. See qlist.h.
 *
 * Addresses, sizes and content come from the message files (queue.h);
 * every recipient's state, attempts, tries, reason and route from the state
 * side (state.h), opened read-only beside a running router. A file the
 * state does not know yet (no router has learned it) is listed as the
 * file says: incoming or active, recipients pending (a format 1/2 file: its
 * own state log, which the router imports when it learns the file). When
 * state/ cannot be read at all (the set-uid onehop-queue --list runs as the
 * queue account, which may not enter state/), messages and recipients are
 * listed as "queued", with no reasons.
 *
 * Must never: change the queue or the state, take a lock, or print a byte
 * from a queue file raw to a terminal (text output goes through
 * qlist_add_printable, JSON through json_add_*).
 */
#include "qlist.h"

#include <errno.h>
#include <strings.h>
#include <string.h>

#include "header.h"
#include "json.h"
#include "mem.h"
#include "msgprep.h"
#include "state.h"

/* Postfix's mailq columns, the id column widened to an id and its mark. */
#define ID_COLUMN (QUEUE_ID_LEN + 1)
#define LINE_FORMAT "%-*s %8s %-20s %s\n"
#define REASON_RIGHT_EDGE 76 /* Postfix right-aligns "(reason)" to column 76 */
#define STATE_OPEN_TRIES 5   /* a checkpoint under a reader: start over */

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

static int write_buf(FILE *out, const struct buf *b)
{
    if (b->len && fwrite(b->s, 1, b->len, out) != b->len)
        return -1;
    return 0;
}

/* ------------------------------------------------- the state, read-only ---- */

struct source {
    struct queue *q;
    struct state *st; /* NULL: state/ unreadable (states "queued") */
};

static int source_open(struct queue *q, struct source *src)
{
    const char *why = NULL;
    src->q = q;
    src->st = NULL;
    for (int tries = 0; q && tries < STATE_OPEN_TRIES; tries++) {
        if (state_open(&src->st, q, STATE_OPEN_READONLY, NULL, &why) == 0)
            return 0;
        if (errno == EACCES)
            return 0; /* the queue account: files only */
        if (errno != EAGAIN)
            return -1;
    }
    return q ? -1 : 0;
}

static void source_close(struct source *src)
{
    state_close(src->st);
}

/* One message as listed: its file's envelope and, when known, its state. */
struct view {
    const struct queue_file *f;
    const struct queue_msg *m;
    const struct state_msg *sm; /* NULL: the state does not know it */
    int state_unreadable;
};

static void view_of(const struct source *src, const struct queue_file *f, size_t index,
                    struct view *v)
{
    v->f = f;
    v->m = &f->msg[index];
    v->state_unreadable = src->st == NULL;
    const struct state_file *sf = src->st ? state_find_file(src->st, f->fid) : NULL;
    v->sm = sf && index < sf->nmsg && sf->msg[index].nrcpt == v->m->nrcpt ? &sf->msg[index] : NULL;
}

static const char *view_state(const struct view *v)
{
    if (v->state_unreadable)
        return "queued";
    if (v->sm)
        return state_msg_state_name(state_msg_state(v->sm));
    return queue_state_name(queue_msg_state(v->m, v->f->place));
}

static int view_finished(const struct view *v)
{
    return strcmp(view_state(v), "finished") == 0;
}

/* A recipient as listed (from the state, else from the file). */
struct rview {
    const char *state, *reason, *route;
    uint32_t attempts;
    int64_t last_try, next_try;
    int pending; /* not delivered, not bounced */
};

static void rview_of(const struct view *v, size_t k, struct rview *r)
{
    memset(r, 0, sizeof(*r));
    if (v->state_unreadable) {
        r->state = "queued";
        r->pending = 1;
    } else if (v->sm) {
        const struct state_rcpt *x = &v->sm->rcpt[k];
        r->state = state_rcpt_state_name(x->state);
        r->reason = x->reason;
        r->route = x->route;
        r->attempts = x->attempts;
        r->last_try = x->last_try;
        r->next_try = x->next_try;
        r->pending = x->state == SRCPT_PENDING || x->state == SRCPT_DEFERRED;
    } else {
        const struct queue_rcpt *x = &v->m->rcpt[k];
        r->state = qlist_rcpt_state(x);
        r->reason = x->last_reason;
        r->attempts = x->attempts;
        r->last_try = x->last_try;
        r->next_try = x->next_try;
        r->pending = x->state == QRCPT_PENDING;
    }
}

/* When a pending recipient is tried next; 0 = as soon as possible. A
 * recipient deferred with its destination (D8, no attempt made) has one too. */
static int64_t rview_next_try(const struct rview *r)
{
    return r->pending ? r->next_try : 0;
}

static int64_t arrival_seconds(const struct queue_msg *m)
{
    return (int64_t)(m->arrival_us / 1000000);
}

/* ---------------------------------------------------------- filters ---- */

static int has_pending_domain(const struct view *v, const char *domain)
{
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        struct rview r;
        rview_of(v, k, &r);
        const char *at = strrchr(v->m->rcpt[k].addr, '@');
        if (r.pending && at && strcasecmp(at + 1, domain) == 0)
            return 1;
    }
    return 0;
}

static int view_selected(const struct view *v, const struct qlist_filter *flt)
{
    if (!flt)
        return 1;
    if (flt->sender && strcasecmp(flt->sender, v->m->sender) != 0)
        return 0;
    if (flt->domain && !has_pending_domain(v, flt->domain))
        return 0;
    if (flt->older_than > 0 && (int64_t)flt->now - arrival_seconds(v->m) < (int64_t)flt->older_than)
        return 0;
    return 1;
}

/* ------------------------------------------------------------- scan ---- */

typedef int view_fn(const struct view *v, void *arg);

static int scan_file(const struct source *src, const char *fid, view_fn *fn, void *arg)
{
    struct queue_file f;
    int rc = 0;
    if (queue_load(src->q, fid, &f) != 0)
        return 0; /* gone meanwhile, or corrupt: left for the router's recovery */
    for (size_t k = 0; k < f.nmsg && rc == 0; k++) {
        struct view v;
        view_of(src, &f, k, &v);
        if (!view_finished(&v))
            rc = fn(&v, arg);
    }
    if (src->st) /* a frozen file read back for the listing is freed again */
        state_file_done(src->st, fid);
    queue_file_free(&f);
    return rc;
}

/* fn for every unfinished message, files of incoming/ and active/ merged
 * in id order (= arrival); unknown_only: only files the state does not
 * know (so counting reads no file the state already describes). */
static int scan_views(const struct source *src, int unknown_only, view_fn *fn, void *arg)
{
    char **in, **act;
    size_t nin, nact, i = 0, k = 0;
    if (!src->q)
        return 0;
    if (queue_list_files(src->q, QUEUE_INCOMING, &in, &nin) != 0)
        return -1;
    if (queue_list_files(src->q, QUEUE_ACTIVE, &act, &nact) != 0) {
        queue_ids_free(in, nin);
        return -1;
    }
    int rc = 0;
    while (rc == 0 && (i < nin || k < nact)) {
        int c = i >= nin ? 1 : k >= nact ? -1 : strcmp(in[i], act[k]);
        /* a file the router moved from incoming/ to active/ between the two
         * listings is in both: it is one file, shown once */
        const char *fid = c <= 0 ? in[i] : act[k];
        i += c <= 0;
        k += c >= 0;
        if (!unknown_only || !src->st || !state_knows_file(src->st, fid))
            rc = scan_file(src, fid, fn, arg);
    }
    queue_ids_free(in, nin);
    queue_ids_free(act, nact);
    return rc;
}

/* ------------------------------------------------------- mailq (text) ---- */

struct listing {
    FILE *out;
    const struct qlist_filter *filter;
    struct buf line;
    unsigned long n;
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

static void add_message_lines(struct buf *out, const struct view *v)
{
    const char *st = view_state(v);
    struct buf id = BUF_INIT, size = BUF_INIT, when = BUF_INIT, addr = BUF_INIT;
    buf_printf(&id, "%s%s", v->m->id,
               strcmp(st, "active") == 0 ? "*"
               : strcmp(st, "hold") == 0 ? "!"
                                         : "");
    buf_printf(&size, "%llu", (unsigned long long)v->m->size);
    add_arrival(&when, arrival_seconds(v->m));
    qlist_add_printable(&addr, v->m->sender[0] ? v->m->sender : "MAILER-DAEMON");
    buf_printf(out, LINE_FORMAT, ID_COLUMN, buf_cstr(&id), buf_cstr(&size), buf_cstr(&when),
               buf_cstr(&addr));
    const char *previous = "";
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        struct rview r;
        rview_of(v, k, &r);
        if (!r.pending)
            continue; /* as Postfix: only what is still to be delivered */
        const char *reason = r.reason ? r.reason : "";
        if (!v->state_unreadable && strcmp(reason, previous) != 0)
            add_reason_line(out, reason);
        previous = reason;
        buf_clear(&addr);
        qlist_add_printable(&addr, v->m->rcpt[k].addr);
        buf_printf(out, LINE_FORMAT, ID_COLUMN, "", "", "", buf_cstr(&addr));
    }
    buf_free(&id);
    buf_free(&size);
    buf_free(&when);
    buf_free(&addr);
}

static int flush_line(struct listing *l)
{
    if (write_buf(l->out, &l->line) != 0) {
        l->error = errno;
        return -1;
    }
    return 0;
}

static int mailq_entry(const struct view *v, void *arg)
{
    struct listing *l = arg;
    if (!view_selected(v, l->filter))
        return 0;
    buf_clear(&l->line);
    if (l->n == 0)
        buf_printf(&l->line, LINE_FORMAT, ID_COLUMN, "-Queue ID-", "--Size--",
                   "----Arrival Time----", "-Sender/Recipient-------");
    else
        buf_addc(&l->line, '\n');
    add_message_lines(&l->line, v);
    l->n++;
    l->bytes += v->m->size;
    return flush_line(l);
}

static void print_mailq_end(const struct listing *l)
{
    if (l->n == 0)
        fprintf(l->out, "Mail queue is empty\n");
    else
        fprintf(l->out, "\n-- %llu Kbytes in %lu Request%s.\n",
                (unsigned long long)(l->bytes / 1024), l->n, l->n == 1 ? "" : "s");
}

/* ------------------------------------------------------------- JSON ---- */

static void json_add_time(struct buf *out, int64_t secs)
{
    if (secs > 0)
        json_add_int(out, secs);
    else
        buf_adds(out, "null");
}

static void json_add_rcpt(struct buf *out, const struct view *v, size_t k, int detailed)
{
    struct rview r;
    rview_of(v, k, &r);
    const struct queue_rcpt *a = &v->m->rcpt[k];
    buf_addc(out, '{');
    json_field_cstr(out, "address", a->addr);
    json_field_cstr(out, "state", r.state);
    json_field_cstr(out, "reason", r.reason);
    if (detailed) {
        json_field_uint(out, "attempts", r.attempts);
        json_add_key(out, "last_attempt");
        json_add_time(out, r.last_try);
        json_add_key(out, "next_attempt");
        json_add_time(out, rview_next_try(&r));
        json_field_cstr(out, "orcpt", a->orcpt);
        json_field_cstr(out, "notify", a->notify);
        json_field_cstr(out, "route", r.route);
    }
    buf_addc(out, '}');
}

/* The fields every listing has, without the closing brace. */
static void json_open_message(struct buf *out, const struct view *v, int detailed)
{
    buf_addc(out, '{');
    json_field_cstr(out, "id", v->m->id);
    json_field_cstr(out, "state", view_state(v));
    json_field_uint(out, "size", v->m->size);
    json_add_key(out, "arrival");
    json_add_int(out, arrival_seconds(v->m));
    json_field_cstr(out, "sender", v->m->sender);
    json_add_key(out, "recipients");
    buf_addc(out, '[');
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        if (k > 0)
            buf_addc(out, ',');
        json_add_rcpt(out, v, k, detailed);
    }
    buf_addc(out, ']');
}

static int json_entry(const struct view *v, void *arg)
{
    struct listing *l = arg;
    if (!view_selected(v, l->filter))
        return 0;
    buf_clear(&l->line);
    if (l->n++ > 0)
        buf_addc(&l->line, ',');
    json_open_message(&l->line, v, 0);
    buf_addc(&l->line, '}');
    return flush_line(l);
}

int qlist_print_selected(struct queue *q, unsigned flags, const struct qlist_filter *filter,
                         FILE *out)
{
    struct source src;
    if (source_open(q, &src) != 0)
        return -1;
    struct listing l = {out, filter, BUF_INIT, 0, 0, 0};
    int json = (flags & QLIST_JSON) != 0;
    if (json)
        fputs("{\"messages\":[", out);
    int rc = scan_views(&src, 0, json ? json_entry : mailq_entry, &l);
    buf_free(&l.line);
    source_close(&src);
    if (rc != 0) {
        if (l.error)
            errno = l.error;
        return -1;
    }
    if (json)
        fputs("]}\n", out);
    else
        print_mailq_end(&l);
    return fflush(out) == 0 ? 0 : -1;
}

int qlist_print_queue(struct queue *q, unsigned flags, FILE *out)
{
    return qlist_print_selected(q, flags, NULL, out);
}

/* ------------------------------------------------------- one message ---- */

/* The route chosen: the first recipient's that has one. */
static const char *chosen_route(const struct view *v)
{
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        struct rview r;
        rview_of(v, k, &r);
        if (r.route)
            return r.route;
    }
    return NULL;
}

static uint32_t most_attempts(const struct view *v)
{
    uint32_t most = 0;
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        struct rview r;
        rview_of(v, k, &r);
        if (r.attempts > most)
            most = r.attempts;
    }
    return most;
}

/* The earliest next try of a pending recipient; 0 if none. */
static int64_t next_attempt(const struct view *v)
{
    int64_t next = 0;
    for (size_t k = 0; k < v->m->nrcpt; k++) {
        struct rview r;
        rview_of(v, k, &r);
        int64_t t = rview_next_try(&r);
        if (t > 0 && (next == 0 || t < next))
            next = t;
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

static void json_show(struct buf *out, const struct view *v, const struct header_block *hb)
{
    json_open_message(out, v, 1);
    json_add_attributes(out, v->m);
    json_add_headers(out, hb);
    json_field_uint(out, "attempts", most_attempts(v));
    json_add_key(out, "next_attempt");
    json_add_time(out, next_attempt(v));
    json_field_cstr(out, "route", chosen_route(v));
    buf_adds(out, "}\n");
}

static void add_date_or_dash(struct buf *out, int64_t secs)
{
    if (secs > 0)
        msgprep_format_date((time_t)secs, out);
    else
        buf_addc(out, '-');
}

static void text_show_rcpt(struct buf *out, const struct view *v, size_t k)
{
    struct rview r;
    rview_of(v, k, &r);
    buf_adds(out, "Recipient:   <");
    qlist_add_printable(out, v->m->rcpt[k].addr);
    buf_printf(out, ">\n  state:     %s\n  attempts:  %u\n  last try:  ", r.state,
               (unsigned)r.attempts);
    add_date_or_dash(out, r.last_try);
    if (rview_next_try(&r) > 0) {
        buf_adds(out, "\n  next try:  ");
        add_date_or_dash(out, r.next_try);
    }
    if (r.reason) {
        buf_adds(out, "\n  reason:    ");
        qlist_add_printable(out, r.reason);
    }
    if (r.route) {
        buf_adds(out, "\n  route:     ");
        qlist_add_printable(out, r.route);
    }
    buf_addc(out, '\n');
}

static void text_show_headers(struct buf *out, const struct header_block *hb)
{
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

static void text_show(struct buf *out, const struct view *v, const struct header_block *hb)
{
    buf_printf(out, "Queue ID:    %s\nState:       %s\nArrival:     ", v->m->id, view_state(v));
    add_date_or_dash(out, arrival_seconds(v->m));
    buf_printf(out, "\nSize:        %llu bytes\nSender:      <", (unsigned long long)v->m->size);
    qlist_add_printable(out, v->m->sender);
    buf_adds(out, ">\n");
    for (size_t k = 0; k < v->m->nattr; k++) {
        buf_adds(out, "Attribute:   ");
        qlist_add_printable(out, v->m->attr[k].name);
        buf_addc(out, '=');
        qlist_add_printable(out, v->m->attr[k].value);
        buf_addc(out, '\n');
    }
    if (chosen_route(v)) {
        buf_adds(out, "Route:       ");
        qlist_add_printable(out, chosen_route(v));
        buf_addc(out, '\n');
    }
    for (size_t k = 0; k < v->m->nrcpt; k++)
        text_show_rcpt(out, v, k);
    text_show_headers(out, hb);
}

static int print_one(const struct source *src, const struct queue_file *f, size_t index,
                     unsigned flags, FILE *out)
{
    struct view v;
    view_of(src, f, index, &v);
    if (view_finished(&v)) {
        errno = ENOENT;
        return -1;
    }
    struct buf content = BUF_INIT, text = BUF_INIT;
    struct header_block hb = HEADER_BLOCK_INIT;
    int rc = -1;
    if (queue_content_read(src->q, f, index, &content) == 0) {
        header_block_parse(content.s ? content.s : "", content.len, &hb);
        if (flags & QLIST_JSON)
            json_show(&text, &v, &hb);
        else
            text_show(&text, &v, &hb);
        rc = write_buf(out, &text) == 0 && fflush(out) == 0 ? 0 : -1;
    }
    header_block_free(&hb);
    buf_free(&content);
    buf_free(&text);
    return rc;
}

int qlist_print_message(struct queue *q, const char *id, unsigned flags, FILE *out)
{
    struct queue_file f;
    size_t index;
    struct source src;
    if (!q || !queue_id_valid(id)) {
        errno = ENOENT;
        return -1;
    }
    if (queue_find(q, id, &f, &index) != 0)
        return -1;
    int rc = source_open(q, &src) == 0 ? print_one(&src, &f, index, flags, out) : -1;
    int e = errno;
    source_close(&src);
    queue_file_free(&f);
    errno = e;
    return rc;
}

/* ------------------------------------------------------------- qstat ---- */

/* Files the state does not know yet (or all of them when it cannot be
 * read) are counted from their envelopes. */
static int count_entry(const struct view *v, void *arg)
{
    struct state_counts *c = arg;
    if (v->sm)
        return 0; /* counted by the state side */
    const char *st = !v->state_unreadable            ? view_state(v)
                     : v->f->place == QUEUE_INCOMING ? "incoming"
                                                     : "active";
    c->total++;
    c->incoming += strcmp(st, "incoming") == 0;
    c->active += strcmp(st, "active") == 0;
    c->deferred += strcmp(st, "deferred") == 0;
    c->hold += strcmp(st, "hold") == 0;
    if (c->oldest_arrival_us == 0 || v->m->arrival_us < c->oldest_arrival_us)
        c->oldest_arrival_us = v->m->arrival_us;
    return 0;
}

static int count_all(const struct source *src, struct state_counts *c, unsigned long *corrupt)
{
    struct state_counts known;
    memset(c, 0, sizeof(*c));
    *corrupt = 0;
    if (src->st) {
        state_count(src->st, &known);
        *c = known;
    }
    if (scan_views(src, 1, count_entry, c) != 0)
        return -1;
    if (src->st && known.oldest_arrival_us &&
        (c->oldest_arrival_us == 0 || known.oldest_arrival_us < c->oldest_arrival_us))
        c->oldest_arrival_us = known.oldest_arrival_us;
    char **fids;
    size_t n;
    if (src->q && queue_list_files(src->q, QUEUE_CORRUPT, &fids, &n) == 0) {
        *corrupt = n;
        queue_ids_free(fids, n);
    }
    return 0;
}

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

static void json_counts(struct buf *out, const struct state_counts *c, unsigned long corrupt,
                        int has_oldest, uint64_t age)
{
    buf_printf(out,
               "{\"total\":%lu,\"incoming\":%lu,\"active\":%lu,\"deferred\":%lu,\"hold\":%lu,"
               "\"corrupt\":%lu,\"oldest_age\":",
               c->total, c->incoming, c->active, c->deferred, c->hold, corrupt);
    if (has_oldest)
        json_add_uint(out, age);
    else
        buf_adds(out, "null");
    buf_adds(out, "}\n");
}

static void text_counts(struct buf *out, const struct state_counts *c, unsigned long corrupt,
                        int has_oldest, uint64_t age)
{
    buf_printf(out,
               "total:       %lu\nincoming:    %lu\nactive:      %lu\ndeferred:    %lu\n"
               "hold:        %lu\ncorrupt:     %lu\noldest_age:  ",
               c->total, c->incoming, c->active, c->deferred, c->hold, corrupt);
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
    struct source src;
    struct state_counts c;
    unsigned long corrupt;
    if (source_open(q, &src) != 0)
        return -1;
    int rc = count_all(&src, &c, &corrupt);
    source_close(&src);
    if (rc != 0)
        return -1;
    int has_oldest = c.total > 0 && c.oldest_arrival_us > 0;
    uint64_t oldest = c.oldest_arrival_us / 1000000;
    uint64_t age = has_oldest && (uint64_t)now > oldest ? (uint64_t)now - oldest : 0;
    struct buf text = BUF_INIT;
    if (flags & QLIST_JSON)
        json_counts(&text, &c, corrupt, has_oldest, age);
    else
        text_counts(&text, &c, corrupt, has_oldest, age);
    rc = write_buf(out, &text) == 0 && fflush(out) == 0 ? 0 : -1;
    buf_free(&text);
    return rc;
}
