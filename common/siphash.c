/*
 * siphash — SipHash-2-4 over a byte string, and a random key. See siphash.h.
 * Must never read past n bytes of the input.
 */
#include "siphash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v; /* one load where the byte order already is the one wanted */
    memcpy(&v, p, sizeof(v));
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
#endif
}

struct sipstate {
    uint64_t v0, v1, v2, v3;
};

/* Inlined: the hash of every cache lookup is ten of these. */
static inline __attribute__((always_inline)) void sipround(struct sipstate *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void sip_compress(struct sipstate *s, uint64_t m)
{
    s->v3 ^= m;
    sipround(s);
    sipround(s);
    s->v0 ^= m;
}

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_SIZE], const void *p, size_t n)
{
    const uint8_t *in = p;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    struct sipstate s = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                         k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8)
        sip_compress(&s, load_le64(in + i));
    uint64_t last = (uint64_t)(n & 0xff) << 56;
    for (size_t i = whole; i < n; i++)
        last |= (uint64_t)in[i] << (8 * (i - whole));
    sip_compress(&s, last);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sipround(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void siphash_random_key(uint8_t key[SIPHASH_KEY_SIZE])
{
    size_t got = 0;
    while (got < SIPHASH_KEY_SIZE) {
        ssize_t n = getrandom(key + got, SIPHASH_KEY_SIZE - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            log_fatal("getrandom: no randomness for the hash key: %m");
        got += (size_t)n;
    }
}
