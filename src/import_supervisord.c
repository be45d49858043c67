/* import_supervisord.c: the [program:x] sections of a supervisord file as
 * pgwake stages, computed the way supervisord computes them (its %(...)s
 * expansions, shlex for command and environment), and a note for every
 * section and setting pgwake does not carry over, saying why. */
#include "import.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "errfmt.h"
#include "import_ini.h"

#define LOGS "pgwake keeps each stage's stdout and stderr in its own files in log_dir"
#define EVENTS "supervisord's event system has no pgwake counterpart; pgwake's alerts " \
               "([alerts]) report dead workers and FATAL stages"
#define GROUP "pgwake always signals the worker's whole process group"

/* Settings of [program:x] pgwake has nothing for: each with the reason. */
static const struct {
    const char *key;
    const char *why;
} dropped[] = {
    {"process_name", "pgwake names each worker itself (STAGE/WORKER_ID in logs and status)"},
    {"numprocs_start", "pgwake numbers its workers itself"},
    {"priority", "pgwake has no start order: each stage starts workers when it has work"},
    {"autorestart", "pgwake restarts every worker that dies, with backoff (restart_delay up to "
                    "restart_delay_max), until max_restarts crashes within restart_window "
                    "make the stage FATAL"},
    {"startsecs", "pgwake counts every unrequested exit as a crash; restart_window decides "
                  "what a crash loop is"},
    {"exitcodes", "pgwake has no expected exit codes: an exit it did not ask for is a crash"},
    {"stopasgroup", GROUP},
    {"killasgroup", GROUP},
    {"umask", "pgwake does not set a umask; set it in the worker or a wrapper script"},
    {"redirect_stderr", LOGS},
    {"stdout_logfile", LOGS},
    {"stdout_logfile_maxbytes", LOGS},
    {"stdout_logfile_backups", LOGS},
    {"stdout_syslog", LOGS},
    {"stderr_logfile", LOGS},
    {"stderr_logfile_maxbytes", LOGS},
    {"stderr_logfile_backups", LOGS},
    {"stderr_syslog", LOGS},
    {"stdout_capture_maxbytes", EVENTS},
    {"stdout_events_enabled", EVENTS},
    {"stderr_capture_maxbytes", EVENTS},
    {"stderr_events_enabled", EVENTS},
    {"serverurl", "that is the URL supervisorctl gives the worker; pgwake's control API is "
                  "http_listen in [pgwake]"},
};

/* Other sections: the name or prefix, and why nothing comes of it. */
static const struct {
    const char *name;
    bool prefix;
    const char *why;
} sections[] = {
    {"group:", true, "pgwake has no groups: each program became a stage of its own, and "
                     "`pgwake start|stop|restart` takes a stage or all"},
    {"supervisord", false, "supervisord's own settings; pgwake's are in [pgwake]"},
    {"unix_http_server", false, "pgwake's control API and status page are at http_listen"},
    {"inet_http_server", false, "pgwake's control API and status page are at http_listen"},
    {"supervisorctl", false, "`pgwake status|start|stop|restart` reach the daemon at http_listen"},
    {"rpcinterface:", true, "pgwake's control API needs no plugin"},
    {"ctlplugin:", true, "pgwake's command line takes no plugins"},
    {"include", false, "included files are not read: run `pgwake import supervisord` on each "
                       "and append its stages"},
    {"eventlistener:", true, EVENTS},
    {"fcgi-program:", true, "pgwake does not open sockets for its workers (FastCGI)"},
};

/* Prog is one [program:x] section being turned into a stage. */
typedef struct Prog {
    ImportDoc *d;
    ImportStage *st;
    const Ini *ini;
    const IniSect *sect;
    const ImportEnv *env;
    const char *name;  /* %(program_name)s */
    const char *group; /* %(group_name)s */
    long process_num;  /* numprocs_start: the first process's number */
    long numprocs;
    char **penv;       /* the program's own environment, "K=V" */
    bool autostart;
    char *err;
    size_t errlen;
} Prog;

