#!/usr/bin/python3
"""XEP-0114 component built on slixmpp's ComponentXMPP, standing in for a bridge.

Usage: slix_component.py --jid COMPONENT --secret S --host H --port N [--timeout S] [--greet JID] [--ping DOMAIN]
  Connects and completes the handshake, answers disco#info as a gateway, echoes every message with a body back to
  its sender (from the JID it was sent to, body "echo: ..."), greets --greet from bot@COMPONENT, and pings --ping.
Events (JSON lines): online, message {from, to, body}, pong {domain}, ping_error {condition}, stream_error
  {condition}, disconnected, timeout. Runs until the watchdog (--timeout) or a disconnect.
"""

import argparse
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="slixmpp XEP-0114 component")
    p.add_argument("--jid", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--greet", default=None)
    p.add_argument("--ping", default=None)
    a = p.parse_args()
    common.setup_logging()
    return a


def main(args):
    x = slixmpp.ComponentXMPP(args.jid, args.secret, args.host, args.port)
    x.register_plugin("xep_0030")
    x.register_plugin("xep_0199")
    x["xep_0030"].add_identity(category="gateway", itype="irc", name="slix gateway")
    done = asyncio.get_event_loop().create_future()

    async def on_start(_event):
        common.emit("online", jid=args.jid)
        if args.greet:
            x.send_message(mto=args.greet, mfrom="bot@" + args.jid, mbody="hello from the component", mtype="chat")
        if args.ping:
            try:
                await x["xep_0199"].send_ping(args.ping, ifrom=args.jid, timeout=10)
                common.emit("pong", domain=args.ping)
            except IqError as e:
                common.emit("ping_error", condition=e.iq["error"]["condition"])
            except IqTimeout:
                common.emit("ping_error", condition="timeout")

    def on_message(msg):
        body = msg["body"]
        common.emit("message", **{"from": str(msg["from"]), "to": str(msg["to"]), "body": body})
        if body:
            reply = x.make_message(mto=msg["from"], mfrom=msg["to"], mbody="echo: " + body, mtype=msg["type"] or "chat")
            reply["id"] = (msg["id"] or "m") + "-echo"
            reply.send()

    def on_stream_error(error):
        common.emit("stream_error", condition=error["condition"])

    def on_disconnected(_event):
        common.emit("disconnected")
        if not done.done():
            done.set_result(True)

    x.add_event_handler("session_start", on_start)
    x.add_event_handler("message", on_message)
    x.add_event_handler("stream_error", on_stream_error)
    x.add_event_handler("disconnected", on_disconnected)
    x.connect()
    x.loop.run_until_complete(done)


if __name__ == "__main__":
    args = parse_args()
    common.start_watchdog(args.timeout)
    try:
        main(args)
    except Exception as e:  # reported as an event, not a traceback-only crash
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
