#!/usr/bin/env python3
"""Opens an XMPP stream over TLS (STARTTLS or direct TLS), closes it with </stream:stream> and reads until the
server's end. Python's ssl module with suppress_ragged_eofs=False raises SSLEOFError when the server closes TCP
without a TLS close_notify, as profanity and check_xmppng complain; a clean end prints a JSON line and exits 0."""
import argparse, json, socket, ssl, sys

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--domain", required=True)
p.add_argument("--mode", choices=["starttls", "direct"], required=True)
p.add_argument("--timeout", type=float, default=10)
a = p.parse_args()

header = (f"<?xml version='1.0'?><stream:stream to='{a.domain}' version='1.0' xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams'>").encode()

def read_until(sock, marker):
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"connection ended before {marker!r}: {data[-200:]!r}")
        data += chunk
    return data

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# OpenSSL 3 would otherwise report a missing close_notify as a plain end of data.
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
if a.mode == "starttls":
    raw.sendall(header)
    read_until(raw, b"</stream:features>")
    raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    read_until(raw, b"<proceed")
tls = ctx.wrap_socket(raw, server_hostname=a.domain, suppress_ragged_eofs=False)
tls.sendall(header)
read_until(tls, b"</stream:features>")
tls.sendall(b"</stream:stream>")
received = b""
try:
    while True:
        chunk = tls.recv(4096)
        if not chunk:
            break
        received += chunk
except (ssl.SSLEOFError, ssl.SSLError) as e:  # "unexpected eof while reading", as profanity logs it
    print(json.dumps({"event": "ragged-eof", "error": str(e), "version": tls.version()}))
    sys.exit(3)
print(json.dumps({"event": "clean-close", "closing-tag": b"</stream:stream>" in received, "version": tls.version(),
                  "cipher": tls.cipher()[0]}))
