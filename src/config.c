/* config.c: loads the INI file of SPEC section 7 into a new Config. libinih
 * tokenizes each KEY = VALUE line, but is fed by our own reader, which counts
 * physical lines, refuses long ones, joins continuations, and tracks sections
 * and duplicates: things inih 55 (Debian 12) gets wrong or hides. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "config_keys.h"
#include "errfmt.h"

#define DEFAULT_CONF "/etc/pgwake/pgwake.conf"

/* inih 55 reads with fgets into 200 bytes: a line of 199 bytes or more
 * (newline not counted) is cut and its rest read as a new line. */
#define LINE_MAX_BYTES 198

#define HB_RULE "; the rule is heartbeat_interval < heartbeat_timeout <= lease"

/* Parse is the state shared by the reader and the handler during one load. */
typedef struct Parse {
    Config *cfg;                  /* being built; freed on failure */
    StageConf **tail;             /* where the next stage is linked */
    const char *file;             /* the path as given, for messages */
    char *err;                    /* the caller's buffer; err[0] != 0 once failed */
    size_t errlen;                /* its size, at least 1 */
    FILE *fp;
    int lineno;                   /* physical lines read so far */
    char *cur, *ahead;            /* the line being handled, the one read after it */
    size_t cur_cap, ahead_cap;    /* their getline buffer sizes */
    int cur_line, ahead_line;     /* their physical line numbers */
    bool has_ahead;               /* ahead holds a line not yet handled */
    char *cont;                   /* continuation text of the key handed to inih */
    size_t cont_len, cont_cap;
    int key_line;                 /* physical line of that key */
    const KeyTable *table;        /* current section's keys; NULL outside sections */
    void *base;                   /* the struct they fill */
    StageConf *stage;             /* current stage, NULL in [pgwake] or [alerts] */
    int *seen;                    /* line where each key of table was set, 0 = not set */
    char sect[LINE_MAX_BYTES + 1];/* current section's name, "" outside sections */
    int seen_pgwake[KEYS_MAX], seen_alerts[KEYS_MAX], seen_stage[KEYS_MAX];
    int pgwake_line, alerts_line; /* header lines of the single sections, 0 = none yet */
    char secret[LINE_MAX_BYTES + 8]; /* "[section] key" of the first secret in the file */
} Parse;

/* fail records "FILE[:LINE]: [[SECTION] ][KEY: ]message" unless an error is
 * already there (the first one wins); returns false for tail calls. */
__attribute__((format(printf, 5, 6)))
static bool fail(Parse *p, int line, const char *sect, const char *key, const char *fmt, ...)
{
    char at[16] = "";
    va_list ap;
    if (p->err[0])
        return false;
    if (line > 0)
        snprintf(at, sizeof at, ":%d", line);
    int len = snprintf(p->err, p->errlen, "%s%s: %s%s%s%s%s", p->file, at, sect && *sect ? "[" : "",
                       sect && *sect ? sect : "", sect && *sect ? "] " : "", key ? key : "",
                       key ? ": " : "");
    if (len >= 0 && (size_t)len < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + len, p->errlen - (size_t)len, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *skip_ws(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* is_skippable: a blank line, or a comment (inih's ";" and "#", indented or not). */
static bool is_skippable(const char *s)
{
    s = skip_ws(s);
    return !*s || *s == ';' || *s == '#';
}

/* value_len is the length of s up to an inline comment (";" after white
 * space, inih's rule) without trailing white space. */
static size_t value_len(const char *s)
{
    size_t end = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
            break;
        if (!isspace((unsigned char)s[i]))
            end = i + 1;
    }
    return end;
}

/* has_separator mirrors inih: a key line needs "=" or ":" after a non-empty
 * name and before any inline comment. Checked here so that the error names
 * the right line (inih goes on parsing after one). */
static bool has_separator(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '=' || s[i] == ':')
            return i > 0;
        if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
            return false;
    }
    return false;
}

/* read_physical reads the next physical line into *buf without its line end;
 * false at end of file, or with p->err set on a read error, a NUL byte or
 * a line too long for inih. */
static bool read_physical(Parse *p, char **buf, size_t *cap, int *line)
{
    ssize_t n = getline(buf, cap, p->fp);
    if (n < 0)
        return ferror(p->fp) ? fail(p, 0, NULL, NULL, "unable to read: %s", strerror(errno))
                             : false;
    *line = ++p->lineno;
    char *s = *buf;
    if (n > 0 && s[n - 1] == '\n')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '\r')
        s[--n] = '\0';
    if (*line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        n -= 3; /* a UTF-8 byte order mark */
        memmove(s, s + 3, (size_t)n + 1);
    }
    if (strlen(s) != (size_t)n)
        return fail(p, *line, p->sect, NULL, "the line holds a NUL byte");
    if (n > LINE_MAX_BYTES)
        return fail(p, *line, p->sect, NULL,
                    "line of %zd bytes; at most %d are allowed (continue a long value on "
                    "following lines that start with white space)", n, LINE_MAX_BYTES);
    return true;
}

