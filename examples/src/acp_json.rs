//! Loads oneM2M access-control policies ([`cssf_auth::acp`]) from JSON: the
//! oneM2M JSON serialization with short names (TS-0004: `m2m:acp`, `rn`,
//! `pv`, `acr`, `acor`, `acop`, `acco`, `actw`, `acip`, `aclr`, `acaf`),
//! plus CSSF's own wrapper binding policies to paths and credentials to
//! originators.
//!
//! ## Format
//!
//! The text is one of:
//!
//! - a single policy, `{"m2m:acp": {...}}`;
//! - an array of policies, `[{"m2m:acp": {...}}, ...]`;
//! - CSSF's wrapper object, `{"policies": [...], "apps": [...]}` (both
//!   optional; keys starting with `_` are comments and ignored).
//!
//! A **policy** is `{"m2m:acp": {...}}`, or the inner object alone. Of its
//! attributes:
//!
//! - `rn` is the policy's name (optional; names must be unique);
//! - `pv` (`privileges`) holds `acr`, the list of access-control rules;
//! - `cssf:paths` (a CSSF extension, in the inner object or next to
//!   `"m2m:acp"`) lists the path prefixes the policy is bound to, standing
//!   in for the `accessControlPolicyIDs` of the resources below them.
//!   Absent, the policy is bound to `/` (every resource); `[]` binds it to
//!   nothing;
//! - `pvs` (`selfPrivileges`) and every other resource attribute (`ri`,
//!   `pi`, `ct`, `lbl`, ...) are ignored.
//!
//! A **rule** (`acr` entry) has `acor` (list of originators: ids, `all`, or
//! prefixes ending in `*`), `acop` (operation mask, 0 to 63), optional
//! `acco` (a list of contexts, or one context object) and optional `acaf`
//! (`true`/`false`, or those words as strings). A rule with
//! `accessControlAttributes` (`aca`), `accessControlObjectDetails` (`acod`)
//! or any unknown attribute is refused: it would grant less than this
//! evaluator would.
//!
//! A **context** (`acco` entry) may have `actw` (list of schedule strings,
//! `second minute hour day month weekday [year]`) and `acip`
//! (`{"ipv4": [...], "ipv6": [...]}`, addresses or CIDR networks). A
//! context with `aclr` (location region), any other attribute, or an empty
//! `actw` or `acip`, never matches: nothing is granted on a condition that
//! is not checked.
//!
//! An **app** (`apps` entry), after TS-0003's `serviceSubscribedAppRule`,
//! names a credential id, as text (`"credential"`: the PSK identity) or as
//! hex (`"credentialHex"`: a PSK identity or a public key fingerprint), and
//! the AE-IDs it may claim (`"aes"`, ids or prefixes ending in `*`; the
//! first id without a wildcard is its default originator).
//!
//! ```json
//! {
//!   "policies": [
//!     {
//!       "m2m:acp": {
//!         "rn": "acp-actuators",
//!         "pv": {
//!           "acr": [
//!             { "acor": ["Csensor*"], "acop": 2 },
//!             {
//!               "acor": ["Cadmin"],
//!               "acop": 63,
//!               "acco": [
//!                 {
//!                   "actw": ["* * 6-21 * * 1-5"],
//!                   "acip": { "ipv4": ["192.168.1.0/24"], "ipv6": ["fd00:1::/64"] }
//!                 }
//!               ],
//!               "acaf": true
//!             }
//!           ]
//!         },
//!         "cssf:paths": ["/actuators"]
//!       }
//!     }
//!   ],
//!   "apps": [
//!     { "credential": "admin", "aes": ["Cadmin"] },
//!     { "credentialHex": "5f0e6d2c8a91b3f4", "aes": ["Cgateway", "Csensor-gw-*"] }
//!   ]
//! }
//! ```
//!
//! A complete example is `examples/acp/example.json`.

use cssf_auth::acp::{AccessControl, Context, Rule};
use cssf_auth::Error;
use serde_json::{Map, Value};

use crate::util::unhex;

/// The policies [`load`] builds: 16 policies, 64 rules, 256 strings
/// (originator patterns, path bindings, app originators), 128 context
/// constraints (windows, address ranges), 32 credentials, 128 bytes per
/// string.
pub type Policies = AccessControl<16, 64, 256, 128, 32, 128>;

