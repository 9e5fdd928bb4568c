/*
 * test_queue — the queue library (queue/queue.h): ids unique and sortable,
 * commit/read round trips, nothing visible before the commit, the state
 * log of format 2 files (written by queue_v2log.h, as older onehop did:
 * results, hold/release/delete, flags, damage), the owner lock, and recovery of each crash leftover
 * (dead writer's tmp file, torn state log append, finished file not yet unlinked, corrupt files,
 * strays), and commit slots: refill, and recovery of each slot leftover (empty, partial image,
 * complete image, CRC mismatch, locked by a live writer). Each test works in its own fresh queue
 * directory under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "queue.h"
#include "queue_impl.h" /* queue_file_id_new */
#include "queue_v2log.h"
#include "safeio.h"

/* ---------------------------------------------------------------- helpers ---- */
struct fixture {
    char dir[64];
    struct queue *q;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    test_temp_dir(fx->dir, sizeof(fx->dir), "queue");
    const char *why;
    if (queue_open(&fx->q, fx->dir, QUEUE_OPEN_CREATE, &why) != 0)
        return -1;
    *state = fx;
    return 0;
}

/* A queue whose writer makes format 2 files (with a state log), as older
 * onehop-queue did: formats 1 and 2 are still read and updated. */
static int setup_v2(void **state)
{
    if (setup(state) != 0)
        return -1;
    ((struct fixture *)*state)->q->write_version = 2;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    queue_close(fx->q);
    struct buf cmd = BUF_INIT;
    buf_printf(&cmd, "rm -rf '%s'", fx->dir);
    if (system(buf_cstr(&cmd)) != 0)
        return -1;
    buf_free(&cmd);
    free(fx);
    return 0;
}

static const char *const two_rcpts[] = {"bob@b.test", "carol@c.test"};

/* Commit one file holding `n` messages; message k has content "msg k\n"
 * repeated k times and the two recipients above. */
static void commit_file(struct queue *q, unsigned n, char *fid)
{
    struct queue_writer *w;
    assert_int_equal(queue_writer_begin(q, &w), 0);
    for (unsigned k = 0; k < n; k++) {
        struct buf content = BUF_INIT;
        for (unsigned i = 0; i < k; i++)
            buf_printf(&content, "msg %u\n", k);
        struct queue_attr attr = {"client", "localhost[127.0.0.1]"};
        struct queue_envelope env = {"alice@a.test", two_rcpts, NULL, NULL, 2, &attr, 1};
        assert_int_equal(queue_writer_data(w, content.s ? content.s : "", content.len), 0);
        unsigned index;
        assert_int_equal(queue_writer_end_msg(w, &env, &index), 0);
        assert_int_equal(index, k);
        buf_free(&content);
    }
    assert_int_equal(queue_writer_commit(w, fid), 0);
}

static void file_path(const struct fixture *fx, const char *place, const char *fid, struct buf *out)
{
    char bucket[3];
    queue_bucket(fid, bucket);
    buf_clear(out);
    buf_printf(out, "%s/%s/%s/%s", fx->dir, place, bucket, fid);
}

static size_t count_names(const char *dir)
{
    struct buf cmd = BUF_INIT;
    buf_printf(&cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(buf_cstr(&cmd), "r");
    unsigned long n = 0;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%lu", &n), 1);
    pclose(p);
    buf_free(&cmd);
    return n;
}

static size_t count_dir(const struct fixture *fx, const char *sub)
{
    struct buf d = BUF_INIT;
    buf_printf(&d, "%s/%s", fx->dir, sub);
    size_t n = count_names(buf_cstr(&d));
    buf_free(&d);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, p, n), 0);
    close(fd);
}

/* What a reader finds: unfinished messages per place, and corrupt files
 * (in corrupt/, or failing to load in place). */
struct found {
    unsigned long total, incoming, active, corrupt;
};

static void count_place(struct queue *q, enum queue_place place, struct found *c)
{
    char **fids;
    size_t n;
    assert_int_equal(queue_list_files(q, place, &fids, &n), 0);
    for (size_t i = 0; i < n; i++) {
        struct queue_file f;
        if (place == QUEUE_CORRUPT || queue_load(q, fids[i], &f) != 0) {
            c->corrupt += place == QUEUE_CORRUPT || errno == EBADMSG;
            continue;
        }
        for (size_t k = 0; k < f.nmsg; k++) {
            if (queue_msg_state(&f.msg[k], f.place) == QSTATE_FINISHED)
                continue;
            c->total++;
            *(place == QUEUE_INCOMING ? &c->incoming : &c->active) += 1;
        }
        queue_file_free(&f);
    }
    queue_ids_free(fids, n);
}

static struct found count_found(struct queue *q)
{
    struct found c = {0};
    count_place(q, QUEUE_INCOMING, &c);
    count_place(q, QUEUE_ACTIVE, &c);
    count_place(q, QUEUE_CORRUPT, &c);
    return c;
}

/* Append format 2 state log records to file fid (in `place`). */
static void log_v2(const struct fixture *fx, const char *place, const char *fid,
                   const struct v2rec *r, size_t n)
{
    struct buf path = BUF_INIT;
    file_path(fx, place, fid, &path);
    assert_int_equal(v2_append(buf_cstr(&path), r, n), 0);
    buf_free(&path);
}

/* -------------------------------------------------------------------- ids ---- */
static void test_ids_unique_and_sorted(void **state)
{
    (void)state;
    char prev[QUEUE_ID_LEN + 1] = "";
    for (int i = 0; i < 20000; i++) {
        char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
        queue_file_id_new(fid, NULL);
        assert_true(queue_file_id_valid(fid));
        queue_msg_id(fid, (unsigned)(i % QUEUE_FILE_MSGS_MAX), id);
        assert_true(queue_id_valid(id));
        assert_true(strcmp(prev, fid) < 0); /* strictly increasing: unique */
        memcpy(prev, fid, sizeof(fid));
    }
}

static void test_id_time_and_index(void **state)
{
    (void)state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    uint64_t us, decoded;
    queue_file_id_new(fid, &us);
    queue_msg_id(fid, 1023, id);
    assert_string_equal(id + QUEUE_FILE_ID_LEN, "ZZ");
    queue_msg_id(fid, 33, id);
    assert_string_equal(id + QUEUE_FILE_ID_LEN, "11");
    assert_int_equal(queue_id_time(id, &decoded), 0);
    assert_int_equal(decoded, us);
    assert_true(llabs((long long)(decoded / 1000000) - (long long)time(NULL)) < 5);
}

