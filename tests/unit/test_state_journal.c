/*
 * test_state_journal — the router's journal (queue/state_journal.h): one
 * test per rule: the state directory and its lock (a second owner refused),
 * group commit (durable only after the flush, one fdatasync per flush, a
 * backlog above SJ_FLUSH_MAX in several rounds), replay in order, a torn
 * tail ignored and cut, damage set aside with the records before it kept,
 * checkpoints (snapshot + later segments, old segments removed, leftovers
 * of an interrupted checkpoint removed, a damaged checkpoint set aside),
 * read-only opens that change nothing, and the crash-point hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "log.h"
#include "mem.h"
#include "safeio.h"
#include "state_journal.h"

struct fixture {
    char dir[64];
    struct buf state; /* dir/state */
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    test_temp_dir(fx->dir, sizeof(fx->dir), "sj");
    path_join(&fx->state, fx->dir, "state");
    log_open("test", "stderr");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = test_remove_tree(fx->dir);
    buf_free(&fx->state);
    free(fx);
    return rc;
}

/* What a replay saw: records as "TYPE:payload" lines, and their origins. */
struct seen {
    struct buf text;
    unsigned long from_checkpoint, from_journal;
};

static int collect(void *arg, enum sj_origin o, unsigned type, const unsigned char *p, size_t len)
{
    struct seen *s = arg;
    buf_printf(&s->text, "%c:%.*s\n", (char)type, (int)len, (const char *)p);
    if (o == SJ_FROM_CHECKPOINT)
        s->from_checkpoint++;
    else
        s->from_journal++;
    return 0;
}

static struct sj *open_owner(struct fixture *fx, struct seen *s, struct sj_report *r)
{
    struct sj *j = NULL;
    const char *why = NULL;
    memset(s, 0, sizeof(*s));
    assert_int_equal(sj_open(&j, buf_cstr(&fx->state), SJ_OPEN_CREATE, collect, s, r, &why), 0);
    return j;
}

static void add_text(struct sj *j, char type, const char *text)
{
    sj_add(j, (unsigned char)type, text, strlen(text));
}

/* A journal holding one 'd' record per text (one flush), closed again. */
static void write_journal(struct fixture *fx, const char *const *texts)
{
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    for (; *texts; texts++)
        add_text(j, 'd', *texts);
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    buf_free(&s.text);
}

static char *state_file(struct fixture *fx, const char *name)
{
    struct buf p = BUF_INIT;
    path_join(&p, buf_cstr(&fx->state), name);
    return buf_steal(&p);
}

static off_t file_size(struct fixture *fx, const char *name)
{
    char *p = state_file(fx, name);
    struct stat st;
    int rc = stat(p, &st);
    free(p);
    return rc == 0 ? st.st_size : -1;
}

/* Names in state/ starting with prefix. */
static int count_names(struct fixture *fx, const char *prefix)
{
    DIR *d = opendir(buf_cstr(&fx->state));
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void append_bytes(struct fixture *fx, const char *name, const void *p, size_t n)
{
    char *path = state_file(fx, name);
    int fd = open(path, O_WRONLY | O_APPEND);
    free(path);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, p, n), 0);
    close(fd);
}