/// Parses `text` (see the [module docs](self)) into [`Policies`]. The
/// error says what is wrong and where (`policy 2 (acp-x), acr 0: ...`).
pub fn load(text: &str) -> Result<Policies, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut ac = Policies::new();
    let (policies, apps): (Vec<&Value>, &[Value]) = match &value {
        Value::Array(items) => (items.iter().collect(), &[]),
        Value::Object(o) if o.contains_key("m2m:acp") => (vec![&value], &[]),
        Value::Object(o) => {
            for k in o.keys() {
                if !matches!(k.as_str(), "policies" | "apps") && !k.starts_with('_') {
                    return Err(format!(
                        "unknown key `{k}` (expected `m2m:acp`, or `policies` and `apps`)"
                    ));
                }
            }
            let policies = match o.get("policies") {
                None => Vec::new(),
                Some(v) => array(v, "`policies`")?.iter().collect(),
            };
            let apps = match o.get("apps") {
                None => &[][..],
                Some(v) => array(v, "`apps`")?.as_slice(),
            };
            (policies, apps)
        }
        _ => return Err("expected an object or an array".into()),
    };
    for (i, p) in policies.iter().enumerate() {
        policy(&mut ac, p).map_err(|e| format!("policy {i}{}: {e}", name_of(p)))?;
    }
    for (i, a) in apps.iter().enumerate() {
        app(&mut ac, a).map_err(|e| format!("app {i}: {e}"))?;
    }
    Ok(ac)
}

/// ` (rn)` of a policy value, for messages.
fn name_of(p: &Value) -> String {
    let inner = p.get("m2m:acp").unwrap_or(p);
    match inner.get("rn").and_then(Value::as_str) {
        Some(rn) => format!(" ({rn})"),
        None => String::new(),
    }
}

fn policy(ac: &mut Policies, p: &Value) -> Result<(), String> {
    let outer = object(p, "a policy")?;
    let (inner, outer_paths) = match outer.get("m2m:acp") {
        Some(inner) => {
            for k in outer.keys() {
                if !matches!(k.as_str(), "m2m:acp" | "cssf:paths") && !k.starts_with('_') {
                    return Err(format!("unknown key `{k}` next to `m2m:acp`"));
                }
            }
            (object(inner, "`m2m:acp`")?, outer.get("cssf:paths"))
        }
        None => (outer, None),
    };
    let paths = match (inner.get("cssf:paths"), outer_paths) {
        (Some(_), Some(_)) => return Err("`cssf:paths` given twice".into()),
        (Some(v), None) | (None, Some(v)) => Some(strings(v, "`cssf:paths`")?),
        (None, None) => None,
    };
    let name = match inner.get("rn") {
        None => "",
        Some(v) => v.as_str().ok_or("`rn` must be a string")?,
    };
    let index = ac
        .add_policy(name)
        .map_err(|e| explain(ac, "the policy", e))?;
    match paths {
        None => ac
            .bind(index, "/")
            .map_err(|e| explain(ac, "path `/`", e))?,
        Some(paths) => {
            for path in paths {
                ac.bind(index, path)
                    .map_err(|e| explain(ac, &format!("path `{path}`"), e))?;
            }
        }
    }
    let acr = match inner.get("pv") {
        None => return Err("no `pv` (privileges)".into()),
        Some(pv) => match object(pv, "`pv`")?.get("acr") {
            None => &[][..],
            Some(acr) => array(acr, "`acr`")?.as_slice(),
        },
    };
    for (i, r) in acr.iter().enumerate() {
        rule(ac, index, r).map_err(|e| format!("acr {i}: {e}"))?;
    }
    Ok(())
}

/// One context, borrowed from the JSON.
#[derive(Default)]
struct Ctx<'v> {
    windows: Vec<&'v str>,
    ipv4: Vec<&'v str>,
    ipv6: Vec<&'v str>,
    unsupported: bool,
}

