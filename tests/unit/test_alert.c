/* test_alert.c: alerts against real peers on loopback, started here:
 * tests/lib/smtp_sink.py (aiosmtpd) and tests/lib/http_sink.py, both run by
 * Debian's /usr/bin/python3, plus a socket that accepts TCP and never
 * answers. Covers the dead-worker batch, min_interval per kind, the email
 * and webhook formats, retries, timeouts, TLS required with a user, and that
 * the loop never waits on a peer; and the webhook log label, which must not
 * show a URL's secret. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "alert.h"
#include "alert_webhook.h"
#include "log.h"

#define PYTHON "/usr/bin/python3" /* Debian's, with python3-aiosmtpd */
#define WAIT_MS 15000             /* ceiling for a delivery that should take milliseconds */

static char tmpdir[64];

/* ---- helpers -------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *path_in(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

/* A sink process and the file it records to. */
typedef struct Sink {
    pid_t pid;
    int port;
    char out[256];
} Sink;

/* sink_start runs tests/lib/SCRIPT with --out and --port-file (plus extra
 * arguments) and waits for its port; false when it cannot run here. */
static bool sink_start(Sink *s, const char *script, const char *name, const char *extra1,
                       const char *extra2)
{
    const char *root = getenv("ROOT") ? getenv("ROOT") : ".";
    char prog[512], portfile[256], logf[256];
    snprintf(prog, sizeof prog, "%s/tests/lib/%s", root, script);
    snprintf(s->out, sizeof s->out, "%s.out", path_in(name));
    snprintf(portfile, sizeof portfile, "%s.port", path_in(name));
    snprintf(logf, sizeof logf, "%s.log", path_in(name));
    unlink(s->out);
    unlink(portfile);
    s->pid = fork();
    if (s->pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(PYTHON, PYTHON, prog, "--out", s->out, "--port-file", portfile, extra1, extra2,
              (char *)NULL);
        _exit(127);
    }
    if (s->pid < 0)
        return false;
    for (int64_t end = now_ms() + WAIT_MS; now_ms() < end;) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            bool ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok)
                return true;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
            break;
        usleep(20000);
    }
    char *log = slurp(logf);
    fprintf(stderr, "%s did not start:\n%s\n", script, log);
    free(log);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return false;
}

static void sink_stop(Sink *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 250 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
        usleep(20000);
    if (kill(s->pid, SIGKILL) == 0)
        waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* records returns the sink's JSON lines whose "event" is event (all when NULL). */
static json_t *records(const Sink *s, const char *event)
{
    json_t *out = json_array();
    char *text = slurp(s->out);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (!event || (ev && strcmp(ev, event) == 0))
            json_array_append(out, o);
        json_decref(o);
    }
    free(text);
    return out;
}

static const char *str_at(json_t *arr, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(arr, i), key));
}

/* has_line: text holds line as one whole line ('\n' or "\r\n" ends). */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\r' || p[n] == '\0'))
            return true;
    return false;
}

