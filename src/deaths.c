/* deaths.c: see deaths.h. */
#include "deaths.h"

#include <stdlib.h>

const char deaths_sql[] =
    "SELECT w.id, w.stage, w.host, COALESCE(w.reason, ''),"
    " extract(epoch FROM pg_catalog.now() - w.ended_at)::int,"
    " pg_catalog.to_jsonb(w) ->> 'last_lines', w.pid"
    " FROM pgwake.workers w WHERE w.state = 'dead'"
    " AND w.ended_at > pg_catalog.now() - interval '1 hour'"
    " ORDER BY w.ended_at DESC, w.id LIMIT $1::int";

/* Best effort and never waiting: a session that holds the row (a worker's
 * claim or heartbeat in a transaction still open) makes it skip. */
const char deaths_record_sql[] =
    "UPDATE pgwake.workers w SET last_lines = $2 FROM (SELECT x.id FROM pgwake.workers x"
    " WHERE x.id = $1 FOR UPDATE SKIP LOCKED) l WHERE w.id = l.id";

json_t *deaths_json(PGresult *r)
{
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", PQgetvalue(r, i, 0), "stage",
                              PQgetvalue(r, i, 1), "host", PQgetvalue(r, i, 2), "reason",
                              PQgetvalue(r, i, 3), "ago_s",
                              (json_int_t)strtoll(PQgetvalue(r, i, 4), NULL, 10));
        json_object_set_new(o, "last_lines",
                            PQgetisnull(r, i, 5) ? json_null() : json_string(PQgetvalue(r, i, 5)));
        json_object_set_new(o, "pid", PQgetisnull(r, i, 6) ? json_null()
                                                           : json_integer(atoi(PQgetvalue(r, i, 6))));
        json_array_append_new(a, o);
    }
    return a;
}
