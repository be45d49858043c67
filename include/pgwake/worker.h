/*
 * pgwake/worker.h - client library for pgwake stage workers.
 *
 * A worker claims tasks of one stage from pgwake.tasks, runs them, completes
 * them (optionally enqueueing follow-up tasks in the same transaction) or fails
 * them, and heartbeats from a background thread for its whole life. When the
 * pgwake daemon spawned it, it also speaks the wake-fd protocol (idle `I`,
 * wake `W`, stop `S`, end of file = the daemon is gone). A worker started any
 * other way registers itself and works in "drain mode": it claims until nothing
 * is left, then pgwake_run() returns.
 *
 * Typical use:
 *
 *     static const char *handle(pgwake_worker *w, pgwake_task *t,
 *                               bool *retry, void *arg)
 *     {
 *         ... parse t->payload (JSON text), do the work ...
 *         if (broken)
 *             return pgwake_task_errorf(t, "bad input: %s", why);
 *         pgwake_task_add_followup(t, "next_stage", "{\"x\": 1}");
 *         return NULL;                         // success: complete the task
 *     }
 *
 *     int main(void)
 *     {
 *         char err[256];
 *         pgwake_worker *w = pgwake_open(NULL, err, sizeof err);
 *         if (!w) { fprintf(stderr, "%s\n", err); return 1; }
 *         int rc = pgwake_run(w, handle, NULL);
 *         pgwake_close(w);
 *         return rc == PGWAKE_OK ? 0 : 1;
 *     }
 *
 * Threading: every call on one pgwake_worker must come from one thread (the
 * "main" thread of that worker), except pgwake_fenced(), pgwake_request_stop()
 * and the accessors of read-only strings, which may be called from anywhere
 * (pgwake_request_stop() even from a signal handler). The library's own
 * heartbeat thread uses a separate database connection.
 *
 * The library installs no signal handler and has no global state.
 */
#ifndef PGWAKE_WORKER_H
#define PGWAKE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by the calls below (0 or a count means success). */
enum {
    PGWAKE_OK = 0,       /* done */
    PGWAKE_ERROR = -1,   /* an SQL or system error; pgwake_last_error() says which */
    PGWAKE_LOST = -2,    /* complete/fail: the lease is no longer ours (fenced); nothing changed */
    PGWAKE_FENCED = -3,  /* this worker was declared dead: stop at once, its leases are others' */
    PGWAKE_STOPPED = -4, /* gave up waiting (for the database or a byte) because a stop was asked */
};

/* pgwake_wait_idle() results. */
enum {
    PGWAKE_WAKE_WORK = 1, /* claim again: `W` arrived, or a claim is due anyway */
    PGWAKE_WAKE_STOP = 0, /* stop: `S`, end of file, a stop request, fencing or drain mode done */
};

/* Log levels for pgwake_options.log_level (lines go to stderr). */
enum {
    PGWAKE_LOG_ERROR = 0,
    PGWAKE_LOG_WARN = 1, /* default: problems and reconnects */
    PGWAKE_LOG_INFO = 2, /* plus start-up, stop, fencing */
    PGWAKE_LOG_DEBUG = 3, /* plus every wake-fd byte and heartbeat */
};

typedef struct pgwake_worker pgwake_worker; /* opaque: one worker process's state */
typedef struct pgwake_task_priv pgwake_task_priv;

/*
 * One claimed task. The public fields are read-only for the caller; the
 * library owns the memory until pgwake_task_free().
 */
typedef struct pgwake_task {
    long long id;          /* pgwake.tasks.id */
    long long run_id;      /* pgwake.runs.id, or 0 when the task belongs to no run */
    const char *payload;   /* the payload as JSON text (never NULL: "null" at worst) */
    int attempts;          /* claims so far, this one included: > 1 means a re-execution */
    long long lease_token; /* fences complete/fail: new at every claim */
    pgwake_task_priv *priv; /* library-private: follow-ups, error text */
} pgwake_task;

/*
 * Options for pgwake_open(). Initialise with pgwake_options_init(), then set
 * what you want to override; everything left alone comes from the environment
 * the daemon sets (PGWAKE_*), else from the defaults named below.
 */
typedef struct pgwake_options {
    const char *dsn;           /* NULL: $PGWAKE_DSN, else libpq's defaults (PGHOST, ...) */
    const char *stage;         /* NULL: $PGWAKE_STAGE (one of them is required) */
    const char *worker_id;     /* NULL: $PGWAKE_WORKER_ID, else register ourselves */
    double lease_seconds;      /* <= 0: $PGWAKE_LEASE_SECONDS, else 300 */
    double heartbeat_interval; /* <= 0: $PGWAKE_HEARTBEAT_INTERVAL, else 30 */
    bool drain;                /* ignore $PGWAKE_WAKE_FD: claim until nothing is left */
    int log_level;             /* PGWAKE_LOG_*; default PGWAKE_LOG_WARN */
    /*
     * How long pgwake_open() tries to make its first connection, which it
     * then requires: 0 one attempt, > 0 that many seconds. < 0 (the default):
     * one attempt, required only to register ourselves; a worker spawned by
     * pgwake opens anyway and its claims wait for the database (a stop byte or
     * end of file on the wake fd ends that wait: pgwake_run returns PGWAKE_OK).
     */
    double connect_wait;
    /*
     * Tasks pgwake_run() claims per round trip, 1..1000 (<= 0: $PGWAKE_CLAIM_BATCH,
     * the stage's claim_batch, else 1). Above 1 it also completes those
     * without follow-ups together, in one statement, each by its own token.
     */
    int claim_batch;
} pgwake_options;

