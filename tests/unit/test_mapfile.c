/*
 * test_mapfile — the helpers the map parsers share: line numbering (LF,
 * CRLF, no final newline, control characters), comments, words, domain
 * normalising and matching (one row each), diag sorting, the string index,
 * and mapfile_read's three outcomes.
 */
#include "rowtest.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mapfile.h"

static void test_lines_numbered(void **state)
{
    static const char text[] = "one\r\n\ntwo\n\tthree";
    struct diag d = DIAG_INIT;
    struct mapfile_lines it;
    mapfile_lines_init(&it, "f", text, sizeof(text) - 1, &d);
    static const char *const want[] = {"one", "", "two", "\tthree"};
    for (unsigned i = 0; i < 4; i++) {
        char *line = mapfile_next_line(&it);
        assert_non_null(line);
        assert_string_equal(line, want[i]);
        assert_int_equal(it.lineno, i + 1);
    }
    assert_null(mapfile_next_line(&it));
    assert_int_equal(d.n, 0);
    mapfile_lines_free(&it);
}

static void test_lines_control_skipped(void **state)
{
    static const char text[] = "a\nb\0c\nd\x07\ne\n";
    struct diag d = DIAG_INIT;
    struct mapfile_lines it;
    mapfile_lines_init(&it, "f", text, sizeof(text) - 1, &d);
    assert_string_equal(mapfile_next_line(&it), "a");
    assert_string_equal(mapfile_next_line(&it), "e");
    assert_int_equal(it.lineno, 4);
    assert_null(mapfile_next_line(&it));
    assert_int_equal(d.n, 2);
    assert_int_equal(d.v[0].line, 2);
    assert_string_equal(d.v[0].text, "NUL byte in line; line ignored");
    assert_int_equal(d.v[1].line, 3);
    assert_string_equal(d.v[1].text, "control character 0x07 in line; line ignored");
    mapfile_lines_free(&it);
    diag_free(&d);
}

struct comment_row {
    const char *in, *out;
};

static const struct comment_row comment_rows[] = {
    {"# all", ""},  {"a b # c", "a b "}, {"a\t#c", "a\t"},
    {"a#b", "a#b"}, {"a#b #c", "a#b "},  {"none", "none"},
};

static void test_strip_comment(void **state)
{
    const struct comment_row *r = *state;
    char *s = xstrdup(r->in);
    mapfile_strip_comment(s);
    assert_string_equal(s, r->out);
    free(s);
}

static void test_words(void **state)
{
    char *s = xstrdup("  one\ttwo   three  ");
    char *pos = s;
    assert_string_equal(mapfile_next_word(&pos), "one");
    assert_string_equal(mapfile_next_word(&pos), "two");
    assert_string_equal(mapfile_next_word(&pos), "three");
    assert_null(mapfile_next_word(&pos));
    assert_null(mapfile_next_word(&pos));
    free(s);
    assert_true(mapfile_is_blank(" \t "));
    assert_false(mapfile_is_blank(" x "));
}

struct domain_row {
    const char *in;
    int valid;
    const char *out;
};

static const struct domain_row domain_rows[] = {
    {"Example.COM", 1, "example.com"},
    {"example.com.", 1, "example.com"},
    {"localhost", 1, "localhost"},
    {"a-b.c1.test", 1, "a-b.c1.test"},
    {"", 0, ""},
    {".", 0, "."},
    {"a..b", 0, "a..b"},
    {"a.b..", 0, "a.b.."},
    {"bad_x.test", 0, "bad_x.test"},
    {"-a.test", 0, "-a.test"},
};

static void test_domain_normalize(void **state)
{
    const struct domain_row *r = *state;
    char *s = xstrdup(r->in);
    assert_int_equal(mapfile_domain_normalize(s), r->valid);
    if (r->valid)
        assert_string_equal(s, r->out);
    free(s);
}

