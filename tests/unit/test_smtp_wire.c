/*
 * test_smtp_wire — golden rows for daemons/remote/smtp_wire.c: replies
 * (single, multi-line, split across reads, refused forms), EHLO keywords,
 * and the wire form of stored content (CRLF, dot-stuffing, the end).
 */
#include "rowtest.h"

#include <string.h>

#include "remote/smtp_wire.h"

struct reply_row {
    const char *in;
    int rc; /* of the first smtp_reader_next */
    int code;
    const char *text; /* or the error */
};

static const struct reply_row reply_rows[] = {
    {"250 2.0.0 Ok\r\n", 1, 250, "250 2.0.0 Ok"},
    {"250-first\r\n250-second\r\n250 third\r\n", 1, 250, "250 first second third"},
    {"220\r\n", 1, 220, "220"},
    {"354 go ahead\n", 1, 354, "354 go ahead"}, /* a bare LF is taken */
    {"250-first\r\n", 0, 0, NULL},
    {"250 partial", 0, 0, NULL},
    {"250-a\r\n251 b\r\n", -1, 0, "reply lines with different codes"},
    {"ok\r\n", -1, 0, "malformed reply line"},
    {"650 x\r\n", -1, 0, "malformed reply line"},
    {"250x\r\n", -1, 0, "malformed reply line"},
};

static void test_reply(void **state)
{
    const struct reply_row *row = *state;
    struct smtp_reader r;
    struct smtp_reply rep = {0};
    const char *why = NULL;
    smtp_reader_init(&r);
    /* fed one byte at a time: a reply split across reads is the same reply */
    for (const char *p = row->in; *p; p++)
        smtp_reader_feed(&r, p, 1);
    int rc = smtp_reader_next(&r, &rep, &why);
    assert_int_equal(rc, row->rc);
    if (rc == 1) {
        assert_int_equal(rep.code, row->code);
        assert_string_equal(rep.text.s, row->text);
    } else if (rc < 0) {
        assert_string_equal(why, row->text);
    }
    smtp_reply_free(&rep);
    smtp_reader_free(&r);
}

static void test_reply_too_long(void **state)
{
    struct smtp_reader r;
    struct smtp_reply rep = {0};
    const char *why = NULL;
    smtp_reader_init(&r);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    smtp_reader_feed(&r, "250 ", 4);
    for (int i = 0; i < 70; i++)
        smtp_reader_feed(&r, chunk, sizeof(chunk));
    assert_int_equal(smtp_reader_next(&r, &rep, &why), -1);
    assert_string_equal(why, "reply line too long");
    smtp_reply_free(&rep);
    smtp_reader_free(&r);
}

static void test_two_replies_in_one_read(void **state)
{
    struct smtp_reader r;
    struct smtp_reply rep = {0};
    const char *why;
    smtp_reader_init(&r);
    smtp_reader_feed(&r, "250 ok\r\n550 5.1.1 no\r\n", 22);
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 1);
    assert_int_equal(rep.code, 250);
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 1);
    assert_int_equal(rep.code, 550);
    assert_string_equal(rep.text.s, "550 5.1.1 no");
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 0);
    smtp_reply_free(&rep);
    smtp_reader_free(&r);
}

static void test_ehlo_keywords(void **state)
{
    struct smtp_reader r;
    struct smtp_reply rep = {0};
    struct smtp_ext ext;
    const char *why;
    const char *in = "250-mx.b.test greets you\r\n250-PIPELINING\r\n250-size 10240000\r\n"
                     "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-PIPELININGX\r\n"
                     "250-SMTPUTF8\r\n250 STARTTLS\r\n";
    smtp_reader_init(&r);
    smtp_reader_feed(&r, in, strlen(in));
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 1);
    smtp_ext_parse(&rep, &ext);
    assert_true(ext.pipelining && ext.eightbitmime && ext.enhancedstatuscodes && ext.dsn);
    assert_true(ext.starttls && ext.has_size && ext.smtputf8);
    assert_int_equal(ext.size, 10240000);
    smtp_reader_feed(&r, "250-x\r\n250 SIZE\r\n", 17);
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 1);
    smtp_ext_parse(&rep, &ext);
    assert_true(ext.has_size && ext.size == 0 && !ext.pipelining && !ext.starttls && !ext.smtputf8);
    /* the greeting line is the server's name, not a keyword */
    smtp_reader_feed(&r, "250 PIPELINING\r\n", 16);
    assert_int_equal(smtp_reader_next(&r, &rep, &why), 1);
    smtp_ext_parse(&rep, &ext);
    assert_false(ext.pipelining);
    smtp_reply_free(&rep);
    smtp_reader_free(&r);
}

struct dot_row {
    const char *in;
    const char *wire;
    size_t split; /* encoded in two calls, cut here (0: one call) */
};

static const struct dot_row dot_rows[] = {
    {"a\nb\n", "a\r\nb\r\n.\r\n", 0},
    {".x\n..y\nz.\n", "..x\r\n...y\r\nz.\r\n.\r\n", 0},
    {"no end", "no end\r\n.\r\n", 0},
    {"", ".\r\n", 0},
    {".\n", "..\r\n.\r\n", 0},
    {"ab\n.cd\n", "ab\r\n..cd\r\n.\r\n", 3}, /* the dot starts the second chunk */
    {"ab.\ncd\n", "ab.\r\ncd\r\n.\r\n", 2},  /* a dot inside a line that spans chunks */
};