/* Outcome hook for pgwake_run(): see pgwake_set_outcome_hook(). */
typedef void (*pgwake_outcome_fn)(pgwake_worker *w, const pgwake_task *task,
                                  bool completed, int status, void *arg);

/*
 * A task handler for pgwake_run(). Return NULL for success (the task is then
 * completed together with the follow-ups added by pgwake_task_add_followup()),
 * or an error message to fail it; *retry is true on entry, set it false to make
 * the failure final (the task goes dead instead of being retried with backoff).
 * The message may be static, from pgwake_task_errorf(), or any string that
 * lives until the handler's caller has used it (it is copied at once).
 */
typedef const char *(*pgwake_handler_fn)(pgwake_worker *w, pgwake_task *task,
                                         bool *retry, void *arg);

/* pgwake_options_init fills *o with "take it from the environment" defaults. */
void pgwake_options_init(pgwake_options *o);

/*
 * pgwake_open connects to the database and starts the heartbeat thread, so a
 * worker is visibly alive from the start. When no worker id is given (neither
 * in opts nor in PGWAKE_WORKER_ID: a worker not spawned by pgwake) it registers
 * itself with pgwake.register_worker(stage, hostname, pid), and pgwake_close()
 * will end the registration with pgwake.worker_exited(); a spawned worker leaves
 * both to the daemon. opts may be NULL. On failure it returns NULL with a
 * message in err (when err is not NULL).
 */
pgwake_worker *pgwake_open(const pgwake_options *opts, char *err, size_t errlen);

/*
 * pgwake_close stops the heartbeat thread, ends a self-registration with
 * pgwake.worker_exited() (which releases any lease still held), closes both
 * connections and the wake fd, and frees w. NULL is accepted. Returns
 * PGWAKE_OK, or PGWAKE_ERROR when worker_exited could not be called (the
 * daemon or pgwake.expire_leases() will then clean up after the heartbeat
 * timeout).
 */
int pgwake_close(pgwake_worker *w);

/*
 * pgwake_run is the whole worker loop: claim up to $PGWAKE_CLAIM_BATCH tasks
 * (the stage's claim_batch; default 1) in one statement, call fn for each,
 * fail failures on their own and complete the successes (with claim_batch 1:
 * together with the next claim, one round trip and one commit; above 1: all
 * of a batch in one statement), check the wake fd without blocking (so a busy
 * worker still sees `S`), and when a claim finds nothing write `I` and block until `W` (claim
 * again), `S` or end of file (return). In drain mode it returns once a claim
 * finds nothing. Returns PGWAKE_OK when told to stop (exit 0), PGWAKE_FENCED
 * when the worker was declared dead, PGWAKE_ERROR on an error the caller
 * should exit for (a broken schema, not a lost connection: those are retried).
 */
int pgwake_run(pgwake_worker *w, pgwake_handler_fn fn, void *arg);

/*
 * pgwake_set_outcome_hook registers fn, called by pgwake_run() after each
 * complete (completed = true) or fail (false) with its status (PGWAKE_OK,
 * PGWAKE_LOST, PGWAKE_ERROR or PGWAKE_STOPPED), before the task is freed.
 * Useful for logging and metrics. fn NULL removes the hook.
 */
void pgwake_set_outcome_hook(pgwake_worker *w, pgwake_outcome_fn fn, void *arg);

/* ---- low-level calls, for custom loops ---------------------------------- */

/*
 * pgwake_claim claims at most one task: returns 1 and sets *task, 0 when
 * nothing is claimable (or the worker is fenced, or a stop was requested), or
 * a negative status. Lost connections are reconnected with backoff (100 ms
 * doubling to 5 s) and the claim retried; because a claim that was cut off may
 * have committed, the retry first adopts the tasks the database says this
 * worker leases but this process does not know of (so no lease is orphaned).
 * A claim rolled back by a deadlock or serialization failure (SQLSTATE 40P01,
 * 40001) is simply repeated. Free the task with pgwake_task_free() after
 * completing or failing it.
 */
int pgwake_claim(pgwake_worker *w, pgwake_task **task);

/*
 * pgwake_claim_batch claims up to n tasks in one statement into tasks[0..]:
 * returns how many (0..n) or a negative status. Same retry rules as
 * pgwake_claim(). All the tasks' leases run at once, so complete or fail each
 * before its lease ends (the heartbeat extends them while the worker lives).
 */
int pgwake_claim_batch(pgwake_worker *w, int n, pgwake_task **tasks);

/*
 * pgwake_task_add_followup queues a follow-up task for stage (payload: JSON
 * text, NULL for '{}') in the task's run; pgwake_complete() enqueues them in
 * its own transaction, so the run never looks done between two stages.
 * Returns false when out of memory.
 */
