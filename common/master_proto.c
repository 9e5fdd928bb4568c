/*
 * master_proto — the control socket's records. See master_proto.h.
 */
#include "master_proto.h"

#include <string.h>

#include "ipc.h"
#include "mem.h"

#define NAME_MAX_LEN 256

void mctl_encode_request(struct buf *out, enum mctl_type type)
{
    struct ipc_writer w;
    ipc_begin(&w, out, (uint16_t)type);
    ipc_finish(&w);
}

void mctl_encode_proc(struct buf *out, const struct mctl_proc *p)
{
    struct ipc_writer w;
    ipc_begin(&w, out, MCTL_PROC);
    ipc_add_str(&w, p->name);
    ipc_add_u32(&w, p->pid);
    ipc_add_str(&w, p->user);
    ipc_add_u32(&w, p->uid);
    ipc_add_u64(&w, p->started);
    ipc_add_u32(&w, p->restarts);
    ipc_add_str(&w, p->state);
    ipc_finish(&w);
}

void mctl_encode_text(struct buf *out, enum mctl_type type, const char *text)
{
    struct ipc_writer w;
    size_t n = strlen(text);
    char *cut = xstrndup(text, n > MCTL_TEXT_MAX ? MCTL_TEXT_MAX : n);
    ipc_begin(&w, out, (uint16_t)type);
    ipc_add_str(&w, cut);
    ipc_finish(&w);
    free(cut);
}

static void decode_proc(struct ipc_reader *r, struct mctl_proc *p)
{
    ipc_get_str(r, NAME_MAX_LEN, &p->name);
    ipc_get_u32(r, &p->pid);
    ipc_get_str(r, NAME_MAX_LEN, &p->user);
    ipc_get_u32(r, &p->uid);
    ipc_get_u64(r, &p->started);
    ipc_get_u32(r, &p->restarts);
    ipc_get_str(r, NAME_MAX_LEN, &p->state);
}

int mctl_decode(struct ipc_reader *r, const void *data, size_t len, struct mctl_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (ipc_open(r, data, len) < 0)
        return -1;
    m->type = r->type;
    if (m->type == MCTL_PROC) {
        decode_proc(r, &m->proc);
    } else if (m->type == MCTL_OK || m->type == MCTL_ERR || m->type == MCTL_CHUNK) {
        ipc_get_str(r, MCTL_TEXT_MAX, &m->text);
    } else if (m->type != MCTL_STATUS && m->type != MCTL_RELOAD && m->type != MCTL_STOP &&
               m->type != MCTL_METRICS) {
        return -1;
    }
    return ipc_end(r);
}
