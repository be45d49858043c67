/* test_wake_rules.c: the waking and spawning rules of SPEC section 5, one
 * situation per row (what the stage is and sees, an event, what it must do),
 * then sequences against a fake clock and a fake database's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wake_rules.h"

#define NOW 100000 /* the fake clock's reading for a row */

/* A row's `given` and `after` are space-separated keys, `key=N` or a flag
 * (`!flag` in `after`: must be false); `want` is the whole decision as
 * fmt_decision writes it, "" when the stage must do nothing. */
typedef struct Row {
    const char *name;
    const char *given;
    WakeEvent ev;
    const char *want;
    const char *after;
} Row;

/* ---------------------------------------------------------------- the situation */

static void add_crashes(WakeState *st, long n, int64_t at)
{
    for (long i = 0; i < n; i++)
        tally_add(&st->tally, at);
}

/* set_key applies one `given` key; false when the key is unknown. The view
 * keys come first, then those of the rule state. */
static bool set_key(const char *k, long n, WakeState *st, WakeView *v)
{
    int *ints[] = {&v->max_workers, &v->min_workers, &v->max_restarts, &v->alive,
                   &v->idle,        &v->starting,    &v->stopping,     &v->woken};
    const char *int_names[] = {"max", "min", "restarts", "alive", "idle", "starting", "stopping", "woken"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(k, int_names[i]) == 0) {
            *ints[i] = (int)n;
            return true;
        }
    if (strcmp(k, "down") == 0)
        v->db_ready = false;
    else if (strcmp(k, "unrunnable") == 0) /* stopped, or the daemon stopping */
        v->runnable = false;
    else if (strcmp(k, "fatal") == 0)
        v->fatal = true, v->runnable = false;
    else if (strcmp(k, "removed") == 0)
        v->removed = true, v->runnable = false;
    else if (strcmp(k, "pending") == 0)
        v->recount_timer_pending = true;
    else if (strcmp(k, "gen") == 0)
        st->gen = (uint64_t)n;
    else if (strcmp(k, "rgen") == 0)
        st->recount_gen = (uint64_t)n;
    else if (strcmp(k, "last") == 0)
        st->last_recount_ms = n;
    else if (strcmp(k, "spacing") == 0)
        st->spacing_ms = n;
    else if (strcmp(k, "cur") == 0)
        st->backoff.cur_ms = n;
    else if (strcmp(k, "tally") == 0) /* counted crashes a second ago */
        add_crashes(st, n, NOW - 1000);
    else if (strcmp(k, "old") == 0) /* ... and some outside restart_window */
        add_crashes(st, n, NOW - 70000);
    else if (strcmp(k, "inflight") == 0)
        st->recount_inflight = true;
    else if (strcmp(k, "again") == 0)
        st->recount_again = true;
    else if (strcmp(k, "backoff") == 0)
        st->in_backoff = true;
    else if (strcmp(k, "refill_due") == 0)
        st->refill_due = true;
    else if (strcmp(k, "capped") == 0)
        st->capped = true;
    else
        return false;
    return true;
}

/* A running stage of max_workers 4, restart_delay 1 s doubling to 8 s,
 * max_restarts 3 within 60 s, nothing alive; then the row's keys. */
static void given(const char *spec, WakeState *st, WakeView *v)
{
    wake_rules_init(st, 1000, 8000);
    *v = (WakeView){.max_workers = 4, .max_restarts = 3, .restart_delay_ms = 1000,
                    .restart_window_ms = 60000, .now_ms = NOW, .runnable = true, .db_ready = true};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        long n = eq ? strtol(eq + 1, NULL, 10) : 1;
        if (eq)
            *eq = '\0';
        if (!set_key(t, n, st, v))
            fail_msg("unknown key \"%s\" in \"%s\"", t, spec);
    }
}

