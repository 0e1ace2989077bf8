//! The bounded token store (RFC 9200 §5.10.1): fixed-size records in a
//! const-generic array, keyed by the PoP key's kid. A token for a kid
//! already stored replaces it only when it is newer ([`Issued`]): a later
//! `iat`, or a higher `exi` Sequence Number of the same issuer; an older or
//! unordered one is refused ([`Error::Superseded`]), so a replaced token
//! cannot be posted again to win back a wider scope, and a token for
//! another key under a live token's kid is refused ([`Error::KidConflict`]).
//! When full, an expired token is evicted, else the oldest one nothing has
//! used yet; otherwise the new token is refused ([`Error::StoreFull`]). A
//! bounded replay cache remembers hashes of accepted `cti`s until their
//! tokens expire.

use core::time::Duration;

use sha2::{Digest, Sha256};

use crate::aif::{Aif, Method, ScopeMapper};
use crate::bytes::Bytes;
use crate::cwt::{Lifetime, Scope};
use crate::exi::IssuerId;
use crate::pop::{Kid, PopKey};
use crate::Error;

/// Largest scope (AIF CBOR or text) kept in a record.
pub const MAX_SCOPE_LEN: usize = 192;

/// Why a request was denied (RFC 9200 §5.10.2).
#[non_exhaustive]
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No stored token for the kid (4.01 with AS Request Creation Hints).
    NoToken,
    /// The token expired (4.01).
    Expired,
    /// The path is not covered by the scope (4.03).
    PathNotInScope,
    /// The path is covered but not the method (4.05).
    MethodNotAllowed,
}

impl DenyReason {
    /// The CoAP response code: 4.01, 4.03 or 4.05.
    pub fn code(&self) -> u8 {
        match self {
            DenyReason::NoToken | DenyReason::Expired => 0x81,
            DenyReason::PathNotInScope => 0x83,
            DenyReason::MethodNotAllowed => 0x85,
        }
    }
}

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, for this reason.
    Deny(DenyReason),
}

/// A stored scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredScope {
    /// AIF CBOR array.
    Aif(Bytes<MAX_SCOPE_LEN>),
    /// Text scope.
    Text(Bytes<MAX_SCOPE_LEN>),
}

impl StoredScope {
    /// Copies a token's scope claim.
    pub fn from_claim(s: &Scope<'_>) -> Result<Self, Error> {
        match s {
            Scope::Aif(a) => Ok(StoredScope::Aif(
                Bytes::from_slice(a.as_bytes()).map_err(|_| Error::InvalidScope)?,
            )),
            Scope::Text(t) => Ok(StoredScope::Text(
                Bytes::from_slice(t.as_bytes()).map_err(|_| Error::InvalidScope)?,
            )),
        }
    }

    fn decide<M: ScopeMapper + ?Sized>(&self, method: Method, path: &str, mapper: &M) -> Decision {
        match self {
            StoredScope::Aif(b) => match Aif::parse(b.as_slice()) {
                Ok(a) => {
                    let perms = a.permissions(path);
                    if perms == 0 {
                        Decision::Deny(DenyReason::PathNotInScope)
                    } else if perms & method.bit() == 0 {
                        Decision::Deny(DenyReason::MethodNotAllowed)
                    } else {
                        Decision::Allow
                    }
                }
                Err(_) => Decision::Deny(DenyReason::PathNotInScope),
            },
            StoredScope::Text(t) => match core::str::from_utf8(t.as_slice()) {
                Ok(s) if mapper.allows(s, method, path) => Decision::Allow,
                _ => Decision::Deny(DenyReason::PathNotInScope),
            },
        }
    }
}

/// When a token was issued, to order two tokens for the same kid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Issued {
    /// Neither `iat` nor an `exi` Sequence Number: cannot be ordered.
    #[default]
    Unordered,
    /// `exi` token: the issuer and the Sequence Number in its `cti`
    /// (RFC 9200 §5.10.3).
    Sequence {
        /// The issuer ([`crate::exi::issuer_id`] of `iss`).
        issuer: IssuerId,
        /// The Sequence Number.
        seq: u64,
    },
    /// `iat`, seconds since the epoch.
    At(i64),
}

