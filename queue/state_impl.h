/*
 * state_impl — what the state side's own files (state.c, state_open.c)
 * share and nobody else may use: the open state and its internal steps.
 * The contract is state.h.
 */
#ifndef ONEHOP_STATE_IMPL_H
#define ONEHOP_STATE_IMPL_H

#include "state.h"

struct file_slot { /* a state_file and what only the state side sees */
    struct state_file f;
    unsigned heap_refs; /* due-index entries pointing at its messages */
    unsigned seen;      /* the last learning pass that listed it */
    int forgotten;      /* no longer known; freed when heap_refs is 0 */
};

struct due {
    int64_t when;
    struct state_msg *m;
};

struct creq {
    struct state_clean_req r;
    uint64_t seq; /* journal sequence of its 'N' record (0: replayed, durable) */
    int handed;   /* handed out, answer awaited */
    int failed;   /* answered with an error: waits for state_clean_retry */
    int done;     /* answered: dropped at the next squeeze */
};

struct state {
    struct queue *q;
    struct sj *j; /* NULL: no state/ yet (read-only), or detached */
    int readonly, replaying;
    struct file_slot **files; /* sorted by file id */
    size_t nfiles, filecap;
    struct due *heap;
    size_t nheap, heapcap;
    struct creq *creq;
    size_t ncreq, creqcap, ncreq_done;
    unsigned pass;
    uint64_t checkpoint_bytes; /* size of the last checkpoint's records */
};

/* Queue one record and apply it to memory (the replay's path): its
 * sequence number, or 0 with errno. */
uint64_t state_record_add(struct state *s, unsigned type, const struct buf *payload);
/* Record the need of a cleaner request unless one is already queued. */
void state_need_clean(struct state *s, int kind, const char *id, const char *why);
/* After a change to a file: ask for finished messages' space or its removal. */
void state_ensure_clean_needs(struct state *s, struct state_file *f);
struct state_file *state_file_find(const struct state *s, const char *fid);
/* Push every message of every file into the due index (after the replay). */
void state_index_all(struct state *s);
/* The replay callback of sj_open. */
int state_replay_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                        size_t len);
void state_free_all(struct state *s);

#endif