static int count_prefix(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct T {
    struct event_base *base;
    Alerter *a;
    AlertConf conf;
    Sink smtp, http;
    int silent_fd;       /* listening, never accepting */
    char smtp_url[64], webhook_url[128];
    int saved_stderr;    /* log lines of the test go to log_path */
    char log_path[256];
    struct event tick;   /* measures how late the loop runs a 20 ms timer */
    int64_t last_tick, max_gap;
} T;

static int setup(void **state)
{
    T *t = calloc(1, sizeof *t);
    t->base = event_base_new();
    t->silent_fd = -1;
    t->conf = (AlertConf){.min_interval_ms = 300000, .batch_window_ms = 300,
                          .db_down_alert_ms = 30000};
    snprintf(t->log_path, sizeof t->log_path, "%s", path_in("daemon.log"));
    fflush(stderr);
    t->saved_stderr = dup(2);
    int fd = open(t->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    *state = t;
    return 0;
}

/* log_text returns what the alerter logged so far (malloc'd). */
static char *log_text(T *t)
{
    return slurp(t->log_path);
}

static int teardown(void **state)
{
    T *t = *state;
    alert_free(t->a);
    sink_stop(&t->smtp);
    sink_stop(&t->http);
    if (t->silent_fd >= 0)
        close(t->silent_fd);
    if (event_initialized(&t->tick))
        event_del(&t->tick);
    event_base_free(t->base);
    dup2(t->saved_stderr, 2);
    close(t->saved_stderr);
    char *log = log_text(t);
    fprintf(stderr, "%s", log); /* shown by the runner when the test fails */
    free(log);
    free(t);
    return 0;
}

static void start_smtp(T *t, const char *extra1, const char *extra2)
{
    if (!sink_start(&t->smtp, "smtp_sink.py", "smtp", extra1, extra2))
        skip(); /* no /usr/bin/python3 with aiosmtpd here */
    snprintf(t->smtp_url, sizeof t->smtp_url, "smtp://127.0.0.1:%d", t->smtp.port);
    t->conf.smtp_url = t->smtp_url;
    t->conf.email_to = "ops@example.test";
}

static void start_http(T *t, const char *extra1, const char *extra2)
{
    if (!sink_start(&t->http, "http_sink.py", "http", extra1, extra2))
        skip();
    snprintf(t->webhook_url, sizeof t->webhook_url, "http://127.0.0.1:%d/hook?token=T0KEN",
             t->http.port);
    t->conf.webhook_url = t->webhook_url;
}

/* start_silent listens on a free port and never accepts: the kernel
 * completes the handshake, then nothing is ever said. */
static int start_silent(T *t)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    t->silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(t->silent_fd >= 0);
    assert_int_equal(bind(t->silent_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(t->silent_fd, 16), 0);
    assert_int_equal(getsockname(t->silent_fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

static void make_alerter(T *t)
{
    char err[ERR_LEN] = "";
    t->a = alert_new(t->base, &t->conf, "testhost", err, sizeof err);
    assert_non_null(t->a);
    assert_true(alert_enabled(t->a));
}

static void set_timing(T *t, int tries, int64_t delay_ms, int64_t timeout_ms)
{
    AlertTiming tm = {.tries = tries,
                      .retry_delay_ms = {delay_ms, delay_ms, delay_ms, delay_ms},
                      .connect_timeout_ms = 5000,
                      .timeout_ms = timeout_ms};
    alert_set_timing(t->a, &tm);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    T *t = arg;
    int64_t now = now_ms();
    if (now - t->last_tick > t->max_gap)
        t->max_gap = now - t->last_tick;
    t->last_tick = now;
}

/* start_ticker runs a 20 ms persistent timer on the loop, recording its worst gap. */
static void start_ticker(T *t)
{
    struct timeval tv = {0, 20000};
    event_assign(&t->tick, t->base, -1, EV_PERSIST, tick_cb, t);
    t->last_tick = now_ms();
    t->max_gap = 0;
    assert_int_equal(event_add(&t->tick, &tv), 0);
}

/* run_until runs the loop until the alerter has settled want deliveries
 * (sent + failed), or ms pass; returns whether it settled. */
static bool run_until(T *t, uint64_t want, int ms)
{
    for (int64_t end = now_ms() + ms;;) {
        AlertStats s = alert_stats(t->a);
        if (s.sent + s.failed >= want)
            return true;
        if (now_ms() >= end)
            return false;
        struct timeval tv = {0, 10000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
}

static void run_for(T *t, int ms)
{
    struct timeval tv = {ms / 1000, ms % 1000 * 1000};
    event_base_loopexit(t->base, &tv);
    event_base_dispatch(t->base);
}

/* ---- tests ---------------------------------------------------------------- */

/* Three deaths within batch_window: one email and one webhook, each listing
 * the three workers; addresses, headers, tails (with a line starting with a
 * dot, control bytes and bad UTF-8) and the JSON fields. */
static void test_dead_workers_batched(void **state)
{
    T *t = *state;
    start_smtp(t, NULL, NULL);
    start_http(t, NULL, NULL);
    t->conf.email_to = "ops@example.test, \"Doe, Jane\" <jane@example.test>";
    make_alerter(t);

    int64_t t0 = now_ms();
    DeadWorker w1 = {.id = "w1", .stage = "extract", .host = "testhost", .last_seen_s = 95.4,
                     .task = "42", .tail = "line one\n.dotted line\nline <three> & more"};
    DeadWorker w2 = {.id = "w2", .stage = "load", .host = "other-host", .last_seen_s = 420};
    DeadWorker w3 = {.id = "w3", .stage = "extract", .host = "testhost", .last_seen_s = 30,
                     .task = "7", .tail = "\xc3\xbcn\xc3\xaf" "code \xe2\x9c\x93\n\x01" "bad\xff",
                     .reason = "no heartbeat for 90 s"};
    alert_dead_worker(t->a, &w1);
    alert_dead_worker(t->a, &w2);
    run_for(t, 50);
    alert_dead_worker(t->a, &w3);
    assert_true(run_until(t, 2, WAIT_MS));
    assert_true(now_ms() - t0 >= 250); /* held for batch_window (300 ms) */
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.sent, 2);
    assert_int_equal(s.failed, 0);

    json_t *mail = records(&t->smtp, "message");
    assert_int_equal(json_array_size(mail), 1);
    assert_string_equal(str_at(mail, 0, "mail_from"), "pgwake@testhost");
    json_t *rcpt = json_object_get(json_array_get(mail, 0), "rcpt_tos");
    assert_int_equal(json_array_size(rcpt), 2);
    assert_string_equal(json_string_value(json_array_get(rcpt, 0)), "ops@example.test");
    assert_string_equal(json_string_value(json_array_get(rcpt, 1)), "jane@example.test");
    assert_string_equal(str_at(mail, 0, "subject"), "Dead Workers Detected (3)");
    const char *data = str_at(mail, 0, "data");
    assert_true(has_line(data, "From: pgwake@testhost"));
    assert_true(has_line(data, "To: ops@example.test, \"Doe, Jane\" <jane@example.test>"));
    assert_true(has_line(data, "Subject: Dead Workers Detected (3)"));
    assert_true(has_line(data, "Content-Type: text/plain; charset=utf-8"));
    assert_non_null(strstr(data, "\r\nDate: "));
    assert_non_null(strstr(data, "\r\nMessage-ID: <"));
    const char *body = str_at(mail, 0, "body");
    assert_int_equal(count_prefix(body, "- w"), 3);
    assert_true(has_line(body, "- w1: stage extract, host testhost, last seen 95 s ago, task 42, "
                               "reason: missed heartbeat"));
    assert_true(has_line(body, "    | line one"));
    assert_true(has_line(body, "    | .dotted line"));
    assert_true(has_line(body, "    | line <three> & more"));
    assert_true(has_line(body, "- w2: stage load, host other-host, last seen 7 min ago, no task, "
                               "reason: missed heartbeat"));
    assert_true(has_line(body, "- w3: stage extract, host testhost, last seen 30 s ago, task 7, "
                               "reason: no heartbeat for 90 s"));
    assert_true(has_line(body, "    | \xc3\xbcn\xc3\xaf" "code \xe2\x9c\x93"));
    assert_true(has_line(body, "    | ?bad?"));
    assert_true(has_line(body, "Their leases were released."));
    json_decref(mail);

    json_t *posts = records(&t->http, NULL);
    assert_int_equal(json_array_size(posts), 1);
    assert_string_equal(str_at(posts, 0, "content_type"), "application/json");
    assert_string_equal(str_at(posts, 0, "path"), "/hook?token=T0KEN");
    json_t *j = json_loads(str_at(posts, 0, "body"), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "dead_workers");
    assert_string_equal(json_string_value(json_object_get(j, "host")), "testhost");
    assert_string_equal(json_string_value(json_object_get(j, "subject")), "Dead Workers Detected (3)");
    const char *text = json_string_value(json_object_get(j, "text"));
    assert_non_null(text);
    assert_int_equal(strncmp(text, "Dead Workers Detected (3)\n", 26), 0);
    assert_non_null(strstr(text, "line &lt;three&gt; &amp; more")); /* Slack escaping */
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 3);
    json_t *ws = json_object_get(j, "workers");
    assert_int_equal(json_array_size(ws), 3);
    assert_string_equal(str_at(ws, 0, "id"), "w1");
    assert_string_equal(str_at(ws, 0, "stage"), "extract");
    assert_string_equal(str_at(ws, 0, "task"), "42");
    assert_string_equal(str_at(ws, 0, "reason"), "missed heartbeat");
    assert_string_equal(str_at(ws, 0, "tail"), "line one\n.dotted line\nline <three> & more");
    assert_true(json_real_value(json_object_get(json_array_get(ws, 0), "last_seen_s")) == 95.4);
    assert_true(json_is_null(json_object_get(json_array_get(ws, 1), "task")));
    assert_true(json_is_null(json_object_get(json_array_get(ws, 1), "tail")));
    assert_string_equal(str_at(ws, 1, "host"), "other-host");
    json_decref(j);
    json_decref(posts);

    char *log = log_text(t);
    assert_null(strstr(log, "T0KEN")); /* the webhook's token is never logged */
    assert_non_null(strstr(log, "webhook 127.0.0.1"));
    free(log);
}

/* A second and third FATAL within min_interval are held, then sent as one
 * message, counted; another kind (db_down) is not held meanwhile. */
static void test_fatal_rate_limited(void **state)
{
    T *t = *state;
    start_smtp(t, NULL, NULL);
    start_http(t, NULL, NULL);
    t->conf.min_interval_ms = 400;
    make_alerter(t);

    int64_t t0 = now_ms();
    alert_stage_fatal(t->a, "extract", "5 crashes in 5 min");
    assert_true(run_until(t, 2, WAIT_MS));
    alert_stage_fatal(t->a, "load", "exec failed: No such file or directory");
    alert_stage_fatal(t->a, "store", "boom");
    alert_db_down(t->a, 31, "connection refused");
    assert_int_equal(alert_stats(t->a).held, 2);
    assert_true(run_until(t, 6, WAIT_MS));
    int64_t held_at = now_ms() - t0;
    assert_true(held_at >= 350); /* not before min_interval ended */
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.sent, 6); /* 3 messages, each by email and webhook */
    assert_int_equal(s.held, 2);

    json_t *mail = records(&t->smtp, "message");
    assert_int_equal(json_array_size(mail), 3);
    assert_string_equal(str_at(mail, 0, "subject"),
                        "Stage extract is FATAL on testhost: 5 crashes in 5 min");
    assert_string_equal(str_at(mail, 1, "subject"),
                        "Database unreachable from testhost for 31 s");
    assert_string_equal(str_at(mail, 2, "subject"),
                        "2 alerts held back by min_interval: Stage load is FATAL on testhost: "
                        "exec failed: No such file or directory; Stage store is FATAL on "
                        "testhost: boom");
    const char *body = str_at(mail, 2, "body");
    assert_non_null(strstr(body, "2 fatal alerts came within min_interval (400 ms)"));
    assert_int_equal(count_prefix(body, "--- "), 2);
    assert_non_null(strstr(body, " Stage store is FATAL on testhost: boom\n"));
    assert_true(has_line(str_at(mail, 0, "body"),
                         "Stage extract is FATAL on testhost: 5 crashes in 5 min"));
    json_decref(mail);

    json_t *posts = records(&t->http, NULL), *held = NULL;
    assert_int_equal(json_array_size(posts), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *j = json_loads(str_at(posts, i, "body"), 0, NULL);
        if (json_object_get(j, "held") && !held)
            held = j;
        else
            json_decref(j);
    }
    assert_non_null(held);
    assert_string_equal(json_string_value(json_object_get(held, "kind")), "fatal");
    assert_int_equal(json_integer_value(json_object_get(held, "held")), 2);
    json_t *alerts = json_object_get(held, "alerts");
    assert_int_equal(json_array_size(alerts), 2);
    assert_string_equal(str_at(alerts, 0, "stage"), "load");
    assert_string_equal(str_at(alerts, 0, "reason"), "exec failed: No such file or directory");
    assert_string_equal(str_at(alerts, 1, "stage"), "store");
    assert_non_null(str_at(alerts, 1, "time"));
    json_decref(held);
    json_decref(posts);

    /* After the held message, the interval starts again: a 4th is held too. */
    alert_stage_fatal(t->a, "extract", "again");
    assert_int_equal(alert_stats(t->a).held, 3);
    assert_true(run_until(t, 8, WAIT_MS));
    mail = records(&t->smtp, "message");
    assert_string_equal(str_at(mail, 3, "subject"),
                        "1 alert held back by min_interval: Stage extract is FATAL on testhost: "
                        "again");
    json_decref(mail);
}

/* Database down and back, by webhook: subjects and fields. */
static void test_db_down_and_recovered(void **state)
{
    T *t = *state;
    start_http(t, NULL, NULL);
    make_alerter(t);
    alert_db_down(t->a, 35.2, "could not connect\nis the server running?");
    alert_db_recovered(t->a, 150);
    assert_true(run_until(t, 2, WAIT_MS));
    json_t *posts = records(&t->http, NULL);
    assert_int_equal(json_array_size(posts), 2);
    json_t *down = json_loads(str_at(posts, 0, "body"), 0, NULL);
    json_t *up = json_loads(str_at(posts, 1, "body"), 0, NULL);
    if (strcmp(json_string_value(json_object_get(down, "kind")), "db_down") != 0) {
        json_t *x = down; /* two transfers: either may land first */
        down = up, up = x;
    }
    assert_string_equal(json_string_value(json_object_get(down, "subject")),
                        "Database unreachable from testhost for 35 s");
    assert_true(json_real_value(json_object_get(down, "down_s")) == 35.2);
    assert_string_equal(json_string_value(json_object_get(down, "error")),
                        "could not connect is the server running?");
    assert_string_equal(json_string_value(json_object_get(up, "kind")), "db_recovered");
    assert_string_equal(json_string_value(json_object_get(up, "subject")),
                        "Database reachable again from testhost after 2 min");
    assert_non_null(json_object_get(up, "time"));
    json_decref(down);
    json_decref(up);
    json_decref(posts);
}

/* HTTP 500 on the first try: retried after the (shortened) delay, then sent. */
static void test_webhook_retry_after_500(void **state)
{
    T *t = *state;
    start_http(t, "--fail-first", "1");
    make_alerter(t);
    set_timing(t, 3, 100, 5000);
    alert_stage_fatal(t->a, "extract", "boom");
    assert_true(run_until(t, 1, WAIT_MS));
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.retried, 1);
    assert_int_equal(s.failed, 0);
    json_t *posts = records(&t->http, NULL);
    assert_int_equal(json_array_size(posts), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(posts, 0), "status")), 500);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(posts, 1), "status")), 200);
    assert_string_equal(str_at(posts, 0, "body"), str_at(posts, 1, "body"));
    json_decref(posts);
    char *log = log_text(t);
    assert_non_null(strstr(log, "HTTP 500 (try 1 of 3; again in 100 ms)"));
    free(log);
}

