/* httpcli.h: how `status`, `start`, `stop` and `restart` reach a running
 * daemon: one blocking libcurl request to its http_listen, short timeouts. */
#ifndef PGWAKE_HTTPCLI_H
#define PGWAKE_HTTPCLI_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "mustcheck.h"

typedef struct HttpReply {
    long code;  /* HTTP status */
    char *body; /* NUL-terminated, malloc'ed; NULL when none */
    size_t len;
} HttpReply;

const char *httpcli_addr(const Config *cfg, char *buf, size_t n);
bool httpcli_call(const Config *cfg, bool post, const char *path, HttpReply *out, char *err,
                  size_t errlen) MUSTCHECK;
void httpcli_reply_free(HttpReply *r);

#endif
