/* test_argv.c: the command splitter (POSIX shell quoting, no expansion) and
 * the `environment` list splitter, edge cases spelled out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "argv.h"

/* expect_split splits cmd and compares with the NULL-terminated want. */
static void expect_split(const char *cmd, const char *const *want)
{
    char err[256] = "";
    char **got = argv_split(cmd, err, sizeof err);
    if (!got)
        fail_msg("\"%s\" was refused: %s", cmd, err);
    size_t i = 0;
    for (; want[i] && got[i]; i++)
        if (strcmp(want[i], got[i]) != 0)
            fail_msg("\"%s\" word %zu: want \"%s\", got \"%s\"", cmd, i, want[i], got[i]);
    if (want[i] || got[i])
        fail_msg("\"%s\": want %s words", cmd, want[i] ? "more" : "fewer");
    argv_free(got);
}

static void expect_split_error(const char *cmd, const char *want_err)
{
    char err[256] = "";
    char **got = argv_split(cmd, err, sizeof err);
    if (got) {
        argv_free(got);
        fail_msg("\"%s\" was accepted", cmd);
    }
    assert_string_equal(err, want_err);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_split_plain(void **state)
{
    (void)state;
    expect_split("/bin/true", WORDS("/bin/true"));
    expect_split("  a \t b\n c  ", WORDS("a", "b", "c"));
    expect_split(".venv/bin/python -m rv.worker", WORDS(".venv/bin/python", "-m", "rv.worker"));
}

static void test_split_quotes(void **state)
{
    (void)state;
    expect_split("echo 'a b' \"c d\"", WORDS("echo", "a b", "c d"));
    expect_split("echo 'it''s' a'b'\"c\"d", WORDS("echo", "its", "abcd"));
    expect_split("echo '' \"\"", WORDS("echo", "", ""));
    expect_split("echo 'a \\ \" $x'", WORDS("echo", "a \\ \" $x"));
    /* inside double quotes a backslash escapes only " \ $ ` and newline */
    expect_split("echo \"a\\\"b\\\\c\\$d\\`e\\nf\\'g\"", WORDS("echo", "a\"b\\c$d`e\\nf\\'g"));
    expect_split("echo \"a\\\nb\"", WORDS("echo", "ab"));
    expect_split("echo \"x'y\"", WORDS("echo", "x'y"));
}

static void test_split_backslash(void **state)
{
    (void)state;
    expect_split("echo a\\ b \\'c\\\" \\\\", WORDS("echo", "a b", "'c\"", "\\"));
    expect_split("echo a\\\nb", WORDS("echo", "ab"));
    expect_split("echo a \\\n b", WORDS("echo", "a", "b"));
    expect_split("echo \\$HOME", WORDS("echo", "$HOME"));
}

static void test_split_no_expansion(void **state)
{
    (void)state;
    expect_split("echo $HOME ~ *.c `id` $(id) a|b > out ; x &",
                 WORDS("echo", "$HOME", "~", "*.c", "`id`", "$(id)", "a|b", ">", "out", ";", "x",
                       "&"));
    expect_split("echo # not a comment", WORDS("echo", "#", "not", "a", "comment"));
}

static void test_split_errors(void **state)
{
    (void)state;
    expect_split_error("", "empty command");
    expect_split_error("  \t\n ", "empty command");
    expect_split_error("\\\n", "empty command");
    expect_split_error("echo 'abc", "unbalanced single quote (opened at character 6)");
    expect_split_error("echo \"abc", "unbalanced double quote (opened at character 6)");
    expect_split_error("echo \"a\\\"", "unbalanced double quote (opened at character 6)");
    expect_split_error("echo abc\\", "the command ends with a lone backslash");
    argv_free(NULL);
}

static void expect_env(const char *value, const char *const *want)
{
    char err[256] = "", **got;
    if (!env_list_split(value, &got, err, sizeof err))
        fail_msg("\"%s\" was refused: %s", value, err);
    size_t i = 0;
    for (; want[i] && got && got[i]; i++)
        assert_string_equal(got[i], want[i]);
    assert_null(want[i]);
    assert_true(!got || !got[i]);
    argv_free(got);
}

static void expect_env_error(const char *value, const char *want_err)
{
    char err[256] = "", **got = (char **)1;
    assert_false(env_list_split(value, &got, err, sizeof err));
    assert_null(got);
    assert_string_equal(err, want_err);
}

static void test_env_list(void **state)
{
    (void)state;
    expect_env("RUN_FILTER_ID=42, LOG_LEVEL=info, GREETING=\"a, b\"",
               WORDS("RUN_FILTER_ID=42", "LOG_LEVEL=info", "GREETING=a, b"));
    expect_env("  A=1  ,B=2,", WORDS("A=1", "B=2"));
    expect_env("A=,B=\"\",C=\" x \"", WORDS("A=", "B=", "C= x "));
    expect_env("Q=\"say \\\"hi\\\" \\\\ ok\"", WORDS("Q=say \"hi\" \\ ok"));
    expect_env("U=a=b, V='x'", WORDS("U=a=b", "V='x'"));
    expect_env("_x9=1", WORDS("_x9=1"));
    char err[8], **got = (char **)1;
    assert_true(env_list_split("", &got, err, sizeof err));
    assert_null(got);
    assert_true(env_list_split(" , ,", &got, err, sizeof err));
    assert_null(got);
}

static void test_env_list_errors(void **state)
{
    (void)state;
    expect_env_error("A=1, B=\"x, y", "unbalanced double quote in item 2");
    expect_env_error("A=1, JUNK", "\"JUNK\" is not KEY=VALUE");
    expect_env_error("1A=x", "bad variable name in \"1A=x\" (must match [A-Za-z_][A-Za-z0-9_]*)");
    expect_env_error("A-B=x", "bad variable name in \"A-B=x\" (must match [A-Za-z_][A-Za-z0-9_]*)");
    expect_env_error("A =x", "bad variable name in \"A =x\" (must match [A-Za-z_][A-Za-z0-9_]*)");
    expect_env_error("=x", "bad variable name in \"=x\" (must match [A-Za-z_][A-Za-z0-9_]*)");
    expect_env_error("A=1, B=2, A=3", "variable A is given twice");
}

static void test_env_name_valid(void **state)
{
    (void)state;
    assert_true(env_name_valid("A", 1));
    assert_true(env_name_valid("_a1", 3));
    assert_true(env_name_valid("AB=junk", 2));
    assert_false(env_name_valid("", 0));
    assert_false(env_name_valid("1A", 2));
    assert_false(env_name_valid("A.B", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_plain),     cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_split_backslash), cmocka_unit_test(test_split_no_expansion),
        cmocka_unit_test(test_split_errors),    cmocka_unit_test(test_env_list),
        cmocka_unit_test(test_env_list_errors), cmocka_unit_test(test_env_name_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
