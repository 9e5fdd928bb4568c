/*
 * account — daemon accounts and the directories owned by them. See
 * account.h.
 */
#include "master/account.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "queue.h"
#include "queue_modes.h"
#include "safeio.h"

#define RUN_DIR_MODE 01775
#define STATE_DIR_MODE 0700

static int own_account(struct account *a, struct buf *err)
{
    struct passwd *pw = getpwuid(getuid());
    a->uid = getuid();
    a->gid = getgid();
    a->is_self = 1;
    if (pw) {
        a->name = xstrdup(pw->pw_name);
    } else {
        struct buf b = BUF_INIT;
        buf_printf(&b, "%lu", (unsigned long)a->uid);
        a->name = buf_steal(&b);
    }
    return 0;
}

int account_resolve(struct account *a, const char *user, const char *suffix, struct buf *err)
{
    memset(a, 0, sizeof(*a));
    if (geteuid() != 0 || !suffix)
        return own_account(a, err);
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s-%s", user, suffix);
    errno = 0;
    struct passwd *pw = getpwnam(buf_cstr(&name));
    if (!pw) {
        buf_printf(err, "account %s does not exist; make install creates the accounts",
                   buf_cstr(&name));
        buf_free(&name);
        return -1;
    }
    a->uid = pw->pw_uid;
    a->gid = pw->pw_gid;
    a->ngroups = ACCOUNT_GROUPS_MAX;
    if (getgrouplist(pw->pw_name, pw->pw_gid, a->groups, &a->ngroups) < 0) {
        buf_printf(err, "account %s is in more than %d groups", buf_cstr(&name),
                   ACCOUNT_GROUPS_MAX);
        buf_free(&name);
        return -1;
    }
    if (a->uid == 0) {
        buf_printf(err, "account %s has uid 0: a daemon account must not be root", buf_cstr(&name));
        buf_free(&name);
        return -1;
    }
    a->name = buf_steal(&name);
    return 0;
}

void account_free(struct account *a)
{
    free(a->name);
    a->name = NULL;
}

int account_become(const struct account *a)
{
    if (a->is_self)
        return 0;
    if (setgroups((size_t)a->ngroups, a->groups) < 0 || setresgid(a->gid, a->gid, a->gid) < 0 ||
        setresuid(a->uid, a->uid, a->uid) < 0)
        return -1;
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0)
        return -1;
    if (r != a->uid || e != a->uid || s != a->uid || gr != a->gid || ge != a->gid || gs != a->gid ||
        setuid(0) == 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* mkdir -p path, then give it owner, group and mode (not following a
 * symbolic link). */
static int own_dir(const char *path, uid_t uid, gid_t gid, mode_t mode, struct buf *err)
{
    if (mkdir_p(path, mode & 0777) < 0) {
        buf_printf(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0) {
        buf_printf(err, "cannot set the owner and mode of %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* run_dir/queue.trigger (queue.h), the router's FIFO: run_dir is root's,
 * so the router account could not make it itself. Owned by the router,
 * 0622: anyone may pull it (a wake-up, as qmail's trigger). */
static int own_trigger(const char *run_dir, uid_t uid, gid_t gid, struct buf *err)
{
    struct buf path = BUF_INIT;
    struct stat st;
    path_join(&path, run_dir, QUEUE_TRIGGER_NAME);
    int fd = -1, rc = -1;
    if (mkfifo(buf_cstr(&path), 0600) == 0 || errno == EEXIST)
        fd = open(buf_cstr(&path), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISFIFO(st.st_mode))
        errno = EEXIST; /* something else holds the name */
    else if (fd >= 0 && fchown(fd, uid, gid) == 0 && fchmod(fd, 0622) == 0)
        rc = 0;
    if (rc != 0)
        buf_printf(err, "cannot prepare the FIFO %s: %s", buf_cstr(&path), strerror(errno));
    if (fd >= 0)
        close(fd);
    buf_free(&path);
    return rc;
}

int account_prepare_dirs(const char *queue_dir, const char *run_dir, const char *user,
                         struct buf *err)
{
    if (geteuid() != 0) {
        if (mkdir_p(run_dir, 0750) < 0 || mkdir_p(queue_dir, 0750) < 0) {
            buf_printf(err, "cannot create %s or %s: %s", run_dir, queue_dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    struct account queue, router, dns;
    struct buf state = BUF_INIT;
    int rc = -1;
    memset(&queue, 0, sizeof(queue));
    memset(&router, 0, sizeof(router));
    memset(&dns, 0, sizeof(dns));
    if (account_resolve(&queue, user, "queue", err) == 0 &&
        account_resolve(&router, user, "router", err) == 0 &&
        account_resolve(&dns, user, "dns", err) == 0 &&
        own_dir(queue_dir, queue.uid, router.gid, QUEUE_ROOT_MODE, err) == 0) {
        path_join(&state, queue_dir, "state");
        if (own_dir(buf_cstr(&state), router.uid, router.gid, STATE_DIR_MODE, err) == 0 &&
            own_dir(run_dir, 0, dns.gid, RUN_DIR_MODE, err) == 0 &&
            own_trigger(run_dir, router.uid, router.gid, err) == 0)
            rc = 0;
    }
    account_free(&queue);
    account_free(&router);
    account_free(&dns);
    buf_free(&state);
    return rc;
}
