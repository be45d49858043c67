/* alert.c: alerts of SPEC section 5: what they say (subject, body, JSON
 * fields), the dead-worker batch, the per-kind min_interval, and the API.
 * Delivery (retries, the transfer thread) is in alert_xfer.c, the email
 * format in alert_mail.c, the webhook body in alert_webhook.c. */
#include "alert.h"
#include "errfmt.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "alert_mail.h"
#include "alert_webhook.h"
#include "alert_xfer.h"
#include "log.h"

typedef enum { AK_DEAD_WORKERS, AK_FATAL, AK_DB_DOWN, AK_DB_RECOVERED, AK__COUNT } AlertKind;

static const char *const kind_names[] = {
    [AK_DEAD_WORKERS] = "dead_workers",
    [AK_FATAL] = "fatal",
    [AK_DB_DOWN] = "db_down",
    [AK_DB_RECOVERED] = "db_recovered",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == AK__COUNT, "kind names");

#define BATCH_MAX 1000      /* dead workers kept per batch (more are counted only) */
#define LISTED_MAX 100      /* workers listed in one message */
#define HELD_MAX 50         /* alerts kept per kind while held (more are counted only) */
#define SUBJECT_MAX 200     /* bytes of a composed subject */

/* One alert composed and waiting for its kind's min_interval. */
typedef struct Alert {
    AlertKind kind;
    char *subject;      /* one line of valid UTF-8 */
    char *body;         /* '\n'-separated lines of valid UTF-8 */
    json_t *fields;     /* kind-specific structured fields, owned */
    time_t when;        /* wall clock of the event */
    struct Alert *next; /* in KindState.held */
} Alert;

/* A DeadWorker copied with its strings cleaned. */
typedef struct DeadCopy {
    char *id, *stage, *host, *task, *tail, *reason; /* task and tail may be NULL */
    double last_seen_s;
    struct DeadCopy *next;
} DeadCopy;

typedef struct KindState {
    Alerter *a;            /* back pointer for hold_cb */
    bool sent_once;        /* last_sent_ms is meaningful */
    int64_t last_sent_ms;  /* monotonic time of this kind's last message */
    Alert *held;           /* FIFO of alerts held back */
    Alert **held_tail;
    int nheld;             /* alerts held, kept or not */
    int nkept;             /* of them in the list (at most HELD_MAX) */
    struct event hold_ev;  /* fires when min_interval since last_sent_ms ends */
} KindState;

struct Alerter {
    struct event_base *base;
    char *host;                 /* this daemon's, cleaned */
    AlertConf conf;             /* own copies of the strings; email_from defaulted */
    char *email_target;         /* "email to X", for log lines */
    char *webhook_target;       /* "webhook HOST", for log lines (the URL may hold a token) */
    bool email_on : 1;          /* email_to and smtp_url set */
    bool webhook_on : 1;        /* webhook_url set */
    DeadCopy *batch, **batch_tail;
    int nbatch;                 /* counted, kept or not */
    struct event batch_ev;      /* batch_window after the first death */
    KindState kinds[AK__COUNT];
    Deliveries *q;              /* every message goes through it */
    uint64_t held;              /* AlertStats.held */
};

/* ---- small helpers ---------------------------------------------------- */

/* fmt returns a formatted string (malloc'd), NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...)
{
    va_list ap;
    char *out;
    va_start(ap, f);
    int n = vasprintf(&out, f, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

/* utf8_len returns the length of the valid UTF-8 sequence at s, 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] > 0x9F) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] > 0x8F))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return n;
}

/* clean_dup copies s as valid UTF-8 without control characters (tab kept,
 * newlines kept only when multiline, else spaces); every other bad byte
 * becomes '?'. Inputs come from worker output and error texts: the copy is
 * safe for mail headers and acceptable to jansson. NULL stays NULL. */
