/*
 * agent — one local delivery, in a process of its own (`onehop-local -C
 * DIR --deliver`, started by the daemon for every recipient: main.c):
 *
 *   fd 0  one LP_JOB record (local_proto.h) naming one recipient
 *   fd 3  the message file (O_RDONLY), its content [offset, offset+length)
 *   fd 1  one RP_RESULT record back (job and index as received), then exit 0
 *
 * The agent decides whose rights the delivery takes (SPEC 7):
 *   - an address, local_users = passwd: the system user of its local part
 *     (lower-cased, the extension after '+' cut off); none: permanent 5.1.1;
 *   - an address, local_users = any: the instance's own user (the owner of
 *     the configuration directory when running as root, else the agent's
 *     own uid), mailbox's %u being the local part;
 *   - a |command or /file (from the aliases): the owner of the aliases
 *     file, or `nobody` when that is root (Postfix's default_privs); with
 *     local_users = any the instance's user.
 * It checks the loop (a Delivered-To: naming this recipient: permanent
 * 5.4.6), then forks a child that takes that user's uid, gid and groups
 * (initgroups) when the agent runs as root, and does everything that
 * touches the user's files there: the ~/.forward (forward.h), the mailbox
 * (mailbox.h: `mailbox` with ~, %u, %d, %h expanded; ending in '/' a
 * Maildir, else an mbox), commands (command.h) and files. The agent itself
 * (root under a root master) never opens a file of the user's; addresses a
 * .forward names are re-injected by it once the child is done.
 * Every message gets `Return-Path: <SENDER>` and `Delivered-To: RECIPIENT`
 * in front.
 * Must never: deliver as root to anything but what the instance's owner
 * configured (local_users = any under a root-owned configuration), run a
 * user's target before its rights are taken, or exit without a result
 * when it can write one.
 */
#ifndef ONEHOP_LOCAL_AGENT_H
#define ONEHOP_LOCAL_AGENT_H

#include "conf.h"

#define AGENT_FLAG "--deliver"
#define AGENT_MSG_FD 3

/* The agent's whole run; returns main()'s exit status. */
int agent_main(const struct conf *c);

#endif
