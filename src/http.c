/* http.c: evhttp on the daemon's loop. Reads (/healthz, /status, /metrics,
 * /runs, the page at /) never block: what needs the database is answered from
 * the query's callback, or without it after PENDING_TIMEOUT_S. Control calls
 * (POST /stages/NAME/ACTION) pass a Host, Origin, custom-header and token gate
 * first, so neither a cross-site form nor DNS rebinding can reach them. */
#include "http.h"
#include "errfmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "daemon_db.h"
#include "http_conns.h"
#include "http_gate.h"
#include "http_tasks.h"
#include "log.h"
#include "report.h"
#include "statuspage.h"

#define PENDING_TIMEOUT_S 3     /* a slow database: /status answers without it */
#define CONN_TIMEOUT_S 10       /* evhttp read/write timeout per connection */
#define MAX_BODY 65536
#define MAX_HEADERS 16384
#define RUNS_DEFAULT 20
#define RUNS_MAX 500
#define MAX_WAITING 256         /* requests waiting for the database, all batches */

typedef enum { PK_STATUS, PK_RUNS } PendingKind;

typedef struct Batch Batch;

/* A request waiting for its batch's query. When the client leaves, evhttp
 * detaches the request from its connection and frees it at our reply, so
 * the reply is still sent (to nobody): that is what frees it. */
typedef struct Waiter {
    struct Waiter *next;
    struct evhttp_request *req;
} Waiter;

/* One query in flight and every request answered from it: a burst of
 * /status or /runs calls costs one database read, not one each. It lives
 * until the query's callback, even after the timeout answered its waiters
 * without the database (timed_out), so a slow database is never asked
 * again while it still owes the answer. */
struct Batch {
    Batch *next;
    struct Http *h;
    PendingKind kind;
    long limit;             /* /runs?limit= of every waiter (PK_RUNS) */
    Waiter *waiters;
    struct event timer;     /* PENDING_TIMEOUT_S */
    bool timed_out : 1;     /* waiters answered without the database */
};

struct Http {
    Daemon *d;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    HttpConns *conns;       /* connection cap, accept-error pause */
    Batch *batches;         /* queries in flight for waiting requests */
    int nwaiting;           /* requests in every batch */
    uint64_t busy;          /* requests refused with 503: too many waiting */
    HttpTasks *tasks;       /* /tasks, /stages/NAME/log, /deaths, /trends (http_tasks.c) */
};

/* ---------------------------------------------------------------- replies */

static void reply(struct evhttp_request *req, int code, const char *type, const char *body,
                  size_t len)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", type);
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_add_header(hd, "X-Content-Type-Options", "nosniff");
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, NULL, b);
    if (b)
        evbuffer_free(b);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
    reply(req, code, "text/plain; charset=utf-8", text, strlen(text));
}

/* reply_json sends j (and drops the reference). */
static void reply_json(struct evhttp_request *req, int code, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!s) {
        reply_text(req, 500, "out of memory\n");
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) {
        s = t;
        s[n++] = '\n';
    }
    reply(req, code, "application/json", s, n);
    free(s);
}

/* reply_error answers {"ok": false, "error": ...}. */
static void reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_json(req, code, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    reply_error(req, 405, "method not allowed (use %s)", allow);
}

/* ---------------------------------------------------------------- requests waiting for the database */

/* Answers every waiter of b from res (NULL: without the database). */
static void batch_answer(Batch *b, PGresult *res)
{
    Daemon *d = b->h->d;
    json_t *runs = b->kind == PK_RUNS ? report_runs(res) : NULL;
    while (b->waiters) {
        Waiter *w = b->waiters;
        b->waiters = w->next;
        b->h->nwaiting--;
        if (b->kind == PK_STATUS)
            reply_json(w->req, 200, report_status(d, res));
        else if (runs)
            reply_json(w->req, 200, json_pack("{s:O}", "runs", runs));
        else if (res)
            reply_error(w->req, 500, "unable to read pgwake.v_runs: %s", PQresultErrorMessage(res));
        else
            reply_error(w->req, 503, "the database did not answer (it is unreachable or slow)");
        free(w);
    }
    json_decref(runs);
}

