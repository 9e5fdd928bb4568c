/*
 * queue_read — reading committed queue files (queue.h "reading", "file
 * format"): a file's header, envelope and (formats 1 and 2) state log
 * parsed and checked against its name and length; one message's content
 * verified against its own checksum before it is handed out
 * (queue_msg_open, queue_content_read); the files of a place listed; a
 * format 1 or 2 message's state from its log (listings of old files).
 *
 * A file found corrupt is reported (logged) and left where it is, for
 * recovery or the router's cleaner to quarantine: readers only read. The
 * caller goes on with the next one. Calls queue_fs.c and queue_format.c.
 * Must never: return a message of a file it could not fully validate, hand
 * out content that fails its checksum, change anything, or stop a listing
 * because one file is bad.
 */
#include "queue_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

/* ------------------------------------------------------------- reading ---- */
static int pread_exact(int fd, struct buf *out, size_t n, uint64_t off)
{
    buf_clear(out);
    buf_reserve(out, n + 1);
    while (out->len < n) {
        ssize_t r = pread(fd, out->s + out->len, n - out->len, (off_t)(off + out->len));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EBADMSG;
            return -1;
        }
        out->len += (size_t)r;
    }
    out->s[out->len] = '\0';
    return 0;
}

/* What the header says against what is there: the name (format 3 carries
 * its file id), and the length (format 3 has no state log, so the file
 * ends where the commit did; older files may be longer by their log). */
static int check_layout(const struct qf_header *h, const char *fid, uint64_t size, const char **why)
{
    if (qf_header_names(h, fid, why) != 0)
        return -1;
    if (h->committed_len > size)
        return *why = "file shorter than its committed length", -1;
    if (h->version == 3 && h->committed_len != size)
        return *why = "bytes after the committed length (format 3 has no state log)", -1;
    if (size - h->committed_len > QF_ENVELOPE_MAX)
        return *why = "state log too large", -1;
    return 0;
}

static int parse_parts(const unsigned char *env, size_t env_len, const unsigned char *log,
                       size_t log_len, struct queue_file *f, const struct qf_header *h,
                       const char **why)
{
    if (!qf_crc_ok(h->env_crc, crc32c(0, env, env_len)))
        return *why = "envelope checksum mismatch", -1;
    if (qf_envelope_parse(env, env_len, h, f, why) != 0)
        return -1;
    f->committed_len = h->committed_len;
    f->version = h->version;
    return qf_log_replay(log, log_len, f, why);
}

static void file_reset(struct queue_file *f, const char *fid, enum queue_place place)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->fid, sizeof(f->fid), "%s", fid);
    f->place = place;
}

int queue_parse(const void *data, size_t len, const char *fid, struct queue_file *out,
                const char **why)
{
    const unsigned char *p = data;
    struct qf_header h;
    file_reset(out, fid, QUEUE_ACTIVE);
    if (qf_header_decode(p, len, &h, why) != 0 || check_layout(&h, fid, len, why) != 0)
        return -1;
    /* Format 2 only: a format 3 file's body CRC stops holding once finished
     * messages' ranges are punched out; its readers check each message's
     * own CRC when they hand the content out (queue_msg_open). */
    if (h.version == 2 &&
        !qf_crc_ok(h.body_crc, crc32c(0, p + QF_HEADER_SIZE, h.committed_len - QF_HEADER_SIZE)))
        return *why = "body checksum mismatch", -1;
    const unsigned char *log = p + h.committed_len;
    if (parse_parts(p + h.env_off, h.env_len, log, len - h.committed_len, out, &h, why) != 0) {
        queue_file_free(out);
        return -1;
    }
    return 0;
}

