//! `cssf-server --plugtest` against libcoap's and aiocoap's clients, one
//! check per step of the CoAP interoperability test descriptions
//! (TD_COAP_CORE, _LINK, _BLOCK, _OBS) that the clients can drive: the
//! response code, type and the options the description names, read from
//! the PDUs libcoap prints at `-v 6` and from aiocoap-client's `-v` lines.
//! libcoap runs over plain CoAP; aiocoap over CoAPs with a PSK (its DTLS is
//! tinydtls), because aiocoap 0.4's client does not answer an Echo
//! challenge, which the server sends instead of an answer more than three
//! times the size of a request from an unverified plain-CoAP address
//! (RFC 9175 §2.4).

mod host_common;

use std::time::Duration;

use cssf_netsim::peer::{require_binary, require_python_module};
use host_common::{run, text_body, ServerProc, TempDir};

const LIMIT: Duration = Duration::from_secs(60);
const LIBCOAP: &str = "coap-client-notls";
const ID: &str = "Client_identity";
const KEY: &str = "secretPSK";
const KEY_HEX: &str = "73656372657450534b";

/// libcoap's client at `-v 6`: every PDU it sends and receives, one per
/// line (`v:1 t:ACK c:2.05 i:... {token} [ options ] :: 'payload'`), then
/// the payload.
fn libcoap(args: &[&str]) -> String {
    let mut a = vec!["-B", "15", "-v", "6"];
    a.extend_from_slice(args);
    let r = run(LIBCOAP, &a, LIMIT);
    format!("{}{}", r.stdout, r.stderr)
}

/// Asserts that one received PDU line has every fragment of `want`.
#[track_caller]
fn pdu(out: &str, want: &[&str], what: &str) {
    assert!(
        out.lines()
            .filter(|l| l.contains("v:1 "))
            .any(|l| want.iter().all(|w| l.contains(w))),
        "{what}: no PDU with {want:?} in:\n{out}"
    );
}