struct id_row {
    const char *id;
    int msg_valid, file_valid;
};

static const struct id_row id_rows[] = {
    {"0PKX3B2Q7ZM012KG00", 1, 0},
    {"0PKX3B2Q7ZM012KG", 0, 1},
    {"0PKX3B2Q7ZM012KGZZ", 1, 0},
    {"0PKX3B2Q7ZM012KI00", 0, 0},
    {"0PKX3B2Q7ZM012KL00", 0, 0},
    {"0PKX3B2Q7ZM012KO00", 0, 0},
    {"0PKX3B2Q7ZM012KU00", 0, 0},
    {"0pkx3b2q7zm012kg00", 0, 0},
    {"0PKX3B2Q7ZM012KG0", 0, 0},
    {"0PKX3B2Q7ZM012KG000", 0, 0},
    {"", 0, 0},
    {"../../etc/passwd", 0, 0},
    {"0PKX3B2Q7ZM012K/00", 0, 0},
};

static void test_id_validation_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(id_rows) / sizeof(id_rows[0]); i++) {
        if (queue_id_valid(id_rows[i].id) != id_rows[i].msg_valid ||
            queue_file_id_valid(id_rows[i].id) != id_rows[i].file_valid)
            fail_msg("row %zu: %s", i, id_rows[i].id);
    }
}

static void test_bucket(void **state)
{
    (void)state;
    char a[3], b[3];
    queue_bucket("0PKX3B2Q7ZM012KG", a);
    queue_bucket("0PKX3B2Q7ZM012KG05", b);
    assert_string_equal(a, b); /* a message id lives in its file's bucket */
    assert_int_equal(strspn(a, "0123456789abcdef"), 2);
    int used[QUEUE_BUCKETS] = {0}, distinct = 0;
    for (int i = 0; i < 4096; i++) {
        char fid[QUEUE_FILE_ID_LEN + 1];
        queue_file_id_new(fid, NULL);
        queue_bucket(fid, a);
        used[strtol(a, NULL, 16)] = 1;
    }
    for (int i = 0; i < QUEUE_BUCKETS; i++)
        distinct += used[i];
    assert_true(distinct > 200); /* consecutive ids spread over the buckets */
}

/* ---------------------------------------------------------- round trips ---- */
static void test_commit_round_trip(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 3, fid);
    assert_int_equal(count_dir(fx, "tmp"), 0);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.nmsg, 3);
    assert_int_equal(f.place, QUEUE_INCOMING);
    assert_int_equal(f.torn_bytes, 0);
    for (unsigned k = 0; k < 3; k++) {
        const struct queue_msg *m = &f.msg[k];
        char id[QUEUE_ID_LEN + 1];
        queue_msg_id(fid, k, id);
        assert_string_equal(m->id, id);
        assert_string_equal(m->sender, "alice@a.test");
        assert_int_equal(m->nrcpt, 2);
        assert_string_equal(m->rcpt[0].addr, "bob@b.test");
        assert_string_equal(m->rcpt[1].addr, "carol@c.test");
        assert_int_equal(m->rcpt[1].state, QRCPT_PENDING);
        assert_int_equal(m->nattr, 1);
        assert_string_equal(m->attr[0].name, "client");
        assert_string_equal(m->attr[0].value, "localhost[127.0.0.1]");
        assert_int_equal(m->size, 6 * k);
        assert_int_equal(queue_msg_state(m, f.place), QSTATE_INCOMING);
        struct buf content = BUF_INIT;
        assert_int_equal(queue_content_read(fx->q, &f, k, &content), 0);
        assert_int_equal(content.len, 6 * k);
        if (k == 2)
            assert_memory_equal(content.s, "msg 2\nmsg 2\n", 12);
        buf_free(&content);
    }
    queue_file_free(&f);
}

