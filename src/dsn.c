/* dsn.c: which connection string is used, whether libpq can use it, and
 * keeping its password out of what pgwake prints. libpq's parse errors quote
 * the string's pieces ("invalid percent-encoded token: \"se%cret\""), so a
 * bad string is described in our own words, naming where it came from. */
#include "dsn.h"

#include <libpq-fe.h>
#include <string.h>

#include "errfmt.h"

static const char *const source_names[] = {
    [DSN_SRC_OPT] = "-d",
    [DSN_SRC_ENV] = "PGWAKE_DSN",
    [DSN_SRC_CONF] = "dsn in the configuration",
    [DSN_SRC_DATABASE_URL] = "DATABASE_URL",
    [DSN_SRC_POSTGRES_URL] = "POSTGRES_URL",
    [DSN_SRC_DEFAULT] = "libpq's defaults (PGHOST, PGDATABASE, ...)",
};
_Static_assert(sizeof source_names / sizeof source_names[0] == DSN_SRC__COUNT, "dsn sources");

const char *dsn_source_name(DsnSource src)
{
    return src >= 0 && src < DSN_SRC__COUNT ? source_names[src] : "?";
}

/* dsn_pick_source returns the connection string by SPEC section 6's order:
 * -d, PGWAKE_DSN, the config's dsn, DATABASE_URL, POSTGRES_URL, else ""
 * (libpq's own defaults), and in *src where it came from. */
const char *dsn_pick_source(const char *opt_d, const char *conf_dsn, GetenvFn env,
                            DsnSource *src)
{
    /* In order, and lazily: a variable after the winner is never read. */
    static const char *const vars[DSN_SRC_DEFAULT] = {
        [DSN_SRC_ENV] = "PGWAKE_DSN", [DSN_SRC_DATABASE_URL] = "DATABASE_URL",
        [DSN_SRC_POSTGRES_URL] = "POSTGRES_URL"};
    for (int i = 0; i < DSN_SRC_DEFAULT; i++) {
        const char *v = i == DSN_SRC_OPT ? opt_d : i == DSN_SRC_CONF ? conf_dsn : env(vars[i]);
        if (v && *v) {
            *src = (DsnSource)i;
            return v;
        }
    }
    *src = DSN_SRC_DEFAULT;
    return "";
}

const char *dsn_pick(const char *opt_d, const char *conf_dsn, GetenvFn env)
{
    DsnSource src;
    return dsn_pick_source(opt_d, conf_dsn, env, &src);
}

/* libpq's parse errors by their fixed opening words, told in ours. */
static const struct {
    const char *starts;
    const char *says;
} parse_errors[] = {
    {"missing \"=\"", "a word in it lacks \"=\" (key=value form; quote a value holding "
                      "spaces in single quotes)"},
    {"unterminated quoted string", "a quoted value in it is not closed"},
    {"invalid connection option", "it names a keyword libpq does not know"},
    {"invalid percent-encoded token", "a %-escape in it is not % and two hex digits "
                                      "(write a literal % as %25)"},
    {"forbidden value %00", "it holds the escape %00"},
    {"extra key/value separator", "a ?key=value parameter of the URI is malformed"},
    {"missing key/value separator", "a ?key=value parameter of the URI is malformed"},
    {"invalid URI query parameter", "a ?key=value parameter of the URI is unknown"},
    {"unexpected character", "the host:port part of the URI is malformed"},
    {"end of string reached", "an IPv6 host in [] is not closed"},
    {"IPv6 host address may not be empty", "an IPv6 host in [] is empty"},
    {"out of memory", "out of memory checking it"},
};

/* bad_values finds what parses but would make libpq or the server quote a
 * piece of a password later: an unescaped '@', '/' or ':' in a URI's
 * password moves its rest into the host or the port. */
static const char *bad_values(const PQconninfoOption *opts)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0 && strchr(o->val, '@'))
            return "its host holds \"@\" (in a URI, write \"@\", \":\" and \"/\" of the user "
                   "or password as %40, %3A and %2F)";
        if (strcmp(o->keyword, "port") == 0 && o->val[strspn(o->val, "0123456789,")])
            return "its port is not a number (in a URI, write \"@\", \":\" and \"/\" of the "
                   "user or password as %40, %3A and %2F)";
    }
    return NULL;
}

/* dsn_check: can libpq use dsn? false with why in plain words that never
 * quote the string ("" is libpq's defaults and always fine). */
bool dsn_check(const char *dsn, char *why, size_t n)
{
    char *msg = NULL;
    if (!dsn || !*dsn)
        return true;
    PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
    if (!opts) {
        const char *says = "libpq cannot parse it";
        for (size_t i = 0; msg && i < sizeof parse_errors / sizeof parse_errors[0]; i++)
            if (strncmp(msg, parse_errors[i].starts, strlen(parse_errors[i].starts)) == 0)
                says = parse_errors[i].says;
        PQfreemem(msg);
        return errf(why, n, "%s (its text is not shown: it may hold a password)", says);
    }
    const char *bad = bad_values(opts);
    PQconninfoFree(opts);
    return bad ? errf(why, n, "%s", bad) : true;
}

/* dsn_resolve picks the connection string and checks it; false with err
 * naming its source and what to fix. */
bool dsn_resolve(const char *opt_d, const char *conf_dsn, GetenvFn env, const char **out,
                 char *err, size_t n)
{
    DsnSource src;
    char why[300];
    *out = dsn_pick_source(opt_d, conf_dsn, env, &src);
    if (dsn_check(*out, why, sizeof why))
        return true;
    return errf(err, n, "the connection string from %s is not valid: %s; fix %s",
                dsn_source_name(src), why, dsn_source_name(src));
}

/* replace_all rewrites every occurrence of needle in msg (size n) as "****". */
static void replace_all(char *msg, size_t n, const char *needle)
{
    static const char mask[] = "****";
    size_t nl = strlen(needle), ml = sizeof mask - 1;
    char *p = msg;
    while (nl && (p = strstr(p, needle))) {
        size_t at = (size_t)(p - msg), tail = strlen(p + nl);
        if (at + ml + 1 > n) { /* no room for the mask: cut the message here */
            *p = '\0';
            return;
        }
        if (at + ml + tail + 1 > n)
            tail = n - at - ml - 1; /* cut the end rather than overflow */
        memmove(p + ml, p + nl, tail);
        p[ml + tail] = '\0';
        memcpy(p, mask, ml);
        p += ml;
    }
}

/* dsn_scrub masks dsn's password (and the string itself) wherever msg
 * quotes it: the last line of defence for messages libpq or the server
 * build from the connection's parameters. */
void dsn_scrub(const char *dsn, char *msg, size_t n)
{
    if (!dsn || !*dsn || !msg || n < 5)
        return;
    replace_all(msg, n, dsn);
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            replace_all(msg, n, o->val);
    PQconninfoFree(opts);
}
