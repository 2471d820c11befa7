#!/usr/bin/python3
"""Interop client built on nbxmpp (Gajim's protocol library), driven by a GLib main loop without any GUI.

Usage: nbxmpp_client.py {login|send|receive|ack} --jid J --password P --host H --port N
       [--direct-tls] [--timeout S] [--to J --body B [--body B2 ...] [--id ID ...] [--receipt] [--markable]]
       [--count N]
Run with the Debian interpreter (/usr/bin/python3): nbxmpp comes from the python3-nbxmpp package.
"""

import os
import sys
import uuid
import xml.etree.ElementTree as ET

# No __pycache__ next to the scripts (they live in the source tree and are copied to bin/).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import gi  # noqa: E402
gi.require_version("GLib", "2.0")
gi.require_version("Gio", "2.0")
from gi.repository import GLib  # noqa: E402

from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.modules.receipts import build_receipt  # noqa: E402
from nbxmpp.namespaces import Namespace  # noqa: E402
from nbxmpp.protocol import JID, Iq, Message, Presence  # noqa: E402
from nbxmpp.structs import StanzaHandler  # noqa: E402


def guarded(method):
    """GLib and nbxmpp swallow exceptions raised in callbacks; turn them into a reported failure."""
    def wrapper(self, *a, **kw):
        try:
            return method(self, *a, **kw)
        except Exception as e:
            self._fail("%s: %s" % (type(e).__name__, e))
    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = method.__qualname__
    return wrapper


