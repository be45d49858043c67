/* http_conns.h: the HTTP listener's guard: a cap on open connections and a
 * pause after an accept error such as EMFILE (libevent's listener would
 * otherwise retry it at once, forever). */
#ifndef PGWAKE_HTTP_CONNS_H
#define PGWAKE_HTTP_CONNS_H

#include <stdint.h>

#include "mustcheck.h"

struct event_base;
struct evhttp;
struct evconnlistener;

typedef struct HttpConns HttpConns;

typedef struct HttpConnStats {
    int open;             /* connections open now */
    int cap;              /* most open at once */
    uint64_t cap_pauses;  /* times accepting stopped at the cap */
    uint64_t err_pauses;  /* times accepting stopped after an accept error */
} HttpConnStats;

int http_conns_default_cap(void);
HttpConns *http_conns_new(struct event_base *base, struct evhttp *http, struct evconnlistener *lev,
                          int cap) MUSTCHECK;
void http_conns_stop(HttpConns *c);
void http_conns_free(HttpConns *c);
HttpConnStats http_conns_stats(const HttpConns *c);

#endif
