/*
 * demo_worker.c - the worker of the demo pipeline (SPEC section 8), one binary
 * for its three stages, chosen by PGWAKE_STAGE:
 *
 *   company_discovery  -> `count` (default 5) company_research tasks
 *   company_research   -> 2 contact_discovery tasks per company
 *   contact_discovery  -> leaf
 *
 * Each task "works" for `work_ms` (default 150) ms and prints one line. The
 * follow-ups are enqueued in the same transaction as the completion, so a run
 * is never seen done between two stages. Run by pgwake (conf/demo.conf), or by
 * hand: `PGWAKE_STAGE=company_discovery PGWAKE_DSN=... build/examples/demo_worker`
 * registers itself and drains the stage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pgwake/worker.h"

enum {
    DEFAULT_COUNT = 5,     /* companies per discovery task */
    CONTACTS_PER = 2,      /* contacts per company */
    DEFAULT_WORK_MS = 150, /* simulated work per task */
    MAX_COUNT = 10000,     /* a sanity cap on fan-out */
};

/* The worker, for the SIGTERM handler only (pgwake_request_stop is async-signal-safe). */
static pgwake_worker *volatile the_worker;

static void handle_sigterm(int sig)
{
    (void)sig;
    if (the_worker)
        pgwake_request_stop(the_worker);
}

static void work(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long long int_field(json_t *obj, const char *key, long long dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* add_json queues one follow-up whose payload is the (stolen) object fu. */
static bool add_json(pgwake_task *t, const char *stage, json_t *fu)
{
    char *text = fu ? json_dumps(fu, JSON_COMPACT) : NULL;
    bool ok = text && pgwake_task_add_followup(t, stage, text);
    free(text);
    json_decref(fu);
    return ok;
}

static const char *discover(pgwake_task *t, json_t *p, long long work_ms)
{
    long long count = int_field(p, "count", DEFAULT_COUNT);
    if (count < 0 || count > MAX_COUNT)
        return pgwake_task_errorf(t, "count %lld out of range 0..%d", count, MAX_COUNT);
    work(work_ms);
    for (long long i = 1; i <= count; i++) {
        json_t *fu = json_pack("{s:I,s:I,s:I}", "company", (json_int_t)i, "of",
                               (json_int_t)count, "work_ms", (json_int_t)work_ms);
        if (!add_json(t, "company_research", fu))
            return "out of memory";
    }
    printf("discovered %lld companies for run %lld\n", count, t->run_id);
    return NULL;
}

static const char *research(pgwake_task *t, json_t *p, long long work_ms)
{
    long long company = int_field(p, "company", 0);
    work(work_ms);
    for (int c = 1; c <= CONTACTS_PER; c++) {
        json_t *fu = json_pack("{s:I,s:i,s:I}", "company", (json_int_t)company, "contact", c,
                               "work_ms", (json_int_t)work_ms);
        if (!add_json(t, "contact_discovery", fu))
            return "out of memory";
    }
    printf("researched company %lld of run %lld\n", company, t->run_id);
    return NULL;
}

static const char *find_contact(pgwake_task *t, json_t *p, long long work_ms)
{
    work(work_ms);
    printf("found contact %lld of company %lld of run %lld\n", int_field(p, "contact", 0),
           int_field(p, "company", 0), t->run_id);
    return NULL;
}

/* handle dispatches on the stage; a re-execution (attempts > 1) is said aloud. */
static const char *handle(pgwake_worker *w, pgwake_task *t, bool *retry, void *arg)
{
    (void)arg;
    json_error_t jerr;
    json_t *p = json_loads(t->payload, JSON_DECODE_ANY, &jerr);
    if (!json_is_object(p)) {
        json_decref(p);
        *retry = false; /* it will not parse any better next time */
        return pgwake_task_errorf(t, "payload is not a JSON object: %s", t->payload);
    }
    if (t->attempts > 1)
        printf("task %lld is a re-execution (attempt %d)\n", t->id, t->attempts);
    long long work_ms = int_field(p, "work_ms", DEFAULT_WORK_MS);
    const char *stage = pgwake_stage(w), *err;
    if (strcmp(stage, "company_discovery") == 0)
        err = discover(t, p, work_ms);
    else if (strcmp(stage, "company_research") == 0)
        err = research(t, p, work_ms);
    else if (strcmp(stage, "contact_discovery") == 0)
        err = find_contact(t, p, work_ms);
    else {
        *retry = false;
        err = pgwake_task_errorf(t, "demo_worker does not know stage %s", stage);
    }
    json_decref(p);
    return err;
}

int main(void)
{
    /* stdout is a pipe to the daemon's log: one line at a time */
    setvbuf(stdout, NULL, _IOLBF, 0);
    char err[512];
    pgwake_worker *w = pgwake_open(NULL, err, sizeof err);
    if (!w) {
        fprintf(stderr, "demo_worker: %s\n", err);
        return 1;
    }
    /* SIGTERM: finish the current task, then exit 0 (no SA_RESTART needed) */
    the_worker = w;
    struct sigaction sa = {.sa_handler = handle_sigterm};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);

    int rc = pgwake_run(w, handle, NULL);
    if (rc == PGWAKE_ERROR)
        fprintf(stderr, "demo_worker: %s\n", pgwake_last_error(w));
    else if (rc == PGWAKE_FENCED)
        fprintf(stderr, "demo_worker: declared dead by pgwake; exiting\n");
    the_worker = NULL;
    pgwake_close(w);
    return rc == PGWAKE_OK ? 0 : 1;
}