static char *clean_dup(const char *s, bool multiline)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_len(c);
        if (*c == '\n')
            *o++ = multiline ? '\n' : ' ', n = 1;
        else if (n == 0 || (n == 1 && (*c < ' ' || *c == 0x7f) && *c != '\t'))
            *o++ = '?', n = 1;
        else
            memcpy(o, c, n), o += n;
        c += n;
    }
    *o = '\0';
    return out;
}

/* cut_utf8 shortens s in place to at most max bytes, on a character boundary. */
static void cut_utf8(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

/* fmt_ago writes a duration for people: "95 s" below 2 minutes, else "7 min". */
static void fmt_ago(char *out, size_t n, double s)
{
    if (!(s >= 0))
        s = 0;
    if (s > 1e9)
        s = 1e9;
    if (s < 120)
        snprintf(out, n, "%lld s", (long long)s);
    else
        snprintf(out, n, "%lld min", (long long)(s / 60));
}

static void fmt_interval(char *out, size_t n, int64_t ms)
{
    if (ms < 1000)
        snprintf(out, n, "%lld ms", (long long)ms);
    else
        fmt_ago(out, n, (double)ms / 1000);
}

/* ---- alerts ----------------------------------------------------------- */

static void alert_release(Alert *al)
{
    if (!al)
        return;
    free(al->subject);
    free(al->body);
    json_decref(al->fields);
    free(al);
}

/* alert_make takes ownership of subject, body and fields (any may be NULL
 * after a failed allocation, then everything is released and NULL returned). */
static Alert *alert_make(AlertKind kind, char *subject, char *body, json_t *fields)
{
    Alert *al = calloc(1, sizeof *al);
    if (!al || !subject || !body || !fields) {
        free(subject);
        free(body);
        json_decref(fields);
        free(al);
        log_error("unable to compose a %s alert: out of memory (alert lost)", kind_names[kind]);
        return NULL;
    }
    cut_utf8(subject, SUBJECT_MAX);
    *al = (Alert){.kind = kind, .subject = subject, .body = body, .fields = fields,
                  .when = time(NULL)};
    return al;
}

/* text_end closes a memstream opened on *buf and returns its text, NULL
 * on failure (*buf is only up to date once the stream is closed). */
static char *text_end(FILE *m, char **buf)
{
    if (fclose(m) != 0) {
        free(*buf);
        *buf = NULL;
    }
    return *buf;
}

static void dead_free(DeadCopy *d)
{
    while (d) {
        DeadCopy *next = d->next;
        free(d->id), free(d->stage), free(d->host), free(d->task), free(d->tail), free(d->reason);
        free(d);
        d = next;
    }
}

/* dead_line writes one worker's line and the lines it printed, indented. */
static void dead_line(FILE *m, const DeadCopy *d)
{
    char ago[32];
    fmt_ago(ago, sizeof ago, d->last_seen_s);
    fprintf(m, "- %s: stage %s, host %s, last seen %s ago, ", d->id, d->stage, d->host, ago);
    if (d->task)
        fprintf(m, "task %s", d->task);
    else
        fputs("no task", m);
    fprintf(m, ", reason: %s\n", d->reason);
    for (const char *l = d->tail; l && *l;) {
        size_t len = strcspn(l, "\n");
        fprintf(m, "    | %.*s\n", (int)len, l);
        l += len + (l[len] == '\n');
    }
}

/* compose_dead builds "Dead Workers Detected (N)" from a batch. */
static Alert *compose_dead(const Alerter *a, const DeadCopy *list, int n)
{
    char *subject = fmt("Dead Workers Detected (%d)", n), *body = NULL;
    size_t len = 0;
    json_t *workers = json_array();
    FILE *m = open_memstream(&body, &len);
    if (m) {
        fprintf(m, "pgwake on %s found %d dead worker%s:\n\n", a->host, n, n == 1 ? "" : "s");
        int listed = 0;
        for (const DeadCopy *d = list; d && listed < LISTED_MAX; d = d->next, listed++) {
            dead_line(m, d);
            json_array_append_new(workers, json_pack("{s:s, s:s, s:s, s:f, s:s?, s:s, s:s?}",
                                                     "id", d->id, "stage", d->stage, "host", d->host,
                                                     "last_seen_s", d->last_seen_s, "task", d->task,
                                                     "reason", d->reason, "tail", d->tail));
        }
        if (n > listed)
            fprintf(m, "- ... and %d more\n", n - listed);
        fputs("\nTheir leases were released.\n", m);
        body = text_end(m, &body);
    }
    json_t *fields = workers ? json_pack("{s:i, s:o, s:b}", "count", n, "workers", workers,
                                         "leases_released", 1)
                             : NULL;
    return alert_make(AK_DEAD_WORKERS, subject, body, fields);
}

/* compose_held builds the one message that replaces a kind's held alerts. */
static Alert *compose_held(const Alerter *a, KindState *k, AlertKind kind)
{
    char *subject = NULL, *body = NULL, iv[32];
    size_t slen = 0, blen = 0;
    fmt_interval(iv, sizeof iv, a->conf.min_interval_ms);
    json_t *list = json_array();
    FILE *s = open_memstream(&subject, &slen), *m = open_memstream(&body, &blen);
    if (s && m) {
        fprintf(s, "%d alert%s held back by min_interval: ", k->nheld, k->nheld == 1 ? "" : "s");
        fprintf(m, "%d %s alert%s came within min_interval (%s) of the previous one and %s held "
                   "back:\n",
                k->nheld, kind_names[kind], k->nheld == 1 ? "" : "s", iv,
                k->nheld == 1 ? "was" : "were");
        for (Alert *al = k->held; al; al = al->next) {
            char when[32], iso[32];
            struct tm tm;
            localtime_r(&al->when, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            webhook_iso_time(iso, sizeof iso, al->when);
            fprintf(s, "%s%s", al == k->held ? "" : "; ", al->subject);
            fprintf(m, "\n--- %s %s\n%s", when, al->subject, al->body);
            json_t *o = json_pack("{s:s, s:s}", "time", iso, "subject", al->subject);
            if (o)
                json_object_update(o, al->fields);
            json_array_append_new(list, o);
        }
        if (k->nheld > k->nkept)
            fprintf(m, "\n--- and %d more, not kept\n", k->nheld - k->nkept);
    }
    if (s)
        subject = text_end(s, &subject);
    if (m)
        body = text_end(m, &body);
    json_t *fields = list ? json_pack("{s:i, s:o}", "held", k->nheld, "alerts", list) : NULL;
    return alert_make(kind, subject, body, fields);
}

/* ---- deliveries ------------------------------------------------------------ */

static void send_email(Alerter *a, const Alert *al)
{
    Delivery *d = delivery_new(a->q, ACH_EMAIL, al->subject, a->email_target);
    if (!d)
        return;
    const AlertConf *c = &a->conf;
    MailParams p = {.url = c->smtp_url, .user = c->smtp_user, .password = c->smtp_password,
                    .from = c->email_from, .to = c->email_to, .subject = al->subject,
                    .body = al->body, .kind = kind_names[al->kind], .host = a->host,
                    .when = al->when};
    char why[256];
    if (mail_job_init(&d->mail, &p, why, sizeof why))
        deliveries_send(a->q, d);
    else
        delivery_abandon(a->q, d, why);
}

static void send_webhook(Alerter *a, const Alert *al)
{
    Delivery *d = delivery_new(a->q, ACH_WEBHOOK, al->subject, a->webhook_target);
    if (!d)
        return;
    WebhookParams p = {.url = a->conf.webhook_url, .kind = kind_names[al->kind], .host = a->host,
                    .subject = al->subject, .body = al->body, .when = al->when,
                    .fields = al->fields};
    char why[256];
    if (webhook_job_init(&d->webhook, &p, why, sizeof why))
        deliveries_send(a->q, d);
    else
        delivery_abandon(a->q, d, why);
}

/* dispatch sends al on every configured channel. */
static void dispatch(Alerter *a, const Alert *al)
{
    log_info("alert %s: %s", kind_names[al->kind], al->subject);
    if (a->email_on)
        send_email(a, al);
    if (a->webhook_on)
        send_webhook(a, al);
}

/* ---- min_interval --------------------------------------------------------- */

static void held_free(KindState *k)
{
    while (k->held) {
        Alert *next = k->held->next;
        alert_release(k->held);
        k->held = next;
    }
    k->held_tail = &k->held;
    k->nheld = k->nkept = 0;
}

/* kind_submit sends al now, or holds it until its kind's min_interval since
 * the last message of that kind ends. Takes al. */
static void kind_submit(Alerter *a, Alert *al)
{
    if (!al)
        return;
    KindState *k = &a->kinds[al->kind];
    int64_t now = mono_ms();
    if (k->nheld == 0 && (!k->sent_once || now - k->last_sent_ms >= a->conf.min_interval_ms)) {
        k->sent_once = true;
        k->last_sent_ms = now;
        dispatch(a, al);
        alert_release(al);
        return;
    }
    a->held++;
    k->nheld++;
    log_info("alert %s held back by min_interval (%d waiting): %s", kind_names[al->kind], k->nheld,
             al->subject);
    if (k->nkept < HELD_MAX) {
        *k->held_tail = al;
        k->held_tail = &al->next;
        k->nkept++;
    } else {
        alert_release(al);
    }
    if (!evtimer_pending(&k->hold_ev, NULL))
        timer_arm_ms(&k->hold_ev, k->last_sent_ms + a->conf.min_interval_ms - now);
}

static void hold_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    KindState *k = arg;
    Alerter *a = k->a;
    if (k->nheld == 0)
        return;
    Alert *al = compose_held(a, k, (AlertKind)(k - a->kinds));
    held_free(k);
    k->sent_once = true;
    k->last_sent_ms = mono_ms();
    if (al)
        dispatch(a, al);
    alert_release(al);
}

/* ---- the dead-worker batch -------------------------------------------- */

static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    Alerter *a = arg;
    DeadCopy *list = a->batch;
    int n = a->nbatch;
    a->batch = NULL;
    a->batch_tail = &a->batch;
    a->nbatch = 0;
    if (n > 0)
        kind_submit(a, compose_dead(a, list, n));
    dead_free(list);
}

