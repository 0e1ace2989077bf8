//! Every intermediate value of the RFC 9529 §3 trace (method 3, suite 2)
//! that the key schedule produces, step by step (copied from the RFC).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::vec::Vec;

use super::crypto::*;
use super::wire;

fn h(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn a32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

const X: &str = "368ec1f69aeb659ba37d5a8d45b21bdc0299dceaa8ef235f3ca42ce3530f9525";
const G_Y: &str = "419701d7f00a26c2dc587a36dd752549f33763c893422c8ea0f955a13a4ff5d5";
const G_R: &str = "bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f0";
const SK_I: &str = "fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b";
const Y: &str = "e2f4126777205e853b437d6eaca1e1f753cdcc3e2c69fa884b0a1a640977e418";
const MESSAGE_1: &str =
    "0382060258208af6f430ebe18d34184017a9a11bf511c8dff8f834730b96c1b7c8dbca2fc3b637";
const H_MESSAGE_1: &str = "ca02cabda5a8902749b42f711050bb4dbd52153e87527594b39f50cdf019888c";
const G_XY: &str = "2f0cb7e860ba538fbf5c8bded009f6259b4b628fe1eb7dbe9378e5ecf7a824ba";
const TH_2: &str = "356efd53771425e008f3fe3a86c83ff4c6b16e57028ff39d5236c182b202084b";
const PRK_2E: &str = "5aa0d69f3e3d1e0c479f0b8a486690c9802630c3466b1dc92371c982563170b5";
const KEYSTREAM_2: &str = "bf50e9e7bad0bb68173399";
const SALT_3E2M: &str = "af4e103a47cb3cf32570d5c25ad27732bd8d8178e9a69d061c31a27f8e3ca926";
const PRK_3E2M: &str = "0ca3d3398296b3c03900987620c11f6fce70781c1d1219720f9ec08c122d8434";
const CRED_R: &str = "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072";
const CRED_I: &str = "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8";
const MAC_2: &str = "0943305c899f5c54";
const PLAINTEXT_2: &str = "2732480943305c899f5c54";
const TH_3: &str = "adaf67a78a4bcc91e018f8882762a722000b2507039df0bc1bbf0c161bb3155c";
const SALT_4E3M: &str = "cfddf9515a7e46e7b4dbff31cbd56cd04ba332250de9ea5de1caf9f6d13914a7";
const PRK_4E3M: &str = "81cc8a298e357044e3c466bb5c0a1e507e01d49238aeba138df94635407c0ff7";
const MAC_3: &str = "623c91df41e34c2f";
const PLAINTEXT_3: &str = "2b48623c91df41e34c2f";
const MESSAGE_3: &str = "52e562097bc417dd5919485ac7891ffd90a9fc";
const TH_4: &str = "c902b1e3a4326c93c5551f5f3aa6c5ecc0246806765612e52b5d99e6059d6b6e";
const K_4: &str = "d3c77872b6eeb508911bdbd308b2e6a0";
const IV_4: &str = "04ff0f44456e96e217853c3601";
const PRK_OUT: &str = "2c71afc1a9338a940bb3529ca734b886f30d1aba0b4dc51beeaeabdfea9ecbf8";
const PRK_EXPORTER: &str = "e14d06699cee248c5a04bf9227bbcd4ce394de7dcb56db43555474171e6446db";

fn sk(s: &str) -> p256::SecretKey {
    p256::SecretKey::from_slice(&h(s)).unwrap()
}

#[test]
fn key_schedule_matches_rfc9529_trace() {
    assert_eq!(hash(&[&h(MESSAGE_1)]), a32(H_MESSAGE_1));
    let gy = public_from_x(&a32(G_Y)).unwrap();
    assert_eq!(ecdh(&sk(X), &gy).0, a32(G_XY));
    // the ephemeral X and Y reach the same point
    assert_eq!(x_of(&sk(Y).public_key()), a32(G_Y));

    let th_2 = hash(&[&BSTR32, &a32(G_Y), &BSTR32, &a32(H_MESSAGE_1)]);
    assert_eq!(th_2, a32(TH_2));
    let prk_2e = extract(&th_2, &a32(G_XY)).unwrap();
    assert_eq!(prk_2e.0, a32(PRK_2E));
    let mut ks = [0u8; 11];
    kdf(&prk_2e, 0, &[&th_2], &mut ks).unwrap();
    assert_eq!(ks[..], h(KEYSTREAM_2)[..]);
    let salt_3e2m = kdf_prk(&prk_2e, 1, &[&th_2]).unwrap();
    assert_eq!(salt_3e2m.0, a32(SALT_3E2M));
    let g_r = public_from_x(&a32(G_R)).unwrap();
    let prk_3e2m = extract(&salt_3e2m.0, &ecdh(&sk(X), &g_r).0).unwrap();
    assert_eq!(prk_3e2m.0, a32(PRK_3E2M));

    // MAC_2 over << C_R, ID_CRED_R, TH_2, CRED_R >>
    let th_2b = th_bstr(&th_2);
    let mut mac_2 = [0u8; 8];
    kdf(
        &prk_3e2m,
        2,
        &[&[0x27], &h("a1044132"), &th_2b, &h(CRED_R)],
        &mut mac_2,
    )
    .unwrap();
    assert_eq!(mac_2[..], h(MAC_2)[..]);
    let p2 = wire::plaintext_2(&h(PLAINTEXT_2)[..]).map(|p| p.sig_or_mac.to_vec());
    assert_eq!(p2.unwrap(), h(MAC_2));

    let th_3 = hash(&[&th_2b, &h(PLAINTEXT_2), &h(CRED_R)]);
    assert_eq!(th_3, a32(TH_3));
    let salt_4e3m = kdf_prk(&prk_3e2m, 5, &[&th_3]).unwrap();
    assert_eq!(salt_4e3m.0, a32(SALT_4E3M));
    let prk_4e3m = extract(&salt_4e3m.0, &ecdh(&sk(SK_I), &gy).0).unwrap();
    assert_eq!(prk_4e3m.0, a32(PRK_4E3M));
    let mut mac_3 = [0u8; 8];
    let th_3b = th_bstr(&th_3);
    kdf(
        &prk_4e3m,
        6,
        &[&h("a104412b"), &th_3b, &h(CRED_I)],
        &mut mac_3,
    )
    .unwrap();
    assert_eq!(mac_3[..], h(MAC_3)[..]);

    // message_3: PLAINTEXT_3 under K_3 / IV_3
    let (k_3, iv_3) = key_iv(&prk_3e2m, 3, &th_3).unwrap();
    let mut buf = [0u8; 32];
    let pt = h(PLAINTEXT_3);
    buf[..pt.len()].copy_from_slice(&pt);
    let n = seal(&k_3, &iv_3, &th_3, &mut buf, pt.len()).unwrap();
    assert_eq!(buf[..n], h(MESSAGE_3)[1..]);
    assert_eq!(open(&k_3, &iv_3, &th_3, &mut buf[..n]), Ok(pt.len()));

    let th_4 = hash(&[&th_3b, &pt, &h(CRED_I)]);
    assert_eq!(th_4, a32(TH_4));
    let (k_4, iv_4) = key_iv(&prk_4e3m, 8, &th_4).unwrap();
    assert_eq!(k_4[..], h(K_4)[..]);
    assert_eq!(iv_4[..], h(IV_4)[..]);
    let (prk_out, prk_exporter) = outputs(&prk_4e3m, &th_4).unwrap();
    assert_eq!(prk_out.0, a32(PRK_OUT));
    assert_eq!(prk_exporter.0, a32(PRK_EXPORTER));
}

#[test]
fn a_flipped_tag_does_not_open() {
    let prk = Prk([1; 32]);
    let th = [2; 32];
    let (k, iv) = key_iv(&prk, 3, &th).unwrap();
    let mut buf = [0u8; 16];
    let n = seal(&k, &iv, &th, &mut buf, 8).unwrap();
    buf[n - 1] ^= 1;
    assert!(open(&k, &iv, &th, &mut buf[..n]).is_err());
    assert!(open(&k, &iv, &th, &mut buf[..3]).is_err());
}

fn id_cred_of(b: &[u8]) -> Result<super::IdCred<'_>, crate::Error> {
    wire::id_cred(&mut minicbor::Decoder::new(b))
}

