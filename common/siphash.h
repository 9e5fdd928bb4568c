/*
 * siphash — SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash for
 * hash tables filled with names chosen by outsiders (DNS answers, client
 * requests): without the 128-bit secret key an attacker cannot predict which
 * bucket a name lands in, so cannot flood one chain (hash flooding).
 *
 * Contract: siphash24(key, p, n) is the reference SipHash-2-4 of p[0..n)
 * (test vectors in tests/unit/test_siphash.c). siphash_random_key() fills a
 * key from getrandom(2); it never returns a predictable key silently (it
 * dies if the kernel gives no randomness).
 */
#ifndef ONEHOP_SIPHASH_H
#define ONEHOP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_SIZE 16

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_SIZE], const void *p, size_t n);
void siphash_random_key(uint8_t key[SIPHASH_KEY_SIZE]);

#endif
