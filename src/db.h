/* db.h: the daemon's one non-blocking PostgreSQL connection: connect, a FIFO of
 * parameterized queries, notifications, and reconnect with capped backoff. */
#ifndef PGWAKE_DB_H
#define PGWAKE_DB_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "mustcheck.h"

typedef struct DbConn DbConn;

/* Called with the query's last result, or NULL when the connection was lost
 * before it completed (queries flagged DBQ_RETRY are re-sent instead). */
typedef void (*DbResultCb)(void *arg, PGresult *res);

typedef struct DbHooks {
    void (*on_notify)(void *arg, const char *channel, const char *payload);
    void (*on_up)(void *arg);   /* connected: issue DBQ_SETUP queries, then db_open_gate() */
    void (*on_down)(void *arg); /* lost (or failed to connect) */
    /* A transaction pool shares our server session: the connection is closed
     * and not retried (pooler.c says why). */
    void (*on_refused)(void *arg, const char *why);
    void *arg;
} DbHooks;

enum {
    DBQ_RETRY = 1u << 0, /* idempotent: kept and re-sent across a reconnect */
    DBQ_SETUP = 1u << 1, /* may run before the gate opens (start-up sequence) */
};

DbConn *db_new(struct event_base *base, const char *dsn, const DbHooks *hooks) MUSTCHECK;
void db_start(DbConn *db);
bool db_query(DbConn *db, const char *sql, int nparams, const char *const *params, unsigned flags,
              DbResultCb cb, void *arg) MUSTCHECK;
bool db_query_persist(DbConn *db, const char *label, const char *sql, int nparams,
                      const char *const *params, DbResultCb cb, void *arg) MUSTCHECK;
void db_configure(DbConn *db, const char *name, int lock_timeout_ms, int statement_timeout_ms);
void db_open_gate(DbConn *db);
void db_reconnect(DbConn *db, const char *why);
bool db_ready(const DbConn *db);
int db_queued(const DbConn *db);
int64_t db_oldest_ms(const DbConn *db);
void db_each_retrying(const DbConn *db, void (*fn)(void *ctx, const char *label, int tries,
                                                   const char *error), void *ctx);
const char *db_sqlstate(const PGresult *res);
const char *db_last_error(const DbConn *db);
unsigned long db_reconnects(const DbConn *db);
void db_cancel_arg(DbConn *db, const void *arg);
void db_free(DbConn *db);
PGconn *db_pgconn(DbConn *db);

#endif
