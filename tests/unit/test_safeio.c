/*
 * test_safeio — the file operations durable steps are built of
 * (common/safeio.h): whole writes and reads, the read limit (EFBIG),
 * read_file, fsync_dir, mkdir_p (with a file in the way) and path_join.
 * Everything happens in a fresh directory under /tmp, removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "safeio.h"

static char tmpdir[64];

/* A path inside the test directory, built in b. */
static const char *tmp_path(struct buf *b, const char *name)
{
    path_join(b, tmpdir, name);
    return b->s;
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, p, n), 0);
    assert_int_equal(close(fd), 0);
}

static char *pattern(size_t n)
{
    char *p = xmalloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 31 + 7);
    return p;
}

/* --------------------------------------------------------- write / read ---- */

static void test_write_all_then_read_all(void **state)
{
    struct buf path = BUF_INIT, in = BUF_INIT;
    size_t n = 3 * 65536 + 17;
    char *data = pattern(n);
    write_file(tmp_path(&path, "w1"), data, n);
    int fd = open(path.s, O_RDONLY);
    assert_true(fd >= 0);
    buf_adds(&in, "kept:");
    assert_int_equal(read_all(fd, &in, 0), 0);
    close(fd);
    assert_int_equal(in.len, 5 + n);
    assert_memory_equal(in.s, "kept:", 5);
    assert_memory_equal(in.s + 5, data, n);
    assert_int_equal(in.s[in.len], '\0');
    free(data);
    buf_free(&in);
    buf_free(&path);
}

/* A pipe forces short reads and, for a large write, short writes. */
static void test_pipe_large(void **state)
{
    int p[2];
    size_t n = 1024 * 1024 + 3;
    char *data = pattern(n);
    struct buf in = BUF_INIT;
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        _exit(write_all(p[1], data, n) == 0 ? 0 : 1);
    }
    close(p[1]);
    assert_int_equal(read_all(p[0], &in, 0), 0);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(in.len, n);
    assert_memory_equal(in.s, data, n);
    free(data);
    buf_free(&in);
}

