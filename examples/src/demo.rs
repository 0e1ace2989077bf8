//! `cssf-demo`: the end-to-end flow of DESIGN.md in one process over
//! loopback UDP — an Authorization Server mints a token, a client uploads
//! it to the device's `/authz-info`, runs the DTLS handshake with the
//! token's PoP key, reads the sensor, switches the LED, is refused a
//! resource outside its scope, and observes `/time`; then the same
//! requests over OSCORE (RFC 8613), protected end to end without DTLS,
//! with the bytes on the wire beside the DTLS pass's.

use std::time::{Duration, Instant};

use cssf_coap::endpoint::Request;
use cssf_coap::{Code, ContentFormat};
use p256::SecretKey;
use rand_core::OsRng;

use crate::client::{Link, Reply, Traffic};
use crate::fail;
use crate::oscore_file::OscoreContextFile;
use crate::server::{Server, ServerConfig};
use crate::token::{self, AsKey, MintRequest};
use crate::util::{hex, Result};

/// The scope the demo's token grants.
pub const DEMO_SCOPE: &str = "/sensors/temp:GET /actuators/led:GET,PUT /time:GET";

const TIMEOUT: Duration = Duration::from_secs(10);

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

fn wire(t: &Traffic, round_trips: Option<usize>) -> String {
    match round_trips {
        Some(r) => format!(
            "    wire: {t}; {r} round trip{}",
            if r == 1 { "" } else { "s" }
        ),
        None => format!("    wire: {t}"),
    }
}

fn answer(r: &Reply) -> String {
    let body = r.text().map_or_else(
        || format!("{} bytes: {}", r.payload.len(), hex(&r.payload)),
        |t| format!("\"{t}\""),
    );
    format!(
        "    client <- {} {} {body}",
        r.code,
        r.code.name().unwrap_or("")
    )
}

async fn exchange(link: &mut Link, req: &Request<'_>, label: &str) -> Result<Reply> {
    println!("    client -> {label}");
    let before = link.traffic;
    let r = link.request(req).await?;
    println!("{}", answer(&r));
    println!("{}", wire(&link.traffic.since(&before), Some(r.messages)));
    Ok(r)
}

fn expect(r: &Reply, code: Code, what: &str) -> Result<()> {
    if r.code == code {
        Ok(())
    } else {
        Err(fail!("{what}: expected {code}, got {}", r.code))
    }
}

/// The AS Request Creation Hints of a 4.01 (a CBOR map with integer keys)
/// as text: `{AS: "coaps://...", audience: "rs1"}`.
pub fn describe_hints(payload: &[u8]) -> String {
    let mut d = minicbor::Decoder::new(payload);
    let Ok(Some(n)) = d.map() else {
        return format!("(not a CBOR map: {})", hex(payload));
    };
    let mut parts = Vec::new();
    for _ in 0..n {
        let Ok(k) = d.u64() else { break };
        let name = match k {
            1 => "AS".to_string(),
            2 => "kid".to_string(),
            5 => "audience".to_string(),
            9 => "scope".to_string(),
            39 => "cnonce".to_string(),
            other => other.to_string(),
        };
        let v = match d.datatype() {
            Ok(minicbor::data::Type::String) => d.str().map(|t| format!("\"{t}\"")).ok(),
            Ok(minicbor::data::Type::Bytes) => d.bytes().map(hex).ok(),
            _ => d.skip().ok().map(|()| "...".to_string()),
        };
        let Some(v) = v else { break };
        parts.push(format!("{name}: {v}"));
    }
    format!("{{{}}}", parts.join(", "))
}

