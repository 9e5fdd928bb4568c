/*
 * sendmail — the sendmail-compatible front end (SPEC section 2), installed
 * also as `mailq` (= sendmail -bp) and `newaliases` (= sendmail -bi); the
 * name it is run by picks the mode.
 *
 *     sendmail [options] [--] [recipient...]
 *
 * Modes: -bm (default) reads a message on standard input, prepares it
 * (queue/msgprep.h) and hands it to onehop-queue in one-shot mode
 * (inject_proto.h), so it works whether or not the daemons run; -bp lists
 * the queue exactly as `onehop queue` does; -bi / -I / newaliases validate
 * the aliases file; -q asks a running router to flush (`onehop flush`);
 * -bs execs onehop-smtpd --bs (an SMTP session on standard input/output).
 *
 * Options are parsed as sendmail's getopt does: flags may be grouped (-ti),
 * option arguments attached or separate (-fADDR, -f ADDR), options and
 * recipients may be mixed, and "--" ends the options. Options that mean
 * nothing here (-oem -oee -oep -odb -odi -B -h -L -O -R -V -X -p -m -n -U
 * -G -c -x, other -o*) are accepted and ignored; -N sets the DSN notify
 * value of every recipient; -v reports the queue id.
 *
 * Exit status (sysexits.h): 0 queued, 64 usage, 65 bad address or message,
 * 69 unavailable (-bs without onehop-smtpd; -q while onehop is stopped), 70
 * internal error, 75 temporary failure (nothing queued; retry); -q: 65 when
 * the router refused what was named (-qI unknown ID), 77 when it does not
 * admit the caller (only the instance's owner and root). Must never exit 0 unless
 * onehop-queue answered that the message is committed.
 */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "log.h"
#include "mem.h"
#include "qlist.h"
#include "router_ctl.h"
#include "safeio.h"
#include "sendmail.h"

extern char **environ;

#define FLUSH_TIMEOUT_MS 120000

enum mode { MODE_DELIVER, MODE_LIST, MODE_SMTP, MODE_FLUSH, MODE_NEWALIASES };

struct options {
    enum mode mode;
    unsigned flags;         /* MSGPREP_EXTRACT, MSGPREP_IGNORE_DOTS */
    const char *sender;     /* -f / -r */
    const char *full_name;  /* -F */
    const char *confdir;    /* -C */
    struct buf notify;      /* -N, as inject_proto.h wants it ("" none) */
    const char *flush_what; /* -qR SITE / -qI ID: "@site" or an id; NULL all */
    struct buf flush_arg;
    int verbose;
    char **rcpt;
    size_t nrcpt;
};

static const char *program = "sendmail";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: sendmail [-t] [-i|-oi] [-f|-r sender] [-F full_name] [-N dsn]"
                    " [-B type] [-v] [-o...] [-C dir] [-bm|-bp|-bs|-bi] [-q] [--] [recipient...]\n");
    return EX_USAGE;
}

/* ------------------------------------------------------------ options ---- */

/* -N never | success,failure,delay (RFC 3461 4.1 NOTIFY), any case. */
static int parse_notify(const char *value, struct options *o)
{
    struct buf words = BUF_INIT;
    int never = 0, others = 0, rc = 0;
    buf_sets(&words, value);
    buf_clear(&o->notify);
    for (char *save = NULL, *w = strtok_r(words.s, ",", &save); w && rc == 0;
         w = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(w, "never") == 0)
            never = 1;
        else if (strcasecmp(w, "success") == 0 || strcasecmp(w, "failure") == 0 ||
                 strcasecmp(w, "delay") == 0)
            others = 1;
        else
            rc = usage("bad -N value \"%s\" (never, or success,failure,delay)", value);
        if (o->notify.len > 0)
            buf_addc(&o->notify, ',');
        for (const char *p = w; *p; p++)
            buf_addc(&o->notify, (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p));
    }
    if (rc == 0 && never + others != 1)
        rc = usage("bad -N value \"%s\" (never, or success,failure,delay)", value);
    buf_free(&words);
    return rc;
}

static int set_mode(struct options *o, const char *value)
{
    if (strcmp(value, "m") == 0)
        o->mode = MODE_DELIVER;
    else if (strcmp(value, "p") == 0)
        o->mode = MODE_LIST;
    else if (strcmp(value, "s") == 0)
        o->mode = MODE_SMTP;
    else if (strcmp(value, "i") == 0)
        o->mode = MODE_NEWALIASES;
    else
        return usage("-b%s is not supported (use -bm, -bp, -bs or -bi)", value);
    return 0;
}

/* -q: flush everything; -qR SITE / -qI ID: one destination or message;
 * -q with an interval (sendmail's queue runner period) flushes once. */