/* short_value: a value cut for a comment ("..." when cut). */
static const char *short_value(const char *v, char *buf, size_t n)
{
    if (strlen(v) < n)
        return v;
    snprintf(buf, n, "%.*s...", (int)n - 4, v);
    return buf;
}

__attribute__((format(printf, 3, 4)))
static bool prog_fail(Prog *p, const IniOpt *o, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    for (char *c = what; *c; c++) /* a multi-line value quoted: the error stays one line */
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return errf(p->err, p->errlen, "%s:%d: [%s] %s: %s", p->d->file, o->line, p->sect->name,
                o->key, what);
}

/* carried: the settings that become pgwake keys, whose expansions are noted. */
static bool carried(const char *key)
{
    return !strcmp(key, "command") || !strcmp(key, "directory") || !strcmp(key, "user") ||
           !strcmp(key, "environment");
}

/* lookup_env: ENV_X from the program's environment (when allowed), else
 * from the environment pgwake import runs in, as supervisord's own. */
static const char *lookup_env(const Prog *p, const char *var, bool prog_env)
{
    size_t n = strlen(var);
    for (char **e = prog_env ? p->penv : NULL; e && *e; e++)
        if (strncmp(*e, var, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return p->env->getenv ? p->env->getenv(var) : NULL;
}

/* format_one renders one %(name)<flags><width><conv> the way Python's %
 * operator does for the s, d and i conversions supervisord files use. */
static bool format_one(Prog *p, const IniOpt *o, const char *name, const char *spec, char conv,
                       bool prog_env, char **out)
{
    char num[32];
    const char *sval = NULL;
    bool is_num = false;
    if (strcmp(name, "process_num") == 0 || strcmp(name, "numprocs") == 0) {
        long v = name[0] == 'p' ? p->process_num : p->numprocs;
        snprintf(num, sizeof num, "%ld", v);
        sval = num;
        is_num = true;
    } else if (strcmp(name, "here") == 0) {
        sval = p->env->here;
    } else if (strcmp(name, "program_name") == 0) {
        sval = p->name;
    } else if (strcmp(name, "group_name") == 0) {
        sval = p->group;
    } else if (strcmp(name, "host_node_name") == 0) {
        sval = p->env->host;
    } else if (strncmp(name, "ENV_", 4) == 0) {
        if (!(sval = lookup_env(p, name + 4, prog_env)))
            return prog_fail(p, o, "%%(%s)s cannot be expanded: %s is not set in this "
                             "environment (export it and import again)", name, name + 4);
        if (carried(o->key))
            import_note(p->d, &p->st->notes, "%s: %%(%s)s expanded from the environment of "
                        "`pgwake import`", o->key, name);
    } else {
        return prog_fail(p, o, "%%(%s)s cannot be expanded (supervisord knows here, "
                         "program_name, group_name, host_node_name, process_num, numprocs, "
                         "ENV_X)", name);
    }
    if (!sval)
        sval = "";
    if (conv != 's' && !is_num)
        return prog_fail(p, o, "%%(%s)%c is badly formatted: %s is not a number", name, conv,
                         name);
    bool left = strchr(spec, '-') != NULL, zero = strchr(spec, '0') == spec && is_num;
    long width = strtol(spec + strspn(spec, "-+ #0"), NULL, 10);
    if (width > 4096) /* Python gives up too ("width too big"), a little later */
        return prog_fail(p, o, "%%(%s) has a width over 4096", name);
    int len = left || !zero ? asprintf(out, left ? "%-*s" : "%*s", (int)width, sval)
                            : asprintf(out, "%0*ld", (int)width, atol(sval));
    if (len < 0)
        return errf(p->err, p->errlen, "out of memory");
    if (strcmp(name, "process_num") == 0 && carried(o->key))
        import_note(p->d, &p->st->notes, "%s: %%(process_num)%c expanded as %ld: every worker "
                    "of a stage runs the same command (PGWAKE_WORKER_ID tells them apart)",
                    o->key, conv, p->process_num);
    return true;
}

/* expand is supervisord's expand(): Python's "value % expansions". Only
 * %% and %(name)... are accepted, as any other % fails there too. */
static char *expand(Prog *p, const IniOpt *o, bool prog_env)
{
    char *res = strdup(""), *piece;
    const char *s = o->value;
    while (res && *s) {
        size_t lit = strcspn(s, "%");
        char *n = NULL;
        if (asprintf(&n, "%s%.*s", res, (int)lit, s) < 0)
            n = NULL;
        free(res);
        res = n;
        s += lit;
        if (!*s || !res)
            break;
        if (s[1] == '%') {
            s += 2;
            n = NULL;
            if (asprintf(&n, "%s%%", res) < 0)
                n = NULL;
            free(res);
            res = n;
            continue;
        }
        const char *q = s + 1;
        int depth = 1; /* Python matches the parentheses of the key */
        for (q += *q == '('; s[1] == '(' && *q && depth; q++)
            depth += (*q == '(') - (*q == ')');
        if (s[1] != '(' || depth) {
            prog_fail(p, o, "\"%s\" is badly formatted (a %% must be %%%% or %%(name)s)",
                      o->value);
            break;
        }
        char name[256], spec[32];
        snprintf(name, sizeof name, "%.*s", (int)(q - s - 3), s + 2);
        size_t sl = strspn(q, "-+ #0123456789");
        snprintf(spec, sizeof spec, "%.*s", (int)(sl < 31 ? sl : 31), q);
        q += sl;
        if (*q == 'l' || *q == 'h' || *q == 'L')
            q++;
        if (!*q || !strchr("sdi", *q)) {
            prog_fail(p, o, "\"%s\" is badly formatted (supported: %%(name)s, %%(name)d)",
                      o->value);
            break;
        }
        if (!format_one(p, o, name, spec, *q, prog_env, &piece))
            break;
        n = NULL;
        if (asprintf(&n, "%s%s", res, piece) < 0)
            n = NULL;
        free(piece);
        free(res);
        res = n;
        s = q + 1;
    }
    if (!res && !p->err[0])
        errf(p->err, p->errlen, "out of memory");
    if (p->err[0]) {
        free(res);
        return NULL;
    }
    return res;
}

/* get_int reads an integer setting like supervisord's integer(); def when
 * the section lacks it. */
static bool get_int(Prog *p, const char *key, long def, long *out)
{
    const IniOpt *o = ini_get(p->ini, p->sect, key);
    *out = def;
    if (!o)
        return true;
    char *v = expand(p, o, true), *end;
    if (!v)
        return false;
    errno = 0;
    *out = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    bool ok = *v && !*end && errno == 0 && *out > -1000000000 && *out < 1000000000;
    if (!ok)
        prog_fail(p, o, "\"%s\" is not an integer", v);
    free(v);
    return ok;
}

/* get_bool is supervisord's boolean(): true/yes/on/1, false/no/off/0. */
static bool get_bool(Prog *p, const char *key, bool def, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                  "off", "0"};
    const IniOpt *o = ini_get(p->ini, p->sect, key);
    *out = def;
    if (!o)
        return true;
    char *v = expand(p, o, true);
    if (!v)
        return false;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            free(v);
            return true;
        }
    }
    prog_fail(p, o, "\"%s\" is not a boolean (true, false, yes, no, on, off, 1, 0)", v);
    free(v);
    return false;
}

