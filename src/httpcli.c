/* httpcli.c: a blocking HTTP request to the daemon for the one-shot commands.
 * Proxies are never used (the daemon is local, and a proxy would see the
 * token); control calls carry X-Requested-With, a JSON body and the token,
 * and only they: a read has no use for it, so it never risks it. */
#include "httpcli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errfmt.h"

#define CONNECT_TIMEOUT_MS 1500
#define TOTAL_TIMEOUT_MS 8000 /* /status waits at most 3 s for the database */
#define MAX_REPLY (4u << 20)

/* httpcli_addr is the HOST:PORT to call for http_listen: a wildcard address
 * is reached through loopback, and a v6 address is put back in brackets for
 * the URL. Without a configuration: the default. */
const char *httpcli_addr(const Config *cfg, char *buf, size_t n)
{
    const char *host = cfg ? cfg->http_host : CFG_HTTP_HOST_DEFAULT;
    unsigned port = cfg ? cfg->http_port : CFG_HTTP_PORT_DEFAULT;
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    snprintf(buf, n, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    return buf;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    HttpReply *r = arg;
    size_t n = size * nmemb;
    if (r->len + n > MAX_REPLY)
        return 0;
    char *b = realloc(r->body, r->len + n + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, data, n);
    r->body = b;
    r->len += n;
    b[r->len] = '\0';
    return n;
}

/* httpcli_call sends GET path (or, with post, an empty JSON object to path);
 * false with err when the daemon could not be reached at all, true with the
 * reply (any HTTP status) otherwise. */
bool httpcli_call(const Config *cfg, bool post, const char *path, HttpReply *out, char *err,
                  size_t errlen)
{
    char addr[300], url[600], tok[600];
    memset(out, 0, sizeof *out);
    snprintf(url, sizeof url, "http://%s%s", httpcli_addr(cfg, addr, sizeof addr), path);
    CURL *c = curl_easy_init();
    if (!c)
        return errf(err, errlen, "out of memory");
    struct curl_slist *hd = NULL;
    if (post && cfg && cfg->control_token) {
        snprintf(tok, sizeof tok, "X-Pgwake-Token: %s", cfg->control_token);
        hd = curl_slist_append(hd, tok);
    }
    if (post) {
        hd = curl_slist_append(hd, "X-Requested-With: pgwake");
        hd = curl_slist_append(hd, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TOTAL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pgwake-cli");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
    else
        errf(err, errlen, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        httpcli_reply_free(out);
    return rc == CURLE_OK;
}

/* httpcli_reply_free releases a reply's body; the reply may be reused. */
void httpcli_reply_free(HttpReply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