/* state_key reads one `after` key of the rule state. */
static bool state_key(const WakeState *st, const char *k, long *out)
{
    if (strcmp(k, "gen") == 0)
        *out = (long)st->gen;
    else if (strcmp(k, "rgen") == 0)
        *out = (long)st->recount_gen;
    else if (strcmp(k, "last") == 0)
        *out = (long)st->last_recount_ms;
    else if (strcmp(k, "spacing") == 0)
        *out = (long)st->spacing_ms;
    else if (strcmp(k, "cur") == 0)
        *out = (long)st->backoff.cur_ms;
    else if (strcmp(k, "tally") == 0)
        *out = tally_count_within(&st->tally, NOW, 60000);
    else if (strcmp(k, "inflight") == 0)
        *out = st->recount_inflight;
    else if (strcmp(k, "again") == 0)
        *out = st->recount_again;
    else if (strcmp(k, "backoff") == 0)
        *out = st->in_backoff;
    else if (strcmp(k, "refill_due") == 0)
        *out = st->refill_due;
    else if (strcmp(k, "capped") == 0)
        *out = st->capped;
    else
        return false;
    return true;
}

static void check_after(const char *name, const char *spec, const WakeState *st)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        bool neg = t[0] == '!';
        char *k = t + neg, *eq = strchr(k, '=');
        long want = eq ? strtol(eq + 1, NULL, 10) : !neg, got;
        if (eq)
            *eq = '\0';
        if (!state_key(st, k, &got))
            fail_msg("%s: unknown key \"%s\" in after", name, k);
        if (got != want)
            fail_msg("%s: %s is %ld, not %ld", name, k, got, want);
    }
}

/* ---------------------------------------------------------------- the decision */

static void put(char *out, size_t n, const char *fmt, long v)
{
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s", len ? " " : "");
    len = strlen(out);
    snprintf(out + len, n - len, fmt, v);
}

/* fmt_decision writes what d asks for, in a fixed order, leaving out what it
 * does not ask (counts of 0, false flags, timers of -1). */