class NbxmppRunner:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.exit_code = common.EXIT_OK
        self.closing = False
        self.seen = 0
        self.mechanism = None

        jid = JID.from_string(args.jid)
        c = Client()
        c.set_domain(jid.domain)
        c.set_username(jid.localpart)
        c.set_resource(args.resource or "nbxmpp-" + uuid.uuid4().hex[:8])
        c.set_password(args.password)
        con_type = ConnectionType.DIRECT_TLS if args.direct_tls else ConnectionType.START_TLS
        # A custom host replaces SRV/host lookup; Gio parses "host:port" itself.
        c.set_custom_host("%s:%d" % (args.host, args.port), ConnectionProtocol.TCP, con_type)
        c.set_connection_types([con_type])
        # Self-signed test certificates: accept every TLS error (nbxmpp's switch for this).
        c.set_ignore_tls_errors(True)
        c.subscribe("connected", self._on_connected)
        c.subscribe("disconnected", self._on_disconnected)
        c.subscribe("connection-failed", self._on_connection_failed)
        # Default handler (no type, no namespace) sees every message, after nbxmpp's own
        # modules (priority 15) have filled in the parsed properties.
        c.register_handler(StanzaHandler(name="message", callback=self._on_message, priority=50))
        self.client = c

    # --- lifecycle -----------------------------------------------------------------------------

    def run(self):
        self.client.connect()
        self.loop.run()
        return self.exit_code

    def _fail(self, text):
        common.emit("error", message=text)
        common.log("error: %s" % text)
        self.exit_code = common.EXIT_ERROR
        if self.client.state.name in ("DISCONNECTED",):
            self.loop.quit()
            return
        self.closing = True
        self.client.disconnect(immediate=True)
        # The disconnected signal quits the loop; a hung socket is covered by the watchdog.

    def _error_text(self):
        domain, error, text = self.client.get_error()
        return "%s %s %s" % (getattr(domain, "name", domain), error, text or "")

    def _on_connection_failed(self, _client, _signal):
        common.emit("error", message="connection failed: " + self._error_text())
        common.log("error: connection failed: " + self._error_text())
        self.exit_code = common.EXIT_ERROR
        self.loop.quit()

    def _on_disconnected(self, _client, _signal):
        if not self.closing:
            text = "disconnected by the server or a failure: " + self._error_text()
            common.emit("error", message=text)
            common.log("error: " + text)
            self.exit_code = common.EXIT_ERROR
        elif self.exit_code == common.EXIT_OK:
            common.emit("offline")
        self.loop.quit()

    def _disconnect(self):
        self.closing = True
        # Not immediate: nbxmpp sends </stream:stream> (closing its SM session first) and waits
        # for the server to close its side before signalling "disconnected".
        self.client.disconnect()

    @guarded
    def _on_connected(self, _client, _signal):
        a = self.args
        sasl = getattr(self.client, "_sasl", None)
        mech = getattr(sasl, "_mechanism", None)
        self.mechanism = getattr(mech, "name", None)
        if a.action != "send":
            self.client.send_stanza(Presence())
        # Which SASL profile it used: nbxmpp takes XEP-0388 SASL2 whenever the server offers it.
        sasl2 = sasl.is_sasl2() if sasl is not None and hasattr(sasl, "is_sasl2") else None
        common.emit("online", jid=str(self.client.get_bound_jid()), mechanism=self.mechanism,
                    tls="direct" if a.direct_tls else "starttls", sasl2=sasl2)
        if a.action == "login":
            self._round_trip_then_disconnect()
        elif a.action == "send":
            for i, body in enumerate(a.body):
                msg_id = a.ids[i] if i < len(a.ids) else uuid.uuid4().hex
                m = Message(to=a.to, body=body, typ="chat")
                m.setID(msg_id)
                if a.receipt:
                    m.setReceiptRequest()
                if a.markable:
                    m.setMarkable()
                self.client.send_stanza(m)
                common.emit("sent", id=msg_id, to=a.to, body=body)
            self._round_trip_then_disconnect()
        elif a.count == 0:
            self._finish_receiving()

    def _round_trip_then_disconnect(self):
        """A ping answered by the server proves it has processed everything sent before it."""
        iq = Iq("get", to=self.client.get_bound_jid().domain)
        iq.addChild(name="ping", namespace=Namespace.PING)

        @guarded
        def on_reply(_self, stanza, **_user_data):
            if stanza is None:
                self._fail("no answer to the final ping")
                return
            if stanza.getType() == "error":
                common.log("ping answered with error: %s" % stanza.getError())
            self._disconnect()

        self.client.send_stanza(iq, callback=lambda _c, st, **kw: on_reply(self, st, **kw),
                                timeout=max(1, int(self.args.timeout)))

    def _finish_receiving(self):
        if self.args.action == "ack":
            self._round_trip_then_disconnect()
        else:
            self._disconnect()

    # --- messages ------------------------------------------------------------------------------

    @guarded
    def _on_message(self, _client, stanza, properties):
        if self.closing or self.args.action not in ("receive", "ack") or self.seen >= self.args.count:
            return
        fields = common.describe_message(ET.fromstring(str(stanza)))
        if not common.is_countable(fields):
            return
        # nbxmpp's own reading of XEP-0203: a delay whose 'from' is our server's domain is the
        # server's (offline storage) timestamp; any other delay becomes the user timestamp.
        fields["server_delay"] = bool(getattr(properties, "has_server_delay", False))
        self.seen += 1
        common.emit("message", **fields)
        if self.args.action == "ack" and fields["id"] and (fields["receipt_request"] or fields["markable"]):
            self._send_acks(stanza, fields)
        if self.seen >= self.args.count:
            self._finish_receiving()

    def _send_acks(self, stanza, fields):
        bare = JID.from_string(fields["from"]).new_as_bare()
        acked = {"id": fields["id"], "to": str(bare), "receipt": False, "displayed": False}
        if fields["receipt_request"]:
            # nbxmpp's own builder, as Gajim uses it: to the bare JID, same type, with a
            # <store/> hint and an origin-id.
            self.client.send_stanza(build_receipt(stanza))
            acked["receipt"] = True
        if fields["markable"]:
            d = Message(to=bare, typ=stanza.getType() or "chat")
            d.setID(uuid.uuid4().hex)
            d.setMarker("displayed", fields["id"])
            d.setHint("store")
            self.client.send_stanza(d)
            acked["displayed"] = True
        common.emit("acked", **acked)


if __name__ == "__main__":
    args = common.parse_args()
    common.start_watchdog(args.timeout)
    try:
        code = NbxmppRunner(args).run()
    except Exception as e:  # report library failures as errors with their text, not only a traceback
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        code = common.EXIT_ERROR
    common.hard_exit(code)
