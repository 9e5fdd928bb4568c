/*
 * test_log — Postfix-style log lines (common/log.h) written to a file and to
 * stderr: the exact line format `Mon DD HH:MM:SS host onehop/SERVICE[pid]:
 * text`, the warning:/error:/fatal: prefixes, control characters escaped,
 * over-long lines cut at LOG_LINE_MAX without overflow, errno preserved.
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
#include <regex.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safeio.h"

static char tmpdir[64];
static struct buf logpath;

/* Start each test with an empty log file as the target. */
static int open_log_file(void **state)
{
    path_join(&logpath, tmpdir, "maillog");
    unlink(logpath.s);
    log_set_hostname("testhost");
    return log_open("svc", logpath.s) == 0 ? 0 : -1;
}

static int close_log(void **state)
{
    log_close();
    log_also_stderr(0);
    if (logpath.s)
        unlink(logpath.s);
    return 0;
}

static void read_log(struct buf *out)
{
    buf_clear(out);
    assert_int_equal(read_file(logpath.s, out, 0), 0);
}

/* The whole file is exactly one line matching `re` (POSIX extended); %PID%
 * in re stands for this process id. */
static void assert_single_line(const char *text, const char *pattern, long pid)
{
    struct buf re = BUF_INIT;
    const char *mark = strstr(pattern, "%PID%");
    if (mark) {
        buf_add(&re, pattern, (size_t)(mark - pattern));
        buf_printf(&re, "%ld", pid);
        buf_adds(&re, mark + 5);
    } else {
        buf_adds(&re, pattern);
    }
    regex_t rx;
    assert_int_equal(regcomp(&rx, re.s, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&rx, text, 0, NULL, 0) != 0)
        fail_msg("log text \"%s\" does not match %s", text, re.s);
    regfree(&rx);
    buf_free(&re);
    assert_non_null(strchr(text, '\n'));
    assert_int_equal(strchr(text, '\n')[1], '\0');
}

#define STAMP "^[A-Z][a-z]{2} [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] "

static void test_file_line_format(void **state)
{
    struct buf text = BUF_INIT;
    log_info("4Xb9kQz1Y2: from=<%s>, size=%d, nrcpt=%d", "alice@a.test", 1234, 2);
    read_log(&text);
    assert_single_line(text.s,
                       STAMP "testhost onehop/svc\\[%PID%\\]: 4Xb9kQz1Y2: "
                             "from=<alice@a\\.test>, size=1234, nrcpt=2\n$",
                       (long)getpid());
    buf_free(&text);
}

static void test_prefixes(void **state)
{
    struct buf text = BUF_INIT;
    log_warn("disk %d%% full", 91);
    read_log(&text);
    assert_single_line(text.s, STAMP "testhost onehop/svc\\[%PID%\\]: warning: disk 91% full\n$",
                       (long)getpid());
    unlink(logpath.s);
    log_close();
    assert_int_equal(log_open("svc", logpath.s), 0);
    log_error("bad %s", "thing");
    read_log(&text);
    assert_single_line(text.s, STAMP "testhost onehop/svc\\[%PID%\\]: error: bad thing\n$",
                       (long)getpid());
    buf_free(&text);
}

/* The child logs fatal and exits; its line carries its own pid.
 * use_die: 0 log_fatal, 1 log_die(75), 2 log_fatal after
 * log_set_fatal_status(75). */
static void expect_fatal(int use_die, int want_status)
{
    struct buf text = BUF_INIT;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (use_die == 1)
            log_die(75, "queue %s unavailable", "dir");
        if (use_die == 2)
            log_set_fatal_status(75);
        log_fatal("queue %s unavailable", "dir");
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), want_status);
    read_log(&text);
    assert_single_line(
        text.s, STAMP "testhost onehop/svc\\[%PID%\\]: fatal: queue dir unavailable\n$", (long)pid);
    buf_free(&text);
}

/* The pid is learned once per process: a line logged by a child forked
 * after its parent logged carries the child's pid, not the parent's, and
 * the parent's next line its own again. */
static void test_forked_child_logs_its_own_pid(void **state)
{
    struct buf text = BUF_INIT, want = BUF_INIT;
    log_info("parent before");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        log_info("child");
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    log_info("parent after");
    read_log(&text);
    buf_printf(&want, " onehop/svc[%ld]: parent before\n", (long)getpid());
    assert_non_null(strstr(text.s, want.s));
    buf_clear(&want);
    buf_printf(&want, " onehop/svc[%ld]: child\n", (long)pid);
    assert_non_null(strstr(text.s, want.s));
    buf_clear(&want);
    buf_printf(&want, " onehop/svc[%ld]: parent after\n", (long)getpid());
    assert_non_null(strstr(text.s, want.s));
    buf_free(&want);
    buf_free(&text);
}

static void test_fatal_exits_1(void **state)
{
    expect_fatal(0, 1);
}

static void test_die_exits_with_status(void **state)
{
    expect_fatal(1, 75);
}

static void test_fatal_exits_with_the_set_status(void **state)
{
    expect_fatal(2, 75);
}

static void test_control_characters_escaped(void **state)
{
    struct buf text = BUF_INIT;
    log_info("a\nb\rc\td\x01"
             "e\x7f"
             "f\x1b[31m");
    read_log(&text);
    assert_single_line(text.s,
                       STAMP "testhost onehop/svc\\[%PID%\\]: a\\?b\\?c\\?d\\?e\\?f\\?\\[31m\n$",
                       (long)getpid());
    buf_free(&text);
}

