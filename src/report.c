/* report.c: the daemon described for people and programs: the status JSON
 * (stages, workers, what the database adds), the Prometheus exposition of the
 * counters kept by stage.c, worker.c and daemon.c, and recent runs as JSON. */
#include "report.h"
#include "clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "daemon.h"
#include "http.h"
#include "maint.h"
#include "metrics.h"
#include "outlog.h"
#include "release_sql.h"
#include "stage.h"
#include "verify.h"
#include "worker.h"

/* The page asks every 2 s, on the connection that also wakes workers: a
 * backlog is counted up to REPORT_PENDING_CAP, so a million pending tasks
 * cost what ten thousand do (/metrics has the exact gauge). */
#define REPORT_PENDING_CAP 10000
#define STR(x) #x
#define XSTR(x) STR(x)

const char report_status_sql[] =
    "SELECT 'pending', s.stage, (SELECT count(*) FROM (SELECT 1 FROM pgwake.tasks t"
    "   WHERE t.stage = s.stage AND t.status = 'pending' AND t.not_before <= pg_catalog.now()"
    "   LIMIT " XSTR(REPORT_PENDING_CAP) " + 1) x)::text"
    "  FROM pg_catalog.unnest($2::text[]) s (stage)"
    " UNION ALL "
    "SELECT 'task', t.lease_owner, string_agg(t.id::text, ',' ORDER BY t.id)"
    "  FROM pgwake.tasks t JOIN pgwake.workers w ON w.id = t.lease_owner"
    " WHERE t.status = 'leased' AND w.host = $1 GROUP BY t.lease_owner";

/* Progress comes from the tasks in pipeline order (each stage's first task),
 * which the view's jsonb object cannot keep. */
const char report_runs_sql[] =
    "SELECT r.id, r.stage, r.state, r.total, r.done, r.dead, r.reexecuted,"
    "       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "       extract(epoch FROM pg_catalog.now() - r.created_at)::float8,"
    "       CASE WHEN r.state <> 'active'"
    "            THEN extract(epoch FROM r.finished_at - r.created_at)::float8 END,"
    "       COALESCE((SELECT json_agg(json_build_object('stage', p.stage, 'done', p.done,"
    "                                                   'total', p.total) ORDER BY p.first_id)"
    "                   FROM (SELECT t.stage, count(*) FILTER (WHERE t.status = 'done') AS done,"
    "                                count(*) AS total, min(t.id) AS first_id"
    "                           FROM pgwake.tasks t WHERE t.run_id = r.id GROUP BY t.stage) p),"
    "                '[]')"
    "  FROM pgwake.v_runs r ORDER BY r.id DESC LIMIT $1";

/* ---------------------------------------------------------------- status JSON */

/* Finds the value of row (kind, key) in the status query's result. */
static const char *lookup(PGresult *res, const char *kind, const char *key)
{
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3)
        return NULL;
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), kind) == 0 && strcmp(PQgetvalue(res, i, 1), key) == 0)
            return PQgetvalue(res, i, 2);
    return NULL;
}

static bool res_ok(PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_TUPLES_OK;
}

/* Resident set size from /proc/PID/statm (its second field, in pages). */
static json_t *rss_json(pid_t pid)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (!f)
        return json_null();
    long long size, resident;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    if (n != 2)
        return json_null();
    return json_integer(resident * sysconf(_SC_PAGESIZE));
}

/* A worker's task ids from "id,id,...": the first as "task", all as "tasks". */
static void add_tasks(json_t *o, const char *list, bool known)
{
    json_t *arr = json_array();
    for (const char *p = list; p && *p;) {
        json_array_append_new(arr, json_integer(strtoll(p, NULL, 10)));
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    json_object_set_new(o, "task", json_array_size(arr) ? json_copy(json_array_get(arr, 0))
                                                        : json_null());
    if (known)
        json_object_set_new(o, "tasks", arr);
    else
        json_decref(arr);
}

static json_t *worker_json(Worker *w, PGresult *res, int64_t now)
{
    /* Registering has no process yet: it is starting as far as users care. A
     * starting worker that holds a lease is working (it reports idle only
     * when it runs out of work). */
    const char *tasks = w->id[0] ? lookup(res, "task", w->id) : NULL;
    const char *state = w->state == WK_REGISTERING ? "starting"
                        : w->state == WK_STARTING && tasks ? "busy"
                                                           : worker_state_names[w->state];
    json_t *o = json_object();
    json_object_set_new(o, "id", w->id[0] ? json_string(w->id) : json_null());
    json_object_set_new(o, "pid", w->pid > 0 ? json_integer(w->pid) : json_null());
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "uptime_s",
                        json_real(w->spawned_ms ? (double)(now - w->spawned_ms) / 1000.0 : 0.0));
    add_tasks(o, tasks, res_ok(res));
    json_object_set_new(o, "rss_bytes", rss_json(w->pid));
    return o;
}

