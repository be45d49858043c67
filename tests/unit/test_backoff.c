/* test_backoff.c: restart backoff growth, cap, jitter bounds and reset with an
 * injected RNG; the crash tally's window counting and ring wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

/* A scripted RNG: returns a fixed value, so tests reach the jitter extremes. */
static uint32_t fixed_rand(void *rng)
{
    return *(uint32_t *)rng;
}

static void test_growth_and_cap_without_jitter(void **state)
{
    (void)state;
    Backoff b;
    backoff_init(&b, 1000, 30000);
    const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(backoff_next(&b, NULL, NULL), want[i]);
}

static void test_jitter_extremes(void **state)
{
    (void)state;
    Backoff b;
    uint32_t r = 0; /* lowest draw: the floor of each step */
    backoff_init(&b, 1000, 30000);
    const int64_t lo[] = {1000, 1000, 2000, 4000, 8000, 15000, 15000};
    for (size_t i = 0; i < sizeof lo / sizeof lo[0]; i++)
        assert_int_equal(backoff_next(&b, fixed_rand, &r), lo[i]);

    r = UINT32_MAX; /* highest draw: the step itself */
    backoff_reset(&b);
    const int64_t hi[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < sizeof hi / sizeof hi[0]; i++)
        assert_int_equal(backoff_next(&b, fixed_rand, &r), hi[i]);
}

static void test_jitter_bounds_random(void **state)
{
    (void)state;
    Backoff b;
    uint32_t seed = 12345;
    backoff_init(&b, 500, 60000);
    int64_t step = 500;
    int varied = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t d = backoff_next(&b, backoff_xorshift32, &seed);
        int64_t floor = step / 2 > 500 ? step / 2 : 500;
        assert_true(d >= floor && d <= step);
        assert_true(d >= 500 && d <= 60000);
        if (d != step)
            varied++;
        step = step * 2 > 60000 ? 60000 : step * 2;
        if (i % 20 == 19) { /* start over now and then to sample low steps too */
            backoff_reset(&b);
            step = 500;
        }
    }
    assert_true(varied > 500); /* the jitter really happens */
}

static void test_reset_and_live_limits(void **state)
{
    (void)state;
    Backoff b;
    backoff_init(&b, 100, 1000);
    for (int i = 0; i < 10; i++)
        backoff_next(&b, NULL, NULL);
    assert_int_equal(b.cur_ms, 1000);
    backoff_reset(&b);
    assert_int_equal(backoff_next(&b, NULL, NULL), 100);

    backoff_set_limits(&b, 100, 150); /* current step (200) clamped to the new max */
    assert_int_equal(backoff_next(&b, NULL, NULL), 150);
    backoff_set_limits(&b, 400, 5000); /* and raised to a new base */
    assert_int_equal(backoff_next(&b, NULL, NULL), 400);
    assert_int_equal(backoff_next(&b, NULL, NULL), 800);
}

static void test_degenerate_limits(void **state)
{
    (void)state;
    Backoff b;
    backoff_init(&b, 0, 0); /* restart at once, forever */
    for (int i = 0; i < 5; i++)
        assert_int_equal(backoff_next(&b, backoff_xorshift32, &(uint32_t){7}), 0);
    backoff_init(&b, 5000, 100); /* max below base: base wins */
    assert_int_equal(b.max_ms, 5000);
    assert_int_equal(backoff_next(&b, NULL, NULL), 5000);
    assert_int_equal(backoff_next(&b, NULL, NULL), 5000);
    backoff_init(&b, -3, 10);
    assert_int_equal(backoff_next(&b, NULL, NULL), 0);

    /* huge values do not overflow */
    backoff_init(&b, INT64_MAX / 2 + 1, INT64_MAX);
    uint32_t r = UINT32_MAX;
    assert_true(backoff_next(&b, fixed_rand, &r) > 0);
    assert_int_equal(b.cur_ms, INT64_MAX);
    assert_true(backoff_next(&b, fixed_rand, &r) >= INT64_MAX / 2);
    assert_int_equal(b.cur_ms, INT64_MAX);
}

static void test_xorshift_zero_state(void **state)
{
    (void)state;
    uint32_t s = 0;
    uint32_t a = backoff_xorshift32(&s);
    assert_true(a != 0);
    assert_true(backoff_xorshift32(&s) != a);
}

static void test_tally_window(void **state)
{
    (void)state;
    CrashTally t = {0};
    assert_int_equal(tally_count_within(&t, 1000, 60000), 0);
    tally_add(&t, 1000);
    tally_add(&t, 2000);
    tally_add(&t, 3000);
    assert_int_equal(tally_count_within(&t, 3000, 60000), 3);
    /* half-open window (now - window, now]: the crash at 1000 is exactly
     * 2000 ms old, so it is out */
    assert_int_equal(tally_count_within(&t, 3000, 2000), 2);
    assert_int_equal(tally_count_within(&t, 3000, 2001), 3);
    assert_int_equal(tally_count_within(&t, 62500, 60000), 1);
    assert_int_equal(tally_count_within(&t, 100000, 60000), 0);
    assert_int_equal(tally_count_within(&t, 3000, 0), 0);
    /* a crash recorded after `now` (should not happen) is not counted */
    assert_int_equal(tally_count_within(&t, 1500, 60000), 1);
    tally_clear(&t);
    assert_int_equal(tally_count_within(&t, 3000, 60000), 0);
    assert_int_equal(t.n, 0);
}

static void test_tally_ring_wrap(void **state)
{
    (void)state;
    CrashTally t = {0};
    for (int i = 0; i < TALLY_MAX + 10; i++)
        tally_add(&t, (int64_t)i * 100);
    assert_int_equal(t.n, TALLY_MAX);
    assert_int_equal(t.head, 10);
    int64_t last = (int64_t)(TALLY_MAX + 9) * 100;
    /* everything is remembered up to TALLY_MAX, oldest first to go */
    assert_int_equal(tally_count_within(&t, last, INT64_MAX / 4), TALLY_MAX);
    /* the 5 newest: ages 0, 100, 200, 300, 400 */
    assert_int_equal(tally_count_within(&t, last, 500), 5);
    assert_int_equal(tally_count_within(&t, last, 501), 6);
    /* the ten oldest (0 .. 900) were overwritten */
    int64_t oldest_kept = 10 * 100;
    assert_int_equal(tally_count_within(&t, last, last - oldest_kept + 1), TALLY_MAX);
    assert_int_equal(tally_count_within(&t, last, last - oldest_kept), TALLY_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_and_cap_without_jitter),
        cmocka_unit_test(test_jitter_extremes),
        cmocka_unit_test(test_jitter_bounds_random),
        cmocka_unit_test(test_reset_and_live_limits),
        cmocka_unit_test(test_degenerate_limits),
        cmocka_unit_test(test_xorshift_zero_state),
        cmocka_unit_test(test_tally_window),
        cmocka_unit_test(test_tally_ring_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
