/* config_keys.h: private to config*.c. The key tables (one per section: the
 * schema of the file), the typed setters they run, and the environment helpers. */
#ifndef PGWAKE_CONFIG_KEYS_H
#define PGWAKE_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mustcheck.h"

typedef enum KeyType {
    KT_STR,      /* text; empty = unset (NULL) */
    KT_PATH,     /* text made absolute against the config folder; empty = unset */
    KT_DSN,      /* libpq connection string, checked by libpq; secret with a password */
    KT_HOST,     /* text; empty = gethostname() */
    KT_LISTEN,   /* HOST:PORT */
    KT_INT,      /* int >= 0 */
    KT_DURATION, /* int64 ms, see units_parse_duration */
    KT_SIZE,     /* int64 bytes, see units_parse_size */
    KT_COMMAND,  /* StageConf.command and StageConf.argv together */
    KT_ENV,      /* NULL-terminated "K=V" vector, see env_list_split */
    KT__COUNT
} KeyType;

enum {
    KF_SECRET = 1u << 0,    /* never printed; a world-readable file holding it is refused */
    KF_RESTART = 1u << 1,   /* a change restarts the workers (SPEC section 5, SIGHUP) */
    KF_NO_RELOAD = 1u << 2, /* a change needs a daemon restart */
    KF_POSITIVE = 1u << 3,  /* a number that must be more than 0 */
};

/* validate checks a value the type's setter accepted; false with why. */
typedef bool (*KeyValidateFn)(const char *value, char *why, size_t n);

typedef struct KeyDef {
    const char *name;
    KeyType type;
    size_t offset;          /* of the field in the section's struct */
    const char *def;        /* default, run through the same setter; NULL = none */
    unsigned flags;         /* KF_* */
    KeyValidateFn validate; /* optional extra check */
    const char *doc;        /* one line for the rendered example file */
} KeyDef;

typedef struct KeyTable {
    const char *section;    /* "pgwake", "alerts", "stage:NAME" */
    const KeyDef *keys;
    size_t n;
} KeyTable;

#define KEYS_MAX 32 /* no table is larger (checked where the tables are defined) */

extern const KeyTable cfg_pgwake_keys; /* base: Config */
extern const KeyTable cfg_alerts_keys; /* base: AlertConf */
extern const KeyTable cfg_stage_keys;  /* base: StageConf */

const KeyDef *key_find(const KeyTable *t, const char *name, size_t *idx);
bool key_set(const KeyDef *k, void *base, const char *value, const char *dir, char *why,
             size_t n) MUSTCHECK;
bool key_is_secret(const KeyDef *k, const void *base);
int64_t key_number(const KeyDef *k, const void *base);
char *key_number_text(const KeyDef *k, int64_t v, char *buf, size_t n);
bool keys_defaults(const KeyTable *t, void *base, const char *dir, char *why, size_t n) MUSTCHECK;
void keys_free(const KeyTable *t, void *base);

/* config_env.c */
const char *env_secret_name(char *const *vars, size_t *len);
bool url_has_password(const char *s);
bool url_has_userinfo(const char *url);
char *url_redact(const char *url, char *out, size_t n);
bool cfg_alerts_from_env(AlertConf *a, const int *seen, const char *dir, char *why,
                         size_t n) MUSTCHECK;
char *cfg_default_lock_file(const char *conf_realpath) MUSTCHECK;

#endif
