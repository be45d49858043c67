/* http_tasks.h: the operator console's HTTP calls (SPEC section 5 rules):
 * GET /tasks?stage=&state=&run=&limit=&before=, GET /tasks/ID,
 * POST /tasks/ID/retry|cancel (behind http.c's control gate) and
 * GET /stages/NAME/log?lines=N[&worker=ID] and GET /deaths (the last
 * hour's worker deaths on any host, with their last lines). */
#ifndef PGWAKE_HTTP_TASKS_H
#define PGWAKE_HTTP_TASKS_H

#include <stdbool.h>

#include "mustcheck.h"

struct Daemon;
struct Http;
struct evhttp_request;
struct evbuffer;

typedef struct HttpTasks HttpTasks;

HttpTasks *http_tasks_new(struct Daemon *d, struct Http *h) MUSTCHECK;
bool http_tasks_route(HttpTasks *t, struct evhttp_request *req, const char *path);
void http_tasks_metrics(HttpTasks *t, struct evbuffer *out);
void http_tasks_free(HttpTasks *t);

#endif