static void batch_unlink(Batch *b)
{
    for (Batch **pp = &b->h->batches; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            return;
        }
}

static void batch_db_cb(void *arg, PGresult *res)
{
    Batch *b = arg;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("http: %s query failed: %s", b->kind == PK_STATUS ? "status" : "runs",
                 PQresultErrorMessage(res));
    /* A failed status query degrades to the fields that need no database; a
     * failed runs query is the answer itself (its error is reported). */
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    batch_answer(b, ok || b->kind == PK_RUNS ? res : NULL);
    event_del(&b->timer);
    batch_unlink(b);
    free(b);
}

static void batch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    Batch *b = arg;
    b->timed_out = true;
    batch_answer(b, NULL);
}

/* batch_find: the batch a new request of kind (and limit) may join, or
 * with *stalled set, a timed-out one of that kind still owed its answer. */
static Batch *batch_find(Http *h, PendingKind kind, long limit, bool *stalled)
{
    *stalled = false;
    for (Batch *b = h->batches; b; b = b->next) {
        if (b->kind != kind)
            continue;
        if (b->timed_out)
            *stalled = true;
        else if (b->limit == limit)
            return b;
    }
    return NULL;
}

/* Joins req to the batch for (kind, limit), starting its query when there
 * is none. 1 = waiting; 0 = the database is stalled or the query could not
 * be queued (the caller answers without it); -1 = refused, too busy. */
static int batch_join(Http *h, struct evhttp_request *req, PendingKind kind, long limit,
                      const char *sql, int n, const char *const *params)
{
    if (h->nwaiting >= MAX_WAITING) {
        h->busy++;
        return -1;
    }
    bool stalled;
    Batch *b = batch_find(h, kind, limit, &stalled);
    if (!b && stalled)
        return 0;
    Waiter *w = calloc(1, sizeof *w);
    if (!w)
        return 0;
    if (!b) {
        if (!(b = calloc(1, sizeof *b))) {
            free(w);
            return 0;
        }
        b->h = h;
        b->kind = kind;
        b->limit = limit;
        evtimer_assign(&b->timer, h->d->base, batch_timeout_cb, b);
        if (!db_query(h->d->db, sql, n, params, 0, batch_db_cb, b)) {
            free(b);
            free(w);
            return 0;
        }
        timer_arm_ms(&b->timer, PENDING_TIMEOUT_S * 1000);
        b->next = h->batches;
        h->batches = b;
    }
    w->req = req;
    w->next = b->waiters;
    b->waiters = w;
    h->nwaiting++;
    return 1;
}

/* ---------------------------------------------------------------- reads */

static void serve_healthz(Http *h, struct evhttp_request *req)
{
    Daemon *d = h->d;
    char why[400];
    if (d->stopping)
        snprintf(why, sizeof why, "stopping\n");
    else if (!d->db_up) {
        const char *e = db_last_error(d->db);
        snprintf(why, sizeof why, "database not connected%s%s\n", e && *e ? ": " : "",
                 e && *e ? e : "");
    } else if (!d->ready)
        snprintf(why, sizeof why, "start-up not done\n");
    else if (daemon_db_stuck(d, why, sizeof why))
        ; /* SPEC 5 "Never stalled": a request unanswered for 30 s */
    else {
        reply_text(req, 200, "ok\n");
        return;
    }
    reply_text(req, 503, why);
}

