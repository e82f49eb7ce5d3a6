#!/usr/bin/env python3
"""Agents' push listeners for authcertd's e2e tests (server_http.bats).

    fake_listeners.py DIR PORT...

Serves POST /v1/command on every PORT (threads, so a stalled request does not
hold the others). Each request is appended to DIR/PORT.log as
"CONTENT_TYPE TOKEN". It answers like authcert-agent: 200 with
{"status": "ok", ...}. While DIR/stall exists a request is held (no answer)
until the file goes or the client gives up; held requests are logged with
the prefix "held ". DIR/answered counts the 200 answers (one line each).
Over TLS (Python's ssl module) with FAKE_TLS_CERT and FAKE_TLS_KEY (PEM)
from the environment, as an agent's listener is: the server pins that key.
"""
import http.server
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
            self.send_response(200)
            self.send_header("Content-Length", str(len(ans)))
            self.end_headers()
            self.wfile.write(ans)
            log("answered", str(port))

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    if os.environ.get("FAKE_TLS_CERT"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.environ["FAKE_TLS_CERT"], os.environ["FAKE_TLS_KEY"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv


servers = [make(int(p)) for p in sys.argv[2:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
