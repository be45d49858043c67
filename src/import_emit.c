/* import_emit.c: writes an ImportDoc as a pgwake configuration that
 * cfg_load accepts: values quoted for argv_split and env_list_split, long
 * values continued on indented lines, no line of 199 bytes or more, and
 * never " ;" inside a value (SPEC section 7). */
#include "import.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "errfmt.h"
#include "units.h"

#define WIDTH 100    /* where lines are wrapped when they can be */
#define MAX_LINE 198 /* the configuration reader refuses longer lines */
#define INDENT "    "

/* Text is a growing string for one value. */
typedef struct Text {
    char *s;
    size_t len, cap;
    bool oom;
} Text;

static void text_putn(Text *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *c = realloc(t->s, cap);
        if (!c) {
            t->oom = true;
            return;
        }
        t->s = c;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_put(Text *t, const char *s)
{
    text_putn(t, s, strlen(s));
}

static bool all_safe(const char *s, const char *extra)
{
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(extra, c);
        if (!ok || !c)
            return false;
    }
    return true;
}

/* quote_arg writes one argument so argv_split gives it back: bare when it
 * holds only safe bytes, else in single quotes. A ';' after white space is
 * written \; outside the quotes, because " ;" would start a comment. */
static void quote_arg(Text *t, const char *a)
{
    if (*a && all_safe(a, "_@%+=:,./-")) {
        text_put(t, a);
        return;
    }
    text_put(t, "'");
    for (const char *p = a; *p; p++) {
        if (*p == '\'')
            text_put(t, "'\\''");
        else if (*p == ';' && p > a && (p[-1] == ' ' || p[-1] == '\t'))
            text_put(t, "'\\;'");
        else
            text_putn(t, p, 1);
    }
    text_put(t, "'");
}

/* quote_env writes K=V so env_list_split gives it back: V bare when safe,
 * else in double quotes with \" and \\ escaped. */
static void quote_env(Text *t, const char *kv)
{
    const char *eq = strchr(kv, '=');
    text_putn(t, kv, (size_t)(eq - kv) + 1);
    if (all_safe(eq + 1, "_@%+=:./-")) {
        text_put(t, eq + 1);
        return;
    }
    text_put(t, "\"");
    for (const char *p = eq + 1; *p; p++) {
        if (*p == '"' || *p == '\\')
            text_put(t, "\\");
        text_putn(t, p, 1);
    }
    text_put(t, "\"");
}

/* can_break: the reader joins continuation lines with one space, skips an
 * indented line that starts with ';' or '#', and trims line ends; so a value
 * may only be cut at a lone space before some other character. */
static bool can_break(const char *v, size_t i)
{
    return v[i] == ' ' && i > 0 && v[i - 1] != ' ' && v[i - 1] != '\t' && v[i + 1] &&
           v[i + 1] != ' ' && v[i + 1] != '\t' && v[i + 1] != ';' && v[i + 1] != '#';
}

/* put_value writes "key = value", continued on indented lines past WIDTH
 * (or MAX_LINE when nothing shorter fits); false when a piece is too long. */
static bool put_value(FILE *out, const char *key, const char *v)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s = ", key);
    const char *pre = prefix;
    for (;;) {
        size_t room = WIDTH - strlen(pre), len = strlen(v);
        if (len <= room) {
            fprintf(out, "%s%s\n", pre, v);
            return true;
        }
        size_t cut = 0;
        for (size_t i = 1; i < len && i <= room; i++)
            if (can_break(v, i))
                cut = i;
        for (size_t i = room + 1; !cut && i < len && i <= MAX_LINE - strlen(pre); i++)
            if (can_break(v, i))
                cut = i;
        if (!cut)
            return len <= MAX_LINE - strlen(pre) && fprintf(out, "%s%s\n", pre, v) > 0;
        fprintf(out, "%s%.*s\n", pre, (int)cut, v);
        v += cut + 1;
        pre = INDENT;
    }
}

/* put_comment writes text as "; " lines wrapped at spaces; control bytes
 * (from the input's own values) become spaces so a note stays a comment. */