fn rule(ac: &mut Policies, policy: usize, r: &Value) -> Result<(), String> {
    let r = object(r, "a rule")?;
    for k in r.keys() {
        match k.as_str() {
            "acor" | "acop" | "acco" | "acaf" => {}
            "aca" | "acod" => {
                return Err(format!(
                    "`{k}` is not supported (the rule would grant more than it says)"
                ))
            }
            _ => return Err(format!("unknown attribute `{k}`")),
        }
    }
    let originators = strings(r.get("acor").ok_or("no `acor`")?, "`acor`")?;
    let operations = r
        .get("acop")
        .ok_or("no `acop`")?
        .as_u64()
        .filter(|op| *op <= 63)
        .and_then(|op| u8::try_from(op).ok())
        .ok_or("`acop` must be an integer from 0 to 63")?;
    let authentication = match r.get("acaf") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err("`acaf` must be true or false".into()),
    };
    let contexts: Vec<Ctx<'_>> = match r.get("acco") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(context).collect::<Result<_, _>>()?,
        Some(one) => vec![context(one)?],
    };
    let contexts: Vec<Context<'_>> = contexts
        .iter()
        .map(|c| Context {
            windows: &c.windows,
            ipv4: &c.ipv4,
            ipv6: &c.ipv6,
            unsupported: c.unsupported,
        })
        .collect();
    let rule = Rule {
        originators: &originators,
        operations,
        contexts: &contexts,
        authentication,
    };
    ac.add_rule(policy, rule)
        .map(|_| ())
        .map_err(|e| explain(ac, "the rule", e))
}

fn context(c: &Value) -> Result<Ctx<'_>, String> {
    let c = object(c, "an `acco` entry")?;
    let mut ctx = Ctx::default();
    for (k, v) in c {
        match k.as_str() {
            "actw" => {
                ctx.windows = strings(v, "`actw`")?;
                ctx.unsupported |= ctx.windows.is_empty();
            }
            "acip" => {
                let acip = object(v, "`acip`")?;
                for (family, list) in acip {
                    match family.as_str() {
                        "ipv4" => ctx.ipv4 = strings(list, "`ipv4`")?,
                        "ipv6" => ctx.ipv6 = strings(list, "`ipv6`")?,
                        _ => return Err(format!("unknown `acip` key `{family}`")),
                    }
                }
                ctx.unsupported |= ctx.ipv4.is_empty() && ctx.ipv6.is_empty();
            }
            // accessControlLocationRegion, and whatever else: not checked
            // here, so the context never matches
            _ => ctx.unsupported = true,
        }
    }
    Ok(ctx)
}

fn app(ac: &mut Policies, a: &Value) -> Result<(), String> {
    let a = object(a, "an app")?;
    for k in a.keys() {
        if !matches!(k.as_str(), "credential" | "credentialHex" | "aes") && !k.starts_with('_') {
            return Err(format!("unknown key `{k}`"));
        }
    }
    let credential = match (a.get("credential"), a.get("credentialHex")) {
        (Some(v), None) => v
            .as_str()
            .ok_or("`credential` must be a string")?
            .as_bytes()
            .to_vec(),
        (None, Some(v)) => unhex(v.as_str().ok_or("`credentialHex` must be a string")?)
            .map_err(|e| format!("`credentialHex`: {e}"))?,
        _ => return Err("needs one of `credential` and `credentialHex`".into()),
    };
    let aes = strings(a.get("aes").ok_or("no `aes`")?, "`aes`")?;
    ac.add_app_rule(&credential, &aes)
        .map(|_| ())
        .map_err(|e| explain(ac, "the app", e))
}

/// A cssf-auth error, with the table usage when something did not fit.
fn explain(ac: &Policies, what: &str, e: Error) -> String {
    if e != Error::TooLarge {
        return format!("{what}: {e}");
    }
    let (u, c) = (ac.usage(), Policies::capacity());
    format!(
        "{what}: {e}: a string is longer than 128 bytes or a table is full (used/capacity: \
         policies {}/{}, rules {}/{}, strings {}/{}, constraints {}/{}, apps {}/{})",
        u.policies,
        c.policies,
        u.rules,
        c.rules,
        u.strings,
        c.strings,
        u.constraints,
        c.constraints,
        u.apps,
        c.apps
    )
}

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

fn array<'v>(v: &'v Value, what: &str) -> Result<&'v Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} must be an array"))
}

