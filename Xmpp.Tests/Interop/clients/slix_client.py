#!/usr/bin/python3
"""Interop client built on slixmpp (asyncio).

Usage: slix_client.py {login|send|receive|ack|resume|upload|mam} --jid J --password P --host H --port N
       [--direct-tls] [--timeout S] [--to J --body B [--body B2 ...] [--id ID ...] [--receipt] [--markable]]
       [--count N] [--drop-after K --gap S] [--file F [--content-type T] [--ca-file PEM]] [--page-size N] [--reverse]
Run with the Debian interpreter (/usr/bin/python3): slixmpp comes from the python3-slixmpp package.
"""

import asyncio
import os
import pathlib
import ssl
import sys
import uuid

# No __pycache__ next to the scripts (they live in the source tree and are copied to bin/).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_common as common  # noqa: E402

import slixmpp  # noqa: E402
from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402


class Failure(Exception):
    pass


class SlixRunner:
    def __init__(self, args):
        self.args = args
        self.loop = asyncio.get_running_loop()
        jid = args.jid + ("/" + args.resource if args.resource else "")
        x = slixmpp.ClientXMPP(jid, args.password)
        # The test servers use self-signed certificates: turn verification off (hostname first,
        # or ssl refuses CERT_NONE). slixmpp reuses this context for STARTTLS and direct TLS.
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        x.register_plugin("xep_0030")
        # auto_ack off: this program decides itself when receipts go out (action "ack").
        x.register_plugin("xep_0184", {"auto_ack": False, "auto_request": False})
        x.register_plugin("xep_0333")
        x.register_plugin("xep_0199")
        x.register_plugin("xep_0203")
        x.register_plugin("xep_0313")
        if args.action == "resume":
            # XEP-0198 with resumption (the plugin asks for resume='true' by default).
            x.register_plugin("xep_0198")
        elif args.action == "upload":
            # XEP-0363 uploads with aiohttp (python3-aiohttp), whose default TLS context verifies the server:
            # SSL_CERT_FILE makes it trust the test server's self-signed certificate, and only that one.
            if args.ca_file:
                os.environ["SSL_CERT_FILE"] = args.ca_file
            x.register_plugin("xep_0363")
        self.x = x
        self.mechanism = None
        self.closing = False
        self.session = self.loop.create_future()
        self.failure = self.loop.create_future()
        self.messages = asyncio.Queue()
        self.dropping = False
        self.sm_enabled = self.loop.create_future()
        self.sm_outcome = None

        x.add_event_handler("auth_success", self._on_auth_success)
        x.add_event_handler("failed_all_auth", lambda _e: self._fail("SASL authentication failed"))
        # Any SASL <failure/> is fatal, even when slixmpp would go on to try the next mechanism: bots commonly stop
        # at failed_auth, so with default settings a correct password must log in on the first try (issue 20).
        x.add_event_handler("failed_auth", lambda s: self._fail("SASL failure before login: %s %s" % (
            s["condition"], s["text"])))
        x.add_event_handler("connection_failed", lambda e: self._fail("connection failed: %s" % (e,)))
        x.add_event_handler("stream_error", lambda e: self._fail("stream error: %s" % (e["condition"],)))
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("session_start", self._on_session_start)
        x.add_event_handler("sm_enabled", lambda e: self._settle(self.sm_enabled, e))
        x.add_event_handler("session_resumed", lambda _e: self._settle(self.sm_outcome, "resumed"))
        x.add_event_handler("sm_failed", lambda e: self._settle(self.sm_outcome, "failed: %s" % (e,)))
        # The built-in 'message' event only fires for messages with a <body/>; receipts and markers
        # have none, so match every message stanza here.
        x.register_handler(Callback("interop all messages", MatchXPath("{jabber:client}message"), self._on_message))

    def _fail(self, text):
        if not self.failure.done():
            self.failure.set_exception(Failure(text))

    def _on_auth_success(self, _stanza):
        mech = self.x["feature_mechanisms"].mech
        self.mechanism = getattr(mech, "name", None) if mech is not None else None

    @staticmethod
    def _settle(future, value):
        if future is not None and not future.done():
            future.set_result(value)

    def _on_disconnected(self, reason):
        if self.dropping:
            return
        if not self.closing:
            self._fail("disconnected by the server: %s" % (reason,))

    def _on_session_start(self, _event):
        if not self.session.done():
            self.session.set_result(True)

    def _on_message(self, msg):
        self.messages.put_nowait(msg)

    async def _or_fail(self, awaitable):
        """Wait for awaitable, but raise as soon as the connection fails."""
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task, self.failure}, return_when=asyncio.FIRST_COMPLETED)
        if self.failure in done and task not in done:
            task.cancel()
            self.failure.result()
        return task.result()

    async def connect(self, presence):
        a = self.args
        self.x.connect((a.host, a.port), use_ssl=a.direct_tls, force_starttls=not a.direct_tls,
                       disable_starttls=a.direct_tls)
        await self._or_fail(self.session)
        if presence:
            self.x.send_presence()
        ssl_object = self.x.socket if isinstance(self.x.socket, (ssl.SSLSocket, ssl.SSLObject)) else None
        common.emit("online", jid=str(self.x.boundjid.full), mechanism=self.mechanism,
                    tls="direct" if a.direct_tls else "starttls",
                    tls_version=ssl_object.version() if ssl_object is not None else None)

    async def server_round_trip(self):
        """A ping answered by the server proves it has processed everything sent before it (same stream, in order)."""
        iq = self.x.Iq()
        iq["type"] = "get"
        iq["to"] = self.x.boundjid.domain
        iq.enable("ping")
        try:
            await self._or_fail(iq.send(timeout=self.args.timeout))
        except IqError as e:
            # An error reply still proves the round trip; only its absence is a problem.
            common.log("ping answered with error: %s" % e.iq["error"]["condition"])

    async def discover_upload_service(self):
        """XEP-0363 §3 discovery: the domain's disco#items, then each item's disco#info.

        COMPAT(slixmpp 1.8.3): its own discovery (xep_0030 get_info_from_domain) hands coroutines to asyncio.wait,
        which Python 3.11 refuses, so the plugin is told the service found here with slixmpp's own disco calls."""
        disco = self.x["xep_0030"]
        timeout = self.args.timeout
        items = await self._or_fail(disco.get_items(self.x.boundjid.domain, timeout=timeout))
        for item in items["disco_items"]["items"]:
            info = (await self._or_fail(disco.get_info(item[0], timeout=timeout)))["disco_info"]
            if not any(i[0] == "store" and i[1] == "file" for i in info["identities"]):
                continue
            if "urn:xmpp:http:upload:0" not in info["features"]:
                continue
            max_size = None
            for form in info.iterables:
                values = form["values"]
                if values.get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                    max_size = int(values["max-file-size"])
            upload = self.x["xep_0363"]
            upload.upload_service = item[0]
            upload.max_file_size = max_size if max_size is not None else float("+inf")
            common.emit("upload_service", jid=str(item[0]), max_file_size=max_size)
            return
        raise Failure("no XEP-0363 upload service in disco#items of %s" % self.x.boundjid.domain)

    async def disconnect(self):
        self.closing = True
        await self.x.disconnect(wait=5)
        common.emit("offline")

    async def next_countable(self):
        while True:
            msg = await self._or_fail(self.messages.get())
            fields = common.describe_message(msg.xml)
            if common.is_countable(fields):
                return fields

    def send_chat(self, to, body, msg_id, receipt, markable):
        m = self.x.make_message(mto=to, mbody=body, mtype="chat")
        m["id"] = msg_id
        if receipt:
            m["request_receipt"] = True
        if markable:
            m.enable("markable")
        m.send()

    def send_acks(self, fields):
        bare = slixmpp.JID(fields["from"]).bare
        acked = {"id": fields["id"], "to": bare, "receipt": False, "displayed": False}
        if fields["receipt_request"]:
            r = self.x.make_message(mto=bare, mtype="chat")
            r["id"] = uuid.uuid4().hex
            r["receipt"] = fields["id"]
            r.send()
            acked["receipt"] = True
        if fields["markable"]:
            d = self.x.make_message(mto=bare, mtype="chat")
            d["id"] = uuid.uuid4().hex
            d["displayed"]["id"] = fields["id"]
            d.send()
            acked["displayed"] = True
        common.emit("acked", **acked)

    async def resume(self):
        """Receive, lose the socket without closing the stream, reconnect, resume, receive the rest."""
        a = self.args
        await self.connect(presence=True)
        enabled = await self._or_fail(self.sm_enabled)
        common.emit("sm_enabled", id=enabled["id"], resume=enabled["resume"])
        received = 0
        while received < a.drop_after:
            common.emit("message", **(await self.next_countable()))
            received += 1
        self.dropping = True
        gone = self.x.disconnected  # resolved by connection_lost
        self.x.abort()
        await asyncio.wait_for(gone, a.timeout)
        common.emit("dropped", handled=self.x["xep_0198"].handled)
        await asyncio.sleep(a.gap)
        self.sm_outcome = self.loop.create_future()
        self.dropping = False
        self.x.connect((a.host, a.port), use_ssl=a.direct_tls, force_starttls=not a.direct_tls,
                       disable_starttls=a.direct_tls)
        outcome = await self._or_fail(self.sm_outcome)
        if outcome != "resumed":
            raise Failure("resumption %s" % outcome)
        common.emit("resumed")
        while received < a.count:
            common.emit("message", **(await self.next_countable()))
            received += 1
        # Acknowledge everything before closing, so the server has nothing left to treat as undelivered.
        self.x["xep_0198"].send_ack()
        await self.server_round_trip()

    async def page_archive(self):
        """XEP-0313 through slixmpp's own RSM iterator: one "page" event per answer, one "archived" per message."""
        a = self.args
        own = slixmpp.JID(a.archive or self.x.boundjid.bare)
        pages = self.x["xep_0313"].retrieve(jid=own, iterator=True, reverse=a.reverse, rsm={"max": a.page_size})
        async for page in pages:
            fin = page["mam_fin"]
            results = fin["results"]
            common.emit("page", size=len(results), complete=fin.xml.get("complete"), count=fin["rsm"]["count"],
                        first=fin["rsm"]["first"], last=fin["rsm"]["last"])
            for msg in results:
                result = msg["mam_result"]
                fields = common.describe_message(result["forwarded"]["stanza"].xml)
                fields["archive_id"] = result["id"]
                fields["queryid"] = result["queryid"]
                fields["stamp"] = str(result["forwarded"]["delay"]["stamp"])
                common.emit("archived", **fields)

    async def run(self):
        a = self.args
        if a.action == "resume":
            await self.resume()
            await self.disconnect()
            return
        if a.action == "mam":
            await self.connect(presence=False)
            await self._or_fail(self.page_archive())
        elif a.action == "login":
            await self.connect(presence=True)
            await self.server_round_trip()
        elif a.action == "send":
            # No initial presence: a pure sender must not become available and swallow messages
            # (offline ones included) that are meant for a later receiving session.
            await self.connect(presence=False)
            for i, body in enumerate(a.body):
                msg_id = a.ids[i] if i < len(a.ids) else uuid.uuid4().hex
                self.send_chat(a.to, body, msg_id, a.receipt, a.markable)
                common.emit("sent", id=msg_id, to=a.to, body=body)
            await self.server_round_trip()
        elif a.action == "upload":
            await self.connect(presence=False)
            await self.discover_upload_service()
            url = await self._or_fail(self.x["xep_0363"].upload_file(
                pathlib.Path(a.file), content_type=a.content_type, timeout=a.timeout))
            common.emit("uploaded", url=url)
        else:
            await self.connect(presence=True)
            for _ in range(a.count):
                fields = await self.next_countable()
                common.emit("message", **fields)
                if a.action == "ack" and fields["id"] and (fields["receipt_request"] or fields["markable"]):
                    self.send_acks(fields)
            if a.action == "ack":
                await self.server_round_trip()
        await self.disconnect()


async def main(args):
    runner = SlixRunner(args)
    await runner.run()


if __name__ == "__main__":
    args = common.parse_args()
    common.start_watchdog(args.timeout)
    try:
        asyncio.run(main(args))
    except (Failure, IqTimeout) as e:
        common.emit("error", message=str(e) or type(e).__name__)
        common.log("error: %s" % (str(e) or type(e).__name__))
        common.hard_exit(common.EXIT_ERROR)
    except Exception as e:  # any other library failure is an error, reported, not a traceback-only crash
        common.emit("error", message="%s: %s" % (type(e).__name__, e))
        common.log("error: %s: %s" % (type(e).__name__, e))
        common.hard_exit(common.EXIT_ERROR)
    common.hard_exit(common.EXIT_OK)
