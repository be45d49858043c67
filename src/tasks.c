/* tasks.c: see tasks.h. The list is newest first (id DESC) and pages by
 * keyset (?before=ID), so page N costs what page 1 costs; its filters are
 * bound parameters the planner folds away when unset (unnamed statements
 * are planned with their values), which lets it pick 0004_console's
 * indexes. */
#include "tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define TASK_COLS(ERR)                                                                        \
    "SELECT t.id, t.run_id, t.stage, t.status,"                                              \
    " t.status = 'pending' AND t.not_before > pg_catalog.now() AS retrying,"                 \
    " t.attempts, t.max_attempts, t.priority,"                                                \
    " extract(epoch FROM pg_catalog.now() - t.created_at)::float8 AS age_s,"                  \
    " t.lease_owner, " ERR " AS last_error,"                                                  \
    " pg_catalog.char_length(t.last_error) > " CUT_S " AS error_cut,"                        \
    " pg_catalog.to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"   \
    " pg_catalog.to_char(t.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"  \
    " GREATEST(extract(epoch FROM t.not_before - pg_catalog.now()), 0)::float8 AS due_in_s"
#define STR(x) #x
#define XSTR(x) STR(x)
#define CUT_S XSTR(TASKS_ERROR_CUT)

const char tasks_list_sql[] =
    TASK_COLS("pg_catalog.left(t.last_error, " CUT_S ")")
    " FROM pgwake.tasks t"
    " WHERE ($1::text IS NULL OR t.stage = $1) AND ($2::text IS NULL OR t.status = $2)"
    "   AND ($3::bigint IS NULL OR t.run_id = $3) AND ($4::bigint IS NULL OR t.id < $4)"
    " ORDER BY t.id DESC LIMIT $5::int + 1";

const char tasks_one_sql[] =
    TASK_COLS("t.last_error") ", t.payload::text, t.result::text"
    " FROM pgwake.tasks t WHERE t.id = $1::bigint";

/* The status is read before the call in the same statement, so a refusal
 * can say why (a done task, a leased one). */
const char tasks_action_sql[] =
    "SELECT s.status, CASE $2 WHEN 'retry' THEN pgwake.retry(s.id) ELSE pgwake.cancel(s.id) END"
    " FROM (SELECT t.id, t.status FROM pgwake.tasks t WHERE t.id = $1::bigint) s";

