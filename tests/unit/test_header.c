/*
 * test_header — the header-section splitter (queue/header.h): one test per
 * rule of RFC 5322 2.2 as header_block_parse applies it. Each row gives the
 * text, the fields found written as "name=value" joined by " | " (values
 * with their CR LF shown as \n), where the body starts, and whether an empty
 * line separated it.
 */
#include <string.h>

#include "header.h"
#include "rowtest.h"

struct row {
    const char *in;
    const char *fields;
    const char *body;
    int separator;
};

static const struct row rows[] = {
    {"Subject: hi\r\n\r\nbody\r\n", "Subject= hi", "body\r\n", 1},
    {"A: 1\r\nB: 2\r\n\r\n", "A= 1 | B= 2", "", 1},
    /* LF lines (the queue's stored form) work the same */
    {"A: 1\nB: 2\n\tmore\n\nbody\n", "A= 1 | B= 2\\n\tmore", "body\n", 1},
    /* folding: continuation lines belong to the field above */
    {"To: a@b,\r\n c@d,\r\n\te@f\r\nX: y\r\n\r\nb", "To= a@b,\\n c@d,\\n\te@f | X= y", "b", 1},
    /* RFC 5322 4.5 obs-optional: white space before the colon */
    {"Subject : hi\r\n\r\n", "Subject= hi", "", 1},
    /* a line that is not a field starts the body, without separator */
    {"A: 1\r\nthis is body\r\n", "A= 1", "this is body\r\n", 0},
    {"no header here\r\n", "", "no header here\r\n", 0},
    /* a continuation line with no field above is body */
    {" indented\r\nA: 1\r\n", "", " indented\r\nA: 1\r\n", 0},
    /* empty value, and a name of every ftext character class */
    {"X-Empty:\r\nX-A.B_c!~:v\r\n\r\n", "X-Empty= | X-A.B_c!~=v", "", 1},
    /* a field name with a space or a control inside is not a field */
    {"Bad Name: x\r\n\r\n", "", "Bad Name: x\r\n\r\n", 0},
    {":novalue\r\n", "", ":novalue\r\n", 0},
    /* only a header section, no separator, no body */
    {"A: 1\r\n", "A= 1", "", 0},
    {"", "", "", 0},
    {"\r\nbody only\r\n", "", "body only\r\n", 1},
    /* last line without line end */
    {"A: 1", "A= 1", "", 0},
    /* a separator line holding only CR LF; a blank line with spaces folds */
    {"A: 1\r\n  \r\nB: 2\r\n\r\n", "A= 1\\n   | B= 2", "", 1},
};

static void show_value(struct buf *out, const char *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (v[k] == '\r')
            continue;
        if (v[k] == '\n')
            buf_adds(out, "\\n");
        else
            buf_addc(out, v[k]);
    }
}

static void check_row(void **state)
{
    const struct row *r = *state;
    struct header_block hb = HEADER_BLOCK_INIT;
    size_t len = strlen(r->in);
    header_block_parse(r->in, len, &hb);
    struct buf got = BUF_INIT;
    for (size_t k = 0; k < hb.n; k++) {
        if (k > 0)
            buf_adds(&got, " | ");
        buf_add(&got, hb.v[k].name, hb.v[k].name_len);
        buf_addc(&got, '=');
        show_value(&got, hb.v[k].value, hb.v[k].value_len);
        /* raw covers the field exactly as written */
        assert_ptr_equal(hb.v[k].raw, hb.v[k].name);
    }
    assert_string_equal(buf_cstr(&got), r->fields);
    assert_true(hb.body_offset <= len);
    assert_string_equal(r->in + hb.body_offset, r->body);
    assert_int_equal(hb.has_separator, r->separator);
    buf_free(&got);
    header_block_free(&hb);
}

static void check_lookup(void **state)
{
    const char *text = "message-id: <x@y>\r\nDATE: now\r\nX-Resent-To: z\r\n\r\n";
    struct header_block hb = HEADER_BLOCK_INIT;
    header_block_parse(text, strlen(text), &hb);
    assert_non_null(header_find(&hb, "Message-ID"));
    assert_non_null(header_find(&hb, "Date"));
    assert_null(header_find(&hb, "Resent-To"));
    assert_null(header_find(&hb, "Dat"));
    assert_int_equal(header_find(&hb, "date")->raw_len, strlen("DATE: now\r\n"));
    header_block_free(&hb);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, check_row, &rows[i], "header_block_parse %s", rows[i].in);
    rowtest_add(&t, check_lookup, NULL, "header_find is case-insensitive and exact");
    return rowtest_run(&t, "header");
}
