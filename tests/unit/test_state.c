/*
 * test_state — the state side (queue/state.h) on real message files: one
 * test per rule: learning new files (TAKE asked, handed out only once its
 * need is durable), due now after the take, deferred until its next try,
 * hold/release, delete, finished messages (RECLAIM) and files (REMOVE,
 * then forgotten), outcomes refused for unknown or finished recipients,
 * durability by sequence number, replay and checkpoint giving back the
 * same state, requests not done re-offered after a restart, a second owner
 * refused, a read-only open beside the owner, a file gone by hand, the
 * counts, the one-time import of a format 2 file's own state log, and the
 * active window (files frozen beyond queue_active_limit recipients, thawed
 * on first touch, across checkpoints and restarts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "qlist.h"
#include "queue_impl.h" /* write_version: an old format 2 file */
#include "queue_v2log.h"
#include "state.h"

struct fixture {
    char dir[64];
    struct queue *q;
    struct state *s;
    unsigned long walked, most_hot; /* count_and_watch */
};

static const char *const two_rcpts[] = {"bob@b.test", "carol@c.test"};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    test_temp_dir(fx->dir, sizeof(fx->dir), "state");
    const char *why;
    log_open("test", "stderr");
    if (queue_open(&fx->q, fx->dir, QUEUE_OPEN_CREATE, &why) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    state_close(fx->s);
    queue_close(fx->q);
    int rc = test_remove_tree(fx->dir);
    free(fx);
    return rc;
}

/* A committed file of n messages with two recipients each; its id in fid. */
static void commit_file(struct queue *q, unsigned n, char *fid)
{
    struct queue_writer *w;
    assert_int_equal(queue_writer_begin(q, &w), 0);
    for (unsigned k = 0; k < n; k++) {
        struct queue_envelope env = {"alice@a.test", two_rcpts, NULL, NULL, 2, NULL, 0};
        assert_int_equal(queue_writer_data(w, "Subject: x\n\nbody\n", 17), 0);
        unsigned index;
        assert_int_equal(queue_writer_end_msg(w, &env, &index), 0);
    }
    assert_int_equal(queue_writer_commit(w, fid), 0);
}

static void open_state(struct fixture *fx)
{
    const char *why = NULL;
    state_close(fx->s);
    fx->s = NULL;
    assert_int_equal(state_open(&fx->s, fx->q, 0, NULL, &why), 0);
}

/* What the cleaner would do for one request (the test plays the cleaner). */
static void serve_cleaner(struct fixture *fx)
{
    struct state_clean_req r;
    while (state_clean_next(fx->s, &r)) {
        if (r.kind == CLEAN_TAKE)
            assert_int_equal(queue_take(fx->q, r.id), 0);
        state_clean_done(fx->s, &r, 0);
    }
    assert_int_equal(state_flush(fx->s), 0);
}

/* A file learned and taken: its first message id in id. */
static void queued_and_taken(struct fixture *fx, unsigned n, char *fid, char *id)
{
    commit_file(fx->q, n, fid);
    if (!fx->s)
        open_state(fx);
    assert_true(state_learn_files(fx->s) >= (long)n);
    assert_int_equal(state_flush(fx->s), 0);
    serve_cleaner(fx);
    queue_msg_id(fid, 0, id);
}

static const struct state_msg *due_now(struct fixture *fx, int64_t now)
{
    const struct state_msg *m = NULL;
    int64_t wake;
    state_next_due(fx->s, now, &m, &wake);
    return m;
}

/* ------------------------------------------------------------- tests ---- */

static void test_learn_asks_take_once_durable(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 1);
    queue_msg_id(fid, 0, id);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_int_equal(state_msg_state(m), SMSG_INCOMING);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 0); /* its need is not durable yet */
    assert_int_equal(state_flush(fx->s), 0);
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_TAKE);
    assert_string_equal(r.id, fid);
    assert_int_equal(state_clean_next(fx->s, &r), 0); /* handed out once */
    /* Not due while in incoming/. */
    assert_null(due_now(fx, time(NULL)));
    assert_int_equal(queue_take(fx->q, fid), 0);
    state_clean_done(fx->s, &r, 0);
    assert_int_equal(state_msg_state(m), SMSG_ACTIVE);
    assert_ptr_equal(due_now(fx, time(NULL)), m);
    assert_int_equal(state_learn_files(fx->s), 0); /* known: not learned again */
}

/* The names a watch of incoming/ reported: each unknown file learned once
 * (a name given twice, a known file, a gone file and a name that is not a
 * file id passed over), with the TAKE of a listing's learning. */