/* parse_environment is supervisord's dict_of_key_value_pairs() on the
 * expanded value: tokens in fours, KEY '=' VALUE and a separator. */
static bool parse_environment(Prog *p)
{
    const IniOpt *o = ini_get(p->ini, p->sect, "environment");
    if (!o)
        return true;
    char *v = expand(p, o, false), why[200];
    if (!v)
        return false;
    char **tok = shlex_tokens(v, why, sizeof why);
    bool ok = tok != NULL;
    if (!tok)
        prog_fail(p, o, "%s in \"%s\"", why, v);
    size_t n = 0;
    while (tok && tok[n])
        n++;
    for (size_t i = 0; ok && i < n; i += 4) {
        if (i + 2 >= n || strcmp(tok[i + 1], "=") != 0) {
            ok = prog_fail(p, o, "\"%s\" is not KEY=VALUE,KEY2=VALUE2 (quote a value that "
                           "holds anything but letters, digits and _/.+-():)", v);
            break;
        }
        char *val = tok[i + 2], *end = val + strlen(val);
        while (*val == '"' || *val == '\'')
            val++;
        while (end > val && (end[-1] == '"' || end[-1] == '\''))
            end--;
        char *kv = NULL;
        if (asprintf(&kv, "%s=%.*s", tok[i], (int)(end - val), val) < 0)
            ok = errf(p->err, p->errlen, "out of memory");
        /* a later KEY replaces an earlier one, as in the Python dict */
        size_t k = 0, klen = strlen(tok[i]) + 1;
        while (kv && p->penv && p->penv[k] && strncmp(p->penv[k], kv, klen) != 0)
            k++;
        if (kv && p->penv && p->penv[k]) {
            free(p->penv[k]);
            p->penv[k] = kv;
        } else if (kv) {
            import_argv_push(p->d, &p->penv, kv);
            free(kv);
        }
    }
    argv_free(tok);
    free(v);
    return ok;
}