impl Issued {
    /// True when a token issued `self` may replace one issued `stored` for
    /// the same kid: a higher Sequence Number of the same issuer, or an
    /// `iat` no earlier (same second included). A stored token that
    /// cannot be ordered may be replaced by any; an ordered one only by a
    /// newer one measured the same way.
    pub fn supersedes(&self, stored: &Issued) -> bool {
        match (self, stored) {
            (_, Issued::Unordered) => true,
            // `iat` has a resolution of one second and an AS may issue two
            // tokens for one key within it; the replay cache (a `cti` is
            // required by default) tells those two apart.
            (Issued::At(new), Issued::At(old)) => new >= old,
            (
                Issued::Sequence { issuer, seq },
                Issued::Sequence {
                    issuer: old_issuer,
                    seq: old,
                },
            ) => issuer == old_issuer && seq > old,
            _ => false,
        }
    }
}

/// One stored access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The proof-of-possession key (its kid is the record's key).
    pub pop: PopKey,
    /// The granted scope.
    pub scope: StoredScope,
    /// When the token stops being valid.
    pub lifetime: Lifetime,
    /// When it was issued.
    pub issued: Issued,
    /// SHA-256 of the token as posted (so the same token presented again as
    /// a DTLS `psk_identity`, RFC 9202 §3.3.2, finds this record instead of
    /// being refused as a replay).
    pub digest: [u8; 32],
    /// The replay cache's digest of its `cti` (none for `exi` tokens,
    /// whose Sequence Numbers are tracked instead), to forget it when the
    /// token is displaced unused.
    pub cti: Option<[u8; 16]>,
}

impl TokenRecord {
    /// The kid the record is stored under.
    pub fn kid(&self) -> &[u8] {
        self.pop.kid().unwrap_or(&[])
    }

    /// SHA-256 of the PoP key material (a symmetric key, or an EC2 key's
    /// x and y): what a session that proved this key is bound to, so a
    /// later token for the same kid with a different key does not hand
    /// that session its scope.
    pub fn pop_digest(&self) -> Option<[u8; 32]> {
        match &self.pop {
            PopKey::Symmetric { k, .. } => Some(Sha256::digest(k.as_slice()).into()),
            PopKey::Ec2 { x, y, .. } => {
                let mut h = Sha256::new();
                h.update(x);
                h.update(y);
                Some(h.finalize().into())
            }
            PopKey::KidOnly(_) => None,
            #[cfg(feature = "oscore-profile")]
            PopKey::Oscore(m) => Some(m.digest()),
        }
    }
}

/// What [`TokenStore::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Into a free slot.
    New,
    /// Replaced the token with the same kid.
    Replaced,
    /// Evicted an expired token (its kid given) to make room.
    Evicted(Kid),
    /// Evicted the oldest token nothing had used to make room: its kid and
    /// its `cti` digest ([`TokenRecord::cti`]).
    Displaced(Kid, Option<[u8; 16]>),
}

/// Up to `N` tokens, no heap. When full, a new token takes the slot of an
/// expired one; else of the oldest token nothing has used yet (no
/// handshake was given its key, no request was decided with it,
/// [`TokenStore::mark_used`]): a client posting tokens it never uses
/// cannot keep everyone else's out. Tokens in use are never evicted.
#[derive(Debug, Clone)]
pub struct TokenStore<const N: usize> {
    slots: [Option<TokenRecord>; N],
    /// Per slot: used since stored.
    used: [bool; N],
    /// Per slot: when stored (a counter), for "oldest".
    stored: [u64; N],
    next: u64,
}

