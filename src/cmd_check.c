/* cmd_check.c: `pgwake check`: read-only validation of the configuration, the
 * database, the schema version, each stage's command, pg_cron and the alert
 * settings; one plain line per finding. Exit 0 nothing wrong (warnings
 * printed), 1 a problem of the environment, 2 of the configuration. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "config_keys.h"
#include "http_gate.h"
#include "lockinfo.h"
#include "migrate.h"
#include "release_sql.h"
#include "spawn.h"

typedef struct Findings {
    int env_problems;  /* exit 1 */
    int conf_problems; /* exit 2 */
    int warnings;
} Findings;

static void say(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-8s ", kind);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* May this user execute path? The mode bits as the kernel applies them. */
static bool executable_by(const char *path, const SpawnUser *u)
{
    if (!u)
        return access(path, X_OK) == 0;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    if (u->uid == 0)
        return (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
    if (st.st_uid == u->uid)
        return (st.st_mode & S_IXUSR) != 0;
    bool in_group = st.st_gid == u->gid;
    for (int i = 0; i < u->ngroups && !in_group; i++)
        in_group = u->groups[i] == st.st_gid;
    return (st.st_mode & (in_group ? S_IXGRP : S_IXOTH)) != 0;
}

static void check_stage(const StageConf *s, Findings *f)
{
    char err[ERR_LEN];
    SpawnUser user = {0};
    if (s->user && !spawn_lookup_user(s->user, &user, err, sizeof err)) {
        say("problem", "stage %s: user: %s", s->name, err);
        f->env_problems++;
        return;
    }
    struct stat st;
    if (s->directory && (stat(s->directory, &st) < 0 || !S_ISDIR(st.st_mode))) {
        say("problem", "stage %s: directory %s does not exist", s->name, s->directory);
        f->env_problems++;
    }
    char *path = spawn_resolve_path(s->argv[0], s->directory, getenv("PATH"), err, sizeof err);
    if (!path) {
        say("problem", "stage %s: command: %s", s->name, err);
        f->env_problems++;
    } else if (!executable_by(path, s->user ? &user : NULL)) {
        say("problem", "stage %s: %s is not executable for user %s", s->name, path,
            s->user ? s->user : "running pgwake");
        f->env_problems++;
    } else {
        say("ok", "stage %s: %s (max_workers %d%s%s)", s->name, path, s->max_workers,
            s->user ? ", user " : "", s->user ? s->user : "");
    }
    free(path);
    spawn_user_free(&user);
}

/* Any role may take pgwake's advisory locks: a holder that is not a pgwake
 * daemon keeps this host's daemon from starting, or maintenance from running. */
static void check_lock(PGconn *c, const char *what, const char *sql, const char *host, Findings *f)
{
    const char *p[] = {host};
    PGresult *r = PQexecParams(c, sql, host ? 1 : 0, NULL, host ? p : NULL, NULL, NULL, 0);
    char who[300];
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        say("warning", "unable to tell who holds the %s lock: %s", what, PQresultErrorMessage(r));
        f->warnings++;
    } else if (!lockinfo_describe(r, 0, 0, who, sizeof who)) {
        say("ok", "%s lock: free", what);
    } else if (strcmp(PQgetvalue(r, 0, 2), "pgwake") == 0) {
        say("ok", "%s lock: held by a pgwake daemon (%s)", what, who);
    } else {
        say("warning", "%s lock: held by a session that is not a pgwake daemon (%s): %s", what, who,
            host ? "a daemon of this host cannot start" : "maintenance runs nowhere");
        f->warnings++;
    }
    PQclear(r);
}

/* Each release_sql is planned on the database (never executed): a statement
 * it refuses is a problem of the configuration. */
static void check_release_sql(PGconn *c, const Config *cfg, Findings *f)
{
    char err[ERR_LEN];
    for (const StageConf *s = cfg->stages; s; s = s->next) {
        if (!s->release_sql)
            continue;
        if (release_sql_check(c, cfg->path, s, err, sizeof err)) {
            say("ok", "stage %s: release_sql accepted by the database", s->name);
        } else {
            say("problem", "%s", err);
            f->conf_problems++;
        }
    }
}

static void check_database(const CliOpts *o, const Config *cfg, Findings *f)
{
    const char *dsn;
    char why[ERR_LEN];
    if (!dsn_resolve(o->dsn, cfg->dsn, (GetenvFn)getenv, &dsn, why, sizeof why)) {
        say("problem", "%s", why);
        f->conf_problems++;
        return;
    }
    PGconn *c = cli_connect(o, cfg);
    if (!c) {
        say("problem", "database unreachable (see the message above)");
        f->env_problems++;
        return;
    }
    say("ok", "database %s on %s reachable (server %d)", PQdb(c), PQhost(c), PQserverVersion(c));
    char err[ERR_LEN];
    int v = migrate_db_version(c, err, sizeof err);
    if (v < 0) {
        say("problem", "%s", err);
        f->env_problems++;
    } else if (v < migrate_latest()) {
        say("problem", "schema pgwake is at version %d, this pgwake needs %d: run pgwake migrate", v,
            migrate_latest());
        f->env_problems++;
    } else if (v > migrate_latest()) {
        say("problem", "schema pgwake is at version %d, newer than this pgwake (%d)", v, migrate_latest());
        f->env_problems++;
    } else {
        say("ok", "schema pgwake at version %d", v);
        check_release_sql(c, cfg, f);
    }
    char what[200];
    snprintf(what, sizeof what, "host %s", cfg->host);
    check_lock(c, what, LOCK_HOLDER_SQL(LOCK_KEY_HOST, "true"), cfg->host, f);
    check_lock(c, "maintenance", LOCK_HOLDER_SQL(LOCK_KEY_MAINT, "true"), NULL, f);
    PGresult *r = PQexec(c, "SELECT pg_catalog.current_setting('cron.database_name', true)");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && !PQgetisnull(r, 0, 0) && *PQgetvalue(r, 0, 0))
        say("ok", "pg_cron loaded (its database: %s); `pgwake cron install` schedules the backstop",
            PQgetvalue(r, 0, 0));
    else {
        say("warning", "pg_cron not loaded: with no daemon running, dead workers' leases wait for one");
        f->warnings++;
    }
    PQclear(r);
    PQfinish(c);
}

