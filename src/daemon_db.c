/* daemon_db.c: the daemon's two database sessions. On every (re)connect of
 * the main one, the start-up sequence: schema version, host lock, leftovers of
 * an earlier daemon of this host, LISTEN, stage states, then the gate opens
 * and every stage is recounted. A loss of either session is followed on the
 * other; /healthz asks whether a request is stuck. */
#include "daemon_db.h"
#include "clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hints.h"
#include "lockinfo.h"
#include "log.h"
#include "migrate.h"
#include "release_sql.h"
#include "sdnotify.h"
#include "spawn.h"
#include "verify.h"

/* Bounded waits (SPEC 5 "Never stalled"): a statement waits at most this long
 * for a row lock (then it is retried), and none runs longer than this. */
#define MAIN_LOCK_TIMEOUT_MS 2000
#define MAINT_LOCK_TIMEOUT_MS 1000
#define STATEMENT_TIMEOUT_MS 15000
#define STUCK_REQUEST_MS 30000 /* /healthz: 503 past this (a wedged connection) */

/* daemon_db_settled: the database is up and, if it was lost, has been back for
 * window_ms; crashes outside that say nothing about a stage. */
bool daemon_db_settled(const Daemon *d, int64_t window_ms)
{
    return d->db_up && (d->db_back_ms == 0 || mono_ms() - d->db_back_ms >= window_ms);
}


static void check_cb(void *arg, PGresult *res)
{
    Daemon *d = arg;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("unable to read the version of schema pgwake (run `pgwake migrate`?): %s",
                  PQresultErrorMessage(res));
        daemon_abort(d, EXIT_RUNTIME);
        return;
    }
    int version = atoi(PQgetvalue(res, 0, 0));
    if (version < migrate_latest()) {
        log_error("schema pgwake is at version %d, this pgwake needs %d: run `pgwake migrate`",
                  version, migrate_latest());
        daemon_abort(d, EXIT_RUNTIME);
    } else if (version > migrate_latest()) {
        log_error("schema pgwake is at version %d, newer than this pgwake (%d): upgrade pgwake",
                  version, migrate_latest());
        daemon_abort(d, EXIT_RUNTIME);
    }
}

static void hostlock_cb(void *arg, PGresult *res)
{
    Daemon *d = arg;
    if (!res)
        return;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        return;
    /* Any role may take an advisory lock: name the holder, squatter or daemon. */
    char who[300];
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        snprintf(who, sizeof who, "unable to tell: %s", PQresultErrorMessage(res));
    else
        lockinfo_describe(res, 0, 1, who, sizeof who);
    if (!d->ready) {
        log_error("host %s is served by a live daemon; give this one a distinct host "
                  "(its lock is held by %s)", d->cfg->host, who);
        daemon_abort(d, EXIT_RUNTIME);
        return;
    }
    /* After a reconnect the server may not have noticed our old session is
     * gone yet: keep the workers, try again with backoff. */
    log_warn("host lock of %s still held by %s (our previous session not gone yet?): reconnecting",
             d->cfg->host, who);
    db_reconnect(d->db, "host lock still held");
}

static void release_leftovers(Daemon *d, PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (daemon_worker_by_id(d, id))
            continue;
        pid_t pid = PQgetisnull(res, i, 1) ? 0 : atoi(PQgetvalue(res, i, 1));
        long long start = PQgetisnull(res, i, 2) ? -2 : atoll(PQgetvalue(res, i, 2));
        /* Only a pid that is still the same process: pids get recycled. */
        if (pid > 0 && spawn_proc_start_time(pid) == start) {
            log_info("killing worker %s[%d] left by an earlier daemon of this host", id, (int)pid);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        /* On the maintenance connection, retried until done; the release's
         * pgwake_task notification (LISTEN runs before the gate opens) or the
         * first recount sees the tasks pending again. */
        const char *p[] = {id};
        char label[200];
        snprintf(label, sizeof label, "release worker %s of an earlier daemon", id);
        if (!db_query_persist(d->mdb, label,
                              "SELECT * FROM pgwake.release_worker($1, 'daemon restarted', true)", 1,
                              p, NULL, NULL))
            log_error("out of memory releasing worker %s", id);
    }
}

