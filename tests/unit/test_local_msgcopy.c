/*
 * test_local_msgcopy — the message on its way into a mailbox
 * (daemons/local/msgcopy.c), one test per row: ">From " quoting (mboxo:
 * only "From "), CR LF -> LF with a lone CR kept, the mbox end, the prefix
 * never quoted, only the [offset, offset + length) range read, the same
 * bytes when a "From " or a CR LF straddles the 64 KiB read chunk; the
 * Delivered-To: loop check (case, brackets, folding, the body and other
 * fields not counted); a file shorter than its record is an error.
 */
#include "rowtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "local/msgcopy.h"

#define GUARD "GARBAGE\n" /* bytes around the content: never copied */

/* A descriptor holding GUARD content GUARD; src set to the content. */
static int message_fd(const char *content, size_t len, struct msgsrc *src)
{
    int fd = memfd_create("msg", 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, GUARD, strlen(GUARD)), (ssize_t)strlen(GUARD));
    if (len)
        assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(write(fd, GUARD, strlen(GUARD)), (ssize_t)strlen(GUARD));
    *src = (struct msgsrc){fd, strlen(GUARD), len};
    return fd;
}

/* The copy of content with flags and prefix, through a memfd. */
static void copy(const char *content, size_t len, unsigned flags, const char *prefix,
                 struct buf *out)
{
    struct msgsrc src;
    int fd = message_fd(content, len, &src), outfd = memfd_create("out", 0);
    struct buf pre = BUF_INIT;
    uint64_t written;
    buf_adds(&pre, prefix);
    assert_int_equal(msgcopy_to_fd(&src, flags, &pre, outfd, &written), 0);
    off_t size = lseek(outfd, 0, SEEK_END);
    assert_int_equal((uint64_t)size, written);
    buf_reserve(out, (size_t)size + 1);
    assert_int_equal(pread(outfd, out->s, (size_t)size, 0), size);
    out->len = (size_t)size;
    out->s[out->len] = '\0';
    close(fd);
    close(outfd);
    buf_free(&pre);
}

struct copy_row {
    const char *name, *in;
    unsigned flags;
    const char *prefix, *want;
};

enum { Q = MSGCOPY_FROM_QUOTE, E = MSGCOPY_MBOX_END };

static const struct copy_row copy_rows[] = {
    {"From at a line start", "a\nFrom b\n", Q, "", "a\n>From b\n"},
    {"From as the first line", "From b\nc\n", Q, "", ">From b\nc\n"},
    {">From stays (mboxo)", ">From b\n", Q, "", ">From b\n"},
    {"From without a space", "From\nFromage\n", Q, "", "From\nFromage\n"},
    {"From inside a line", "a From b\n", Q, "", "a From b\n"},
    {"FFrom", "FFrom x\n", Q, "", "FFrom x\n"},
    {"no quoting without the flag", "From b\n", 0, "", "From b\n"},
    {"CR LF to LF", "x\r\ny\r\n", 0, "", "x\ny\n"},
    {"a lone CR stays", "x\ry\n", 0, "", "x\ry\n"},
    {"a CR at the end stays", "x\r", 0, "", "x\r"},
    {"CRs before an LF all go", "x\r\r\ny\r\r", 0, "", "x\ny\r\r"},
    {"CR LF before From", "a\r\nFrom b\r\n", Q, "", "a\n>From b\n"},
    {"mbox end after a newline", "a\n", E, "", "a\n\n"},
    {"mbox end adds the missing newline", "a", E, "", "a\n\n"},
    {"mbox end of an empty message", "", E, "", "\n"},
    {"mbox end after CRs", "a\r\r", E, "", "a\n\n"},
    {"the prefix is never quoted", "From b\n", Q, "From y\nZ: 1\n", "From y\nZ: 1\n>From b\n"},
    {"a partial From at the end", "a\nFrom", Q | E, "", "a\nFrom\n\n"},
};

static void test_copy(void **state)
{
    const struct copy_row *r = *state;
    struct buf out = BUF_INIT;
    copy(r->in, strlen(r->in), r->flags, r->prefix, &out);
    assert_string_equal(buf_cstr(&out), r->want);
    buf_free(&out);
}

/* "From " and CR LF across the 64 KiB chunk boundary: as in one piece. */
static void test_chunk_boundaries(void **state)
{
    (void)state;
    for (size_t at = 65530; at <= 65538; at++) {
        struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
        for (size_t i = 0; i + 1 < at; i++)
            buf_addc(&in, 'a');
        buf_adds(&in, "\nFrom x\r\nb\r\n");
        buf_set(&want, in.s, at);
        buf_adds(&want, ">From x\nb\n");
        copy(in.s, in.len, Q, "", &out);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.s, want.s, want.len);
        buf_free(&in);
        buf_free(&want);
        buf_free(&out);
    }
}

static void test_short_file_is_an_error(void **state)
{
    (void)state;
    struct msgsrc src;
    int fd = message_fd("abc", 3, &src), outfd = memfd_create("out", 0);
    src.length = 1000; /* the record says more than the file holds */
    uint64_t written;
    errno = 0;
    assert_int_equal(msgcopy_to_fd(&src, 0, NULL, outfd, &written), -1);
    assert_int_equal(errno, EIO);
    close(fd);
    close(outfd);
}

struct loop_row {
    const char *name, *msg, *addr;
    int want;
};

static const struct loop_row loop_rows[] = {
    {"the same address", "Delivered-To: a@b.test\nSubject: x\n\nbody\n", "a@b.test", 1},
    {"any case, brackets, blanks", "delivered-to:   <A@B.Test>  \n\nbody\n", "a@b.test", 1},
    {"a folded field", "Subject: x\nDelivered-To:\n a@b.test\n\nbody\n", "a@b.test", 1},
    {"a later field", "X: 1\nDelivered-To: c@b.test\nDelivered-To: a@b.test\n\n", "a@b.test", 1},
    {"another address", "Delivered-To: c@b.test\n\nbody\n", "a@b.test", 0},
    {"an address that only starts alike", "Delivered-To: a@b.test.x\n\n", "a@b.test", 0},
    {"another field", "X-Delivered-To: a@b.test\n\n", "a@b.test", 0},
    {"in the body", "Subject: x\n\nDelivered-To: a@b.test\n", "a@b.test", 0},
    {"no header section", "\nDelivered-To: a@b.test\n", "a@b.test", 0},
};

static void test_loop(void **state)
{
    const struct loop_row *r = *state;
    struct msgsrc src;
    int fd = message_fd(r->msg, strlen(r->msg), &src);
    assert_int_equal(msgcopy_delivered_to(&src, r->addr), r->want);
    close(fd);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(copy_rows); i++)
        rowtest_add(&t, test_copy, &copy_rows[i], "copy: %s", copy_rows[i].name);
    rowtest_add(&t, test_chunk_boundaries, NULL, "From and CR LF across the read chunk");
    rowtest_add(&t, test_short_file_is_an_error, NULL, "a file shorter than its record");
    for (size_t i = 0; i < ROWS(loop_rows); i++)
        rowtest_add(&t, test_loop, &loop_rows[i], "loop check: %s", loop_rows[i].name);
    return rowtest_run(&t, "local_msgcopy");
}