static void test_named_files_learned_once(void **state)
{
    struct fixture *fx = *state;
    char known[QUEUE_FILE_ID_LEN + 1], fresh[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, known, id);
    commit_file(fx->q, 3, fresh);
    struct buf names = BUF_INIT;
    buf_add(&names, fresh, sizeof(fresh));
    buf_add(&names, known, sizeof(known));
    buf_add(&names, fresh, sizeof(fresh));
    buf_add(&names, "0000000000000000", QUEUE_FILE_ID_LEN + 1); /* no such file */
    buf_add(&names, "not/a/file/id!!!", QUEUE_FILE_ID_LEN + 1);
    assert_int_equal(state_learn_named(fx->s, names.s, 5), 3);
    buf_free(&names);
    queue_msg_id(fresh, 2, id);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_int_equal(state_msg_state(m), SMSG_INCOMING);
    assert_int_equal(state_flush(fx->s), 0);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_TAKE);
    assert_string_equal(r.id, fresh);
    assert_int_equal(state_clean_next(fx->s, &r), 0);
    assert_int_equal(state_learn_files(fx->s), 0); /* a listing finds nothing more */
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 4);
    open_state(fx); /* the replay agrees: each file recorded once */
    state_count(fx->s, &c);
    assert_int_equal(c.total, 4);
}

/* Due at the same time: handed out first in, first out, so a file's
 * messages come one after another (the router reads the file once for
 * them all: queue_msg_select), in arrival order. */
static void test_equal_due_times_first_in_first_out(void **state)
{
    struct fixture *fx = *state;
    char f1[QUEUE_FILE_ID_LEN + 1], f2[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    commit_file(fx->q, 5, f1);
    commit_file(fx->q, 4, f2);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 9);
    assert_int_equal(state_flush(fx->s), 0);
    serve_cleaner(fx);
    struct queue_msg_fd mf;
    const char *why = NULL;
    for (unsigned i = 0; i < 9; i++) {
        const struct state_msg *m = due_now(fx, time(NULL));
        assert_non_null(m);
        char want[QUEUE_ID_LEN + 1];
        queue_msg_id(i < 5 ? f1 : f2, i < 5 ? i : i - 5, want);
        state_msg_id(m, id);
        assert_string_equal(id, want);
        if (i == 0 || i == 5) {
            if (i == 5) {
                assert_int_equal(queue_msg_select(&mf, id, &why), -1); /* another file's */
                assert_int_equal(errno, ENOENT);
                queue_msg_fd_close(&mf);
            }
            assert_int_equal(queue_msg_open(fx->q, id, &mf, &why), 0);
        } else {
            assert_int_equal(queue_msg_select(&mf, id, &why), 0);
        }
        assert_int_equal(mf.index, i < 5 ? i : i - 5);
        assert_string_equal(mf.file.msg[mf.index].id, id);
        assert_int_equal(mf.length, 17);
        char body[17];
        assert_int_equal(pread(mf.fd, body, 17, (off_t)mf.offset), 17);
        assert_memory_equal(body, "Subject: x\n\nbody\n", 17);
    }
    queue_msg_fd_close(&mf);
    assert_null(due_now(fx, time(NULL)));
}

static void test_learned_in_active_due_at_once(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    assert_int_equal(queue_take(fx->q, fid), 0); /* taken before the state knew it */
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 1);
    queue_msg_id(fid, 0, id);
    const struct state_msg *m = state_find(fx->s, id);
    assert_int_equal(state_msg_state(m), SMSG_ACTIVE);
    assert_ptr_equal(due_now(fx, 1), m);
    struct state_clean_req r;
    assert_int_equal(state_flush(fx->s), 0);
    assert_int_equal(state_clean_next(fx->s, &r), 0); /* no TAKE */
}

static void test_deferred_waits_for_next_try(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, fid, id);
    const struct state_msg *m = due_now(fx, 1000);
    assert_non_null(m);
    assert_null(due_now(fx, 1000)); /* in flight: not handed out twice */
    assert_true(state_deferred(fx->s, id, 0, 1000, 1300, "451 try later") > 0);
    assert_true(state_deferred(fx->s, id, 1, 1000, 1600, "451 busy") > 0);
    state_dispatch_done(fx->s, id);
    assert_int_equal(state_msg_state(m), SMSG_DEFERRED);
    int64_t wake = 0;
    const struct state_msg *none = NULL;
    assert_int_equal(state_next_due(fx->s, 1299, &none, &wake), 0);
    assert_int_equal(wake, 1300);
    assert_ptr_equal(due_now(fx, 1300), m);
    assert_int_equal(m->rcpt[0].attempts, 1);
    assert_int_equal(m->rcpt[0].next_try, 1300);
    assert_string_equal(m->rcpt[0].reason, "451 try later");
    assert_int_equal(m->rcpt[1].state, SRCPT_DEFERRED);
}

