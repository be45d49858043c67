/* release_sql.c: the daemon's side of release_sql. The statements themselves
 * run in the database (sql/0003: a trigger on pgwake.workers runs a stage's
 * statement when one of its workers ends), so the pg_cron backstop releases
 * too; here each stage's statement is registered after every connect and
 * reload (a bad one at start is a configuration error, exit 2), and the
 * releases that failed are retried at their due time and kept for /status. */
#include "release_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "errfmt.h"
#include "log.h"

#define HINT_DELAY_MS 10    /* coalesces the ends of a burst of workers into one retry call */
#define RETRY_FLOOR_MS 50   /* never sooner than this after a call that left failures */
#define INVALID_VALUE "22023" /* what set_release_sql raises for a statement it refuses */

/* A release that failed and waits for its retry, as retry_releases() last said. */
typedef struct Failure {
    char *worker_id;
    char *stage;
    char sqlstate[8];
    char *message;
    int attempts;
    double next_retry_s;  /* at the time of that call */
} Failure;

/* One registration in flight: what its error message must name. */
typedef struct Reg {
    struct ReleaseSql *r;
    char *stage;
    char *file;
    int line;
    bool at_start : 1;    /* before "ready": a refused statement stops the daemon */
    bool removing : 1;    /* the stage has no release_sql: its old one is dropped */
    struct Reg *next;
} Reg;

struct ReleaseSql {
    Daemon *d;
    struct event retry_ev; /* the earliest due retry, or a coalesced hint */
    Failure *fails;        /* still failing, as of the last retry_releases() */
    int nfails;
    Reg *regs;             /* registrations in flight */
    bool inflight : 1;     /* a retry_releases() call is running */
    bool again : 1;        /* a hint arrived meanwhile: call again when it ends */
};

/* A few at a time, each waiting at most 50 ms for a row lock: the
 * maintenance connection runs one statement at a time and also carries the
 * other releases and verdicts (pg_cron's job retries the rest). */
static const char retry_sql[] =
    "SELECT worker_id, stage, released, attempts, sqlstate, message, next_retry_s"
    "  FROM pgwake.retry_releases(10, interval '50 milliseconds')";

static void fails_clear(ReleaseSql *r)
{
    for (int i = 0; i < r->nfails; i++) {
        free(r->fails[i].worker_id);
        free(r->fails[i].stage);
        free(r->fails[i].message);
    }
    free(r->fails);
    r->fails = NULL;
    r->nfails = 0;
}

static const Failure *fail_find(const Failure *f, int n, const char *worker_id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(f[i].worker_id, worker_id) == 0)
            return &f[i];
    return NULL;
}

/* log_row says what row i of the last call changed since the one before
 * (old): a release done after a failure, a new failure or a new attempt. */
static void log_row(const Failure *old, int nold, PGresult *res, int i)
{
    const char *wid = PQgetvalue(res, i, 0), *stage = PQgetvalue(res, i, 1);
    if (strcmp(PQgetvalue(res, i, 2), "t") == 0) {
        log_info("%s: release_sql for worker %s done on retry", stage, wid);
        return;
    }
    int attempts = atoi(PQgetvalue(res, i, 3));
    const Failure *o = fail_find(old, nold, wid);
    if (o && o->attempts == attempts)
        return;
    log_warn("%s: release_sql for worker %s failed (SQLSTATE %s): %s (attempt %d, retried in %.0f s)",
             stage, wid, PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), attempts,
             atof(PQgetvalue(res, i, 6)));
}

/* keep_row copies a still-failing row into f; false (f left empty) when out of memory. */
static bool keep_row(Failure *f, PGresult *res, int i)
{
    f->worker_id = strdup(PQgetvalue(res, i, 0));
    f->stage = strdup(PQgetvalue(res, i, 1));
    f->message = strdup(PQgetvalue(res, i, 5));
    snprintf(f->sqlstate, sizeof f->sqlstate, "%s", PQgetvalue(res, i, 4));
    f->attempts = atoi(PQgetvalue(res, i, 3));
    f->next_retry_s = atof(PQgetvalue(res, i, 6));
    if (f->worker_id && f->stage && f->message)
        return true;
    free(f->worker_id);
    free(f->stage);
    free(f->message);
    memset(f, 0, sizeof *f);
    return false;
}

