/*
 * test_aliases — golden expectations for the aliases file (SPEC 3, the
 * Postfix aliases(5) syntax): every target form parsed to its kind, value and
 * line, continuation lines (with comment and blank lines inside an entry),
 * quoted pipes, every mistake reported at its exact line with parsing going
 * on, the aliases_lookup() table, and loading.
 */
#include "rowtest.h"

#include <string.h>

#include "aliases.h"

static int parse(struct aliases *a, struct diag *d, const char *text)
{
    *a = (struct aliases)ALIASES_INIT;
    return aliases_parse(a, "aliases", text, strlen(text), d);
}

/* ------------------------------------------------------------ accepted ---- */

static const char good_file[] =
    "# aliases for the test\n"                                             /* 1 */
    "postmaster: root\n"                                                   /* 2 */
    "Team:  alice, bob@Dst.Test,\n"                                        /* 3 */
    "       \"|/usr/bin/filter --tag team\",\n"                            /* 4 */
    "  # a comment inside does not end the entry\n"                        /* 5 */
    "\n"                                                                   /* 6 */
    "\t/var/mail/team.archive, :include:/etc/onehop/lists.txt\n"           /* 7 */
    "\"quoted name\": carol\n"                                             /* 8 */
    "pipe: |/bin/cat\n"                                                    /* 9 */
    "q: \"john doe\"@x.test, \"/path with space\", \"|cmd, with comma\"\n" /* 10 */
    "crlf : dave\r\n"                                                      /* 11 */
    "late:\n"                                                              /* 12 */
    "  erin\n";                                                            /* 13 */

struct target_want {
    enum alias_target_kind kind;
    const char *value;
    unsigned line;
    const char *domain; /* ADDRESS: the parsed domain, NULL when bare */
};

struct alias_want {
    const char *name;
    unsigned line;
    size_t ntargets;
    struct target_want t[5];
};

static const struct alias_want good_aliases[] = {
    {"postmaster", 2, 1, {{ALIAS_ADDRESS, "root", 2, NULL}}},
    {"team",
     3,
     5,
     {{ALIAS_ADDRESS, "alice", 3, NULL},
      {ALIAS_ADDRESS, "bob@Dst.Test", 3, "dst.test"},
      {ALIAS_COMMAND, "/usr/bin/filter --tag team", 4, NULL},
      {ALIAS_FILE, "/var/mail/team.archive", 7, NULL},
      {ALIAS_INCLUDE, "/etc/onehop/lists.txt", 7, NULL}}},
    {"quoted name", 8, 1, {{ALIAS_ADDRESS, "carol", 8, NULL}}},
    {"pipe", 9, 1, {{ALIAS_COMMAND, "/bin/cat", 9, NULL}}},
    {"q",
     10,
     3,
     {{ALIAS_ADDRESS, "\"john doe\"@x.test", 10, "x.test"},
      {ALIAS_FILE, "/path with space", 10, NULL},
      {ALIAS_COMMAND, "cmd, with comma", 10, NULL}}},
    {"crlf", 11, 1, {{ALIAS_ADDRESS, "dave", 11, NULL}}},
    {"late", 12, 1, {{ALIAS_ADDRESS, "erin", 13, NULL}}},
};

static void check_target(const struct target_want *w, const struct alias_target *t)
{
    assert_int_equal(t->kind, w->kind);
    assert_string_equal(t->value, w->value);
    assert_int_equal(t->line, w->line);
    if (w->kind != ALIAS_ADDRESS)
        return;
    if (w->domain)
        assert_string_equal(t->addr.domain, w->domain);
    else
        assert_null(t->addr.domain);
}

static void test_good_alias(void **state)
{
    const struct alias_want *w = *state;
    struct aliases a;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&a, &d, good_file), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(a.n, ROWS(good_aliases));
    const struct alias *al = aliases_lookup(&a, w->name);
    assert_non_null(al);
    assert_string_equal(al->name, w->name);
    assert_int_equal(al->line, w->line);
    assert_int_equal(al->ntargets, w->ntargets);
    for (size_t i = 0; i < w->ntargets; i++)
        check_target(&w->t[i], &al->targets[i]);
    aliases_free(&a);
}

/* File order is kept. */
static void test_good_order(void **state)
{
    struct aliases a;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&a, &d, good_file), 0);
    for (size_t i = 0; i < ROWS(good_aliases); i++)
        assert_string_equal(a.v[i].name, good_aliases[i].name);
    aliases_free(&a);
}

/* ------------------------------------------------------- aliases_lookup ---- */

struct lookup_row {
    const char *name;
    unsigned line; /* 0: not found */
};

static const struct lookup_row lookup_rows[] = {
    {"postmaster", 2},  {"POSTMASTER", 2},  {"PostMaster", 2}, {"team", 3},   {"TEAM", 3},
    {"quoted name", 8}, {"Quoted Name", 8}, {"late", 12},      {"nobody", 0}, {"", 0},
    {"post", 0},        {"postmaster2", 0}, {"root", 0},       {"\"q\"", 0},
};

static void test_lookup(void **state)
{
    const struct lookup_row *r = *state;
    struct aliases a;
    struct diag d = DIAG_INIT;
    assert_int_equal(parse(&a, &d, good_file), 0);
    const struct alias *al = aliases_lookup(&a, r->name);
    if (r->line) {
        assert_non_null(al);
        assert_int_equal(al->line, r->line);
    } else {
        assert_null(al);
    }
    aliases_free(&a);
}