static void test_find_by_message_id(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    commit_file(fx->q, 2, fid);
    queue_msg_id(fid, 1, id);
    struct queue_file f;
    size_t index = 99;
    assert_int_equal(queue_find(fx->q, id, &f, &index), 0);
    assert_int_equal(index, 1);
    queue_file_free(&f);
    queue_msg_id(fid, 2, id); /* no such message in that file */
    assert_int_equal(queue_find(fx->q, id, &f, &index), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(queue_find(fx->q, "nonsense", &f, &index), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_nothing_visible_before_commit(void **state)
{
    struct fixture *fx = *state;
    struct queue_writer *w;
    struct queue_envelope env = {"", two_rcpts, NULL, NULL, 1, NULL, 0};
    assert_int_equal(queue_writer_begin(fx->q, &w), 0);
    assert_int_equal(queue_writer_data(w, "Subject: x\n\nhi\n", 15), 0);
    assert_int_equal(queue_writer_end_msg(w, &env, NULL), 0);
    char **fids;
    size_t n;
    assert_int_equal(queue_list_files(fx->q, QUEUE_INCOMING, &fids, &n), 0);
    assert_int_equal(n, 0);
    queue_ids_free(fids, n);
    assert_int_equal(count_dir(fx, "tmp"), 1);
    queue_writer_abort(w);
    assert_int_equal(count_dir(fx, "tmp"), 0);
    assert_int_equal(count_found(fx->q).total, 0);
}

static void test_writer_refuses_empty_commit_and_no_rcpt(void **state)
{
    struct fixture *fx = *state;
    struct queue_writer *w;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct queue_envelope env = {"a@b.test", two_rcpts, NULL, NULL, 0, NULL, 0};
    assert_int_equal(queue_writer_begin(fx->q, &w), 0);
    assert_int_equal(queue_writer_end_msg(w, &env, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(queue_writer_commit(w, fid), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(count_dir(fx, "tmp"), 0);
}

/* ---------------------------------------------- format 2 state logs ---- */
/* A format 2 file's log (written by queue_v2log.h, as older onehop did) is
 * replayed by every reader: recipient results, their order, final states. */
static void test_v2_log_states(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    assert_int_equal(queue_take(fx->q, fid), 0);
    struct v2rec u = {'f', 0, 1, 1000, 2000, 0, "connect: refused\r\nX"};
    log_v2(fx, "active", fid, &u, 1);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.place, QUEUE_ACTIVE);
    struct queue_rcpt *r = &f.msg[0].rcpt[1];
    assert_int_equal(r->state, QRCPT_PENDING);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->last_try, 1000);
    assert_int_equal(r->next_try, 2000);
    assert_string_equal(r->last_reason, "connect: refused??X");           /* controls sanitised */
    assert_int_equal(queue_msg_state(&f.msg[0], f.place), QSTATE_ACTIVE); /* rcpt 0 untried */
    queue_file_free(&f);

    struct v2rec two[2] = {{'d', 0, 0, 1100, 0, 0, "250 ok"},
                           {'f', 0, 1, 1100, 3000, 0, "451 later"}};
    log_v2(fx, "active", fid, two, 2);
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.msg[0].rcpt[0].state, QRCPT_DELIVERED);
    assert_int_equal(f.msg[0].rcpt[1].attempts, 2);
    assert_int_equal(queue_msg_state(&f.msg[0], f.place), QSTATE_DEFERRED);
    queue_file_free(&f);

    struct v2rec b = {'b', 0, 1, 1200, 0, 0, "550 no such user"};
    log_v2(fx, "active", fid, &b, 1);
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.msg[0].rcpt[1].state, QRCPT_BOUNCED);
    assert_string_equal(f.msg[0].rcpt[1].last_reason, "550 no such user");
    assert_int_equal(queue_msg_state(&f.msg[0], f.place), QSTATE_FINISHED);
    queue_file_free(&f);
    assert_int_equal(count_found(fx->q).total, 0); /* a finished message is not listed */
}

/* A record naming a recipient or message that does not exist makes the
 * file corrupt (the reader never guesses). */
static void test_v2_log_invalid_record_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], fid2[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    commit_file(fx->q, 1, fid2);
    struct v2rec bad[2] = {{'d', 0, 0, 1, 0, 0, "ok"}, {'d', 0, 2, 1, 0, 0, "no such rcpt"}};
    log_v2(fx, "incoming", fid, bad, 2);
    struct v2rec badmsg = {'h', 1, QUEUE_NO_RCPT, 1, 0, 0, NULL};
    log_v2(fx, "incoming", fid2, &badmsg, 1);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(queue_load(fx->q, fid2, &f), -1);
    assert_int_equal(errno, EBADMSG);
}

static void test_v2_final_state_sticks(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 1, fid);
    struct v2rec u[2] = {{'d', 0, 0, 5, 0, 0, "250 ok"}, {'f', 0, 0, 6, 99, 0, "late"}};
    log_v2(fx, "incoming", fid, u, 2);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.msg[0].rcpt[0].state, QRCPT_DELIVERED);
    assert_string_equal(f.msg[0].rcpt[0].last_reason, "250 ok");
    queue_file_free(&f);
}

static void test_v2_hold_release_delete_flags(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_file(fx->q, 2, fid);
    struct found c = count_found(fx->q);
    assert_int_equal(c.total, 2);
    assert_int_equal(c.incoming, 2);
    struct v2rec hold = {'h', 0, QUEUE_NO_RCPT, 10, 0, 0, NULL};
    log_v2(fx, "incoming", fid, &hold, 1);
    assert_int_equal(queue_take(fx->q, fid), 0);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(queue_msg_state(&f.msg[0], f.place), QSTATE_HOLD);
    assert_int_equal(queue_msg_state(&f.msg[1], f.place), QSTATE_ACTIVE);
    queue_file_free(&f);

    struct v2rec more[3] = {{'r', 0, QUEUE_NO_RCPT, 11, 0, 0, NULL},
                            {'g', 1, 0, 12, 0, 4, NULL},
                            {'g', 1, QUEUE_NO_RCPT, 12, 0, 8, NULL}};
    log_v2(fx, "active", fid, more, 3);
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.msg[0].held, 0);
    assert_int_equal(f.msg[1].rcpt[0].flags, 4);
    assert_int_equal(f.msg[1].flags, 8);
    queue_file_free(&f);

    struct v2rec del = {'x', 0, QUEUE_NO_RCPT, 13, 0, 0, "admin"};
    log_v2(fx, "active", fid, &del, 1);
    c = count_found(fx->q);
    assert_int_equal(c.total, 1);
    assert_int_equal(c.active, 1);
}

static void test_owner_lock(void **state)
{
    struct fixture *fx = *state;
    struct queue *other;
    const char *why;
    assert_int_equal(queue_open(&other, fx->dir, 0, &why), 0);
    assert_int_equal(queue_lock_owner(fx->q, 0), 0);
    assert_int_equal(queue_lock_owner(other, 0), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    queue_unlock_owner(fx->q);
    assert_int_equal(queue_lock_owner(other, 0), 0);
    queue_close(other);
}

static void test_open_without_create_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    struct queue *q;
    const char *why = NULL;
    struct buf d = BUF_INIT;
    buf_printf(&d, "%s/not-there", fx->dir);
    assert_int_equal(queue_open(&q, buf_cstr(&d), 0, &why), -1);
    assert_non_null(why);
    buf_free(&d);
}

/* --------------------------------------------------------------- recovery ---- */
static void test_recover_removes_dead_writers_tmp_only(void **state)
{
    struct fixture *fx = *state;
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/tmp/0PKX3B2Q7ZM012KG", fx->dir);
    int dead = open(buf_cstr(&p), O_CREAT | O_WRONLY, 0600);
    assert_true(dead >= 0);
    close(dead); /* its writer died: no lock */
    struct queue_writer *live;
    assert_int_equal(queue_writer_begin(fx->q, &live), 0); /* holds its lock */
    assert_int_equal(count_dir(fx, "tmp"), 2);
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.tmp_removed, 1);
    assert_int_equal(count_dir(fx, "tmp"), 1);
    queue_writer_abort(live);
    buf_free(&p);
}

static void test_torn_tail_ignored_then_repaired(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    commit_file(fx->q, 1, fid);
    struct v2rec u = {'f', 0, 0, 1, 50, 0, "451"};
    log_v2(fx, "incoming", fid, &u, 1);
    file_path(fx, "incoming", fid, &path);
    off_t good = file_size(buf_cstr(&path));
    append_bytes(buf_cstr(&path), "d\0\0\0\x40partial", 12); /* a torn append */
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.torn_bytes, 12);
    assert_int_equal(f.msg[0].rcpt[0].attempts, 1);
    queue_file_free(&f);
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.tails_repaired, 1);
    assert_int_equal(file_size(buf_cstr(&path)), good);
    buf_free(&path);
}

