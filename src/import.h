/* import.h: `pgwake import`: a supervisord or PM2 file read into an ImportDoc
 * (one ImportStage per program, with a note for every setting not carried
 * over), then written out as a pgwake configuration (SPEC sections 6, 7). */
#ifndef PGWAKE_IMPORT_H
#define PGWAKE_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mustcheck.h"

/* Comment lines (without the "; "), in the order they were added. */
typedef struct ImportNotes {
    char **v;
    size_t n, cap;
} ImportNotes;

typedef struct ImportStage {
    char *source;             /* "[program:x]" or "apps[2]", for the comments */
    char *orig_name;          /* the program's name as written */
    char *name;               /* a valid, unique stage name (import_finish) */
    int line;                 /* where the program starts, 0 = unknown (JSON) */
    bool renamed;             /* notes.v[0] says why name differs from orig_name */
    char **argv;              /* the command, NULL-terminated; NULL = none */
    char *directory;          /* NULL = not set */
    char *user;
    char *memory_limit;       /* already in pgwake's size syntax */
    char **env;               /* "K=V", NULL-terminated, each one expressible */
    int max_workers;          /* 0 = not set */
    int max_restarts;         /* -1 = not set */
    int64_t stop_timeout_ms;  /* -1 = not set */
    int64_t kill_timeout_ms;
    int64_t restart_delay_ms;
    ImportNotes notes;        /* written after the keys */
    struct ImportStage *next; /* file order */
} ImportStage;

typedef struct ImportDoc {
    const char *kind;         /* "supervisord" or "pm2" */
    const char *file;         /* the input's name, for messages */
    ImportNotes notes;        /* file-level comments (sections not carried over) */
    ImportStage *stages;
    ImportStage **tail;
    bool oom;                 /* an allocation failed somewhere: the import fails */
} ImportDoc;

/* What the supervisord expansions read from the machine; injected for tests. */
typedef struct ImportEnv {
    const char *here;                    /* %(here)s: the file's folder */
    const char *host;                    /* %(host_node_name)s */
    const char *(*getenv)(const char *); /* %(ENV_X)s */
} ImportEnv;

void import_doc_init(ImportDoc *d, const char *kind, const char *file);
void import_doc_free(ImportDoc *d);
ImportStage *import_stage_add(ImportDoc *d, const char *orig_name, const char *source,
                              int line) MUSTCHECK;
void import_note(ImportDoc *d, ImportNotes *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *import_strdup(ImportDoc *d, const char *s);
void import_set(ImportDoc *d, char **dst, const char *s);
void import_argv_push(ImportDoc *d, char ***argv, const char *s);
void import_env_add(ImportDoc *d, ImportStage *st, const char *key, const char *value);
const char *import_value_problem(const char *v, bool raw);
void import_finish(ImportDoc *d);
bool import_emit(const ImportDoc *d, FILE *out, char *err, size_t errlen) MUSTCHECK;

bool import_supervisord(ImportDoc *d, const char *data, size_t len, const ImportEnv *env,
                        char *err, size_t errlen) MUSTCHECK;
bool import_pm2(ImportDoc *d, const char *data, size_t len, char *err, size_t errlen) MUSTCHECK;

#endif
