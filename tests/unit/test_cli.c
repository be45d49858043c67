/* test_cli.c: the DSN order of SPEC section 6 with an injected getenv, option
 * parsing after the subcommand (bounds, error texts, positions), cli_long_arg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

/* ---- dsn_pick ---- */

/* The fake environment: NULL means unset. */
static const char *env_pgwake_dsn, *env_database_url, *env_postgres_url;
static int env_other_lookups; /* lookups of any other name */

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "PGWAKE_DSN") == 0)
        return env_pgwake_dsn;
    if (strcmp(name, "DATABASE_URL") == 0)
        return env_database_url;
    if (strcmp(name, "POSTGRES_URL") == 0)
        return env_postgres_url;
    env_other_lookups++;
    return "host=from-another-variable";
}

/* Every combination of the five sources being unset, empty or set: the first
 * non-empty one in SPEC order wins, and an empty one counts as unset. */
static void test_dsn_pick_order(void **state)
{
    (void)state;
    static const char *const names[5] = {"-d", "PGWAKE_DSN", "config dsn", "DATABASE_URL",
                                         "POSTGRES_URL"};
    static const char *const values[5] = {"dsn-opt", "dsn-pgwake-env", "dsn-config",
                                          "dsn-database-url", "dsn-postgres-url"};
    int combos = 1;
    for (int i = 0; i < 5; i++)
        combos *= 3;
    for (int k = 0; k < combos; k++) {
        const char *src[5];
        const char *want = "";
        int rest = k;
        for (int i = 0; i < 5; i++, rest /= 3) {
            src[i] = rest % 3 == 0 ? NULL : rest % 3 == 1 ? "" : values[i];
            if (!*want && src[i] && *src[i])
                want = src[i];
        }
        env_pgwake_dsn = src[1];
        env_database_url = src[3];
        env_postgres_url = src[4];
        env_other_lookups = 0;
        const char *got = dsn_pick(src[0], src[2], fake_getenv);
        if (!got || strcmp(got, want) != 0) {
            char set[200] = "";
            for (int i = 0; i < 5; i++)
                snprintf(set + strlen(set), sizeof set - strlen(set), " %s=%s", names[i],
                         src[i] ? src[i] : "(unset)");
            fail_msg("with%s: want \"%s\", got \"%s\"", set, want, got ? got : "NULL");
        }
        assert_int_equal(env_other_lookups, 0);
    }
}

static void test_dsn_pick_spelled_out(void **state)
{
    (void)state;
    env_pgwake_dsn = env_database_url = env_postgres_url = NULL;
    /* Nothing anywhere: libpq's own defaults (PGHOST, ...), never another variable. */
    assert_string_equal(dsn_pick(NULL, NULL, fake_getenv), "");
    assert_string_equal(dsn_pick("", "", fake_getenv), "");
    assert_int_equal(env_other_lookups, 0);
    /* The config's dsn sits between PGWAKE_DSN and DATABASE_URL. */
    env_database_url = "db";
    env_postgres_url = "pg";
    assert_string_equal(dsn_pick(NULL, "conf", fake_getenv), "conf");
    assert_string_equal(dsn_pick(NULL, NULL, fake_getenv), "db");
    env_database_url = "";
    assert_string_equal(dsn_pick(NULL, NULL, fake_getenv), "pg");
    env_pgwake_dsn = "pgwake";
    assert_string_equal(dsn_pick(NULL, "conf", fake_getenv), "pgwake");
    assert_string_equal(dsn_pick("opt", "conf", fake_getenv), "opt");
    /* The value is returned as given, spaces and all. */
    assert_string_equal(dsn_pick(" ", "conf", fake_getenv), " ");
    env_pgwake_dsn = env_database_url = env_postgres_url = NULL;
}

/* ---- cli_parse ---- */

static CliOpts O;          /* the last parse; its args freed by the next or by teardown */
static char ERR[ERR_LEN];  /* the last parse's error */

/* getopt_reset wipes getopt's hidden state (glibc keeps a pointer into the
 * last cluster of short options), so each parse starts clean. glibc fixes the
 * argument ordering at that reinitialisation, from this optstring: it must
 * start with '+' as cli_parse's does, or later parses permute argv. */
static void getopt_reset(void)
{
    static char name[] = "reset";
    static char *argv[] = {name, NULL};
    optind = 0;
    opterr = 0;
    while (getopt(1, argv, "+") != -1)
        ;
}

