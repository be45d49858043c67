/* test_dsn.c: a connection string libpq cannot use is described without a
 * piece of it; its source is named; the password is masked in messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dsn.h"

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static const char *url_env(const char *name)
{
    return strcmp(name, "DATABASE_URL") == 0 ? "postgresql://u:se%cret@h/db" : NULL;
}

/* Each bad string: rejected, and the reason quotes none of its secret part. */
static void test_check_never_quotes(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"postgresql://u:se%cret@h/db", "se%c"},
        {"host=h password=se cret", "cret"},
        {"host=h password='secret", "secret"},
        {"host=h sekret=topsecret", "topsecret"},
        {"postgresql://u:secret@h/db?x=topsecret", "topsecret"},
        {"postgresql://u:sec@ret@h/db", "ret"},
        {"postgresql://u:sec/ret@h/db", "sec"},
        {"postgresql://u:qz%00qz@h/db", "qz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[300] = "";
        assert_false(dsn_check(bad[i][0], why, sizeof why));
        assert_true(why[0] != '\0');
        if (strstr(why, bad[i][1]))
            fail_msg("%s: the reason \"%s\" quotes \"%s\"", bad[i][0], why, bad[i][1]);
    }
    char why[300];
    assert_true(dsn_check("", why, sizeof why));
    assert_true(dsn_check("postgresql://u:se%25cret@h:5432,h2:5433/db", why, sizeof why));
    assert_true(dsn_check("host=/tmp dbname=x password='a b'", why, sizeof why));
    assert_true(dsn_check("postgresql://user%40azure:p%40ss@h/db", why, sizeof why));
}

static void test_resolve_names_source(void **state)
{
    (void)state;
    char err[512];
    const char *dsn;
    assert_false(dsn_resolve("host=x password=se cret", NULL, no_env, &dsn, err, sizeof err));
    assert_non_null(strstr(err, "from -d "));
    assert_null(strstr(err, "cret"));
    assert_false(dsn_resolve(NULL, NULL, url_env, &dsn, err, sizeof err));
    assert_non_null(strstr(err, "DATABASE_URL"));
    assert_non_null(strstr(err, "%25")); /* what to fix */
    assert_null(strstr(err, "se%c"));
    assert_false(dsn_resolve(NULL, "a b", url_env, &dsn, err, sizeof err));
    assert_non_null(strstr(err, "dsn in the configuration"));
    assert_true(dsn_resolve(NULL, NULL, no_env, &dsn, err, sizeof err));
    assert_string_equal(dsn, "");
    DsnSource src;
    assert_string_equal(dsn_pick_source(NULL, NULL, url_env, &src), "postgresql://u:se%cret@h/db");
    assert_int_equal(src, DSN_SRC_DATABASE_URL);
}

static void test_scrub(void **state)
{
    (void)state;
    char msg[128];
    snprintf(msg, sizeof msg, "FATAL: user x password s3cr3t! failed (s3cr3t!)");
    dsn_scrub("postgresql://x:s3cr3t%21@h/db", msg, sizeof msg);
    assert_string_equal(msg, "FATAL: user x password **** failed (****)");
    snprintf(msg, sizeof msg, "bad: host=h password=pw");
    dsn_scrub("host=h password=pw", msg, sizeof msg);
    assert_string_equal(msg, "bad: ****");
    /* a short password near the end of a full buffer: cut, never overflow */
    char small[8];
    snprintf(small, sizeof small, "abcdefx");
    dsn_scrub("host=h password=x", small, sizeof small);
    assert_true(strlen(small) < sizeof small);
    assert_null(strchr(small, 'x'));
    snprintf(msg, sizeof msg, "nothing to hide");
    dsn_scrub("", msg, sizeof msg);
    assert_string_equal(msg, "nothing to hide");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_never_quotes),
        cmocka_unit_test(test_resolve_names_source),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
