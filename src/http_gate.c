/* http_gate.c: the pure checks in front of the daemon's HTTP endpoints:
 * which Host may reach them (DNS rebinding), whether the listener is on
 * loopback, and the constant-time token comparison. */
#include "http_gate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool same_name(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* http_host_allowed: is host (a Host header, or an Origin's host part) the
 * listen host itself or a loopback name, with the listen port (left out:
 * 80)? Anything else is refused for control calls: a DNS-rebinding page
 * carries its own name. */
bool http_host_allowed(const char *host, const char *listen_host, unsigned listen_port)
{
    if (!host || !*host || !listen_host)
        return false;
    size_t v6 = *host == '['; /* 1: the name is in brackets */
    const char *end = v6 ? strchr(host, ']') : strrchr(host, ':');
    if (v6 && !end)
        return false;
    if (v6)
        end++;
    else if (!end)
        end = host + strlen(host);
    char port[8];
    snprintf(port, sizeof port, "%u", listen_port);
    if (*end ? *end != ':' || strcmp(end + 1, port) != 0 : listen_port != 80)
        return false;
    /* a [v6] name is compared without its brackets, as http_host keeps it */
    size_t n = (size_t)(end - host);
    if (same_name(host + v6, n - 2 * v6, listen_host))
        return true;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++)
        if (same_name(host, n, loopback[i]))
            return true;
    return false;
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

/* http_listen_is_loopback: is a listener on host (Config.http_host) reachable
 * from this machine only (127.0.0.0/8, ::1, localhost)? */
bool http_listen_is_loopback(const char *host)
{
    if (!host)
        return false;
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
bool http_read_host_ok(const char *host, const char *listen_host, unsigned listen_port)
{
    return !host || !http_listen_is_loopback(listen_host) ||
           http_host_allowed(host, listen_host, listen_port);
}
