/*
 * test_local_forward — ~/.forward parsing (daemons/local/forward.c), one
 * test per row: addresses (a bare name gets @myorigin), |commands (quoted
 * ones with commas), /files, the user's own name in its forms (\alice,
 * alice, alice+ext@a-local-domain: the own mailbox), comments and blank
 * lines, several targets a line or a line each, :include: and bad
 * addresses left out.
 */
#include "rowtest.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "local/forward.h"

static struct conf conf;

struct fwd_row {
    const char *name, *text;
    const char *want; /* the targets as "KIND:value;" */
};

static const struct fwd_row rows[] = {
    {"an address", "bob@b.test\n", "A:bob@b.test;"},
    {"a bare name", "bob\n", "A:bob@mta.test;"},
    {"a command", "|/usr/bin/procmail -f-\n", "C:/usr/bin/procmail -f-;"},
    {"a quoted command with a comma", "\"|/bin/x a, b\"\n", "C:/bin/x a, b;"},
    {"a file", "/var/mail/copy\n", "F:/var/mail/copy;"},
    {"the own name", "alice\n", "S;"},
    {"the own name with a backslash", "\\alice\n", "S;"},
    {"the own address with extension", "alice+x@mta.test\n", "S;"},
    {"the own name at a local domain", "ALICE@localhost\n", "S;"},
    {"the same name elsewhere", "alice@b.test\n", "A:alice@b.test;"},
    {"comments and blank lines", "# c\n\n   \n# d\n", ""},
    {"several a line and a line each", "a@b.test, c@d.test\n\\alice,\ne@f.test\n",
     "A:a@b.test;A:c@d.test;S;A:e@f.test;"},
    {":include: is left out", ":include:/etc/x\nb@b.test\n", "A:b@b.test;"},
    {"a bad address is left out", "a@@b\nc@d.test\n", "A:c@d.test;"},
    {"no newline at the end", "bob@b.test", "A:bob@b.test;"},
};

static void test_parse(void **state)
{
    const struct fwd_row *r = *state;
    struct forward f;
    struct buf got = BUF_INIT;
    forward_parse(r->text, strlen(r->text), ".forward", "alice", &conf, &f);
    for (size_t i = 0; i < f.n; i++) {
        static const char kinds[] = {'S', 'A', 'C', 'F'};
        buf_addc(&got, kinds[f.v[i].kind]);
        if (f.v[i].value)
            buf_printf(&got, ":%s", f.v[i].value);
        buf_addc(&got, ';');
    }
    assert_string_equal(buf_cstr(&got), r->want);
    forward_free(&f);
    buf_free(&got);
}

int main(void)
{
    static const char text[] = "myhostname = mta.test\nlocal_domains = mta.test, localhost\n";
    struct diag d = DIAG_INIT;
    log_open("test", "/dev/null");
    if (conf_parse(&conf, "/tmp", "onehop.conf", text, strlen(text), &d) < 0)
        return 1;
    diag_free(&d);
    struct rowtest t = ROWTEST_INIT;
    for (size_t i = 0; i < ROWS(rows); i++)
        rowtest_add(&t, test_parse, &rows[i], "forward: %s", rows[i].name);
    int rc = rowtest_run(&t, "local_forward");
    conf_free(&conf);
    return rc;
}
