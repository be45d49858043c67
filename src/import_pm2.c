/* import_pm2.c: the apps of a PM2 ecosystem file in JSON as pgwake stages:
 * script, args and interpreter become the command, cwd the directory, env
 * the environment, instances max_workers, the ms timings durations; every
 * other setting gets a note saying why it is not carried over. */
#include "import.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "errfmt.h"
#include "units.h"

#define LOGS "pgwake keeps each stage's stdout and stderr in its own files in log_dir"
#define WATCH "pgwake does not watch files: run `pgwake restart STAGE` after a deploy " \
              "(a rolling restart)"

/* Settings of an app pgwake has nothing for: each with the reason. */
static const struct {
    const char *key;
    const char *why;
} dropped[] = {
    {"exec_mode", "pgwake runs each worker as a process of its own (PM2's fork mode); "
                  "cluster mode shares a Node.js listening socket, which pgwake workers do "
                  "not have"},
    {"watch", WATCH},
    {"ignore_watch", WATCH},
    {"watch_options", WATCH},
    {"cron_restart", "schedule `pgwake restart STAGE` with cron or a systemd timer instead"},
    {"autorestart", "pgwake restarts every worker that dies, with backoff, until "
                    "max_restarts crashes within restart_window make the stage FATAL"},
    {"min_uptime", "pgwake counts every unrequested exit as a crash; restart_window decides "
                   "what a crash loop is"},
    {"exp_backoff_restart_delay", "pgwake always backs off: restart_delay doubles up to "
                                  "restart_delay_max"},
    {"listen_timeout", "pgwake workers say they are ready on the wake fd"},
    {"wait_ready", "pgwake workers say they are ready on the wake fd"},
    {"shutdown_with_message", "pgwake asks a worker to stop with S on its wake fd"},
    {"gid", "pgwake runs a worker with the groups of its user"},
    {"log_file", LOGS}, {"out_file", LOGS}, {"error_file", LOGS}, {"output", LOGS},
    {"error", LOGS}, {"log", LOGS}, {"merge_logs", LOGS}, {"combine_logs", LOGS},
    {"log_date_format", LOGS}, {"log_type", LOGS}, {"time", LOGS}, {"disable_logs", LOGS},
    {"pid_file", "pgwake keeps its workers' pids itself (pgwake status)"},
    {"pid", "pgwake keeps its workers' pids itself (pgwake status)"},
    {"namespace", "pgwake has no namespaces: each app is a stage of its own"},
    {"instance_var", "every worker of a stage gets PGWAKE_WORKER_ID instead"},
    {"increment_var", "every worker of a stage gets PGWAKE_WORKER_ID instead"},
    {"vizion", "PM2's version metadata has no pgwake counterpart"},
    {"treekill", "pgwake always signals the worker's whole process group"},
    {"kill_retry_time", "pgwake sends SIGKILL once, after kill_timeout"},
    {"stop_exit_codes", "pgwake has no expected exit codes: an exit it did not ask for is a "
                        "crash"},
    {"force", "pgwake starts each stage once"},
    {"source_map_support", "a Node.js option of PM2's; put it in interpreter_args"},
    {"filter_env", "pgwake passes a worker only what the configuration and env_file give it"},
    {"append_env_name", "pgwake names workers itself"},
    {"port", "set PORT in the environment instead"},
};

/* App is one element of apps being turned into a stage. */
typedef struct App {
    ImportDoc *d;
    ImportStage *st;
    json_t *obj;
    char *err;
    size_t errlen;
} App;

/* as_text: a string, number or boolean as the text PM2 would pass on. */
static bool as_text(json_t *v, char *buf, size_t n, const char **out)
{
    if (json_is_string(v))
        *out = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v)), *out = buf;
    else if (json_is_real(v))
        snprintf(buf, n, "%.17g", json_real_value(v)), *out = buf;
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else
        return false;
    return true;
}

static bool app_fail(App *a, const char *key, const char *what)
{
    return errf(a->err, a->errlen, "%s: %s: %s: %s", a->d->file, a->st->source, key, what);
}

/* split_args is how PM2 reads an args string: white space separates,
 * "..." and '...' keep spaces (the quotes themselves are dropped). */
static void split_args(ImportDoc *d, const char *s, char ***argv)
{
    char *word = malloc(strlen(s) + 1);
    if (!word) {
        d->oom = true;
        return;
    }
    while (*s) {
        size_t n = 0;
        bool any = false;
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n') {
            char q = *s;
            any = true;
            if (q != '"' && q != '\'') {
                word[n++] = *s++;
                continue;
            }
            for (s++; *s && *s != q; s++)
                word[n++] = *s;
            s += *s == q;
        }
        word[n] = '\0';
        if (any)
            import_argv_push(d, argv, word);
    }
    free(word);
}

