/* alert_xfer.c: the delivery queue behind every alert, email and webhook:
 * a transfer thread running a libcurl multi handle on its own event_base,
 * bounded retries on the loop's timers, and the delivery counters. */
#include "alert_xfer.h"
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"

#define DELIVERIES_MAX 64 /* deliveries in flight or waiting to retry */
#define JOIN_WAIT_MS 2000 /* deliveries_free waits this long for the transfer thread */

/* ---- the transfer thread -------------------------------------------------
 * Why a thread: libcurl's SMTP code waits for the reply to the end of DATA
 * (and to QUIT) with a blocking poll, even under the multi interface
 * (smtp_done -> smtp_block_statemach in libcurl 7.88): run on the daemon's
 * loop, a slow or silent mail server would stall it for up to the transfer
 * timeout. The thread runs the hiperfifo pattern on a private event_base;
 * the loop thread only trades Delivery objects with it under a mutex, woken
 * by eventfds. */

/* A socket libcurl asked the transfer thread to watch. */
typedef struct SockEv {
    curl_socket_t fd;
    struct event ev;
    struct SockEv *next;
} SockEv;

typedef struct Xfer {
    pthread_mutex_t mu;          /* guards inbox, done, socks, stop, refs */
    Delivery *inbox, **inbox_tail; /* loop -> thread */
    Delivery *done, **done_tail; /* thread -> loop */
    SockEv *socks;               /* what xfer_stop shuts down */
    bool stop;                   /* set by xfer_stop */
    int refs;                    /* loop + thread; the last to drop it frees */
    int wake_fd;                 /* eventfd: new work or stop */
    int done_fd;                 /* eventfd: results */
    pthread_t tid;
    struct event_base *base;     /* the thread's only, from here on */
    CURLM *multi;
    struct event wake_ev, timer_ev;
    Delivery *active;            /* in the multi */
} Xfer;

struct Deliveries {
    struct event_base *base;     /* the daemon's loop */
    AlertTiming timing;
    Delivery *waiting;           /* between tries */
    int count;                   /* alive on either thread */
    Xfer *xfer;                  /* NULL until the first send */
    struct event done_ev;        /* on xfer->done_fd */
    uint64_t sent, failed, retried;
};

static void delivery_free(Delivery *d)
{
    if (d->easy)
        curl_easy_cleanup(d->easy);
    mail_job_free(&d->mail);
    webhook_job_free(&d->webhook);
    free(d->subject);
    free(d->target);
    free(d);
}

static void free_list(Delivery *d)
{
    while (d) {
        Delivery *next = d->next;
        delivery_free(d);
        d = next;
    }
}

static void fd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    (void)w; /* fails only when the counter is full: signalled anyway */
}

static void fd_drain(int fd)
{
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r; /* EAGAIN: already drained; the lists are read anyway */
}

static void xfer_unref(Xfer *x)
{
    pthread_mutex_lock(&x->mu);
    bool last = --x->refs == 0;
    pthread_mutex_unlock(&x->mu);
    if (!last)
        return;
    free_list(x->inbox);
    free_list(x->done);
    close(x->wake_fd);
    close(x->done_fd);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* xfer_post hands a finished try back to the loop thread. */
static void xfer_post(Xfer *x, Delivery *d)
{
    d->next = NULL;
    pthread_mutex_lock(&x->mu);
    *x->done_tail = d;
    x->done_tail = &d->next;
    pthread_mutex_unlock(&x->mu);
    fd_signal(x->done_fd);
}

static void unlink_from(Delivery **head, Delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        *head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = d->prev = NULL;
}

static void link_into(Delivery **head, Delivery *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head)
        (*head)->prev = d;
    *head = d;
}

/* xfer_check_done collects the transfers libcurl finished. */
static void xfer_check_done(Xfer *x)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(x->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result; /* msg is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        Delivery *d = (Delivery *)priv;
        d->rc = rc;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &d->status);
        curl_multi_remove_handle(x->multi, e);
        curl_easy_cleanup(e);
        d->easy = NULL;
        unlink_from(&x->active, d);
        xfer_post(x, d);
    }
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    Xfer *x = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(x->multi, fd, action, &running);
    xfer_check_done(x);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    Xfer *x = arg;
    int running;
    curl_multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    xfer_check_done(x);
}

/* sock_cb (CURLMOPT_SOCKETFUNCTION) keeps one persistent event per socket
 * libcurl watches, and the socket in x->socks for xfer_stop. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    (void)e;
    Xfer *x = userp;
    SockEv *se = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (!se)
            return 0;
        event_del(&se->ev);
        pthread_mutex_lock(&x->mu); /* libcurl closes s only after this returns */
        for (SockEv **p = &x->socks; *p; p = &(*p)->next)
            if (*p == se) {
                *p = se->next;
                break;
            }
        pthread_mutex_unlock(&x->mu);
        curl_multi_assign(x->multi, s, NULL);
        free(se);
        return 0;
    }
    if (!se) {
        if (!(se = calloc(1, sizeof *se)))
            return -1;
        se->fd = s;
        curl_multi_assign(x->multi, s, se);
        pthread_mutex_lock(&x->mu);
        se->next = x->socks;
        x->socks = se;
        pthread_mutex_unlock(&x->mu);
    } else {
        event_del(&se->ev);
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    event_assign(&se->ev, x->base, s, kind, sock_event_cb, x);
    return event_add(&se->ev, NULL) == 0 ? 0 : -1;
}

