"""tinydtls (PyPI DTLSSocket) as a DTLS PSK client: sends one CoAP GET /time
to 127.0.0.1:PORT and prints the response as hex ("RESPONSE <hex>").

usage: tinydtls_client.py PORT IDENTITY KEY_HEX
"""
import socket
import sys

from DTLSSocket.DTLSSocket import DTLSSocket

port, identity, key = int(sys.argv[1]), sys.argv[2].encode(), bytes.fromhex(sys.argv[3])
import os
from DTLSSocket import dtls
s = DTLSSocket(pskId=identity, pskStore={identity: key}, logLevel=dtls.DTLS_LOG_DEBUG if os.environ.get("TINYDTLS_DEBUG") else dtls.DTLS_LOG_EMERG)
s.settimeout(1.0) if hasattr(s, "settimeout") else None
addr = ("::ffff:127.0.0.1", port)
get = bytes([0x42, 0x01, 0x12, 0x34, 0xAB, 0xCD, 0xB4]) + b"time"
for attempt in range(10):
    try:
        s.sendmsg([get], address=addr, cnt=20)
        break
    except (BlockingIOError, socket.timeout, Exception) as e:  # noqa: BLE001
        print("connect attempt failed:", repr(e), flush=True)
else:
    print("NO HANDSHAKE", flush=True)
    sys.exit(2)
print("CONNECTED", flush=True)
for _ in range(20):
    try:
        r = s.recvmsg(1200)
    except (BlockingIOError, socket.timeout):
        continue
    if r and r[0]:
        print("RESPONSE", r[0].hex(), flush=True)
        sys.exit(0)
print("NO RESPONSE", flush=True)
sys.exit(3)