static bool parse_argv(bool reset, const char *const *args)
{
    static char *argv[32];
    int argc = 0;
    while (args[argc]) {
        assert_true(argc < 31);
        argv[argc] = (char *)args[argc]; /* getopt with '+' neither writes nor permutes */
        argc++;
    }
    argv[argc] = NULL;
    free(O.args);
    memset(&O, 0, sizeof O);
    strcpy(ERR, "(untouched)");
    if (reset)
        getopt_reset();
    return cli_parse(argc, argv, &O, ERR, sizeof ERR);
}

#define PARSE(...) parse_argv(true, (const char *const[]){__VA_ARGS__, NULL})

static int teardown(void **state)
{
    (void)state;
    free(O.args);
    memset(&O, 0, sizeof O);
    log_level = LOG_INFO;
    return 0;
}

/* expect_args compares the positional arguments left by the last parse. */
static void expect_args(const char *const *want)
{
    int n = 0;
    while (want[n])
        n++;
    if (O.nargs != n)
        fail_msg("want %d positional arguments, got %d (first \"%s\")", n, O.nargs,
                 O.nargs ? O.args[0] : "");
    for (int i = 0; i < n; i++)
        assert_string_equal(O.args[i], want[i]);
}

#define ARGS(...) expect_args((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS() expect_args((const char *const[]){NULL})

static void expect_parse_error(const char *want)
{
    assert_string_equal(ERR, want);
}

static void test_cli_defaults(void **state)
{
    (void)state;
    assert_true(PARSE("runs"));
    assert_null(O.conf_path);
    assert_null(O.dsn);
    assert_false(O.json);
    assert_false(O.status);
    assert_false(O.help);
    assert_int_equal(O.limit, 20);
    assert_int_equal(O.priority, 0);
    assert_int_equal(O.run_id, 0);
    assert_int_equal(O.max_attempts, 5);
    NO_ARGS();
    assert_int_equal(log_level, LOG_INFO);
}

static void test_cli_options_first(void **state)
{
    (void)state;
    assert_true(PARSE("enqueue", "-c", "/etc/p.conf", "-d", "host=x", "company_research", "{}"));
    assert_string_equal(O.conf_path, "/etc/p.conf");
    assert_string_equal(O.dsn, "host=x");
    ARGS("company_research", "{}");

    /* Long forms, with a space or an '=', and attached short values. */
    assert_true(PARSE("runs", "--config", "a.conf", "--dsn=host=y"));
    assert_string_equal(O.conf_path, "a.conf");
    assert_string_equal(O.dsn, "host=y");
    assert_true(PARSE("runs", "--config=b.conf", "--dsn", "host=z"));
    assert_string_equal(O.conf_path, "b.conf");
    assert_string_equal(O.dsn, "host=z");
    assert_true(PARSE("runs", "-cc.conf", "-dpostgres://u@h/db"));
    assert_string_equal(O.conf_path, "c.conf");
    assert_string_equal(O.dsn, "postgres://u@h/db");
    /* The last of a repeated option wins. */
    assert_true(PARSE("runs", "-d", "one", "-d", "two"));
    assert_string_equal(O.dsn, "two");
    /* A value may itself start with '-', and may be empty. */
    assert_true(PARSE("runs", "-d", "-x", "-c", ""));
    assert_string_equal(O.dsn, "-x");
    assert_string_equal(O.conf_path, "");
    /* Flags. */
    assert_true(PARSE("status", "--json", "-h"));
    assert_true(O.json);
    assert_true(O.help);
    assert_false(O.status);
    assert_true(PARSE("migrate", "--status", "--help"));
    assert_true(O.status);
    assert_true(O.help);
    assert_false(O.json);
}

/* Options after a first option and between positional arguments. */
static void test_cli_options_between(void **state)
{
    (void)state;
    assert_true(PARSE("enqueue", "-d", "x", "s", "-c", "f", "{}"));
    assert_string_equal(O.dsn, "x");
    assert_string_equal(O.conf_path, "f");
    ARGS("s", "{}");
    assert_true(PARSE("enqueue", "-v", "s", "{}", "--priority", "3", "--run", "9"));
    assert_int_equal(O.priority, 3);
    assert_int_equal(O.run_id, 9);
    ARGS("s", "{}");
    /* A negative value is the option's, not an option. */
    assert_true(PARSE("enqueue", "--priority", "-5", "s"));
    assert_int_equal(O.priority, -5);
    ARGS("s");
    /* "-" and "" are positional arguments. */
    assert_true(PARSE("notify", "-v", "-", ""));
    ARGS("-", "");
    /* "--" ends the options. */
    assert_true(PARSE("enqueue", "-v", "--", "-d", "x"));
    assert_null(O.dsn);
    ARGS("-d", "x");
    assert_true(PARSE("enqueue", "-d", "x", "--"));
    assert_string_equal(O.dsn, "x");
    NO_ARGS();
}

