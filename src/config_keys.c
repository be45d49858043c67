/* config_keys.c: the schema of the configuration file, one key table per
 * section; typed setters (defaults run through them too), comparison for
 * reload, and the rendering of conf/pgwake.conf's keys. */
#include "config_keys.h"
#include "dsn.h"
#include "errfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "argv.h"
#include "units.h"

/* STR spells a number macro as text: http_listen's default is written once,
 * in config.h, where the CLI finds it too. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define HTTP_LISTEN_DEFAULT CFG_HTTP_HOST_DEFAULT ":" STR(CFG_HTTP_PORT_DEFAULT)

#define CK(f) offsetof(Config, f)
#define CA(f) offsetof(AlertConf, f)
#define CS(f) offsetof(StageConf, f)

static bool valid_smtp_url(const char *v, char *why, size_t n);
static bool valid_webhook_url(const char *v, char *why, size_t n);

/* The rows of each table are in the order conf/pgwake.conf documents them;
 * the doc strings become its comments (keep rendered lines under 199 bytes). */
static const KeyDef pgwake_keys[] = {
    {"dsn", KT_DSN, CK(dsn), NULL, 0, NULL,
     "after -d and PGWAKE_DSN; before DATABASE_URL, POSTGRES_URL, libpq's PG* variables"},
    {"worker_dsn", KT_DSN, CK(worker_dsn), NULL, KF_RESTART, NULL,
     "what workers get as PGWAKE_DSN (least privilege); default: dsn"},
    {"host", KT_HOST, CK(host), "", KF_NO_RELOAD, NULL,
     "this daemon's name in pgwake.workers; default: the hostname"},
    {"log_dir", KT_PATH, CK(log_dir), "logs", 0, NULL,
     "workers' output goes to <log_dir>/<stage>.log"},
    {"log_max_bytes", KT_SIZE, CK(log_max_bytes), "50M", KF_POSITIVE, NULL,
     "a stage's log is rotated at this size"},
    {"log_backups", KT_INT, CK(log_backups), "10", 0, NULL, "rotated logs kept per stage"},
    {"http_listen", KT_LISTEN, CK(http_listen), HTTP_LISTEN_DEFAULT, KF_NO_RELOAD, NULL,
     "/healthz, /status, /metrics and the control calls"},
    {"control_token", KT_STR, CK(control_token), NULL, KF_SECRET, NULL,
     "when set, control calls must carry it (X-Pgwake-Token)"},
    {"env_file", KT_PATH, CK(env_file), NULL, 0, NULL,
     "KEY=VALUE lines passed to workers, e.g. .env.local"},
    {"lock_file", KT_PATH, CK(lock_file), NULL, KF_NO_RELOAD, NULL,
     "default: in $RUNTIME_DIRECTORY or /tmp, named from this file"},
    {"recount_interval", KT_DURATION, CK(recount_interval_ms), "5m", 0, NULL,
     "safety recount; 0 = never"},
    {"maintenance_poll", KT_DURATION, CK(maintenance_poll_ms), "5s", KF_POSITIVE, NULL,
     "how often a daemon without maintenance tries to take it"},
};

static const KeyDef alerts_keys[] = {
    {"email_to", KT_STR, CA(email_to), NULL, 0, NULL,
     "also from HEARTBEAT_MONITOR_ALERT_EMAIL"},
    {"smtp_url", KT_STR, CA(smtp_url), NULL, 0, valid_smtp_url,
     "smtp://HOST:587 (STARTTLS) or smtps://HOST:465; also from SMTP_HOST/SMTP_PORT"},
    {"smtp_user", KT_STR, CA(smtp_user), NULL, 0, NULL,
     "also from SMTP_USER; with a user, TLS is required"},
    {"smtp_password", KT_STR, CA(smtp_password), NULL, KF_SECRET, NULL,
     "also from SMTP_PASSWORD; this file must then not be world-readable"},
    {"email_from", KT_STR, CA(email_from), NULL, 0, NULL, "also from EMAIL_FROM"},
    {"webhook_url", KT_STR, CA(webhook_url), NULL, 0, valid_webhook_url,
     "receives a JSON POST (Slack-compatible \"text\" plus fields)"},
    {"min_interval", KT_DURATION, CA(min_interval_ms), "5m", 0, NULL, "per kind of alert"},
    {"batch_window", KT_DURATION, CA(batch_window_ms), "5s", 0, NULL,
     "dead workers found within it share one message"},
    {"db_down_alert", KT_DURATION, CA(db_down_alert_ms), "30s", 0, NULL,
     "alert when the database has been unreachable this long"},
};

