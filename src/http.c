/* http.c: evhttp on the daemon's loop. Reads (/healthz, /status, /metrics,
 * /runs, the page at /) never block: what needs the database is answered from
 * the query's callback, or without it after PENDING_TIMEOUT_S. Control calls
 * (POST /stages/NAME/ACTION) pass a Host, Origin, custom-header and token gate
 * first, so neither a cross-site form nor DNS rebinding can reach them. */
#include "http.h"

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
#include "daemon.h"
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

typedef enum { PK_STATUS, PK_RUNS } PendingKind;

/* A request waiting for its query. It lives until the query's callback, even
 * when the timeout answered first (answered). When the client leaves, evhttp
 * detaches the request from its connection and frees it at our reply, so the
 * reply is still sent (to nobody): that is what frees it. */
typedef struct Pending {
    struct Pending *next;
    struct Http *h;
    struct evhttp_request *req;    /* NULL once answered */
    struct evhttp_connection *con; /* NULL once closed; its close callback is ours meanwhile */
    struct event timer;            /* PENDING_TIMEOUT_S */
    PendingKind kind;
    bool answered : 1;             /* replied (timeout) before the query ended */
} Pending;

struct Http {
    Daemon *d;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    Pending *pending;              /* requests waiting for the database */
    HttpTasks *tasks;              /* /tasks, /stages/NAME/log (http_tasks.c) */
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

static void pending_close_cb(struct evhttp_connection *con, void *arg)
{
    Pending *p = arg;
    p->con = NULL;
}

static void pending_unlink(Pending *p)
{
    for (Pending **pp = &p->h->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void pending_free(Pending *p)
{
    event_del(&p->timer);
    if (p->con)
        evhttp_connection_set_closecb(p->con, NULL, NULL);
    free(p);
}

/* Answers a pending request from res (NULL: without the database). */
static void pending_answer(Pending *p, PGresult *res)
{
    if (p->answered || !p->req)
        return;
    p->answered = true;
    event_del(&p->timer);
    struct evhttp_request *req = p->req;
    if (p->con)
        evhttp_connection_set_closecb(p->con, NULL, NULL);
    p->req = NULL;
    p->con = NULL;
    if (p->kind == PK_STATUS) {
        reply_json(req, 200, report_status(p->h->d, res));
        return;
    }
    json_t *runs = report_runs(res);
    if (runs)
        reply_json(req, 200, json_pack("{s:o}", "runs", runs));
    else if (res)
        reply_error(req, 500, "unable to read pgwake.v_runs: %s", PQresultErrorMessage(res));
    else
        reply_error(req, 503, "the database did not answer (it is unreachable or slow)");
}

static void pending_db_cb(void *arg, PGresult *res)
{
    Pending *p = arg;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("http: %s query failed: %s", p->kind == PK_STATUS ? "status" : "runs",
                 PQresultErrorMessage(res));
    /* A failed status query degrades to the fields that need no database; a
     * failed runs query is the answer itself (its error is reported). */
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    pending_answer(p, ok || p->kind == PK_RUNS ? res : NULL);
    pending_unlink(p);
    pending_free(p);
}

static void pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    pending_answer(arg, NULL);
}

/* Queues the query of a read that needs the database; false when it could not
 * be queued (the caller answers without it). */
static bool pending_start(Http *h, struct evhttp_request *req, PendingKind kind, const char *sql,
                          int n, const char *const *params)
{
    Pending *p = calloc(1, sizeof *p);
    if (!p)
        return false;
    p->h = h;
    p->req = req;
    p->con = evhttp_request_get_connection(req);
    p->kind = kind;
    evtimer_assign(&p->timer, h->d->base, pending_timeout_cb, p);
    if (!db_query(h->d->db, sql, n, params, 0, pending_db_cb, p)) {
        free(p);
        return false;
    }
    if (event_add(&p->timer, &(struct timeval){PENDING_TIMEOUT_S, 0}))
        log_warn("http: unable to arm a request timer (the reply waits for the database)");
    evhttp_connection_set_closecb(p->con, pending_close_cb, p);
    p->next = h->pending;
    h->pending = p;
    return true;
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
            bool queued = pending_start(h, req, PK_STATUS, report_status_sql, 2, params);
            free(arr);
            if (queued)
                return;
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
    if (!pending_start(h, req, PK_RUNS, report_runs_sql, 1, params))
        reply_error(req, 500, "out of memory");
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

/* http_host_allowed: is host (a Host header, or an Origin's host part) the
 * listen address itself or a loopback name with its port? Anything else is
 * refused for control calls: a DNS-rebinding page carries its own name. */
bool http_host_allowed(const char *host, const char *listen)
{
    if (!host || !*host || !listen)
        return false;
    if (strcasecmp(host, listen) == 0)
        return true;
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return false;
    const char *port = colon + 1;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        size_t n = strlen(loopback[i]);
        if (strncasecmp(host, loopback[i], n) != 0)
            continue;
        if (host[n] == ':' && strcmp(host + n + 1, port) == 0)
            return true;
        if (host[n] == '\0' && strcmp(port, "80") == 0) /* the default port is left out */
            return true;
    }
    return strcmp(port, "80") == 0 && strlen(host) == (size_t)(colon - listen) &&
           strncasecmp(host, listen, (size_t)(colon - listen)) == 0;
}

/* http_token_equal compares in time that depends on the expected token's
 * length only, never on where the first difference is. */
bool http_token_equal(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned char diff = gl != el;
    for (size_t i = 0; i < el; i++)
        diff |= (unsigned char)(expected[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

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
    if (!http_host_allowed(host, cfg->http_listen)) {
        reply_error(req, 403, "Host \"%s\" is neither %s nor a loopback name: control calls "
                              "go to http://%s",
                    host ? host : "", cfg->http_listen, cfg->http_listen);
        return false;
    }
    const char *origin = evhttp_find_header(in, "Origin");
    if (origin && (strncasecmp(origin, "http://", 7) != 0 ||
                   !http_host_allowed(origin + 7, cfg->http_listen))) {
        reply_error(req, 403, "cross-origin control call refused (Origin %s)", origin);
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

/* Splits "HOST:PORT" ("[v6]:PORT" too) into host and port; config.c checked it. */
static bool split_listen(const char *listen, char *host, size_t n, unsigned short *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return false;
    const char *b = listen, *e = colon;
    if (*b == '[' && e[-1] == ']')
        b++, e--;
    if ((size_t)(e - b) >= n)
        return false;
    memcpy(host, b, (size_t)(e - b));
    host[e - b] = '\0';
    long p = strtol(colon + 1, NULL, 10);
    if (p < 1 || p > 65535)
        return false;
    *port = (unsigned short)p;
    return true;
}

/* http_new listens on cfg->http_listen, on that address only; NULL with err
 * ("unable to listen on ...") when it cannot, which stops the start-up. */
Http *http_new(Daemon *d, char *err)
{
    const char *listen = d->cfg->http_listen;
    char host[256];
    unsigned short port;
    if (!listen || !split_listen(listen, host, sizeof host, &port)) {
        snprintf(err, ERR_LEN, "http_listen \"%s\" is not HOST:PORT", listen ? listen : "");
        return NULL;
    }
    Http *h = calloc(1, sizeof *h);
    if (!h || !(h->http = evhttp_new(d->base))) {
        free(h);
        snprintf(err, ERR_LEN, "out of memory setting up HTTP");
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
    h->sock = evhttp_bind_socket_with_handle(h->http, host, port);
    if (!h->sock) {
        int e = errno;
        snprintf(err, ERR_LEN, "unable to listen on %s: %s (set http_listen to a free address)",
                 listen, e ? strerror(e) : "address not usable");
        evhttp_free(h->http);
        free(h);
        return NULL;
    }
    if (!(h->tasks = http_tasks_new(d, h)))
        log_warn("http: out of memory for /tasks (it answers 404)");
    log_info("http: listening on %s", listen);
    return h;
}

/* http_free closes the listener and every connection; requests still waiting
 * for the database are dropped unanswered. Call it before db_free: it cancels
 * their callbacks on the daemon's connection. */
void http_free(Http *h)
{
    if (!h)
        return;
    http_tasks_free(h->tasks);
    while (h->pending) {
        Pending *p = h->pending;
        h->pending = p->next;
        db_cancel_arg(h->d->db, p);
        /* A request whose client left is ours alone; the others go with evhttp_free. */
        if (p->req && !p->con)
            evhttp_request_free(p->req);
        pending_free(p);
    }
    evhttp_free(h->http);
    free(h);
}
