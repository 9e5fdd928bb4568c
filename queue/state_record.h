/*
 * state_record — the payloads of the state side's journal and checkpoint
 * records (state_journal.h frames them; state.h gives them meaning).
 * Integers big-endian, str = u32 length + bytes (at most QUEUE_TEXT_MAX for
 * texts, QUEUE_ID_LEN for ids), as in queue files.
 *
 *   'T' file learned     str fid, u8 place (0 incoming, 1 active), u32 nmsg,
 *                        nmsg x (u32 nrcpt, u64 arrival us, u64 size)
 *   'K' message state    str msgid, u8 held, u8 deleted, u32 flags, u32 nrcpt,
 *                        nrcpt x (u8 state, u32 attempts, u64 last try,
 *                        u64 next try, u32 flags, str reason, str route)
 *                        (checkpoints; and the migration of a format 1/2
 *                        file's own state log, once, when the file is learned)
 *   'D' delivered, 'B' bounced   str msgid, u32 rcpt, u64 time, str text
 *   'F' deferred         str msgid, u32 rcpt, u64 time, u64 next try, str reason
 *   'S' suspended        as 'F', but no attempt was made (D8: its destination
 *                        is deferred as a whole; state_suspended)
 *   'W' retry now        str msgid, u32 rcpt, u64 time, str who (a deferred
 *                        recipient due at time: not an attempt; state_retry_now)
 *   'H' hold, 'R' release       str msgid, u64 time
 *   'X' deleted          str msgid, u64 time, str who
 *   'G' flags            str msgid, u32 rcpt (QUEUE_NO_RCPT: the message), u32 bits
 *   'P' route chosen     str msgid, u32 rcpt, str route
 *   'N' cleaner work needed  u8 kind (clean_proto.h type), str id, str why
 *   'Y' cleaner work done    u8 kind, str id, u32 errno (0: done)
 * Times are unix seconds. Decoding checks every length and the form of
 * every id; a record that does not decode is refused (the journal treats
 * a refused record as damage of the state, not of the framing).
 */
#ifndef ONEHOP_STATE_RECORD_H
#define ONEHOP_STATE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

enum state_rec_type {
    SREC_FILE = 'T',
    SREC_MESSAGE = 'K',
    SREC_DELIVERED = 'D',
    SREC_BOUNCED = 'B',
    SREC_DEFERRED = 'F',
    SREC_RETRY_NOW = 'W',
    SREC_SUSPENDED = 'S',
    SREC_HOLD = 'H',
    SREC_RELEASE = 'R',
    SREC_DELETE = 'X',
    SREC_FLAGS = 'G',
    SREC_ROUTE = 'P',
    SREC_CLEAN_NEED = 'N',
    SREC_CLEAN_DONE = 'Y'
};

#define SREC_MSGS_MAX QUEUE_FILE_MSGS_MAX
#define SREC_RCPTS_MAX QUEUE_RCPT_MAX

struct srec_msg_meta { /* 'T' */
    uint32_t nrcpt;
    uint64_t arrival_us, size;
};

struct srec_rcpt { /* 'K' */
    uint8_t state; /* enum state_rcpt_state (state.h) */
    uint32_t attempts, flags;
    int64_t last_try, next_try;
    const char *reason, *route; /* NULL: none; point into the record */
    size_t reason_len, route_len;
};

/* One decoded record. Strings point into the payload (not NUL-terminated:
 * use the _len); ids are copied, NUL-terminated. */
struct srec {
    enum state_rec_type type;
    char id[QUEUE_ID_LEN + 1]; /* msgid, or fid ('T'; 'N'/'Y' either) */
    uint32_t rcpt, bits, nmsg, nrcpt, err;
    uint8_t place, held, deleted, kind;
    int64_t time, next_try;
    const char *text; /* reason, relay reply, who, route, why */
    size_t text_len;
    struct srec_msg_meta *msgs; /* 'T': nmsg entries (allocated) */
    struct srec_rcpt *rcpts;    /* 'K': nrcpt entries (allocated) */
};

/* Decode payload p[0..len) of a record of the given type: 0, or -1 (bad). */
int srec_decode(unsigned type, const unsigned char *p, size_t len, struct srec *out);
void srec_free(struct srec *r);

/* Encoders: append the payload to out (the type is the caller's). */
void srec_put_str(struct buf *out, const char *s, size_t n);
void srec_put_outcome(struct buf *out, const char *msgid, uint32_t rcpt, int64_t time,
                      int64_t next_try, int deferred, const char *text);
void srec_put_msg_time(struct buf *out, const char *msgid, int64_t time, const char *who);
void srec_put_flags(struct buf *out, const char *msgid, uint32_t rcpt, uint32_t bits);
void srec_put_route(struct buf *out, const char *msgid, uint32_t rcpt, const char *route);
void srec_put_clean(struct buf *out, int kind, const char *id, const char *why, int done,
                    uint32_t err);

#endif
