/*
 * test_local_proto — the router -> onehop-local LP_JOB record
 * (local_proto.h): a job with every field round-trips exactly, its results
 * decode with remote_proto.h's codec; the decoder refuses (one test per
 * row) a job without recipients, with too many, a recipient that is no
 * address, |command or /file, an unknown origin, a wrong record type, a
 * truncated record, trailing bytes and an overflowing content range, and
 * frees what it had allocated.
 */
#include "rowtest.h"

#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "local_proto.h"

static struct lp_rcpt rcpts[LP_RCPT_MAX + 1];

static struct lp_job sample_job(size_t nrcpt)
{
    static char addr[LP_RCPT_MAX + 1][48];
    for (size_t i = 0; i < nrcpt; i++) {
        snprintf(addr[i], sizeof(addr[i]), "user%zu+ext@host.test", i);
        rcpts[i] = (struct lp_rcpt){addr[i], "team@host.test", "", 0, LP_FROM_ADDRESS};
    }
    if (nrcpt > 1)
        rcpts[1] = (struct lp_rcpt){"|/usr/bin/procmail -a x", "team@host.test",
                                    "rfc822;team@host.test", RP_NOTIFY_FAILURE, LP_FROM_ALIASES};
    if (nrcpt > 2)
        rcpts[2] = (struct lp_rcpt){"/var/log/mail", "log@host.test", "", 0, LP_FROM_ALIASES};
    struct lp_job j = {5, "0PKX3B2Q7ZM012KG00", 64, 1234, 1700000000000000u, "", rcpts, nrcpt};
    return j;
}

static void test_job_round_trip(void **state)
{
    (void)state;
    struct lp_job in = sample_job(3), out;
    struct buf rec = BUF_INIT, again = BUF_INIT;
    const char *why = NULL;
    lp_put_job(&rec, &in);
    assert_int_equal(rp_record_type(rec.s, rec.len), LP_JOB);
    assert_int_equal(lp_get_job(rec.s, rec.len, &out, &why), 0);
    assert_int_equal(out.job, 5);
    assert_string_equal(out.queue_id, "0PKX3B2Q7ZM012KG00");
    assert_int_equal(out.offset, 64);
    assert_int_equal(out.length, 1234);
    assert_int_equal(out.arrival_us, 1700000000000000u);
    assert_string_equal(out.sender, "");
    assert_int_equal(out.nrcpt, 3);
    assert_string_equal(out.rcpt[0].recipient, "user0+ext@host.test");
    assert_string_equal(out.rcpt[0].original, "team@host.test");
    assert_string_equal(out.rcpt[0].orcpt, "");
    assert_int_equal(out.rcpt[0].origin, LP_FROM_ADDRESS);
    assert_string_equal(out.rcpt[1].recipient, "|/usr/bin/procmail -a x");
    assert_string_equal(out.rcpt[1].orcpt, "rfc822;team@host.test");
    assert_int_equal(out.rcpt[1].notify, RP_NOTIFY_FAILURE);
    assert_int_equal(out.rcpt[1].origin, LP_FROM_ALIASES);
    assert_string_equal(out.rcpt[2].recipient, "/var/log/mail");
    assert_string_equal(out.rcpt[2].original, "log@host.test");
    lp_put_job(&again, &out); /* the decoder lost nothing */
    assert_int_equal(again.len, rec.len);
    assert_memory_equal(again.s, rec.s, rec.len);
    lp_job_free(&out);
    assert_null(out.rcpt);
    buf_free(&rec);
    buf_free(&again);
}

static void test_null_original_is_recipient(void **state)
{
    (void)state;
    struct lp_rcpt rc = {"bob@host.test", NULL, NULL, 0, LP_FROM_ADDRESS};
    struct lp_job in = {1, "Q", 0, 10, 0, "a@b.test", &rc, 1}, out;
    struct buf rec = BUF_INIT;
    const char *why;
    lp_put_job(&rec, &in);
    assert_int_equal(lp_get_job(rec.s, rec.len, &out, &why), 0);
    assert_string_equal(out.rcpt[0].original, "bob@host.test");
    assert_string_equal(out.rcpt[0].orcpt, "");
    lp_job_free(&out);
    buf_free(&rec);
}