/* add_args appends a string (split) or an array of strings and numbers. */
static bool add_args(App *a, const char *key, char ***argv)
{
    json_t *v = json_object_get(a->obj, key);
    char buf[64];
    const char *t;
    size_t i;
    json_t *e;
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        split_args(a->d, str, argv);
        /* PM2 splits such a string with a regular expression that differs
         * between its versions and keeps quotes in some cases */
        if (strpbrk(str, " \t\n\"'"))
                import_note(a->d, &a->st->notes, "%s is a string: split at white space, \"...\" "
                        "and '...' kept together; check the command (an array is exact)", key);
        return true;
    }
    if (!json_is_array(v))
        return app_fail(a, key, "must be a string or an array of strings");
    json_array_foreach(v, i, e) {
        if (!as_text(e, buf, sizeof buf, &t))
            return app_fail(a, key, "must be a string or an array of strings");
        import_argv_push(a->d, argv, t);
    }
    return true;
}

/* interpreter_for is PM2's interpreter.json: the interpreter by extension. */
static const char *interpreter_for(const char *script)
{
    static const char *const map[][2] = {
        {".sh", "bash"}, {".py", "python"}, {".rb", "ruby"}, {".php", "php"}, {".pl", "perl"},
        {".js", "node"}, {".cjs", "node"}, {".mjs", "node"}, {".coffee", "coffee"},
        {".ts", "bun"}, {".tsx", "bun"},
    };
    const char *slash = strrchr(script, '/'), *dot = strrchr(slash ? slash : script, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* app_command builds argv: interpreter, interpreter_args, script, args. */
static bool app_command(App *a)
{
    json_t *js = json_object_get(a->obj, "script");
    const char *script = json_string_value(js);
    if (!script || !*script)
        return app_fail(a, "script", js ? "must be a non-empty string" : "missing (every app "
                        "needs one)");
    const char *interp = json_string_value(json_object_get(a->obj, "interpreter"));
    if (!interp)
        interp = json_string_value(json_object_get(a->obj, "exec_interpreter"));
    char ***argv = &a->st->argv;
    bool by_ext = false;
    if (!interp && (interp = interpreter_for(script)))
        by_ext = true;
    if (interp && strcmp(interp, "none") != 0) {
        split_args(a->d, interp, argv);
        if (!add_args(a, "interpreter_args", argv) || !add_args(a, "node_args", argv))
            return false;
        if (by_ext)
            import_note(a->d, &a->st->notes, "interpreter: %s, as PM2 picks it for this "
                        "script's extension", interp);
    } else if (!interp) {
        import_note(a->d, &a->st->notes, "script = %s is run directly: PM2 runs a file without "
                    "a known extension with node unless it is a binary; check", script);
    }
    /* PM2 looks for the script in cwd before PATH; exec would only search PATH */
    char *path = NULL;
    bool direct = !interp || strcmp(interp, "none") == 0;
    if (direct && !strchr(script, '/') && json_object_get(a->obj, "cwd")) {
        if (asprintf(&path, "./%s", script) < 0)
            path = NULL, a->d->oom = true;
        import_note(a->d, &a->st->notes, "script = %s: written ./%s, as PM2 looks for it in "
                    "cwd first (use the bare name if it is a command on PATH)", script, script);
    }
    import_argv_push(a->d, argv, path ? path : script);
    free(path);
    return add_args(a, "args", argv);
}

static void app_string(App *a, const char *key, json_t *v, char **dst)
{
    char buf[64];
    const char *t;
    const char *why = !as_text(v, buf, sizeof buf, &t) ? "is not a string"
                                                        : import_value_problem(t, true);
    if (why)
        import_note(a->d, &a->st->notes, "%s not carried over: the value %s", key, why);
    else
        import_set(a->d, dst, t);
}

static void app_env(App *a, json_t *env)
{
    const char *k;
    json_t *v;
    char buf[64];
    const char *t;
    if (!json_is_object(env)) {
        import_note(a->d, &a->st->notes, "env not carried over: it is not an object");
        return;
    }
    json_object_foreach(env, k, v) {
        if (as_text(v, buf, sizeof buf, &t))
            import_env_add(a->d, a->st, k, t);
        else
            import_note(a->d, &a->st->notes, "env: %s not carried over: its value is not a "
                        "string, number or boolean", k);
    }
}

/* ms_value reads a millisecond count (a number, or a string of digits). */
static bool ms_value(json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
        return *ms >= 0;
    }
    const char *s = json_string_value(v);
    char *end;
    if (!s || !*s)
        return false;
    *ms = strtoll(s, &end, 10);
    return !*end && *ms >= 0;
}

static void app_instances(App *a, json_t *v)
{
    int64_t n = -2;
    const char *s = json_string_value(v);
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (s && strcmp(s, "max") != 0 && !ms_value(v, &n))
        n = -2;
    if (n >= 1 && n <= 100000) {
        a->st->max_workers = (int)n;
        return;
    }
    char buf[64];
    const char *t = "?";
    (void)as_text(v, buf, sizeof buf, &t);
    import_note(a->d, &a->st->notes, "instances = %s not carried over: %s; set max_workers "
                "to a number", t, (s && !strcmp(s, "max")) || n == 0 || n == -1
                ? "PM2 starts one per CPU (or one less for -1)" : "it is not a positive count");
}

/* app_memory: max_memory_restart ("300M", "1G", a number of bytes). */
static void app_memory(App *a, json_t *v)
{
    char buf[64];
    const char *t;
    int64_t bytes;
    if (as_text(v, buf, sizeof buf, &t)) {
        char up[64];
        snprintf(up, sizeof up, "%s", t);
        size_t n = strlen(up);
        if (n && (up[n - 1] == 'k' || up[n - 1] == 'm' || up[n - 1] == 'g'))
            up[n - 1] = (char)(up[n - 1] - 'a' + 'A');
        if (n && units_parse_size(up, &bytes) && bytes > 0) {
            import_set(a->d, &a->st->memory_limit, up);
            import_note(a->d, &a->st->notes, "max_memory_restart = %s: memory_limit restarts a "
                        "worker over it once its task is done", t);
            return;
        }
    }
    import_note(a->d, &a->st->notes, "max_memory_restart not carried over: not a size like "
                "300M");
}

/* app_ms: kill_timeout and restart_delay, PM2's milliseconds. */
static void app_ms(App *a, const char *key, json_t *v)
{
    int64_t ms;
    if (!ms_value(v, &ms)) {
        import_note(a->d, &a->st->notes, "%s not carried over: not a number of milliseconds",
                    key);
    } else if (strcmp(key, "kill_timeout") == 0) {
        a->st->stop_timeout_ms = a->st->kill_timeout_ms = ms;
        import_note(a->d, &a->st->notes, "kill_timeout = %lld: PM2 waits that long between "
                    "SIGINT and SIGKILL; pgwake first sends S on the wake fd and waits "
                    "stop_timeout, then SIGTERM (not SIGINT) and kill_timeout: both are set "
                    "to it", (long long)ms);
    } else {
        a->st->restart_delay_ms = ms;
    }
}

static void app_restarts(App *a, json_t *v)
{
    int64_t n;
    if (!ms_value(v, &n)) {
        import_note(a->d, &a->st->notes, "max_restarts not carried over: not a count");
        return;
    }
    a->st->max_restarts = n < 1 ? 1 : n > 1000000 ? 1000000 : (int)n;
    import_note(a->d, &a->st->notes, "max_restarts = %lld: PM2 counts restarts in a row within "
                "min_uptime; pgwake makes the stage FATAL after max_restarts crashes within "
                "restart_window (5m by default)%s", (long long)n, n < 1 ? " (0 became 1)" : "");
}

/* one_key carries over, or notes, one setting of the app. */
static void one_key(App *a, const char *k, json_t *v)
{
    static const char *const command_keys[] = {"script", "args", "interpreter",
                                                "exec_interpreter", "interpreter_args",
                                                "node_args", "name"};
    for (size_t i = 0; i < sizeof command_keys / sizeof command_keys[0]; i++)
        if (strcmp(k, command_keys[i]) == 0)
            return;
    if (!strcmp(k, "cwd")) {
        app_string(a, "cwd", v, &a->st->directory);
        if (a->st->directory && a->st->directory[0] != '/')
            import_note(a->d, &a->st->notes, "cwd = %s is relative: pgwake takes it from the "
                        "folder of this configuration file", a->st->directory);
    } else if (!strcmp(k, "user") || !strcmp(k, "uid"))
        app_string(a, k, v, &a->st->user);
    else if (!strcmp(k, "env"))
        app_env(a, v);
    else if (!strncmp(k, "env_", 4))
        import_note(a->d, &a->st->notes, "%s not carried over: PM2 applies it only with "
                    "--env %s; merge what you use into environment", k, k + 4);
    else if (!strcmp(k, "instances"))
        app_instances(a, v);
    else if (!strcmp(k, "kill_timeout") || !strcmp(k, "restart_delay"))
        app_ms(a, k, v);
    else if (!strcmp(k, "max_restarts"))
        app_restarts(a, v);
    else if (!strcmp(k, "max_memory_restart"))
        app_memory(a, v);
    else {
        const char *why = "not a PM2 setting pgwake knows";
        for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
            if (strcmp(dropped[i].key, k) == 0)
                why = dropped[i].why;
        import_note(a->d, &a->st->notes, "%s not carried over: %s", k, why);
    }
}

/* app_name is PM2's default name: the script's file name without extension. */
static void app_name(json_t *obj, char *buf, size_t n)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *script = json_string_value(json_object_get(obj, "script"));
    if (name || !script) {
        snprintf(buf, n, "%s", name ? name : "app");
        return;
    }
    const char *base = strrchr(script, '/') ? strrchr(script, '/') + 1 : script;
    snprintf(buf, n, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

static bool one_app(ImportDoc *d, json_t *obj, size_t idx, char *err, size_t errlen)
{
    char source[48], name[256];
    snprintf(source, sizeof source, "apps[%zu]", idx);
    if (!json_is_object(obj))
        return errf(err, errlen, "%s: %s: not an object", d->file, source);
    app_name(obj, name, sizeof name);
    App a = {.d = d, .obj = obj, .err = err, .errlen = errlen};
    if (!(a.st = import_stage_add(d, name, source, 0)))
        return errf(err, errlen, "out of memory");
    if (!app_command(&a))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
        one_key(&a, k, v);
    import_note(d, &a.st->notes, "min_workers is left at 0: PM2 kept the app running from "
                "its start; pgwake starts workers when there is work and stops them when "
                "idle (set min_workers to keep them running without work)");
    return true;
}

/* load fails with jansson's line and column, or says what to do with the
 * JavaScript form of an ecosystem file. */
static json_t *load(ImportDoc *d, const char *data, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (root)
        return root;
    if (memmem(data, len, "module.exports", 14) || memmem(data, len, "export default", 14))
        errf(err, errlen, "%s: a JavaScript ecosystem file, which pgwake does not run; turn "
             "it into JSON first: node -e 'console.log(JSON.stringify(require(process.argv[1]),"
             " null, 2))' \"%s%s\" > ecosystem.json", d->file, d->file[0] == '/' ? "" : "$PWD/",
             d->file);
    else {
        for (char *c = je.text; *c; c++) /* jansson quotes the input: keep one line */
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        errf(err, errlen, "%s:%d:%d: %s (pgwake reads strict JSON, without the comments and "
             "trailing commas PM2 also takes: see pgwake help import)", d->file, je.line,
             je.column, je.text);
    }
    return NULL;
}

/* import_pm2 reads a PM2 ecosystem file in JSON ({"apps": [...]}, a list
 * of apps, or one app) into d; false with the file and what is wrong. */
bool import_pm2(ImportDoc *d, const char *data, size_t len, char *err, size_t errlen)
{
    json_t *root = load(d, data, len, err, errlen);
    if (!root)
        return false;
    json_t *apps = json_is_object(root) ? json_object_get(root, "apps") : root;
    if (!apps && json_object_get(root, "script"))
        apps = root;
    bool ok = true;
    if (json_is_object(apps)) {
        ok = one_app(d, apps, 0, err, errlen);
    } else if (json_is_array(apps) && json_array_size(apps) > 0) {
        size_t i;
        json_t *app;
        json_array_foreach(apps, i, app)
            if (ok)
                ok = one_app(d, app, i, err, errlen);
    } else {
        ok = errf(err, errlen, "%s: no apps: expected {\"apps\": [{\"name\": ..., \"script\": "
                  "...}, ...]}", d->file);
    }
    if (ok && json_is_object(root) && apps != root) {
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v)
            if (strcmp(k, "apps") != 0)
                import_note(d, &d->notes, "\"%s\" (top level) not carried over: %s", k,
                            strcmp(k, "deploy") == 0 ? "pgwake does not deploy code"
                                                     : "not a PM2 setting pgwake knows");
    }
    json_decref(root);
    if (ok && d->oom)
        ok = errf(err, errlen, "out of memory");
    if (ok)
        import_finish(d);
    return ok && !d->oom;
}
