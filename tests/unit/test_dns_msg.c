/*
 * test_dns_msg — the strict DNS message reader: good messages decode to the
 * expected names and fields, and each kind of hostile message (pointer
 * loops, forward pointers, counts larger than the data, records running past
 * the end, names over 255 bytes, bad RDATA lengths) is refused with its
 * reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dnsbuild.h"
#include "dnscache/dns_msg.h"

static int parse(const struct buf *m, struct dns_msg *msg, const char **why)
{
    *why = NULL;
    return dns_msg_parse(msg, m->s, m->len, why);
}

static void expect_refused(const struct buf *m, const char *reason)
{
    struct dns_msg msg;
    const char *why;
    assert_int_equal(parse(m, &msg, &why), -1);
    assert_string_equal(why, reason);
}

static void test_a_answer_decodes(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    struct dns_rr rr;
    struct dns_rr_iter it;
    char name[DNS_NAME_TEXT_MAX + 1];
    const char *why;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "Mx.B.Test", 1);
    db_rr(&m, "mx.b.test", 1, 300);
    db_rdata_a(&m, 192, 0, 2, 1);
    assert_int_equal(parse(&m, &msg, &why), 0);
    assert_string_equal(msg.qname, "mx.b.test");
    assert_int_equal(msg.qtype, 1);
    assert_int_equal(msg.ancount, 1);
    dns_rr_iter_init(&msg, &it);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 1);
    assert_int_equal(rr.section, DNS_SECTION_ANSWER);
    assert_int_equal(rr.ttl, 300);
    assert_int_equal(rr.rdlength, 4);
    assert_int_equal(dns_name_at(&msg, rr.name_off, name, NULL, &why), 0);
    assert_string_equal(name, "mx.b.test");
    assert_int_equal((unsigned char)msg.p[rr.rdata_off], 192);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 0);
    buf_free(&m);
}

static void test_compressed_names_decode(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    struct dns_rr rr;
    struct dns_rr_iter it;
    char name[DNS_NAME_TEXT_MAX + 1];
    const char *why;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "b.test", 15); /* the name is at offset 12 */
    db_pointer(&m, 12);
    db_u16(&m, 15);
    db_u16(&m, 1);
    db_u32(&m, 60);
    db_u16(&m, 2 + 3 + 2); /* pref, "mx" label, pointer */
    db_u16(&m, 10);
    db_labels(&m, "mx");
    db_pointer(&m, 12);
    assert_int_equal(parse(&m, &msg, &why), 0);
    dns_rr_iter_init(&msg, &it);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 1);
    assert_int_equal(dns_name_at(&msg, rr.name_off, name, NULL, &why), 0);
    assert_string_equal(name, "b.test");
    assert_int_equal(dns_name_at(&msg, rr.rdata_off + 2, name, NULL, &why), 0);
    assert_string_equal(name, "mx.b.test");
    buf_free(&m);
}

static void test_odd_bytes_are_escaped(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    const char *why;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 3);
    buf_add(&m, "a.\x01", 3);
    db_labels(&m, "test");
    db_u8(&m, 0);
    db_u16(&m, 1);
    db_u16(&m, 1);
    assert_int_equal(parse(&m, &msg, &why), 0);
    assert_string_equal(msg.qname, "a\\046\\001.test");
    buf_free(&m);
}

static void test_root_name(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    const char *why;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_question(&m, ".", 2);
    assert_int_equal(parse(&m, &msg, &why), 0);
    assert_string_equal(msg.qname, ".");
    buf_free(&m);
}

static void test_ttl_with_top_bit_is_zero(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    struct dns_rr rr;
    struct dns_rr_iter it;
    const char *why;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 1);
    db_rr(&m, "a.test", 1, 0x80000001u);
    db_rdata_a(&m, 10, 0, 0, 1);
    assert_int_equal(parse(&m, &msg, &why), 0);
    dns_rr_iter_init(&msg, &it);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 1);
    assert_int_equal(rr.ttl, 0);
    buf_free(&m);
}

static void test_sections_are_told_apart(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    struct dns_rr rr;
    struct dns_rr_iter it;
    const char *why;
    db_header(&m, 0x8183, 1, 0, 1, 1);
    db_question(&m, "x.test", 1);
    db_rr(&m, "test", 6, 30);
    db_rdata_soa(&m, 20);
    db_u8(&m, 0); /* OPT: root owner */
    db_u16(&m, 41);
    db_u16(&m, 1232);
    db_u32(&m, 0);
    db_u16(&m, 0);
    assert_int_equal(parse(&m, &msg, &why), 0);
    dns_rr_iter_init(&msg, &it);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 1);
    assert_int_equal(rr.section, DNS_SECTION_AUTHORITY);
    assert_int_equal(rr.type, 6);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 1);
    assert_int_equal(rr.section, DNS_SECTION_ADDITIONAL);
    assert_int_equal(rr.type, 41);
    assert_int_equal(dns_rr_next(&msg, &it, &rr), 0);
    buf_free(&m);
}

