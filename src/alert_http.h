/* alert_http.h: the libcurl side of alerts (private to alert.c): the webhook
 * request (a JSON body with a Slack-compatible "text" plus structured
 * fields), and the delivery queue every message goes through, email
 * included: one transfer thread whose own event_base drives a libcurl multi
 * handle, bounded retries on the loop's timers, and the delivery counters. */
#ifndef PGWAKE_ALERT_HTTP_H
#define PGWAKE_ALERT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "alert.h"
#include "alert_mail.h"
#include "mustcheck.h"

/* What a webhook delivery needs; owns all of it. */
typedef struct HttpJob {
    char *url;                   /* may hold a secret token: never logged */
    char *body;                  /* JSON text */
    size_t len;                  /* its bytes */
    struct curl_slist *headers;  /* Content-Type: application/json, no Expect */
} HttpJob;

/* The parts of one webhook body. */
typedef struct HttpParams {
    const char *url;
    const char *kind;      /* "dead_workers", "fatal", "db_down", "db_recovered" */
    const char *host;      /* the daemon's host */
    const char *subject;   /* one line */
    const char *body;      /* the email body, for "text" */
    time_t when;           /* "time", ISO 8601 UTC */
    const json_t *fields;  /* merged in: "workers", "stage", "reason", "held"... */
} HttpParams;

bool http_job_init(HttpJob *h, const HttpParams *p, char *why, size_t n) MUSTCHECK;
void http_job_free(HttpJob *h);
void http_iso_time(char *out, size_t n, time_t t);
char *http_url_label(const char *url) MUSTCHECK;

typedef enum { CH_EMAIL, CH_WEBHOOK } Channel;

/* One message to one channel, tried up to AlertTiming.tries times. Owned by
 * the loop thread, except between a submit and its result, when the
 * transfer thread owns it. */
typedef struct Delivery {
    Channel ch;
    char *subject;              /* for log lines */
    char *target;               /* "email to X" or "webhook HOST" for log lines: no secret */
    MailJob mail;               /* CH_EMAIL: filled by the caller */
    HttpJob http;               /* CH_WEBHOOK: filled by the caller */
    int tries;                  /* tries submitted so far */
    int64_t connect_timeout_ms; /* copied from AlertTiming at each submit */
    int64_t timeout_ms;
    CURL *easy;                 /* transfer thread: while in its multi */
    CURLcode rc;                /* transfer thread: result of the last try */
    long status;                /* last SMTP or HTTP status, 0 = none */
    char errbuf[CURL_ERROR_SIZE];
    struct Deliveries *q;       /* loop thread only */
    struct event retry_ev;      /* loop thread: armed between tries */
    struct Delivery *next, *prev;
} Delivery;

/* The queue: transfer thread (started by the first send), deliveries
 * waiting to retry, counters. */
typedef struct Deliveries Deliveries;

Deliveries *deliveries_new(struct event_base *base) MUSTCHECK;
void deliveries_set_timing(Deliveries *q, const AlertTiming *t);
Delivery *delivery_new(Deliveries *q, Channel ch, const char *subject,
                       const char *target) MUSTCHECK;
void delivery_abandon(Deliveries *q, Delivery *d, const char *why);
void deliveries_send(Deliveries *q, Delivery *d);
void deliveries_stats(const Deliveries *q, AlertStats *s);
void deliveries_free(Deliveries *q);

#endif
