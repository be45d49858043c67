/* test_names.c: the name tables (every worker state named) and the stage name
 * grammar ^[a-z0-9_][a-z0-9_.-]{0,62}$ of SPEC section 3, byte by byte and
 * against POSIX regex on random strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "worker.h"

/* The transition table is static in worker.c; what is reachable is the name
 * table every log line and /status use. */
static void test_worker_state_names(void **state)
{
    (void)state;
    for (int s = 0; s < WK__COUNT; s++) {
        const char *name = worker_state_names[s];
        if (!name || !*name)
            fail_msg("worker state %d has no name", s);
        for (const char *p = name; *p; p++)
            if (*p < 'a' || *p > 'z')
                fail_msg("worker state %d is named \"%s\": lower-case letters only", s, name);
        for (int t = 0; t < s; t++)
            if (strcmp(name, worker_state_names[t]) == 0)
                fail_msg("worker states %d and %d are both \"%s\"", t, s, name);
    }
    assert_string_equal(worker_state_names[WK_REGISTERING], "registering");
    assert_string_equal(worker_state_names[WK_STARTING], "starting");
    assert_string_equal(worker_state_names[WK_BUSY], "busy");
    assert_string_equal(worker_state_names[WK_IDLE], "idle");
    assert_string_equal(worker_state_names[WK_STOPPING], "stopping");
    assert_string_equal(worker_state_names[WK_EXITED], "exited");
    assert_int_equal(sizeof worker_state_names / sizeof worker_state_names[0], WK__COUNT);
}

static bool first_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool rest_ok(unsigned char c)
{
    return first_ok(c) || c == '.' || c == '-';
}

/* Every byte as the first, a middle and the last character. */
static void test_stage_name_bytes(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char first[2] = {(char)c, 0};
        char middle[4] = {'a', (char)c, 'b', 0};
        char last[3] = {'a', (char)c, 0};
        if (stage_name_valid(first) != first_ok((unsigned char)c))
            fail_msg("\"\\x%02x\" alone: want %s", c, first_ok((unsigned char)c) ? "valid" : "invalid");
        if (stage_name_valid(middle) != rest_ok((unsigned char)c))
            fail_msg("\"a\\x%02xb\": want %s", c, rest_ok((unsigned char)c) ? "valid" : "invalid");
        if (stage_name_valid(last) != rest_ok((unsigned char)c))
            fail_msg("\"a\\x%02x\": want %s", c, rest_ok((unsigned char)c) ? "valid" : "invalid");
    }
}

static void test_stage_name_spelled_out(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a", "z", "0", "9", "_", "__", "_x", "0a", "a.", "a-", "a..b", "a--b", "a.-_b",
        "company_research", "company_research.v2-b", "2024-01-01", "x.y.z",
        "abcdefghijklmnopqrstuvwxyz0123456789_.-abcdefghijklmnopqrstuvwx", /* 63 */
    };
    static const char *const bad[] = {
        "", ".", "-", ".a", "-a", "..", "A", "Stage", "stagE", "a b", " a", "a ", "a\t", "a\n",
        "a/b", "a:b", "a*", "*", "a+b", "a@b", "a,b", "a;b", "a'b", "a\"b", "a\\b", "caf\xc3\xa9",
        "\xc3\xa9", "a\x7f", "a\x01", "\xff",
        "abcdefghijklmnopqrstuvwxyz0123456789_.-abcdefghijklmnopqrstuvwxy", /* 64 */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!stage_name_valid(good[i]))
            fail_msg("\"%s\" was refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (stage_name_valid(bad[i]))
            fail_msg("\"%s\" was accepted", bad[i]);
}

static void test_stage_name_lengths(void **state)
{
    (void)state;
    char name[300];
    for (size_t n = 1; n < sizeof name; n++) {
        memset(name, 'a', n);
        name[n] = '\0';
        assert_int_equal(stage_name_valid(name), n <= 63);
        name[0] = '_';
        name[n - 1] = n > 1 ? '-' : '_';
        assert_int_equal(stage_name_valid(name), n <= 63);
    }
}

/* Random strings over an alphabet that straddles the grammar, checked
 * against the regex itself (the same text as the SQL CHECK). */
static void test_stage_name_regex(void **state)
{
    (void)state;
    regex_t re;
    assert_int_equal(regcomp(&re, "^[a-z0-9_][a-z0-9_.-]{0,62}$", REG_EXTENDED | REG_NOSUB), 0);
    static const char alphabet[] = "az09_.-A Z\t/\x7f\x80";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char name[80];
    int valid = 0;
    bool mismatch = false;
    for (int it = 0; it < 200000 && !mismatch; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        size_t n = (size_t)(x % 70);
        uint64_t r = x;
        for (size_t i = 0; i < n; i++) {
            if (i % 8 == 0)
                x ^= x << 13, x ^= x >> 7, x ^= x << 17, r = x;
            /* mostly valid characters, so long valid names come up too */
            unsigned k = (unsigned)(r & 0xff);
            r >>= 8;
            name[i] = k < 230 ? "abz09_.-"[k % 8] : alphabet[k % (sizeof alphabet - 1)];
        }
        name[n] = '\0';
        bool want = regexec(&re, name, 0, NULL, 0) == 0;
        mismatch = stage_name_valid(name) != want;
        valid += want;
    }
    regfree(&re); /* before any failure, so valgrind sees no leak */
    if (mismatch)
        fail_msg("\"%s\": stage_name_valid disagrees with the regex", name);
    assert_true(valid > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_state_names),
        cmocka_unit_test(test_stage_name_bytes),
        cmocka_unit_test(test_stage_name_spelled_out),
        cmocka_unit_test(test_stage_name_lengths),
        cmocka_unit_test(test_stage_name_regex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
