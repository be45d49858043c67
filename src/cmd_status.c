/* cmd_status.c: `pgwake status [--json]` asks the running daemon (GET /status
 * on its http_listen) and, when it does not answer, reads what the database
 * knows and says the daemon is not running; `pgwake runs [--limit N]` shows
 * recent runs with a progress bar per stage, from the database. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "deaths.h"
#include "commands.h"
#include "httpcli.h"
#include "report.h"

#define BAR_WIDTH 20

/* ---------------------------------------------------------------- the table */

static void upper(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    out[i] = '\0';
}

static void hms(char *out, size_t n, double s)
{
    long t = s > 0 ? (long)s : 0;
    if (t >= 86400)
        snprintf(out, n, "%ldd %ld:%02ld:%02ld", t / 86400, t % 86400 / 3600, t % 3600 / 60, t % 60);
    else
        snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t % 3600 / 60, t % 60);
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

static void print_worker(json_t *w, FILE *out)
{
    char state[16], up[32], pid[24] = "-", task[32] = "";
    upper(state, sizeof state, str_or(w, "state", "?"));
    hms(up, sizeof up, json_number_value(json_object_get(w, "uptime_s")));
    json_t *p = json_object_get(w, "pid"), *t = json_object_get(w, "task");
    if (json_is_integer(p))
        snprintf(pid, sizeof pid, "%lld", (long long)json_integer_value(p));
    if (json_is_integer(t))
        snprintf(task, sizeof task, ", task %lld", (long long)json_integer_value(t));
    fprintf(out, "  %-28s %-9s pid %s, uptime %s%s\n", str_or(w, "id", "(registering)"), state,
            pid, up, task);
}

/* 0 when every stage of the status JSON runs, else 1 (FATAL, stopped, unknown). */
static int status_code(json_t *st)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(st, "stages"), i, s)
        if (strcmp(str_or(s, "state", ""), "running") != 0)
            return EXIT_RUNTIME;
    return EXIT_OK;
}

/* Prints the status JSON (the daemon's, or one built from the database in the
 * same shape) as a table. */
static void print_status(json_t *st, FILE *out)
{
    json_t *db = json_object_get(st, "database");
    const char *err = str_or(db, "last_error", NULL);
    bool up = json_is_true(json_object_get(db, "connected"));
    fprintf(out, "host %s: database %s%s%s%s\n", str_or(st, "host", "?"),
            up ? "connected" : "not connected", !up && err ? ": " : "", !up && err ? err : "",
            json_is_true(json_object_get(st, "maintenance")) ? ", holds maintenance" : "");
    fprintf(out, "%-30s %-9s %7s  %s\n", "STAGE", "STATE", "PENDING", "WORKERS");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(st, "stages"), i, s) {
        const char *state = str_or(s, "state", NULL);
        char ustate[16], pending[24] = "?", workers[32];
        upper(ustate, sizeof ustate, state ? state : "unknown");
        json_t *p = json_object_get(s, "pending"), *ws = json_object_get(s, "workers");
        if (json_is_integer(p))
            snprintf(pending, sizeof pending, "%lld%s", (long long)json_integer_value(p),
                     json_is_true(json_object_get(s, "pending_capped")) ? "+" : "");
        json_t *mx = json_object_get(s, "max_workers");
        if (json_is_integer(mx))
            snprintf(workers, sizeof workers, "%zu/%lld", json_array_size(ws),
                     (long long)json_integer_value(mx));
        else
            snprintf(workers, sizeof workers, "%zu", json_array_size(ws));
        const char *reason = str_or(s, "reason", NULL);
        fprintf(out, "%-30s %-9s %7s  %s%s%s%s\n", str_or(s, "name", "?"), ustate, pending, workers,
                json_is_true(json_object_get(s, "backoff")) ? "  (restart backoff)" : "",
                reason ? "  " : "", reason ? reason : "");
        size_t j;
        json_t *w;
        json_array_foreach(ws, j, w)
            print_worker(w, out);
        json_array_foreach(json_object_get(s, "release_failures"), j, w)
            fprintf(out, "  release_sql failing for %s (SQLSTATE %s, attempt %lld): %s\n",
                    str_or(w, "worker_id", "?"), str_or(w, "sqlstate", "?"),
                    (long long)json_integer_value(json_object_get(w, "attempts")),
                    str_or(w, "message", ""));
    }
}

/* ---------------------------------------------------------------- without the daemon */

