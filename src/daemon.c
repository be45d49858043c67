/* daemon.c: `pgwake run`: one event base; signals through libevent; the
 * start-up sequence on every (re)connect (host lock, leftovers, LISTEN,
 * recount); notifications to stage hints; reload; the stop sequence. */
#include "daemon.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hints.h"
#include "http.h"
#include "lockfile.h"
#include "lockinfo.h"
#include "log.h"
#include "migrate.h"
#include "release_sql.h"
#include "reload.h"
#include "sdnotify.h"
#include "spawn.h"
#include "verify.h"

#define STOP_FINAL_WAIT_MS 400 /* after the deadline's SIGKILL, for reaps and releases */
/* Bounded waits (SPEC 5 "Never stalled"): a statement waits at most this long
 * for a row lock (then it is retried), and none runs longer than this. */
#define MAIN_LOCK_TIMEOUT_MS 2000
#define MAINT_LOCK_TIMEOUT_MS 1000
#define STATEMENT_TIMEOUT_MS 15000
#define STUCK_REQUEST_MS 30000 /* /healthz: 503 past this (a wedged connection) */

static volatile int loop_done; /* set by daemon_after_loop's checks only */

static uint32_t rng_state;

/* daemon_rand feeds backoff jitter; quality does not matter, spread does. */
uint32_t daemon_rand(void *unused)
{
    (void)unused;
    return backoff_xorshift32(&rng_state);
}

/* daemon_stage finds a served stage by name (removed ones excluded). */
Stage *daemon_stage(Daemon *d, const char *name)
{
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed && strcmp(d->stages[i]->name, name) == 0)
            return d->stages[i];
    return NULL;
}

/* daemon_worker_by_pid finds the worker whose process is pid. */
Worker *daemon_worker_by_pid(Daemon *d, pid_t pid)
{
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            if (w->pid == pid && w->state != WK_EXITED && w->state != WK_REGISTERING)
                return w;
    return NULL;
}

/* daemon_worker_by_id finds a local worker by its pgwake.workers id. */
Worker *daemon_worker_by_id(Daemon *d, const char *id)
{
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            if (w->id[0] && strcmp(w->id, id) == 0)
                return w;
    return NULL;
}

/* daemon_db_settled: the database is up and, if it was lost, has been back for
 * window_ms; crashes outside that say nothing about a stage. */
bool daemon_db_settled(const Daemon *d, int64_t window_ms)
{
    return d->db_up && (d->db_back_ms == 0 || mono_ms() - d->db_back_ms >= window_ms);
}

static void each_stage(Daemon *d, void (*fn)(Stage *))
{
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            fn(d->stages[i]);
}

static void hint_all(Stage *s) { stage_hint(s, false); }

static void kill_all(Daemon *d)
{
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            worker_kill_now(w);
}

/* daemon_abort leaves the loop at once with code (start-up failures found on the database). */
void daemon_abort(Daemon *d, int code)
{
    d->exit_code = code;
    d->stopping = true;
    kill_all(d);
    event_base_loopbreak(d->base);
}

/* ---------------------------------------------------------------- start-up sequence */

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
    each_stage(d, stage_record_state);
    each_stage(d, hint_all);
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

/* ---------------------------------------------------------------- signals */

/* At the deadline: SIGKILL what is left, then a last moment for the reaps and
 * their refunding releases; at the second firing, exit whatever remains. */
static void stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    Daemon *d = arg;
    if (d->final_wait) {
        log_warn("exiting with %s", db_ready(d->mdb) ? "releases unconfirmed" : "the database away");
        event_base_loopbreak(d->base);
        return;
    }
    log_warn("stop deadline reached: killing what is left");
    kill_all(d);
    d->final_wait = true;
    timer_arm_ms(&d->stop_ev, STOP_FINAL_WAIT_MS);
}

static void begin_stop(Daemon *d)
{
    if (d->stopping) {
        log_warn("second stop signal: killing every worker now");
        d->forced = true;
        kill_all(d);
        return;
    }
    d->stopping = true;
    log_info("stopping: no new workers; asking every worker to stop");
    sd_notifyf("STOPPING=1");
    event_del(&d->safety_ev);
    int64_t longest = 0;
    for (int i = 0; i < d->nstages; i++) {
        Stage *s = d->stages[i];
        int64_t t = s->conf->stop_timeout_ms + s->conf->kill_timeout_ms;
        if (t > longest)
            longest = t;
        stage_stop_all(s, "pgwake stopping");
    }
    longest += 1000 - STOP_FINAL_WAIT_MS; /* the last second: SIGKILL, reaps, refunds */
    timer_arm_ms(&d->stop_ev, longest);
    daemon_maybe_finish(d);
}

static void handle_sigterm(evutil_socket_t sig, short what, void *arg)
{
    log_info("received %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop(arg);
}

static void handle_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    Daemon *d = arg;
    for (int i = 0; i < d->nstages; i++)
        if (!outlog_reopen(d->stages[i]->log))
            log_error("%s: unable to reopen the worker log: %s", d->stages[i]->name, strerror(errno));
    log_info("worker log files reopened");
}

