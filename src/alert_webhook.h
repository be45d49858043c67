/* alert_webhook.h: the webhook side of alerts (private to alert.c and the
 * delivery queue): a JSON body with a Slack-compatible "text" plus
 * structured fields, and the libcurl options that POST it. */
#ifndef PGWAKE_ALERT_WEBHOOK_H
#define PGWAKE_ALERT_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mustcheck.h"

/* What a webhook delivery needs; owns all of it. */
typedef struct WebhookJob {
    char *url;                   /* may hold a secret token: never logged */
    char *body;                  /* JSON text */
    size_t len;                  /* its bytes */
    struct curl_slist *headers;  /* Content-Type: application/json, no Expect */
} WebhookJob;

/* The parts of one webhook body. */
typedef struct WebhookParams {
    const char *url;
    const char *kind;      /* "dead_workers", "fatal", "db_down", "db_recovered" */
    const char *host;      /* the daemon's host */
    const char *subject;   /* one line */
    const char *body;      /* the email body, for "text" */
    time_t when;           /* "time", ISO 8601 UTC */
    const json_t *fields;  /* merged in: "workers", "stage", "reason", "held"... */
} WebhookParams;

bool webhook_job_init(WebhookJob *h, const WebhookParams *p, char *why, size_t n) MUSTCHECK;
void webhook_job_free(WebhookJob *h);
bool webhook_easy_setup(CURL *e, WebhookJob *h, char *why, size_t n) MUSTCHECK;
void webhook_iso_time(char *out, size_t n, time_t t);
char *webhook_url_label(const char *url) MUSTCHECK;

#endif
