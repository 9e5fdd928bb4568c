/*
 * fuzz_maps — what the targets that feed map files to the routing share
 * (fuzz_routing, fuzz_relay): their input cut into NUL-separated sections,
 * and the test that keeps them from naming :include: (a fuzzer must not read
 * the files of the machine it runs on). Header-only: each target is one
 * program.
 */
#ifndef ONEHOP_FUZZ_MAPS_H
#define ONEHOP_FUZZ_MAPS_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 if data names ":include:" (any case). */
static inline int fuzz_names_include(const uint8_t *data, size_t size)
{
    static const char word[] = ":include:";
    for (size_t i = 0; i + sizeof(word) - 1 <= size; i++) {
        size_t j = 0;
        while (j < sizeof(word) - 1 && tolower(data[i + j]) == word[j])
            j++;
        if (j == sizeof(word) - 1)
            return 1;
    }
    return 0;
}

/* The next NUL-separated section of data[*off..size): its start and length
 * (0 past the end); *off moves past it and its NUL. */
static inline const char *fuzz_section(const uint8_t *data, size_t size, size_t *off, size_t *len)
{
    const char *p = (const char *)data + *off;
    const uint8_t *nul = *off < size ? memchr(data + *off, 0, size - *off) : NULL;
    *len = nul ? (size_t)(nul - data) - *off : (*off < size ? size - *off : 0);
    *off += *len + (nul != NULL);
    return p;
}

#endif
