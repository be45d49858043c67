#!/usr/bin/python3
"""slowloris.py: hold many idle HTTP connections open, for the load tests.

    /usr/bin/python3 tests/lib/slowloris.py --port N --count 2000 --seconds S --out FILE

Opens --count non-blocking connections to 127.0.0.1:N (those past the
server's backlog stay half-open), and every 2 s sends one more byte of a
request line that never ends to each connected one, so the server's read
timeout never fires. After --seconds it closes them all and writes the
largest number that were connected at once to --out. Standard library only.
"""
import argparse
import errno
import resource
import select
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    want = args.count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    socks = []
    for _ in range(args.count):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", args.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        socks.append(s)
    most = 0
    end = time.monotonic() + args.seconds
    by_fd = {s.fileno(): s for s in socks}
    while time.monotonic() < end:
        p = select.poll()  # not select(): fds above 1024
        for fd in by_fd:
            p.register(fd, select.POLLOUT)
        live = 0
        for fd, ev in p.poll(0):
            if not ev & select.POLLOUT or ev & (select.POLLERR | select.POLLHUP):
                continue
            try:
                by_fd[fd].send(b"G")
                live += 1
            except OSError:
                pass
        most = max(most, live)
        time.sleep(2)
    for s in socks:
        s.close()
    with open(args.out, "w") as f:
        f.write("%d\n" % most)


if __name__ == "__main__":
    main()