static void serve_status(Http *h, struct evhttp_request *req)
{
    Daemon *d = h->d;
    if (db_ready(d->db)) {
        /* Stage names need no quoting inside an array literal (config.c). */
        size_t len = 3;
        for (int i = 0; i < d->nstages; i++)
            len += strlen(d->stages[i]->name) + 1;
        char *arr = malloc(len);
        if (arr) {
            char *o = arr;
            *o++ = '{';
            for (int i = 0; i < d->nstages; i++)
                o += sprintf(o, "%s%s", i ? "," : "", d->stages[i]->name);
            strcpy(o, "}");
            const char *params[] = {d->cfg->host, arr};
            int joined = batch_join(h, req, PK_STATUS, 0, report_status_sql, 2, params);
            free(arr);
            if (joined > 0)
                return;
            if (joined < 0) {
                reply_error(req, 503, "busy: %d requests already wait for the database",
                            MAX_WAITING);
                return;
            }
        }
    }
    reply_json(req, 200, report_status(d, NULL));
}

static void serve_runs(Http *h, struct evhttp_request *req)
{
    long limit = RUNS_DEFAULT;
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (query && evhttp_parse_query_str(query, &q) == 0) {
        const char *v = evhttp_find_header(&q, "limit");
        bool ok = !v || cli_long_arg(v, 1, RUNS_MAX, &limit);
        evhttp_clear_headers(&q);
        if (!ok) {
            reply_error(req, 400, "limit wants a number from 1 to %d", RUNS_MAX);
            return;
        }
    }
    if (!db_ready(h->d->db)) {
        reply_error(req, 503, "the database is not connected");
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[] = {lim};
    int joined = batch_join(h, req, PK_RUNS, limit, report_runs_sql, 1, params);
    if (joined < 0)
        reply_error(req, 503, "busy: %d requests already wait for the database", MAX_WAITING);
    else if (joined == 0)
        reply_error(req, 503, "the database did not answer (it is unreachable or slow)");
}

static void serve_metrics(Http *h, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        reply_text(req, 500, "out of memory\n");
        return;
    }
    report_metrics(h->d, b);
    http_tasks_metrics(h->tasks, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
}

static void serve_page(Http *h, struct evhttp_request *req)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    /* Everything is inline; the page may only talk to this origin. */
    evhttp_add_header(hd, "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                      "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                      "frame-ancestors 'none'");
    evhttp_add_header(hd, "X-Frame-Options", "DENY");
    evhttp_add_header(hd, "Referrer-Policy", "no-referrer");
    reply(req, 200, "text/html; charset=utf-8", statuspage_html, strlen(statuspage_html));
}

/* ---------------------------------------------------------------- control */

