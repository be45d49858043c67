/* test_config.c: the configuration loader against good and bad files in
 * tests/unit/data/config (each bad_X.conf paired with its error in bad_X.err),
 * plus generated files for limits, secrets, the environment and reload diffs.
 * Run from the repository root (tests/run.sh does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "config.h"
#include "config_keys.h"
#include "httpcli.h"

#define DATA "tests/unit/data/config"

static char tmpdir[] = "/tmp/pgwake-test-config-XXXXXX";

/* Variables cfg_load reads; cleared so the host's environment cannot leak in. */
static const char *const env_vars[] = {"HEARTBEAT_MONITOR_ALERT_EMAIL", "SMTP_HOST", "SMTP_PORT",
                                       "SMTP_USER", "SMTP_PASSWORD", "EMAIL_FROM",
                                       "RUNTIME_DIRECTORY", "PGWAKE_CONF", NULL};

static int setup(void **state)
{
    (void)state;
    for (const char *const *v = env_vars; *v; v++)
        unsetenv(*v);
    if (access(DATA, R_OK) != 0) {
        fprintf(stderr, "test_config: run me from the repository root (%s not found)\n", DATA);
        return -1;
    }
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* write_tmp writes text to tmpdir/name with mode; returns the path (static). */
static const char *write_tmp(const char *name, const char *text, mode_t mode)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static Config *load_ok(const char *path)
{
    char err[ERR_LEN];
    Config *cfg = cfg_load(path, err, sizeof err);
    if (!cfg)
        fail_msg("%s did not load: %s", path, err);
    return cfg;
}

/* load_err loads a file that must fail and returns its error (static). */
static const char *load_err(const char *path)
{
    static char err[ERR_LEN];
    Config *cfg = cfg_load(path, err, sizeof err);
    if (cfg) {
        cfg_free(cfg);
        fail_msg("%s loaded, but should not have", path);
    }
    return err;
}

/* load_text writes text as a 0600 file and loads it. */
static Config *load_text(const char *name, const char *text)
{
    return load_ok(write_tmp(name, text, 0600));
}

static const char *err_text(const char *name, const char *text)
{
    return load_err(write_tmp(name, text, 0600));
}

static char *data_dir(void)
{
    char *dir = realpath(DATA, NULL);
    assert_non_null(dir);
    return dir;
}

static void test_defaults(void **state)
{
    (void)state;
    char host[256] = "", *dir = data_dir(), expect[PATH_MAX];
    Config *cfg = load_ok(DATA "/good_minimal.conf");
    gethostname(host, sizeof host - 1);
    assert_string_equal(cfg->dir, dir);
    assert_null(cfg->dsn);
    assert_null(cfg->worker_dsn);
    assert_string_equal(cfg->host, host);
    snprintf(expect, sizeof expect, "%s/logs", dir);
    assert_string_equal(cfg->log_dir, expect);
    assert_int_equal(cfg->log_max_bytes, 50 * 1024 * 1024);
    assert_int_equal(cfg->log_backups, 10);
    assert_string_equal(cfg->http_listen, "127.0.0.1:6464");
    assert_string_equal(cfg->http_host, "127.0.0.1");
    assert_int_equal(cfg->http_port, 6464);
    assert_null(cfg->control_token);
    assert_null(cfg->env_file);
    assert_null(cfg->env_file_vars);
    assert_non_null(strstr(cfg->lock_file, "/pgwake-good_minimal.conf-"));
    assert_int_equal(cfg->recount_interval_ms, 300000);
    assert_int_equal(cfg->maintenance_poll_ms, 5000);
    assert_null(cfg->alerts.email_to);
    assert_null(cfg->alerts.smtp_url);
    assert_int_equal(cfg->alerts.min_interval_ms, 300000);
    assert_int_equal(cfg->alerts.batch_window_ms, 5000);
    assert_int_equal(cfg->alerts.db_down_alert_ms, 30000);
    free(dir);
    cfg_free(cfg);
}

static void test_stage_defaults(void **state)
{
    (void)state;
    Config *cfg = load_ok(DATA "/good_minimal.conf");
    assert_int_equal(cfg->nstages, 1);
    const StageConf *st = cfg->stages;
    assert_string_equal(st->name, "a");
    assert_int_equal(st->line, 1);
    assert_string_equal(st->command, "/bin/true");
    assert_string_equal(st->argv[0], "/bin/true");
    assert_null(st->argv[1]);
    assert_int_equal(st->min_workers, 0);
    assert_int_equal(st->max_workers, 1);
    assert_int_equal(st->max_workers_total, 0);
    assert_int_equal(st->idle_timeout_ms, 60000);
    assert_int_equal(st->lease_ms, 300000);
    assert_int_equal(st->heartbeat_interval_ms, 30000);
    assert_int_equal(st->heartbeat_timeout_ms, 90000);
    assert_int_equal(st->restart_delay_ms, 1000);
    assert_int_equal(st->restart_delay_max_ms, 60000);
    assert_int_equal(st->max_restarts, 5);
    assert_int_equal(st->restart_window_ms, 300000);
    assert_int_equal(st->stop_timeout_ms, 30000);
    assert_int_equal(st->kill_timeout_ms, 5000);
    assert_int_equal(st->memory_limit, 0);
    assert_null(st->user);
    assert_null(st->directory);
    assert_null(st->environment);
    assert_null(st->pending_sql);
    assert_null(st->release_sql);
    assert_int_equal(st->claim_batch, 1);
    cfg_free(cfg);
}

static void test_full_globals(void **state)
{
    (void)state;
    char *dir = data_dir(), expect[PATH_MAX];
    Config *cfg = load_ok(DATA "/good_full.conf");
    assert_string_equal(cfg->dsn, "postgresql:///rv_test");
    assert_string_equal(cfg->worker_dsn, "host=/tmp dbname=rv_test user=worker");
    assert_string_equal(cfg->host, "worker-1");
    snprintf(expect, sizeof expect, "%s/var/log", dir);
    assert_string_equal(cfg->log_dir, expect);
    assert_int_equal(cfg->log_max_bytes, 1536 * 1024);
    assert_int_equal(cfg->log_backups, 3);
    assert_string_equal(cfg->http_listen, "127.0.0.1:7070");
    assert_string_equal(cfg->http_host, "127.0.0.1");
    assert_int_equal(cfg->http_port, 7070);
    assert_null(cfg->control_token); /* "control_token =" leaves it unset */
    snprintf(expect, sizeof expect, "%s/good.env", dir);
    assert_string_equal(cfg->env_file, expect);
    assert_string_equal(cfg->env_file_vars[0], "LOG_FORMAT=json");
    assert_string_equal(cfg->lock_file, "/run/pgwake/test.lock");
    assert_int_equal(cfg->recount_interval_ms, 0);
    assert_int_equal(cfg->maintenance_poll_ms, 250);
    assert_string_equal(cfg->alerts.email_to, "ops@example.com");
    assert_string_equal(cfg->alerts.smtp_url, "smtps://smtp.example.com:465");
    assert_string_equal(cfg->alerts.smtp_user, "alerts");
    assert_null(cfg->alerts.smtp_password);
    assert_string_equal(cfg->alerts.email_from, "pgwake@example.com");
    assert_string_equal(cfg->alerts.webhook_url, "https://hooks.example.com/T000/B000");
    assert_int_equal(cfg->alerts.min_interval_ms, 600000);
    assert_int_equal(cfg->alerts.batch_window_ms, 2500);
    assert_int_equal(cfg->alerts.db_down_alert_ms, 60000);
    free(dir);
    cfg_free(cfg);
}

static void test_full_stage(void **state)
{
    (void)state;
    static const char *const argv[] = {".venv/bin/python", "-m",
                                       "rv_agentic.workers.company_research_runner", "--name",
                                       "Company Research", "--dry-run=no", NULL};
    Config *cfg = load_ok(DATA "/good_full.conf");
    const StageConf *st = cfg_stage(cfg, "company_research");
    assert_non_null(st);
    assert_int_equal(st->line, 27);
    for (int i = 0; argv[i] || st->argv[i]; i++)
        assert_string_equal(st->argv[i], argv[i]);
    assert_int_equal(st->min_workers, 1);
    assert_int_equal(st->max_workers, 4);
    assert_int_equal(st->max_workers_total, 8);
    assert_int_equal(st->idle_timeout_ms, 120000);
    assert_int_equal(st->lease_ms, 600000);
    assert_int_equal(st->heartbeat_interval_ms, 15000);
    assert_int_equal(st->heartbeat_timeout_ms, 45000);
    assert_int_equal(st->restart_delay_ms, 500);
    assert_int_equal(st->restart_delay_max_ms, 120000);
    assert_int_equal(st->max_restarts, 0);
    assert_int_equal(st->restart_window_ms, 600000);
    assert_int_equal(st->stop_timeout_ms, 20000);
    assert_int_equal(st->kill_timeout_ms, 3000);
    assert_int_equal(st->memory_limit, 1024LL * 1024 * 1024);
    assert_string_equal(st->user, "rv");
    assert_string_equal(st->directory, "/srv/rv");
    assert_string_equal(st->environment[0], "RUN_FILTER_ID=42");
    assert_string_equal(st->environment[1], "LOG_LEVEL=info");
    assert_string_equal(st->environment[2], "GREETING=a, b");
    assert_null(st->environment[3]);
    assert_string_equal(st->pending_sql, "SELECT count(*) FROM pm_pipeline.runs WHERE stage = "
                                         "'company_discovery' AND status = 'pending'");
    assert_string_equal(st->release_sql, "UPDATE pm_pipeline.runs SET status = 'pending', worker_id = "
                                         "NULL WHERE worker_id = $1 AND status = 'leased'");
    assert_int_equal(st->release_sql_line, 52);
    assert_int_equal(st->claim_batch, 10);
    cfg_free(cfg);
}

static void test_stage_order_and_paths(void **state)
{
    (void)state;
    char *dir = data_dir(), expect[PATH_MAX];
    Config *cfg = load_ok(DATA "/good_full.conf");
    assert_int_equal(cfg->nstages, 2);
    assert_string_equal(cfg->stages->name, "company_research");
    assert_string_equal(cfg->stages->next->name, "company_discovery");
    assert_null(cfg->stages->next->next);
    snprintf(expect, sizeof expect, "%s/work", dir);
    assert_string_equal(cfg_stage(cfg, "company_discovery")->directory, expect);
    assert_null(cfg_stage(cfg, "nope"));
    free(dir);
    cfg_free(cfg);
}

/* replace_all replaces every needle in s (in place, s has room: ERR_LEN). */
static void replace_all(char *s, const char *needle, const char *with)
{
    char out[ERR_LEN * 2] = "";
    size_t nl = strlen(needle);
    char *p = s, *hit;
    while (nl && (hit = strstr(p, needle))) {
        strncat(out, p, (size_t)(hit - p));
        strcat(out, with);
        p = hit + nl;
    }
    strcat(out, p);
    snprintf(s, ERR_LEN, "%s", out);
}

/* check_bad_file loads one bad file; true when its error is the expected one. */
static bool check_bad_file(const char *conf, const char *dir)
{
    char errpath[PATH_MAX], expect[ERR_LEN] = "", got[ERR_LEN];
    snprintf(errpath, sizeof errpath, "%.*s.err", (int)(strlen(conf) - 5), conf);
    FILE *f = fopen(errpath, "r");
    if (!f || !fgets(expect, sizeof expect, f)) {
        print_error("%s: no expected error in %s\n", conf, errpath);
        if (f)
            fclose(f);
        return false;
    }
    fclose(f);
    expect[strcspn(expect, "\n")] = '\0';
    snprintf(got, sizeof got, "%s", load_err(conf));
    replace_all(got, conf, "FILE");
    replace_all(got, dir, "DIR");
    if (strcmp(got, expect) == 0)
        return true;
    print_error("%s:\n  expected: %s\n  got:      %s\n", conf, expect, got);
    return false;
}

static void test_bad_files(void **state)
{
    (void)state;
    glob_t g;
    char *dir = data_dir();
    int failed = 0;
    /* git checks files out by the umask; this one must be world-readable */
    assert_int_equal(chmod(DATA "/bad_world_readable.conf", 0644), 0);
    assert_int_equal(glob(DATA "/bad_*.conf", 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++)
        failed += !check_bad_file(g.gl_pathv[i], dir);
    assert_true(g.gl_pathc >= 14);
    globfree(&g);
    assert_int_equal(glob(DATA "/bad_*.err", 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char conf[PATH_MAX];
        snprintf(conf, sizeof conf, "%.*s.conf", (int)(strlen(g.gl_pathv[i]) - 4), g.gl_pathv[i]);
        if (access(conf, R_OK) != 0 && ++failed)
            print_error("%s has no %s\n", g.gl_pathv[i], conf);
    }
    globfree(&g);
    free(dir);
    assert_int_equal(failed, 0);
}

/* line_of returns "KEY = " + 'x' padding making a line of exactly len bytes. */
static char *line_of(const char *key, size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    int n = snprintf(s, len + 1, "%s = ", key);
    memset(s + n, 'x', len - (size_t)n);
    s[len] = '\0';
    return s;
}

static void test_line_limit(void **state)
{
    (void)state;
    char text[1024], expect[ERR_LEN];
    char *ok = line_of("pending_sql", 198), *bad = line_of("pending_sql", 199);
    snprintf(text, sizeof text, "[stage:a]\ncommand = /bin/true\n%s\n    and more\n", ok);
    Config *cfg = load_text("limit_ok.conf", text);
    assert_int_equal(strlen(cfg->stages->pending_sql), 198 - 14 + 9);
    cfg_free(cfg);
    /* a long comment is refused too: inih would read its cut-off rest as a key */
    snprintf(text, sizeof text, "[stage:a]\ncommand = /bin/true\n\n;%s\n", bad);
    const char *err = err_text("limit_bad.conf", text);
    snprintf(expect, sizeof expect, "%s/limit_bad.conf:4: [stage:a] line of 200 bytes;", tmpdir);
    assert_true(strncmp(err, expect, strlen(expect)) == 0);
    snprintf(text, sizeof text, "[stage:a]\ncommand = /bin/true\n%s\r\n", bad);
    err = err_text("limit_crlf.conf", text);
    snprintf(expect, sizeof expect, "%s/limit_crlf.conf:3: [stage:a] line of 199 bytes;", tmpdir);
    assert_true(strncmp(err, expect, strlen(expect)) == 0);
    free(ok);
    free(bad);
}

static void test_crlf_bom_and_separators(void **state)
{
    (void)state;
    Config *cfg = load_text("crlf.conf", "\xEF\xBB\xBF[pgwake]\r\nlog_backups = 4\r\n"
                                         "http_listen: [::1]:7000\r\n"
                                         "[stage:a]\r\ncommand = /bin/echo a\r\n  b\r\n");
    assert_int_equal(cfg->log_backups, 4);
    assert_string_equal(cfg->http_listen, "[::1]:7000");
    assert_string_equal(cfg->stages->command, "/bin/echo a b");
    cfg_free(cfg);
}

static void test_inline_comments(void **state)
{
    (void)state;
    /* " ;" starts a comment (inih's rule, documented); ";" inside a word does not */
    Config *cfg = load_text("semi.conf", "[stage:a]\ncommand = /bin/echo a;b ;c\n"
                                         "environment = A=x;y ; comment\n");
    assert_string_equal(cfg->stages->command, "/bin/echo a;b");
    assert_string_equal(cfg->stages->environment[0], "A=x;y");
    cfg_free(cfg);
}

static void test_long_stage_name(void **state)
{
    (void)state;
    /* inih cuts section names at 49 bytes: two long names sharing that prefix
     * must still be two stages */
    char name1[64], name2[64], text[512];
    memset(name1, 'a', 63);
    name1[63] = '\0';
    memcpy(name2, name1, sizeof name2);
    name2[62] = 'b';
    snprintf(text, sizeof text, "[stage:%s]\ncommand = /bin/true\n[stage:%s]\ncommand = /bin/true\n",
             name1, name2);
    Config *cfg = load_text("long_names.conf", text);
    assert_int_equal(cfg->nstages, 2);
    assert_non_null(cfg_stage(cfg, name1));
    assert_non_null(cfg_stage(cfg, name2));
    cfg_free(cfg);
    snprintf(text, sizeof text, "[stage:%sa]\ncommand = /bin/true\n", name1);
    assert_non_null(strstr(err_text("too_long_name.conf", text), "bad stage name"));
}

static void test_stage_name_valid(void **state)
{
    (void)state;
    assert_true(stage_name_valid("a"));
    assert_true(stage_name_valid("_x"));
    assert_true(stage_name_valid("0"));
    assert_true(stage_name_valid("company_research.v2-b"));
    assert_false(stage_name_valid(""));
    assert_false(stage_name_valid(".a"));
    assert_false(stage_name_valid("-a"));
    assert_false(stage_name_valid("A"));
    assert_false(stage_name_valid("a b"));
    assert_false(stage_name_valid("a/b"));
    assert_false(stage_name_valid("é"));
}

/* secret_mode_case loads text at 0640 (must work) and 0644 (must be refused). */
static void secret_mode_case(const char *text, const char *what)
{
    char expect[ERR_LEN];
    cfg_free(load_ok(write_tmp("secret.conf", text, 0640)));
    const char *path = write_tmp("secret.conf", text, 0644);
    snprintf(expect, sizeof expect,
             "%s: holds a secret (%s) and can be read by every user; run: chmod o-r %s", path,
             what, path);
    assert_string_equal(load_err(path), expect);
}

static void test_secrets(void **state)
{
    (void)state;
    secret_mode_case("[pgwake]\ncontrol_token = abc\n", "[pgwake] control_token");
    secret_mode_case("[alerts]\nsmtp_password = abc\n", "[alerts] smtp_password");
    secret_mode_case("[pgwake]\ndsn = postgresql://u:pw@db/rv\n", "[pgwake] dsn");
    secret_mode_case("[pgwake]\nworker_dsn = host=db password=pw\n", "[pgwake] worker_dsn");
    secret_mode_case("[alerts]\nsmtp_url = smtp://u:pw@mail:587\n", "[alerts] smtp_url");
    secret_mode_case("[stage:a]\ncommand = /bin/true\nenvironment = OPENAI_API_KEY=sk\n",
                     "[stage:a] environment");
    /* no secret: world-readable is fine */
    cfg_free(load_ok(write_tmp("public.conf", "[pgwake]\ndsn = postgresql://u@db/rv\n"
                                              "control_token =\n", 0644)));
}

static void test_env_file(void **state)
{
    (void)state;
    char **vars, err[ERR_LEN];
    static const char *const expect[] = {"LOG_FORMAT=json", "APP_MODE=production",
                                         "QUOTED=single quoted", "EMPTY=",
                                         "SPACED=value with spaces", NULL};
    assert_true(cfg_read_env_file(DATA "/good.env", &vars, err, sizeof err));
    for (int i = 0; expect[i] || vars[i]; i++)
        assert_string_equal(vars[i], expect[i]);
    char **none;
    assert_true(cfg_read_env_file(write_tmp("empty.env", "# nothing\n\n", 0600), &none, err, sizeof err));
    assert_null(none);
    argv_free(vars);
}

static void test_env_file_errors(void **state)
{
    (void)state;
    char **vars, err[ERR_LEN], expect[ERR_LEN];
    const char *path = write_tmp("bad.env", "A=1\nnot a pair\n", 0600);
    assert_false(cfg_read_env_file(path, &vars, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:2: expected KEY=VALUE", path);
    assert_string_equal(err, expect);
    path = write_tmp("dup.env", "A=1\nexport A=2\n", 0600);
    assert_false(cfg_read_env_file(path, &vars, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:2: A is set a second time", path);
    assert_string_equal(err, expect);
    path = write_tmp("name.env", "A-B=1\n", 0600);
    assert_false(cfg_read_env_file(path, &vars, err, sizeof err));
    assert_non_null(strstr(err, ":1: bad variable name \"A-B\""));
    path = write_tmp("secret.env", "APP=1\nDB_PASSWORD=x\n", 0644);
    assert_false(cfg_read_env_file(path, &vars, err, sizeof err));
    snprintf(expect, sizeof expect,
             "%s: holds a secret (DB_PASSWORD) and can be read by every user; run: chmod o-r %s",
             path, path);
    assert_string_equal(err, expect);
    assert_null(vars);
    path = write_tmp("url.env", "DATABASE_URL=postgresql://app:pw@db/rv\n", 0604);
    assert_false(cfg_read_env_file(path, &vars, err, sizeof err));
    assert_non_null(strstr(err, "holds a secret (DATABASE_URL)"));
    assert_true(cfg_read_env_file(write_tmp("ok.env", "DB_PASSWORD=x\n", 0640), &vars, err, sizeof err));
    assert_string_equal(vars[0], "DB_PASSWORD=x");
    argv_free(vars);
}

static void test_env_file_via_config(void **state)
{
    (void)state;
    write_tmp("workers.env", "API_TOKEN=t\n", 0644);
    const char *err = err_text("with_env.conf", "[pgwake]\nenv_file = workers.env\n");
    assert_non_null(strstr(err, "with_env.conf:2: [pgwake] env_file: "));
    assert_non_null(strstr(err, "workers.env: holds a secret (API_TOKEN)"));
    write_tmp("workers.env", "API_TOKEN=t\n", 0640);
    Config *cfg = load_text("with_env.conf", "[pgwake]\nenv_file = workers.env\n");
    assert_string_equal(cfg->env_file_vars[0], "API_TOKEN=t");
    cfg_free(cfg);
}

static void test_alerts_from_environment(void **state)
{
    (void)state;
    setenv("HEARTBEAT_MONITOR_ALERT_EMAIL", "oncall@example.com", 1);
    setenv("SMTP_HOST", "mail.example.com", 1);
    setenv("SMTP_USER", "bot", 1);
    setenv("SMTP_PASSWORD", "pw", 1);
    setenv("EMAIL_FROM", "pgwake@example.com", 1);
    /* the environment's password does not make this world-readable file secret */
    Config *cfg = load_ok(write_tmp("env_alerts.conf", "[alerts]\nsmtp_user = file-user\n", 0644));
    assert_string_equal(cfg->alerts.email_to, "oncall@example.com");
    assert_string_equal(cfg->alerts.smtp_url, "smtp://mail.example.com:587");
    assert_string_equal(cfg->alerts.smtp_user, "file-user"); /* the file wins */
    assert_string_equal(cfg->alerts.smtp_password, "pw");
    assert_string_equal(cfg->alerts.email_from, "pgwake@example.com");
    cfg_free(cfg);
    setenv("SMTP_PORT", "465", 1);
    cfg = load_text("env_alerts.conf", "[pgwake]\n");
    assert_string_equal(cfg->alerts.smtp_url, "smtps://mail.example.com:465");
    cfg_free(cfg);
    setenv("SMTP_PORT", "25x", 1);
    const char *path = write_tmp("env_alerts.conf", "[pgwake]\n", 0600);
    char expect[ERR_LEN];
    snprintf(expect, sizeof expect,
             "%s: [alerts] smtp_url: from $SMTP_PORT: \"25x\" is not a port number", path);
    assert_string_equal(load_err(path), expect);
    for (const char *const *v = env_vars; *v; v++)
        unsetenv(*v);
}

static void test_lock_file_default(void **state)
{
    (void)state;
    setenv("RUNTIME_DIRECTORY", "/run/pgwake:/run/other", 1);
    Config *a = load_text("lock_a.conf", "");
    Config *b = load_text("lock_b.conf", "");
    unsetenv("RUNTIME_DIRECTORY");
    assert_true(strncmp(a->lock_file, "/run/pgwake/pgwake-lock_a.conf-", 31) == 0);
    assert_string_not_equal(a->lock_file, b->lock_file);
    assert_int_equal(a->nstages, 0); /* an empty file is a valid config */
    cfg_free(a);
    cfg_free(b);
    /* Without systemd's folder: the user's runtime folder, else /run for
     * root (never a name anyone could plant first in /tmp). */
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    a = load_text("lock_a.conf", "");
    unsetenv("XDG_RUNTIME_DIR");
    assert_true(strncmp(a->lock_file, "/run/user/1000/pgwake-lock_a.conf-", 34) == 0);
    cfg_free(a);
    a = load_text("lock_a.conf", "");
    assert_true(strncmp(a->lock_file, geteuid() == 0 ? "/run/pgwake-" : "/tmp/pgwake-", 12) == 0);
    cfg_free(a);
}

/* The diff tests rewrite one path between loads, as a reload does (the
 * default lock_file is named from the path). */
static void test_stage_diff(void **state)
{
    (void)state;
    const char *base = "[stage:a]\ncommand = /bin/w 1\nmax_workers = 2\n";
    Config *old = load_text("diff.conf", base);
    Config *same = load_text("diff.conf", base);
    Config *live = load_text("diff.conf",
                             "[stage:a]\ncommand = /bin/w 1\nmax_workers = 3\nidle_timeout = 5s\n");
    Config *cmd = load_text("diff.conf", "[stage:a]\ncommand = /bin/w 2\nmax_workers = 2\n");
    Config *both = load_text("diff.conf",
                             "[stage:a]\ncommand = /bin/w 1\nlease = 10m\nmax_workers = 4\n");
    Config *env = load_text("diff.conf",
                            "[stage:a]\ncommand = /bin/w 1\nmax_workers = 2\nenvironment = A=1\n");
    assert_int_equal(cfg_stage_diff(old->stages, same->stages), 0);
    assert_int_equal(cfg_stage_diff(old->stages, live->stages), CFG_DIFF_LIVE);
    assert_int_equal(cfg_stage_diff(old->stages, cmd->stages), CFG_DIFF_RESTART);
    assert_int_equal(cfg_stage_diff(old->stages, both->stages), CFG_DIFF_RESTART | CFG_DIFF_LIVE);
    assert_int_equal(cfg_stage_diff(old->stages, env->stages), CFG_DIFF_RESTART);
    assert_int_equal(cfg_global_diff(old, same), 0);
    Config *all[] = {old, same, live, cmd, both, env};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cfg_free(all[i]);
}

/* global_diff loads two [pgwake] bodies and diffs them. */
static unsigned global_diff(const char *a, const char *b)
{
    Config *old = load_text("g.conf", a), *new_ = load_text("g.conf", b);
    unsigned bits = cfg_global_diff(old, new_);
    cfg_free(old);
    cfg_free(new_);
    return bits;
}

static void test_global_diff(void **state)
{
    (void)state;
    assert_int_equal(global_diff("[pgwake]\nhost = h1\n", "[pgwake]\nhost = h2\n"),
                     CFG_DIFF_NEEDS_RESTART);
    assert_int_equal(global_diff("[pgwake]\n", "[pgwake]\nhttp_listen = 127.0.0.1:1\n"),
                     CFG_DIFF_NEEDS_RESTART);
    assert_int_equal(global_diff("[pgwake]\n", "[pgwake]\nlock_file = /tmp/x.lock\n"),
                     CFG_DIFF_NEEDS_RESTART);
    assert_int_equal(global_diff("[pgwake]\nworker_dsn = dbname=a\n",
                                 "[pgwake]\nworker_dsn = dbname=b\n"), CFG_DIFF_RESTART_ALL);
    /* without worker_dsn, workers get dsn: changing it restarts them */
    assert_int_equal(global_diff("[pgwake]\ndsn = dbname=a\n", "[pgwake]\ndsn = dbname=b\n"),
                     CFG_DIFF_LIVE | CFG_DIFF_RESTART_ALL);
    assert_int_equal(global_diff("[pgwake]\ndsn = dbname=a\nworker_dsn = dbname=w\n",
                                 "[pgwake]\ndsn = dbname=b\nworker_dsn = dbname=w\n"),
                     CFG_DIFF_LIVE);
    assert_int_equal(global_diff("[pgwake]\nlog_backups = 1\n", "[alerts]\nmin_interval = 1s\n"),
                     CFG_DIFF_LIVE);
    write_tmp("e1.env", "A=1\n", 0600);
    write_tmp("e2.env", "A=1\n", 0600);
    write_tmp("e3.env", "A=2\n", 0600);
    assert_int_equal(global_diff("[pgwake]\nenv_file = e1.env\n", "[pgwake]\nenv_file = e2.env\n"),
                     CFG_DIFF_LIVE);
    assert_int_equal(global_diff("[pgwake]\nenv_file = e1.env\n", "[pgwake]\nenv_file = e3.env\n"),
                     CFG_DIFF_LIVE | CFG_DIFF_RESTART_ALL);
}

static void test_find_path(void **state)
{
    (void)state;
    char err[ERR_LEN] = "";
    setenv("PGWAKE_CONF", "/from/env.conf", 1);
    assert_string_equal(cfg_find_path("/from/c.conf", err, sizeof err), "/from/c.conf");
    assert_string_equal(cfg_find_path(NULL, err, sizeof err), "/from/env.conf");
    unsetenv("PGWAKE_CONF");
    if (access("/etc/pgwake/pgwake.conf", F_OK) == 0) {
        assert_string_equal(cfg_find_path(NULL, err, sizeof err), "/etc/pgwake/pgwake.conf");
        return;
    }
    assert_null(cfg_find_path(NULL, err, sizeof err));
    assert_non_null(strstr(err, "-c FILE"));
    assert_non_null(strstr(err, "PGWAKE_CONF"));
    assert_non_null(strstr(err, "/etc/pgwake/pgwake.conf"));
}

static void test_missing_file(void **state)
{
    (void)state;
    assert_string_equal(load_err(DATA "/no-such.conf"),
                        "unable to open " DATA "/no-such.conf: No such file or directory");
}

static void test_bad_dsn(void **state)
{
    (void)state;
    /* libpq words (and may translate) the reason; the prefix is ours */
    const char *err = err_text("dsn.conf", "[pgwake]\ndsn = host=db port\n");
    assert_non_null(strstr(err, "dsn.conf:2: [pgwake] dsn: "));
    /* never libpq's words, which quote the string's pieces */
    err = err_text("dsn.conf", "[pgwake]\nworker_dsn = postgresql://u:se%cret@h/db\n");
    assert_non_null(strstr(err, "dsn.conf:2: [pgwake] worker_dsn: "));
    assert_null(strstr(err, "cret"));
}

/* http_listen is split into http_host and http_port at load; the CLI calls
 * what they say (a wildcard through loopback, a v6 address in brackets). */
static void test_http_listen(void **state)
{
    (void)state;
    static const struct {
        const char *value, *host;
        unsigned port;
        const char *call; /* httpcli_addr */
    } good[] = {
        {"127.0.0.1:6464", "127.0.0.1", 6464, "127.0.0.1:6464"},
        {"localhost:1", "localhost", 1, "localhost:1"},
        {"pgwake.internal:65535", "pgwake.internal", 65535, "pgwake.internal:65535"},
        {"0.0.0.0:7000", "0.0.0.0", 7000, "127.0.0.1:7000"},
        {"[::1]:8080", "::1", 8080, "[::1]:8080"},
        {"[::]:8080", "::", 8080, "[::1]:8080"},
        {"[fe80::1%eth0]:8080", "fe80::1%eth0", 8080, "[fe80::1%eth0]:8080"},
        {"::1:8080", "::1", 8080, "[::1]:8080"}, /* the last colon ends HOST */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[200], addr[300];
        snprintf(text, sizeof text, "[pgwake]\nhttp_listen = %s\n", good[i].value);
        Config *cfg = load_text("listen.conf", text);
        assert_string_equal(cfg->http_listen, good[i].value);
        assert_string_equal(cfg->http_host, good[i].host);
        assert_int_equal(cfg->http_port, good[i].port);
        assert_string_equal(httpcli_addr(cfg, addr, sizeof addr), good[i].call);
        cfg_free(cfg);
    }
    char addr[300];
    assert_string_equal(httpcli_addr(NULL, addr, sizeof addr), "127.0.0.1:6464");
    static const char *const bad[] = {
        "localhost",       ":6464",         "127.0.0.1:",   "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1:-1", "127.0.0.1:+80",
        "127.0.0.1: 80",   "[::1:8080",     "[::1]x:8080",  "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200], expect[300];
        snprintf(text, sizeof text, "[pgwake]\nhost = h\nhttp_listen = %s\n", bad[i]);
        snprintf(expect, sizeof expect,
                 "listen.conf:3: [pgwake] http_listen: \"%s\" is not HOST:PORT (e.g. "
                 "127.0.0.1:6464)",
                 bad[i]);
        const char *err = err_text("listen.conf", text);
        if (!strstr(err, expect))
            fail_msg("http_listen = %s\n  expected: ...%s\n  got:      %s", bad[i], expect, err);
    }
}

/* smtp_url credentials: seen (TLS is then required) and masked when shown */
static void test_url_userinfo(void **state)
{
    (void)state;
    char buf[128];
    assert_true(url_has_userinfo("smtp://alerts:pw@mail:587"));
    assert_true(url_has_userinfo("smtp://alerts@mail:587"));
    assert_false(url_has_userinfo("smtp://mail:587/x@y"));
    assert_false(url_has_userinfo("mail:587"));
    assert_string_equal(url_redact("smtp://alerts:s3cr3t@mail:587", buf, sizeof buf),
                        "smtp://alerts:****@mail:587");
    assert_string_equal(url_redact("smtp://a:b:c@mail", buf, sizeof buf), "smtp://a:****@mail");
    assert_string_equal(url_redact("smtp://alerts@mail", buf, sizeof buf), "smtp://alerts@mail");
    assert_string_equal(url_redact("https://h/p?x=a:b@c", buf, sizeof buf), "https://h/p?x=a:b@c");
    const char *err = err_text("u.conf", "[alerts]\nsmtp_url = ftp://u:s3cr3t@mail\n");
    assert_non_null(strstr(err, "ftp://u:****@mail"));
    assert_null(strstr(err, "s3cr3t"));
}

/* The key list of a rendered or hand-written example: "section.key=default"
 * lines (a stage's section is "stage"), in order. */
typedef struct KeyList {
    char items[128][160];
    int n;
} KeyList;

static void keylist_line(KeyList *kl, char *section, const char *line)
{
    const char *s = strncmp(line, "; ", 2) == 0 ? line + 2 : line;
    size_t klen = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
    if (s[0] == '[') {
        size_t len = strcspn(s + 1, "]");
        snprintf(section, 64, "%.*s", (int)len, s + 1);
        if (strncmp(section, "stage:", 6) == 0)
            section[5] = '\0';
    } else if (klen && strncmp(s + klen, " =", 2) == 0) {
        const char *v = s + klen + 2;
        v += strspn(v, " ");
        size_t vlen = strcspn(v, ";");
        while (vlen && v[vlen - 1] == ' ')
            vlen--;
        assert_true(kl->n < 128);
        snprintf(kl->items[kl->n++], 160, "%s.%.*s=%.*s", section, (int)klen, s, (int)vlen, v);
    }
}

static void keylist_read(KeyList *kl, FILE *f)
{
    char line[512], section[64] = "";
    kl->n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        keylist_line(kl, section, line);
    }
}

static void test_example_documents_every_key(void **state)
{
    (void)state;
    KeyList *rendered = calloc(1, sizeof *rendered), *example = calloc(1, sizeof *example);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cfg_render_example(mem);
    fclose(mem);
    mem = fmemopen(buf, len, "r");
    keylist_read(rendered, mem);
    fclose(mem);
    FILE *f = fopen("conf/pgwake.conf", "r");
    assert_non_null(f);
    keylist_read(example, f);
    fclose(f);
    assert_true(rendered->n > 30);
    for (int i = 0; i < rendered->n || i < example->n; i++) {
        const char *r = i < rendered->n ? rendered->items[i] : "(none)";
        const char *e = i < example->n ? example->items[i] : "(none)";
        size_t keylen = strcspn(r, "=");
        /* the same key at the same place; a key with a default shows that default */
        if (strncmp(r, e, keylen + 1) != 0 || (r[keylen + 1] && strcmp(r, e) != 0))
            fail_msg("conf/pgwake.conf key %d: expected %s, found %s", i, r, e);
    }
    free(buf);
    free(rendered);
    free(example);
}

static void test_examples_load(void **state)
{
    (void)state;
    Config *cfg = load_ok("conf/pgwake.conf");
    assert_int_equal(cfg->nstages, 0);
    cfg_free(cfg);
    /* what cfg_render_example prints is a valid file too */
    const char *path = write_tmp("rendered.conf", "", 0600);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cfg_render_example(f);
    fclose(f);
    cfg = load_ok(path);
    assert_int_equal(cfg->nstages, 0);
    cfg_free(cfg);
    /* the existing-pipeline example: pgwake import's output plus release_sql */
    cfg = load_ok("examples/existing-pipeline/pgwake.conf");
    assert_int_equal(cfg->nstages, 3);
    for (const StageConf *st = cfg->stages; st; st = st->next)
        assert_true(st->pending_sql && st->release_sql && strstr(st->command, "after/"));
    cfg_free(cfg);
    cfg_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_stage_defaults),
        cmocka_unit_test(test_full_globals),
        cmocka_unit_test(test_full_stage),
        cmocka_unit_test(test_stage_order_and_paths),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_crlf_bom_and_separators),
        cmocka_unit_test(test_inline_comments),
        cmocka_unit_test(test_long_stage_name),
        cmocka_unit_test(test_stage_name_valid),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_env_file),
        cmocka_unit_test(test_env_file_errors),
        cmocka_unit_test(test_env_file_via_config),
        cmocka_unit_test(test_alerts_from_environment),
        cmocka_unit_test(test_lock_file_default),
        cmocka_unit_test(test_stage_diff),
        cmocka_unit_test(test_global_diff),
        cmocka_unit_test(test_find_path),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_dsn),
        cmocka_unit_test(test_url_userinfo),
        cmocka_unit_test(test_http_listen),
        cmocka_unit_test(test_example_documents_every_key),
        cmocka_unit_test(test_examples_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