static bool key_command(Prog *p, const IniOpt *o, const char *v)
{
    char why[200];
    char **argv = shlex_split_posix(v, why, sizeof why);
    if (!argv)
        return prog_fail(p, o, "%s in \"%s\"", why, v);
    if (!argv[0]) {
        argv_free(argv);
        return prog_fail(p, o, "the command is empty");
    }
    argv_free(p->st->argv);
    p->st->argv = argv;
    return true;
}

static bool key_string(Prog *p, const IniOpt *o, const char *v, char **dst)
{
    const char *why = import_value_problem(v, true);
    char buf[80];
    if (why)
        import_note(p->d, &p->st->notes, "%s = %s not carried over: the value %s", o->key,
                    short_value(v, buf, sizeof buf), why);
    else
        import_set(p->d, dst, v);
    return true;
}

/* relative_note: a relative directory changes meaning in pgwake. */
static void relative_note(ImportDoc *d, ImportStage *st, const char *was)
{
    if (st->directory && st->directory[0] != '/')
        import_note(d, &st->notes, "directory = %s is relative: pgwake takes it from the folder "
                    "of this configuration file (it was relative to %s)", st->directory, was);
}

static bool key_numbers(Prog *p, const IniOpt *o, const char *v)
{
    long n;
    if (!get_int(p, o->key, 0, &n))
        return false;
    ImportNotes *notes = &p->st->notes;
    if (strcmp(o->key, "numprocs") == 0 && n >= 1) {
        p->st->max_workers = (int)n;
    } else if (strcmp(o->key, "stopwaitsecs") == 0 && n >= 0) {
        p->st->stop_timeout_ms = p->st->kill_timeout_ms = n * 1000;
        import_note(p->d, notes, "stopwaitsecs = %ld: supervisord waits that long between "
                    "SIGTERM and SIGKILL; pgwake first sends S on the wake fd and waits "
                    "stop_timeout, then SIGTERM and kill_timeout: both are set to it, so a "
                    "worker that only handles SIGTERM keeps its time", n);
    } else if (strcmp(o->key, "startretries") == 0 && n >= 0) {
        p->st->max_restarts = (int)n + 1;
        import_note(p->d, notes, "startretries = %ld: supervisord gives up after %ld failed "
                    "start%s in a row; pgwake makes the stage FATAL after max_restarts crashes "
                    "within restart_window (5m by default)", n, n + 1, n ? "s" : "");
    } else {
        import_note(p->d, notes, "%s = %s not carried over: pgwake needs a positive number",
                    o->key, v);
    }
    return true;
}