/* take_line makes the next line current: the look-ahead one, else a new one. */
static bool take_line(Parse *p)
{
    if (!p->has_ahead)
        return read_physical(p, &p->cur, &p->cur_cap, &p->cur_line);
    char *s = p->cur;
    size_t cap = p->cur_cap;
    p->cur = p->ahead;
    p->cur_cap = p->ahead_cap;
    p->cur_line = p->ahead_line;
    p->ahead = s;
    p->ahead_cap = cap;
    p->has_ahead = false;
    return true;
}

/* cont_append adds one continuation line's value to p->cont, space-separated. */
static bool cont_append(Parse *p, const char *s)
{
    size_t len = value_len(s);
    if (p->cont_len + len + 2 > p->cont_cap) {
        size_t cap = (p->cont_len + len + 2) * 2;
        char *c = realloc(p->cont, cap);
        if (!c)
            return fail(p, p->ahead_line, p->sect, NULL, "out of memory");
        p->cont = c;
        p->cont_cap = cap;
    }
    if (p->cont_len)
        p->cont[p->cont_len++] = ' ';
    memcpy(p->cont + p->cont_len, s, len);
    p->cont_len += len;
    p->cont[p->cont_len] = '\0';
    return true;
}

/* read_continuations collects the indented lines after a key line (comment
 * lines between them are skipped, as in Python's configparser) and leaves the
 * first other line in p->ahead; so no indented line ever reaches inih, whose
 * own multi-line mode would pass it to the handler like a duplicate key. */
static bool read_continuations(Parse *p)
{
    p->cont_len = 0;
    for (;;) {
        if (!read_physical(p, &p->ahead, &p->ahead_cap, &p->ahead_line))
            return !p->err[0];
        const char *s = skip_ws(p->ahead);
        if (*s == ';' || *s == '#')
            continue;
        if (s == p->ahead || !*s) {
            p->has_ahead = true;
            return true;
        }
        if (!cont_append(p, s))
            return false;
    }
}

/* key_line_of returns the line where key was set, else the section's header. */
static int key_line_of(const Parse *p, const char *key)
{
    size_t idx;
    key_find(p->table, key, &idx);
    return p->seen[idx] ? p->seen[idx] : p->stage->line;
}

/* check_order fails unless lo < hi (strict) or lo <= hi, naming hi when the
 * file set it (it is then the likelier typo), else lo. */
static bool check_order(Parse *p, const char *lo, const char *hi, bool strict, const char *rule)
{
    size_t il, ih;
    const KeyDef *kl = key_find(p->table, lo, &il), *kh = key_find(p->table, hi, &ih);
    int64_t a = key_number(kl, p->base), b = key_number(kh, p->base);
    char as[32], bs[32];
    if (strict ? a < b : a <= b)
        return true;
    key_number_text(kl, a, as, sizeof as);
    key_number_text(kh, b, bs, sizeof bs);
    if (p->seen[ih])
        return fail(p, p->seen[ih], p->sect, hi, "%s must be %s %s (%s)%s", bs,
                    strict ? "more than" : "at least", lo, as, rule);
    return fail(p, key_line_of(p, lo), p->sect, lo, "%s must be %s %s (%s)%s", as,
                strict ? "less than" : "at most", hi, bs, rule);
}

