/*
 * agent — one local delivery, its rights and its targets. See agent.h.
 */
#include "local/agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_core.h"
#include "ipc.h"
#include "local_proto.h"
#include "log.h"
#include "mem.h"
#include "safeio.h"
#include "local/command.h"
#include "local/forward.h"
#include "local/mailbox.h"
#include "local/msgcopy.h"
#include "local/outcome.h"

#define CHILD_RECORD 1 /* the child's answer: u32 class, str text, str relay, u32 n, n str */
#define FORWARD_RCPT_MAX 1000

/* Whose rights a delivery takes, and what its target's names are. */
struct ident {
    uid_t uid;
    gid_t gid;
    char *name, *home, *shell;
};

struct delivery {
    const struct conf *c;
    const struct lp_job *job;
    const struct lp_rcpt *rc;
    struct msgsrc src;
    struct buf prefix;   /* Return-Path:, Delivered-To: */
    const char *address; /* the address the target is for */
    struct buf local;    /* address's local part, with extension */
    struct buf user;     /* the local part without extension, lower-cased */
    const char *ext;     /* in local, after '+', or "" */
    const char *domain;
    struct ident id;
    struct forward fwd_out; /* addresses a .forward names (child -> agent) */
};

/* Something done in a child with d->id's rights (run_child). */
typedef void child_fn(struct delivery *d, const void *arg, struct outcome *o);

/* -------------------------------------------------------- identities ---- */

static void ident_from_pw(struct ident *id, const struct passwd *pw)
{
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    id->name = xstrdup(pw->pw_name);
    id->home = xstrdup(pw->pw_dir);
    id->shell = xstrdup(pw->pw_shell ? pw->pw_shell : "");
}

static void ident_free(struct ident *id)
{
    free(id->name);
    free(id->home);
    free(id->shell);
}

/* uid's passwd entry, or a name "#UID" with HOME from the environment. */
static void ident_from_uid(struct ident *id, uid_t uid, gid_t gid)
{
    struct passwd *pw = getpwuid(uid);
    if (pw) {
        ident_from_pw(id, pw);
        return;
    }
    struct buf name = BUF_INIT;
    buf_printf(&name, "#%lu", (unsigned long)uid);
    id->uid = uid;
    id->gid = gid;
    id->name = buf_steal(&name);
    id->home = xstrdup(getenv("HOME") ? getenv("HOME") : "/");
    id->shell = xstrdup("/bin/sh");
}

/* local_users = any: the instance's own user. */
static void ident_instance(struct ident *id, const struct conf *c)
{
    struct stat st;
    if (geteuid() == 0 && stat(c->config_dir, &st) == 0)
        ident_from_uid(id, st.st_uid, st.st_gid);
    else
        ident_from_uid(id, geteuid(), getegid());
}

/* Postfix's default_privs: the rights of targets that must not run as root. */
static int ident_nobody(struct ident *id, struct outcome *o)
{
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        outcome_set(o, RP_TEMP, "local", "4.3.5 no account \"nobody\" to run the target as");
        return -1;
    }
    ident_from_pw(id, pw);
    return 0;
}

/* A target of the aliases: the aliases file's owner, or nobody for root. */
static int ident_aliases(struct ident *id, const struct conf *c, struct outcome *o)
{
    struct buf path = BUF_INIT;
    struct stat st;
    path_join(&path, c->config_dir, "aliases");
    int have = stat(path.s, &st) == 0;
    buf_free(&path);
    if (geteuid() != 0) {
        ident_from_uid(id, geteuid(), getegid());
        return 0;
    }
    if (have && st.st_uid != 0) {
        ident_from_uid(id, st.st_uid, st.st_gid);
        return 0;
    }
    return ident_nobody(id, o);
}

/* ------------------------------------------------------------ names ---- */

