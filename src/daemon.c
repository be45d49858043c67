/* daemon.c: `pgwake run`: one event base; signals through libevent; the
 * stages and their workers; reload; the stop sequence; the loop and its
 * after-loop hook. The database sessions are daemon_db.c's. */
#include "daemon.h"
#include "errfmt.h"
#include "clock.h"
#include "daemon_db.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hints.h"
#include "http.h"
#include "lockfile.h"
#include "log.h"
#include "release_sql.h"
#include "reload.h"
#include "sdnotify.h"
#include "spawn.h"
#include "verify.h"

#define STOP_FINAL_WAIT_MS 400 /* after the deadline's SIGKILL, for reaps and releases */

/* daemon_rand feeds backoff jitter; quality does not matter, spread does. */
uint32_t daemon_rand(void *d)
{
    return backoff_xorshift32(&((Daemon *)d)->rng_state);
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

/* daemon_each_stage calls fn on every served stage (removed ones excluded). */
void daemon_each_stage(Daemon *d, void (*fn)(Stage *))
{
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            fn(d->stages[i]);
}

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
    daemon_each_stage(arg, stage_recount);
}

/* ---------------------------------------------------------------- stages */

/* daemon_add_stage creates a stage for sc and appends it to the daemon's. */
bool daemon_add_stage(Daemon *d, const StageConf *sc, const Config *cfg, char *err,
                      size_t errlen)
{
    Stage *s = stage_new(d, sc, cfg, err, errlen);
    if (!s)
        return false;
    Stage **arr = realloc(d->stages, (size_t)(d->nstages + 1) * sizeof *arr);
    if (!arr) {
        stage_free(s);
        errf(err, errlen, "out of memory");
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
        d->loop_done = true;
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

/* The parts that talk to the outside: database, maintenance, alerts, HTTP. */
static bool create_parts(Daemon *d, char *err, size_t errlen)
{
    for (const StageConf *sc = d->cfg->stages; sc; sc = sc->next)
        if (!daemon_add_stage(d, sc, d->cfg, err, errlen)) {
            log_error("%s: %s", sc->name, err);
            return false;
        }
    if (!daemon_db_open(d))
        return false;
    d->maint = maint_new(d);
    d->memwatch = memwatch_new(d);
    d->verify = verify_new(d);
    d->rsql = release_sql_new(d);
    if (!d->maint || !d->memwatch || !d->verify || !d->rsql)
        return false;
    d->alerter = alert_new(d->base, &d->cfg->alerts, d->cfg->host, err, errlen);
    if (!d->alerter) {
        log_error("unable to set up alerts: %s", err);
        return false;
    }
    d->http = http_new(d, err, errlen);
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
    d->rng_state = (uint32_t)getpid() ^ (uint32_t)mono_ms() ^ 0x9e3779b9u;
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
    return create_parts(d, err, sizeof err) && arm_events(d);
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
    while (!d.loop_done && !event_base_got_break(d.base)) {
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
