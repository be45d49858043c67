/* argv.h: split a stage's command like a POSIX shell would quote it (no
 * expansion, no shell) and the `environment` key's KEY=VALUE list. */
#ifndef PGWAKE_ARGV_H
#define PGWAKE_ARGV_H

#include <stdbool.h>
#include <stddef.h>

#include "mustcheck.h"

char **argv_split(const char *cmd, char *err, size_t errlen) MUSTCHECK;
void argv_free(char **argv);
bool env_list_split(const char *value, char ***out, char *err, size_t errlen) MUSTCHECK;
bool env_name_valid(const char *name, size_t len);

#endif
