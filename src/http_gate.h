/* http_gate.h: Host, loopback and token checks of the HTTP endpoints; pure. */
#ifndef PGWAKE_HTTP_GATE_H
#define PGWAKE_HTTP_GATE_H

#include <stdbool.h>

bool http_host_allowed(const char *host, const char *listen_host, unsigned listen_port);
bool http_listen_is_loopback(const char *host);
bool http_read_host_ok(const char *host, const char *listen_host, unsigned listen_port);
bool http_token_equal(const char *given, const char *expected);

#endif
