/*
 * fuzz_import_pm2.c - libFuzzer target for `pgwake import pm2`: jansson's
 * reading of an ecosystem file, the app mapping and the configuration
 * writer (fuzz_import.h holds the checks).
 */
#define IMPORT_KIND "pm2"
#define IMPORT_PARSE(d, data, size, err, n) import_pm2(d, data, size, err, n)
#include "fuzz_import.h"
