//! Instruction counts of the device's operations on a Cortex-M4, measured
//! under QEMU with `-icount shift=0`: virtual time then advances exactly
//! 1 ns per instruction executed, so SysTick (processor clock source, which
//! QEMU's mps2-an386 drives at the 25 MHz SYSCLK from virtual time) counts
//! one tick per 40 instructions. A calibration loop of known length checks
//! that ratio first; the image fails if it does not hold (for example when
//! run without `-icount shift=0`).
//!
//! Each operation runs several times; only the calls into the measured side
//! are timed, each call on its own, and the measurement's own overhead (an
//! empty timed region, averaged over many runs) is subtracted per call. One
//! line per operation: instructions per operation and an estimate of the
//! time at 64 MHz with 1.2 cycles per instruction (an estimate: QEMU counts
//! instructions, not cycles, and models no wait states or flash).
//!
//! With the firmware's `p256-cm4` feature it also runs raw P-256 operations
//! with RustCrypto's `p256` (what the CSSF crates use) and with `p256-cm4`
//! (Cortex-M4 assembly) on the same inputs, side by side.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{entry, exception};
use cssf_auth::aif::NoTextScopes;
use cssf_auth::issuer::{mac0, sign1, ClaimsSet, CnfOut, ScopeOut};
use cssf_auth::{Aif, Algorithm, AuthzInfo, Bytes, CoseKey, KeyEntry, PopKey};
use cssf_dtls::{
    CipherSuite, Client, Config as DtlsConfig, Endpoint as DtlsEndpoint, Event as DtlsEvent,
    PinnedKeys, PskStore, SigningKey, StaticPsk, TrustStore,
};
use cssf_firmware::{
    client_config, fail, line, put, put_num, stack, DemoRng, CLIENT_ADDR, CLIENT_DTLS_SEED, KID,
    NOW, POP_KEY, SERVER_ADDR,
};
use cssf_store::flash::RamFlash;
use cssf_store::{Config as StoreConfig, RamCounter, RootKey, Store};
use rand_core::CryptoRngCore;

/// SysTick ticks at SYSCLK (25 MHz) on the AN386; at 1 ns of virtual time
/// per instruction that is one tick per 40 instructions.
const INSTRUCTIONS_PER_TICK: u64 = 40;
/// Runs of each operation.
const REPS: u32 = 4;
/// Runs of the record and store operations (cheap ones: more runs).
const REPS_SMALL: u32 = 16;
/// Empty timed regions averaged for the overhead.
const OVERHEAD_RUNS: u32 = 1000;

/// The Authorization Server's keys: HMAC (shared with the resource server)
/// and an ES256 signing key (the resource server knows its public key).
const AS_HMAC_KEY: [u8; 32] = *b"AS-RS shared HMAC key, demo only";
const AS_SIGNING_KEY: [u8; 32] = *b"AS P-256 signing key, demo only!";
const SERVER_SK: [u8; 32] = *b"server P-256 private key, demo!!";
const CLIENT_SK: [u8; 32] = *b"client P-256 private key, demo!!";
const ROOT_KEY: [u8; 32] = *b"store root key for the demo only";
/// The PSK server's one identity and key (the handshake is the device's,
/// without the token lookup).
static PSKS: [(&[u8], &[u8]); 1] = [(KID, &POP_KEY)];

type Rs<'k> = AuthzInfo<'k, [KeyEntry], NoTextScopes, 2, 4, 4>;
type Flash = RamFlash<{ 2 * 4096 }, 4096, 4, 1>;

/// The SysTick clock: a free-running 24-bit down counter at SYSCLK, its
/// wraps counted by the exception.
mod clock {
    use super::*;

    static WRAPS: AtomicU32 = AtomicU32::new(0);
    const RELOAD: u32 = 0x00FF_FFFF;

    /// Starts SysTick from the processor clock with the full 24-bit range.
    pub(super) fn start() -> bool {
        let Some(mut p) = cortex_m::Peripherals::take() else {
            return false;
        };
        p.SYST.set_clock_source(SystClkSource::Core);
        p.SYST.set_reload(RELOAD);
        p.SYST.clear_current();
        p.SYST.enable_interrupt();
        p.SYST.enable_counter();
        true
    }

    /// Whether the counter has left its cleared state (it reads 0 until
    /// its first reload).
    pub(super) fn running() -> bool {
        (0..1_000_000).any(|_| SYST::get_current() != 0)
    }

