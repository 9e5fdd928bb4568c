/*
 * test_dnsproto — the DNS cache protocol: request name rules (one test per
 * row), every record round-trips, and decoders refuse hostile answers
 * (hosts announced but absent, partial addresses, unknown status, wrong
 * record type, truncation); the one-step answer encoder and the
 * allocation-free lookup decoder agree byte for byte with the generic codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsproto.h"
#include "mem.h"
#include "rowtest.h"

struct name_row {
    const char *in;
    const char *out; /* NULL: refused */
};

static const struct name_row name_rows[] = {
    {"Example.COM", "example.com"},
    {"example.com.", "example.com"},
    {"_dmarc.b-c.test", "_dmarc.b-c.test"},
    {"a", "a"},
    {"", NULL},
    {".", NULL},
    {"a..b", NULL},
    {".a", NULL},
    {"a b.test", NULL},
    {"a\\.b.test", NULL},
    {"xn--bcher-kva.test", "xn--bcher-kva.test"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", NULL}, /* 64 */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test"}, /* 63 */
};

static void test_name_row(void **state)
{
    const struct name_row *row = *state;
    char *s = xstrdup(row->in);
    const char *why = NULL;
    int rc = dnsp_name_normalize(s, &why);
    if (row->out) {
        assert_int_equal(rc, 0);
        assert_string_equal(s, row->out);
    } else {
        assert_int_equal(rc, -1);
        assert_non_null(why);
    }
    free(s);
}

static void test_name_of_254_characters_refused(void **state)
{
    char s[300];
    const char *why;
    for (int i = 0; i < 254; i++)
        s[i] = (i % 2) ? '.' : 'a';
    s[253] = 'a';
    s[254] = '\0';
    assert_int_equal(dnsp_name_normalize(s, &why), -1);
    s[253] = '\0';
    assert_int_equal(dnsp_name_normalize(s, &why), 0);
}

static void test_qtype_names(void **state)
{
    assert_int_equal(dnsp_qtype_parse("mx"), DNSP_QTYPE_MX);
    assert_int_equal(dnsp_qtype_parse("Route"), DNSP_QTYPE_ROUTE);
    assert_int_equal(dnsp_qtype_parse("AAAA"), DNSP_QTYPE_AAAA);
    assert_int_equal(dnsp_qtype_parse("addr"), DNSP_QTYPE_ADDR);
    assert_int_equal(dnsp_qtype_parse("rdns"), DNSP_QTYPE_RDNS);
    assert_int_equal(dnsp_qtype_parse("TXT"), 0);
    assert_string_equal(dnsp_qtype_name(DNSP_QTYPE_A), "A");
    assert_string_equal(dnsp_qtype_name(DNSP_QTYPE_ADDR), "ADDR");
    assert_string_equal(dns_status_name(DNS_STATUS_NULLMX), "null-mx");
}

/* RFC 1035 3.5 and RFC 3596 2.5 reverse names, both ways; what is not one
 * whole address is refused. */
static void test_reverse_names(void **state)
{
    static const unsigned char v4[4] = {127, 0, 0, 9};
    static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x1f};
    unsigned char got[16];
    int family = 0;
    struct buf b = BUF_INIT;
    dnsp_reverse_name(4, v4, &b);
    assert_string_equal(buf_cstr(&b), "9.0.0.127.in-addr.arpa");
    assert_int_equal(dnsp_reverse_parse(buf_cstr(&b), &family, got), 0);
    assert_int_equal(family, 4);
    assert_memory_equal(got, v4, 4);
    buf_clear(&b);
    dnsp_reverse_name(6, v6, &b);
    assert_string_equal(buf_cstr(&b),
                        "f.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_int_equal(dnsp_reverse_parse(buf_cstr(&b), &family, got), 0);
    assert_int_equal(family, 6);
    assert_memory_equal(got, v6, 16);
    static const char *const bad[] = {
        "9.0.0.in-addr.arpa",
        "256.0.0.127.in-addr.arpa",
        "09.0.0.127.in-addr.arpa",
        "9.0.0.127.0.in-addr.arpa",
        "x.0.0.127.in-addr.arpa",
        "9.0.0.127.in-addr.arpa.x",
        "0.ip6.arpa",
        "in-addr.arpa",
        "b.test",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dnsp_reverse_parse(bad[i], &family, got), -1);
    buf_free(&b);
}

