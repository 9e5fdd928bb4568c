/*
 * test_msgcheck — onehop-queue's content check and LF normalisation
 * (queue/msgcheck.h): one test per decision-table row, each fed whole and
 * then byte by byte (chunking must never change the outcome), plus the
 * limits at their exact edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "inject_proto.h"
#include "mem.h"
#include "msgcheck.h"
#include "rowtest.h"

struct row {
    const char *in;
    size_t in_len;   /* 0: strlen(in) */
    const char *out; /* NULL: must fail */
    const char *enhanced;
    uint64_t limit;
};

#define ROW(i, o)                                                                                  \
    {                                                                                              \
        i, sizeof(i) - 1, o, NULL, 0                                                               \
    }
#define FAILS(i, code)                                                                             \
    {                                                                                              \
        i, sizeof(i) - 1, NULL, code, 0                                                            \
    }

static const struct row rows[] = {
    ROW("a\r\nb\r\n", "a\nb\n"),
    ROW("a\nb\n", "a\nb\n"),
    ROW("a\nb", "a\nb\n"),         /* last line gets its LF */
    ROW("a\r\r\nb\r\n", "a\nb\n"), /* every CR right before LF goes */
    ROW("a\rb\n", "a\rb\n"),       /* a CR inside a line stays */
    ROW("abc\r", "abc\n"),         /* CR at the very end ends the line */
    ROW("\r", "\n"),
    ROW("", ""),
    ROW("\n", "\n"),
    ROW("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\n\nbody\n.\n"), /* no dot handling */
    ROW("x\xff\xfe\n", "x\xff\xfe\n"),                                 /* 8-bit bytes pass */
    FAILS("a\0b\n", "5.6.0"),
    FAILS("\0", "5.6.0"),
    FAILS("Subject: x\r\n\r\nab\r\0\n", "5.6.0"),
    {"12345678", 8, "12345678\n", NULL, 9},      /* size limit counts the stored LF */
    {"12345678\r\n", 10, "12345678\n", NULL, 9}, /* CRLF stored as one byte */
    {"123456789", 9, NULL, "5.3.4", 9},
    /* the body, checked in runs of plain bytes: the same answers */
    {"S: x\n\nabcdef\n", 13, "S: x\n\nabcdef\n", NULL, 13},
    {"S: x\n\nabcdef\n", 13, NULL, "5.3.4", 12},
    {"S: x\n\nabcdefg", 13, NULL, "5.3.4", 12}, /* over inside the run */
    FAILS("S: x\n\nab\0cd\n", "5.6.0"),
    ROW("S: x\n\nab\rcd\r\nef\r\r\n", "S: x\n\nab\rcd\nef\n"),
};

static void feed_whole(const struct row *r, struct buf *out, int *rc, struct msgcheck *c)
{
    msgcheck_init(c, r->limit);
    *rc = msgcheck_feed(c, r->in, r->in_len, out);
    if (*rc == 0)
        *rc = msgcheck_finish(c, out);
}

static void feed_bytes(const struct row *r, struct buf *out, int *rc, struct msgcheck *c)
{
    msgcheck_init(c, r->limit);
    *rc = 0;
    for (size_t i = 0; i < r->in_len && *rc == 0; i++)
        *rc = msgcheck_feed(c, r->in + i, 1, out);
    if (*rc == 0)
        *rc = msgcheck_finish(c, out);
}

static void check_row(const struct row *r,
                      void (*feed)(const struct row *, struct buf *, int *, struct msgcheck *))
{
    struct buf out = BUF_INIT;
    struct msgcheck c;
    int rc;
    feed(r, &out, &rc, &c);
    if (r->out) {
        assert_int_equal(rc, 0);
        assert_int_equal(out.len, strlen(r->out));
        assert_memory_equal(out.s ? out.s : "", r->out, out.len);
        assert_int_equal(c.size, out.len);
    } else {
        assert_int_equal(rc, -1);
        assert_string_equal(c.enhanced, r->enhanced);
        assert_non_null(c.why);
    }
    buf_free(&out);
}

static void test_row(void **state)
{
    const struct row *r = *state;
    check_row(r, feed_whole);
    check_row(r, feed_bytes);
}

static void run_line(size_t len, int want_rc)
{
    struct msgcheck c;
    struct buf out = BUF_INIT;
    char *line = xmalloc(len + 1);
    memset(line, 'x', len);
    line[len] = '\n';
    msgcheck_init(&c, 0);
    int rc = msgcheck_feed(&c, line, len + 1, &out);
    assert_int_equal(rc, want_rc);
    if (rc)
        assert_string_equal(c.enhanced, "5.6.0");
    free(line);
    buf_free(&out);
}

static void test_line_limit_edge(void **state)
{
    (void)state;
    run_line(INJ_LINE_MAX, 0);
    run_line(INJ_LINE_MAX + 1, -1);
}

/* In the body, a line over INJ_LINE_MAX and a size over the limit: the
 * one reached at the earlier byte is told, the line first at the same byte
 * (as the byte-at-a-time checks did). */
