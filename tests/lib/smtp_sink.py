#!/usr/bin/python3
"""smtp_sink.py: a loopback SMTP server for the alert tests (Debian's aiosmtpd).

Run with /usr/bin/python3 (python3-aiosmtpd), not another python3 on PATH:

    /usr/bin/python3 tests/lib/smtp_sink.py --out FILE --port-file FILE
        [--port N] [--fail-first K] [--data-delay SECONDS]

It listens on 127.0.0.1 (port 0 = a free one), writes the port it got to
--port-file once it accepts connections, and appends one JSON line per event
to --out ("data" is the message as received; "subject" and "body" are what a
mail reader shows: header unfolded and RFC 2047-decoded, body decoded with
"\n" line ends):

    {"event": "message", "mail_from": "...", "rcpt_tos": [...], "data": "...",
     "subject": "...", "body": "...", "tls": false, "auth": null}
    {"event": "auth", "mechanism": "PLAIN", "user": "...", "tls": false}

It offers no STARTTLS, and it accepts AUTH over plain text on purpose: a
client that sends credentials in clear text shows up as an "auth" line, which
a test can assert never appears. --fail-first K answers the first K messages
with "451 try again later"; --data-delay holds the answer to the end of DATA
(to show whether a client blocks while waiting for it). SIGTERM ends it.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Sink:
    """The aiosmtpd handler: records messages and AUTH attempts."""

    def __init__(self, out, fail_first, data_delay):
        self.out = out
        self.fail_left = fail_first
        self.data_delay = data_delay

    def record(self, obj):
        # One write per line, flushed, so a reader polling the file never sees
        # half a record.
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        user = getattr(auth_data, "login", None)
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        self.record({"event": "auth", "mechanism": mechanism, "user": user,
                     "tls": session.ssl is not None})
        return AuthResult(success=True)

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)
        if self.fail_left > 0:
            self.fail_left -= 1
            self.record({"event": "refused", "mail_from": envelope.mail_from,
                         "rcpt_tos": list(envelope.rcpt_tos)})
            return "451 4.3.0 try again later"
        raw = envelope.content  # bytes: decode_data is off
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.record({"event": "message", "mail_from": envelope.mail_from,
                     "rcpt_tos": list(envelope.rcpt_tos),
                     "data": raw.decode("utf-8", "replace"),
                     "subject": str(msg["subject"]),
                     "body": msg.get_content().replace("\r\n", "\n"),
                     "tls": session.ssl is not None,
                     "auth": session.authenticated})
        return "250 2.0.0 OK queued"


async def serve(args):
    sink = Sink(args.out, args.fail_first, args.data_delay)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(sink, hostname="sink.test", auth_require_tls=False,
                    authenticator=sink.authenticate, enable_SMTPUTF8=True)

    server = await loop.create_server(factory, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)  # readers see the whole number or nothing
    await stop.wait()
    server.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--data-delay", type=float, default=0.0)
    asyncio.run(serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
