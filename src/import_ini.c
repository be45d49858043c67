/* import_ini.c: reads a supervisord file by the rules of Python's
 * configparser as supervisord sets it up, and splits values the way
 * supervisord does with shlex. libinih is not used: its rules differ on
 * every point that matters here ('#' inline comments, ':' as a delimiter,
 * continuation lines by indentation, blank lines inside values). */
#include "import_ini.h"

#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "errfmt.h"

/* py_space: what Python's str.isspace() says for an ASCII byte. */
static bool py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Str is a growing string. */
typedef struct Str {
    char *s;
    size_t len, cap;
} Str;

static bool str_putn(Str *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *c = realloc(b->s, cap);
        if (!c)
            return false;
        b->s = c;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

static IniSect *sect_find(Ini *ini, const char *name)
{
    for (size_t i = 0; i < ini->n; i++)
        if (strcmp(ini->sects[i].name, name) == 0)
            return &ini->sects[i];
    return NULL;
}

static IniSect *sect_open(Ini *ini, const char *name, int line)
{
    if (strcmp(name, "DEFAULT") == 0)
        return &ini->defaults;
    IniSect *s = sect_find(ini, name);
    if (s)
        return s;
    if (ini->n == ini->cap) {
        size_t cap = ini->cap ? ini->cap * 2 : 8;
        IniSect *v = realloc(ini->sects, cap * sizeof *v);
        if (!v)
            return NULL;
        ini->sects = v;
        ini->cap = cap;
    }
    s = &ini->sects[ini->n];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name)))
        return NULL;
    s->line = line;
    ini->n++;
    return s;
}

/* opt_set gives key a new one-line value (a repeated key replaces the old). */
static IniOpt *opt_set(IniSect *s, const char *key, const char *value, int line)
{
    IniOpt *o = NULL;
    for (size_t i = 0; i < s->n && !o; i++)
        if (strcmp(s->opts[i].key, key) == 0)
            o = &s->opts[i];
    if (!o) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            IniOpt *v = realloc(s->opts, cap * sizeof *v);
            if (!v)
                return NULL;
            s->opts = v;
            s->cap = cap;
        }
        o = &s->opts[s->n];
        memset(o, 0, sizeof *o);
        if (!(o->key = strdup(key)))
            return NULL;
        s->n++;
    }
    free(o->value);
    o->line = line;
    return (o->value = strdup(value)) ? o : NULL;
}

/* opt_append adds a continuation line ("" for a blank one) to o. */
static bool opt_append(IniOpt *o, const char *piece)
{
    Str b = {o->value, strlen(o->value), strlen(o->value) + 1};
    if (!str_putn(&b, "\n", 1) || !str_putn(&b, piece, strlen(piece)))
        return false;
    o->value = b.s;
    return true;
}

/* comment_start: the first ';' or '#' at the start or after white space
 * (supervisord's inline_comment_prefixes), or len when none. */
static size_t comment_start(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((line[i] == ';' || line[i] == '#') && (i == 0 || py_space(line[i - 1])))
            return i;
    return len;
}

/* The state of one read: the section and option continuation lines go to. */
typedef struct IniRead {
    Ini *ini;
    IniSect *sect;
    IniOpt *opt;
    size_t indent; /* of the option's line */
    const char *file;
    char *err;
    size_t errlen;
} IniRead;

static bool oom(IniRead *r)
{
    return errf(r->err, r->errlen, "out of memory");
}

/* one_line handles one physical line (its end removed), as configparser's
 * _read does. */
