/* alert_mail.h: the email side of alerts (private to alert.c): an RFC 5322
 * message built from an alert's subject and body, its SMTP envelope, and the
 * libcurl options that send it. */
#ifndef PGWAKE_ALERT_MAIL_H
#define PGWAKE_ALERT_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "mustcheck.h"

/* What an email delivery needs; owns all of it. */
typedef struct MailJob {
    char *url;                 /* smtp:// or smtps:// */
    char *user;                /* NULL = no AUTH (then a plain relay is allowed) */
    char *password;            /* secret: never logged */
    char *from_addr;           /* "<a@b>" for MAIL FROM */
    struct curl_slist *rcpts;  /* "<a@b>" for each RCPT TO */
    char *msg;                 /* the whole message, CRLF line ends */
    size_t len;                /* its bytes */
    size_t off;                /* bytes libcurl has read (reset for each try) */
    char reply[160];           /* the server's first error reply of the try, for logs */
} MailJob;

/* The parts of one message. */
typedef struct MailParams {
    const char *url, *user, *password;
    const char *from;    /* header value, "Name <a@b>" or "a@b" */
    const char *to;      /* comma-separated list of the same */
    const char *subject; /* one line of valid UTF-8 */
    const char *body;    /* '\n'-separated lines of valid UTF-8 */
    const char *kind;    /* for X-Pgwake-Alert */
    const char *host;    /* for the Message-ID */
    time_t when;         /* for Date */
} MailParams;

bool mail_job_init(MailJob *m, const MailParams *p, char *why, size_t n) MUSTCHECK;
void mail_job_free(MailJob *m);
bool mail_easy_setup(CURL *e, MailJob *m, int64_t timeout_ms, char *why, size_t n) MUSTCHECK;

#endif
