/* import.c: the model `pgwake import` fills from a supervisord or PM2 file:
 * stages, their notes, environment entries checked against what a pgwake
 * configuration can hold, and stage names made valid and unique. */
#include "import.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "config.h"

/* Allocation failures set d->oom rather than being checked at every call:
 * the importer is a one-shot command, and one flag tested at the end keeps
 * the parsers readable. */

/* import_doc_init empties d for an import of kind from file (both kept by
 * reference: they outlive the doc). */
void import_doc_init(ImportDoc *d, const char *kind, const char *file)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->file = file;
    d->tail = &d->stages;
}

static void notes_free(ImportNotes *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

/* import_doc_free frees every stage and note; the doc may be half-filled. */
void import_doc_free(ImportDoc *d)
{
    ImportStage *st = d->stages;
    while (st) {
        ImportStage *next = st->next;
        free(st->source);
        free(st->orig_name);
        free(st->name);
        argv_free(st->argv);
        free(st->directory);
        free(st->user);
        free(st->memory_limit);
        argv_free(st->env);
        notes_free(&st->notes);
        free(st);
        st = next;
    }
    notes_free(&d->notes);
    d->stages = NULL;
    d->tail = &d->stages;
}

/* import_strdup copies s, recording a failure in d. */
char *import_strdup(ImportDoc *d, const char *s)
{
    char *c = strdup(s);
    if (!c)
        d->oom = true;
    return c;
}

/* import_set replaces *dst with a copy of s (a later duplicate key wins). */
void import_set(ImportDoc *d, char **dst, const char *s)
{
    free(*dst);
    *dst = import_strdup(d, s);
}

/* import_stage_add appends a stage with every number unset. */
ImportStage *import_stage_add(ImportDoc *d, const char *orig_name, const char *source, int line)
{
    ImportStage *st = calloc(1, sizeof *st);
    if (!st) {
        d->oom = true;
        return NULL;
    }
    st->orig_name = import_strdup(d, orig_name);
    st->source = import_strdup(d, source);
    st->line = line;
    st->max_restarts = -1;
    st->stop_timeout_ms = st->kill_timeout_ms = st->restart_delay_ms = -1;
    *d->tail = st;
    d->tail = &st->next;
    return st;
}

/* import_note adds one comment; the writer wraps it and masks control bytes. */
void import_note(ImportDoc *d, ImportNotes *n, const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0) {
        d->oom = true;
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->v[i], s) == 0) { /* a value read twice notes once */
            free(s);
            return;
        }
    }
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 8;
        char **v = realloc(n->v, cap * sizeof *v);
        if (!v) {
            free(s);
            d->oom = true;
            return;
        }
        n->v = v;
        n->cap = cap;
    }
    n->v[n->n++] = s;
}

/* import_argv_push appends a copy of s to a NULL-terminated vector. */
void import_argv_push(ImportDoc *d, char ***argv, const char *s)
{
    size_t n = 0;
    while (*argv && (*argv)[n])
        n++;
    char **v = realloc(*argv, (n + 2) * sizeof *v);
    char *c = strdup(s);
    if (!v || !c) {
        free(c);
        if (v)
            *argv = v;
        d->oom = true;
        return;
    }
    v[n] = c;
    v[n + 1] = NULL;
    *argv = v;
}

/* import_value_problem says why v cannot be written as a pgwake value, or
 * NULL when it can. raw: written as it is (directory, user), so it must not
 * start or end with white space either; otherwise it goes inside quotes. */
const char *import_value_problem(const char *v, bool raw)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return "holds a control character (a newline, a tab, ...)";
        if (c == ';' && p > v && (p[-1] == ' ' || p[-1] == '\t'))
            return "holds \" ;\", which starts a comment in a pgwake configuration";
    }
    if (raw && *v && (v[0] == ' ' || v[strlen(v) - 1] == ' '))
        return "starts or ends with a space";
    if (raw && (*v == ';' || *v == '#'))
        return "starts with a comment character";
    if (raw && strlen(v) > 180)
        return "is too long for one line of a pgwake configuration";
    return NULL;
}

/* import_env_add sets key=value in the stage's environment (a later value
 * for the same key replaces the earlier one, as in both sources), or notes
 * why it cannot. */
void import_env_add(ImportDoc *d, ImportStage *st, const char *key, const char *value)
{
    size_t klen = strlen(key);
    if (!env_name_valid(key, klen)) {
        import_note(d, &st->notes,
                    "environment: %s not carried over: pgwake takes only names like "
                    "[A-Za-z_][A-Za-z0-9_]*; set it in the worker itself",
                    key);
        return;
    }
    const char *why = import_value_problem(value, false);
    if (why) {
        import_note(d, &st->notes,
                    "environment: %s not carried over: its value %s; set it in the "
                    "[pgwake] env_file instead",
                    key, why);
        return;
    }
    char *kv;
    if (asprintf(&kv, "%s=%s", key, value) < 0) {
        d->oom = true;
        return;
    }
    size_t n = 0;
    for (; st->env && st->env[n]; n++) {
        if (strncmp(st->env[n], kv, klen + 1) == 0) {
            free(st->env[n]);
            st->env[n] = kv;
            return;
        }
    }
    char **v = realloc(st->env, (n + 2) * sizeof *v);
    if (!v) {
        free(kv);
        d->oom = true;
        return;
    }
    v[n] = kv;
    v[n + 1] = NULL;
    st->env = v;
}

/* map_name lowercases orig and turns every byte a stage name cannot hold
 * into '_', keeping at most max bytes. */
static void map_name(const char *orig, char *out, size_t max)
{
    size_t n = 0;
    for (const char *p = orig; *p && n < max; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (n > 0 && (c == '.' || c == '-'));
        out[n++] = ok ? c : '_';
    }
    if (!n)
        memcpy(out, "stage", (n = 5));
    out[n] = '\0';
}

static bool name_taken(const ImportDoc *d, const ImportStage *upto, const char *name)
{
    for (const ImportStage *s = d->stages; s && s != upto; s = s->next)
        if (s->name && strcmp(s->name, name) == 0)
            return true;
    return false;
}

/* import_finish gives every stage a valid name no earlier stage has, noting
 * each one that had to change (stage names: SPEC section 7). */
void import_finish(ImportDoc *d)
{
    for (ImportStage *st = d->stages; st; st = st->next) {
        char base[64], name[64];
        const char *orig = st->orig_name ? st->orig_name : "";
        map_name(orig, base, 63);
        strcpy(name, base);
        for (int i = 2; name_taken(d, st, name); i++) {
            char suffix[16];
            int sl = snprintf(suffix, sizeof suffix, "_%d", i);
            map_name(orig, base, 63 - (size_t)sl);
            snprintf(name, sizeof name, "%s%s", base, suffix);
        }
        st->name = import_strdup(d, name);
        if (strcmp(name, orig) != 0 && stage_name_valid(orig))
            import_note(d, &st->notes, "named %s: %s is the name of an earlier stage", name, orig);
        else if (strcmp(name, orig) != 0)
            import_note(d, &st->notes,
                        "named %s: \"%s\" is not a valid stage name "
                        "(^[a-z0-9_][a-z0-9_.-]{0,62}$)",
                        name, orig);
        st->renamed = strcmp(name, orig) != 0 && st->notes.n > 0;
        if (st->renamed && st->notes.n > 1) {
            /* the renaming is said first, right under the section header */
            char *last = st->notes.v[st->notes.n - 1];
            memmove(st->notes.v + 1, st->notes.v, (st->notes.n - 1) * sizeof *st->notes.v);
            st->notes.v[0] = last;
        }
    }
}
