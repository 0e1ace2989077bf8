//! The board under the link: the millisecond clock (SysTick) and UART0 of
//! QEMU's mps2-an386, with polled register access. All of the image's
//! `unsafe` code is here.
//!
//! UART0 is an Arm CMSDK APB UART at `0x4000_4000` (AN386 application note,
//! QEMU `hw/arm/mps2.c`): DATA at +0x00, STATE at +0x04 (bit 0 TX full,
//! bit 1 RX full), CTRL at +0x08 (bit 0 TX enable, bit 1 RX enable, bit 3
//! RX interrupt enable), INTSTATUS/INTCLEAR at +0x0C, BAUDDIV at +0x10. Its
//! receive interrupt (IRQ 0) only wakes the core from `wfi`: the handler
//! clears it and the main loop reads the byte.

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::exception;

/// The AN386 system clock, which SysTick counts with `SystClkSource::Core`.
const SYSCLK_HZ: u32 = 25_000_000;

/// Milliseconds since [`init`], counted by the SysTick exception (wraps
/// after 49 days; a device that runs longer keeps a 64-bit count).
static MILLIS: AtomicU32 = AtomicU32::new(0);

const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTCLEAR: usize = 0x0C;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_INT_EN: u32 = 1 << 3;
/// TX, RX, TX overrun and RX overrun interrupt bits.
const INT_ALL: u32 = 0b1111;

/// UART0's receive interrupt on the AN386 (external interrupt 0).
#[derive(Clone, Copy)]
struct Uart0Rx;

// SAFETY: 0 is a valid external interrupt number on this part.
unsafe impl InterruptNumber for Uart0Rx {
    fn number(self) -> u16 {
        0
    }
}

fn read(offset: usize) -> u32 {
    // SAFETY: a 32-bit aligned register of UART0, which this module alone
    // accesses; reading it has no side effect.
    unsafe { core::ptr::read_volatile((UART0 + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; the writes this module makes only configure
    // UART0, send a byte or clear its interrupt.
    unsafe { core::ptr::write_volatile((UART0 + offset) as *mut u32, value) }
}

/// Starts the 1 ms SysTick and UART0 (115200 baud on hardware; QEMU
/// ignores the rate). Returns `false` if the core peripherals were taken.
pub fn init() -> bool {
    let Some(mut p) = cortex_m::Peripherals::take() else {
        return false;
    };
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(SYSCLK_HZ / 1000 - 1);
    p.SYST.clear_current();
    p.SYST.enable_interrupt();
    p.SYST.enable_counter();
    write(BAUDDIV, SYSCLK_HZ / 115_200);
    write(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN);
    write(INTCLEAR, INT_ALL);
    // SAFETY: the handler below only clears UART0's interrupt status; no
    // critical section relies on this interrupt being masked.
    unsafe { NVIC::unmask(Uart0Rx) };
    true
}

/// Time since [`init`], from the SysTick count.
pub fn now() -> Duration {
    Duration::from_millis(u64::from(MILLIS.load(Ordering::Relaxed)))
}

/// The next received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    (read(STATE) & STATE_RX_FULL != 0).then(|| read(DATA) as u8)
}

/// Sends one byte, waiting while the transmit register is full.
pub fn write_byte(b: u8) {
    while read(STATE) & STATE_TX_FULL != 0 {}
    write(DATA, u32::from(b));
}

/// Sleeps until the next interrupt: the next millisecond tick or byte.
pub fn wait() {
    cortex_m::asm::wfi();
}

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Every external interrupt lands here; only UART0's is enabled. Clearing
/// it is all there is to do: it served to end `wfi`.
#[exception]
unsafe fn DefaultHandler(_irqn: i16) {
    write(INTCLEAR, INT_ALL);
}
