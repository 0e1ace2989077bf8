//! Runs `cssf-attack-lab --short` (the built binary) and checks its verdict:
//! exit status 0, every attack in the table and no other, nothing accepted
//! against CSSF, every row's control counts showing the effect (all
//! attempts, or at least one where the control is partial by nature), the plain CoAP baseline
//! falling to the attacks it must fall to (so the lab demonstrably detects
//! an attack when one succeeds), and both libcoap columns (OpenSSL and
//! GnuTLS) run on the transport rows. The lifecycle
//! and CoAP table rows attack the `cssf-server` built beside the lab; the
//! lab itself exits non-zero when one of them could not run or its control
//! did not show the effect.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cssf_netsim::peer::{require_binary, ChildGuard};

/// Every attack the lab must report (the start of its row name).
const ATTACKS: [&str; 49] = [
    "Eavesdropping",
    "Record replay",
    "Bit flip",
    "Truncation",
    "Reordering",
    "Injected forged records",
    "Injected forged alerts",
    "Downgrade: strongest suite",
    "Downgrade: extended_master_secret",
    "ClientHello flood",
    "Handshake flood with valid cookies (half-open",
    "Handshake flood with valid cookies beyond the bound",
    "Half-open slots held by replaying cookie-bearing ClientHellos",
    "Spoofed-resend amplification",
    "Amplification",
    "CoAP request replay",
    "Forged token",
    "Expired token",
    "Replayed token",
    "Scope escalation",
    "Stolen token",
    "Flash tampering",
    "Flash rollback to an older image",
    "Flash rollback to make a nonce repeat",
    "Power cut",
    "Identity planted before Finished",
    "Session restart from the same address:port",
    "Record sequence number near 2^48 in the ClientHello",
    "Observer reflection",
    "CoAP table exhaustion",
    "Block1 slot exhaustion",
    "Handshake tampering",
    "Raw public keys: an impostor server",
    "Raw public keys: the key in the server's Certificate swapped",
    "Raw public keys: ServerKeyExchange signed by another key",
    "Resumption after the PSK identity was revoked",
    "Resumption under another suite",
    "Resumption without extended master secret",
    "Replay of an old abbreviated handshake",
    "Connection ID: source address of the victim's CID records rewritten",
    "Connection ID: the attacker's own session moved onto the victim's address",
    "Token over the wire: forged",
    "Token over the wire: expired",
    "Token over the wire: captured POST /authz-info replayed",
    "Token over the wire: scope escalation",
    "Token over the wire: stolen",
    "Token over the wire: older token re-posted to restore",
    "Token over the wire: older token re-posted after a restart",
    "Token over the wire: token posted by one party",
];

/// Rows the lab reports as known limitations: their accepted count is
/// shown and not counted in the verdict.
const KNOWN_LIMITATIONS: [&str; 1] = ["Handshake flood with valid cookies beyond the bound"];

/// Cells of the table row whose name starts with `name`.
fn row<'a>(table: &'a str, name: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {name}")))
        .map(|l| l.split('|').map(str::trim).collect())
}

/// The counts at the end of a Defence cell, `[controls: 12/12, 3/12
/// partial]`: (seen, of, partial) for each control.
fn controls(cell: &str) -> Option<Vec<(u32, u32, bool)>> {
    let list = cell.rsplit_once("[controls: ")?.1.strip_suffix(']')?;
    list.split(", ")
        .map(|c| {
            let (count, partial) = match c.strip_suffix(" partial") {
                Some(c) => (c, true),
                None => (c, false),
            };
            let (seen, of) = count.split_once('/')?;
            Some((seen.parse().ok()?, of.parse().ok()?, partial))
        })
        .collect()
}

#[test]
fn control_counts_parse() {
    assert_eq!(
        controls("x (control: 3/3) [controls: 12/12, 0/12 partial]"),
        Some(vec![(12, 12, false), (0, 12, true)])
    );
    assert_eq!(controls("x (control, valid token: granted 12/12)"), None);
    assert_eq!(controls("[controls: 12]"), None);
}

