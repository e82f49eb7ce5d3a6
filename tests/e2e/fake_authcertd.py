#!/usr/bin/env python3
"""A stand-in for authcertd's agent-facing side (protocol v2), for
tests/e2e/agent_checkin.bats and the man in the middle of tests/e2e/tls.bats.

   fake_authcertd.py DIR [CERT KEY]

Listens on 127.0.0.1 (a free port, written to DIR/port), over TLS with CERT
and KEY (PEM) when given. Every request is appended to DIR/requests.log as
"PATH AUTH BODY", AUTH being "mac-ok", "mac-bad" or "-" (none): the agent's
Authorization is checked here with Python's hmac and hashlib against the MAC
key this stand-in gave it, and its enrollment proof with the cryptography
package (nobody here wrote either). Answers:
  /v2/enroll/nonce  {"nonce", "server_id": "fake-server"}
  /v2/enroll        {"state": "enrolled", "epoch": 1, "mac_key", ...} when
                    the proof verifies (else 401); DIR/enroll-answer, when it
                    exists, is sent instead (status on its first line)
  /v2/checkin       {"state": DIR/answer-state or "current", "interval": 1,
                    "commands": the lines of DIR/queue, then removed}
  /v2/result        {"recorded": true}
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import ssl
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

D = sys.argv[1]
# The issuer tests/tools/mktoken signs with: an enrolled agent obeys only
# commands its server issued.
SERVER_ID = "authcert-test"
MAC_KEY = secrets.token_bytes(32)
NONCE = base64.urlsafe_b64encode(secrets.token_bytes(40)).rstrip(b"=").decode()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def proof_ok(req):
    key = serialization.load_der_public_key(unb64url(req["key"]))
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    token = req.get("token")
    th = hashlib.sha256(token.split(".", 1)[1].encode()).hexdigest() if token else "0" * 64
    text = "\n".join(["authcert-v2 enroll", req["agent_id"], pin, SERVER_ID, req["nonce"], th])
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(unb64url(req["proof"]), text.encode(), ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(unb64url(req["proof"]), text.encode())
    except InvalidSignature:
        return False
    return req["nonce"] == NONCE


def mac_ok(auth, path, body):
    m = re.fullmatch(r'AUTHCERT-V2 agent="([!-~]+)", epoch=(\d+), counter=(\d+), mac="([A-Za-z0-9_-]{43})"',
                     auth or "")
    if not m:
        return False
    agent, epoch, counter, mac = m.groups()
    text = "authcert-v2\nPOST\n%s\n%s\n%s\n%s\n%s\n%s" % (
        path, agent, epoch, SERVER_ID, counter, hashlib.sha256(body).hexdigest())
    want = b64url(hmac.new(MAC_KEY, text.encode(), hashlib.sha256).digest())
    return hmac.compare_digest(want, mac)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, obj):
        out = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization")
        verdict = "-" if auth is None else ("mac-ok" if mac_ok(auth, self.path, body) else "mac-bad")
        with open(os.path.join(D, "requests.log"), "a") as f:
            f.write(self.path + " " + verdict + " " + body.decode() + "\n")
        if self.path == "/v2/enroll/nonce":
            return self.answer(200, {"nonce": NONCE, "server_id": SERVER_ID})
        if self.path == "/v2/enroll":
            canned = os.path.join(D, "enroll-answer")
            if os.path.exists(canned):
                with open(canned) as f:
                    status = int(f.readline())
                    return self.answer(status, json.loads(f.read()))
            req = json.loads(body)
            if not proof_ok(req):
                return self.answer(401, {"error": "proof", "code": "proof"})
            return self.answer(200, {"state": "enrolled", "agent_id": req["agent_id"], "epoch": 1,
                                     "mac_key": b64url(MAC_KEY), "server_id": SERVER_ID,
                                     "interval": 1})
        if self.path == "/v2/checkin":
            queue = os.path.join(D, "queue")
            commands = []
            if os.path.exists(queue):
                with open(queue) as f:
                    commands = [line.strip() for line in f if line.strip()]
                os.unlink(queue)
            state_file = os.path.join(D, "answer-state")
            state = "current"
            if os.path.exists(state_file):
                with open(state_file) as f:
                    state = f.read().strip()
            ans = {"state": state, "current_thumbprint": "0" * 64, "interval": 1,
                   "commands": commands}
            if state == "mismatched":
                ans = {"state": state, "reason": "unknown", "current_thumbprint": "0" * 64,
                       "interval": 1, "commands": []}
            return self.answer(200, ans)
        if self.path == "/v2/result":
            return self.answer(200, {"recorded": True})
        self.send_error(404)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(os.path.join(D, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(D, "port.tmp"), os.path.join(D, "port"))
server.serve_forever()