static bool is_worker_pid(pid_t pid, void *arg)
{
    return daemon_worker_by_pid(arg, pid) != NULL;
}

static void handle_sigchld(evutil_socket_t sig, short what, void *arg)
{
    Daemon *d = arg;
    int status;
    pid_t pid;
    while ((pid = spawn_reap(&status, is_worker_pid, d)) > 0) {
        Worker *w = daemon_worker_by_pid(d, pid);
        if (w)
            worker_reaped(w, status);
        else
            log_debug("reaped process %d (a worker's descendant)", (int)pid);
    }
}

/* Sent from the loop itself, so a stuck loop is what systemd notices. */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    sd_notifyf("WATCHDOG=1");
}

static void safety_cb(evutil_socket_t fd, short what, void *arg)
{
    each_stage(arg, stage_recount);
}

/* ---------------------------------------------------------------- stages */

/* daemon_add_stage creates a stage for sc and appends it to the daemon's. */
bool daemon_add_stage(Daemon *d, const StageConf *sc, const Config *cfg, char *err)
{
    Stage *s = stage_new(d, sc, cfg, err);
    if (!s)
        return false;
    Stage **arr = realloc(d->stages, (size_t)(d->nstages + 1) * sizeof *arr);
    if (!arr) {
        stage_free(s);
        snprintf(err, ERR_LEN, "out of memory");
        return false;
    }
    d->stages = arr;
    d->stages[d->nstages++] = s;
    return true;
}

static void handle_sighup(evutil_socket_t sig, short what, void *arg)
{
    Daemon *d = arg;
    if (d->stopping)
        return;
    log_info("received SIGHUP: reloading %s", d->conf_path);
    sd_notifyf("RELOADING=1");
    daemon_reload(d);
    sd_notifyf("READY=1");
}

/* ---------------------------------------------------------------- loop */

/* daemon_maybe_finish notes that the stop sequence may be complete; the
 * after-loop hook checks, so nothing is freed under a running callback. */
void daemon_maybe_finish(Daemon *d)
{
    d->check_finish = true;
}

static bool all_gone(const Daemon *d)
{
    for (int i = 0; i < d->nstages; i++) {
        const Stage *s = d->stages[i];
        if (stage_alive(s) > 0 || (s->count[WK_EXITED] > 0 && db_ready(d->mdb)))
            return false;
    }
    return true;
}

static void free_removed(Daemon *d)
{
    int j = 0;
    for (int i = 0; i < d->nstages; i++) {
        Stage *s = d->stages[i];
        if (s->removed && !s->workers)
            stage_free(s);
        else
            d->stages[j++] = s;
    }
    d->nstages = j;
    for (int r = 0; r < d->nretired; r++) {
        bool used = false;
        for (int i = 0; i < d->nstages; i++)
            used = used || d->stages[i]->cfg == d->retired[r];
        if (!used) {
            cfg_free(d->retired[r]);
            d->retired[r--] = d->retired[--d->nretired];
        }
    }
}

static void after_loop(Daemon *d)
{
    if (!d->check_finish)
        return;
    d->check_finish = false;
    worker_free_dead(&d->dead_workers);
    free_removed(d);
    if (d->stopping && all_gone(d)) {
        log_info("every worker stopped");
        loop_done = 1;
    }
}

static bool take_lock_file(Daemon *d)
{
    char err[ERR_LEN];
    d->lock_fd = lockfile_take(d->cfg->lock_file, err, sizeof err);
    if (d->lock_fd < 0)
        log_error("%s", err);
    return d->lock_fd >= 0;
}

/* Every event of the daemon is assigned at once, right after the base, so
 * daemon_free can delete them whatever step of start-up failed. */
static void assign_events(Daemon *d)
{
    evsignal_assign(&d->sig_term, d->base, SIGTERM, handle_sigterm, d);
    evsignal_assign(&d->sig_int, d->base, SIGINT, handle_sigterm, d);
    evsignal_assign(&d->sig_hup, d->base, SIGHUP, handle_sighup, d);
    evsignal_assign(&d->sig_usr1, d->base, SIGUSR1, handle_sigusr1, d);
    evsignal_assign(&d->sig_chld, d->base, SIGCHLD, handle_sigchld, d);
    evtimer_assign(&d->stop_ev, d->base, stop_deadline_cb, d);
    evtimer_assign(&d->badlog_ev, d->base, hints_badlog_cb, d);
    event_assign(&d->safety_ev, d->base, -1, EV_PERSIST, safety_cb, d);
    event_assign(&d->watchdog_ev, d->base, -1, EV_PERSIST, watchdog_cb, d);
}