/* A log longer than one append (64 KiB) is read whole. */
static void test_long_v2_log_read_whole(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    char text[1001];
    memset(text, 'x', 1000);
    text[1000] = '\0';
    commit_file(fx->q, 1, fid);
    struct v2rec u[100];
    for (int i = 0; i < 100; i++)
        u[i] = (struct v2rec){'f', 0, 0, (uint64_t)i + 1, 50, 0, text};
    log_v2(fx, "incoming", fid, u, 100); /* ~104 KiB */
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.torn_bytes, 0);
    assert_int_equal(f.msg[0].rcpt[0].attempts, 100);
    queue_file_free(&f);
}

/* A bad record far from the end of the log is damage, not a torn append:
 * the file is quarantined instead of the later records being dropped. */
static void test_damaged_record_before_the_last_append_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    char text[1001];
    struct buf path = BUF_INIT;
    memset(text, 'y', 1000);
    text[1000] = '\0';
    commit_file(fx->q, 1, fid);
    file_path(fx, "incoming", fid, &path);
    off_t log_start = file_size(buf_cstr(&path));
    struct v2rec u = {'f', 0, 0, 1, 50, 0, text};
    for (int i = 0; i < 80; i++) /* 80 appends of ~1 KiB */
        log_v2(fx, "incoming", fid, &u, 1);
    int fd = open(buf_cstr(&path), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "Z", 1, log_start + 40), 1); /* inside the first record */
    close(fd);
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(count_dir(fx, "corrupt"), 0); /* a reader only reads */
    struct queue_recovery r;
    assert_int_equal(queue_recover_files(fx->q, &r), 0);
    assert_int_equal(r.quarantined, 1);
    assert_int_equal(count_dir(fx, "corrupt"), 1);
    buf_free(&path);
}

static void test_recover_unlinks_finished_file(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT, saved = BUF_INIT;
    commit_file(fx->q, 1, fid);
    file_path(fx, "incoming", fid, &path);
    buf_printf(&saved, "%s/saved", fx->dir);
    assert_int_equal(link(buf_cstr(&path), buf_cstr(&saved)), 0);
    /* an old writer's last appends finished it; it died before the unlink */
    struct v2rec u[2] = {{'d', 0, 0, 1, 0, 0, "ok"}, {'b', 0, 1, 1, 0, 0, "550"}};
    log_v2(fx, "incoming", fid, u, 2);
    assert_int_equal(count_found(fx->q).total, 0); /* finished messages are not listed */
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.finished_removed, 1);
    assert_int_equal(access(buf_cstr(&path), F_OK), -1);
    buf_free(&path);
    buf_free(&saved);
}

/* A listing counts a corrupt file, goes on, and leaves it for recovery. */
static void test_truncated_file_listing_goes_on(void **state)
{
    struct fixture *fx = *state;
    char bad[QUEUE_FILE_ID_LEN + 1], good[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    commit_file(fx->q, 1, bad);
    commit_file(fx->q, 1, good);
    file_path(fx, "incoming", bad, &path);
    assert_int_equal(truncate(buf_cstr(&path), 100), 0);
    struct found c = count_found(fx->q);
    assert_int_equal(c.total, 1);
    assert_int_equal(c.corrupt, 1);
    assert_int_equal(count_dir(fx, "corrupt"), 0);
    assert_int_equal(access(buf_cstr(&path), F_OK), 0);
    struct queue_recovery r;
    assert_int_equal(queue_recover_writer(fx->q, &r), 0); /* names only: not its part */
    assert_int_equal(r.quarantined, 0);
    assert_int_equal(queue_recover_files(fx->q, &r), 0);
    assert_int_equal(r.quarantined, 1);
    assert_int_equal(count_dir(fx, "corrupt"), 1);
    assert_int_equal(access(buf_cstr(&path), F_OK), -1);
    assert_int_equal(count_found(fx->q).corrupt, 1);
    buf_free(&path);
}

static void test_random_bytes_file_quarantined_by_recovery(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    commit_file(fx->q, 1, fid);
    file_path(fx, "incoming", fid, &path);
    int fd = open(buf_cstr(&path), O_WRONLY | O_TRUNC);
    unsigned char junk[4096];
    srand(7);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    assert_int_equal(write_all(fd, junk, sizeof(junk)), 0);
    close(fd);
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.quarantined, 1);
    assert_int_equal(count_dir(fx, "corrupt"), 1);
    buf_free(&path);
}

static void test_recover_strays_and_wrong_bucket(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], bucket[3];
    struct buf path = BUF_INIT, wrong = BUF_INIT, stray = BUF_INIT;
    commit_file(fx->q, 1, fid);
    file_path(fx, "incoming", fid, &path);
    queue_bucket(fid, bucket);
    buf_printf(&wrong, "%s/incoming/%s/%s", fx->dir, strcmp(bucket, "00") ? "00" : "01", fid);
    assert_int_equal(rename(buf_cstr(&path), buf_cstr(&wrong)), 0);
    buf_printf(&stray, "%s/incoming/%s/core.1234", fx->dir, bucket);
    int fd = open(buf_cstr(&stray), O_CREAT | O_WRONLY, 0600);
    close(fd);
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.strays, 1);
    assert_int_equal(access(buf_cstr(&path), F_OK), 0); /* back in its bucket */
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    queue_file_free(&f);
    buf_free(&path);
    buf_free(&wrong);
    buf_free(&stray);
}

/* Every single-byte change in the header, envelope or log of a real file is
 * either refused (corrupt) or harmless; none may crash (ASan runs this). */
static void flip_every_byte(struct fixture *fx, int with_log)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT, img = BUF_INIT;
    commit_file(fx->q, 2, fid);
    struct v2rec u = {'f', 1, 1, 1, 10, 0, "451 try later"};
    if (with_log)
        log_v2(fx, "incoming", fid, &u, 1);
    file_path(fx, "incoming", fid, &path);
    assert_int_equal(read_file(buf_cstr(&path), &img, 0), 0);
    struct queue_file f;
    const char *why;
    assert_int_equal(queue_parse(img.s, img.len, fid, &f, &why), 0);
    queue_file_free(&f);
    size_t refused = 0;
    for (size_t i = 0; i < img.len; i++) {
        img.s[i] ^= 0x41;
        if (queue_parse(img.s, img.len, fid, &f, &why) == 0)
            queue_file_free(&f);
        else
            refused++;
        img.s[i] ^= 0x41;
        if (queue_parse(img.s, i, fid, &f, &why) == 0) /* and every truncation */
            queue_file_free(&f);
    }
    assert_true(refused > img.len / 2);
    buf_free(&img);
    buf_free(&path);
}

