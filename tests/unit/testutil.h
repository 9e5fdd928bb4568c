/*
 * testutil — helpers shared by the cmocka unit tests (include after cmocka.h).
 */
#ifndef ONEHOP_TESTUTIL_H
#define ONEHOP_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* out = "/tmp/onehop-test-NAME." plus the six-character suffix that
 * mkdtemp(3)/mkstemp(3) replace; the one place the tests build that template. */
static inline void test_temp_template(char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "/tmp/onehop-test-%s.", name);
    assert_true(n > 0 && (size_t)n + 7 <= size);
    memset(out + n, 'X', 6);
    out[n + 6] = '\0';
}

/* A new empty directory /tmp/onehop-test-NAME.?????? in out; exits the test
 * program when it cannot be made (outside any test: nothing can run). */
static inline char *test_temp_dir(char *out, size_t size, const char *name)
{
    test_temp_template(out, size, name);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(1);
    }
    return out;
}

/* Remove a test's directory tree: 0, or -1 if rm failed. */
static inline int test_remove_tree(const char *dir)
{
    char cmd[256];
    int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* A new file /tmp/onehop-test-NAME.?????? holding text; its path in out. */
static inline char *test_temp_file(char *out, size_t size, const char *name, const char *text)
{
    test_temp_template(out, size, name);
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return out;
}

/* Run fn in a child process (for code that exits or aborts, e.g. log_fatal
 * paths) and return its raw wait status. */
static inline int child_wait_status(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* The same, returning the exit status; the test fails if fn did not exit. */
static inline int child_exit_status(void (*fn)(void))
{
    int status = child_wait_status(fn);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

#endif
