/* db.c: one libpq connection driven by libevent. PQconnectStart/PQconnectPoll,
 * PQsendQueryParams one query at a time from a FIFO, PQconsumeInput then the
 * notifications then PQgetResult while !PQisBusy. A lost connection is retried
 * with capped exponential backoff; DBQ_RETRY queries survive it, and
 * db_query_persist ones survive errors too (re-sent with backoff). Every
 * session runs with lock_timeout and statement_timeout, and never stays
 * inside a transaction. */
#include "db.h"
#include "clock.h"

#include <errno.h>
#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn_opts.h"
#include "dsn.h"
#include "log.h"
#include "pooler.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000
#define CONNECT_TIMEOUT_S 10
#define PERSIST_MIN_MS 250    /* first re-send of a failed persistent query */
#define PERSIST_MAX_MS 10000  /* ... doubling up to this */

typedef enum { DB_DOWN, DB_CONNECTING, DB_UP } DbState;

typedef struct Query {
    struct Query *next;
    char *sql;
    int nparams;
    char **params;   /* copies; NULL entries are SQL NULLs */
    unsigned flags;  /* DBQ_* */
    DbResultCb cb;
    void *arg;
    char *label;     /* persistent queries: what it does, for logs and /status */
    int tries;       /* persistent queries: failed attempts so far */
    int64_t since_ms;/* queued (or kept across a reconnect) at; db_oldest_ms */
    int64_t due_ms;  /* in the delayed list: when to send it again */
    char error[160]; /* persistent queries: the last failure */
} Query;

struct DbConn {
    struct event_base *base;
    char *dsn;
    DbHooks hooks;
    PGconn *conn;
    DbState state;
    bool gate_open;         /* false until the start-up sequence is done */
    struct event ev;        /* socket; re-armed for READ or WRITE */
    bool ev_added;
    struct event retry_ev;  /* reconnect backoff / connect timeout */
    int backoff_ms;
    Query *head, *tail;     /* FIFO; head is in flight when inflight */
    Query *inflight;
    PGresult *last;         /* last result of the in-flight query */
    char last_error[256];
    unsigned long reconnects;
    char name[40];          /* "" or " (maintenance connection)": in log lines */
    int lock_timeout_ms, statement_timeout_ms; /* session settings, 0 = server default */
    Query *delayed;         /* failed persistent queries waiting for their re-send */
    struct event delay_ev;  /* the earliest of them is due */
    unsigned host_turn;     /* first host of a multi-host DSN for the next attempt */
};

static void sock_cb(evutil_socket_t fd, short what, void *arg);
static void pump(DbConn *db);
static void query_free(Query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q->label);
    free(q);
}

/* A new query with copies of its text and parameters; NULL when out of memory. */
static Query *query_new(const char *label, const char *sql, int nparams, const char *const *params,
                        unsigned flags, DbResultCb cb, void *arg)
{
    Query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->since_ms = mono_ms();
    q->flags = flags;
    q->cb = cb;
    q->arg = arg;
    q->label = label ? strdup(label) : NULL;
    q->sql = strdup(sql);
    q->params = nparams ? calloc((size_t)nparams, sizeof *q->params) : NULL;
    bool ok = q->sql && (nparams == 0 || q->params) && (!label || q->label);
    if (ok)
        q->nparams = nparams;
    for (int i = 0; ok && i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup(params[i])))
            ok = false;
    if (!ok) {
        query_free(q);
        return NULL;
    }
    return q;
}

static void set_error(DbConn *db, const char *msg)
{
    snprintf(db->last_error, sizeof db->last_error, "%s", msg ? msg : "unknown error");
    size_t n = strlen(db->last_error);
    while (n && (db->last_error[n - 1] == '\n' || db->last_error[n - 1] == ' '))
        db->last_error[--n] = '\0';
    dsn_scrub(db->dsn, db->last_error, sizeof db->last_error);
}

static void notice_cb(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    log_debug("database notice: %.*s", (int)(n && message[n - 1] == '\n' ? n - 1 : n), message);
}

static void arm(DbConn *db, short what)
{
    if (db->ev_added)
        event_del(&db->ev);
    event_assign(&db->ev, db->base, PQsocket(db->conn), what, sock_cb, db);
    if (event_add(&db->ev, db->state == DB_CONNECTING ? &(struct timeval){CONNECT_TIMEOUT_S, 0} : NULL))
        fatal("event_add failed for the database socket");
    db->ev_added = true;
}

