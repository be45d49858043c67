/* http_tasks.c: see http_tasks.h. Every database read is queued on the
 * daemon's connection and answered from its callback, or with 503 after
 * WAIT_S; the request record lives until the callback either way. */
#include "http_tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "deaths.h"
#include "http.h"
#include "logtail.h"
#include "outlog.h"
#include "task_metrics.h"
#include "tasks.h"
#include "trends.h"

#define WAIT_S 3
#define LOG_LINES_DEFAULT 100

typedef struct Wait {
    struct Wait *next;
    HttpTasks *t;
    struct evhttp_request *req; /* NULL once answered */
    struct event timer;
    long id;                    /* the task (retry, cancel, one); trends: first minute */
    long limit;                 /* the list; trends: last minute */
    long now_minute;            /* trends: when the query was sent */
    const char *action;         /* "retry", "cancel", "list", "one" */
} Wait;

struct HttpTasks {
    Daemon *d;
    struct Http *h;
    Wait *waits;
    TaskMetrics *metrics;       /* the database's families of /metrics */
};

HttpTasks *http_tasks_new(Daemon *d, struct Http *h)
{
    HttpTasks *t = calloc(1, sizeof *t);
    if (t) {
        t->d = d;
        t->h = h;
        t->metrics = task_metrics_new(d);
    }
    return t;
}

static void wait_drop(Wait *w)
{
    for (Wait **pp = &w->t->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    event_del(&w->timer);
    free(w);
}

static void answer(Wait *w, PGresult *r)
{
    struct evhttp_request *req = w->req;
    if (!req)
        return;
    w->req = NULL;
    event_del(&w->timer);
    bool trends = strcmp(w->action, "trends") == 0;
    if (trends || !r) {
        if (trends) { /* the in-memory series; done per minute from the database */
            if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
                trends_take_done(r, w->id, w->limit, w->now_minute);
            http_reply_json(req, 200, trends_json(w->t->d->stages, w->t->d->nstages));
        }
        else
            http_reply_error(req, 503, "the database did not answer (it is unreachable or slow)");
        return;
    }
    if (strcmp(w->action, "retry") == 0 || strcmp(w->action, "cancel") == 0) {
        char msg[400];
        int code = tasks_action_outcome(r, w->id, w->action, msg, sizeof msg);
        if (code == 200)
            http_reply_json(req, 200, json_pack("{s:b,s:s,s:I,s:s}", "ok", 1, "action", w->action,
                                                "id", (json_int_t)w->id, "message", msg));
        else
            http_reply_error(req, code, "%s", msg);
        return;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        http_reply_error(req, 500, "unable to read pgwake.tasks: %s", PQresultErrorMessage(r));
        return;
    }
    if (strcmp(w->action, "deaths") == 0) {
        http_reply_json(req, 200, json_pack("{s:o}", "deaths", deaths_json(r)));
        return;
    }
    if (strcmp(w->action, "one") == 0) {
        if (PQntuples(r) == 0)
            http_reply_error(req, 404, "no task %ld", w->id);
        else
            http_reply_json(req, 200, tasks_row(r, 0));
        return;
    }
    http_reply_json(req, 200, tasks_page(r, w->limit));
}

static void wait_db_cb(void *arg, PGresult *r)
{
    Wait *w = arg;
    answer(w, r);
    wait_drop(w);
}

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    answer(arg, NULL);
}

static void start(HttpTasks *t, struct evhttp_request *req, const char *action, long id, long limit,
                  const char *sql, int n, const char *const *params)
{
    if (!db_ready(t->d->db)) {
        http_reply_error(req, 503, "the database is not connected");
        return;
    }
    Wait *w = calloc(1, sizeof *w);
    if (!w) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    *w = (Wait){.t = t, .req = req, .id = id, .limit = limit, .action = action,
          .now_minute = (long)trends_now_minute()};
    evtimer_assign(&w->timer, t->d->base, wait_timeout_cb, w);
    if (!db_query(t->d->db, sql, n, params, 0, wait_db_cb, w)) {
        free(w);
        http_reply_error(req, 503, "the database is not connected");
        return;
    }
    timer_arm_ms(&w->timer, WAIT_S * 1000);
    w->next = t->waits;
    t->waits = w;
}