static void test_lookup_round_trip(void **state)
{
    struct buf out = BUF_INIT, name = BUF_INIT;
    uint32_t id, qtype;
    const char *why;
    dnsp_put_lookup(&out, 77, DNSP_QTYPE_ROUTE, "b.test");
    assert_int_equal(dnsp_record_type(out.s, out.len), DNSP_LOOKUP);
    assert_int_equal(dnsp_get_lookup(out.s, out.len, &id, &qtype, &name, &why), 0);
    assert_int_equal(id, 77);
    assert_int_equal(qtype, DNSP_QTYPE_ROUTE);
    assert_string_equal(buf_cstr(&name), "b.test");
    buf_free(&out);
    buf_free(&name);
}

static void test_small_records_round_trip(void **state)
{
    struct buf out = BUF_INIT, s = BUF_INIT;
    uint32_t u;
    uint64_t v;
    const char *why;
    dnsp_put_dump(&out, DNSP_DUMP_ENTRIES);
    assert_int_equal(dnsp_get_dump(out.s, out.len, &u, &why), 0);
    assert_int_equal(u, DNSP_DUMP_ENTRIES);
    buf_clear(&out);
    dnsp_put_flush(&out, "");
    assert_int_equal(dnsp_get_flush(out.s, out.len, &s, &why), 0);
    assert_string_equal(buf_cstr(&s), "");
    buf_clear(&out);
    dnsp_put_counter(&out, "hits", 12345678901ULL);
    assert_int_equal(dnsp_get_counter(out.s, out.len, &s, &v, &why), 0);
    assert_string_equal(buf_cstr(&s), "hits");
    assert_int_equal(v, 12345678901ULL);
    buf_clear(&out);
    dnsp_put_end(&out, 3);
    assert_int_equal(dnsp_get_end(out.s, out.len, &u, &why), 0);
    assert_int_equal(u, 3);
    buf_clear(&out);
    dnsp_put_flushed(&out, 9);
    assert_int_equal(dnsp_get_flushed(out.s, out.len, &v, &why), 0);
    assert_int_equal(v, 9);
    buf_clear(&out);
    dnsp_put_error(&out, "bad request");
    assert_int_equal(dnsp_get_error(out.s, out.len, &s, &why), 0);
    assert_string_equal(buf_cstr(&s), "bad request");
    buf_free(&out);
    buf_free(&s);
}

static void make_route_answer(struct buf *out)
{
    unsigned char v4[8] = {127, 0, 0, 5, 127, 0, 0, 6};
    unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    struct dnsp_host hosts[2] = {
        {10, "mx1.b.test", DNS_STATUS_OK, "", 60, v4, 2, v6, 1},
        {20, "mx2.b.test", DNS_STATUS_NXDOMAIN, "no such domain", 30, NULL, 0, NULL, 0},
    };
    struct dnsp_answer a = {5,  DNSP_QTYPE_ROUTE,  "b.test", "b.test", DNS_STATUS_OK, "",
                            30, DNSP_F_FROM_CACHE, hosts,    2};
    dnsp_put_answer(out, DNSP_ANSWER, &a);
}

static void test_answer_round_trip(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a;
    const char *why;
    make_route_answer(&out);
    assert_int_equal(dnsp_get_answer(out.s, out.len, &a, &why), 0);
    assert_int_equal(a.id, 5);
    assert_int_equal(a.qtype, DNSP_QTYPE_ROUTE);
    assert_string_equal(a.name, "b.test");
    assert_int_equal(a.ttl, 30);
    assert_int_equal(a.flags, DNSP_F_FROM_CACHE);
    assert_int_equal(a.nhosts, 2);
    assert_int_equal(a.hosts[0].pref, 10);
    assert_string_equal(a.hosts[0].name, "mx1.b.test");
    assert_int_equal(a.hosts[0].nv4, 2);
    assert_int_equal(a.hosts[0].v4[7], 6);
    assert_int_equal(a.hosts[0].nv6, 1);
    assert_int_equal(a.hosts[0].v6[15], 1);
    assert_int_equal(a.hosts[1].status, DNS_STATUS_NXDOMAIN);
    assert_string_equal(a.hosts[1].reason, "no such domain");
    assert_null(a.hosts[1].v4);
    dnsp_answer_free(&a);
    buf_free(&out);
}

static void test_answer_truncated_everywhere_is_refused(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a;
    const char *why;
    make_route_answer(&out);
    for (size_t n = 0; n < out.len; n++)
        assert_int_equal(dnsp_get_answer(out.s, n, &a, &why), -1);
    buf_free(&out);
}

static void test_hosts_announced_but_absent(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a = {1, DNSP_QTYPE_MX, "b.test", "b.test", DNS_STATUS_OK, "", 1, 0, NULL, 0};
    struct ipc_writer w;
    const char *why;
    dnsp_answer_begin(&w, &out, DNSP_ANSWER, &a);
    ipc_finish(&w);
    out.s[out.len - 1] = 100; /* nhosts = 100, no host fields */
    assert_int_equal(dnsp_get_answer(out.s, out.len, &a, &why), -1);
    assert_string_equal(why, "more hosts announced than present");
    buf_free(&out);
}

