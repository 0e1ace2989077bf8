//! `cssf-attack-lab`: emulated attacks on CSSF, side by side with plain CoAP
//! (no security) and libcoap with OpenSSL and with GnuTLS DTLS (PSK).
//!
//! Every attack runs `--attempts` times (seeded by `--seed`) against a
//! client and a server that talk through an in-memory network with an
//! adversary on the path (sees, drops, modifies, replays, reorders and
//! injects datagrams); the two libcoap columns run the transport attacks
//! through a UDP man-in-the-middle proxy on loopback. The lifecycle and
//! CoAP table rows attack the real `cssf-server` over loopback UDP instead
//! (`--server` names another build), and so do the token rows, through a
//! UDP relay. The handshake rows attack cssf-dtls
//! alone, in memory: handshake flights, raw public keys, resumption and
//! Connection IDs. An attack counts as
//! accepted only when its effect is observed: the server acts on a
//! modified or replayed request, a forged record reaches the application,
//! a token grants access, the store returns data it should not.
//!
//! Prints a Markdown table and `accepted against CSSF: N`; exits non-zero
//! when anything was accepted against CSSF (rows marked as a known
//! limitation are shown and not counted), the legitimate session did
//! not survive an attack it should survive, or a row could not be run
//! (its server missing, a control showing the effect in fewer than all
//! its attempts, or, for a control partial by nature, in none).

mod auth;
mod cid;
mod coap;
mod handshake;
mod libcoap;
mod lifecycle;
mod lifecycle_failures;
mod net;
mod resumption;
mod rpk;
mod stack;
mod store;
mod tables;
mod tokens;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Seed of every random choice.
    pub seed: u64,
    /// Attempts per attack (in memory).
    pub attempts: u32,
    /// Attempts per attack against each libcoap build (each spawns a
    /// process).
    pub peer_attempts: u32,
    /// Attempts per lifecycle attack against the real `cssf-server`.
    pub server_attempts: u32,
    /// The `cssf-server` the lifecycle rows attack (default: beside the
    /// lab's executable).
    pub server: Option<PathBuf>,
    /// Skip the libcoap columns.
    pub no_peer: bool,
    /// Run only this family (transport, coap, auth, store, lifecycle,
    /// tables, handshake, tokens).
    pub family: Option<&'static str>,
}

/// How often an attack was tried against one implementation and how often
/// it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Ran: accepted out of attempts.
    Ran {
        /// Accepted attempts.
        accepted: u32,
        /// Attempts.
        attempts: u32,
    },
    /// Ran against an external peer: accepted out of attempts that
    /// proved something, the voided ones shown beside them, and how the
    /// attack there differs from the row's words, if it does.
    Peer {
        /// Accepted attempts.
        accepted: u32,
        /// Attempts that were not voided.
        attempts: u32,
        /// Voided attempts (the run proved nothing).
        voided: u32,
        /// How the attack differs there (empty: it does not).
        note: &'static str,
    },
    /// The attack has no meaning there.
    Na(&'static str),
    /// The external peer is not installed.
    PeerMissing,
    /// Not run (with why).
    NotRun(&'static str),
}

impl std::fmt::Display for Cmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmp::Ran { accepted, attempts } => write!(f, "{accepted}/{attempts} accepted"),
            Cmp::Peer {
                accepted,
                attempts,
                voided,
                note,
            } => {
                write!(f, "{accepted}/{attempts} accepted, {voided} voided")?;
                if !note.is_empty() {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Cmp::Na(why) => write!(f, "n/a ({why})"),
            Cmp::PeerMissing => write!(f, "peer missing"),
            Cmp::NotRun(why) => write!(f, "not run ({why})"),
        }
    }
}

