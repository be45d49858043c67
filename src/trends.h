/* trends.h: the last hour of each stage, one slot a minute, in memory:
 * the most claimable tasks its recounts saw (capped at max_workers, as a
 * recount counts) and the most busy workers, spawns and crashes. Updated
 * only at the events that change them (a worker's state, a recount): no
 * timer, no query while idle; a minute with no event repeats the last one's
 * gauges. GET /trends adds the tasks done per minute from the database,
 * reading only the minutes not read yet, three at most per call (and the
 * last one again). */
#ifndef PGWAKE_TRENDS_H
#define PGWAKE_TRENDS_H

#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "mustcheck.h"

#define TRENDS_MINUTES 60

struct Stage;

void trends_note(const struct Stage *s);
/* $1, $2 = the first and last minute to read, $3 = now (epoch / 60; the
 * last two minutes are always read): stage, minute, done */
extern const char trends_done_sql[];
int64_t trends_now_minute(void);
void trends_done_range(int64_t *from, int64_t *upto);
void trends_take_done(PGresult *r, int64_t from, int64_t upto, int64_t now);
json_t *trends_json(struct Stage *const *stages, int n) MUSTCHECK;
void trends_reset(void);

#endif