static void flip_byte(struct fixture *fx, const char *name, off_t at)
{
    char *path = state_file(fx, name);
    int fd = open(path, O_RDWR);
    free(path);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

#define SEG1 "journal.0000000000000001"

/* ------------------------------------------------------------- tests ---- */

static void test_open_creates_private_dir_and_lock(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    struct stat st;
    assert_int_equal(stat(buf_cstr(&fx->state), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_true(file_size(fx, "lock") >= 0);
    assert_int_equal(file_size(fx, SEG1), SJ_HEADER_SIZE);
    assert_int_equal(r.records, 0);
    sj_close(j);
    buf_free(&s.text);
}

static void test_second_owner_refused(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r), *second = NULL;
    const char *why = NULL;
    assert_int_equal(sj_open(&second, buf_cstr(&fx->state), 0, NULL, NULL, NULL, &why), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    assert_null(second);
    assert_string_equal(why, "the state is owned by another process (a running router)");
    /* A reader needs no lock. */
    assert_int_equal(
        sj_open(&second, buf_cstr(&fx->state), SJ_OPEN_READONLY, NULL, NULL, NULL, &why), 0);
    sj_close(second);
    sj_close(j);
    buf_free(&s.text);
}

static void test_durable_only_after_flush_one_sync(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    unsigned long syncs = sj_syncs(j);
    uint64_t first = sj_add(j, 'a', "one", 3);
    for (int i = 0; i < 99; i++)
        add_text(j, 'b', "more");
    assert_int_equal(first, 1);
    assert_int_equal(sj_last(j), 100);
    assert_int_equal(sj_durable(j), 0);
    assert_true(sj_pending_bytes(j) > 0);
    assert_int_equal(file_size(fx, SEG1), SJ_HEADER_SIZE); /* nothing written yet */
    assert_int_equal(sj_flush(j), 0);
    assert_int_equal(sj_durable(j), 100);
    assert_int_equal(sj_syncs(j) - syncs, 1); /* 100 records, one fdatasync */
    assert_int_equal(sj_pending_bytes(j), 0);
    assert_int_equal(file_size(fx, SEG1), SJ_HEADER_SIZE + 3 + 99 * 4 + 100 * SJ_RECORD_OVERHEAD);
    assert_int_equal(sj_flush(j), 0); /* nothing pending: no sync */
    assert_int_equal(sj_syncs(j) - syncs, 1);
    sj_close(j);
    buf_free(&s.text);
}

static void test_large_backlog_several_rounds(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    char *big = xmalloc(SJ_RECORD_MAX);
    memset(big, 'x', SJ_RECORD_MAX);
    unsigned n = 2 * SJ_FLUSH_MAX / SJ_RECORD_MAX + 1; /* a bit more than two rounds */
    for (unsigned i = 0; i < n; i++)
        sj_add(j, 'x', big, SJ_RECORD_MAX);
    unsigned long syncs = sj_syncs(j);
    assert_int_equal(sj_flush(j), 0);
    assert_int_equal(sj_syncs(j) - syncs, 3);
    assert_int_equal(sj_durable(j), n);
    sj_close(j);
    j = open_owner(fx, &s, &r);
    assert_int_equal(r.records, n);
    assert_int_equal(r.torn_bytes, 0);
    sj_close(j);
    free(big);
    buf_free(&s.text);
}

static void test_replay_in_order(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    add_text(j, 'd', "first");
    add_text(j, 'f', "second");
    assert_int_equal(sj_flush(j), 0);
    add_text(j, 'h', "third");
    assert_int_equal(sj_flush(j), 0);
    add_text(j, 'x', "never flushed");
    sj_close(j);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:first\nf:second\nh:third\n");
    assert_int_equal(r.records, 3);
    assert_int_equal(r.segments, 1);
    /* Appends go on in the same segment. */
    add_text(j, 'r', "fourth");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    buf_free(&s.text);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:first\nf:second\nh:third\nr:fourth\n");
    assert_int_equal(count_names(fx, "journal."), 1);
    sj_close(j);
    buf_free(&s.text);
}

static void test_torn_tail_ignored_and_cut(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    write_journal(fx, (const char *[]){"kept", NULL});
    off_t good = file_size(fx, SEG1);
    /* A record cut short: type, a length of 100, 10 bytes of payload. */
    const unsigned char torn[] = {'d', 0,   0,   0,   100, 'a', 'b', 'c',
                                  'd', 'e', 'f', 'g', 'h', 'i', 'j'};
    append_bytes(fx, SEG1, torn, sizeof(torn));
    struct sj *j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:kept\n");
    assert_int_equal(r.torn_bytes, sizeof(torn));
    assert_int_equal(r.damaged, 0);
    assert_int_equal(file_size(fx, SEG1), good); /* cut */
    add_text(j, 'b', "after");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    buf_free(&s.text);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:kept\nb:after\n");
    sj_close(j);
    buf_free(&s.text);
}

static void test_crc_flip_in_last_write_is_torn(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    write_journal(fx, (const char *[]){"one", "two", NULL});
    /* Flip a byte of the second record's payload. */
    flip_byte(fx, SEG1, SJ_HEADER_SIZE + SJ_RECORD_OVERHEAD + 3 + 5);
    struct sj *j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:one\n");
    assert_int_equal(r.torn_bytes, SJ_RECORD_OVERHEAD + 3);
    assert_int_equal(r.damaged, 0);
    sj_close(j);
    buf_free(&s.text);
}

static void test_early_damage_set_aside(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    add_text(j, 'd', "before");
    add_text(j, 'd', "damaged");
    char *big = xmalloc(SJ_RECORD_MAX);
    memset(big, 'y', SJ_RECORD_MAX);
    for (unsigned i = 0; i < SJ_FLUSH_MAX / SJ_RECORD_MAX + 1; i++)
        sj_add(j, 'y', big, SJ_RECORD_MAX);
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    free(big);
    flip_byte(fx, SEG1, SJ_HEADER_SIZE + SJ_RECORD_OVERHEAD + 6 + 5);
    j = open_owner(fx, &s, &r); /* never a crash loop: it opens */
    assert_string_equal(buf_cstr(&s.text), "d:before\n");
    assert_int_equal(r.damaged, 1);
    assert_int_equal(r.torn_bytes, 0);
    assert_int_equal(count_names(fx, "damaged.journal.0000000000000001."), 1);
    assert_int_equal(file_size(fx, SEG1), -1);
    /* Appending goes on in a new segment, and the next start replays it. */
    assert_int_equal(file_size(fx, "journal.0000000000000002"), SJ_HEADER_SIZE);
    add_text(j, 'd', "new");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    buf_free(&s.text);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:new\n");
    assert_int_equal(r.damaged, 0);
    sj_close(j);
    buf_free(&s.text);
}

/* The snapshot of the checkpoint tests: one record per line of arg. */
static int snapshot_lines(void *arg, struct sj_snapshot *s)
{
    const char *text = arg;
    while (*text) {
        const char *nl = strchr(text, '\n');
        sj_snapshot_add(s, 'k', text, (size_t)(nl - text));
        text = nl + 1;
    }
    return 0;
}

static void test_checkpoint_replaces_segments(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    add_text(j, 'd', "old");
    assert_int_equal(sj_flush(j), 0);
    assert_true(sj_journal_bytes(j) > SJ_HEADER_SIZE);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "alpha\nbeta\n"), 0);
    assert_int_equal(sj_journal_bytes(j), SJ_HEADER_SIZE);
    assert_int_equal(file_size(fx, SEG1), -1); /* removed */
    assert_true(file_size(fx, "checkpoint.0000000000000002") > 0);
    add_text(j, 'd', "later");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "k:alpha\nk:beta\nd:later\n");
    assert_int_equal(s.from_checkpoint, 2);
    assert_int_equal(s.from_journal, 1);
    assert_int_equal(r.checkpoint, 2);
    assert_int_equal(r.records, 3);
    /* A second checkpoint removes the first. */
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "gamma\n"), 0);
    assert_int_equal(count_names(fx, "checkpoint."), 1);
    assert_int_equal(count_names(fx, "journal."), 1);
    sj_close(j);
    buf_free(&s.text);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "k:gamma\n");
    sj_close(j);
    buf_free(&s.text);
}