static int set_flush(struct options *o, const char *value)
{
    o->mode = MODE_FLUSH;
    if (value[0] == 'R' && value[1]) {
        buf_printf(&o->flush_arg, "@%s", value + 1 + (value[1] == '@'));
        o->flush_what = buf_cstr(&o->flush_arg);
    } else if (value[0] == 'I' && value[1]) {
        o->flush_what = value + 1;
    }
    return 0;
}

/* An option that takes a value (attached or the next argument). */
static int option_with_value(struct options *o, char c, const char *value)
{
    switch (c) {
    case 'b':
        return set_mode(o, value);
    case 'f':
    case 'r':
        o->sender = value;
        return 0;
    case 'F':
        o->full_name = value;
        return 0;
    case 'C':
        o->confdir = value;
        return 0;
    case 'N':
        return parse_notify(value, o);
    case 'o':
        if (strcmp(value, "i") == 0) /* -oi: same as -i */
            o->flags |= MSGPREP_IGNORE_DOTS;
        return 0; /* -oem -oee -oep -odb -odi and the rest: ignored */
    default:      /* B e h L O p R V X: accepted, meaningless here */
        return 0;
    }
}

/* A flag without value. */
static int option_flag(struct options *o, char c)
{
    switch (c) {
    case 't':
        o->flags |= MSGPREP_EXTRACT;
        return 0;
    case 'i':
        o->flags |= MSGPREP_IGNORE_DOTS;
        return 0;
    case 'v':
        o->verbose = 1;
        return 0;
    case 'I':
        o->mode = MODE_NEWALIASES;
        return 0;
    case 'G': /* gateway submission */
    case 'U': /* initial user submission */
    case 'm': /* me too */
    case 'n': /* no aliasing */
    case 'c':
    case 'x':
        return 0;
    default: {
        char opt[2] = {c, '\0'};
        return usage("unknown option -%s", opt);
    }
    }
}

/* One argument of grouped options; *i moves past a separate value. */
static int parse_option_group(struct options *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t j = 1; a[j]; j++) {
        char c = a[j];
        if (c == 'q')
            return set_flush(o, a + j + 1);
        if (!strchr("BCFLNORVXbefhopr", c)) {
            int rc = option_flag(o, c);
            if (rc != 0)
                return rc;
            continue;
        }
        const char *value = a + j + 1;
        if (*value == '\0') {
            if (*i + 1 >= argc) {
                char opt[2] = {c, '\0'};
                return usage("option -%s needs a value", opt);
            }
            value = argv[++*i];
        }
        return option_with_value(o, c, value);
    }
    return 0;
}

static int parse_options(struct options *o, int argc, char **argv)
{
    o->rcpt = xcalloc((size_t)argc + 1, sizeof(*o->rcpt));
    int i = 1, rc = 0;
    for (; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            rc = parse_option_group(o, argc, argv, &i);
        else
            o->rcpt[o->nrcpt++] = argv[i]; /* options and recipients may mix */
    }
    for (; rc == 0 && i < argc; i++)
        o->rcpt[o->nrcpt++] = argv[i];
    return rc;
}

/* -------------------------------------------------------------- modes ---- */

static int load_conf(struct conf *c, const char *confdir)
{
    struct diag d = DIAG_INIT;
    int rc = conf_load(c, confdir, &d);
    diag_print(&d, stderr);
    diag_free(&d);
    if (rc != 0) {
        fprintf(stderr, "%s: the configuration in %s has errors; nothing was done\n", program,
                confdir);
        conf_free(c);
        return EX_TEMPFAIL;
    }
    return EX_OK;
}

static int list_queue(const struct conf *c)
{
    struct queue *q;
    const char *why = NULL;
    if (qlist_open(c->queue_dir, &q, &why) != 0) {
        int e = errno;
        if (e == EACCES) /* an ordinary user: the set-uid onehop-queue lists it */
            return sendmail_exec_lister(c, program);
        fprintf(stderr, "%s: %s: %s: %s\n", program, c->queue_dir, why, strerror(e));
        return EX_TEMPFAIL;
    }
    int rc = qlist_print_queue(q, 0, stdout) == 0 ? EX_OK : EX_IOERR;
    queue_close(q);
    return rc;
}

/* -q: only a running router can flush; sendmail asks it on its control
 * socket (common/router_ctl.h, no libuv: this program is static). With
 * onehop stopped, say so: mail waits in the queue and goes when onehop
 * starts (exit 69, as Postfix's sendmail -q when the mail system is down);
 * a refused caller exits 77 (EX_NOPERM). */