static void test_partial_address_refused(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a = {1, DNSP_QTYPE_A, "h.test", "h.test", DNS_STATUS_OK, "", 1, 0, NULL, 1};
    struct ipc_writer w;
    const char *why;
    dnsp_answer_begin(&w, &out, DNSP_ANSWER, &a);
    ipc_add_u32(&w, 0);
    ipc_add_str(&w, "h.test");
    ipc_add_u32(&w, 0);
    ipc_add_str(&w, "");
    ipc_add_u32(&w, 1);
    ipc_add_bytes(&w, "\x01\x02\x03", 3);
    ipc_add_bytes(&w, "", 0);
    ipc_finish(&w);
    assert_int_equal(dnsp_get_answer(out.s, out.len, &a, &why), -1);
    assert_string_equal(why, "address list of partial addresses");
    buf_free(&out);
}

static void test_unknown_status_refused(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a = {1, DNSP_QTYPE_A, "h.test", "h.test", 99, "", 1, 0, NULL, 0};
    const char *why;
    dnsp_put_answer(&out, DNSP_ANSWER, &a);
    assert_int_equal(dnsp_get_answer(out.s, out.len, &a, &why), -1);
    assert_string_equal(why, "unknown DNS status");
    buf_free(&out);
}

static void test_wrong_record_type_refused(void **state)
{
    struct buf out = BUF_INIT;
    uint32_t u;
    const char *why;
    dnsp_put_end(&out, 1);
    assert_int_equal(dnsp_get_dump(out.s, out.len, &u, &why), -1);
    assert_string_equal(why, "unexpected record type");
    buf_free(&out);
}

static void test_entry_decodes_as_answer(void **state)
{
    struct buf out = BUF_INIT;
    struct dnsp_answer a = {0, DNSP_QTYPE_MX, "b.test", "b.test", DNS_STATUS_NODATA, "x", 5,
                            1, NULL,          0};
    const char *why;
    dnsp_put_answer(&out, DNSP_ENTRY, &a);
    assert_int_equal(dnsp_record_type(out.s, out.len), DNSP_ENTRY);
    assert_int_equal(dnsp_get_answer(out.s, out.len, &a, &why), 0);
    assert_int_equal(a.status, DNS_STATUS_NODATA);
    dnsp_answer_free(&a);
    buf_free(&out);
}

