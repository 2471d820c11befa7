#!/usr/bin/python3
"""Service administration as an admin's client does it, with slixmpp's XEP-0050/XEP-0133 plugins: list the server's
commands, run add-user, then announce.

Usage: slix_admin.py --jid J --password P --host H --port N --new-jid J2 --new-password P2 --announcement TEXT [--timeout S]
Events (JSON lines): online, commands {nodes}, completed {node, status, note, note_type}, error {message}, offline.
"""

import argparse
import asyncio
import os
import ssl
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import slixmpp  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="slixmpp service administration client")
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--new-jid", required=True)
    p.add_argument("--new-password", required=True)
    p.add_argument("--announcement", required=True)
    a = p.parse_args()
    common.setup_logging()
    return a


class Admin:
    def __init__(self, args):
        self.args = args
        x = slixmpp.ClientXMPP(args.jid + "/slix-admin", args.password)
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0004", "xep_0030", "xep_0050", "xep_0133"):
            x.register_plugin(plugin)
        self.x = x
        loop = asyncio.get_running_loop()
        self.session = loop.create_future()
        x.add_event_handler("session_start", lambda _e: self.session.done() or self.session.set_result(True))
        x.add_event_handler("failed_all_auth", lambda _e: self.session.done() or self.session.set_exception(RuntimeError("auth failed")))

    async def run_command(self, start, fill):
        """Starts a XEP-0133 command, fills the form it returns and completes it; resolves with the final iq."""
        done = asyncio.get_running_loop().create_future()

        def on_form(iq, session):
            if iq["command"]["status"] == "completed":
                done.set_result(iq)
                return
            fields = iq["command"]["form"]["fields"]
            names = {f["var"] for f in fields} if isinstance(fields, list) else set(fields)
            answer = self.x["xep_0004"].make_form(ftype="submit")
            answer.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/admin")
            for var, value in fill.items():
                if var not in names:
                    done.set_exception(RuntimeError("the form has no field %s: %s" % (var, sorted(names))))
                    return
                answer.add_field(var=var, value=value)
            session["payload"] = answer
            session["next"] = lambda result, _s: done.done() or done.set_result(result)
            self.x["xep_0050"].complete_command(session)

        def on_error(iq, _session):
            done.done() or done.set_exception(RuntimeError("command error: %s" % iq["error"]["condition"]))

        start(session={"next": on_form, "error": on_error})
        return await done

    async def run(self):
        a = self.args
        self.x.connect((a.host, a.port), force_starttls=True)
        await self.session
        self.x.send_presence()
        common.emit("online", jid=str(self.x.boundjid.full))
        items = await self.x["xep_0133"].get_commands()
        common.emit("commands", nodes=[item[1] for item in items["disco_items"]["items"]])
        steps = [
            (self.x["xep_0133"].add_user, {"accountjid": a.new_jid, "password": a.new_password, "password-verify": a.new_password}),
            (self.x["xep_0133"].announce, {"subject": "From slixmpp", "announcement": a.announcement}),
        ]
        for start, fill in steps:
            result = await self.run_command(start, fill)
            note = result.xml.find("{http://jabber.org/protocol/commands}command/{http://jabber.org/protocol/commands}note")
            common.emit("completed", node=result["command"]["node"], status=result["command"]["status"],
                        note=note.text if note is not None else None, note_type=note.get("type") if note is not None else None)
        await self.x.disconnect(wait=5)
        common.emit("offline")


async def main(args):
    await Admin(args).run()


if __name__ == "__main__":
    args = parse_args()
    common.start_watchdog(args.timeout)
    try:
        asyncio.run(main(args))
    except Exception as e:
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