/* A peer that keeps failing: bounded tries, then given up and counted. */
static void test_webhook_gives_up(void **state)
{
    T *t = *state;
    start_http(t, "--fail-first", "100");
    make_alerter(t);
    set_timing(t, 2, 50, 5000);
    alert_stage_fatal(t->a, "extract", "boom");
    assert_true(run_until(t, 1, WAIT_MS));
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.retried, 1);
    assert_int_equal(s.sent, 0);
    run_for(t, 200); /* no third try */
    json_t *posts = records(&t->http, NULL);
    assert_int_equal(json_array_size(posts), 2);
    json_decref(posts);
    char *log = log_text(t);
    assert_non_null(strstr(log, "HTTP 500 (gave up after 2 tries)"));
    free(log);
}

/* SMTP 451 on the first try: logged with the status, retried, delivered. */
static void test_smtp_retry(void **state)
{
    T *t = *state;
    start_smtp(t, "--fail-first", "1");
    make_alerter(t);
    set_timing(t, 3, 100, 5000);
    alert_db_recovered(t->a, 12);
    assert_true(run_until(t, 1, WAIT_MS));
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.retried, 1);
    json_t *refused = records(&t->smtp, "refused"), *mail = records(&t->smtp, "message");
    assert_int_equal(json_array_size(refused), 1);
    assert_int_equal(json_array_size(mail), 1);
    json_decref(refused);
    json_decref(mail);
    char *log = log_text(t);
    assert_non_null(strstr(log, "(SMTP 451 4.3.0 try again later)"));
    free(log);
}

