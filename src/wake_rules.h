/* wake_rules.h: the waking and spawning rules of SPEC section 5 as one pure
 * decision: a stage's rule state and what it sees now, plus an event, give
 * what to do. stage.c carries the decisions out; unit tests drive them. */
#ifndef PGWAKE_WAKE_RULES_H
#define PGWAKE_WAKE_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"

/* A worker counts as starting (about to claim: the spawn formula leaves it
 * the work it will find) only this long. One that works in drain mode, or
 * whose first claim found a long task, never reports I; counted as starting
 * for ever, it would keep every further task of its stage waiting. */
enum { STARTING_GRACE_MS = 2000 };

#define RECOUNT_SPACING_MS 10      /* at least this between two recounts of a stage */
#define RECOUNT_SPACING_MAX_MS 640 /* ... growing to this while hints find nothing */

/* What the rules remember of one stage. Only wake_rules_decide changes it,
 * but for recount_inflight when the query never went out or its connection
 * was lost (nothing will answer it). */
typedef struct WakeState {
    uint64_t gen;             /* raised by every hint that work may exist */
    uint64_t recount_gen;     /* gen when the recount in flight began (woken) */
    int64_t last_recount_ms;  /* monotonic start of the last recount, 0 = none yet */
    int64_t spacing_ms;       /* between recount starts: 10 ms, more while hints find nothing */
    Backoff backoff;          /* restart delay */
    CrashTally tally;         /* counted crashes, for max_restarts */
    bool recount_inflight : 1;
    bool recount_again : 1;   /* a hint arrived while a recount was in flight */
    bool in_backoff : 1;      /* restart delay running: no spawn */
    bool refill_due : 1;      /* min_workers refill waits for its timer */
    bool capped : 1;          /* max_workers_total refused a registration: wait for its timer */
} WakeState;

/* What the stage sees at the moment of the event: its limits, its workers
 * by state, and the world around it. */
typedef struct WakeView {
    int max_workers, min_workers, max_restarts;
    int64_t restart_delay_ms, restart_window_ms;
    int alive;                /* every worker not yet reaped, stopping ones included */
    int idle;                 /* reported I, nothing newer sent */
    int starting;             /* registering, or forked within STARTING_GRACE_MS without an I */
    int stopping;
    int woken;                /* busy workers told W since the recount in flight began */
    int64_t now_ms;           /* monotonic */
    bool runnable;            /* neither FATAL, stopped, removed nor the daemon stopping */
    bool fatal;
    bool removed;             /* gone from the configuration */
    bool db_ready;
    bool recount_timer_pending;
    BackoffRandFn rand;       /* jitter of the restart delay */
    void *rng;
} WakeView;

typedef enum {
    WR_HINT,          /* work may exist; .fast when a task or run notification proves it */
    WR_FAST_DONE,     /* the fast path woke or spawned a worker */
    WR_RECOUNT,       /* a recount is asked for */
    WR_COUNTED,       /* the recount in flight found .claimable tasks */
    WR_WOKEN,         /* the wakes for .claimable are done (view.woken counts them) */
    WR_COUNT_FAILED,  /* the recount in flight failed */
    WR_NOT_BEFORE,    /* a pending task's not_before has come */
    WR_IDLE_REPORT,   /* a worker of generation .worker_gen reported I */
    WR_IDLE_END,      /* an idle worker's idle_timeout has passed */
    WR_GONE,          /* a worker was reaped or never started: .crashed, .exit_ok, .spawned_ms */
    WR_SETTLED,       /* a crashed worker's leases are released; .counted toward max_restarts */
    WR_FATAL,         /* the stage became FATAL */
    WR_START,         /* an operator start or a changing reload clears FATAL */
    WR_BACKOFF_END,
    WR_REFILL_END,
    WR_CAPPED,        /* max_workers_total refused a registration */
    WR_CAP_END,
    WR__COUNT
} WakeEventKind;

typedef struct WakeEvent {
    WakeEventKind kind;
    bool fast;                /* WR_HINT */
    long claimable;           /* WR_COUNTED (as the database said), WR_WOKEN (clamped) */
    uint64_t worker_gen;      /* WR_IDLE_REPORT */
    bool crashed, exit_ok;    /* WR_GONE */
    int64_t spawned_ms;       /* WR_GONE: 0 = never forked */
    bool counted;             /* WR_SETTLED */
} WakeEvent;

/* What to do. Timers are -1 when left alone; a wake may fail (the worker's
 * fd is gone), so wakes come first and WR_WOKEN then says what to spawn. */
typedef struct WakeDecision {
    int wake;                 /* idle workers to send W, one after the other, stopping at a
                               * failure; WR_IDLE_REPORT: 1 = answer W, 0 = the worker is idle */
    int spawn;                /* workers to spawn for the work counted (or the fast path's one) */
    int refill;               /* workers to spawn to keep min_workers, after spawn */
    int claimable;            /* WR_COUNTED: the count within 0..max_workers */
    bool fast_path : 1;       /* WR_HINT: the fast path applies (counted in the stats) */
    bool recount : 1;         /* then go through WR_RECOUNT */
    bool start_recount : 1;   /* WR_RECOUNT: send the recount query now */
    bool stop : 1;            /* WR_IDLE_END: stop the worker */
    bool restarted : 1;       /* WR_BACKOFF_END on a runnable stage (counted in the stats) */
    bool cancel_backoff : 1;  /* delete the restart backoff timer */
    bool fatal : 1;           /* WR_SETTLED: max_restarts reached, the stage goes FATAL */
    int crashes;              /* ... with this many counted crashes within restart_window */
    int64_t recount_in_ms;    /* arm the recount timer */
    int64_t backoff_ms;       /* re-arm the restart backoff timer */
    int64_t refill_ms;        /* arm the min_workers refill timer */
    int64_t cap_ms;           /* re-arm the max_workers_total retry timer */
} WakeDecision;

void wake_rules_init(WakeState *st, int64_t restart_delay_ms, int64_t restart_delay_max_ms);
WakeDecision wake_rules_decide(WakeState *st, const WakeView *v, const WakeEvent *ev);

#endif