/* cli_parse's own comment and SPEC section 6 ("Options follow the subcommand"):
 * options may come after the positional arguments, also when one comes first. */
static void test_cli_options_after_first_positional(void **state)
{
    (void)state;
    assert_true(PARSE("enqueue", "s", "-d", "x"));
    assert_string_equal(O.dsn, "x");
    ARGS("s");
    assert_true(PARSE("enqueue", "s", "{}", "-d", "x", "--priority", "3"));
    assert_string_equal(O.dsn, "x");
    assert_int_equal(O.priority, 3);
    ARGS("s", "{}");
    assert_true(PARSE("notify", "*", "-c", "f"));
    assert_string_equal(O.conf_path, "f");
    ARGS("*");
    assert_true(PARSE("enqueue", "s", "--", "-d"));
    assert_null(O.dsn);
    ARGS("s", "-d");
    assert_false(PARSE("runs", "s", "--limit", "0"));
    expect_parse_error("--limit wants a number from 1 to 100000, not \"0\"");
    assert_false(PARSE("runs", "s", "-x"));
    expect_parse_error("unknown option \"-x\"");
}

static void test_cli_verbose(void **state)
{
    (void)state;
    log_level = LOG_INFO;
    assert_true(PARSE("run", "-v"));
    assert_int_equal(log_level, LOG_DEBUG);
    log_level = LOG_INFO;
    assert_true(PARSE("run", "-vv"));
    assert_int_equal(log_level, LOG_NOISE);
    log_level = LOG_INFO;
    assert_true(PARSE("run", "-v", "--verbose", "-vvvv", "-v"));
    assert_int_equal(log_level, LOG_NOISE); /* capped */
    log_level = LOG_INFO;
    assert_true(PARSE("run", "-vc", "f"));
    assert_int_equal(log_level, LOG_DEBUG);
    assert_string_equal(O.conf_path, "f");
}

typedef struct NumCase {
    const char *opt; /* long option */
    const char *text;
    bool ok;
    long value; /* when ok */
} NumCase;

static long num_field(const char *opt)
{
    if (strcmp(opt, "--limit") == 0)
        return O.limit;
    if (strcmp(opt, "--priority") == 0)
        return O.priority;
    if (strcmp(opt, "--run") == 0)
        return O.run_id;
    return O.max_attempts;
}

static const char *num_error(const char *opt)
{
    if (strcmp(opt, "--limit") == 0)
        return "--limit wants a number from 1 to 100000, not \"%s\"";
    if (strcmp(opt, "--priority") == 0)
        return "--priority wants an integer, not \"%s\"";
    if (strcmp(opt, "--run") == 0)
        return "--run wants a run id, not \"%s\"";
    return "--max-attempts wants a number from 1, not \"%s\"";
}

