"""Joins a room over a WebSocket, says `welcomed` once the server's welcome arrives, prints
`message: TEXT` for each message posted after that, and when the server closes the connection
prints the close code it sent.

.ci/container-test uses it to see that stopping a container closes connections with 1012, and that a
message posted to one shared-mode container reaches a client of another. Only the
standard library: CI machines have Python but no WebSocket client.

    python3 .ci/ws-watch.py HOST PORT ROOM_CODE
"""

import base64
import json
import os
import socket
import struct
import sys

host, port, code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = socket.create_connection((host, port), timeout=60)
key = base64.b64encode(os.urandom(16)).decode()
conn.sendall(
    (
        f"GET /ws/{code}?name=watcher HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
)
pending = b""


def read(count):
    global pending
    while len(pending) < count:
        chunk = conn.recv(65536)
        if not chunk:
            sys.exit("the connection ended without a close frame")
        pending += chunk
    taken, pending = pending[:count], pending[count:]
    return taken


head = b""
while b"\r\n\r\n" not in head:
    head += read(1)
if not head.startswith(b"HTTP/1.1 101"):
    sys.exit(f"the upgrade was refused: {head.decode(errors='replace')}")
welcomed = False
while True:
    first, second = read(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", read(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", read(8))
    payload = read(length)
    opcode = first & 0x0F
    if opcode == 1 and not welcomed:
        welcomed = True
        print("welcomed", flush=True)
    elif opcode == 1:
        event = json.loads(payload)
        if event.get("type") == "message":
            print(f"message: {event['text']}", flush=True)
    elif opcode == 8:
        print(struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else "no code", flush=True)
        break
