//! Observe (RFC 7641): the client's §3.4 freshness rule for notifications.

use core::time::Duration;

/// 2^23: half the 24-bit Observe sequence space.
const HALF: u32 = 1 << 23;

/// How long after which a notification is fresh whatever its number (§3.4).
pub const OBSERVE_REORDER_WINDOW: Duration = Duration::from_secs(128);

/// RFC 7641 §3.4: whether a notification with sequence number `v2` received at
/// `t2` is newer than the one with `v1` received at `t1`.
///
/// ```
/// use cssf_coap::endpoint::notification_is_fresh;
/// use core::time::Duration;
/// let t = Duration::from_secs(10);
/// assert!(notification_is_fresh(5, t, 6, t));
/// assert!(!notification_is_fresh(6, t, 5, t));
/// assert!(notification_is_fresh(0xff_fff0, t, 3, t)); // wrapped around
/// assert!(notification_is_fresh(6, t, 5, t + Duration::from_secs(129)));
/// ```
pub fn notification_is_fresh(v1: u32, t1: Duration, v2: u32, t2: Duration) -> bool {
    let v1 = v1 & 0x00ff_ffff;
    let v2 = v2 & 0x00ff_ffff;
    (v1 < v2 && v2 - v1 < HALF)
        || (v1 > v2 && v1 - v2 > HALF)
        || t2 > t1.saturating_add(OBSERVE_REORDER_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7641_3_4() {
        let t = Duration::ZERO;
        assert!(!notification_is_fresh(7, t, 7, t));
        assert!(notification_is_fresh(0, t, HALF - 1, t));
        assert!(!notification_is_fresh(0, t, HALF, t));
        assert!(!notification_is_fresh(0, t, HALF + 1, t));
        assert!(notification_is_fresh(HALF + 2, t, 0, t));
        assert!(!notification_is_fresh(HALF, t, 0, t));
        assert!(!notification_is_fresh(9, t, 8, Duration::from_secs(128)));
        assert!(notification_is_fresh(
            9,
            t,
            8,
            Duration::from_millis(128_001)
        ));
    }
}
