/* http.h: the daemon's HTTP interface on http_listen (SPEC section 5): GET
 * /healthz, /status, /metrics, /runs and / (the status page), and the control
 * calls POST /stages/NAME/{start,stop,restart}; the console's calls are in
 * http_tasks.c, which uses the replies and the control gate below. */
#ifndef PGWAKE_HTTP_H
#define PGWAKE_HTTP_H

#include <stdbool.h>
#include <jansson.h>

#include "mustcheck.h"

struct Daemon;
struct evbuffer;

typedef struct Http Http;

Http *http_new(struct Daemon *d, char *err, size_t errlen) MUSTCHECK;
void http_free(Http *h);
void http_metrics(const Http *h, struct evbuffer *out);

struct evhttp_request;
void http_reply_json(struct evhttp_request *req, int code, json_t *j);
void http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_method_not_allowed(struct evhttp_request *req, const char *allow);
bool http_control_gate(Http *h, struct evhttp_request *req) MUSTCHECK;

#endif
