/* wake_rules.c: SPEC section 5's waking and spawning rules, pure: no I/O, no
 * clock but the view's and no randomness but the view's, so a unit test can
 * replay any situation. One small rule per event, in a table. */
#include "wake_rules.h"

typedef void (*WakeRuleFn)(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d);

/* wake_rules_init gives a new stage its rule state: nothing counted yet. */
void wake_rules_init(WakeState *st, int64_t restart_delay_ms, int64_t restart_delay_max_ms)
{
    *st = (WakeState){.spacing_ms = RECOUNT_SPACING_MS};
    backoff_init(&st->backoff, restart_delay_ms, restart_delay_max_ms);
}

/* The fast path: a task or run notification proves work exists, so wake one
 * idle worker or spawn one before any query; a recount settles the numbers. */
static void on_hint(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->gen++;
    d->recount = true;
    if (!ev->fast || !v->runnable || !v->db_ready)
        return;
    d->fast_path = true;
    if (v->idle > 0)
        d->wake = 1;
    else if (v->starting == 0 && !st->in_backoff && !st->capped && v->alive < v->max_workers)
        d->spawn = 1;
}

/* The fast path did the urgent part; its recount waits one spacing so it
 * does not race the woken worker's claim for the same CPU. */
static void on_fast_done(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    if (st->recount_inflight || v->recount_timer_pending) {
        d->recount = true;
        return;
    }
    st->last_recount_ms = v->now_ms;
    d->recount_in_ms = st->spacing_ms;
}

/* At most one recount in flight, and none closer than the spacing to the
 * last: a burst of notifications costs a handful of queries. */
static void on_recount(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    if (!v->db_ready || v->removed)
        return;
    if (st->recount_inflight) {
        st->recount_again = true;
        return;
    }
    int64_t wait = st->last_recount_ms + st->spacing_ms - v->now_ms;
    if (st->last_recount_ms && wait > 0) {
        if (!v->recount_timer_pending)
            d->recount_in_ms = wait;
        return;
    }
    st->last_recount_ms = v->now_ms;
    st->recount_gen = st->gen;
    st->recount_inflight = true;
    d->start_recount = true;
}

static void recount_over(WakeState *st, WakeDecision *d)
{
    st->recount_inflight = false;
    if (st->recount_again) {
        st->recount_again = false;
        d->recount = true;
    }
}

/* With C claimable tasks, wake min(idle, C) workers, less those already
 * woken since this recount began; WR_WOKEN then spawns. */
static void on_counted(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    long c = ev->claimable < 0 ? 0 : ev->claimable;
    if (c > v->max_workers)
        c = v->max_workers;
    d->claimable = (int)c;
    if (c > 0)
        st->gen++;
    /* Hints that keep finding nothing (a storm of bare NOTIFYs) space the
     * recounts out, up to RECOUNT_SPACING_MAX_MS; work found, or a quiet
     * moment, brings the spacing back. The fast path never waits for it. */
    if (c == 0 && st->recount_again)
        st->spacing_ms = st->spacing_ms * 2 > RECOUNT_SPACING_MAX_MS ? RECOUNT_SPACING_MAX_MS
                                                                      : st->spacing_ms * 2;
    else
        st->spacing_ms = RECOUNT_SPACING_MS;
    recount_over(st, d);
    if (!v->runnable || !v->db_ready)
        return;
    int to_wake = d->claimable - v->woken;
    d->wake = to_wake < v->idle ? to_wake : v->idle;
    if (d->wake < 0)
        d->wake = 0;
}

/* Spawn min(max_workers - alive, C - woken - starting), outside backoff and
 * the max_workers_total wait; then keep min_workers unless a refill waits. */
static void on_woken(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    if (!v->runnable || !v->db_ready || st->in_backoff || st->capped)
        return;
    int alive = v->alive;
    int n = (int)ev->claimable - v->woken - v->starting;
    if (n > v->max_workers - alive)
        n = v->max_workers - alive;
    if (n > 0) {
        d->spawn = n;
        alive += n;
    }
    if (alive < v->min_workers && !st->refill_due)
        d->refill = v->min_workers - alive;
}

