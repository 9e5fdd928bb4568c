/*
 * test_local_command — the exit status table of |command deliveries
 * (daemons/local/command.c), one test per row against an expectation
 * written out here (sysexits.h as sendmail and Postfix read it): 75
 * EX_TEMPFAIL and 71 EX_OSERR temporary, 64-78 otherwise permanent with
 * their RFC 3463 codes, 0 delivered, any other status permanent 5.3.0, a
 * signal temporary 4.3.0; the command's first output line in the text.
 */
#include "rowtest.h"

#include <stdio.h>
#include <string.h>

#include "local/command.h"

struct exit_case {
    int status; /* exit status, or -signal */
    enum rp_class cls;
    const char *code;
};

static const struct exit_case cases[] = {
    {0, RP_OK, "2.0.0"},     {64, RP_PERM, "5.3.0"},  {65, RP_PERM, "5.6.0"},
    {66, RP_PERM, "5.3.0"},  {67, RP_PERM, "5.1.1"},  {68, RP_PERM, "5.1.2"},
    {69, RP_PERM, "5.3.0"},  {70, RP_PERM, "5.3.0"},  {71, RP_TEMP, "4.3.0"},
    {72, RP_PERM, "5.3.0"},  {73, RP_PERM, "5.2.0"},  {74, RP_PERM, "5.3.0"},
    {75, RP_TEMP, "4.3.0"},  {76, RP_PERM, "5.5.0"},  {77, RP_PERM, "5.7.0"},
    {78, RP_PERM, "5.3.5"},  {1, RP_PERM, "5.3.0"},   {63, RP_PERM, "5.3.0"},
    {79, RP_PERM, "5.3.0"},  {255, RP_PERM, "5.3.0"}, {-9, RP_TEMP, "4.3.0"},
    {-15, RP_TEMP, "4.3.0"},
};

static void test_exit(void **state)
{
    const struct exit_case *c = *state;
    struct outcome o = {0};
    int wait_status = c->status >= 0 ? c->status << 8 : -c->status;
    command_exit_outcome(wait_status, "cmd", "first line\nsecond", &o);
    assert_int_equal(o.cls, c->cls);
    assert_true(strncmp(o.text.s, c->code, 5) == 0 && o.text.s[5] == ' ');
    assert_string_equal(o.relay, "local:command");
    if (c->status != 0)
        assert_non_null(strstr(o.text.s, ": \"first line\""));
    assert_null(strstr(o.text.s, "second"));
    outcome_free(&o);
}

/* The table the manual prints is the one the code uses: 15 rows, 64..78. */
static void test_table_is_complete(void **state)
{
    (void)state;
    size_t n;
    const struct exit_row *rows = command_exit_rows(&n);
    assert_int_equal(n, 15);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].status, 64 + (int)i);
        assert_true(rows[i].cls == RP_TEMP ? rows[i].dsn[0] == '4' : rows[i].dsn[0] == '5');
    }
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(cases); i++)
        rowtest_add(&t, test_exit, &cases[i], "%s %d", cases[i].status < 0 ? "signal" : "exit",
                    cases[i].status < 0 ? -cases[i].status : cases[i].status);
    rowtest_add(&t, test_table_is_complete, NULL, "the table covers 64..78");
    return rowtest_run(&t, "local_command");
}