/* address = local@domain: local (with extension), user, ext, domain. */
static void split_address(struct delivery *d)
{
    const char *at = strrchr(d->address, '@');
    size_t n = at ? (size_t)(at - d->address) : strlen(d->address);
    buf_add(&d->local, d->address, n);
    buf_cstr(&d->local);
    d->domain = at ? at + 1 : "";
    size_t u = strcspn(d->local.s, "+");
    for (size_t i = 0; i < u; i++)
        buf_addc(&d->user, (char)tolower((unsigned char)d->local.s[i]));
    buf_cstr(&d->user);
    d->ext = d->local.s[u] == '+' ? d->local.s + u + 1 : "";
}

/* %u of a local_users = any mailbox names a file: no '/', no leading '.'. */
static int user_is_file_name(const char *u)
{
    return u[0] && u[0] != '.' && !strchr(u, '/');
}

/* `mailbox` with ~ (at the start), %u, %d, %h and %% expanded. */
static void expand_mailbox(const struct delivery *d, const char *user, struct buf *out)
{
    const char *m = d->c->mailbox;
    if (m[0] == '~' && (m[1] == '/' || m[1] == '\0')) {
        buf_adds(out, d->id.home);
        m++;
    }
    for (; *m; m++) {
        if (*m != '%' || !m[1]) {
            buf_addc(out, *m);
            continue;
        }
        m++;
        if (*m == 'u')
            buf_adds(out, user);
        else if (*m == 'd')
            buf_adds(out, d->domain);
        else if (*m == 'h')
            buf_adds(out, d->id.home);
        else
            buf_addc(out, *m);
    }
    buf_cstr(out);
}

/* --------------------------------------------- in the user's rights ---- */

/* Take id's uid, gid and groups (as root); 0 or -1. Not root: nothing to
 * take (an ordinary user's instance delivers as that user). */
static int become(const struct ident *id)
{
    if (geteuid() != 0)
        return 0;
    int groups = id->name[0] == '#' ? setgroups(1, &id->gid) : initgroups(id->name, id->gid);
    if (groups < 0 || setgid(id->gid) < 0 || setuid(id->uid) < 0)
        return -1;
    if (getuid() != id->uid || geteuid() != id->uid || getegid() != id->gid)
        return -1;
    if (id->uid != 0 && setuid(0) == 0)
        return -1; /* the switch must not be undoable */
    return 0;
}

static void mailbox_delivery(struct delivery *d, struct outcome *o)
{
    struct buf path = BUF_INIT;
    const char *user = d->c->local_users == LOCAL_USERS_ANY ? d->user.s : d->id.name;
    expand_mailbox(d, user, &path);
    if (path.len && path.s[path.len - 1] == '/')
        maildir_deliver(path.s, &d->src, &d->prefix, d->c->myhostname, o);
    else
        mbox_deliver(path.s, &d->src, &d->prefix, d->job->sender, "local:mbox", o);
    buf_free(&path);
}

static void command_delivery(struct delivery *d, const char *command, struct outcome *o)
{
    struct command_env e = {d->job->sender, d->address, d->rc->original, d->local.s, d->ext,
                            d->domain,      d->id.name, d->id.home,      d->id.shell};
    command_deliver(command, &e, &d->src, &d->prefix, (unsigned)d->c->local_command_timeout, o);
}

/* Fold one target's outcome into the whole: temporary wins (the whole
 * is tried again), then permanent; the texts are joined. */
static void fold(struct outcome *all, int *first, const struct outcome *one)
{
    if (*first) {
        all->cls = one->cls;
        all->relay = one->relay;
        buf_set(&all->text, one->text.s, one->text.len);
        *first = 0;
        return;
    }
    if (one->cls == RP_TEMP || (one->cls == RP_PERM && all->cls == RP_OK)) {
        struct buf joined = BUF_INIT;
        buf_printf(&joined, "%s; %s", one->text.s, all->text.s);
        buf_free(&all->text);
        all->text = joined;
        all->cls = one->cls;
        all->relay = one->relay;
    } else {
        buf_printf(&all->text, "; %s", one->text.s + (one->text.len > 6 ? 6 : 0));
    }
}

