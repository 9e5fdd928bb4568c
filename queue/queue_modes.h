/*
 * queue_modes — who may touch what in the message tree (qmail's split;
 * docs/INTERNALS.md "Ownership and the cleaner", queue.h "layout").
 *
 * Everything below queue_dir belongs to the queue account (onehop-queue, as
 * writer and as cleaner). queue_dir is set-gid with the router account's
 * group, so every directory and file made below it carries that group: the
 * router lists the places and reads the message files through the group
 * bits, and can change none of them. tmp/, slots/ and lock/ are the writer's
 * alone. state/ is the router's own tree (made by the state side, never by
 * the queue library). Delivery daemons (remote, dnscache) have no access at
 * all: they get a read-only descriptor from the router.
 * Must never: give the group or others a write bit anywhere in the tree.
 */
#ifndef ONEHOP_QUEUE_MODES_H
#define ONEHOP_QUEUE_MODES_H

#define QUEUE_ROOT_MODE 02755   /* queue_dir: set-gid, so all below gets its group */
#define QUEUE_PLACE_MODE 02750  /* incoming/, active/, their buckets, corrupt/ */
#define QUEUE_PRIVATE_MODE 0700 /* tmp/, slots/, lock/: the writer side only */
#define QUEUE_FILE_MODE 0640    /* message files: the router's group reads */

#endif
