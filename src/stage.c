/* stage.c: a stage carries out the decisions of the wake rules (wake_rules.c):
 * it shows them its workers, then wakes and spawns them, sends the recounts,
 * arms its timers and goes FATAL, as the rules decide. */
#include "stage.h"
#include "errfmt.h"
#include "clock.h"
#include "trends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void recount_timer_cb(evutil_socket_t fd, short what, void *arg);
static void notbefore_cb(evutil_socket_t fd, short what, void *arg);
static void backoff_cb(evutil_socket_t fd, short what, void *arg);
static void refill_cb(evutil_socket_t fd, short what, void *arg);
static void cap_cb(evutil_socket_t fd, short what, void *arg);

/* stage_new builds a stage for conf, opening its worker log file. */
Stage *stage_new(Daemon *d, const StageConf *conf, const Config *cfg, char *err,
                 size_t errlen)
{
    Stage *s = calloc(1, sizeof *s);
    if (!s) {
        errf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = d;
    s->conf = conf;
    s->cfg = cfg;
    snprintf(s->name, sizeof s->name, "%s", conf->name);
    s->log = outlog_open(cfg->log_dir, s->name, cfg->log_max_bytes, cfg->log_backups, err, errlen);
    if (!s->log) {
        free(s);
        return NULL;
    }
    evtimer_assign(&s->recount_ev, d->base, recount_timer_cb, s);
    evtimer_assign(&s->notbefore_ev, d->base, notbefore_cb, s);
    evtimer_assign(&s->backoff_ev, d->base, backoff_cb, s);
    evtimer_assign(&s->refill_ev, d->base, refill_cb, s);
    evtimer_assign(&s->cap_ev, d->base, cap_cb, s);
    wake_rules_init(&s->wr, conf->restart_delay_ms, conf->restart_delay_max_ms);
    return s;
}

/* stage_free releases a stage that has no worker left. */
void stage_free(Stage *s)
{
    if (!s)
        return;
    while (s->workers)
        worker_retire(s->workers);
    event_del(&s->recount_ev);
    event_del(&s->notbefore_ev);
    event_del(&s->backoff_ev);
    event_del(&s->refill_ev);
    event_del(&s->cap_ev);
    db_cancel_arg(s->d->db, s);
    outlog_close(s->log);
    free(s);
}

/* stage_alive counts every worker not yet reaped (registering and stopping included). */
int stage_alive(const Stage *s)
{
    int n = 0;
    for (int i = 0; i < WK__COUNT; i++)
        if (i != WK_EXITED)
            n += s->count[i];
    return n;
}

/* stage_runnable: may this stage wake or spawn workers at all? */
bool stage_runnable(const Stage *s)
{
    return !s->fatal && !s->stopped && !s->removed && !s->d->stopping;
}

/* What the wake rules see of s now. */
static WakeView stage_view(const Stage *s)
{
    const StageConf *c = s->conf;
    /* Woken = told W since this recount began: a worker busy for an hour
     * with an older task will not claim these soon. */
    int woken = 0;
    for (const Worker *w = s->workers; w; w = w->next)
        if (w->state == WK_BUSY && w->gen >= s->wr.recount_gen)
            woken++;
    return (WakeView){
        .max_workers = c->max_workers,
        .min_workers = c->min_workers,
        .max_restarts = c->max_restarts,
        .restart_delay_ms = c->restart_delay_ms,
        .restart_window_ms = c->restart_window_ms,
        .alive = stage_alive(s),
        .idle = s->count[WK_IDLE],
        .starting = s->count[WK_STARTING] + s->count[WK_REGISTERING],
        .stopping = s->count[WK_STOPPING],
        .woken = woken,
        .now_ms = mono_ms(),
        .runnable = stage_runnable(s),
        .fatal = s->fatal,
        .removed = s->removed,
        .db_ready = db_ready(s->d->db),
        .recount_timer_pending = evtimer_pending(&s->recount_ev, NULL),
        .rand = daemon_rand,
        .rng = s->d,
    };
}

/* stage_decide asks the wake rules what s must do on ev, as s is now. */
WakeDecision stage_decide(Stage *s, const WakeEvent *ev)
{
    WakeView v = stage_view(s);
    return wake_rules_decide(&s->wr, &v, ev);
}

static void follow(Stage *s, WakeEventKind kind)
{
    if (stage_decide(s, &(WakeEvent){.kind = kind}).recount)
        stage_recount(s);
}

static int spawn_n(Stage *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!worker_create(s)) {
            log_error("%s: out of memory creating a worker", s->name);
            return i;
        }
    return n;
}