static bool is_json_type(const char *ct)
{
    static const char json[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = sizeof json - 1;
    return strncasecmp(ct, json, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The gate in front of every control call; false after answering 403. */
static bool control_allowed(Http *h, struct evhttp_request *req)
{
    const Config *cfg = h->d->cfg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *host = evhttp_find_header(in, "Host");
    if (!http_host_allowed(host, cfg->http_host, cfg->http_port)) {
        reply_error(req, 403, "Host \"%s\" is neither %s nor a loopback name: control calls "
                              "go to http://%s",
                    host ? host : "", cfg->http_listen, cfg->http_listen);
        return false;
    }
    const char *origin = evhttp_find_header(in, "Origin");
    if (origin && (strncasecmp(origin, "http://", 7) != 0 ||
                   !http_host_allowed(origin + 7, cfg->http_host, cfg->http_port))) {
        reply_error(req, 403, "cross-origin control call refused (Origin %s)", origin);
        return false;
    }
    if (!cfg->control_token && !http_listen_is_loopback(cfg->http_host)) {
        reply_error(req, 403, "control calls are off: http_listen %s is reachable from other "
                              "machines and control_token is unset (set control_token)",
                    cfg->http_listen);
        return false;
    }
    const char *token = evhttp_find_header(in, "X-Pgwake-Token");
    if (!token && !evhttp_find_header(in, "X-Requested-With") &&
        !is_json_type(evhttp_find_header(in, "Content-Type"))) {
        reply_error(req, 403, "a control call needs the header X-Requested-With or X-Pgwake-Token, "
                              "or a JSON body (Content-Type: application/json)");
        return false;
    }
    if (cfg->control_token && (!token || !http_token_equal(token, cfg->control_token))) {
        reply_error(req, 403, "%s X-Pgwake-Token (control_token is set)",
                    token ? "wrong" : "missing");
        return false;
    }
    return true;
}

static void apply_action(Stage *s, const char *action)
{
    if (strcmp(action, "start") == 0)
        stage_start(s);
    else if (strcmp(action, "stop") == 0)
        stage_stop(s);
    else
        stage_restart(s);
}

static void peer_name(struct evhttp_request *req, char *out, size_t n)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    snprintf(out, n, "%s:%u", addr ? addr : "?", (unsigned)port);
}

/* POST /stages/NAME/ACTION, NAME a stage or "all", ACTION start|stop|restart. */
static void serve_control(Http *h, struct evhttp_request *req, const char *rest)
{
    Daemon *d = h->d;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        method_not_allowed(req, "POST");
        return;
    }
    if (!control_allowed(h, req))
        return;
    char name[80];
    const char *slash = strchr(rest, '/');
    const char *action = slash ? slash + 1 : "";
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nlen >= sizeof name || (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0 &&
                                strcmp(action, "restart") != 0)) {
        reply_error(req, 404, "no such control call (POST /stages/NAME/start, stop or restart)");
        return;
    }
    memcpy(name, rest, nlen);
    name[nlen] = '\0';
    bool all = strcmp(name, "all") == 0;
    Stage *one = all ? NULL : daemon_stage(d, name);
    if (!all && !one) {
        reply_error(req, 404, "no stage \"%s\" is served here", stage_name_valid(name) ? name : "?");
        return;
    }
    if (d->stopping) {
        reply_error(req, 503, "pgwake is stopping");
        return;
    }
    char peer[80];
    peer_name(req, peer, sizeof peer);
    log_info("http: %s %s requested by %s", action, name, peer);
    json_t *stages = json_array();
    for (int i = 0; i < d->nstages; i++) {
        Stage *s = d->stages[i];
        if (s->removed || (!all && s != one))
            continue;
        apply_action(s, action);
        json_array_append_new(stages, report_stage(s, NULL));
    }
    reply_json(req, 200, json_pack("{s:b,s:s,s:o}", "ok", 1, "action", action, "stages", stages));
}

/* For http_tasks.c: the same replies and the same control-call gate. */
void http_reply_json(struct evhttp_request *req, int code, json_t *j) { reply_json(req, code, j); }
void http_method_not_allowed(struct evhttp_request *req, const char *allow)
{
    method_not_allowed(req, allow);
}
bool http_control_gate(Http *h, struct evhttp_request *req) { return control_allowed(h, req); }
void http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error(req, code, "%s", msg);
}

/* ---------------------------------------------------------------- routing */

typedef void (*ReadFn)(Http *h, struct evhttp_request *req);

static const struct {
    const char *path;
    ReadFn fn;
} reads[] = {
    {"/", serve_page},         {"/healthz", serve_healthz}, {"/status", serve_status},
    {"/metrics", serve_metrics}, {"/runs", serve_runs},
};

static void request_cb(struct evhttp_request *req, void *arg)
{
    Http *h = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path || !*path)
        path = "/";
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!http_read_host_ok(host, h->d->cfg->http_host, h->d->cfg->http_port)) {
        reply_error(req, 403, "Host \"%.100s\" is neither %s nor a loopback name (a loopback "
                              "listener answers to its own names only)",
                    host, h->d->cfg->http_listen);
        return;
    }
    if (http_tasks_route(h->tasks, req, path))
        return;
    if (strncmp(path, "/stages/", 8) == 0) {
        serve_control(h, req, path + 8);
        return;
    }
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        if (strcmp(path, reads[i].path) != 0)
            continue;
        if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
            reads[i].fn(h, req);
        else
            method_not_allowed(req, "GET, HEAD");
        return;
    }
    reply_error(req, 404, "not found (try /, /healthz, /status, /metrics, /runs, /tasks)");
}

/* ---------------------------------------------------------------- life */

/* http_new listens on cfg->http_listen, on that address only; NULL with err
 * ("unable to listen on ...") when it cannot, which stops the start-up. */