static void put_comment(FILE *out, const char *text)
{
    char *s = strdup(text);
    if (!s) {
        fputs("; (out of memory)\n", out);
        return;
    }
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    const char *p = s;
    do {
        size_t len = strlen(p), n = len;
        if (len > WIDTH - 2) {
            n = 0;
            for (size_t i = 1; i <= WIDTH - 2; i++)
                if (p[i] == ' ')
                    n = i;
            if (!n)
                n = WIDTH - 2; /* one long word: cut it */
        }
        fprintf(out, "; %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    } while (*p);
    free(s);
}

static void put_duration(FILE *out, const char *key, int64_t ms)
{
    char buf[32];
    if (ms >= 0)
        fprintf(out, "%s = %s\n", key, units_format_duration(ms, buf, sizeof buf));
}

/* put_env writes the environment list, one comment instead for an entry
 * too long for any line. */
static bool put_env(FILE *out, const ImportStage *st)
{
    Text t = {0};
    for (char **e = st->env; e && *e; e++) {
        Text item = {0};
        quote_env(&item, *e);
        if (item.oom)
            return false;
        if (item.len > MAX_LINE - 20) {
            char note[160];
            snprintf(note, sizeof note,
                     "environment: %.*s not carried over: too long for one line of a pgwake "
                     "configuration; set it in the [pgwake] env_file",
                     (int)(strchr(*e, '=') - *e), *e);
            put_comment(out, note);
        } else {
            if (t.len)
                text_put(&t, ", ");
            text_put(&t, item.s);
        }
        free(item.s);
    }
    bool ok = !t.oom && (!t.len || put_value(out, "environment", t.s));
    free(t.s);
    return ok;
}

static bool put_stage(FILE *out, const ImportDoc *d, const ImportStage *st, char *err, size_t errlen)
{
    char from[160];
    Text cmd = {0};
    for (char **a = st->argv; a && *a; a++) {
        for (const char *p = *a; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                free(cmd.s);
                return errf(err, errlen, "%s: %s: the command holds a control character "
                            "(a newline, a tab, ...), which a pgwake configuration cannot hold",
                            d->file, st->source);
            }
        if (cmd.len)
            text_put(&cmd, " ");
        quote_arg(&cmd, *a);
    }
    fprintf(out, "\n[stage:%s]\n", st->name);
    if (st->line)
        snprintf(from, sizeof from, "from %s, line %d", st->source, st->line);
    else
        snprintf(from, sizeof from, "from %s", st->source);
    put_comment(out, from);
    if (st->renamed)
        put_comment(out, st->notes.v[0]);
    if (cmd.oom || !cmd.len || !put_value(out, "command", cmd.s)) {
        free(cmd.s);
        return errf(err, errlen, "%s: %s: %s", d->file, st->source,
                    cmd.len ? "an argument of the command is too long for one line of a pgwake "
                              "configuration (at most 180 bytes)"
                            : "no command");
    }
    free(cmd.s);
    if (st->directory)
        fprintf(out, "directory = %s\n", st->directory);
    if (st->user)
        fprintf(out, "user = %s\n", st->user);
    if (!put_env(out, st))
        return errf(err, errlen, "out of memory");
    if (st->max_workers > 0)
        fprintf(out, "max_workers = %d\n", st->max_workers);
    put_duration(out, "stop_timeout", st->stop_timeout_ms);
    put_duration(out, "kill_timeout", st->kill_timeout_ms);
    if (st->max_restarts >= 0)
        fprintf(out, "max_restarts = %d\n", st->max_restarts);
    put_duration(out, "restart_delay", st->restart_delay_ms);
    if (st->restart_delay_ms > 60000) /* restart_delay may not exceed restart_delay_max */
        put_duration(out, "restart_delay_max", st->restart_delay_ms);
    if (st->memory_limit)
        fprintf(out, "memory_limit = %s\n", st->memory_limit);
    for (size_t i = st->renamed; i < st->notes.n; i++)
        put_comment(out, st->notes.v[i]);
    return true;
}

/* import_emit writes the whole configuration: a [pgwake] section with dsn
 * commented out (so `pgwake check` asks for it), the file-level notes, then
 * one [stage:NAME] per program; false with err for a command no
 * configuration line can hold. */
bool import_emit(const ImportDoc *d, FILE *out, char *err, size_t errlen)
{
    char head[600];
    snprintf(head, sizeof head, "pgwake configuration made by `pgwake import %s %s`. Read every "
             "comment, set dsn, then run `pgwake check -c THIS_FILE`.", d->kind, d->file);
    put_comment(out, head);
    fputs("[pgwake]\n"
          "; dsn = postgresql:///DBNAME   ; or -d DSN, PGWAKE_DSN, DATABASE_URL (SPEC section 6)\n",
          out);
    if (d->notes.n)
        fputs("\n", out);
    for (size_t i = 0; i < d->notes.n; i++)
        put_comment(out, d->notes.v[i]);
    for (const ImportStage *st = d->stages; st; st = st->next)
        if (!put_stage(out, d, st, err, errlen))
            return false;
    if (fflush(out) != 0 || ferror(out))
        return errf(err, errlen, "unable to write the configuration: %s", "write error");
    return true;
}