static void test_finished_message_reclaimed_file_removed(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id0[QUEUE_ID_LEN + 1], id1[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 2, fid, id0);
    queue_msg_id(fid, 1, id1);
    assert_true(state_delivered(fx->s, id0, 0, 10, "250 ok") > 0);
    assert_int_equal(state_clean_pending(fx->s), 0);
    assert_true(state_bounced(fx->s, id0, 1, 10, "550 no such user") > 0);
    assert_null(state_find(fx->s, id0)); /* finished */
    assert_int_equal(errno, ENOENT);
    assert_int_equal(state_flush(fx->s), 0);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_RECLAIM);
    assert_string_equal(r.id, id0);
    state_clean_done(fx->s, &r, 0);
    assert_true(state_delete(fx->s, id1, 11, "root") > 0);
    assert_int_equal(state_flush(fx->s), 0);
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_REMOVE);
    assert_string_equal(r.id, fid);
    assert_non_null(state_find_file(fx->s, fid));
    state_clean_done(fx->s, &r, 0);
    assert_null(state_find_file(fx->s, fid)); /* forgotten */
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    assert_null(state_find_file(fx->s, fid));
    assert_int_equal(state_clean_pending(fx->s), 0);
}

/* Every message of a file finished within one group commit: one REMOVE,
 * no RECLAIM before it for each message (the cleaner's needs are settled
 * by the flush); a restart asks nothing more. */
static void test_file_finished_in_one_group_removed_only(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 3, fid, id);
    for (unsigned i = 0; i < 3; i++) {
        queue_msg_id(fid, i, id);
        assert_true(state_delivered(fx->s, id, 0, 10, "250 ok") > 0);
        assert_true(state_delivered(fx->s, id, 1, 10, "250 ok") > 0);
    }
    assert_int_equal(state_flush(fx->s), 0);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_REMOVE);
    assert_string_equal(r.id, fid);
    assert_int_equal(state_clean_next(fx->s, &r), 0);
    assert_int_equal(state_clean_pending(fx->s), 1);
    state_clean_done(fx->s, &r, 0);
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    assert_null(state_find_file(fx->s, fid));
    assert_int_equal(state_clean_pending(fx->s), 0);
}

static void test_outcomes_refused(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, fid, id);
    assert_int_equal(state_delivered(fx->s, "0PKX3B2Q7ZM012KG00", 0, 1, "x"), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(state_delivered(fx->s, id, 2, 1, "x"), 0); /* no recipient 2 */
    assert_int_equal(errno, EINVAL);
    assert_true(state_delivered(fx->s, id, 0, 1, "250") > 0);
    assert_int_equal(state_bounced(fx->s, id, 0, 1, "550"), 0); /* already delivered */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(state_hold(fx->s, "not-an-id", 1), 0);
}

static void test_durable_by_sequence(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, fid, id);
    uint64_t a = state_deferred(fx->s, id, 0, 5, 50, "one");
    uint64_t b = state_deferred(fx->s, id, 1, 5, 50, "two");
    assert_true(b > a && a > state_durable(fx->s));
    unsigned long syncs = sj_syncs(state_journal(fx->s));
    assert_int_equal(state_flush(fx->s), 0);
    assert_true(state_durable(fx->s) >= b);
    assert_int_equal(sj_syncs(state_journal(fx->s)) - syncs, 1);
}

static void test_hold_release(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, fid, id);
    assert_true(state_hold(fx->s, id, 1) > 0);
    const struct state_msg *m = state_find(fx->s, id);
    assert_int_equal(state_msg_state(m), SMSG_HOLD);
    assert_null(due_now(fx, time(NULL)));
    assert_true(state_release(fx->s, id, 2) > 0);
    assert_int_equal(state_msg_state(m), SMSG_ACTIVE);
    assert_ptr_equal(due_now(fx, time(NULL)), m);
}

/* The state a restart must give back, as text. */
static void describe(struct fixture *fx, const char *id, struct buf *out)
{
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    buf_clear(out);
    buf_printf(out, "%s held=%d", state_msg_state_name(state_msg_state(m)), m->held);
    for (uint32_t k = 0; k < m->nrcpt; k++)
        buf_printf(out, " [%s %u %lld %lld %s %s %u]", state_rcpt_state_name(m->rcpt[k].state),
                   m->rcpt[k].attempts, (long long)m->rcpt[k].last_try,
                   (long long)m->rcpt[k].next_try, m->rcpt[k].reason ? m->rcpt[k].reason : "-",
                   m->rcpt[k].route ? m->rcpt[k].route : "-", m->rcpt[k].flags);
}

static void changes_to_survive(struct fixture *fx, const char *id)
{
    assert_true(state_deferred(fx->s, id, 0, 100, 400, "421 later") > 0);
    assert_true(state_deferred(fx->s, id, 0, 400, 900, "421 again") > 0);
    assert_true(state_delivered(fx->s, id, 1, 401, "250 queued as 7") > 0);
    assert_true(state_set_route(fx->s, id, 0, "mx.b.test:25") > 0);
    assert_true(state_set_flags(fx->s, id, 0, QUEUE_FLAG_DELAY_WARNED) > 0);
    assert_true(state_hold(fx->s, id, 402) > 0);
    assert_int_equal(state_flush(fx->s), 0);
}

