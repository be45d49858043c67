/* test_metrics.c: histogram buckets: bounds are inclusive (Prometheus `le`),
 * cumulative counts, the +Inf bucket, and odd values counted as 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "metrics.h"

static void test_bounds_sorted(void **state)
{
    (void)state;
    for (int i = 1; i < HIST_NBOUNDS; i++)
        assert_true(hist_bounds[i - 1] < hist_bounds[i]);
}

static void test_observe(void **state)
{
    (void)state;
    Histogram h = {0};
    hist_observe(&h, 0);                 /* first bucket */
    hist_observe(&h, hist_bounds[0]);    /* le is inclusive: first bucket */
    hist_observe(&h, 0.003);             /* le 0.005 */
    hist_observe(&h, 10);                /* the last bound */
    hist_observe(&h, 11);                /* above every bound: +Inf only */
    assert_int_equal(h.count, 5);
    assert_int_equal(hist_cumulative(&h, 0), 2);
    assert_int_equal(hist_cumulative(&h, 1), 2);
    assert_int_equal(hist_cumulative(&h, 3), 3); /* 0.005 */
    assert_int_equal(hist_cumulative(&h, HIST_NBOUNDS - 1), 4);
    assert_int_equal(hist_cumulative(&h, HIST_NBOUNDS), 5);
    assert_true(fabs(h.sum - (hist_bounds[0] + 0.003 + 21)) < 1e-9);
}

static void test_odd_values(void **state)
{
    (void)state;
    Histogram h = {0};
    hist_observe(&h, -1);
    hist_observe(&h, NAN);
    hist_observe(&h, INFINITY);
    assert_int_equal(h.count, 3);
    assert_int_equal(hist_cumulative(&h, 0), 3);
    assert_true(h.sum == 0);
}

static void test_clock(void **state)
{
    (void)state;
    double a = metrics_now(), b = metrics_now();
    assert_true(a > 0 && b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_sorted),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_odd_values),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
