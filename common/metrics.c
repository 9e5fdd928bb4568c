/*
 * metrics — the process's registry and its text rendering. See metrics.h.
 */
#include "metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

#define FAMILIES_MAX 64
#define COLLECTORS_MAX 8
#define OTHER_VALUE "other"

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct series {
    char *value; /* the label's value; NULL for a family without label */
    double v;    /* counter, gauge; a histogram's sum */
    uint64_t count;
    uint64_t buckets[METRICS_BUCKETS_MAX]; /* not cumulative; rendered cumulative */
};

struct metric {
    char *name, *help, *label;
    enum metric_kind kind;
    double bounds[METRICS_BUCKETS_MAX];
    size_t nbounds;
    struct series series[METRICS_SERIES_MAX];
    size_t nseries;
};

static struct metric *families[FAMILIES_MAX];
static size_t nfamilies;
static struct {
    metrics_collect_fn *fn;
    void *arg;
} collectors[COLLECTORS_MAX];
static size_t ncollectors;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* ------------------------------------------------------------ registry ---- */

static int valid_name(const char *s)
{
    if (!s || !*s || strchr("0123456789", *s))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static void check_registration(const char *name, const char *label, enum metric_kind kind)
{
    if (!valid_name(name) || (label && (!valid_name(label) || strcmp(label, "le") == 0)))
        log_fatal("metrics: invalid metric or label name \"%s\"", name ? name : "");
    if (kind == KIND_COUNTER && !ends_with(name, "_total"))
        log_fatal("metrics: counter %s must end in _total", name);
    if (nfamilies == FAMILIES_MAX)
        log_fatal("metrics: more than %d families", FAMILIES_MAX);
}

static struct metric *family_find(const char *name)
{
    for (size_t i = 0; i < nfamilies; i++)
        if (strcmp(families[i]->name, name) == 0)
            return families[i];
    return NULL;
}

static struct metric *family_new(const char *name, const char *help, const char *label,
                                 enum metric_kind kind)
{
    struct metric *m = family_find(name);
    if (m) {
        if (m->kind != kind)
            log_fatal("metrics: %s registered as two kinds", name);
        return m;
    }
    check_registration(name, label, kind);
    m = xcalloc(1, sizeof(*m));
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->label = label ? xstrdup(label) : NULL;
    m->kind = kind;
    families[nfamilies++] = m;
    return m;
}

struct metric *metric_counter(const char *name, const char *help, const char *label)
{
    return family_new(name, help, label, KIND_COUNTER);
}

struct metric *metric_gauge(const char *name, const char *help, const char *label)
{
    return family_new(name, help, label, KIND_GAUGE);
}

struct metric *metric_histogram(const char *name, const char *help, const char *label,
                                const double *bounds, size_t nbounds)
{
    struct metric *m = family_new(name, help, label, KIND_HISTOGRAM);
    if (nbounds > METRICS_BUCKETS_MAX)
        log_fatal("metrics: %s has more than %d buckets", name, METRICS_BUCKETS_MAX);
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            log_fatal("metrics: %s: bucket bounds must increase", name);
    memcpy(m->bounds, bounds, nbounds * sizeof(*bounds));
    m->nbounds = nbounds;
    return m;
}

/* The series of value (created on first use; "other" once the family is
 * full). */
static struct series *series_of(struct metric *m, const char *value)
{
    if (!m->label)
        value = NULL;
    else if (!value)
        value = "";
    for (size_t i = 0; i < m->nseries; i++) {
        const char *have = m->series[i].value;
        if (!value || strcmp(have, value) == 0)
            return &m->series[i];
    }
    if (m->nseries >= METRICS_SERIES_MAX - 1 && strcmp(value, OTHER_VALUE) != 0)
        return series_of(m, OTHER_VALUE);
    struct series *s = &m->series[m->nseries++];
    s->value = value ? xstrdup(value) : NULL;
    return s;
}

void metric_add(struct metric *m, const char *value, double v)
{
    if (m->kind == KIND_COUNTER && !(v >= 0))
        return; /* a counter never goes down */
    series_of(m, value)->v += v;
}

void metric_inc(struct metric *m, const char *value)
{
    metric_add(m, value, 1);
}

void metric_set(struct metric *m, const char *value, double v)
{
    series_of(m, value)->v = v;
}

void metric_observe(struct metric *m, const char *value, double v)
{
    struct series *s = series_of(m, value);
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    if (i < m->nbounds)
        s->buckets[i]++;
    s->count++;
    s->v += v;
}

void metrics_on_collect(metrics_collect_fn *fn, void *arg)
{
    for (size_t i = 0; i < ncollectors; i++)
        if (collectors[i].fn == fn && collectors[i].arg == arg)
            return;
    if (ncollectors == COLLECTORS_MAX)
        log_fatal("metrics: more than %d collectors", COLLECTORS_MAX);
    collectors[ncollectors].fn = fn;
    collectors[ncollectors++].arg = arg;
}

void metrics_reset(void)
{
    for (size_t i = 0; i < nfamilies; i++) {
        struct metric *m = families[i];
        for (size_t j = 0; j < m->nseries; j++)
            free(m->series[j].value);
        free(m->name);
        free(m->help);
        free(m->label);
        free(m);
    }
    nfamilies = ncollectors = 0;
}

/* ----------------------------------------------------------- rendering ---- */

/* The shortest %g form that reads back as v (0.1, not 0.10000000000000001). */
static void add_shortest(struct buf *out, double v)
{
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof(text), "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    buf_adds(out, text);
}

/* Go's ParseFloat reads all of these: integers exactly, +Inf/-Inf/NaN. */
static void add_number(struct buf *out, double v)
{
    if (isnan(v))
        buf_adds(out, "NaN");
    else if (isinf(v))
        buf_adds(out, v > 0 ? "+Inf" : "-Inf");
    else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
        buf_printf(out, "%lld", (long long)v);
    else
        add_shortest(out, v);
}

/* Exposition format 0.0.4: in label values \, " and newline are escaped;
 * in HELP texts \ and newline. */
static void add_escaped(struct buf *out, const char *s, int quotes)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_adds(out, "\\\\");
        else if (*s == '\n')
            buf_adds(out, "\\n");
        else if (*s == '"' && quotes)
            buf_adds(out, "\\\"");
        else
            buf_addc(out, *s);
    }
}