/* timer_cb (CURLMOPT_TIMERFUNCTION) arms the one timeout libcurl wants. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    Xfer *x = userp;
    if (timeout_ms < 0)
        return evtimer_del(&x->timer_ev);
    timer_arm_ms(&x->timer_ev, timeout_ms);
    return 0;
}

/* xfer_begin starts one try on a fresh easy handle. No connection is reused:
 * alerts are minutes apart, and closing at once keeps libcurl's blocking
 * QUIT inside this try's response timeout. */
static void xfer_begin(Xfer *x, Delivery *d)
{
    d->rc = CURLE_OK;
    d->status = 0;
    d->errbuf[0] = '\0';
    char why[256] = "";
    CURL *e = d->easy = curl_easy_init();
    CURLcode rc = e ? CURLE_OK : CURLE_OUT_OF_MEMORY;
#define SET(opt, val) \
    do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_PRIVATE, d);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, d->errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)d->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
    SET(CURLOPT_FORBID_REUSE, 1L);
#undef SET
    bool ok = rc == CURLE_OK &&
              (d->ch == ACH_EMAIL ? mail_easy_setup(e, &d->mail, d->timeout_ms, why, sizeof why)
                                 : webhook_easy_setup(e, &d->webhook, why, sizeof why));
    CURLMcode mrc = ok ? curl_multi_add_handle(x->multi, e) : CURLM_OK;
    if (mrc != CURLM_OK) {
        snprintf(why, sizeof why, "%s", curl_multi_strerror(mrc));
        ok = false;
    }
    if (!ok) {
        d->rc = rc != CURLE_OK ? rc : CURLE_FAILED_INIT;
        snprintf(d->errbuf, sizeof d->errbuf, "%s", why[0] ? why : curl_easy_strerror(rc));
        xfer_post(x, d);
        return;
    }
    link_into(&x->active, d);
}

/* wake_cb takes new work from the loop thread, or stops the thread. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    Xfer *x = arg;
    fd_drain(fd);
    pthread_mutex_lock(&x->mu);
    Delivery *inbox = x->inbox;
    x->inbox = NULL;
    x->inbox_tail = &x->inbox;
    bool stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    if (stop) {
        free_list(inbox);
        event_base_loopbreak(x->base);
        return;
    }
    while (inbox) {
        Delivery *d = inbox;
        inbox = d->next;
        xfer_begin(x, d);
    }
}

static void *xfer_main(void *arg)
{
    Xfer *x = arg;
    event_base_loop(x->base, EVLOOP_NO_EXIT_ON_EMPTY);
    while (x->active) { /* stopping: abort what is in flight */
        Delivery *d = x->active;
        unlink_from(&x->active, d);
        curl_multi_remove_handle(x->multi, d->easy);
        delivery_free(d);
    }
    curl_multi_cleanup(x->multi);
    pthread_mutex_lock(&x->mu);
    for (SockEv *s = x->socks, *next; s; s = next) {
        next = s->next;
        event_del(&s->ev);
        free(s);
    }
    x->socks = NULL;
    pthread_mutex_unlock(&x->mu);
    event_del(&x->wake_ev);
    event_del(&x->timer_ev);
    event_base_free(x->base);
    xfer_unref(x);
    return NULL;
}

static void done_cb(evutil_socket_t fd, short what, void *arg);

/* xfer_start creates the transfer thread with its base, multi handle and
 * eventfds. The thread blocks every signal: they belong to the loop thread. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* libcurl (and the TLS library under it) is initialized with the first
 * delivery, on the loop thread before the transfer thread exists: a daemon
 * that never alerts never pays for it (about 8 MiB of touched pages). */