/// One attack's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// Short stable id (used by the CI test and the libcoap runner).
    pub id: &'static str,
    /// What the attack is.
    pub name: &'static str,
    /// Attempts against CSSF.
    pub attempts: u32,
    /// Accepted against CSSF.
    pub accepted: u32,
    /// Attempts after which the legitimate session (or store) still worked;
    /// `None` where survival has no meaning.
    pub survived: Option<u32>,
    /// The defence that stopped it.
    pub defence: String,
    /// Plain CoAP.
    pub baseline: Cmp,
    /// libcoap + OpenSSL DTLS (PSK) through the proxy.
    pub libcoap: Cmp,
    /// libcoap + GnuTLS DTLS (PSK) through the proxy (rows the libcoap
    /// runner does not attack get the OpenSSL column's reason).
    pub gnutls: Cmp,
    /// The lab could not run this row as it should (no result about CSSF).
    pub failure: Option<String>,
    /// Attempts that could not run (counted in `attempts`, neither
    /// blocked nor accepted; the row then fails).
    pub not_run: u32,
    /// A known limitation: its accepted attempts are shown ("N (known
    /// limitation)") and not counted in the verdict or the exit status.
    pub limitation: bool,
    /// Every control of the row: attempts that showed the effect, out of
    /// how many, and whether the control is inherently partial (then one
    /// attempt showing the effect is enough; otherwise every one must).
    pub controls: Vec<Control>,
}

/// One control's result: the same observation with the defence off (or
/// the credential real), which must show the effect the row looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// Attempts that showed the effect.
    pub seen: u32,
    /// Attempts.
    pub of: u32,
    /// Inherently partial (random tampering, a power cut at a random
    /// operation): at least one attempt must show the effect, not all.
    pub partial: bool,
}

impl Control {
    /// Whether the control showed what it must.
    pub fn met(&self) -> bool {
        self.of > 0
            && if self.partial {
                self.seen > 0
            } else {
                self.seen == self.of
            }
    }
}

impl std::fmt::Display for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.seen, self.of)?;
        if self.partial {
            write!(f, " partial")?;
        }
        Ok(())
    }
}

impl Row {
    /// A row with no comparison yet.
    pub fn new(id: &'static str, name: &'static str) -> Self {
        Row {
            id,
            name,
            attempts: 0,
            accepted: 0,
            survived: Some(0),
            defence: String::new(),
            baseline: Cmp::Na("-"),
            libcoap: Cmp::Na("not a transport attack"),
            gnutls: Cmp::Na("not a transport attack"),
            failure: None,
            not_run: 0,
            limitation: false,
            controls: Vec::new(),
        }
    }

    /// Counts an attempt that could not run: shown as not run, never as
    /// blocked, and the row fails.
    pub fn skipped(&mut self) {
        self.attempt(false, false);
        self.not_run += 1;
    }

    /// Records a control that must show the effect in every one of its
    /// `of` attempts (`partial`: in at least one). The lab fails the row
    /// when it did not.
    pub fn control(&mut self, seen: u32, of: u32, partial: bool) {
        self.controls.push(Control { seen, of, partial });
    }

    /// Why the row's controls do not let it see the attack, if they do not.
    fn control_failure(&self) -> Option<String> {
        if self.controls.is_empty() {
            return Some("no control recorded".into());
        }
        let bad: Vec<String> = self
            .controls
            .iter()
            .filter(|c| !c.met())
            .map(|c| {
                format!(
                    "{} (needs {})",
                    c,
                    if c.partial { "at least 1" } else { "all" }
                )
            })
            .collect();
        (!bad.is_empty()).then(|| format!("control showed the effect in only {}", bad.join(", ")))
    }

    /// The controls as the table shows them at the end of the Defence cell.
    fn controls_cell(&self) -> String {
        let c: Vec<String> = self.controls.iter().map(ToString::to_string).collect();
        format!("[controls: {}]", c.join(", "))
    }

    /// Counts one CSSF attempt.
    pub fn attempt(&mut self, accepted: bool, survived: bool) {
        self.attempts += 1;
        self.accepted += u32::from(accepted);
        if let Some(s) = self.survived.as_mut() {
            *s += u32::from(survived);
        }
    }