/* A checkpoint far larger than the windows it is written and read
 * through (256 KiB): records of up to SJ_RECORD_MAX bytes straddle every
 * window edge. Each record's payload is its number repeated. */
#define BIG_RECORDS 400
static size_t big_len(unsigned i)
{
    return i % 7 == 0 ? SJ_RECORD_MAX : 1 + (i * 7919u) % 20000u;
}

static int snapshot_big(void *arg, struct sj_snapshot *s)
{
    unsigned char *p = xmalloc(SJ_RECORD_MAX);
    for (unsigned i = 0; i < BIG_RECORDS; i++) {
        memset(p, (int)(i & 0xff), big_len(i));
        sj_snapshot_add(s, 'k', p, big_len(i));
    }
    free(p);
    return 0;
}

struct big_seen {
    struct sj **j;
    struct sj_report *r;
    unsigned n, bad;
    struct buf back;
};

/* Every record is whole, in order, and read back at the offset reported. */
static int check_big(void *arg, enum sj_origin o, unsigned type, const unsigned char *p, size_t len)
{
    struct big_seen *b = arg;
    unsigned i = b->n++;
    if (o != SJ_FROM_CHECKPOINT || len != big_len(i) || p[0] != (i & 0xff) ||
        p[len - 1] != (i & 0xff) ||
        sj_checkpoint_read(*b->j, b->r->at, len + SJ_RECORD_OVERHEAD, &b->back) != 0 ||
        memcmp(b->back.s + 5, p, len) != 0)
        b->bad++;
    return 0;
}

