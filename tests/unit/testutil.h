/*
 * testutil — helpers shared by the cmocka unit tests (include after cmocka.h).
 */
#ifndef ONEHOP_TESTUTIL_H
#define ONEHOP_TESTUTIL_H

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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
