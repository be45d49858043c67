/* units.c: exact parsing of "250ms", "1.5s", "5m", "1h", "0.5" (seconds) and
 * "512K", "50M", "1G" (powers of 1024); integers only, so no float rounding. */
#include "units.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct Unit {
    const char *suffix; /* exact text after the number; "" = bare number */
    int64_t mult;       /* value of one unit in the result's unit */
} Unit;

static const Unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}, {NULL, 0},
};

static const Unit size_units[] = {
    {"K", 1024}, {"M", 1024 * 1024}, {"G", 1024 * 1024 * 1024}, {"", 1}, {NULL, 0},
};

/* At most this many fraction digits are kept (10^9 * the largest unit fits in
 * int64); further digits must be zeros. */
#define FRAC_SCALE_MAX 1000000000

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* parse_whole reads the digits at *p into *out, refusing overflow. */
static bool parse_whole(const char **p, int64_t *out)
{
    int64_t v = 0;
    if (!is_digit(**p))
        return false; /* also refuses "", "-1", "+1", " 1" and ".5" */
    for (; is_digit(**p); (*p)++) {
        int d = **p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* parse_fraction reads ".DIGITS" at *p (if any) as frac / scale. */
static bool parse_fraction(const char **p, int64_t *frac, int64_t *scale)
{
    *frac = 0;
    *scale = 1;
    if (**p != '.')
        return true;
    (*p)++;
    if (!is_digit(**p))
        return false;
    for (; is_digit(**p); (*p)++) {
        if (*scale < FRAC_SCALE_MAX) {
            *frac = *frac * 10 + (**p - '0');
            *scale *= 10;
        } else if (**p != '0') {
            return false;
        }
    }
    return true;
}

/* parse_scaled parses NUMBER[.FRACTION]SUFFIX; the result must be whole in the
 * smallest unit ("1.5ms" is refused rather than silently rounded). */
static bool parse_scaled(const char *s, const Unit *units, int64_t *out)
{
    int64_t whole, frac, scale;
    if (!s || !parse_whole(&s, &whole) || !parse_fraction(&s, &frac, &scale))
        return false;
    const Unit *u = units;
    while (u->suffix && strcmp(u->suffix, s) != 0)
        u++;
    if (!u->suffix || whole > INT64_MAX / u->mult)
        return false;
    int64_t part = frac * u->mult; /* < 10^9 * 2^30: no overflow */
    if (part % scale != 0)
        return false;
    part /= scale;
    if (whole * u->mult > INT64_MAX - part)
        return false;
    *out = whole * u->mult + part;
    return true;
}

/* units_parse_duration parses a duration into milliseconds; false for junk,
 * negatives, overflow or an empty string, because every timer of the daemon
 * is an exact millisecond count. */
bool units_parse_duration(const char *s, int64_t *ms_out)
{
    return parse_scaled(s, duration_units, ms_out);
}

/* units_parse_size parses a size with K, M or G (powers of 1024) into bytes;
 * false for junk, negatives, overflow or an empty string. */
bool units_parse_size(const char *s, int64_t *bytes_out)
{
    return parse_scaled(s, size_units, bytes_out);
}

/* units_format_duration renders ms in the largest unit that divides it
 * exactly ("5m", "90s", "1500ms", "0"); the text parses back to the same
 * value, because it is shown in messages the user may paste into the file. */
char *units_format_duration(int64_t ms, char *buf, size_t n)
{
    static const Unit order[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (ms == 0) {
        snprintf(buf, n, "0");
        return buf;
    }
    size_t i = 0;
    while (ms % order[i].mult != 0)
        i++;
    snprintf(buf, n, "%" PRId64 "%s", ms / order[i].mult, order[i].suffix);
    return buf;
}
