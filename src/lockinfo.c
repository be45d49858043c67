/* lockinfo.c: words for the session holding one of pgwake's advisory locks,
 * from the columns of LOCK_HOLDER_SQL. */
#include "lockinfo.h"

#include <stdio.h>

static const char *or_hidden(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? "hidden" : PQgetvalue(res, row, col);
}

/* lockinfo_describe writes "pid N, role R, application_name "A", client C,
 * backend started T" from the five holder columns starting at col; false
 * (buf "unknown session") when there is no holder row or its pid is NULL. */
bool lockinfo_describe(const PGresult *res, int row, int col, char *buf, size_t n)
{
    if (!res || PQntuples(res) <= row || PQnfields(res) < col + 5 || PQgetisnull(res, row, col)) {
        snprintf(buf, n, "unknown session");
        return false;
    }
    /* A NULL client of a visible session is a Unix-socket connection. */
    const char *client = PQgetisnull(res, row, col + 3)
                             ? (PQgetisnull(res, row, col + 4) ? "hidden" : "local socket")
                             : PQgetvalue(res, row, col + 3);
    snprintf(buf, n, "pid %s, role %s, application_name \"%s\", client %s, backend started %s",
             PQgetvalue(res, row, col), or_hidden(res, row, col + 1),
             or_hidden(res, row, col + 2), client, or_hidden(res, row, col + 4));
    return true;
}
