//! Attacks on the CoAP endpoint's tables of the real `cssf-server` over
//! loopback UDP, started as the lifecycle rows start it (the build beside
//! the lab, or `--server` / `CSSF_LAB_SERVER`), one fresh server per
//! attempt, without an AS key (plain CoAP may then use every resource)
//! and with `dev-1` provisioned for the legitimate DTLS client. A packet
//! with a spoofed source is emulated by sending it from the socket of the
//! address it names, which then never answers.
//!
//! - Observer reflection: 16 NON `GET /time` with Observe 0 (as many as
//!   the server has observer slots) from a victim address that never
//!   acknowledges nor resets. Accepted: the victim still gets
//!   notifications after the RFC 7641 §4.5 bound (`notify_con_every`
//!   one-second notifications, then MAX_TRANSMIT_WAIT of the first
//!   confirmable one, plus 10 s), or a DTLS client registering on `/time`
//!   afterwards gets no Observe (the victim's registrations hold the
//!   table). Control: an observer that registered before the victim and
//!   acknowledges every confirmable notification is still notified in
//!   the same late window. The attempts run side by side (each waits
//!   out the bound), in a thread beside the other rows.
//! - Table exhaustion: one address sends 520 `CON GET /actuators/led`
//!   (more than the server's 512-entry message-ID cache). Accepted: a
//!   second plain client's `GET /time`, or a DTLS client's, is not
//!   answered 2.05. Control: the flooding address itself was refused
//!   (5.03) at the limit it met.
//! - Block1 slot exhaustion: one address starts 16 `POST /echo` Block1
//!   uploads (as many as the server has upload slots) with different
//!   Request-Tags and never finishes them. Accepted: a DTLS client's
//!   two-block upload is refused. Control: with a second address doing
//!   the same (two addresses, each within its quota, fill every slot) a
//!   plain uploader's first block is refused; the quota does not protect
//!   it, so the lab sees the effect.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cssf_coap::endpoint::Config as CoapConfig;
use cssf_coap::{Block, Code, Message, MessageBuilder, MessageType, OptionNumber};
use cssf_dtls::RejectAll;

use crate::lifecycle::{
    not_started, psk_client, psk_spec, server_binary, socket, Res, Scratch, Server, Session,
    DEV1_ID, DEV1_KEY,
};
use crate::{Cmp, Opts, Row};

/// Observer, upload and pending-request slots of `cssf-server`'s CoAP
/// endpoint (`DeviceCoap`'s `N`).
const SLOTS: usize = 16;
/// Entries of its message-ID cache (`DeviceCoap`'s `D`).
const CACHE: usize = 512;
/// Requests of the flood: more than the cache holds, so that it meets a
/// limit whatever the quota.
const FLOOD: usize = CACHE + 8;
/// `cssf-server` notifies `/time` observers once a second.
const NOTIFY_PERIOD: Duration = Duration::from_secs(1);
/// Added to the RFC 7641 bound before a notification counts as late.
const MARGIN: Duration = Duration::from_secs(10);
/// How long the late window lasts.
const LATE_WINDOW: Duration = Duration::from_secs(10);
/// Block1 block size exponent of the uploads (64 bytes).
const SZX: u8 = 2;

/// Starts a server with `dev-1` provisioned, no AS key, and every right
/// public (plain CoAP included: a development device).
fn start(bin: &Path, dir: &Path) -> Res<Server> {
    let args = [
        "--psk".to_string(),
        psk_spec(DEV1_ID, &DEV1_KEY),
        "--public".into(),
        "*:ALL".into(),
    ];
    Server::start(bin, dir, &args, &args)
}

/// The RFC 7641 §4.5 bound for an observer that never acknowledges, with
/// the endpoint's default parameters (those of `cssf-server`): up to
/// `notify_con_every` notifications go non-confirmable, then the
/// confirmable one is retransmitted for up to MAX_TRANSMIT_WAIT.
fn observer_bound() -> Duration {
    let c = CoapConfig::default();
    NOTIFY_PERIOD
        .saturating_mul(c.notify_con_every)
        .saturating_add(c.max_transmit_wait())
}

