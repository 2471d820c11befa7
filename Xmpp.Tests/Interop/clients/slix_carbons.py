#!/usr/bin/python3
"""Multi-device interop client on slixmpp: one device of an account with XEP-0280 carbons enabled.

Usage: slix_carbons.py {watch|chat} --jid J --password P --port N --resource R [--count N] [--to J] [--body B]
  watch: enable carbons, then print each copy the server sends ("carbon" events) until --count arrived.
  chat:  enable carbons, wait for one message with a body, answer it with --body and a XEP-0333
         displayed marker for it (a read tick), and leave.
Run with the Debian interpreter (/usr/bin/python3): slixmpp comes from the python3-slixmpp package.
"""

import asyncio
import os
import sys
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

common.ACTIONS = common.ACTIONS + ("watch", "chat")

import slix_client  # noqa: E402
from slixmpp.exceptions import IqTimeout  # noqa: E402


class CarbonsRunner(slix_client.SlixRunner):
    def __init__(self, args):
        super().__init__(args)
        self.x.register_plugin("xep_0280")
        self.carbons = asyncio.Queue()
        # slixmpp raises these only for copies whose 'from' is the account's own bare JID (XEP-0280 §11).
        self.x.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(("received", m)))
        self.x.add_event_handler("carbon_sent", lambda m: self.carbons.put_nowait(("sent", m)))

    async def enable_carbons(self):
        await self._or_fail(self.x.plugin["xep_0280"].enable(timeout=self.args.timeout))
        common.emit("carbons_enabled")

    async def run(self):
        a = self.args
        await self.connect(presence=True)
        await self.enable_carbons()
        if a.action == "watch":
            for _ in range(a.count):
                direction, wrapper = await self._or_fail(self.carbons.get())
                inner = wrapper.xml.find("{urn:xmpp:carbons:2}%s/{urn:xmpp:forward:0}forwarded/{jabber:client}message" % direction)
                if inner is None:
                    raise slix_client.Failure("a carbon copy without a forwarded message")
                fields = common.describe_message(inner)
                common.emit("carbon", direction=direction, wrapper_from=str(wrapper["from"]), **fields)
        else:
            fields = await self.next_countable()
            common.emit("message", **fields)
            reply_id = uuid.uuid4().hex
            self.send_chat(a.to, a.body[0] if a.body else "reply", reply_id, receipt=False, markable=True)
            common.emit("sent", id=reply_id, to=a.to)
            d = self.x.make_message(mto=a.to, mtype="chat")
            d["id"] = uuid.uuid4().hex
            d["displayed"]["id"] = fields["id"]
            d.send()
            common.emit("displayed", id=fields["id"])
            await self.server_round_trip()
        await self.disconnect()


async def main(args):
    await CarbonsRunner(args).run()


if __name__ == "__main__":
    args = common.parse_args()
    common.start_watchdog(args.timeout)
    try:
        asyncio.run(main(args))
    except (slix_client.Failure, IqTimeout) as e:
        common.emit("error", message=str(e) or type(e).__name__)
        common.hard_exit(common.EXIT_ERROR)
    except Exception as e:  # reported as an error event, not a traceback-only crash
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
