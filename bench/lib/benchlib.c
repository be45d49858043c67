/* benchlib.c: clocks, errors, percentiles and the RESULT line of the C
 * benchmarks (wake, health, polling). */
#include "benchlib.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* now_ns: wall-clock ns, comparable across processes (commit vs claim). */
int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* mono_ns: monotonic ns, for intervals and pacing within one process. */
int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* sleep_until_mono sleeps to an absolute CLOCK_MONOTONIC time (ns). */
void sleep_until_mono(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* die prints "program: message" and exits 1. */
void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* exec_ok runs a statement without parameters; dies when it fails. */
void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* pct: nearest-rank percentile of a sorted array of ns, in microseconds. */
double pct(const int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)v[k - 1] / 1000.0;
}

/* report prints one RESULT line (and a human one on stderr) for v, in ns and
 * unsorted (a sorted copy is used); with path, it also writes the samples in
 * ms, in their original order, for plots. */
void report(const char *bench, const char *extra, const int64_t *v0, size_t n, const char *path)
{
    if (path) {
        FILE *f = fopen(path, "w");
        if (!f)
            die("%s: %s", path, strerror(errno));
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%.3f\n", (double)v0[i] / 1e6);
        fclose(f);
    }
    int64_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        die("out of memory");
    memcpy(v, v0, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    printf("RESULT bench=%s n=%zu min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f "
           "mean_us=%.1f%s%s\n",
           bench, n, n ? (double)v[0] / 1000.0 : 0, pct(v, n, 0.50), pct(v, n, 0.90),
           pct(v, n, 0.99), n ? (double)v[n - 1] / 1000.0 : 0, n ? sum / (double)n / 1000.0 : 0,
           extra ? " " : "", extra ? extra : "");
    fflush(stdout);
    fprintf(stderr, "%-24s n=%-5zu p50 %9.3f ms  p90 %9.3f ms  p99 %9.3f ms  max %9.3f ms\n", bench,
            n, pct(v, n, 0.50) / 1000, pct(v, n, 0.90) / 1000, pct(v, n, 0.99) / 1000,
            n ? (double)v[n - 1] / 1e6 : 0);
    free(v);
}
