//! Support code shared by the firmware binaries: semihosting output without
//! `core::fmt`, a deterministic demo RNG, stack painting, the panic handler,
//! and the constants both sides of the demo agree on.
//!
//! Output goes through Arm semihosting (QEMU prints it on the host's stdout)
//! and the exit status is reported with `SYS_EXIT`, so a script can tell
//! success from failure.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::time::Duration;

use cortex_m_semihosting::{debug, hio};
use rand_core::{CryptoRng, RngCore};

pub mod slip;
pub mod transcript;

/// The CoAP-over-DTLS client's PSK identity: the `kid` of the token's PoP key.
pub const KID: &[u8] = b"fw-client";
/// The PoP key (and so the DTLS PSK) the Authorization Server put in the token.
pub const POP_KEY: [u8; 16] = *b"demo PoP key 16B";
/// Seed of the DTLS client's RNG (both binaries: the replayed transcript
/// depends on it).
pub const CLIENT_DTLS_SEED: u64 = 0x0c11_e27d_71a5_0001;
/// Seed of the CoAP client's RNG (message IDs and tokens).
pub const CLIENT_COAP_SEED: u64 = 0x0c11_e27c_0a90_0002;
/// The server's address as the client sees it.
pub const SERVER_ADDR: u8 = 1;
/// The client's address as the server sees it.
pub const CLIENT_ADDR: u8 = 2;
/// The (virtual, monotonic) time at which the demo runs: the crates are
/// sans-IO, so time is an input; nothing here waits.
pub const NOW: Duration = Duration::from_secs(1);

/// CoAP endpoint sizes for a small device: 2 exchanges, 4 deduplication
/// entries, 256-byte messages, no Block1 upload buffer.
pub type Coap = cssf_coap::endpoint::Endpoint<u8, DemoRng, 2, 4, 256, 0>;

/// Bytes of each of the small PSK clients' two DTLS application queues
/// (`Client::unstarted`): one record of a 256-byte CoAP message (285
/// bytes with AES-128-CCM-8) fits the send queue, its plaintext the
/// receive queue.
pub const CLIENT_QUEUE: usize = 320;

/// The small PSK clients' DTLS client: application queues of
/// [`CLIENT_QUEUE`] bytes.
pub type SmallClient<R> = cssf_dtls::Client<u8, R, cssf_dtls::RejectAll, CLIENT_QUEUE>;

/// Prints the DTLS client's size: the whole object, the same while
/// connected and mid-handshake, and its parts.
pub fn print_client_sizes<R>() {
    use cssf_dtls::footprint;
    let whole = footprint::client::<u8, R, CLIENT_QUEUE>();
    put(b"size_of: dtls client connected ");
    put_num(whole);
    put(b" B, mid-handshake ");
    put_num(whole);
    put(b" B (the whole Client<_, _, _, ");
    put_num(CLIENT_QUEUE);
    put(b">: handshake state ");
    put_num(footprint::HANDSHAKE);
    put(b" B, established record state ");
    put_num(footprint::ESTABLISHED_SESSION);
    put(b" B, two application queues ");
    put_num(2 * footprint::client_queue::<CLIENT_QUEUE>());
    put(b" B; with the default ");
    put_num(cssf_dtls::APP_QUEUE_CAPACITY);
    put(b"-byte queues ");
    put_num(footprint::client::<u8, R, { cssf_dtls::APP_QUEUE_CAPACITY }>());
    line(&[b" B)"]);
}

/// The client's DTLS configuration: TLS_PSK_WITH_AES_128_CCM_8 only (RFC 7925).
pub fn client_config() -> cssf_dtls::Config {
    let mut cfg = cssf_dtls::Config::default();
    cfg.suites.clear();
    let _ = cfg.suites.push(cssf_dtls::CipherSuite::PskWithAes128Ccm8);
    cfg
}

/// A small deterministic generator (SplitMix64) for the emulator demo.
///
/// **Not an entropy source.** It is seeded from a constant, so every run
/// produces the same "random" values; it implements [`CryptoRng`] only so the
/// crates accept it. A real device must use its hardware TRNG (or a DRBG
/// seeded from one).
#[derive(Debug, Clone)]
pub struct DemoRng(u64);

impl DemoRng {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        DemoRng(seed)
    }
}

impl RngCore for DemoRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(v.get(..n).unwrap_or(&[]));
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Demo only: see the type's documentation.
impl CryptoRng for DemoRng {}

/// Writes bytes to the host's stdout (semihosting). Errors are ignored: if
/// the host is gone there is nobody to tell.
pub fn put(s: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(s);
    }
}

/// Writes `n` in decimal, without `core::fmt` (which would add kilobytes).
pub fn put_num(n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    put(buf.get(i..).unwrap_or(&[]));
}

/// Writes bytes as lowercase hex.
pub fn put_hex(data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in data {
        let pair = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
        put(&pair);
    }
}

/// Writes `parts` in order, then a newline.
pub fn line(parts: &[&[u8]]) {
    for p in parts {
        put(p);
    }
    put(b"\n");
}

/// Prints `FAIL: <what>` and exits with a failure status.
pub fn fail(what: &[u8]) -> ! {
    line(&[b"FAIL: ", what]);
    exit(false)
}

/// Exits QEMU through semihosting: status 0 on success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Not reached under QEMU; on hardware without a debugger, halt.
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Stack painting: fill the unused stack with a pattern at the start of
/// `main`, find the lowest overwritten word at the end.
pub mod stack {
    const PATTERN: u32 = 0xCAFE_F00D;
    /// Bytes left untouched below the painter's own stack pointer.
    const MARGIN: usize = 64;

    extern "C" {
        // cortex-m-rt's linker script: the initial stack pointer (top of
        // RAM) and the end of the statics (.bss/.uninit), where the stack
        // may grow down to.
        static _stack_start: u32;
        static __sheap: u32;
    }

    fn bounds() -> (usize, usize) {
        // Only the addresses of the linker symbols are taken (no read).
        (
            core::ptr::addr_of!(__sheap) as usize,
            core::ptr::addr_of!(_stack_start) as usize,
        )
    }

    /// Paints the stack region from the end of the statics up to just
    /// below the current stack pointer. Call first thing in `main`.
    #[inline(never)]
    pub fn paint() {
        let (low, _) = bounds();
        let sp = cortex_m::register::msp::read() as usize;
        let mut p = (low + 3) & !3;
        while p + 4 <= sp.saturating_sub(MARGIN) {
            // SAFETY: [low, sp - MARGIN) is RAM between the statics and the
            // live stack; nothing owns it (there is no heap), and this loop
            // keeps its state in registers.
            unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
            p += 4;
        }
    }

    /// The deepest stack use so far, in bytes from the top of the stack
    /// (includes the reset handler's and `main`'s frames).
    pub fn peak() -> usize {
        let (low, top) = bounds();
        let mut p = (low + 3) & !3;
        while p < top {
            // SAFETY: reading RAM words in the stack region.
            let v = unsafe { core::ptr::read_volatile(p as *const u32) };
            if v != PATTERN {
                break;
            }
            p += 4;
        }
        top - p
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The message is not printed: formatting it would link core::fmt into
    // every build and distort the footprint.
    fail(b"panic")
}
