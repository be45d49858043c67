/* http_conns.c: count the HTTP connections evhttp opens and stop accepting
 * while there are too many, so idle clients (slowloris) cannot take the
 * file descriptors workers need. evhttp (libevent 2.1) has no connection
 * limit and no hook at accept, but it asks us for each connection's
 * bufferevent. We make it (holding a reference), and once the accept
 * callback is over, find its connection (the bufferevent's callback
 * argument) and take its close callback: that is when it is gone. An accept
 * error (EMFILE, ENFILE, ENOBUFS ...) pauses accepting for ACCEPT_PAUSE_MS:
 * the listening socket stays readable, so retrying at once would spin. */
#include "http_conns.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"

#define ACCEPT_PAUSE_MS 1000
#define CAP_MIN 8
#define CAP_MAX 512
#define NEW_MAX 64 /* connections accepted in one pass of the loop, at most */

struct HttpConns {
    struct HttpConns *next;  /* in all_guards */
    struct event_base *base;
    struct evconnlistener *lev;
    struct bufferevent *fresh[NEW_MAX]; /* made for evhttp, connection not yet known */
    int nfresh;
    struct event adopt_ev;   /* after the accept callback: adopt the fresh ones */
    struct event resume_ev;  /* end of an accept-error pause */
    HttpConnStats st;
    time_t warned;           /* last cap or accept-error warning: one a minute at most */
    uint64_t warned_pauses;  /* pauses of both kinds at that warning */
    bool at_cap : 1;         /* accepting stopped: st.open reached st.cap */
    bool in_error : 1;       /* accepting stopped: an accept error, resume_ev armed */
};

/* The listener's error callback gets evhttp's argument, not ours: the
 * guard is found by its listener (one per daemon, so a short list). */
static HttpConns *all_guards;

/* http_conns_default_cap: a quarter of the fd limit, so HTTP can never
 * take more than that from workers' pipes and the database, within
 * [CAP_MIN, CAP_MAX]. */
int http_conns_default_cap(void)
{
    struct rlimit rl;
    rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : CAP_MAX;
    return n < CAP_MIN ? CAP_MIN : n > CAP_MAX ? CAP_MAX : (int)n;
}

/* warn logs a pause, or once a minute with how many came since: clients
 * that come and go at the cap must not flood the log. */
static void warn(HttpConns *c, const char *what)
{
    time_t now = time(NULL);
    uint64_t pauses = c->st.cap_pauses + c->st.err_pauses;
    if (c->warned && now - c->warned < 60)
        return;
    log_warn("http: %s (%llu pause(s) since the last warning)", what,
             (unsigned long long)(pauses - c->warned_pauses));
    c->warned = now;
    c->warned_pauses = pauses;
}

static void update_listener(HttpConns *c)
{
    if (!c->lev)
        return; /* http_conns_stop: the listener is being freed */
    bool stop = c->at_cap || c->in_error || c->nfresh >= NEW_MAX;
    if (stop)
        evconnlistener_disable(c->lev);
    else
        evconnlistener_enable(c->lev);
}

static void conn_gone(HttpConns *c)
{
    c->st.open--;
    if (c->at_cap && c->st.open < c->st.cap)
        c->at_cap = false;
    update_listener(c);
}

static void conn_closed_cb(struct evhttp_connection *con, void *arg)
{
    conn_gone(arg);
}

/* The accept callbacks of this pass are over: every fresh bufferevent now
 * belongs to a connection, unless evhttp already dropped it (then its
 * callbacks were cleared). */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    HttpConns *c = arg;
    for (int i = 0; i < c->nfresh; i++) {
        void *con = NULL;
        bufferevent_getcb(c->fresh[i], NULL, NULL, NULL, &con);
        if (con) {
            evhttp_connection_set_closecb(con, conn_closed_cb, c);
            /* evhttp writes a large reply in two parts: without this, Nagle
             * holds the second until the client's delayed ACK (~40 ms on a
             * kept-alive connection). */
            int one = 1;
            evutil_socket_t s = bufferevent_getfd(c->fresh[i]);
            if (s >= 0)
                (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        } else
            conn_gone(c);
        bufferevent_decref(c->fresh[i]);
    }
    c->nfresh = 0;
    update_listener(c);
}

/* evhttp's bufferevent for a new connection (it sets the fd itself). */
static struct bufferevent *conn_bev_cb(struct event_base *base, void *arg)
{
    HttpConns *c = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev || c->nfresh >= NEW_MAX)
        return bev; /* NULL: evhttp makes one itself; either way uncounted */
    bufferevent_incref(bev);
    c->fresh[c->nfresh++] = bev;
    event_active(&c->adopt_ev, EV_TIMEOUT, 1);
    if (++c->st.open >= c->st.cap && !c->at_cap) {
        c->at_cap = true;
        c->st.cap_pauses++;
        char what[160];
        snprintf(what, sizeof what, "%d connections open, the most allowed; accepting again "
                                    "when one closes", c->st.open);
        warn(c, what);
    }
    update_listener(c);
    return bev;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    HttpConns *c = arg;
    c->in_error = false;
    update_listener(c);
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int e = errno;
    HttpConns *c = all_guards;
    while (c && c->lev != lev)
        c = c->next;
    if (!c)
        return;
    c->st.err_pauses++;
    char what[160];
    snprintf(what, sizeof what, "unable to accept a connection: %s (accepting again in %d ms)",
             strerror(e), ACCEPT_PAUSE_MS);
    warn(c, what);
    c->in_error = true;
    update_listener(c);
    timer_arm_ms(&c->resume_ev, ACCEPT_PAUSE_MS);
}

/* http_conns_new guards lev (evhttp's listener) and counts http's
 * connections; NULL when out of memory. */
HttpConns *http_conns_new(struct event_base *base, struct evhttp *http,
                          struct evconnlistener *lev, int cap)
{
    HttpConns *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->lev = lev;
    c->st.cap = cap;
    event_assign(&c->adopt_ev, base, -1, 0, adopt_cb, c);
    evtimer_assign(&c->resume_ev, base, resume_cb, c);
    c->next = all_guards;
    all_guards = c;
    evconnlistener_set_error_cb(lev, accept_error_cb);
    evhttp_set_bevcb(http, conn_bev_cb, c);
    return c;
}

/* http_conns_stop: before evhttp_free, which frees the listener first and
 * then the connections (whose close callbacks still count down here). */
void http_conns_stop(HttpConns *c)
{
    if (!c)
        return;
    c->lev = NULL;
    event_del(&c->adopt_ev);
    event_del(&c->resume_ev);
    for (int i = 0; i < c->nfresh; i++)
        bufferevent_decref(c->fresh[i]);
    c->nfresh = 0;
}

/* http_conns_free: after evhttp_free. */
void http_conns_free(HttpConns *c)
{
    if (!c)
        return;
    http_conns_stop(c);
    for (HttpConns **pp = &all_guards; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    free(c);
}

HttpConnStats http_conns_stats(const HttpConns *c)
{
    return c ? c->st : (HttpConnStats){0};
}
