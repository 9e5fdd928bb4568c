/*
 * state_impl — what the state side's own files (state.c, state_open.c)
 * share and nobody else may use: the open state and its internal steps.
 * The contract is state.h.
 */
#ifndef ONEHOP_STATE_IMPL_H
#define ONEHOP_STATE_IMPL_H

#include "state.h"
#include "state_record.h"

/* A frozen file's counts (state_counts, in 32 bits: a file holds at most
 * QUEUE_FILE_MSGS_MAX messages). */
struct file_counts {
    uint32_t total, incoming, active, deferred, hold;
    uint64_t oldest_arrival_us;
};

/* Where a file's records lie in a checkpoint. */
struct cp_place {
    uint64_t off; /* 0: none */
    uint32_t len, nrec;
};

/* A state_file and what only the state side sees: one per file the state
 * knows, frozen or not, so it is kept small (about 120 bytes). */
struct file_slot {
    struct state_file f;
    unsigned heap_refs; /* due-index entries pointing at it or its messages */
    unsigned seen;      /* the last learning pass that listed it */
    unsigned gen;       /* freezes so far: tells stale due entries */
    unsigned creq_refs; /* cleaner requests pending for it or its messages */
    uint8_t forgotten;  /* no longer known; freed when heap_refs is 0 */
    /* The active window (state_cold.c): a frozen file has f.msg NULL; its
     * state is its records (T, then K) in the current checkpoint. */
    uint8_t cold;
    uint8_t lent;    /* thawed by a look-up (state_file_find): a reader's */
    uint8_t dirty;   /* changed since the checkpoint: its records there are old */
    uint32_t rcpts;  /* its recipients (frozen or not) */
    uint64_t cp_off; /* its records in the current checkpoint; 0: none */
    uint32_t cp_len, cp_nrec;
    int64_t cold_due;               /* frozen: its earliest due time, -1 none */
    struct file_counts cold_counts; /* frozen: its messages as counted */
};

struct due {
    int64_t when;
    struct file_slot *fs;
    struct state_msg *m; /* NULL: the whole (frozen) file */
    unsigned gen;        /* fs->gen when pushed: a freeze since makes it stale */
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
    uint64_t checkpoint_bytes;          /* size of the last checkpoint's records */
    unsigned long active_limit;         /* recipients kept in memory (the window) */
    const struct sj_report *replay_at;  /* during the replay: where its record is */
    int open_done;                      /* state_open returned (freeze pushes heap entries) */
    struct file_slot *last_cp_file;     /* during the replay: the file being read */
    int applying_checkpoint;            /* a file's own records: it stays clean */
    unsigned long hot_rcpts;            /* recipients of the files in memory */
    unsigned long hot_after_checkpoint; /* hot_rcpts after the last checkpoint's freeze */
};

/* Queue one record and apply it to memory (the replay's path): its
 * sequence number, or 0 with errno. */
uint64_t state_record_add(struct state *s, unsigned type, const struct buf *payload);
/* Record the need of a cleaner request unless one is already queued. */
void state_need_clean(struct state *s, int kind, const char *id, const char *why);
/* After a change to a file: ask for finished messages' space or its removal. */
void state_ensure_clean_needs(struct state *s, struct state_file *f);
struct state_file *state_file_find(const struct state *s, const char *fid);
/* Drop the due index's stale entries (after freezing). */
void state_heap_compact(struct state *s);
/* Push every message of every file into the due index (after the replay). */
void state_index_all(struct state *s);
/* The replay callback of sj_open. */
int state_replay_record(void *arg, enum sj_origin o, unsigned type, const unsigned char *p,
                        size_t len);
void state_free_all(struct state *s);

/* state.c's pieces the active window (state_cold.c) builds on. */
struct file_slot *state_slot_find(const struct state *s, const char *fid); /* never thaws */
int64_t state_msg_due(const struct state_msg *m); /* -1: not to be delivered */
void state_count_msgs(const struct state_file *f, struct state_counts *c);
void state_free_msgs(struct state_file *f);
void state_init_msgs(struct state_file *f, const struct srec *r); /* from a 'T' record */
void state_push_due(struct state *s, int64_t when, struct file_slot *fs, struct state_msg *m);
void state_index_file(struct state *s, struct state_file *f);
int state_apply_payload(struct state *s, unsigned type, const unsigned char *p, size_t len,
                        uint64_t seq);
/* state_cold.c: freeze a file to its checkpoint records, thaw it back. */
int state_can_freeze(const struct state *s, const struct file_slot *fs);
void state_freeze(struct state *s, struct file_slot *fs);
void state_thaw(struct state *s, struct file_slot *fs);
/* After a checkpoint: freeze what lies beyond the window. */
void state_freeze_beyond_window(struct state *s);
/* The files in memory have grown past the window: a checkpoint is due. */
int state_window_exceeded(const struct state *s);
/* The replay's bookkeeping of where each file's records are. */
void state_replay_note(struct state *s, enum sj_origin o, unsigned type, const char *id, size_t len,
                       int after);
void state_replay_end(struct state *s);

#endif
