#!/usr/bin/python3
"""Group chat (XEP-0045) interop client built on nbxmpp (Gajim's protocol library).

Usage: nbxmpp_muc_client.py history --jid J --password P --host H --port N --room R --nick N [--maxstanzas K]
  Joins the room asking for at most K history messages, emits "self" with the status codes of its own presence,
  "history" for each message before the subject (with nbxmpp's reading of its delay), then "subject", and leaves.
Every event is one JSON line on stdout (see interop_common.py).
"""

import argparse
import os
import sys
import uuid
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import gi  # noqa: E402
gi.require_version("GLib", "2.0")
gi.require_version("Gio", "2.0")
from gi.repository import GLib  # noqa: E402

from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.namespaces import Namespace  # noqa: E402
from nbxmpp.protocol import JID, Presence  # noqa: E402
from nbxmpp.structs import StanzaHandler  # noqa: E402

NS_MUC_USER = "{http://jabber.org/protocol/muc#user}"
NS_SID = "{urn:xmpp:sid:0}"


def parse_args():
    p = argparse.ArgumentParser(description="nbxmpp MUC interop client")
    p.add_argument("action", choices=("history",))
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--room", required=True)
    p.add_argument("--nick", required=True)
    p.add_argument("--maxstanzas", type=int, default=None)
    return p.parse_args()


class Runner:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.exit_code = common.EXIT_OK
        self.closing = False
        self.joined = False
        jid = JID.from_string(args.jid)
        c = Client()
        c.set_domain(jid.domain)
        c.set_username(jid.localpart)
        c.set_resource("nbxmpp-" + uuid.uuid4().hex[:8])
        c.set_password(args.password)
        con_type = ConnectionType.DIRECT_TLS if args.direct_tls else ConnectionType.START_TLS
        c.set_custom_host("%s:%d" % (args.host, args.port), ConnectionProtocol.TCP, con_type)
        c.set_connection_types([con_type])
        c.set_ignore_tls_errors(True)
        c.subscribe("connected", self._on_connected)
        c.subscribe("disconnected", self._on_disconnected)
        c.subscribe("connection-failed", self._on_failed)
        c.register_handler(StanzaHandler(name="message", callback=self._on_message, priority=50))
        c.register_handler(StanzaHandler(name="presence", callback=self._on_presence, priority=50))
        self.client = c

    def run(self):
        self.client.connect()
        self.loop.run()
        return self.exit_code

    def _fail(self, text):
        common.emit("error", message=text)
        self.exit_code = common.EXIT_ERROR
        self.closing = True
        self.client.disconnect(immediate=True)

    def _on_failed(self, _client, _signal):
        common.emit("error", message="connection failed")
        self.exit_code = common.EXIT_ERROR
        self.loop.quit()

    def _on_disconnected(self, _client, _signal):
        if not self.closing:
            common.emit("error", message="disconnected unexpectedly")
            self.exit_code = common.EXIT_ERROR
        elif self.exit_code == common.EXIT_OK:
            common.emit("offline")
        self.loop.quit()

    def _on_connected(self, _client, _signal):
        common.emit("online", jid=str(self.client.get_bound_jid()))
        self.client.send_stanza(Presence())
        join = Presence(to="%s/%s" % (self.args.room, self.args.nick))
        muc = join.setTag("x", namespace=Namespace.MUC)
        if self.args.maxstanzas is not None:
            muc.setTag("history", attrs={"maxstanzas": str(self.args.maxstanzas)})
        self.client.send_stanza(join)

    def _from_room(self, stanza):
        return str(stanza.getFrom() or "").startswith(self.args.room)

    def _on_presence(self, _client, stanza, _properties):
        try:
            if not self._from_room(stanza) or self.joined:
                return
            root = ET.fromstring(str(stanza))
            x = root.find(NS_MUC_USER + "x")
            codes = sorted(int(s.get("code")) for s in x.findall(NS_MUC_USER + "status")) if x is not None else []
            if 110 in codes:
                self.joined = True
                common.emit("self", frm=str(stanza.getFrom()), codes=codes)
            elif stanza.getType() == "error":
                self._fail("join refused: %s" % stanza.getError())
        except Exception as e:
            self._fail("%s: %s" % (type(e).__name__, e))

    def _on_message(self, _client, stanza, properties):
        try:
            if not self._from_room(stanza) or self.closing:
                return
            if properties.is_muc_subject:
                common.emit("subject", subject=properties.subject)
                self.closing = True
                self.client.send_stanza(Presence(to="%s/%s" % (self.args.room, self.args.nick), typ="unavailable"))
                self.client.disconnect()
                return
            root = ET.fromstring(str(stanza))
            sid = root.find(NS_SID + "stanza-id")
            common.emit("history", body=stanza.getBody(), frm=str(stanza.getFrom()),
                        server_delay=bool(getattr(properties, "has_server_delay", False)),
                        stanza_id_by=sid.get("by") if sid is not None else None)
        except Exception as e:
            self._fail("%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    args = parse_args()
    common.setup_logging()
    common.start_watchdog(args.timeout)
    try:
        code = Runner(args).run()
    except Exception as e:
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        code = common.EXIT_ERROR
    common.hard_exit(code)