bool tasks_state_valid(const char *s)
{
    static const char *const states[] = {"pending", "leased", "dead", "done"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return true;
    return false;
}

/* tasks_filter_check: false with err naming the bad filter and what it wants. */
bool tasks_filter_check(const TaskFilter *f, char *err, size_t n)
{
    if (f->stage && !stage_name_valid(f->stage))
        return snprintf(err, n, "stage \"%.80s\" is not a stage name (^[a-z0-9_][a-z0-9_.-]{0,62}$)",
                        f->stage), false;
    if (f->state && !tasks_state_valid(f->state))
        return snprintf(err, n, "state \"%.40s\" is not one of pending, leased, dead, done",
                        f->state), false;
    if (f->limit < 1 || f->limit > TASKS_LIMIT_MAX)
        return snprintf(err, n, "limit wants a number from 1 to %d", TASKS_LIMIT_MAX), false;
    if (f->run < 0 || f->before < 0)
        return snprintf(err, n, "run and before want task or run ids (positive)"), false;
    return true;
}

void tasks_params(const TaskFilter *f, TaskParams *p)
{
    snprintf(p->run, sizeof p->run, "%ld", f->run);
    snprintf(p->before, sizeof p->before, "%ld", f->before);
    snprintf(p->limit, sizeof p->limit, "%ld", f->limit);
    p->v[0] = f->stage;
    p->v[1] = f->state;
    p->v[2] = f->run ? p->run : NULL;
    p->v[3] = f->before ? p->before : NULL;
    p->v[4] = p->limit;
}

static json_t *text_or_null(PGresult *r, int i, int c)
{
    return PQgetisnull(r, i, c) ? json_null() : json_string(PQgetvalue(r, i, c));
}

static json_t *int_or_null(PGresult *r, int i, int c)
{
    return PQgetisnull(r, i, c) ? json_null() : json_integer(strtoll(PQgetvalue(r, i, c), NULL, 10));
}

/* A payload or result that is not valid JSON to jansson (it is jsonb, so
 * only a number beyond its range) is passed on as text. */
static json_t *json_or_text(PGresult *r, int i, int c)
{
    if (PQgetisnull(r, i, c))
        return json_null();
    json_t *j = json_loads(PQgetvalue(r, i, c), JSON_DECODE_ANY, NULL);
    return j ? j : json_string(PQgetvalue(r, i, c));
}

/* tasks_row maps row i of tasks_list_sql or tasks_one_sql to JSON. */
json_t *tasks_row(PGresult *r, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", int_or_null(r, i, 0));
    json_object_set_new(o, "run_id", int_or_null(r, i, 1));
    json_object_set_new(o, "stage", text_or_null(r, i, 2));
    json_object_set_new(o, "state", text_or_null(r, i, 3));
    json_object_set_new(o, "retrying", json_boolean(*PQgetvalue(r, i, 4) == 't'));
    json_object_set_new(o, "attempts", int_or_null(r, i, 5));
    json_object_set_new(o, "max_attempts", int_or_null(r, i, 6));
    json_object_set_new(o, "priority", int_or_null(r, i, 7));
    json_object_set_new(o, "age_s", json_real(strtod(PQgetvalue(r, i, 8), NULL)));
    json_object_set_new(o, "owner", text_or_null(r, i, 9));
    json_object_set_new(o, "last_error", text_or_null(r, i, 10));
    json_object_set_new(o, "last_error_cut", json_boolean(*PQgetvalue(r, i, 11) == 't'));
    json_object_set_new(o, "created_at", text_or_null(r, i, 12));
    json_object_set_new(o, "finished_at", text_or_null(r, i, 13));
    json_object_set_new(o, "due_in_s", json_real(strtod(PQgetvalue(r, i, 14), NULL)));
    if (PQnfields(r) > 16) {
        json_object_set_new(o, "payload", json_or_text(r, i, 15));
        json_object_set_new(o, "result", json_or_text(r, i, 16));
    }
    return o;
}

/* tasks_page: {"tasks": [...], "next_before": ID or null} from the list
 * query, which asks for one row more than limit to know whether more follow. */
json_t *tasks_page(PGresult *r, long limit)
{
    json_t *arr = json_array();
    int n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(arr, tasks_row(r, i));
    json_t *next = n > limit ? int_or_null(r, (int)limit - 1, 0) : json_null();
    return json_pack("{s:o,s:o}", "tasks", arr, "next_before", next);
}

/* tasks_action_outcome reads tasks_action_sql's result: 200 done, 404 no
 * such task, 409 not in a state the action applies to, 500 the query
 * failed; msg says which in words. */
int tasks_action_outcome(PGresult *r, long id, const char *action, char *msg, size_t n)
{
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return snprintf(msg, n, "%s of task %ld failed: %s", action, id, PQresultErrorMessage(r)), 500;
    if (PQntuples(r) == 0)
        return snprintf(msg, n, "no task %ld", id), 404;
    const char *was = PQgetvalue(r, 0, 0);
    if (*PQgetvalue(r, 0, 1) != 't')
        return snprintf(msg, n, "task %ld is %s: %s", id, was,
                        strcmp(action, "retry") == 0 ? "only a dead or pending task can be retried"
                                                     : "only a pending task can be cancelled"),
               409;
    snprintf(msg, n, "task %ld: %s (was %s)", id, strcmp(action, "retry") == 0 ? "pending now" : "cancelled",
             was);
    return 200;
}
