//! The OSCORE profile of ACE (RFC 9203) on arbitrary input: the
//! OSCORE_Input_Material and `/authz-info` request parsers, and
//! `post_oscore` / `handle_timeout` / `oscore_token` driven by the input
//! (arbitrary payloads, and a valid token re-posted with input-chosen
//! nonces and Recipient IDs). Must never panic, and a binding never
//! outlives its token: there are never more bindings than stored tokens.
#![no_main]

use core::time::Duration;

use cssf_auth::authz_info::OscorePost;
use cssf_auth::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::oscore_profile::{AuthzInfoRequest, OscoreInputMaterial, MAX_RESPONSE_LEN};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, Config, CoseKey, KeyEntry, Method};
use libfuzzer_sys::fuzz_target;
use rand_core::{CryptoRng, RngCore};

struct Counter(u64);

impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Counter {}

fn key() -> CoseKey {
    CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap()
}

/// A valid token for material `id` living `exi` seconds.
fn token(id: u8, exi: u64) -> Vec<u8> {
    let m = OscoreInputMaterial {
        id: Bytes::from_slice(&[id]).unwrap(),
        ms: Bytes::from_slice(&[id; 16]).unwrap(),
        salt: None,
        context_id: None,
    };
    let mut aif = [0u8; 16];
    let n = Aif::emit(&[("/a", 1)], &mut aif).unwrap();
    let cti = [id, exi as u8];
    let c = ClaimsSet {
        aud: Some("rs"),
        exi: Some(exi),
        cti: Some(&cti),
        cnf: Some(CnfOut::Osc(&m)),
        scope: Some(ScopeOut::AifBytes(&aif[..n])),
        ..Default::default()
    };
    let mut p = [0u8; 256];
    let n = c.emit(&mut p).unwrap();
    let mut t = [0u8; 300];
    let m = mac0(&key(), None, &p[..n], &mut t).unwrap();
    t[..m].to_vec()
}

fn request(token: &[u8], nonce1: &[u8], id1: &[u8]) -> Vec<u8> {
    let mut p = vec![0xa3, 0x01, 0x59, (token.len() >> 8) as u8, token.len() as u8];
    p.extend_from_slice(token);
    p.extend_from_slice(&[0x18, 40, 0x40 | nonce1.len() as u8]);
    p.extend_from_slice(nonce1);
    p.extend_from_slice(&[0x18, 43, 0x40 | id1.len() as u8]);
    p.extend_from_slice(id1);
    p
}

fuzz_target!(|data: &[u8]| {
    let _ = OscoreInputMaterial::parse(data, 8);
    let _ = AuthzInfoRequest::parse(data);
    let keys = [KeyEntry::new(key())];
    let mut rs: AuthzInfo<'_, [KeyEntry], _, 2, 8, 8> = AuthzInfo::new(Config::new("rs"), &keys[..]);
    let mut rng = Counter(7);
    let mut secs = 0u64;
    let none = |_: &[u8], _: Option<&[u8]>| false;
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let mut rest = data;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        match op % 5 {
            0 | 1 => {
                // a valid token (one of three ids) with input nonces and ID
                let n1 = &[*arg, op / 5][..=usize::from(*op & 1)];
                let id1 = &[*arg][..usize::from(arg & 1)];
                let mut p = request(&token(arg % 3, u64::from(arg % 7) + 1), n1, id1);
                let ctx = OscorePost { now: Duration::from_secs(secs), wall: None, rng: &mut rng, in_use: &none };
                let _ = rs.post_oscore(ctx, &mut p, &mut out);
            }
            2 => {
                let len = usize::from(*arg).min(rest.len());
                let (chunk, tail) = rest.split_at(len);
                rest = tail;
                let mut p = chunk.to_vec();
                let ctx = OscorePost { now: Duration::from_secs(secs), wall: None, rng: &mut rng, in_use: &none };
                let _ = rs.post_oscore(ctx, &mut p, &mut out);
            }
            3 => {
                secs += u64::from(*arg % 4);
                rs.handle_timeout(Duration::from_secs(secs), None);
            }
            _ => {
                if let Some(kid) = rs.oscore_token(&[*arg], None) {
                    let _ = rs.authorize(Duration::from_secs(secs), None, Some(kid.as_slice()), Method::Get, "/a");
                }
            }
        }
        assert!(rs.oscore_bindings() <= rs.store().iter().count());
        while rs.poll_event().is_some() {}
    }
});
