//! Sequence numbers of `exi` tokens (RFC 9200 §5.10.3).
//!
//! An `exi` ("expires in") lifetime counts from the moment the RS receives the
//! token, so an old token posted again would live again. RFC 9200 §5.10.3
//! closes that: a token with `exi` carries a `cti` built from a Sequence
//! Number the AS increments for every `exi` token it issues to this RS, and
//! the RS keeps the highest Sequence Number of an expired `exi` token it has
//! seen, treating every token with a lower (or the same) number as expired.
//!
//! [`ExiTracker`] keeps that number per issuer (`iss`, or the single AS when
//! tokens carry no `iss`), in `A` fixed slots, and the Sequence Numbers of
//! up to `L` live `exi` tokens so that they count as expired once their
//! deadline passes. Everything is bounded:
//!
//! - a new issuer when all `A` slots are taken is refused
//!   ([`Error::ExiStateFull`]);
//! - when all `L` live slots are taken, the live token with the earliest
//!   deadline is retired early: its number counts as expired (the token itself
//!   stays usable in the token store; only tokens with lower or equal numbers
//!   that were not posted yet are refused, as the RFC accepts for tokens of
//!   unequal lifetimes).
//!
//! Restart: the tokens an RS holds in RAM are lost on a restart, so every
//! number it has seen must then count as expired, or a replayed `exi` token
//! would get a fresh lifetime. [`ExiTracker::persistent`] gives, per issuer,
//! the highest number seen (expired or live) for the caller to keep in
//! persistent storage, and [`ExiTracker::restore`] loads it after the
//! restart.
//!
//! The `cti` layout is `prefix ‖ sequence number` ([`CtiFormat`]): the
//! prefix (e.g. an RS identifier the AS puts in front) must match, the rest
//! is the number, as a big-endian unsigned integer of 1 to 8 bytes or as
//! ASCII decimal digits.

use core::time::Duration;

use sha2::{Digest, Sha256};

use crate::Error;

/// How the Sequence Number is written after the prefix in a `cti`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeqEncoding {
    /// A big-endian unsigned integer of 1 to 8 bytes.
    #[default]
    BigEndian,
    /// ASCII decimal digits (1 to 19 of them).
    Decimal,
}

/// The layout of the `cti` of `exi` tokens: `prefix ‖ sequence number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtiFormat<'a> {
    /// Bytes the AS puts in front of the Sequence Number (may be empty).
    pub prefix: &'a [u8],
    /// How the Sequence Number is written.
    pub encoding: SeqEncoding,
}

impl CtiFormat<'_> {
    /// The Sequence Number in `cti`; [`Error::Malformed`] when the prefix
    /// does not match or the rest is not a number in this encoding.
    ///
    /// ```
    /// use cssf_auth::exi::{CtiFormat, SeqEncoding};
    /// let f = CtiFormat { prefix: b"rs1", encoding: SeqEncoding::Decimal };
    /// assert_eq!(f.sequence_number(b"rs142"), Ok(42));
    /// assert!(f.sequence_number(b"rs2-42").is_err());
    /// ```
    pub fn sequence_number(&self, cti: &[u8]) -> Result<u64, Error> {
        let rest = cti.strip_prefix(self.prefix).ok_or(Error::Malformed)?;
        match self.encoding {
            SeqEncoding::BigEndian => {
                if rest.is_empty() || rest.len() > 8 {
                    return Err(Error::Malformed);
                }
                Ok(rest.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
            }
            SeqEncoding::Decimal => {
                if rest.is_empty() || rest.len() > 19 {
                    return Err(Error::Malformed);
                }
                rest.iter().try_fold(0u64, |n, b| {
                    if b.is_ascii_digit() {
                        Ok(n * 10 + u64::from(b - b'0'))
                    } else {
                        Err(Error::Malformed)
                    }
                })
            }
        }
    }
}

/// An issuer's identity as stored: the first 16 bytes of SHA-256 of `iss`
/// (of the empty string for tokens without `iss`).
pub type IssuerId = [u8; 16];

/// The issuer id of `iss` (see [`IssuerId`]).
pub fn issuer_id(iss: Option<&str>) -> IssuerId {
    let h: [u8; 32] = Sha256::digest(iss.unwrap_or("").as_bytes()).into();
    let mut out = [0u8; 16];
    out.copy_from_slice(h.get(..16).unwrap_or(&[0; 16]));
    out
}

/// One issuer's persistent state: the highest Sequence Number to treat as
/// expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExiWatermark {
    /// The issuer ([`issuer_id`]).
    pub issuer: IssuerId,
    /// Tokens from this issuer with a Sequence Number at or below this are expired.
    pub expired_up_to: u64,
}

