/*
 * test_siphash — SipHash-2-4 against the reference vectors (key 00..0f,
 * message 00..n-1), the paper's Appendix A example among them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "siphash.h"

static const uint8_t key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static uint64_t hash_of_prefix(size_t n)
{
    uint8_t msg[64];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    return siphash24(key, msg, n);
}

static void test_empty_message(void **state)
{
    assert_int_equal(hash_of_prefix(0), 0x726fdb47dd0e0e31ULL);
}

static void test_one_byte(void **state)
{
    assert_int_equal(hash_of_prefix(1), 0x74f839c593dc67fdULL);
}

static void test_paper_example_fifteen_bytes(void **state)
{
    assert_int_equal(hash_of_prefix(15), 0xa129ca6149be45e5ULL);
}

static void test_sixty_three_bytes(void **state)
{
    assert_int_equal(hash_of_prefix(63), 0x958a324ceb064572ULL);
}

static void test_key_changes_hash(void **state)
{
    uint8_t other[16] = {1};
    assert_int_not_equal(siphash24(other, "example.com", 11), siphash24(key, "example.com", 11));
}

static void test_random_keys_differ(void **state)
{
    uint8_t a[16], b[16];
    siphash_random_key(a);
    siphash_random_key(b);
    assert_memory_not_equal(a, b, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_one_byte),
        cmocka_unit_test(test_paper_example_fifteen_bytes),
        cmocka_unit_test(test_sixty_three_bytes),
        cmocka_unit_test(test_key_changes_hash),
        cmocka_unit_test(test_random_keys_differ),
    };
    return cmocka_run_group_tests_name("siphash", tests, NULL, NULL);
}