/* Parses the query string; false after answering 400. */
static bool parse_query(struct evhttp_request *req, struct evkeyvalq *q)
{
    const char *s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (evhttp_parse_query_str(s ? s : "", q) != 0) {
        http_reply_error(req, 400, "unreadable query string");
        return false;
    }
    return true;
}

static bool num_param(struct evkeyvalq *q, const char *key, long min, long max, long *out)
{
    const char *v = evhttp_find_header(q, key);
    return !v || cli_long_arg(v, min, max, out);
}

static void serve_list(HttpTasks *t, struct evhttp_request *req)
{
    struct evkeyvalq q;
    if (!parse_query(req, &q))
        return;
    TaskFilter f = {.limit = TASKS_LIMIT_DEFAULT};
    f.stage = evhttp_find_header(&q, "stage");
    f.state = evhttp_find_header(&q, "state");
    char err[300];
    if (f.stage && !*f.stage)
        f.stage = NULL;
    if (f.state && !*f.state)
        f.state = NULL;
    if (!num_param(&q, "limit", 1, TASKS_LIMIT_MAX, &f.limit))
        snprintf(err, sizeof err, "limit wants a number from 1 to %d", TASKS_LIMIT_MAX);
    else if (!num_param(&q, "run", 1, __LONG_MAX__, &f.run))
        snprintf(err, sizeof err, "run wants a run id");
    else if (!num_param(&q, "before", 1, __LONG_MAX__, &f.before))
        snprintf(err, sizeof err, "before wants a task id (next_before of the previous page)");
    else if (tasks_filter_check(&f, err, sizeof err))
        *err = '\0';
    if (*err) {
        evhttp_clear_headers(&q);
        http_reply_error(req, 400, "%s", err);
        return;
    }
    TaskParams p;
    tasks_params(&f, &p);
    start(t, req, "list", 0, f.limit, tasks_list_sql, 5, p.v);
    evhttp_clear_headers(&q);
}

/* /tasks/ID and /tasks/ID/ACTION */
static void serve_task(HttpTasks *t, struct evhttp_request *req, const char *rest)
{
    char idtext[24] = "";
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    long id;
    if (n < sizeof idtext)
        memcpy(idtext, rest, n), idtext[n] = '\0';
    if (n >= sizeof idtext || !cli_long_arg(idtext, 1, __LONG_MAX__, &id)) {
        http_reply_error(req, 404, "\"%.40s\" is not a task id (GET /tasks/ID, POST /tasks/ID/retry "
                                   "or /tasks/ID/cancel)", rest);
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const char *params[] = {idtext, NULL};
    if (!slash) {
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
            http_method_not_allowed(req, "GET, HEAD");
        else
            start(t, req, "one", id, 0, tasks_one_sql, 1, params);
        return;
    }
    const char *action = slash + 1;
    if (strcmp(action, "retry") != 0 && strcmp(action, "cancel") != 0) {
        http_reply_error(req, 404, "no such call (POST /tasks/ID/retry or /tasks/ID/cancel)");
        return;
    }
    if (m != EVHTTP_REQ_POST) {
        http_method_not_allowed(req, "POST");
        return;
    }
    if (!http_control_gate(t->h, req))
        return;
    params[1] = action;
    start(t, req, strcmp(action, "retry") == 0 ? "retry" : "cancel", id, 0, tasks_action_sql, 2,
          params);
}

/* GET /stages/NAME/log: the tail of the stage's log file on this host. */
static void serve_log(HttpTasks *t, struct evhttp_request *req, const char *name)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        http_method_not_allowed(req, "GET, HEAD");
        return;
    }
    Stage *s = daemon_stage(t->d, name);
    if (!s) {
        http_reply_error(req, 404, "no stage \"%s\" is served here", stage_name_valid(name) ? name : "?");
        return;
    }
    struct evkeyvalq q;
    if (!parse_query(req, &q))
        return;
    long lines = LOG_LINES_DEFAULT;
    const char *worker = evhttp_find_header(&q, "worker");
    if (!num_param(&q, "lines", 1, LOGTAIL_MAX_LINES, &lines)) {
        evhttp_clear_headers(&q);
        http_reply_error(req, 400, "lines wants a number from 1 to %d", LOGTAIL_MAX_LINES);
        return;
    }
    if (worker && (!*worker || strlen(worker) > 100 || strpbrk(worker, " \t\r\n"))) {
        evhttp_clear_headers(&q);
        http_reply_error(req, 400, "worker wants a worker id (as in /status)");
        return;
    }
    char err[300];
    char path[4096];
    if (s->log)
        snprintf(path, sizeof path, "%s", outlog_path(s->log));
    else
        snprintf(path, sizeof path, "%s/%s.log", t->d->cfg->log_dir, s->conf->name);
    json_t *j = logtail_json(path, t->d->cfg->log_backups, (int)lines, worker, err, sizeof err);
    evhttp_clear_headers(&q);
    if (j)
        http_reply_json(req, 200, j);
    else
        http_reply_error(req, 500, "%s", err);
}