/* ---------------------------------------------------------- hostile ---- */

static void test_shorter_than_header(void **state)
{
    struct buf m = BUF_INIT;
    buf_add(&m, "\x12\x34\x81\x80\x00", 5);
    expect_refused(&m, "shorter than a DNS header");
    buf_free(&m);
}

static void test_pointer_to_itself(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_pointer(&m, 12); /* the question name points at itself */
    db_u16(&m, 1);
    db_u16(&m, 1);
    expect_refused(&m, "compression pointer does not point backwards (loop)");
    buf_free(&m);
}

static void test_two_pointers_pointing_at_each_other(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 1);
    size_t first = m.len;
    db_pointer(&m, (unsigned)first + 2); /* forward, to the next pointer */
    db_pointer(&m, (unsigned)first);     /* and back */
    db_u16(&m, 1);
    db_u16(&m, 1);
    db_u32(&m, 1);
    db_rdata_a(&m, 1, 2, 3, 4);
    expect_refused(&m, "compression pointer does not point backwards (loop)");
    buf_free(&m);
}

static void test_label_pointer_cycle_stops_at_255(void **state)
{
    /* "a" then a pointer back to the "a": backwards each time, so only the
     * length bound ends it. */
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 1);
    db_u8(&m, 'a');
    db_pointer(&m, 12);
    db_u16(&m, 1);
    db_u16(&m, 1);
    expect_refused(&m, "too many compression pointers in a name");
    buf_free(&m);
}

static void test_long_label_cycle_stops_at_255(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 60);
    for (int i = 0; i < 60; i++)
        db_u8(&m, 'x');
    db_pointer(&m, 12);
    db_u16(&m, 1);
    db_u16(&m, 1);
    expect_refused(&m, "name longer than 255 bytes");
    buf_free(&m);
}

static void test_counts_larger_than_data(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 5, 0, 0);
    db_question(&m, "a.test", 1);
    db_rr(&m, "a.test", 1, 60);
    db_rdata_a(&m, 1, 2, 3, 4);
    expect_refused(&m, "section counts larger than the data");
    buf_free(&m);
}

static void test_rr_running_past_the_end(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 15);
    db_rr(&m, "a.test", 15, 60);
    db_u16(&m, 400); /* RDLENGTH far beyond the 5 bytes present */
    db_u16(&m, 10);
    db_u8(&m, 1);
    db_u8(&m, 'm');
    db_u8(&m, 0);
    expect_refused(&m, "record data runs past the end");
    buf_free(&m);
}

static void test_rr_header_past_the_end(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 1);
    db_name(&m, "a.test");
    db_u16(&m, 1);
    expect_refused(&m, "record header runs past the end");
    buf_free(&m);
}

static void test_name_over_255_bytes(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    for (int l = 0; l < 5; l++) { /* 5 labels of 63: 320 bytes */
        db_u8(&m, 63);
        for (int i = 0; i < 63; i++)
            db_u8(&m, 'a');
    }
    db_u8(&m, 0);
    db_u16(&m, 1);
    db_u16(&m, 1);
    expect_refused(&m, "name longer than 255 bytes");
    buf_free(&m);
}

static void test_name_of_exactly_255_bytes(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    const char *why;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    for (int l = 0; l < 3; l++) { /* 3 x 64 + 62 + 1 = 255 */
        db_u8(&m, 63);
        for (int i = 0; i < 63; i++)
            db_u8(&m, 'a');
    }
    db_u8(&m, 61);
    for (int i = 0; i < 61; i++)
        db_u8(&m, 'b');
    db_u8(&m, 0);
    db_u16(&m, 1);
    db_u16(&m, 1);
    assert_int_equal(parse(&m, &msg, &why), 0);
    assert_int_equal(strlen(msg.qname), 3 * 64 + 61);
    buf_free(&m);
}

static void test_reserved_label_type(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 0x41); /* top two bits 01: extended label type, deprecated by RFC 6891 5 */
    db_u8(&m, 'a');
    db_u8(&m, 0);
    db_u16(&m, 1);
    db_u16(&m, 1);
    expect_refused(&m, "reserved label type");
    buf_free(&m);
}

static void test_label_past_the_end(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 20);
    buf_add(&m, "abc", 3);
    expect_refused(&m, "label runs past the end");
    buf_free(&m);
}

static void test_a_rdata_of_wrong_length(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 1);
    db_rr(&m, "a.test", 1, 60);
    db_u16(&m, 5);
    buf_add(&m, "\x01\x02\x03\x04\x05", 5);
    expect_refused(&m, "A record data is not 4 bytes");
    buf_free(&m);
}

static void test_aaaa_rdata_of_wrong_length(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 28);
    db_rr(&m, "a.test", 28, 60);
    db_rdata_a(&m, 1, 2, 3, 4);
    expect_refused(&m, "AAAA record data is not 16 bytes");
    buf_free(&m);
}