static bool one_line(IniRead *r, char *line, size_t len, int lineno)
{
    if (strlen(line) != len)
        return errf(r->err, r->errlen, "%s:%d: the line holds a NUL byte", r->file, lineno);
    size_t cs = comment_start(line, len), a = 0, b = cs;
    while (a < b && py_space(line[a]))
        a++;
    while (b > a && py_space(line[b - 1]))
        b--;
    line[b] = '\0';
    char *value = line + a;
    if (!*value) {
        /* a blank line belongs to a value being continued; a comment does not */
        if (cs == len && r->opt && !opt_append(r->opt, ""))
            return oom(r);
        return true;
    }
    size_t indent = 0;
    while (py_space(line[indent]))
        indent++;
    if (r->opt && indent > r->indent)
        return opt_append(r->opt, value) || oom(r);
    r->indent = indent;
    char *close = strrchr(value, ']');
    if (value[0] == '[' && close && close > value + 1) {
        *close = '\0';
        if (!(r->sect = sect_open(r->ini, value + 1, lineno)))
            return oom(r);
        r->opt = NULL;
        return true;
    }
    if (!r->sect)
        return errf(r->err, r->errlen, "%s:%d: \"%s\" comes before any [section] header", r->file,
                    lineno, value);
    size_t k = strcspn(value, "=:");
    if (!value[k] || k == 0)
        return errf(r->err, r->errlen, "%s:%d: [%s]: \"%s\" is not KEY = VALUE", r->file, lineno,
                    r->sect->name, value);
    char *v = value + k + 1;
    while (k > 0 && py_space(value[k - 1]))
        k--;
    value[k] = '\0';
    for (char *p = value; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    while (py_space(*v))
        v++;
    return (r->opt = opt_set(r->sect, value, v, lineno)) || oom(r);
}

static void rstrip_values(IniSect *s)
{
    for (size_t i = 0; i < s->n; i++) {
        char *v = s->opts[i].value;
        size_t n = strlen(v);
        while (n > 0 && py_space(v[n - 1]))
            v[--n] = '\0';
    }
}

/* ini_read parses data into ini; false with "FILE:LINE: what" for a line
 * configparser refuses (no section yet, no delimiter, no key) or a NUL. */
bool ini_read(Ini *ini, const char *file, const char *data, size_t len, char *err, size_t errlen)
{
    IniRead r = {.ini = ini, .file = file, .err = err, .errlen = errlen};
    memset(ini, 0, sizeof *ini);
    ini->defaults.name = strdup("DEFAULT");
    if (!ini->defaults.name)
        return oom(&r);
    size_t pos = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* a UTF-8 byte order mark, as an editor may write it */
    for (int lineno = 1; pos < len; lineno++) {
        size_t end = pos;
        while (end < len && data[end] != '\n' && data[end] != '\r')
            end++;
        char *line = strndup(data + pos, end - pos);
        if (!line)
            return oom(&r);
        /* strndup stops at a NUL: one_line sees the shorter length */
        bool ok = one_line(&r, line, end - pos, lineno);
        free(line);
        if (!ok)
            return false;
        pos = end + (end < len && data[end] == '\r' && end + 1 < len && data[end + 1] == '\n');
        pos += end < len;
    }
    for (size_t i = 0; i < ini->n; i++)
        rstrip_values(&ini->sects[i]);
    rstrip_values(&ini->defaults);
    return true;
}

static void sect_free(IniSect *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->opts[i].key);
        free(s->opts[i].value);
    }
    free(s->opts);
    free(s->name);
}

/* ini_free frees every section, also of a half-read file. */
void ini_free(Ini *ini)
{
    for (size_t i = 0; i < ini->n; i++)
        sect_free(&ini->sects[i]);
    free(ini->sects);
    sect_free(&ini->defaults);
    memset(ini, 0, sizeof *ini);
}

/* ini_get finds key in s, else in [DEFAULT]; NULL when neither has it. */
const IniOpt *ini_get(const Ini *ini, const IniSect *s, const char *key)
{
    const IniSect *in[2] = {s, &ini->defaults};
    for (int j = 0; j < 2; j++)
        for (size_t i = 0; i < in[j]->n; i++)
            if (strcmp(in[j]->opts[i].key, key) == 0)
                return &in[j]->opts[i];
    return NULL;
}

/* Vec is a growing NULL-terminated vector of tokens. */
typedef struct Vec {
    char **v;
    size_t n;
} Vec;

static bool vec_push(Vec *v, const Str *tok)
{
    char **nv = realloc(v->v, (v->n + 2) * sizeof *nv);
    if (!nv)
        return false;
    v->v = nv;
    if (!(nv[v->n] = strndup(tok->s ? tok->s : "", tok->len)))
        return false;
    nv[++v->n] = NULL;
    return true;
}

