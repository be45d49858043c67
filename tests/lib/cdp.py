#!/usr/bin/python3
"""cdp.py: click a button of a page in a running headless chromium over the
Chrome DevTools Protocol, answering its confirm() and prompt() dialogs.

  cdp.py --port P --url URL [--eval JS] [--click CSS [--row TEXT]] [--prompt-text TOKEN]
         [--until-text TEXT] [--until-js EXPR] [--screenshot PNG] [--timeout 20]
         [--keep-browser]

Chromium must already run with --remote-debugging-port=P (the caller owns its
pid). Opens URL in the browser's page target, waits until an element matching
CSS exists (with --row: one whose table row's first cell reads TEXT) and
clicks it once. Dialogs are accepted; a prompt() gets --prompt-text. With
--prompt-text a prompt must have been answered; with --until-text the page's
text must then contain TEXT. Ends by closing the browser (Browser.close)
unless --keep-browser. --eval runs JS once the page has loaded, before
the click (say, to pick a filter); --until-js waits until EXPR is true;
--screenshot saves the page as PNG at the end. Prints what happened; exits 0 on success, 1 with the
reason otherwise, 2 on bad usage.
"""
import argparse
import json
import sys
import time
import urllib.request

import websocket


class Fail(Exception):
    pass


def say(msg):
    print("cdp: " + msg, flush=True)


class Session:
    def __init__(self, ws_url, deadline, prompt_text):
        self.deadline = deadline
        self.prompt_text = prompt_text
        self.next_id = 0
        self.dialogs = []       # (type, message) of every dialog answered
        self.errors = []        # uncaught exceptions of the page
        self.ws = websocket.create_connection(ws_url, timeout=self.left())

    def left(self):
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise Fail("timed out")
        return t

    def send(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        return self.next_id

    def call(self, method, params=None):
        """Sends a command and waits for its answer, handling events meanwhile
        (a Runtime.evaluate that clicks only answers once its dialogs are)."""
        want = self.send(method, params)
        while True:
            self.ws.settimeout(min(self.left(), 1.0))
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            msg = json.loads(raw)
            if msg.get("id") == want:
                if "error" in msg:
                    raise Fail("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "id" in msg and "error" in msg:
                raise Fail("command %s failed: %s" % (msg["id"], msg["error"]))
            self.event(msg.get("method"), msg.get("params", {}))

    def event(self, method, p):
        if method == "Page.javascriptDialogOpening":
            kind = p.get("type")
            reply = {"accept": True}
            if kind == "prompt":
                if self.prompt_text is None:
                    raise Fail("the page asked %r and no --prompt-text was given" % p.get("message"))
                reply["promptText"] = self.prompt_text
            say("%s %r: accepted%s" % (kind, p.get("message"), " with the prompt text" if kind == "prompt" else ""))
            self.dialogs.append((kind, p.get("message")))
            # Not awaited here: its answer comes while call() waits anyway.
            self.send("Page.handleJavaScriptDialog", reply)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append(text)
            say("page exception: %s" % text)

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise Fail("evaluate: %s" % r["exceptionDetails"].get("text"))
        return r.get("result", {}).get("value")


def get_json(port, path, deadline):
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                return json.loads(r.read().decode())
        except Exception as e:  # chromium still starting
            last = e
            time.sleep(0.1)
    raise Fail("no DevTools endpoint on port %d: %s" % (port, last))


def page_target(port, deadline):
    while True:
        targets = get_json(port, "/json", deadline)
        pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        if time.monotonic() >= deadline:
            raise Fail("no page target in %s" % targets)
        time.sleep(0.1)


def click_expr(css, row):
    # Returns "clicked", or why not yet: the page re-renders its tables every
    # 2 s, so finding and clicking happen in one evaluation.
    return """(function (css, row) {
  var els = document.querySelectorAll(css);
  for (var i = 0; i < els.length; i++) {
    var e = els[i];
    if (row !== null) {
      var tr = e.closest("tr"), td = tr && tr.querySelector("td");
      if (!td || td.textContent.trim() !== row) continue;
    }
    e.click();
    return "clicked";
  }
  return els.length ? "no element of " + els.length + " in row " + row : "no element";
})(%s, %s)""" % (json.dumps(css), json.dumps(row))


def run(a):
    deadline = time.monotonic() + a.timeout
    s = Session(page_target(a.port, deadline), deadline, a.prompt_text)
    s.call("Page.enable")
    s.call("Runtime.enable")
    r = s.call("Page.navigate", {"url": a.url})
    if r.get("errorText"):
        raise Fail("navigate to %s: %s" % (a.url, r["errorText"]))
    say("loaded %s" % a.url)

    if a.eval:
        while s.evaluate("document.readyState") != "complete":
            time.sleep(0.05)
        s.evaluate(a.eval)
        say("evaluated %s" % a.eval)
    state = None
    while a.click:
        state = s.evaluate(click_expr(a.click, a.row))
        if state == "clicked":
            break
        if time.monotonic() + 0.1 >= deadline:
            raise Fail("could not click %r%s: %s" % (a.click, " in row %r" % a.row if a.row else "", state))
        time.sleep(0.1)
    if a.click:
        say("clicked %s%s" % (a.click, " in row %r" % a.row if a.row else ""))

    if a.prompt_text is not None and not any(k == "prompt" for k, _ in s.dialogs):
        raise Fail("the click asked for no token (dialogs: %s)" % s.dialogs)

    if a.until_text:
        while True:
            text = s.evaluate("document.body ? document.body.innerText : ''") or ""
            if a.until_text in text:
                say("page shows %r" % a.until_text)
                break
            if time.monotonic() + 0.1 >= deadline:
                raise Fail("page never showed %r; it shows: %s" % (a.until_text, text[:2000]))
            time.sleep(0.1)
    while a.until_js and s.evaluate("!!(%s)" % a.until_js) is not True:
        if time.monotonic() + 0.1 >= deadline:
            raise Fail("never true: %s" % a.until_js)
        time.sleep(0.1)
    if a.until_js:
        say("true: %s" % a.until_js)
    if a.screenshot:
        import base64
        shot = s.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(a.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        say("screenshot %s" % a.screenshot)
    return s


def main():
    p = argparse.ArgumentParser(description="click a button over the DevTools protocol")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--click", default=None, metavar="CSS")
    p.add_argument("--eval", default=None, metavar="JS")
    p.add_argument("--until-js", default=None, metavar="EXPR")
    p.add_argument("--screenshot", default=None, metavar="PNG")
    p.add_argument("--row", default=None, metavar="TEXT",
                   help="only an element whose <tr>'s first cell reads TEXT")
    p.add_argument("--prompt-text", default=None)
    p.add_argument("--until-text", default=None)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--keep-browser", action="store_true")
    a = p.parse_args()

    rc = 0
    try:
        run(a)
        say("ok")
    except Fail as e:
        print("cdp: FAIL: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except Exception as e:
        print("cdp: FAIL: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        rc = 1
    if not a.keep_browser:
        try:  # the browser-wide target closes chromium itself
            v = get_json(a.port, "/json/version", time.monotonic() + 3)
            ws = websocket.create_connection(v["webSocketDebuggerUrl"], timeout=3)
            ws.send(json.dumps({"id": 1, "method": "Browser.close"}))
            try:
                ws.recv()
            except Exception:
                pass
            ws.close()
        except Exception as e:
            say("could not close the browser: %s" % e)
    return rc


if __name__ == "__main__":
    sys.exit(main())
