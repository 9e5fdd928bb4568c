/*
 * test_ipc — the typed record codec (common/ipc.h): the exact wire bytes,
 * round trips of every field type, and every way a hostile record can be
 * wrong (truncated at each byte, too long, unknown tag, wrong type, field
 * count off, NUL in a string, over a limit), framing, and the blocking
 * helpers over a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "ipc.h"
#include "mem.h"

/* ---------------------------------------------------------------- helpers ---- */

static void patch_be32(struct buf *b, size_t at, uint32_t v)
{
    b->s[at] = (char)(v >> 24);
    b->s[at + 1] = (char)(v >> 16);
    b->s[at + 2] = (char)(v >> 8);
    b->s[at + 3] = (char)v;
}

static void patch_be16(struct buf *b, size_t at, uint16_t v)
{
    b->s[at] = (char)(v >> 8);
    b->s[at + 1] = (char)v;
}

/* One record holding every field type: u32, u64, str, bytes. */
static const unsigned char bin[] = {0x00, 0xff, 0x00, 0x7f};

static void make_all_types(struct buf *b)
{
    struct ipc_writer w;
    ipc_begin(&w, b, 42);
    ipc_add_u32(&w, 0xdeadbeef);
    ipc_add_u64(&w, 0x0102030405060708ull);
    ipc_add_str(&w, "hello");
    ipc_add_bytes(&w, bin, sizeof(bin));
    ipc_finish(&w);
}

/* Read the all-types record; returns the result of ipc_end, or -1 at the
 * first failing get. */
static int read_all_types(struct ipc_reader *r)
{
    uint32_t a;
    uint64_t b;
    const char *s;
    const void *p;
    size_t n;
    if (ipc_get_u32(r, &a) || ipc_get_u64(r, &b) || ipc_get_str(r, 100, &s) ||
        ipc_get_bytes(r, 100, &p, &n))
        return -1;
    return ipc_end(r);
}

static void expect_error(struct ipc_reader *r, const char *want)
{
    assert_non_null(r->error);
    assert_string_equal(r->error, want);
}

/* ------------------------------------------------------------ wire format ---- */

static void test_golden_bytes(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    buf_adds(&b, "xy"); /* a record appended after other bytes */
    ipc_begin(&w, &b, 0x1234);
    ipc_add_u32(&w, 0xdeadbeef);
    ipc_add_str(&w, "ab");
    ipc_add_u64(&w, 1);
    ipc_add_bytes(&w, "\0", 1);
    ipc_finish(&w);
    static const unsigned char want[] = {
        'x',  'y',                                            /* earlier content */
        0x00, 0x00, 0x00, 0x23, 0x12, 0x34, 0x00, 0x04,       /* length 35, type, 4 */
        0x01, 0xde, 0xad, 0xbe, 0xef,                         /* u32 */
        0x03, 0x00, 0x00, 0x00, 0x02, 'a',  'b',              /* str "ab" */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* u64 1 */
        0x04, 0x00, 0x00, 0x00, 0x01, 0x00,                   /* bytes "\0" */
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.s, want, sizeof(want));
    buf_free(&b);
}

static void test_empty_record(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 7);
    ipc_finish(&w);
    assert_int_equal(b.len, IPC_HEADER_SIZE);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(r.type, 7);
    assert_int_equal(r.nfields, 0);
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);
    buf_free(&b);
}

/* ------------------------------------------------------------ round trips ---- */

static void test_round_trip_u32(void **state)
{
    static const uint32_t v[] = {0, 1, 0x7f, 0x80, 0xffff, 0x10000, 0xdeadbeef, UINT32_MAX};
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 1);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        ipc_add_u32(&w, v[i]);
    ipc_finish(&w);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint32_t got = 12345;
        assert_int_equal(ipc_get_u32(&r, &got), 0);
        assert_int_equal(got, v[i]);
    }
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);
    buf_free(&b);
}

static void test_round_trip_u64(void **state)
{
    static const uint64_t v[] = {0,         1, 0xffffffffull, 0x100000000ull, 0x0102030405060708ull,
                                 UINT64_MAX};
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 2);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        ipc_add_u64(&w, v[i]);
    ipc_finish(&w);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint64_t got = 12345;
        assert_int_equal(ipc_get_u64(&r, &got), 0);
        assert_true(got == v[i]);
    }
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);
    buf_free(&b);
}