#[derive(Debug, Clone, Copy)]
struct Issuer {
    id: IssuerId,
    expired_up_to: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    issuer: IssuerId,
    seq: u64,
    deadline: Duration,
}

/// Per-issuer Sequence Numbers of `exi` tokens (see the module docs): `A`
/// issuers, `L` live tokens.
#[derive(Debug, Clone)]
pub struct ExiTracker<const A: usize, const L: usize> {
    issuers: [Option<Issuer>; A],
    live: [Option<Live>; L],
}

impl<const A: usize, const L: usize> Default for ExiTracker<A, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const A: usize, const L: usize> ExiTracker<A, L> {
    /// An empty tracker (first start: nothing seen yet).
    pub const fn new() -> Self {
        Self {
            issuers: [None; A],
            live: [None; L],
        }
    }

    fn issuer_mut(&mut self, id: &IssuerId) -> Option<&mut Issuer> {
        self.issuers.iter_mut().flatten().find(|i| i.id == *id)
    }

    fn bump(&mut self, id: &IssuerId, seq: u64) {
        if let Some(i) = self.issuer_mut(id) {
            i.expired_up_to = Some(i.expired_up_to.map_or(seq, |e| e.max(seq)));
        }
    }

    /// Moves the numbers of live tokens whose deadline has passed at `now`
    /// into their issuer's expired watermark.
    pub fn expire(&mut self, now: Duration) {
        for idx in 0..L {
            let done = match self.live.get(idx).copied().flatten() {
                Some(l) if now >= l.deadline => l,
                _ => continue,
            };
            if let Some(slot) = self.live.get_mut(idx) {
                *slot = None;
            }
            self.bump(&done.issuer, done.seq);
        }
    }

    /// Checks a received `exi` token's Sequence Number `seq` from `issuer` at
    /// `now`: [`Error::Expired`] when it is at or below the highest expired
    /// number of that issuer, [`Error::Replay`] when a token with that number
    /// is live (posting it again must not restart its lifetime).
    pub fn check(&mut self, now: Duration, issuer: &IssuerId, seq: u64) -> Result<(), Error> {
        self.expire(now);
        if let Some(i) = self.issuer_mut(issuer) {
            if matches!(i.expired_up_to, Some(e) if seq <= e) {
                return Err(Error::Expired);
            }
        }
        if self
            .live
            .iter()
            .flatten()
            .any(|l| l.issuer == *issuer && l.seq == seq)
        {
            return Err(Error::Replay);
        }
        Ok(())
    }

    /// Whether a token from `issuer` can be recorded (its issuer is known or
    /// there is a free issuer slot).
    pub fn has_room(&self, issuer: &IssuerId) -> bool {
        self.issuers.iter().any(|i| match i {
            Some(i) => i.id == *issuer,
            None => true,
        })
    }