void metrics_render_head(struct buf *out, const char *name, const char *help, const char *kind)
{
    buf_printf(out, "# HELP %s ", name);
    add_escaped(out, help, 0);
    buf_printf(out, "\n# TYPE %s %s\n", name, kind);
}

/* name{label="value",le="bound"} v: either pair may be absent. */
static void add_sample(struct buf *out, const char *name, const char *suffix, const char *label,
                       const char *value, const char *le, double v)
{
    buf_printf(out, "%s%s", name, suffix);
    if (label || le)
        buf_addc(out, '{');
    if (label) {
        buf_printf(out, "%s=\"", label);
        add_escaped(out, value ? value : "", 1);
        buf_addc(out, '"');
    }
    if (le)
        buf_printf(out, "%sle=\"%s\"", label ? "," : "", le);
    if (label || le)
        buf_addc(out, '}');
    buf_addc(out, ' ');
    add_number(out, v);
    buf_addc(out, '\n');
}

void metrics_render_sample(struct buf *out, const char *name, const char *label, const char *value,
                           double v)
{
    add_sample(out, name, "", label, value, NULL, v);
}

static void render_histogram_series(struct buf *out, const struct metric *m, const struct series *s)
{
    uint64_t cumulative = 0;
    struct buf le = BUF_INIT;
    for (size_t i = 0; i < m->nbounds; i++) {
        cumulative += s->buckets[i];
        buf_clear(&le);
        add_number(&le, m->bounds[i]);
        add_sample(out, m->name, "_bucket", m->label, s->value, buf_cstr(&le), (double)cumulative);
    }
    add_sample(out, m->name, "_bucket", m->label, s->value, "+Inf", (double)s->count);
    add_sample(out, m->name, "_sum", m->label, s->value, NULL, s->v);
    add_sample(out, m->name, "_count", m->label, s->value, NULL, (double)s->count);
    buf_free(&le);
}

static void render_family(struct buf *out, const struct metric *m)
{
    static const struct series zero;
    metrics_render_head(out, m->name, m->help, kind_names[m->kind]);
    size_t n = m->nseries;
    const struct series *all = m->series;
    if (n == 0 && !m->label) {
        n = 1;
        all = &zero;
    }
    for (size_t i = 0; i < n; i++) {
        if (m->kind == KIND_HISTOGRAM)
            render_histogram_series(out, m, &all[i]);
        else
            add_sample(out, m->name, "", m->label, all[i].value, NULL, all[i].v);
    }
}

void metrics_render(struct buf *out)
{
    for (size_t i = 0; i < ncollectors; i++)
        collectors[i].fn(collectors[i].arg);
    for (size_t i = 0; i < nfamilies; i++)
        render_family(out, families[i]);
}