static char **split_fail(Vec *v, Str *tok, char *err, size_t errlen, const char *why)
{
    errf(err, errlen, "%s", why);
    free(tok->s);
    argv_free(v->v);
    return NULL;
}

/* shlex_split_posix is Python's shlex.split(s): POSIX quoting, white space
 * separates, no comments; how supervisord turns a command into argv. Never
 * returns an empty vector without a token: NULL with err on "No closing
 * quotation" or "No escaped character", as Python raises them. */
char **shlex_split_posix(const char *s, char *err, size_t errlen)
{
    Vec v = {calloc(1, sizeof(char *)), 0};
    Str tok = {0};
    char state = ' ', esc_from = ' ';
    bool quoted = false;
    if (!v.v)
        return split_fail(&v, &tok, err, errlen, "out of memory");
    for (const char *p = s;; p++) {
        char c = *p;
        bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        bool ok = true;
        if (state == '\'' || state == '"') {
            quoted = true;
            if (!c)
                return split_fail(&v, &tok, err, errlen, "no closing quotation");
            if (c == state)
                state = 'a';
            else if (c == '\\' && state == '"')
                esc_from = state, state = '\\';
            else
                ok = str_putn(&tok, p, 1);
        } else if (state == '\\') {
            if (!c)
                return split_fail(&v, &tok, err, errlen, "no escaped character");
            /* inside "...", only \" and \\ are escapes; the backslash stays otherwise */
            if (esc_from == '"' && c != '\\' && c != '"')
                ok = str_putn(&tok, "\\", 1);
            ok = ok && str_putn(&tok, p, 1);
            state = esc_from;
        } else if (!c || ws) {
            if (tok.len || quoted)
                ok = vec_push(&v, &tok);
            tok.len = 0;
            quoted = false;
            state = ' ';
            if (!c)
                break;
        } else if (c == '\'' || c == '"') {
            state = c;
        } else if (c == '\\') {
            esc_from = 'a', state = '\\';
        } else {
            ok = str_putn(&tok, p, 1);
            state = 'a';
        }
        if (!ok)
            return split_fail(&v, &tok, err, errlen, "out of memory");
    }
    free(tok.s);
    return v.v;
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("_/.+-():", c));
}

/* shlex_tokens is list(shlex.shlex(s)) with supervisord's extra word
 * characters "/.+-():": non-POSIX mode, so quotes stay in their tokens, '#'
 * skips to the end of the line, and any other byte is a token by itself. */
char **shlex_tokens(const char *s, char *err, size_t errlen)
{
    Vec v = {calloc(1, sizeof(char *)), 0};
    Str tok = {0};
    char state = ' ';
    bool ok = v.v != NULL;
    for (const char *p = s; ok; p++) {
        char c = *p;
        bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        if (c == '#' && (state == ' ' || state == 'a')) {
            /* readline(): the rest of the line, newline included, is skipped */
            while (p[1] && p[1] != '\n')
                p++;
            if (p[1])
                p++;
            continue;
        }
        if (state == '\'' || state == '"') {
            if (!c)
                return split_fail(&v, &tok, err, errlen, "no closing quotation");
            ok = str_putn(&tok, p, 1);
            if (c == state) {
                ok = ok && vec_push(&v, &tok);
                tok.len = 0;
                state = ' ';
            }
            continue;
        }
        if (state == 'a' && (word_char(c) || c == '\'' || c == '"')) {
            ok = str_putn(&tok, p, 1);
            continue;
        }
        if (state == 'a') {
            ok = vec_push(&v, &tok); /* the word ends; c is looked at afresh */
            tok.len = 0;
            state = ' ';
        }
        if (!c)
            break;
        if (ws)
            continue;
        ok = ok && str_putn(&tok, p, 1);
        if (word_char(c)) {
            state = 'a';
        } else if (c == '\'' || c == '"') {
            state = c;
        } else {
            ok = ok && vec_push(&v, &tok);
            tok.len = 0;
        }
    }
    if (!ok)
        return split_fail(&v, &tok, err, errlen, "out of memory");
    free(tok.s);
    return v.v;
}