static void schedule_retry(DbConn *db)
{
    timer_arm_ms(&db->retry_ev, db->backoff_ms);
    db->backoff_ms = db->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : db->backoff_ms * 2;
}

/* Drops the connection: queries not flagged DBQ_RETRY get a NULL result. */
static void lose(DbConn *db, const char *why)
{
    bool was_up = db->state == DB_UP;
    if (why)
        set_error(db, why);
    if (db->ev_added)
        event_del(&db->ev);
    db->ev_added = false;
    PQfinish(db->conn);
    db->conn = NULL;
    PQclear(db->last);
    db->last = NULL;
    db->inflight = NULL;
    db->state = DB_DOWN;
    db->gate_open = false;
    db->host_turn++; /* a host that failed or hung: start the next attempt after it */
    if (was_up)
        log_warn("database connection lost%s: %s (reconnecting)", db->name, db->last_error);
    /* Fail what cannot be re-sent; callbacks may queue more, so detach first. */
    Query *keep = NULL, **kt = &keep, *q = db->head;
    db->head = db->tail = NULL;
    while (q) {
        Query *next = q->next;
        q->next = NULL;
        if (q->flags & DBQ_RETRY) {
            *kt = q;
            kt = &q->next;
        } else {
            if (q->cb)
                q->cb(q->arg, NULL);
            query_free(q);
        }
        q = next;
    }
    if (keep) {
        Query *last = keep;
        while (last->next)
            last = last->next;
        last->next = db->head;
        if (!db->head)
            db->tail = last;
        db->head = keep;
    }
    if (db->hooks.on_down)
        db->hooks.on_down(db->hooks.arg);
    schedule_retry(db);
}

/* Puts a setup query at the head of the FIFO: it runs before anything else. */
static void push_front(DbConn *db, const char *sql, int nparams, const char *const *params)
{
    Query *q = query_new(NULL, sql, nparams, params, DBQ_SETUP, NULL, NULL);
    if (!q)
        fatal("out of memory queueing a session query");
    q->next = db->head;
    db->head = q;
    if (!db->tail)
        db->tail = q;
}

/* Bounded waits on every statement of the session: one row lock held by
 * someone else delays a statement by lock_timeout at most, never forever. */
static void push_session_settings(DbConn *db)
{
    if (!db->lock_timeout_ms && !db->statement_timeout_ms)
        return;
    char lock[24], stmt[24];
    snprintf(lock, sizeof lock, "%dms", db->lock_timeout_ms);
    snprintf(stmt, sizeof stmt, "%dms", db->statement_timeout_ms);
    const char *p[] = {lock, stmt};
    push_front(db, "SELECT pg_catalog.set_config('lock_timeout', $1, false),"
                   " pg_catalog.set_config('statement_timeout', $2, false)", 2, p);
}

/* The first statement of a connection: is its server session ours alone? A
 * transaction pool would hand our settings, locks and LISTEN to others. */
static bool session_is_ours(DbConn *db)
{
    char why[256];
    switch (pooler_probe(db->conn, db->dsn, why, sizeof why)) {
    case POOL_SESSION:
        return true;
    case POOL_UNKNOWN:
        lose(db, why);
        return false;
    case POOL_SHARED:
        break;
    }
    set_error(db, why);
    event_del(&db->ev);
    db->ev_added = false;
    PQfinish(db->conn);
    db->conn = NULL;
    db->state = DB_DOWN;
    if (db->hooks.on_refused)
        db->hooks.on_refused(db->hooks.arg, db->last_error);
    return false;
}

