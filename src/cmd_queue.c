/* cmd_queue.c: `pgwake enqueue STAGE [JSON]` and `pgwake notify STAGE|'*'`. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static int need_stage(const char *cmd, const CliOpts *o, int max_args)
{
    if (o->nargs < 1 || o->nargs > max_args) {
        fprintf(stderr, "pgwake %s: expected %s (see pgwake help %s)\n", cmd,
                max_args == 2 ? "STAGE [JSON]" : "STAGE or '*'", cmd);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int run_query(const CliOpts *o, const char *sql, int n, const char *const *params,
                     const char *what)
{
    int rc;
    PGconn *c = cli_open_db(o, &rc);
    if (!c)
        return rc;
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgwake %s: %s", what, PQresultErrorMessage(r));
        if (strstr(PQresultErrorMessage(r), "pgwake") && strstr(PQresultErrorMessage(r), "does not exist"))
            fprintf(stderr, "(run `pgwake migrate` first)\n");
        rc = EXIT_RUNTIME;
    } else if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && *PQgetvalue(r, 0, 0)) {
        printf("%s\n", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* cmd_enqueue adds one task; the JSON payload is checked here so a typo is a
 * usage error naming the problem, not a server error. */
int cmd_enqueue(const CliOpts *o)
{
    int rc = need_stage("enqueue", o, 2);
    if (rc)
        return rc;
    const char *stage = o->args[0];
    if (!stage_name_valid(stage)) {
        fprintf(stderr, "pgwake enqueue: invalid stage name \"%s\" (stage names match "
                        "^[a-z0-9_][a-z0-9_.-]{0,62}$)\n", stage);
        return EXIT_USAGE;
    }
    const char *payload = o->nargs > 1 ? o->args[1] : "{}";
    json_error_t jerr;
    json_t *j = json_loads(payload, JSON_DECODE_ANY, &jerr);
    if (!j) {
        fprintf(stderr, "pgwake enqueue: invalid JSON payload: %s (line %d, column %d)\n",
                jerr.text, jerr.line, jerr.column);
        return EXIT_USAGE;
    }
    json_decref(j);
    char prio[24], run[24], maxa[24];
    snprintf(prio, sizeof prio, "%ld", o->priority);
    snprintf(run, sizeof run, "%ld", o->run_id);
    snprintf(maxa, sizeof maxa, "%ld", o->max_attempts);
    const char *params[] = {stage, payload, o->run_id ? run : NULL, prio, maxa};
    return run_query(o, "SELECT pgwake.enqueue($1, $2::jsonb, $3::bigint, $4::int, "
                        "pg_catalog.now(), $5::int)", 5, params, "enqueue");
}

/* cmd_notify sends a manual wake: NOTIFY pgwake_wake with a stage or '*'. */
int cmd_notify(const CliOpts *o)
{
    int rc = need_stage("notify", o, 1);
    if (rc)
        return rc;
    const char *stage = o->args[0];
    if (strcmp(stage, "*") != 0 && !stage_name_valid(stage)) {
        fprintf(stderr, "pgwake notify: invalid stage name \"%s\" (use a stage name or '*')\n", stage);
        return EXIT_USAGE;
    }
    const char *params[] = {stage};
    return run_query(o, "SELECT pg_catalog.pg_notify('pgwake_wake', $1)::text", 1, params, "notify");
}
