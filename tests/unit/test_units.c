/* test_units.c: durations and sizes of the configuration file, edge cases
 * spelled out: fractions, bare numbers, junk, negatives, overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "units.h"

typedef struct Case {
    const char *text;
    int64_t value;
} Case;

static void test_duration_good(void **state)
{
    (void)state;
    static const Case cases[] = {
        {"0", 0},
        {"0ms", 0},
        {"250ms", 250},
        {"5", 5000},
        {"0.5", 500},
        {"1.5s", 1500},
        {"90s", 90000},
        {"5m", 300000},
        {"1.25m", 75000},
        {"1h", 3600000},
        {"0.001s", 1},
        {"1.0000000000s", 1000},
        {"007s", 7000},
        {"9223372036854775807ms", INT64_MAX},
        {"2562047788015h", 2562047788015LL * 3600000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        if (!units_parse_duration(cases[i].text, &ms))
            fail_msg("\"%s\" was refused", cases[i].text);
        assert_int_equal(ms, cases[i].value);
    }
}

static void test_duration_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",      "-1",    "-5s",    "+1",     " 1",     "1 ",      "1 s",   "s",
        "5x",    "1S",    "1d",     "1M",     ".5",     "5.",      "1.5ms", "0.0001s",
        "1e3",   "0x10",  "1.2.3s", "1ms5",   "1..5s",  "0.0000000001s",
        "9223372036854775808ms",   "9223372036854775807s",  "99999999999999999999",
        "2562047788016h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (units_parse_duration(bad[i], &ms))
            fail_msg("\"%s\" was accepted as %lld ms", bad[i], (long long)ms);
        assert_int_equal(ms, 42); /* untouched on failure */
    }
    int64_t ms;
    assert_false(units_parse_duration(NULL, &ms));
}

static void test_size_good(void **state)
{
    (void)state;
    static const Case cases[] = {
        {"0", 0},
        {"1", 1},
        {"1K", 1024},
        {"0.5K", 512},
        {"50M", 50LL * 1024 * 1024},
        {"1G", 1024LL * 1024 * 1024},
        {"1.5G", 1536LL * 1024 * 1024},
        {"8589934591G", 8589934591LL * 1024 * 1024 * 1024},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t bytes = -1;
        if (!units_parse_size(cases[i].text, &bytes))
            fail_msg("\"%s\" was refused", cases[i].text);
        assert_int_equal(bytes, cases[i].value);
    }
}

static void test_size_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "-1", "-1K", "1k", "1KB", "1T", "1 G", "G", "1.3K", "0.5", "8589934592G", "1s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t bytes = 42;
        if (units_parse_size(bad[i], &bytes))
            fail_msg("\"%s\" was accepted as %lld bytes", bad[i], (long long)bytes);
    }
}

static void test_format_duration(void **state)
{
    (void)state;
    static const Case cases[] = {
        {"0", 0},       {"1ms", 1},      {"1500ms", 1500}, {"1s", 1000},   {"90s", 90000},
        {"5m", 300000}, {"1h", 3600000}, {"2h", 7200000},  {"61m", 3660000}, {"-5s", -5000},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(units_format_duration(cases[i].value, buf, sizeof buf), cases[i].text);
        int64_t back;
        if (cases[i].value >= 0) { /* what it prints parses back to the same value */
            assert_true(units_parse_duration(buf, &back));
            assert_int_equal(back, cases[i].value);
        }
    }
    assert_string_equal(units_format_duration(INT64_MAX, buf, sizeof buf), "9223372036854775807ms");
    char small[4];
    assert_string_equal(units_format_duration(90000, small, sizeof small), "90s");
    assert_string_equal(units_format_duration(1500, small, sizeof small), "150");
    assert_int_equal(strlen(small), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_size_good),     cmocka_unit_test(test_size_bad),
        cmocka_unit_test(test_format_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
