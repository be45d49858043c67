/*
 * fuzz_import.h - shared body of the `pgwake import` fuzz targets: the input
 * is imported with the parser the including file names (IMPORT_PARSE); a
 * refusal must be one line naming the input; an accepted input must give a
 * configuration whose every line is under 199 bytes and which cfg_load, the
 * daemon's own reader, loads with one stage per imported program.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "import.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_import: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static char conf_path[64];

static const char *fuzz_getenv(const char *name)
{
    return strcmp(name, "HOME") == 0 ? "/home/fuzz" : strcmp(name, "Q") == 0 ? "a ;b" : NULL;
}

static const ImportEnv fuzz_env = {"/etc/supervisor", "fuzz-host", fuzz_getenv};

static void remove_conf(void)
{
    unlink(conf_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/pgwake-fuzz-import.%ld.conf", (long)getpid());
    atexit(remove_conf);
    return 0;
}

static void check_output(const ImportDoc *d, const char *out, size_t len)
{
    int stages = 0;
    for (const ImportStage *st = d->stages; st; st = st->next)
        stages++;
    for (size_t i = 0, start = 0; i <= len; i++)
        if (i == len || out[i] == '\n') {
            CHECK(i - start <= 198);
            start = i + 1;
        }
    int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, out, len) == (ssize_t)len);
    close(fd);
    char err[ERR_LEN];
    Config *cfg = cfg_load(conf_path, err, sizeof err);
    if (!cfg)
        fprintf(stderr, "fuzz_import: the output does not load: %s\n%s", err, out);
    CHECK(cfg != NULL);
    CHECK(cfg->nstages == stages);
    cfg_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERR_LEN];
    ImportDoc d;
    import_doc_init(&d, IMPORT_KIND, "fuzz.in");
    memset(err, 'x', sizeof err);
    if (IMPORT_PARSE(&d, (const char *)data, size, err, sizeof err)) {
        char *out = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&out, &len);
        CHECK(mem != NULL);
        memset(err, 'x', sizeof err);
        bool ok = import_emit(&d, mem, err, sizeof err);
        fclose(mem);
        if (ok)
            check_output(&d, out, len);
        else
            CHECK(strncmp(err, "fuzz.in", 7) == 0 && strchr(err, '\n') == NULL);
        free(out);
    } else {
        CHECK(memchr(err, '\0', sizeof err) != NULL);
        CHECK(strncmp(err, "fuzz.in", 7) == 0 || strcmp(err, "out of memory") == 0);
        CHECK(strchr(err, '\n') == NULL);
    }
    import_doc_free(&d);
    return 0;
}