/// Runs the demo; `Err` if any step does not go as described.
pub async fn run() -> Result<()> {
    let started = Instant::now();
    println!("CSSF demo: ACE-OAuth DTLS profile (RFC 9200/9202) end to end over loopback UDP");
    // The OSCORE pass's context, shared by the device and the client
    // (provisioned: the programs do not run EDHOC yet), and the device's
    // store keeping its replay window.
    let dir = std::env::temp_dir().join(format!("cssf-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail!("{}: {e}", dir.display()))?;
    let _cleanup = RemoveDir(dir.clone());
    let mut secret = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut secret);
    let context = |sender: &str, recipient: &str, scope: &str| {
        format!(
            "{{\"sender-id_hex\": \"{sender}\", \"recipient-id_hex\": \"{recipient}\", \"secret_hex\": \"{}\"{scope}}}",
            hex(&secret)
        )
    };
    let device_ctx = OscoreContextFile::parse(
        &context("01", "", &format!(", \"scope\": \"{DEMO_SCOPE}\"")),
        &dir.join("device-context.json"),
    )?;
    let client_ctx_path = dir.join("client-context.json");
    std::fs::write(&client_ctx_path, context("", "01", ""))
        .map_err(|e| fail!("{}: {e}", client_ctx_path.display()))?;
    let client_ctx = OscoreContextFile::load(&client_ctx_path)?;

    step(1, "Authorization Server mints an access token");
    let as_key = SecretKey::random(&mut OsRng);
    let req = MintRequest {
        as_key: AsKey::Es256(as_key.clone()),
        issuer: Some("as.example".into()),
        audience: "rs1".into(),
        scope: token::parse_scope(DEMO_SCOPE)?,
        expires_in: 3600,
        exi: false,
        kid: Some(b"client-1".to_vec()),
    };
    let minted = token::mint(&req)?;
    println!(
        "    AS: CWT in COSE_Sign1 (ES256), {} bytes, audience rs1, expires in 3600 s",
        minted.token.len()
    );
    println!("    AS: scope {DEMO_SCOPE}");
    println!(
        "    AS: PoP key for the client: kid {} (the DTLS psk_identity), 16-byte key {}",
        token::kid_text(&minted.kid),
        hex(&minted.key)
    );

    step(
        2,
        "Device starts (trusts the AS's public key, audience rs1)",
    );
    let cfg = ServerConfig {
        bind: ([127, 0, 0, 1], 0).into(),
        dtls_bind: ([127, 0, 0, 1], 0).into(),
        as_keys: AsKey::Es256(as_key).verification_keys()?,
        as_uri: Some("coaps://as.example/token".into()),
        log_prefix: "    device | ".into(),
        store: Some(dir.join("device-store.bin")),
        oscore: vec![device_ctx],
        ..ServerConfig::default()
    };
    let server = Server::start(cfg).await?;
    let (coap, coaps) = (server.coap_addr(), server.coaps_addr());
    let script = async move {
        step(
            3,
            "Client without a token asks for the sensor over plain CoAP",
        );
        let mut plain = Link::plain(coap, TIMEOUT).await?;
        let r = exchange(
            &mut plain,
            &Request::get("sensors/temp"),
            "GET /sensors/temp",
        )
        .await?;
        expect(&r, Code::UNAUTHORIZED, "unauthenticated GET")?;
        println!(
            "    AS Request Creation Hints (RFC 9200 5.3): {}",
            describe_hints(&r.payload)
        );

        step(4, "Client uploads the token: POST /authz-info (plain CoAP)");
        let r = exchange(
            &mut plain,
            &Request::post("authz-info")
                .payload(&minted.token)
                .content_format(ContentFormat::ACE_CBOR),
            &format!("POST /authz-info ({} bytes)", minted.token.len()),
        )
        .await?;
        expect(&r, Code::CREATED, "token upload")?;
        plain.close().await;

        step(5, "DTLS 1.2 handshake with the token's PoP key as PSK");
        println!(
            "    client -> ClientHello ... psk_identity {}",
            token::kid_text(&minted.kid)
        );
        let mut link = Link::dtls_psk(coaps, &minted.kid, &minted.key, TIMEOUT).await?;
        println!(
            "    client: connected, {} (cookie exchange, then the PSK handshake)",
            link.suite().map_or("no suite".into(), |s| format!("{s:?}"))
        );
        println!("{}", wire(&link.traffic, None));
        let handshake = link.traffic;

        step(6, "Client reads the sensor over DTLS");
        let r = exchange(
            &mut link,
            &Request::get("sensors/temp"),
            "GET /sensors/temp",
        )
        .await?;
        expect(&r, Code::CONTENT, "GET /sensors/temp")?;
        let dtls_get = link.traffic.since(&handshake);

        step(7, "Client switches the LED on");
        let r = exchange(
            &mut link,
            &Request::put("actuators/led").payload(b"on"),
            "PUT /actuators/led \"on\"",
        )
        .await?;
        expect(&r, Code::CHANGED, "PUT /actuators/led")?;
        let r = exchange(
            &mut link,
            &Request::get("actuators/led"),
            "GET /actuators/led",
        )
        .await?;
        expect(&r, Code::CONTENT, "GET /actuators/led")?;
        if r.payload != b"on" {
            return Err(fail!("the LED did not switch on"));
        }

        step(8, "Client asks for a resource outside its scope");
        let r = exchange(&mut link, &Request::get("large"), "GET /large").await?;
        expect(&r, Code::FORBIDDEN, "GET /large (not in scope)")?;

        step(
            9,
            "Client observes /time (three notifications, one per second)",
        );
        println!("    client -> GET /time Observe 0");
        let mut seen = 0;
        link.observe("time", None, 3, |r, t| {
            seen += 1;
            let obs = r
                .uint_option(cssf_coap::OptionNumber::OBSERVE)
                .map_or(String::new(), |o| format!(" (Observe {o})"));
            let a = answer(r);
            let a = a.trim_start().trim_start_matches("client <- ");
            println!("    client <- notification {seen}{obs}: {a}");
            println!("    {}", wire(t, None).trim_start());
        })
        .await?;
        if seen != 3 {
            return Err(fail!("expected 3 notifications, got {seen}"));
        }
        println!("    client deregistered with GET /time Observe 1");

        step(10, "Client closes the session (close_notify)");
        let total = link.traffic;
        link.close().await;
        // Let the device read the close_notify before the demo ends.
        tokio::time::sleep(Duration::from_millis(100)).await;
        println!("    DTLS session total: {total}");

        step(
            11,
            "The same requests over OSCORE (RFC 8613): protected end to end, no DTLS",
        );
        println!(
            "    a security context shared by client and device (provisioned here; EDHOC would derive it)"
        );
        let mut osc = Link::plain(coap, TIMEOUT).await?;
        osc.use_oscore(&client_ctx)?;
        println!("    the device has no replay window for it yet: its first answer is a protected 4.01 with Echo, the client repeats (RFC 8613 B.1.2)");
        let r = exchange(
            &mut osc,
            &Request::get("sensors/temp"),
            "GET /sensors/temp (OSCORE)",
        )
        .await?;
        expect(&r, Code::CONTENT, "OSCORE GET /sensors/temp")?;
        let before = osc.traffic;
        let r = exchange(
            &mut osc,
            &Request::get("sensors/temp"),
            "GET /sensors/temp (OSCORE) again",
        )
        .await?;
        expect(&r, Code::CONTENT, "second OSCORE GET /sensors/temp")?;
        let one = osc.traffic.since(&before);
        let r = exchange(
            &mut osc,
            &Request::put("actuators/led").payload(b"off"),
            "PUT /actuators/led \"off\" (OSCORE)",
        )
        .await?;
        expect(&r, Code::CHANGED, "OSCORE PUT /actuators/led")?;
        let r = exchange(&mut osc, &Request::get("large"), "GET /large (OSCORE)").await?;
        expect(&r, Code::FORBIDDEN, "OSCORE GET /large (not in scope)")?;
        println!(
            "    GET /sensors/temp on the wire: OSCORE {} + {} bytes, no handshake; DTLS {} + {} bytes after a handshake of {} + {} bytes",
            one.sent_bytes,
            one.received_bytes,
            dtls_get.sent_bytes,
            dtls_get.received_bytes,
            handshake.sent_bytes,
            handshake.received_bytes
        );
        println!("    OSCORE total: {}", osc.traffic);
        osc.close().await;
        Ok::<(), crate::util::Failure>(())
    };
    let result = tokio::select! {
        r = server.run(std::future::pending()) => r.and(Err(fail!("the device stopped"))),
        r = script => r,
    };
    result?;
    println!(
        "\ndone in {:.1} s: token minted, uploaded, DTLS keyed by its PoP key, scope enforced, Observe working, the same over OSCORE",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Removes the demo's temporary directory when the demo ends.
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cssf-demo`.
pub fn demo_main(args: crate::util::Args) -> Result<()> {
    let mut args = args;
    if let Some(a) = args.next_arg() {
        return Err(fail!("cssf-demo takes no arguments (got {a:?})"));
    }
    crate::cli::runtime()?.block_on(run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_described() {
        // {1: "coaps://as", 5: "rs1", 39: h'0102'}
        let p = [
            0xa3, 0x01, 0x6a, b'c', b'o', b'a', b'p', b's', b':', b'/', b'/', b'a', b's', 0x05,
            0x63, b'r', b's', b'1', 0x18, 0x27, 0x42, 0x01, 0x02,
        ];
        assert_eq!(
            describe_hints(&p),
            "{AS: \"coaps://as\", audience: \"rs1\", cnonce: 0102}"
        );
        assert!(describe_hints(&[0x01]).starts_with("(not a CBOR map"));
    }
}
