// Interop client built on xmpp.js (@xmpp/client from npm): logs in over WebSocket (RFC 7395, wss://) or TCP with
// STARTTLS (xmpp://), sends one chat message and waits for one back. One JSON event per stdout line, as the Python
// interop clients print them.
// Usage: node [--experimental-websocket] xmppjs_client.mjs SERVICE DOMAIN USERNAME PASSWORD PEER BODY EXPECTED_BODY
// (node 20 has the WebSocket xmpp.js needs only behind that flag; 22 and later have it by default).
// Environment:
//   NODE_TLS_REJECT_UNAUTHORIZED=0  the test server's certificate is self-signed
//   XMPPJS_TRACE=1                  print every element sent ("out") and received ("in")
//   XMPPJS_USER_AGENT=ID            the XEP-0388 user-agent id; FAST tokens are issued per id, so a second process
//                                   that is to use a token must present the same one
//   XMPPJS_TOKEN_FILE=PATH          where the XEP-0484 FAST token is kept between processes (JSON, as xmpp.js hands
//                                   it over); xmpp.js reads it before authenticating and replaces or deletes it
//   XMPPJS_DROP=1                   once the message is acknowledged, cut the connection without closing the stream, as a
//                                   lost network does; xmpp.js reconnects and resumes its XEP-0198 session
import { readFile, rm, writeFile } from "node:fs/promises";
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer, body, expected] = process.argv.slice(2);
const emit = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const { XMPPJS_USER_AGENT: agentId, XMPPJS_TOKEN_FILE: tokenFile, XMPPJS_DROP: drop } = process.env;
let dropped = false;

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

// COMPAT(xmpp.js 0.14): Connection.open() waits for the write callback of its stream header before it listens for
// the server's; after STARTTLS the server's header can be parsed first, and open() then fails with a TimeoutError
// although the stream is open. Listen from the start and take whichever comes first.
const openAfterWrite = xmpp.open.bind(xmpp);
xmpp.open = (options) =>
  new Promise((resolve, reject) => {
    const onOpen = (header) => resolve(header);
    xmpp.once("open", onOpen);
    openAfterWrite(options).then(resolve, (err) => {
      xmpp.removeListener("open", onOpen);
      reject(err); // no effect once resolved
    });
  });

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
  // COMPAT(xmpp.js 0.14): it goes on reading the stanzas that follow a SASL2 <success/> while it still checks that
  // <success/> (the HT mechanism's check of the server's proof is asynchronous), so a stanza resent after <resumed/>
  // can arrive before it has taken the resumption in; stopping then makes its own resume handling throw.
  if (dropped) await resumedOnce;
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

// Dropped once the server has acknowledged the message (XEP-0198 <a/>): login is long over by then.
xmpp.streamManagement.on("ack", (stanza) => {
  if (!drop || dropped || stanza.attrs.id !== "js1") return;
  dropped = true;
  // The transport's own socket: a TLS socket after STARTTLS, or the WebSocket.
  const raw = xmpp.socket.socket;
  if (raw.destroy) raw.destroy();
  else raw.close();
  emit("dropped");
});

const resumedOnce = new Promise((resolve) =>
  xmpp.streamManagement.on("resumed", () => {
    emit("resumed", { jid: xmpp.jid.toString() });
    resolve();
  }),
);

try {
  await xmpp.start();
} catch (err) {
  // A failed login rejects start(); say why and exit rather than leave an unhandled rejection.
  emit("failure", { reason: String(err && (err.condition || err.message || err)) });
  process.exit(2);
}