/* check_stage validates a stage once its section is complete. */
static bool check_stage(Parse *p)
{
    if (!p->stage->command)
        return fail(p, p->stage->line, p->sect, "command", "missing (every stage needs one)");
    if (p->stage->release_sql && !p->stage->pending_sql)
        return fail(p, key_line_of(p, "release_sql"), p->sect, "release_sql",
                    "only for a stage with pending_sql (pgwake.tasks leases are released already)");
    if (p->stage->release_sql && !strstr(p->stage->release_sql, "$1"))
        return fail(p, key_line_of(p, "release_sql"), p->sect, "release_sql",
                    "it must reference $1 (the worker id, as in WHERE worker_id = $1)");
    p->stage->release_sql_line = key_line_of(p, "release_sql");
    return check_order(p, "min_workers", "max_workers", false, "") &&
           check_order(p, "heartbeat_interval", "heartbeat_timeout", true, HB_RULE) &&
           check_order(p, "heartbeat_timeout", "lease", false, HB_RULE) &&
           check_order(p, "restart_delay", "restart_delay_max", false, "");
}

/* read_env_file loads [pgwake] env_file once its section is complete, so a
 * reload sees changed contents and a bad file fails the load. */
static bool read_env_file(Parse *p)
{
    char why[ERR_LEN];
    size_t idx;
    if (!p->cfg->env_file)
        return true;
    key_find(p->table, "env_file", &idx);
    if (!cfg_read_env_file(p->cfg->env_file, &p->cfg->env_file_vars, why, sizeof why))
        return fail(p, p->seen[idx], p->sect, "env_file", "%s", why);
    return true;
}

/* close_section runs the checks that need a whole section, then leaves it. */
static bool close_section(Parse *p)
{
    bool ok = true;
    if (p->stage)
        ok = check_stage(p);
    else if (p->table == &cfg_pgwake_keys)
        ok = read_env_file(p);
    p->table = NULL;
    p->base = NULL;
    p->stage = NULL;
    p->seen = NULL;
    p->sect[0] = '\0';
    return ok;
}

/* enter_single enters [pgwake] or [alerts], which may appear once. */
static bool enter_single(Parse *p, const KeyTable *t, void *base, int *seen, int *first, int line)
{
    if (*first)
        return fail(p, line, p->sect, NULL, "duplicate section (first on line %d)", *first);
    *first = line;
    p->table = t;
    p->base = base;
    p->seen = seen;
    return true;
}

/* enter_stage creates the stage of a [stage:NAME] header with its defaults. */
static bool enter_stage(Parse *p, const char *name, int line)
{
    char why[ERR_LEN];
    if (!stage_name_valid(name))
        return fail(p, line, p->sect, NULL, "bad stage name (must match ^[a-z0-9_][a-z0-9_.-]{0,62}$)");
    const StageConf *old = cfg_stage(p->cfg, name);
    if (old)
        return fail(p, line, p->sect, NULL, "duplicate section (first on line %d)", old->line);
    StageConf *st = calloc(1, sizeof *st);
    if (!st || !(st->name = strdup(name))) {
        free(st);
        return fail(p, line, p->sect, NULL, "out of memory");
    }
    st->line = line;
    *p->tail = st; /* linked first, so cfg_free frees it whatever happens next */
    p->tail = &st->next;
    p->cfg->nstages++;
    if (!keys_defaults(&cfg_stage_keys, st, p->cfg->dir, why, sizeof why))
        return fail(p, line, p->sect, NULL, "%s", why);
    memset(p->seen_stage, 0, sizeof p->seen_stage);
    p->table = &cfg_stage_keys;
    p->base = st;
    p->seen = p->seen_stage;
    p->stage = st;
    return true;
}

/* open_section handles a "[...]" line: closes the previous section and
 * enters the new one. inih is told too, but its copy of the name is cut at
 * 49 bytes, so the handler relies on ours. */
static bool open_section(Parse *p, const char *s, int line)
{
    if (!close_section(p))
        return false;
    const char *end = strchr(s, ']');
    if (!end)
        return fail(p, line, NULL, NULL, "section header without a closing ]");
    const char *rest = skip_ws(end + 1);
    if (*rest && !(*rest == ';' && rest > end + 1))
        return fail(p, line, NULL, NULL, "text after the section header's ]");
    snprintf(p->sect, sizeof p->sect, "%.*s", (int)(end - s - 1), s + 1);
    if (strcmp(p->sect, "pgwake") == 0)
        return enter_single(p, &cfg_pgwake_keys, p->cfg, p->seen_pgwake, &p->pgwake_line, line);
    if (strcmp(p->sect, "alerts") == 0)
        return enter_single(p, &cfg_alerts_keys, &p->cfg->alerts, p->seen_alerts,
                            &p->alerts_line, line);
    if (strncmp(p->sect, "stage:", 6) == 0)
        return enter_stage(p, p->sect + 6, line);
    return fail(p, line, p->sect, NULL,
                "unknown section (expected [pgwake], [alerts] or [stage:NAME])");
}

