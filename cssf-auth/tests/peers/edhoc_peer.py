#!/usr/bin/env python3
"""An EDHOC peer for the interop tests: lakers (PyPI lakers-python) as
initiator or responder, method 3, cipher suite 2, exchanging hex lines on
stdin / stdout.

    edhoc_peer.py initiator|responder ref|value OWN_KEY OWN_CRED PEER_CRED

Prints "message_1 HEX" / "message_2 HEX" / "message_3 HEX" for what it
sends, reads the peer's messages as one hex line each, and at the end prints
"oscore MASTER_SECRET MASTER_SALT C_I C_R" (EDHOC_Exporter labels 0 and 1,
RFC 9528 Appendix A.1). Any failure prints "error ..." and exits 1.
"""
import sys

import lakers
from lakers import CredentialTransfer, EdhocInitiator, EdhocResponder


def send(name, msg):
    print(name, msg.hex(), flush=True)


def receive():
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("peer closed stdin")
    return bytes.fromhex(line.strip())


def main():
    role, transfer, own_key, own_cred, peer_cred = sys.argv[1:6]
    transfer = CredentialTransfer.ByValue if transfer == "value" else CredentialTransfer.ByReference
    own_key, own_cred, peer_cred = (bytes.fromhex(v) for v in (own_key, own_cred, peer_cred))
    if role == "initiator":
        i = EdhocInitiator()
        send("message_1", i.prepare_message_1(c_i=None))
        c_r, id_cred_r, _ead_2 = i.parse_message_2(receive())
        # the application's trust decision: only the credential it was given
        i.verify_message_2(own_key, own_cred, lakers.credential_check_or_fetch(id_cred_r, peer_cred))
        message_3, _prk_out = i.prepare_message_3(transfer, [])
        send("message_3", message_3)
        i.completed_without_message_4()
        end, c_i = i, None
    else:
        r = EdhocResponder(own_key, own_cred)
        c_i, _ead_1 = r.process_message_1(receive())
        # C_R chosen unlike C_I (RFC 9528 §3.3.3; our initiator refuses an
        # equal one), so the run does not depend on lakers' random choice.
        c_r_own = bytes([0x06]) if bytes(c_i) == bytes([0x05]) else bytes([0x05])
        send("message_2", r.prepare_message_2(transfer, c_r_own, []))
        id_cred_i, _ead_3 = r.parse_message_3(receive())
        r.verify_message_3(lakers.credential_check_or_fetch(id_cred_i, peer_cred))
        r.completed_without_message_4()
        end, c_r = r, None
    secret = bytes(end.edhoc_exporter(0, [], 16))
    salt = bytes(end.edhoc_exporter(1, [], 8))
    ids = [bytes(x).hex() if x is not None else "-" for x in (c_i, c_r)]
    print("oscore", secret.hex(), salt.hex(), *ids, flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the test, which names it
        print("error", type(e).__name__, e, flush=True)
        sys.exit(1)