/* ---- API ------------------------------------------------------------------ */

/* alert_new creates the alerter on base; conf is copied (alert_set_conf),
 * host names this daemon in messages and the default From. The transfer
 * thread starts later, with the first delivery. */
Alerter *alert_new(struct event_base *base, const AlertConf *conf, const char *host, char *err,
                   size_t errlen)
{
    Alerter *a = calloc(1, sizeof *a);
    if (!a || !(a->host = clean_dup(host && *host ? host : "localhost", false))) {
        free(a);
        errf(err, errlen, "unable to create the alerter: out of memory");
        return NULL;
    }
    a->base = base;
    if (!(a->q = deliveries_new(base))) {
        free(a->host);
        free(a);
        errf(err, errlen, "unable to create the alerter: out of memory");
        return NULL;
    }
    a->batch_tail = &a->batch;
    evtimer_assign(&a->batch_ev, base, batch_cb, a);
    for (int i = 0; i < AK__COUNT; i++) {
        a->kinds[i].a = a;
        a->kinds[i].held_tail = &a->kinds[i].held;
        evtimer_assign(&a->kinds[i].hold_ev, base, hold_cb, &a->kinds[i]);
    }
    alert_set_conf(a, conf);
    return a;
}

static void conf_free(AlertConf *c)
{
    if (c->smtp_password)
        explicit_bzero(c->smtp_password, strlen(c->smtp_password));
    free(c->email_to), free(c->smtp_url), free(c->smtp_user), free(c->smtp_password);
    free(c->email_from), free(c->webhook_url);
    memset(c, 0, sizeof *c);
}

