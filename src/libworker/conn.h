/*
 * conn.h - one blocking libpq connection of the worker library that reconnects
 * with capped exponential backoff (100 ms doubling to 5 s) instead of failing.
 */
#ifndef PGWK_CONN_H
#define PGWK_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "libworker/log.h"

/*
 * Waits ms milliseconds between two connection attempts; returns false to give
 * up (a stop was asked), true to try again.
 */
typedef bool (*WkSleepFn)(void *arg, unsigned ms);

typedef struct WkConn {
    PGconn *pg;          /* NULL while disconnected */
    const char *dsn;     /* borrowed from the worker; NULL or "": libpq's defaults */
    const char *name;    /* "main" or "heartbeat", for log lines */
    const WkLog *log;    /* borrowed from the worker */
    WkSleepFn sleep;     /* the backoff wait, interruptible by its owner */
    void *sleep_arg;     /* passed to sleep */
    unsigned backoff_ms; /* next delay after a failed attempt */
    unsigned failures;   /* failed attempts since the last success (log throttling) */
    bool transient;      /* the last statement failed with a deadlock or a serialization
                          * failure: it was rolled back, retrying it is safe */
    char error[256];     /* last connection error, one line */
} WkConn;

/* pgwk_conn_init prepares c; no connection is made yet. */
void pgwk_conn_init(WkConn *c, const char *dsn, const char *name, const WkLog *log,
                    WkSleepFn sleep, void *sleep_arg);

/*
 * pgwk_conn_connect returns true at once when connected, else tries to connect
 * until it succeeds (true) or max_wait_ms has passed (< 0: no limit; 0: one
 * attempt) or the sleep function gives up (false).
 */
bool pgwk_conn_connect(WkConn *c, long max_wait_ms);

/*
 * pgwk_conn_exec runs one parameterized statement (all parameters as text, NULL
 * for SQL NULL). Returns the result, which the caller must PQclear, or NULL.
 * *lost is set when the failure came from a broken connection (the connection is
 * then dropped, so the next pgwk_conn_connect() reconnects); otherwise a failed
 * result carries the server's error.
 */
PGresult *pgwk_conn_exec(WkConn *c, const char *sql, int nparams, const char *const *values,
                         bool *lost);

/*
 * pgwk_conn_exec_pair runs two parameterized statements in one round trip and
 * one implicit transaction (pipeline mode, one Sync): both commit or neither.
 * Returns true when both returned rows; else r[] holds what came back (an
 * error in the first aborts the second, PGRES_PIPELINE_ABORTED), or *lost is
 * set as with pgwk_conn_exec (the connection is dropped; the pair may have
 * committed, both statements, or not, neither). The caller PQclears r[0] and r[1].
 */
bool pgwk_conn_exec_pair(WkConn *c, const char *const sql[2], const int nparams[2],
                         const char *const *const values[2], PGresult *r[2], bool *lost);

/* pgwk_conn_simple runs a command such as BEGIN or COMMIT; same as pgwk_conn_exec. */
bool pgwk_conn_simple(WkConn *c, const char *sql, bool *lost, char *err, size_t errlen);

/* pgwk_conn_result_error copies the error of r (or of the connection) as one line. */
void pgwk_conn_result_error(const WkConn *c, const PGresult *r, char *err, size_t errlen);

/* pgwk_conn_close closes the connection (reopened by the next connect). */
void pgwk_conn_close(WkConn *c);

#endif