/* Peers that accept TCP and never answer: the loop keeps its 20 ms timer on
 * time while both transfers hang, and both fail at their timeout. */
static void test_silent_peer_does_not_block(void **state)
{
    T *t = *state;
    int port = start_silent(t);
    snprintf(t->smtp_url, sizeof t->smtp_url, "smtp://127.0.0.1:%d", port);
    snprintf(t->webhook_url, sizeof t->webhook_url, "http://127.0.0.1:%d/hook", port);
    t->conf.smtp_url = t->smtp_url;
    t->conf.email_to = "ops@example.test";
    t->conf.webhook_url = t->webhook_url;
    make_alerter(t);
    set_timing(t, 1, 100, 1000);
    start_ticker(t);
    int64_t t0 = now_ms();
    alert_stage_fatal(t->a, "extract", "boom");
    assert_true(run_until(t, 2, WAIT_MS));
    int64_t took = now_ms() - t0;
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.sent, 0);
    assert_true(took >= 900);          /* they did wait for the peer... */
    assert_true(t->max_gap < 500);     /* ...but never on the loop (aim: 20 ms) */
    char *log = log_text(t);
    assert_non_null(strstr(log, "timed out"));
    free(log);
}

/* A mail server slow to answer the end of DATA: libcurl waits for it with a
 * blocking poll, which must not happen on the loop. */
