/* log.c: one line per event on stderr, "YYYY-mm-dd HH:MM:SS.mmm LEVEL message".
 * Written with a single write(2) so lines from a busy loop never interleave. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

LogLevel log_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_FATAL] = "FATAL", [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARNING",
    [LOG_INFO] = "INFO",   [LOG_DEBUG] = "DEBUG", [LOG_NOISE] = "NOISE",
};
_Static_assert(sizeof level_names / sizeof level_names[0] == LOG_NOISE + 1, "level names");

static void log_vwrite(LogLevel level, const char *fmt, va_list ap)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    int saved = errno;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03d %s ", (int)(tv.tv_usec / 1000),
                          level_names[level]);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* nowhere left to report a failed log write */
    errno = saved;
}

/* log_msg writes one log line at the given level. */
void log_msg(LogLevel level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

/* log_fatal_at reports an impossible state with its source location and exits 1. */
void log_fatal_at(const char *file, int line, const char *func, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(LOG_FATAL, "%s:%d:%s: %s", file, line, func, msg);
    exit(1);
}

/* log_level_parse maps "error".."noise" to a level. */
bool log_level_parse(const char *name, LogLevel *out)
{
    static const char *const names[] = {"fatal", "error", "warning", "info", "debug", "noise"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0 || (i == LOG_WARN && strcasecmp(name, "warn") == 0)) {
            *out = (LogLevel)i;
            return true;
        }
    return false;
}

/* log_escape copies untrusted bytes (e.g. a NOTIFY payload) printable: control
 * and non-ASCII bytes become \xNN, and long input is cut with "...". */
void log_escape(const char *in, size_t inlen, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        char piece[5];
        size_t plen = 1;
        if (c >= 0x20 && c < 0x7f && c != '\\')
            piece[0] = (char)c;
        else
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", c);
        /* Room for this piece, and for "..." after it unless it is the last. */
        size_t need = plen + (i + 1 < inlen ? 3 : 0);
        if (o + need >= outlen) {
            size_t keep = outlen > 4 ? outlen - 4 : 0;
            if (o > keep)
                o = keep;
            memcpy(out + o, "...", outlen - 1 - o < 3 ? outlen - 1 - o : 3);
            o += outlen - 1 - o < 3 ? outlen - 1 - o : 3;
            out[o] = '\0';
            return;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = '\0';
}