static void fmt_decision(const WakeDecision *d, char *out, size_t n)
{
    out[0] = '\0';
    const struct {
        const char *fmt;
        long v;
        bool on;
    } parts[] = {
        {"wake=%ld", d->wake, d->wake != 0},
        {"spawn=%ld", d->spawn, d->spawn != 0},
        {"refill=%ld", d->refill, d->refill != 0},
        {"claimable=%ld", d->claimable, d->claimable != 0},
        {"fast", 0, d->fast_path},
        {"recount", 0, d->recount},
        {"start", 0, d->start_recount},
        {"stop", 0, d->stop},
        {"restarted", 0, d->restarted},
        {"cancel_backoff", 0, d->cancel_backoff},
        {"fatal=%ld", d->crashes, d->fatal},
        {"recount_in=%ld", (long)d->recount_in_ms, d->recount_in_ms >= 0},
        {"backoff=%ld", (long)d->backoff_ms, d->backoff_ms >= 0},
        {"refill_in=%ld", (long)d->refill_ms, d->refill_ms >= 0},
        {"cap_in=%ld", (long)d->cap_ms, d->cap_ms >= 0},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (parts[i].on)
            put(out, n, parts[i].fmt, parts[i].v);
}

#define SPAWNED(ago) (NOW - (ago))

static const Row rows[] = {
    /* generations and the fast path */
    {"a bare hint raises gen and asks a recount", "gen=5", {.kind = WR_HINT}, "recount", "gen=6"},
    {"fast hint wakes an idle worker", "alive=1 idle=1", {.kind = WR_HINT, .fast = true}, "wake=1 fast recount", "gen=1"},
    {"fast hint spawns when none is idle or starting", "alive=1", {.kind = WR_HINT, .fast = true}, "spawn=1 fast recount", ""},
    {"fast hint: max_workers reached", "alive=4", {.kind = WR_HINT, .fast = true}, "fast recount", ""},
    {"fast hint: stopping workers count as alive", "alive=4 stopping=2", {.kind = WR_HINT, .fast = true}, "fast recount", ""},
    {"fast hint: one already starting", "alive=1 starting=1", {.kind = WR_HINT, .fast = true}, "fast recount", ""},
    {"fast hint: restart backoff", "backoff", {.kind = WR_HINT, .fast = true}, "fast recount", ""},
    {"fast hint: max_workers_total wait", "capped", {.kind = WR_HINT, .fast = true}, "fast recount", ""},
    {"fast hint on a FATAL stage raises gen only", "fatal idle=1", {.kind = WR_HINT, .fast = true}, "recount", "gen=1"},
    {"fast hint, database down", "down idle=1", {.kind = WR_HINT, .fast = true}, "recount", "gen=1"},
    {"fast path done: its recount waits one spacing", "spacing=10", {.kind = WR_FAST_DONE}, "recount_in=10", "last=100000"},
    {"fast path done, recount in flight", "inflight last=5", {.kind = WR_FAST_DONE}, "recount", "last=5"},
    {"fast path done, recount timer armed", "pending", {.kind = WR_FAST_DONE}, "recount", "last=0"},

    /* at most one recount in flight, spaced */
    {"first recount starts at once", "gen=7", {.kind = WR_RECOUNT}, "start", "inflight rgen=7 last=100000"},
    {"recount while one is in flight: once more after", "inflight", {.kind = WR_RECOUNT}, "", "again"},
    {"recount too soon: timer for the rest", "last=99995", {.kind = WR_RECOUNT}, "recount_in=5", "!inflight"},
    {"recount too soon, timer armed already", "last=99995 pending", {.kind = WR_RECOUNT}, "", "!inflight"},
    {"recount one spacing later", "last=99990", {.kind = WR_RECOUNT}, "start", "inflight"},
    {"recount, database down", "down", {.kind = WR_RECOUNT}, "", "!inflight"},
    {"recount of a removed stage", "removed", {.kind = WR_RECOUNT}, "", "!inflight"},

    /* the recount returns C */
    {"C = 0: nothing to do", "inflight gen=3 alive=1 idle=1", {.kind = WR_COUNTED, .claimable = 0}, "", "!inflight gen=3 spacing=10"},
    {"C = 3 wakes the idle worker", "inflight gen=3 alive=1 idle=1", {.kind = WR_COUNTED, .claimable = 3}, "wake=1 claimable=3", "gen=4"},
    {"C within max_workers", "inflight", {.kind = WR_COUNTED, .claimable = 9}, "claimable=4", ""},
    {"C below 0 is 0", "inflight", {.kind = WR_COUNTED, .claimable = -2}, "", ""},
    {"workers woken since the recount began count", "inflight alive=3 idle=2 woken=1", {.kind = WR_COUNTED, .claimable = 2}, "wake=1 claimable=2", ""},
    {"more woken than C: no wake", "inflight alive=3 idle=1 woken=2", {.kind = WR_COUNTED, .claimable = 1}, "claimable=1", ""},
    {"recount returns while another hint arrived", "inflight again", {.kind = WR_COUNTED, .claimable = 2}, "claimable=2 recount", "!again !inflight spacing=10"},
    {"hints that find nothing space the recounts", "inflight again spacing=10", {.kind = WR_COUNTED, .claimable = 0}, "recount", "spacing=20"},
    {"... up to 640 ms", "inflight again spacing=640", {.kind = WR_COUNTED, .claimable = 0}, "recount", "spacing=640"},
    {"work found brings the spacing back", "inflight spacing=320", {.kind = WR_COUNTED, .claimable = 1}, "claimable=1", "spacing=10"},
    {"C on a stopped stage wakes nobody", "inflight unrunnable idle=1", {.kind = WR_COUNTED, .claimable = 2}, "claimable=2", "gen=1"},
    {"failed recount, nothing asked since", "inflight", {.kind = WR_COUNT_FAILED}, "", "!inflight"},
    {"failed recount, a hint came meanwhile", "inflight again", {.kind = WR_COUNT_FAILED}, "recount", "!inflight !again"},

    /* the spawn formula min(max_workers - alive, C - woken - starting) */
    {"spawn C - woken", "alive=1 woken=1", {.kind = WR_WOKEN, .claimable = 3}, "spawn=2", ""},
    {"spawn within max_workers", "alive=3", {.kind = WR_WOKEN, .claimable = 4}, "spawn=1", ""},
    {"max_workers reached", "alive=4", {.kind = WR_WOKEN, .claimable = 4}, "", ""},
    {"starting workers take their share", "alive=2 starting=2", {.kind = WR_WOKEN, .claimable = 3}, "spawn=1", ""},
    {"starting workers take it all", "alive=2 starting=2", {.kind = WR_WOKEN, .claimable = 2}, "", ""},
    {"starting grace over: counted busy, not woken", "alive=2", {.kind = WR_WOKEN, .claimable = 2}, "spawn=2", ""},
    {"a failed wake leaves its task to a spawn", "alive=1 idle=1", {.kind = WR_WOKEN, .claimable = 2}, "spawn=2", ""},
    {"C = 0 spawns nothing", "alive=0", {.kind = WR_WOKEN, .claimable = 0}, "", ""},
    {"no spawn in backoff", "backoff min=2", {.kind = WR_WOKEN, .claimable = 3}, "", ""},
    {"no spawn while max_workers_total waits", "capped", {.kind = WR_WOKEN, .claimable = 3}, "", ""},
    {"no spawn on a FATAL stage", "fatal", {.kind = WR_WOKEN, .claimable = 3}, "", ""},
    {"no spawn with the database down", "down", {.kind = WR_WOKEN, .claimable = 3}, "", ""},
    {"min_workers kept", "min=2", {.kind = WR_WOKEN, .claimable = 0}, "refill=2", ""},
    {"min_workers beyond the spawns", "min=3", {.kind = WR_WOKEN, .claimable = 1}, "spawn=1 refill=2", ""},
    {"min_workers refill waiting its delay", "min=2 refill_due", {.kind = WR_WOKEN, .claimable = 0}, "", ""},

    /* the answer to I: generations */
    {"stale generation: W at once", "gen=5", {.kind = WR_IDLE_REPORT, .worker_gen = 4}, "wake=1", ""},
    {"current generation: idle", "gen=5", {.kind = WR_IDLE_REPORT, .worker_gen = 5}, "", ""},
    {"stale generation on a stopped stage: idle", "gen=5 unrunnable", {.kind = WR_IDLE_REPORT, .worker_gen = 4}, "", ""},
    {"idle timeout above min_workers stops", "min=1 alive=2", {.kind = WR_IDLE_END}, "stop", ""},
    {"idle timeout at min_workers keeps it", "min=1 alive=2 stopping=1", {.kind = WR_IDLE_END}, "", ""},

    /* exits, crashes, restart backoff, min_workers refills */
    {"crash: first backoff is restart_delay", "alive=1", {.kind = WR_GONE, .crashed = true, .spawned_ms = SPAWNED(500)}, "backoff=1000", "backoff cur=2000"},
    {"crash: the delay doubles", "cur=2000", {.kind = WR_GONE, .crashed = true, .spawned_ms = SPAWNED(500)}, "backoff=2000", "cur=4000"},
    {"crash: up to restart_delay_max", "cur=8000", {.kind = WR_GONE, .crashed = true, .spawned_ms = SPAWNED(500)}, "backoff=8000", "cur=8000"},
    {"crash after restart_window: backoff starts over", "cur=8000", {.kind = WR_GONE, .crashed = true, .spawned_ms = SPAWNED(60000)}, "backoff=1000", "cur=2000"},
    {"exec failure (never forked) backs off", "cur=4000", {.kind = WR_GONE, .crashed = true}, "backoff=4000", "cur=8000"},
    {"exit 0 resets the backoff and recounts", "cur=4000", {.kind = WR_GONE, .exit_ok = true, .spawned_ms = SPAWNED(10)}, "recount", "cur=1000 !backoff"},
    {"min_workers after a crash: refill after restart_delay", "min=1", {.kind = WR_GONE, .crashed = true, .spawned_ms = SPAWNED(500)}, "backoff=1000 refill_in=1000", "refill_due backoff"},
    {"min_workers refill already waiting", "min=1 refill_due", {.kind = WR_GONE, .spawned_ms = SPAWNED(500)}, "recount", ""},
    {"min_workers met", "min=1 alive=1", {.kind = WR_GONE, .spawned_ms = SPAWNED(500)}, "recount", "!refill_due"},
    {"no refill on a stopped stage", "min=2 unrunnable", {.kind = WR_GONE, .spawned_ms = SPAWNED(500)}, "recount", "!refill_due"},

    /* crashes settled, FATAL, start */
    {"crash not counted", "", {.kind = WR_SETTLED, .counted = false}, "", "tally=0"},
    {"counted crash below max_restarts", "tally=1", {.kind = WR_SETTLED, .counted = true}, "", "tally=2"},
    {"max_restarts within restart_window: FATAL", "tally=2", {.kind = WR_SETTLED, .counted = true}, "fatal=3", "tally=3"},
    {"crashes outside restart_window do not count", "old=5 tally=1", {.kind = WR_SETTLED, .counted = true}, "", "tally=2"},
    {"max_restarts 0 never goes FATAL", "restarts=0 tally=10", {.kind = WR_SETTLED, .counted = true}, "", "tally=11"},
    {"a FATAL stage tallies no more", "fatal tally=3", {.kind = WR_SETTLED, .counted = true}, "", "tally=3"},
    {"FATAL ends the backoff", "backoff", {.kind = WR_FATAL}, "cancel_backoff", "!backoff"},
    {"start forgets backoff and tally", "backoff cur=8000 tally=3 gen=2", {.kind = WR_START}, "recount cancel_backoff", "!backoff cur=1000 tally=0 gen=3"},

    /* timers */
    {"not_before due raises gen", "gen=1", {.kind = WR_NOT_BEFORE}, "recount", "gen=2"},
    {"backoff over", "backoff", {.kind = WR_BACKOFF_END}, "recount restarted", "!backoff"},
    {"backoff over on a stopped stage", "backoff unrunnable", {.kind = WR_BACKOFF_END}, "recount", "!backoff"},
    {"refill delay over", "refill_due", {.kind = WR_REFILL_END}, "recount", "!refill_due"},
    {"max_workers_total refused: wait restart_delay", "", {.kind = WR_CAPPED}, "cap_in=1000", "capped"},
    {"max_workers_total wait over", "capped", {.kind = WR_CAP_END}, "recount", "!capped"},
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const Row *r = &rows[i];
        WakeState st;
        WakeView v;
        given(r->given, &st, &v);
        WakeDecision d = wake_rules_decide(&st, &v, &r->ev);
        char got[256];
        fmt_decision(&d, got, sizeof got);
        if (strcmp(got, r->want) != 0)
            fail_msg("%s: decided \"%s\", not \"%s\"", r->name, got, r->want);
        check_after(r->name, r->after, &st);
    }
}