/* hand_to_inih copies the current line into inih's buffer. */
static char *hand_to_inih(Parse *p, char *str, int num)
{
    size_t len = strlen(p->cur);
    if (len + 2 > (size_t)num) {
        fail(p, p->cur_line, p->sect, NULL, "inih's line buffer (%d bytes) is too small", num);
        return NULL;
    }
    memcpy(str, p->cur, len);
    memcpy(str + len, "\n", 2);
    p->key_line = p->cur_line;
    return str;
}

/* reader_cb is inih's fgets: it returns the next section or key line (the
 * key's continuations already read into p->cont), never a blank, comment or
 * indented line; NULL at end of file or after the first error. */
static char *reader_cb(char *str, int num, void *stream)
{
    Parse *p = stream;
    while (!p->err[0] && take_line(p)) {
        const char *s = p->cur;
        bool ok;
        if (is_skippable(s))
            continue;
        if (isspace((unsigned char)s[0]))
            ok = fail(p, p->cur_line, p->sect, NULL,
                      "an indented line continues a value, but no key line comes before it");
        else if (s[0] == '[')
            ok = open_section(p, s, p->cur_line);
        else if (!has_separator(s))
            ok = fail(p, p->cur_line, p->sect, NULL, "expected KEY = VALUE");
        else
            ok = read_continuations(p);
        return ok ? hand_to_inih(p, str, num) : NULL;
    }
    return NULL;
}

/* full_value joins inih's value with the continuation lines. */
static char *full_value(const Parse *p, const char *value)
{
    char *s;
    if (!p->cont_len)
        return strdup(value);
    if (asprintf(&s, "%s%s%s", value, *value ? " " : "", p->cont) < 0)
        return NULL;
    return s;
}

/* set_key applies one KEY = VALUE of the current section. */
static bool set_key(Parse *p, const char *name, const char *value)
{
    size_t idx;
    char why[ERR_LEN];
    if (!p->table)
        return fail(p, p->key_line, NULL, name,
                    "key outside any section (put it under [pgwake], [alerts] or [stage:NAME])");
    const KeyDef *k = key_find(p->table, name, &idx);
    if (!k)
        return fail(p, p->key_line, p->sect, name, "unknown key");
    if (p->seen[idx])
        return fail(p, p->key_line, p->sect, name, "duplicate key (first set on line %d)",
                    p->seen[idx]);
    p->seen[idx] = p->key_line;
    char *v = full_value(p, value);
    bool ok = v && key_set(k, p->base, v, p->cfg->dir, why, sizeof why);
    free(v);
    if (!ok)
        return fail(p, p->key_line, p->sect, name, "%s", v ? why : "out of memory");
    if (!p->secret[0] && key_is_secret(k, p->base))
        snprintf(p->secret, sizeof p->secret, "[%s] %s", p->sect, name);
    return true;
}

/* handler_cb is inih's handler; inih's section argument is ignored (see
 * open_section) and a NULL name (a build calling on each new section) skipped. */
static int handler_cb(void *user, const char *section, const char *name, const char *value)
{
    Parse *p = user;
    (void)section;
    if (p->err[0])
        return 0;
    return !name || set_key(p, name, value ? value : "");
}

/* check_secret refuses a world-readable file that holds a secret. */
static bool check_secret(Parse *p)
{
    struct stat st;
    if (!p->secret[0])
        return true;
    if (fstat(fileno(p->fp), &st) != 0)
        return fail(p, 0, NULL, NULL, "unable to stat: %s", strerror(errno));
    if (st.st_mode & S_IROTH)
        return fail(p, 0, NULL, NULL,
                    "holds a secret (%s) and can be read by every user; run: chmod o-r %s",
                    p->secret, p->file);
    return true;
}