int queue_read_meta(int fd, const char *fid, enum queue_place place, struct queue_file *f,
                    const char **why)
{
    struct buf hdr = BUF_INIT, env = BUF_INIT, log = BUF_INIT;
    struct qf_header h;
    struct stat st;
    int rc = -1;
    file_reset(f, fid, place);
    *why = NULL;
    if (fstat(fd, &st) != 0 || pread_exact(fd, &hdr, QF_HEADER_SIZE, 0) != 0)
        goto out;
    if (qf_header_decode((unsigned char *)hdr.s, hdr.len, &h, why) != 0 ||
        check_layout(&h, fid, (uint64_t)st.st_size, why) != 0)
        goto out;
    if (pread_exact(fd, &env, h.env_len, h.env_off) != 0 ||
        pread_exact(fd, &log, (size_t)((uint64_t)st.st_size - h.committed_len), h.committed_len) !=
            0)
        goto out;
    rc = parse_parts((unsigned char *)env.s, env.len, (unsigned char *)log.s, log.len, f, &h, why);
out:
    if (rc != 0) {
        if (*why)
            errno = EBADMSG;
        else if (errno == EBADMSG)
            *why = "file ends early";
        int e = errno;
        queue_file_free(f);
        file_reset(f, fid, place);
        errno = e;
    }
    buf_free(&hdr);
    buf_free(&env);
    buf_free(&log);
    return rc;
}

/* CRC-32C of fd's bytes [off, off + len), read 1 MiB at a time. */
static int crc_range(int fd, uint64_t off, uint64_t len, uint32_t *crc)
{
    struct buf chunk = BUF_INIT;
    int rc = 0;
    for (uint64_t end = off + len; off < end && rc == 0;) {
        uint64_t n = end - off > 1024 * 1024 ? 1024 * 1024 : end - off;
        rc = pread_exact(fd, &chunk, (size_t)n, off);
        if (rc == 0)
            *crc = crc32c(*crc, chunk.s, chunk.len);
        off += n;
    }
    buf_free(&chunk);
    return rc;
}

/* errno EBADMSG, and *why "file ends early" when a short read said so
 * without a reason (an I/O errno is kept). */
static void corrupt_errno(const char **why)
{
    if (*why || errno == EBADMSG) {
        if (!*why)
            *why = "file ends early";
        errno = EBADMSG;
    }
}

int queue_check_body(int fd, int require_crc, struct qf_header *h, const char **why)
{
    struct buf hdr = BUF_INIT;
    struct stat st;
    uint32_t crc = 0;
    int rc = -1;
    *why = NULL;
    if (fstat(fd, &st) != 0 || pread_exact(fd, &hdr, QF_HEADER_SIZE, 0) != 0)
        goto out;
    if (qf_header_decode((unsigned char *)hdr.s, hdr.len, h, why) != 0)
        goto out;
    if (h->version == 1 && require_crc) {
        *why = "a version 1 queue file (no body checksum)";
    } else if (h->committed_len > (uint64_t)st.st_size) {
        *why = "file shorter than its committed length";
    } else if (h->version >= 2 &&
               crc_range(fd, QF_HEADER_SIZE, h->committed_len - QF_HEADER_SIZE, &crc) != 0) {
        /* errno set by the read */
    } else if (h->version >= 2 && !qf_crc_ok(h->body_crc, crc)) {
        *why = "body checksum mismatch";
    } else {
        rc = 0;
    }
out:
    if (rc != 0)
        corrupt_errno(why);
    buf_free(&hdr);
    return rc;
}

/* Message index of f, read from fd, against its checksum: format 3, the CRC
 * of its own 'M' record (given the content when the caller read it, else
 * read here); format 2, the body CRC of the whole file; format 1 has none. */
static int verify_content(int fd, const struct queue_file *f, size_t index,
                          const struct buf *content, const char **why)
{
    const struct queue_msg *m = &f->msg[index];
    struct qf_header h;
    uint32_t crc = 0;
    *why = NULL;
    if (f->version == 2)
        return queue_check_body(fd, 0, &h, why);
    if (f->version != 3)
        return 0;
    if (content)
        crc = crc32c(0, content->s, content->len);
    else if (crc_range(fd, m->content_offset, m->size, &crc) != 0)
        return corrupt_errno(why), -1;
    if (!qf_crc_ok(m->content_crc, crc)) {
        *why = "message content checksum mismatch";
        return errno = EBADMSG, -1;
    }
    return 0;
}

/* A reader met a corrupt file: it says so and leaves it where it is (the
 * listings only read); recovery, or the router through the cleaner, moves
 * it to corrupt/. */
static void report_corrupt(const char *fid, const char *why)
{
    log_warn("%s: queue file is corrupt (%s): left for recovery", fid,
             why ? why : "not a regular file");
}