struct match_row {
    const char *domain, *name;
    int equal, sub;
};

static const struct match_row match_rows[] = {
    {"example.com", "example.com", 1, 0},
    {"EXAMPLE.com.", "example.com", 1, 0},
    {"a.example.com", "example.com", 0, 1},
    {"b.a.example.com.", "example.com", 0, 1},
    {"xexample.com", "example.com", 0, 0},
    {".example.com", "example.com", 0, 0},
    {"example.co", "example.com", 0, 0},
    {"com", "example.com", 0, 0},
    {"", "example.com", 0, 0},
};

static void test_domain_match(void **state)
{
    const struct match_row *r = *state;
    assert_int_equal(mapfile_domain_equal(r->domain, r->name), r->equal);
    assert_int_equal(mapfile_domain_is_sub(r->domain, r->name), r->sub);
}

static void test_sort_diag(void **state)
{
    struct diag d = DIAG_INIT;
    diag_add(&d, "other", 9, "before");
    diag_add(&d, "f", 5, "five");
    diag_add(&d, "f", 2, "two-a");
    diag_add(&d, "f", 7, "seven");
    diag_add(&d, "f", 2, "two-b");
    diag_sort_by_line(&d, 1);
    static const char *const want[] = {"before", "two-a", "two-b", "five", "seven"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(d.v[i].text, want[i]);
    diag_free(&d);
}

static void test_strindex(void **state)
{
    struct strindex x = STRINDEX_INIT;
    char keys[1000][8];
    size_t v;
    assert_false(strindex_get(&x, "k0", &v));
    for (size_t i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
        strindex_put(&x, keys[i], i * 3);
    }
    for (size_t i = 0; i < 1000; i++) {
        assert_true(strindex_get(&x, keys[i], &v));
        assert_int_equal(v, i * 3);
    }
    assert_false(strindex_get(&x, "k1000", &v));
    assert_false(strindex_get(&x, "K1", &v));
    assert_int_equal(x.n, 1000);
    strindex_free(&x);
    assert_false(strindex_get(&x, "k1", &v));
}

static void test_read(void **state)
{
    struct buf text = BUF_INIT;
    struct diag d = DIAG_INIT;
    assert_int_equal(mapfile_read("/nonexistent/onehop/map", &text, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(mapfile_read("/", &text, &d), -1);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 0);
    assert_string_equal(d.v[0].text, "cannot read: Is a directory");
    char path[64];
    test_temp_file(path, sizeof(path), "mapfile", "x y\n");
    assert_int_equal(mapfile_read(path, &text, &d), 1);
    unlink(path);
    assert_string_equal(buf_cstr(&text), "x y\n");
    buf_free(&text);
    diag_free(&d);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_lines_numbered, NULL, "lines are numbered (LF, CRLF, no final LF)");
    rowtest_add(&t, test_lines_control_skipped, NULL, "control characters reported, skipped");
    for (size_t i = 0; i < ROWS(comment_rows); i++)
        rowtest_add(&t, test_strip_comment, &comment_rows[i], "strip_comment \"%s\"",
                    comment_rows[i].in);
    rowtest_add(&t, test_words, NULL, "words");
    for (size_t i = 0; i < ROWS(domain_rows); i++)
        rowtest_add(&t, test_domain_normalize, &domain_rows[i], "domain_normalize \"%s\"",
                    domain_rows[i].in);
    for (size_t i = 0; i < ROWS(match_rows); i++)
        rowtest_add(&t, test_domain_match, &match_rows[i], "domain \"%s\" vs %s",
                    match_rows[i].domain, match_rows[i].name);
    rowtest_add(&t, test_sort_diag, NULL, "sort_diag keeps order within a line");
    rowtest_add(&t, test_strindex, NULL, "strindex with growth");
    rowtest_add(&t, test_read, NULL, "mapfile_read: missing, unreadable, read");
    return rowtest_run(&t, "mapfile");
}
