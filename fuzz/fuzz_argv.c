/*
 * fuzz_argv.c - libFuzzer target for argv_split (a stage's `command`, split
 * by shell quoting rules without a shell) and env_list_split (the
 * `environment` key's KEY=VALUE list, with quotes that keep commas).
 *
 * The input, cut at its first NUL, goes to both. The first byte also picks the
 * error buffer's size (1..64, or the usual 512), so messages that do not fit
 * are exercised. Checked besides the sanitizers: a success gives a non-empty
 * NULL-terminated vector (argv) or only valid, distinct KEY=VALUE items
 * (environment); a failure leaves a NUL-terminated message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz_argv: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    size_t errlen = size && data[0] < 64 ? (size_t)data[0] + 1 : sizeof err;
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';

    memset(err, 'x', sizeof err);
    char **argv = argv_split(s, err, errlen);
    if (argv) {
        CHECK(argv[0]);
        for (char **a = argv; *a; a++)
            CHECK(strlen(*a) <= size);
        argv_free(argv);
    } else {
        CHECK(memchr(err, '\0', errlen));
    }

    char **env = NULL;
    memset(err, 'x', sizeof err);
    if (env_list_split(s, &env, err, errlen)) {
        for (char **e = env; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            CHECK(eq && env_name_valid(*e, (size_t)(eq - *e)));
            for (char **f = env; f < e; f++)
                CHECK(strncmp(*f, *e, (size_t)(eq - *e) + 1) != 0);
        }
        argv_free(env);
    } else {
        CHECK(env == NULL);
        CHECK(memchr(err, '\0', errlen));
    }
    free(s);
    return 0;
}