#[test]
fn kids_are_neither_empty_nor_longer_than_max_kid_len() {
    use super::{IdCred, MAX_KID_LEN};
    // an empty kid would name a credential that has none
    assert!(id_cred_of(&[0x40]).is_err());
    assert!(id_cred_of(&[0xa1, 0x04, 0x40]).is_err());
    let mut long = std::vec![0x40 | (MAX_KID_LEN as u8 + 1)];
    long.extend(core::iter::repeat(0x61).take(MAX_KID_LEN + 1));
    assert!(id_cred_of(&long).is_err());
    let mut map = std::vec![0xa1, 0x04];
    map.extend_from_slice(&long);
    assert!(id_cred_of(&map).is_err());
    // the longest kid is taken in the compact form; {4: kid} is refused,
    // a lone kid MUST be sent compact (RFC 9528 §3.5.3.2)
    let mut max = std::vec![0x40 | MAX_KID_LEN as u8];
    max.extend(core::iter::repeat(0x61).take(MAX_KID_LEN));
    assert_eq!(id_cred_of(&max), Ok(IdCred::Kid(&max[1..])));
    let mut map = std::vec![0xa1, 0x04];
    map.extend_from_slice(&max);
    assert!(id_cred_of(&map).is_err());
}

#[test]
fn only_deterministic_encodings_are_taken() {
    // RFC 9528 §3.1: EDHOC messages are deterministically encoded. Each
    // case is a genuine encoding beside the same value with a longer head.
    let g_x = [1u8; 32];
    let m1 = |method: &[u8], gx_head: &[u8]| {
        let mut m = method.to_vec();
        m.push(0x02); // SUITES_I: 2
        m.extend_from_slice(gx_head);
        m.extend_from_slice(&g_x);
        m.push(0x27); // C_I: -8
        m
    };
    assert!(wire::message_1(&m1(&[0x03], &[0x58, 0x20])).is_ok());
    assert!(wire::message_1(&m1(&[0x18, 0x03], &[0x58, 0x20])).is_err());
    assert!(wire::message_1(&m1(&[0x03], &[0x59, 0x00, 0x20])).is_err());
    // SUITES_I [6, 2]; then with a long-headed suite, a long array head
    let with_suites = |suites: &[u8]| {
        let mut m = std::vec![0x03];
        m.extend_from_slice(suites);
        m.extend_from_slice(&[0x58, 0x20]);
        m.extend_from_slice(&g_x);
        m.push(0x27);
        m
    };
    assert!(wire::message_1(&with_suites(&[0x82, 0x06, 0x02])).is_ok());
    assert!(wire::message_1(&with_suites(&[0x82, 0x06, 0x18, 0x02])).is_err());
    assert!(wire::message_1(&with_suites(&[0x98, 0x02, 0x06, 0x02])).is_err());
    // PLAINTEXT_2: C_R -8, kid -19, an 8-byte MAC; the MAC with a long head
    let p2 = |mac_head: &[u8]| {
        let mut p = std::vec![0x27, 0x32];
        p.extend_from_slice(mac_head);
        p.extend_from_slice(&[9u8; 8]);
        p
    };
    assert!(wire::plaintext_2(&p2(&[0x48])).is_ok());
    assert!(wire::plaintext_2(&p2(&[0x58, 0x08])).is_err());
    // EAD_2: label 1 with a value, then the label with a long head
    let mut p = p2(&[0x48]);
    p.extend_from_slice(&[0x01, 0x41, 0x00]);
    assert!(wire::plaintext_2(&p).is_ok());
    let mut p = p2(&[0x48]);
    p.extend_from_slice(&[0x18, 0x01, 0x41, 0x00]);
    assert!(wire::plaintext_2(&p).is_err());
    let mut p = p2(&[0x48]);
    p.extend_from_slice(&[0x01, 0x58, 0x01, 0x00]);
    assert!(wire::plaintext_2(&p).is_err());
    // an error message: one suite as an int, never as a one-element array
    assert!(super::ErrorMessage::parse(&[0x02, 0x02]).is_ok());
    assert!(super::ErrorMessage::parse(&[0x02, 0x82, 0x06, 0x02]).is_ok());
    assert!(super::ErrorMessage::parse(&[0x02, 0x81, 0x02]).is_err());
    assert!(super::ErrorMessage::parse(&[0x18, 0x02, 0x02]).is_err());
}