static Worker *find_state(Stage *s, WorkerState st)
{
    for (Worker *w = s->workers; w; w = w->next)
        if (w->state == st)
            return w;
    return NULL;
}

/* Sends W to up to n idle workers; a failed send ends the round (the rules
 * then spawn for what it leaves). */
static int wake_n(Stage *s, int n)
{
    int i = 0;
    for (; i < n; i++) {
        Worker *w = find_state(s, WK_IDLE);
        if (!w || !worker_wake(w))
            break;
    }
    return i;
}

/* With C claimable tasks: wake idle workers first, then spawn (SPEC section 5). */
static void apply_count(Stage *s, int wake, int c)
{
    wake_n(s, wake);
    WakeView v = stage_view(s);
    WakeDecision dec = wake_rules_decide(&s->wr, &v, &(WakeEvent){.kind = WR_WOKEN, .claimable = c});
    if (dec.spawn > 0)
        log_debug("%s: %d claimable, %d woken, %d starting: spawning %d", s->name, c, v.woken,
                  v.starting, dec.spawn);
    spawn_n(s, dec.spawn);
    spawn_n(s, dec.refill);
}

static void recount_cb(void *arg, PGresult *res)
{
    Stage *s = arg;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1 && PQnfields(res) >= 1) {
        long c = PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
        WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_COUNTED, .claimable = c});
        event_del(&s->notbefore_ev);
        if (!s->conf->pending_sql && PQnfields(res) >= 2 && !PQgetisnull(res, 0, 1)) {
            /* A retry waiting out its backoff notifies nothing when it falls due. */
            double next_s = atof(PQgetvalue(res, 0, 1));
            timer_arm_ms(&s->notbefore_ev, (int64_t)(next_s * 1000.0) + 2);
        }
        s->claimable = dec.claimable;
        trends_note(s);
        if (dec.claimable == 0)
            s->hint_at = 0; /* nothing to wake for */
        log_noise("%s: recount: %d claimable", s->name, dec.claimable);
        apply_count(s, dec.wake, dec.claimable);
        if (dec.recount)
            stage_recount(s);
        return;
    }
    if (res) {
        const char *e = PQresultErrorMessage(res);
        log_error("%s: unable to count pending work%s: %s", s->name,
                  s->conf->pending_sql ? " (pending_sql)" : "",
                  *e ? e : "the query returned no row");
    }
    follow(s, WR_COUNT_FAILED);
}

/* stage_recount asks the database how much work is claimable, when the
 * rules allow one now (one in flight, spaced), else later. */
void stage_recount(Stage *s)
{
    Daemon *d = s->d;
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_RECOUNT});
    if (dec.recount_in_ms >= 0)
        timer_arm_ms(&s->recount_ev, dec.recount_in_ms);
    if (!dec.start_recount)
        return;
    event_del(&s->recount_ev);
    s->st.recounts++;
    d->st.recounts++;
    bool ok;
    if (s->conf->pending_sql) {
        ok = db_query(d->db, s->conf->pending_sql, 0, NULL, 0, recount_cb, s);
    } else {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", s->conf->max_workers);
        const char *p[] = {s->name, lim};
        ok = db_query(d->db, "SELECT claimable, next_s FROM pgwake.stage_pending($1, $2::int)", 2, p,
                      0, recount_cb, s);
    }
    if (!ok) {
        s->wr.recount_inflight = false; /* never sent: nothing will answer */
        log_error("%s: out of memory queueing a recount", s->name);
    }
}

/* stage_hint: something says work may exist. On the fast path (a task or
 * run notification proves it) the rules wake or spawn one worker before any
 * query; then a recount settles the numbers. */
