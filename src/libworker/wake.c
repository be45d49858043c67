/*
 * wake.c - reads and writes the wake-fd bytes. poll(2) + read(2) is used for
 * the non-blocking check so that neither the socket's flags nor its kind (a
 * socketpair normally, a pipe would work too) matter.
 */
#include "libworker/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgwake/worker.h"

bool pgwk_wake_init(WkWake *k, int fd, const WkLog *log)
{
    memset(k, 0, sizeof *k);
    k->fd = fd;
    k->log = log;
    k->intr_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (k->intr_fd < 0)
        return false;
    /* children of the worker must not hold the daemon's socket open */
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    return true;
}

void pgwk_wake_close(WkWake *k)
{
    if (k->fd >= 0)
        close(k->fd);
    if (k->intr_fd >= 0)
        close(k->intr_fd);
    k->fd = k->intr_fd = -1;
}

/* take_bytes interprets bytes read from the daemon. */
static void take_bytes(WkWake *k, const char *buf, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++) {
        switch (buf[i]) {
        case 'W':
            k->wseq++;
            wk_debug(k->log, "wake fd: W (work may be available)");
            break;
        case 'S':
            if (!k->stop)
                wk_info(k->log, "wake fd: S (stop after the current task)");
            k->stop = true;
            break;
        default:
            wk_warn(k->log, "wake fd: unexpected byte 0x%02x (ignored)", (unsigned char)buf[i]);
            break;
        }
    }
}

/* read_ready reads once from a readable wake fd. */
static void read_ready(WkWake *k)
{
    char buf[256];
    ssize_t n = read(k->fd, buf, sizeof buf);
    if (n > 0) {
        take_bytes(k, buf, n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (n < 0)
            wk_warn(k->log, "unable to read the wake fd: %s (taken as the daemon gone)",
                    strerror(errno));
        else
            wk_info(k->log, "wake fd: end of file (the daemon is gone)");
        k->eof = true;
    }
}

/* wait_fds polls the wake fd (while it can still speak) and the eventfd. */
static int wait_fds(WkWake *k, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = k->intr_fd, .events = POLLIN}, {.fd = -1}};
    nfds_t n = 1;
    if (k->fd >= 0 && !k->eof) {
        p[1].fd = k->fd;
        p[1].events = POLLIN;
        n = 2;
    }
    int rc = poll(p, n, timeout_ms);
    if (rc <= 0)
        return rc; /* timeout, or EINTR: the caller re-checks its flags */
    if (n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        read_ready(k);
    return rc;
}

void pgwk_wake_poll(WkWake *k)
{
    /* consume everything already there: a busy worker must still see S */
    for (int i = 0; i < 64 && k->fd >= 0 && !k->eof; i++) {
        struct pollfd p = {.fd = k->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            break;
        read_ready(k);
    }
}

bool pgwk_wake_wait(WkWake *k, int timeout_ms)
{
    return wait_fds(k, timeout_ms) != 0;
}

void pgwk_wake_send_idle(WkWake *k)
{
    if (k->fd < 0 || k->eof)
        return;
    ssize_t n;
    do {
        n = send(k->fd, "I", 1, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(k->fd, "I", 1); /* a pipe: SIGPIPE is the caller's business */
    } while (n < 0 && errno == EINTR);
    if (n == 1) {
        wk_debug(k->log, "wake fd: sent I (idle)");
        return;
    }
    wk_info(k->log, "unable to write I to the wake fd: %s (taken as the daemon gone)",
            n < 0 ? strerror(errno) : "short write");
    k->eof = true;
}

void pgwk_wake_interrupt(const WkWake *k)
{
    uint64_t one = 1;
    ssize_t rc = write(k->intr_fd, &one, sizeof one);
    (void)rc; /* EAGAIN: the counter is already non-zero, which is all we need */
}

bool pgwk_wake_interrupted(const WkWake *k)
{
    struct pollfd p = {.fd = k->intr_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}
