/* import_ini.h: a supervisord file read the way Python's configparser reads
 * it for supervisord (RawConfigParser, inline comments ';' and '#' after
 * white space, strict=False), and the two shlex splitters supervisord uses. */
#ifndef PGWAKE_IMPORT_INI_H
#define PGWAKE_IMPORT_INI_H

#include <stdbool.h>
#include <stddef.h>

#include "mustcheck.h"

typedef struct IniOpt {
    char *key;   /* lowercased, as configparser's optionxform does */
    char *value; /* continuation lines joined with "\n", stripped */
    int line;    /* of the key (the last one, when a key is repeated) */
} IniOpt;

typedef struct IniSect {
    char *name;  /* between the brackets, as written */
    int line;    /* of its first header */
    IniOpt *opts;
    size_t n, cap;
} IniSect;

typedef struct Ini {
    IniSect *sects; /* file order; a repeated header reopens its section */
    size_t n, cap;
    IniSect defaults; /* [DEFAULT]: every section falls back to it */
} Ini;

bool ini_read(Ini *ini, const char *file, const char *data, size_t len, char *err,
              size_t errlen) MUSTCHECK;
void ini_free(Ini *ini);
const IniOpt *ini_get(const Ini *ini, const IniSect *s, const char *key);
char **shlex_split_posix(const char *s, char *err, size_t errlen) MUSTCHECK;
char **shlex_tokens(const char *s, char *err, size_t errlen) MUSTCHECK;

#endif