static bool arm_events(Daemon *d)
{
    int64_t wd_ms = sd_watchdog_usec() / 2000;
    if (wd_ms > 0)
        timer_arm_ms(&d->watchdog_ev, wd_ms);
    if (d->cfg->recount_interval_ms > 0)
        timer_arm_ms(&d->safety_ev, d->cfg->recount_interval_ms);
    return event_add(&d->sig_term, NULL) == 0 && event_add(&d->sig_int, NULL) == 0 &&
           event_add(&d->sig_hup, NULL) == 0 && event_add(&d->sig_usr1, NULL) == 0 &&
           event_add(&d->sig_chld, NULL) == 0;
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

/* The parts that talk to the outside: database, maintenance, alerts, HTTP. */
static bool create_parts(Daemon *d, char *err)
{
    for (const StageConf *sc = d->cfg->stages; sc; sc = sc->next)
        if (!daemon_add_stage(d, sc, d->cfg, err)) {
            log_error("%s: %s", sc->name, err);
            return false;
        }
    DbHooks hooks = {.on_notify = hints_on_notify, .on_up = on_up, .on_down = on_down,
                     .on_refused = on_refused, .arg = d};
    DbHooks mhooks = {.on_up = mdb_up, .on_down = mdb_down, .on_refused = on_refused, .arg = d};
    d->db = db_new(d->base, d->dsn, &hooks);
    d->mdb = db_new(d->base, d->dsn, &mhooks);
    d->maint = maint_new(d);
    d->memwatch = memwatch_new(d);
    d->verify = verify_new(d);
    d->rsql = release_sql_new(d);
    if (!d->db || !d->mdb || !d->maint || !d->memwatch || !d->verify || !d->rsql)
        return false;
    db_configure(d->db, "", MAIN_LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS);
    db_configure(d->mdb, " (maintenance connection)", MAINT_LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS);
    d->alerter = alert_new(d->base, &d->cfg->alerts, d->cfg->host, err);
    if (!d->alerter) {
        log_error("unable to set up alerts: %s", err);
        return false;
    }
    d->http = http_new(d, err);
    if (!d->http)
        log_error("%s", err);
    return d->http != NULL;
}

static bool daemon_init(Daemon *d, Config *cfg, const char *conf_path, const char *opt_dsn)
{
    char err[ERR_LEN];
    d->cfg = cfg;
    d->lock_fd = -1;
    d->conf_path = strdup(conf_path);
    d->dsn = strdup(dsn_pick(opt_dsn, cfg->dsn, (GetenvFn)getenv));
    d->worker_dsn = strdup(cfg->worker_dsn ? cfg->worker_dsn : d->dsn);
    rng_state = (uint32_t)getpid() ^ (uint32_t)mono_ms() ^ 0x9e3779b9u;
    if (!d->conf_path || !d->dsn || !d->worker_dsn || !take_lock_file(d))
        return false;
    spawn_ensure_std_fds();
    if (!spawn_become_subreaper())
        log_warn("unable to become a child subreaper: %s (workers' descendants may be missed)",
                 strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    d->base = event_base_new();
    if (!d->base)
        return false;
    assign_events(d);
    return create_parts(d, err) && arm_events(d);
}

static void daemon_free(Daemon *d)
{
    for (int i = 0; i < d->nstages; i++)
        stage_free(d->stages[i]);
    free(d->stages);
    worker_free_dead(&d->dead_workers);
    http_free(d->http);
    maint_free(d->maint);
    verify_free(d->verify);
    memwatch_free(d->memwatch);
    release_sql_free(d->rsql);
    alert_free(d->alerter);
    db_free(d->db);
    db_free(d->mdb);
    for (int r = 0; r < d->nretired; r++)
        cfg_free(d->retired[r]);
    free(d->retired);
    cfg_free(d->cfg);
    if (d->base) {
        event_del(&d->sig_term), event_del(&d->sig_int), event_del(&d->sig_hup);
        event_del(&d->sig_usr1), event_del(&d->sig_chld), event_del(&d->safety_ev);
        event_del(&d->stop_ev), event_del(&d->badlog_ev), event_del(&d->watchdog_ev);
        event_base_free(d->base);
    }
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d->conf_path);
    free(d->dsn);
    free(d->worker_dsn);
}

/* daemon_run is `pgwake run` once the configuration is loaded: it owns cfg
 * and returns the process exit code. */
int daemon_run(Config *cfg, const char *conf_path, const char *opt_dsn)
{
    Daemon d;
    memset(&d, 0, sizeof d);
    if (!daemon_init(&d, cfg, conf_path, opt_dsn)) {
        daemon_free(&d);
        return EXIT_RUNTIME;
    }
    log_info("pgwake starting: %d stage(s), host %s, configuration %s", d.nstages, cfg->host,
             conf_path);
    sd_notifyf("STATUS=waiting for database");
    db_start(d.db);
    db_start(d.mdb);
    loop_done = 0;
    while (!loop_done && !event_base_got_break(d.base)) {
        if (event_base_loop(d.base, EVLOOP_ONCE) < 0)
            fatal("event loop failed");
        after_loop(&d);
    }
    /* Reap what the last pass left, so no zombie outlives us. */
    handle_sigchld(SIGCHLD, 0, &d);
    int code = d.exit_code;
    log_info("pgwake exiting (%d)", code);
    daemon_free(&d);
    return code;
}