static bool key_stopsignal(Prog *p, const IniOpt *o, const char *v)
{
    const char *sig = strncasecmp(v, "SIG", 3) == 0 ? v + 3 : v;
    if (strcasecmp(sig, "TERM") != 0 && strcmp(sig, "15") != 0)
        import_note(p->d, &p->st->notes, "stopsignal = %s not carried over: pgwake sends S "
                    "on the wake fd, then SIGTERM; make the worker stop on SIGTERM", v);
    return true;
}

/* one_key carries over, or notes, one setting of the section. */
static bool one_key(Prog *p, const IniOpt *o)
{
    char buf[80];
    if (strcmp(o->key, "environment") == 0) {
        for (char **e = p->penv; e && *e; e++) {
            char *eq = strchr(*e, '=');
            *eq = '\0';
            import_env_add(p->d, p->st, *e, eq + 1);
            *eq = '=';
        }
        return true;
    }
    if (strcmp(o->key, "autostart") == 0)
        return true; /* its note comes with min_workers, after the loop */
    char *v = expand(p, o, true);
    if (!v)
        return false;
    bool ok = true;
    if (strcmp(o->key, "command") == 0)
        ok = key_command(p, o, v);
    else if (strcmp(o->key, "directory") == 0 && (ok = key_string(p, o, v, &p->st->directory)))
        relative_note(p->d, p->st, "supervisord's own working directory");
    else if (strcmp(o->key, "user") == 0)
        ok = key_string(p, o, v, &p->st->user);
    else if (!strcmp(o->key, "numprocs") || !strcmp(o->key, "stopwaitsecs") ||
             !strcmp(o->key, "startretries"))
        ok = key_numbers(p, o, v);
    else if (strcmp(o->key, "stopsignal") == 0)
        ok = key_stopsignal(p, o, v);
    else {
        const char *why = "not a supervisord setting (supervisord ignores it too)";
        for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
            if (strcmp(dropped[i].key, o->key) == 0)
                why = dropped[i].why;
        import_note(p->d, &p->st->notes, "%s = %s not carried over: %s", o->key,
                    short_value(v, buf, sizeof buf), why);
    }
    free(v);
    return ok;
}

/* min_workers_note says what was chosen for min_workers, and why. */
static void min_workers_note(Prog *p)
{
    long n = p->numprocs > 0 ? p->numprocs : 1;
    if (p->autostart)
        import_note(p->d, &p->st->notes, "min_workers is left at 0: supervisord kept %ld "
                    "running from its start (autostart = true); pgwake starts workers when "
                    "there is work and stops them when idle. Set min_workers = %ld to keep "
                    "them running without work", n, n);
    else
        import_note(p->d, &p->st->notes, "autostart = false: pgwake starts workers only when "
                    "there is work anyway");
}

/* group_of is the [group:g] whose programs list names the program. */
static const char *group_of(const Ini *ini, const char *name)
{
    for (size_t i = 0; i < ini->n; i++) {
        const IniSect *s = &ini->sects[i];
        const IniOpt *o = strncmp(s->name, "group:", 6) == 0 ? ini_get(ini, s, "programs") : NULL;
        for (const char *q = o ? o->value : NULL; q && *q;) {
            size_t len = strcspn(q, ",");
            const char *a = q, *b = q + len;
            while (a < b && strchr(" \t\n", *a))
                a++;
            while (b > a && strchr(" \t\n", b[-1]))
                b--;
            if ((size_t)(b - a) == strlen(name) && strncmp(a, name, (size_t)(b - a)) == 0)
                return s->name + 6;
            q += len + (q[len] == ',');
        }
    }
    return name;
}

