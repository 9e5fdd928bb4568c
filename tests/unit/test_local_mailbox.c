/*
 * test_local_mailbox — the Maildir++ maildirsize parser
 * (daemons/local/mailbox.c maildirsize_parse), one test per row: the
 * limits of the first line (both, either, none, in either order), usage
 * lines summed with removals, blank and bad lines skipped, a second number
 * missing, and sums that would overflow held at the int64_t limits (a
 * user's file may hold any number: the sum once wrapped, undefined
 * behaviour that fuzz_maildirsize found).
 */
#include "rowtest.h"

#include <string.h>

#include "local/mailbox.h"

struct mds_row {
    const char *name, *text;
    uint64_t max_bytes, max_count;
    int64_t bytes, count;
};

static const struct mds_row rows[] = {
    {"both limits and a usage line", "1000S,10C\n900 3\n", 1000, 10, 900, 3},
    {"the count first", "10C,1000S\n", 1000, 10, 0, 0},
    {"bytes only", "5000000S\n12 1\n", 5000000, 0, 12, 1},
    {"count only", "100C\n12 1\n", 0, 100, 12, 1},
    {"no limits", "\n12 1\n", 0, 0, 12, 1},
    {"an empty file", "", 0, 0, 0, 0},
    {"removals", "1000S\n900 3\n-400 -1\n", 1000, 0, 500, 2},
    {"blank and bad lines skipped", "1000S\n\nx y\n10 1\n\n20 1", 1000, 0, 30, 2},
    {"the count missing", "1000S\n10\n", 1000, 0, 10, 0},
    {"a sum held at INT64_MAX", "1S\n9223372036854775807 1\n9223372036854775807 1\n", 1, 0,
     INT64_MAX, 2},
    {"a number over the range held", "1S\n99999999999999999999 1\n", 1, 0, INT64_MAX, 1},
    {"a sum held at INT64_MIN", "1S\n-9223372036854775808 -1\n-1 -1\n", 1, 0, INT64_MIN, -2},
    {"the count held at INT64_MAX", "1C\n1 9223372036854775807\n1 1\n", 0, 1, 2, INT64_MAX},
};

static void test_parse(void **state)
{
    const struct mds_row *r = *state;
    char *text = xstrdup(r->text);
    struct maildir_quota q;
    maildirsize_parse(text, &q);
    free(text);
    assert_int_equal(q.max_bytes, r->max_bytes);
    assert_int_equal(q.max_count, r->max_count);
    assert_true(q.bytes == r->bytes);
    assert_true(q.count == r->count);
}

int main(void)
{
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, test_parse, &rows[i], "maildirsize: %s", rows[i].name);
    return rowtest_run(&t, "local_mailbox");
}
