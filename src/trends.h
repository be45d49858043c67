/* trends.h: the last hour of each stage, one slot a minute, in memory:
 * the most claimable tasks its recounts saw (capped at max_workers, as a
 * recount counts) and the most busy workers, spawns and crashes. Updated
 * only at the events that change them (a worker's state, a recount): no
 * timer, no query while idle; a minute with no event repeats the last one's
 * gauges. GET /trends adds the tasks done per minute from the database,
 * reading only the minutes not read yet (and the last one again). */
#ifndef PGWAKE_TRENDS_H
#define PGWAKE_TRENDS_H

#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#define TRENDS_MINUTES 60

struct Stage;

void trends_note(const struct Stage *s);
/* $1 = the first minute (epoch / 60): stage, minute, done */
extern const char trends_done_sql[];
int64_t trends_now_minute(void);
int64_t trends_done_from(void);
void trends_take_done(PGresult *r, int64_t from);
json_t *trends_json(struct Stage *const *stages, int n);
void trends_reset(void);

#endif