/* The local side's results are remote_proto's: one result and the done. */
static void test_results_use_remote_codec(void **state)
{
    (void)state;
    struct rp_result in = {5, 1, RP_TEMP, "4.2.2 mailbox full", "local:maildir", "none", 20, 0},
                     out;
    struct buf rec = BUF_INIT, text = BUF_INIT;
    const char *why;
    rp_put_result(&rec, &in);
    assert_int_equal(rp_get_result(rec.s, rec.len, &out, &text, &why), 0);
    assert_int_equal(out.cls, RP_TEMP);
    assert_string_equal(out.relay, "local:maildir");
    struct lp_job j;
    assert_int_equal(lp_get_job(rec.s, rec.len, &j, &why), -1); /* a result is no job */
    assert_string_equal(why, "unexpected record type");
    buf_free(&rec);
    buf_free(&text);
}

struct bad_job {
    const char *name;
    size_t nrcpt;
    const char *recipient; /* replaces recipient 0 when set */
    uint32_t origin;
    int cut;      /* bytes cut off the end (header length patched) */
    int trailing; /* a field added */
    uint64_t offset;
    const char *why; /* the expected reason, NULL: any */
};

static const struct bad_job bad_jobs[] = {
    {"no recipient", 0, NULL, 0, 0, 0, 64, "job: recipient count out of range"},
    {"51 recipients", LP_RCPT_MAX + 1, NULL, 0, 0, 0, 64, "job: recipient count out of range"},
    {"empty recipient", 2, "", 0, 0, 0, 64, NULL},
    {"bare name", 2, "alice", 0, 0, 0, 64, NULL},
    {"no local part", 2, "@host.test", 0, 0, 0, 64, NULL},
    {"no domain", 2, "alice@", 0, 0, 0, 64, NULL},
    {"lone pipe", 2, "|", 0, 0, 0, 64, NULL},
    {"lone slash", 2, "/", 0, 0, 0, 64, NULL},
    {"unknown origin", 2, NULL, 2, 0, 0, 64, "job: unknown recipient origin"},
    {"truncated", 2, NULL, 0, 3, 0, 64, NULL},
    {"trailing field", 2, NULL, 0, 0, 1, 64, NULL},
    {"content range overflows", 1, NULL, 0, 0, 0, UINT64_MAX - 10, "job: content range overflows"},
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
    struct lp_job in = sample_job(row->nrcpt), out;
    in.offset = row->offset;
    if (row->recipient)
        rcpts[0].recipient = (char *)row->recipient;
    if (row->origin)
        rcpts[0].origin = row->origin;
    struct buf rec = BUF_INIT;
    const char *why = NULL;
    lp_put_job(&rec, &in);
    if (row->cut) {
        rec.len -= (size_t)row->cut;
        put_be32(rec.s, (uint32_t)rec.len);
    }
    if (row->trailing) {
        buf_add(&rec, "\x01\0\0\0\x01", 5); /* a u32 field */
        put_be32(rec.s, (uint32_t)rec.len);
        rec.s[7] = (char)(rec.s[7] + 1); /* nfields */
    }
    assert_int_equal(lp_get_job(rec.s, rec.len, &out, &why), -1);
    assert_non_null(why);
    if (row->recipient)
        assert_string_equal(why, "job: recipient is neither an address, a |command nor a /file");
    if (row->why)
        assert_string_equal(why, row->why);
    assert_null(out.rcpt);
    assert_null(out.queue_id);
    buf_free(&rec);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    rowtest_add(&t, test_job_round_trip, NULL, "job round trip");
    rowtest_add(&t, test_null_original_is_recipient, NULL, "no original: the recipient itself");
    rowtest_add(&t, test_results_use_remote_codec, NULL, "results are remote_proto's");
    for (size_t i = 0; i < ROWS(bad_jobs); i++)
        rowtest_add(&t, test_bad_job, &bad_jobs[i], "job refused: %s", bad_jobs[i].name);
    return rowtest_run(&t, "local_proto");
}
