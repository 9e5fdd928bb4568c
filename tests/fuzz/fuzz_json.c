/*
 * fuzz_json — libFuzzer target for the JSON string writer (common/json.c)
 * that `onehop queue --json`, `onehop route --json` and the other listings
 * put untrusted bytes through (header fields, addresses, reply texts): any
 * bytes as a string value and as a member name.
 *
 * Besides crashes, sanitizer reports and leaks, it traps when the contract
 * of json.h breaks: the output is not one RFC 8259 string literal (a raw
 * control character, quote or backslash, an unknown escape), is not valid
 * UTF-8 (no overlong form, surrogate or code point above U+10FFFF), or does
 * not give the input back byte for byte when read with \u00XX as the byte
 * XX (each input byte is either copied in a well-formed UTF-8 sequence or
 * escaped).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len = c < 0x80                   ? 1
                 : (c >= 0xc2 && c <= 0xdf) ? 2
                 : (c >= 0xe0 && c <= 0xef) ? 3
                 : (c >= 0xf0 && c <= 0xf4) ? 4
                                            : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return len;
}

static int hex(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Read the string literal at s[0..n) back into out; traps on anything that
 * is not one valid literal filling s exactly. */
static void read_literal(const unsigned char *s, size_t n, struct buf *out)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        __builtin_trap();
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = s[i];
        if (c == '"' || c < 0x20 || c == 0x7f)
            __builtin_trap();
        if (c != '\\') {
            size_t len = utf8_len(s + i, n - 1 - i);
            if (len == 0)
                __builtin_trap();
            buf_add(out, s + i, len);
            i += len;
            continue;
        }
        if (i + 1 >= n - 1)
            __builtin_trap();
        static const char plain[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
        const char *e = memchr(plain, s[i + 1], sizeof(plain) - 1);
        if (e) {
            buf_addc(out, value[e - plain]);
            i += 2;
            continue;
        }
        if (s[i + 1] != 'u' || i + 6 > n - 1 || s[i + 2] != '0' || s[i + 3] != '0' ||
            hex(s[i + 4]) < 0 || hex(s[i + 5]) < 0)
            __builtin_trap(); /* json.c escapes only bytes: \u00XX */
        buf_addc(out, (char)(hex(s[i + 4]) * 16 + hex(s[i + 5])));
        i += 6;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out = BUF_INIT, back = BUF_INIT, key = BUF_INIT;
    json_add_string(&out, (const char *)data, size);
    read_literal((const unsigned char *)out.s, out.len, &back);
    if (back.len != size || (size && memcmp(back.s, data, size) != 0))
        __builtin_trap();
    /* a member name: the bytes up to the first NUL, after an opening brace */
    buf_sets(&key, "");
    size_t klen = strnlen((const char *)data, size);
    buf_add(&key, data, klen);
    buf_clear(&out);
    buf_addc(&out, '{');
    json_add_key(&out, buf_cstr(&key));
    if (out.len < 3 || out.s[out.len - 1] != ':')
        __builtin_trap();
    buf_clear(&back);
    read_literal((const unsigned char *)out.s + 1, out.len - 2, &back);
    if (back.len != klen || (klen && memcmp(back.s, data, klen) != 0))
        __builtin_trap();
    buf_free(&out);
    buf_free(&back);
    buf_free(&key);
    return 0;
}
