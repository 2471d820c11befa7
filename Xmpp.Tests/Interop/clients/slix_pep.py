#!/usr/bin/python3
"""PEP interop client built on slixmpp: publishes with publish-options, or watches for notifications.

Usage: slix_pep.py {publish|watch} --jid J --password P --host H --port N [--direct-tls] [--timeout S]
       publish: --node N --payload XML [--id ID] [--option VAR=VALUE ...] (repeat --payload/--id for several)
       watch:   --node N [--count C]   (announces N+notify with XEP-0115 caps and prints each notification)
Events (JSON lines): online, published {id}, publish_error {condition, pubsub}, pep {node, id, payload, delay}, offline.
"""

import argparse
import asyncio
import os
import ssl
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


def parse_args():
    p = argparse.ArgumentParser(description="slixmpp PEP interop client")
    p.add_argument("action", choices=("publish", "watch"))
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--node", required=True)
    p.add_argument("--payload", action="append", default=[])
    p.add_argument("--id", dest="ids", action="append", default=[])
    p.add_argument("--option", action="append", default=[], help="publish-options field VAR=VALUE")
    p.add_argument("--count", type=int, default=1)
    a = p.parse_args()
    common.setup_logging()
    return a


class PepRunner:
    def __init__(self, args):
        self.args = args
        x = slixmpp.ClientXMPP(args.jid + "/slix-" + args.action, args.password)
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0203"):
            x.register_plugin(plugin)
        self.x = x
        loop = asyncio.get_running_loop()
        self.session = loop.create_future()
        self.events = asyncio.Queue()
        x.add_event_handler("session_start", lambda _e: self.session.done() or self.session.set_result(True))
        x.add_event_handler("failed_all_auth", lambda _e: self._fail("SASL authentication failed"))
        x.register_handler(Callback("pep events", MatchXPath("{jabber:client}message/{%s}event" % NS_EVENT), self._on_event))

    def _fail(self, text):
        if not self.session.done():
            self.session.set_exception(RuntimeError(text))

    def _on_event(self, msg):
        root = msg.xml
        delay = root.find("{urn:xmpp:delay}delay")
        for items in root.iter("{%s}items" % NS_EVENT):
            for item in items.findall("{%s}item" % NS_EVENT):
                payload = item[0] if len(item) else None
                self.events.put_nowait({
                    "from": root.get("from"), "node": items.get("node"), "id": item.get("id"),
                    "payload": ET.tostring(payload, encoding="unicode") if payload is not None else None,
                    "delay": delay.get("stamp") if delay is not None else None,
                })

    async def connect(self):
        a = self.args
        if a.action == "watch":
            # XEP-0163 §4.2: the +notify feature goes into the caps hash the server resolves.
            self.x["xep_0163"].add_interest(a.node)
        self.x.connect((a.host, a.port), use_ssl=a.direct_tls, force_starttls=not a.direct_tls,
                       disable_starttls=a.direct_tls)
        await self.session
        self.x.send_presence()
        common.emit("online", jid=str(self.x.boundjid.full))

    def options_form(self):
        form = self.x["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBLISH_OPTIONS)
        for option in self.args.option:
            var, _, value = option.partition("=")
            form.add_field(var=var, value=value)
        return form

    async def publish(self):
        a = self.args
        for i, payload in enumerate(a.payload):
            item_id = a.ids[i] if i < len(a.ids) else None
            try:
                result = await self.x["xep_0060"].publish(None, a.node, id=item_id, payload=ET.fromstring(payload),
                                                          options=self.options_form() if a.option else None,
                                                          timeout=a.timeout)
                common.emit("published", id=result["pubsub"]["publish"]["item"]["id"])
            except IqError as e:
                error = e.iq.xml.find("{jabber:client}error")
                pubsub = [c.tag.split("}")[-1] for c in error if c.tag.startswith("{%s}" % NS_ERRORS)] if error is not None else []
                common.emit("publish_error", condition=e.iq["error"]["condition"], pubsub=pubsub[0] if pubsub else None)

    async def run(self):
        await self.connect()
        if self.args.action == "publish":
            await self.publish()
        else:
            for _ in range(self.args.count):
                common.emit("pep", **(await self.events.get()))
        await self.x.disconnect(wait=5)
        common.emit("offline")


async def main(args):
    await PepRunner(args).run()


if __name__ == "__main__":
    args = parse_args()
    common.start_watchdog(args.timeout)
    try:
        asyncio.run(main(args))
    except Exception as e:  # reported as an event, not a traceback-only crash
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