static void test_large_checkpoint_streamed(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    assert_int_equal(sj_checkpoint(j, snapshot_big, NULL), 0);
    sj_close(j);
    off_t size = file_size(fx, "checkpoint.0000000000000002");
    assert_true(size > 8 * 256 * 1024);
    struct big_seen b = {&j, &r, 0, 0, BUF_INIT};
    const char *why = NULL;
    assert_int_equal(sj_open(&j, buf_cstr(&fx->state), SJ_OPEN_CREATE, check_big, &b, &r, &why), 0);
    assert_int_equal(b.n, BIG_RECORDS);
    assert_int_equal(b.bad, 0);
    assert_int_equal(r.checkpoint, 2);
    sj_close(j);
    /* A flipped byte in a late window is damage: nothing of it is applied. */
    flip_byte(fx, "checkpoint.0000000000000002", size - 100);
    b.n = 0;
    assert_int_equal(sj_open(&j, buf_cstr(&fx->state), SJ_OPEN_CREATE, check_big, &b, &r, &why), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(r.damaged, 1);
    assert_int_equal(count_names(fx, "damaged.checkpoint.0000000000000002."), 1);
    sj_close(j);
    buf_free(&b.back);
    buf_free(&s.text);
}

static void copy_file(struct fixture *fx, const char *from, const char *to)
{
    char *a = state_file(fx, from), *b = state_file(fx, to);
    struct buf data = BUF_INIT;
    assert_int_equal(read_file(a, &data, 0), 0);
    int fd = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, data.s, data.len), 0);
    close(fd);
    buf_free(&data);
    free(a);
    free(b);
}

static void test_interrupted_checkpoint_leftovers(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    add_text(j, 'd', "one");
    assert_int_equal(sj_flush(j), 0);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "one\n"), 0);
    sj_close(j);
    /* As if killed before the old segment was removed, with a tmp file of
     * the next checkpoint half written. */
    append_bytes(fx, "journal.0000000000000002", "", 0);
    copy_file(fx, "checkpoint.0000000000000002", "checkpoint.0000000000000003.tmp");
    {
        struct sj_report r0;
        struct seen s0;
        memset(&s0, 0, sizeof(s0));
        const char *why;
        struct sj *old = NULL;
        /* An old segment 1 reappears (a removal not yet done). */
        char *seg1 = state_file(fx, SEG1);
        int fd = open(seg1, O_WRONLY | O_CREAT, 0600);
        free(seg1);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(
            sj_open(&old, buf_cstr(&fx->state), SJ_OPEN_READONLY, collect, &s0, &r0, &why), 0);
        assert_string_equal(buf_cstr(&s0.text), "k:one\n");
        assert_int_equal(r0.removed, 0); /* a reader removes nothing */
        sj_close(old);
        buf_free(&s0.text);
    }
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "k:one\n");
    assert_int_equal(r.removed, 2);
    assert_int_equal(file_size(fx, SEG1), -1);
    assert_int_equal(file_size(fx, "checkpoint.0000000000000003.tmp"), -1);
    sj_close(j);
    buf_free(&s.text);
}

static void test_damaged_checkpoint_set_aside(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "snap\n"), 0);
    add_text(j, 'd', "after");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    flip_byte(fx, "checkpoint.0000000000000002", SJ_HEADER_SIZE + 6);
    j = open_owner(fx, &s, &r);
    /* Nothing of the damaged checkpoint is applied; the journal still is. */
    assert_string_equal(buf_cstr(&s.text), "d:after\n");
    assert_int_equal(r.checkpoint, 0);
    assert_int_equal(r.damaged, 1);
    assert_int_equal(count_names(fx, "damaged.checkpoint.0000000000000002."), 1);
    sj_close(j);
    buf_free(&s.text);
}

static void test_checkpoint_without_end_is_damage(void **state)
{
    unsigned char img[SJ_HEADER_SIZE + 32];
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "snap\n"), 0);
    sj_close(j);
    char *p = state_file(fx, "checkpoint.0000000000000002");
    struct buf data = BUF_INIT;
    assert_int_equal(read_file(p, &data, 0), 0);
    free(p);
    assert_true(data.len <= sizeof(img) && data.len > SJ_RECORD_OVERHEAD + 8);
    memcpy(img, data.s, data.len);
    uint64_t number;
    size_t valid;
    const char *why = NULL;
    assert_int_equal(sj_parse_image(img, data.len, 1, &number, NULL, NULL, &valid, &why), 0);
    assert_int_equal(number, 2);
    /* Cut off the end record. */
    assert_int_equal(sj_parse_image(img, data.len - SJ_RECORD_OVERHEAD - 8, 1, &number, NULL, NULL,
                                    &valid, &why),
                     -1);
    assert_string_equal(why, "checkpoint cut short or damaged");
    buf_free(&data);
    buf_free(&s.text);
}

