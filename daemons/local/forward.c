/*
 * forward — ~/.forward files and the re-injection of forwarded mail. See
 * forward.h.
 */
#include "local/forward.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aliases.h"
#include "channel_core.h"
#include "diag.h"
#include "inject_client.h"
#include "inject_proto.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "safeio.h"

/* "\alice" (sendmail's "my own mailbox, no further forwarding") is the
 * user's own name: drop a backslash that starts a target outside quotes. */
static void drop_backslashes(const char *text, size_t len, struct buf *out)
{
    int quoted = 0, item_start = 1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"')
            quoted = !quoted;
        if (c == '\\' && !quoted && item_start)
            continue;
        buf_addc(out, c);
        if (c == ',' || c == '\n')
            item_start = 1;
        else if (c != ' ' && c != '\t')
            item_start = 0;
    }
}

/* The local part of a (without quotes, extension, case) is the user, and
 * its domain is none or a local one. */
static int names_self(const struct mailaddr *a, const char *user, const struct conf *c)
{
    struct buf local = BUF_INIT;
    addr_local_unquoted(a, &local);
    size_t n = strcspn(buf_cstr(&local), "+");
    int self = n == strlen(user) && strncasecmp(local.s, user, n) == 0 &&
               (!a->domain || conf_list_has(&c->local_domains, a->domain) ||
                strcasecmp(a->domain, c->myhostname) == 0);
    buf_free(&local);
    return self;
}

static void add_target(struct forward *f, enum forward_kind kind, char *value)
{
    f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
    f->v[f->n++] = (struct forward_target){kind, value};
}

static void take_target(const struct alias_target *t, const char *fname, const char *user,
                        const struct conf *c, struct forward *out)
{
    struct buf b = BUF_INIT;
    switch (t->kind) {
    case ALIAS_COMMAND:
        add_target(out, FWD_COMMAND, xstrdup(t->value));
        break;
    case ALIAS_FILE:
        add_target(out, FWD_FILE, xstrdup(t->value));
        break;
    case ALIAS_ADDRESS:
        if (names_self(&t->addr, user, c)) {
            add_target(out, FWD_SELF, NULL);
            break;
        }
        addr_format(&t->addr, &b);
        if (!t->addr.domain)
            buf_printf(&b, "@%s", c->myorigin);
        add_target(out, FWD_ADDRESS, buf_steal(&b));
        break;
    case ALIAS_INCLUDE:
        log_warn("%s:%u: :include: is not followed in a .forward file; ignored", fname, t->line);
        break;
    }
    buf_free(&b);
}

void forward_parse(const char *text, size_t len, const char *fname, const char *user,
                   const struct conf *c, struct forward *out)
{
    struct buf clean = BUF_INIT;
    struct alias al;
    struct diag d = DIAG_INIT;
    memset(out, 0, sizeof(*out));
    drop_backslashes(text, len, &clean);
    aliases_parse_include(&al, fname, buf_cstr(&clean), clean.len, &d);
    diag_log(&d);
    for (size_t i = 0; i < al.ntargets; i++)
        take_target(&al.targets[i], fname, user, c, out);
    alias_entry_free(&al);
    diag_free(&d);
    buf_free(&clean);
}

void forward_free(struct forward *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].value);
    free(f->v);
    memset(f, 0, sizeof(*f));
}

/* Why the .forward behind fd must not be used, or NULL. */
static const char *unsafe_reason(int fd, uid_t uid)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return "cannot be examined";
    if (!S_ISREG(st.st_mode))
        return "is not a regular file";
    if (st.st_uid != uid && st.st_uid != 0)
        return "is owned by another user";
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return "is group or world writable";
    return NULL;
}

int forward_read(const char *home, uid_t uid, const char *user, const struct conf *c,
                 const char *qid, struct forward *out)
{
    struct buf path = BUF_INIT, text = BUF_INIT;
    memset(out, 0, sizeof(*out));
    path_join(&path, home, ".forward");
    int fd = open(path.s, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int rc = 0;
    if (fd < 0) {
        if (errno == ELOOP)
            log_warn("%s: %s is a symbolic link; ignored", qid, path.s);
        else if (errno != ENOENT && errno != ENOTDIR)
            rc = -1;
    } else {
        const char *why = unsafe_reason(fd, uid);
        if (why) {
            log_warn("%s: %s %s; ignored", qid, path.s, why);
        } else if (read_all(fd, &text, FORWARD_MAX) < 0) {
            rc = -1;
        } else {
            forward_parse(buf_cstr(&text), text.len, path.s, user, c, out);
            rc = out->n > 0;
        }
        int saved = errno;
        close(fd);
        errno = saved;
    }
    buf_free(&path);
    buf_free(&text);
    return rc;
}

/* ------------------------------------------------------------ inject ---- */

/* The transaction, the content streamed in INJ_DATA records. */
static int send_message(struct inject_client *ic, const char *sender, char *const *rcpts, size_t n,
                        const struct msgsrc *src, const struct buf *prefix)
{
    struct buf recs = BUF_INIT;
    struct msgcopy copy;
    const char *p;
    size_t len;
    int rc;
    inject_put_envelope(&recs, sender, (const char *const *)rcpts, n);
    msgcopy_init(&copy, src, 0, prefix);
    while ((rc = msgcopy_next(&copy, &p, &len)) == 1) {
        inject_put_data(&recs, p, len);
        if (inject_client_send(ic, &recs) < 0) {
            rc = -1;
            break;
        }
        buf_clear(&recs);
    }
    if (rc == 0) {
        inject_put_end(&recs);
        rc = inject_client_send(ic, &recs);
    }
    msgcopy_free(&copy);
    buf_free(&recs);
    return rc < 0 ? -1 : 0;
}

int forward_inject(const struct conf *c, const char *sender, char *const *rcpts, size_t n,
                   const struct msgsrc *src, const struct buf *prefix, char *id, struct buf *why)
{
    struct inject_client ic;
    if (inject_client_start(&ic, c, FORWARD_INJECT_TIMEOUT_MS, why) < 0)
        return -1;
    int rc = -1;
    if (send_message(&ic, sender, rcpts, n, src, prefix) < 0)
        buf_printf(why, "writing to onehop-queue: %s", strerror(errno));
    else
        rc = inject_client_answer(&ic, id, why);
    inject_client_end(&ic);
    return rc;
}
