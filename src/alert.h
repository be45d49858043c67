/* alert.h: alerts by email (SMTP) and webhook (JSON POST), sent with libcurl
 * without ever blocking the daemon's loop: dead workers batched per
 * batch_window, FATAL stages, the database down and back; rate-limited per
 * kind by min_interval, failed deliveries retried a bounded number of times.
 *
 * Threads: every call below is made from the loop's thread. Transfers run on
 * one private thread (its own event_base driving a libcurl multi handle with
 * CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION, alert_xfer.c), because libcurl's
 * SMTP code blocks while it waits for the reply to the end of DATA and to
 * QUIT, even under the multi interface; results come back to the loop
 * through an eventfd. The thread starts with the first delivery and is
 * stopped by alert_free, which waits for it at most 2 s.
 *
 * libcurl: the first delivery calls curl_global_init(CURL_GLOBAL_DEFAULT)
 * once per process (pthread_once), on the loop thread before the transfer
 * thread starts, so a daemon that never alerts never initializes TLS; nothing
 * calls curl_global_cleanup; what libcurl
 * and OpenSSL keep is still reachable at exit, never a leak. A program that
 * uses libcurl elsewhere may call curl_global_init itself too (it counts). */
#ifndef PGWAKE_ALERT_H
#define PGWAKE_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mustcheck.h"

struct event_base;

typedef struct Alerter Alerter;

/* One worker declared dead; alert_dead_worker copies every field. */
typedef struct DeadWorker {
    const char *id;     /* worker id */
    const char *stage;  /* its stage */
    const char *host;   /* the daemon host it ran on */
    double last_seen_s; /* seconds since its last heartbeat */
    const char *task;   /* the task it held, e.g. "42", or NULL */
    const char *tail;   /* its last output lines, '\n'-joined (local workers), or NULL */
    const char *reason; /* e.g. "no heartbeat for 95 s"; NULL = "missed heartbeat" */
} DeadWorker;

/* Counted per delivery (one message to one channel: an alert sent by email
 * and webhook counts twice in sent), except held, which counts alerts. */
typedef struct AlertStats {
    uint64_t sent;    /* deliveries the peer accepted (SMTP 250, HTTP 2xx) */
    uint64_t failed;  /* deliveries given up: tries exhausted, or dropped */
    uint64_t held;    /* alerts held back by min_interval (later sent, counted) */
    uint64_t retried; /* tries after the first */
} AlertStats;

#define ALERT_MAX_TRIES 5

/* Delivery limits. alert_new starts from 3 tries, 2 s then 10 s apart, a 5 s
 * connect timeout and 20 s for a whole transfer; tests shorten them. */
typedef struct AlertTiming {
    int tries;                                     /* 1..ALERT_MAX_TRIES */
    int64_t retry_delay_ms[ALERT_MAX_TRIES - 1];   /* before try 2, 3, ... */
    int64_t connect_timeout_ms;                    /* CURLOPT_CONNECTTIMEOUT_MS */
    int64_t timeout_ms;                            /* CURLOPT_TIMEOUT_MS */
} AlertTiming;

Alerter *alert_new(struct event_base *base, const AlertConf *conf, const char *host, char *err,
                   size_t errlen) MUSTCHECK;
void alert_set_conf(Alerter *a, const AlertConf *conf);
void alert_set_timing(Alerter *a, const AlertTiming *t);
bool alert_enabled(const Alerter *a);
void alert_dead_worker(Alerter *a, const DeadWorker *w);
void alert_stage_fatal(Alerter *a, const char *stage, const char *reason);
void alert_db_down(Alerter *a, double down_s, const char *error);
void alert_db_recovered(Alerter *a, double down_s);
AlertStats alert_stats(const Alerter *a);
void alert_free(Alerter *a);

#endif
