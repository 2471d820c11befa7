"""Shared command line, output and exit-code conventions for the interop client programs.

Every client prints one JSON object per line on stdout (the events the C# tests parse),
diagnostics on stderr, and exits with 0 (ok), 1 (error) or 2 (timeout).
"""

import argparse
import json
import logging
import os
import sys
import threading

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_TIMEOUT = 2

NS_CLIENT = "jabber:client"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_DELAY = "urn:xmpp:delay"

ACTIONS = ("login", "send", "receive", "ack", "resume", "upload", "mam")


def setup_logging():
    """Library logs go to stderr: warnings by default, everything when INTEROP_DEBUG is set."""
    level = logging.DEBUG if os.environ.get("INTEROP_DEBUG") else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class _Parser(argparse.ArgumentParser):
    # argparse exits with 2 on bad usage, which would read as a timeout here.
    def error(self, message):
        self.print_usage(sys.stderr)
        log("usage error: %s" % message)
        sys.exit(EXIT_ERROR)


def parse_args(argv=None):
    p = _Parser(description="XMPP interop client")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true",
                   help="TLS from the first byte (XEP-0368) instead of STARTTLS")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--resource", default=None)
    # send: --body may be repeated to send several messages in order over one session;
    # the n-th --id (if given) is the id of the n-th message.
    p.add_argument("--to")
    p.add_argument("--body", action="append", default=[])
    p.add_argument("--id", dest="ids", action="append", default=[])
    p.add_argument("--receipt", action="store_true", help="request a XEP-0184 receipt")
    p.add_argument("--markable", action="store_true", help="mark as XEP-0333 markable")
    # receive / ack / resume
    p.add_argument("--count", type=int, default=1)
    # resume: after --drop-after messages the socket is cut without closing the stream, and after --gap seconds
    # the client reconnects and resumes (XEP-0198)
    p.add_argument("--drop-after", type=int, default=1)
    p.add_argument("--gap", type=float, default=1.0)
    # upload (XEP-0363): the file to upload, its content type, and the CA file that verifies the HTTPS endpoint
    p.add_argument("--file")
    p.add_argument("--content-type", default=None)
    p.add_argument("--ca-file", default=None)
    # mam: page through the own archive (XEP-0313 with XEP-0059), --page-size messages a page, newest page first with --reverse
    p.add_argument("--page-size", type=int, default=10)
    p.add_argument("--reverse", action="store_true")
    # mam: another archive than the own, e.g. a room's (XEP-0313 MUC archives)
    p.add_argument("--archive", default=None)
    a = p.parse_args(argv)
    setup_logging()
    if a.action == "send":
        if not a.to or not a.body:
            p.error("send needs --to and at least one --body")
        if len(a.ids) > len(a.body):
            p.error("more --id than --body")
    if a.action == "upload" and not a.file:
        p.error("upload needs --file")
    if a.action in ("receive", "ack") and a.count < 0:
        p.error("--count must be >= 0")
    return a


_out_lock = threading.Lock()


def emit(event, **fields):
    """Print one JSON event line on stdout and flush it at once, so a killed process still reports."""
    obj = {"event": event}
    obj.update(fields)
    with _out_lock:
        sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write(str(msg) + "\n")
    sys.stderr.flush()


def hard_exit(code):
    """Leave now, whatever the network library's threads or loops are doing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def start_watchdog(seconds, on_timeout=None):
    """Guarantee the process ends by the deadline even if the library hangs: exit code 2."""
    def fire():
        if on_timeout is not None:
            try:
                on_timeout()
            except Exception:  # the timeout report matters more than a cleanup failure
                pass
        emit("timeout", seconds=seconds)
        log("timeout after %s s" % seconds)
        hard_exit(EXIT_TIMEOUT)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def describe_message(root):
    """Build the JSON fields for a received message from its ElementTree element.

    Reading the raw element keeps the output identical across client libraries.
    """
    def find(ns, name):
        return root.find("{%s}%s" % (ns, name))

    body = find(NS_CLIENT, "body")
    if body is None:
        body = root.find("body")
    delay = find(NS_DELAY, "delay")
    receipt = find(NS_RECEIPTS, "received")
    request = find(NS_RECEIPTS, "request")
    markable = find(NS_MARKERS, "markable")
    displayed = find(NS_MARKERS, "displayed")
    marker_received = find(NS_MARKERS, "received")
    fields = {
        "from": root.get("from"),
        "to": root.get("to"),
        "id": root.get("id"),
        "type": root.get("type") or "normal",
        "body": (body.text or "") if body is not None else None,
        "delay": delay.get("stamp") if delay is not None else None,
        "receipt_request": request is not None,
        "markable": markable is not None,
        "received": receipt.get("id") if receipt is not None else None,
        "displayed": displayed.get("id") if displayed is not None else None,
        "marker_received": marker_received.get("id") if marker_received is not None else None,
    }
    if fields["type"] == "error":
        err = find(NS_CLIENT, "error")
        if err is None:
            err = root.find("error")
        if err is not None and len(err):
            fields["error"] = err[0].tag.split("}")[-1]
    return fields


def is_countable(fields):
    """A message counts towards --count if it carries a body, a receipt, a marker or is an error.

    Chat states, PEP notifications and similar noise are printed by nobody and counted by nobody.
    """
    return (fields["body"] is not None or fields["received"] is not None or fields["displayed"] is not None
            or fields["marker_received"] is not None or fields["type"] == "error")