/* Format 3 (header, content, envelope) ... */
static void test_parse_every_byte_flipped(void **state)
{
    flip_every_byte(*state, 0);
}

/* ... and format 2 with a state log. */
static void test_parse_every_byte_flipped_v2(void **state)
{
    flip_every_byte(*state, 1);
}

/* ------------------------------------------------------------- format 3 ---- */
static void copy_file(const char *from, const char *to)
{
    struct buf img = BUF_INIT;
    assert_int_equal(read_file(from, &img, 0), 0);
    int fd = open(to, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, img.s, img.len), 0);
    close(fd);
    buf_free(&img);
}

/* Another valid file's image under a file's name is refused: the header
 * names its own file id (issue 8 item 5). So is a file renamed. */
static void test_v3_header_names_its_file(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_FILE_ID_LEN + 1], b[QUEUE_FILE_ID_LEN + 1], c[QUEUE_FILE_ID_LEN + 1];
    char id[QUEUE_ID_LEN + 1];
    struct buf pa = BUF_INIT, pb = BUF_INIT, pc = BUF_INIT, img = BUF_INIT;
    commit_file(fx->q, 1, a);
    commit_file(fx->q, 2, b);
    commit_file(fx->q, 1, c);
    file_path(fx, "incoming", a, &pa);
    file_path(fx, "incoming", b, &pb);
    assert_int_equal(read_file(buf_cstr(&pa), &img, 0), 0);
    assert_memory_equal(img.s, "OHQUEUE3", 8);
    assert_memory_equal(img.s + 40, a, QUEUE_FILE_ID_LEN);
    copy_file(buf_cstr(&pb), buf_cstr(&pa)); /* a now holds b's image */
    struct queue_file f;
    const char *why;
    assert_int_equal(queue_load(fx->q, a, &f), -1);
    assert_int_equal(errno, EBADMSG);
    queue_msg_id(a, 0, id);
    struct queue_msg_fd m;
    assert_int_equal(queue_msg_open(fx->q, id, &m, &why), -1);
    assert_int_equal(errno, EBADMSG);
    assert_string_equal(why, "file id in the header does not match the file's name");
    /* renamed to another valid id (in its right bucket) */
    char moved[QUEUE_FILE_ID_LEN + 1];
    memcpy(moved, c, sizeof(moved));
    moved[QUEUE_FILE_ID_LEN - 1] = moved[QUEUE_FILE_ID_LEN - 1] == '0' ? '1' : '0';
    file_path(fx, "incoming", c, &pc);
    struct buf pm = BUF_INIT;
    file_path(fx, "incoming", moved, &pm);
    char bucket[3];
    queue_bucket(moved, bucket);
    assert_int_equal(queue_make_bucket(fx->q, QDIR_INCOMING, bucket), 0);
    assert_int_equal(rename(buf_cstr(&pc), buf_cstr(&pm)), 0);
    queue_msg_id(moved, 0, id);
    assert_int_equal(queue_msg_open(fx->q, id, &m, &why), -1);
    assert_int_equal(errno, EBADMSG);
    /* recovery quarantines both; b itself is untouched */
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.quarantined, 2);
    assert_int_equal(count_dir(fx, "corrupt"), 2);
    assert_int_equal(queue_load(fx->q, b, &f), 0);
    assert_int_equal(f.version, 3);
    queue_file_free(&f);
    buf_free(&pa);
    buf_free(&pb);
    buf_free(&pc);
    buf_free(&pm);
    buf_free(&img);
}

/* A FIFO named like a queue file: every reader says corrupt at once (never
 * blocks in open), and the writer side of recovery moves it to corrupt/. */
static void test_fifo_named_like_a_queue_file(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    queue_file_id_new(fid, NULL);
    file_path(fx, "incoming", fid, &path);
    assert_int_equal(mkfifo(buf_cstr(&path), 0600), 0);
    alarm(20); /* a reader blocking in open(2) fails the test instead of hanging it */
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), -1);
    assert_int_equal(errno, EBADMSG);
    queue_msg_id(fid, 0, id);
    struct queue_msg_fd m;
    const char *why;
    assert_int_equal(queue_msg_open(fx->q, id, &m, &why), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(count_found(fx->q).corrupt, 1);
    struct queue_recovery r;
    assert_int_equal(queue_recover_writer(fx->q, &r), 0);
    assert_int_equal(r.strays, 1);
    alarm(0);
    assert_int_equal(count_dir(fx, "corrupt"), 1);
    buf_free(&path);
}

/* Message k's content range in file fid, from its loaded envelope. */
static void msg_range(struct fixture *fx, const char *fid, unsigned k, uint64_t *off, uint64_t *len)
{
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    *off = f.msg[k].content_offset;
    *len = f.msg[k].size;
    queue_file_free(&f);
}