static void test_replay_gives_back_the_state(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    struct buf before = BUF_INIT, after = BUF_INIT;
    queued_and_taken(fx, 1, fid, id);
    changes_to_survive(fx, id);
    describe(fx, id, &before);
    assert_string_equal(buf_cstr(&before),
                        "hold held=1 [deferred 2 400 900 421 again "
                        "mx.b.test:25 1] [delivered 1 401 0 250 queued as 7 - 0]");
    open_state(fx);
    describe(fx, id, &after);
    assert_string_equal(buf_cstr(&after), buf_cstr(&before));
    /* And through a checkpoint. */
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    open_state(fx);
    describe(fx, id, &after);
    assert_string_equal(buf_cstr(&after), buf_cstr(&before));
    buf_free(&before);
    buf_free(&after);
}

static void test_requests_not_done_offered_again(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 1);
    assert_int_equal(state_flush(fx->s), 0);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 1); /* handed out, never answered */
    open_state(fx);                                   /* a crash and a restart */
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_TAKE);
    assert_string_equal(r.id, fid);
    /* Through a checkpoint too; an error answer is retried. */
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    open_state(fx);
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    state_clean_done(fx->s, &r, EIO);
    assert_int_equal(state_clean_next(fx->s, &r), 0);
    state_clean_retry(fx->s);
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    queue_msg_id(fid, 0, id);
    assert_int_equal(state_msg_state(state_find(fx->s, id)), SMSG_INCOMING);
}

/* The TAKE need cut off by a torn tail (its 'T' record made it): asked
 * again at the next start. */
static void test_lost_take_need_asked_again(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 1);
    assert_int_equal(state_flush(fx->s), 0);
    state_close(fx->s);
    fx->s = NULL;
    struct buf seg = BUF_INIT;
    buf_printf(&seg, "%s/state/journal.0000000000000001", fx->dir);
    struct stat st;
    assert_int_equal(stat(buf_cstr(&seg), &st), 0);
    size_t need = SJ_RECORD_OVERHEAD + 1 + 4 + QUEUE_FILE_ID_LEN + 4; /* 'N' TAKE fid "" */
    assert_int_equal(truncate(buf_cstr(&seg), st.st_size - (off_t)need + 3), 0);
    buf_free(&seg);
    struct state_open_report rep;
    const char *why;
    assert_int_equal(state_open(&fx->s, fx->q, 0, &rep, &why), 0);
    assert_int_equal(rep.journal.torn_bytes, 3);
    assert_int_equal(rep.files, 1);
    assert_int_equal(state_flush(fx->s), 0);
    struct state_clean_req r;
    assert_int_equal(state_clean_next(fx->s, &r), 1);
    assert_int_equal(r.kind, CLEAN_TAKE);
    assert_string_equal(r.id, fid);
}

static void test_second_owner_and_reader(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 1, fid, id);
    struct state *other = NULL;
    const char *why = NULL;
    assert_int_equal(state_open(&other, fx->q, 0, NULL, &why), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    assert_true(state_deferred(fx->s, id, 0, 7, 70, "durable") > 0);
    assert_int_equal(state_flush(fx->s), 0);
    assert_true(state_deferred(fx->s, id, 1, 7, 70, "not yet durable") > 0);
    assert_int_equal(state_open(&other, fx->q, STATE_OPEN_READONLY, NULL, &why), 0);
    const struct state_msg *m = state_find(other, id);
    assert_non_null(m);
    assert_string_equal(m->rcpt[0].reason, "durable");
    assert_int_equal(m->rcpt[1].state, SRCPT_PENDING); /* a reader sees what is on disk */
    assert_int_equal(state_deferred(other, id, 0, 8, 80, "x"), 0);
    assert_int_equal(errno, EROFS);
    state_close(other);
}

static void test_reader_without_state_dir(void **state)
{
    struct fixture *fx = *state;
    struct state *ro = NULL;
    const char *why = NULL;
    assert_int_equal(state_open(&ro, fx->q, STATE_OPEN_READONLY, NULL, &why), 0);
    struct state_counts c;
    state_count(ro, &c);
    assert_int_equal(c.total, 0);
    state_close(ro);
}

static void test_file_gone_by_hand_forgotten(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1], bucket[3];
    queued_and_taken(fx, 1, fid, id);
    queue_bucket(fid, bucket);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/active/%s/%s", fx->dir, bucket, fid);
    assert_int_equal(unlink(buf_cstr(&path)), 0);
    buf_free(&path);
    assert_int_equal(state_learn_files(fx->s), 0);
    assert_null(state_find_file(fx->s, fid));
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    assert_null(state_find_file(fx->s, fid));
}

