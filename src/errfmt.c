/* errfmt.c: one formatter for every module's error buffer. */
#include "errfmt.h"

#include <stdarg.h>
#include <stdio.h>

/* errf formats into err (nothing when err is NULL or n is 0) and returns
 * false, so a failing function can end with `return errf(...)`. */
bool errf(char *err, size_t n, const char *fmt, ...)
{
    if (!err || n == 0)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return false;
}