static void flip_byte_at(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

/* queue_msg_open of message k of fid: its length, or (want_errno) the
 * failure it must give. */
static uint64_t open_msg(struct fixture *fx, const char *fid, unsigned k, int want_errno)
{
    char id[QUEUE_ID_LEN + 1];
    struct queue_msg_fd m;
    const char *why;
    queue_msg_id(fid, k, id);
    int rc = queue_msg_open(fx->q, id, &m, &why);
    if (want_errno) {
        assert_int_equal(rc, -1);
        assert_int_equal(errno, want_errno);
        return 0;
    }
    assert_int_equal(rc, 0);
    uint64_t n = m.length;
    queue_msg_fd_close(&m);
    return n;
}

/* queue_msg_open hands out fd + range of a verified message; a flipped
 * byte in one message's content fails that message only (distinct error),
 * and content read for show fails the same way. */
static void test_v3_message_crc(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    commit_file(fx->q, 3, fid);
    file_path(fx, "incoming", fid, &path);
    uint64_t off, len;
    msg_range(fx, fid, 2, &off, &len);
    struct queue_msg_fd m;
    const char *why;
    queue_msg_id(fid, 2, id);
    assert_int_equal(queue_msg_open(fx->q, id, &m, &why), 0);
    assert_int_equal(m.offset, off);
    assert_int_equal(m.length, 12);
    assert_int_equal(m.index, 2);
    assert_int_equal(m.place, QUEUE_INCOMING);
    assert_string_equal(m.file.msg[2].sender, "alice@a.test");
    char got[12];
    assert_int_equal(pread(m.fd, got, sizeof(got), (off_t)m.offset), 12);
    assert_memory_equal(got, "msg 2\nmsg 2\n", 12);
    int fl = fcntl(m.fd, F_GETFL);
    assert_int_equal(fl & O_ACCMODE, O_RDONLY);
    assert_true(fl & O_NONBLOCK);
    assert_true(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(m.fd, "x", 1), -1);
    queue_msg_fd_close(&m);
    assert_int_equal(m.fd, -1);
    flip_byte_at(buf_cstr(&path), off + 3);
    assert_int_equal(queue_msg_open(fx->q, id, &m, &why), -1);
    assert_int_equal(errno, EBADMSG);
    assert_string_equal(why, "message content checksum mismatch");
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0); /* the envelope is fine */
    struct buf content = BUF_INIT;
    assert_int_equal(queue_content_read(fx->q, &f, 2, &content), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(content.len, 0);
    assert_int_equal(queue_content_read(fx->q, &f, 1, &content), 0);
    assert_int_equal(content.len, 6);
    queue_file_free(&f);
    assert_int_equal(open_msg(fx, fid, 1, 0), 6); /* the others still open */
    open_msg(fx, fid, 3, ENOENT);                 /* no such message */
    buf_free(&content);
    buf_free(&path);
}

/* A hole punched over a finished message's range (the cleaner's RECLAIM)
 * breaks the body CRC but no other message: each carries its own. */
static void test_v3_hole_punched_neighbour(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT, big = BUF_INIT;
    struct queue_writer *w;
    for (int i = 0; i < 3 * 4096; i++)
        buf_addc(&big, (char)('a' + i % 26));
    buf_addc(&big, '\n');
    assert_int_equal(queue_writer_begin(fx->q, &w), 0);
    for (unsigned k = 0; k < 2; k++) {
        struct queue_envelope env = {"alice@a.test", two_rcpts, NULL, NULL, 2, NULL, 0};
        assert_int_equal(queue_writer_data(w, big.s, big.len), 0);
        assert_int_equal(queue_writer_end_msg(w, &env, NULL), 0);
    }
    assert_int_equal(queue_writer_commit(w, fid), 0);
    file_path(fx, "incoming", fid, &path);
    uint64_t off, len;
    msg_range(fx, fid, 0, &off, &len);
    int fd = open(buf_cstr(&path), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len), 0);
    struct qf_header h;
    const char *why;
    assert_int_equal(queue_check_body(fd, 1, &h, &why), -1); /* the body CRC is gone */
    close(fd);
    assert_int_equal(open_msg(fx, fid, 1, 0), big.len);
    open_msg(fx, fid, 0, EBADMSG); /* the punched one */
    buf_free(&big);
    buf_free(&path);
}

/* A format 3 file ends where its commit did: no state log is appended and
 * bytes after the committed length make it corrupt. */
static void test_v3_no_state_log(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT;
    commit_file(fx->q, 1, fid);
    file_path(fx, "incoming", fid, &path);
    off_t before = file_size(buf_cstr(&path));
    struct queue_file f;
    assert_int_equal(queue_load(fx->q, fid, &f), 0);
    assert_int_equal(f.committed_len, (uint64_t)before);
    queue_file_free(&f);
    append_bytes(buf_cstr(&path), "x", 1);
    assert_int_equal(queue_load(fx->q, fid, &f), -1);
    assert_int_equal(errno, EBADMSG);
    buf_free(&path);
}

/* ------------------------------------------------------------- commit slots ---- */
static struct queue *open_slots(const struct fixture *fx)
{
    struct queue *q;
    const char *why;
    assert_int_equal(queue_open(&q, fx->dir, QUEUE_OPEN_SLOTS, &why), 0);
    return q;
}

/* Names of the slots, sorted; *n receives how many. */
static char **slot_names(const struct fixture *fx, size_t *n)
{
    struct buf d = BUF_INIT;
    buf_printf(&d, "%s/slots", fx->dir);
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    FILE *p;
    struct buf cmd = BUF_INIT;
    buf_printf(&cmd, "ls '%s'", buf_cstr(&d));
    p = popen(buf_cstr(&cmd), "r");
    assert_non_null(p);
    char line[64];
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        v = xgrow(v, &cap, *n + 1, sizeof(*v));
        v[(*n)++] = xstrdup(line);
    }
    pclose(p);
    buf_free(&cmd);
    buf_free(&d);
    return v;
}

static void slot_path(const struct fixture *fx, const char *name, struct buf *out)
{
    buf_clear(out);
    buf_printf(out, "%s/slots/%s", fx->dir, name);
}

/* A committed slot image of one message: committed through a slot, then put
 * back into slot `name` as if the writer died between fdatasync and rename. */
static void committed_slot_image(const struct fixture *fx, struct queue *q, const char *name,
                                 char *fid)
{
    struct buf from = BUF_INIT, to = BUF_INIT;
    commit_file(q, 1, fid);
    file_path(fx, "incoming", fid, &from);
    slot_path(fx, name, &to);
    assert_int_equal(rename(buf_cstr(&from), buf_cstr(&to)), 0);
    buf_free(&from);
    buf_free(&to);
}

static void write_slot(const struct fixture *fx, const char *name, const void *p, size_t n)
{
    struct buf path = BUF_INIT;
    assert_true(queue_slots_dir(fx->q) >= 0); /* slots/ made on first use */
    slot_path(fx, name, &path);
    int fd = open(buf_cstr(&path), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, p, n), 0);
    close(fd);
    buf_free(&path);
}