impl<const N: usize> Default for TokenStore<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TokenStore<N> {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| None),
            used: [false; N],
            stored: [0; N],
            next: 0,
        }
    }

    /// Notes that the token under `kid` is in use (a handshake was given
    /// its key, or a request was decided with it): it is not evicted for a
    /// new token while it lives.
    pub fn mark_used(&mut self, kid: &[u8]) {
        if let Some(i) = self.position(kid) {
            if let Some(u) = self.used.get_mut(i) {
                *u = true;
            }
        }
    }

    fn position(&self, kid: &[u8]) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|r| r.kid() == kid))
    }

    /// Puts `rec` in slot `i`, fresh (unused, newest).
    fn put(&mut self, i: usize, rec: TokenRecord) {
        if let (Some(slot), Some(u), Some(t)) = (
            self.slots.get_mut(i),
            self.used.get_mut(i),
            self.stored.get_mut(i),
        ) {
            *slot = Some(rec);
            *u = false;
            *t = self.next;
            self.next += 1;
        }
    }

    /// Stores `rec` (see the module docs for the replacement rules).
    pub fn insert(
        &mut self,
        rec: TokenRecord,
        now: Duration,
        wall: Option<u64>,
        leeway_secs: u64,
    ) -> Result<Inserted, Error> {
        if rec.pop.kid().is_none() {
            return Err(Error::MissingClaim);
        }
        if let Some(i) = self.position(rec.kid()) {
            if let Some(old) = self
                .slots
                .get(i)
                .and_then(Option::as_ref)
                .filter(|old| !old.lifetime.expired(now, wall, leeway_secs))
            {
                if !rec.issued.supersedes(&old.issued) {
                    return Err(Error::Superseded);
                }
                // A live token's kid names its key: a token for another key
                // under the same kid would take the first one's holder's
                // grants away (and hand its sessions' kid to a stranger).
                if old.pop_digest().is_some() && rec.pop_digest() != old.pop_digest() {
                    return Err(Error::KidConflict);
                }
            }
            // The same key's newer token: in use if the old one was.
            let used = self.used.get(i).copied().unwrap_or(false);
            self.put(i, rec);
            if let Some(u) = self.used.get_mut(i) {
                *u = used;
            }
            return Ok(Inserted::Replaced);
        }
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            self.put(i, rec);
            return Ok(Inserted::New);
        }
        let expired = self.slots.iter().position(|s| {
            s.as_ref()
                .is_some_and(|r| r.lifetime.expired(now, wall, leeway_secs))
        });
        let unused = || {
            (0..N)
                .filter(|i| !self.used.get(*i).copied().unwrap_or(true))
                .min_by_key(|i| self.stored.get(*i).copied().unwrap_or(u64::MAX))
        };
        let (i, displaced) = match expired {
            Some(i) => (i, false),
            None => (unused().ok_or(Error::StoreFull)?, true),
        };
        let old = self.slots.get(i).and_then(Option::as_ref);
        let old_cti = old.and_then(|r| r.cti);
        let old = old
            .and_then(|r| Kid::from_slice(r.kid()).ok())
            .unwrap_or_default();
        self.put(i, rec);
        Ok(if displaced {
            Inserted::Displaced(old, old_cti)
        } else {
            Inserted::Evicted(old)
        })
    }

    /// The record stored under `kid`.
    pub fn get(&self, kid: &[u8]) -> Option<&TokenRecord> {
        self.slots.iter().flatten().find(|r| r.kid() == kid)
    }

    /// Removes and returns the record under `kid`.
    pub fn remove(&mut self, kid: &[u8]) -> Option<TokenRecord> {
        let i = self.position(kid)?;
        self.slots.get_mut(i).and_then(Option::take)
    }

    /// Stored tokens.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over stored records.
    pub fn iter(&self) -> impl Iterator<Item = &TokenRecord> {
        self.slots.iter().flatten()
    }

    /// Checks `method` on `path` for the token stored under `kid`.
    // The clock pair and the request triple are each what the caller has at
    // hand; bundling them would only move the argument list.
    #[allow(clippy::too_many_arguments)]
    pub fn authorize<M: ScopeMapper + ?Sized>(
        &self,
        kid: &[u8],
        now: Duration,
        wall: Option<u64>,
        leeway_secs: u64,
        method: Method,
        path: &str,
        mapper: &M,
    ) -> Decision {
        match self.get(kid) {
            None => Decision::Deny(DenyReason::NoToken),
            Some(r) if r.lifetime.expired(now, wall, leeway_secs) => {
                Decision::Deny(DenyReason::Expired)
            }
            Some(r) => r.scope.decide(method, path, mapper),
        }
    }
}

/// Remembers the `cti`s (as 16-byte SHA-256 prefixes) of up to `R`
/// accepted tokens, each until its token expires: a full cache overwrites
/// an entry whose token has expired, and otherwise refuses the new token
/// ([`Error::ReplayCacheFull`], 5.03) rather than forget a live token's
/// `cti` (which would let that token, replaced by a newer one, be posted
/// again). Size `R` above the number of tokens an AS issues to this RS
/// within a token lifetime.
#[derive(Debug, Clone)]
pub struct ReplayCache<const R: usize> {
    entries: [Option<([u8; 16], Lifetime)>; R],
}

impl<const R: usize> Default for ReplayCache<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const R: usize> ReplayCache<R> {
    /// An empty cache.
    pub const fn new() -> Self {
        Self { entries: [None; R] }
    }

