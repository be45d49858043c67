/*
 * internal.h - the worker library's private types, shared by its .c files:
 * the pgwake_worker behind the opaque handle, and the private part of a task.
 */
#ifndef PGWK_INTERNAL_H
#define PGWK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "libworker/conn.h"
#include "libworker/heartbeat.h"
#include "libworker/log.h"
#include "libworker/wake.h"
#include "pgwake/worker.h"

#define PGWK_MAX_CLAIM_BATCH 1000 /* the most tasks pgwake_run claims at once */

/* What may end a wait for the database (main thread). */
typedef enum WkWaitMode {
    WAIT_CLAIM,  /* S, end of file, a stop request or fencing end the wait */
    WAIT_FINISH, /* complete/fail: only end of file, a stop request or fencing */
    WAIT_CLOSE,  /* pgwake_close(): nothing but the time limit */
} WkWaitMode;

/* One follow-up task queued by pgwake_task_add_followup(). */
typedef struct WkFollowup {
    char *stage;        /* target stage */
    char *payload;      /* JSON text */
    int priority;       /* higher first */
    long long delay_ms; /* not_before = now() + delay */
} WkFollowup;

struct pgwake_task_priv {
    pgwake_worker *w;  /* owner, for the held-task set */
    char *payload;     /* owns pgwake_task.payload */
    WkFollowup *fu;    /* follow-ups, in the order added */
    size_t nfu, fucap; /* used / allocated */
    char *error;       /* from pgwake_task_errorf() */
};

struct pgwake_worker {
    char *stage;               /* the stage we claim from */
    char *worker_id;           /* pgwake.workers.id */
    char *dsn;                 /* NULL: libpq's defaults */
    char lease[40];            /* claim's interval, e.g. "600.000 seconds" */
    unsigned hb_interval_ms;   /* heartbeat period */
    int claim_batch;           /* tasks per claim in pgwake_run ($PGWAKE_CLAIM_BATCH) */
    bool self_registered;      /* we called register_worker: close calls worker_exited */
    bool last_claim_empty;     /* the last claim found nothing (pgwake_wait_idle) */
    unsigned long claim_wseq;  /* wake.wseq when the last claim began */
    WkWaitMode wait_mode;      /* what may end a wait for the database now */
    WkLog log;                 /* log level, shared with the heartbeat thread */
    WkConn conn;               /* the main thread's connection */
    WkWake wake;               /* wake fd and interrupt eventfd */
    WkHeartbeat hb;            /* heartbeat thread and its connection */
    atomic_bool fenced;        /* set by the heartbeat thread on -1 */
    atomic_bool stop_requested; /* set by pgwake_request_stop() */
    long long *held;           /* ids of tasks claimed and not yet finished or freed */
    size_t nheld, heldcap;     /* used / allocated */
    pgwake_outcome_fn outcome; /* pgwake_set_outcome_hook() */
    void *outcome_arg;         /* its argument */
    char error[512];           /* pgwake_last_error() */
};

/* pgwk_set_error records the last error of the main thread. */
void pgwk_set_error(pgwake_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pgwk_connect waits for the main connection according to w->wait_mode. */
bool pgwk_connect(pgwake_worker *w);

/* The claim statement: $1 stage, $2 worker id, $3 lease, $4 n. */
extern const char PGWK_CLAIM_SQL[];

/*
 * pgwk_claim_begin starts a claim for the wake protocol (a W pending now
 * predates it); false when a stop was asked: claim nothing.
 */
bool pgwk_claim_begin(pgwake_worker *w);

/*
 * pgwk_claim claims up to n tasks (pgwake_claim_batch after pgwk_claim_begin);
 * maybe_committed: a claim whose answer was lost may have committed, so first
 * adopt what the database says we lease.
 */
int pgwk_claim(pgwake_worker *w, int n, pgwake_task **tasks, bool maybe_committed);

/* pgwk_take_rows turns rows of PGWK_CLAIM_SQL into tasks (at most n); returns how many. */
int pgwk_take_rows(pgwake_worker *w, const PGresult *r, int n, pgwake_task **tasks);

/*
 * pgwk_complete_many is pgwake_complete_batch for tasks without follow-ups;
 * retried: an earlier attempt may have committed (a lost answer), so a
 * fenced repeat is checked with lease_outcome.
 */
int pgwk_complete_many(pgwake_worker *w, pgwake_task **tasks, int n, int *status, bool retried);

/*
 * pgwk_complete_claim completes done[0..ndone-1] (no follow-ups) and claims up
 * to n tasks into tasks[] in one round trip and one transaction (claim first:
 * the workers row before any tasks row); status[] as pgwk_complete_many.
 * Call after pgwk_claim_begin. Returns the tasks claimed or a negative status.
 */
int pgwk_complete_claim(pgwake_worker *w, pgwake_task **done, int ndone, int *status, int n,
                        pgwake_task **tasks);

/* Completes tasks $1::bigint[] by tokens $2::bigint[]; rows (n, completed). */
extern const char PGWK_COMPLETE_MANY_SQL[];

/* pgwk_complete_statuses reads PGWK_COMPLETE_MANY_SQL's rows into status[0..n-1]. */
void pgwk_complete_statuses(const PGresult *r, int n, int *status);

/* pgwk_sort_by_id orders tasks by id (the order their rows are locked in). */
void pgwk_sort_by_id(pgwake_task **ts, int n);

/* pgwk_settle drops finished tasks from the held set and logs the fenced ones. */
void pgwk_settle(pgwake_worker *w, pgwake_task *const *ts, int n, const int *status);

/* pgwk_token_arrays formats the ids and lease tokens as bigint[] literals; caller frees. */
bool pgwk_token_arrays(pgwake_task *const *ts, int n, char **ids, char **tokens);

/* pgwk_held_add / pgwk_held_remove maintain the set of tasks we hold. */
bool pgwk_held_add(pgwake_worker *w, long long id);
void pgwk_held_remove(pgwake_worker *w, long long id);

#endif
