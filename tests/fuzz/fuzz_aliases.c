/*
 * fuzz_aliases — libFuzzer target for the aliases file parser
 * (common/aliases.c, SPEC 3, aliases(5) syntax): any bytes as the file's
 * text. Besides crashes, sanitizer reports and leaks, it traps when the
 * table breaks the contract of aliases.h: an entry without targets, a target
 * line before its entry's line, a name that is not lower-case, or an entry
 * that aliases_lookup() does not find.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aliases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_alias(const struct aliases *a, const struct alias *al)
{
    if (al->ntargets == 0 || aliases_lookup(a, al->name) != al)
        __builtin_trap();
    for (const char *s = al->name; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            __builtin_trap();
    for (size_t i = 0; i < al->ntargets; i++) {
        const struct alias_target *t = &al->targets[i];
        if (!t->value || t->line < al->line)
            __builtin_trap();
        if (i > 0 && t->line < al->targets[i - 1].line)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aliases a = ALIASES_INIT;
    struct diag d = DIAG_INIT;
    int rc = aliases_parse(&a, "aliases", (const char *)data, size, &d);
    if ((rc == 0) != (d.n == 0))
        __builtin_trap();
    for (size_t i = 0; i < a.n; i++)
        check_alias(&a, &a.v[i]);
    aliases_lookup(&a, "POSTMASTER");
    aliases_free(&a);
    diag_free(&d);
    return 0;
}