static const char *body_line_failure(uint64_t limit)
{
    size_t len = INJ_LINE_MAX + 1;
    char *in = xmalloc(len + 2);
    in[0] = '\n'; /* an empty header section */
    memset(in + 1, 'z', len);
    in[len + 1] = '\n';
    struct msgcheck c;
    struct buf out = BUF_INIT;
    msgcheck_init(&c, limit);
    int rc = msgcheck_feed(&c, in, len + 2, &out);
    free(in);
    buf_free(&out);
    return rc ? c.enhanced : "ok";
}

static void test_body_limits_order(void **state)
{
    (void)state;
    assert_string_equal(body_line_failure(0), "5.6.0");
    assert_string_equal(body_line_failure(1 + INJ_LINE_MAX + 1), "5.6.0"); /* same byte */
    assert_string_equal(body_line_failure(1 + INJ_LINE_MAX), "5.6.0");     /* line first */
    assert_string_equal(body_line_failure(INJ_LINE_MAX), "5.3.4");         /* size earlier */
}

static void test_line_limit_counts_stored_bytes(void **state)
{
    (void)state;
    /* a line of INJ_LINE_MAX bytes ending in CR CR LF is within the limit */
    size_t len = INJ_LINE_MAX;
    char *line = xmalloc(len + 3);
    memset(line, 'y', len);
    memcpy(line + len, "\r\r\n", 3);
    struct msgcheck c;
    struct buf out = BUF_INIT;
    msgcheck_init(&c, 0);
    assert_int_equal(msgcheck_feed(&c, line, len + 3, &out), 0);
    assert_int_equal(out.len, len + 1);
    free(line);
    buf_free(&out);
}

/* `prefix`, n lines made with field_fmt, then `tail` */
static int lines_with(const char *prefix, unsigned n, const char *tail, const char *field_fmt)
{
    struct buf in = BUF_INIT, out = BUF_INIT;
    buf_adds(&in, prefix);
    for (unsigned i = 0; i < n; i++)
        buf_printf(&in, field_fmt, i);
    buf_adds(&in, tail);
    struct msgcheck c;
    msgcheck_init(&c, 0);
    int rc = msgcheck_feed(&c, in.s, in.len, &out);
    if (rc == 0)
        rc = msgcheck_finish(&c, &out);
    buf_free(&in);
    buf_free(&out);
    return rc;
}

static int headers(unsigned n, const char *tail, const char *field_fmt)
{
    return lines_with("", n, tail, field_fmt);
}

static void test_header_count_edge(void **state)
{
    (void)state;
    assert_int_equal(headers(INJ_HEADERS_MAX, "\nbody\n", "X-H%u: v\n"), 0);
    assert_int_equal(headers(INJ_HEADERS_MAX + 1, "\nbody\n", "X-H%u: v\n"), -1);
}

static void test_header_rows(void **state)
{
    (void)state;
    /* continuation lines are not fields */
    assert_int_equal(headers(INJ_HEADERS_MAX, "\n", "X-H%u: v\n\tcontinued\n more\n"), 0);
    /* obsolete white space before the colon still makes a field */
    assert_int_equal(headers(INJ_HEADERS_MAX + 1, "\n", "X-H%u : v\n"), -1);
    /* after the empty line, "a: b" lines are body */
    assert_int_equal(lines_with("Subject: x\n\n", 2000, "", "a%u: b\n"), 0);
    assert_int_equal(lines_with("Subject: x\n", 2000, "", "a%u: b\n"), -1);
    /* a line that is no field ends the header section */
    assert_int_equal(headers(3000, "", "line %u without colon: then one\n"), 0);
    assert_int_equal(headers(3000, "", "Subject: x\nnot a header\nk%u: v\n"), 0);
    /* a header section at CRLF with fields split across chunks */
    assert_int_equal(headers(INJ_HEADERS_MAX + 1, "\r\n", "X-H%u:\r\n"), -1);
}

static void test_failure_sticks(void **state)
{
    (void)state;
    struct msgcheck c;
    struct buf out = BUF_INIT;
    msgcheck_init(&c, 0);
    assert_int_equal(msgcheck_feed(&c, "a\0", 2, &out), -1);
    assert_int_equal(msgcheck_feed(&c, "fine\n", 5, &out), -1);
    assert_int_equal(msgcheck_finish(&c, &out), -1);
    assert_string_equal(c.enhanced, "5.6.0");
    buf_free(&out);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, test_row, &rows[i], "row %zu", i);
    rowtest_add(&t, test_line_limit_edge, NULL, "line limit edge");
    rowtest_add(&t, test_body_limits_order, NULL, "body limits order");
    rowtest_add(&t, test_line_limit_counts_stored_bytes, NULL, "line limit stored bytes");
    rowtest_add(&t, test_header_count_edge, NULL, "header count edge");
    rowtest_add(&t, test_header_rows, NULL, "header rows");
    rowtest_add(&t, test_failure_sticks, NULL, "failure sticks");
    return rowtest_run(&t, "msgcheck");
}
