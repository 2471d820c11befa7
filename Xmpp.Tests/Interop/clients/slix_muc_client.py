#!/usr/bin/python3
"""Group chat (XEP-0045) interop client built on slixmpp's xep_0045 plugin.

Usage: slix_muc_client.py {owner|guest|refused} --jid J --password P --host H --port N --room R --nick N
       [--member J] [--kick NICK] [--body B] [--timeout S]
  owner:   joins (creating the room), fetches the config form, submits it members-only, makes --member a member,
           emits "configured", waits for a groupchat message from --kick, kicks that nick, emits "kicked", leaves.
  guest:   joins, emits "joined", sends --body, emits "reflected" when the room echoes it, waits to be kicked.
  refused: tries to join and emits "refused" with the error condition.
Every event is one JSON line on stdout (see interop_common.py).
"""

import asyncio
import os
import ssl
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import argparse  # noqa: E402
import slixmpp  # noqa: E402
from slixmpp.exceptions import PresenceError  # noqa: E402

NS_MUC_USER = "http://jabber.org/protocol/muc#user"


def parse_args():
    p = argparse.ArgumentParser(description="MUC interop client")
    p.add_argument("action", choices=("owner", "guest", "refused"))
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--room", required=True)
    p.add_argument("--nick", required=True)
    p.add_argument("--member")
    p.add_argument("--kick")
    p.add_argument("--body", default="hello room")
    return p.parse_args()


def status_codes(presence):
    x = presence.xml.find("{%s}x" % NS_MUC_USER)
    if x is None:
        return []
    return sorted(int(s.get("code")) for s in x.findall("{%s}status" % NS_MUC_USER))


async def run(a):
    loop = asyncio.get_running_loop()
    x = slixmpp.ClientXMPP(a.jid, a.password)
    x.ssl_context.check_hostname = False
    x.ssl_context.verify_mode = ssl.CERT_NONE
    for plugin in ("xep_0030", "xep_0004", "xep_0045", "xep_0203"):
        x.register_plugin(plugin)
    muc = x.plugin["xep_0045"]
    session = loop.create_future()
    x.add_event_handler("session_start", lambda _e: session.done() or session.set_result(True))
    x.add_event_handler("failed_all_auth", lambda _e: session.done() or session.set_exception(RuntimeError("auth failed")))
    x.connect((a.host, a.port), use_ssl=a.direct_tls, force_starttls=not a.direct_tls, disable_starttls=a.direct_tls)
    await session
    x.send_presence()
    common.emit("online", jid=str(x.boundjid.full))
    room = slixmpp.JID(a.room)

    if a.action == "refused":
        try:
            await muc.join_muc_wait(room, a.nick, timeout=a.timeout)
            common.emit("joined")
        except PresenceError as e:
            common.emit("refused", condition=e.condition)
    elif a.action == "owner":
        incoming = asyncio.Queue()
        x.add_event_handler("muc::%s::message" % room, incoming.put_nowait)
        kicked = asyncio.Queue()
        x.add_event_handler("muc::%s::presence" % room, kicked.put_nowait)
        pres, _subject, _occupants, _history = await muc.join_muc_wait(room, a.nick, timeout=a.timeout)
        common.emit("joined", codes=status_codes(pres))
        form = await muc.get_room_config(room)
        fields = sorted(form.get_fields().keys())
        form["type"] = "submit"
        form.set_values({"muc#roomconfig_membersonly": True})
        await muc.set_room_config(room, form)
        if a.member:
            await muc.set_affiliation(room, "member", jid=slixmpp.JID(a.member))
        common.emit("configured", fields=fields)
        while True:
            msg = await incoming.get()
            if msg["from"].resource == a.kick and msg["body"]:
                common.emit("message", body=msg["body"], frm=str(msg["from"]))
                break
        await muc.set_role(room, a.kick, "none", reason="interop")
        while True:
            p = await kicked.get()
            if p["from"].resource == a.kick and p["type"] == "unavailable":
                common.emit("kicked", codes=status_codes(p))
                break
        muc.leave_muc(room, a.nick)
    else:
        reflected = asyncio.Queue()
        x.add_event_handler("muc::%s::message" % room, reflected.put_nowait)
        self_gone = loop.create_future()

        def on_presence(p):
            if p["from"].resource == a.nick and p["type"] == "unavailable" and not self_gone.done():
                self_gone.set_result(p)
        x.add_event_handler("muc::%s::presence" % room, on_presence)
        pres, subject, occupants, history = await muc.join_muc_wait(room, a.nick, timeout=a.timeout)
        common.emit("joined", codes=status_codes(pres), affiliation=pres["muc"]["affiliation"],
                    occupants=[str(o["from"].resource) for o in occupants])
        x.send_message(mto=room, mbody=a.body, mtype="groupchat")
        while True:
            msg = await reflected.get()
            if msg["body"] == a.body and msg["from"].resource == a.nick:
                common.emit("reflected", frm=str(msg["from"]))
                break
        p = await self_gone
        common.emit("kicked", codes=status_codes(p))
    await x.disconnect(wait=5)
    common.emit("offline")


if __name__ == "__main__":
    args = parse_args()
    common.setup_logging()
    common.start_watchdog(args.timeout)
    try:
        asyncio.run(run(args))
    except Exception as e:  # reported as an event, never a traceback-only crash
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