static void test_cli_numbers(void **state)
{
    (void)state;
    static const NumCase cases[] = {
        {"--limit", "1", true, 1},
        {"--limit", "20", true, 20},
        {"--limit", "100000", true, 100000},
        {"--limit", "007", true, 7},
        {"--limit", "0", false, 0},
        {"--limit", "100001", false, 0},
        {"--limit", "-1", false, 0},
        {"--limit", "", false, 0},
        {"--limit", "abc", false, 0},
        {"--limit", "5x", false, 0},
        {"--limit", "5 ", false, 0},
        {"--limit", "1e3", false, 0},
        {"--limit", "0x10", false, 0},
        {"--limit", "1.5", false, 0},
        {"--limit", "99999999999999999999", false, 0},
        {"--priority", "0", true, 0},
        {"--priority", "-7", true, -7},
        {"--priority", "2147483647", true, 2147483647L},
        {"--priority", "-2147483647", true, -2147483647L},
        {"--priority", "2147483648", false, 0},
        {"--priority", "-2147483648", false, 0}, /* INT_MIN is left out on purpose */
        {"--priority", "high", false, 0},
        {"--priority", "", false, 0},
        {"--priority", "1.0", false, 0},
        {"--run", "1", true, 1},
        {"--run", "9223372036854775807", true, LONG_MAX},
        {"--run", "0", false, 0},
        {"--run", "-1", false, 0},
        {"--run", "9223372036854775808", false, 0},
        {"--run", "r1", false, 0},
        {"--run", "", false, 0},
        {"--max-attempts", "1", true, 1},
        {"--max-attempts", "1000000", true, 1000000},
        {"--max-attempts", "0", false, 0},
        {"--max-attempts", "1000001", false, 0},
        {"--max-attempts", "-3", false, 0},
        {"--max-attempts", "many", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const NumCase *c = &cases[i];
        char eq[64];
        snprintf(eq, sizeof eq, "%s=%s", c->opt, c->text);
        for (int form = 0; form < 2; form++) {
            bool ok = form == 0 ? PARSE("enqueue", c->opt, c->text, "s") : PARSE("enqueue", eq, "s");
            if (ok != c->ok)
                fail_msg("%s \"%s\": want %s, got %s (%s)", c->opt, c->text,
                         c->ok ? "accepted" : "refused", ok ? "accepted" : "refused", ERR);
            if (ok) {
                assert_int_equal(num_field(c->opt), c->value);
                ARGS("s");
            } else {
                char want[ERR_LEN];
                snprintf(want, sizeof want, num_error(c->opt), c->text);
                expect_parse_error(want);
            }
        }
    }
    /* The first bad option stops the parse. */
    assert_false(PARSE("enqueue", "--limit", "0", "--priority", "x"));
    expect_parse_error("--limit wants a number from 1 to 100000, not \"0\"");
}

static void test_cli_missing_values(void **state)
{
    (void)state;
    assert_false(PARSE("runs", "-c"));
    expect_parse_error("option -c needs a value");
    assert_false(PARSE("runs", "-d"));
    expect_parse_error("option -d needs a value");
    assert_false(PARSE("runs", "-v", "-c"));
    expect_parse_error("option -c needs a value");
    assert_false(PARSE("runs", "-d", "x", "s", "-d"));
    expect_parse_error("option -d needs a value");
    /* The long spellings: the text names the option ("--config" holds "-c"). */
    assert_false(PARSE("runs", "--config"));
    assert_non_null(strstr(ERR, "-c"));
    assert_non_null(strstr(ERR, "needs a value"));
    assert_false(PARSE("runs", "--dsn"));
    assert_non_null(strstr(ERR, "-d"));
    assert_non_null(strstr(ERR, "needs a value"));
}

/* A value-taking long option given last, without its value, is missing a
 * value, not unknown: "unknown option \"--limit\"" sends the user looking for a typo. */
static void test_cli_missing_long_values(void **state)
{
    (void)state;
    static const char *const opts[] = {"--limit", "--priority", "--run", "--max-attempts"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        assert_false(PARSE("enqueue", opts[i]));
        if (!strstr(ERR, opts[i]) || !strstr(ERR, "needs a value"))
            fail_msg("\"%s\" without a value: want \"option %s needs a value\", got \"%s\"",
                     opts[i], opts[i], ERR);
    }
}

static void test_cli_unknown_options(void **state)
{
    (void)state;
    assert_false(PARSE("runs", "-x"));
    expect_parse_error("unknown option \"-x\"");
    assert_false(PARSE("runs", "--bogus"));
    expect_parse_error("unknown option \"--bogus\"");
    assert_false(PARSE("runs", "--bogus=3"));
    expect_parse_error("unknown option \"--bogus=3\"");
    assert_false(PARSE("runs", "-v", "s", "--jsn"));
    expect_parse_error("unknown option \"--jsn\"");
    assert_false(PARSE("runs", "-D", "x"));
    expect_parse_error("unknown option \"-D\"");
    assert_false(PARSE("runs", "---x"));
    expect_parse_error("unknown option \"---x\"");
    /* A flag given a value is refused and named. */
    assert_false(PARSE("status", "--json=1"));
    assert_non_null(strstr(ERR, "--json"));
    /* The unknown letter last in a cluster: the cluster or the letter is named. */
    assert_false(PARSE("runs", "-vx"));
    if (strcmp(ERR, "unknown option \"-x\"") != 0 && strcmp(ERR, "unknown option \"-vx\"") != 0)
        fail_msg("-vx: got \"%s\"", ERR);
}

/* The unknown letter first in a cluster: getopt has not moved past the
 * argument yet, so argv[optind - 1] is the word before it. */
static void test_cli_unknown_in_cluster(void **state)
{
    (void)state;
    assert_false(PARSE("runs", "-xv"));
    expect_parse_error("unknown option \"-x\"");
    assert_false(PARSE("runs", "-d", "x", "-qv"));
    expect_parse_error("unknown option \"-q\"");
}

/* cli_parse resets getopt itself (optind = 1), so it means to be callable
 * twice; after an error inside a cluster glibc still holds the rest of that
 * cluster unless optind is set to 0. No getopt_reset() here, on purpose. */
static void test_cli_parse_twice(void **state)
{
    (void)state;
    assert_false(parse_argv(true, (const char *const[]){"runs", "-xv", NULL}));
    log_level = LOG_INFO;
    bool ok = parse_argv(false, (const char *const[]){"runs", "-c", NULL});
    if (ok)
        fail_msg("second parse of \"runs -c\" accepted (log_level now %d)", (int)log_level);
    expect_parse_error("option -c needs a value");
    assert_int_equal(log_level, LOG_INFO);
}

/* ---- cli_long_arg ---- */

static void test_cli_long_arg(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long min, max;
        bool ok;
        long value;
    } cases[] = {
        {"0", 0, 0, true, 0},
        {"-0", 0, 0, true, 0},
        {"+5", 1, 10, true, 5},
        {"1", 1, 10, true, 1},
        {"10", 1, 10, true, 10},
        {"0010", 1, 10, true, 10},
        {"0", 1, 10, false, 0},
        {"11", 1, 10, false, 0},
        {"-1", -1, -1, true, -1},
        {"-2", -1, 5, false, 0},
        {"9223372036854775807", LONG_MIN, LONG_MAX, true, LONG_MAX},
        {"-9223372036854775808", LONG_MIN, LONG_MAX, true, LONG_MIN},
        {"9223372036854775808", LONG_MIN, LONG_MAX, false, 0},
        {"-9223372036854775809", LONG_MIN, LONG_MAX, false, 0},
        {"", LONG_MIN, LONG_MAX, false, 0},
        {"-", LONG_MIN, LONG_MAX, false, 0},
        {"+", LONG_MIN, LONG_MAX, false, 0},
        {"5 ", LONG_MIN, LONG_MAX, false, 0},
        {"5\n", LONG_MIN, LONG_MAX, false, 0},
        {"5x", LONG_MIN, LONG_MAX, false, 0},
        {"x5", LONG_MIN, LONG_MAX, false, 0},
        {"0x10", LONG_MIN, LONG_MAX, false, 0},
        {"1e3", LONG_MIN, LONG_MAX, false, 0},
        {"1.0", LONG_MIN, LONG_MAX, false, 0},
        {"1,000", LONG_MIN, LONG_MAX, false, 0},
        {"--1", LONG_MIN, LONG_MAX, false, 0},
        {"\xd9\xa1", LONG_MIN, LONG_MAX, false, 0}, /* ARABIC-INDIC DIGIT ONE */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long v = 424242;
        bool ok = cli_long_arg(cases[i].text, cases[i].min, cases[i].max, &v);
        if (ok != cases[i].ok)
            fail_msg("\"%s\" in [%ld, %ld]: want %s", cases[i].text, cases[i].min, cases[i].max,
                     cases[i].ok ? "accepted" : "refused");
        /* A refused text leaves *out alone. */
        assert_int_equal(v, ok ? cases[i].value : 424242);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_dsn_pick_order, teardown),
        cmocka_unit_test_teardown(test_dsn_pick_spelled_out, teardown),
        cmocka_unit_test_teardown(test_cli_defaults, teardown),
        cmocka_unit_test_teardown(test_cli_options_first, teardown),
        cmocka_unit_test_teardown(test_cli_options_between, teardown),
        cmocka_unit_test_teardown(test_cli_options_after_first_positional, teardown),
        cmocka_unit_test_teardown(test_cli_verbose, teardown),
        cmocka_unit_test_teardown(test_cli_numbers, teardown),
        cmocka_unit_test_teardown(test_cli_missing_values, teardown),
        cmocka_unit_test_teardown(test_cli_missing_long_values, teardown),
        cmocka_unit_test_teardown(test_cli_unknown_options, teardown),
        cmocka_unit_test_teardown(test_cli_unknown_in_cluster, teardown),
        cmocka_unit_test_teardown(test_cli_parse_twice, teardown),
        cmocka_unit_test_teardown(test_cli_long_arg, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