static void test_dot(void **state)
{
    const struct dot_row *row = *state;
    struct smtp_dot d;
    struct buf out = BUF_INIT;
    size_t n = strlen(row->in);
    smtp_dot_init(&d);
    if (row->split) {
        smtp_dot_encode(&d, row->in, row->split, &out);
        smtp_dot_encode(&d, row->in + row->split, n - row->split, &out);
    } else {
        smtp_dot_encode(&d, row->in, n, &out);
    }
    smtp_dot_finish(&d, &out);
    assert_int_equal(out.len, strlen(row->wire));
    assert_memory_equal(out.s, row->wire, out.len);
    buf_free(&out);
}

static void test_wire_size(void **state)
{
    struct smtp_scan sc;
    smtp_scan_init(&sc);
    assert_int_equal(smtp_wire_size("a\nbc\n", 5, &sc), 7);
    assert_int_equal(sc.eightbit, 0);
    assert_int_equal(smtp_wire_size("\xc3\xa9\n", 3, &sc), 4);
    assert_int_equal(sc.eightbit, 1);
    assert_int_equal(sc.header_8bit, 1); /* no empty line yet: still the header */
}

/* 8-bit bytes in the body only are not UTF-8 header fields; the empty
 * line that ends the header may fall between two chunks. */
static void test_header_8bit(void **state)
{
    struct smtp_scan sc;
    smtp_scan_init(&sc);
    const char *head = "Subject: x\n", *body = "\ncaf\xc3\xa9\n",
               *both = "Subject: caf\xc3\xa9\n\nbody\n";
    smtp_wire_size(head, strlen(head), &sc);
    smtp_wire_size(body, strlen(body), &sc);
    assert_true(sc.eightbit && !sc.header_8bit);
    smtp_scan_init(&sc);
    smtp_wire_size(both, strlen(both), &sc);
    assert_true(sc.eightbit && sc.header_8bit);
    assert_false(smtp_text_is_utf8("bob@b.test"));
    assert_true(smtp_text_is_utf8("j\xc3\xb6rg@b.test"));
}

/* The reference: the scan byte by byte, as the rules say it. */
static uint64_t wire_size_bytewise(const char *p, size_t n, struct smtp_scan *sc)
{
    uint64_t size = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') {
            size++;
            if (sc->at_line_start)
                sc->in_header = 0;
            sc->at_line_start = 1;
            continue;
        }
        sc->at_line_start = 0;
        if (c & 0x80) {
            sc->eightbit = 1;
            sc->header_8bit |= sc->in_header;
        }
    }
    return size;
}

/* Pseudo-random contents (LF-heavy, empty lines, 8-bit bytes in the header
 * or the body or nowhere, long lines) cut into chunks of every size from 1
 * to 40: the same size and the same findings as the byte-by-byte scan. */
static void test_wire_size_matches_bytewise_in_any_chunks(void **state)
{
    uint32_t seed = 12345;
    char text[600];
    for (int round = 0; round < 300; round++) {
        for (size_t i = 0; i < sizeof(text); i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 64;
            text[i] = r < 6 ? '\n' : r == 7 && round % 3 ? (char)0xc3 : (char)('a' + r % 26);
        }
        size_t n = 20 + (size_t)round * 577 % (sizeof(text) - 20);
        for (size_t chunk = 1; chunk <= 40; chunk++) {
            struct smtp_scan a, b;
            smtp_scan_init(&a);
            smtp_scan_init(&b);
            uint64_t sa = 0, sb = 0;
            for (size_t at = 0; at < n; at += chunk) {
                size_t len = n - at < chunk ? n - at : chunk;
                sa += smtp_wire_size(text + at, len, &a);
                sb += wire_size_bytewise(text + at, len, &b);
            }
            assert_int_equal(sa, sb);
            assert_int_equal(a.at_line_start, b.at_line_start);
            assert_int_equal(a.in_header, b.in_header);
            assert_int_equal(a.eightbit, b.eightbit);
            assert_int_equal(a.header_8bit, b.header_8bit);
        }
    }
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(reply_rows); i++)
        rowtest_add(&t, test_reply, &reply_rows[i], "reply %s", reply_rows[i].in);
    rowtest_add(&t, test_reply_too_long, NULL, "reply over SMTP_REPLY_MAX");
    rowtest_add(&t, test_two_replies_in_one_read, NULL, "two replies in one read");
    rowtest_add(&t, test_ehlo_keywords, NULL, "EHLO keywords");
    rowtest_add(&t, test_header_8bit, NULL, "8-bit bytes in the header, in the body");
    for (size_t i = 0; i < ROWS(dot_rows); i++)
        rowtest_add(&t, test_dot, &dot_rows[i], "wire form of %s", dot_rows[i].in);
    rowtest_add(&t, test_wire_size, NULL, "wire size and 8-bit");
    rowtest_add(&t, test_wire_size_matches_bytewise_in_any_chunks, NULL,
                "wire size as the byte-by-byte scan, in chunks of 1 to 40");
    return rowtest_run(&t, "smtp_wire");
}