static void test_counts(void **state)
{
    struct fixture *fx = *state;
    char f1[QUEUE_FILE_ID_LEN + 1], f2[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    char id1[QUEUE_ID_LEN + 1];
    queued_and_taken(fx, 3, f1, id); /* 3 active */
    queue_msg_id(f1, 1, id1);
    assert_true(state_hold(fx->s, id1, 1) > 0);
    queue_msg_id(f1, 2, id1);
    assert_true(state_deferred(fx->s, id1, 0, 1, 100, "x") > 0);
    assert_true(state_deferred(fx->s, id1, 1, 1, 100, "x") > 0);
    commit_file(fx->q, 2, f2); /* 2 incoming */
    assert_int_equal(state_learn_files(fx->s), 2);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 5);
    assert_int_equal(c.active, 1);
    assert_int_equal(c.hold, 1);
    assert_int_equal(c.deferred, 1);
    assert_int_equal(c.incoming, 2);
    assert_true(c.oldest_arrival_us > 0);
}

static void test_format2_log_imported_once(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    fx->q->write_version = 2;
    commit_file(fx->q, 1, fid);
    fx->q->write_version = 3;
    queue_msg_id(fid, 0, id);
    struct v2rec u[] = {
        {'f', 0, 0, 500, 800, 0, "451 old try"},
        {'d', 0, 1, 500, 0, 0, "250 old ok"},
        {'h', 0, QUEUE_NO_RCPT, 501, 0, 0, NULL},
    };
    struct buf path = BUF_INIT;
    char bucket[3];
    queue_bucket(fid, bucket);
    buf_printf(&path, "%s/incoming/%s/%s", fx->dir, bucket, fid);
    assert_int_equal(v2_append(buf_cstr(&path), u, 3), 0);
    buf_free(&path);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 1);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_int_equal(m->held, 1);
    assert_int_equal(m->rcpt[0].state, SRCPT_DEFERRED);
    assert_int_equal(m->rcpt[0].next_try, 800);
    assert_string_equal(m->rcpt[0].reason, "451 old try");
    assert_int_equal(m->rcpt[1].state, SRCPT_DELIVERED);
    /* From now on the journal is the truth: a change there is not undone
     * by the file's log at the next start (the file is not read again). */
    assert_true(state_release(fx->s, id, 600) > 0);
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 0);
    m = state_find(fx->s, id);
    assert_int_equal(m->held, 0);
    assert_int_equal(m->rcpt[0].attempts, 1);
}

/* ------------------------------------------------------ active window ---- */

/* 10 files of 2 messages of 2 recipients, taken; file k's messages are
 * deferred until 1000 + k (so the files rank by k). */
static void ten_files(struct fixture *fx, char fids[10][QUEUE_FILE_ID_LEN + 1])
{
    for (int k = 0; k < 10; k++)
        commit_file(fx->q, 2, fids[k]);
    open_state(fx);
    assert_int_equal(state_learn_files(fx->s), 20);
    assert_int_equal(state_flush(fx->s), 0);
    serve_cleaner(fx);
    for (int k = 0; k < 10; k++)
        for (unsigned i = 0; i < 2; i++) {
            char id[QUEUE_ID_LEN + 1];
            queue_msg_id(fids[k], i, id);
            for (uint32_t r = 0; r < 2; r++)
                assert_true(state_deferred(fx->s, id, r, 10, 1000 + k, "451 later") > 0);
        }
    assert_int_equal(state_flush(fx->s), 0);
}

static void all_described(struct fixture *fx, char fids[10][QUEUE_FILE_ID_LEN + 1], struct buf *out)
{
    struct buf one = BUF_INIT;
    buf_clear(out);
    for (int k = 0; k < 10; k++)
        for (unsigned i = 0; i < 2; i++) {
            char id[QUEUE_ID_LEN + 1];
            queue_msg_id(fids[k], i, id);
            describe(fx, id, &one);
            buf_printf(out, "%s\n", buf_cstr(&one));
        }
    buf_free(&one);
}

static void test_window_freezes_beyond_the_limit(void **state)
{
    struct fixture *fx = *state;
    char fids[10][QUEUE_FILE_ID_LEN + 1];
    ten_files(fx, fids);
    struct state_counts before, after;
    state_count(fx->s, &before);
    assert_int_equal(state_hot_recipients(fx->s), 40);
    state_set_active_limit(fx->s, 8); /* two files */
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_int_equal(state_hot_recipients(fx->s), 8);
    state_count(fx->s, &after); /* counted without thawing */
    assert_int_equal(state_hot_recipients(fx->s), 8);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(after.deferred, 20);
    /* The two kept are the soonest due; the first due is one of them. */
    const struct state_msg *m = due_now(fx, 1000);
    assert_non_null(m);
    assert_memory_equal(m->file->fid, fids[0], QUEUE_FILE_ID_LEN);
    state_dispatch_done(fx->s, "0PKX3B2Q7ZM012KG00");
    /* A frozen file's time comes: it is thawed and its messages are due. */
    int64_t wake = 0;
    const struct state_msg *none = NULL;
    assert_int_equal(state_next_due(fx->s, 1001, &none, &wake), 1);
    assert_memory_equal(none->file->fid, fids[0], QUEUE_FILE_ID_LEN); /* its second message */
    assert_int_equal(state_next_due(fx->s, 1001, &none, &wake), 1);
    assert_memory_equal(none->file->fid, fids[1], QUEUE_FILE_ID_LEN);
    assert_int_equal(state_next_due(fx->s, 1001, &none, &wake), 1);
    assert_int_equal(state_next_due(fx->s, 1001, &none, &wake), 0);
    assert_int_equal(wake, 1002); /* file 2 is frozen: its entry says when */
    assert_int_equal(state_hot_recipients(fx->s), 8);
    assert_int_equal(state_next_due(fx->s, 1002, &none, &wake), 1);
    assert_memory_equal(none->file->fid, fids[2], QUEUE_FILE_ID_LEN); /* thawed */
    assert_int_equal(state_hot_recipients(fx->s), 12);
}