static const char *stage_state_name(const Stage *s)
{
    return s->stopped ? "stopped" : s->fatal ? "fatal" : "running";
}

/* report_stage describes one stage; res (the status query's result, or NULL
 * when the database could not be asked) adds pending and each worker's task. */
json_t *report_stage(Stage *s, PGresult *res)
{
    int64_t now = mono_ms();
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "state", json_string(stage_state_name(s)));
    json_object_set_new(o, "reason", s->fatal && s->fatal_reason[0] ? json_string(s->fatal_reason)
                                     : s->stopped ? json_string("stopped by the operator")
                                                  : json_null());
    /* A pending_sql stage counts its own work: pgwake.tasks says nothing of it. */
    json_t *pending = json_null();
    bool capped = false;
    if (res_ok(res) && !s->conf->pending_sql) {
        const char *v = lookup(res, "pending", s->name);
        long long n = v ? strtoll(v, NULL, 10) : 0;
        capped = n > REPORT_PENDING_CAP;
        pending = json_integer(capped ? REPORT_PENDING_CAP : n);
    }
    json_object_set_new(o, "pending", pending);
    json_object_set_new(o, "pending_capped", json_boolean(capped));
    json_object_set_new(o, "backoff", json_boolean(s->wr.in_backoff));
    json_object_set_new(o, "restarts", json_integer((json_int_t)s->st.restarts));
    json_object_set_new(o, "crashes", json_integer((json_int_t)s->st.crashes));
    json_object_set_new(o, "spawns", json_integer((json_int_t)s->st.spawns));
    json_object_set_new(o, "min_workers", json_integer(s->conf->min_workers));
    json_object_set_new(o, "max_workers", json_integer(s->conf->max_workers));
    if (s->conf->release_sql)
        json_object_set_new(o, "release_failures", release_sql_failures_json(s->d->rsql, s->name));
    /* The list holds the newest first; people read the oldest first. */
    json_t *ws = json_array();
    for (Worker *w = s->workers; w; w = w->next)
        if (w->state != WK_EXITED)
            json_array_insert_new(ws, 0, worker_json(w, res, now));
    json_object_set_new(o, "workers", ws);
    return o;
}

/* One persistent query that failed and waits for its re-send (a release
 * held up by a row lock, say). */
static void add_retrying(void *ctx, const char *label, int tries, const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "what", json_string(label));
    json_object_set_new(o, "tries", json_integer(tries));
    json_object_set_new(o, "last_error", json_string(error));
    json_array_append_new(ctx, o);
}

/* report_status is GET /status: the daemon, its database connection and every
 * stage it serves; res as for report_stage. Secrets never appear here. */
json_t *report_status(Daemon *d, PGresult *res)
{
    json_t *o = json_object();
    json_object_set_new(o, "host", json_string(d->cfg->host));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "ready", json_boolean(d->ready));
    json_object_set_new(o, "stopping", json_boolean(d->stopping));
    const char *err = db_last_error(d->db);
    json_t *db = json_object();
    json_object_set_new(db, "connected", json_boolean(d->db_up));
    json_object_set_new(db, "last_error", err && *err ? json_string(err) : json_null());
    json_object_set_new(db, "reconnects", json_integer((json_int_t)db_reconnects(d->db)));
    json_object_set_new(db, "maintenance_connected", json_boolean(db_ready(d->mdb)));
    int64_t oldest = db_oldest_ms(d->db) > db_oldest_ms(d->mdb) ? db_oldest_ms(d->db) : db_oldest_ms(d->mdb);
    json_object_set_new(db, "oldest_request_s", json_real((double)oldest / 1000.0));
    json_t *retrying = json_array();
    db_each_retrying(d->db, add_retrying, retrying);
    db_each_retrying(d->mdb, add_retrying, retrying);
    json_object_set_new(db, "retrying", retrying);
    json_object_set_new(o, "database", db);
    json_object_set_new(o, "maintenance", json_boolean(d->maint && maint_holder(d->maint)));
    /* Any role may take the maintenance lock: say who keeps it from us. */
    const char *holder = d->maint ? maint_holder_info(d->maint) : NULL;
    json_object_set_new(o, "maintenance_holder", holder ? json_string(holder) : json_null());
    json_object_set_new(o, "control_token_required", json_boolean(d->cfg->control_token != NULL));
    json_t *stages = json_array();
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            json_array_append_new(stages, report_stage(d->stages[i], res));
    json_object_set_new(o, "stages", stages);
    return o;
}

/* ---------------------------------------------------------------- Prometheus text */

/* Per-stage counters of StageStats, one family each (table-driven, so a new
 * counter is one row). */