bool pgwake_task_add_followup(pgwake_task *task, const char *stage, const char *payload);

/*
 * pgwake_task_add_followup_ex is pgwake_task_add_followup with a priority
 * (higher first) and a delay in seconds before the task may be claimed.
 */
bool pgwake_task_add_followup_ex(pgwake_task *task, const char *stage, const char *payload,
                                 int priority, double delay_seconds);

/*
 * pgwake_complete runs, in one transaction, pgwake.complete(id, lease_token,
 * result_json) and, only when that returned true, one pgwake.enqueue() per
 * follow-up; when complete returned false (the lease was taken from us) it
 * rolls back and returns PGWAKE_LOST. result_json may be NULL. A lost
 * connection is retried after reconnecting (safe: the lease token fences a
 * repeat, and a repeat after a commit that went unacknowledged is recognised
 * and reported as PGWAKE_OK). Returns PGWAKE_OK, PGWAKE_LOST, PGWAKE_ERROR
 * (e.g. a follow-up payload that is not JSON: nothing was committed) or
 * PGWAKE_STOPPED (the database stayed away and the daemon went or a stop was
 * requested).
 */
int pgwake_complete(pgwake_worker *w, pgwake_task *task, const char *result_json);

/*
 * pgwake_complete_batch completes n tasks without follow-ups or result in one
 * autocommit statement (one round trip, one commit), each fenced by its own
 * lease token, and writes each one's status (PGWAKE_OK or PGWAKE_LOST) to
 * status[i]. A task with follow-ups is completed on its own, in its own
 * transaction. Returns PGWAKE_OK, PGWAKE_ERROR or PGWAKE_STOPPED (then
 * status[] says which tasks were finished); retried like pgwake_complete().
 */
int pgwake_complete_batch(pgwake_worker *w, pgwake_task **tasks, int n, int *status);

/*
 * pgwake_fail runs pgwake.fail(id, lease_token, error, retry): with retry the
 * task is retried later with backoff (or goes dead when its attempts are used
 * up), without it goes dead now. Follow-ups are discarded. Same return values
 * and retry rules as pgwake_complete().
 */
int pgwake_fail(pgwake_worker *w, pgwake_task *task, const char *error, bool retry);

/*
 * pgwake_task_errorf formats an error message into storage owned by the task
 * and returns it, so a handler can `return pgwake_task_errorf(t, ...)`.
 * Returns a fixed message when out of memory.
 */
const char *pgwake_task_errorf(pgwake_task *task, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * pgwake_task_free frees a task. Free it after pgwake_complete() or
 * pgwake_fail(): a task freed without either stays leased to this worker
 * until the worker ends or is declared dead. NULL is accepted.
 */
void pgwake_task_free(pgwake_task *task);

/*
 * pgwake_poll_wake reads every byte pending on the wake fd without blocking,
 * remembering `S` and end of file; call it between tasks. Returns true when
 * the worker should stop (see pgwake_should_stop()).
 */
bool pgwake_poll_wake(pgwake_worker *w);

/*
 * pgwake_wait_idle is what to do after a claim found nothing: when a `W`
 * arrived since that claim began it returns PGWAKE_WAKE_WORK at once;
 * otherwise it writes `I` and blocks until `W` (PGWAKE_WAKE_WORK), `S`, end of
 * file, pgwake_request_stop() or fencing (PGWAKE_WAKE_STOP). In drain mode it
 * returns PGWAKE_WAKE_STOP.
 */
int pgwake_wait_idle(pgwake_worker *w);

/*
 * pgwake_should_stop is true once `S` or end of file was read, a stop was
 * requested, or the worker is fenced: finish the current task, then return
 * from the loop.
 */
bool pgwake_should_stop(pgwake_worker *w);

/*
 * pgwake_fenced is true once a heartbeat returned -1: the worker was declared
 * dead (by the daemon or pgwake.expire_leases()), its leases belong to others
 * now and it must exit at once; claims return nothing from then on.
 * Callable from any thread.
 */
bool pgwake_fenced(const pgwake_worker *w);

/*
 * pgwake_request_stop asks the worker to stop after the current task, and
 * wakes a blocked pgwake_wait_idle() or reconnect wait. Async-signal-safe:
 * call it from a SIGTERM handler for a graceful stop.
 */
void pgwake_request_stop(pgwake_worker *w);

/* pgwake_worker_id is this worker's id in pgwake.workers. */
const char *pgwake_worker_id(const pgwake_worker *w);

/* pgwake_stage is the stage this worker claims from. */
const char *pgwake_stage(const pgwake_worker *w);

/*
 * pgwake_is_spawned is true when the worker id was given (by the daemon, via
 * PGWAKE_WORKER_ID) rather than registered by pgwake_open().
 */
bool pgwake_is_spawned(const pgwake_worker *w);

/* pgwake_last_error is the last error message of the main thread ("" if none). */
const char *pgwake_last_error(const pgwake_worker *w);

#ifdef __cplusplus
}
#endif

#endif /* PGWAKE_WORKER_H */