static void test_frozen_state_survives_touch_checkpoint_restart(void **state)
{
    struct fixture *fx = *state;
    char fids[10][QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    struct buf want = BUF_INIT, got = BUF_INIT;
    ten_files(fx, fids);
    queue_msg_id(fids[9], 1, id);
    assert_true(state_set_route(fx->s, id, 1, "mx.b.test:25") > 0);
    assert_int_equal(state_flush(fx->s), 0);
    all_described(fx, fids, &want);
    state_set_active_limit(fx->s, 4);
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_int_equal(state_hot_recipients(fx->s), 4);
    /* Learning lists the files but thaws none. */
    assert_int_equal(state_learn_files(fx->s), 0);
    assert_int_equal(state_hot_recipients(fx->s), 4);
    /* Two more checkpoints copy the frozen files' records unchanged. */
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    open_state(fx); /* the replay freezes as it reads */
    assert_true(state_hot_recipients(fx->s) <= 4);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 20);
    assert_int_equal(c.deferred, 20);
    all_described(fx, fids, &got); /* thaws every file */
    assert_string_equal(buf_cstr(&got), buf_cstr(&want));
    /* A change to a frozen file after the checkpoint: thawed, dirty, and
     * replayed over its checkpoint records at the next start. */
    open_state(fx);
    queue_msg_id(fids[5], 0, id);
    assert_true(state_bounced(fx->s, id, 0, 20, "550 gone") > 0);
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_int_equal(m->rcpt[0].state, SRCPT_BOUNCED);
    assert_string_equal(m->rcpt[0].reason, "550 gone");
    assert_int_equal(m->rcpt[1].state, SRCPT_DEFERRED);
    buf_free(&want);
    buf_free(&got);
}

/* Files thawed because they came due and were deferred again freeze
 * again: the owner's loop (flush, then state_maybe_checkpoint) writes a
 * checkpoint once the recipients in memory pass twice the window, so they
 * never pile up until the journal's own checkpoint. */
static void test_window_bounded_between_checkpoints(void **state)
{
    struct fixture *fx = *state;
    char fids[10][QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    ten_files(fx, fids); /* 10 files of 2 messages of 2 recipients, due 1000 + k */
    state_set_active_limit(fx->s, 4);
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_int_equal(state_hot_recipients(fx->s), 4);
    unsigned long most = 0;
    int dispatched = 0, checkpoints = 0;
    const struct state_msg *m = NULL;
    while (dispatched < 100 && state_next_due(fx->s, 1010, &m, NULL) == 1) {
        state_msg_id(m, id);
        for (uint32_t r = 0; r < 2; r++)
            assert_true(state_deferred(fx->s, id, r, 1010, 5000, "451 again") > 0);
        state_dispatch_done(fx->s, id);
        dispatched++;
        if (state_hot_recipients(fx->s) > most)
            most = state_hot_recipients(fx->s);
        assert_int_equal(state_flush(fx->s), 0);
        int rc = state_maybe_checkpoint(fx->s, 0);
        assert_true(rc >= 0);
        checkpoints += rc;
    }
    assert_int_equal(dispatched, 20);
    assert_true(checkpoints >= 2);
    assert_true(most <= 2 * 4 + 4); /* without the rule: all 40 recipients */
    assert_true(state_hot_recipients(fx->s) <= 2 * 4 + 4);
    open_state(fx);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.deferred, 20);
    for (int k = 0; k < 10; k++) {
        queue_msg_id(fids[k], 1, id);
        const struct state_msg *x = state_find(fx->s, id);
        assert_non_null(x);
        assert_int_equal(x->rcpt[1].next_try, 5000);
        assert_string_equal(x->rcpt[1].reason, "451 again");
    }
}

/* 30 files of 2 messages of 2 recipients in active/, every recipient
 * deferred with its file's reason, checkpointed with a 5-recipient window
 * (so all but one file frozen); their ids in fids. */