/// A request: `build` adds options and payload after the token and
/// Uri-Path.
fn request<'a>(
    ty: MessageType,
    code: Code,
    mid: u16,
    token: &'a [u8],
    path: &'a str,
    build: impl FnOnce(&mut MessageBuilder<'a, 8>) -> Result<(), cssf_coap::Error>,
) -> Res<Vec<u8>> {
    let mut b = MessageBuilder::<8>::new(ty, code, mid);
    let mut out = [0u8; 1200];
    let n = b
        .token(token)
        .and_then(|b| b.uri_path(path))
        .and_then(|b| build(b).map(|()| b))
        .and_then(|b| b.emit(&mut out))
        .map_err(|e| format!("cannot build a request: {e}"))?;
    Ok(out.get(..n).unwrap_or(&[]).to_vec())
}

/// `GET /time` with Observe 0.
fn register(ty: MessageType, mid: u16, token: &[u8]) -> Res<Vec<u8>> {
    request(ty, Code::GET, mid, token, "time", |b| {
        b.observe(0).map(|_| ())
    })
}

/// A `POST /echo` Block1 block with a Request-Tag.
fn upload_block<'a>(
    mid: u16,
    token: &'a [u8],
    tag: &'a [u8],
    block: Block,
    data: &'a [u8],
) -> Res<Vec<u8>> {
    request(MessageType::Con, Code::POST, mid, token, "echo", |b| {
        b.block1(block)?
            .add_option(OptionNumber::REQUEST_TAG, tag)?
            .payload(data);
        Ok(())
    })
}

/// Sends a CON request from `sock` and waits for the answer with its
/// message ID (two tries, 1.5 s each). `Ok(None)`: no answer.
fn ask(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Res<Option<Vec<u8>>> {
    let mid = msg.get(2..4).unwrap_or(&[]).to_vec();
    let mut buf = [0u8; 1500];
    let _ = sock.set_read_timeout(Some(Duration::from_millis(300)));
    for _ in 0..2 {
        sock.send_to(msg, to).map_err(|e| format!("send: {e}"))?;
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            if let Ok(n) = sock.recv(&mut buf) {
                let got = buf.get(..n).unwrap_or(&[]);
                if got.get(2..4) == Some(&mid[..]) {
                    return Ok(Some(got.to_vec()));
                }
            }
        }
    }
    Ok(None)
}

/// The response code of a raw answer, or `None` for none or garbage.
fn code_of(answer: &Option<Vec<u8>>) -> Option<Code> {
    answer
        .as_deref()
        .and_then(|a| Message::parse(a).ok())
        .map(|m| m.code())
}