static void test_lookup_empty_table(void **state)
{
    struct aliases a = ALIASES_INIT;
    assert_null(aliases_lookup(&a, "postmaster"));
}

/* -------------------------------------------------------------- errors ---- */

struct bad_row {
    const char *what;
    const char *text;
    unsigned lines[3];   /* every expected diag line, in order; 0 ends */
    const char *message; /* expected text of the first diag; NULL: from addr.c */
    size_t naliases;     /* good entries still parsed */
};

static const struct bad_row bad_rows[] = {
    {"line with no colon",
     "postmaster: alice\nthis line has no colon\n",
     {2},
     "missing \":\" after the alias name (NAME: TARGET, TARGET...)",
     1},
    {"empty name", ": alice\n", {1}, "empty alias name", 0},
    {"empty quoted name", "\"\": alice\n", {1}, "empty alias name", 0},
    {"name with white space",
     "bad name: x\n",
     {1},
     "bad alias name \"bad name\" (white space or quotes need double quotes)",
     0},
    {"no targets", "empty:\nnext: x\n", {1}, "empty: no targets (NAME: TARGET, TARGET...)", 1},
    {"only commas", "e: , ,\n", {1}, "e: no targets (NAME: TARGET, TARGET...)", 0},
    {"bad address", "a: b@@c\n", {1}, NULL, 0},
    {"bad address on a continuation line", "a: good,\n  b@@c,\n  d\n", {2}, NULL, 0},
    {"comma missing before a continuation", "a: alice\n  bob\n", {1}, NULL, 0},
    {"duplicate name", "a: x\nb: y\nA: z\n", {3}, "duplicate alias \"a\" (first at line 1)", 2},
    {"duplicate of a quoted name",
     "\"a\": x\n\na: y\n",
     {3},
     "duplicate alias \"a\" (first at line 1)",
     1},
    {"continuation with no entry",
     "  x: y\nok: z\n",
     {1},
     "continuation line (starting with white space) with no entry before it",
     1},
    {"empty command", "a: |\n", {1}, "a: |command target \"|\" is empty", 0},
    {"empty quoted command", "a: \"|\"\n", {1}, "a: |command target \"\"|\"\" is empty", 0},
    {"empty include", "a: :include:\n", {1}, "a: :include: target \":include:\" is empty", 0},
    {"unquoted file with white space",
     "a: /var/mail/a b\n",
     {1},
     "a: file target \"/var/mail/a b\" holds white space (put it in double quotes, or is a "
     "comma missing?)",
     0},
    {"file with the comma forgotten before a continuation",
     "a: /var/mail/a\n  bob\n",
     {1},
     NULL,
     0},
    {"two bad targets in one entry", "a: b@@c, |, ok\n", {1, 1}, NULL, 0},
    {"bad targets on two lines", "a: b@@c,\n\n  # c\n  |\n", {1, 4}, NULL, 0},
    {"bad name and bad target", "bad name: b@@c\n", {1, 1}, NULL, 0},
    {"unterminated quote", "a: \"|cmd\n", {1}, NULL, 0},
    {"control character",
     "a: b\x01z\nc: d\n",
     {1},
     "control character 0x01 in line; line ignored",
     1},
    {"every mistake, parsing goes on",
     "one: x\n"
     "two x\n" /* 2 */
     "three: y,\n"
     "  z@@w\n" /* 4 */
     "four: q\n"
     "ONE: again\n" /* 6 */
     "five: r\n",
     {2, 4, 6},
     NULL,
     3},
};

static void test_bad_text(void **state)
{
    const struct bad_row *r = *state;
    struct aliases a;
    struct diag d = DIAG_INIT;
    size_t want = 0;
    while (want < 3 && r->lines[want])
        want++;
    assert_int_equal(parse(&a, &d, r->text), -1);
    assert_int_equal(d.n, want);
    for (size_t i = 0; i < want; i++) {
        assert_string_equal(d.v[i].file, "aliases");
        assert_int_equal(d.v[i].line, r->lines[i]);
    }
    if (r->message)
        assert_string_equal(d.v[0].text, r->message);
    assert_int_equal(a.n, r->naliases);
    aliases_free(&a);
    diag_free(&d);
}

/* ---------------------------------------------------------------- load ---- */

static void test_load_missing_is_empty(void **state)
{
    struct aliases a = ALIASES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(aliases_load(&a, "/nonexistent/onehop/aliases", &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(a.n, 0);
}

static void test_load_unreadable_is_error(void **state)
{
    struct aliases a = ALIASES_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(aliases_load(&a, "/", &d), -1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 0);
    diag_free(&d);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(good_aliases); i++)
        rowtest_add(&t, test_good_alias, &good_aliases[i], "parses alias %s", good_aliases[i].name);
    rowtest_add(&t, test_good_order, NULL, "keeps file order");
    for (size_t i = 0; i < ROWS(lookup_rows); i++)
        rowtest_add(&t, test_lookup, &lookup_rows[i], "aliases_lookup \"%s\"", lookup_rows[i].name);
    rowtest_add(&t, test_lookup_empty_table, NULL, "empty table finds nothing");
    for (size_t i = 0; i < ROWS(bad_rows); i++)
        rowtest_add(&t, test_bad_text, &bad_rows[i], "reports %s", bad_rows[i].what);
    rowtest_add(&t, test_load_missing_is_empty, NULL, "missing file is an empty table");
    rowtest_add(&t, test_load_unreadable_is_error, NULL, "unreadable file is an error");
    return rowtest_run(&t, "aliases");
}
