/* config_env.c: what the configuration takes from outside the file: the
 * env_file, alert settings from the environment, the default lock file; and
 * the guesses that tell a secret when one is written in a file. */
#include "config_keys.h"
#include "errfmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"

/* url_has_password tells whether s holds scheme://USER:PASSWORD@ anywhere. */
bool url_has_password(const char *s)
{
    for (const char *p = strstr(s, "://"); p; p = strstr(p + 3, "://")) {
        const char *auth = p + 3;
        size_t len = strcspn(auth, "/?#");
        const char *at = memrchr(auth, '@', len);
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon && colon + 1 < at)
            return true;
    }
    return false;
}

/* url_auth finds the authority of the first scheme:// in url: its start,
 * and in *len its length up to the path, query or fragment. */
static const char *url_auth(const char *url, size_t *len)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return NULL;
    *len = strcspn(p + 3, "/?#");
    return p + 3;
}

/* url_has_userinfo: does url carry USER[:PASSWORD]@ (credentials, which
 * must then travel over TLS only)? */
bool url_has_userinfo(const char *url)
{
    size_t len;
    const char *auth = url_auth(url, &len);
    return auth && memrchr(auth, '@', len) != NULL;
}

/* url_redact copies url into out with the password of its userinfo shown as
 * "****", for logs and `pgwake check`. */
char *url_redact(const char *url, char *out, size_t n)
{
    size_t len;
    const char *auth = url_auth(url, &len);
    const char *at = auth ? memrchr(auth, '@', len) : NULL;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        snprintf(out, n, "%s", url ? url : "");
    else
        snprintf(out, n, "%.*s****%s", (int)(colon + 1 - url), url, at);
    return out;
}

/* name_looks_secret guesses from a variable's name (PGPASSWORD, API_KEY,
 * GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASS ...). */
static bool name_looks_secret(const char *name, size_t len)
{
    static const char *const parts[] = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL",
                                        "APIKEY", "PRIVATE", NULL};
    static const char *const words[] = {"KEY", "PASS", NULL};
    char up[256], *save = NULL;
    size_t n = len < sizeof up - 1 ? len : sizeof up - 1;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)toupper((unsigned char)name[i]);
    up[n] = '\0';
    for (const char *const *p = parts; *p; p++)
        if (strstr(up, *p))
            return true;
    for (char *w = strtok_r(up, "_", &save); w; w = strtok_r(NULL, "_", &save))
        for (const char *const *p = words; *p; p++)
            if (strcmp(w, *p) == 0)
                return true;
    return false;
}

/* env_secret_name returns the first "K=V" of vars that looks like a secret
 * (by its name, or a value holding a URL password or libpq's password=),
 * with *len the length of its name; NULL when none does. */
const char *env_secret_name(char *const *vars, size_t *len)
{
    for (; vars && *vars; vars++) {
        const char *eq = strchr(*vars, '=');
        *len = eq ? (size_t)(eq - *vars) : strlen(*vars);
        if (name_looks_secret(*vars, *len) || (eq && url_has_password(eq + 1)) ||
            (eq && strcasestr(eq + 1, "password=")))
            return *vars;
    }
    return NULL;
}

static char *skip_ws(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* env_line parses one env_file line into a malloc'd "K=V" in *item (NULL for
 * a blank or comment line): optional "export ", white space around the key
 * and value trimmed, one pair of matching quotes around the value removed. */
static bool env_line(char *s, char **item, char *why, size_t n)
{
    *item = NULL;
    trim_end(s);
    s = skip_ws(s);
    if (!*s || *s == '#')
        return true;
    if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t'))
        s = skip_ws(s + 6);
    char *eq = strchr(s, '=');
    if (!eq)
        return errf(why, n, "expected KEY=VALUE");
    *eq = '\0';
    trim_end(s);
    if (!env_name_valid(s, strlen(s)))
        return errf(why, n, "bad variable name \"%s\" (must match [A-Za-z_][A-Za-z0-9_]*)", s);
    char *v = skip_ws(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
        v[vl - 1] = '\0';
        v++;
    }
    if (asprintf(item, "%s=%s", s, v) < 0) {
        *item = NULL;
        return errf(why, n, "out of memory");
    }
    return true;
}

/* The env_file being read: its lines so far. */
typedef struct EnvVec {
    char **v;
    size_t n, cap;
} EnvVec;