#[test]
fn libcoap_client_passes_the_plugtest_resources() {
    if !require_binary(LIBCOAP, "apt-get install -y libcoap3-bin") {
        return;
    }
    let s = ServerProc::start(&["--plugtest"]);
    let u = |p: &str| s.coap_uri(p);

    // TD_COAP_CORE_01..04: GET, DELETE, PUT, POST on /test (CON), and
    // CORE_18: POST creates /location1/location2/location3.
    let out = libcoap(&[&u("test")]);
    pdu(
        &out,
        &["t:ACK c:2.05", "Content-Format:text/plain", ":: '"],
        "CORE_01",
    );
    let out = libcoap(&["-m", "delete", &u("test")]);
    pdu(&out, &["t:ACK c:2.02"], "CORE_02");
    let out = libcoap(&["-m", "put", "-e", "changed by CORE_03", &u("test")]);
    pdu(&out, &["t:ACK c:2.04"], "CORE_03");
    let out = libcoap(&[&u("test")]);
    pdu(
        &out,
        &["c:2.05", ":: 'changed by CORE_03'"],
        "CORE_03 read back",
    );
    let out = libcoap(&["-m", "post", "-e", "x", &u("test")]);
    pdu(
        &out,
        &[
            "t:ACK c:2.01",
            "Location-Path:location1, Location-Path:location2, Location-Path:location3",
        ],
        "CORE_04/18",
    );
    // CORE_05..08: the same as NON requests get NON responses.
    let out = libcoap(&["-N", &u("test")]);
    pdu(&out, &["t:NON c:2.05"], "CORE_05");
    let out = libcoap(&["-N", "-m", "post", "-e", "x", &u("test")]);
    pdu(&out, &["t:NON c:2.01"], "CORE_08");
    // CORE_09: /separate is acknowledged empty, then answered in a CON.
    let out = libcoap(&[&u("separate")]);
    pdu(
        &out,
        &["t:CON c:2.05", ":: 'plugtest /separate'"],
        "CORE_09",
    );
    assert!(
        !out.contains("t:ACK c:2.05"),
        "CORE_09: /separate was piggybacked:\n{out}"
    );
    // CORE_12, 13: a long path and Uri-Query.
    let out = libcoap(&[&u("seg1/seg2/seg3")]);
    pdu(
        &out,
        &["c:2.05", ":: 'plugtest /seg1/seg2/seg3'"],
        "CORE_12",
    );
    let out = libcoap(&[&u("query?first=1&second=2")]);
    pdu(&out, &["c:2.05", ":: 'query: first=1&second=2'"], "CORE_13");
    // CORE_19: two Location-Query options.
    let out = libcoap(&["-m", "post", "-e", "x", &u("location-query")]);
    pdu(
        &out,
        &["c:2.01", "Location-Query:first=1, Location-Query:second=2"],
        "CORE_19",
    );
    // CORE_20: Accept.
    let out = libcoap(&["-A", "0", &u("multi-format")]);
    pdu(
        &out,
        &["c:2.05", "Content-Format:text/plain"],
        "CORE_20 text",
    );
    let out = libcoap(&["-A", "41", &u("multi-format")]);
    pdu(
        &out,
        &["c:2.05", "Content-Format:application/xml", ":: '<msg>"],
        "CORE_20 xml",
    );
    // CORE_21: ETag validation; CORE_22: If-Match.
    let out = libcoap(&[&u("validate")]);
    pdu(&out, &["c:2.05", "ETag:0x00000001"], "CORE_21 first GET");
    let out = libcoap(&["-O", "4,0x00000001", &u("validate")]);
    pdu(&out, &["c:2.03", "ETag:0x00000001"], "CORE_21 still valid");
    let out = libcoap(&[
        "-m",
        "put",
        "-O",
        "1,0x00000001",
        "-e",
        "v2",
        &u("validate"),
    ]);
    pdu(&out, &["c:2.04"], "CORE_22 If-Match holds");
    let out = libcoap(&["-O", "4,0x00000001", &u("validate")]);
    pdu(
        &out,
        &["c:2.05", "ETag:0x00000002", ":: 'v2'"],
        "CORE_21 changed",
    );
    let out = libcoap(&[
        "-m",
        "put",
        "-O",
        "1,0x00000001",
        "-e",
        "v3",
        &u("validate"),
    ]);
    pdu(&out, &["c:4.12"], "CORE_22 If-Match fails");
    // CORE_23: If-None-Match creates once.
    let out = libcoap(&["-m", "put", "-O", "5", "-e", "new", &u("create1")]);
    pdu(&out, &["c:2.01"], "CORE_23 create");
    let out = libcoap(&["-m", "put", "-O", "5", "-e", "new", &u("create1")]);
    pdu(&out, &["c:4.12"], "CORE_23 exists");

    // TD_COAP_LINK_01..09: discovery and its filters.
    let wk = |q: &str| libcoap(&[&u(&format!(".well-known/core{q}"))]);
    let out = wk("");
    pdu(
        &out,
        &["c:2.05", "Content-Format:application/link-format"],
        "LINK_01",
    );
    for l in [
        "</test>",
        "</obs>",
        "</link1>",
        "</path>",
        "</large-create>",
    ] {
        assert!(out.contains(l), "LINK_01: {l} missing:\n{out}");
    }
    let out = wk("?rt=Type1");
    assert!(
        out.contains("</link1>") && !out.contains("</link2>") && out.contains("</link3>"),
        "LINK_02:\n{out}"
    );
    let out = wk("?rt=Type2");
    assert!(
        out.contains("</link1>") && out.contains("</link2>") && !out.contains("</link3>"),
        "LINK_04:\n{out}"
    );
    let out = wk("?if=If*");
    assert!(
        out.contains("</link1>") && out.contains("</link2>") && !out.contains("</link3>"),
        "LINK_05:\n{out}"
    );
    let out = wk("?href=/link1");
    assert!(
        out.contains("</link1>") && !out.contains("</link2>") && !out.contains("</test>"),
        "LINK_07:\n{out}"
    );
    let out = wk("?href=/link*");
    assert!(
        out.contains("</link2>") && out.contains("</link3>") && !out.contains("</test>"),
        "LINK_08:\n{out}"
    );
    let out = libcoap(&[&u("path")]);
    pdu(
        &out,
        &["c:2.05", "application/link-format", "</path/sub1>"],
        "LINK_09 /path",
    );
    let out = libcoap(&[&u("path/sub1")]);
    pdu(
        &out,
        &["c:2.05", ":: 'plugtest /path/sub1'"],
        "LINK_09 sub1",
    );

    // TD_COAP_BLOCK_01..05.
    let out = libcoap(&["-b", "64", &u("large")]);
    pdu(&out, &["c:2.05", "Block2:63/_/64"], "BLOCK_01");
    let out = libcoap(&[&u("large")]);
    pdu(&out, &["c:2.05", "Block2:3/_/1024"], "BLOCK_02");
    let dir = TempDir::new("plugtest");
    let f = dir.path("body.txt");
    let body = text_body(1500);
    std::fs::write(&f, &body).unwrap();
    let file = f.to_str().unwrap();
    let out = libcoap(&["-m", "put", "-b", "64", "-f", file, &u("large-update")]);
    pdu(&out, &["c:2.04", "Block1:23/_/64"], "BLOCK_03");
    let r = run(LIBCOAP, &["-B", "15", &u("large-update")], LIMIT);
    assert_eq!(r.stdout.trim_end(), body, "BLOCK_03 read back");
    let out = libcoap(&["-m", "post", "-b", "64", "-f", file, &u("large-create")]);
    pdu(
        &out,
        &[
            "c:2.01",
            "Location-Path:large-create, Location-Path:1",
            "Block1:23/_/64",
        ],
        "BLOCK_04",
    );
    let r = run(LIBCOAP, &["-B", "15", &u("large-create/1")], LIMIT);
    assert_eq!(r.stdout.trim_end(), body, "BLOCK_04 read back");
    let r = run(
        LIBCOAP,
        &[
            "-B",
            "15",
            "-m",
            "post",
            "-b",
            "64",
            "-f",
            file,
            &u("large-post"),
        ],
        LIMIT,
    );
    assert_eq!(r.stdout.trim_end(), body, "BLOCK_05 answer");

    // TD_COAP_OBS_01/02: /obs notifies in CON, /obs-non in NON.
    let out = libcoap(&["-s", "12", &u("obs")]);
    pdu(&out, &["t:CON c:2.05", "Observe:", ":: 'obs "], "OBS_01");
    let out = libcoap(&["-N", "-s", "12", &u("obs-non")]);
    pdu(&out, &["t:NON c:2.05", "Observe:", ":: 'obs "], "OBS_02");
    let log = s.log();
    assert!(log.contains("GET /separate -> answered in"), "{log}");
}

