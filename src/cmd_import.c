/* cmd_import.c: `pgwake import supervisord|pm2 FILE`: reads the file, turns
 * it into a pgwake configuration on stdout (SPEC section 6). Exit 2 with
 * FILE[:LINE]: what is wrong, for input it cannot read or take. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "import.h"

#define IMPORT_MAX_BYTES (16 << 20) /* no real supervisord or PM2 file comes near */

/* read_all reads the whole file ("-" = stdin) into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "unable to open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= IMPORT_MAX_BYTES)
            break;
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    bool bad = ferror(f);
    int saved = errno;
    if (f != stdin)
        fclose(f);
    if (!buf || bad || n >= IMPORT_MAX_BYTES) {
        snprintf(err, errlen, "unable to read %s: %s", path,
                 !buf ? "out of memory" : bad ? strerror(saved) : "larger than 16 MB");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* here_of is supervisord's %(here)s: the folder of the file, made absolute. */
static void here_of(const char *path, char *out, size_t n)
{
    char abs[PATH_MAX];
    if (strcmp(path, "-") == 0 || !realpath(path, abs)) {
        if (!getcwd(out, n))
            snprintf(out, n, ".");
        return;
    }
    char *slash = strrchr(abs, '/');
    if (slash && slash != abs)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    snprintf(out, n, "%s", abs);
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

/* cmd_import runs `pgwake import KIND FILE`; the configuration goes to stdout
 * only once the whole input is taken, so a refusal leaves stdout empty. */
int cmd_import(const CliOpts *o)
{
    char err[1024], here[PATH_MAX], host[256] = "";
    if (o->nargs != 2 || (strcmp(o->args[0], "supervisord") && strcmp(o->args[0], "pm2"))) {
        fprintf(stderr, "pgwake import: give the kind of file and the file: "
                        "pgwake import supervisord|pm2 FILE\n");
        return EXIT_USAGE;
    }
    const char *kind = o->args[0], *path = o->args[1];
    size_t len;
    char *data = read_all(path, &len, err, sizeof err);
    if (!data) {
        fprintf(stderr, "pgwake import: %s\n", err);
        return EXIT_USAGE;
    }
    here_of(path, here, sizeof here);
    gethostname(host, sizeof host - 1);
    ImportEnv env = {.here = here, .host = host, .getenv = env_get};
    ImportDoc d;
    import_doc_init(&d, kind, path);
    bool ok = kind[0] == 's' ? import_supervisord(&d, data, len, &env, err, sizeof err)
                             : import_pm2(&d, data, len, err, sizeof err);
    free(data);
    int rc = EXIT_OK;
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = ok ? open_memstream(&out, &outlen) : NULL;
    if (ok && !mem)
        ok = snprintf(err, sizeof err, "out of memory") < 0;
    if (mem) {
        ok = import_emit(&d, mem, err, sizeof err);
        fclose(mem);
    }
    if (!ok) {
        fprintf(stderr, "pgwake import: %s\n", err);
        rc = EXIT_USAGE;
    } else {
        fwrite(out, 1, outlen, stdout);
    }
    free(out);
    import_doc_free(&d);
    if (rc == EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "pgwake import: unable to write the configuration: %s\n",
                strerror(errno));
        rc = EXIT_RUNTIME;
    }
    return rc;
}
