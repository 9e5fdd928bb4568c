/*
 * test_state_retry_now — state_retry_now (queue/state.h), the 'W' record: a
 * deferred recipient made due now by a flush or a D8 wake-up is not an
 * attempt. One test per rule: due at once with its attempts, last try and
 * reason kept; the same after a replay of the journal and after a
 * checkpoint; a recipient of a frozen file (the active window's index)
 * thawed, made due and due again after a restart; refused for a recipient
 * that is not deferred, an unknown message, a read-only open. And its
 * sibling state_suspended, the 'S' record: deferred without an attempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>

#include "clean_proto.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "state.h"

#define FILES 6

struct world {
    char dir[64];
    struct queue *q;
    struct state *s;
    char fid[FILES][QUEUE_FILE_ID_LEN + 1];
    char id[FILES][QUEUE_ID_LEN + 1]; /* the one message of each file */
};

static void reopen(struct world *w, unsigned flags)
{
    const char *why = NULL;
    state_close(w->s);
    w->s = NULL;
    assert_int_equal(state_open(&w->s, w->q, flags, NULL, &why), 0);
}

/* FILES files of one message to bob and carol, learnt and taken; every
 * recipient deferred at 100 until 5000 + k (file k), one attempt each. */
static int setup(void **state)
{
    struct world *w = xcalloc(1, sizeof(*w));
    static const char *const rcpts[] = {"bob@b.test", "carol@c.test"};
    const char *why;
    log_open("test", "stderr");
    test_temp_dir(w->dir, sizeof(w->dir), "retrynow");
    if (queue_open(&w->q, w->dir, QUEUE_OPEN_CREATE, &why) != 0)
        return -1;
    for (int k = 0; k < FILES; k++) {
        struct queue_writer *qw;
        struct queue_envelope env = {"alice@a.test", rcpts, NULL, NULL, 2, NULL, 0};
        unsigned index;
        assert_int_equal(queue_writer_begin(w->q, &qw), 0);
        assert_int_equal(queue_writer_data(qw, "Subject: w\n\nbody\n", 17), 0);
        assert_int_equal(queue_writer_end_msg(qw, &env, &index), 0);
        assert_int_equal(queue_writer_commit(qw, w->fid[k]), 0);
        queue_msg_id(w->fid[k], 0, w->id[k]);
    }
    reopen(w, 0);
    assert_int_equal(state_learn_files(w->s), FILES);
    assert_int_equal(state_flush(w->s), 0);
    struct state_clean_req r;
    while (state_clean_next(w->s, &r)) {
        assert_int_equal(queue_take(w->q, r.id), 0);
        state_clean_done(w->s, &r, 0);
    }
    for (int k = 0; k < FILES; k++)
        for (uint32_t i = 0; i < 2; i++)
            assert_true(state_deferred(w->s, w->id[k], i, 100, 5000 + k, "451 4.3.0 later") > 0);
    assert_int_equal(state_flush(w->s), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    state_close(w->s);
    queue_close(w->q);
    int rc = test_remove_tree(w->dir);
    free(w);
    return rc;
}

/* Recipient i of message k: as deferred at 100 (one attempt, its reason),
 * due at next. */
static void assert_kept(struct world *w, int k, uint32_t i, int64_t next)
{
    const struct state_msg *m = state_find(w->s, w->id[k]);
    assert_non_null(m);
    const struct state_rcpt *x = &m->rcpt[i];
    assert_int_equal(x->state, SRCPT_DEFERRED);
    assert_int_equal(x->attempts, 1);
    assert_int_equal(x->last_try, 100);
    assert_string_equal(x->reason, "451 4.3.0 later");
    assert_int_equal(x->next_try, next);
}

/* Message k is the next due at now (left in flight). */
static void assert_due(struct world *w, int64_t now, int k)
{
    const struct state_msg *m = NULL;
    assert_int_equal(state_next_due(w->s, now, &m, NULL), 1);
    char id[QUEUE_ID_LEN + 1];
    state_msg_id(m, id);
    assert_string_equal(id, w->id[k]);
}

static void test_due_now_and_not_an_attempt(void **state)
{
    struct world *w = *state;
    const struct state_msg *none = NULL;
    assert_int_equal(state_next_due(w->s, 200, &none, NULL), 0);
    assert_true(state_retry_now(w->s, w->id[2], 1, 200, "flush") > 0);
    assert_int_equal(state_flush(w->s), 0);
    assert_kept(w, 2, 1, 200);
    assert_kept(w, 2, 0, 5002); /* the other recipient waits on */
    assert_due(w, 200, 2);
    assert_int_equal(state_next_due(w->s, 200, &none, NULL), 0); /* no other */
}

static void test_kept_by_replay_and_checkpoint(void **state)
{
    struct world *w = *state;
    assert_true(state_retry_now(w->s, w->id[3], 0, 300, "flush") > 0);
    assert_true(state_retry_now(w->s, w->id[3], 0, 310, "flush") > 0); /* twice: no attempt */
    assert_int_equal(state_flush(w->s), 0);
    reopen(w, 0); /* the journal replayed */
    assert_kept(w, 3, 0, 310);
    assert_due(w, 310, 3);
    assert_int_equal(state_maybe_checkpoint(w->s, 1), 1);
    reopen(w, 0); /* the checkpoint read */
    assert_kept(w, 3, 0, 310);
    reopen(w, STATE_OPEN_READONLY); /* what `onehop queue show` reads */
    assert_kept(w, 3, 0, 310);
}

static void test_a_frozen_file_thawed_and_due(void **state)
{
    struct world *w = *state;
    state_set_active_limit(w->s, 2); /* one file in memory, the rest in the index */
    assert_int_equal(state_maybe_checkpoint(w->s, 1), 1);
    assert_true(state_files_in_memory(w->s) < FILES);
    assert_true(state_retry_now(w->s, w->id[FILES - 1], 0, 400, "D8 wake-up") > 0);
    assert_int_equal(state_flush(w->s), 0);
    reopen(w, 0);
    state_set_active_limit(w->s, 2);
    assert_due(w, 400, FILES - 1);
    assert_kept(w, FILES - 1, 0, 400);
}

static void test_refused_unless_deferred(void **state)
{
    struct world *w = *state;
    assert_true(state_delivered(w->s, w->id[0], 0, 150, "250 ok") > 0);
    assert_int_equal(state_retry_now(w->s, w->id[0], 0, 160, "flush"), 0);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(state_retry_now(w->s, w->id[0], 2, 160, "flush"), 0); /* no recipient 2 */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(state_retry_now(w->s, "0PKX3B2Q7ZM012KG00", 0, 160, "flush"), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(state_flush(w->s), 0);
    reopen(w, STATE_OPEN_READONLY);
    assert_int_equal(state_retry_now(w->s, w->id[1], 0, 160, "flush"), 0);
    assert_int_equal(errno, EROFS);
}

/* state_suspended, the 'S' record (D8): deferred to its destination's
 * wake-up with its reason, no attempt counted, after a replay too. */
static void test_suspended_is_not_an_attempt(void **state)
{
    struct world *w = *state;
    assert_true(state_suspended(w->s, w->id[4], 1, 500, 900, "4.4.1 suspended") > 0);
    assert_int_equal(state_flush(w->s), 0);
    reopen(w, 0);
    const struct state_rcpt *x = &state_find(w->s, w->id[4])->rcpt[1];
    assert_int_equal(x->state, SRCPT_DEFERRED);
    assert_int_equal(x->attempts, 1);
    assert_int_equal(x->last_try, 100);
    assert_int_equal(x->next_try, 900);
    assert_string_equal(x->reason, "4.4.1 suspended");
    assert_due(w, 900, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_due_now_and_not_an_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_by_replay_and_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_frozen_file_thawed_and_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_unless_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspended_is_not_an_attempt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
