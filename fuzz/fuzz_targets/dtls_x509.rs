//! The X.509 path of cssf-dtls (feature `x509`): arbitrary bytes as a peer's
//! end-entity certificate, through key extraction and the CA signature
//! check. Must never panic; anything malformed is a typed error or `false`.
#![no_main]

use cssf_dtls::x509::{certificate_key, signed_by};
use libfuzzer_sys::fuzz_target;
use p256::elliptic_curve::sec1::FromEncodedPoint;

fuzz_target!(|data: &[u8]| {
    let key = certificate_key(data);
    // A fixed CA key (the P-256 generator): real signatures never verify
    // under it, so this exercises the parse and reject paths of signed_by.
    let g = p256::EncodedPoint::from_bytes([
        0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
        0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8,
        0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a,
        0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40,
        0x68, 0x37, 0xbf, 0x51, 0xf5,
    ]);
    if let Ok(g) = g {
        if let Some(ca) = Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&g)) {
            let _ = signed_by(data, &ca);
            // A certificate whose own key is the CA key: the self-signed path.
            if let Ok(k) = key {
                let _ = signed_by(data, &k);
            }
        }
    }
});