/* Many strings: every pointer stays valid until ipc_close (no reallocation). */
static void test_round_trip_str(void **state)
{
    enum { NSTR = 300 };
    struct buf b = BUF_INIT, big = BUF_INIT, want[NSTR];
    struct ipc_writer w;
    struct ipc_reader r;
    const char *got[NSTR];
    for (size_t i = 0; i < 100000; i++)
        buf_addc(&big, (char)('a' + i % 26));
    ipc_begin(&w, &b, 3);
    for (size_t i = 0; i < NSTR; i++) {
        want[i] = (struct buf)BUF_INIT;
        if (i == 7)
            buf_adds(&want[i], buf_cstr(&big));
        else if (i % 5 != 0)
            buf_printf(&want[i], "string %zu \xc3\xa9 \x01", i);
        ipc_add_str(&w, buf_cstr(&want[i]));
    }
    ipc_finish(&w);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    for (size_t i = 0; i < NSTR; i++)
        assert_int_equal(ipc_get_str(&r, 200000, &got[i]), 0);
    assert_int_equal(ipc_end(&r), 0);
    for (size_t i = 0; i < NSTR; i++) {
        assert_string_equal(got[i], buf_cstr(&want[i]));
        buf_free(&want[i]);
    }
    ipc_close(&r);
    buf_free(&b);
    buf_free(&big);
}

static void test_round_trip_bytes(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    unsigned char all[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)i;
    ipc_begin(&w, &b, 4);
    ipc_add_bytes(&w, all, sizeof(all));
    ipc_add_bytes(&w, NULL, 0);
    ipc_finish(&w);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    const void *p;
    size_t n;
    assert_int_equal(ipc_get_bytes(&r, 256, &p, &n), 0);
    assert_int_equal(n, 256);
    assert_memory_equal(p, all, 256);
    assert_int_equal(ipc_get_bytes(&r, 0, &p, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);
    buf_free(&b);
}

static void test_round_trip_mixed(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(r.type, 42);
    assert_int_equal(r.nfields, 4);
    uint32_t a;
    uint64_t c;
    const char *s;
    const void *p;
    size_t n;
    assert_int_equal(ipc_get_u32(&r, &a), 0);
    assert_int_equal(ipc_get_u64(&r, &c), 0);
    assert_int_equal(ipc_get_str(&r, 5, &s), 0);
    assert_int_equal(ipc_get_bytes(&r, 4, &p, &n), 0);
    assert_int_equal(ipc_end(&r), 0);
    assert_int_equal(a, 0xdeadbeef);
    assert_true(c == 0x0102030405060708ull);
    assert_string_equal(s, "hello");
    assert_int_equal(n, sizeof(bin));
    assert_memory_equal(p, bin, sizeof(bin));
    assert_null(r.error);
    ipc_close(&r);
    buf_free(&b);
}

/* ------------------------------------------------------ hostile records ---- */

/* A prefix of a record is never a record: framing wants more, open fails. */
static void test_truncated_at_every_offset(void **state)
{
    struct buf b = BUF_INIT;
    make_all_types(&b);
    for (size_t k = 0; k < b.len; k++) {
        struct ipc_reader r;
        size_t reclen = 999;
        const char *why = NULL;
        char *copy = xmalloc(k ? k : 1); /* exactly k bytes: over-reads are ASan errors */
        memcpy(copy, b.s, k);
        assert_int_equal(ipc_frame(copy, k, 0, &reclen, &why), 0);
        assert_int_equal(reclen, 999);
        assert_int_equal(ipc_open(&r, copy, k), -1);
        assert_int_equal(read_all_types(&r), -1);
        assert_int_equal(ipc_end(&r), -1);
        ipc_close(&r);
        free(copy);
    }
    buf_free(&b);
}

/* The header claims exactly k bytes, so the record opens, but a field runs
 * past its end: some get or ipc_end must fail, never read beyond k. */
static void test_truncated_consistent_header(void **state)
{
    struct buf b = BUF_INIT;
    make_all_types(&b);
    for (size_t k = IPC_HEADER_SIZE; k < b.len; k++) {
        struct ipc_reader r;
        char *copy = xmalloc(k);
        memcpy(copy, b.s, k);
        copy[0] = (char)(k >> 24), copy[1] = (char)(k >> 16);
        copy[2] = (char)(k >> 8), copy[3] = (char)k;
        assert_int_equal(ipc_open(&r, copy, k), 0);
        assert_int_equal(read_all_types(&r), -1);
        assert_non_null(r.error);
        ipc_close(&r);
        free(copy);
    }
    buf_free(&b);
}

static void test_trailing_bytes(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    buf_addc(&b, 0);
    patch_be32(&b, 0, (uint32_t)b.len);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(read_all_types(&r), -1);
    expect_error(&r, "record has bytes after its last field");
    ipc_close(&r);
    buf_free(&b);
}

static void test_header_length_mismatch(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    patch_be32(&b, 0, (uint32_t)b.len - 1);
    assert_int_equal(ipc_open(&r, b.s, b.len), -1);
    expect_error(&r, "record length does not match its header");
    ipc_close(&r);
    assert_int_equal(ipc_open(&r, b.s, 3), -1);
    expect_error(&r, "record shorter than its header");
    ipc_close(&r);
    buf_free(&b);
}

static void expect_unknown_tag(unsigned char tag)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    b.s[IPC_HEADER_SIZE] = (char)tag;
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    uint32_t v = 5;
    assert_int_equal(ipc_get_u32(&r, &v), -1);
    assert_int_equal(v, 5);
    expect_error(&r, "unknown field tag");
    ipc_close(&r);
    buf_free(&b);
}