static bool one_program(ImportDoc *d, const Ini *ini, const IniSect *s, const ImportEnv *env,
                        char *err, size_t errlen)
{
    char name[256];
    const char *raw = s->name + strlen("program:");
    while (*raw == ' ' || *raw == '\t')
        raw++;
    snprintf(name, sizeof name, "%s", raw);
    for (size_t n = strlen(name); n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t');)
        name[--n] = '\0';
    char source[300];
    snprintf(source, sizeof source, "[%s]", s->name);
    Prog p = {.d = d, .ini = ini, .sect = s, .env = env, .name = name, .err = err,
              .errlen = errlen, .group = group_of(ini, name)};
    if (!(p.st = import_stage_add(d, name, source, s->line)))
        return errf(err, errlen, "out of memory");
    err[0] = '\0';
    const IniOpt *pn = ini_get(ini, s, "process_name");
    bool ok = get_int(&p, "numprocs", 1, &p.numprocs) &&
              get_int(&p, "numprocs_start", 0, &p.process_num) &&
              get_bool(&p, "autostart", true, &p.autostart) && parse_environment(&p);
    if (ok && p.numprocs > 1 && (!pn || !strstr(pn->value, "%(process_num)")))
        ok = prog_fail(&p, ini_get(ini, s, "numprocs"), "%%(process_num) must be in "
                       "process_name when numprocs > 1 (supervisord refuses this too)");
    for (size_t i = 0; ok && i < s->n; i++)
        ok = one_key(&p, &s->opts[i]);
    for (size_t i = 0; ok && i < ini->defaults.n; i++) {
        const IniOpt *o = &ini->defaults.opts[i];
        if (ini_get(ini, s, o->key) == o)
            ok = one_key(&p, o);
    }
    if (ok && !p.st->argv)
        ok = errf(err, errlen, "%s:%d: [%s]: no command (supervisord refuses this too)", d->file,
                  s->line, s->name);
    if (ok)
        min_workers_note(&p);
    argv_free(p.penv);
    return ok;
}

static void other_section(ImportDoc *d, const Ini *ini, const IniSect *s)
{
    const char *why = "not a supervisord section (supervisord ignores it too)";
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (sections[i].prefix ? strncmp(s->name, sections[i].name, strlen(sections[i].name)) == 0
                               : strcmp(s->name, sections[i].name) == 0)
            why = sections[i].why;
    import_note(d, &d->notes, "[%s] (line %d) not carried over: %s", s->name, s->line, why);
    const IniOpt *o = ini_get(ini, s, strcmp(s->name, "include") == 0 ? "files" : "programs");
    char buf[80];
    if (o && (!strcmp(s->name, "include") || !strncmp(s->name, "group:", 6)))
        import_note(d, &d->notes, "  %s = %s", o->key, short_value(o->value, buf, sizeof buf));
    if (strcmp(s->name, "supervisord") == 0 && (o = ini_get(ini, s, "environment")))
        import_note(d, &d->notes, "  environment = %s: supervisord gave it to every program; "
                    "not carried over: add it to each stage's environment or to env_file",
                    short_value(o->value, buf, sizeof buf));
}

/* import_supervisord reads a supervisord file (data, len bytes) into d;
 * false with "FILE:LINE: what is wrong" for what supervisord would refuse. */
bool import_supervisord(ImportDoc *d, const char *data, size_t len, const ImportEnv *env,
                        char *err, size_t errlen)
{
    Ini ini;
    bool ok = ini_read(&ini, d->file, data, len, err, errlen);
    for (size_t i = 0; ok && i < ini.n; i++) {
        if (strncmp(ini.sects[i].name, "program:", 8) == 0)
            ok = one_program(d, &ini, &ini.sects[i], env, err, errlen);
        else
            other_section(d, &ini, &ini.sects[i]);
    }
    ini_free(&ini);
    if (ok && d->oom)
        ok = errf(err, errlen, "out of memory");
    if (ok && !d->stages)
        ok = errf(err, errlen, "%s: no [program:x] section: nothing to import", d->file);
    if (ok)
        import_finish(d);
    return ok && !d->oom;
}