static void target_delivery(struct delivery *d, const void *arg, struct outcome *o)
{
    const struct forward_target *t = arg;
    if (t->kind == FWD_COMMAND)
        command_delivery(d, t->value, o);
    else
        mbox_deliver(t->value, &d->src, &d->prefix, d->job->sender, "local:file", o);
}

static void run_child(struct delivery *d, child_fn *fn, const void *arg, struct outcome *o);

/* A command or file of a .forward, with the user's rights; root's own
 * never run as root (Postfix's default_privs): as nobody, in a child. */
static void forward_target(struct delivery *d, const struct forward_target *t, struct outcome *o)
{
    if (d->id.uid != 0 || geteuid() != 0) {
        target_delivery(d, t, o);
        return;
    }
    struct ident root = d->id;
    if (ident_nobody(&d->id, o) == 0) {
        run_child(d, target_delivery, t, o);
        ident_free(&d->id);
    }
    d->id = root;
}

/* The user's .forward targets: commands and files delivered here, the
 * addresses kept in d->fwd_out for the agent. */
static void forward_delivery(struct delivery *d, const struct forward *f, struct outcome *o)
{
    int first = 1;
    for (size_t i = 0; i < f->n; i++) {
        struct outcome one = {0};
        const struct forward_target *t = &f->v[i];
        if (t->kind == FWD_SELF)
            mailbox_delivery(d, &one);
        else if (t->kind == FWD_COMMAND || t->kind == FWD_FILE)
            forward_target(d, t, &one);
        else {
            if (d->fwd_out.n < FORWARD_RCPT_MAX) {
                d->fwd_out.v = xrealloc(d->fwd_out.v, (d->fwd_out.n + 1) * sizeof(*d->fwd_out.v));
                d->fwd_out.v[d->fwd_out.n++] =
                    (struct forward_target){FWD_ADDRESS, xstrdup(t->value)};
            }
            continue;
        }
        fold(o, &first, &one);
        outcome_free(&one);
    }
    if (first)
        outcome_set(o, RP_OK, "local", "2.0.0 forwarded");
}

static void address_delivery(struct delivery *d, struct outcome *o)
{
    if (d->c->local_users == LOCAL_USERS_PASSWD) {
        struct forward f;
        int rc = forward_read(d->id.home, d->id.uid, d->id.name, d->c, d->job->queue_id, &f);
        if (rc < 0) {
            outcome_errno(o, "local", errno, "cannot read ~/.forward");
            return;
        }
        if (rc > 0) {
            forward_delivery(d, &f, o);
            forward_free(&f);
            return;
        }
    }
    mailbox_delivery(d, o);
}

/* What the child does once it has the user's rights. */
static void deliver_as_user(struct delivery *d, const void *arg, struct outcome *o)
{
    (void)arg;
    const char *r = d->rc->recipient;
    if (r[0] == '|')
        command_delivery(d, r + 1, o);
    else if (r[0] == '/')
        mbox_deliver(r, &d->src, &d->prefix, d->job->sender, "local:file", o);
    else
        address_delivery(d, o);
}

/* ----------------------------------------------- child <-> agent ---- */

static void put_child_record(struct buf *out, const struct outcome *o, const struct forward *f)
{
    struct ipc_writer w;
    ipc_begin(&w, out, CHILD_RECORD);
    ipc_add_u32(&w, (uint32_t)o->cls);
    ipc_add_str(&w, buf_cstr((struct buf *)&o->text));
    ipc_add_str(&w, o->relay ? o->relay : "local");
    ipc_add_u32(&w, (uint32_t)f->n);
    for (size_t i = 0; i < f->n; i++)
        ipc_add_str(&w, f->v[i].value);
    ipc_finish(&w);
}

/* The relay names are few and static: keep ours, never the child's text. */
static const char *known_relay(const char *s)
{
    static const char *const relays[] = {"local", "local:maildir", "local:mbox", "local:file",
                                         "local:command"};
    for (size_t i = 0; i < sizeof(relays) / sizeof(relays[0]); i++)
        if (strcmp(s, relays[i]) == 0)
            return relays[i];
    return "local";
}