static const struct {
    const char *name, *help;
    size_t off;
} stage_counters[] = {
    {"pgwake_worker_spawns_total", "Workers started", offsetof(StageStats, spawns)},
    {"pgwake_worker_exits_total", "Workers that ended, for any reason", offsetof(StageStats, exits)},
    {"pgwake_worker_crashes_total", "Workers that ended with a non-zero exit, a signal or an exec failure",
     offsetof(StageStats, crashes)},
    {"pgwake_stage_restarts_total", "Restart backoffs that ended with the stage runnable",
     offsetof(StageStats, restarts)},
    {"pgwake_worker_wakes_total", "W bytes sent to idle workers", offsetof(StageStats, wakes)},
    {"pgwake_stage_recounts_total", "Queries counting a stage's claimable work",
     offsetof(StageStats, recounts)},
    {"pgwake_stage_fast_paths_total", "Task or run notifications acted on before any query",
     offsetof(StageStats, fast_paths)},
    {"pgwake_lease_releases_total", "Leases taken back from workers that ended while holding them",
     offsetof(StageStats, releases)},
    {"pgwake_task_reexecutions_total", "Tasks executed again because their worker was released",
     offsetof(StageStats, reexec)},
};

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Stage names match ^[a-z0-9_][a-z0-9_.-]*$ (config.c), so labels need no escaping. */
static void stage_families(Daemon *d, struct evbuffer *out)
{
    family(out, "pgwake_stage_state", "gauge", "1 for the state the stage is in");
    static const char *const states[] = {"running", "fatal", "stopped"};
    for (int i = 0; i < d->nstages; i++)
        for (size_t k = 0; k < 3; k++)
            if (!d->stages[i]->removed)
                evbuffer_add_printf(out, "pgwake_stage_state{stage=\"%s\",state=\"%s\"} %d\n",
                                    d->stages[i]->name, states[k],
                                    strcmp(stage_state_name(d->stages[i]), states[k]) == 0);
    family(out, "pgwake_workers", "gauge", "Workers of the stage by state");
    for (int i = 0; i < d->nstages; i++)
        for (int k = 0; k < WK__COUNT; k++)
            if (!d->stages[i]->removed && k != WK_EXITED)
                evbuffer_add_printf(out, "pgwake_workers{stage=\"%s\",state=\"%s\"} %d\n",
                                    d->stages[i]->name, worker_state_names[k],
                                    d->stages[i]->count[k]);
    family(out, "pgwake_stage_claimable", "gauge",
           "Claimable tasks found by the last recount (at most max_workers)");
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            evbuffer_add_printf(out, "pgwake_stage_claimable{stage=\"%s\"} %d\n",
                                d->stages[i]->name, d->stages[i]->claimable);
    family(out, "pgwake_release_sql_failing", "gauge",
           "Ended workers whose release_sql failed and waits for its retry (stages with release_sql)");
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed && d->stages[i]->conf->release_sql)
            evbuffer_add_printf(out, "pgwake_release_sql_failing{stage=\"%s\"} %d\n",
                                d->stages[i]->name, release_sql_failing(d->rsql, d->stages[i]->name));
    for (size_t c = 0; c < sizeof stage_counters / sizeof stage_counters[0]; c++) {
        family(out, stage_counters[c].name, "counter", stage_counters[c].help);
        for (int i = 0; i < d->nstages; i++) {
            const Stage *s = d->stages[i];
            if (s->removed)
                continue;
            uint64_t v;
            memcpy(&v, (const char *)&s->st + stage_counters[c].off, sizeof v);
            evbuffer_add_printf(out, "%s{stage=\"%s\"} %llu\n", stage_counters[c].name, s->name,
                                (unsigned long long)v);
        }
    }
}

static void histogram(struct evbuffer *out, const char *name, const char *stage, const Histogram *h)
{
    for (int b = 0; b <= HIST_NBOUNDS; b++) {
        char le[32];
        if (b == HIST_NBOUNDS)
            snprintf(le, sizeof le, "+Inf");
        else
            snprintf(le, sizeof le, "%g", hist_bounds[b]);
        evbuffer_add_printf(out, "%s_bucket{stage=\"%s\",le=\"%s\"} %llu\n", name, stage, le,
                            (unsigned long long)hist_cumulative(h, b));
    }
    evbuffer_add_printf(out, "%s_sum{stage=\"%s\"} %.6f\n%s_count{stage=\"%s\"} %llu\n", name,
                        stage, h->sum, name, stage, (unsigned long long)h->count);
}

/* report_metrics is GET /metrics: Prometheus text format 0.0.4, names with the
 * pgwake_ prefix, counters ending in _total, times in seconds, stage and
 * channel as labels. */