    /// The digest the cache keeps of `cti`.
    pub fn digest(cti: &[u8]) -> [u8; 16] {
        let h: [u8; 32] = Sha256::digest(cti).into();
        let mut out = [0u8; 16];
        out.copy_from_slice(h.get(..16).unwrap_or(&[0; 16]));
        out
    }

    /// Whether `cti` was seen (and its token has not been forgotten).
    pub fn contains(&self, cti: &[u8]) -> bool {
        let d = Self::digest(cti);
        self.entries.iter().flatten().any(|(e, _)| *e == d)
    }

    /// Forgets the `cti` whose digest is `d` (its token was dropped unused:
    /// posting it again is not a replay of anything live).
    pub fn forget(&mut self, d: &[u8; 16]) {
        for e in self.entries.iter_mut() {
            if e.is_some_and(|(x, _)| x == *d) {
                *e = None;
            }
        }
    }

    /// Whether one more `cti` can be remembered at `now`.
    pub fn has_room(&self, now: Duration, wall: Option<u64>, leeway_secs: u64) -> bool {
        self.entries
            .iter()
            .any(|e| !e.is_some_and(|(_, l)| !l.expired(now, wall, leeway_secs)))
    }

    /// Records `cti` of a token living `lifetime`: [`Error::Replay`] if it
    /// was seen, [`Error::ReplayCacheFull`] if every entry is a live
    /// token's.
    pub fn check_and_insert(
        &mut self,
        cti: &[u8],
        lifetime: Lifetime,
        now: Duration,
        wall: Option<u64>,
        leeway_secs: u64,
    ) -> Result<(), Error> {
        if self.contains(cti) {
            return Err(Error::Replay);
        }
        self.insert_digest(Self::digest(cti), lifetime, now, wall, leeway_secs)
    }

