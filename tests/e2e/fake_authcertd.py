#!/usr/bin/env python3
"""A stand-in for authcertd's check-in side, for tests/e2e/agent_checkin.bats.

   fake_authcertd.py DIR [CERT KEY]
Listens on 127.0.0.1 (a free port, written to DIR/port), over TLS with CERT
and KEY (PEM) when given (Python's ssl module: OpenSSL, TLS 1.2+), appends every
request to DIR/requests.log ("PATH BODY" a line), answers /v1/checkin with
{"state": DIR/answer-state or "current", "interval": 1, "commands": the lines of
DIR/queue, which is then removed}, and /v1/result with {}.
"""
import http.server
import json
import os
import ssl
import sys

D = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.path.join(D, "requests.log"), "a") as f:
            f.write(self.path + " " + body.decode() + "\n")
        if self.path == "/v1/checkin":
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
            answer = {"state": state, "current_thumbprint": "0" * 64, "interval": 1,
                      "commands": commands}
            if state == "mismatched":
                answer = {"state": state, "reason": "unknown", "current_thumbprint": "0" * 64,
                          "interval": 1, "commands": []}
        elif self.path == "/v1/result":
            answer = {}
        else:
            self.send_error(404)
            return
        out = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

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