static int flush_queue(const struct conf *c, const struct options *o)
{
    char *target[] = {(char *)o->flush_what};
    struct rctl_request req = {RCTL_FLUSH, RCTL_SEL_NAMED, target, o->flush_what ? 1 : 0};
    switch (rctl_ask(c->run_dir, c->queue_dir, &req, program, FLUSH_TIMEOUT_MS)) {
    case RCTL_ASK_DONE:
        return EX_OK;
    case RCTL_ASK_FAILED:
        return EX_DATAERR;
    case RCTL_ASK_REFUSED:
        return EX_NOPERM;
    case RCTL_ASK_ERROR:
        return EX_TEMPFAIL;
    case RCTL_ASK_NOT_RUNNING:
        break;
    }
    int running = sendmail_router_running(c);
    fprintf(stderr,
            running > 0 ? "%s: cannot flush the queue: onehop's router is starting; try again\n"
                        : "%s: cannot flush the queue: onehop is stopped; queued mail will be "
                          "delivered when it starts (onehop start)\n",
            program);
    return running > 0 ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

static const char *login_name(void)
{
    const struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name && pw->pw_name[0])
        return pw->pw_name;
    static char uid_name[32];
    snprintf(uid_name, sizeof(uid_name), "uid%lu", (unsigned long)getuid());
    return uid_name;
}

/* The left part of a generated Message-ID: random, so unique without the
 * queue id (which onehop-queue assigns only at commit). */
static void make_unique(char *out, size_t size)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    snprintf(out, size, "%016llX%lu", (unsigned long long)r, (unsigned long)getpid() % 100000);
}

static int deliver(const struct conf *c, const struct options *o)
{
    char unique[48], id[QUEUE_ID_LEN + 1];
    make_unique(unique, sizeof(unique));
    const char *full_name = o->full_name ? o->full_name : getenv("NAME");
    struct msgprep_config cfg = {c->myhostname, c->myorigin, c->message_size_limit};
    struct msgprep_request req = {
        o->flags, o->sender ? o->sender : login_name(), full_name, o->rcpt, o->nrcpt, time(NULL),
        unique};
    struct prepared_message m = {0};
    struct buf text = BUF_INIT, err = BUF_INIT;
    int rc = msgprep_begin(&cfg, &req, &m, &err);
    if (rc == EX_OK)
        rc = msgprep_read_fd(STDIN_FILENO, o->flags, cfg.size_limit, &text, &err);
    if (rc == EX_OK)
        rc = msgprep_finish(&cfg, &req, buf_cstr(&text), text.len, &m, &err);
    buf_free(&text);
    if (rc != EX_OK)
        fprintf(stderr, "%s: %s\n", program, buf_cstr(&err));
    if (rc == EX_OK)
        rc = sendmail_inject(c, &m, o->notify.len ? o->notify.s : "", o->verbose ? id : NULL);
    if (rc == EX_OK && o->verbose)
        fprintf(stderr, "%s: queued as %s\n", program, id);
    buf_free(&err);
    prepared_message_free(&m);
    return rc;
}

/* -bs: DAEMON_DIR/onehop-smtpd --bs speaks SMTP on standard input and
 * output with the server's own protocol code (daemons/smtpd/bs.h); returns
 * only when it cannot be run. */
static int smtp_session(const struct conf *c)
{
    struct buf path = BUF_INIT;
    path_join(&path, c->daemon_dir, "onehop-smtpd");
    const char *argv[] = {"onehop-smtpd", "--bs", "-C", c->config_dir, NULL};
    execv(buf_cstr(&path), (char *const *)argv);
    fprintf(stderr, "%s: cannot run %s: %s\n", program, buf_cstr(&path), strerror(errno));
    buf_free(&path);
    return EX_UNAVAILABLE;
}

static int run_mode(const struct options *o)
{
    struct conf c;
    int rc = load_conf(&c, o->confdir);
    if (rc != EX_OK)
        return rc;
    switch (o->mode) {
    case MODE_SMTP:
        rc = smtp_session(&c);
        break;
    case MODE_LIST:
        rc = list_queue(&c);
        break;
    case MODE_FLUSH:
        rc = flush_queue(&c, o);
        break;
    case MODE_NEWALIASES:
        rc = sendmail_newaliases(&c, o->confdir);
        break;
    default:
        rc = deliver(&c, o);
        break;
    }
    conf_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    struct options o;
    memset(&o, 0, sizeof(o));
    if (strcmp(base, "mailq") == 0 || strcmp(base, "newaliases") == 0)
        program = base;
    o.mode = strcmp(base, "mailq") == 0        ? MODE_LIST
             : strcmp(base, "newaliases") == 0 ? MODE_NEWALIASES
                                               : MODE_DELIVER;
    log_open(program, "stderr");
    int rc = parse_options(&o, argc, argv);
    if (rc == EX_OK) {
        o.confdir = conf_dir(o.confdir);
        rc = run_mode(&o);
    }
    free(o.rcpt);
    buf_free(&o.flush_arg);
    buf_free(&o.notify);
    return rc;
}
