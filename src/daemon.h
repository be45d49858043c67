/* daemon.h: the `pgwake run` process: owns the event base, the configuration,
 * the database connection, the stages, signals, start-up and stop order. */
#ifndef PGWAKE_DAEMON_H
#define PGWAKE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event_struct.h>

#include "alert.h"
#include "config.h"
#include "db.h"
#include "maint.h"
#include "memwatch.h"
#include "mustcheck.h"
#include "notify.h"
#include "stage.h"

typedef struct DaemonStats {
    uint64_t notifications[CH__COUNT]; /* by channel */
    uint64_t ignored;                  /* well-formed, for a stage not served here */
    uint64_t unparseable;
    uint64_t recounts;
} DaemonStats;

typedef struct Daemon {
    struct event_base *base;
    Config *cfg;              /* current configuration */
    Config **retired;         /* older configurations still referenced by a removed stage */
    int nretired;
    char *conf_path;
    char *dsn;                /* for the daemon's own connection */
    char *worker_dsn;         /* PGWAKE_DSN for workers */
    DbConn *db;               /* LISTEN, start-up, recounts, registrations */
    DbConn *mdb;              /* releases, heartbeat verdicts, maintenance (may wait on locks) */
    struct Verify *verify;    /* re-reads of local workers' rows (hints, reconnects) */
    Maint *maint;             /* heartbeat deadlines, maintenance lock, expire_leases */
    MemWatch *memwatch;       /* RSS sampling for memory_limit */
    Alerter *alerter;         /* email / webhook; NULL when none is configured */
    struct Http *http;        /* status, metrics and control on http_listen */
    struct ReleaseSql *rsql;  /* release_sql registration and retries */
    Stage **stages;
    int nstages;
    Worker *dead_workers;     /* retired in this loop pass, freed by the after-loop hook */
    int lock_fd;              /* flock'ed lock file */
    struct event sig_term, sig_int, sig_hup, sig_usr1, sig_chld;
    struct event safety_ev;   /* recount_interval */
    struct event stop_ev;     /* hard deadline of the stop sequence */
    struct event badlog_ev;   /* end of the bad-payload log window */
    struct event watchdog_ev; /* WATCHDOG=1 to systemd, at half its WATCHDOG_USEC */
    bool ready : 1;           /* start-up done once: "ready" logged */
    bool setup_done : 1;      /* start-up sequence done on this connection */
    bool stopping : 1;        /* SIGTERM/SIGINT received */
    bool forced : 1;          /* a second SIGTERM: kill now */
    bool db_up : 1;           /* gate open on the current connection */
    bool db_lost : 1;         /* the connection was lost at least once */
    bool check_finish : 1;    /* after-loop hook: free removed stages, end the stop */
    bool final_wait : 1;      /* stop deadline passed: SIGKILL sent, last wait running */
    bool main_session : 1;    /* the main connection is up (a loss of the other follows) */
    bool maint_session : 1;   /* the maintenance connection is up (likewise) */
    bool loop_done : 1;       /* the stop is complete: leave the loop (after-loop hook) */
    int64_t db_back_ms;       /* when the database came back after a loss (crash exclusion) */
    int exit_code;
    uint32_t rng_state;       /* daemon_rand's */
    unsigned bad_logged;      /* bad payloads logged in the current window */
    unsigned bad_suppressed;
    DaemonStats st;
} Daemon;

int daemon_run(Config *cfg, const char *conf_path, const char *opt_dsn) MUSTCHECK;
Stage *daemon_stage(Daemon *d, const char *name);
bool daemon_add_stage(Daemon *d, const StageConf *sc, const Config *cfg, char *err,
                      size_t errlen) MUSTCHECK;
Worker *daemon_worker_by_pid(Daemon *d, pid_t pid);
Worker *daemon_worker_by_id(Daemon *d, const char *id);
void daemon_each_stage(Daemon *d, void (*fn)(Stage *));
void daemon_maybe_finish(Daemon *d);
void daemon_abort(Daemon *d, int code);
uint32_t daemon_rand(void *d);

#endif
