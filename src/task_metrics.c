/* task_metrics.c: see task_metrics.h. Gauges read only unfinished tasks
 * (0004_console's partial index), so a million done rows cost nothing.
 * Counters and histograms add up the tasks (and failures) since the previous
 * read, up to SETTLE_S before now(): finished_at is its transaction's start,
 * so a row may become visible a little after its timestamp. They count from
 * this daemon's start (a Prometheus counter reset at a restart); every daemon
 * reports the whole database, so aggregate with max by (stage). */
#include "task_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "daemon.h"
#include "log.h"

#define SETTLE_S 5
#define STR(x) #x
#define XSTR(x) STR(x)
#define MAX_STAGES 1000

static const double bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
#define NB (sizeof bounds / sizeof bounds[0])

typedef struct Hist {
    unsigned long long bucket[NB + 1]; /* +Inf last */
    double sum;
} Hist;

typedef struct Row {
    char stage[64];
    double pending, retrying, leased, dead, oldest_s; /* gauges (-1 oldest: none) */
    unsigned long long completed, died, failed;     /* counters */
    Hist total;                                     /* enqueue to done of completed tasks */
    Hist run;                                       /* claim to done of completed tasks */
    bool seen : 1;                                  /* in the last gauge read */
} Row;

struct TaskMetrics {
    Daemon *d;
    Row *rows;
    int nrows;
    double from;          /* epoch: finished tasks up to here are counted */
    bool reading : 1;     /* a query is in flight */
};

static const char metrics_sql[] =
    "WITH b AS (SELECT extract(epoch FROM pg_catalog.now())::float8 - " XSTR(SETTLE_S) " AS upto)"
    " SELECT pg_catalog.json_build_object("
    "  'upto', (SELECT upto FROM b),"
    "  'gauges', (SELECT pg_catalog.json_agg(g) FROM ("
    "    SELECT t.stage,"
    "      count(*) FILTER (WHERE t.status = 'pending' AND t.not_before <= pg_catalog.now()) AS pending,"
    "      count(*) FILTER (WHERE t.status = 'pending' AND t.not_before > pg_catalog.now()) AS retrying,"
    "      count(*) FILTER (WHERE t.status = 'leased') AS leased,"
    "      count(*) FILTER (WHERE t.status = 'dead') AS dead,"
    "      extract(epoch FROM pg_catalog.now() - min(t.not_before)"
    "        FILTER (WHERE t.status = 'pending' AND t.not_before <= pg_catalog.now()))::float8 AS oldest"
    "    FROM pgwake.tasks t WHERE t.status <> 'done' GROUP BY t.stage LIMIT 1000) g),"
    "  'finished', CASE WHEN $1::float8 IS NULL THEN NULL ELSE (SELECT pg_catalog.json_agg(f) FROM ("
    "    SELECT x.stage, x.kind, k.bucket, count(*) AS n, sum(x.s) AS sum FROM ("
    /* a done task gives two samples: enqueue to done, and claim to done */
    "      SELECT t.stage, v.kind, v.s FROM pgwake.tasks t,"
    "        LATERAL (VALUES ('done', extract(epoch FROM t.finished_at - t.created_at)::float8),"
    "                        ('run', extract(epoch FROM t.finished_at - t.started_at)::float8)) v (kind, s)"
    "      WHERE t.status = 'done' AND v.s IS NOT NULL"
    "        AND t.finished_at > pg_catalog.to_timestamp($1::float8)"
    "        AND t.finished_at <= pg_catalog.to_timestamp((SELECT upto FROM b))"
    "      UNION ALL"
    "      SELECT t.stage, 'dead', 0 FROM pgwake.tasks t WHERE t.status = 'dead'"
    "        AND t.finished_at > pg_catalog.to_timestamp($1::float8)"
    "        AND t.finished_at <= pg_catalog.to_timestamp((SELECT upto FROM b))"
    "      UNION ALL"
    "      SELECT f.stage, 'failed', 0 FROM pgwake.task_failures f"
    "      WHERE f.failed_at > pg_catalog.to_timestamp($1::float8)"
    "        AND f.failed_at <= pg_catalog.to_timestamp((SELECT upto FROM b))) x,"
    /* the bucket: how many bounds lie below the duration (as take_finished reads it) */
    "    LATERAL (SELECT count(*) AS bucket FROM pg_catalog.unnest($2::float8[]) u WHERE x.s > u) k"
    "    GROUP BY 1, 2, 3) f) END)::text";