    fn survival_ok(&self) -> bool {
        match self.survived {
            None => true,
            Some(s) => s == self.attempts,
        }
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        seed: 0x00C5_5F1A_B000,
        attempts: 200,
        peer_attempts: 20,
        server_attempts: 20,
        server: None,
        no_peer: false,
        family: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| {
                    let v = v.trim();
                    match v.strip_prefix("0x") {
                        Some(h) => u64::from_str_radix(h, 16).ok(),
                        None => v.parse().ok(),
                    }
                })
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--seed" => o.seed = num("--seed")?,
            "--attempts" => {
                o.attempts = u32::try_from(num("--attempts")?).unwrap_or(u32::MAX).max(1)
            }
            "--peer-attempts" => {
                o.peer_attempts = u32::try_from(num("--peer-attempts")?)
                    .unwrap_or(u32::MAX)
                    .max(1)
            }
            "--server-attempts" => {
                o.server_attempts = u32::try_from(num("--server-attempts")?)
                    .unwrap_or(u32::MAX)
                    .max(1)
            }
            "--server" => {
                o.server = Some(
                    args.next()
                        .ok_or("--server needs the path of a cssf-server")?
                        .into(),
                )
            }
            "--short" => {
                o.attempts = 12;
                o.peer_attempts = 3;
                o.server_attempts = 3;
            }
            "--no-peer" => o.no_peer = true,
            "--family" => {
                let f = args.next().unwrap_or_default();
                o.family = [
                    "transport",
                    "coap",
                    "auth",
                    "store",
                    "lifecycle",
                    "tables",
                    "handshake",
                    "tokens",
                ]
                .into_iter()
                .find(|x| *x == f);
                if o.family.is_none() {
                    return Err(format!("unknown family {f:?}"));
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: cssf-attack-lab [--seed N] [--attempts N] [--peer-attempts N] [--server-attempts N] [--server PATH] [--short] [--no-peer] [--family transport|coap|auth|store|lifecycle|tables|handshake|tokens]\n\
                     Runs each attack N times (default 200; each libcoap build 20; cssf-server 20; --short: 12, 3 and 3) and prints a Markdown table.\n\
                     The lifecycle and tables rows attack the cssf-server beside this program, or PATH (also: CSSF_LAB_SERVER)."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cssf-attack-lab: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let want = |f: &str| match opts.family {
        None => true,
        Some(x) => x == f,
    };
    // The observer row waits out the RFC 7641 bound (about two minutes):
    // it runs beside every other row.
    let observe = want("tables").then(|| tables::spawn_observe(&opts));
    if want("transport") {
        rows.extend(transport::run(&opts));
    }
    if want("coap") {
        rows.extend(coap::run(&opts));
    }
    if want("auth") {
        rows.extend(auth::run(&opts));
    }
    if want("store") {
        rows.extend(store::run(&opts));
    }
    if want("lifecycle") {
        rows.extend(lifecycle::run(&opts));
    }
    if want("handshake") {
        rows.extend(handshake::run(&opts));
    }
    if want("tokens") {
        rows.extend(tokens::run(&opts));
    }
    if let Some(observe) = observe {
        let rest = tables::run(&opts);
        rows.push(observe.join().unwrap_or_else(|_| {
            let mut r = Row::new("tables-observe", "Observer reflection");
            r.failure = Some("its thread panicked".into());
            r.survived = None;
            r
        }));
        rows.extend(rest);
    }
    libcoap::run(&opts, &mut rows);

    println!(
        "Attack lab: seed {:#x}, {} attempts per attack in memory, {} against each libcoap build, {} against cssf-server.\n",
        opts.seed, opts.attempts, opts.peer_attempts, opts.server_attempts
    );
    println!("| Attack | Attempts | Blocked | Accepted (CSSF) | Legitimate session survived | Defence | Plain CoAP | libcoap + OpenSSL DTLS (PSK) | libcoap + GnuTLS DTLS (PSK) |");
    println!("| --- | ---: | ---: | ---: | --- | --- | --- | --- | --- |");
    let mut accepted = 0u32;
    let mut limitations = Vec::new();
    let mut failed_survival = Vec::new();
    let mut failures = Vec::new();
    for r in &rows {
        if let Some(f) = &r.failure {
            failures.push(format!("{}: {f}", r.id));
        }
        if let Some(f) = r.control_failure() {
            failures.push(format!("{}: {f}", r.id));
        }
        if r.not_run > 0 {
            failures.push(format!(
                "{}: {}/{} attempts could not run",
                r.id, r.not_run, r.attempts
            ));
        }
        let blocked = r.attempts - r.accepted - r.not_run;
        let blocked = if r.not_run > 0 {
            format!("{blocked} ({} not run)", r.not_run)
        } else {
            blocked.to_string()
        };
        if r.limitation {
            limitations.push(format!("{}: {}/{}", r.id, r.accepted, r.attempts));
        } else {
            accepted += r.accepted;
        }
        let acc = if r.limitation {
            format!("{} (known limitation)", r.accepted)
        } else {
            r.accepted.to_string()
        };
        let surv = match r.survived {
            None => "n/a".to_string(),
            Some(s) if s == r.attempts => "yes".to_string(),
            Some(s) => format!("NO ({s}/{})", r.attempts),
        };
        if !r.survival_ok() {
            failed_survival.push(r.id);
        }
        println!(
            "| {} | {} | {} | {} | {} | {} {} | {} | {} | {} |",
            r.name,
            r.attempts,
            blocked,
            acc,
            surv,
            r.defence,
            r.controls_cell(),
            r.baseline,
            r.libcoap,
            r.gnutls
        );
    }
    println!();
    println!(
        "- Accepted means the effect was observed: a receiver's application was handed a payload \
         the sender never sent, or one more often than it was sent; the server carried out a PUT \
         twice or one the client did not send, or one held back beyond its Echo lifetime; a \
         refused token was stored or granted access; a forged alert closed the session; a new \
         client could not connect within one retransmission timeout while a handshake flood \
         ran, or a replayed cookie-bearing ClientHello opened a handshake; the store returned a wrong or old value or half a transaction; cssf-server answered an anonymous session's PUT with 2.04, or a new \
         session with an old session's cached response or a PUT its identity may not do; an \
         address that never answered got notifications later than the RFC 7641 bound; a \
         legitimate client's observation, request or upload was refused after one address \
         took the tables; a handshake completed with the two sides disagreeing (identity, \
         suite, resumption, or records not getting through) or with the client talking to no \
         genuine server session; a client completed with, or went on past its ServerKeyExchange \
         (sent its ClientKeyExchange) with, an untrusted, swapped or wrongly signed server key; \
         the server resumed (or answered with an abbreviated ServerHello) a session it should \
         have refused, or answered a replayed abbreviated handshake with an abbreviated \
         ServerHello or completed it; the server sent a victim's records to, or moved its \
         session to, an address it does not own (another session moved onto a victim's address \
         counts), or a victim's session was closed or went unserved. Blocked attempts had none \
         of these effects; K not run: attempts that could not run (the row then fails), \
         neither blocked nor accepted. N (known limitation): accepted attempts of a row the lab declares a \
         known limitation, shown and not counted in the verdict or the exit status.\n\
         - Controls: each row's controls, the same observation with the defence off (or the \
         credential real), end its Defence cell as [controls: seen/attempts, ...]; the lab \
         fails a row whose control showed the effect in fewer than all its attempts, or, \
         marked partial (random flash tampering, a power cut at a random operation, random \
         duplication), in none.\n\
         - Survived: afterwards the same session answers a fresh request (downgrade: a new \
         handshake gets the strongest suite; floods: the session and a newly arriving client \
         work; store: it mounts and takes writes; cssf-server: a new legitimate session, or \
         the restarted one, is served; CoAP tables: the DTLS client is served).\n\
         - Plain CoAP: the same client, server and adversary without DTLS (tokens and store: no \
         equivalent).\n\
         - libcoap + OpenSSL, libcoap + GnuTLS: coap-server-openssl / coap-client-openssl and \
         coap-server-gnutls / coap-client-gnutls (DTLS 1.2 PSK, each build's default suites) \
         through a loopback UDP proxy that attacks the datagrams toward the server (bit flips and \
         truncation: every other attempt those toward the client); the effect is read from the \
         server's log of received requests, or from what the client prints (its log lines \
         left out). Voided: the run \
         proved nothing (the server did not start, or the client's request never reached it \
         although the attack leaves it intact); shown, not counted in N/M. Peer missing: that \
         libcoap build is not installed."
    );
    println!();
    eprintln!("ran in {:.1} s", started.elapsed().as_secs_f64());
    if !failed_survival.is_empty() {
        println!(
            "legitimate session did not survive: {}",
            failed_survival.join(", ")
        );
    }
    for f in &failures {
        println!("row not run as it should: {f}");
    }
    for l in &limitations {
        println!("known limitation, not counted: {l}");
    }
    println!("accepted against CSSF: {accepted}");
    if accepted == 0 && failed_survival.is_empty() && failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