static void setup_done_cb(void *arg, PGresult *res);

/* The last setup step is queued from here, once leftovers are known. */
static void leftovers_cb(void *arg, PGresult *res)
{
    Daemon *d = arg;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_error("unable to read this host's earlier workers: %s", PQresultErrorMessage(res));
    else
        release_leftovers(d, res);
    if (!db_query(d->db, "SELECT 1", 0, NULL, DBQ_SETUP, setup_done_cb, d))
        fatal("out of memory queueing the start-up sequence");
}

static void stage_state_cb(void *arg, PGresult *res)
{
    Daemon *d = arg;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        Stage *s = daemon_stage(d, PQgetvalue(res, i, 0));
        const char *state = PQgetvalue(res, i, 1);
        if (!s)
            continue;
        if (strcmp(state, "stopped") == 0) {
            s->stopped = true;
            log_info("%s: stage stays stopped (an operator stopped it; `pgwake start %s`)", s->name,
                     s->name);
        } else if (strcmp(state, "fatal") == 0) {
            s->fatal = true;
            snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s", PQgetvalue(res, i, 2));
            log_warn("%s: stage stays FATAL: %s (`pgwake start %s`)", s->name, s->fatal_reason,
                     s->name);
        }
    }
}

static void hint_all(Stage *s) { stage_hint(s, false); }

static void setup_done_cb(void *arg, PGresult *res)
{
    Daemon *d = arg;
    if (!res)
        return;
    d->db_up = true;
    if (d->db_lost)
        d->db_back_ms = mono_ms();
    db_open_gate(d->db); /* also when stopping: the releases of the stop are queued behind it */
    if (d->stopping)
        return;
    maint_on_ready(d->maint);
    verify_all(d->verify); /* the notifications of the time away are lost */
    daemon_each_stage(d, stage_record_state);
    daemon_each_stage(d, hint_all);
    if (!d->ready) {
        d->ready = true;
        log_info("ready: serving %d stage(s) as host %s", d->nstages, d->cfg->host);
        sd_notifyf("READY=1\nSTATUS=serving %d stage(s)", d->nstages);
    } else {
        log_info("database back: LISTEN again and every stage recounted");
        sd_notifyf("STATUS=serving %d stage(s)", d->nstages);
    }
}

static bool setup_query(Daemon *d, const char *sql, int n, const char *const *p, DbResultCb cb)
{
    return db_query(d->db, sql, n, p, DBQ_SETUP, cb, d);
}

/* On every (re)connect: schema check, host lock, leftovers, LISTEN, stage
 * states (first time), then the gate opens and every stage is recounted. */
static void on_up(void *arg)
{
    Daemon *d = arg;
    d->main_session = true;
    const char *host[] = {d->cfg->host};
    bool ok =
        setup_query(d, "SELECT COALESCE(max(version), 0) FROM pgwake.schema_migrations", 0, NULL,
                    check_cb) &&
        setup_query(d, LOCK_TRY_SQL(LOCK_KEY_HOST), 1, host, hostlock_cb) &&
        setup_query(d, "SELECT id, pid, pid_start FROM pgwake.workers WHERE host = $1"
                       " AND state IN ('starting', 'alive')", 1, host, leftovers_cb);
    for (int c = 0; ok && c < CH_UNKNOWN; c++) {
        char sql[64];
        snprintf(sql, sizeof sql, "LISTEN %s", channel_names[c]);
        ok = setup_query(d, sql, 0, NULL, NULL);
    }
    if (ok && !d->ready)
        ok = setup_query(d, "SELECT stage, state, reason FROM pgwake.stage_state WHERE host = $1", 1,
                         host, stage_state_cb);
    ok = ok && release_sql_on_connect(d->rsql);
    /* the last step is queued by leftovers_cb */
    if (!ok)
        fatal("out of memory queueing the start-up sequence");
}