static void test_write_all_bad_fd(void **state)
{
    errno = 0;
    assert_int_equal(write_all(-1, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(write_all(-1, "", 0), 0); /* nothing to write */
}

static void test_read_all_bad_fd(void **state)
{
    struct buf in = BUF_INIT;
    errno = 0;
    assert_int_equal(read_all(-1, &in, 0), -1);
    assert_int_equal(errno, EBADF);
    buf_free(&in);
}

/* max counts the bytes this call adds: exactly max is fine, one more is EFBIG. */
static void expect_read_limit(size_t size, size_t max, int want_rc)
{
    struct buf path = BUF_INIT, in = BUF_INIT;
    char *data = pattern(size);
    write_file(tmp_path(&path, "limit"), data, size);
    int fd = open(path.s, O_RDONLY);
    assert_true(fd >= 0);
    buf_adds(&in, "earlier bytes do not count");
    errno = 0;
    assert_int_equal(read_all(fd, &in, max), want_rc);
    if (want_rc < 0)
        assert_int_equal(errno, EFBIG);
    else
        assert_int_equal(in.len, 26 + size);
    close(fd);
    free(data);
    buf_free(&in);
    buf_free(&path);
}

static void test_read_all_max(void **state)
{
    expect_read_limit(100, 100, 0);
    expect_read_limit(101, 100, -1);
    expect_read_limit(0, 1, 0);
    expect_read_limit(1, 1, 0);
    expect_read_limit(2, 1, -1);
    expect_read_limit(200000, 199999, -1);
    expect_read_limit(200000, 200000, 0);
    expect_read_limit(200000, 0, 0); /* 0: no limit */
}

static void test_read_file(void **state)
{
    struct buf path = BUF_INIT, in = BUF_INIT;
    write_file(tmp_path(&path, "rf"), "line one\nline two\n", 18);
    assert_int_equal(read_file(path.s, &in, 0), 0);
    assert_string_equal(in.s, "line one\nline two\n");
    buf_clear(&in);
    errno = 0;
    assert_int_equal(read_file(path.s, &in, 17), -1);
    assert_int_equal(errno, EFBIG);
    buf_clear(&in);
    errno = 0;
    assert_int_equal(read_file(tmp_path(&path, "missing"), &in, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(read_file(tmpdir, &in, 0), -1); /* a directory */
    assert_int_equal(errno, EISDIR);
    buf_free(&in);
    buf_free(&path);
}

/* ---------------------------------------------------------- fsync_dir ---- */

static void test_fsync_dir(void **state)
{
    struct buf path = BUF_INIT;
    assert_int_equal(fsync_dir(tmpdir), 0); /* a directory itself */
    write_file(tmp_path(&path, "f"), "x", 1);
    assert_int_equal(fsync_dir(path.s), 0);                     /* a file: its directory */
    assert_int_equal(fsync_dir(tmp_path(&path, "not-yet")), 0); /* a name to be created */
    assert_int_equal(fsync_dir("/"), 0);
    assert_int_equal(fsync_dir("relative-name"), 0); /* "." */
    errno = 0;
    assert_int_equal(fsync_dir(tmp_path(&path, "nodir/file")), -1);
    assert_int_equal(errno, ENOENT);
    buf_free(&path);
}

/* ------------------------------------------------------------ mkdir_p ---- */

static void assert_is_dir(const char *path, mode_t mode)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    if (mode)
        assert_int_equal(st.st_mode & 07777, mode);
}

static void test_mkdir_p_creates_all(void **state)
{
    struct buf path = BUF_INIT;
    mode_t old = umask(0);
    assert_int_equal(mkdir_p(tmp_path(&path, "a/b/c"), 0750), 0);
    umask(old);
    assert_is_dir(path.s, 0750);
    assert_is_dir(tmp_path(&path, "a/b"), 0750);
    assert_int_equal(mkdir_p(tmp_path(&path, "a/b/c"), 0750), 0); /* exists already */
    assert_int_equal(mkdir_p(tmp_path(&path, "a//b/c2/"), 0700), 0);
    assert_is_dir(tmp_path(&path, "a/b/c2"), 0);
    buf_free(&path);
}

static void test_mkdir_p_file_in_the_way(void **state)
{
    struct buf path = BUF_INIT;
    write_file(tmp_path(&path, "plain"), "x", 1);
    errno = 0;
    assert_int_equal(mkdir_p(path.s, 0700), -1); /* the last component */
    assert_int_equal(errno, ENOTDIR);
    errno = 0;
    assert_int_equal(mkdir_p(tmp_path(&path, "plain/sub/dir"), 0700), -1); /* on the way */
    assert_int_equal(errno, ENOTDIR);
    buf_free(&path);
}

static void test_mkdir_p_relative(void **state)
{
    char *here = getcwd(NULL, 0);
    assert_non_null(here);
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(mkdir_p("rel/one", 0700), 0);
    assert_is_dir("rel/one", 0);
    assert_int_equal(chdir(here), 0);
    free(here);
}

/* ---------------------------------------------------------- path_join ---- */

static void expect_join(const char *dir, const char *name, const char *want)
{
    struct buf b = BUF_INIT;
    buf_adds(&b, "old content is replaced");
    path_join(&b, dir, name);
    assert_string_equal(b.s, want);
    buf_free(&b);
}

static void test_path_join(void **state)
{
    expect_join("/var/spool/onehop", "queue", "/var/spool/onehop/queue");
    expect_join("/var/spool/onehop/", "queue", "/var/spool/onehop/queue");
    expect_join("/etc/onehop", "/abs/file", "/abs/file");
    expect_join("rel", "x/y", "rel/x/y");
    expect_join("/", "etc", "/etc");
    expect_join("", "name", "name");
}

/* --------------------------------------------------------------- setup ---- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_then_read_all),
        cmocka_unit_test(test_pipe_large),
        cmocka_unit_test(test_write_all_bad_fd),
        cmocka_unit_test(test_read_all_bad_fd),
        cmocka_unit_test(test_read_all_max),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_fsync_dir),
        cmocka_unit_test(test_mkdir_p_creates_all),
        cmocka_unit_test(test_mkdir_p_file_in_the_way),
        cmocka_unit_test(test_mkdir_p_relative),
        cmocka_unit_test(test_path_join),
    };
    test_temp_dir(tmpdir, sizeof(tmpdir), "safeio");
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    remove_tree(tmpdir);
    return failed;
}
