/* outlog.h: workers' stdout/stderr -> lines prefixed with time and worker id ->
 * <log_dir>/<stage>.log, rotated by size; a write never blocks nor retries (a
 * line that cannot be written is dropped and counted). Also the last lines of
 * each worker, kept for alert messages. */
#ifndef PGWAKE_OUTLOG_H
#define PGWAKE_OUTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mustcheck.h"

/* One per stage: path, fd, size, limits, dropped-line counter (opaque). */
typedef struct OutLog OutLog;

OutLog *outlog_open(const char *dir, const char *stage, int64_t max_bytes, int backups,
                    char *err, size_t errlen) MUSTCHECK;
void outlog_set_limits(OutLog *o, int64_t max_bytes, int backups);
void outlog_write_line(OutLog *o, const char *worker_id, const char *line, size_t len);
uint64_t outlog_dropped(const OutLog *o);
const char *outlog_path(const OutLog *o);
bool outlog_reopen(OutLog *o) MUSTCHECK;
void outlog_close(OutLog *o);

#define TAIL_LINES 8      /* lines a TailRing keeps */
#define TAIL_LINE_MAX 200 /* bytes per kept line, NUL included */

/* The last TAIL_LINES lines (each cut to TAIL_LINE_MAX - 1 bytes on a UTF-8
 * character boundary), oldest overwritten first; zero-initialize. */
typedef struct TailRing {
    char lines[TAIL_LINES][TAIL_LINE_MAX]; /* NUL-terminated */
    int next;                              /* slot the next line goes to */
    int count;                             /* lines held, at most TAIL_LINES */
} TailRing;

void tail_push(TailRing *t, const char *line, size_t len);
const char *tail_get(const TailRing *t, int i);
size_t tail_join(const TailRing *t, const char *sep, char *out, size_t n);
void tail_clear(TailRing *t);

#define LINEBUF_SIZE 4096 /* a longer line is written in pieces of this size */

/* Assembles lines from one worker's pipe; zero-initialize. Give the child one
 * pipe for both stdout and stderr so its lines keep their order and one tail
 * holds them all. */
typedef struct LineBuf {
    char buf[LINEBUF_SIZE]; /* the current incomplete line */
    size_t len;             /* bytes of it in buf */
    TailRing tail;          /* every line (or piece) written, for alerts */
} LineBuf;

void outlog_feed(OutLog *o, LineBuf *lb, const char *worker_id, const char *data, size_t n);
void outlog_flush(OutLog *o, LineBuf *lb, const char *worker_id);

#endif