int queue_load(struct queue *q, const char *fid, struct queue_file *out)
{
    enum queue_place place;
    const char *why = NULL;
    if (!queue_file_id_valid(fid)) {
        errno = EINVAL;
        return -1;
    }
    int fd = queue_locate_locked(q, fid, LOCK_SH, O_RDONLY, &place);
    if (fd < 0) {
        if (errno == EBADMSG)
            report_corrupt(fid, NULL);
        return -1;
    }
    int rc = queue_read_meta(fd, fid, place, out, &why);
    int e = errno;
    if (rc != 0 && e == EBADMSG)
        report_corrupt(fid, why);
    close(fd);
    errno = e;
    return rc;
}

/* The message of f named id, unfinished (formats 1 and 2 carry their state
 * log): its index, or -1 with errno ENOENT. */
static int find_msg(const struct queue_file *f, const char *id, size_t *index)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        if (strcmp(f->msg[i].id, id) == 0 && !qf_msg_finished(&f->msg[i])) {
            *index = i;
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

int queue_find(struct queue *q, const char *id, struct queue_file *out, size_t *index)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    if (queue_load(q, fid, out) != 0)
        return -1;
    if (find_msg(out, id, index) == 0)
        return 0;
    queue_file_free(out);
    errno = ENOENT;
    return -1;
}

const char *queue_attr_value(const struct queue_attr *attr, size_t nattr, const char *name)
{
    for (size_t k = 0; k < nattr; k++)
        if (strcmp(attr[k].name, name) == 0)
            return attr[k].value;
    return NULL;
}

void queue_file_free(struct queue_file *f)
{
    for (size_t i = 0; i < f->nmsg; i++) {
        struct queue_msg *m = &f->msg[i];
        for (size_t r = 0; r < m->nrcpt; r++) {
            free(m->rcpt[r].addr);
            free(m->rcpt[r].orcpt);
            free(m->rcpt[r].notify);
            free(m->rcpt[r].last_reason);
        }
        for (size_t a = 0; a < m->nattr; a++) {
            free(m->attr[a].name);
            free(m->attr[a].value);
        }
        free(m->rcpt);
        free(m->attr);
        free(m->sender);
    }
    free(f->msg);
    f->msg = NULL;
    f->nmsg = 0;
}

int queue_content_open(struct queue *q, const struct queue_file *f)
{
    enum queue_place place;
    int fd = queue_locate_locked(q, f->fid, LOCK_SH, O_RDONLY, &place);
    if (fd >= 0)
        flock(fd, LOCK_UN); /* content never changes: no lock needed to read it */
    return fd;
}

int queue_content_read(struct queue *q, const struct queue_file *f, size_t index, struct buf *out)
{
    const char *why;
    if (index >= f->nmsg) {
        errno = EINVAL;
        return -1;
    }
    const struct queue_msg *m = &f->msg[index];
    int fd = queue_content_open(q, f);
    if (fd < 0)
        return -1;
    struct buf tmp = BUF_INIT;
    int rc = pread_exact(fd, &tmp, (size_t)m->size, m->content_offset);
    why = NULL;
    if (rc != 0)
        corrupt_errno(&why);
    else
        rc = verify_content(fd, f, index, &tmp, &why);
    int e = errno;
    close(fd);
    if (rc == 0)
        buf_add(out, tmp.s, tmp.len);
    else if (e == EBADMSG)
        log_warn("%s: %s: not handed out", m->id, why);
    buf_free(&tmp);
    errno = e;
    return rc;
}

/* queue_msg_open once its file is open (fd) in place. */
static int msg_open_fd(int fd, const char *fid, enum queue_place place, const char *id,
                       struct queue_msg_fd *out, const char **why)
{
    if (queue_read_meta(fd, fid, place, &out->file, why) != 0)
        return -1;
    flock(fd, LOCK_UN); /* the content never changes: read it unlocked */
    if (find_msg(&out->file, id, &out->index) != 0 ||
        verify_content(fd, &out->file, out->index, NULL, why) != 0) {
        int e = errno;
        queue_file_free(&out->file);
        return errno = e, -1;
    }
    out->fd = fd;
    out->offset = out->file.msg[out->index].content_offset;
    out->length = out->file.msg[out->index].size;
    out->place = place;
    return 0;
}