static const KeyDef stage_keys[] = {
    {"command", KT_COMMAND, CS(command), NULL, KF_RESTART, NULL,
     "required; split by shell quoting rules, run without a shell"},
    {"min_workers", KT_INT, CS(min_workers), "0", 0, NULL, "kept running even without work"},
    {"max_workers", KT_INT, CS(max_workers), "1", KF_POSITIVE, NULL, "on this daemon"},
    {"max_workers_total", KT_INT, CS(max_workers_total), "0", 0, NULL,
     "cap across every daemon sharing the database; 0 = none"},
    {"idle_timeout", KT_DURATION, CS(idle_timeout_ms), "60s", 0, NULL,
     "an idle worker is stopped after this (scale to zero)"},
    {"lease", KT_DURATION, CS(lease_ms), "5m", KF_RESTART | KF_POSITIVE, NULL,
     "a claimed task's lease, extended by heartbeats"},
    {"heartbeat_interval", KT_DURATION, CS(heartbeat_interval_ms), "30s",
     KF_RESTART | KF_POSITIVE, NULL, "must be < heartbeat_timeout <= lease"},
    {"heartbeat_timeout", KT_DURATION, CS(heartbeat_timeout_ms), "90s", KF_POSITIVE, NULL,
     "a worker silent this long is declared dead"},
    {"restart_delay", KT_DURATION, CS(restart_delay_ms), "1s", 0, NULL,
     "first backoff, doubling to restart_delay_max"},
    {"restart_delay_max", KT_DURATION, CS(restart_delay_max_ms), "60s", 0, NULL,
     "longest backoff"},
    {"max_restarts", KT_INT, CS(max_restarts), "5", 0, NULL,
     "crashes within restart_window that make the stage FATAL; 0 = never"},
    {"restart_window", KT_DURATION, CS(restart_window_ms), "5m", 0, NULL,
     "also: a worker alive this long resets the backoff"},
    {"stop_timeout", KT_DURATION, CS(stop_timeout_ms), "30s", 0, NULL,
     "after S, before SIGTERM"},
    {"kill_timeout", KT_DURATION, CS(kill_timeout_ms), "5s", 0, NULL,
     "after SIGTERM, before SIGKILL"},
    {"memory_limit", KT_SIZE, CS(memory_limit), "0", 0, NULL,
     "a worker above this RSS is replaced; 0 = none"},
    {"task_timeout", KT_DURATION, CS(task_timeout_ms), "0", 0, NULL,
     "a task leased this long is cut off, heartbeats or not (attempt counted); 0 = none"},
    {"user", KT_STR, CS(user), NULL, KF_RESTART, NULL,
     "run workers as this user (the daemon must be root)"},
    {"directory", KT_PATH, CS(directory), NULL, KF_RESTART, NULL,
     "workers' working directory"},
    {"environment", KT_ENV, CS(environment), NULL, KF_RESTART, NULL,
     "A=1, B=\"x, y\": double quotes keep commas"},
    {"pending_sql", KT_STR, CS(pending_sql), NULL, 0, NULL,
     "counts work in your own tables instead of pgwake.tasks"},
    {"release_sql", KT_STR, CS(release_sql), NULL, 0, NULL,
     "with pending_sql: frees an ended worker's leases in your tables; $1 = its id"},
    {"claim_batch", KT_INT, CS(claim_batch), "1", KF_RESTART | KF_POSITIVE, NULL,
     "tasks a worker claims per round trip and completes together (PGWAKE_CLAIM_BATCH)"},
};

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(NKEYS(pgwake_keys) <= KEYS_MAX, "raise KEYS_MAX");
_Static_assert(NKEYS(alerts_keys) <= KEYS_MAX, "raise KEYS_MAX");
_Static_assert(NKEYS(stage_keys) <= KEYS_MAX, "raise KEYS_MAX");

const KeyTable cfg_pgwake_keys = {"pgwake", pgwake_keys, NKEYS(pgwake_keys)};
const KeyTable cfg_alerts_keys = {"alerts", alerts_keys, NKEYS(alerts_keys)};
const KeyTable cfg_stage_keys = {"stage:NAME", stage_keys, NKEYS(stage_keys)};