static int get_child_record(const struct buf *rec, struct outcome *o, struct forward *f)
{
    struct ipc_reader r;
    uint32_t cls, n;
    const char *text, *relay;
    if (ipc_open(&r, rec->s, rec->len) < 0 || r.type != CHILD_RECORD || ipc_get_u32(&r, &cls) < 0 ||
        cls > RP_PERM || ipc_get_str(&r, RP_TEXT_MAX, &text) < 0 ||
        ipc_get_str(&r, 64, &relay) < 0 || ipc_get_u32(&r, &n) < 0 || n > FORWARD_RCPT_MAX) {
        ipc_close(&r);
        return -1;
    }
    outcome_set(o, (enum rp_class)cls, known_relay(relay), "%s", text);
    for (uint32_t i = 0; i < n; i++) {
        const char *a;
        if (ipc_get_str(&r, RP_ADDR_MAX, &a) < 0)
            break;
        f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
        f->v[f->n++] = (struct forward_target){FWD_ADDRESS, xstrdup(a)};
    }
    int rc = ipc_end(&r);
    ipc_close(&r);
    return rc;
}

/* In the child: take d->id's rights, run fn, write the answer, exit. */
static void child_main(struct delivery *d, child_fn *fn, const void *arg, int out)
{
    struct outcome o = {0};
    struct buf rec = BUF_INIT;
    if (become(&d->id) < 0)
        outcome_set(&o, RP_TEMP, "local", "4.3.0 cannot take the rights of %s: %s", d->id.name,
                    strerror(errno));
    else
        fn(d, arg, &o);
    put_child_record(&rec, &o, &d->fwd_out);
    _exit(write_all(out, rec.s, rec.len) < 0 ? 75 : 0);
}

/* fn with d->id's rights in a child of its own; its outcome into o and
 * the addresses it named appended to d->fwd_out. */
static void run_child(struct delivery *d, child_fn *fn, const void *arg, struct outcome *o)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        outcome_errno(o, "local", errno, "cannot make a pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        forward_free(&d->fwd_out); /* the child's copy: it reports only its own */
        child_main(d, fn, arg, p[1]);
    }
    close(p[1]);
    struct buf rec = BUF_INIT;
    int got = pid < 0 ? -1 : read_all(p[0], &rec, RP_RECORD_MAX);
    int status = 0;
    close(p[0]);
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0)
        outcome_errno(o, "local", errno, "cannot fork");
    else if (got < 0 || get_child_record(&rec, o, &d->fwd_out) < 0)
        outcome_set(o, RP_TEMP, "local", "4.3.0 the delivery process failed (status %d)", status);
    buf_free(&rec);
}

/* ---------------------------------------------------------- the agent ---- */

/* Re-inject what a .forward named; the outcome says so. */
static void reinject(struct delivery *d, struct outcome *o)
{
    char **rcpts = xcalloc(d->fwd_out.n, sizeof(*rcpts));
    char id[64];
    struct buf why = BUF_INIT, dt = BUF_INIT;
    for (size_t i = 0; i < d->fwd_out.n; i++)
        rcpts[i] = d->fwd_out.v[i].value;
    buf_printf(&dt, "Delivered-To: %s\n", d->address);
    int rc = forward_inject(d->c, d->job->sender, rcpts, d->fwd_out.n, &d->src, &dt, id, &why);
    if (rc == 0 && o->cls == RP_OK) {
        if (strcmp(o->text.s, "2.0.0 forwarded") == 0)
            outcome_set(o, RP_OK, "local", "2.0.0 forwarded as %s", id);
        else
            buf_printf(&o->text, "; forwarded as %s", id);
        log_info("%s: <%s> forwarded as %s to %zu recipient%s", d->job->queue_id, d->address, id,
                 d->fwd_out.n, d->fwd_out.n == 1 ? "" : "s");
    } else if (rc < 0) {
        outcome_set(o, rc == -2 ? RP_PERM : RP_TEMP, "local", "%s forwarding failed: %s",
                    rc == -2 ? "5.3.0" : "4.3.0", why.s);
    }
    buf_free(&why);
    buf_free(&dt);
    free(rcpts);
}

