/*
 * test_remote_proto — the router <-> remote records (remote_proto.h): a job
 * with every field and a result round-trip exactly; the decoders refuse a
 * job without recipients, with too many recipients or next hops, a wrong
 * record type, a truncated record, trailing bytes, an overflowing content
 * range and an unknown result class.
 */
#include "rowtest.h"

#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "remote_proto.h"

static struct rp_rcpt rcpts[RP_RCPT_MAX + 1];
static char *hops[RP_HOPS_MAX + 1];

static struct rp_job sample_job(size_t nrcpt, size_t nhops)
{
    static char addr[RP_RCPT_MAX + 1][32];
    for (size_t i = 0; i < nrcpt; i++) {
        snprintf(addr[i], sizeof(addr[i]), "user%zu@b.test", i);
        rcpts[i] = (struct rp_rcpt){addr[i], i == 0 ? "rfc822;orig@b.test" : "",
                                    i == 0 ? RP_NOTIFY_SUCCESS | RP_NOTIFY_FAILURE : 0};
    }
    for (size_t i = 0; i < nhops; i++)
        hops[i] = i == 0 ? "b.test" : "[127.0.0.5]:2525";
    struct rp_job j = {
        77,   "0PKX3B2Q7ZM012KG00", 64, 1234, 1700000000000000u, "alice@a.test", rcpts, nrcpt, hops,
        nhops};
    return j;
}

static void test_job_round_trip(void **state)
{
    struct rp_job in = sample_job(3, 2), out;
    struct buf rec = BUF_INIT;
    const char *why = NULL;
    rp_put_job(&rec, &in);
    assert_int_equal(rp_record_type(rec.s, rec.len), RP_JOB);
    assert_int_equal(rp_get_job(rec.s, rec.len, &out, &why), 0);
    assert_int_equal(out.job, 77);
    assert_string_equal(out.queue_id, "0PKX3B2Q7ZM012KG00");
    assert_int_equal(out.offset, 64);
    assert_int_equal(out.length, 1234);
    assert_int_equal(out.arrival_us, 1700000000000000u);
    assert_string_equal(out.sender, "alice@a.test");
    assert_int_equal(out.nrcpt, 3);
    assert_string_equal(out.rcpt[0].address, "user0@b.test");
    assert_string_equal(out.rcpt[0].orcpt, "rfc822;orig@b.test");
    assert_int_equal(out.rcpt[0].notify, RP_NOTIFY_SUCCESS | RP_NOTIFY_FAILURE);
    assert_string_equal(out.rcpt[2].address, "user2@b.test");
    assert_string_equal(out.rcpt[2].orcpt, "");
    assert_int_equal(out.nhops, 2);
    assert_string_equal(out.hops[0], "b.test");
    assert_string_equal(out.hops[1], "[127.0.0.5]:2525");
    rp_job_free(&out);
    buf_free(&rec);
}

static void test_result_and_done_round_trip(void **state)
{
    struct rp_result in = {9,
                           2,
                           RP_PERM,
                           "550 5.1.1 unknown",
                           "mx.b.test[127.0.0.2]:25",
                           "none",
                           1500,
                           RP_FLAG_ALL_MX_TEMP},
                     out;
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why;
    rp_put_result(&rec, &in);
    assert_int_equal(rp_get_result(rec.s, rec.len, &out, &text, &why), 0);
    assert_int_equal(out.job, 9);
    assert_int_equal(out.index, 2);
    assert_int_equal(out.cls, RP_PERM);
    assert_string_equal(out.reply, "550 5.1.1 unknown");
    assert_string_equal(out.relay, "mx.b.test[127.0.0.2]:25");
    assert_string_equal(out.tls, "none");
    assert_int_equal(out.delay_ms, 1500);
    assert_int_equal(out.flags, RP_FLAG_ALL_MX_TEMP);
    buf_clear(&rec);
    rp_put_done(&rec, 9, 3);
    uint64_t job;
    uint32_t n;
    assert_int_equal(rp_get_done(rec.s, rec.len, &job, &n, &why), 0);
    assert_int_equal(job, 9);
    assert_int_equal(n, 3);
    /* a done record is not a result */
    assert_int_equal(rp_get_result(rec.s, rec.len, &out, &text, &why), -1);
    buf_free(&rec);
    buf_free(&text);
}

static void test_result_unknown_flags_refused(void **state)
{
    (void)state;
    struct rp_result in = {1, 0, RP_TEMP, "451 x", "none", "none", 0, 0x80}, out;
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why;
    rp_put_result(&rec, &in);
    assert_int_equal(rp_get_result(rec.s, rec.len, &out, &text, &why), -1);
    assert_string_equal(why, "result: unknown flags");
    buf_free(&rec);
    buf_free(&text);
}

struct bad_job {
    const char *name;
    size_t nrcpt, nhops;
    int cut;      /* bytes cut off the end (header length patched) */
    int trailing; /* a field added */
    uint64_t offset;
};

static const struct bad_job bad_jobs[] = {
    {"no recipient", 0, 1, 0, 0, 64},
    {"51 recipients", RP_RCPT_MAX + 1, 1, 0, 0, 64},
    {"no next hop", 1, 0, 0, 0, 64},
    {"17 next hops", 1, RP_HOPS_MAX + 1, 0, 0, 64},
    {"truncated", 2, 1, 3, 0, 64},
    {"trailing field", 2, 1, 0, 1, 64},
    {"content range overflows", 1, 1, 0, 0, UINT64_MAX - 10},
};

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void test_bad_job(void **state)
{
    const struct bad_job *row = *state;
    struct rp_job in = sample_job(row->nrcpt, row->nhops), out;
    in.offset = row->offset;
    struct buf rec = BUF_INIT;
    const char *why = NULL;
    rp_put_job(&rec, &in);
    if (row->cut) {
        rec.len -= (size_t)row->cut;
        put_be32(rec.s, (uint32_t)rec.len);
    }
    if (row->trailing) {
        buf_add(&rec, "\x01\0\0\0\x01", 5); /* a u32 field */
        put_be32(rec.s, (uint32_t)rec.len);
        rec.s[7] = (char)(rec.s[7] + 1); /* nfields */
    }
    assert_int_equal(rp_get_job(rec.s, rec.len, &out, &why), -1);
    assert_non_null(why);
    assert_null(out.rcpt);
    assert_null(out.hops);
    buf_free(&rec);
}

static void test_bad_result_class(void **state)
{
    struct rp_result in = {1, 0, 3, "x", "none", "none", 0, 0}, out;
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why = NULL;
    rp_put_result(&rec, &in);
    assert_int_equal(rp_get_result(rec.s, rec.len, &out, &text, &why), -1);
    assert_string_equal(why, "result: unknown class");
    buf_free(&rec);
    buf_free(&text);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_job_round_trip, NULL, "job round trip");
    rowtest_add(&t, test_result_and_done_round_trip, NULL, "result and done round trip");
    rowtest_add(&t, test_result_unknown_flags_refused, NULL, "result with unknown flags refused");
    rowtest_add(&t, test_bad_result_class, NULL, "result with an unknown class");
    for (size_t i = 0; i < ROWS(bad_jobs); i++)
        rowtest_add(&t, test_bad_job, &bad_jobs[i], "job refused: %s", bad_jobs[i].name);
    return rowtest_run(&t, "remote_proto");
}