static void test_mx_name_past_its_rdata(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 1);
    db_question(&m, "a.test", 15);
    db_rr(&m, "a.test", 15, 60);
    db_u16(&m, 4); /* pref + 2 bytes, but the name is longer */
    db_u16(&m, 10);
    db_name(&m, "mx.a.test"); /* its bytes continue into what follows */
    expect_refused(&m, "name runs past its record data");
    buf_free(&m);
}

static void test_bytes_after_the_mx_name(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 15);
    db_rr(&m, "a.test", 15, 60);
    db_u16(&m, 2 + db_name_len("mx.a.test") + 1);
    db_u16(&m, 10);
    db_name(&m, "mx.a.test");
    db_u8(&m, 7);
    expect_refused(&m, "bytes after the name in record data");
    buf_free(&m);
}

static void test_mx_rdata_too_short(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 1, 0, 0);
    db_question(&m, "a.test", 15);
    db_rr(&m, "a.test", 15, 60);
    db_u16(&m, 2);
    db_u16(&m, 10);
    expect_refused(&m, "MX record data too short");
    buf_free(&m);
}

static void test_soa_of_wrong_length(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8183, 1, 0, 1, 0);
    db_question(&m, "a.test", 1);
    db_rr(&m, "test", 6, 60);
    db_u16(&m, db_name_len("ns.test") + db_name_len("admin.test") + 16);
    db_name(&m, "ns.test");
    db_name(&m, "admin.test");
    for (int i = 0; i < 4; i++)
        db_u32(&m, 1);
    expect_refused(&m, "SOA record data has the wrong length");
    buf_free(&m);
}

static void test_trailing_bytes(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_question(&m, "a.test", 1);
    db_u8(&m, 0);
    expect_refused(&m, "bytes after the last record");
    buf_free(&m);
}

static void test_two_questions(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 2, 0, 0, 0);
    db_question(&m, "a.test", 1);
    db_question(&m, "b.test", 1);
    expect_refused(&m, "more than one question");
    buf_free(&m);
}

static void test_question_past_the_end(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_name(&m, "a.test");
    db_u16(&m, 1);
    expect_refused(&m, "question runs past the end");
    buf_free(&m);
}

static void test_pointer_cut_in_half(void **state)
{
    struct buf m = BUF_INIT;
    db_header(&m, 0x8180, 1, 0, 0, 0);
    db_u8(&m, 0xc0);
    expect_refused(&m, "compression pointer runs past the end");
    buf_free(&m);
}

static void test_unknown_type_and_class_skip_rdata(void **state)
{
    struct buf m = BUF_INIT;
    struct dns_msg msg;
    const char *why;
    db_header(&m, 0x8180, 1, 2, 0, 0);
    db_question(&m, "a.test", 1);
    db_rr(&m, "a.test", 99, 60);
    db_u16(&m, 3);
    buf_add(&m, "xyz", 3);
    db_name(&m, "a.test"); /* class CH A record: not checked as IN */
    db_u16(&m, 1);
    db_u16(&m, 3);
    db_u32(&m, 60);
    db_u16(&m, 2);
    buf_add(&m, "\x01\x02", 2);
    assert_int_equal(parse(&m, &msg, &why), 0);
    buf_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_answer_decodes),
        cmocka_unit_test(test_compressed_names_decode),
        cmocka_unit_test(test_odd_bytes_are_escaped),
        cmocka_unit_test(test_root_name),
        cmocka_unit_test(test_ttl_with_top_bit_is_zero),
        cmocka_unit_test(test_sections_are_told_apart),
        cmocka_unit_test(test_shorter_than_header),
        cmocka_unit_test(test_pointer_to_itself),
        cmocka_unit_test(test_two_pointers_pointing_at_each_other),
        cmocka_unit_test(test_label_pointer_cycle_stops_at_255),
        cmocka_unit_test(test_long_label_cycle_stops_at_255),
        cmocka_unit_test(test_counts_larger_than_data),
        cmocka_unit_test(test_rr_running_past_the_end),
        cmocka_unit_test(test_rr_header_past_the_end),
        cmocka_unit_test(test_name_over_255_bytes),
        cmocka_unit_test(test_name_of_exactly_255_bytes),
        cmocka_unit_test(test_reserved_label_type),
        cmocka_unit_test(test_label_past_the_end),
        cmocka_unit_test(test_a_rdata_of_wrong_length),
        cmocka_unit_test(test_aaaa_rdata_of_wrong_length),
        cmocka_unit_test(test_mx_name_past_its_rdata),
        cmocka_unit_test(test_bytes_after_the_mx_name),
        cmocka_unit_test(test_mx_rdata_too_short),
        cmocka_unit_test(test_soa_of_wrong_length),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_two_questions),
        cmocka_unit_test(test_question_past_the_end),
        cmocka_unit_test(test_pointer_cut_in_half),
        cmocka_unit_test(test_unknown_type_and_class_skip_rdata),
    };
    return cmocka_run_group_tests_name("dns_msg", tests, NULL, NULL);
}