static void test_slow_smtp_does_not_block(void **state)
{
    T *t = *state;
    start_smtp(t, "--data-delay", "1.5");
    make_alerter(t);
    start_ticker(t);
    int64_t t0 = now_ms();
    alert_stage_fatal(t->a, "extract", "boom");
    assert_true(run_until(t, 1, WAIT_MS));
    assert_int_equal(alert_stats(t->a).sent, 1);
    assert_true(now_ms() - t0 >= 1400);
    assert_true(t->max_gap < 500);
}

/* smtp_user on plain smtp:// to a server without STARTTLS: the delivery
 * fails; the password never crosses the wire nor reaches the log. */
static void test_tls_required_with_user(void **state)
{
    T *t = *state;
    start_smtp(t, NULL, NULL);
    t->conf.smtp_user = "alerts";
    t->conf.smtp_password = "pw-S3CRET-123";
    make_alerter(t);
    set_timing(t, 1, 100, 5000);
    alert_stage_fatal(t->a, "extract", "boom");
    assert_true(run_until(t, 1, WAIT_MS));
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.sent, 0);
    json_t *all = records(&t->smtp, NULL);
    assert_int_equal(json_array_size(all), 0); /* no AUTH, no message */
    json_decref(all);
    char *log = log_text(t);
    assert_non_null(strstr(log, "unable to send alert (email to ops@example.test)"));
    assert_null(strstr(log, "pw-S3CRET-123"));
    free(log);
}

