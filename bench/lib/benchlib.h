/* benchlib.h: what the C benchmarks share: clocks, dying with a message,
 * percentiles and the RESULT line the bench scripts parse. Times are printed, never
 * asserted. */
#ifndef PGWAKE_BENCHLIB_H
#define PGWAKE_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

int64_t now_ns(void);
int64_t mono_ns(void);
void sleep_until_mono(int64_t t);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void exec_ok(PGconn *c, const char *sql);
double pct(const int64_t *sorted, size_t n, double q);
void report(const char *bench, const char *extra, const int64_t *v, size_t n, const char *path);

#endif
