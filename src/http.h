/* http.h: the daemon's HTTP interface on http_listen (SPEC section 5): GET
 * /healthz, /status, /metrics, /runs and / (the status page), and the control
 * calls POST /stages/NAME/{start,stop,restart}. */
#ifndef PGWAKE_HTTP_H
#define PGWAKE_HTTP_H

#include <stdbool.h>

struct Daemon;
struct evbuffer;

typedef struct Http Http;

Http *http_new(struct Daemon *d, char *err);
void http_free(Http *h);
void http_metrics(const Http *h, struct evbuffer *out);

#endif
