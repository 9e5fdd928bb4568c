/*
 * sites — parse the site topology file. See sites.h for the format and the
 * contract. Links and `local` may name sites defined further down, so they
 * are kept by name while the file is read and resolved at its end; their
 * mistakes are reported at their own lines all the same.
 */
#include "sites.h"

#include <stdint.h>
#include <string.h>

#include "mem.h"
#include "strparse.h"

#define LINK_SYNOPSIS "link A B COST TYPE [GATEWAY]"

struct pending_link {
    char *a, *b;
    struct site_link link;
    int ok; /* no mistake on its line so far */
};

struct sites_parser {
    struct sites *s;
    struct mapfile_lines it;
    struct pending_link *pending;
    size_t npending, pending_cap;
    char *local_name;
};

#define ERR(p, ...) diag_add((p)->it.d, (p)->it.fname, (p)->it.lineno, __VA_ARGS__)

void sites_init(struct sites *s)
{
    *s = (struct sites){.local = SITES_NO_LOCAL};
}

/* Site names and link types: letters, digits, ".", "_", "-". */
static int word_valid(const char *w)
{
    if (!*w)
        return 0;
    for (; *w; w++) {
        char c = *w;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static int check_site_name(struct sites_parser *p, const char *name)
{
    if (word_valid(name))
        return 0;
    ERR(p, "bad site name \"%s\": use letters, digits, \".\", \"_\" and \"-\"", name);
    return -1;
}

/* ---------------------------------------------------------------- site ---- */

/* Add one domain to the site that will be s->v[index] (keep = 0: only check
 * its syntax, the site itself is not kept). */
static void add_site_domain(struct sites_parser *p, struct site *site, size_t index, int keep,
                            const char *word)
{
    char *domain = xstrdup(word);
    size_t owner;
    if (!mapfile_domain_normalize(domain)) {
        ERR(p, "site %s: bad domain \"%s\"", site->name, word);
    } else if (keep && strindex_get(&p->s->by_domain, domain, &owner)) {
        if (owner == index)
            ERR(p, "site %s: domain %s listed twice", site->name, domain);
        else
            ERR(p, "site %s: domain %s is already in site %s (line %u)", site->name, domain,
                p->s->v[owner].name, p->s->v[owner].line);
    } else if (keep) {
        site->domains = xrealloc(site->domains, (site->ndomains + 1) * sizeof(char *));
        site->domains[site->ndomains++] = domain;
        strindex_put(&p->s->by_domain, domain, index);
        return;
    }
    free(domain);
}

static void site_free(struct site *site)
{
    free(site->name);
    for (size_t i = 0; i < site->ndomains; i++)
        free(site->domains[i]);
    free(site->domains);
}

/* site NAME DOMAIN... — a site with a good name is kept even when some of
 * its domains are bad, so that links naming it add no second error. */
static void parse_site(struct sites_parser *p, char *rest)
{
    struct sites *s = p->s;
    char *name = mapfile_next_word(&rest);
    if (!name) {
        ERR(p, "site: missing name and domains (site NAME DOMAIN...)");
        return;
    }
    size_t first;
    int keep = check_site_name(p, name) == 0;
    if (keep && strindex_get(&s->by_name, name, &first)) {
        ERR(p, "site %s defined twice (first at line %u)", name, s->v[first].line);
        keep = 0;
    }
    struct site site = {.name = xstrdup(name), .line = p->it.lineno};
    size_t nwords = 0;
    char *word;
    while ((word = mapfile_next_word(&rest))) {
        add_site_domain(p, &site, s->n, keep, word);
        nwords++;
    }
    if (!nwords)
        ERR(p, "site %s: no domain (site NAME DOMAIN...)", name);
    if (!keep) {
        site_free(&site);
        return;
    }
    s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n] = site;
    strindex_put(&s->by_name, s->v[s->n].name, s->n);
    s->n++;
}

/* --------------------------------------------------------------- local ---- */

/* local NAME — resolved at the end of the file. */
static void parse_local(struct sites_parser *p, char *rest)
{
    char *name = mapfile_next_word(&rest);
    if (!name) {
        ERR(p, "local: missing site name (local NAME)");
        return;
    }
    if (mapfile_next_word(&rest)) {
        ERR(p, "local: too many fields (local NAME)");
        return;
    }
    if (p->s->local_line) {
        ERR(p, "local given twice (first at line %u)", p->s->local_line);
        return;
    }
    if (check_site_name(p, name) < 0)
        return;
    p->local_name = xstrdup(name);
    p->s->local_line = p->it.lineno;
}

/* ---------------------------------------------------------------- link ---- */

static int parse_link_cost(struct sites_parser *p, const char *word, unsigned *cost)
{
    uint64_t v;
    const char *why;
    if (parse_uint(word, 1, SITES_MAX_COST, &v, &why) == 0) {
        *cost = (unsigned)v;
        return 0;
    }
    ERR(p, "link: cost \"%s\" is not an integer from 1 to %u", word, SITES_MAX_COST);
    return -1;
}

static int parse_link_type(struct sites_parser *p, const char *word, struct site_link *link)
{
    if (!word_valid(word)) {
        ERR(p, "link: bad type \"%s\" (smtp, or a word naming the connector)", word);
        return -1;
    }
    link->type = str_lower(xstrdup(word));
    link->is_smtp = strcmp(link->type, "smtp") == 0;
    return 0;
}

static int parse_link_gateway(struct sites_parser *p, const char *word, struct site_link *link)
{
    const char *why = NULL;
    if (nexthop_parse(word, NEXTHOP_NO_LOCAL | NEXTHOP_NO_ERROR, &link->gateway, &why) < 0) {
        ERR(p, "link: bad gateway \"%s\": %s", word, why ? why : "syntax error");
        return -1;
    }
    link->has_gateway = 1;
    return 0;
}

static void link_free(struct site_link *link)
{
    free(link->type);
    if (link->has_gateway)
        nexthop_free(&link->gateway);
    *link = (struct site_link){0};
}

/* Check the words of a link line; the sites it names are resolved later. */
static void parse_link_fields(struct sites_parser *p, char **w, size_t n)
{
    struct pending_link pl = {.link = {.line = p->it.lineno}};
    int ok = check_site_name(p, w[0]) == 0;
    ok &= check_site_name(p, w[1]) == 0;
    if (strcmp(w[0], w[1]) == 0) {
        ERR(p, "link from site %s to itself", w[0]);
        ok = 0;
    }
    ok &= parse_link_cost(p, w[2], &pl.link.cost) == 0;
    ok &= parse_link_type(p, w[3], &pl.link) == 0;
    if (n == 5)
        ok &= parse_link_gateway(p, w[4], &pl.link) == 0;
    if (!word_valid(w[0]) || !word_valid(w[1]) || strcmp(w[0], w[1]) == 0) {
        link_free(&pl.link);
        return;
    }
    pl.a = xstrdup(w[0]);
    pl.b = xstrdup(w[1]);
    pl.ok = ok;
    p->pending = xgrow(p->pending, &p->pending_cap, p->npending + 1, sizeof(*p->pending));
    p->pending[p->npending++] = pl;
}

/* link A B COST TYPE [GATEWAY] */
static void parse_link(struct sites_parser *p, char *rest)
{
    char *w[6];
    size_t n = 0;
    while (n < 6 && (w[n] = mapfile_next_word(&rest)))
        n++;
    if (n < 4)
        ERR(p, "link: missing fields (" LINK_SYNOPSIS ")");
    else if (n > 5)
        ERR(p, "link: too many fields (" LINK_SYNOPSIS ")");
    else
        parse_link_fields(p, w, n);
}

/* ------------------------------------------------------- end of file ---- */

static int resolve_site(struct sites_parser *p, const char *what, const char *name, unsigned line,
                        size_t *index)
{
    if (strindex_get(&p->s->by_name, name, index))
        return 0;
    diag_add(p->it.d, p->it.fname, line, "%s: unknown site \"%s\"", what, name);
    return -1;
}

static void resolve_links(struct sites_parser *p)
{
    struct sites *s = p->s;
    for (size_t i = 0; i < p->npending; i++) {
        struct pending_link *pl = &p->pending[i];
        int ok = resolve_site(p, "link", pl->a, pl->link.line, &pl->link.a) == 0;
        ok &= resolve_site(p, "link", pl->b, pl->link.line, &pl->link.b) == 0;
        if (ok && pl->ok) {
            s->links = xgrow(s->links, &s->links_cap, s->nlinks + 1, sizeof(*s->links));
            s->links[s->nlinks++] = pl->link;
        } else {
            link_free(&pl->link);
        }
        free(pl->a);
        free(pl->b);
    }
    free(p->pending);
}

static void resolve_local(struct sites_parser *p)
{
    size_t index;
    if (p->local_name && resolve_site(p, "local", p->local_name, p->s->local_line, &index) == 0)
        p->s->local = index;
    free(p->local_name);
}

/* --------------------------------------------------------------- file ---- */

static void parse_sites_line(struct sites_parser *p, char *line)
{
    mapfile_strip_comment(line);
    char *rest = line;
    char *keyword = mapfile_next_word(&rest);
    if (!keyword)
        return;
    if (strcmp(keyword, "site") == 0)
        parse_site(p, rest);
    else if (strcmp(keyword, "local") == 0)
        parse_local(p, rest);
    else if (strcmp(keyword, "link") == 0)
        parse_link(p, rest);
    else
        ERR(p, "unknown keyword \"%s\" (site, local or link)", keyword);
}

int sites_parse(struct sites *s, const char *fname, const char *text, size_t len, struct diag *d)
{
    struct sites_parser p = {.s = s};
    char *line;
    size_t before = d->n;
    mapfile_lines_init(&p.it, fname, text, len, d);
    while ((line = mapfile_next_line(&p.it)))
        parse_sites_line(&p, line);
    resolve_links(&p);
    resolve_local(&p);
    mapfile_lines_free(&p.it);
    diag_sort_by_line(d, before);
    return d->n > before ? -1 : 0;
}

int sites_load(struct sites *s, const char *path, struct diag *d)
{
    struct buf text = BUF_INIT;
    int got = mapfile_read(path, &text, d);
    int status = got < 0 ? -1 : 0;
    if (got > 0)
        status = sites_parse(s, path, text.s, text.len, d);
    buf_free(&text);
    return status;
}

void sites_free(struct sites *s)
{
    for (size_t i = 0; i < s->n; i++)
        site_free(&s->v[i]);
    free(s->v);
    for (size_t i = 0; i < s->nlinks; i++)
        link_free(&s->links[i]);
    free(s->links);
    strindex_free(&s->by_name);
    strindex_free(&s->by_domain);
    sites_init(s);
}

/* ------------------------------------------------------------- lookups ---- */

const struct site *sites_find(const struct sites *s, const char *name)
{
    size_t index;
    return strindex_get(&s->by_name, name, &index) ? &s->v[index] : NULL;
}

const struct site *sites_find_by_domain(const struct sites *s, const char *domain)
{
    struct buf name = BUF_INIT;
    const struct site *found = NULL;
    size_t index;
    mapfile_domain_key(&name, domain);
    /* the whole name first, then without its first label, and so on: the
     * first hit is the longest site domain that contains it */
    const char *d = name.s;
    while (*d) {
        if (strindex_get(&s->by_domain, d, &index)) {
            found = &s->v[index];
            break;
        }
        const char *dot = strchr(d, '.');
        if (!dot)
            break;
        d = dot + 1;
    }
    buf_free(&name);
    return found;
}

const struct site *sites_local(const struct sites *s)
{
    return s->local == SITES_NO_LOCAL ? NULL : &s->v[s->local];
}
