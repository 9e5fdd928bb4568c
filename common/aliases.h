/*
 * aliases — the aliases file (SPEC section 3), in the /etc/aliases syntax of
 * Postfix's aliases(5), parsed into a table of names and their targets.
 *
 *     # comment
 *     postmaster: root
 *     team:       alice, bob@example.com,
 *                 "|/usr/bin/filter --tag team", /var/mail/team.archive
 *     lists:      :include:/etc/onehop/lists.txt
 *
 * A logical line is `NAME: TARGET, TARGET...`; a line starting with white
 * space continues it. Lines whose first non-blank byte is `#` are comments,
 * and they, like blank lines, neither end nor break a logical line. NAME may
 * be written in double quotes; names are compared case-insensitively (stored
 * lower-case). Targets are separated by commas (commas inside double quotes
 * do not count) and are:
 *     user, user@domain     an address (addr.h, ADDR_ALLOW_BARE)
 *     |command              pipe the message to command
 *     /file                 append the message to file
 *     :include:/path        the targets listed in that file
 * A target wholly in double quotes ("|command with spaces") loses its quotes.
 *
 * Contract: every mistake is reported to the diag as FILE:LINE: message at
 * the line where it was written, and parsing goes on; an entry with a
 * mistake is not added. A name given twice is reported at its second entry
 * (naming the first), and the first is kept. Nothing here expands a target,
 * reads an :include: file or looks up a user: the router does that.
 */
#ifndef ONEHOP_ALIASES_H
#define ONEHOP_ALIASES_H

#include <stddef.h>

#include "addr.h"
#include "diag.h"
#include "mapfile.h"

enum alias_target_kind {
    ALIAS_ADDRESS, /* user or user@domain */
    ALIAS_COMMAND, /* |command */
    ALIAS_FILE,    /* /file */
    ALIAS_INCLUDE  /* :include:/path */
};

struct alias_target {
    enum alias_target_kind kind;
    char *value;          /* ADDRESS: as written; COMMAND: after "|"; FILE: the path;
                             INCLUDE: the path after ":include:" */
    struct mailaddr addr; /* ADDRESS only: the parsed address (domain NULL when bare) */
    unsigned line;        /* the line the target is written on */
};

struct alias {
    char *name; /* lower-case, without quotes */
    struct alias_target *targets;
    size_t ntargets; /* at least one */
    unsigned line;   /* the line the entry starts on */
};

struct aliases {
    struct alias *v;
    size_t n, cap;
    struct strindex by_name; /* name -> index in v */
};

#define ALIASES_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, STRINDEX_INIT                                                                  \
    }

/* Parse text as the aliases file fname (for messages) into a (ALIASES_INIT
 * or freed). Returns 0 when there was no mistake, -1 otherwise. */
int aliases_parse(struct aliases *a, const char *fname, const char *text, size_t len,
                  struct diag *d);
/* Load the file at path: a missing file is an empty table; one that cannot
 * be read is an error (reported as "path: message"). Returns as aliases_parse. */
int aliases_load(struct aliases *a, const char *path, struct diag *d);
void aliases_free(struct aliases *a);

/* An :include: file (Postfix aliases(5)): the targets of an alias's right-hand
 * side, one or more a line, separated by commas or line ends, `#` lines and
 * blank lines ignored. Fills out (name: fname, possibly no targets; free it
 * with alias_entry_free); mistakes go to d as FILE:LINE: message and their
 * targets are left out. Returns 0 when there was no mistake, -1 otherwise. */
int aliases_parse_include(struct alias *out, const char *fname, const char *text, size_t len,
                          struct diag *d);
void alias_entry_free(struct alias *al);

/* The entry for name (any case), or NULL. */
const struct alias *aliases_lookup(const struct aliases *a, const char *name);

#endif