void stage_hint(Stage *s, bool fast)
{
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_HINT, .fast = fast});
    if (s->hint_at == 0)
        s->hint_at = metrics_now();
    if (dec.fast_path)
        s->st.fast_paths++;
    if (wake_n(s, dec.wake) + spawn_n(s, dec.spawn) > 0)
        dec = stage_decide(s, &(WakeEvent){.kind = WR_FAST_DONE});
    if (dec.recount_in_ms >= 0)
        timer_arm_ms(&s->recount_ev, dec.recount_in_ms);
    if (dec.recount)
        stage_recount(s);
}

static void recount_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    stage_recount(arg);
}

static void notbefore_cb(evutil_socket_t fd, short what, void *arg)
{
    follow(arg, WR_NOT_BEFORE);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    Stage *s = arg;
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_BACKOFF_END});
    if (dec.restarted)
        s->st.restarts++;
    if (dec.recount)
        stage_recount(s);
}

static void cap_cb(evutil_socket_t fd, short what, void *arg)
{
    follow(arg, WR_CAP_END);
}

/* stage_woke records a W sent: the time since the oldest unanswered hint
 * feeds the notification-to-W histogram of /metrics. */
void stage_woke(Stage *s)
{
    s->st.wakes++;
    if (s->hint_at > 0) {
        hist_observe(&s->st.wake_latency, metrics_now() - s->hint_at);
        s->hint_at = 0;
    }
}

/* stage_capped: max_workers_total refused a registration (other daemons run
 * the stage's quota); spawning waits restart_delay, then recounts. */
void stage_capped(Stage *s)
{
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_CAPPED});
    if (dec.cap_ms >= 0) {
        event_del(&s->cap_ev);
        timer_arm_ms(&s->cap_ev, dec.cap_ms);
    }
}

static void refill_cb(evutil_socket_t fd, short what, void *arg)
{
    follow(arg, WR_REFILL_END);
}

/* stage_worker_gone: a worker was reaped (or never started). The rules start
 * or reset the restart backoff, and plan a min_workers refill. */
void stage_worker_gone(Stage *s, Worker *w, bool crashed, bool exit_ok)
{
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_GONE, .crashed = crashed,
                                                    .exit_ok = exit_ok, .spawned_ms = w->spawned_ms});
    if (dec.backoff_ms >= 0) {
        s->st.crashes++;
        event_del(&s->backoff_ev);
        timer_arm_ms(&s->backoff_ev, dec.backoff_ms);
        log_info("%s: restart backoff %lld ms", s->name, (long long)dec.backoff_ms);
    }
    if (dec.refill_ms >= 0)
        timer_arm_ms(&s->refill_ev, dec.refill_ms);
    stage_roll(s);
    if (dec.recount)
        stage_recount(s);
}

/* stage_crash_settled: the database has released a crashed worker's leases;
 * a counted crash goes into the tally, which may make the stage FATAL. */
void stage_crash_settled(Stage *s, bool counted, const char *reason)
{
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_SETTLED, .counted = counted});
    if (!dec.fatal)
        return;
    char why[sizeof s->fatal_reason];
    snprintf(why, sizeof why, "%d crashes within %lld s, last: %s", dec.crashes,
             (long long)(s->conf->restart_window_ms / 1000), reason);
    stage_set_fatal(s, why);
}

/* stage_record_state writes what this daemon reports of the stage into
 * pgwake.stage_state, so FATAL and stops are visible and survive a restart. */
void stage_record_state(Stage *s)
{
    const char *state = s->stopped ? "stopped" : s->fatal ? "fatal" : "running";
    const char *p[] = {s->name, s->d->cfg->host, state, s->fatal ? s->fatal_reason : NULL};
    char label[120];
    snprintf(label, sizeof label, "record the state of stage %s", s->name);
    if (!db_query_persist(s->d->db, label, "SELECT pgwake.set_stage_state($1, $2, $3, $4)", 4, p,
                          NULL, NULL))
        log_error("%s: out of memory recording the stage state", s->name);
}