void report_metrics(Daemon *d, struct evbuffer *out)
{
    family(out, "pgwake_ready", "gauge", "1 once start-up is done");
    evbuffer_add_printf(out, "pgwake_ready %d\n", d->ready ? 1 : 0);
    family(out, "pgwake_database_up", "gauge", "1 while the database connection is usable");
    evbuffer_add_printf(out, "pgwake_database_up %d\n", d->db_up ? 1 : 0);
    family(out, "pgwake_database_reconnects_total", "counter", "Database connections lost and made again");
    evbuffer_add_printf(out, "pgwake_database_reconnects_total %lu\n", db_reconnects(d->db));
    family(out, "pgwake_database_maintenance_up", "gauge",
           "1 while the maintenance connection (releases, verdicts, maintenance) is usable");
    evbuffer_add_printf(out, "pgwake_database_maintenance_up %d\n", db_ready(d->mdb) ? 1 : 0);
    family(out, "pgwake_database_oldest_request_seconds", "gauge",
           "Age of the oldest database request not answered yet (either connection)");
    int64_t oldest = db_oldest_ms(d->db) > db_oldest_ms(d->mdb) ? db_oldest_ms(d->db) : db_oldest_ms(d->mdb);
    evbuffer_add_printf(out, "pgwake_database_oldest_request_seconds %.3f\n", (double)oldest / 1000.0);
    family(out, "pgwake_worker_hints_refuted_total", "counter",
           "pgwake_heartbeat notifications saying a local worker ended that its row contradicted");
    evbuffer_add_printf(out, "pgwake_worker_hints_refuted_total %llu\n",
                        (unsigned long long)(d->verify ? verify_refuted(d->verify) : 0));
    family(out, "pgwake_maintenance", "gauge", "1 while this daemon holds maintenance");
    evbuffer_add_printf(out, "pgwake_maintenance %d\n", d->maint && maint_holder(d->maint));
    family(out, "pgwake_notifications_total", "counter", "Notifications received, by channel");
    for (int c = 0; c < CH__COUNT; c++)
        evbuffer_add_printf(out, "pgwake_notifications_total{channel=\"%s\"} %llu\n",
                            channel_names[c], (unsigned long long)d->st.notifications[c]);
    family(out, "pgwake_notifications_ignored_total", "counter",
           "Well-formed notifications naming a stage not served here");
    evbuffer_add_printf(out, "pgwake_notifications_ignored_total %llu\n",
                        (unsigned long long)d->st.ignored);
    family(out, "pgwake_notifications_unparseable_total", "counter",
           "Notifications whose payload could not be parsed (answered with a recount of every stage)");
    evbuffer_add_printf(out, "pgwake_notifications_unparseable_total %llu\n",
                        (unsigned long long)d->st.unparseable);
    stage_families(d, out);
    family(out, "pgwake_log_lines_dropped_total", "counter",
           "Worker output lines lost because the stage's log file could not be written");
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            evbuffer_add_printf(out, "pgwake_log_lines_dropped_total{stage=\"%s\"} %llu\n",
                                d->stages[i]->name,
                                (unsigned long long)outlog_dropped(d->stages[i]->log));
    http_metrics(d->http, out);
    family(out, "pgwake_wake_latency_seconds", "histogram",
           "From a notification naming the stage to the W that woke an idle worker for it");
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            histogram(out, "pgwake_wake_latency_seconds", d->stages[i]->name,
                      &d->stages[i]->st.wake_latency);
}

/* ---------------------------------------------------------------- runs */

static json_t *num_or_null(PGresult *res, int row, int col, bool real)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    const char *v = PQgetvalue(res, row, col);
    return real ? json_real(strtod(v, NULL)) : json_integer(strtoll(v, NULL, 10));
}

/* report_runs turns report_runs_sql's rows into a JSON array (NULL when res
 * is not a result of that query). */
json_t *report_runs(PGresult *res)
{
    if (!res_ok(res) || PQnfields(res) != 11)
        return NULL;
    static const char *const ints[] = {"total", "done", "dead", "reexecuted"};
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", num_or_null(res, i, 0, false));
        json_object_set_new(o, "stage", json_string(PQgetvalue(res, i, 1)));
        json_object_set_new(o, "state", json_string(PQgetvalue(res, i, 2)));
        for (int k = 0; k < 4; k++)
            json_object_set_new(o, ints[k], num_or_null(res, i, 3 + k, false));
        json_object_set_new(o, "created_at", json_string(PQgetvalue(res, i, 7)));
        json_object_set_new(o, "age_s", num_or_null(res, i, 8, true));
        json_object_set_new(o, "duration_s", num_or_null(res, i, 9, true));
        json_t *p = json_loads(PQgetvalue(res, i, 10), 0, NULL);
        json_object_set_new(o, "progress", p ? p : json_array());
        json_array_append_new(arr, o);
    }
    return arr;
}
