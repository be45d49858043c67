/*
 * log.c - log lines of the worker library. Each line goes to stderr in one
 * write(2), so lines from the heartbeat thread and the main thread never mix;
 * the daemon prefixes them with the time and the worker id.
 */
#include "libworker/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pgwake/worker.h"

static const char *const level_names[] = {
    [PGWAKE_LOG_ERROR] = "error",
    [PGWAKE_LOG_WARN] = "warning",
    [PGWAKE_LOG_INFO] = "info",
    [PGWAKE_LOG_DEBUG] = "debug",
};
_Static_assert(sizeof level_names / sizeof level_names[0] == PGWAKE_LOG_DEBUG + 1,
               "one name per log level");

/* pgwk_log writes "pgwake-worker: LEVEL: message\n"; keeps errno intact. */
void pgwk_log(const WkLog *lg, int level, const char *fmt, ...)
{
    char line[1024];
    int saved = errno;
    if (lg && level > lg->level)
        return;
    if (level < PGWAKE_LOG_ERROR || level > PGWAKE_LOG_DEBUG)
        level = PGWAKE_LOG_ERROR;

    int n = snprintf(line, sizeof line, "pgwake-worker: %s: ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still end the line */
    /* libpq messages end in "\n"; never print an empty line after them */
    while (len > 0 && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    ssize_t rc = write(STDERR_FILENO, line, len);
    (void)rc; /* nowhere to report a failing stderr */
    errno = saved;
}