fn strings<'v>(v: &'v Value, what: &str) -> Result<Vec<&'v str>, String> {
    array(v, what)?
        .iter()
        .map(|s| {
            s.as_str()
                .ok_or_else(|| format!("{what} must be an array of strings"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cssf_auth::acp::{AcpVerdict, Operation, Request};
    use std::net::IpAddr;

    const EXAMPLE: &str = include_str!("../acp/example.json");
    /// 2023-11-20T10:00:00Z, a Monday.
    const MONDAY_10H: u64 = 1_700_474_400;

    fn granted(policy: usize, rule: usize) -> AcpVerdict {
        AcpVerdict::Granted { policy, rule }
    }

    #[test]
    fn example_file() {
        let ac = load(EXAMPLE).unwrap();
        assert_eq!(ac.policies(), 3);
        assert_eq!(ac.policy_name(1), Some("acp-actuators"));
        let get = |p| Request::new(Operation::Retrieve, p);
        // public: anyone retrieves and discovers the sensors
        assert_eq!(ac.check(&get("/sensors/temp")), granted(0, 0));
        let discover = Request::new(Operation::Discover, "/.well-known/core");
        assert_eq!(ac.check(&discover), granted(0, 0));
        assert_eq!(
            ac.check(&Request::new(Operation::Update, "/sensors/temp")),
            AcpVerdict::Denied
        );
        // actuators: sensors read, with their credential
        let sensor = get("/actuators/led").credential(b"sensor-1");
        assert_eq!(ac.check(&sensor), granted(1, 0), "default originator");
        assert_eq!(
            ac.check(&sensor.originator("Cadmin")),
            AcpVerdict::Impersonation
        );
        // the admin updates from the LAN in working hours
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        let admin = Request::new(Operation::Update, "/actuators/led")
            .credential(b"admin")
            .ip(lan)
            .wall(MONDAY_10H);
        assert_eq!(ac.check(&admin), granted(1, 1));
        assert_eq!(
            ac.check(&admin.wall(MONDAY_10H + 12 * 3600)),
            AcpVerdict::Denied
        );
        let v6 = admin.ip("fd00:1::7".parse().unwrap());
        assert_eq!(ac.check(&v6), granted(1, 1));
        assert_eq!(
            ac.check(&admin.ip("10.0.0.1".parse().unwrap())),
            AcpVerdict::Denied
        );
        // the same claim without the credential: Cadmin is reserved
        let mut plain = admin;
        plain.credential = None;
        assert_eq!(
            ac.check(&plain.originator("Cadmin")),
            AcpVerdict::Impersonation
        );
        // notifications from the gateway, by fingerprint
        let fp = unhex("5f0e6d2c8a91b3f4e7d6c5b4a3928170f1e2d3c4b5a69788796a5b4c3d2e1f00").unwrap();
        let notify = Request::new(Operation::Notify, "/notify").credential(&fp);
        assert_eq!(ac.check(&notify), granted(2, 0));
        assert_eq!(
            ac.check(&notify.originator("Csensor-gw-3")),
            AcpVerdict::Denied
        );
        assert_eq!(ac.check(&get("/elsewhere")), AcpVerdict::NoPolicy);
    }

    #[test]
    fn single_policy_is_bound_to_every_path() {
        let ac = load(r#"{"m2m:acp": {"rn": "p", "pv": {"acr": [{"acor": ["all"], "acop": 2}]}}}"#)
            .unwrap();
        let v = ac.check(&Request::new(Operation::Retrieve, "/any/thing"));
        assert_eq!(v, granted(0, 0));
    }

    #[test]
    fn array_of_policies_and_paths_beside() {
        let text = r#"[
            {"m2m:acp": {"rn": "a", "pv": {"acr": [{"acor": ["Ca"], "acop": 2}]}}, "cssf:paths": ["/a"]},
            {"rn": "b", "pv": {"acr": [{"acor": ["Cb"], "acop": 2}]}, "cssf:paths": ["/a", "/b"]},
            {"rn": "c", "pv": {"acr": [{"acor": ["Cc"], "acop": 2}]}, "cssf:paths": []}
        ]"#;
        let ac = load(text).unwrap();
        let get = |p, o| Request::new(Operation::Retrieve, p).originator(o);
        assert_eq!(ac.check(&get("/a/x", "Ca")), granted(0, 0));
        assert_eq!(ac.check(&get("/a/x", "Cb")), granted(1, 0));
        assert_eq!(ac.check(&get("/b", "Ca")), AcpVerdict::Denied);
        assert_eq!(ac.check(&get("/c", "Cc")), AcpVerdict::NoPolicy);
    }

    #[test]
    fn unchecked_contexts_never_match() {
        let text = r#"[{"pv": {"acr": [
            {"acor": ["all"], "acop": 2, "acco": [{"aclr": {"accc": 1}}]},
            {"acor": ["all"], "acop": 4, "acco": {"actw": []}},
            {"acor": ["all"], "acop": 8, "acco": [{"acip": {}}]},
            {"acor": ["all"], "acop": 16, "acco": [{"acui": ["u"]}, {"actw": ["* * * * * *"]}]}
        ]}}]"#;
        let ac = load(text).unwrap();
        for op in [Operation::Retrieve, Operation::Update, Operation::Delete] {
            let r = Request::new(op, "/x").wall(MONDAY_10H);
            assert_eq!(ac.check(&r), AcpVerdict::Denied, "{op:?}");
        }
        let r = Request::new(Operation::Notify, "/x").wall(MONDAY_10H);
        assert_eq!(ac.check(&r), granted(0, 3), "the second context holds");
    }

    #[test]
    fn acaf_as_text() {
        let text = r#"{"m2m:acp": {"pv": {"acr": [{"acor": ["C*"], "acop": 2, "acaf": "TRUE"}]}}}"#;
        let mut ac = load(text).unwrap();
        let r = Request::new(Operation::Retrieve, "/x").originator("Cx");
        assert_eq!(ac.check(&r), AcpVerdict::Denied);
        ac.add_app_rule(b"k", &["C*"]).unwrap();
        assert_eq!(ac.check(&r.credential(b"k")), granted(0, 0));
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("nope", "not JSON"),
            ("3", "expected an object or an array"),
            (r#"{"policy": []}"#, "unknown key `policy`"),
            (r#"[{"rn": "p"}]"#, "policy 0 (p): no `pv`"),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 64}]}}]"#,
                "acr 0: `acop`",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": -1}]}}]"#,
                "`acop`",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": "2"}]}}]"#,
                "`acop`",
            ),
            (r#"[{"pv": {"acr": [{"acop": 2}]}}]"#, "no `acor`"),
            (
                r#"[{"pv": {"acr": [{"acor": "all", "acop": 2}]}}]"#,
                "`acor` must be an array",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "aca": ["lbl"]}]}}]"#,
                "`aca` is not supported",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acod": []}]}}]"#,
                "`acod` is not supported",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acx": 1}]}}]"#,
                "unknown attribute `acx`",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acaf": 1}]}}]"#,
                "`acaf`",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acco": [{"actw": ["* * 25 * * *"]}]}]}}]"#,
                "the rule: invalid access-control policy",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acco": [{"acip": {"ipv4": ["::1"]}}]}]}}]"#,
                "invalid access-control policy",
            ),
            (
                r#"[{"pv": {"acr": [{"acor": ["all"], "acop": 2, "acco": [{"acip": {"ip4": []}}]}]}}]"#,
                "unknown `acip` key `ip4`",
            ),
            (
                r#"[{"pv": {}, "cssf:paths": ["relative"]}]"#,
                "path `relative`",
            ),
            (
                r#"[{"rn": "a", "pv": {}}, {"rn": "a", "pv": {}}]"#,
                "policy 1 (a): the policy",
            ),
            (
                r#"[{"m2m:acp": {"pv": {}, "cssf:paths": []}, "cssf:paths": []}]"#,
                "`cssf:paths` given twice",
            ),
            (r#"{"apps": [{"aes": []}]}"#, "app 0: needs one of"),
            (
                r#"{"apps": [{"credential": "a", "credentialHex": "00", "aes": []}]}"#,
                "needs one of",
            ),
            (
                r#"{"apps": [{"credentialHex": "zz", "aes": []}]}"#,
                "`credentialHex`",
            ),
            (r#"{"apps": [{"credential": "a"}]}"#, "no `aes`"),
            (
                r#"{"apps": [{"credential": "a", "aes": ["C*x"]}]}"#,
                "invalid access-control policy",
            ),
        ];
        for (text, want) in cases {
            let err = load(text).map(|_| ()).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn capacity_is_reported() {
        let many: Vec<String> = (0..17)
            .map(|i| format!(r#"{{"rn": "p{i}", "pv": {{}}}}"#))
            .collect();
        let err = load(&format!("[{}]", many.join(",")))
            .map(|_| ())
            .unwrap_err();
        assert!(err.starts_with("policy 16 (p16): the policy"), "{err}");
        assert!(err.contains("policies 16/16"), "{err}");
        let long = "C".repeat(129);
        let text = format!(r#"[{{"pv": {{"acr": [{{"acor": ["{long}"], "acop": 2}}]}}}}]"#);
        let err = load(&text).map(|_| ()).unwrap_err();
        assert!(err.contains("longer than 128 bytes"), "{err}");
    }
}