#define FIELD(k, base, T) ((T *)(void *)((char *)(base) + (k)->offset))
#define CFIELD(k, base, T) ((const T *)(const void *)((const char *)(base) + (k)->offset))

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* SetArgs is what a type's setter gets: the key, the struct, the value. */
typedef struct SetArgs {
    const KeyDef *k;
    void *base;      /* the section's struct */
    const char *v;   /* the value, continuations joined */
    const char *dir; /* the config folder, for relative paths */
    char *why;       /* the problem, on failure */
    size_t n;        /* size of why */
} SetArgs;

typedef char **StrVec; /* for CFIELD: a const pointer to a char ** field */

/* replace_str stores s (owned) in the field, freeing what was there. */
static bool replace_str(const SetArgs *a, char *s)
{
    if (!s)
        return errf(a->why, a->n, "out of memory");
    free(*FIELD(a->k, a->base, char *));
    *FIELD(a->k, a->base, char *) = s;
    return true;
}

/* set_text stores a copy of v, or NULL for an empty value (the key is then unset). */
static bool set_text(const SetArgs *a, const char *v)
{
    if (!*v) {
        free(*FIELD(a->k, a->base, char *));
        *FIELD(a->k, a->base, char *) = NULL;
        return true;
    }
    return replace_str(a, strdup(v));
}

static bool set_str(const SetArgs *a)
{
    return set_text(a, a->v);
}

/* set_path resolves a relative path against the config folder, because the
 * daemon's working directory is nobody's business (SPEC section 6). */
static bool set_path(const SetArgs *a)
{
    char *s;
    if (!*a->v || a->v[0] == '/')
        return set_text(a, a->v);
    if (asprintf(&s, "%s/%s", a->dir, a->v) < 0)
        s = NULL;
    return replace_str(a, s);
}

/* set_dsn lets libpq check the syntax, so a typo fails at load, not at
 * connect; the reason is ours, as libpq's quotes the string (dsn.c). */
static bool set_dsn(const SetArgs *a)
{
    return dsn_check(a->v, a->why, a->n) && set_text(a, a->v);
}

/* set_host defaults to gethostname(), so one daemon per machine needs no setting. */
static bool set_host(const SetArgs *a)
{
    char name[HOST_NAME_MAX + 1] = "";
    if (*a->v)
        return set_text(a, a->v);
    if (gethostname(name, sizeof name - 1) != 0 || !name[0])
        return errf(a->why, a->n, "unable to get the hostname (set host)");
    return set_text(a, name);
}

/* set_listen accepts HOST:PORT (HOST may be [v6]) and splits it into
 * http_host and http_port here, once, for the server, the CLI and check;
 * evhttp resolves HOST. A KT_LISTEN key lives in a Config. */
static bool set_listen(const SetArgs *a)
{
    Config *c = a->base;
    const char *v = a->v, *colon = strrchr(v, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    bool ok = colon && colon > v && colon[1] >= '0' && colon[1] <= '9' && !*end && port >= 1 &&
              port <= 65535 && (v[0] != '[' || colon[-1] == ']');
    if (!ok)
        return errf(a->why, a->n, "\"%s\" is not HOST:PORT (e.g. " HTTP_LISTEN_DEFAULT ")", v);
    bool v6 = v[0] == '[';
    char *host = strndup(v + v6, (size_t)(colon - v) - 2 * v6);
    if (!host || !set_text(a, v)) {
        free(host);
        return errf(a->why, a->n, "out of memory");
    }
    free(c->http_host);
    c->http_host = host;
    c->http_port = (unsigned short)port;
    return true;
}

/* check_number words the failure of a number that would not parse, and
 * refuses 0 for a KF_POSITIVE key. */
static bool check_number(const SetArgs *a, bool parsed, int64_t value, const char *what)
{
    if (!parsed && !*a->v)
        return errf(a->why, a->n, "a value is required (%s)", what);
    if (!parsed && a->v[0] == '-')
        return errf(a->why, a->n, "\"%s\" is negative (must be 0 or more)", a->v);
    if (!parsed)
        return errf(a->why, a->n, "\"%s\" is not %s", a->v, what);
    if ((a->k->flags & KF_POSITIVE) && value <= 0)
        return errf(a->why, a->n, "must be more than 0");
    return true;
}

/* parse_int accepts plain decimal digits only, up to INT_MAX. */
static bool parse_int(const char *v, int64_t *out)
{
    char *end;
    if (v[0] < '0' || v[0] > '9')
        return false;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x > INT_MAX)
        return false;
    *out = x;
    return true;
}

