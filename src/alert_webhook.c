/* alert_webhook.c: alert webhooks: one JSON object per alert with a
 * Slack-compatible "text" and structured fields, POSTed as application/json,
 * and the libcurl options of one try. */
#include "alert_webhook.h"
#include "errfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

/* slack_text returns subject, a newline, then body, with &, < and > escaped
 * as Slack requires (a worker's output could otherwise become a link or a
 * mention); malloc'd, NULL when out of memory. */
static char *slack_text(const char *subject, const char *body)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    if (!m)
        return NULL;
    const char *parts[] = {subject, "\n", body};
    for (size_t i = 0; i < 3; i++)
        for (const char *c = parts[i]; *c; c++) {
            if (*c == '&')
                fputs("&amp;", m);
            else if (*c == '<')
                fputs("&lt;", m);
            else if (*c == '>')
                fputs("&gt;", m);
            else
                fputc(*c, m);
        }
    if (fclose(m) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* webhook_iso_time writes t as "YYYY-mm-ddTHH:MM:SSZ". */
void webhook_iso_time(char *out, size_t n, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* webhook_job_init builds the body {"text", "kind", "host", "subject", "time",
 * ...fields} and the headers into h (zeroed first). Every string must be
 * valid UTF-8 (alert.c cleans its inputs), or jansson refuses it. */
bool webhook_job_init(WebhookJob *h, const WebhookParams *p, char *why, size_t n)
{
    memset(h, 0, sizeof *h);
    char when[32];
    webhook_iso_time(when, sizeof when, p->when);
    char *text = slack_text(p->subject, p->body);
    json_t *o = text ? json_pack("{s:s, s:s, s:s, s:s, s:s}", "text", text, "kind", p->kind,
                                 "host", p->host, "subject", p->subject, "time", when)
                     : NULL;
    free(text);
    if (!o)
        return errf(why, n, "unable to build the webhook JSON (out of memory or bad UTF-8)");
    if (p->fields && json_object_update(o, (json_t *)p->fields) != 0) {
        json_decref(o);
        return errf(why, n, "unable to build the webhook JSON");
    }
    h->body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    h->len = h->body ? strlen(h->body) : 0;
    h->url = strdup(p->url);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    /* "Expect:" turns off 100-continue: a webhook answers in one round trip. */
    struct curl_slist *l2 = l ? curl_slist_append(l, "Expect:") : NULL;
    h->headers = l2 ? l2 : l;
    if (!h->body || !h->url || !l2) {
        webhook_job_free(h);
        return errf(why, n, "out of memory");
    }
    return true;
}

/* webhook_job_free releases what webhook_job_init made; h is zeroed, so a
 * second call is harmless. */
void webhook_job_free(WebhookJob *h)
{
    free(h->url);
    free(h->body);
    curl_slist_free_all(h->headers);
    memset(h, 0, sizeof *h);
}

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr, (void)arg;
    return size * nmemb;
}

/* webhook_easy_setup sets the POST options of one try on e; no redirects are
 * followed (a webhook that moves is a configuration to fix, and following
 * could send the body elsewhere). */
bool webhook_easy_setup(CURL *e, WebhookJob *h, char *why, size_t n)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_POSTFIELDS, h->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->len);
    SET(CURLOPT_HTTPHEADER, h->headers);
    SET(CURLOPT_USERAGENT, "pgwake");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_WRITEFUNCTION, discard_cb);
#undef SET
    if (rc != CURLE_OK) {
        snprintf(why, n, "libcurl refused an HTTP option: %s", curl_easy_strerror(rc));
        return false;
    }
    return true;
}

/* webhook_url_label returns "webhook HOST[:PORT]" for log lines: webhook URLs
 * often carry a secret token in their path or query, so only the host is
 * shown (malloc'd). */
char *webhook_url_label(const char *url)
{
    char *host = NULL, *port = NULL, *out = NULL;
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (asprintf(&out, "webhook %s%s%s", host ? host : "(unparsable URL)", port ? ":" : "",
                 port ? port : "") < 0)
        out = NULL;
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}