/* set_dup copies s into *dst, an empty or NULL s as NULL; false when out of memory. */
static bool set_dup(char **dst, const char *s)
{
    *dst = s && *s ? strdup(s) : NULL;
    return !(s && *s) || *dst;
}

/* alert_set_conf replaces the settings (at start and on reload); messages
 * already composed keep the ones they were composed with. A held kind's
 * timer follows a changed min_interval. */
void alert_set_conf(Alerter *a, const AlertConf *conf)
{
    conf_free(&a->conf);
    free(a->email_target);
    free(a->webhook_target);
    a->email_target = a->webhook_target = NULL;
    AlertConf c = conf ? *conf : (AlertConf){0};
    bool ok = set_dup(&a->conf.email_to, c.email_to) && set_dup(&a->conf.smtp_url, c.smtp_url) &&
              set_dup(&a->conf.smtp_user, c.smtp_user) &&
              set_dup(&a->conf.smtp_password, c.smtp_password) &&
              set_dup(&a->conf.webhook_url, c.webhook_url);
    if (ok && c.email_from && *c.email_from)
        ok = set_dup(&a->conf.email_from, c.email_from);
    else if (ok)
        ok = (a->conf.email_from = fmt("pgwake@%s", a->host)) != NULL;
    a->conf.min_interval_ms = c.min_interval_ms > 0 ? c.min_interval_ms : 0;
    a->conf.batch_window_ms = c.batch_window_ms > 0 ? c.batch_window_ms : 0;
    a->conf.db_down_alert_ms = c.db_down_alert_ms;
    if (!ok) {
        log_error("unable to apply the [alerts] settings: out of memory (alerts are off)");
        conf_free(&a->conf);
    }
    if (a->conf.email_to && a->conf.smtp_url && a->conf.email_from)
        a->email_target = fmt("email to %s", a->conf.email_to);
    if (a->conf.webhook_url)
        a->webhook_target = webhook_url_label(a->conf.webhook_url);
    if (a->conf.webhook_url && strncasecmp(a->conf.webhook_url, "http://", 7) == 0)
        log_warn("alerts: webhook_url is http://: alerts travel unencrypted (use https://)");
    a->email_on = a->email_target != NULL;
    a->webhook_on = a->webhook_target != NULL;
    if (!a->email_on && (a->conf.email_to || a->conf.smtp_url))
        log_warn("alerts: email needs both email_to and smtp_url; email alerts are off");
    int64_t now = mono_ms();
    for (int i = 0; i < AK__COUNT; i++) {
        KindState *k = &a->kinds[i];
        if (k->nheld > 0 && evtimer_pending(&k->hold_ev, NULL)) {
            evtimer_del(&k->hold_ev);
            timer_arm_ms(&k->hold_ev, k->last_sent_ms + a->conf.min_interval_ms - now);
        }
    }
}

