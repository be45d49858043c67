/* cmd_cron.c: `pgwake cron install|remove`: schedules expire_leases (the
 * backstop when no daemon runs), retry_releases (failed release_sql) and prune with pg_cron, in the database that
 * holds schema pgwake, at the finest step the installed pg_cron offers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

/* pg_cron lives in one database (cron.database_name); jobs name their target. */
static PGconn *connect_cron_db(PGconn *c, char *crondb, size_t n)
{
    PGresult *r = PQexec(c, "SELECT pg_catalog.current_setting('cron.database_name', true)");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && !PQgetisnull(r, 0, 0) && *PQgetvalue(r, 0, 0);
    if (ok)
        snprintf(crondb, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!ok) {
        fprintf(stderr, "pgwake cron: pg_cron is not loaded in this server (add pg_cron to "
                        "shared_preload_libraries and set cron.database_name, then restart it)\n");
        return NULL;
    }
    const char *keys[] = {"dbname", "dbname", "fallback_application_name", NULL};
    const char *vals[] = {PQdb(c), crondb, "pgwake", NULL};
    /* Same server and user as c: rebuild from c's own parameters. */
    PQconninfoOption *opts = PQconninfo(c);
    char conninfo[2048] = "";
    size_t len = 0;
    for (PQconninfoOption *p = opts; p && p->keyword; p++) {
        if (!p->val || !*p->val || strcmp(p->keyword, "dbname") == 0 || strcmp(p->keyword, "replication") == 0)
            continue;
        len += (size_t)snprintf(conninfo + len, sizeof conninfo - len, "%s='", p->keyword);
        for (const char *v = p->val; *v && len + 4 < sizeof conninfo; v++) {
            if (*v == '\'' || *v == '\\')
                conninfo[len++] = '\\';
            conninfo[len++] = *v;
        }
        len += (size_t)snprintf(conninfo + len, sizeof conninfo - len, "' ");
    }
    PQconninfoFree(opts);
    vals[0] = conninfo;
    PGconn *cc = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(cc) != CONNECTION_OK) {
        fprintf(stderr, "pgwake cron: unable to connect to pg_cron's database \"%s\": %s", crondb,
                PQerrorMessage(cc));
        PQfinish(cc);
        return NULL;
    }
    return cc;
}

static bool cron_exec(PGconn *c, const char *sql, int n, const char *const *p, const char *what)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "pgwake cron: unable to %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* "1.4" -> 104: 1.5 brought schedules in seconds. */
static int cron_version(PGconn *cc)
{
    PGresult *r = PQexec(cc, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        int major = 0, minor = 0;
        if (sscanf(PQgetvalue(r, 0, 0), "%d.%d", &major, &minor) >= 1)
            v = major * 100 + minor;
    }
    PQclear(r);
    return v;
}

static int cron_apply(PGconn *cc, const char *db, bool install)
{
    char expire_job[160], prune_job[160], retry_job[160];
    snprintf(expire_job, sizeof expire_job, "pgwake-expire-leases-%s", db);
    snprintf(prune_job, sizeof prune_job, "pgwake-prune-%s", db);
    snprintf(retry_job, sizeof retry_job, "pgwake-retry-releases-%s", db);
    if (!install) {
        const char *p[] = {expire_job, prune_job, retry_job};
        PGresult *r = PQexecParams(cc, "SELECT cron.unschedule(jobid) FROM cron.job"
                                       " WHERE jobname IN ($1, $2, $3)", 3, NULL, p, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (ok)
            printf("removed %d pg_cron job(s) for database %s\n", PQntuples(r), db);
        else
            fprintf(stderr, "pgwake cron: unable to unschedule: %s", PQresultErrorMessage(r));
        PQclear(r);
        return ok ? EXIT_OK : EXIT_RUNTIME;
    }
    int v = cron_version(cc);
    if (v < 0) {
        fprintf(stderr, "pgwake cron: extension pg_cron is not installed in its database "
                        "(CREATE EXTENSION pg_cron there)\n");
        return EXIT_RUNTIME;
    }
    /* The finest step available: seconds from pg_cron 1.5, else every minute. */
    const char *every = v >= 105 ? "5 seconds" : "* * * * *";
    const char *p1[] = {expire_job, every, "SELECT * FROM pgwake.expire_leases()", db};
    const char *p2[] = {prune_job, "17 3 * * *", "SELECT pgwake.prune()", db};
    /* Failed release_sql runs wait for this when no daemon runs. */
    const char *p3[] = {retry_job, every, "SELECT count(*) FROM pgwake.retry_releases()", db};
    const char *sql = "SELECT cron.schedule_in_database($1, $2, $3, $4)";
    if (!cron_exec(cc, sql, 4, p1, "schedule expire_leases") || !cron_exec(cc, sql, 4, p2, "schedule prune") ||
        !cron_exec(cc, sql, 4, p3, "schedule retry_releases"))
        return EXIT_RUNTIME;
    printf("scheduled %s and %s (%s) and %s (daily) with pg_cron in database %s\n", expire_job,
           retry_job, every, prune_job, db);
    return EXIT_OK;
}

/* cmd_cron installs or removes the pg_cron jobs of the pgwake database. */
int cmd_cron(const CliOpts *o)
{
    if (o->nargs != 1 || (strcmp(o->args[0], "install") != 0 && strcmp(o->args[0], "remove") != 0)) {
        fprintf(stderr, "pgwake cron: expected install or remove (see pgwake help cron)\n");
        return EXIT_USAGE;
    }
    int rc;
    PGconn *c = cli_open_db(o, &rc);
    if (!c)
        return rc;
    char crondb[128];
    PGconn *cc = connect_cron_db(c, crondb, sizeof crondb);
    rc = cc ? cron_apply(cc, PQdb(c), strcmp(o->args[0], "install") == 0) : EXIT_RUNTIME;
    PQfinish(cc);
    PQfinish(c);
    return rc;
}