/* env_add appends item (owned) unless its name is already there. */
static bool env_add(EnvVec *e, char *item, char *why, size_t n)
{
    size_t len = strcspn(item, "=");
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], item, len + 1) == 0) {
            errf(why, n, "%.*s is set a second time", (int)len, item);
            free(item);
            return false;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        char **v = realloc(e->v, cap * sizeof *v);
        if (!v) {
            free(item);
            return errf(why, n, "out of memory");
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = item;
    e->v[e->n] = NULL;
    return true;
}

/* read_env_lines reads every line of fp into e; false with err "PATH:LINE: ...". */
static bool read_env_lines(FILE *fp, const char *path, EnvVec *e, char *err, size_t errlen)
{
    char *line = NULL, *item, why[ERR_LEN / 2];
    size_t cap = 0;
    bool ok = true;
    for (int lineno = 1; ok && getline(&line, &cap, fp) >= 0; lineno++) {
        ok = env_line(line, &item, why, sizeof why) && (!item || env_add(e, item, why, sizeof why));
        if (!ok)
            errf(err, errlen, "%s:%d: %s", path, lineno, why);
    }
    if (ok && ferror(fp)) {
        errf(err, errlen, "unable to read %s: %s", path, strerror(errno));
        ok = false;
    }
    free(line);
    return ok;
}

/* cfg_file_safe: may a root daemon take orders from this file? What it
 * names runs as root, so a file another user owns or that group or others
 * may write is code execution for them: refused with the command that
 * fixes it. Any file is fine for a daemon that is not root. */
bool cfg_file_safe(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (geteuid() != 0)
        return true;
    if (fstat(fd, &st) != 0)
        return errf(err, errlen, "%s: unable to stat: %s", path, strerror(errno));
    if (st.st_uid != 0)
        return errf(err, errlen, "%s: belongs to uid %u, and pgwake runs as root what it "
                                  "names; run: chown root %s", path, (unsigned)st.st_uid, path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return errf(err, errlen, "%s: can be written by %s, and pgwake runs as root what it "
                                  "names; run: chmod go-w %s",
                    path, st.st_mode & S_IWOTH ? "every user" : "its group", path);
    return true;
}

/* cfg_read_env_file reads KEY=VALUE lines (# comments, blank lines, optional
 * quotes around a value, optional "export ") into a NULL-terminated "K=V"
 * vector (NULL when empty); refuses a world-readable file holding a secret
 * with the chmod that fixes it, because workers' credentials live there. */
bool cfg_read_env_file(const char *path, char ***out, char *err, size_t errlen)
{
    EnvVec e = {0};
    struct stat st;
    size_t len;
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errf(err, errlen, "unable to open %s: %s", path, strerror(errno));
    bool ok = cfg_file_safe(fileno(fp), path, err, errlen) &&
              read_env_lines(fp, path, &e, err, errlen);
    const char *secret = ok ? env_secret_name(e.v, &len) : NULL;
    if (secret && fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH)) {
        errf(err, errlen, "%s: holds a secret (%.*s) and can be read by every user; run: chmod o-r %s",
             path, (int)len, secret, path);
        ok = false;
    }
    fclose(fp);
    if (!ok)
        argv_free(e.v);
    else
        *out = e.v;
    return ok;
}

/* set_from_env sets an alerts key from the environment unless the file set it. */
static bool set_from_env(AlertConf *a, const int *seen, const char *key, const char *var,
                         const char *value, const char *dir, char *why, size_t n)
{
    size_t idx;
    const KeyDef *k = key_find(&cfg_alerts_keys, key, &idx);
    char inner[ERR_LEN];
    if (seen[idx] || !value || !*value)
        return true;
    if (!key_set(k, a, value, dir, inner, sizeof inner))
        return errf(why, n, "%s: from $%s: %s", key, var, inner);
    return true;
}

/* smtp_url_from_env builds smtp_url from $SMTP_HOST and $SMTP_PORT (default
 * 587; 465 means implicit TLS, so smtps://). */
static bool smtp_url_from_env(AlertConf *a, const int *seen, const char *dir, char *why, size_t n)
{
    const char *host = getenv("SMTP_HOST"), *port = getenv("SMTP_PORT");
    char *end, url[512];
    if (!host || !*host)
        return true;
    if (!port || !*port)
        port = "587";
    long p = strtol(port, &end, 10);
    if (!isdigit((unsigned char)port[0]) || *end || p < 1 || p > 65535)
        return errf(why, n, "smtp_url: from $SMTP_PORT: \"%s\" is not a port number", port);
    snprintf(url, sizeof url, "%s://%s:%ld", p == 465 ? "smtps" : "smtp", host, p);
    return set_from_env(a, seen, "smtp_url", "SMTP_HOST", url, dir, why, n);
}

/* cfg_alerts_from_env fills the alerts keys the file left unset from the
 * environment the old heartbeat monitor used (the file wins); false with
 * why "KEY: from $VAR: problem" for a bad value. */
bool cfg_alerts_from_env(AlertConf *a, const int *seen, const char *dir, char *why, size_t n)
{
    static const struct {
        const char *var, *key;
    } vars[] = {
        {"HEARTBEAT_MONITOR_ALERT_EMAIL", "email_to"},
        {"SMTP_USER", "smtp_user"},
        {"SMTP_PASSWORD", "smtp_password"},
        {"EMAIL_FROM", "email_from"},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (!set_from_env(a, seen, vars[i].key, vars[i].var, getenv(vars[i].var), dir, why, n))
            return false;
    return smtp_url_from_env(a, seen, dir, why, n);
}

/* lock_dir picks where a default lock file lives: $RUNTIME_DIRECTORY (its
 * first entry; systemd's private folder), else $XDG_RUNTIME_DIR (the user's
 * own), else /run for root; only then /tmp, where any local user could
 * plant the predictable name first and keep the daemon from starting. */
static const char *lock_dir(int *len)
{
    const char *env[] = {getenv("RUNTIME_DIRECTORY"), getenv("XDG_RUNTIME_DIR")};
    struct stat st;
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        if (env[i] && env[i][0] == '/') {
            *len = (int)strcspn(env[i], ":");
            return env[i];
        }
    const char *d = geteuid() == 0 && stat("/run", &st) == 0 && S_ISDIR(st.st_mode) ? "/run" : "/tmp";
    *len = (int)strlen(d);
    return d;
}

/* cfg_default_lock_file names the lock file of a config that sets none: in
 * lock_dir, "pgwake-<file name>-<hash of its real path>.lock", so two
 * configs never share a lock and one config always finds its own. NULL on
 * no memory. */
char *cfg_default_lock_file(const char *conf_realpath)
{
    const char *base = strrchr(conf_realpath, '/');
    uint32_t h = 2166136261u; /* FNV-1a */
    char *out;
    int dlen;
    const char *dir = lock_dir(&dlen);
    for (const char *c = conf_realpath; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    if (asprintf(&out, "%.*s/pgwake-%s-%08x.lock", dlen, dir, base ? base + 1 : conf_realpath, h) < 0)
        return NULL;
    return out;
}
