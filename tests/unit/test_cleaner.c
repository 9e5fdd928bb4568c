/*
 * test_cleaner — onehop-queue --clean (queue/cleaner.c) and its channel's
 * codec (queue/clean_proto.c): one test per row of clean_proto.h's request
 * table (done, repeated after a crash, refused), ids that try to be paths,
 * symlinks and FIFOs named like queue files, the modes of a new queue and
 * state/ left alone, the hole punch of RECLAIM (blocks freed, no other byte
 * changed), the serving loop (order, end of input, protocol violation), and
 * the codec's refusals. Each test works in its own queue under /tmp.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel_core.h"
#include "clean_proto.h"
#include "cleaner.h"
#include "mem.h"
#include "queue.h"
#include "queue_impl.h" /* write_version: a format 2 group file */
#include "safeio.h"

/* ---------------------------------------------------------------- helpers ---- */
struct fixture {
    char dir[64];
    struct queue *q;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    const char *why;
    test_temp_dir(fx->dir, sizeof(fx->dir), "cleaner");
    /* a queue_dir made by queue_open itself (its mode is part of the test) */
    struct buf qd = BUF_INIT;
    buf_printf(&qd, "%s/q", fx->dir);
    if (queue_open(&fx->q, buf_cstr(&qd), QUEUE_OPEN_CREATE, &why) != 0)
        return -1;
    buf_free(&qd);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    queue_close(fx->q);
    struct buf cmd = BUF_INIT;
    buf_printf(&cmd, "rm -rf '%s'", fx->dir);
    int rc = system(buf_cstr(&cmd));
    buf_free(&cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static const char *const one_rcpt[] = {"bob@b.test"};

/* Content of message k: `size` bytes of lines of one letter (no NUL). */
static void content_of(unsigned k, size_t size, struct buf *out)
{
    buf_clear(out);
    for (size_t i = 0; i < size; i++)
        buf_addc(out, i % 64 == 63 || i + 1 == size ? '\n' : (char)('a' + k % 26));
}

/* Commit one file of n messages of `size` bytes each; fid receives its id. */
static void commit_msgs(struct queue *q, unsigned n, size_t size, char *fid)
{
    struct queue_writer *w;
    struct buf c = BUF_INIT;
    assert_int_equal(queue_writer_begin(q, &w), 0);
    for (unsigned k = 0; k < n; k++) {
        struct queue_envelope env = {"alice@a.test", one_rcpt, NULL, NULL, 1, NULL, 0};
        content_of(k, size, &c);
        assert_int_equal(queue_writer_data(w, c.s, c.len), 0);
        assert_int_equal(queue_writer_end_msg(w, &env, NULL), 0);
    }
    assert_int_equal(queue_writer_commit(w, fid), 0);
    buf_free(&c);
}

static void tree_path(const struct fixture *fx, const char *place, const char *fid, struct buf *out)
{
    char bucket[3];
    queue_bucket(fid, bucket);
    buf_clear(out);
    if (fid[0])
        buf_printf(out, "%s/q/%s/%s/%s", fx->dir, place, bucket, fid);
    else
        buf_printf(out, "%s/q/%s", fx->dir, place);
}

static int exists(const struct fixture *fx, const char *place, const char *fid)
{
    struct buf p = BUF_INIT;
    struct stat st;
    tree_path(fx, place, fid, &p);
    int rc = lstat(buf_cstr(&p), &st) == 0;
    buf_free(&p);
    return rc;
}

struct answer {
    int ok;
    uint32_t changed, err;
    uint64_t bytes;
    char text[256];
};

/* Send one request through the encoder, the decoder and cleaner_apply. */
static struct answer ask(struct fixture *fx, enum clean_type type, const char *id, const char *why)
{
    struct buf req = BUF_INIT, reply = BUF_INIT;
    struct ipc_reader r;
    struct clean_request rq;
    struct clean_reply rp;
    struct answer a;
    const char *err;
    clean_request_encode(&req, type, id, why);
    assert_int_equal(clean_request_decode(&r, req.s, req.len, &rq, &err), 0);
    cleaner_apply(fx->q, &rq, &reply);
    ipc_close(&r);
    assert_int_equal(clean_reply_decode(&r, reply.s, reply.len, &rp, &err), 0);
    a.ok = rp.ok;
    a.changed = rp.changed;
    a.err = rp.err;
    a.bytes = rp.bytes;
    snprintf(a.text, sizeof(a.text), "%s", rp.text);
    ipc_close(&r);
    buf_free(&req);
    buf_free(&reply);
    return a;
}

static void assert_ok(struct answer a, uint32_t changed, const char *text)
{
    if (!a.ok)
        fail_msg("ERR %u %s", a.err, a.text);
    assert_int_equal(a.changed, changed);
    assert_string_equal(a.text, text);
}

static void assert_err(struct answer a, uint32_t err)
{
    assert_false(a.ok);
    assert_int_equal(a.err, err);
}

static void slurp(const char *path, struct buf *out)
{
    buf_clear(out);
    assert_int_equal(read_file(path, out, 0), 0);
}

static void put_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static mode_t mode_of(const struct fixture *fx, const char *place)
{
    struct buf p = BUF_INIT;
    struct stat st;
    tree_path(fx, place, "", &p);
    assert_int_equal(lstat(buf_cstr(&p), &st), 0);
    buf_free(&p);
    return st.st_mode & 07777;
}

/* ------------------------------------------------------------ ownership ---- */
static void test_modes_of_a_new_queue(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    assert_int_equal(mode_of(fx, ""), 02755);
    assert_int_equal(mode_of(fx, "incoming"), 02750);
    assert_int_equal(mode_of(fx, "incoming/00"), 02750);
    assert_int_equal(mode_of(fx, "active/ff"), 02750);
    assert_int_equal(mode_of(fx, "corrupt"), 02750);
    /* the writer side: nobody else's; set-gid inherited, so the files made
     * there carry queue_dir's group into incoming/ */
    assert_int_equal(mode_of(fx, "tmp") & 0777, 0700);
    assert_int_equal(mode_of(fx, "lock") & 0777, 0700);
    assert_false(exists(fx, "state", "")); /* the router's, never made here */
    commit_msgs(fx->q, 1, 100, fid);
    struct buf p = BUF_INIT;
    struct stat st, top;
    tree_path(fx, "incoming", fid, &p);
    assert_int_equal(stat(buf_cstr(&p), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    tree_path(fx, "", "", &p);
    assert_int_equal(stat(buf_cstr(&p), &top), 0);
    assert_int_equal(st.st_gid, top.st_gid);
    buf_free(&p);
}

static void test_state_dir_left_alone(void **state)
{
    struct fixture *fx = *state;
    struct buf p = BUF_INIT, f = BUF_INIT, before = BUF_INIT, after = BUF_INIT;
    struct stat st0, st1;
    struct queue *q2;
    const char *why;
    tree_path(fx, "state", "", &p);
    assert_int_equal(mkdir(buf_cstr(&p), 0700), 0);
    buf_printf(&f, "%s/journal", buf_cstr(&p));
    put_file(buf_cstr(&f), "journal bytes", 0600);
    assert_int_equal(stat(buf_cstr(&p), &st0), 0);
    slurp(buf_cstr(&f), &before);
    tree_path(fx, "", "", &f);
    assert_int_equal(queue_open(&q2, buf_cstr(&f), QUEUE_OPEN_CREATE, &why), 0);
    queue_close(q2);
    assert_ok(ask(fx, CLEAN_RECOVER, NULL, NULL), 0,
              "tmp_removed=0 tails_repaired=0 quarantined=0 finished_removed=0 strays=0 "
              "slots_committed=0 slots_freed=0");
    assert_int_equal(stat(buf_cstr(&p), &st1), 0);
    assert_int_equal(st1.st_mode, st0.st_mode);
    assert_int_equal(st1.st_mtime, st0.st_mtime);
    assert_int_equal(st1.st_nlink, st0.st_nlink);
    buf_clear(&f);
    buf_printf(&f, "%s/journal", buf_cstr(&p));
    slurp(buf_cstr(&f), &after);
    assert_string_equal(buf_cstr(&after), buf_cstr(&before));
    buf_free(&p);
    buf_free(&f);
    buf_free(&before);
    buf_free(&after);
}

/* ----------------------------------------------------------------- TAKE ---- */
static void test_take_then_repeat(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_msgs(fx->q, 2, 300, fid);
    assert_ok(ask(fx, CLEAN_TAKE, fid, NULL), 1, "taken");
    assert_false(exists(fx, "incoming", fid));
    assert_true(exists(fx, "active", fid));
    assert_ok(ask(fx, CLEAN_TAKE, fid, NULL), 0, "already taken");
    assert_true(exists(fx, "active", fid));
}

/* A TAKE replayed after the file's REMOVE went through */
static void test_take_of_a_file_gone(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    commit_msgs(fx->q, 1, 100, fid);
    assert_ok(ask(fx, CLEAN_REMOVE, fid, NULL), 1, "unlinked from incoming/");
    assert_ok(ask(fx, CLEAN_TAKE, fid, NULL), 0, "already gone");
    assert_false(exists(fx, "active", fid));
}

/* --------------------------------------------------------------- REMOVE ---- */
static void test_remove_from_active_and_incoming_then_repeat(void **state)
{
    struct fixture *fx = *state;
    char a[QUEUE_FILE_ID_LEN + 1], b[QUEUE_FILE_ID_LEN + 1];
    commit_msgs(fx->q, 1, 100, a);
    commit_msgs(fx->q, 1, 100, b);
    assert_ok(ask(fx, CLEAN_TAKE, a, NULL), 1, "taken");
    assert_ok(ask(fx, CLEAN_REMOVE, a, NULL), 1, "unlinked from active/");
    assert_ok(ask(fx, CLEAN_REMOVE, b, NULL), 1, "unlinked from incoming/");
    assert_false(exists(fx, "active", a));
    assert_false(exists(fx, "incoming", b));
    assert_ok(ask(fx, CLEAN_REMOVE, a, NULL), 0, "already gone");
    assert_ok(ask(fx, CLEAN_REMOVE, b, NULL), 0, "already gone");
}

/* ----------------------------------------------------------- QUARANTINE ---- */
static void test_quarantine_then_repeat(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf p = BUF_INIT;
    struct stat st;
    commit_msgs(fx->q, 1, 100, fid);
    assert_ok(ask(fx, CLEAN_QUARANTINE, fid, "message content checksum mismatch"), 1,
              "moved to corrupt/");
    assert_false(exists(fx, "incoming", fid));
    buf_printf(&p, "%s/q/corrupt/%s", fx->dir, fid);
    assert_int_equal(lstat(buf_cstr(&p), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_ok(ask(fx, CLEAN_QUARANTINE, fid, "again"), 0, "already in corrupt/");
    assert_ok(ask(fx, CLEAN_QUARANTINE, "0PKX3B2Q7ZM012KG", "never was"), 0, "already gone");
    buf_free(&p);
}

/* -------------------------------------------------------------- RECOVER ---- */
static void test_recover_removes_a_dead_writers_file(void **state)
{
    struct fixture *fx = *state;
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/q/tmp/0PKX3B2Q7ZM012KG", fx->dir);
    put_file(buf_cstr(&p), "half", 0640); /* nobody locks it */
    struct answer a = ask(fx, CLEAN_RECOVER, NULL, NULL);
    assert_ok(a, 1,
              "tmp_removed=1 tails_repaired=0 quarantined=0 finished_removed=0 strays=0 "
              "slots_committed=0 slots_freed=0");
    assert_int_equal(access(buf_cstr(&p), F_OK), -1);
    assert_ok(ask(fx, CLEAN_RECOVER, NULL, NULL), 0,
              "tmp_removed=0 tails_repaired=0 quarantined=0 finished_removed=0 strays=0 "
              "slots_committed=0 slots_freed=0");
    buf_free(&p);
}

/* ------------------------------------------------------ ids, not paths ---- */
static void test_ids_that_are_paths_are_refused(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], mid[QUEUE_ID_LEN + 1];
    commit_msgs(fx->q, 1, 100, fid);
    queue_msg_id(fid, 0, mid);
    static const char *const bad[] = {"",
                                      ".",
                                      "..",
                                      "../../../etc/passwd",
                                      "0PKX3B2Q7ZM012K/",
                                      "0PKX3B2Q7ZM012K.",
                                      "/tmp/x",
                                      "0pkx3b2q7zm012kg",
                                      "0PKX3B2Q7ZM012KI",
                                      "0PKX3B2Q7ZM012KG0",
                                      "00/0PKX3B2Q7ZM012KG"};
    static const enum clean_type types[] = {CLEAN_TAKE, CLEAN_REMOVE, CLEAN_QUARANTINE,
                                            CLEAN_RECLAIM};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            assert_err(ask(fx, types[t], bad[i], "why"), EINVAL);
    /* a message id where a file id belongs, and the other way round */
    assert_err(ask(fx, CLEAN_TAKE, mid, NULL), EINVAL);
    assert_err(ask(fx, CLEAN_REMOVE, mid, NULL), EINVAL);
    assert_err(ask(fx, CLEAN_RECLAIM, fid, NULL), EINVAL);
    assert_true(exists(fx, "incoming", fid)); /* nothing changed */
}

/* A symlink named like a queue file, pointing at a file outside the queue:
 * never followed, never changed through, refused. */
static void test_symlink_is_not_followed(void **state)
{
    struct fixture *fx = *state;
    const char *fid = "0PKX3B2Q7ZM012KG";
    struct buf link = BUF_INIT, target = BUF_INIT, after = BUF_INIT;
    buf_printf(&target, "%s/outside", fx->dir);
    put_file(buf_cstr(&target), "precious", 0644);
    tree_path(fx, "active", fid, &link);
    assert_int_equal(symlink(buf_cstr(&target), buf_cstr(&link)), 0);
    assert_err(ask(fx, CLEAN_REMOVE, fid, NULL), ELOOP);
    char mid[QUEUE_ID_LEN + 1];
    queue_msg_id(fid, 0, mid);
    assert_err(ask(fx, CLEAN_RECLAIM, mid, NULL), ELOOP);
    slurp(buf_cstr(&target), &after);
    assert_string_equal(buf_cstr(&after), "precious");
    struct stat st;
    assert_int_equal(lstat(buf_cstr(&link), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* QUARANTINE moves the link itself (renamed, never opened) */
    assert_ok(ask(fx, CLEAN_QUARANTINE, fid, "a symlink"), 1, "moved to corrupt/");
    slurp(buf_cstr(&target), &after);
    assert_string_equal(buf_cstr(&after), "precious");
    buf_free(&link);
    buf_free(&target);
    buf_free(&after);
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(99); /* a FIFO hung the cleaner */
}

static void test_fifo_does_not_hang(void **state)
{
    struct fixture *fx = *state;
    const char *fid = "0PKX3B2Q7ZM012KG";
    struct buf p = BUF_INIT;
    tree_path(fx, "incoming", fid, &p);
    assert_int_equal(mkfifo(buf_cstr(&p), 0640), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    assert_err(ask(fx, CLEAN_TAKE, fid, NULL), EBADMSG);
    assert_err(ask(fx, CLEAN_REMOVE, fid, NULL), EBADMSG);
    assert_ok(ask(fx, CLEAN_QUARANTINE, fid, "a fifo"), 1, "moved to corrupt/");
    alarm(0);
    assert_false(exists(fx, "incoming", fid));
    buf_free(&p);
}

/* -------------------------------------------------------------- RECLAIM ---- */
static uint64_t allocated(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static int file_version(const char *path)
{
    struct buf b = BUF_INIT;
    slurp(path, &b);
    int v = b.len >= 8 && memcmp(b.s, "OHQUEUE", 7) == 0 ? b.s[7] - '0' : 0;
    buf_free(&b);
    return v;
}

static void test_reclaim_single_message(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], mid[QUEUE_ID_LEN + 1];
    struct buf p = BUF_INIT, before = BUF_INIT, after = BUF_INIT;
    struct queue_file f;
    commit_msgs(fx->q, 1, 40000, fid);
    queue_msg_id(fid, 0, mid);
    tree_path(fx, "incoming", fid, &p);
    slurp(buf_cstr(&p), &before);
    uint64_t was = allocated(buf_cstr(&p));
    struct answer a = ask(fx, CLEAN_RECLAIM, mid, NULL);
    assert_ok(a, 1, "punched");
    assert_int_equal(a.bytes, 40000); /* the content exactly: header and envelope blocks stay */
    slurp(buf_cstr(&p), &after);
    assert_int_equal(after.len, before.len);    /* never shortened */
    assert_memory_equal(after.s, before.s, 64); /* header */
    assert_memory_equal(after.s + 64 + 40000, before.s + 64 + 40000, before.len - 64 - 40000);
    for (size_t i = 64; i < 64 + 40000; i++)
        assert_int_equal(after.s[i], 0);
    assert_true(allocated(buf_cstr(&p)) + 32768 <= was); /* 9 whole 4 KiB blocks inside */
    assert_ok(ask(fx, CLEAN_RECLAIM, mid, NULL), 0, "already reclaimed");
    assert_int_equal(queue_load(fx->q, fid, &f), 0); /* envelope intact */
    queue_file_free(&f);
    /* a message index the file does not have */
    queue_msg_id(fid, 5, mid);
    assert_err(ask(fx, CLEAN_RECLAIM, mid, NULL), ENOENT);
    assert_ok(ask(fx, CLEAN_REMOVE, fid, NULL), 1, "unlinked from incoming/");
    queue_msg_id(fid, 0, mid);
    assert_ok(ask(fx, CLEAN_RECLAIM, mid, NULL), 0, "already gone");
    buf_free(&p);
    buf_free(&before);
    buf_free(&after);
}

/* Message k's content, read back through the library (which verifies its
 * format 3 CRC) and compared byte for byte with what was committed. */
static void assert_content_intact(struct fixture *fx, const char *fid, unsigned k, size_t size)
{
    char mid[QUEUE_ID_LEN + 1];
    struct queue_file f;
    struct buf got = BUF_INIT, want = BUF_INIT;
    size_t index;
    queue_msg_id(fid, k, mid);
    assert_int_equal(queue_find(fx->q, mid, &f, &index), 0);
    assert_int_equal(queue_content_read(fx->q, &f, index, &got), 0);
    content_of(k, size, &want);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.s, want.s, want.len);
    queue_file_free(&f);
    buf_free(&got);
    buf_free(&want);
}

/* Three messages in one group file, the middle one reclaimed: its
 * neighbours, the header and the envelope keep every byte. */
static void test_reclaim_keeps_the_neighbours(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], mid[QUEUE_ID_LEN + 1];
    struct buf p = BUF_INIT, before = BUF_INIT, after = BUF_INIT;
    commit_msgs(fx->q, 3, 10000, fid);
    tree_path(fx, "incoming", fid, &p);
    slurp(buf_cstr(&p), &before);
    assert_int_equal(file_version(buf_cstr(&p)), 3);
    queue_msg_id(fid, 1, mid);
    struct answer a = ask(fx, CLEAN_RECLAIM, mid, NULL);
    assert_ok(a, 1, "punched");
    assert_int_equal(a.bytes, 10000);
    slurp(buf_cstr(&p), &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.s, before.s, 64 + 10000); /* header, message 0 */
    assert_memory_equal(after.s + 64 + 20000, before.s + 64 + 20000,
                        before.len - 64 - 20000); /* message 2, envelope */
    assert_content_intact(fx, fid, 0, 10000);
    assert_content_intact(fx, fid, 2, 10000);
    buf_free(&p);
    buf_free(&before);
    buf_free(&after);
}

/* A format 2 group file: its body CRC covers every message, so a hole
 * would make the others fail their check: refused, nothing changed. */
static void test_reclaim_refuses_a_format2_group(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], mid[QUEUE_ID_LEN + 1];
    struct buf p = BUF_INIT, before = BUF_INIT, after = BUF_INIT;
    fx->q->write_version = 2;
    commit_msgs(fx->q, 3, 10000, fid);
    tree_path(fx, "incoming", fid, &p);
    slurp(buf_cstr(&p), &before);
    assert_int_equal(file_version(buf_cstr(&p)), 2);
    queue_msg_id(fid, 1, mid);
    assert_err(ask(fx, CLEAN_RECLAIM, mid, NULL), EOPNOTSUPP);
    slurp(buf_cstr(&p), &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.s, before.s, before.len);
    buf_free(&p);
    buf_free(&before);
    buf_free(&after);
}

/* The reclaim bound (docs/INTERNALS.md "Ownership and the cleaner"): one
 * group file of RB_MSGS messages, as the server mode's group commit writes
 * it, all reclaimed but one: the blocks still allocated are the header's,
 * the one message's (with the two blocks it shares with its neighbours)
 * and the envelope's. */
#define RB_MSGS 1000
#define RB_SIZE 7000 /* not a multiple of the block: every neighbour shares one */
#define RB_KEEP 500

static void test_reclaim_bound_of_a_group_file(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1], mid[QUEUE_ID_LEN + 1];
    struct buf p = BUF_INIT, hdr = BUF_INIT;
    struct stat st;
    commit_msgs(fx->q, RB_MSGS, RB_SIZE, fid);
    tree_path(fx, "incoming", fid, &p);
    assert_int_equal(file_version(buf_cstr(&p)), 3);
    assert_int_equal(stat(buf_cstr(&p), &st), 0);
    uint64_t size = (uint64_t)st.st_size, was = allocated(buf_cstr(&p));
    uint64_t unit = (uint64_t)st.st_blksize;
    assert_true(was >= (uint64_t)RB_MSGS * RB_SIZE);
    slurp(buf_cstr(&p), &hdr);
    const unsigned char *h = (const unsigned char *)hdr.s;
    uint64_t env_off = 0, env_len = 0;
    for (int i = 0; i < 8; i++)
        env_off = env_off << 8 | h[8 + i];
    for (int i = 0; i < 4; i++)
        env_len = env_len << 8 | h[16 + i];
    assert_int_equal(env_off + env_len, size);
    uint64_t punched = 0;
    for (unsigned k = 0; k < RB_MSGS; k++) {
        if (k == RB_KEEP)
            continue;
        queue_msg_id(fid, k, mid);
        struct answer a = ask(fx, CLEAN_RECLAIM, mid, NULL);
        assert_ok(a, 1, "punched");
        punched += a.bytes;
    }
    uint64_t left = allocated(buf_cstr(&p));
    uint64_t blocks_of = (RB_SIZE + unit - 1) / unit + 1;
    uint64_t bound = unit * (1 + blocks_of + (env_len + unit - 1) / unit + 1);
    print_message("reclaim bound: %u messages of %u bytes, file %llu bytes, allocated %llu -> "
                  "%llu bytes (bound %llu: header block, one message %llu blocks, envelope "
                  "%llu bytes), %llu bytes punched\n",
                  RB_MSGS, RB_SIZE, (unsigned long long)size, (unsigned long long)was,
                  (unsigned long long)left, (unsigned long long)bound,
                  (unsigned long long)blocks_of, (unsigned long long)env_len,
                  (unsigned long long)punched);
    assert_true(left <= bound);
    assert_int_equal(stat(buf_cstr(&p), &st), 0);
    assert_int_equal((uint64_t)st.st_size, size); /* never shortened */
    assert_content_intact(fx, fid, RB_KEEP, RB_SIZE);
    buf_free(&p);
    buf_free(&hdr);
}

/* -------------------------------------------------------------- serving ---- */
/* Serve the records of reqs from a pipe (fully written, then closed) and
 * return cleaner_serve's status; *replies is the read end of the pipe its
 * replies went to (the caller closes it). */
static int serve_pipes(struct fixture *fx, const struct buf *reqs, int *replies)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(chan_send_record(in[1], reqs->s, reqs->len, NULL, 0, -1), 0);
    close(in[1]);
    int status = cleaner_serve(fx->q, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    *replies = out[0];
    return status;
}

static void test_serve_answers_in_order_until_eof(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf reqs = BUF_INIT, rec = BUF_INIT;
    commit_msgs(fx->q, 1, 100, fid);
    clean_request_encode(&reqs, CLEAN_TAKE, fid, NULL);
    clean_request_encode(&reqs, CLEAN_TAKE, "..", NULL);
    clean_request_encode(&reqs, CLEAN_REMOVE, fid, NULL);
    int out;
    assert_int_equal(serve_pipes(fx, &reqs, &out), 0);
    static const char *const texts[] = {"taken", "not a file id: Invalid argument",
                                        "unlinked from active/"};
    for (int i = 0; i < 3; i++) {
        const char *why;
        struct ipc_reader r;
        struct clean_reply rp;
        assert_int_equal(chan_recv_record(out, CLEAN_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why), 1);
        assert_int_equal(clean_reply_decode(&r, rec.s, rec.len, &rp, &why), 0);
        assert_int_equal(rp.ok, i != 1);
        assert_string_equal(rp.text, texts[i]);
        ipc_close(&r);
    }
    const char *why;
    assert_int_equal(chan_recv_record(out, CLEAN_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why), 0);
    close(out);
    buf_free(&reqs);
    buf_free(&rec);
}

static void test_serve_stops_at_a_malformed_record(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    struct buf reqs = BUF_INIT, rec = BUF_INIT;
    struct ipc_writer w;
    commit_msgs(fx->q, 1, 100, fid);
    ipc_begin(&w, &reqs, 99); /* not a request */
    ipc_finish(&w);
    clean_request_encode(&reqs, CLEAN_REMOVE, fid, NULL);
    int out;
    assert_int_equal(serve_pipes(fx, &reqs, &out), 70);
    const char *why;
    assert_int_equal(chan_recv_record(out, CLEAN_RECORD_MAX, 0, -1, &rec, NULL, NULL, &why),
                     0);                      /* no reply */
    assert_true(exists(fx, "incoming", fid)); /* the request after it was not read */
    close(out);
    buf_free(&reqs);
    buf_free(&rec);
}

/* The router's channel carries no descriptor to the cleaner: one sent
 * along with a request is a protocol violation, and the request is not
 * carried out. */
static void test_serve_refuses_a_descriptor(void **state)
{
    struct fixture *fx = *state;
    char fid[QUEUE_FILE_ID_LEN + 1];
    int sv[2];
    struct buf req = BUF_INIT;
    commit_msgs(fx->q, 1, 100, fid);
    clean_request_encode(&req, CLEAN_REMOVE, fid, NULL);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int passed = open("/dev/null", O_RDONLY);
    assert_true(passed >= 0);
    assert_int_equal(chan_send_record(sv[0], req.s, req.len, &passed, 1, 5000), 0);
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(cleaner_serve(fx->q, sv[1], sv[1]), 70);
    assert_true(exists(fx, "incoming", fid));
    close(passed);
    close(sv[0]);
    close(sv[1]);
    buf_free(&req);
}

/* ---------------------------------------------------------------- codec ---- */
static void test_codec_round_trips(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct ipc_reader r;
    struct clean_request rq;
    struct clean_reply rp;
    const char *why;
    clean_request_encode(&b, CLEAN_QUARANTINE, "0PKX3B2Q7ZM012KG", "bad crc");
    assert_int_equal(clean_request_decode(&r, b.s, b.len, &rq, &why), 0);
    assert_int_equal(rq.type, CLEAN_QUARANTINE);
    assert_string_equal(rq.id, "0PKX3B2Q7ZM012KG");
    assert_string_equal(rq.why, "bad crc");
    ipc_close(&r);
    buf_clear(&b);
    clean_request_encode(&b, CLEAN_RECOVER, NULL, NULL);
    assert_int_equal(clean_request_decode(&r, b.s, b.len, &rq, &why), 0);
    assert_int_equal(rq.type, CLEAN_RECOVER);
    assert_string_equal(rq.id, "");
    ipc_close(&r);
    buf_clear(&b);
    clean_reply_ok(&b, 1, 12345, "punched");
    assert_int_equal(clean_reply_decode(&r, b.s, b.len, &rp, &why), 0);
    assert_true(rp.ok);
    assert_int_equal(rp.changed, 1);
    assert_int_equal(rp.bytes, 12345);
    assert_string_equal(rp.text, "punched");
    ipc_close(&r);
    buf_clear(&b);
    clean_reply_err(&b, ENOENT, "gone");
    assert_int_equal(clean_reply_decode(&r, b.s, b.len, &rp, &why), 0);
    assert_false(rp.ok);
    assert_int_equal(rp.err, ENOENT);
    ipc_close(&r);
    buf_free(&b);
}

/* Each malformed request, decoded: refused (a protocol violation). */
static void test_codec_refusals(void **state)
{
    (void)state;
    struct {
        uint16_t type;
        int nstr;
        int add_u32;
    } rows[] = {
        {CLEAN_TAKE, 0, 0},       /* no id */
        {CLEAN_TAKE, 2, 0},       /* an extra field */
        {CLEAN_RECLAIM, 0, 1},    /* a u32 for the id */
        {CLEAN_QUARANTINE, 1, 0}, /* no why */
        {CLEAN_RECOVER, 1, 0},    /* a field RECOVER has not */
        {CLEAN_OK, 1, 0},         /* a reply is not a request */
        {7, 1, 0},                /* unknown type */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct buf b = BUF_INIT;
        struct ipc_writer w;
        struct ipc_reader r;
        struct clean_request rq;
        const char *why = NULL;
        ipc_begin(&w, &b, rows[i].type);
        if (rows[i].add_u32)
            ipc_add_u32(&w, 1);
        for (int k = 0; k < rows[i].nstr; k++)
            ipc_add_str(&w, "0PKX3B2Q7ZM012KG");
        ipc_finish(&w);
        assert_int_equal(clean_request_decode(&r, b.s, b.len, &rq, &why), -1);
        assert_non_null(why);
        ipc_close(&r);
        buf_free(&b);
    }
    /* an id field longer than any id is refused by the decoder already */
    struct buf b = BUF_INIT;
    struct buf longid = BUF_INIT;
    for (int i = 0; i < 200; i++)
        buf_addc(&longid, 'A');
    clean_request_encode(&b, CLEAN_REMOVE, buf_cstr(&longid), NULL);
    struct ipc_reader r;
    struct clean_request rq;
    const char *why;
    assert_int_equal(clean_request_decode(&r, b.s, b.len, &rq, &why), -1);
    ipc_close(&r);
    buf_free(&b);
    buf_free(&longid);
}

/* a test run in its own fresh queue */
#define IN_QUEUE(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        IN_QUEUE(test_modes_of_a_new_queue),
        IN_QUEUE(test_state_dir_left_alone),
        IN_QUEUE(test_take_then_repeat),
        IN_QUEUE(test_take_of_a_file_gone),
        IN_QUEUE(test_remove_from_active_and_incoming_then_repeat),
        IN_QUEUE(test_quarantine_then_repeat),
        IN_QUEUE(test_recover_removes_a_dead_writers_file),
        IN_QUEUE(test_ids_that_are_paths_are_refused),
        IN_QUEUE(test_symlink_is_not_followed),
        IN_QUEUE(test_fifo_does_not_hang),
        IN_QUEUE(test_reclaim_single_message),
        IN_QUEUE(test_reclaim_keeps_the_neighbours),
        IN_QUEUE(test_reclaim_refuses_a_format2_group),
        IN_QUEUE(test_reclaim_bound_of_a_group_file),
        IN_QUEUE(test_serve_answers_in_order_until_eof),
        IN_QUEUE(test_serve_stops_at_a_malformed_record),
        IN_QUEUE(test_serve_refuses_a_descriptor),
        cmocka_unit_test(test_codec_round_trips),
        cmocka_unit_test(test_codec_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