static void test_unknown_tag(void **state)
{
    expect_unknown_tag(0);
    expect_unknown_tag(5);
    expect_unknown_tag(0x81);
    expect_unknown_tag(0xff);
}

/* Each type asked of a field of each other type fails, and the error sticks. */
static void test_wrong_type_requested(void **state)
{
    static const enum ipc_tag tags[] = {IPC_U32, IPC_U64, IPC_STR, IPC_BYTES};
    for (size_t have = 0; have < 4; have++) {
        for (size_t want = 0; want < 4; want++) {
            struct buf b = BUF_INIT;
            struct ipc_writer w;
            struct ipc_reader r;
            ipc_begin(&w, &b, 1);
            if (tags[have] == IPC_U32)
                ipc_add_u32(&w, 1);
            else if (tags[have] == IPC_U64)
                ipc_add_u64(&w, 1);
            else if (tags[have] == IPC_STR)
                ipc_add_str(&w, "s");
            else
                ipc_add_bytes(&w, "b", 1);
            ipc_finish(&w);
            assert_int_equal(ipc_open(&r, b.s, b.len), 0);
            uint32_t u32;
            uint64_t u64;
            const char *s;
            const void *p;
            size_t n;
            int rc = tags[want] == IPC_U32   ? ipc_get_u32(&r, &u32)
                     : tags[want] == IPC_U64 ? ipc_get_u64(&r, &u64)
                     : tags[want] == IPC_STR ? ipc_get_str(&r, 10, &s)
                                             : ipc_get_bytes(&r, 10, &p, &n);
            assert_int_equal(rc, have == want ? 0 : -1);
            assert_int_equal(ipc_end(&r), have == want ? 0 : -1);
            if (have != want)
                expect_error(&r, "field is not of the type expected");
            ipc_close(&r);
            buf_free(&b);
        }
    }
}

static void test_error_is_sticky(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    uint64_t wrong;
    uint32_t right = 77;
    assert_int_equal(ipc_get_u64(&r, &wrong), -1);
    /* the right type at the same place no longer succeeds */
    assert_int_equal(ipc_get_u32(&r, &right), -1);
    assert_int_equal(right, 77);
    assert_int_equal(ipc_end(&r), -1);
    expect_error(&r, "field is not of the type expected");
    ipc_close(&r);
    buf_free(&b);
}

static void test_too_many_fields_read(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 1);
    ipc_add_u32(&w, 1);
    ipc_finish(&w);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    uint32_t v;
    assert_int_equal(ipc_get_u32(&r, &v), 0);
    assert_int_equal(ipc_get_u32(&r, &v), -1);
    expect_error(&r, "more fields read than the record holds");
    ipc_close(&r);
    buf_free(&b);
}

static void test_too_few_fields_read(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    uint32_t v;
    assert_int_equal(ipc_get_u32(&r, &v), 0);
    assert_int_equal(ipc_end(&r), -1);
    expect_error(&r, "record has fields left unread");
    ipc_close(&r);
    buf_free(&b);
}