int queue_msg_open(struct queue *q, const char *id, struct queue_msg_fd *out, const char **why)
{
    char fid[QUEUE_FILE_ID_LEN + 1];
    enum queue_place place;
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    *why = NULL;
    if (!queue_id_valid(id))
        return *why = "not a message id", errno = EINVAL, -1;
    memcpy(fid, id, QUEUE_FILE_ID_LEN);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    int fd = queue_locate_locked(q, fid, LOCK_SH, O_RDONLY, &place);
    if (fd < 0) {
        if (errno == EBADMSG)
            *why = "not a regular file";
        return -1;
    }
    if (msg_open_fd(fd, fid, place, id, out, why) != 0) {
        int e = errno;
        if (e == EBADMSG)
            log_warn("%s: %s: not handed out", id, *why);
        close(fd);
        return errno = e, -1;
    }
    return 0;
}

int queue_msg_select(struct queue_msg_fd *m, const char *id, const char **why)
{
    size_t index;
    *why = NULL;
    if (!queue_id_valid(id) || memcmp(id, m->file.fid, QUEUE_FILE_ID_LEN) != 0 ||
        find_msg(&m->file, id, &index) != 0)
        return errno = ENOENT, -1;
    if (verify_content(m->fd, &m->file, index, NULL, why) != 0) {
        if (errno == EBADMSG)
            log_warn("%s: %s: not handed out", id, *why);
        return -1;
    }
    m->index = index;
    m->offset = m->file.msg[index].content_offset;
    m->length = m->file.msg[index].size;
    return 0;
}

void queue_msg_fd_close(struct queue_msg_fd *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    queue_file_free(&m->file);
}

/* ------------------------------------------------------------- listing ---- */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list_files(struct queue *q, enum queue_place place, char ***fids, size_t *n)
{
    struct queue_names l = {NULL, 0, 0};
    int rc = 0;
    if (place == QUEUE_CORRUPT) {
        rc = queue_names_read(q->dir_fd[place], NULL, 0, &l);
    } else {
        for (unsigned i = 0; i < QUEUE_BUCKETS && rc == 0; i++) {
            char name[3];
            snprintf(name, sizeof(name), "%02x", i);
            rc = queue_names_read(q->dir_fd[place], name, 1, &l);
            if (rc != 0 && errno == ENOENT)
                rc = 0; /* a missing bucket holds nothing (recovery makes it again) */
        }
    }
    if (rc != 0) {
        int e = errno;
        queue_names_free(&l);
        errno = e;
        return -1;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    *fids = l.v;
    *n = l.n;
    return 0;
}

int queue_list_bucket(struct queue *q, enum queue_place place, unsigned bucket, char ***fids,
                      size_t *n)
{
    struct queue_names l = {NULL, 0, 0};
    char name[3];
    if (place == QUEUE_CORRUPT || bucket >= QUEUE_BUCKETS)
        return errno = EINVAL, -1;
    snprintf(name, sizeof(name), "%02x", bucket);
    if (queue_names_read(q->dir_fd[place], name, 1, &l) != 0 && errno != ENOENT) {
        int e = errno;
        queue_names_free(&l);
        errno = e;
        return -1;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    *fids = l.v;
    *n = l.n;
    return 0;
}

void queue_ids_free(char **fids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fids[i]);
    free(fids);
}

enum queue_state queue_msg_state(const struct queue_msg *m, enum queue_place place)
{
    if (place == QUEUE_CORRUPT)
        return QSTATE_CORRUPT;
    if (qf_msg_finished(m))
        return QSTATE_FINISHED;
    if (m->held)
        return QSTATE_HOLD;
    if (place == QUEUE_INCOMING)
        return QSTATE_INCOMING;
    for (size_t i = 0; i < m->nrcpt; i++)
        if (m->rcpt[i].state == QRCPT_PENDING && m->rcpt[i].attempts == 0)
            return QSTATE_ACTIVE;
    return QSTATE_DEFERRED;
}

const char *queue_state_name(enum queue_state s)
{
    static const char *const names[] = {"incoming", "active",  "deferred",
                                        "hold",     "corrupt", "finished"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

const char *queue_rcpt_state_name(enum queue_rcpt_state s)
{
    static const char *const names[] = {"pending", "delivered", "bounced"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}
