"""tinydtls (PyPI DTLSSocket) as a DTLS PSK server on [::]:PORT (v4-mapped
addresses reach it): prints "READY", then answers the first CoAP request
with an ACK 2.05 "tinydtls" and prints "GOT <hex>".

usage: tinydtls_server.py PORT IDENTITY KEY_HEX
"""
import socket
import sys
import time

from DTLSSocket.DTLSSocket import DTLSSocket

port, identity, key = int(sys.argv[1]), sys.argv[2].encode(), bytes.fromhex(sys.argv[3])
s = DTLSSocket(pskId=identity, pskStore={identity: key})
s._sock.bind(("::", port))
s._sock.settimeout(1.0)
print("READY", flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    try:
        r = s.recvmsg(1200)
    except (BlockingIOError, socket.timeout):
        continue
    if not r or not r[0]:
        continue
    data, _, _, addr = r
    print("GOT", data.hex(), flush=True)
    tkl = data[0] & 0x0F
    ack = bytes([0x60 | tkl, 0x45, data[2], data[3]]) + data[4:4 + tkl] + b"\xfftinydtls"
    host, prt = addr[0], addr[1]
    s.sendmsg([ack], address=(host, prt, 0, 0))
    time.sleep(1)
    sys.exit(0)
print("NOTHING RECEIVED", flush=True)
sys.exit(3)