static void on_count_failed(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    recount_over(st, d);
}

/* A retry waiting out its backoff notifies nothing when it falls due. */
static void on_not_before(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->gen++;
    d->recount = true;
}

/* The answer to I: W at once when the stage's generation is newer than the
 * worker's (a hint it may not have seen), else it is idle. */
static void on_idle_report(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    d->wake = v->runnable && st->gen > ev->worker_gen;
}

/* Scale to zero, but never below min_workers. */
static void on_idle_end(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    d->stop = v->alive - v->stopping > v->min_workers;
}

/* A crash starts the restart backoff; a worker that ran restart_window or
 * exited 0 resets it. After a crash the release to come notifies
 * pgwake_task, and the backoff's end recounts: a recount now would count the
 * task still leased. */
static void on_gone(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    if (ev->exit_ok || (ev->spawned_ms && v->now_ms - ev->spawned_ms >= v->restart_window_ms))
        backoff_reset(&st->backoff);
    if (ev->crashed) {
        d->backoff_ms = backoff_next(&st->backoff, v->rand, v->rng);
        st->in_backoff = true;
    }
    if (v->runnable && v->alive < v->min_workers && !st->refill_due) {
        st->refill_due = true;
        d->refill_ms = v->restart_delay_ms;
    }
    d->recount = !ev->crashed;
}

/* max_restarts counted crashes within restart_window make the stage FATAL. */
static void on_settled(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    if (!ev->counted || v->fatal)
        return;
    tally_add(&st->tally, v->now_ms);
    int n = tally_count_within(&st->tally, v->now_ms, v->restart_window_ms);
    if (v->max_restarts > 0 && n >= v->max_restarts) {
        d->fatal = true;
        d->crashes = n;
    }
}

static void on_fatal(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->in_backoff = false;
    d->cancel_backoff = true;
}

/* A start forgets the crashes: no backoff, an empty tally, a fresh look. */
static void on_start(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    on_fatal(st, v, ev, d);
    backoff_reset(&st->backoff);
    tally_clear(&st->tally);
    st->gen++;
    d->recount = true;
}

static void on_backoff_end(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->in_backoff = false;
    d->restarted = v->runnable;
    d->recount = true;
}

static void on_refill_end(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->refill_due = false;
    d->recount = true;
}

/* Other daemons run the stage's quota: spawning waits restart_delay. */
static void on_capped(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->capped = true;
    d->cap_ms = v->restart_delay_ms;
}

static void on_cap_end(WakeState *st, const WakeView *v, const WakeEvent *ev, WakeDecision *d)
{
    st->capped = false;
    d->recount = true;
}

static const WakeRuleFn rules[WR__COUNT] = {
    [WR_HINT] = on_hint,
    [WR_FAST_DONE] = on_fast_done,
    [WR_RECOUNT] = on_recount,
    [WR_COUNTED] = on_counted,
    [WR_WOKEN] = on_woken,
    [WR_COUNT_FAILED] = on_count_failed,
    [WR_NOT_BEFORE] = on_not_before,
    [WR_IDLE_REPORT] = on_idle_report,
    [WR_IDLE_END] = on_idle_end,
    [WR_GONE] = on_gone,
    [WR_SETTLED] = on_settled,
    [WR_FATAL] = on_fatal,
    [WR_START] = on_start,
    [WR_BACKOFF_END] = on_backoff_end,
    [WR_REFILL_END] = on_refill_end,
    [WR_CAPPED] = on_capped,
    [WR_CAP_END] = on_cap_end,
};

/* wake_rules_decide applies the rule of ev to st as v sees the stage and
 * returns what the stage must do; timers it leaves alone are -1. */
WakeDecision wake_rules_decide(WakeState *st, const WakeView *v, const WakeEvent *ev)
{
    WakeDecision d = {.recount_in_ms = -1, .backoff_ms = -1, .refill_ms = -1, .cap_ms = -1};
    rules[ev->kind](st, v, ev, &d);
    return d;
}