static PGresult *query(PGconn *c, const char *sql, int nparams, const char *host)
{
    const char *p[] = {host};
    PGresult *r = PQexecParams(c, sql, nparams, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgwake status: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The stage object for name in arr, added (state unknown) when missing. */
static json_t *stage_in(json_t *arr, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
        if (strcmp(str_or(s, "name", ""), name) == 0)
            return s;
    s = json_pack("{s:s,s:n,s:n,s:n,s:[]}", "name", name, "state", "reason", "pending", "workers");
    json_array_append_new(arr, s);
    return s;
}

/* Builds the status JSON from pgwake.stage_state (what the daemon last
 * reported), v_workers' live rows and v_stage_stats, for this config's host
 * (every host without a configuration). */
static json_t *status_from_db(PGconn *c, const Config *cfg)
{
    const char *host = cfg ? cfg->host : NULL;
    PGresult *ss = query(c, "SELECT stage, state, reason FROM pgwake.stage_state"
                            " WHERE $1::text IS NULL OR host = $1 ORDER BY stage", 1, host);
    PGresult *ws = query(c, "SELECT id, stage, pid, state,"
                            " extract(epoch FROM pg_catalog.now() - started_at)::float8, tasks[1]"
                            " FROM pgwake.v_workers WHERE state IN ('starting', 'alive')"
                            " AND ($1::text IS NULL OR host = $1) ORDER BY stage, id", 1, host);
    PGresult *pe = query(c, "SELECT stage, pending FROM pgwake.v_stage_stats", 0, NULL);
    json_t *stages = json_array();
    for (const StageConf *sc = cfg ? cfg->stages : NULL; sc; sc = sc->next)
        stage_in(stages, sc->name);
    for (int i = 0; ss && i < PQntuples(ss); i++) {
        json_t *s = stage_in(stages, PQgetvalue(ss, i, 0));
        json_object_set_new(s, "state", json_string(PQgetvalue(ss, i, 1)));
        if (!PQgetisnull(ss, i, 2))
            json_object_set_new(s, "reason", json_string(PQgetvalue(ss, i, 2)));
    }
    for (int i = 0; ws && i < PQntuples(ws); i++) {
        json_t *w = json_pack("{s:s,s:o,s:s,s:f}", "id", PQgetvalue(ws, i, 0), "pid",
                              PQgetisnull(ws, i, 2) ? json_null() : json_integer(atoi(PQgetvalue(ws, i, 2))),
                              "state", PQgetvalue(ws, i, 3), "uptime_s", atof(PQgetvalue(ws, i, 4)));
        json_object_set_new(w, "task", PQgetisnull(ws, i, 5) ? json_null()
                                        : json_integer(strtoll(PQgetvalue(ws, i, 5), NULL, 10)));
        json_array_append_new(json_object_get(stage_in(stages, PQgetvalue(ws, i, 1)), "workers"), w);
    }
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s) {
        long long n = 0;
        for (int r = 0; pe && r < PQntuples(pe); r++)
            if (strcmp(PQgetvalue(pe, r, 0), str_or(s, "name", "")) == 0)
                n = strtoll(PQgetvalue(pe, r, 1), NULL, 10);
        json_object_set_new(s, "pending", pe ? json_integer(n) : json_null());
    }
    PQclear(ss);
    PQclear(ws);
    PQclear(pe);
    return json_pack("{s:s?,s:b,s:{s:b,s:n},s:n,s:o}", "host", host, "daemon_running", 0,
                     "database", "connected", 1, "last_error", "maintenance", "stages", stages);
}

/* Workers declared dead lately, on any host: a host whose daemon died shows
 * up here, declared dead by whichever daemon holds maintenance. */
static void print_dead(PGconn *c, FILE *out)
{
    const char *lim[] = {"20"};
    PGresult *r = PQexecParams(c, deaths_sql, 1, NULL, lim, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        fprintf(out, "\nworkers declared dead in the last hour (any host):\n");
        for (int i = 0; i < PQntuples(r); i++) {
            fprintf(out, "  %-28s %-20s %-16s dead %s s ago: %s\n", PQgetvalue(r, i, 0),
                    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 4),
                    PQgetvalue(r, i, 3));
            /* Its last lines, as the alert carries them. */
            for (const char *l = PQgetvalue(r, i, 5); !PQgetisnull(r, i, 5) && *l;) {
                const char *nl = strchr(l, '\n');
                int n = nl ? (int)(nl - l) : (int)strlen(l);
                fprintf(out, "      | %.*s\n", n, l);
                l += n + (nl != NULL);
            }
        }
    }
    PQclear(r);
}

static int not_running(const CliOpts *o, const Config *cfg, const char *addr, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "pgwake daemon not running (http://%s unreachable: %s)", addr, why);
    PGconn *c = cli_connect(o, cfg);
    if (!c) {
        fprintf(stderr, "%s\n", msg);
        return EXIT_NOT_RUNNING;
    }
    json_t *st = status_from_db(c, cfg);
    if (o->json) {
        char *s = json_dumps(st, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        fprintf(stderr, "%s\n", msg);
    } else {
        printf("(from the database: states as last reported)\n");
        print_status(st, stdout);
        print_dead(c, stdout);
        printf("%s\n", msg);
    }
    PQfinish(c);
    json_decref(st);
    return EXIT_NOT_RUNNING;
}