static void on_refused(void *arg, const char *why)
{
    log_error("the database connection goes through a pooler in transaction or statement pool "
              "mode (%s): the daemon needs a session of its own for LISTEN and its advisory "
              "locks; point dsn at PostgreSQL itself or at a pool with pool_mode = session "
              "(workers may use a transaction pool through worker_dsn)", why);
    daemon_abort(arg, EXIT_RUNTIME);
}

/* The two sessions live and die together: a loss of one (a restart, a
 * partition, a server turned read-only) is the other's too, sooner or later,
 * and they must stay on the same server of a multi-host DSN. */
static void follow_loss(DbConn *other, const char *which, const char *why)
{
    char msg[400];
    snprintf(msg, sizeof msg, "the %s connection was lost: %s", which, why);
    db_reconnect(other, msg);
}

static void on_down(void *arg)
{
    Daemon *d = arg;
    if (d->db_up)
        sd_notifyf("STATUS=waiting for database");
    d->db_up = false;
    d->db_lost = true;
    maint_on_down(d->maint);
    for (int i = 0; i < d->nstages; i++)
        d->stages[i]->wr.recount_inflight = false;
    if (d->main_session)
        follow_loss(d->mdb, "main", db_last_error(d->db));
    d->main_session = false;
}

/* The maintenance connection carries releases, heartbeat verdicts and
 * maintenance: statements that may wait on other sessions' row locks. It
 * needs no start-up sequence of its own: the daemon's is on the main one. */
static void mdb_up(void *arg)
{
    Daemon *d = arg;
    d->maint_session = true;
    maint_conn_up(d->maint);
    db_open_gate(d->mdb);
}

static void mdb_down(void *arg)
{
    Daemon *d = arg;
    maint_conn_down(d->maint);
    if (d->maint_session)
        follow_loss(d->db, "maintenance", db_last_error(d->mdb));
    d->maint_session = false;
}

/* daemon_db_stuck: is a database request of the daemon unanswered for longer
 * than 30 s, or the maintenance connection down (releases and verdicts
 * wait)? why says which, for /healthz. */
bool daemon_db_stuck(const Daemon *d, char *why, size_t n)
{
    int64_t main_ms = db_oldest_ms(d->db), maint_ms = db_oldest_ms(d->mdb);
    if (main_ms > STUCK_REQUEST_MS || maint_ms > STUCK_REQUEST_MS) {
        bool m = maint_ms > main_ms;
        snprintf(why, n, "a database request%s unanswered for %lld s\n",
                 m ? " of the maintenance connection" : "", (long long)((m ? maint_ms : main_ms) / 1000));
        return true;
    }
    if (!db_ready(d->mdb)) {
        const char *e = db_last_error(d->mdb);
        snprintf(why, n, "maintenance connection not connected%s%s\n", e && *e ? ": " : "",
                 e && *e ? e : "");
        return true;
    }
    return false;
}

/* daemon_db_open creates both connections (not yet started: db_start). */
bool daemon_db_open(Daemon *d)
{
    DbHooks hooks = {.on_notify = hints_on_notify, .on_up = on_up, .on_down = on_down,
                     .on_refused = on_refused, .arg = d};
    DbHooks mhooks = {.on_up = mdb_up, .on_down = mdb_down, .on_refused = on_refused, .arg = d};
    d->db = db_new(d->base, d->dsn, &hooks);
    d->mdb = db_new(d->base, d->dsn, &mhooks);
    if (!d->db || !d->mdb)
        return false;
    db_configure(d->db, "", MAIN_LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS);
    db_configure(d->mdb, " (maintenance connection)", MAINT_LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS);
    return true;
}