/* set_int, set_duration, set_size: the numeric types, all >= 0 by grammar. */
static bool set_int(const SetArgs *a)
{
    int64_t value = 0;
    bool ok = parse_int(a->v, &value);
    if (!check_number(a, ok, value, "a whole number up to 2147483647"))
        return false;
    *FIELD(a->k, a->base, int) = (int)value;
    return true;
}

static bool set_duration(const SetArgs *a)
{
    int64_t ms = 0;
    bool ok = units_parse_duration(a->v, &ms);
    if (!check_number(a, ok, ms,
                      "a duration (a number with ms, s, m or h, e.g. 90s or 1.5m; "
                      "a bare number is seconds)"))
        return false;
    *FIELD(a->k, a->base, int64_t) = ms;
    return true;
}

static bool set_size(const SetArgs *a)
{
    int64_t bytes = 0;
    bool ok = units_parse_size(a->v, &bytes);
    if (!check_number(a, ok, bytes,
                      "a size (a number with K, M or G, powers of 1024; a bare number is bytes)"))
        return false;
    *FIELD(a->k, a->base, int64_t) = bytes;
    return true;
}

/* set_command keeps the text (for reload diffs and messages) and its argv;
 * a KT_COMMAND key lives in a StageConf. */
static bool set_command(const SetArgs *a)
{
    StageConf *st = a->base;
    char **argv = argv_split(a->v, a->why, a->n);
    if (!argv)
        return false;
    if (!set_text(a, a->v)) {
        argv_free(argv);
        return false;
    }
    argv_free(st->argv);
    st->argv = argv;
    return true;
}

/* set_env splits the `environment` list once, so spawning only copies it. */
static bool set_env(const SetArgs *a)
{
    char **vars;
    if (!env_list_split(a->v, &vars, a->why, a->n))
        return false;
    argv_free(*FIELD(a->k, a->base, char **));
    *FIELD(a->k, a->base, char **) = vars;
    return true;
}

/* vec_eq compares two NULL-terminated vectors; NULL equals an empty one. */
static bool vec_eq(char *const *a, char *const *b)
{
    for (; a && b && *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return (!a || !*a) && (!b || !*b);
}

/* The comparers of reload diffs, one per field shape. */
static bool eq_str(const KeyDef *k, const void *a, const void *b)
{
    return str_eq(*CFIELD(k, a, char *), *CFIELD(k, b, char *));
}

static bool eq_int(const KeyDef *k, const void *a, const void *b)
{
    return *CFIELD(k, a, int) == *CFIELD(k, b, int);
}

static bool eq_int64(const KeyDef *k, const void *a, const void *b)
{
    return *CFIELD(k, a, int64_t) == *CFIELD(k, b, int64_t);
}

static bool eq_vec(const KeyDef *k, const void *a, const void *b)
{
    return vec_eq(*CFIELD(k, a, StrVec), *CFIELD(k, b, StrVec));
}

/* The destructors of the owning types; each leaves its field NULL. */
static void free_str(const KeyDef *k, void *base)
{
    free(*FIELD(k, base, char *));
    *FIELD(k, base, char *) = NULL;
}

static void free_command(const KeyDef *k, void *base)
{
    StageConf *st = base;
    free_str(k, base);
    argv_free(st->argv);
    st->argv = NULL;
}

static void free_listen(const KeyDef *k, void *base)
{
    Config *c = base;
    free_str(k, base);
    free(c->http_host);
    c->http_host = NULL;
}

static void free_vec(const KeyDef *k, void *base)
{
    argv_free(*FIELD(k, base, char **));
    *FIELD(k, base, char **) = NULL;
}

/* TypeOps: what each KeyType does; indexed by KeyType. */
typedef struct TypeOps {
    bool (*set)(const SetArgs *a);
    bool (*equal)(const KeyDef *k, const void *a, const void *b);
    void (*free)(const KeyDef *k, void *base); /* NULL: nothing to free */
} TypeOps;

static const TypeOps type_ops[KT__COUNT] = {
    [KT_STR] = {set_str, eq_str, free_str},
    [KT_PATH] = {set_path, eq_str, free_str},
    [KT_DSN] = {set_dsn, eq_str, free_str},
    [KT_HOST] = {set_host, eq_str, free_str},
    [KT_LISTEN] = {set_listen, eq_str, free_listen},
    [KT_INT] = {set_int, eq_int, NULL},
    [KT_DURATION] = {set_duration, eq_int64, NULL},
    [KT_SIZE] = {set_size, eq_int64, NULL},
    [KT_COMMAND] = {set_command, eq_str, free_command},
    [KT_ENV] = {set_env, eq_vec, free_vec},
};
_Static_assert(NKEYS(type_ops) == KT__COUNT, "one TypeOps per KeyType");

/* key_find returns the row for name in t (and its index), or NULL. */
const KeyDef *key_find(const KeyTable *t, const char *name, size_t *idx)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->keys[i].name, name) == 0) {
            if (idx)
                *idx = i;
            return &t->keys[i];
        }
    }
    return NULL;
}