static Xfer *xfer_start(Deliveries *q)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        log_error("unable to initialize libcurl: %s (alerts are not sent)",
                  curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    Xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    pthread_mutex_init(&x->mu, NULL);
    x->inbox_tail = &x->inbox;
    x->done_tail = &x->done;
    x->refs = 2;
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->base = event_base_new();
    x->multi = curl_multi_init();
    int err = ENOMEM;
    bool ok = x->wake_fd >= 0 && x->done_fd >= 0 && x->base && x->multi;
    if (ok) {
        curl_multi_setopt(x->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(x->multi, CURLMOPT_SOCKETDATA, x);
        curl_multi_setopt(x->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(x->multi, CURLMOPT_TIMERDATA, x);
        event_assign(&x->wake_ev, x->base, x->wake_fd, EV_READ | EV_PERSIST, wake_cb, x);
        evtimer_assign(&x->timer_ev, x->base, timer_event_cb, x);
        event_assign(&q->done_ev, q->base, x->done_fd, EV_READ | EV_PERSIST, done_cb, q);
        ok = event_add(&x->wake_ev, NULL) == 0 && event_add(&q->done_ev, NULL) == 0;
    }
    if (ok) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        err = pthread_create(&x->tid, NULL, xfer_main, x);
        ok = err == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (ok)
        return x;
    log_error("unable to start the alert transfer thread: %s (alerts are not sent)", strerror(err));
    if (x->base) {
        event_del(&x->wake_ev);
        event_base_free(x->base);
    }
    event_del(&q->done_ev);
    if (x->multi)
        curl_multi_cleanup(x->multi);
    if (x->wake_fd >= 0)
        close(x->wake_fd);
    if (x->done_fd >= 0)
        close(x->done_fd);
    pthread_mutex_destroy(&x->mu);
    free(x);
    return NULL;
}

/* xfer_stop ends the thread: in-flight transfers are aborted, their sockets
 * shut down first so that a blocking wait inside libcurl ends at once. A
 * thread still busy after JOIN_WAIT_MS is detached and frees what is left
 * itself (it touches nothing of the loop thread's). */
static void xfer_stop(Deliveries *q)
{
    Xfer *x = q->xfer;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    for (SockEv *s = x->socks; s; s = s->next)
        shutdown(s->fd, SHUT_RDWR); /* still open: see sock_cb */
    pthread_mutex_unlock(&x->mu);
    fd_signal(x->wake_fd);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += JOIN_WAIT_MS / 1000;
    if (pthread_timedjoin_np(x->tid, NULL, &until) != 0) {
        log_warn("alert transfer thread still busy after %d ms; leaving it to finish alone",
                 JOIN_WAIT_MS);
        pthread_detach(x->tid);
    }
    event_del(&q->done_ev);
    xfer_unref(x);
    q->xfer = NULL;
}

/* ---- the queue (loop thread) --------------------------------------------- */

/* deliveries_new creates an empty queue on the daemon's loop. */
Deliveries *deliveries_new(struct event_base *base)
{
    Deliveries *q = calloc(1, sizeof *q);
    if (q) {
        q->base = base;
        q->timing = (AlertTiming){.tries = 3,
                                  .retry_delay_ms = {2000, 10000, 10000, 10000},
                                  .connect_timeout_ms = 5000,
                                  .timeout_ms = 20000};
    }
    return q;
}

/* deliveries_set_timing replaces the limits for the next tries. */
void deliveries_set_timing(Deliveries *q, const AlertTiming *t)
{
    q->timing = *t;
    if (q->timing.tries < 1)
        q->timing.tries = 1;
    if (q->timing.tries > ALERT_MAX_TRIES)
        q->timing.tries = ALERT_MAX_TRIES;
}

static void delivery_drop(Deliveries *q, Delivery *d)
{
    q->count--;
    delivery_free(d);
}

static void submit(Deliveries *q, Delivery *d)
{
    if (!q->xfer && !(q->xfer = xfer_start(q))) {
        q->failed++;
        delivery_drop(q, d);
        return;
    }
    d->tries++;
    d->connect_timeout_ms = q->timing.connect_timeout_ms;
    d->timeout_ms = q->timing.timeout_ms;
    d->next = NULL;
    Xfer *x = q->xfer;
    pthread_mutex_lock(&x->mu);
    *x->inbox_tail = d;
    x->inbox_tail = &d->next;
    pthread_mutex_unlock(&x->mu);
    fd_signal(x->wake_fd);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    Delivery *d = arg;
    Deliveries *q = d->q;
    unlink_from(&q->waiting, d);
    q->retried++;
    submit(q, d);
}

/* delivery_reason writes why a try failed: libcurl's text, and the peer's
 * error status (with the SMTP server's own words when there are some). */
static void delivery_reason(const Delivery *d, char *out, size_t n)
{
    const char *text = d->errbuf[0] ? d->errbuf : curl_easy_strerror(d->rc);
    char status[200] = "";
    if (d->ch == ACH_WEBHOOK && d->status > 0)
        snprintf(status, sizeof status, "HTTP %ld", d->status);
    else if (d->ch == ACH_EMAIL && d->status >= 400)
        snprintf(status, sizeof status, "SMTP %s",
                 d->mail.reply[0] ? d->mail.reply : "error"); /* the reply starts with the code */
    if (d->rc == CURLE_OK)
        snprintf(out, n, "%s", status);
    else if (status[0])
        snprintf(out, n, "%s (%s)", text, status);
    else
        snprintf(out, n, "%s", text);
}

/* delivery_finished takes a try's result: done, tried again later, or
 * given up. SMTP fails in libcurl unless the server accepted the message. */
static void delivery_finished(Deliveries *q, Delivery *d)
{
    bool ok = d->rc == CURLE_OK && (d->ch == ACH_EMAIL || (d->status >= 200 && d->status < 300));
    if (ok) {
        q->sent++;
        log_info("alert sent (%s): \"%s\"", d->target, d->subject);
        delivery_drop(q, d);
        return;
    }
    char why[CURL_ERROR_SIZE + 64];
    delivery_reason(d, why, sizeof why);
    if (d->tries >= q->timing.tries) {
        q->failed++;
        log_error("unable to send alert (%s) \"%s\": %s (gave up after %d tr%s)", d->target,
                  d->subject, why, d->tries, d->tries == 1 ? "y" : "ies");
        delivery_drop(q, d);
        return;
    }
    int64_t delay = q->timing.retry_delay_ms[d->tries - 1];
    log_warn("unable to send alert (%s) \"%s\": %s (try %d of %d; again in %lld ms)", d->target,
             d->subject, why, d->tries, q->timing.tries, (long long)delay);
    link_into(&q->waiting, d);
    timer_arm_ms(&d->retry_ev, delay);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    Deliveries *q = arg;
    fd_drain(fd);
    Xfer *x = q->xfer;
    pthread_mutex_lock(&x->mu);
    Delivery *list = x->done;
    x->done = NULL;
    x->done_tail = &x->done;
    pthread_mutex_unlock(&x->mu);
    while (list) {
        Delivery *d = list;
        list = d->next;
        d->next = NULL;
        delivery_finished(q, d);
    }
}

/* delivery_new allocates a delivery for the caller to fill (d->mail or
 * d->webhook) and pass to deliveries_send or delivery_abandon; NULL when the
 * queue is full or memory is out (logged, counted failed). */
Delivery *delivery_new(Deliveries *q, AlertChannel ch, const char *subject, const char *target)
{
    if (q->count >= DELIVERIES_MAX) {
        log_error("unable to send alert (%s) \"%s\": %d deliveries already pending (dropped)",
                  target, subject, q->count);
        q->failed++;
        return NULL;
    }
    Delivery *d = calloc(1, sizeof *d);
    if (!d || !(d->subject = strdup(subject)) || !(d->target = strdup(target))) {
        log_error("unable to send alert (%s) \"%s\": out of memory", target, subject);
        q->failed++;
        if (d)
            delivery_free(d);
        return NULL;
    }
    d->ch = ch;
    d->q = q;
    evtimer_assign(&d->retry_ev, q->base, retry_cb, d);
    q->count++;
    return d;
}

/* delivery_abandon drops a delivery that could not be prepared (logged, counted failed). */
void delivery_abandon(Deliveries *q, Delivery *d, const char *why)
{
    log_error("unable to send alert (%s) \"%s\": %s", d->target, d->subject, why);
    q->failed++;
    delivery_drop(q, d);
}

/* deliveries_send hands d to the transfer thread (started on first use). */
void deliveries_send(Deliveries *q, Delivery *d)
{
    submit(q, d);
}

/* deliveries_stats fills the delivery counters of s (not held). */
void deliveries_stats(const Deliveries *q, AlertStats *s)
{
    s->sent = q->sent;
    s->failed = q->failed;
    s->retried = q->retried;
}

/* deliveries_free drops the deliveries waiting to retry, stops the transfer
 * thread (aborting what is in flight) and frees the queue. */
void deliveries_free(Deliveries *q)
{
    if (!q)
        return;
    while (q->waiting) {
        Delivery *d = q->waiting;
        unlink_from(&q->waiting, d);
        event_del(&d->retry_ev);
        delivery_drop(q, d);
    }
    if (q->xfer)
        xfer_stop(q);
    free(q);
}