    /// Records an accepted `exi` token (after [`Self::check`]): its number
    /// becomes expired at `deadline`.
    pub fn record(&mut self, issuer: &IssuerId, seq: u64, deadline: Duration) -> Result<(), Error> {
        if self.issuer_mut(issuer).is_none() {
            let free = self
                .issuers
                .iter_mut()
                .find(|i| i.is_none())
                .ok_or(Error::ExiStateFull)?;
            *free = Some(Issuer {
                id: *issuer,
                expired_up_to: None,
            });
        }
        if L == 0 {
            // No live slots: the number is expired as soon as it is used.
            self.bump(issuer, seq);
            return Ok(());
        }
        if self.live.iter().all(Option::is_some) {
            // Retire the live token with the earliest deadline.
            let earliest = self
                .live
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.map(|l| (k, l)))
                .min_by_key(|(_, l)| l.deadline);
            if let Some((k, l)) = earliest {
                if let Some(slot) = self.live.get_mut(k) {
                    *slot = None;
                }
                self.bump(&l.issuer, l.seq);
            }
        }
        if let Some(slot) = self.live.iter_mut().find(|l| l.is_none()) {
            *slot = Some(Live {
                issuer: *issuer,
                seq,
                deadline,
            });
        }
        Ok(())
    }

    /// The earliest deadline of a live `exi` token.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.live.iter().flatten().map(|l| l.deadline).min()
    }

    /// What to keep across a restart, per issuer: the highest number seen,
    /// live tokens included (they are lost with the RAM).
    pub fn persistent(&self) -> impl Iterator<Item = ExiWatermark> + '_ {
        self.issuers.iter().flatten().filter_map(move |i| {
            let live = self
                .live
                .iter()
                .flatten()
                .filter(|l| l.issuer == i.id)
                .map(|l| l.seq)
                .max();
            let top = match (i.expired_up_to, live) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            top.map(|expired_up_to| ExiWatermark {
                issuer: i.id,
                expired_up_to,
            })
        })
    }

    /// Loads a watermark saved by [`Self::persistent`] before a restart.
    pub fn restore(&mut self, w: ExiWatermark) -> Result<(), Error> {
        if let Some(i) = self.issuer_mut(&w.issuer) {
            i.expired_up_to = Some(
                i.expired_up_to
                    .map_or(w.expired_up_to, |e| e.max(w.expired_up_to)),
            );
            return Ok(());
        }
        let free = self
            .issuers
            .iter_mut()
            .find(|i| i.is_none())
            .ok_or(Error::ExiStateFull)?;
        *free = Some(Issuer {
            id: w.issuer,
            expired_up_to: Some(w.expired_up_to),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn cti_formats() {
        let be = CtiFormat::default();
        assert_eq!(be.sequence_number(&[0x01, 0x00]), Ok(256));
        assert_eq!(be.sequence_number(&[]), Err(Error::Malformed));
        assert_eq!(be.sequence_number(&[1; 9]), Err(Error::Malformed));
        let dec = CtiFormat {
            prefix: b"rs1",
            encoding: SeqEncoding::Decimal,
        };
        assert_eq!(dec.sequence_number(b"rs10"), Ok(0));
        assert_eq!(dec.sequence_number(b"rs1"), Err(Error::Malformed));
        assert_eq!(dec.sequence_number(b"rs1x"), Err(Error::Malformed));
        assert_eq!(dec.sequence_number(b"rs2-1"), Err(Error::Malformed));
        assert_eq!(
            dec.sequence_number(b"rs199999999999999999999"),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn lower_or_equal_than_expired_is_refused_per_issuer() {
        let a = issuer_id(Some("as-a"));
        let b = issuer_id(Some("as-b"));
        let mut t: ExiTracker<2, 4> = ExiTracker::new();
        t.check(S(0), &a, 5).unwrap();
        t.record(&a, 5, S(10)).unwrap();
        // live: the same number again is a replay, a lower one still fine
        assert_eq!(t.check(S(1), &a, 5), Err(Error::Replay));
        assert_eq!(t.check(S(1), &a, 4), Ok(()));
        // after the deadline, 5 and everything below are expired
        assert_eq!(t.check(S(10), &a, 5), Err(Error::Expired));
        assert_eq!(t.check(S(10), &a, 3), Err(Error::Expired));
        assert_eq!(t.check(S(10), &a, 6), Ok(()));
        // another issuer has its own numbers
        assert_eq!(t.check(S(10), &b, 1), Ok(()));
        t.record(&b, 1, S(20)).unwrap();
        // a third issuer does not fit
        let c = issuer_id(None);
        assert!(!t.has_room(&c));
        assert_eq!(t.record(&c, 1, S(20)), Err(Error::ExiStateFull));
    }

    #[test]
    fn full_live_table_retires_earliest() {
        let a = issuer_id(None);
        let mut t: ExiTracker<1, 2> = ExiTracker::new();
        t.record(&a, 1, S(100)).unwrap();
        t.record(&a, 2, S(50)).unwrap();
        t.record(&a, 3, S(200)).unwrap(); // retires 2 (deadline 50)
        assert_eq!(t.check(S(0), &a, 2), Err(Error::Expired));
        assert_eq!(t.check(S(0), &a, 1), Err(Error::Expired));
        assert_eq!(t.check(S(0), &a, 3), Err(Error::Replay));
        assert_eq!(t.next_deadline(), Some(S(100)));
    }

    #[test]
    fn restart_keeps_everything_seen() {
        let a = issuer_id(Some("as"));
        let mut t: ExiTracker<2, 4> = ExiTracker::new();
        t.record(&a, 7, S(10)).unwrap();
        t.record(&a, 9, S(100)).unwrap();
        t.expire(S(20));
        let saved: std::vec::Vec<_> = t.persistent().collect();
        assert_eq!(
            saved,
            [ExiWatermark {
                issuer: a,
                expired_up_to: 9
            }]
        );
        let mut after: ExiTracker<2, 4> = ExiTracker::new();
        for w in saved {
            after.restore(w).unwrap();
        }
        // the live token 9 was lost with the RAM: posting it again is refused
        assert_eq!(after.check(S(0), &a, 9), Err(Error::Expired));
        assert_eq!(after.check(S(0), &a, 10), Ok(()));
    }
}
