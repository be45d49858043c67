/* tasks.h: the operator's view of pgwake.tasks, shared by GET /tasks
 * (http_tasks.c) and `pgwake tasks|retry|cancel` (cmd_tasks.c): filter
 * checks, the keyset-paged list query, the row -> JSON mapping, and the
 * retry/cancel statements with their outcome. */
#ifndef PGWAKE_TASKS_H
#define PGWAKE_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "mustcheck.h"

#define TASKS_LIMIT_DEFAULT 50
#define TASKS_LIMIT_MAX 1000
#define TASKS_ERROR_CUT 300 /* characters of last_error a list row carries; GET /tasks/ID has all */

typedef struct TaskFilter {
    const char *stage; /* NULL: any */
    const char *state; /* pending|leased|dead|done, NULL: any */
    long run;          /* 0: any */
    long before;       /* keyset: ids below this one, 0: from the newest */
    long limit;
} TaskFilter;

/* The list query's parameters, as text (NULL for an unset filter). */
typedef struct TaskParams {
    const char *v[5];
    char run[24], before[24], limit[24];
} TaskParams;

extern const char tasks_list_sql[];   /* $1 stage $2 state $3 run $4 before $5 limit */
extern const char tasks_one_sql[];    /* $1 id: the same columns, last_error and payload whole */
extern const char tasks_action_sql[]; /* $1 id $2 'retry'|'cancel': (status before, changed) */

bool tasks_state_valid(const char *s);
bool tasks_filter_check(const TaskFilter *f, char *err, size_t n) MUSTCHECK;
void tasks_params(const TaskFilter *f, TaskParams *p);
json_t *tasks_row(PGresult *r, int i) MUSTCHECK;
json_t *tasks_page(PGresult *r, long limit) MUSTCHECK;
int tasks_action_outcome(PGresult *r, long id, const char *action, char *msg, size_t n) MUSTCHECK;

#endif