#[test]
fn one_byte_identifiers_that_are_integers_must_be_sent_as_integers() {
    use super::{ConnId, IdCred};
    // 0x27 is -8: sent as the integer, never as the byte string h'27'
    assert_eq!(id_cred_of(&[0x27]), Ok(IdCred::Kid(&[0x27])));
    assert!(id_cred_of(&[0x41, 0x27]).is_err());
    let c_r = |b: &[u8]| wire::conn_id(&mut minicbor::Decoder::new(b));
    assert_eq!(c_r(&[0x27]), Ok(ConnId::new(&[0x27]).unwrap()));
    assert!(c_r(&[0x41, 0x27]).is_err());
    // a byte that is not an integer's encoding is a byte string
    assert_eq!(c_r(&[0x41, 0x18]), Ok(ConnId::new(&[0x18]).unwrap()));
    // and in a whole PLAINTEXT_2 (RFC 9529: C_R = 0x27, kid 0x32, MAC_2)
    assert!(wire::plaintext_2(&h(PLAINTEXT_2)).is_ok());
    let mut p2 = std::vec![0x41];
    p2.extend_from_slice(&h(PLAINTEXT_2));
    assert!(wire::plaintext_2(&p2).is_err());
    // and the kid in PLAINTEXT_3 (0x2b is -12)
    assert!(wire::plaintext_3(&h(PLAINTEXT_3)).is_ok());
    let mut p3 = std::vec![0x41];
    p3.extend_from_slice(&h(PLAINTEXT_3));
    assert!(wire::plaintext_3(&p3).is_err());
}

#[test]
fn byte_strings_take_the_shortest_head() {
    // message_2/3/4 are one bstr, whose head the transcript does not
    // cover: only the shortest head is taken (RFC 9529 message_3: 0x52 + 18)
    let m3 = h(MESSAGE_3);
    assert_eq!(wire::single_bstr(&m3), Ok(&m3[1..]));
    let mut long = std::vec![0x58, 0x12];
    long.extend_from_slice(&m3[1..]);
    assert!(wire::single_bstr(&long).is_err());
    let mut longer = std::vec![0x59, 0x00, 0x12];
    longer.extend_from_slice(&m3[1..]);
    assert!(wire::single_bstr(&longer).is_err());
    // 32 bytes: 0x58 0x20 is the shortest, 0x59 0x00 0x20 is not
    let mut ok = std::vec![0x58, 0x20];
    ok.extend_from_slice(&[0x5a; 32]);
    assert!(wire::single_bstr(&ok).is_ok());
    let mut wide = std::vec![0x59, 0x00, 0x20];
    wide.extend_from_slice(&[0x5a; 32]);
    assert!(wire::single_bstr(&wide).is_err());
}