/* nfields in the header larger or smaller than the fields present. */
static void test_nfields_wrong_in_header(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    make_all_types(&b);
    patch_be16(&b, 6, 5);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(read_all_types(&r), -1);
    expect_error(&r, "record has fields left unread");
    ipc_close(&r);

    patch_be16(&b, 6, 3);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(read_all_types(&r), -1);
    expect_error(&r, "more fields read than the record holds");
    ipc_close(&r);
    buf_free(&b);
}

static void test_header_claims_field_past_end(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 1);
    ipc_add_u32(&w, 1);
    ipc_finish(&w);
    patch_be16(&b, 6, 2);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    uint32_t v;
    assert_int_equal(ipc_get_u32(&r, &v), 0);
    assert_int_equal(ipc_get_u32(&r, &v), -1);
    expect_error(&r, "record ends before its last field");
    ipc_close(&r);
    buf_free(&b);
}

/* A string's own length runs past the record. */
static void test_string_length_past_end(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 1);
    ipc_add_str(&w, "abc");
    ipc_finish(&w);
    patch_be32(&b, IPC_HEADER_SIZE + 1, 4);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    const char *s = "untouched";
    assert_int_equal(ipc_get_str(&r, 100, &s), -1);
    assert_string_equal(s, "untouched");
    expect_error(&r, "field runs past the end of the record");
    ipc_close(&r);
    patch_be32(&b, IPC_HEADER_SIZE + 1, UINT32_MAX);
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(ipc_get_str(&r, SIZE_MAX, &s), -1);
    expect_error(&r, "field runs past the end of the record");
    ipc_close(&r);
    buf_free(&b);
}

static void test_string_with_nul(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    ipc_begin(&w, &b, 1);
    ipc_add_bytes(&w, "a\0b", 3);
    ipc_finish(&w);
    b.s[IPC_HEADER_SIZE] = IPC_STR; /* the same bytes, now claimed to be a string */
    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    const char *s = "untouched";
    assert_int_equal(ipc_get_str(&r, 100, &s), -1);
    assert_string_equal(s, "untouched");
    expect_error(&r, "string contains a NUL byte");
    assert_int_equal(ipc_end(&r), -1);
    ipc_close(&r);
    buf_free(&b);
}

static void test_max_honoured(void **state)
{
    struct buf b = BUF_INIT;
    struct ipc_writer w;
    struct ipc_reader r;
    const char *s;
    const void *p;
    size_t n;
    ipc_begin(&w, &b, 1);
    ipc_add_str(&w, "hello");
    ipc_add_bytes(&w, "12345678", 8);
    ipc_finish(&w);

    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(ipc_get_str(&r, 4, &s), -1);
    expect_error(&r, "string longer than allowed");
    ipc_close(&r);

    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(ipc_get_str(&r, 5, &s), 0);
    assert_int_equal(ipc_get_bytes(&r, 7, &p, &n), -1);
    expect_error(&r, "bytes longer than allowed");
    ipc_close(&r);

    assert_int_equal(ipc_open(&r, b.s, b.len), 0);
    assert_int_equal(ipc_get_str(&r, 5, &s), 0);
    assert_int_equal(ipc_get_bytes(&r, 8, &p, &n), 0);
    assert_int_equal(ipc_end(&r), 0);
    ipc_close(&r);
    buf_free(&b);
}

/* ----------------------------------------------------------------- framing ---- */

static void test_frame(void **state)
{
    unsigned char rec[32] = {0};
    size_t reclen = 0;
    const char *why = NULL;

    assert_int_equal(ipc_frame(rec, 0, 0, &reclen, &why), 0);
    assert_int_equal(ipc_frame(rec, 3, 0, &reclen, &why), 0);
    /* length 0 and 7: below the header */
    assert_int_equal(ipc_frame(rec, 4, 0, &reclen, &why), -1);
    assert_string_equal(why, "record length shorter than its header");
    rec[3] = 7;
    why = NULL;
    assert_int_equal(ipc_frame(rec, 32, 0, &reclen, &why), -1);
    assert_string_equal(why, "record length shorter than its header");
    /* exactly a header */
    rec[3] = 8;
    assert_int_equal(ipc_frame(rec, 7, 0, &reclen, &why), 0);
    assert_int_equal(ipc_frame(rec, 8, 0, &reclen, &why), 1);
    assert_int_equal(reclen, 8);
    /* 20 bytes: more needed until 20 are there; the rest is the next record */
    rec[3] = 20;
    assert_int_equal(ipc_frame(rec, 19, 0, &reclen, &why), 0);
    assert_int_equal(ipc_frame(rec, 32, 0, &reclen, &why), 1);
    assert_int_equal(reclen, 20);
    /* the channel limit: 20 is fine at max 20, not at max 19 */
    assert_int_equal(ipc_frame(rec, 32, 20, &reclen, &why), 1);
    why = NULL;
    assert_int_equal(ipc_frame(rec, 4, 19, &reclen, &why), -1);
    assert_string_equal(why, "record longer than the channel allows");
}

