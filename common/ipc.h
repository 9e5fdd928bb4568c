/*
 * ipc — the typed record codec every onehop process speaks on its pipes and
 * sockets (after OpenSMTPD's m_add_* / m_get_* / m_end).
 *
 * A record on the wire:
 *
 *     u32 length   total bytes of the record, this header included (big-endian)
 *     u16 type     what the record means (each channel defines its types)
 *     u16 nfields  how many fields follow
 *     field*       u8 tag, then the value:
 *                    IPC_U32  4 bytes        IPC_U64  8 bytes (big-endian)
 *                    IPC_STR  u32 n, n bytes (no NUL inside; decoded with a NUL added)
 *                    IPC_BYTES u32 n, n bytes (any bytes)
 *
 * The reader checks every length against what it holds and every tag against
 * what the caller asks for; the first mismatch sets an error that sticks, and
 * ipc_end() fails unless every field was read exactly. A record shorter than
 * its header, longer than the channel's limit (or IPC_RECORD_MAX), with an
 * unknown tag or trailing bytes is an error: the caller logs it and closes the
 * channel (ARCHITECTURE "Every process treats what arrives ... as untrusted").
 */
#ifndef ONEHOP_IPC_H
#define ONEHOP_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IPC_HEADER_SIZE 8
#define IPC_RECORD_MAX (16u * 1024 * 1024) /* hard ceiling for any channel */

enum ipc_tag { IPC_U32 = 1, IPC_U64 = 2, IPC_STR = 3, IPC_BYTES = 4 };

/* ---- writing ---- */
struct ipc_writer {
    struct buf *out; /* the record is appended here */
    size_t start;    /* offset of its header in out */
    uint16_t nfields;
};

void ipc_begin(struct ipc_writer *w, struct buf *out, uint16_t type);
void ipc_add_u32(struct ipc_writer *w, uint32_t v);
void ipc_add_u64(struct ipc_writer *w, uint64_t v);
void ipc_add_str(struct ipc_writer *w, const char *s); /* s must not be NULL */
void ipc_add_bytes(struct ipc_writer *w, const void *p, size_t n);
/* Patch the header; fatal if the record exceeds IPC_RECORD_MAX (a bug). */
void ipc_finish(struct ipc_writer *w);

/* ---- framing: find whole records in a byte stream ---- */
/* The primitive under channel_core.h's reader, which every program and tool
 * frames its input with (chan_in_*, chan_recv_record): nothing else calls
 * this but the codec's own tests and fuzz target. */
/* Looks at the start of data[0..avail). Returns 1 and sets *reclen when a whole
 * record is there, 0 when more bytes are needed, -1 (and *why) when the header
 * is invalid: length < IPC_HEADER_SIZE or > max (max 0 means IPC_RECORD_MAX). */
int ipc_frame(const void *data, size_t avail, size_t max, size_t *reclen, const char **why);

/* ---- reading one whole record ---- */
struct ipc_reader {
    const unsigned char *p;
    size_t len, pos;
    uint16_t type, nfields, fields_read;
    const char *error;  /* first error, sticky; NULL while all is well */
    struct buf scratch; /* holds NUL-terminated copies of strings */
};

/* Start reading the record data[0..len) (as delimited by ipc_frame). Returns
 * 0, or -1 with r->error set. */
int ipc_open(struct ipc_reader *r, const void *data, size_t len);
/* Each returns 0, or -1 (error set, *out untouched) on a wrong tag, a length
 * past the end, or a field beyond nfields. Strings are copied NUL-terminated
 * into memory owned by the reader, valid until ipc_close(); a string with a
 * NUL inside is an error. max bounds the accepted length. */
int ipc_get_u32(struct ipc_reader *r, uint32_t *out);
int ipc_get_u64(struct ipc_reader *r, uint64_t *out);
int ipc_get_str(struct ipc_reader *r, size_t max, const char **out);
int ipc_get_bytes(struct ipc_reader *r, size_t max, const void **out, size_t *n);
/* 0 if every field was read and no byte is left over, else -1 with error. */
int ipc_end(struct ipc_reader *r);
void ipc_close(struct ipc_reader *r);

#endif