/* key_set parses value into k's field of base (the section's struct); false
 * with why, because file values, defaults and environment values all take
 * this one path and so are checked the same way. */
bool key_set(const KeyDef *k, void *base, const char *value, const char *dir, char *why,
             size_t n)
{
    SetArgs a = {k, base, value, dir, why, n};
    if (!type_ops[k->type].set(&a))
        return false;
    return !k->validate || !*value || k->validate(value, why, n);
}

/* dsn_has_password asks libpq, so URIs and key=value strings both count. */
static bool dsn_has_password(const char *dsn)
{
    PQconninfoOption *opts = dsn ? PQconninfoParse(dsn, NULL) : NULL;
    bool found = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            found = true;
    PQconninfoFree(opts);
    return found;
}

/* key_is_secret tells whether k's value in base is a secret: a KF_SECRET key
 * that is set, a dsn with a password, a URL with a password, or an
 * environment list with a secret-looking variable; because a world-readable
 * file holding one is refused. */
bool key_is_secret(const KeyDef *k, const void *base)
{
    size_t len;
    if (k->type == KT_ENV)
        return env_secret_name(*CFIELD(k, base, StrVec), &len) != NULL;
    if (k->type == KT_INT || k->type == KT_DURATION || k->type == KT_SIZE)
        return false;
    const char *s = *CFIELD(k, base, char *);
    if (!s || !*s)
        return false;
    if (k->flags & KF_SECRET)
        return true;
    return k->type == KT_DSN ? dsn_has_password(s) : url_has_password(s);
}

/* key_number reads a KT_INT, KT_DURATION or KT_SIZE field as an int64. */
int64_t key_number(const KeyDef *k, const void *base)
{
    return k->type == KT_INT ? *CFIELD(k, base, int) : *CFIELD(k, base, int64_t);
}

/* key_number_text renders a value of k's type the way the file writes it. */
char *key_number_text(const KeyDef *k, int64_t v, char *buf, size_t n)
{
    if (k->type == KT_DURATION)
        return units_format_duration(v, buf, n);
    snprintf(buf, n, "%" PRId64, v);
    return buf;
}

/* keys_defaults runs every default of t through its setter; false with why
 * only for a broken table (the unit tests load defaults). */
bool keys_defaults(const KeyTable *t, void *base, const char *dir, char *why, size_t n)
{
    for (size_t i = 0; i < t->n; i++) {
        const KeyDef *k = &t->keys[i];
        char inner[ERR_LEN];
        if (k->def && !key_set(k, base, k->def, dir, inner, sizeof inner))
            return errf(why, n, "default of %s: %s", k->name, inner);
    }
    return true;
}

/* keys_free releases every field of t in base (not base itself). */
void keys_free(const KeyTable *t, void *base)
{
    for (size_t i = 0; i < t->n; i++)
        if (type_ops[t->keys[i].type].free)
            type_ops[t->keys[i].type].free(&t->keys[i], base);
}

/* keys_diff compares every key of t: KF_NO_RELOAD keys give NEEDS_RESTART,
 * KF_RESTART keys give restart_bit, the others CFG_DIFF_LIVE. */
static unsigned keys_diff(const KeyTable *t, const void *a, const void *b, unsigned restart_bit)
{
    unsigned bits = 0;
    for (size_t i = 0; i < t->n; i++) {
        const KeyDef *k = &t->keys[i];
        if (type_ops[k->type].equal(k, a, b))
            continue;
        if (k->flags & KF_NO_RELOAD)
            bits |= CFG_DIFF_NEEDS_RESTART;
        else if (k->flags & KF_RESTART)
            bits |= restart_bit;
        else
            bits |= CFG_DIFF_LIVE;
    }
    return bits;
}