static off_t slot_size(const struct fixture *fx, const char *name)
{
    struct buf path = BUF_INIT;
    slot_path(fx, name, &path);
    off_t n = file_size(buf_cstr(&path));
    buf_free(&path);
    return n;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void test_slot_commit_and_refill(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1], prev[QUEUE_ID_LEN + 1] = "";
    size_t index;
    struct queue_file f;
    /* first commit: slots/ is made and filled with one batch, one is used */
    commit_file(q, 1, fid);
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH - 1);
    assert_int_equal(count_dir(fx, "tmp"), 0);
    for (unsigned k = 2; k <= QUEUE_SLOT_BATCH / 2 + 1; k++) {
        commit_file(q, 1, fid);
        queue_msg_id(fid, 0, id);
        assert_true(strcmp(prev, id) < 0); /* ids sort by commit */
        memcpy(prev, id, sizeof(id));
        assert_int_equal(queue_find(q, id, &f, &index), 0);
        queue_file_free(&f);
    }
    /* the commit that left fewer than K/2 free slots refilled one batch */
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH / 2 - 1 + QUEUE_SLOT_BATCH);
    size_t n;
    char **v = slot_names(fx, &n);
    for (size_t i = 0; i < n; i++) {
        struct buf p = BUF_INIT;
        struct stat st;
        slot_path(fx, v[i], &p);
        assert_int_equal(stat(buf_cstr(&p), &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        buf_free(&p);
    }
    free_names(v, n);
    queue_close(q);
}

static void test_slot_empty_left_alone(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(queue_slots_refill(fx->q), QUEUE_SLOT_BATCH);
    size_t n;
    char **v = slot_names(fx, &n);
    struct buf p = BUF_INIT;
    slot_path(fx, v[0], &p);
    assert_int_equal(chmod(buf_cstr(&p), 0), 0); /* a refill cut before it was made ready */
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.slots_committed + r.slots_freed + r.quarantined + r.strays, 0);
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH);
    struct stat st;
    assert_int_equal(stat(buf_cstr(&p), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    buf_free(&p);
    free_names(v, n);
}

static void test_slot_partial_image_freed(void **state)
{
    struct fixture *fx = *state;
    char name[QUEUE_FILE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    unsigned char img[4096] = {0}; /* header never written: zeros, then content */
    memcpy(img + 64, "Subject: x\n\nhello\n", 18);
    write_slot(fx, name, img, sizeof(img));
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.slots_freed, 1);
    assert_int_equal(r.slots_committed, 0);
    assert_int_equal(slot_size(fx, name), 0);
    assert_int_equal(count_found(fx->q).total, 0);
}

static void test_slot_complete_image_committed(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char name[QUEUE_FILE_ID_LEN + 1], fid[QUEUE_FILE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    committed_slot_image(fx, q, name, fid);
    assert_int_equal(count_found(q).total, 0); /* seen only by recovery */
    struct queue_recovery r;
    assert_int_equal(queue_recover(q, &r), 0);
    assert_int_equal(r.slots_committed, 1);
    assert_int_equal(r.slots_freed, 0);
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH - 1); /* the slot name is gone */
    /* the id is the one its writer chose, named in the header (format 3) */
    queue_msg_id(fid, 0, id);
    struct queue_file f;
    size_t index;
    assert_int_equal(queue_find(q, id, &f, &index), 0);
    assert_string_equal(f.msg[0].sender, "alice@a.test");
    queue_file_free(&f);
    queue_close(q);
}

/* A committed slot whose header's id is taken in incoming/ meanwhile gets
 * a fresh id, and its header is rewritten to name it. */
static void test_slot_committed_id_taken(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char name[QUEUE_FILE_ID_LEN + 1], fid[QUEUE_FILE_ID_LEN + 1];
    struct buf slot = BUF_INIT, taken = BUF_INIT;
    queue_file_id_new(name, NULL);
    committed_slot_image(fx, q, name, fid);
    slot_path(fx, name, &slot);
    file_path(fx, "incoming", fid, &taken);
    struct buf img = BUF_INIT;
    assert_int_equal(read_file(buf_cstr(&slot), &img, 0), 0);
    int fd = open(buf_cstr(&taken), O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, img.s, img.len), 0); /* fid is taken (same image) */
    close(fd);
    struct queue_recovery r;
    assert_int_equal(queue_recover(q, &r), 0);
    assert_int_equal(r.slots_committed, 1);
    char **fids;
    size_t n;
    assert_int_equal(queue_list_files(q, QUEUE_INCOMING, &fids, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        struct queue_file f;
        assert_int_equal(queue_load(q, fids[i], &f), 0); /* each named by its header */
        queue_file_free(&f);
    }
    assert_true(strcmp(fids[0], fid) == 0 || strcmp(fids[1], fid) == 0);
    queue_ids_free(fids, n);
    buf_free(&img);
    buf_free(&slot);
    buf_free(&taken);
    queue_close(q);
}

static void test_slot_crc_mismatch_freed(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char name[QUEUE_FILE_ID_LEN + 1], fid[QUEUE_FILE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    commit_file(q, 3, fid); /* a longer content, so a content byte can be flipped */
    struct buf from = BUF_INIT, img = BUF_INIT;
    file_path(fx, "incoming", fid, &from);
    assert_int_equal(read_file(buf_cstr(&from), &img, 0), 0);
    assert_int_equal(unlink(buf_cstr(&from)), 0);
    img.s[70] ^= 1; /* a block of content never reached the disk */
    write_slot(fx, name, img.s, img.len);
    struct queue_recovery r;
    assert_int_equal(queue_recover(q, &r), 0);
    assert_int_equal(r.slots_freed, 1);
    assert_int_equal(r.slots_committed, 0);
    assert_int_equal(slot_size(fx, name), 0);
    assert_int_equal(count_found(q).total, 0);
    buf_free(&from);
    buf_free(&img);
    queue_close(q);
}

static void test_slot_locked_left_alone(void **state)
{
    struct fixture *fx = *state;
    char name[QUEUE_FILE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    unsigned char img[1000] = {0};
    write_slot(fx, name, img, sizeof(img));
    struct buf p = BUF_INIT;
    slot_path(fx, name, &p);
    int live = open(buf_cstr(&p), O_RDWR);
    assert_true(live >= 0);
    assert_int_equal(flock(live, LOCK_EX), 0); /* a live writer */
    struct queue_recovery r;
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.slots_freed + r.slots_committed + r.quarantined, 0);
    assert_int_equal(slot_size(fx, name), 1000);
    close(live); /* the writer died */
    assert_int_equal(queue_recover(fx->q, &r), 0);
    assert_int_equal(r.slots_freed, 1);
    assert_int_equal(slot_size(fx, name), 0);
    buf_free(&p);
}

static void test_slot_writer_settles_leftover(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char name[QUEUE_FILE_ID_LEN + 1], fid[QUEUE_FILE_ID_LEN + 1], fid2[QUEUE_FILE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    committed_slot_image(fx, q, name, fid);
    size_t n;
    char **v = slot_names(fx, &n);
    for (size_t i = 0; i < n; i++) { /* only the leftover remains */
        struct buf p = BUF_INIT;
        slot_path(fx, v[i], &p);
        if (strcmp(v[i], name) != 0)
            assert_int_equal(unlink(buf_cstr(&p)), 0);
        buf_free(&p);
    }
    free_names(v, n);
    commit_file(q, 1, fid2); /* meets the leftover, commits it, refills, takes one */
    assert_int_equal(count_found(q).total, 2);
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH - 1);
    queue_close(q);
}

static void test_slot_dead_refillers_slot_used(void **state)
{
    struct fixture *fx = *state;
    struct queue *q = open_slots(fx);
    char name[QUEUE_FILE_ID_LEN + 1], fid[QUEUE_FILE_ID_LEN + 1];
    queue_file_id_new(name, NULL);
    write_slot(fx, name, "", 0);
    struct buf p = BUF_INIT;
    slot_path(fx, name, &p);
    assert_int_equal(chmod(buf_cstr(&p), 0), 0); /* its refiller died before the fsync */
    commit_file(q, 1, fid);                      /* fsyncs slots/, makes it ready, uses it */
    struct stat st;
    assert_int_equal(stat(buf_cstr(&p), &st), -1);              /* it was the one used */
    assert_int_equal(count_dir(fx, "slots"), QUEUE_SLOT_BATCH); /* then refilled: was low */
    assert_int_equal(count_dir(fx, "tmp"), 0);
    assert_int_equal(count_found(q).total, 1);
    buf_free(&p);
    queue_close(q);
}

static void test_body_crc_and_version1(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf path = BUF_INIT, img = BUF_INIT;
    commit_file(fx->q, 2, fid);
    file_path(fx, "incoming", fid, &path);
    assert_int_equal(read_file(buf_cstr(&path), &img, 0), 0);
    assert_memory_equal(img.s, "OHQUEUE2", 8);
    struct queue_file f;
    const char *why;
    img.s[QF_HEADER_SIZE + 2] ^= 1; /* content: only the body CRC covers it */
    assert_int_equal(queue_parse(img.s, img.len, fid, &f, &why), -1);
    assert_string_equal(why, "body checksum mismatch");
    img.s[QF_HEADER_SIZE + 2] ^= 1;
    /* the same file as version 1 (no body CRC) is still read */
    unsigned char *h = (unsigned char *)img.s;
    memcpy(h, "OHQUEUE1", 8);
    memset(h + 36, 0, 4);
    uint32_t crc = crc32c(0, h, 48);
    h[48] = (unsigned char)(crc >> 24);
    h[49] = (unsigned char)(crc >> 16);
    h[50] = (unsigned char)(crc >> 8);
    h[51] = (unsigned char)crc;
    assert_int_equal(queue_parse(img.s, img.len, fid, &f, &why), 0);
    assert_int_equal(f.nmsg, 2);
    queue_file_free(&f);
    buf_free(&img);
    buf_free(&path);
}

static void test_trigger(void **state)
{
    struct fixture *fx = *state;
    int keep = -1;
    queue_trigger_pull(fx->dir); /* no FIFO yet: nothing, no error */
    int rfd = queue_trigger_listen(fx->dir, &keep);
    assert_true(rfd >= 0);
    queue_trigger_pull(fx->dir);
    char c;
    assert_int_equal(read(rfd, &c, 1), 1);
    assert_int_equal(read(rfd, &c, 1), -1); /* non-blocking, nothing more */
    assert_int_equal(errno, EAGAIN);
    close(rfd);
    close(keep);
    queue_trigger_pull(fx->dir); /* FIFO without a reader: ENXIO ignored */
}

/* CRC-32C: RFC 3720 B.4's vectors and "123456789", and any length at any
 * alignment in pieces, the same as a bit-at-a-time reference, on both the
 * instruction path (where the CPU has it) and the table path. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void test_crc32c_values(void **state)
{
    (void)state;
    unsigned char zeros[32] = {0}, ones[32], inc[32], big[301];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 131 + 7);
    uint32_t (*fns[2])(uint32_t, const void *, size_t) = {crc32c, crc32c_portable};
    for (int f = 0; f < 2; f++) {
        assert_int_equal(fns[f](0, "123456789", 9), 0xE3069283u);
        assert_int_equal(fns[f](0, zeros, 32), 0x8A9136AAu);
        assert_int_equal(fns[f](0, ones, 32), 0x62A8AB43u);
        assert_int_equal(fns[f](0, inc, 32), 0x46DD794Eu);
        for (size_t off = 0; off < 9; off++)
            for (size_t len = 0; len + off <= sizeof(big); len += 13) {
                uint32_t want = crc_bitwise(0, big + off, len);
                assert_int_equal(fns[f](0, big + off, len), want);
                size_t cut = len / 3;
                assert_int_equal(fns[f](fns[f](0, big + off, cut), big + off + cut, len - cut),
                                 want);
            }
    }
}

int main(void)
{
    log_open("test", "stderr");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_values),
        cmocka_unit_test(test_ids_unique_and_sorted),
        cmocka_unit_test(test_id_time_and_index),
        cmocka_unit_test(test_id_validation_rows),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test_setup_teardown(test_commit_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_by_message_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_visible_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_refuses_empty_commit_and_no_rcpt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_v2_log_states, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_v2_log_invalid_record_is_corrupt, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_v2_final_state_sticks, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_v2_hold_release_delete_flags, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_owner_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_without_create_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_removes_dead_writers_tmp_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_ignored_then_repaired, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_long_v2_log_read_whole, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_before_the_last_append_is_corrupt,
                                        setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_recover_unlinks_finished_file, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_listing_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes_file_quarantined_by_recovery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recover_strays_and_wrong_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_every_byte_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_every_byte_flipped_v2, setup_v2, teardown),
        cmocka_unit_test_setup_teardown(test_v3_header_names_its_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_message_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_named_like_a_queue_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_hole_punched_neighbour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_no_state_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_commit_and_refill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_empty_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_partial_image_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_complete_image_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_committed_id_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_crc_mismatch_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_locked_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_writer_settles_leftover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_dead_refillers_slot_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_crc_and_version1, setup_v2, teardown),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
