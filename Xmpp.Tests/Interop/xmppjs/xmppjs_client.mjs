// Interop client built on xmpp.js (@xmpp/client from npm): logs in over WebSocket (RFC 7395), sends one chat message
// and waits for one back. One JSON event per stdout line, as the Python interop clients print them.
// Usage: node xmppjs_client.mjs SERVICE DOMAIN USERNAME PASSWORD PEER BODY EXPECTED_BODY
// The test server's certificate is self-signed: run with NODE_TLS_REJECT_UNAUTHORIZED=0.
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer, body, expected] = process.argv.slice(2);
const emit = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));

const xmpp = client({ service, domain, username, password, resource: "xmppjs" });
const timer = setTimeout(() => {
  emit("failure", { reason: "timeout" });
  process.exit(3);
}, 30000);

if (process.env.XMPPJS_TRACE) {
  xmpp.on("output", (data) => emit("out", { data }));
  xmpp.on("input", (data) => emit("in", { data }));
}

xmpp.on("error", (err) => {
  emit("failure", { reason: String(err && (err.condition || err.message || err)) });
  process.exit(2);
});

xmpp.on("stanza", async (stanza) => {
  if (!stanza.is("message") || stanza.getChildText("body") !== expected) return;
  emit("received", { from: stanza.attrs.from, body: expected });
  clearTimeout(timer);
  await xmpp.stop();
  emit("closed");
  process.exit(0);
});

xmpp.on("online", async (address) => {
  emit("online", { jid: address.toString() });
  await xmpp.send(xml("presence"));
  await xmpp.send(xml("message", { to: peer, type: "chat", id: "js1" }, xml("body", {}, body)));
  emit("sent", { to: peer });
});

await xmpp.start();
