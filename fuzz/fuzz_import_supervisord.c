/*
 * fuzz_import_supervisord.c - libFuzzer target for `pgwake import
 * supervisord`: the configparser-style reader, the %(...)s expansions, both
 * shlex splitters, the mapping and the configuration writer (fuzz_import.h
 * holds the checks).
 */
#define IMPORT_KIND "supervisord"
#define IMPORT_PARSE(d, data, size, err, n) import_supervisord(d, data, size, &fuzz_env, err, n)
#include "fuzz_import.h"