/* Non-ASCII in a subject travels as RFC 2047 and reads back the same. */
static void test_utf8_subject(void **state)
{
    T *t = *state;
    start_smtp(t, NULL, NULL);
    make_alerter(t);
    const char *reason = "\xd0\x9e\xd1\x88\xd0\xb8\xd0\xb1\xd0\xba\xd0\xb0 "
                         "\xe2\x80\x94 a long reason that needs more than one encoded word";
    alert_stage_fatal(t->a, "extract", reason);
    assert_true(run_until(t, 1, WAIT_MS));
    json_t *mail = records(&t->smtp, "message");
    char want[256];
    snprintf(want, sizeof want, "Stage extract is FATAL on testhost: %s", reason);
    assert_string_equal(str_at(mail, 0, "subject"), want);
    assert_non_null(strstr(str_at(mail, 0, "data"), "Subject: =?UTF-8?B?"));
    json_decref(mail);
}

/* alert_free with a transfer hanging (silent peer, 20 s timeout) and with
 * one inside libcurl's blocking SMTP wait: both end at once. */
static void test_free_aborts_in_flight(void **state)
{
    T *t = *state;
    int port = start_silent(t);
    start_smtp(t, "--data-delay", "30");
    snprintf(t->webhook_url, sizeof t->webhook_url, "http://127.0.0.1:%d/hook", port);
    t->conf.webhook_url = t->webhook_url;
    make_alerter(t);
    alert_stage_fatal(t->a, "extract", "boom");
    run_for(t, 700); /* the email is in its end-of-DATA wait by now */
    assert_int_equal(alert_stats(t->a).sent + alert_stats(t->a).failed, 0);
    int64_t t0 = now_ms();
    alert_free(t->a);
    t->a = NULL;
    assert_true(now_ms() - t0 < 1500);
}

