/*
 * json — JSON string escaping (RFC 8259 section 7) with UTF-8 validation
 * (RFC 3629 section 4). See json.h.
 *
 * Must never: copy a byte that would make the output invalid UTF-8, or read
 * past the given length while looking at a multi-byte sequence.
 */
#include "json.h"

#include <inttypes.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4 table),
 * or 0 if the bytes there are not one. */
static size_t utf8_sequence_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

static void add_escaped_byte(struct buf *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    buf_add(out, esc, sizeof(esc));
}

/* One ASCII byte: escaped if RFC 8259 requires it (or it is DEL). */
static void add_ascii(struct buf *out, unsigned char c)
{
    switch (c) {
    case '"':
        buf_adds(out, "\\\"");
        return;
    case '\\':
        buf_adds(out, "\\\\");
        return;
    case '\b':
        buf_adds(out, "\\b");
        return;
    case '\f':
        buf_adds(out, "\\f");
        return;
    case '\n':
        buf_adds(out, "\\n");
        return;
    case '\r':
        buf_adds(out, "\\r");
        return;
    case '\t':
        buf_adds(out, "\\t");
        return;
    default:
        if (c < 0x20 || c == 0x7f)
            add_escaped_byte(out, c);
        else
            buf_addc(out, (char)c);
    }
}

void json_add_string(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_addc(out, '"');
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            add_ascii(out, p[i]);
            i++;
            continue;
        }
        size_t n = utf8_sequence_len(p + i, len - i);
        if (n == 0) {
            add_escaped_byte(out, p[i]);
            i++;
        } else {
            buf_add(out, p + i, n);
            i += n;
        }
    }
    buf_addc(out, '"');
}

void json_add_cstr(struct buf *out, const char *s)
{
    if (!s)
        buf_adds(out, "null");
    else
        json_add_string(out, s, strlen(s));
}

void json_add_key(struct buf *out, const char *key)
{
    /* a member after another one gets its separator */
    if (out->len && out->s[out->len - 1] != '{')
        buf_addc(out, ',');
    json_add_cstr(out, key);
    buf_addc(out, ':');
}

void json_field_cstr(struct buf *out, const char *key, const char *s)
{
    json_add_key(out, key);
    json_add_cstr(out, s);
}

void json_field_uint(struct buf *out, const char *key, uint64_t v)
{
    json_add_key(out, key);
    json_add_uint(out, v);
}

void json_field_bool(struct buf *out, const char *key, int on)
{
    json_add_key(out, key);
    buf_adds(out, on ? "true" : "false");
}

void json_add_uint(struct buf *out, uint64_t v)
{
    buf_printf(out, "%" PRIu64, v);
}

void json_add_int(struct buf *out, int64_t v)
{
    buf_printf(out, "%" PRId64, v);
}