/* dnsp_put_answer() writes in one step what the two-step writer writes. */
static void test_answer_same_bytes_as_generic_writer(void **state)
{
    unsigned char v4[8] = {127, 0, 0, 5, 127, 0, 0, 6};
    unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    struct dnsp_host hosts[2] = {
        {10, "mx1.b.test", DNS_STATUS_OK, "", 60, v4, 2, v6, 1},
        {20, NULL, DNS_STATUS_NXDOMAIN, "no such domain", 30, NULL, 0, NULL, 0},
    };
    struct dnsp_answer answers[] = {
        {5, DNSP_QTYPE_ROUTE, "b.test", "c.test", DNS_STATUS_OK, "", 30, 1, hosts, 2},
        {6, DNSP_QTYPE_A, "h.test", "h.test", DNS_STATUS_OK, NULL, 7, 1, hosts, 1},
        {7, DNSP_QTYPE_MX, NULL, NULL, DNS_STATUS_TEMPFAIL, "timeout", 0, 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        struct buf fast = BUF_INIT, slow = BUF_INIT;
        struct ipc_writer w;
        buf_adds(&fast, "prefix");
        buf_adds(&slow, "prefix");
        dnsp_put_answer(&fast, DNSP_ENTRY, &answers[i]);
        dnsp_answer_begin(&w, &slow, DNSP_ENTRY, &answers[i]);
        for (size_t h = 0; h < answers[i].nhosts; h++)
            dnsp_answer_add_host(&w, &answers[i].hosts[h]);
        ipc_finish(&w);
        assert_int_equal(fast.len, slow.len);
        assert_memory_equal(fast.s, slow.s, slow.len);
        assert_int_equal(fast.s[fast.len], '\0');
        buf_free(&fast);
        buf_free(&slow);
    }
}

/* dnsp_get_lookup_name() and dnsp_get_lookup() give the same verdict, id,
 * type, name and reason, on good and on damaged records. */
static void check_lookup_decoders_agree(const struct buf *rec)
{
    struct buf name = BUF_INIT;
    char fast[DNSP_NAME_MAX + 2];
    uint32_t id1 = 0, qtype1 = 0, id2 = 0, qtype2 = 0;
    const char *why1 = NULL, *why2 = NULL;
    int rc1 = dnsp_get_lookup(rec->s, rec->len, &id1, &qtype1, &name, &why1);
    int rc2 = dnsp_get_lookup_name(rec->s, rec->len, &id2, &qtype2, fast, &why2);
    assert_int_equal(rc1, rc2);
    if (rc1 == 0) {
        assert_int_equal(id1, id2);
        assert_int_equal(qtype1, qtype2);
        assert_string_equal(buf_cstr(&name), fast);
    } else {
        assert_string_equal(why1, why2);
    }
    buf_free(&name);
}

static void test_lookup_name_decoder_agrees(void **state)
{
    char longest[DNSP_NAME_MAX + 3];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    struct buf rec = BUF_INIT;
    struct ipc_writer w;
    /* well formed, the longest name accepted (254), one too long (255) */
    dnsp_put_lookup(&rec, 0xdeadbeef, DNSP_QTYPE_AAAA, "mx.b.test");
    check_lookup_decoders_agree(&rec);
    longest[DNSP_NAME_MAX + 1] = '\0';
    buf_clear(&rec);
    dnsp_put_lookup(&rec, 1, DNSP_QTYPE_A, longest);
    check_lookup_decoders_agree(&rec);
    longest[DNSP_NAME_MAX + 1] = 'a';
    buf_clear(&rec);
    dnsp_put_lookup(&rec, 1, DNSP_QTYPE_A, longest);
    check_lookup_decoders_agree(&rec);
    /* a NUL inside the name */
    buf_clear(&rec);
    dnsp_put_lookup(&rec, 1, DNSP_QTYPE_A, "ab.test");
    rec.s[rec.len - 5] = '\0';
    check_lookup_decoders_agree(&rec);
    /* every truncation, and a length field that lies */
    struct buf whole = BUF_INIT;
    dnsp_put_lookup(&whole, 2, DNSP_QTYPE_MX, "b.test");
    for (size_t n = 0; n < whole.len; n++) {
        buf_set(&rec, whole.s, n);
        check_lookup_decoders_agree(&rec);
    }
    buf_set(&rec, whole.s, whole.len);
    rec.s[3]++;
    check_lookup_decoders_agree(&rec);
    /* a fourth field; a field of the wrong type; another record type */
    buf_clear(&rec);
    ipc_begin(&w, &rec, DNSP_LOOKUP);
    ipc_add_u32(&w, 3);
    ipc_add_u32(&w, DNSP_QTYPE_A);
    ipc_add_str(&w, "b.test");
    ipc_add_u32(&w, 0);
    ipc_finish(&w);
    check_lookup_decoders_agree(&rec);
    buf_clear(&rec);
    ipc_begin(&w, &rec, DNSP_LOOKUP);
    ipc_add_u32(&w, 3);
    ipc_add_u64(&w, DNSP_QTYPE_A);
    ipc_add_str(&w, "b.test");
    ipc_finish(&w);
    check_lookup_decoders_agree(&rec);
    buf_clear(&rec);
    dnsp_put_flush(&rec, "b.test");
    check_lookup_decoders_agree(&rec);
    buf_free(&whole);
    buf_free(&rec);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(name_rows); i++)
        rowtest_add(&t, test_name_row, &name_rows[i], "name \"%s\"", name_rows[i].in);
    rowtest_add(&t, test_name_of_254_characters_refused, NULL, "name of 254 characters");
    rowtest_add(&t, test_qtype_names, NULL, "qtype and status names");
    rowtest_add(&t, test_reverse_names, NULL, "reverse names (in-addr.arpa, ip6.arpa)");
    rowtest_add(&t, test_lookup_round_trip, NULL, "lookup round trip");
    rowtest_add(&t, test_small_records_round_trip, NULL, "small records round trip");
    rowtest_add(&t, test_answer_round_trip, NULL, "answer round trip");
    rowtest_add(&t, test_answer_truncated_everywhere_is_refused, NULL, "truncated answers");
    rowtest_add(&t, test_hosts_announced_but_absent, NULL, "hosts announced but absent");
    rowtest_add(&t, test_partial_address_refused, NULL, "partial address");
    rowtest_add(&t, test_unknown_status_refused, NULL, "unknown status");
    rowtest_add(&t, test_wrong_record_type_refused, NULL, "wrong record type");
    rowtest_add(&t, test_entry_decodes_as_answer, NULL, "entry decodes as answer");
    rowtest_add(&t, test_answer_same_bytes_as_generic_writer, NULL,
                "answer: same bytes as the generic writer");
    rowtest_add(&t, test_lookup_name_decoder_agrees, NULL, "lookup decoders agree");
    return rowtest_run(&t, "dnsproto");
}
