#!/usr/bin/env python3
"""Hostile HTTP clients for tests/e2e/hostile_clients.bats.

hostile_clients.py HOST PORT PATH CTYPE SRC_ADDR SECONDS IDLE READY_FILE [tls]

Opens, from SRC_ADDR, and keeps open for SECONDS:
  - IDLE connections that send nothing;
  - 5 slow senders: headers, then a body one byte every 0.3 s;
  - 5 with a 100 KiB header line, sent in one go;
  - 3 with a 64 MiB Content-Length, sending as fast as they can;
  - 3 sending a chunked body that never ends.
Writes READY_FILE with how many connections were opened (refusals by the
server are counted, not errors), then keeps pushing bytes until SECONDS.
With "tls", every connection but the idle ones completes a TLS handshake
first (trusting anything), so that the slow and huge requests reach the
HTTP layer as a client of a TLS server would send them; the idle ones stay
bare TCP, which the server must time out before any handshake.
"""
import os, socket, ssl, sys, time

host, port, path, ctype, src, seconds, idle, ready = sys.argv[1:9]
use_tls = sys.argv[9:] == ["tls"]
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE
port, seconds, idle = int(port), float(seconds), int(idle)
end = time.time() + seconds
socks, refused = [], 0


def connect(handshake=True):
    global refused
    s = socket.socket()
    s.setblocking(True)
    s.settimeout(2)
    try:
        s.bind((src, 0))
        s.connect((host, port))
        if use_tls and handshake:
            s = tls.wrap_socket(s)
    except OSError:
        refused += 1
        s.close()
        return None
    s.setblocking(False)
    socks.append(s)
    return s


def send(s, data):
    try:
        s.send(data)
        return True
    except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False


head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n" % (path, ctype)).encode()
for _ in range(idle):
    connect(handshake=False)
slow = [s for s in (connect() for _ in range(5)) if s]
for s in slow:
    send(s, head + b"Content-Length: 1000\r\n\r\n")
for _ in range(5):
    s = connect()
    if s:
        send(s, head + b"X-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n")
big = [s for s in (connect() for _ in range(3)) if s]
for s in big:
    send(s, head + b"Content-Length: 67108864\r\n\r\n")
chunked = [s for s in (connect() for _ in range(3)) if s]
for s in chunked:
    send(s, head + b"Transfer-Encoding: chunked\r\n\r\n")
with open(ready + ".tmp", "w") as f:
    f.write("%d opened %d refused\n" % (len(socks), refused))
os.rename(ready + ".tmp", ready)
blob = b"x" * 65536
chunk = b"1000\r\n" + b"y" * 4096 + b"\r\n"
while time.time() < end:
    slow = [s for s in slow if send(s, b"{")]
    for _ in range(3):
        big = [s for s in big if send(s, blob)]
        chunked = [s for s in chunked if send(s, chunk)]
    time.sleep(0.3)
for s in socks:
    s.close()
