/* conn_opts.c: connection parameters for the daemon's connections.
 *
 * A silent partition (packets dropped, no FIN, no RST) leaves a socket open
 * for the kernel's full retransmission timeout (~16 minutes) and an idle
 * LISTEN socket forever. Keepalives find a dead idle peer, tcp_user_timeout
 * one that stops acknowledging what we sent (and, on Linux, also bounds
 * keepalive probing): either way the socket fails within about 20 s. The
 * DSN's own values win.
 *
 * libpq tries a multi-host DSN in order and the loop bounds a whole attempt,
 * so a first host that swallows SYNs would be tried forever; rotating the
 * list after each failure reaches the others. */
#include "conn_opts.h"

#include <stdlib.h>
#include <string.h>

static const char *const defaults[][2] = {
    {"keepalives", "1"},
    {"keepalives_idle", "5"},      /* seconds idle before the first probe */
    {"keepalives_interval", "5"},  /* between probes */
    {"keepalives_count", "3"},
    {"tcp_user_timeout", "20000"}, /* ms: unacknowledged data, and keepalive probing */
    {"fallback_application_name", "pgwake"},
};

/* rotate returns list (comma-separated) starting at element first % n, or
 * NULL when list has one element or none. */
static char *rotate(const char *list, unsigned first)
{
    if (!list || !strchr(list, ','))
        return NULL;
    unsigned n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    first %= n;
    if (first == 0)
        return NULL;
    const char *cut = list;
    for (unsigned i = 0; i < first; i++)
        cut = strchr(cut, ',') + 1;
    size_t len = strlen(list);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t tail = len - (size_t)(cut - list);
    memcpy(out, cut, tail);
    out[tail] = ',';
    memcpy(out + tail + 1, list, (size_t)(cut - list) - 1);
    out[len] = '\0';
    return out;
}

static void add(ConnOpts *co, int *n, const char *key, const char *val)
{
    if (*n < CONN_OPTS_MAX) {
        co->keys[*n] = key;
        co->vals[*n] = val;
        (*n)++;
    }
}

/* conn_opts_build fills co for dsn, its host list starting at first_host. A
 * DSN libpq cannot parse is passed on whole, so libpq's own message about it
 * is what the operator sees. */
void conn_opts_build(ConnOpts *co, const char *dsn, unsigned first_host)
{
    memset(co, 0, sizeof *co);
    int n = 0;
    co->parsed = PQconninfoParse(dsn, NULL);
    if (!co->parsed) {
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            add(co, &n, defaults[i][0], defaults[i][1]);
        add(co, &n, "dbname", dsn); /* later keys override earlier ones */
        co->expand = 1;
        return;
    }
    static const char *const listed[] = {"host", "hostaddr", "port"};
    for (PQconninfoOption *o = co->parsed; o->keyword; o++) {
        if (!o->val)
            continue;
        const char *val = o->val;
        for (int i = 0; i < 3; i++)
            if (strcmp(o->keyword, listed[i]) == 0 && (co->rotated[i] = rotate(o->val, first_host)))
                val = co->rotated[i];
        add(co, &n, o->keyword, val);
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        bool set = false;
        for (PQconninfoOption *o = co->parsed; o->keyword; o++)
            set |= o->val && strcmp(o->keyword, defaults[i][0]) == 0;
        if (!set)
            add(co, &n, defaults[i][0], defaults[i][1]);
    }
}

void conn_opts_free(ConnOpts *co)
{
    PQconninfoFree(co->parsed);
    for (int i = 0; i < 3; i++)
        free(co->rotated[i]);
    memset(co, 0, sizeof *co);
}

/* conn_opts_must_reconnect: errors that mean this server cannot serve us any
 * more, though the socket may live on: it is read-only (a demoted primary, a
 * standby) or shutting down. The next attempt looks for the read-write one. */
bool conn_opts_must_reconnect(const char *sqlstate)
{
    return sqlstate && (strcmp(sqlstate, "25006") == 0 || strcmp(sqlstate, "57P01") == 0 ||
                        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0);
}