/* Every event kind has its rule (a missing one would crash here). */
static void test_every_event_has_a_rule(void **state)
{
    (void)state;
    for (int k = 0; k < WR__COUNT; k++) {
        WakeState st;
        WakeView v;
        given("", &st, &v);
        wake_rules_decide(&st, &v, &(WakeEvent){.kind = (WakeEventKind)k});
    }
}

/* ---------------------------------------------------------------- sequences */

/* A crash loop under a fake clock: each restart waits its doubled delay and
 * crashes at once; the third counted crash within restart_window is FATAL,
 * and a start begins again from restart_delay. */
static void test_backoff_sequence_to_fatal(void **state)
{
    (void)state;
    WakeState st;
    WakeView v;
    given("", &st, &v);
    const int64_t delays[] = {1000, 2000, 4000};
    for (int i = 0; i < 3; i++) {
        WakeDecision d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_GONE, .crashed = true,
                                                                 .spawned_ms = v.now_ms - 50});
        assert_int_equal(d.backoff_ms, delays[i]);
        assert_false(d.recount); /* the release's notification and the backoff's end recount */
        d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_SETTLED, .counted = true});
        assert_int_equal(d.fatal, i == 2);
        if (d.fatal) {
            assert_int_equal(d.crashes, 3);
            break;
        }
        v.now_ms += delays[i];
        d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_BACKOFF_END});
        assert_true(d.restarted && d.recount);
        assert_int_equal(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_WOKEN, .claimable = 1}).spawn, 1);
    }
    v.fatal = true, v.runnable = false;
    assert_true(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_FATAL}).cancel_backoff);
    WakeDecision d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_HINT, .fast = true});
    assert_int_equal(d.spawn + d.wake, 0);
    assert_int_equal(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_WOKEN, .claimable = 1}).spawn, 0);

    v.fatal = false, v.runnable = true;
    assert_true(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_START}).recount);
    d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_GONE, .crashed = true, .spawned_ms = v.now_ms - 50});
    assert_int_equal(d.backoff_ms, 1000);
    assert_false(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_SETTLED, .counted = true}).fatal);
}

