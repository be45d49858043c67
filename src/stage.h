/* stage.h: one configured stage: its generation, recounts, the wake and spawn
 * decisions of SPEC section 5, restart backoff, crash tally and FATAL. */
#ifndef PGWAKE_STAGE_H
#define PGWAKE_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event_struct.h>

#include "backoff.h"
#include "config.h"
#include "metrics.h"
#include "mustcheck.h"
#include "outlog.h"
#include "worker.h"

struct Daemon;

typedef struct StageStats {
    uint64_t spawns, exits, crashes, restarts, wakes, recounts, fast_paths, releases, reexec;
    Histogram wake_latency;   /* first unanswered hint -> W sent */
} StageStats;

typedef struct Stage {
    struct Daemon *d;
    const StageConf *conf;    /* points into a Config the daemon owns */
    const struct Config *cfg; /* the Config conf belongs to */
    char name[64];
    uint64_t gen;             /* raised by every hint that work may exist */
    uint64_t conf_gen;        /* raised by a reload that restarts workers */
    uint64_t recount_gen;     /* gen when the recount in flight began (apply_count) */
    Worker *workers;
    int count[WK__COUNT];     /* workers per state, kept by worker_set_state */
    int claimable;            /* last recount (at most max_workers) */
    bool recount_inflight : 1;
    bool recount_again : 1;   /* a hint arrived while a recount was in flight */
    bool fatal : 1;           /* crash loop: no spawn until start or reload */
    bool stopped : 1;         /* operator stop, persisted in pgwake.stage_state */
    bool removed : 1;         /* gone from the configuration: stopping, then freed */
    bool in_backoff : 1;      /* restart delay running: no spawn */
    bool refill_due : 1;      /* min_workers refill waits for refill_ev */
    bool capped : 1;          /* max_workers_total refused a registration: wait cap_ev */
    int64_t last_recount_ms;
    int64_t spacing_ms;       /* between recount starts: 10 ms, more while hints find nothing */
    double hint_at;           /* metrics_now() of the oldest hint no W answered yet, 0 = none */
    struct event recount_ev;  /* spaces recounts at least 10 ms apart */
    struct event notbefore_ev;/* the next pending task's not_before */
    struct event backoff_ev;
    struct event refill_ev;
    struct event cap_ev;      /* retry after a refused registration, at restart_delay */
    Backoff backoff;
    CrashTally tally;
    char fatal_reason[200];
    OutLog *log;
    StageStats st;
} Stage;

Stage *stage_new(struct Daemon *d, const StageConf *conf, const struct Config *cfg,
                 char *err) MUSTCHECK;
void stage_free(Stage *s);
void stage_hint(Stage *s, bool fast);
void stage_recount(Stage *s);
void stage_worker_gone(Stage *s, Worker *w, bool crashed, bool exit_ok);
void stage_crash_settled(Stage *s, bool counted, const char *reason);
void stage_stop_all(Stage *s, const char *why);
void stage_set_fatal(Stage *s, const char *reason);
void stage_start(Stage *s);
void stage_stop(Stage *s);
void stage_apply_conf(Stage *s, const StageConf *conf, const struct Config *cfg, unsigned diff);
void stage_roll(Stage *s);
void stage_restart(Stage *s);
void stage_capped(Stage *s);
void stage_woke(Stage *s);
int stage_alive(const Stage *s);
bool stage_runnable(const Stage *s);
void stage_record_state(Stage *s);

#endif