/* stage_set_fatal stops restarting a crash-looping stage until an operator
 * start or a reload that changes it. */
void stage_set_fatal(Stage *s, const char *reason)
{
    s->fatal = true;
    snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s", reason);
    if (stage_decide(s, &(WakeEvent){.kind = WR_FATAL}).cancel_backoff)
        event_del(&s->backoff_ev);
    log_error("%s: stage is FATAL: %s (no restart until `pgwake start %s` or a reload changing it)",
              s->name, reason, s->name);
    stage_record_state(s);
    alert_stage_fatal(s->d->alerter, s->name, reason);
}

/* stage_stop_all asks every worker of the stage to stop. */
void stage_stop_all(Stage *s, const char *why)
{
    for (Worker *w = s->workers; w; w = w->next)
        worker_stop(w, why);
}

/* stage_start clears FATAL and operator stops, resets backoff and tally. */
void stage_start(Stage *s)
{
    bool changed = s->fatal || s->stopped;
    s->fatal = s->stopped = false;
    s->fatal_reason[0] = '\0';
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_START});
    if (dec.cancel_backoff)
        event_del(&s->backoff_ev);
    if (changed)
        log_info("%s: stage started", s->name);
    stage_record_state(s);
    if (dec.recount)
        stage_recount(s);
}

/* stage_stop is an operator stop: persisted, every worker asked to stop. */
void stage_stop(Stage *s)
{
    s->stopped = true;
    log_info("%s: stage stopped by the operator", s->name);
    stage_record_state(s);
    stage_stop_all(s, "stage stopped");
}

/* stage_roll restarts outdated workers one at a time (after a reload or a
 * restart command), each after its current task; idle ones go first. */
void stage_roll(Stage *s)
{
    /* Below min_workers (a replacement not running yet): wait for it. */
    if (s->count[WK_STARTING] + s->count[WK_BUSY] + s->count[WK_IDLE] < s->conf->min_workers)
        return;
    Worker *pick = NULL;
    for (Worker *w = s->workers; w; w = w->next) {
        if (w->rolling && w->state == WK_STOPPING)
            return;
        if (w->conf_gen < s->conf_gen &&
            (w->state == WK_IDLE || w->state == WK_BUSY || w->state == WK_STARTING) &&
            (!pick || w->state == WK_IDLE))
            pick = w;
    }
    if (pick) {
        pick->rolling = true;
        worker_stop(pick, "rolling restart");
    }
}

/* stage_restart is a rolling restart on request (`pgwake restart`, e.g. after
 * a deploy): every current worker is replaced, one at a time. */
void stage_restart(Stage *s)
{
    s->conf_gen++;
    log_info("%s: restarting its workers one at a time", s->name);
    if (s->fatal || s->stopped)
        stage_start(s);
    stage_roll(s);
}

/* stage_apply_conf switches a stage to a reloaded configuration. */
void stage_apply_conf(Stage *s, const StageConf *conf, const Config *cfg, unsigned diff)
{
    s->conf = conf;
    s->cfg = cfg;
    backoff_set_limits(&s->wr.backoff, conf->restart_delay_ms, conf->restart_delay_max_ms);
    outlog_set_limits(s->log, cfg->log_max_bytes, cfg->log_backups);
    if (diff && s->fatal)
        stage_start(s);
    if (diff & (CFG_DIFF_RESTART | CFG_DIFF_RESTART_ALL)) {
        s->conf_gen++;
        log_info("%s: configuration changed: restarting its workers one at a time", s->name);
        stage_roll(s);
    }
    /* A lower max_workers: stop the excess, idle workers first. */
    int excess = stage_alive(s) - s->count[WK_STOPPING] - conf->max_workers;
    for (int pass = 0; pass < 2 && excess > 0; pass++)
        for (Worker *w = s->workers; w && excess > 0; w = w->next)
            if ((pass == 0 && w->state == WK_IDLE) ||
                (pass == 1 && (w->state == WK_BUSY || w->state == WK_STARTING))) {
                worker_stop(w, "max_workers lowered");
                excess--;
            }
    stage_recount(s);
}