Http *http_new(Daemon *d, char *err, size_t errlen)
{
    const char *listen = d->cfg->http_listen;
    Http *h = calloc(1, sizeof *h);
    if (!h || !(h->http = evhttp_new(d->base))) {
        free(h);
        errf(err, errlen, "out of memory setting up HTTP");
        return NULL;
    }
    h->d = d;
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(h->http, CONN_TIMEOUT_S);
    evhttp_set_max_body_size(h->http, MAX_BODY);
    evhttp_set_max_headers_size(h->http, MAX_HEADERS);
    evhttp_set_gencb(h->http, request_cb, h);
    errno = 0;
    h->sock = evhttp_bind_socket_with_handle(h->http, d->cfg->http_host, d->cfg->http_port);
    if (!h->sock) {
        int e = errno;
        errf(err, errlen, "unable to listen on %s: %s (set http_listen to a free address)",
                 listen, e ? strerror(e) : "address not usable");
        evhttp_free(h->http);
        free(h);
        return NULL;
    }
    h->conns = http_conns_new(d->base, h->http, evhttp_bound_socket_get_listener(h->sock),
                              http_conns_default_cap());
    if (!h->conns)
        log_warn("http: out of memory for the connection cap (connections are not counted)");
    if (!(h->tasks = http_tasks_new(d, h)))
        log_warn("http: out of memory for /tasks (it answers 404)");
    log_info("http: listening on %s", listen);
    if (!d->cfg->control_token && !http_listen_is_loopback(d->cfg->http_host))
        log_warn("http: %s is reachable from other machines and control_token is unset: "
                 "control calls are refused (set control_token to allow them)", listen);
    return h;
}

/* http_metrics writes the HTTP families of /metrics (Prometheus text). */
void http_metrics(const Http *h, struct evbuffer *out)
{
    HttpConnStats st = http_conns_stats(h ? h->conns : NULL);
    evbuffer_add_printf(out, "# HELP pgwake_http_connections HTTP connections open now\n"
                             "# TYPE pgwake_http_connections gauge\n"
                             "pgwake_http_connections %d\n", st.open);
    evbuffer_add_printf(out, "# HELP pgwake_http_connections_max HTTP connections allowed at once\n"
                             "# TYPE pgwake_http_connections_max gauge\n"
                             "pgwake_http_connections_max %d\n", st.cap);
    evbuffer_add_printf(out, "# HELP pgwake_http_accept_pauses_total Times accepting stopped: "
                             "at the connection cap, or after an accept error such as EMFILE\n"
                             "# TYPE pgwake_http_accept_pauses_total counter\n"
                             "pgwake_http_accept_pauses_total{reason=\"cap\"} %llu\n"
                             "pgwake_http_accept_pauses_total{reason=\"error\"} %llu\n",
                        (unsigned long long)st.cap_pauses, (unsigned long long)st.err_pauses);
    evbuffer_add_printf(out, "# HELP pgwake_http_busy_total Requests refused with 503: too many "
                             "already waiting for the database\n"
                             "# TYPE pgwake_http_busy_total counter\n"
                             "pgwake_http_busy_total %llu\n",
                        (unsigned long long)(h ? h->busy : 0));
}

/* http_free closes the listener and every connection. Requests still
 * waiting for the database get a 503 reply, which is what frees one whose
 * client left (the others' connections close before it is flushed). Call
 * it before db_free: it cancels their callbacks on the daemon's connection. */
void http_free(Http *h)
{
    if (!h)
        return;
    http_tasks_free(h->tasks);
    while (h->batches) {
        Batch *b = h->batches;
        h->batches = b->next;
        db_cancel_arg(h->d->db, b);
        event_del(&b->timer);
        while (b->waiters) {
            Waiter *w = b->waiters;
            b->waiters = w->next;
            reply_error(w->req, 503, "pgwake is stopping");
            free(w);
        }
        free(b);
    }
    http_conns_stop(h->conns);
    evhttp_free(h->http);
    http_conns_free(h->conns);
    free(h);
}
