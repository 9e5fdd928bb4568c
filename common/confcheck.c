/*
 * confcheck — the checks of `onehop check`. See confcheck.h. The parsers
 * find the mistakes; this file adds only the checks that need two files.
 * It never changes a file.
 */
#include "confcheck.h"

#include "aliases.h"
#include "buf.h"
#include "routes.h"
#include "safeio.h"
#include "sites.h"

/* A domain of a site other than the local one that onehop.conf also
 * delivers locally: mail for it would stay here, never take the site path. */
static void check_sites_against_local_domains(const struct conf *c, const struct sites *s,
                                              const char *sites_path, struct diag *d)
{
    for (size_t i = 0; i < s->n; i++) {
        if (i == s->local)
            continue;
        for (size_t j = 0; j < s->v[i].ndomains; j++) {
            const char *domain = s->v[i].domains[j];
            if (conf_list_has(&c->local_domains, domain))
                diag_add(d, sites_path, s->v[i].line,
                         "site %s: domain %s is in local_domains (onehop.conf) but %s is not the "
                         "local site",
                         s->v[i].name, domain, s->v[i].name);
        }
    }
}

static void map_path(struct buf *path, const char *confdir, const char *name)
{
    buf_clear(path);
    path_join(path, confdir, name);
}

int conf_check_dir(const char *confdir, struct conf *c, struct diag *d)
{
    struct buf path = BUF_INIT;
    struct routes routes = ROUTES_INIT;
    struct aliases aliases = ALIASES_INIT;
    struct sites sites;
    size_t before = d->n;
    sites_init(&sites);

    conf_load(c, confdir, d);
    map_path(&path, confdir, "routes");
    routes_load(&routes, buf_cstr(&path), d);
    map_path(&path, confdir, "sites");
    size_t sites_from = d->n;
    sites_load(&sites, buf_cstr(&path), d);
    check_sites_against_local_domains(c, &sites, buf_cstr(&path), d);
    diag_sort_by_line(d, sites_from);
    map_path(&path, confdir, "aliases");
    aliases_load(&aliases, buf_cstr(&path), d);

    buf_free(&path);
    routes_free(&routes);
    aliases_free(&aliases);
    sites_free(&sites);
    return d->n > before ? -1 : 0;
}
