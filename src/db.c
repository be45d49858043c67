/* db.c: one libpq connection driven by libevent. PQconnectStart/PQconnectPoll,
 * PQsendQueryParams one query at a time from a FIFO, PQconsumeInput then the
 * notifications then PQgetResult while !PQisBusy. A lost connection is retried
 * with capped exponential backoff; DBQ_RETRY queries survive it. */
#include "db.h"

#include <errno.h>
#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>

#include "conn_opts.h"
#include "dsn.h"
#include "log.h"
#include "pooler.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000
#define CONNECT_TIMEOUT_S 10

typedef enum { DB_DOWN, DB_CONNECTING, DB_UP } DbState;

typedef struct Query {
    struct Query *next;
    char *sql;
    int nparams;
    char **params;   /* copies; NULL entries are SQL NULLs */
    unsigned flags;  /* DBQ_* */
    DbResultCb cb;
    void *arg;
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
    free(q);
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
    struct timeval tv = {db->backoff_ms / 1000, (db->backoff_ms % 1000) * 1000};
    if (event_add(&db->retry_ev, &tv))
        fatal("event_add failed for the reconnect timer");
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
        log_warn("database connection lost: %s (reconnecting)", db->last_error);
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
        log_warn("unable to connect to the database: %s (retrying in %d ms)", db->last_error,
                 db->backoff_ms);
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
    log_info("connected to the database (server %d, backend pid %d)", PQserverVersion(db->conn),
             PQbackendPID(db->conn));
    if (!session_is_ours(db))
        return;
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
        log_warn("unable to connect to the database: %s (retrying in %d ms)", db->last_error,
                 db->backoff_ms);
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

/* db_query queues a parameterized query; the callback runs from the loop.
 * Returns false only when out of memory. */
bool db_query(DbConn *db, const char *sql, int nparams, const char *const *params, unsigned flags,
              DbResultCb cb, void *arg)
{
    Query *q = calloc(1, sizeof *q);
    if (!q)
        return false;
    q->sql = strdup(sql);
    q->nparams = nparams;
    q->params = nparams ? calloc((size_t)nparams, sizeof *q->params) : NULL;
    q->flags = flags;
    q->cb = cb;
    q->arg = arg;
    bool ok = q->sql && (nparams == 0 || q->params);
    for (int i = 0; ok && i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup(params[i])))
            ok = false;
    if (!ok) {
        query_free(q);
        return false;
    }
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
}

bool db_ready(const DbConn *db) { return db->state == DB_UP && db->gate_open; }
int db_queued(const DbConn *db)
{
    int n = 0;
    for (const Query *q = db->head; q; q = q->next)
        n++;
    return n;
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
    PQclear(db->last);
    PQfinish(db->conn);
    for (Query *q = db->head, *n; q; q = n) {
        n = q->next;
        query_free(q);
    }
    free(db->dsn);
    free(db);
}