static void connect_poll(DbConn *db)
{
    switch (PQconnectPoll(db->conn)) {
    case PGRES_POLLING_READING:
        arm(db, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        arm(db, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        break;
    default:
        set_error(db, PQerrorMessage(db->conn));
        log_warn("unable to connect to the database%s: %s (retrying in %d ms)", db->name,
                 db->last_error, db->backoff_ms);
        lose(db, NULL);
        return;
    }
    if (PQsetnonblocking(db->conn, 1) != 0) {
        lose(db, "unable to make the connection non-blocking");
        return;
    }
    PQsetNoticeReceiver(db->conn, (PQnoticeReceiver)notice_cb, db);
    db->state = DB_UP;
    db->backoff_ms = RECONNECT_MIN_MS;
    db->last_error[0] = '\0';
    arm(db, EV_READ | EV_PERSIST);
    log_info("connected to the database%s (server %d, backend pid %d)", db->name, PQserverVersion(db->conn),
             PQbackendPID(db->conn));
    if (!session_is_ours(db))
        return;
    /* What waited across the loss is as young as the connection. */
    int64_t now = mono_ms();
    for (Query *q = db->head; q; q = q->next)
        q->since_ms = now;
    push_session_settings(db); /* first: before anything on_up sends */
    if (!db_query(db, CONN_OPTS_SERVER_SQL, 0, NULL, DBQ_SETUP, NULL, NULL))
        fatal("out of memory queueing the session's TCP settings");
    if (db->hooks.on_up)
        db->hooks.on_up(db->hooks.arg);
    pump(db);
}

static void start_connect(DbConn *db)
{
    ConnOpts co;
    conn_opts_build(&co, db->dsn, db->host_turn);
    db->conn = PQconnectStartParams(co.keys, co.vals, co.expand);
    conn_opts_free(&co);
    if (!db->conn || PQstatus(db->conn) == CONNECTION_BAD) {
        set_error(db, db->conn ? PQerrorMessage(db->conn) : "out of memory");
        log_warn("unable to connect to the database%s: %s (retrying in %d ms)", db->name,
                 db->last_error, db->backoff_ms);
        lose(db, NULL);
        return;
    }
    db->state = DB_CONNECTING;
    connect_poll(db);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    DbConn *db = arg;
    if (db->state == DB_DOWN) {
        db->reconnects++;
        start_connect(db);
    }
}

/* Finds the next query allowed to run: before the gate opens, only setup ones. */
static Query *next_query(DbConn *db)
{
    for (Query *q = db->head; q; q = q->next)
        if (db->gate_open || (q->flags & DBQ_SETUP))
            return q;
    return NULL;
}

static void unlink_query(DbConn *db, Query *q)
{
    Query **pp = &db->head, *prev = NULL;
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = q->next;
    if (db->tail == q)
        db->tail = prev;
    q->next = NULL;
}

static void send_next(DbConn *db)
{
    if (db->state != DB_UP || db->inflight)
        return;
    Query *q = next_query(db);
    if (!q)
        return;
    /* A failure is left to the socket callback (event_active), never handled
     * here: the caller may be in the middle of building what a lost
     * connection's callbacks would free. */
    if (!PQsendQueryParams(db->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
                           NULL, NULL, 0)) {
        set_error(db, PQerrorMessage(db->conn));
        event_active(&db->ev, EV_READ, 0);
        return;
    }
    db->inflight = q;
    int f = PQflush(db->conn);
    if (f < 0)
        event_active(&db->ev, EV_READ, 0);
    else if (f == 1)
        arm(db, EV_READ | EV_WRITE | EV_PERSIST);
}

static void drain_notifies(DbConn *db)
{
    PGnotify *n;
    while (db->conn && (n = PQnotifies(db->conn)) != NULL) {
        if (db->hooks.on_notify)
            db->hooks.on_notify(db->hooks.arg, n->relname, n->extra);
        PQfreemem(n);
    }
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* The daemon runs single statements only: one that leaves the session inside a
 * transaction (a pending_sql of `BEGIN`) would hold back everything after it
 * uncommitted. Roll back at once and say which query did it. */
static void check_transaction(DbConn *db, const Query *q)
{
    PGTransactionStatusType ts = PQtransactionStatus(db->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    char esc[96];
    log_escape(q->sql, strlen(q->sql), esc, sizeof esc);
    log_error("query \"%s\" left the session%s inside a transaction: rolled back", esc, db->name);
    push_front(db, "ROLLBACK", 0, NULL);
}

static void arm_delay(DbConn *db)
{
    event_del(&db->delay_ev);
    int64_t first = 0;
    for (Query *q = db->delayed; q; q = q->next)
        if (!first || q->due_ms < first)
            first = q->due_ms;
    if (!first)
        return;
    timer_arm_ms(&db->delay_ev, first - mono_ms());
}

/* A persistent query failed: keep it aside and send it again after a backoff. */
static void delay_query(DbConn *db, Query *q, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : "no result";
    snprintf(q->error, sizeof q->error, "%s", *msg ? msg : "no result");
    size_t n = strlen(q->error);
    while (n && (q->error[n - 1] == '\n' || q->error[n - 1] == ' '))
        q->error[--n] = '\0';
    int64_t delay = PERSIST_MIN_MS;
    for (int i = 0; i < q->tries && delay < PERSIST_MAX_MS; i++)
        delay *= 2;
    if (delay > PERSIST_MAX_MS)
        delay = PERSIST_MAX_MS;
    q->tries++;
    log_warn("unable to %s: %s (try %d; again in %lld ms)", q->label, q->error, q->tries,
             (long long)delay);
    q->due_ms = mono_ms() + delay;
    q->next = db->delayed;
    db->delayed = q;
    arm_delay(db);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    DbConn *db = arg;
    int64_t now = mono_ms();
    for (Query **pp = &db->delayed; *pp;) {
        Query *q = *pp;
        if (q->due_ms > now) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        q->next = NULL;
        q->since_ms = now;
        if (db->tail)
            db->tail->next = q;
        else
            db->head = q;
        db->tail = q;
    }
    arm_delay(db);
    send_next(db);
}

/* Reads what arrived: notifications, then results, completing queries in order. */
static void pump(DbConn *db)
{
    while (db->state == DB_UP) {
        drain_notifies(db);
        if (!db->inflight) {
            send_next(db);
            if (!db->inflight)
                return;
        }
        if (PQisBusy(db->conn))
            return;
        PGresult *r = PQgetResult(db->conn);
        if (r && conn_opts_must_reconnect(PQresultErrorField(r, PG_DIAG_SQLSTATE))) {
            char why[300];
            snprintf(why, sizeof why, "%s (SQLSTATE %s)",
                     PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
                     PQresultErrorField(r, PG_DIAG_SQLSTATE));
            PQclear(r);
            lose(db, why); /* DBQ_RETRY queries go to the next server */
            return;
        }
        if (r) {
            PQclear(db->last);
            db->last = r;
            continue;
        }
        if (PQstatus(db->conn) == CONNECTION_BAD) {
            lose(db, PQerrorMessage(db->conn));
            return;
        }
        Query *q = db->inflight;
        PGresult *res = db->last;
        db->inflight = NULL;
        db->last = NULL;
        unlink_query(db, q);
        check_transaction(db, q);
        if (q->label && !result_ok(res)) {
            delay_query(db, q, res);
            PQclear(res);
            continue;
        }
        if (q->cb)
            q->cb(q->arg, res);
        PQclear(res);
        query_free(q);
    }
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    DbConn *db = arg;
    if (db->state == DB_CONNECTING) {
        if (what & EV_TIMEOUT) {
            lose(db, "timeout while connecting");
            return;
        }
        connect_poll(db);
        return;
    }
    if (db->state != DB_UP)
        return;
    if (what & EV_WRITE) {
        int f = PQflush(db->conn);
        if (f < 0) {
            lose(db, PQerrorMessage(db->conn));
            return;
        }
        if (f == 0)
            arm(db, EV_READ | EV_PERSIST);
    }
    if (what & EV_READ) {
        if (!PQconsumeInput(db->conn)) {
            lose(db, PQerrorMessage(db->conn));
            return;
        }
    }
    pump(db);
}

/* db_new prepares a connection; nothing happens until db_start. */
DbConn *db_new(struct event_base *base, const char *dsn, const DbHooks *hooks)
{
    DbConn *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->base = base;
    db->dsn = strdup(dsn ? dsn : "");
    db->hooks = *hooks;
    db->backoff_ms = RECONNECT_MIN_MS;
    evtimer_assign(&db->retry_ev, base, retry_cb, db);
    evtimer_assign(&db->delay_ev, base, delay_cb, db);
    if (!db->dsn) {
        free(db);
        return NULL;
    }
    return db;
}

/* db_start begins connecting; progress and failures arrive through the hooks. */
void db_start(DbConn *db)
{
    if (db->state == DB_DOWN && !evtimer_pending(&db->retry_ev, NULL))
        start_connect(db);
}

static bool enqueue(DbConn *db, const char *label, const char *sql, int nparams,
                    const char *const *params, unsigned flags, DbResultCb cb, void *arg)
{
    Query *q = query_new(label, sql, nparams, params, flags, cb, arg);
    if (!q)
        return false;
    if (db->tail)
        db->tail->next = q;
    else
        db->head = q;
    db->tail = q;
    /* Only send: pumping here could run notification hooks inside the
     * caller, which may be a notification hook itself. */
    send_next(db);
    return true;
}

/* db_query queues a parameterized query; the callback runs from the loop.
 * Returns false only when out of memory. */
bool db_query(DbConn *db, const char *sql, int nparams, const char *const *params, unsigned flags,
              DbResultCb cb, void *arg)
{
    return enqueue(db, NULL, sql, nparams, params, flags, cb, arg);
}

/* db_query_persist queues a query that must happen eventually (a release, a
 * recorded state): kept across reconnects like DBQ_RETRY, and an error result
 * is logged and the query sent again with backoff (250 ms doubling to 10 s);
 * the callback sees only its successful result. label says what it does
 * ("release worker X"), for the log and /status. */
bool db_query_persist(DbConn *db, const char *label, const char *sql, int nparams,
                      const char *const *params, DbResultCb cb, void *arg)
{
    return enqueue(db, label, sql, nparams, params, DBQ_RETRY, cb, arg);
}

/* db_open_gate lets ordinary queries run once the start-up sequence is done. */
void db_open_gate(DbConn *db)
{
    db->gate_open = true;
    send_next(db);
}

/* db_reconnect drops a working connection on purpose (e.g. the host lock was
 * lost) so the whole start-up sequence runs again. */
void db_reconnect(DbConn *db, const char *why)
{
    if (db->state != DB_DOWN)
        lose(db, why);
}

/* db_cancel_arg forgets the callbacks of every queued query owned by arg, for
 * an owner about to be freed; the queries themselves still run. */
void db_cancel_arg(DbConn *db, const void *arg)
{
    for (Query *q = db->head; q; q = q->next)
        if (q->arg == arg)
            q->cb = NULL;
    for (Query *q = db->delayed; q; q = q->next)
        if (q->arg == arg)
            q->cb = NULL;
}

bool db_ready(const DbConn *db) { return db->state == DB_UP && db->gate_open; }
int db_queued(const DbConn *db)
{
    int n = 0;
    for (const Query *q = db->head; q; q = q->next)
        n++;
    for (const Query *q = db->delayed; q; q = q->next)
        n++;
    return n;
}

/* db_oldest_ms is the age of the oldest query not answered yet (queued or in
 * flight; 0 when none): a statement stuck on a lock or a wedged connection
 * shows here, for /healthz. Persistent queries waiting out their backoff are
 * not stuck, and those kept across a reconnect count from the connection. */
int64_t db_oldest_ms(const DbConn *db)
{
    int64_t oldest = 0;
    for (const Query *q = db->head; q; q = q->next)
        if (!oldest || q->since_ms < oldest)
            oldest = q->since_ms;
    return oldest && db->state == DB_UP ? mono_ms() - oldest : 0;
}

/* db_each_retrying calls fn for every persistent query that failed at least
 * once and has not succeeded yet (for /status). */
void db_each_retrying(const DbConn *db, void (*fn)(void *ctx, const char *label, int tries,
                                                   const char *error), void *ctx)
{
    const Query *const lists[] = {db->head, db->delayed};
    for (int l = 0; l < 2; l++)
        for (const Query *q = lists[l]; q; q = q->next)
            if (q->label && q->tries > 0)
                fn(ctx, q->label, q->tries, q->error);
}

/* db_configure names the connection in logs (a suffix to "database", e.g.
 * " (maintenance connection)") and sets the waits every
 * statement of its sessions is bounded by (milliseconds; 0 = the server's). */
void db_configure(DbConn *db, const char *name, int lock_timeout_ms, int statement_timeout_ms)
{
    snprintf(db->name, sizeof db->name, "%s", name);
    db->lock_timeout_ms = lock_timeout_ms;
    db->statement_timeout_ms = statement_timeout_ms;
}

/* db_sqlstate is the SQLSTATE of an error result ("" when none). */
const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}
const char *db_last_error(const DbConn *db) { return db->last_error; }
unsigned long db_reconnects(const DbConn *db) { return db->reconnects; }
PGconn *db_pgconn(DbConn *db) { return db->conn; }

/* db_free closes the connection and drops queued queries without callbacks. */
void db_free(DbConn *db)
{
    if (!db)
        return;
    if (db->ev_added)
        event_del(&db->ev);
    event_del(&db->retry_ev);
    event_del(&db->delay_ev);
    PQclear(db->last);
    PQfinish(db->conn);
    for (Query *q = db->head, *n; q; q = n) {
        n = q->next;
        query_free(q);
    }
    for (Query *q = db->delayed, *n; q; q = n) {
        n = q->next;
        query_free(q);
    }
    free(db->dsn);
    free(db);
}
