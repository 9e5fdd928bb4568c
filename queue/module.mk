# queue/: the queue library, onehop-queue, the sendmail front end and the
# queue inspection code (see ../Makefile). Library files only once they
# compile cleanly.
# a one-shot onehop-queue as a client (inject_client.h: bounces, ~/.forward)
LIB_SRCS += queue/inject_client.c
LIB_SRCS += \
	queue/addrlist.c \
	queue/header.c \
	queue/msgprep.c \
	queue/qlist.c

# the sendmail front end; mailq and newaliases are the same binary
PROGRAMS += sendmail
sendmail_SRCS = \
	queue/sendmail.c \
	queue/sendmail_inject.c \
	queue/newaliases.c
LINKS += mailq=sendmail newaliases=sendmail

# the queue library (queue.h): ids, file format, store, writer, updates,
# recovery, the router trigger, and onehop-queue's content checks
LIB_SRCS += \
	queue/queue_id.c \
	queue/queue_format.c \
	queue/queue_fs.c \
	queue/queue_read.c \
	queue/queue_place.c \
	queue/queue_commit.c \
	queue/queue_slots.c \
	queue/queue_take.c \
	queue/queue_recover.c \
	queue/trigger.c \
	queue/msgcheck.c
LIB_SRCS += queue/inject_txn.c

# the router's state side (state.h): journal, checkpoints, replay
LIB_SRCS += queue/state_journal.c queue/state_record.c queue/state.c queue/state_open.c queue/state_cold.c queue/state_index.c
# the cleaner's channel (clean_proto.h) and onehop-queue --clean (cleaner.h)
LIB_SRCS += queue/clean_proto.c queue/cleaner.c

# onehop-queue: the only writer of new messages (inject_proto.h)
PROGRAMS += onehop-queue
onehop-queue_SRCS = \
	queue/onehop-queue.c \
	queue/inject_oneshot.c \
	queue/inject_server.c