/* cmd_status: exit 0 when every stage runs, 1 when one is FATAL or stopped
 * (or the daemon answered with an error), 3 when the daemon is not running. */
int cmd_status(const CliOpts *o)
{
    if (o->nargs) {
        fprintf(stderr, "pgwake status: unexpected argument \"%s\"\n", o->args[0]);
        return EXIT_USAGE;
    }
    Config *cfg;
    int rc = cli_load_config(o, false, &cfg);
    if (rc)
        return rc;
    char addr[300], err[ERR_LEN];
    httpcli_addr(cfg, addr, sizeof addr);
    HttpReply r;
    if (!httpcli_call(cfg, false, "/status", &r, err, sizeof err)) {
        rc = not_running(o, cfg, addr, err);
        cfg_free(cfg);
        return rc;
    }
    json_t *st = r.code == 200 && r.body ? json_loads(r.body, 0, NULL) : NULL;
    if (!st) {
        fprintf(stderr, "pgwake status: http://%s/status answered %ld: %.300s\n", addr, r.code,
                r.body ? r.body : "");
        rc = EXIT_RUNTIME;
    } else if (o->json) {
        fputs(r.body, stdout);
        rc = status_code(st);
    } else {
        print_status(st, stdout);
        rc = status_code(st);
        /* Quietly: the daemon answered; the database part is a bonus. */
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *vals[] = {dsn_pick(o->dsn, cfg ? cfg->dsn : NULL, (GetenvFn)getenv), "3", NULL};
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(c) == CONNECTION_OK)
            print_dead(c, stdout);
        PQfinish(c);
    }
    json_decref(st);
    httpcli_reply_free(&r);
    cfg_free(cfg);
    return rc;
}

/* ---------------------------------------------------------------- runs */

static void bar(char *out, long long done, long long total)
{
    int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;
    out[0] = '[';
    for (int i = 0; i < BAR_WIDTH; i++)
        out[1 + i] = i < fill ? '#' : '.';
    out[BAR_WIDTH + 1] = ']';
    out[BAR_WIDTH + 2] = '\0';
}

static void print_runs(json_t *runs, FILE *out)
{
    if (!json_array_size(runs)) {
        fprintf(out, "no runs\n");
        return;
    }
    fprintf(out, "%-8s %-7s %-11s %-20s %s\n", "RUN", "STATE", "AGE", "CREATED", "TASKS");
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        char age[32], extra[96] = "";
        hms(age, sizeof age, json_number_value(json_object_get(r, "age_s")));
        long long dead = json_integer_value(json_object_get(r, "dead"));
        long long re = json_integer_value(json_object_get(r, "reexecuted"));
        if (dead || re)
            snprintf(extra, sizeof extra, " (%lld dead, %lld re-executed)", dead, re);
        fprintf(out, "%-8lld %-7s %-11s %-20s %lld/%lld done%s\n",
                (long long)json_integer_value(json_object_get(r, "id")), str_or(r, "state", "?"),
                age, str_or(r, "created_at", ""),
                (long long)json_integer_value(json_object_get(r, "done")),
                (long long)json_integer_value(json_object_get(r, "total")), extra);
        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(r, "progress"), j, p) {
            char b[BAR_WIDTH + 3];
            long long d = json_integer_value(json_object_get(p, "done"));
            long long t = json_integer_value(json_object_get(p, "total"));
            bar(b, d, t);
            fprintf(out, "  %-28s %s %lld/%lld\n", str_or(p, "stage", "?"), b, d, t);
        }
    }
}

/* cmd_runs prints the newest --limit runs (default 20) from pgwake.v_runs. */
int cmd_runs(const CliOpts *o)
{
    if (o->nargs) {
        fprintf(stderr, "pgwake runs: unexpected argument \"%s\"\n", o->args[0]);
        return EXIT_USAGE;
    }
    int rc;
    PGconn *c = cli_open_db(o, &rc);
    if (!c)
        return rc;
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", o->limit);
    const char *p[] = {lim};
    PGresult *res = PQexecParams(c, report_runs_sql, 1, NULL, p, NULL, NULL, 0);
    json_t *runs = report_runs(res);
    if (!runs) {
        fprintf(stderr, "pgwake runs: %s", PQresultErrorMessage(res));
        rc = EXIT_RUNTIME;
    } else if (o->json) {
        char *s = json_dumps(runs, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        print_runs(runs, stdout);
    }
    json_decref(runs);
    PQclear(res);
    PQfinish(c);
    return rc;
}