/// aiocoap-client (`python3 -m aiocoap.cli.client`, which does not depend
/// on where pip put its scripts) with `-v`: its INFO lines name the
/// response code and every option.
fn aiocoap(creds: &str, args: &[&str]) -> String {
    let mut a = vec!["-m", "aiocoap.cli.client", "--credentials", creds, "-v"];
    a.extend_from_slice(args);
    let r = run("python3", &a, LIMIT);
    format!("{}{}", r.stdout, r.stderr)
}

#[track_caller]
fn has(out: &str, want: &[&str], what: &str) {
    for w in want {
        assert!(out.contains(w), "{what}: `{w}` missing in:\n{out}");
    }
}

#[test]
fn aiocoap_client_over_dtls_passes_the_plugtest_resources() {
    let install = "pip install aiocoap dtlssocket";
    if !require_python_module("aiocoap", install) || !require_python_module("DTLSSocket", install) {
        return;
    }
    let s = ServerProc::start(&["--plugtest", "--psk", &format!("{ID}:{KEY_HEX}:*:ALL")]);
    let dir = TempDir::new("aiocoap");
    let creds = dir.path("credentials.json");
    std::fs::write(
        &creds,
        format!(
            "{{\"coaps://127.0.0.1:{}/*\": {{\"dtls\": {{\"psk\": {{\"ascii\": \"{KEY}\"}}, \
             \"client-identity\": {{\"ascii\": \"{ID}\"}}}}}}}}",
            s.coaps
        ),
    )
    .unwrap();
    let creds = creds.to_str().unwrap();
    let u = |p: &str| s.coaps_uri(p);

    let out = aiocoap(creds, &[&u("test")]);
    has(&out, &["2.05 Content", "plugtest /test"], "CORE_01");
    let out = aiocoap(creds, &["-m", "POST", "--payload", "x", &u("test")]);
    has(
        &out,
        &["2.01 Created", "/location1/location2/location3"],
        "CORE_04/18",
    );
    let out = aiocoap(creds, &["-m", "DELETE", &u("test")]);
    has(&out, &["2.02 Deleted"], "CORE_02");
    let out = aiocoap(creds, &[&u("separate")]);
    has(&out, &["2.05 Content", "plugtest /separate"], "CORE_09");
    let out = aiocoap(creds, &[&u("query?first=1&second=2")]);
    has(&out, &["query: first=1&second=2"], "CORE_13");
    let out = aiocoap(
        creds,
        &["-m", "POST", "--payload", "x", &u("location-query")],
    );
    has(
        &out,
        &[
            "2.01 Created",
            "Location-Query (20): 'first=1'",
            "Location-Query (20): 'second=2'",
        ],
        "CORE_19",
    );
    let out = aiocoap(creds, &["--accept", "application/xml", &u("multi-format")]);
    has(
        &out,
        &["ContentFormat 41", "<msg>plugtest /multi-format</msg>"],
        "CORE_20",
    );
    let out = aiocoap(creds, &[&u("validate")]);
    has(
        &out,
        &["2.05 Content", "Etag (4): b'\\x00\\x00\\x00\\x01'"],
        "CORE_21",
    );
    let out = aiocoap(creds, &[&u("large")]);
    has(
        &out,
        &[
            "0000 abcdefghijklmnopqrstuvwxyz",
            "0127 abcdefghijklmnopqrstuvwxyz",
        ],
        "BLOCK_01",
    );
    let f = dir.path("body.txt");
    let body = text_body(1500);
    std::fs::write(&f, &body).unwrap();
    let at = format!("@{}", f.to_str().unwrap());
    let out = aiocoap(
        creds,
        &[
            "-m",
            "POST",
            "--payload",
            &at,
            "--payload-initial-szx",
            "2",
            &u("large-post"),
        ],
    );
    has(
        &out,
        &["2.04 Changed", body.lines().last().unwrap_or("")],
        "BLOCK_05",
    );
    let out = aiocoap(creds, &["-m", "POST", "--payload", &at, &u("large-create")]);
    has(&out, &["2.01 Created", "/large-create/1"], "BLOCK_04");
    let log = s.log();
    assert!(log.contains("connected, Psk"), "{log}");
}