static void retry_call(ReleaseSql *r);

static void retry_cb(void *arg, PGresult *res)
{
    ReleaseSql *r = arg;
    r->inflight = false;
    if (!res)
        return; /* connection lost: on_connect calls again */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("release_sql: unable to retry failed releases: %s (again in 60 s)",
                  PQresultErrorMessage(res));
        timer_arm_ms(&r->retry_ev, 60000);
        return;
    }
    int n = PQntuples(res), kept = 0;
    Failure *fresh = calloc((size_t)n + 1, sizeof *fresh);
    double next_s = -1;
    for (int i = 0; i < n; i++) {
        log_row(r->fails, r->nfails, res, i);
        if (strcmp(PQgetvalue(res, i, 2), "t") == 0)
            continue;
        double s = atof(PQgetvalue(res, i, 6));
        next_s = next_s < 0 || s < next_s ? s : next_s;
        if (!fresh || !keep_row(&fresh[kept], res, i))
            log_error("release_sql: out of memory keeping a failure for /status");
        else
            kept++;
    }
    fails_clear(r);
    r->fails = fresh;
    r->nfails = kept;
    if (r->again) {
        r->again = false;
        retry_call(r);
    } else if (next_s >= 0) {
        timer_arm_ms(&r->retry_ev,
                     next_s * 1000 < RETRY_FLOOR_MS ? RETRY_FLOOR_MS : (int64_t)(next_s * 1000));
    }
}

static void retry_call(ReleaseSql *r)
{
    if (r->inflight) {
        r->again = true;
        return;
    }
    event_del(&r->retry_ev);
    /* With the other releases: a wait on a locked row never delays the main
     * connection's wakes and recounts. */
    if (!db_query(r->d->mdb, retry_sql, 0, NULL, 0, retry_cb, r)) {
        log_error("release_sql: out of memory queueing a retry");
        return;
    }
    r->inflight = true;
}

static void retry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    retry_call(arg);
}

/* ---------------------------------------------------------------- registration */

static void reg_free(Reg *g)
{
    for (Reg **p = &g->r->regs; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    free(g->stage);
    free(g->file);
    free(g);
}

/* The problem text without set_release_sql's "release_sql of stage X: ". */
static const char *problem_of(PGresult *res, const char *stage)
{
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "release_sql of stage %s: ", stage);
    if (m && strncmp(m, prefix, strlen(prefix)) == 0)
        return m + strlen(prefix);
    return m ? m : PQresultErrorMessage(res);
}

static void reg_cb(void *arg, PGresult *res)
{
    Reg *g = arg;
    Daemon *d = g->r->d;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool refused = st && strcmp(st, INVALID_VALUE) == 0;
        if (g->removing)
            log_warn("%s: unable to drop an earlier release_sql: %s", g->stage,
                     PQresultErrorMessage(res));
        else if (refused)
            log_error("%s:%d: [stage:%s] release_sql: %s%s", g->file, g->line, g->stage,
                      problem_of(res, g->stage),
                      g->at_start ? "" : " (reload: the previous release_sql stays in force)");
        else
            log_error("%s: unable to register release_sql: %s%s", g->stage, PQresultErrorMessage(res),
                      st && strcmp(st, "42501") == 0
                          ? " (the daemon's role must own schema pgwake, or be granted EXECUTE on"
                            " pgwake.set_release_sql and pgwake.retry_releases)"
                          : "");
        if (g->at_start && !d->ready && !g->removing)
            daemon_abort(d, refused ? EXIT_USAGE : EXIT_RUNTIME);
    }
    reg_free(g);
}

/* register_stage queues set_release_sql for one stage (NULL removes it, so a
 * key taken out of the file stops running). */
static bool register_stage(ReleaseSql *r, const StageConf *sc, unsigned flags)
{
    Reg *g = calloc(1, sizeof *g);
    if (!g || !(g->stage = strdup(sc->name)) || !(g->file = strdup(r->d->cfg->path))) {
        if (g)
            free(g->stage);
        free(g);
        return false;
    }
    g->r = r;
    g->line = sc->release_sql_line;
    g->at_start = !r->d->ready;
    g->removing = !sc->release_sql;
    g->next = r->regs;
    r->regs = g;
    const char *p[] = {sc->name, sc->release_sql};
    if (db_query(r->d->db, "SELECT pgwake.set_release_sql($1, $2)", 2, p, flags, reg_cb, g))
        return true;
    reg_free(g);
    return false;
}