/* alert_set_timing replaces the delivery limits (tests shorten them). */
void alert_set_timing(Alerter *a, const AlertTiming *t)
{
    deliveries_set_timing(a->q, t);
}

/* alert_enabled tells whether any channel (email or webhook) is configured. */
bool alert_enabled(const Alerter *a)
{
    return a && (a->email_on || a->webhook_on);
}

/* alert_dead_worker adds w to the current batch, which is sent batch_window
 * after its first worker as one "Dead Workers Detected (N)" message. */
void alert_dead_worker(Alerter *a, const DeadWorker *w)
{
    if (!alert_enabled(a))
        return;
    if (a->nbatch++ < BATCH_MAX) {
        DeadCopy *d = calloc(1, sizeof *d);
        if (d) {
            d->id = clean_dup(w->id ? w->id : "?", false);
            d->stage = clean_dup(w->stage ? w->stage : "?", false);
            d->host = clean_dup(w->host ? w->host : a->host, false);
            d->task = clean_dup(w->task, false);
            d->tail = clean_dup(w->tail && *w->tail ? w->tail : NULL, true);
            d->reason = clean_dup(w->reason ? w->reason : "missed heartbeat", false);
            d->last_seen_s = w->last_seen_s;
        }
        if (!d || !d->id || !d->stage || !d->host || !d->reason || (w->task && !d->task) ||
            (w->tail && *w->tail && !d->tail)) {
            log_error("unable to record dead worker %s for its alert: out of memory",
                      w->id ? w->id : "?");
            dead_free(d);
        } else {
            *a->batch_tail = d;
            a->batch_tail = &d->next;
        }
    }
    if (!evtimer_pending(&a->batch_ev, NULL))
        timer_arm_ms(&a->batch_ev, a->conf.batch_window_ms);
}

