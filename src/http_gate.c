/* http_gate.c: the pure checks in front of the daemon's HTTP endpoints:
 * which Host may reach them (DNS rebinding), whether the listener is on
 * loopback, and the constant-time token comparison. */
#include "http_gate.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* http_host_allowed: is host (a Host header, or an Origin's host part) the
 * listen address itself or a loopback name with its port? Anything else is
 * refused for control calls: a DNS-rebinding page carries its own name. */
bool http_host_allowed(const char *host, const char *listen)
{
    if (!host || !*host || !listen)
        return false;
    if (strcasecmp(host, listen) == 0)
        return true;
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return false;
    const char *port = colon + 1;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        size_t n = strlen(loopback[i]);
        if (strncasecmp(host, loopback[i], n) != 0)
            continue;
        if (host[n] == ':' && strcmp(host + n + 1, port) == 0)
            return true;
        if (host[n] == '\0' && strcmp(port, "80") == 0) /* the default port is left out */
            return true;
    }
    return strcmp(port, "80") == 0 && strlen(host) == (size_t)(colon - listen) &&
           strncasecmp(host, listen, (size_t)(colon - listen)) == 0;
}

/* http_token_equal compares in time that depends on the expected token's
 * length only, never on where the first difference is. */
bool http_token_equal(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned char diff = gl != el;
    for (size_t i = 0; i < el; i++)
        diff |= (unsigned char)(expected[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

/* http_listen_is_loopback: is listen ("HOST:PORT") reachable from this
 * machine only (127.0.0.0/8, ::1, localhost)? */
bool http_listen_is_loopback(const char *listen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon)
        return false;
    char host[64];
    const char *b = listen, *e = colon;
    if (*b == '[' && e > b && e[-1] == ']')
        b++, e--;
    if ((size_t)(e - b) >= sizeof host)
        return false;
    memcpy(host, b, (size_t)(e - b));
    host[e - b] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
    return strcasecmp(host, "localhost") == 0;
}

/* http_read_host_ok: may a read with this Host header be served? On a
 * loopback listener only the listen address or a loopback name, so a page
 * whose name was rebound to 127.0.0.1 reads nothing; a request without Host
 * (HTTP/1.0, no browser) is no rebinding. Off loopback, any: Prometheus and
 * monitors use whatever name they know the machine by. */
bool http_read_host_ok(const char *host, const char *listen)
{
    return !host || !http_listen_is_loopback(listen) || http_host_allowed(host, listen);
}