/* http_tasks_route answers the console's paths; false for any other. */
bool http_tasks_route(HttpTasks *t, struct evhttp_request *req, const char *path)
{
    if (!t)
        return false;
    if (strcmp(path, "/tasks") == 0) {
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
            http_method_not_allowed(req, "GET, HEAD");
        else
            serve_list(t, req);
        return true;
    }
    if (strcmp(path, "/trends") == 0) {
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char first[24], last[24], now[24];
        int64_t from, upto;
        trends_done_range(&from, &upto);
        snprintf(first, sizeof first, "%lld", (long long)from);
        snprintf(last, sizeof last, "%lld", (long long)upto);
        snprintf(now, sizeof now, "%lld", (long long)trends_now_minute());
        const char *params[] = {first, last, now};
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
            http_method_not_allowed(req, "GET, HEAD");
        else if (!db_ready(t->d->db))
            http_reply_json(req, 200, trends_json(t->d->stages, t->d->nstages));
        else
            start(t, req, "trends", (long)from, (long)upto, trends_done_sql, 3, params);
        return true;
    }
    if (strcmp(path, "/deaths") == 0) {
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        const char *params[] = {"50"};
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
            http_method_not_allowed(req, "GET, HEAD");
        else
            start(t, req, "deaths", 0, 0, deaths_sql, 1, params);
        return true;
    }
    if (strncmp(path, "/tasks/", 7) == 0) {
        serve_task(t, req, path + 7);
        return true;
    }
    size_t n = strlen(path);
    if (strncmp(path, "/stages/", 8) == 0 && n > 12 && strcmp(path + n - 4, "/log") == 0) {
        char name[80];
        size_t len = n - 12;
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, path + 8, len);
        name[len] = '\0';
        serve_log(t, req, name);
        return true;
    }
    return false;
}

/* http_tasks_metrics adds the task families to /metrics (task_metrics.h). */
void http_tasks_metrics(HttpTasks *t, struct evbuffer *out)
{
    if (t)
        task_metrics_write(t->metrics, out);
}

/* http_tasks_free answers the reads still waiting with 503 (a reply is
 * what frees a request whose client left) and cancels their queries; call
 * it before evhttp_free and db_free. */
void http_tasks_free(HttpTasks *t)
{
    if (!t)
        return;
    while (t->waits) {
        Wait *w = t->waits;
        db_cancel_arg(t->d->db, w);
        if (w->req)
            http_reply_error(w->req, 503, "pgwake is stopping");
        wait_drop(w);
    }
    task_metrics_free(t->metrics);
    trends_reset();
    free(t);
}