static void test_utf8_kept(void **state)
{
    struct buf text = BUF_INIT;
    log_info("from=<j\xc3\xb6rg@b\xc3\xbc"
             "cher.example>");
    read_log(&text);
    assert_non_null(strstr(text.s, "]: from=<j\xc3\xb6rg@b\xc3\xbc"
                                   "cher.example>\n"));
    buf_free(&text);
}

/* The text (prefix included) is cut to LOG_LINE_MAX - 1 bytes. */
static void test_long_line_cut(void **state)
{
    struct buf text = BUF_INIT, msg = BUF_INIT;
    for (int i = 0; i < 3 * LOG_LINE_MAX; i++)
        buf_addc(&msg, 'x');
    log_warn("%s", msg.s);
    read_log(&text);
    const char *body = strstr(text.s, "]: warning: ");
    assert_non_null(body);
    body += 3;
    assert_int_equal(strlen(body), LOG_LINE_MAX - 1 + 1); /* the text and "\n" */
    assert_int_equal(strspn(body + 9, "x"), LOG_LINE_MAX - 1 - 9);
    assert_int_equal(body[LOG_LINE_MAX - 1], '\n');
    buf_free(&text);
    buf_free(&msg);
}

/* A host name of 255 bytes and a cut text still make one whole line. */
static void test_long_host_and_line(void **state)
{
    struct buf text = BUF_INIT, host = BUF_INIT, msg = BUF_INIT;
    for (int i = 0; i < 300; i++)
        buf_addc(&host, 'h');
    for (int i = 0; i < 2 * LOG_LINE_MAX; i++)
        buf_addc(&msg, 'y');
    log_set_hostname(host.s);
    log_info("%s", msg.s);
    log_set_hostname("testhost");
    read_log(&text);
    assert_int_equal(text.s[text.len - 1], '\n');
    assert_ptr_equal(strchr(text.s, '\n'), text.s + text.len - 1);
    assert_non_null(strstr(text.s, " hhhhhhhh"));
    const char *body = strstr(text.s, "]: ");
    assert_non_null(body);
    assert_int_equal(strspn(body + 3, "y"), LOG_LINE_MAX - 1);
    buf_free(&text);
    buf_free(&host);
    buf_free(&msg);
}

static void test_text_is_not_a_format(void **state)
{
    struct buf text = BUF_INIT;
    log_info("%s", "100%s %n %d");
    read_log(&text);
    assert_non_null(strstr(text.s, "]: 100%s %n %d\n"));
    buf_free(&text);
}

static void test_lines_appended(void **state)
{
    struct buf text = BUF_INIT;
    for (int i = 0; i < 50; i++)
        log_info("line %d", i);
    read_log(&text);
    int lines = 0;
    for (size_t i = 0; i < text.len; i++)
        lines += text.s[i] == '\n';
    assert_int_equal(lines, 50);
    assert_non_null(strstr(text.s, "]: line 0\n"));
    assert_non_null(strstr(text.s, "]: line 49\n"));
    buf_free(&text);
}

static void test_errno_preserved(void **state)
{
    errno = ENOSPC;
    log_info("something");
    assert_int_equal(errno, ENOSPC);
    errno = EINTR;
    log_warn("something else");
    assert_int_equal(errno, EINTR);
}

/* ------------------------------------------------------------- stderr ---- */

/* Run fn with stderr redirected to a file; return what it wrote. */
static void capture_stderr(void (*fn)(void), struct buf *out)
{
    struct buf path = BUF_INIT;
    path_join(&path, tmpdir, "stderr");
    int fd = open(path.s, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    buf_clear(out);
    assert_int_equal(read_file(path.s, out, 0), 0);
    unlink(path.s);
    buf_free(&path);
}

static void log_to_stderr(void)
{
    log_open("cmd", "stderr");
    log_warn("to %s", "stderr");
}

static void test_stderr_line(void **state)
{
    struct buf text = BUF_INIT;
    capture_stderr(log_to_stderr, &text);
    assert_single_line(text.s, "^onehop/cmd\\[%PID%\\]: warning: to stderr\n$", (long)getpid());
    buf_free(&text);
}

static void log_file_and_stderr(void)
{
    log_also_stderr(1);
    log_info("both");
}

static void test_also_stderr(void **state)
{
    struct buf text = BUF_INIT;
    capture_stderr(log_file_and_stderr, &text);
    assert_single_line(text.s, "^onehop/svc\\[%PID%\\]: both\n$", (long)getpid());
    read_log(&text);
    assert_single_line(text.s, STAMP "testhost onehop/svc\\[%PID%\\]: both\n$", (long)getpid());
    buf_free(&text);
}

static void test_open_failure(void **state)
{
    errno = 0;
    assert_int_equal(log_open("svc", "/nonexistent-dir/for/log"), -1);
    assert_int_equal(errno, ENOENT);
}

static int remove_tree(void)
{
    buf_free(&logpath);
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_line_format, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_prefixes, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_forked_child_logs_its_own_pid, open_log_file,
                                        close_log),
        cmocka_unit_test_setup_teardown(test_fatal_exits_1, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_die_exits_with_status, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_fatal_exits_with_the_set_status, open_log_file,
                                        close_log),
        cmocka_unit_test_setup_teardown(test_control_characters_escaped, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_utf8_kept, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_long_line_cut, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_long_host_and_line, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_text_is_not_a_format, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_lines_appended, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_errno_preserved, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_stderr_line, NULL, close_log),
        cmocka_unit_test_setup_teardown(test_also_stderr, open_log_file, close_log),
        cmocka_unit_test_setup_teardown(test_open_failure, NULL, close_log),
    };
    test_temp_dir(tmpdir, sizeof(tmpdir), "log");
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    remove_tree();
    return failed;
}
