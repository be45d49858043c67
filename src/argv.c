/* argv.c: split a command by POSIX shell quoting rules without a shell (no
 * expansion of any kind), and split the `environment` key's KEY=VALUE list. */
#include "argv.h"
#include "errfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; bytes are appended one by one while unquoting. */
typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

/* A growing NULL-terminated string vector (the result of both splitters). */
typedef struct StrVec {
    char **v;
    size_t n, cap;
} StrVec;

/* buf_put appends c, keeping the text NUL-terminated. */
static bool buf_put(Buf *b, char c)
{
    if (b->len + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *s = realloc(b->s, cap);
        if (!s)
            return false;
        b->s = s;
        b->cap = cap;
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
    return true;
}

/* vec_take appends a copy of b's text and empties b. */
static bool vec_take(StrVec *v, Buf *b)
{
    if (v->n + 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        char **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return false;
        v->v = nv;
        v->cap = cap;
    }
    char *s = strndup(b->s ? b->s : "", b->len);
    if (!s)
        return false;
    v->v[v->n++] = s;
    v->v[v->n] = NULL;
    b->len = 0;
    return true;
}

/* is_blank: the shell's word separators (IFS is never consulted). */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* The split state of argv_split: the input position and the word so far. */
typedef struct Splitter {
    const char *start; /* for positions in messages */
    const char *p;
    Buf word;
    char *err;
    size_t errlen;
} Splitter;

/* word_put appends c to the word being built. */
static bool word_put(Splitter *s, char c)
{
    return buf_put(&s->word, c) || errf(s->err, s->errlen, "out of memory");
}

/* single_quoted copies '...' literally; p is on the opening quote. */
static bool single_quoted(Splitter *s)
{
    const char *open = s->p;
    const char *close = strchr(open + 1, '\'');
    if (!close)
        return errf(s->err, s->errlen, "unbalanced single quote (opened at character %zu)",
                       (size_t)(open - s->start) + 1);
    for (const char *c = open + 1; c < close; c++)
        if (!word_put(s, *c))
            return false;
    s->p = close + 1;
    return true;
}

/* double_quoted copies "..." where a backslash escapes only " \ $ ` and a
 * newline (which it removes); p is on the opening quote. */
static bool double_quoted(Splitter *s)
{
    const char *open = s->p++;
    for (; *s->p != '"'; s->p++) {
        char c = *s->p;
        if (!c)
            return errf(s->err, s->errlen, "unbalanced double quote (opened at character %zu)",
                           (size_t)(open - s->start) + 1);
        if (c == '\\' && s->p[1] && strchr("\"\\$`\n", s->p[1])) {
            c = *++s->p;
            if (c == '\n')
                continue;
        }
        if (!word_put(s, c))
            return false;
    }
    s->p++;
    return true;
}

/* one_word consumes the word at p, unquoting it; *any tells whether it made a
 * word at all (a lone backslash-newline makes none, '' makes an empty one). */
static bool one_word(Splitter *s, bool *any)
{
    *any = false;
    while (*s->p && !is_blank(*s->p)) {
        bool ok;
        if (*s->p == '\'') {
            ok = single_quoted(s);
        } else if (*s->p == '"') {
            ok = double_quoted(s);
        } else if (s->p[0] == '\\' && s->p[1] == '\n') {
            s->p += 2; /* a line continuation is no part of any word */
            continue;
        } else if (s->p[0] == '\\' && !s->p[1]) {
            return errf(s->err, s->errlen, "the command ends with a lone backslash");
        } else {
            s->p += *s->p == '\\'; /* a backslash makes the next byte literal */
            ok = word_put(s, *s->p++);
        }
        if (!ok)
            return false;
        *any = true;
    }
    return true;
}

/* argv_split splits cmd into a malloc'd NULL-terminated argv by POSIX shell
 * quoting rules with no expansion at all; NULL with err for an unbalanced
 * quote or an empty command, because workers are exec'd without a shell. */
char **argv_split(const char *cmd, char *err, size_t errlen)
{
    Splitter s = {.start = cmd, .p = cmd, .err = err, .errlen = errlen};
    StrVec v = {0};
    for (;;) {
        while (is_blank(*s.p))
            s.p++;
        if (!*s.p)
            break;
        bool any;
        if (!one_word(&s, &any))
            goto fail;
        if (any && !vec_take(&v, &s.word)) {
            errf(err, errlen, "out of memory");
            goto fail;
        }
    }
    free(s.word.s);
    if (!v.n) {
        errf(err, errlen, "empty command");
        return NULL;
    }
    return v.v;
fail:
    free(s.word.s);
    argv_free(v.v);
    return NULL;
}

/* argv_free frees a vector from argv_split or env_list_split; NULL is fine. */
void argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* env_name_valid tells whether name[0..len) is [A-Za-z_][A-Za-z0-9_]*; shared
 * with the env_file reader so both accept the same variable names. */
bool env_name_valid(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return false;
    }
    return len > 0;
}

