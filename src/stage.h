/* stage.h: one configured stage: its workers, timers and recount queries,
 * carrying out the wake and spawn decisions of wake_rules.h (SPEC section 5). */
#ifndef PGWAKE_STAGE_H
#define PGWAKE_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event_struct.h>

#include "config.h"
#include "metrics.h"
#include "mustcheck.h"
#include "outlog.h"
#include "wake_rules.h"
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
    WakeState wr;             /* generation, recounts, backoff, tally: the wake rules' state */
    uint64_t conf_gen;        /* raised by a reload that restarts workers */
    Worker *workers;
    int count[WK__COUNT];     /* workers per state, kept by worker_set_state */
    int claimable;            /* last recount (at most max_workers) */
    bool fatal : 1;           /* crash loop: no spawn until start or reload */
    bool stopped : 1;         /* operator stop, persisted in pgwake.stage_state */
    bool removed : 1;         /* gone from the configuration: stopping, then freed */
    double hint_at;           /* metrics_now() of the oldest hint no W answered yet, 0 = none */
    struct event recount_ev;  /* spaces recounts at least 10 ms apart */
    struct event notbefore_ev;/* the next pending task's not_before */
    struct event backoff_ev;
    struct event refill_ev;
    struct event cap_ev;      /* retry after a refused registration, at restart_delay */
    char fatal_reason[200];
    OutLog *log;
    StageStats st;
} Stage;

Stage *stage_new(struct Daemon *d, const StageConf *conf, const struct Config *cfg,
                 char *err, size_t errlen) MUSTCHECK;
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
WakeDecision stage_decide(Stage *s, const WakeEvent *ev);
int stage_alive(const Stage *s);
bool stage_runnable(const Stage *s);
void stage_record_state(Stage *s);

#endif
