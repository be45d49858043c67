/* migrate.c: applies sql/NNNN_*.sql in order, once each, each in its own
 * transaction, under a session advisory lock so two migrations at once are safe. */
#include "migrate.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errfmt.h"

/* An arbitrary constant; shared with nothing else in pgwake. */
#define MIGRATE_LOCK_KEY "7040119001"

/* migrate_latest returns the newest version this binary knows. */
int migrate_latest(void)
{
    return pgwake_migration_count ? pgwake_migrations[pgwake_migration_count - 1].version : 0;
}

static bool exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        errf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* migrate_db_version returns the database's newest applied version (0 for a
 * database without schema pgwake), or -1 with err set. */
int migrate_db_version(PGconn *c, char *err, size_t errlen)
{
    /* Two steps: a query naming a missing table fails at parse time. */
    PGresult *r = PQexec(c, "SELECT pg_catalog.to_regclass('pgwake.schema_migrations') IS NOT NULL");
    int v = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        errf(err, errlen, "unable to read the schema version: %s", PQresultErrorMessage(r));
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        v = 0;
    } else {
        PQclear(r);
        r = PQexec(c, "SELECT COALESCE(max(version), 0) FROM pgwake.schema_migrations");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            v = atoi(PQgetvalue(r, 0, 0));
        else
            errf(err, errlen, "unable to read the schema version: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    return v;
}

static bool apply_one(PGconn *c, const Migration *m, char *err, size_t errlen)
{
    char e[ERR_LEN];
    if (!exec_ok(c, "BEGIN", e, sizeof e))
        return errf(err, errlen, "%s: %s", m->name, e);
    if (!exec_ok(c, m->sql, e, sizeof e)) {
        errf(err, errlen, "migration %s failed (rolled back): %s", m->name, e);
        exec_ok(c, "ROLLBACK", e, sizeof e);
        return false;
    }
    if (!exec_ok(c, "COMMIT", e, sizeof e))
        return errf(err, errlen, "migration %s failed at commit: %s", m->name, e);
    return true;
}

/* apply_privileges re-runs pgwake.apply_privileges() (when the schema has it)
 * after every migration run, so later migrations' functions are not public
 * either and a pgwake_worker role created since gets its grants; prints what
 * the operator must run when this role may not create it. */
static bool apply_privileges(PGconn *c, FILE *out, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, "SELECT pgwake.apply_privileges()"
                            " WHERE pg_catalog.to_regprocedure('pgwake.apply_privileges()') IS NOT NULL");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        errf(err, errlen, "unable to set the privileges of schema pgwake: %s", PQresultErrorMessage(r));
    else if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        fprintf(out, "%s\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok;
}

/* migrate_apply brings the database to the newest version, printing one line
 * per migration applied; refuses a database newer than this binary. */
bool migrate_apply(PGconn *c, FILE *out, char *err, size_t errlen)
{
    char e[ERR_LEN];
    if (!exec_ok(c, "SELECT pg_catalog.pg_advisory_lock(" MIGRATE_LOCK_KEY ")", e, sizeof e))
        return errf(err, errlen, "unable to take the migration lock: %s", e);
    bool ok = true;
    int have = migrate_db_version(c, err, errlen);
    if (have < 0)
        ok = false;
    else if (have > migrate_latest()) {
        errf(err, errlen, "the database's schema pgwake is at version %d, newer than this "
             "pgwake knows (%d); upgrade pgwake instead", have, migrate_latest());
        ok = false;
    }
    int applied = 0;
    for (int i = 0; ok && i < pgwake_migration_count; i++) {
        const Migration *m = &pgwake_migrations[i];
        if (m->version <= have)
            continue;
        ok = apply_one(c, m, err, errlen);
        if (ok) {
            fprintf(out, "applied %s\n", m->name);
            applied++;
        }
    }
    if (ok && applied == 0)
        fprintf(out, "schema pgwake is up to date (version %d)\n", have);
    if (ok)
        ok = apply_privileges(c, out, err, errlen);
    exec_ok(c, "SELECT pg_catalog.pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", e, sizeof e);
    return ok;
}

/* migrate_status prints each known migration as applied or pending. */
bool migrate_status(PGconn *c, FILE *out, char *err, size_t errlen)
{
    int have = migrate_db_version(c, err, errlen);
    if (have < 0)
        return false;
    for (int i = 0; i < pgwake_migration_count; i++)
        fprintf(out, "%-8s %s\n", pgwake_migrations[i].version <= have ? "applied" : "pending",
                pgwake_migrations[i].name);
    if (have > migrate_latest())
        fprintf(out, "the database is at version %d, newer than this pgwake (%d)\n", have,
                migrate_latest());
    return true;
}