static void test_torn_segment_header(void **state)
{
    struct fixture *fx = *state;
    const unsigned char part[] = {'O', 'H', 'S', 'T'};
    uint64_t number;
    size_t valid;
    const char *why = NULL;
    assert_int_equal(sj_parse_image(part, sizeof(part), 0, &number, NULL, NULL, &valid, &why), 1);
    assert_int_equal(sj_parse_image(part, sizeof(part), 1, &number, NULL, NULL, &valid, &why), -1);
    /* The owner writes the header again and appends. */
    assert_int_equal(mkdir(buf_cstr(&fx->state), 0700), 0);
    char *p = state_file(fx, SEG1);
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    free(p);
    assert_int_equal(write_all(fd, part, sizeof(part)), 0);
    close(fd);
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    assert_int_equal(r.torn_bytes, sizeof(part));
    assert_int_equal(file_size(fx, SEG1), SJ_HEADER_SIZE);
    add_text(j, 'd', "ok");
    assert_int_equal(sj_flush(j), 0);
    sj_close(j);
    j = open_owner(fx, &s, &r);
    assert_string_equal(buf_cstr(&s.text), "d:ok\n");
    sj_close(j);
    buf_free(&s.text);
}

static void test_readonly_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    write_journal(fx, (const char *[]){"kept", NULL});
    append_bytes(fx, SEG1, "zz", 2);
    off_t before = file_size(fx, SEG1);
    struct sj *ro = NULL;
    const char *why;
    memset(&s, 0, sizeof(s));
    assert_int_equal(sj_open(&ro, buf_cstr(&fx->state), SJ_OPEN_READONLY, collect, &s, &r, &why),
                     0);
    assert_string_equal(buf_cstr(&s.text), "d:kept\n");
    assert_int_equal(r.torn_bytes, 2);
    assert_int_equal(file_size(fx, SEG1), before);
    assert_int_equal(sj_flush(ro), -1); /* no appends */
    sj_close(ro);
    buf_free(&s.text);
}

static int refuse_second(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                         size_t len)
{
    int *n = arg;
    return ++*n == 2;
}

static void test_refused_record_fails_open(void **state)
{
    struct fixture *fx = *state;
    struct sj_report r;
    struct sj *j;
    write_journal(fx, (const char *[]){"a", "b", NULL});
    int n = 0;
    const char *why = NULL;
    assert_int_equal(sj_open(&j, buf_cstr(&fx->state), 0, refuse_second, &n, &r, &why), -1);
    assert_int_equal(errno, EBADMSG);
    assert_string_equal(why, "the state refused a replayed record");
    assert_int_equal(file_size(fx, SEG1) > SJ_HEADER_SIZE, 1); /* nothing set aside */
}

struct steps {
    struct buf seen;
};

static void record_step(const char *step, void *arg)
{
    struct steps *st = arg;
    buf_printf(&st->seen, "%s ", step);
}

static void test_step_hook_names_every_crash_point(void **state)
{
    struct fixture *fx = *state;
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    struct steps st = {BUF_INIT};
    sj_set_step_hook(j, record_step, &st);
    add_text(j, 'd', "one");
    assert_int_equal(sj_flush(j), 0);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "one\n"), 0);
    assert_string_equal(buf_cstr(&st.seen), "append commit segment-new checkpoint-write "
                                            "checkpoint-synced checkpoint-renamed segment-remove ");
    sj_close(j);
    buf_free(&st.seen);
    buf_free(&s.text);
}

/* Files an admin command (root) makes belong to state/'s owner. */
static void test_files_belong_to_the_dirs_owner(void **state)
{
    struct fixture *fx = *state;
    if (geteuid() != 0) {
        if (getenv("CI"))
            fail_msg("needs root under CI");
        skip();
    }
    assert_int_equal(mkdir(buf_cstr(&fx->state), 0700), 0);
    assert_int_equal(chown(buf_cstr(&fx->state), 65534, 65534), 0);
    struct seen s;
    struct sj_report r;
    struct sj *j = open_owner(fx, &s, &r);
    add_text(j, 'd', "x");
    assert_int_equal(sj_flush(j), 0);
    assert_int_equal(sj_checkpoint(j, snapshot_lines, "x\n"), 0);
    sj_close(j);
    const char *names[] = {"lock", "journal.0000000000000002", "checkpoint.0000000000000002"};
    for (size_t i = 0; i < 3; i++) {
        char *p = state_file(fx, names[i]);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_uid, 65534);
        assert_int_equal(st.st_gid, 65534);
        free(p);
    }
    buf_free(&s.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_private_dir_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_owner_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_only_after_flush_one_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_backlog_several_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_ignored_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc_flip_in_last_write_is_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_damage_set_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_replaces_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_checkpoint_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_checkpoint_set_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_without_end_is_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_segment_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_record_fails_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_hook_names_every_crash_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_belong_to_the_dirs_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_checkpoint_streamed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
