/* test_trends.c: the per-minute ring of a stage (trends.c): a minute keeps
 * the most claimable tasks and busy workers seen and the spawns and crashes
 * counted since it began; a minute with no event repeats the last gauges
 * with zero counts; done per minute comes from the database's rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stage.h"
#include "trends.h"
#include "worker.h"

static json_int_t at(json_t *st, const char *series, int k)
{
    return json_integer_value(json_array_get(json_object_get(st, series), (size_t)k));
}

static void test_ring(void **state)
{
    (void)state;
    Stage s;
    memset(&s, 0, sizeof s);
    strcpy(s.name, "alpha");
    s.st.spawns = 10; /* counts from before are not this minute's */
    trends_note(&s);
    s.st.spawns = 12;
    s.st.crashes = 1;
    s.count[WK_BUSY] = 3;
    s.claimable = 5;
    trends_note(&s);
    s.count[WK_BUSY] = 1; /* the minute keeps its most */
    s.claimable = 2;
    trends_note(&s);
    Stage *all[] = {&s};
    json_t *j = trends_json(all, 1);
    json_t *st = json_array_get(json_object_get(j, "stages"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "name")), "alpha");
    int last = TRENDS_MINUTES - 1;
    assert_int_equal(json_array_size(json_object_get(st, "busy")), TRENDS_MINUTES);
    assert_int_equal(at(st, "busy", last), 3);
    assert_int_equal(at(st, "claimable", last), 5);
    assert_int_equal(at(st, "spawns", last), 2);
    assert_int_equal(at(st, "crashes", last), 1);
    assert_int_equal(at(st, "spawns", last - 1), 0);
    assert_true(json_is_null(json_array_get(json_object_get(st, "done"), 0)));
    json_decref(j);
    trends_reset();
}

static void test_unknown_stage_is_flat(void **state)
{
    (void)state;
    Stage s;
    memset(&s, 0, sizeof s);
    strcpy(s.name, "never");
    Stage *all[] = {&s};
    json_t *j = trends_json(all, 1);
    json_t *st = json_array_get(json_object_get(j, "stages"), 0);
    for (int k = 0; k < TRENDS_MINUTES; k++)
        assert_int_equal(at(st, "busy", k) + at(st, "spawns", k), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "first_minute")),
                     trends_now_minute() - TRENDS_MINUTES + 1);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_unknown_stage_is_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