/* alert_stage_fatal alerts "Stage X is FATAL on HOST: reason". */
void alert_stage_fatal(Alerter *a, const char *stage, const char *reason)
{
    if (!alert_enabled(a))
        return;
    char *st = clean_dup(stage ? stage : "?", false);
    char *why = clean_dup(reason ? reason : "no reason given", false);
    char *subject = NULL, *body = NULL;
    if (st && why) {
        subject = fmt("Stage %s is FATAL on %s: %s", st, a->host, why);
        body = fmt("Stage %s is FATAL on %s: %s\n\nIt is not restarted until `pgwake start %s` "
                   "or a reload that changes the stage.\n",
                   st, a->host, why, st);
    }
    json_t *fields = st && why ? json_pack("{s:s, s:s}", "stage", st, "reason", why) : NULL;
    free(st);
    free(why);
    kind_submit(a, alert_make(AK_FATAL, subject, body, fields));
}

/* alert_db_down alerts the database unreachable for down_s seconds (called
 * once, when db_down_alert has passed). */
void alert_db_down(Alerter *a, double down_s, const char *error)
{
    if (!alert_enabled(a))
        return;
    char ago[32], *subject = NULL, *body = NULL;
    fmt_ago(ago, sizeof ago, down_s);
    char *err = clean_dup(error && *error ? error : "no error text", false);
    if (err) {
        subject = fmt("Database unreachable from %s for %s", a->host, ago);
        body = fmt("pgwake on %s has not reached the database for %s: %s\n\nIt keeps "
                   "reconnecting; another message follows when the database is back.\n",
                   a->host, ago, err);
    }
    json_t *fields = err ? json_pack("{s:f, s:s}", "down_s", down_s, "error", err) : NULL;
    free(err);
    kind_submit(a, alert_make(AK_DB_DOWN, subject, body, fields));
}

/* alert_db_recovered alerts the database back after down_s seconds (called
 * only after alert_db_down). */
void alert_db_recovered(Alerter *a, double down_s)
{
    if (!alert_enabled(a))
        return;
    char ago[32];
    fmt_ago(ago, sizeof ago, down_s);
    char *subject = fmt("Database reachable again from %s after %s", a->host, ago);
    char *body = fmt("pgwake on %s reached the database again after %s without it.\n", a->host, ago);
    kind_submit(a, alert_make(AK_DB_RECOVERED, subject, body, json_pack("{s:f}", "down_s", down_s)));
}

/* alert_stats returns the delivery counters (see AlertStats). */
AlertStats alert_stats(const Alerter *a)
{
    AlertStats s = {.held = a->held};
    deliveries_stats(a->q, &s);
    return s;
}

/* alert_free drops what is batched, held or waiting to retry, aborts the
 * transfers in flight (stopping the transfer thread) and frees everything. */
void alert_free(Alerter *a)
{
    if (!a)
        return;
    event_del(&a->batch_ev);
    dead_free(a->batch);
    for (int i = 0; i < AK__COUNT; i++) {
        event_del(&a->kinds[i].hold_ev);
        held_free(&a->kinds[i]);
    }
    deliveries_free(a->q);
    conf_free(&a->conf);
    free(a->email_target);
    free(a->webhook_target);
    free(a->host);
    free(a);
}
