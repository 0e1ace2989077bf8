#!/usr/bin/env python3
"""Independent COSE/CWT peer for cssf-auth interop tests.

Uses the PyPI packages `cwt` and `pycose`.

  cose_peer.py mint                 -> lines "<name> <hex token>"
  cose_peer.py mint-e2e             -> lines "<name> <hex token>": tokens as an
                                       AS would issue them (the AS key's kid in
                                       the COSE header, a symmetric PoP key)
  cose_peer.py verify <name> <hex>  -> JSON of the verified claims, exit 0;
                                       exit 1 with a message on failure
Keys and claims are fixed here and mirrored in tests/python_interop.rs.
"""
import json
import sys
import time

import cbor2
import cwt
from cwt import COSEKey
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.algorithms import HMAC25664, AESCCM1664128
from pycose.headers import KID, IV, Algorithm
from pycose.keys import SymmetricKey
from pycose.messages import Mac0Message, Enc0Message, CoseMessage

AUD = "coaps://rs1.example"
HMAC_K = bytes([0x11] * 32)
HMAC64_K = bytes([0x12] * 32)
CCM_K = bytes([0x33] * 16)
CHACHA_K = bytes([0x44] * 32)
POP_K = bytes([0x55] * 16)
ES_D = int.from_bytes(bytes([0x42] * 32), "big")
# AIF [["/sensors/temp", 1], ["/actuators/led", 5]] wrapped in a byte string
AIF = cbor2.dumps([["/sensors/temp", 1], ["/actuators/led", 5]])


def es_key(private=True):
    priv = ec.derive_private_key(ES_D, ec.SECP256R1())
    nums = priv.private_numbers()
    pub = nums.public_numbers
    d = {1: 2, 2: b"as-es256", 3: -7, -1: 1,
         -2: pub.x.to_bytes(32, "big"), -3: pub.y.to_bytes(32, "big")}
    if private:
        d[-4] = nums.private_value.to_bytes(32, "big")
    return COSEKey.new(d)


def keys():
    return {
        "es256": es_key(),
        "hmac": COSEKey.from_symmetric_key(HMAC_K, alg="HS256", kid="as-hmac"),
        "ccm": COSEKey.from_symmetric_key(CCM_K, alg="AES-CCM-16-64-128", kid="rs-ccm"),
        "chacha": COSEKey.from_symmetric_key(CHACHA_K, alg="ChaCha20/Poly1305", kid="rs-chacha"),
    }


def claims(cti):
    return {
        1: "cwt-python",
        3: AUD,
        7: cti,
        8: {1: {1: 4, 2: b"py-client", -1: POP_K}},
        9: AIF,
    }


def mint():
    k = keys()
    for name in ("es256", "hmac", "ccm", "chacha"):
        tok = cwt.encode(claims(("cti-" + name).encode()), k[name])
        print(name, tok.hex())
    # exi-only token with pycose (cwt.encode would add exp): HMAC 256/64
    payload = cbor2.dumps({3: AUD, 7: b"cti-exi", 40: 120,
                           8: {3: b"py-kid-only"}, 9: AIF})
    key = SymmetricKey(k=HMAC64_K)
    msg = Mac0Message(phdr={Algorithm: HMAC25664}, uhdr={KID: b"as-hmac64"},
                      payload=payload, key=key)
    print("pycose-exi", msg.encode().hex())
    # pycose Encrypt0 AES-CCM-16-64-128
    key = SymmetricKey(k=CCM_K)
    msg = Enc0Message(phdr={Algorithm: AESCCM1664128},
                      uhdr={KID: b"rs-ccm", IV: bytes(range(13))},
                      payload=cbor2.dumps({3: AUD, 7: b"cti-pyenc", 4: int(time.time()) + 600,
                                           8: {3: b"py-enc"}, 9: AIF}), key=key)
    print("pycose-ccm", msg.encode().hex())


POP_E2E = bytes([0x77] * 16)
SCOPE_E2E = cbor2.dumps([["/sensors/temp", 1]])


def mint_e2e():
    # cwt.encode always writes the signing key's kid into the unprotected
    # header: the resource server sees a kid it may not be configured with.
    hk = COSEKey.from_symmetric_key(HMAC_K, alg="HS256", kid="as-e2e")
    for name, key, pop_kid in (("hmac", hk, b"py-e2e"),
                               ("es256", es_key(), b"py-e2e-es")):
        c = {1: "cwt-python", 3: AUD, 7: b"cti-e2e-" + name.encode(),
             8: {1: {1: 4, 2: pop_kid, -1: POP_E2E}}, 9: SCOPE_E2E}
        print(name, cwt.encode(c, key).hex())


def verify(name, hexstr):
    data = bytes.fromhex(hexstr)
    k = keys()
    if name.startswith("pycose-"):
        msg = CoseMessage.decode(data)
        if name == "pycose-hmac64":
            msg.key = SymmetricKey(k=HMAC64_K)
            if not msg.verify_tag():
                raise SystemExit("pycose: tag did not verify")
            payload = msg.payload
        elif name == "pycose-ccm":
            msg.key = SymmetricKey(k=CCM_K)
            payload = msg.decrypt()
        else:
            raise SystemExit("unknown " + name)
        c = cbor2.loads(payload)
    else:
        key = es_key(private=False) if name == "es256" else k[name]
        c = cwt.decode(data, key)
    out = {str(kk): (v.hex() if isinstance(v, bytes) else v) for kk, v in c.items()
           if not isinstance(v, dict)}
    if 8 in c:
        out["8"] = cbor2.dumps(c[8]).hex()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1] == "mint":
        mint()
    elif sys.argv[1] == "mint-e2e":
        mint_e2e()
    elif sys.argv[1] == "verify":
        try:
            verify(sys.argv[2], sys.argv[3])
        except SystemExit:
            raise
        except Exception as e:  # report the peer's reason
            raise SystemExit(f"{type(e).__name__}: {e}")
    else:
        raise SystemExit("usage: cose_peer.py mint | mint-e2e | verify <name> <hex>")