TaskMetrics *task_metrics_new(Daemon *d)
{
    TaskMetrics *m = calloc(1, sizeof *m);
    if (m) {
        m->d = d;
        m->from = -1;
    }
    return m;
}

static Row *row_for(TaskMetrics *m, const char *stage)
{
    for (int i = 0; i < m->nrows; i++)
        if (strcmp(m->rows[i].stage, stage) == 0)
            return &m->rows[i];
    if (m->nrows >= MAX_STAGES || strlen(stage) >= sizeof m->rows[0].stage)
        return NULL;
    Row *r = realloc(m->rows, (size_t)(m->nrows + 1) * sizeof *r);
    if (!r)
        return NULL;
    m->rows = r;
    r = &m->rows[m->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->stage, sizeof r->stage, "%s", stage);
    return r;
}

static void take_gauges(TaskMetrics *m, json_t *gauges)
{
    for (int i = 0; i < m->nrows; i++) {
        Row *r = &m->rows[i];
        r->seen = false;
        r->pending = r->retrying = r->leased = r->dead = 0;
        r->oldest_s = -1;
    }
    size_t i;
    json_t *g;
    json_array_foreach(gauges, i, g) {
        Row *r = row_for(m, json_string_value(json_object_get(g, "stage")));
        if (!r)
            continue;
        r->seen = true;
        r->pending = json_number_value(json_object_get(g, "pending"));
        r->retrying = json_number_value(json_object_get(g, "retrying"));
        r->leased = json_number_value(json_object_get(g, "leased"));
        r->dead = json_number_value(json_object_get(g, "dead"));
        json_t *o = json_object_get(g, "oldest");
        r->oldest_s = json_is_number(o) ? json_number_value(o) : -1;
    }
}

static void hist_add(Hist *h, json_t *f, unsigned long long n)
{
    json_int_t b = json_integer_value(json_object_get(f, "bucket"));
    h->bucket[b < 0 || b > (json_int_t)NB ? NB : (size_t)b] += n;
    h->sum += json_number_value(json_object_get(f, "sum"));
}

/* Adds what finished since the previous read: rows (stage, kind, bucket, n,
 * sum), kind done / run (the two durations of completed tasks), dead or
 * failed (a failed attempt); bucket = how many bounds lie below the
 * durations. */
static void take_finished(TaskMetrics *m, json_t *finished)
{
    size_t i;
    json_t *f;
    json_array_foreach(finished, i, f) {
        Row *r = row_for(m, json_string_value(json_object_get(f, "stage")));
        const char *kind = json_string_value(json_object_get(f, "kind"));
        if (!r || !kind)
            continue;
        unsigned long long n = (unsigned long long)json_integer_value(json_object_get(f, "n"));
        if (strcmp(kind, "done") == 0) {
            r->completed += n;
            hist_add(&r->total, f, n);
        } else if (strcmp(kind, "run") == 0) {
            hist_add(&r->run, f, n);
        } else if (strcmp(kind, "dead") == 0) {
            r->died += n;
        } else if (strcmp(kind, "failed") == 0) {
            r->failed += n;
        }
    }
}

static void read_cb(void *arg, PGresult *res)
{
    TaskMetrics *m = arg;
    m->reading = false;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res)
            log_warn("metrics: task query failed: %s", PQresultErrorMessage(res));
        return;
    }
    json_t *j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (!j)
        return;
    take_gauges(m, json_object_get(j, "gauges"));
    take_finished(m, json_object_get(j, "finished"));
    m->from = json_number_value(json_object_get(j, "upto"));
    json_decref(j);
}

