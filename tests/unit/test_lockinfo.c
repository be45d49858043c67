/* test_lockinfo.c: lockinfo_describe over hand-made results in the shape of
 * LOCK_TRY_SQL (got, then the holder's five columns): a visible holder, one
 * whose details PostgreSQL hides, a socket client, no holder at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "lockinfo.h"

/* One row of six text columns; NULL entries are SQL NULLs. */
static PGresult *row(const char *const v[6])
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[6];
    static const char *const names[6] = {"got", "pid", "usename", "application_name", "host",
                                         "to_char"};
    memset(att, 0, sizeof att);
    for (int i = 0; i < 6; i++) {
        att[i].name = (char *)names[i];
        att[i].typid = 25;
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_true(PQsetResultAttrs(r, 6, att));
    for (int i = 0; i < 6; i++)
        assert_true(PQsetvalue(r, 0, i, (char *)v[i], v[i] ? (int)strlen(v[i]) : -1));
    return r;
}

static void test_visible_holder(void **state)
{
    const char *v[6] = {"f", "4242", "bob", "psql", "10.0.0.5", "2026-12-04 02:00:00 UTC"};
    PGresult *r = row(v);
    char buf[300];
    assert_true(lockinfo_describe(r, 0, 1, buf, sizeof buf));
    assert_string_equal(buf, "pid 4242, role bob, application_name \"psql\", client 10.0.0.5, "
                             "backend started 2026-12-04 02:00:00 UTC");
    PQclear(r);
}

static void test_hidden_and_socket(void **state)
{
    char buf[300];
    const char *hidden[6] = {"f", "7", "eve", "x", NULL, NULL};
    PGresult *r = row(hidden);
    assert_true(lockinfo_describe(r, 0, 1, buf, sizeof buf));
    assert_string_equal(buf, "pid 7, role eve, application_name \"x\", client hidden, "
                             "backend started hidden");
    PQclear(r);
    const char *sock[6] = {"f", "8", "eve", "", NULL, "2026-12-04 02:00:00 UTC"};
    r = row(sock);
    assert_true(lockinfo_describe(r, 0, 1, buf, sizeof buf));
    assert_non_null(strstr(buf, "client local socket"));
    PQclear(r);
}

static void test_no_holder(void **state)
{
    char buf[300];
    const char *none[6] = {"t", NULL, NULL, NULL, NULL, NULL};
    PGresult *r = row(none);
    assert_false(lockinfo_describe(r, 0, 1, buf, sizeof buf));
    assert_string_equal(buf, "unknown session");
    assert_false(lockinfo_describe(r, 1, 1, buf, sizeof buf)); /* no such row */
    assert_false(lockinfo_describe(r, 0, 3, buf, sizeof buf)); /* too few columns */
    assert_false(lockinfo_describe(NULL, 0, 0, buf, sizeof buf));
    char tiny[8];
    const char *v[6] = {"f", "4242", "bob", "psql", "10.0.0.5", "2026-12-04 02:00:00 UTC"};
    PQclear(r);
    r = row(v);
    assert_true(lockinfo_describe(r, 0, 1, tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1); /* cut, terminated */
    PQclear(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visible_holder),
        cmocka_unit_test(test_hidden_and_socket),
        cmocka_unit_test(test_no_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