/* Nothing configured: disabled, and every call is a no-op. Email needs both
 * email_to and smtp_url. A reload can turn alerts on. */
static void test_disabled_and_reload(void **state)
{
    T *t = *state;
    char err[ERR_LEN] = "";
    t->a = alert_new(t->base, &t->conf, "testhost", err, sizeof err);
    assert_non_null(t->a);
    assert_false(alert_enabled(t->a));
    alert_stage_fatal(t->a, "extract", "boom");
    alert_dead_worker(t->a, &(DeadWorker){.id = "w1", .stage = "extract"});
    run_for(t, 400);
    AlertStats s = alert_stats(t->a);
    assert_int_equal(s.sent + s.failed + s.held + s.retried, 0);

    AlertConf half = t->conf;
    half.email_to = "ops@example.test";
    alert_set_conf(t->a, &half);
    assert_false(alert_enabled(t->a));
    char *log = log_text(t);
    assert_non_null(strstr(log, "email needs both email_to and smtp_url"));
    free(log);

    start_http(t, NULL, NULL);
    alert_set_conf(t->a, &t->conf);
    assert_true(alert_enabled(t->a));
    alert_stage_fatal(t->a, "extract", "after reload");
    assert_true(run_until(t, 1, WAIT_MS));
    assert_int_equal(alert_stats(t->a).sent, 1);
}

/* A webhook is logged by its host and port only: its path and query often
 * hold the token that lets anyone post to it. */
static void test_webhook_url_label(void **state)
{
    (void)state;
    char *l = webhook_url_label("https://hooks.example.test:8443/services/T0/SECRET?token=SECRET");
    assert_string_equal(l, "webhook hooks.example.test:8443");
    free(l);
    l = webhook_url_label("https://hooks.example.test/SECRET");
    assert_string_equal(l, "webhook hooks.example.test");
    free(l);
    l = webhook_url_label("no scheme SECRET");
    assert_string_equal(l, "webhook (unparsable URL)");
    free(l);
    char iso[32];
    webhook_iso_time(iso, sizeof iso, 86400 + 61);
    assert_string_equal(iso, "1970-01-02T00:01:01Z");
}

static int rm_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does */
    strcpy(tmpdir, "/tmp/test_alert.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_workers_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_down_and_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_retry_after_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_smtp_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_required_with_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_aborts_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_reload, setup, teardown),
        cmocka_unit_test(test_webhook_url_label),
    };
    if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER='*retry*'; KEEP_TMP=1 keeps the sink files */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!getenv("KEEP_TMP"))
        rm_tmpdir();
    return rc;
}