static void test_frame_record_max(void **state)
{
    unsigned char rec[4];
    size_t reclen = 0;
    const char *why = NULL;
    uint32_t at = IPC_RECORD_MAX, over = IPC_RECORD_MAX + 1;
    rec[0] = (unsigned char)(at >> 24), rec[1] = (unsigned char)(at >> 16);
    rec[2] = (unsigned char)(at >> 8), rec[3] = (unsigned char)at;
    assert_int_equal(ipc_frame(rec, 4, 0, &reclen, &why), 0); /* allowed, needs more */
    rec[0] = (unsigned char)(over >> 24), rec[1] = (unsigned char)(over >> 16);
    rec[2] = (unsigned char)(over >> 8), rec[3] = (unsigned char)over;
    assert_int_equal(ipc_frame(rec, 4, 0, &reclen, &why), -1);
    /* a channel limit above the hard ceiling does not lift it */
    assert_int_equal(ipc_frame(rec, 4, SIZE_MAX, &reclen, &why), -1);
    memset(rec, 0xff, sizeof(rec));
    assert_int_equal(ipc_frame(rec, 4, 0, &reclen, &why), -1);
    assert_string_equal(why, "record longer than the channel allows");
}

/* ------------------------------------------------------ writer fail-stop ---- */

/* Static, so that LeakSanitizer sees them reachable when log_fatal exits. */
static struct buf child_buf;
static char *child_big;

static void write_too_large(void)
{
    struct buf *b = &child_buf;
    struct ipc_writer w;
    char *big = child_big = xmalloc(IPC_RECORD_MAX);
    memset(big, 'x', IPC_RECORD_MAX);
    ipc_begin(&w, b, 1);
    ipc_add_bytes(&w, big, IPC_RECORD_MAX - 13); /* 8 + 5 + n == IPC_RECORD_MAX: fine */
    ipc_finish(&w);
    if (b->len != IPC_RECORD_MAX)
        _exit(3);
    ipc_begin(&w, b, 1);
    ipc_add_bytes(&w, big, IPC_RECORD_MAX - 12); /* one byte over */
    ipc_finish(&w);
}

