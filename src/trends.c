/* trends.c: see trends.h. One ring per stage name (a stage removed by a
 * reload keeps its ring until the daemon ends; MAX_RINGS bounds them). */
#include "trends.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stage.h"
#include "worker.h"

#define MAX_RINGS 512

typedef struct Slot {
    int64_t minute;          /* epoch / 60; 0 = never written */
    int claimable, busy;     /* the most seen in the minute */
    uint64_t spawns0, crashes0; /* the stage's counters when the minute began */
    uint32_t spawns, crashes;
} Slot;

typedef struct Ring {
    char name[64];
    Slot slot[TRENDS_MINUTES];
    int64_t done_minute[TRENDS_MINUTES]; /* the minute done[] holds, 0 = unknown */
    uint32_t done[TRENDS_MINUTES];
} Ring;

static Ring *rings;
static int nrings;
static int64_t done_final; /* done counts of minutes before this one are read and final */

int64_t trends_now_minute(void)
{
    return (int64_t)time(NULL) / 60;
}

static Ring *ring_for(const char *name, bool create)
{
    for (int i = 0; i < nrings; i++)
        if (strcmp(rings[i].name, name) == 0)
            return &rings[i];
    if (!create || nrings >= MAX_RINGS)
        return NULL;
    Ring *r = realloc(rings, (size_t)(nrings + 1) * sizeof *r);
    if (!r)
        return NULL;
    rings = r;
    r = &rings[nrings++];
    memset(r, 0, sizeof *r);
    strncpy(r->name, name, sizeof r->name - 1);
    return r;
}

/* trends_note: call after anything that changes s's counts. */
void trends_note(const Stage *s)
{
    Ring *r = ring_for(s->name, true);
    if (!r)
        return;
    int64_t m = trends_now_minute();
    Slot *sl = &r->slot[m % TRENDS_MINUTES];
    if (sl->minute != m)
        *sl = (Slot){.minute = m, .spawns0 = s->st.spawns, .crashes0 = s->st.crashes};
    if (s->claimable > sl->claimable)
        sl->claimable = s->claimable;
    if (s->count[WK_BUSY] > sl->busy)
        sl->busy = s->count[WK_BUSY];
    sl->spawns = (uint32_t)(s->st.spawns - sl->spawns0);
    sl->crashes = (uint32_t)(s->st.crashes - sl->crashes0);
}

/* Rows for the stages of no ring (not served here) are read and dropped:
 * a stage's ring exists once /trends or an event named it. */
const char trends_done_sql[] =
    "SELECT t.stage, floor(extract(epoch FROM t.finished_at) / 60)::bigint AS m, count(*)"
    " FROM pgwake.tasks t WHERE t.status = 'done'"
    " AND (t.finished_at >= pg_catalog.to_timestamp($1::bigint * 60)"
    "      AND t.finished_at < pg_catalog.to_timestamp(($2::bigint + 1) * 60)"
    "      OR t.finished_at >= pg_catalog.to_timestamp(($3::bigint - 1) * 60))"
    " GROUP BY 1, 2";

/* trends_done_range: the minutes GET /trends reads done counts of: those
 * not read yet, at most READ_MINUTES at a time (a busy hour is read in a
 * few calls, never in one long query on the daemon's connection), and
 * always the last two (a commit may still land in the last one). */
#define READ_MINUTES 3
void trends_done_range(int64_t *from, int64_t *upto)
{
    int64_t now = trends_now_minute(), first = now - TRENDS_MINUTES + 1;
    *from = done_final > first ? done_final : first;
    *upto = *from + READ_MINUTES - 1 < now ? *from + READ_MINUTES - 1 : now;
}

static bool in_read(int64_t m, int64_t from, int64_t upto, int64_t now)
{
    return (m >= from && m <= upto) || (m >= now - 1 && m <= now);
}

/* trends_take_done keeps trends_done_sql's rows: the minutes from..upto,
 * and now - 1 and now (now: the minute the query was sent in). */
void trends_take_done(PGresult *r, int64_t from, int64_t upto, int64_t now)
{
    for (int i = 0; i < nrings; i++)
        for (int64_t m = now - TRENDS_MINUTES + 1; m <= now; m++)
            if (in_read(m, from, upto, now)) {
                rings[i].done_minute[m % TRENDS_MINUTES] = m;
                rings[i].done[m % TRENDS_MINUTES] = 0;
            }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t m = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        Ring *g = in_read(m, from, upto, now) ? ring_for(PQgetvalue(r, i, 0), false) : NULL;
        if (g)
            g->done[m % TRENDS_MINUTES] = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
    }
    done_final = upto < now - 1 ? upto + 1 : now - 1;
}

static json_t *done_series(const Ring *r, int64_t first)
{
    json_t *a = json_array();
    for (int64_t m = first; m < first + TRENDS_MINUTES; m++) {
        int k = (int)(m % TRENDS_MINUTES);
        json_array_append_new(a, r && r->done_minute[k] == m ? json_integer(r->done[k]) : json_null());
    }
    return a;
}

/* trends_json: {"first_minute", "minutes", "stages": [{"name", "claimable",
 * "busy", "spawns", "crashes", "done"}]}, each series oldest first; done is
 * null for a minute never read from the database. */
json_t *trends_json(Stage *const *stages, int n)
{
    int64_t now = trends_now_minute(), first = now - TRENDS_MINUTES + 1;
    json_t *out = json_array();
    for (int i = 0; i < n; i++) {
        if (stages[i]->removed)
            continue;
        Ring *r = ring_for(stages[i]->name, true);
        json_t *cl = json_array(), *busy = json_array(), *sp = json_array(), *cr = json_array();
        int last_cl = 0, last_busy = 0;
        for (int64_t m = first; m <= now; m++) {
            const Slot *sl = r ? &r->slot[m % TRENDS_MINUTES] : NULL;
            bool have = sl && sl->minute == m;
            if (have) {
                last_cl = sl->claimable;
                last_busy = sl->busy;
            }
            json_array_append_new(cl, json_integer(last_cl));
            json_array_append_new(busy, json_integer(last_busy));
            json_array_append_new(sp, json_integer(have ? sl->spawns : 0));
            json_array_append_new(cr, json_integer(have ? sl->crashes : 0));
        }
        json_array_append_new(out, json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "name", stages[i]->name,
                                             "claimable", cl, "busy", busy, "spawns", sp,
                                             "crashes", cr, "done",
                                             done_series(r, first)));
    }
    return json_pack("{s:I,s:i,s:o}", "first_minute", (json_int_t)first, "minutes", TRENDS_MINUTES,
                     "stages", out);
}

/* trends_reset frees every ring (at the daemon's end). */
void trends_reset(void)
{
    free(rings);
    rings = NULL;
    nrings = 0;
    done_final = 0;
}