/* cfg_stage_diff says what a reload must do for a stage present in both
 * configs: CFG_DIFF_RESTART when command, user, directory, environment, lease
 * or heartbeat_interval changed (the workers were started with them),
 * CFG_DIFF_LIVE for any other key; 0 when nothing changed. */
unsigned cfg_stage_diff(const StageConf *old, const StageConf *new_)
{
    return keys_diff(&cfg_stage_keys, old, new_, CFG_DIFF_RESTART);
}

/* cfg_global_diff compares [pgwake] and [alerts]: CFG_DIFF_NEEDS_RESTART for
 * host, http_listen, lock_file; CFG_DIFF_RESTART_ALL when what workers get
 * changed (worker_dsn, dsn while worker_dsn is unset, env_file contents);
 * CFG_DIFF_LIVE for the rest. Stages are compared with cfg_stage_diff. */
unsigned cfg_global_diff(const Config *old, const Config *new_)
{
    unsigned bits = keys_diff(&cfg_pgwake_keys, old, new_, CFG_DIFF_RESTART_ALL);
    bits |= keys_diff(&cfg_alerts_keys, &old->alerts, &new_->alerts, CFG_DIFF_RESTART_ALL);
    if (!new_->worker_dsn && !str_eq(old->dsn, new_->dsn))
        bits |= CFG_DIFF_RESTART_ALL;
    if (!vec_eq(old->env_file_vars, new_->env_file_vars))
        bits |= CFG_DIFF_RESTART_ALL;
    return bits;
}

/* has_scheme tells whether v starts with one of schemes and a host after it. */
static bool has_scheme(const char *v, const char *const *schemes)
{
    for (; *schemes; schemes++) {
        size_t len = strlen(*schemes);
        if (strncasecmp(v, *schemes, len) == 0 && v[len] && v[len] != '/')
            return true;
    }
    return false;
}

/* valid_smtp_url: libcurl takes smtp:// (STARTTLS) and smtps:// (implicit TLS). */
static bool valid_smtp_url(const char *v, char *why, size_t n)
{
    static const char *const schemes[] = {"smtp://", "smtps://", NULL};
    char shown[300];
    return has_scheme(v, schemes) ||
           errf(why, n, "\"%s\" is not smtp://HOST[:PORT] or smtps://HOST[:PORT]",
                url_redact(v, shown, sizeof shown));
}

static bool valid_webhook_url(const char *v, char *why, size_t n)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    char shown[300];
    return has_scheme(v, schemes) ||
           errf(why, n, "\"%s\" is not an http(s):// URL", url_redact(v, shown, sizeof shown));
}

/* render_key prints "; name = value" with its doc aligned in one column. */
static void render_key(FILE *out, const char *name, const char *value, const char *doc)
{
    int w = fprintf(out, "; %s = %s", name, value);
    fprintf(out, "%*s; %s\n", w < 39 ? 40 - w : 1, "", doc);
}

static void render_table(FILE *out, const char *header, const KeyTable *t)
{
    fprintf(out, "\n%s\n", header);
    for (size_t i = 0; i < t->n; i++)
        render_key(out, t->keys[i].name, t->keys[i].def ? t->keys[i].def : "", t->keys[i].doc);
}

/* cfg_render_example prints every key of every section with its default,
 * commented out, straight from the key tables; because conf/pgwake.conf must
 * document every key and a unit test compares it with this output. */
void cfg_render_example(FILE *out)
{
    fputs("; pgwake configuration: every key with its default, commented out.\n"
          "; Durations take ms, s, m or h (a bare number is seconds); sizes take K, M or G\n"
          "; (powers of 1024). Relative paths are relative to this file's folder.\n"
          "; A long value continues on following lines that start with white space.\n"
          "; \" ;\" starts a comment anywhere on a line: a value cannot contain \" ;\".\n",
          out);
    render_table(out, "[pgwake]", &cfg_pgwake_keys);
    render_table(out, "[alerts]", &cfg_alerts_keys);
    render_table(out, "; [stage:NAME]     ; NAME matches ^[a-z0-9_][a-z0-9_.-]{0,62}$",
                 &cfg_stage_keys);
}