static void test_finish_too_large_is_fatal(void **state)
{
    int status = child_wait_status(write_too_large);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

static void write_too_many_fields(void)
{
    struct buf *b = &child_buf;
    struct ipc_writer w;
    ipc_begin(&w, b, 1);
    for (unsigned i = 0; i < UINT16_MAX; i++)
        ipc_add_u32(&w, i);
    ipc_finish(&w);
    if (b->len != 8 + 5 * (size_t)UINT16_MAX)
        _exit(3);
    ipc_add_u32(&w, 0);
}

static void test_too_many_fields_is_fatal(void **state)
{
    int status = child_wait_status(write_too_many_fields);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

/* ------------------------ send and receive (channel_core's blocking helpers) ---- */

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void test_send_recv(void **state)
{
    int sv[2];
    struct buf out = BUF_INIT, in = BUF_INIT;
    struct ipc_writer w;
    const char *why = NULL;
    make_pair(sv);
    for (uint32_t i = 0; i < 3; i++) {
        ipc_begin(&w, &out, (uint16_t)(100 + i));
        ipc_add_u32(&w, i);
        ipc_add_str(&w, "payload");
        ipc_finish(&w);
    }
    assert_int_equal(chan_send_record(sv[0], out.s, out.len, NULL, 0, 1000), 0);
    close(sv[0]);
    for (uint32_t i = 0; i < 3; i++) {
        struct ipc_reader r;
        uint32_t v;
        const char *s;
        buf_adds(&in, "stale content is replaced");
        assert_int_equal(chan_recv_record(sv[1], 0, 0, 1000, &in, NULL, NULL, &why), 1);
        assert_int_equal(ipc_open(&r, in.s, in.len), 0);
        assert_int_equal(r.type, 100 + i);
        assert_int_equal(ipc_get_u32(&r, &v), 0);
        assert_int_equal(ipc_get_str(&r, 100, &s), 0);
        assert_int_equal(ipc_end(&r), 0);
        assert_int_equal(v, i);
        assert_string_equal(s, "payload");
        ipc_close(&r);
    }
    assert_int_equal(chan_recv_record(sv[1], 0, 0, 1000, &in, NULL, NULL, &why), 0); /* clean EOF */
    close(sv[1]);
    buf_free(&out);
    buf_free(&in);
}

/* Send the first `cut` bytes of a record and close: chan_recv_record must say -1. */
static void expect_recv_fails(const void *data, size_t cut, size_t max, const char *want)
{
    int sv[2];
    struct buf in = BUF_INIT;
    const char *why = NULL;
    make_pair(sv);
    assert_int_equal(write(sv[0], data, cut), (ssize_t)cut);
    close(sv[0]);
    assert_int_equal(chan_recv_record(sv[1], max, 0, 1000, &in, NULL, NULL, &why), -1);
    assert_string_equal(why, want);
    assert_int_equal(in.len, 0);
    close(sv[1]);
    buf_free(&in);
}

static void test_recv_eof_mid_record(void **state)
{
    struct buf b = BUF_INIT;
    make_all_types(&b);
    for (size_t cut = 1; cut < b.len; cut++)
        expect_recv_fails(b.s, cut, 0, "end of file inside a record");
    buf_free(&b);
}

static void test_recv_bad_header(void **state)
{
    struct buf b = BUF_INIT;
    make_all_types(&b);
    expect_recv_fails(b.s, b.len, b.len - 1, "record longer than the channel allows");
    patch_be32(&b, 0, 4);
    expect_recv_fails(b.s, b.len, 0, "record length shorter than its header");
    buf_free(&b);
}

static void test_recv_exact_max(void **state)
{
    int sv[2];
    struct buf b = BUF_INIT, in = BUF_INIT;
    const char *why = NULL;
    make_all_types(&b);
    make_pair(sv);
    assert_int_equal(chan_send_record(sv[0], b.s, b.len, NULL, 0, 1000), 0);
    assert_int_equal(chan_recv_record(sv[1], b.len, 0, 1000, &in, NULL, NULL, &why), 1);
    assert_int_equal(in.len, b.len);
    assert_memory_equal(in.s, b.s, b.len);
    close(sv[0]);
    close(sv[1]);
    buf_free(&b);
    buf_free(&in);
}

static void test_recv_read_error(void **state)
{
    struct buf in = BUF_INIT;
    const char *why = NULL;
    errno = 0;
    assert_int_equal(chan_recv_record(-1, 0, 0, -1, &in, NULL, NULL, &why), -1);
    assert_string_equal(why, "read error");
    assert_int_equal(errno, EBADF);
    buf_free(&in);
}

static void test_send_error(void **state)
{
    struct buf b = BUF_INIT;
    make_all_types(&b);
    errno = 0;
    assert_int_equal(chan_send_record(-1, b.s, b.len, NULL, 0, -1), -1);
    assert_int_equal(errno, EBADF);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_empty_record),
        cmocka_unit_test(test_round_trip_u32),
        cmocka_unit_test(test_round_trip_u64),
        cmocka_unit_test(test_round_trip_str),
        cmocka_unit_test(test_round_trip_bytes),
        cmocka_unit_test(test_round_trip_mixed),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_truncated_consistent_header),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_header_length_mismatch),
        cmocka_unit_test(test_unknown_tag),
        cmocka_unit_test(test_wrong_type_requested),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_too_many_fields_read),
        cmocka_unit_test(test_too_few_fields_read),
        cmocka_unit_test(test_nfields_wrong_in_header),
        cmocka_unit_test(test_header_claims_field_past_end),
        cmocka_unit_test(test_string_length_past_end),
        cmocka_unit_test(test_string_with_nul),
        cmocka_unit_test(test_max_honoured),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_frame_record_max),
        cmocka_unit_test(test_finish_too_large_is_fatal),
        cmocka_unit_test(test_too_many_fields_is_fatal),
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_recv_eof_mid_record),
        cmocka_unit_test(test_recv_bad_header),
        cmocka_unit_test(test_recv_exact_max),
        cmocka_unit_test(test_recv_read_error),
        cmocka_unit_test(test_send_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
