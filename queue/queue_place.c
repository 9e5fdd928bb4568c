/*
 * queue_place — the commit's rename (queue.h "writing", "commit slots";
 * docs/INTERNALS.md "Writing a new file", steps 4-5): a complete image,
 * already durable in tmp/ or in a commit slot, is logged and renamed into
 * incoming/HH/FILEID. The writer does it for what it has just written, slot
 * recovery for a dead writer's committed slot, both through this one step.
 *
 * The from= lines (SPEC 8), each after its origin line (smtpd's
 * "ID: client=" or pickup's "ID: uid= from=", queue_impl.h), go out right
 * before the rename, so no committed
 * message is ever left without one (a kill between the two logs a message
 * twice, or one that recovery then removes, never none). An id already
 * taken (only a clock stepped back can do that: ids carry the time and the
 * pid) gets a fresh one, and a format 3 header, which names its id, is
 * rewritten and fdatasynced before that name is used.
 * Calls queue_fs.c and queue_format.c only.
 * Must never: replace an existing file, or leave a format 3 file under a
 * name its header does not carry.
 */
#include "queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

int queue_write_header(int fd, struct qf_header *h, const char *fid)
{
    unsigned char raw[QF_HEADER_SIZE];
    memcpy(h->fid, fid, QUEUE_FILE_ID_LEN + 1);
    if (h->version == 3 && queue_id_time(fid, &h->created_us) != 0)
        return errno = EINVAL, -1;
    qf_header_encode(h, raw);
    ssize_t r;
    do
        r = pwrite(fd, raw, sizeof(raw), 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof(raw)) {
        if (r >= 0)
            errno = EIO;
        return -1;
    }
    do
        r = fdatasync(fd);
    while (r < 0 && errno == EINTR);
    return (int)r;
}

/* A local user's submission (the uid onehop-queue records itself, and a
 * protocol its front end names: "sendmail", or SMTP/ESMTP for sendmail
 * -bs) is pickup's, as Postfix's sendmail hands it to pickup; one with a
 * client is smtpd's. The router's DSNs and local's .forward copies name
 * neither, as Postfix's bounce and local hand theirs to cleanup: no line. */
void queue_log_msg_origin(struct queue_log_msg *m, const struct queue_attr *attr, size_t nattr)
{
    const char *uid = queue_attr_value(attr, nattr, "uid");
    const char *client = queue_attr_value(attr, nattr, "client");
    struct buf text = BUF_INIT;
    m->origin_service = NULL;
    m->origin = NULL;
    if (uid && queue_attr_value(attr, nattr, "protocol")) {
        m->origin_service = "pickup";
        buf_printf(&text, "uid=%s from=<%s>", uid, m->sender);
    } else if (client) {
        m->origin_service = "smtpd";
        buf_printf(&text, "client=%s", client);
    } else {
        return;
    }
    m->origin = buf_steal(&text);
}

void queue_log_msg_free_origin(struct queue_log_msg *m)
{
    free(m->origin);
    m->origin = NULL;
}

/* The origin and from= lines of each message, under the ids of file fid. */
static void log_from(const struct queue_log_msg *msgs, size_t n, const char *fid)
{
    for (size_t k = 0; k < n; k++) {
        char id[QUEUE_ID_LEN + 1];
        queue_msg_id(fid, (unsigned)k, id);
        if (msgs[k].origin)
            log_info_as(msgs[k].origin_service, "%s: %s", id, msgs[k].origin);
        log_info("%s: from=<%s>, size=%llu, nrcpt=%zu", id, msgs[k].sender,
                 (unsigned long long)msgs[k].size, msgs[k].nrcpt);
    }
}

void queue_log_not_queued(size_t n, const char *fid, int e)
{
    for (size_t k = 0; k < n; k++) {
        char id[QUEUE_ID_LEN + 1];
        queue_msg_id(fid, (unsigned)k, id);
        log_warn("%s: not queued after all: %s", id, strerror(e));
    }
}

/* 1 if incoming/ or active/ already holds rel. */
static int id_taken(struct queue *q, const char *rel)
{
    struct stat st;
    return fstatat(q->dir_fd[QDIR_ACTIVE], rel, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
           fstatat(q->dir_fd[QDIR_INCOMING], rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int queue_place_incoming(struct queue *q, int from_dir, const char *from, int fd,
                         struct qf_header *h, const struct queue_log_msg *msgs, size_t n, char *fid,
                         char *bucket)
{
    struct buf rel = BUF_INIT;
    char logged_as[QUEUE_FILE_ID_LEN + 1] = "";
    int rc = -1, made_bucket = 0;
    for (int tries = 0; tries < 100; tries++) {
        queue_bucket(fid, bucket);
        queue_rel_path(fid, &rel);
        if (id_taken(q, buf_cstr(&rel))) {
            errno = EEXIST;
        } else {
            if (strcmp(logged_as, fid) != 0) { /* once per id tried */
                log_from(msgs, n, fid);
                memcpy(logged_as, fid, sizeof(logged_as));
            }
            if (queue_rename_noreplace(from_dir, from, q->dir_fd[QDIR_INCOMING], buf_cstr(&rel)) ==
                0) {
                rc = 0;
                break;
            }
        }
        if (errno == ENOENT && !made_bucket) { /* a bucket removed by hand: made again */
            made_bucket = 1;
            if (queue_make_bucket(q, QDIR_INCOMING, bucket) != 0)
                break;
            continue;
        }
        if (errno != EEXIST)
            break;
        if (logged_as[0])
            queue_log_not_queued(n, logged_as, EEXIST);
        logged_as[0] = '\0';
        queue_file_id_new(fid, NULL);
        if (h->version == 3 && queue_write_header(fd, h, fid) != 0)
            break;
    }
    if (rc != 0 && logged_as[0]) {
        int e = errno;
        queue_log_not_queued(n, logged_as, e);
        errno = e;
    }
    buf_free(&rel);
    return rc;
}
