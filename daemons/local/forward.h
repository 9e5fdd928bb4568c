/*
 * forward — a user's ~/.forward (onehop-forward(5)): read with the user's
 * rights (the delivery child has become the user), checked, parsed with
 * the aliases' right-hand-side syntax (aliases.h aliases_parse_include:
 * targets separated by commas or line ends, `#` lines, "quoted targets"),
 * and the re-injection of its address targets as a new message.
 *
 * Safety (as Postfix and sendmail): the file is used only when it is a
 * regular file, not a symbolic link, owned by the user or by root, and
 * neither group- nor world-writable; otherwise it is ignored with a log
 * line and the user's mail goes to the mailbox. An empty file (no target)
 * is ignored too.
 *
 * Targets: |command and /file (delivered as the user), addresses (a bare
 * name gets @myorigin) re-injected, and the user's own name (alice,
 * \alice, alice@a-local-domain; with or without an extension) meaning the
 * user's own mailbox, never forwarded again.
 *
 * Re-injection (forward_inject): DAEMON_DIR/onehop-queue -C CONFIG_DIR,
 * one-shot (queue/inject_proto.h), with the original envelope sender and a
 * Delivered-To: line for the user prepended (the loop check of the next
 * delivery); success only once onehop-queue answered INJ_OK (committed).
 * Must never: follow a symbolic link, or use a .forward others can write.
 */
#ifndef ONEHOP_LOCAL_FORWARD_H
#define ONEHOP_LOCAL_FORWARD_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "conf.h"
#include "local/msgcopy.h"

#define FORWARD_MAX (64u * 1024) /* bytes of a .forward read */
#define FORWARD_INJECT_TIMEOUT_MS 60000

enum forward_kind { FWD_SELF, FWD_ADDRESS, FWD_COMMAND, FWD_FILE };

struct forward_target {
    enum forward_kind kind;
    char *value; /* ADDRESS: local@domain; COMMAND: after '|'; FILE: the path */
};

struct forward {
    struct forward_target *v;
    size_t n;
};

/* Parse text as the .forward of user (fname for log lines). Mistakes are
 * logged and their targets left out. */
void forward_parse(const char *text, size_t len, const char *fname, const char *user,
                   const struct conf *c, struct forward *out);
/* home/.forward owned by uid (or root): 1 with targets in *out; 0 none to
 * use (missing, empty, or unsafe: logged with qid); -1 with errno when it
 * cannot be read (the delivery is temporary). */
int forward_read(const char *home, uid_t uid, const char *user, const struct conf *c,
                 const char *qid, struct forward *out);
void forward_free(struct forward *f);

/* Queue a copy for rcpts[0..n) from sender: 0 with the new id in id (at
 * least 64 bytes); -1 temporary, -2 permanent, with why. */
int forward_inject(const struct conf *c, const char *sender, char *const *rcpts, size_t n,
                   const struct msgsrc *src, const struct buf *prefix, char *id, struct buf *why);

#endif
