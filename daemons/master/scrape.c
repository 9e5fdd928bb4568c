/*
 * scrape — collect every daemon's metrics for `onehop metrics` and
 * metrics_file. See scrape.h.
 */
#include "master/scrape.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon_link.h"
#include "log.h"
#include "master_proto.h"
#include "metrics.h"
#include "safeio.h"

#define CLIENTS_MAX 16

static struct {
    struct master *m;
    int running;
    int asked[MASTER_ROWS_MAX];       /* DLINK_METRICS sent, no answer yet */
    struct buf text[MASTER_ROWS_MAX]; /* each daemon's answer */
    struct channel *clients[CLIENTS_MAX];
    size_t nclients;
    int for_file;
    uv_timer_t timeout, file_timer;
    uint64_t file_written_ms; /* 0: never */
    int file_failing;         /* the last write failed (logged once) */
} sc;

static struct metric *up, *restarts, *started, *errors;

/* ------------------------------------------------------------ the text ---- */

/* The master's own families, from the procs' state. */
static void collect_master(void *arg)
{
    struct master *m = arg;
    metric_set(up, "master", 1);
    metric_set(started, "master", (double)m->started_wall);
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct proc *p = &m->procs[i];
        if (!p->enabled)
            continue;
        metric_set(up, p->row->name, p->pid && p->state == P_READY);
        metric_set(restarts, p->row->name, p->restarts);
        metric_set(started, p->row->name, p->pid ? (double)p->started_wall : 0);
        metric_add(errors, p->row->name, 0); /* named from the first scrape on */
    }
}

static void render_all(struct master *m, struct buf *out)
{
    metrics_render(out);
    for (size_t i = 0; i < m->nprocs; i++)
        buf_add(out, sc.text[i].s, sc.text[i].len);
}

/* --------------------------------------------------- the control clients ---- */

/* MCTL_CHUNK records of whole lines, each at most MCTL_TEXT_MAX bytes. */
static void send_chunks(struct channel *ch, const struct buf *text)
{
    struct buf rec = BUF_INIT, piece = BUF_INIT;
    size_t pos = 0;
    while (pos < text->len) {
        size_t n = text->len - pos;
        if (n > MCTL_TEXT_MAX) {
            n = MCTL_TEXT_MAX;
            while (n > 1 && text->s[pos + n - 1] != '\n')
                n--;
        }
        buf_set(&piece, text->s + pos, n);
        mctl_encode_text(&rec, MCTL_CHUNK, buf_cstr(&piece));
        pos += n;
    }
    mctl_encode_text(&rec, MCTL_OK, "");
    channel_send_buf(ch, &rec);
    buf_free(&rec);
    buf_free(&piece);
}

void scrape_forget(struct channel *client)
{
    for (size_t i = 0; i < sc.nclients; i++)
        if (sc.clients[i] == client) {
            sc.clients[i] = sc.clients[--sc.nclients];
            return;
        }
}

/* ------------------------------------------------------------ the file ---- */

/* Write text to path atomically: path.tmp, fsync, rename, fsync the
 * directory. 0, or -1 with errno. */
static int write_atomically(const char *path, const struct buf *text)
{
    struct buf tmp = BUF_INIT;
    buf_printf(&tmp, "%s.tmp", path);
    int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    int rc = fd < 0 || write_all(fd, text->s, text->len) < 0 || fsync(fd) < 0 ? -1 : 0;
    int e = errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -1, e = errno;
    if (rc == 0 && rename(buf_cstr(&tmp), path) < 0)
        rc = -1, e = errno;
    if (rc == 0 && fsync_dir(path) < 0)
        rc = -1, e = errno;
    if (rc < 0 && fd >= 0)
        unlink(buf_cstr(&tmp));
    buf_free(&tmp);
    errno = e;
    return rc;
}

static void write_file(struct master *m, const struct buf *text)
{
    const char *path = m->conf.metrics_file;
    sc.file_written_ms = uv_now(m->loop);
    if (!path[0])
        return;
    if (write_atomically(path, text) < 0) {
        if (!sc.file_failing)
            log_warn("metrics_file %s: cannot write it: %s", path, strerror(errno));
        sc.file_failing = 1;
    } else if (sc.file_failing) {
        log_info("metrics_file %s: written again", path);
        sc.file_failing = 0;
    }
}

/* ------------------------------------------------------------ a scrape ---- */