#[test]
fn short_lab_accepts_nothing_against_cssf() {
    // The libcoap columns need the peers (skipped on a dev machine, required in CI).
    let openssl = require_binary("coap-server-openssl", "apt-get install libcoap3-bin")
        && require_binary("coap-client-openssl", "apt-get install libcoap3-bin");
    let gnutls = require_binary("coap-server-gnutls", "apt-get install libcoap3-bin")
        && require_binary("coap-client-gnutls", "apt-get install libcoap3-bin");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cssf-attack-lab"));
    cmd.arg("--short");
    if !openssl && !gnutls {
        cmd.arg("--no-peer");
    }
    let mut child = ChildGuard(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cssf-attack-lab"),
    );
    let mut stdout = child.0.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().expect("wait") {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "cssf-attack-lab --short did not finish within 600 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().expect("stdout reader");
    let mut err = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        status.success(),
        "cssf-attack-lab --short failed ({status}):\n{out}\n{err}"
    );
    assert!(
        out.lines().any(|l| l == "accepted against CSSF: 0"),
        "no zero verdict:\n{out}"
    );
    // Every row of the table is one of ATTACKS (a new row must be added
    // there, so this test checks it too), each exactly once.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Attack |") && !l.starts_with("| ---"))
        .collect();
    for l in &rows {
        let n = ATTACKS
            .iter()
            .filter(|a| l.starts_with(&format!("| {a}")))
            .count();
        assert_eq!(n, 1, "table row not in ATTACKS exactly once: {l}");
    }
    assert_eq!(
        rows.len(),
        ATTACKS.len(),
        "rows missing or repeated:\n{out}"
    );
    for name in ATTACKS {
        let cells = row(&out, name).unwrap_or_else(|| panic!("attack {name:?} missing:\n{out}"));
        // | name | attempts | blocked | accepted | survived | defence | plain | OpenSSL | GnuTLS |
        assert_eq!(cells.len(), 11, "row {name:?} malformed: {cells:?}");
        let attempts: u32 = cells[2].parse().expect("attempts");
        assert!(attempts > 0, "{name}: no attempts");
        if KNOWN_LIMITATIONS.contains(&name) {
            // Shown with its count, marked, not counted in the verdict.
            assert!(
                cells[4].ends_with(" (known limitation)"),
                "{name}: not marked as a known limitation: {}",
                cells[4]
            );
        } else {
            assert_eq!(cells[4], "0", "{name}: accepted against CSSF:\n{out}");
        }
        assert!(
            !cells[5].starts_with("NO"),
            "{name}: session did not survive:\n{out}"
        );
        assert!(!cells[6].is_empty(), "{name}: no defence named");
        // Every row ends its Defence cell with its controls' counts: each
        // must show the effect in every attempt, or (an inherently
        // partial control, marked so) in at least one.
        let controls = controls(cells[6])
            .unwrap_or_else(|| panic!("{name}: no control counts in {:?}", cells[6]));
        assert!(!controls.is_empty(), "{name}: no control");
        for (seen, of, partial) in controls {
            assert!(of > 0, "{name}: a control with no attempts:\n{out}");
            if partial {
                assert!(seen > 0, "{name}: partial control showed nothing:\n{out}");
            } else {
                assert_eq!(seen, of, "{name}: control short of every attempt:\n{out}");
            }
        }
    }
    // The baseline must fall where plain CoAP has no defence.
    for name in [
        "Eavesdropping",
        "Bit flip",
        "Injected forged records",
        "CoAP request replay",
    ] {
        let cells = row(&out, name).expect("row present");
        let plain = cells[7];
        let accepted: u32 = plain
            .split('/')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: plain CoAP cell {plain:?} is not a count"));
        assert!(
            accepted > 0,
            "{name}: the plain CoAP baseline resisted ({plain}); the lab cannot detect this attack"
        );
    }
    // The libcoap columns: run on every transport row where the peer is
    // installed, "peer missing" where it is not.
    for (present, col, peer) in [
        (openssl, 8, "coap-server-openssl / coap-client-openssl"),
        (gnutls, 9, "coap-server-gnutls / coap-client-gnutls"),
    ] {
        for name in [
            "Eavesdropping",
            "Record replay",
            "Bit flip",
            "Truncation",
            "Reordering",
            "Injected forged records",
        ] {
            let cells = row(&out, name).expect("row present");
            if present {
                assert!(
                    cells[col].contains(" accepted, "),
                    "{name}: libcoap ({peer}, DTLS PSK) column did not run: {}",
                    cells[col]
                );
            } else if openssl || gnutls {
                assert_eq!(cells[col], "peer missing", "{name}: {peer}");
            }
        }
    }
}
