// Interop client built on xmpp.js (@xmpp/client from npm): logs in over WebSocket (RFC 7395, wss://) or TCP with
// STARTTLS (xmpp://), sends one chat message and waits for one back. One JSON event per stdout line, as the Python
// interop clients print them.
// Usage: node --experimental-websocket xmppjs_client.mjs SERVICE DOMAIN USERNAME PASSWORD PEER BODY EXPECTED_BODY
// (node 20 has WebSocket only behind that flag; 22 and later have it by default and accept the flag).
// Environment:
//   NODE_TLS_REJECT_UNAUTHORIZED=0  the test server's certificate is self-signed
//   XMPPJS_TRACE=1                  print every element sent ("out") and received ("in")
//   XMPPJS_USER_AGENT=ID            the XEP-0388 user-agent id; FAST tokens are issued per id, so a second process
//                                   that is to use a token must present the same one
//   XMPPJS_TOKEN_FILE=PATH          where the XEP-0484 FAST token is kept between processes (JSON, as xmpp.js hands
//                                   it over); xmpp.js reads it before authenticating and replaces or deletes it
import { readFile, rm, writeFile } from "node:fs/promises";
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer, body, expected] = process.argv.slice(2);
const emit = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const { XMPPJS_USER_AGENT: agentId, XMPPJS_TOKEN_FILE: tokenFile } = process.env;

const xmpp = client({
  service,
  domain,
  username,
  password,
  resource: "xmppjs",
  ...(agentId && { userAgent: xml("user-agent", { id: agentId }, xml("software", {}, "xmpp.js interop")) }),
});
const timer = setTimeout(() => {
  emit("failure", { reason: "timeout" });
  process.exit(3);
}, 30000);

if (tokenFile) {
  // xmpp.js keeps the token in memory unless these are replaced (see @xmpp/client-core/src/fast/fast.js).
  xmpp.fast.fetchToken = async () => {
    try {
      return JSON.parse(await readFile(tokenFile, "utf8"));
    } catch {
      return undefined;
    }
  };
  xmpp.fast.saveToken = async (token) => {
    await writeFile(tokenFile, JSON.stringify(token));
    emit("token-saved", { mechanism: token.mechanism, expiry: token.expiry });
  };
  xmpp.fast.deleteToken = async () => {
    await rm(tokenFile, { force: true });
    emit("token-deleted");
  };
}

if (process.env.XMPPJS_TRACE) {
  // 0.14 has no raw input/output events: these are the elements as sent and as parsed.
  xmpp.on("send", (element) => emit("out", { data: element.toString() }));
  xmpp.on("element", (element) => emit("in", { data: element.toString() }));
}

xmpp.on("error", (err) => {
  emit("failure", { reason: String(err && (err.condition || err.message || err)) });
  process.exit(2);
});

xmpp.on("stanza", async (stanza) => {
  if (!stanza.is("message") || stanza.getChildText("body") !== expected) return;
  emit("received", { from: stanza.attrs.from, body: expected, sm: xmpp.streamManagement.enabled });
  clearTimeout(timer);
  await xmpp.stop();
  emit("closed");
  process.exit(0);
});

xmpp.on("online", async (address) => {
  emit("online", { jid: address.toString() });
  // COMPAT(xmpp.js 0.14): with Bind 2 it goes online before it reads the <enabled/> in <bound/>, so a stanza sent
  // from this handler is not queued for XEP-0198 though the server counts it (the <enable/> went out inside
  // <authenticate/>), and the server's next <a h='2'/> makes it throw. Let it finish reading <bound/> first.
  await new Promise((resolve) => setImmediate(resolve));
  await xmpp.send(xml("presence"));
  await xmpp.send(xml("message", { to: peer, type: "chat", id: "js1" }, xml("body", {}, body)));
  emit("sent", { to: peer });
});

try {
  await xmpp.start();
} catch (err) {
  // A failed login rejects start(); say why and exit rather than leave an unhandled rejection.
  emit("failure", { reason: String(err && (err.condition || err.message || err)) });
  process.exit(2);
}