static void check_alerts(const AlertConf *a, Findings *f)
{
    if (!a->email_to && !a->webhook_url) {
        say("warning", "no alerts configured (email_to or webhook_url in [alerts])");
        f->warnings++;
        return;
    }
    if (a->webhook_url && strncasecmp(a->webhook_url, "http://", 7) == 0) {
        say("warning", "webhook_url is http://: alerts travel unencrypted (use https://)");
        f->warnings++;
    } else if (a->webhook_url) {
        say("ok", "webhook configured");
    }
    if (!a->email_to)
        return;
    if (!a->smtp_url) {
        say("problem", "email_to is set but no smtp_url (or SMTP_HOST)");
        f->conf_problems++;
        return;
    }
    CURL *h = curl_easy_init();
    if (!h)
        return;
    curl_easy_setopt(h, CURLOPT_URL, a->smtp_url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    char shown[300];
    url_redact(a->smtp_url, shown, sizeof shown);
    if (rc == CURLE_OK)
        say("ok", "SMTP server %s reachable", shown);
    else {
        say("problem", "SMTP server %s unreachable: %s", shown, curl_easy_strerror(rc));
        f->env_problems++;
    }
    curl_easy_cleanup(h);
}

static void check_worker_login(const Config *cfg, Findings *f)
{
    if (cfg->worker_dsn || !cfg->stages)
        return;
    say("warning", "worker_dsn is unset: workers log in with the daemon's own credentials "
                   "(a role granted pgwake_worker is safer: docs/roles.md)");
    f->warnings++;
}

static void check_http(const Config *cfg, Findings *f)
{
    if (cfg->control_token || http_listen_is_loopback(cfg->http_host))
        return;
    say("warning", "http_listen %s is reachable from other machines and control_token is unset: "
                   "control calls will be refused (set control_token)", cfg->http_listen);
    f->warnings++;
}

/* cmd_check runs every check and picks the exit code from the worst finding. */
int cmd_check(const CliOpts *o)
{
    Config *cfg;
    int rc = cli_load_config(o, true, &cfg);
    if (rc)
        return rc;
    Findings f = {0};
    say("ok", "configuration %s: %d stage(s), host %s", cfg->path, cfg->nstages, cfg->host);
    for (const StageConf *s = cfg->stages; s; s = s->next)
        check_stage(s, &f);
    check_database(o, cfg, &f);
    check_http(cfg, &f);
    check_worker_login(cfg, &f);
    check_alerts(&cfg->alerts, &f);
    cfg_free(cfg);
    if (f.conf_problems)
        return EXIT_USAGE;
    return f.env_problems ? EXIT_RUNTIME : EXIT_OK;
}