static bool register_all(ReleaseSql *r, unsigned flags)
{
    for (const StageConf *sc = r->d->cfg->stages; sc; sc = sc->next)
        if (!register_stage(r, sc, flags))
            return false;
    return true;
}

/* ---------------------------------------------------------------- API */

/* release_sql_new creates the daemon's release_sql state; NULL when out of memory. */
ReleaseSql *release_sql_new(Daemon *d)
{
    ReleaseSql *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->d = d;
    evtimer_assign(&r->retry_ev, d->base, retry_timer_cb, r);
    return r;
}

void release_sql_free(ReleaseSql *r)
{
    if (!r)
        return;
    event_del(&r->retry_ev);
    while (r->regs)
        reg_free(r->regs);
    fails_clear(r);
    free(r);
}

/* release_sql_on_connect queues, in the start-up sequence, the registration of
 * every stage's statement (before any worker is spawned: a worker that ends at
 * once must find it), then a retry of what failed while we were away. */
bool release_sql_on_connect(ReleaseSql *r)
{
    r->inflight = false;
    r->again = false;
    if (!register_all(r, DBQ_SETUP))
        return false;
    retry_call(r);
    return true;
}

/* release_sql_reload registers the statements of a new configuration live. */
void release_sql_reload(ReleaseSql *r)
{
    if (db_ready(r->d->db) && !register_all(r, 0))
        log_error("release_sql: out of memory registering the statements");
}

/* release_sql_worker_ended is the hint that a worker ended (a pgwake_heartbeat
 * notification, read as a hint only): when its stage is ours and has a
 * release_sql, or failures are pending, see soon what failed and log it. */
void release_sql_worker_ended(ReleaseSql *r, const char *worker_id)
{
    /* Worker ids are "<stage>.<number>" (pgwake.register_worker). */
    const char *dot = strrchr(worker_id, '.');
    char stage[64];
    if (!dot || dot - worker_id >= (long)sizeof stage)
        return;
    snprintf(stage, sizeof stage, "%.*s", (int)(dot - worker_id), worker_id);
    Stage *s = daemon_stage(r->d, stage);
    if (!r->nfails && !(s && s->conf->release_sql))
        return;
    if (r->inflight)
        r->again = true;
    else if (!evtimer_pending(&r->retry_ev, NULL) || r->nfails)
        timer_arm_ms(&r->retry_ev, HINT_DELAY_MS);
}

/* release_sql_failing counts the failing releases of stage (/metrics). */
int release_sql_failing(const ReleaseSql *r, const char *stage)
{
    int n = 0;
    for (int i = 0; r && i < r->nfails; i++)
        n += strcmp(r->fails[i].stage, stage) == 0;
    return n;
}

/* release_sql_failures_json lists the failing releases of stage for /status. */
json_t *release_sql_failures_json(const ReleaseSql *r, const char *stage)
{
    json_t *arr = json_array();
    for (int i = 0; r && i < r->nfails; i++) {
        const Failure *f = &r->fails[i];
        if (strcmp(f->stage, stage) != 0)
            continue;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:f}", "worker_id", f->worker_id,
                                             "sqlstate", f->sqlstate, "message", f->message,
                                             "attempts", f->attempts, "next_retry_s",
                                             f->next_retry_s));
    }
    return arr;
}

/* release_sql_check is `pgwake check`'s look at one stage's statement, on c:
 * false with err ("FILE:LINE: [stage:X] release_sql: problem") when the
 * database refuses it. Read-only: the check plans, never executes. */
bool release_sql_check(PGconn *c, const char *file, const StageConf *s, char *err, size_t errlen)
{
    const char *p[] = {s->release_sql};
    PGresult *res = PQexecParams(c, "SELECT pgwake.release_sql_problem($1)", 1, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetisnull(res, 0, 0);
    if (!ok)
        errf(err, errlen, "%s:%d: [stage:%s] release_sql: %s", file, s->release_sql_line,
             s->name, PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                          ? PQgetvalue(res, 0, 0) : PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}