/* env_item unquotes one comma-separated item at *p into b: double quotes keep
 * commas and white space, \" and \\ escape inside them; unquoted white space
 * around the item is trimmed. */
static bool env_item(const char **p, Buf *b, size_t n, char *err, size_t errlen)
{
    const char *s = *p;
    size_t keep = 0; /* length without trailing unquoted white space */
    bool quoted = false;
    while (*s == ' ' || *s == '\t')
        s++;
    for (; *s && (quoted || *s != ','); s++) {
        if (*s == '"') {
            quoted = !quoted;
            keep = b->len;
            continue;
        }
        if (quoted && s[0] == '\\' && (s[1] == '"' || s[1] == '\\'))
            s++;
        if (!buf_put(b, *s))
            return errf(err, errlen, "out of memory");
        if (quoted || (*s != ' ' && *s != '\t'))
            keep = b->len;
    }
    if (quoted)
        return errf(err, errlen, "unbalanced double quote in item %zu", n);
    b->len = keep;
    if (b->s)
        b->s[keep] = '\0';
    *p = *s ? s + 1 : s;
    return true;
}

/* env_check refuses an item that is not NAME=VALUE or repeats a name. */
static bool env_check(const StrVec *v, const char *item, char *err, size_t errlen)
{
    const char *eq = strchr(item, '=');
    size_t len = eq ? (size_t)(eq - item) : 0;
    if (!eq)
        return errf(err, errlen, "\"%s\" is not KEY=VALUE", item);
    if (!env_name_valid(item, len))
        return errf(err, errlen, "bad variable name in \"%s\" (must match [A-Za-z_][A-Za-z0-9_]*)",
                       item);
    for (size_t i = 0; i < v->n; i++)
        if (strncmp(v->v[i], item, len + 1) == 0)
            return errf(err, errlen, "variable %.*s is given twice", (int)len, item);
    return true;
}

/* env_list_split splits "A=1, B=2, C=\"x, y\"" into a NULL-terminated "K=V"
 * vector (*out = NULL for an empty list); false with err on an unbalanced
 * quote, an item that is not KEY=VALUE, a bad or repeated name, because
 * a typo in a worker's environment should stop the load, not the worker. */
bool env_list_split(const char *value, char ***out, char *err, size_t errlen)
{
    StrVec v = {0};
    Buf b = {0};
    const char *p = value;
    *out = NULL;
    for (size_t n = 1; *p; n++) {
        b.len = 0;
        if (!env_item(&p, &b, n, err, errlen))
            goto fail;
        if (!b.len)
            continue; /* an empty item, e.g. after a trailing comma */
        if (!env_check(&v, b.s, err, errlen))
            goto fail;
        if (!vec_take(&v, &b)) {
            errf(err, errlen, "out of memory");
            goto fail;
        }
    }
    free(b.s);
    *out = v.v;
    return true;
fail:
    free(b.s);
    argv_free(v.v);
    return false;
}