#define MANY_FILES 30
static void many_frozen_files(struct fixture *fx, char fids[MANY_FILES][QUEUE_FILE_ID_LEN + 1])
{
    for (int k = 0; k < MANY_FILES; k++) {
        commit_file(fx->q, 2, fids[k]);
        assert_int_equal(queue_take(fx->q, fids[k]), 0);
    }
    open_state(fx);
    state_set_active_limit(fx->s, 5);
    assert_int_equal(state_learn_files(fx->s), 2 * MANY_FILES);
    for (int k = 0; k < MANY_FILES; k++)
        for (unsigned i = 0; i < 2; i++) {
            char id[QUEUE_ID_LEN + 1], why[32];
            queue_msg_id(fids[k], i, id);
            snprintf(why, sizeof(why), "451 file %d", k);
            for (uint32_t r = 0; r < 2; r++)
                assert_true(state_deferred(fx->s, id, r, 10, 1000 + k, why) > 0);
        }
    assert_int_equal(state_flush(fx->s), 0);
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_int_equal(state_hot_recipients(fx->s), 4);
}

/* state_each's fn: counts the messages and the most recipients in memory. */
static int count_and_watch(const struct state_msg *m, void *arg)
{
    struct fixture *fx = arg;
    fx->walked++;
    if (state_hot_recipients(fx->s) > fx->most_hot)
        fx->most_hot = state_hot_recipients(fx->s);
    return m->nrcpt == 2 ? 0 : -1;
}

/* A listing reads each frozen file back from the checkpoint and frees it
 * again: the recipients in memory never pass one file's beside the window. */
static void test_listing_frees_what_it_reads(void **state)
{
    struct fixture *fx = *state;
    char fids[MANY_FILES][QUEUE_FILE_ID_LEN + 1];
    many_frozen_files(fx, fids);
    struct state *ro = NULL;
    const char *why = NULL;
    assert_int_equal(state_open(&ro, fx->q, STATE_OPEN_READONLY, NULL, &why), 0);
    assert_int_equal(state_hot_recipients(ro), 0); /* the replay froze every file */
    unsigned long most = 0;
    for (int k = 0; k < MANY_FILES; k++) {
        const struct state_file *f = state_find_file(ro, fids[k]);
        char want[32];
        snprintf(want, sizeof(want), "451 file %d", k);
        assert_non_null(f);
        assert_int_equal(f->nmsg, 2);
        assert_string_equal(f->msg[1].rcpt[1].reason, want);
        if (state_hot_recipients(ro) > most)
            most = state_hot_recipients(ro);
        state_file_done(ro, fids[k]);
    }
    assert_int_equal(most, 4); /* one file at a time; without the rule: 120 */
    assert_int_equal(state_hot_recipients(ro), 0);
    assert_true(state_knows_file(ro, fids[7]));
    assert_int_equal(state_hot_recipients(ro), 0); /* knowing thaws nothing */
    state_close(ro);
    /* The owner's full walk (delete --all) is bounded the same way. */
    assert_int_equal(state_each(fx->s, count_and_watch, fx), 0);
    assert_int_equal(fx->walked, 2 * MANY_FILES);
    assert_true(fx->most_hot <= 4 + 4);
    assert_true(state_hot_recipients(fx->s) <= 4 + 4);
    /* And the listing itself shows every message with its reason. */
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(qlist_print_queue(fx->q, 0, out), 0);
    rewind(out);
    struct buf text = BUF_INIT;
    char line[512];
    while (fgets(line, sizeof(line), out))
        buf_adds(&text, line);
    fclose(out);
    for (int k = 0; k < MANY_FILES; k++) {
        char id[QUEUE_ID_LEN + 1], want[32];
        queue_msg_id(fids[k], 1, id);
        snprintf(want, sizeof(want), "(451 file %d)", k);
        assert_non_null(strstr(buf_cstr(&text), id));
        assert_non_null(strstr(buf_cstr(&text), want));
    }
    buf_free(&text);
}

/* Learning a queue far larger than the window keeps memory near it:
 * checkpoints are written on the way and the files frozen. */
static void test_learning_bounded_by_the_window(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    for (int k = 0; k < 30; k++) {
        commit_file(fx->q, 2, fid);
        assert_int_equal(queue_take(fx->q, fid), 0); /* taken earlier: in active/ */
    }
    open_state(fx);
    state_set_active_limit(fx->s, 8);
    assert_int_equal(state_learn_files(fx->s), 60);
    assert_true(state_hot_recipients(fx->s) <= 2 * 8 + 8);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 60);
    assert_int_equal(c.active, 60);
    assert_int_equal(state_flush(fx->s), 0);
    open_state(fx);
    state_count(fx->s, &c);
    assert_int_equal(c.total, 60);
    int due = 0;
    const struct state_msg *m;
    while (state_next_due(fx->s, 1, &m, NULL))
        due++;
    assert_int_equal(due, 60);
}

/* The index of the checkpoint (state_index.h): a frozen file has no slot
 * in memory, before and after a restart, and is still found, counted,
 * listed, scheduled in due order and changed. */
