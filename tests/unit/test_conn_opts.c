/* test_conn_opts.c: the daemon's connection parameters: our keepalive and
 * tcp_user_timeout defaults only where the DSN sets none, host lists rotated
 * together with their ports, unparseable DSNs passed on whole, and the
 * SQLSTATEs that make the daemon reconnect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conn_opts.h"

static const char *val(const ConnOpts *co, const char *key)
{
    const char *v = NULL;
    for (int i = 0; co->keys[i]; i++)
        if (strcmp(co->keys[i], key) == 0)
            v = co->vals[i];
    return v;
}

static void test_defaults_added(void **state)
{
    (void)state;
    ConnOpts co;
    conn_opts_build(&co, "host=/tmp dbname=x", 0);
    assert_int_equal(co.expand, 0);
    assert_string_equal(val(&co, "host"), "/tmp");
    assert_string_equal(val(&co, "keepalives_idle"), "5");
    assert_string_equal(val(&co, "tcp_user_timeout"), "20000");
    conn_opts_free(&co);
}

static void test_dsn_wins(void **state)
{
    (void)state;
    ConnOpts co;
    conn_opts_build(&co, "postgresql://h:1/db?keepalives_idle=60&tcp_user_timeout=0", 0);
    assert_string_equal(val(&co, "keepalives_idle"), "60");
    assert_string_equal(val(&co, "tcp_user_timeout"), "0");
    assert_string_equal(val(&co, "keepalives_count"), "3");
    assert_string_equal(val(&co, "dbname"), "db");
    conn_opts_free(&co);
}

static void test_hosts_rotate_with_ports(void **state)
{
    (void)state;
    ConnOpts co;
    conn_opts_build(&co, "host=a,b,c port=1,2,3 target_session_attrs=read-write", 1);
    assert_string_equal(val(&co, "host"), "b,c,a");
    assert_string_equal(val(&co, "port"), "2,3,1");
    assert_string_equal(val(&co, "target_session_attrs"), "read-write");
    conn_opts_free(&co);
    conn_opts_build(&co, "host=a,b port=5432", 5);
    assert_string_equal(val(&co, "host"), "b,a");
    assert_string_equal(val(&co, "port"), "5432");
    conn_opts_free(&co);
    conn_opts_build(&co, "host=a,b", 2);
    assert_string_equal(val(&co, "host"), "a,b");
    conn_opts_free(&co);
}

static void test_unparseable_passed_whole(void **state)
{
    (void)state;
    ConnOpts co;
    conn_opts_build(&co, "host='unterminated", 0);
    assert_int_equal(co.expand, 1);
    assert_string_equal(val(&co, "dbname"), "host='unterminated");
    assert_string_equal(co.keys[0], "keepalives"); /* before dbname, so a DSN would win */
    conn_opts_free(&co);
}

static void test_reconnect_codes(void **state)
{
    (void)state;
    assert_true(conn_opts_must_reconnect("25006"));
    assert_true(conn_opts_must_reconnect("57P01"));
    assert_true(conn_opts_must_reconnect("57P03"));
    assert_false(conn_opts_must_reconnect("23505"));
    assert_false(conn_opts_must_reconnect(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_added),
        cmocka_unit_test(test_dsn_wins),
        cmocka_unit_test(test_hosts_rotate_with_ports),
        cmocka_unit_test(test_unparseable_passed_whole),
        cmocka_unit_test(test_reconnect_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