/* parse_file runs inih over the file, then the checks of the whole file. */
static bool parse_file(Parse *p)
{
    char why[ERR_LEN];
    int rc = ini_parse_stream(reader_cb, p, handler_cb, p);
    if (p->err[0])
        return false;
    if (rc != 0)
        return fail(p, 0, NULL, NULL, "inih refused the file (code %d)", rc);
    if (!close_section(p) || !check_secret(p))
        return false;
    if (!cfg_alerts_from_env(&p->cfg->alerts, p->seen_alerts, p->cfg->dir, why, sizeof why))
        return fail(p, 0, "alerts", NULL, "%s", why);
    if (!p->cfg->lock_file && !(p->cfg->lock_file = cfg_default_lock_file(p->cfg->path)))
        return fail(p, 0, NULL, NULL, "out of memory");
    /* `log_dir =` (empty) would leave workers' output nowhere: found by fuzz_config. */
    if (!p->cfg->log_dir)
        return fail(p, 0, "pgwake", "log_dir", "must not be empty (default: logs)");
    return true;
}

/* cfg_new allocates the Config of p with its paths and section defaults. */
static bool cfg_new(Parse *p)
{
    char why[ERR_LEN];
    Config *cfg = p->cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return fail(p, 0, NULL, NULL, "out of memory");
    p->tail = &cfg->stages;
    if (!(cfg->path = realpath(p->file, NULL)))
        return fail(p, 0, NULL, NULL, "unable to resolve the path: %s", strerror(errno));
    const char *slash = strrchr(cfg->path, '/');
    if (!(cfg->dir = strndup(cfg->path, slash > cfg->path ? (size_t)(slash - cfg->path) : 1)))
        return fail(p, 0, NULL, NULL, "out of memory");
    if (!keys_defaults(&cfg_pgwake_keys, cfg, cfg->dir, why, sizeof why) ||
        !keys_defaults(&cfg_alerts_keys, &cfg->alerts, cfg->dir, why, sizeof why))
        return fail(p, 0, NULL, NULL, "%s", why);
    return true;
}

/* cfg_load parses the file at path into a new Config; NULL with err
 * "FILE:LINE: [section] key: problem" (or "FILE: problem" for the whole
 * file), because a reload must keep the old config when the new one is bad. */
Config *cfg_load(const char *path, char *err, size_t errlen)
{
    Parse p = {.file = path, .err = err, .errlen = errlen};
    err[0] = '\0';
    if (!(p.fp = fopen(path, "r"))) {
        errf(err, errlen, "unable to open %s: %s", path, strerror(errno));
        return NULL;
    }
    bool ok = cfg_file_safe(fileno(p.fp), path, err, errlen) && cfg_new(&p) && parse_file(&p);
    fclose(p.fp);
    free(p.cur);
    free(p.ahead);
    free(p.cont);
    if (ok)
        return p.cfg;
    cfg_free(p.cfg);
    return NULL;
}

/* cfg_free releases a Config and everything it holds; NULL is fine. */
void cfg_free(Config *cfg)
{
    if (!cfg)
        return;
    while (cfg->stages) {
        StageConf *st = cfg->stages;
        cfg->stages = st->next;
        keys_free(&cfg_stage_keys, st);
        free(st->name);
        free(st);
    }
    keys_free(&cfg_pgwake_keys, cfg);
    keys_free(&cfg_alerts_keys, &cfg->alerts);
    argv_free(cfg->env_file_vars);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

/* cfg_find_path picks the configuration file: -c, else $PGWAKE_CONF, else
 * /etc/pgwake/pgwake.conf when it exists; NULL with err saying where it
 * looked, because the example in conf/ must never be picked by accident. */
const char *cfg_find_path(const char *opt_c, char *err, size_t errlen)
{
    const char *env = getenv("PGWAKE_CONF");
    if (opt_c && *opt_c)
        return opt_c;
    if (env && *env)
        return env;
    if (access(DEFAULT_CONF, F_OK) == 0)
        return DEFAULT_CONF;
    errf(err, errlen,
         "no configuration file: no -c FILE, PGWAKE_CONF is not set, and %s does not exist "
         "(copy conf/pgwake.conf there, or pass -c FILE)", DEFAULT_CONF);
    return NULL;
}

/* cfg_stage finds a stage by name; NULL when the config has none by that name. */
const StageConf *cfg_stage(const Config *cfg, const char *name)
{
    for (const StageConf *st = cfg->stages; st; st = st->next)
        if (strcmp(st->name, name) == 0)
            return st;
    return NULL;
}

/* stage_name_valid checks ^[a-z0-9_][a-z0-9_.-]{0,62}$, the same rule as the
 * CHECK in the SQL tables, so a name the daemon accepts the database takes. */
bool stage_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (i > 0 && (c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}
