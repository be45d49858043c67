/* test_logtail.c: the tail of a stage's log across its rotated files
 * (outlog.c writes them, logtail.c reads them back): order oldest first,
 * the newest file first in line, the worker filter, a missing file, a file
 * larger than the read window (its cut first line dropped), a window that
 * grows for a long tail, output that is not UTF-8, and the task
 * filters shared by GET /tasks and `pgwake tasks`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "logtail.h"
#include "tasks.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/test_logtail.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *path(void)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/s.log", dir);
    return p;
}

static void assert_lines(json_t *a, const char *const *want, size_t n)
{
    assert_non_null(a);
    assert_int_equal(json_array_size(a), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(a, i)), want[i]);
    json_decref(a);
}

#define L(t, w, x) "2026-01-01 00:00:0" #t ".000 " w " " x

static void test_across_rotated_files(void **state)
{
    (void)state;
    write_file("s.log.2", L(1, "s.1", "a") "\n" L(2, "s.1", "b") "\n");
    write_file("s.log.1", L(3, "s.2", "c") "\n");
    write_file("s.log", L(4, "s.1", "d") "\n" L(5, "s.2", "e") "\n");
    char err[200];
    off_t size;
    const char *want4[] = {L(2, "s.1", "b"), L(3, "s.2", "c"), L(4, "s.1", "d"), L(5, "s.2", "e")};
    assert_lines(logtail_lines(path(), 2, 4, NULL, &size, err, sizeof err), want4, 4);
    assert_int_equal(size, 2 * strlen(L(4, "s.1", "d") "\n"));
    const char *want2[] = {L(4, "s.1", "d"), L(5, "s.2", "e")};
    assert_lines(logtail_lines(path(), 2, 2, NULL, NULL, err, sizeof err), want2, 2);
    /* backups = 1: .2 is not the stage's any more */
    const char *want_b1[] = {L(3, "s.2", "c"), L(4, "s.1", "d"), L(5, "s.2", "e")};
    assert_lines(logtail_lines(path(), 1, 10, NULL, NULL, err, sizeof err), want_b1, 3);
    const char *want_w[] = {L(1, "s.1", "a"), L(2, "s.1", "b"), L(4, "s.1", "d")};
    assert_lines(logtail_lines(path(), 2, 10, "s.1", NULL, err, sizeof err), want_w, 3);
    /* "s." is a prefix of the worker ids, not one of them */
    assert_lines(logtail_lines(path(), 2, 10, "s.", NULL, err, sizeof err), NULL, 0);
}

static void test_missing_and_partial(void **state)
{
    (void)state;
    char err[200];
    off_t size = 7;
    assert_lines(logtail_lines(path(), 3, 10, NULL, &size, err, sizeof err), NULL, 0);
    assert_int_equal(size, 0);
    write_file("s.log", "no newline at the end");
    const char *want[] = {"no newline at the end"};
    assert_lines(logtail_lines(path(), 0, 10, NULL, NULL, err, sizeof err), want, 1);
}

static void test_bigger_than_the_window(void **state)
{
    (void)state;
    size_t n = LOGTAIL_READ_MAX + 100;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    memcpy(big + n - 6, "\nlast\n", 6);
    write_file("s.log", big);
    free(big);
    char err[200];
    const char *want[] = {"last"};
    assert_lines(logtail_lines(path(), 0, 10, NULL, NULL, err, sizeof err), want, 1);
}

static void test_window_grows_and_not_utf8(void **state)
{
    (void)state;
    /* 3000 lines of 100 bytes: 2000 of them need more than the first 64 KiB. */
    char line[101], *text = malloc(3000 * 100 + 1);
    assert_non_null(text);
    for (int i = 0; i < 3000; i++) {
        snprintf(line, sizeof line, "%-99d\n", i);
        memcpy(text + i * 100, line, 100);
    }
    text[3000 * 100] = '\0';
    write_file("s.log", text);
    free(text);
    char err[200];
    json_t *a = logtail_lines(path(), 0, 2000, NULL, NULL, err, sizeof err);
    assert_int_equal(json_array_size(a), 2000);
    assert_int_equal(atoi(json_string_value(json_array_get(a, 0))), 1000);
    assert_int_equal(atoi(json_string_value(json_array_get(a, 1999))), 2999);
    json_decref(a);
    write_file("s.log", "caf\xe9 latin-1\n");
    const char *want[] = {"caf? latin-1"};
    assert_lines(logtail_lines(path(), 0, 5, NULL, NULL, err, sizeof err), want, 1);
}

static void test_task_filters(void **state)
{
    (void)state;
    char err[200];
    TaskFilter ok = {.stage = "work", .state = "dead", .run = 3, .before = 10, .limit = 50};
    assert_true(tasks_filter_check(&ok, err, sizeof err));
    TaskFilter bad_state = {.state = "zombie", .limit = 1};
    assert_false(tasks_filter_check(&bad_state, err, sizeof err));
    assert_non_null(strstr(err, "pending, leased, dead, done"));
    TaskFilter bad_stage = {.stage = "No Stage", .limit = 1};
    assert_false(tasks_filter_check(&bad_stage, err, sizeof err));
    TaskFilter bad_limit = {.limit = TASKS_LIMIT_MAX + 1};
    assert_false(tasks_filter_check(&bad_limit, err, sizeof err));
    TaskParams p;
    tasks_params(&ok, &p);
    assert_string_equal(p.v[0], "work");
    assert_string_equal(p.v[2], "3");
    assert_string_equal(p.v[4], "50");
    TaskFilter none = {.limit = 5};
    tasks_params(&none, &p);
    assert_null(p.v[0]);
    assert_null(p.v[1]);
    assert_null(p.v[2]);
    assert_null(p.v[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_across_rotated_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bigger_than_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_grows_and_not_utf8, setup, teardown),
        cmocka_unit_test(test_task_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
