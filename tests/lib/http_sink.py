#!/usr/bin/python3
"""http_sink.py: a loopback HTTP server recording POSTs, for the alert tests.

    /usr/bin/python3 tests/lib/http_sink.py --out FILE --port-file FILE
        [--port N] [--fail-first K]

It listens on 127.0.0.1 (port 0 = a free one), writes the port it got to
--port-file once it accepts connections, and appends one JSON line per POST
to --out, before answering:

    {"n": 1, "path": "/hook", "status": 500, "content_type": "...",
     "body": "<the request body as text>"}

The first K requests (--fail-first) are answered 500, the others 200.
Standard library only; SIGTERM ends it.
"""
import argparse
import http.server
import json
import os
import signal
import sys
import threading


def make_handler(args, state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            with state["lock"]:
                state["n"] += 1
                n = state["n"]
                status = 500 if n <= args.fail_first else 200
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"n": n, "path": self.path, "status": status,
                                        "content_type": self.headers.get("Content-Type"),
                                        "body": body}) + "\n")
            reply = b"fail\n" if status == 500 else b"ok\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, fmt, *a):
            pass  # the test reads --out, not our stderr

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    args = p.parse_args()
    state = {"n": 0, "lock": threading.Lock()}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, state))
    # Every record is written and closed before its answer: nothing to flush.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)  # readers see the whole number or nothing
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
