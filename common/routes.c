/*
 * routes — parse the static routes file and find the first matching route.
 * See routes.h for the format and the contract.
 */
#include "routes.h"

#include <string.h>

#include "mem.h"
#include "strparse.h"

/* "*", ".domain" or "domain" into rt->kind, rt->pattern, rt->domain. */
static int parse_pattern(struct mapfile_lines *it, char *word, struct route *rt)
{
    if (strcmp(word, "*") == 0) {
        rt->kind = ROUTE_ANY;
        rt->pattern = xstrdup("*");
        rt->domain = xstrdup("");
        return 0;
    }
    if (word[0] == '*' && word[1] == '.') {
        diag_add(it->d, it->fname, it->lineno,
                 "bad pattern \"%s\": write \"%s\" for the subdomains of %s", word, word + 1,
                 word + 2);
        return -1;
    }
    rt->kind = word[0] == '.' ? ROUTE_SUBDOMAINS : ROUTE_EXACT;
    char *domain = xstrdup(word + (rt->kind == ROUTE_SUBDOMAINS));
    if (!mapfile_domain_normalize(domain)) {
        diag_add(it->d, it->fname, it->lineno, "bad pattern \"%s\": not a valid domain", word);
        free(domain);
        return -1;
    }
    struct buf pattern = BUF_INIT;
    buf_printf(&pattern, "%s%s", rt->kind == ROUTE_SUBDOMAINS ? "." : "", domain);
    rt->pattern = buf_steal(&pattern);
    rt->domain = domain;
    return 0;
}

/* "local" or "error:" sharing the list with other next hops, or NULL. */
static const char *lone_hop_not_alone(const struct nexthop *hops, size_t n)
{
    for (size_t i = 0; n > 1 && i < n; i++) {
        if (hops[i].kind == NEXTHOP_LOCAL)
            return "local";
        if (hops[i].kind == NEXTHOP_ERROR)
            return "error:";
    }
    return NULL;
}

/* The next hop list of a route: host next hops separated by commas, or
 * "local", or "error:TEXT" (nexthop_parse_list gives TEXT the rest of the
 * line, commas included). */
static int parse_next_hops(struct mapfile_lines *it, const char *what, const char *list,
                           struct route *rt)
{
    const char *why = NULL;
    if (nexthop_parse_list(list, 0, &rt->hops, &rt->nhops, &why) < 0) {
        rt->hops = NULL;
        rt->nhops = 0;
        diag_add(it->d, it->fname, it->lineno, "%s: bad next hop \"%s\": %s", what, list,
                 why ? why : "syntax error");
        return -1;
    }
    const char *lone = lone_hop_not_alone(rt->hops, rt->nhops);
    if (lone) {
        diag_add(it->d, it->fname, it->lineno, "%s: \"%s\" must be the only next hop of a route",
                 what, lone);
        return -1;
    }
    return 0;
}

static void route_free(struct route *rt)
{
    free(rt->pattern);
    free(rt->domain);
    nexthop_list_free(rt->hops, rt->nhops);
    *rt = (struct route){0};
}

/* Keep rt unless its pattern was seen before (then report it). */
static void add_route(struct routes *r, struct mapfile_lines *it, struct route *rt)
{
    size_t first;
    if (strindex_get(&r->by_pattern, rt->pattern, &first)) {
        diag_add(it->d, it->fname, it->lineno, "duplicate pattern \"%s\" (first at line %u)",
                 rt->pattern, r->v[first].line);
        route_free(rt);
        return;
    }
    r->v = xgrow(r->v, &r->cap, r->n + 1, sizeof(*r->v));
    r->v[r->n] = *rt;
    strindex_put(&r->by_pattern, r->v[r->n].pattern, r->n);
    r->n++;
}

/* One line: PATTERN NEXTHOP[, NEXTHOP...]; a line with a mistake adds nothing. */
static void parse_route_line(struct routes *r, struct mapfile_lines *it, char *line)
{
    mapfile_strip_comment(line);
    char *rest = line;
    char *word = mapfile_next_word(&rest);
    if (!word)
        return;
    struct route rt = {.line = it->lineno};
    int bad = parse_pattern(it, word, &rt) < 0;
    const char *list = str_trim(rest);
    if (!*list) {
        diag_add(it->d, it->fname, it->lineno, "%s: no next hop", word);
        bad = 1;
    } else if (parse_next_hops(it, word, list, &rt) < 0) {
        bad = 1;
    }
    if (bad)
        route_free(&rt);
    else
        add_route(r, it, &rt);
}

int routes_parse(struct routes *r, const char *fname, const char *text, size_t len, struct diag *d)
{
    struct mapfile_lines it;
    char *line;
    size_t before = d->n;
    mapfile_lines_init(&it, fname, text, len, d);
    while ((line = mapfile_next_line(&it)))
        parse_route_line(r, &it, line);
    mapfile_lines_free(&it);
    return it.d->n > before ? -1 : 0; /* every mistake is in the diag */
}

int routes_load(struct routes *r, const char *path, struct diag *d)
{
    struct buf text = BUF_INIT;
    int got = mapfile_read(path, &text, d);
    int status = got < 0 ? -1 : 0;
    if (got > 0)
        status = routes_parse(r, path, text.s, text.len, d);
    buf_free(&text);
    return status;
}

void routes_free(struct routes *r)
{
    for (size_t i = 0; i < r->n; i++)
        route_free(&r->v[i]);
    free(r->v);
    strindex_free(&r->by_pattern);
    *r = (struct routes)ROUTES_INIT;
}

const struct route *routes_match(const struct routes *r, const char *domain)
{
    struct buf key = BUF_INIT;
    const struct route *found = NULL;
    size_t index;
    mapfile_domain_key(&key, domain);
    if (strindex_get(&r->by_pattern, key.s, &index)) {
        found = &r->v[index];
    } else {
        /* ".parent" from the nearest parent up: b.a.example.com tries
         * .a.example.com, then .example.com, then .com */
        for (const char *dot = strchr(key.s, '.'); dot && !found; dot = strchr(dot + 1, '.'))
            if (strindex_get(&r->by_pattern, dot, &index))
                found = &r->v[index];
    }
    if (!found && strindex_get(&r->by_pattern, "*", &index))
        found = &r->v[index];
    buf_free(&key);
    return found;
}
