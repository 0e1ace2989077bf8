//! Authorization on arbitrary input: the rights syntax, RFC 9202 PSK
//! identities, oneM2M policies built from arbitrary strings, and the
//! `Authorizer` driven through an arbitrary session lifecycle. Never a
//! panic; and a session's verdicts come from its own proof only (another
//! session's input never widens or narrows them).
#![no_main]

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use arbitrary::Arbitrary;
use cssf_auth::acp::{AccessControl, Context, IpRange, Operation, Request, Rule, Schedule};
use cssf_auth::authorizer::{Authorizer, Proof, Requester, Rights, Verdict};
use cssf_auth::{AuthzInfo, Config, KeyEntry, Method};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Connect(u8, u8),
    Close(u8),
    Ask(Option<u8>, u8, u8),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    rights: &'a str,
    identity: &'a [u8],
    window: &'a str,
    v4: &'a str,
    v6: &'a str,
    originator: &'a str,
    pattern: &'a str,
    path: &'a str,
    credential: &'a [u8],
    wall: Option<u64>,
    ops: Vec<Op>,
}

const PATHS: [&str; 4] = ["/a", "/b", "/authz-info", "/z"];
const METHODS: [Method; 3] = [Method::Get, Method::Put, Method::Post];

/// The proofs a session may present (index into it).
fn proof(i: u8, fuzzed: &[u8]) -> Proof<'_> {
    match i % 4 {
        0 => Proof::Psk(b"id-a"),
        1 => Proof::Psk(fuzzed),
        2 => Proof::PublicKey(&[2; 32], &[2; 32]),
        _ => Proof::Anonymous,
    }
}

fuzz_target!(|input: Input<'_>| {
    // Parsers: never panic; what parses prints back to what parses the same.
    if let Ok(r) = Rights::parse(input.rights) {
        let text = r.to_string();
        if text != "-" {
            assert_eq!(Rights::parse(&text).ok(), Some(r.clone()), "{text}");
        }
        for m in METHODS {
            let _ = r.allows(m, input.path);
        }
    }
    let _ = cssf_auth::authz_info::psk_identity_kid(input.identity);
    if let Ok(s) = Schedule::parse(input.window) {
        let _ = s.matches(input.wall.unwrap_or(0));
    }
    for r in [IpRange::parse_v4(input.v4), IpRange::parse_v6(input.v6)]
        .into_iter()
        .flatten()
    {
        let _ = r.contains(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    // oneM2M policies from arbitrary strings.
    let mut ac: AccessControl<2, 4, 8, 8, 2, 32> = AccessControl::new();
    if let Ok(p) = ac.add_policy("p") {
        let _ = ac.bind(p, input.path);
        let ctx = [Context {
            windows: &[input.window],
            ipv4: &[input.v4],
            ipv6: &[input.v6],
            ..Context::default()
        }];
        let _ = ac.add_rule(p, Rule::new(&[input.pattern], 0x3F).with_contexts(&ctx));
        let _ = ac.add_rule(p, Rule::new(&[input.pattern, "all"], 0x02).authenticated());
    }
    let _ = ac.add_app_rule(input.credential, &[input.originator, input.pattern]);
    for op in Operation::ALL {
        let mut r = Request::new(op, input.path);
        r.credential = Some(input.credential).filter(|c| !c.is_empty());
        r.originator = Some(input.originator).filter(|o| !o.is_empty());
        r.ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        r.wall = input.wall;
        let _ = ac.check(&r);
    }

    // The Authorizer through an arbitrary lifecycle. The model: each live
    // session's verdicts are those of a lone session with the same proof.
    let keys: [KeyEntry; 0] = [];
    let mut rs: AuthzInfo<'_, [KeyEntry; 0]> = AuthzInfo::new(Config::new("rs"), &keys);
    let public = Rights::parse("/authz-info:POST").unwrap_or_default();
    let a_rights = Rights::parse(input.rights).unwrap_or_default();
    let setup = |az: &mut Authorizer<u8, 3, 2>| {
        az.set_public(public.clone());
        let _ = az.provision_psk(b"id-a", a_rights.clone());
        let _ = az.provision_key(&[2; 32], &[2; 32], Rights::read_only());
    };
    let mut az: Authorizer<u8, 3, 2> = Authorizer::new();
    setup(&mut az);
    let mut live: [Option<u8>; 8] = [None; 8];
    let now = Duration::from_secs(1);
    for op in input.ops.iter().take(64) {
        match *op {
            Op::Connect(s, p) => {
                let s = s % 8;
                live[usize::from(s)] = None;
                if az.on_connected(s, proof(p, input.identity), &mut rs).is_ok() {
                    live[usize::from(s)] = Some(p);
                }
                assert!(az.sessions() <= 3);
            }
            Op::Close(s) => {
                az.on_closed(&(s % 8), &mut rs);
                live[usize::from(s % 8)] = None;
            }
            Op::Ask(s, m, x) => {
                let m = METHODS[usize::from(m) % METHODS.len()];
                let path = PATHS[usize::from(x) % PATHS.len()];
                let (who, p) = match s {
                    Some(s) => (Requester::Session(s % 8), live[usize::from(s % 8)]),
                    None => (Requester::Plain, None),
                };
                let got = az.decide(&mut rs, who, m, path, now, None);
                // the same proof, alone, in a fresh Authorizer
                let mut lone: Authorizer<u8, 3, 2> = Authorizer::new();
                setup(&mut lone);
                let want = match p {
                    Some(p) => {
                        let _ = lone.on_connected(0, proof(p, input.identity), &mut rs);
                        lone.decide(&mut rs, Requester::Session(0), m, path, now, None)
                    }
                    None if public.allows(m, path) => Verdict::Allow,
                    None => Verdict::Unauthorized,
                };
                assert_eq!(got, want, "{who:?} {m:?} {path}");
            }
        }
    }
});
