#!/usr/bin/env python3
"""Agents' push listeners for authcertd's e2e tests (server_http.bats).

    fake_listeners.py DIR PORT...

Serves POST /v1/command on every PORT (threads, so a stalled request does not
hold the others), over TLS (Python's ssl module) with DIR/PORT.crt and
DIR/PORT.key, as an agent's listener is: authcertd pins the key the agent
enrolled. Each request is appended to DIR/PORT.log as "CONTENT_TYPE TOKEN".
It answers like authcert-agent: 200 with {"status": "ok", ...} and, when
DIR/PORT.mac holds "AGENT_ID EPOCH MAC_KEY_HEX SERVER_ID", an Authcert-Mac
header made as docs/protocol.md says (HMAC-SHA256 over the answer, the
token's "did" as the counter), computed here with Python's hmac and
hashlib: an implementation of the MAC that is not ours. While DIR/stall
exists a request is held (no answer) until the file goes or the client gives
up; held requests are logged with the prefix "held ". DIR/answered counts
the 200 answers (one line each).
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import sys
import threading
import time

out = sys.argv[1]
lock = threading.Lock()


def log(name, line):
    with lock, open(os.path.join(out, name), "a") as f:
        f.write(line + "\n")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def did_of(token):
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims.get("did", 0)


def mac_header(port, token, ans):
    path = os.path.join(out, "%d.mac" % port)
    if not os.path.exists(path):
        return None
    agent, epoch, key, server = open(path).read().split()
    did = did_of(token)
    if did <= 0:
        return None
    text = "authcert-v2\nPUSH-ANSWER\n/v1/command\n%s\n%s\n%s\n%d\n%s" % (
        agent, epoch, server, did, hashlib.sha256(ans).hexdigest())
    mac = b64url(hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).digest())
    return 'AUTHCERT-V2 agent="%s", epoch=%s, counter=%d, mac="%s"' % (agent, epoch, did, mac)


def make(port):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            ctype = self.headers["Content-Type"]
            if os.path.exists(os.path.join(out, "stall")):
                log("%d.log" % port, "held %s %s" % (ctype, body))
                while os.path.exists(os.path.join(out, "stall")):
                    time.sleep(0.05)
                return  # never answered: the server gave up on it
            log("%d.log" % port, "%s %s" % (ctype, body))
            ans = b'{"agent_id":"x","jti":"y","status":"ok","exit":0,"output":"pong"}'
            mac = mac_header(port, body, ans)
            self.send_response(200)
            self.send_header("Content-Length", str(len(ans)))
            if mac is not None:
                self.send_header("Authcert-Mac", mac)
            self.end_headers()
            self.wfile.write(ans)
            log("answered", str(port))

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(out, "%d.crt" % port), os.path.join(out, "%d.key" % port))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv


servers = [make(int(p)) for p in sys.argv[2:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
