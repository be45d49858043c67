/*
 * fuzz_config.c - libFuzzer target for the configuration reader (SPEC section 7):
 * our line reader in front of inih, the key tables, durations, sizes, commands,
 * environment lists, the env_file reader, and the reload diffs.
 *
 * Each input is written to a file (mode 600, in a private folder that also
 * holds good.env, so the seeds' relative env_file resolves) and loaded with
 * cfg_load, the public entry point the daemon uses at start-up and on SIGHUP.
 * The same bytes are then read as an env_file with cfg_read_env_file.
 *
 * Checked besides the sanitizers: a failed load leaves a one-line error that
 * starts with the file name; a good load has sane fields (every stage has an
 * argv, heartbeat_interval < heartbeat_timeout <= lease, min <= max workers);
 * a config diffs as unchanged against itself.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "config.h"

static char dir[64];
static char conf_path[96];
static Config *baseline; /* a good config to diff every loaded one against */

static const char good_env[] = "export LOG_FORMAT=json\nAPP_MODE = \"production\"\nEMPTY=\n";

static const char baseline_conf[] =
    "[pgwake]\nhost = fuzz-1\nlog_dir = logs\nenv_file = good.env\n"
    "[stage:alpha]\ncommand = /bin/true --x \"a b\"\nmax_workers = 2\n"
    "environment = A=1, B=\"x, y\"\n";

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) {
            perror(path);
            abort();
        }
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

/* remove_dir removes the private folder when the fuzzer exits normally. */
static void remove_dir(void)
{
    static const char *const names[] = {"fuzz.conf", "good.env", "baseline.conf"};
    char path[128];
    cfg_free(baseline);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[ERR_LEN], path[128];
    /* The [alerts] keys fall back to these; the fuzzer's environment must not vary runs. */
    static const char *const vars[] = {"SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD",
                                       "EMAIL_FROM", "HEARTBEAT_MONITOR_ALERT_EMAIL",
                                       "RUNTIME_DIRECTORY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    snprintf(dir, sizeof dir, "/tmp/pgwake-fuzz-config.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(conf_path, sizeof conf_path, "%s/fuzz.conf", dir);
    snprintf(path, sizeof path, "%s/good.env", dir);
    write_file(path, (const uint8_t *)good_env, sizeof good_env - 1);
    snprintf(path, sizeof path, "%s/baseline.conf", dir);
    write_file(path, (const uint8_t *)baseline_conf, sizeof baseline_conf - 1);
    if (!(baseline = cfg_load(path, err, sizeof err))) {
        fprintf(stderr, "fuzz_config: the baseline config does not load: %s\n", err);
        abort();
    }
    atexit(remove_dir);
    return 0;
}

static void check_config(const Config *cfg)
{
    int n = 0;
    CHECK(cfg->path && cfg->dir && cfg->host && cfg->lock_file && cfg->log_dir);
    for (const StageConf *st = cfg->stages; st; st = st->next, n++) {
        CHECK(stage_name_valid(st->name));
        CHECK(st->command && st->argv && st->argv[0]);
        CHECK(st->max_workers >= 1 && st->min_workers <= st->max_workers);
        CHECK(st->heartbeat_interval_ms < st->heartbeat_timeout_ms);
        CHECK(st->heartbeat_timeout_ms <= st->lease_ms);
        CHECK(st->restart_delay_ms <= st->restart_delay_max_ms);
        CHECK(cfg_stage(cfg, st->name) == st);
        CHECK(cfg_stage_diff(st, st) == 0);
        if (st->environment)
            for (char **e = st->environment; *e; e++)
                CHECK(strchr(*e, '=') != NULL);
        const StageConf *old = cfg_stage(baseline, st->name);
        if (old)
            (void)cfg_stage_diff(old, st);
    }
    CHECK(n == cfg->nstages);
    CHECK(cfg_global_diff(cfg, cfg) == 0);
    (void)cfg_global_diff(baseline, cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERR_LEN];
    write_file(conf_path, data, size);

    memset(err, 'x', sizeof err);
    Config *cfg = cfg_load(conf_path, err, sizeof err);
    if (cfg) {
        check_config(cfg);
        cfg_free(cfg);
    } else {
        /* "FILE[:LINE]: ..." on one line, NUL-terminated within ERR_LEN */
        CHECK(memchr(err, '\0', sizeof err) != NULL);
        CHECK(strncmp(err, conf_path, strlen(conf_path)) == 0);
        CHECK(strchr(err, '\n') == NULL);
    }

    char **vars = NULL;
    memset(err, 'x', sizeof err);
    if (cfg_read_env_file(conf_path, &vars, err, sizeof err)) {
        if (vars)
            for (char **v = vars; *v; v++)
                CHECK(strchr(*v, '=') != NULL);
        argv_free(vars);
    } else {
        CHECK(memchr(err, '\0', sizeof err) != NULL);
    }
    return 0;
}