/* Who the delivery runs as; -1 with the outcome set when nobody. */
static int choose_ident(struct delivery *d, struct outcome *o)
{
    if (d->rc->recipient[0] == '|' || d->rc->recipient[0] == '/') {
        if (d->c->local_users == LOCAL_USERS_ANY) {
            ident_instance(&d->id, d->c);
            return 0;
        }
        return ident_aliases(&d->id, d->c, o);
    }
    if (d->c->local_users == LOCAL_USERS_ANY) {
        if (!user_is_file_name(d->user.s)) {
            outcome_set(o, RP_PERM, "local", "5.1.3 local part \"%s\" cannot name a mailbox",
                        d->user.s);
            return -1;
        }
        ident_instance(&d->id, d->c);
        return 0;
    }
    errno = 0;
    struct passwd *pw = getpwnam(d->user.s);
    if (!pw) {
        if (errno && errno != ENOENT && errno != ESRCH)
            outcome_errno(o, "local", errno, "cannot look up the user");
        else
            outcome_set(o, RP_PERM, "local", "5.1.1 unknown user: \"%s\"", d->user.s);
        return -1;
    }
    ident_from_pw(&d->id, pw);
    return 0;
}

static void deliver(struct delivery *d, struct outcome *o)
{
    const char *r = d->rc->recipient;
    d->address = r[0] == '|' || r[0] == '/' ? d->rc->original : r;
    split_address(d);
    int loop = msgcopy_delivered_to(&d->src, d->address);
    if (loop != 0) {
        if (loop < 0)
            outcome_errno(o, "local", errno, "cannot read the message");
        else
            outcome_set(o, RP_PERM, "local", "5.4.6 mail forwarding loop for %s", d->address);
        return;
    }
    buf_printf(&d->prefix, "Return-Path: <%s>\nDelivered-To: %s\n", d->job->sender, d->address);
    if (choose_ident(d, o) < 0)
        return;
    run_child(d, deliver_as_user, NULL, o);
    if (d->fwd_out.n && o->cls == RP_OK)
        reinject(d, o);
}

int agent_main(const struct conf *c)
{
    struct buf rec = BUF_INIT, out = BUF_INIT;
    struct lp_job j;
    const char *why = "";
    signal(SIGTERM, SIG_IGN); /* a delivery under way finishes: see main.c */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* RLIMIT_FSIZE: a write fails with EFBIG instead */
    signal(SIGCHLD, SIG_DFL);
    fcntl(AGENT_MSG_FD, F_SETFD, FD_CLOEXEC);
    if (chan_recv_record(0, LP_RECORD_MAX, 0, 30000, &rec, NULL, NULL, &why) != 1 ||
        lp_get_job(rec.s, rec.len, &j, &why) < 0 || j.nrcpt != 1) {
        log_error("delivery agent: no job on standard input: %s", why ? why : "one recipient");
        return 1;
    }
    struct delivery d;
    memset(&d, 0, sizeof(d));
    d.c = c;
    d.job = &j;
    d.rc = &j.rcpt[0];
    d.src = (struct msgsrc){AGENT_MSG_FD, j.offset, j.length};
    struct outcome o = {0};
    deliver(&d, &o);
    struct rp_result r = {j.job,  0, o.cls, buf_cstr(&o.text), o.relay ? o.relay : "local",
                          "none", 0, 0};
    rp_put_result(&out, &r);
    int rc = write_all(1, out.s, out.len) < 0 ? 1 : 0;
    outcome_free(&o);
    forward_free(&d.fwd_out);
    ident_free(&d.id);
    buf_free(&d.prefix);
    buf_free(&d.local);
    buf_free(&d.user);
    buf_free(&out);
    buf_free(&rec);
    lp_job_free(&j);
    return rc;
}