    /// Ticks since [`start`] (not inlined, so every timed region pays the
    /// same overhead).
    #[inline(never)]
    pub(super) fn ticks() -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::SeqCst);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::SeqCst) == wraps {
                return u64::from(wraps) * u64::from(RELOAD + 1) + u64::from(RELOAD - current);
            }
        }
    }

    #[exception]
    fn SysTick() {
        WRAPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Timer 0 of the AN386, a CMSDK APB timer (32-bit down counter at PCLK,
/// which is SYSCLK on this board): only to check that it follows virtual
/// time at the same rate as SysTick.
mod apb_timer {
    const BASE: usize = 0x4000_0000;
    const CTRL: usize = 0x00;
    const VALUE: usize = 0x04;
    const RELOAD: usize = 0x08;

    fn write(offset: usize, value: u32) {
        // SAFETY: a register of the CMSDK APB timer 0 (a device region);
        // nothing else uses the timer.
        unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
    }

    /// Starts it from the top of its range, free running, no interrupt.
    pub(super) fn start() {
        write(RELOAD, u32::MAX);
        write(VALUE, u32::MAX);
        write(CTRL, 1);
    }

    /// The counter (counts down).
    #[inline(never)]
    pub(super) fn value() -> u32 {
        // SAFETY: as in `write`.
        unsafe { core::ptr::read_volatile((BASE + VALUE) as *const u32) }
    }
}

/// Ticks spent in timed calls, and how many calls.
#[derive(Clone, Copy, Default)]
struct Meter {
    ticks: u64,
    calls: u64,
}

impl Meter {
    /// Runs `f`, adding its ticks.
    #[inline(always)]
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t0 = clock::ticks();
        let r = f();
        let t1 = clock::ticks();
        if t1 < t0 {
            fail(b"clock: went backwards");
        }
        self.ticks += t1 - t0;
        self.calls += 1;
        r
    }
}

/// The measurement: overhead per timed call in thousandths of an
/// instruction.
struct Bench {
    overhead_milli: u64,
}

impl Bench {
    /// Instructions per run of an operation measured by `m` over `runs`.
    fn per_op(&self, m: &Meter, runs: u32) -> u64 {
        let milli =
            (m.ticks * INSTRUCTIONS_PER_TICK * 1000).saturating_sub(m.calls * self.overhead_milli);
        milli / (1000 * u64::from(runs.max(1)))
    }

    /// Prints `icount: NAME: N instructions, ~X.YY ms at 64 MHz ...`;
    /// fails on a zero count.
    fn report(&self, name: &[u8], m: &Meter, runs: u32) {
        let n = self.per_op(m, runs);
        if n == 0 {
            put(b"icount: ");
            put(name);
            fail(b": zero instructions");
        }
        // n * 1.2 cycles / 64 MHz in hundredths of a millisecond.
        let hundredths = (n * 3 + 800) / 1600;
        put(b"icount: ");
        put(name);
        put(b": ");
        put_num(n as usize);
        put(b" instructions, ~");
        put_num((hundredths / 100) as usize);
        put(b".");
        if hundredths % 100 < 10 {
            put(b"0");
        }
        put_num((hundredths % 100) as usize);
        put(b" ms at 64 MHz (estimate: 1.2 cycles per instruction), mean of ");
        put_num(runs as usize);
        line(&[b" runs"]);
    }
}

/// `n` iterations of `subs; bne`: 2n instructions plus a constant.
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; no memory, no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Checks that SysTick counts one tick per 40 instructions, with two loops
/// whose lengths differ by exactly 2,000,000 instructions.
fn calibrate() {
    const SHORT: u32 = 1000;
    const LONG: u32 = SHORT + 1_000_000;
    let (mut short, mut long) = (Meter::default(), Meter::default());
    for _ in 0..4 {
        short.time(|| spin(SHORT));
        long.time(|| spin(LONG));
    }
    let diff_ticks = long.ticks.saturating_sub(short.ticks);
    let instructions = 4 * 2 * u64::from(LONG - SHORT);
    put(b"calibration: 4 x 2000000 instructions (subs + bne, 1000000 iterations, less a 1000-iteration run) took ");
    put_num(diff_ticks as usize);
    put(b" SysTick ticks: ");
    // Instructions per tick in hundredths.
    let per_tick = (instructions * 100).checked_div(diff_ticks).unwrap_or(0);
    put_num((per_tick / 100) as usize);
    put(b".");
    if per_tick % 100 < 10 {
        put(b"0");
    }
    put_num((per_tick % 100) as usize);
    line(&[b" instructions per tick (25 MHz SYSCLK, 1 ns per instruction: 40)"]);
    // Each of the 8 timed regions may be off by one tick.
    if (diff_ticks * INSTRUCTIONS_PER_TICK).abs_diff(instructions) > 8 * INSTRUCTIONS_PER_TICK {
        fail(b"calibration: SysTick does not count 1 tick per 40 instructions; run QEMU with -icount shift=0");
    }
    // The CMSDK APB timer 0 over the same loops, as a cross-check.
    let (mut short, mut long) = (0u64, 0u64);
    for _ in 0..4 {
        let t0 = apb_timer::value();
        spin(SHORT);
        let t1 = apb_timer::value();
        spin(LONG);
        let t2 = apb_timer::value();
        short += u64::from(t0.wrapping_sub(t1));
        long += u64::from(t1.wrapping_sub(t2));
    }
    let apb_ticks = long.saturating_sub(short);
    put(b"calibration: the same on the CMSDK APB timer 0 took ");
    put_num(apb_ticks as usize);
    line(&[b" ticks"]);
    if (apb_ticks * INSTRUCTIONS_PER_TICK).abs_diff(instructions) > 8 * INSTRUCTIONS_PER_TICK {
        fail(b"calibration: the APB timer does not count 1 tick per 40 instructions");
    }
    // A region longer than the 24-bit counter's period (2^24 ticks, about
    // 671 million instructions): the wraps must be counted.
    const WRAPPING: u32 = 400_000_000;
    let (mut short, mut long) = (Meter::default(), Meter::default());
    short.time(|| spin(SHORT));
    long.time(|| spin(WRAPPING + SHORT));
    let ticks = long.ticks.saturating_sub(short.ticks);
    let instructions = 2 * u64::from(WRAPPING);
    put(b"calibration: 800000000 instructions (across a counter wrap) took ");
    put_num(ticks as usize);
    line(&[b" ticks"]);
    if (ticks * INSTRUCTIONS_PER_TICK).abs_diff(instructions) > 2 * INSTRUCTIONS_PER_TICK {
        fail(b"calibration: SysTick wraps are not counted");
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    line(&[b"cssf-firmware icount: instructions per operation, QEMU mps2-an386 -icount shift=0"]);
    line(&[b"rng: deterministic demo generator seeded from a constant, NOT an entropy source"]);
    if !clock::start() {
        fail(b"systick");
    }
    apb_timer::start();
    // Under -icount, QEMU arms the counter's first period only when the
    // core next leaves its execution loop, which semihosting output does.
    line(&[b"clock: SysTick, processor clock source (SYSCLK), full 24-bit range, wraps counted"]);
    if !clock::running() {
        fail(b"clock: SysTick does not count");
    }
    calibrate();
    let mut empty = Meter::default();
    for _ in 0..OVERHEAD_RUNS {
        empty.time(|| ());
    }
    let bench = Bench {
        overhead_milli: empty.ticks * INSTRUCTIONS_PER_TICK * 1000 / u64::from(OVERHEAD_RUNS),
    };
    put(b"overhead: ");
    put_num((bench.overhead_milli / 1000) as usize);
    put(b".");
    put_num((bench.overhead_milli % 1000 / 100) as usize);
    line(&[b" instructions per timed call (empty region, mean of 1000), subtracted below"]);

    psk(&bench);
    ecdhe(&bench, &cssf_dtls::provider::rustcrypto::PROVIDER, b"");
    #[cfg(feature = "p256-cm4")]
    ecdhe(
        &bench,
        &cssf_provider::cm4::PROVIDER,
        b", crypto cm4::PROVIDER (p256-cm4 ECDH, RustCrypto ECDSA)",
    );
    tokens(&bench);
    store(&bench);
    #[cfg(feature = "p256-cm4")]
    p256_ops::compare(&bench);

    put(b"stack: peak ");
    put_num(stack::peak());
    line(&[b" bytes"]);
    line(&[b"result: all steps passed"]);
    cssf_firmware::exit(true)
}

/// A fault fails the run instead of hanging it, with the faulting address
/// and the Configurable Fault Status Register (bit 16: undefined
/// instruction).
#[exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    const CFSR: usize = 0xE000_ED28;
    // SAFETY: a read of a System Control Block register.
    let cfsr = unsafe { core::ptr::read_volatile(CFSR as *const u32) };
    put(b"hard fault at pc 0x");
    cssf_firmware::put_hex(&frame.pc().to_be_bytes());
    put(b", CFSR 0x");
    cssf_firmware::put_hex(&cfsr.to_be_bytes());
    line(&[]);
    fail(b"hard fault")
}

/// A DTLS side the in-memory link drives: the client or the server endpoint.
trait Side {
    fn input(&mut self, from: u8, d: &mut [u8]) -> bool;
    fn output(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ()>;
    fn event(&mut self) -> Option<DtlsEvent<u8>>;
}

impl<R: CryptoRngCore, T: TrustStore<u8>> Side for Client<u8, R, T> {
    fn input(&mut self, from: u8, d: &mut [u8]) -> bool {
        self.handle_datagram(NOW, from, d).is_ok()
    }
    fn output(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ()> {
        self.poll_transmit(NOW, buf)
            .map(|t| t.map(|t| t.len))
            .map_err(|_| ())
    }
    fn event(&mut self) -> Option<DtlsEvent<u8>> {
        self.poll_event()
    }
}

impl<
        P: PskStore<u8>,
        R: CryptoRngCore,
        const N: usize,
        T: TrustStore<u8>,
        const S: usize,
        const H: usize,
    > Side for DtlsEndpoint<u8, P, R, N, T, S, H>
{
    fn input(&mut self, from: u8, d: &mut [u8]) -> bool {
        self.handle_datagram(NOW, from, d).is_ok()
    }
    fn output(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ()> {
        self.poll_transmit(NOW, buf)
            .map(|t| t.map(|t| t.len))
            .map_err(|_| ())
    }
    fn event(&mut self) -> Option<DtlsEvent<u8>> {
        self.poll_event()
    }
}

/// Runs a handshake between `client` and `server` in memory, timing every
/// call into each side with its meter. Returns the suite the client
/// reports.
fn handshake(
    client: &mut impl Side,
    server: &mut impl Side,
    cm: &mut Meter,
    sm: &mut Meter,
) -> Option<CipherSuite> {
    let mut buf = [0u8; 1200];
    let mut suite = None;
    for _ in 0..16 {
        let mut moved = false;
        loop {
            match cm.time(|| client.output(&mut buf)) {
                Ok(Some(n)) => {
                    let d = buf.get_mut(..n).unwrap_or(&mut []);
                    if !sm.time(|| server.input(CLIENT_ADDR, d)) {
                        fail(b"handshake: server refused");
                    }
                    moved = true;
                }
                Ok(None) => break,
                Err(()) => fail(b"handshake: client poll_transmit"),
            }
        }
        while let Some(ev) = sm.time(|| server.event()) {
            if let DtlsEvent::Closed { .. } = ev {
                fail(b"handshake: server closed");
            }
        }
        loop {
            match sm.time(|| server.output(&mut buf)) {
                Ok(Some(n)) => {
                    let d = buf.get_mut(..n).unwrap_or(&mut []);
                    if !cm.time(|| client.input(SERVER_ADDR, d)) {
                        fail(b"handshake: client refused");
                    }
                    moved = true;
                }
                Ok(None) => break,
                Err(()) => fail(b"handshake: server poll_transmit"),
            }
        }
        while let Some(ev) = cm.time(|| client.event()) {
            match ev {
                DtlsEvent::Connected { suite: s, .. } => suite = Some(s),
                DtlsEvent::Closed { .. } => fail(b"handshake: client closed"),
                _ => {}
            }
        }
        if !moved {
            break;
        }
    }
    suite
}

type PskServer = DtlsEndpoint<u8, StaticPsk<'static>, DemoRng, 1, cssf_dtls::RejectAll, 4, 1>;

/// PSK handshakes (TLS_PSK_WITH_AES_128_CCM_8), then 64-byte records both
/// ways over the last session.
fn psk(bench: &Bench) {
    let (mut cm, mut sm) = (Meter::default(), Meter::default());
    let mut last = None;
    for i in 0..REPS {
        // The endpoint is set up once per device and serves many
        // handshakes: its construction is not timed. The client's is: it
        // builds the ClientHello.
        let Ok(mut server) = PskServer::new(
            DtlsConfig::default(),
            StaticPsk::new(&PSKS),
            DemoRng::new(0x5e7e_7000_0000_0003 + u64::from(i)),
            NOW,
        ) else {
            fail(b"psk: server config")
        };
        let Ok(mut client) = cm.time(|| {
            Client::new(
                client_config(),
                KID,
                &POP_KEY,
                SERVER_ADDR,
                DemoRng::new(CLIENT_DTLS_SEED + u64::from(i)),
                NOW,
            )
        }) else {
            fail(b"psk: client config")
        };
        if handshake(&mut client, &mut server, &mut cm, &mut sm)
            != Some(CipherSuite::PskWithAes128Ccm8)
        {
            fail(b"psk: handshake did not complete with TLS_PSK_WITH_AES_128_CCM_8");
        }
        last = Some((client, server));
    }
    bench.report(
        b"dtls psk handshake (TLS_PSK_WITH_AES_128_CCM_8), client",
        &cm,
        REPS,
    );
    bench.report(
        b"dtls psk handshake (TLS_PSK_WITH_AES_128_CCM_8), server",
        &sm,
        REPS,
    );
    let Some((mut client, mut server)) = last else {
        fail(b"psk: no session")
    };
    records(bench, &mut client, &mut server);
}

/// 64-byte application records over an AES_128_CCM_8 session: sealed by
/// `send` + `poll_transmit`, opened by `handle_datagram` + `recv`, both
/// ways.
fn records<R: CryptoRngCore>(bench: &Bench, client: &mut Client<u8, R>, server: &mut PskServer) {
    let Some(h) = server.session_handle(&CLIENT_ADDR) else {
        fail(b"records: no server session")
    };
    let mut payload = [0u8; 64];
    let mut buf = [0u8; 256];
    let mut out = [0u8; 128];
    let mut m = [Meter::default(); 4];
    for i in 0..REPS_SMALL {
        payload.fill(i as u8);
        // Client seals, server opens.
        let [seal_c, open_s, seal_s, open_c] = &mut m;
        let n = seal_c.time(|| {
            client
                .send(NOW, &payload)
                .ok()
                .and_then(|_| client.poll_transmit(NOW, &mut buf).ok().flatten())
                .map(|t| t.len)
        });
        let Some(n) = n else {
            fail(b"records: client seal")
        };
        let d = buf.get_mut(..n).unwrap_or(&mut []);
        let got = open_s.time(|| {
            server
                .handle_datagram(NOW, CLIENT_ADDR, d)
                .ok()
                .and_then(|_| server.recv(h, &mut out).ok().flatten())
        });
        if got != Some(64) || out.get(..64) != Some(&payload[..]) {
            fail(b"records: server open");
        }
        while server.poll_event().is_some() {}
        // Server seals, client opens.
        let n = seal_s.time(|| {
            server
                .send(NOW, h, &payload)
                .ok()
                .and_then(|_| server.poll_transmit(NOW, &mut buf).ok().flatten())
                .map(|t| t.len)
        });
        let Some(n) = n else {
            fail(b"records: server seal")
        };
        let d = buf.get_mut(..n).unwrap_or(&mut []);
        let got = open_c.time(|| {
            client
                .handle_datagram(NOW, SERVER_ADDR, d)
                .ok()
                .and_then(|_| client.recv(&mut out).ok().flatten())
        });
        if got != Some(64) || out.get(..64) != Some(&payload[..]) {
            fail(b"records: client open");
        }
        while client.poll_event().is_some() {}
    }
    let [seal_c, open_s, seal_s, open_c] = &m;
    bench.report(
        b"64-byte record seal (AES_128_CCM_8), client: send + poll_transmit",
        seal_c,
        REPS_SMALL,
    );
    bench.report(
        b"64-byte record open (AES_128_CCM_8), server: handle_datagram + recv",
        open_s,
        REPS_SMALL,
    );
    bench.report(
        b"64-byte record seal (AES_128_CCM_8), server: send + poll_transmit",
        seal_s,
        REPS_SMALL,
    );
    bench.report(
        b"64-byte record open (AES_128_CCM_8), client: handle_datagram + recv",
        open_c,
        REPS_SMALL,
    );
}

/// ECDHE-ECDSA handshakes with raw public keys, both sides authenticated
/// by pinned P-256 keys (as in the device image), both sides with the
/// crypto provider `crypto` (`label` appended to the report lines; empty
/// for the default, RustCrypto).
fn ecdhe(bench: &Bench, crypto: &'static cssf_dtls::provider::CryptoProvider, label: &[u8]) {
    let keys = (
        SigningKey::from_slice(&SERVER_SK),
        SigningKey::from_slice(&CLIENT_SK),
    );
    let (Ok(server_sk), Ok(client_sk)) = keys else {
        fail(b"ecdhe: keys")
    };
    let server_pub = [p256::PublicKey::from(server_sk.verifying_key())];
    let client_pub = [p256::PublicKey::from(client_sk.verifying_key())];
    let (mut cm, mut sm) = (Meter::default(), Meter::default());
    for i in 0..REPS {
        let mut server_cfg = DtlsConfig::default();
        server_cfg.require_client_auth = true;
        server_cfg.crypto = crypto;
        let Ok(mut server) = DtlsEndpoint::<u8, _, _, 1, _, 4, 1>::with_raw_public_key(
            server_cfg,
            StaticPsk::new(&[]),
            server_sk.clone(),
            PinnedKeys::new(&client_pub),
            DemoRng::new(0x5e7e_ecd5_0000_0005 + u64::from(i)),
            NOW,
        ) else {
            fail(b"ecdhe: server config")
        };
        let mut client_cfg = DtlsConfig::default();
        client_cfg.suites.clear();
        let _ = client_cfg
            .suites
            .push(CipherSuite::EcdheEcdsaWithAes128Ccm8);
        client_cfg.crypto = crypto;
        let Ok(mut client) = cm.time(|| {
            Client::with_raw_public_key(
                client_cfg,
                Some(client_sk.clone()),
                PinnedKeys::new(&server_pub),
                SERVER_ADDR,
                DemoRng::new(0x0c11_ecd5_0000_0006 + u64::from(i)),
                NOW,
            )
        }) else {
            fail(b"ecdhe: client config")
        };
        if handshake(&mut client, &mut server, &mut cm, &mut sm)
            != Some(CipherSuite::EcdheEcdsaWithAes128Ccm8)
        {
            fail(b"ecdhe: handshake did not complete with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8");
        }
        if server.session_handle(&CLIENT_ADDR).is_none() {
            fail(b"ecdhe: no server session");
        }
    }
    for (side, m) in [(&b", client"[..], &cm), (&b", server"[..], &sm)] {
        let mut name = heapless::Vec::<u8, 200>::new();
        let _ = name.extend_from_slice(
            b"dtls ecdhe-ecdsa handshake (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, raw public keys, mutual)",
        );
        let _ = name.extend_from_slice(label);
        let _ = name.extend_from_slice(side);
        bench.report(&name, m, REPS);
    }
}

/// Mints the device's CWT (audience rs1, scope GET /sensors/temp, a
/// symmetric PoP key) with `sign` (COSE_Sign1 or COSE_Mac0).
fn mint(
    out: &mut [u8],
    sign: impl FnOnce(&[u8], &mut [u8]) -> Result<usize, cssf_auth::Error>,
) -> Option<usize> {
    let pop = PopKey::Symmetric {
        kid: Some(Bytes::from_slice(KID).ok()?),
        k: Bytes::from_slice(&POP_KEY).ok()?,
    };
    let mut aif = [0u8; 32];
    let n = Aif::emit(&[("/sensors/temp", 1)], &mut aif).ok()?;
    let claims = ClaimsSet {
        aud: Some("rs1"),
        exi: Some(3600),
        cti: Some(&[0, 0, 0, 1]),
        scope: Some(ScopeOut::AifBytes(aif.get(..n)?)),
        cnf: Some(CnfOut::Key(&pop)),
        ..Default::default()
    };
    let mut payload = [0u8; 96];
    let plen = claims.emit(&mut payload).ok()?;
    sign(payload.get(..plen)?, out).ok()
}

/// `AuthzInfo::post` of `token` into a fresh resource server (verify the
/// signature or MAC, check the claims, store the token), `REPS` times.
fn post(verify_key: &CoseKey, token: &[u8]) -> Meter {
    let keys = [KeyEntry::new(verify_key.clone())];
    let mut m = Meter::default();
    let mut err = [0u8; 8];
    for _ in 0..REPS {
        let mut rs = Rs::new(cssf_auth::Config::new("rs1"), &keys[..]);
        let mut t = [0u8; 200];
        let Some(t) = t.get_mut(..token.len()) else {
            fail(b"token: too long")
        };
        t.copy_from_slice(token);
        let code = m.time(|| rs.post(NOW, None, t, &mut err).code);
        if code != cssf_auth::authz_info::CREATED {
            fail(b"token: refused");
        }
    }
    m
}

/// ES256 (COSE_Sign1) and HMAC 256/64 (COSE_Mac0) tokens at /authz-info.
fn tokens(bench: &Bench) {
    let Ok(sk) = p256::ecdsa::SigningKey::from_slice(&AS_SIGNING_KEY) else {
        fail(b"token: es256 key")
    };
    let vk = CoseKey::Es256(*sk.verifying_key());
    let signing = CoseKey::Es256Signing(sk);
    let mut token = [0u8; 200];
    let Some(n) = mint(&mut token, |p, out| sign1(&signing, None, p, out)) else {
        fail(b"token: mint es256")
    };
    let m = post(&vk, token.get(..n).unwrap_or(&[]));
    bench.report(
        b"ace token verification, ES256 (COSE_Sign1 CWT): AuthzInfo::post",
        &m,
        REPS,
    );

    let Ok(hmac) = CoseKey::hmac(Algorithm::Hmac256_64, &AS_HMAC_KEY) else {
        fail(b"token: hmac key")
    };
    let Some(n) = mint(&mut token, |p, out| mac0(&hmac, None, p, out)) else {
        fail(b"token: mint mac0")
    };
    let m = post(&hmac, token.get(..n).unwrap_or(&[]));
    bench.report(
        b"ace token verification, HMAC 256/64 (COSE_Mac0 CWT): AuthzInfo::post",
        &m,
        REPS,
    );
}

/// Set and get of a 32-byte value in a freshly mounted encrypted store on
/// a RAM flash (the mount is not timed).
fn store(bench: &Bench) {
    const KEY: &[u8] = b"psk/fw-client";
    const VALUE: [u8; 32] = *b"a 32-byte value for the store!!!";
    let root = RootKey(ROOT_KEY);
    let (mut set, mut get) = (Meter::default(), Meter::default());
    let mut salt_rng = DemoRng::new(0x5a17_0000_0000_0007);
    for _ in 0..REPS_SMALL {
        let mut counter = RamCounter::default();
        let Ok(mut store) = Store::<_, _, 4, 2>::mount(
            Flash::new(),
            &root,
            &mut counter,
            StoreConfig::new(),
            &mut salt_rng,
        ) else {
            fail(b"store: mount")
        };
        if set.time(|| store.set(KEY, &VALUE)).is_err() {
            fail(b"store: set");
        }
        let mut buf = [0u8; 32];
        match get.time(|| store.get(KEY, &mut buf)) {
            Ok(32) if buf == VALUE => {}
            _ => fail(b"store: get"),
        }
    }
    bench.report(b"store set, 32-byte value (RamFlash)", &set, REPS_SMALL);
    bench.report(b"store get, 32-byte value (RamFlash)", &get, REPS_SMALL);
}

/// Raw P-256 operations on the same inputs with RustCrypto's `p256` (what
/// the CSSF crates use) and with `p256-cm4` (Cortex-M4 assembly), each
/// result checked against the other's.
#[cfg(feature = "p256-cm4")]
mod p256_ops {
    use super::{fail, line, Bench, Meter, CLIENT_SK, REPS, SERVER_SK};
    use cssf_provider::cm4::limbs;
    use ecdsa::hazmat::SignPrimitive;
    use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::elliptic_curve::PrimeField;
    use p256::{NonZeroScalar, PublicKey, Scalar};

    /// A per-signature nonce.
    const K: [u8; 32] = *b"per-signature nonce k, demo only";
    /// A message digest (SHA-256 size) to sign.
    const Z: [u8; 32] = *b"a SHA-256 digest to be signed!!!";

    fn report(bench: &Bench, op: &[u8], rc: &Meter, cm: &Meter) {
        let mut name = heapless::Vec::<u8, 160>::new();
        let _ = name.extend_from_slice(b"p256 raw, RustCrypto p256: ");
        let _ = name.extend_from_slice(op);
        bench.report(&name, rc, REPS);
        name.clear();
        let _ = name.extend_from_slice(b"p256 raw, p256-cm4: ");
        let _ = name.extend_from_slice(op);
        bench.report(&name, cm, REPS);
    }

    pub(super) fn compare(bench: &Bench) {
        let (Ok(d), Ok(peer)) = (
            NonZeroScalar::try_from(&CLIENT_SK[..]),
            NonZeroScalar::try_from(&SERVER_SK[..]),
        ) else {
            fail(b"p256: keys")
        };
        let mut peer_sec1 = [0u8; 65];
        peer_sec1.copy_from_slice(
            PublicKey::from_secret_scalar(&peer)
                .to_encoded_point(false)
                .as_bytes(),
        );
        let d_limbs = limbs(&CLIENT_SK);

        // Key generation: d x G, encoded uncompressed.
        let (mut rc, mut cm) = (Meter::default(), Meter::default());
        let (mut pub_rc, mut pub_cm) = ([0u8; 65], [0u8; 65]);
        for _ in 0..REPS {
            rc.time(|| {
                let p = PublicKey::from_secret_scalar(&d).to_encoded_point(false);
                pub_rc.copy_from_slice(p.as_bytes());
            });
            let ok = cm.time(|| {
                let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
                let ok = p256_cm4::keygen(&mut x, &mut y, &d_limbs);
                p256_cm4::point_to_octet_string_uncompressed(&mut pub_cm, &x, &y);
                ok
            });
            if !ok || pub_rc != pub_cm {
                fail(b"p256: public keys differ");
            }
        }
        report(bench, b"key generation (d x G, SEC1 encoding)", &rc, &cm);

        // ECDH: decode and check the peer's point, x of d x P.
        let (mut rc, mut cm) = (Meter::default(), Meter::default());
        let (mut z_rc, mut z_cm) = ([0u8; 32], [0u8; 32]);
        for _ in 0..REPS {
            let ok = rc.time(|| {
                let Ok(p) = PublicKey::from_sec1_bytes(&peer_sec1) else {
                    return false;
                };
                let shared = p256::ecdh::diffie_hellman(d, p.as_affine());
                z_rc.copy_from_slice(shared.raw_secret_bytes());
                true
            });
            let ok = ok
                && cm.time(|| {
                    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
                    p256_cm4::octet_string_to_point(&mut x, &mut y, &peer_sec1)
                        && p256_cm4::ecdh_calc_shared_secret(&mut z_cm, &d_limbs, &x, &y)
                });
            if !ok || z_rc != z_cm {
                fail(b"p256: ECDH shared secrets differ");
            }
        }
        report(
            bench,
            b"ECDH (decode the peer's point, shared secret)",
            &rc,
            &cm,
        );

        // ECDSA with p256-cm4 is not run: its 288-bit multiplier (under
        // P256_mul_mod_n, which signing and verifying use) has a 32-bit LDM
        // of a single register, UNPREDICTABLE in ARMv7-M; QEMU treats it as
        // undefined (UsageFault). Key generation and ECDH do not reach it.
        line(&[b"note: p256 raw, p256-cm4: ECDSA sign and verify not run: p256-cm4 0.4.0's mul288x288 has `ldm.w r4, {r6}` (a 32-bit LDM of one register, UNPREDICTABLE in ARMv7-M), which QEMU treats as undefined (UsageFault); keygen and ECDH do not reach it"]);

        // ECDSA sign of a digest with a given nonce (the work p256-cm4's
        // `sign` does).
        let Some(k) = Option::<Scalar>::from(Scalar::from_repr(K.into())) else {
            fail(b"p256: nonce")
        };
        let mut rc = Meter::default();
        let mut sig_rc = [0u8; 64];
        for _ in 0..REPS {
            let ok = rc.time(|| match d.as_ref().try_sign_prehashed(k, &Z.into()) {
                Ok((sig, _)) => {
                    sig_rc.copy_from_slice(&sig.to_bytes());
                    true
                }
                Err(_) => false,
            });
            if !ok {
                fail(b"p256: sign");
            }
        }
        bench.report(
            b"p256 raw, RustCrypto p256: ECDSA sign (digest, given nonce)",
            &rc,
            REPS,
        );

        // What cssf-dtls calls: the nonce derived by RFC 6979 (HMAC-SHA-256).
        let key = SigningKey::from(d);
        let mut rfc = Meter::default();
        for _ in 0..REPS {
            let sig: Result<Signature, _> = rfc.time(|| key.sign_prehash(&Z));
            if sig.is_err() {
                fail(b"p256: sign_prehash");
            }
        }
        bench.report(
            b"p256 raw, RustCrypto p256: ECDSA sign (digest, RFC 6979 nonce: SigningKey::sign_prehash, as cssf-dtls)",
            &rfc,
            REPS,
        );

        // ECDSA verify: decode the signer's point, verify the digest's
        // signature.
        let Ok(sig) = Signature::from_slice(&sig_rc) else {
            fail(b"p256: signature")
        };
        let mut rc = Meter::default();
        for _ in 0..REPS {
            let ok = rc.time(|| {
                VerifyingKey::from_sec1_bytes(&pub_rc)
                    .is_ok_and(|vk| vk.verify_prehash(&Z, &sig).is_ok())
            });
            if !ok {
                fail(b"p256: a valid signature was refused");
            }
        }
        bench.report(
            b"p256 raw, RustCrypto p256: ECDSA verify (decode the signer's point, verify a digest's signature)",
            &rc,
            REPS,
        );
    }
}