static void start_read(TaskMetrics *m)
{
    if (m->reading || !db_ready(m->d->db))
        return;
    char from[40], arr[200];
    snprintf(from, sizeof from, "%.6f", m->from);
    size_t n = (size_t)snprintf(arr, sizeof arr, "{");
    for (size_t b = 0; b < NB; b++)
        n += (size_t)snprintf(arr + n, sizeof arr - n, "%s%g", b ? "," : "", bounds[b]);
    snprintf(arr + n, sizeof arr - n, "}");
    const char *params[] = {m->from < 0 ? NULL : from, arr};
    if (db_query(m->d->db, metrics_sql, 2, params, 0, read_cb, m))
        m->reading = true;
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(TaskMetrics *m, struct evbuffer *out, const char *name, const char *help, size_t off)
{
    family(out, name, "gauge", help);
    for (int i = 0; i < m->nrows; i++) {
        double v = *(const double *)((const char *)&m->rows[i] + off);
        if (v >= 0)
            evbuffer_add_printf(out, "%s{stage=\"%s\"} %.17g\n", name, m->rows[i].stage, v);
    }
}

static void counter(TaskMetrics *m, struct evbuffer *out, const char *name, const char *help, size_t off)
{
    family(out, name, "counter", help);
    for (int i = 0; i < m->nrows; i++)
        evbuffer_add_printf(out, "%s{stage=\"%s\"} %llu\n", name, m->rows[i].stage,
                            *(const unsigned long long *)((const char *)&m->rows[i] + off));
}

static void histogram(TaskMetrics *m, struct evbuffer *out, const char *name, const char *help, size_t off)
{
    family(out, name, "histogram", help);
    for (int i = 0; i < m->nrows; i++) {
        const char *stage = m->rows[i].stage;
        const Hist *h = (const Hist *)((const char *)&m->rows[i] + off);
        unsigned long long cum = 0;
        for (size_t b = 0; b < NB; b++) {
            cum += h->bucket[b];
            evbuffer_add_printf(out, "%s_bucket{stage=\"%s\",le=\"%g\"} %llu\n", name, stage, bounds[b], cum);
        }
        cum += h->bucket[NB];
        evbuffer_add_printf(out, "%s_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n"
                                 "%s_sum{stage=\"%s\"} %.6f\n%s_count{stage=\"%s\"} %llu\n",
                            name, stage, cum, name, stage, h->sum, name, stage, cum);
    }
}

/* task_metrics_write writes what the last read found, then starts the next. */
void task_metrics_write(TaskMetrics *m, struct evbuffer *out)
{
    if (!m)
        return;
    gauge(m, out, "pgwake_stage_backlog_tasks", "Tasks claimable now (pending, not_before reached)",
          offsetof(Row, pending));
    gauge(m, out, "pgwake_stage_retrying_tasks", "Pending tasks waiting out a retry backoff",
          offsetof(Row, retrying));
    gauge(m, out, "pgwake_stage_leased_tasks", "Tasks leased by a worker now", offsetof(Row, leased));
    gauge(m, out, "pgwake_stage_dead_tasks", "Dead tasks kept in pgwake.tasks (until pruned)",
          offsetof(Row, dead));
    gauge(m, out, "pgwake_stage_oldest_pending_age_seconds",
          "Age of the oldest claimable task (absent with none)", offsetof(Row, oldest_s));
    counter(m, out, "pgwake_tasks_completed_total", "Tasks that ended done, counted since this daemon started",
            offsetof(Row, completed));
    counter(m, out, "pgwake_tasks_dead_total",
            "Tasks that ended dead (attempts used up, fail without retry, cancelled), since this daemon started",
            offsetof(Row, died));
    counter(m, out, "pgwake_task_failures_total",
            "Failed attempts (pgwake.fail, retried or final), when they happened, since this daemon started",
            offsetof(Row, failed));
    histogram(m, out, "pgwake_task_duration_seconds",
              "From enqueue (created_at) to done (finished_at) of completed tasks: queue wait and run time",
              offsetof(Row, total));
    histogram(m, out, "pgwake_task_run_seconds",
              "From the claim of the last attempt (started_at) to done (finished_at) of completed tasks",
              offsetof(Row, run));
    start_read(m);
}

/* task_metrics_free: call before db_free (it cancels a read in flight). */
void task_metrics_free(TaskMetrics *m)
{
    if (!m)
        return;
    db_cancel_arg(m->d->db, m);
    free(m->rows);
    free(m);
}