static void scrape_end(struct master *m)
{
    uv_timer_stop(&sc.timeout);
    for (size_t i = 0; i < m->nprocs; i++)
        if (sc.asked[i]) { /* no answer within the bound */
            metric_inc(errors, m->procs[i].row->name);
            log_warn("metrics: %s (pid %ld) did not answer within %d ms", m->procs[i].row->name,
                     (long)m->procs[i].pid, SCRAPE_TIMEOUT_MS);
            sc.asked[i] = 0;
        }
    struct buf out = BUF_INIT;
    render_all(m, &out);
    for (size_t i = 0; i < sc.nclients; i++)
        send_chunks(sc.clients[i], &out);
    sc.nclients = 0;
    if (sc.for_file)
        write_file(m, &out);
    sc.for_file = 0;
    sc.running = 0;
    buf_free(&out);
}

static void on_timeout(uv_timer_t *t)
{
    scrape_end(sc.m);
}

static int still_waiting(const struct master *m)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (sc.asked[i])
            return 1;
    return 0;
}

static void scrape_begin(struct master *m)
{
    struct buf rec = BUF_INIT;
    daemon_link_encode(&rec, DLINK_METRICS, NULL);
    sc.running = 1;
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];
        buf_clear(&sc.text[i]);
        sc.asked[i] = p->enabled && p->pid && p->state == P_READY && p->link &&
                      channel_send(p->link, rec.s, rec.len, NULL, 0) >= 0;
    }
    buf_free(&rec);
    if (still_waiting(m))
        uv_timer_start(&sc.timeout, on_timeout, SCRAPE_TIMEOUT_MS, 0);
    else
        scrape_end(m);
}

void scrape_request(struct master *m, struct channel *client)
{
    if (client && sc.nclients == CLIENTS_MAX) {
        struct buf rec = BUF_INIT;
        mctl_encode_text(&rec, MCTL_ERR, "too many clients wait for the metrics");
        channel_send_buf(client, &rec);
        buf_free(&rec);
        return;
    }
    if (client)
        sc.clients[sc.nclients++] = client;
    else
        sc.for_file = 1;
    if (!sc.running)
        scrape_begin(m);
}

void scrape_answer(struct proc *p, const struct buf *text)
{
    struct master *m = p->m;
    size_t i = (size_t)(p - m->procs);
    if (!sc.running || !sc.asked[i])
        return; /* late: that scrape is over */
    buf_set(&sc.text[i], text->s, text->len);
    if (sc.text[i].len && sc.text[i].s[sc.text[i].len - 1] != '\n')
        buf_addc(&sc.text[i], '\n');
    sc.asked[i] = 0;
    if (!still_waiting(m))
        scrape_end(m);
}

/* ------------------------------------------------------------ the timer ---- */

/* Every second: a file due (never written, or METRICS_FILE_PERIOD_S ago)
 * while the instance runs is scraped; the first write comes within a
 * second of the start. */
static void on_file_timer(uv_timer_t *t)
{
    struct master *m = t->data;
    uint64_t now = uv_now(m->loop);
    int due = !sc.file_written_ms || now - sc.file_written_ms >= METRICS_FILE_PERIOD_S * 1000;
    if (m->conf.metrics_file[0] && m->state == M_RUNNING && due)
        scrape_request(m, NULL);
}

void scrape_init(struct master *m)
{
    sc.m = m;
    up = metric_gauge("onehop_up", "1 if the process runs and accepts work, else 0.", "daemon");
    restarts = metric_counter("onehop_daemon_restarts_total",
                              "Restarts of the daemon by the master after it exited.", "daemon");
    started = metric_gauge("onehop_daemon_start_time_seconds",
                           "Unix time the running process started (0: not running).", "daemon");
    errors = metric_counter("onehop_metrics_scrape_errors_total",
                            "Scrapes the daemon did not answer within 1 s (left out).", "daemon");
    metrics_on_collect(collect_master, m);
    uv_timer_init(m->loop, &sc.timeout);
    uv_timer_init(m->loop, &sc.file_timer);
    sc.file_timer.data = m;
    uv_timer_start(&sc.file_timer, on_file_timer, 1000, 1000);
}

void scrape_close(struct master *m)
{
    for (size_t i = 0; i < MASTER_ROWS_MAX; i++)
        buf_free(&sc.text[i]);
    metrics_reset();
}