static void test_frozen_files_cost_no_memory(void **state)
{
    struct fixture *fx = *state;
    char fids[MANY_FILES][QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    many_frozen_files(fx, fids);
    assert_int_equal(state_files_in_memory(fx->s), 1); /* before the index: 30 */
    for (int round = 0; round < 2; round++) {
        struct state_counts c;
        state_count(fx->s, &c);
        assert_int_equal(c.total, 2 * MANY_FILES);
        assert_int_equal(c.deferred, 2 * MANY_FILES);
        assert_true(c.oldest_arrival_us > 0);
        assert_true(state_knows_file(fx->s, fids[17]));
        assert_true(state_files_in_memory(fx->s) <= 1);
        open_state(fx); /* the replay skips the index's files */
        assert_true(state_files_in_memory(fx->s) <= 1);
        state_set_active_limit(fx->s, 5);
    }
    queue_msg_id(fids[12], 1, id);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_string_equal(m->rcpt[0].reason, "451 file 12");
    state_file_done(fx->s, fids[12]);
    assert_true(state_files_in_memory(fx->s) <= 1); /* read back, unchanged: gone again */
    fx->walked = 0;
    assert_int_equal(state_each(fx->s, count_and_watch, fx), 0);
    assert_int_equal(fx->walked, 2 * MANY_FILES);
    /* due in order of next try, the heap's files merged with the index's */
    for (int k = 0; k < MANY_FILES; k++)
        for (int i = 0; i < 2; i++) {
            int64_t wake;
            m = NULL;
            assert_int_equal(state_next_due(fx->s, 1000 + k, &m, &wake), 1);
            assert_memory_equal(m->file->fid, fids[k], QUEUE_FILE_ID_LEN);
            state_msg_id(m, id);
            for (uint32_t r = 0; r < 2; r++) /* a change to a frozen file sticks */
                assert_true((k == 3
                                 ? state_delivered(fx->s, id, r, 1003, "250 ok")
                                 : state_deferred(fx->s, id, r, 1000 + k, 9999, "451 later")) > 0);
            state_dispatch_done(fx->s, id);
        }
    assert_int_equal(due_now(fx, 1000 + MANY_FILES), NULL);
    assert_int_equal(state_flush(fx->s), 0);
    assert_int_equal(state_maybe_checkpoint(fx->s, 1), 1);
    assert_true(state_files_in_memory(fx->s) <= 2); /* file 3: its cleaner work pending */
    open_state(fx);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 2 * MANY_FILES - 2);
    queue_msg_id(fids[3], 0, id);
    assert_null(state_find(fx->s, id));
}

/* A damaged index (or one of another checkpoint) is not used: the
 * checkpoint is read whole, nothing is lost, and a new index is written. */
static void test_damaged_index_read_around(void **state)
{
    struct fixture *fx = *state;
    char fids[MANY_FILES][QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    many_frozen_files(fx, fids);
    state_close(fx->s);
    fx->s = NULL;
    struct buf cmd = BUF_INIT;
    buf_printf(&cmd,
               "cd '%s/state' && ls index.* | wc -l | grep -qx 1 && f=$(ls index.*) && "
               "printf Z | dd of=$f bs=1 seek=300 conv=notrunc 2>/dev/null && "
               "cp $f index.00000000000000ff",
               fx->dir);
    assert_int_equal(system(buf_cstr(&cmd)), 0);
    open_state(fx);
    struct state_counts c;
    state_count(fx->s, &c);
    assert_int_equal(c.total, 2 * MANY_FILES);
    assert_int_equal(c.deferred, 2 * MANY_FILES);
    queue_msg_id(fids[20], 0, id);
    const struct state_msg *m = state_find(fx->s, id);
    assert_non_null(m);
    assert_string_equal(m->rcpt[1].reason, "451 file 20");
    /* the open wrote a checkpoint with a good index: the files left memory */
    assert_true(state_files_in_memory(fx->s) <= 2);
    buf_clear(&cmd);
    buf_printf(
        &cmd,
        "cd '%s/state' && test $(ls index.* | wc -l) -eq 1 && ! test -e index.00000000000000ff",
        fx->dir);
    assert_int_equal(system(buf_cstr(&cmd)), 0);
    buf_free(&cmd);
    open_state(fx);
    assert_true(state_files_in_memory(fx->s) <= 2);
    state_count(fx->s, &c);
    assert_int_equal(c.total, 2 * MANY_FILES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_learn_asks_take_once_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_files_learned_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal_due_times_first_in_first_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learned_in_active_due_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_waits_for_next_try, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finished_message_reclaimed_file_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_finished_in_one_group_removed_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_outcomes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_by_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_gives_back_the_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_not_done_offered_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_take_need_asked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_owner_and_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_without_state_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_gone_by_hand_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format2_log_imported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_freezes_beyond_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_state_survives_touch_checkpoint_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_window_bounded_between_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_frees_what_it_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learning_bounded_by_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_files_cost_no_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_index_read_around, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
