/*
 * fuzz_local_forward — libFuzzer target for the bytes onehop-local reads
 * from others: the first byte chooses
 *   0: a user's ~/.forward (daemons/local/forward.c forward_parse): every
 *      target has a kind, and a value unless it is the user's own mailbox;
 *   1: a message's content (daemons/local/msgcopy.c) copied with the flags
 *      of the second byte: the copy holds no CR LF, with MBOX_END it ends
 *      in an empty line, with FROM_QUOTE no line starts with "From "; and
 *      the Delivered-To: loop check runs over it.
 * Crashes, sanitizer reports and leaks are the failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "local/forward.h"
#include "local/msgcopy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf *test_conf(void)
{
    static struct conf c;
    static int done;
    if (!done) {
        static const char text[] = "myhostname = mta.test\nlocal_domains = mta.test\n";
        struct diag d = DIAG_INIT;
        log_open("fuzz", "/dev/null");
        conf_parse(&c, "/tmp", "onehop.conf", text, strlen(text), &d);
        diag_free(&d);
        done = 1;
    }
    return &c;
}

static void forward(const uint8_t *p, size_t n)
{
    struct forward f;
    forward_parse((const char *)p, n, ".forward", "alice", test_conf(), &f);
    for (size_t i = 0; i < f.n; i++)
        if (f.v[i].kind > FWD_FILE || (f.v[i].kind != FWD_SELF && !f.v[i].value))
            __builtin_trap();
    forward_free(&f);
}

static void content(const uint8_t *p, size_t n)
{
    unsigned flags = n ? p[0] & 3 : 0;
    if (n)
        p++, n--;
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0 || (n && write(in, p, n) != (ssize_t)n))
        __builtin_trap();
    struct msgsrc src = {in, 0, n};
    uint64_t written;
    if (msgcopy_to_fd(&src, flags, NULL, out, &written) < 0)
        __builtin_trap();
    struct buf b = BUF_INIT;
    buf_reserve(&b, (size_t)written + 1);
    if (pread(out, b.s, (size_t)written, 0) != (ssize_t)written)
        __builtin_trap();
    b.len = (size_t)written;
    for (size_t i = 0; i + 1 < b.len; i++)
        if (b.s[i] == '\r' && b.s[i + 1] == '\n')
            __builtin_trap();
    if ((flags & MSGCOPY_MBOX_END) &&
        (b.len < 1 || b.s[b.len - 1] != '\n' || (b.len >= 2 && b.s[b.len - 2] != '\n')))
        __builtin_trap();
    if (flags & MSGCOPY_FROM_QUOTE)
        for (size_t i = 0; i + 5 <= b.len; i++)
            if ((i == 0 || b.s[i - 1] == '\n') && memcmp(b.s + i, "From ", 5) == 0)
                __builtin_trap();
    (void)msgcopy_delivered_to(&src, "alice@mta.test");
    buf_free(&b);
    close(in);
    close(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        forward(data + 1, size - 1);
    else
        content(data + 1, size - 1);
    return 0;
}