/// A DTLS session of `dev-1` from a fresh address; `f` runs in it.
fn with_dtls<T>(server: &Server, f: impl FnOnce(&mut Session<'_, RejectAll>) -> Res<T>) -> Res<T> {
    let sock = socket()?;
    let mut s = Session::<RejectAll>::new(&sock, psk_client(server.addr, DEV1_ID, &DEV1_KEY)?);
    s.handshake().map_err(|e| format!("DTLS client: {e}"))?;
    let r = f(&mut s);
    s.close();
    r
}

fn comparisons(r: &mut Row) {
    r.baseline = Cmp::Na("the attacks use plain CoAP; no separate baseline");
    r.libcoap = Cmp::NotRun("the lab drives only cssf-server here");
}

fn setup(o: &Opts, tag: &str) -> Res<(PathBuf, Scratch)> {
    Ok((server_binary(o)?, Scratch::new(tag)?))
}

/// What one attempt of a row saw, beyond accepted and survived.
#[derive(Default)]
struct Tally {
    not_run: u32,
    why: String,
    control: u32,
    effects: [u32; 2],
    /// Row-specific maxima for the note.
    max: [u64; 3],
}

impl Tally {
    fn failed(&mut self, why: String) {
        self.not_run += 1;
        self.why = why;
    }

    fn note(&self, attempts: u32) -> String {
        if self.not_run == 0 {
            String::new()
        } else {
            format!(
                "; {}/{attempts} attempts could not run: {}",
                self.not_run, self.why
            )
        }
    }

    fn failure(&self, attempts: u32) -> Option<String> {
        if self.not_run > 0 {
            Some(format!(
                "{}/{attempts} attempts could not run ({})",
                self.not_run, self.why
            ))
        } else if self.control < attempts {
            Some(format!(
                "the control showed the effect in {}/{attempts}",
                self.control
            ))
        } else {
            None
        }
    }
}

// --- Observer reflection ----------------------------------------------------

/// What one observer attempt saw.
#[derive(Default)]
struct ObserveSeen {
    /// Datagrams the victim got after the bound.
    late: u32,
    /// The DTLS client's registration was answered without Observe.
    refused: bool,
    /// The DTLS client got 2.05.
    served: bool,
    /// The acknowledging observer was notified after the bound.
    control_late: u32,
    /// Registrations of the victim the server took (answered with Observe).
    held: u64,
    /// Datagrams and bytes the victim got; bytes the registrations took.
    to_victim: u64,
    bytes_to_victim: u64,
    bytes_sent: u64,
}

/// An Empty ACK for a CON message, `None` for anything else.
fn ack_for(m: &[u8]) -> Option<[u8; 4]> {
    let (b0, hi, lo) = (m.first()?, m.get(2)?, m.get(3)?);
    (b0 & 0x30 == 0).then_some([0x60, 0, *hi, *lo])
}

fn observe_attempt(bin: &Path, dir: &Path, mid: u16) -> Res<ObserveSeen> {
    let server = start(bin, dir)?;
    let mut seen = ObserveSeen::default();
    // The control observer registers first and acknowledges.
    let control = socket()?;
    let reg = register(MessageType::Con, mid, b"ctl0")?;
    let answer = ask(&control, server.plain, &reg)?;
    let observing = answer
        .as_deref()
        .and_then(|a| Message::parse(a).ok())
        .is_some_and(|m| matches!(m.observe(), Ok(Some(_))));
    if !observing {
        return Err(format!(
            "the control observer was not registered ({:?})",
            code_of(&answer).map(|c| c.to_string())
        ));
    }
    // The victim's address registers every slot, NON, and never answers.
    let victim = socket()?;
    let mut tokens = Vec::new();
    for i in 0..SLOTS {
        let token = [b'v', i as u8, (mid >> 8) as u8, mid as u8];
        let msg = register(MessageType::Non, mid.wrapping_add(1 + i as u16), &token)?;
        victim
            .send_to(&msg, server.plain)
            .map_err(|e| format!("send: {e}"))?;
        seen.bytes_sent += msg.len() as u64;
        tokens.push(token);
    }
    let registered = Instant::now();
    let mut held = [false; SLOTS];
    // A DTLS client registers on /time too.
    let reg = register(MessageType::Con, mid.wrapping_add(0x100), b"dtls")?;
    let answer = with_dtls(&server, |s| s.request(&reg))?;
    let m = Message::parse(&answer).map_err(|e| format!("DTLS client's answer: {e}"))?;
    seen.served = m.code() == Code::CONTENT;
    seen.refused = !matches!(m.observe(), Ok(Some(_)));
    // Watch both addresses until the end of the late window.
    let late_from = registered + observer_bound() + MARGIN;
    let end = late_from + LATE_WINDOW;
    for s in [&victim, &control] {
        s.set_nonblocking(true)
            .map_err(|e| format!("socket: {e}"))?;
    }
    let mut buf = [0u8; 1500];
    while Instant::now() < end {
        let mut idle = true;
        while let Ok(n) = victim.recv(&mut buf) {
            idle = false;
            let got = buf.get(..n).unwrap_or(&[]);
            seen.to_victim += 1;
            seen.bytes_to_victim += n as u64;
            if Instant::now() >= late_from {
                seen.late += 1;
            }
            if let Ok(m) = Message::parse(got) {
                if let Some(i) = tokens.iter().position(|t| t[..] == *m.token()) {
                    if matches!(m.observe(), Ok(Some(_))) {
                        if let Some(h) = held.get_mut(i) {
                            *h = true;
                        }
                    }
                }
            }
        }
        while let Ok(n) = control.recv(&mut buf) {
            idle = false;
            let got = buf.get(..n).unwrap_or(&[]);
            if let Some(ack) = ack_for(got) {
                let _ = control.send_to(&ack, server.plain);
            }
            if Instant::now() >= late_from {
                seen.control_late += 1;
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    seen.held = held.iter().filter(|h| **h).count() as u64;
    Ok(seen)
}

/// Starts the observer row in a thread (its attempts wait out the RFC
/// 7641 bound, about two minutes, side by side); join it for the row.
pub fn spawn_observe(o: &Opts) -> JoinHandle<Row> {
    let o = o.clone();
    std::thread::spawn(move || observe_row(&o))
}

fn observe_row(o: &Opts) -> Row {
    let mut row = Row::new(
        "tables-observe",
        "Observer reflection: Observe registrations on every slot from a victim address that never answers",
    );
    comparisons(&mut row);
    let (bin, dir) = match setup(o, "tables-observe") {
        Ok(x) => x,
        Err(e) => {
            not_started(&mut row, e);
            return row;
        }
    };
    let results: Vec<Res<ObserveSeen>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..o.server_attempts)
            .map(|i| {
                let (bin, dir) = (&bin, &dir.0);
                let mid = (o.seed as u16).wrapping_add((i as u16).wrapping_mul(0x400));
                scope.spawn(move || observe_attempt(bin, dir, mid))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the attempt's thread panicked".into()))
            })
            .collect()
    });
    let mut t = Tally::default();
    for r in results {
        match r {
            Ok(s) => {
                row.attempt(s.late > 0 || s.refused, s.served);
                t.effects[0] += u32::from(s.late > 0);
                t.effects[1] += u32::from(s.refused);
                t.control += u32::from(s.control_late > 0);
                t.max[0] = t.max[0].max(s.held);
                t.max[1] = t.max[1].max(s.to_victim);
                if let Some(ratio) = s.bytes_to_victim.checked_div(s.bytes_sent) {
                    t.max[2] = t.max[2].max(ratio);
                }
            }
            Err(e) => {
                row.skipped();
                t.failed(e);
            }
        }
    }
    row.control(t.control, row.attempts, false);
    row.failure = t.failure(row.attempts);
    let bound = observer_bound().as_secs();
    row.defence = format!(
        "an observer that never acknowledges is removed within MAX_TRANSMIT_WAIT of its first \
         confirmable notification; per-address observation cap; a DTLS client's registration \
         displaces a plain one's (victim notified later than {bound} + {margin} s after \
         registering in {}/{n}, DTLS client's registration refused in {}/{n}; the victim's \
         address held up to {} observations and got up to {} datagrams, {}x the bytes of its \
         registrations, within the bound and not counted: the RFC 7641 bound allows it, the 3x \
         rule of the amplification rows is not applied here; control, an observer that \
         acknowledges: notified in the same late window in {}/{n}{})",
        t.effects[0],
        t.effects[1],
        t.max[0],
        t.max[1],
        t.max[2],
        t.control,
        t.note(row.attempts),
        margin = MARGIN.as_secs(),
        n = row.attempts,
    );
    row
}

// --- Table exhaustion and Block1 slots --------------------------------------

/// What one flood attempt saw.
struct FloodSeen {
    /// The flooder's requests answered 2.05 and 5.03.
    served: u64,
    busy: u64,
    /// A second plain client and a DTLS client got 2.05.
    plain_ok: bool,
    dtls_ok: bool,
}

fn flood_attempt(bin: &Path, dir: &Path, mid: u16) -> Res<FloodSeen> {
    let server = start(bin, dir)?;
    let flooder = socket()?;
    let _ = flooder.set_read_timeout(Some(Duration::from_millis(300)));
    let (mut served, mut busy) = (0u64, 0u64);
    let mut buf = [0u8; 1500];
    // In batches of 16, each batch answered before the next (no loss to a
    // full socket buffer).
    for batch in (0..FLOOD).step_by(16) {
        let mut waiting = 0;
        for i in batch..(batch + 16).min(FLOOD) {
            let token = (i as u32).to_be_bytes();
            let msg = request(
                MessageType::Con,
                Code::GET,
                mid.wrapping_add(i as u16),
                &token,
                "actuators/led",
                |_| Ok(()),
            )?;
            flooder
                .send_to(&msg, server.plain)
                .map_err(|e| format!("send: {e}"))?;
            waiting += 1;
        }
        while waiting > 0 {
            let Ok(n) = flooder.recv(&mut buf) else {
                break; // 300 ms without an answer
            };
            if let Ok(m) = Message::parse(buf.get(..n).unwrap_or(&[])) {
                waiting -= 1;
                served += u64::from(m.code() == Code::CONTENT);
                busy += u64::from(m.code() == Code::SERVICE_UNAVAILABLE);
            }
        }
    }
    let plain = socket()?;
    let get = request(
        MessageType::Con,
        Code::GET,
        mid.wrapping_add(0x8000),
        b"pl",
        "time",
        |_| Ok(()),
    )?;
    let plain_ok = code_of(&ask(&plain, server.plain, &get)?) == Some(Code::CONTENT);
    let get = request(
        MessageType::Con,
        Code::GET,
        mid.wrapping_add(0x8001),
        b"dt",
        "time",
        |_| Ok(()),
    )?;
    let answer = with_dtls(&server, |s| s.request(&get))?;
    let dtls_ok = Message::parse(&answer).is_ok_and(|m| m.code() == Code::CONTENT);
    Ok(FloodSeen {
        served,
        busy,
        plain_ok,
        dtls_ok,
    })
}

/// Sends the first blocks of `SLOTS` uploads from `sock`, each with its
/// own Request-Tag; how many the server took (2.31).
fn hold_slots(sock: &UdpSocket, to: SocketAddr, mid: u16, who: u8) -> Res<u64> {
    let block = Block::new(0, true, SZX).map_err(|e| format!("block: {e}"))?;
    let data = [who; 64];
    let mut held = 0;
    for i in 0..SLOTS {
        let tag = [who, i as u8];
        let msg = upload_block(mid.wrapping_add(i as u16), &tag, &tag, block, &data)?;
        held += u64::from(code_of(&ask(sock, to, &msg)?) == Some(Code::CONTINUE));
    }
    Ok(held)
}

/// What one Block1 attempt saw.
struct UploadSeen {
    /// Slots the first address held.
    held: u64,
    /// The DTLS client's upload went through (2.31 then 2.04 with its
    /// body).
    dtls_ok: bool,
    /// Control: the plain uploader's first block was refused.
    control_refused: bool,
}

fn block1_attempt(bin: &Path, dir: &Path, mid: u16) -> Res<UploadSeen> {
    let server = start(bin, dir)?;
    let first = socket()?;
    let held = hold_slots(&first, server.plain, mid, b'a')?;
    // A DTLS client uploads 128 bytes in two blocks.
    let body: Vec<u8> = (0..128u8).map(|i| b'0' + i % 10).collect();
    let (b0, b1) = (
        Block::new(0, true, SZX).map_err(|e| format!("block: {e}"))?,
        Block::new(1, false, SZX).map_err(|e| format!("block: {e}"))?,
    );
    let (d0, d1) = body.split_at(64);
    let m0 = upload_block(mid.wrapping_add(0x100), b"u0", b"L", b0, d0)?;
    let m1 = upload_block(mid.wrapping_add(0x101), b"u1", b"L", b1, d1)?;
    let dtls_ok = with_dtls(&server, |s| {
        let a0 = s.request(&m0)?;
        if Message::parse(&a0).map(|m| m.code()) != Ok(Code::CONTINUE) {
            return Ok(false);
        }
        let a1 = s.request(&m1)?;
        Ok(Message::parse(&a1).is_ok_and(|m| {
            m.code() == Code::CHANGED && !m.payload().is_empty() && body.starts_with(m.payload())
        }))
    })?;
    // Control: a second address fills what the first left; then a plain
    // uploader (no quota protects it from two addresses) is refused.
    let second = socket()?;
    hold_slots(&second, server.plain, mid.wrapping_add(0x200), b'b')?;
    let plain = socket()?;
    let m = upload_block(mid.wrapping_add(0x300), b"p0", b"P", b0, d0)?;
    let control_refused =
        code_of(&ask(&plain, server.plain, &m)?) == Some(Code::SERVICE_UNAVAILABLE);
    Ok(UploadSeen {
        held,
        dtls_ok,
        control_refused,
    })
}

/// The table-exhaustion and Block1 rows (the observer row runs apart:
/// [`spawn_observe`]).
pub fn run(o: &Opts) -> Vec<Row> {
    let mut rows = [
        Row::new(
            "tables-cache",
            "CoAP table exhaustion: one address floods the message-ID cache (520 CON GET)",
        ),
        Row::new(
            "tables-block1",
            "Block1 slot exhaustion: partial uploads from one address on every upload slot",
        ),
    ];
    for r in &mut rows {
        comparisons(r);
    }
    let (bin, dir) = match setup(o, "tables") {
        Ok(x) => x,
        Err(e) => {
            for r in &mut rows {
                not_started(r, e.clone());
            }
            return rows.into();
        }
    };
    let [cache_row, block1_row] = &mut rows;
    run_flood(o, &bin, &dir.0, cache_row);
    run_block1(o, &bin, &dir.0, block1_row);
    rows.into()
}

fn run_flood(o: &Opts, bin: &Path, dir: &Path, row: &mut Row) {
    let mut t = Tally::default();
    let mut rng = cssf_netsim::SimRng::new(o.seed ^ 0x7AB1);
    for _ in 0..o.server_attempts {
        match flood_attempt(bin, dir, rng.next_u64_raw() as u16) {
            Ok(s) => {
                row.attempt(!s.plain_ok || !s.dtls_ok, s.dtls_ok);
                t.effects[0] += u32::from(!s.plain_ok);
                t.effects[1] += u32::from(!s.dtls_ok);
                t.control += u32::from(s.busy > 0);
                t.max[0] = t.max[0].max(s.served);
            }
            Err(e) => {
                row.skipped();
                t.failed(e);
            }
        }
    }
    row.control(t.control, row.attempts, false);
    row.failure = t.failure(row.attempts);
    row.defence = format!(
        "message-ID cache entries only for requests the application sees, a per-address quota \
         (half of the {CACHE} entries), unverified peers' entries evicted first (second plain \
         client not served in {}/{n}, DTLS client not served in {}/{n}; control: the flooding \
         address got 5.03 at the limit it met in {}/{n}, after up to {} of its {FLOOD} requests \
         were served{})",
        t.effects[0],
        t.effects[1],
        t.control,
        t.max[0],
        t.note(row.attempts),
        n = row.attempts,
    );
}

fn run_block1(o: &Opts, bin: &Path, dir: &Path, row: &mut Row) {
    let mut t = Tally::default();
    let mut rng = cssf_netsim::SimRng::new(o.seed ^ 0xB10C);
    for _ in 0..o.server_attempts {
        match block1_attempt(bin, dir, rng.next_u64_raw() as u16) {
            Ok(s) => {
                row.attempt(!s.dtls_ok, s.dtls_ok);
                t.effects[0] += u32::from(!s.dtls_ok);
                t.control += u32::from(s.control_refused);
                t.max[0] = t.max[0].max(s.held);
            }
            Err(e) => {
                row.skipped();
                t.failed(e);
            }
        }
    }
    row.control(t.control, row.attempts, false);
    row.failure = t.failure(row.attempts);
    row.defence = format!(
        "per-address upload quota (half of the {SLOTS} slots); a DTLS client's first block \
         displaces a plain peer's upload; refused first blocks keep no slot (DTLS client's upload \
         refused in {}/{n}; the flooding address held up to {} slots; control: with a second \
         address on the slots left, a plain uploader was refused 5.03 in {}/{n}{})",
        t.effects[0],
        t.max[0],
        t.control,
        t.note(row.attempts),
        n = row.attempts,
    );
}