    /// The remembered digests, each with its token's lifetime.
    pub fn entries(&self) -> impl Iterator<Item = ([u8; 16], Lifetime)> + '_ {
        self.entries.iter().flatten().copied()
    }

    /// Remembers the digest `d` (as [`Self::digest`] makes it) of a token
    /// living `lifetime`, e.g. one saved before a restart; nothing if it is
    /// remembered already. [`Error::ReplayCacheFull`] if every entry is a
    /// live token's.
    pub fn insert_digest(
        &mut self,
        d: [u8; 16],
        lifetime: Lifetime,
        now: Duration,
        wall: Option<u64>,
        leeway_secs: u64,
    ) -> Result<(), Error> {
        if self.entries.iter().flatten().any(|(e, _)| *e == d) {
            return Ok(());
        }
        let slot = match self.entries.iter().position(Option::is_none) {
            Some(i) => i,
            None => self
                .entries
                .iter()
                .position(|e| e.is_some_and(|(_, l)| l.expired(now, wall, leeway_secs)))
                .ok_or(Error::ReplayCacheFull)?,
        };
        if let Some(e) = self.entries.get_mut(slot) {
            *e = Some((d, lifetime));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kid: &[u8], secs: u64) -> TokenRecord {
        TokenRecord {
            pop: PopKey::KidOnly(Kid::from_slice(kid).unwrap()),
            scope: StoredScope::Aif(Bytes::from_slice(&[0x81, 0x82, 0x61, 0x2f, 0x01]).unwrap()),
            lifetime: Lifetime {
                exp: None,
                deadline: Some(Duration::from_secs(secs)),
            },
            issued: Issued::Unordered,
            digest: [0; 32],
            cti: None,
        }
    }

    #[test]
    fn only_a_newer_token_replaces_a_live_one() {
        let mut s = TokenStore::<2>::new();
        let t0 = Duration::ZERO;
        let at = |iat, secs| TokenRecord {
            issued: Issued::At(iat),
            ..rec(b"a", secs)
        };
        assert_eq!(s.insert(at(100, 10), t0, None, 0), Ok(Inserted::New));
        assert_eq!(s.insert(at(99, 10), t0, None, 0), Err(Error::Superseded));
        assert_eq!(s.insert(rec(b"a", 10), t0, None, 0), Err(Error::Superseded));
        assert_eq!(s.insert(at(100, 10), t0, None, 0), Ok(Inserted::Replaced));
        assert_eq!(s.insert(at(101, 10), t0, None, 0), Ok(Inserted::Replaced));
        // an expired token may be replaced by anything
        let t11 = Duration::from_secs(11);
        assert_eq!(s.insert(at(50, 20), t11, None, 0), Ok(Inserted::Replaced));
        let seq = |issuer: u8, seq| Issued::Sequence {
            issuer: [issuer; 16],
            seq,
        };
        assert!(seq(1, 5).supersedes(&seq(1, 4)));
        assert!(!seq(1, 4).supersedes(&seq(1, 4)));
        assert!(!seq(2, 9).supersedes(&seq(1, 4)));
        assert!(!Issued::At(9).supersedes(&seq(1, 4)));
        assert!(Issued::Unordered.supersedes(&Issued::Unordered));
    }

    #[test]
    fn replace_evict_full() {
        let mut s = TokenStore::<2>::new();
        let t0 = Duration::ZERO;
        assert_eq!(s.insert(rec(b"a", 10), t0, None, 0), Ok(Inserted::New));
        assert_eq!(s.insert(rec(b"a", 20), t0, None, 0), Ok(Inserted::Replaced));
        assert_eq!(s.insert(rec(b"b", 5), t0, None, 0), Ok(Inserted::New));
        s.mark_used(b"a");
        s.mark_used(b"b");
        assert_eq!(s.insert(rec(b"c", 5), t0, None, 0), Err(Error::StoreFull));
        let t6 = Duration::from_secs(6);
        assert_eq!(
            s.insert(rec(b"c", 50), t6, None, 0),
            Ok(Inserted::Evicted(Kid::from_slice(b"b").unwrap()))
        );
        assert_eq!(s.len(), 2);
        let m = crate::aif::NoTextScopes;
        assert_eq!(
            s.authorize(b"c", t6, None, 0, Method::Get, "/", &m),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(b"c", t6, None, 0, Method::Put, "/", &m),
            Decision::Deny(DenyReason::MethodNotAllowed)
        );
        assert_eq!(
            s.authorize(b"c", t6, None, 0, Method::Get, "/x", &m),
            Decision::Deny(DenyReason::PathNotInScope)
        );
        assert_eq!(
            s.authorize(b"a", Duration::from_secs(21), None, 0, Method::Get, "/", &m),
            Decision::Deny(DenyReason::Expired)
        );
        assert_eq!(
            s.authorize(b"z", t6, None, 0, Method::Get, "/", &m),
            Decision::Deny(DenyReason::NoToken)
        );
    }

    #[test]
    fn when_full_an_unused_token_makes_room_and_a_used_one_does_not() {
        let mut s = TokenStore::<2>::new();
        let t0 = Duration::ZERO;
        assert_eq!(s.insert(rec(b"a", 10), t0, None, 0), Ok(Inserted::New));
        assert_eq!(s.insert(rec(b"b", 10), t0, None, 0), Ok(Inserted::New));
        s.mark_used(b"b");
        // "a" is the oldest unused: displaced
        let a = Kid::from_slice(b"a").unwrap();
        assert_eq!(
            s.insert(rec(b"c", 10), t0, None, 0),
            Ok(Inserted::Displaced(a, None))
        );
        s.mark_used(b"c");
        // both in use: refused
        assert_eq!(s.insert(rec(b"d", 10), t0, None, 0), Err(Error::StoreFull));
        assert!(s.get(b"b").is_some() && s.get(b"c").is_some());
    }

    #[test]
    fn replay_cache_keeps_live_tokens() {
        let mut c = ReplayCache::<2>::new();
        let until = |secs| Lifetime {
            exp: None,
            deadline: Some(Duration::from_secs(secs)),
        };
        let t0 = Duration::ZERO;
        c.check_and_insert(b"1", until(10), t0, None, 0).unwrap();
        assert_eq!(
            c.check_and_insert(b"1", until(10), t0, None, 0),
            Err(Error::Replay)
        );
        c.check_and_insert(b"2", until(20), t0, None, 0).unwrap();
        // full of live tokens: refused, nothing forgotten
        assert_eq!(
            c.check_and_insert(b"3", until(20), t0, None, 0),
            Err(Error::ReplayCacheFull)
        );
        assert!(c.contains(b"1"));
        // once token 1 expired, its entry goes
        let t11 = Duration::from_secs(11);
        c.check_and_insert(b"3", until(30), t11, None, 0).unwrap();
        assert!(!c.contains(b"1"));
        assert!(c.contains(b"2") && c.contains(b"3"));
    }
}
