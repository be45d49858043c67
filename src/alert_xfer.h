/* alert_xfer.h: the delivery queue every alert message goes through, email
 * and webhook (private to alert.c): one transfer thread whose own event_base
 * drives a libcurl multi handle, bounded retries on the loop's timers, and
 * the delivery counters. */
#ifndef PGWAKE_ALERT_XFER_H
#define PGWAKE_ALERT_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "alert.h"
#include "alert_mail.h"
#include "alert_webhook.h"
#include "mustcheck.h"

/* ACH_, not CH_: notify.h's Channel names the LISTEN channels. */
typedef enum { ACH_EMAIL, ACH_WEBHOOK } AlertChannel;

/* One message to one channel, tried up to AlertTiming.tries times. Owned by
 * the loop thread, except between a submit and its result, when the
 * transfer thread owns it. */
typedef struct Delivery {
    AlertChannel ch;
    char *subject;              /* for log lines */
    char *target;               /* "email to X" or "webhook HOST" for log lines: no secret */
    MailJob mail;               /* ACH_EMAIL: filled by the caller */
    WebhookJob webhook;         /* ACH_WEBHOOK: filled by the caller */
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
Delivery *delivery_new(Deliveries *q, AlertChannel ch, const char *subject,
                       const char *target) MUSTCHECK;
void delivery_abandon(Deliveries *q, Delivery *d, const char *why);
void deliveries_send(Deliveries *q, Delivery *d);
void deliveries_stats(const Deliveries *q, AlertStats *s);
void deliveries_free(Deliveries *q);

#endif
