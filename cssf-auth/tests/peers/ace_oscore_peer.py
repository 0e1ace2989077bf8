#!/usr/bin/env python3
"""Independent peer for the ACE OSCORE profile tests (RFC 9203).

Uses the PyPI packages `cwt` (its COSE layer: `cwt.encode` itself refuses a
`cnf` without a COSE_Key, Encrypted_COSE_Key or kid), `pycose`, `cbor2`
and `cryptography`.

  ace_oscore_peer.py mint
      -> lines "<name> <hex token>": CWTs whose cnf is an
         OSCORE_Input_Material {0: id, 2: ms, 5: salt, 6: contextId},
         MACed (HMAC 256, cwt's COSE), signed (ES256, cwt's COSE) and
         MACed by pycose (HMAC 256/64).
  ace_oscore_peer.py derive MS SALT N1 N2 SENDER RECIPIENT CONTEXT
      -> "<sender key> <recipient key> <common iv>" in hex: the OSCORE
         context of RFC 8613 §3.2.1 (HKDF SHA-256, AES-CCM-16-64-128)
         with the Master Salt of RFC 9203 §4.3 built here from the raw
         salt and nonces; "-" for an absent salt or context.
Keys and claims are fixed here and mirrored in tests/oscore_profile.rs.
"""
import sys
import time

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cwt import COSE, COSEKey
from pycose.algorithms import HMAC25664
from pycose.headers import KID, Algorithm
from pycose.keys import SymmetricKey
from pycose.messages import Mac0Message

AUD = "coap://rs-osc.example"
HMAC_K = bytes([0x11] * 32)
HMAC64_K = bytes([0x12] * 32)
ES_D = int.from_bytes(bytes([0x42] * 32), "big")
MS = bytes(range(1, 17))
SALT = bytes([0x5A] * 8)
# AIF [["/sensors/temp", 1]] (GET) wrapped in a byte string
AIF = cbor2.dumps([["/sensors/temp", 1]])


def es_key():
    priv = ec.derive_private_key(ES_D, ec.SECP256R1())
    nums = priv.private_numbers()
    pub = nums.public_numbers
    return COSEKey.new({1: 2, 2: b"as-es256", 3: -7, -1: 1,
                        -2: pub.x.to_bytes(32, "big"),
                        -3: pub.y.to_bytes(32, "big"),
                        -4: nums.private_value.to_bytes(32, "big")})


def claims(name, context_id):
    osc = {0: ("py-" + name).encode(), 2: MS, 5: SALT}
    if context_id is not None:
        osc[6] = context_id
    return cbor2.dumps({1: "py-as", 3: AUD, 4: int(time.time()) + 600,
                        7: ("cti-osc-" + name).encode(), 8: {4: osc}, 9: AIF})


def mint():
    cose = COSE.new(alg_auto_inclusion=True, kid_auto_inclusion=True)
    hk = COSEKey.from_symmetric_key(HMAC_K, alg="HS256", kid="as-hmac")
    print("hmac", cose.encode(claims("hmac", None), hk).hex())
    print("es256", cose.encode(claims("es256", b"\x0c\x1d"), es_key()).hex())
    msg = Mac0Message(phdr={Algorithm: HMAC25664}, uhdr={KID: b"as-hmac64"},
                      payload=claims("pycose", None), key=SymmetricKey(k=HMAC64_K))
    print("pycose", msg.encode().hex())


def hkdf(secret, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt,
                info=info).derive(secret)


def derive(ms, salt, n1, n2, sender, recipient, context):
    # RFC 9203 §4.3: the CBOR byte strings salt (empty if absent), N1, N2
    master_salt = cbor2.dumps(salt) + cbor2.dumps(n1) + cbor2.dumps(n2)
    # RFC 8613 §3.2.1: info = [id, id_context, alg_aead, type, L]
    def info(ident, kind, length):
        return cbor2.dumps([ident, context, 10, kind, length])
    sk = hkdf(ms, master_salt, info(sender, "Key", 16), 16)
    rk = hkdf(ms, master_salt, info(recipient, "Key", 16), 16)
    iv = hkdf(ms, master_salt, info(b"", "IV", 13), 13)
    print(sk.hex(), rk.hex(), iv.hex())


def unhex(s):
    return None if s == "-" else bytes.fromhex(s)


if __name__ == "__main__":
    if sys.argv[1] == "mint":
        mint()
    elif sys.argv[1] == "derive":
        a = [unhex(x) for x in sys.argv[2:9]]
        derive(a[0], a[1] or b"", a[2], a[3], a[4], a[5], a[6])
    else:
        sys.exit("unknown command " + sys.argv[1])
