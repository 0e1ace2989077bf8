#!/usr/bin/env python3
"""Capture CoAP datagrams exchanged by libcoap's own client and server.

Starts `coap-server-notls` on 127.0.0.1, puts a recording UDP relay in front
of it and runs `coap-client-notls` against the relay for each case below.
Every datagram (both directions) is written, in order, as one hex line to
`<case>.hex`, prefixed with `c>` (client to server) or `s>` (server to
client). Only Python's standard library is used.

Usage: python3 capture.py [OUTPUT_DIR]
"""
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CASES = [
    # name, client arguments (the URI host:port is filled in), extra
    ("get_query", ["-m", "get", "-T", "cafe", "-A", "0", "coap://{hp}/time?ticks"]),
    ("observe", ["-m", "get", "-T", "0b5e", "-s", "4", "coap://{hp}/time"]),
    ("block2", ["-m", "get", "-T", "b2", "-b", "64", "coap://{hp}/.well-known/core"]),
    ("put_payload", ["-m", "put", "-T", "9075", "-t", "0", "-e", "hello libcoap",
                     "coap://{hp}/example_data"]),
    ("well_known_core", ["-m", "get", "-T", "c0de", "coap://{hp}/.well-known/core"]),
    # /async?1 answers with an empty ACK first and a separate CON response
    # one second later, which the client acknowledges with an empty ACK.
    ("separate", ["-m", "get", "-T", "a5", "coap://{hp}/async?1"]),
]


def relay(server, out_path, client_args, timeout):
    """Run one client through a recording relay, return the records."""
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind(("127.0.0.1", 0))
    hp = "127.0.0.1:%d" % front.getsockname()[1]
    args = ["coap-client-notls", "-B", str(timeout)] + [a.format(hp=hp) for a in client_args]
    client = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records, peer = [], None
    deadline = time.time() + timeout + 5
    try:
        while time.time() < deadline:
            r, _, _ = select.select([front, back], [], [], 0.2)
            for s in r:
                data, addr = s.recvfrom(65535)
                if s is front:
                    peer = addr
                    records.append("c> " + data.hex())
                    back.sendto(data, server)
                elif peer is not None:
                    records.append("s> " + data.hex())
                    front.sendto(data, peer)
            if client.poll() is not None and not r:
                break
    finally:
        client.kill()
        client.wait()
        front.close()
        back.close()
    with open(out_path, "w") as f:
        f.write("\n".join(records) + "\n")
    return records


def ping(server, out_path):
    """A CON Empty message (CoAP ping) answered by libcoap with RST."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    req = bytes([0x40, 0x00, 0x12, 0x34])
    s.sendto(req, server)
    rsp, _ = s.recvfrom(65535)
    s.close()
    with open(out_path, "w") as f:
        f.write("c> %s\ns> %s\n" % (req.hex(), rsp.hex()))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    work = tempfile.mkdtemp()
    server = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                              cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        addr = ("127.0.0.1", port)
        for name, args in CASES:
            recs = relay(addr, os.path.join(out, name + ".hex"), args, 6)
            print("%-16s %d datagrams" % (name, len(recs)))
        ping(addr, os.path.join(out, "ping_rst.hex"))
        print("ping_rst         2 datagrams")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