/* Jitter comes from the view's RNG: the lowest draw gives the floor of each
 * step, never below restart_delay. */
static uint32_t zero_rand(void *rng)
{
    (void)rng;
    return 0;
}

static void test_backoff_jitter_from_view(void **state)
{
    (void)state;
    WakeState st;
    WakeView v;
    given("", &st, &v);
    v.rand = zero_rand;
    const int64_t floors[] = {1000, 1000, 2000, 4000, 4000};
    for (size_t i = 0; i < sizeof floors / sizeof floors[0]; i++)
        assert_int_equal(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_GONE, .crashed = true}).backoff_ms,
                         floors[i]);
}

/* A burst of hints against a fake database: one recount in flight, one more
 * after it, spaced out while they keep finding nothing. */
static void test_hint_burst_one_recount_in_flight(void **state)
{
    (void)state;
    WakeState st;
    WakeView v;
    given("", &st, &v);
    int started = 0;
    for (int i = 0; i < 1000; i++) {
        WakeDecision d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_HINT});
        assert_true(d.recount);
        started += wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_RECOUNT}).start_recount;
    }
    assert_int_equal(started, 1);
    assert_true(st.recount_again);
    uint64_t gen = st.gen;

    /* The database answers: nothing claimable. One more recount is due, 20 ms on. */
    v.now_ms += 3;
    WakeDecision d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_COUNTED, .claimable = 0});
    assert_true(d.recount);
    assert_int_equal(st.gen, gen);
    d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_RECOUNT});
    assert_false(d.start_recount);
    assert_int_equal(d.recount_in_ms, 17);
    v.now_ms += 17;
    v.recount_timer_pending = false;
    assert_true(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_RECOUNT}).start_recount);

    /* This one finds work: gen rises, so workers of the old generation get W. */
    d = wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_COUNTED, .claimable = 2});
    assert_false(d.recount);
    assert_int_equal(st.gen, gen + 1);
    assert_int_equal(st.spacing_ms, RECOUNT_SPACING_MS);
    assert_int_equal(wake_rules_decide(&st, &v, &(WakeEvent){.kind = WR_IDLE_REPORT, .worker_gen = gen}).wake, 1);
}

/* The starting grace is the 2 s of SPEC section 5. */
static void test_starting_grace(void **state)
{
    (void)state;
    assert_int_equal(STARTING_GRACE_MS, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_every_event_has_a_rule),
        cmocka_unit_test(test_backoff_sequence_to_fatal),
        cmocka_unit_test(test_backoff_jitter_from_view),
        cmocka_unit_test(test_hint_burst_one_recount_in_flight),
        cmocka_unit_test(test_starting_grace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
