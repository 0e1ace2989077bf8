//! The `/authz-info` endpoint (RFC 9200 §5.10.1) and request authorization
//! (§5.10.2), with AS Request Creation Hints (§5.3) for unauthorized
//! requests, and accounting events for every decision.
//!
//! `POST /authz-info` with a CWT: the token is verified (COSE with the
//! configured keys, `aud`, `exp`/`nbf` against the optional wall clock or
//! `exi` against the monotonic clock, `cti` replay), its PoP key is resolved
//! from `cnf`, and it is stored under the key's `kid`. The answer is 2.01
//! Created, or 4.00 / 4.01 / 4.03 (with an ACE error payload on 4.00), or
//! 5.03 when the store is full.

use core::time::Duration;

use crate::accounting::{event_path, AuthEvent, EventQueue};
use crate::aif::{Method, NoTextScopes, ScopeMapper};
use crate::cbor;
use crate::cose::{KeyResolver, Limits};
use crate::cwt::{Lifetime, Token, Validation};
use crate::exi::{issuer_id, CtiFormat, ExiTracker, ExiWatermark};
use cssf_provider::CryptoProvider;
use sha2::{Digest, Sha256};

use crate::pop::{Kid, PopKey};
use crate::store::{
    Decision, DenyReason, Inserted, Issued, ReplayCache, StoredScope, TokenRecord, TokenStore,
};
use crate::Error;

#[cfg(feature = "oscore-profile")]
mod oscore;
#[cfg(feature = "oscore-profile")]
pub use oscore::{InUse, OscorePost};

/// How many issuers' `exi` Sequence Numbers an [`AuthzInfo`] tracks.
pub const EXI_ISSUERS: usize = 4;

/// How many handshakes' token keys an [`AuthzInfo`] remembers
/// ([`AuthzInfo::note_handshake_key`]): entries go when the handshake's
/// session connects or closes (`Authorizer::on_connected` /
/// `on_closed`), so this bounds the handshakes in flight at once (keep it
/// at least the DTLS endpoint's handshake slots); beyond it the oldest
/// entry is forgotten.
pub const HANDSHAKE_KEYS: usize = 8;

/// CoAP 2.01 Created.
pub const CREATED: u8 = 0x41;

/// ACE parameter `error` (RFC 9200 §8.10 CBOR mapping).
pub const PARAM_ERROR: u8 = 30;

/// AS Request Creation Hints parameters (RFC 9200 §5.3, Figure 3).
pub mod hints {
    /// `AS`: the AS URI.
    pub const AS: u8 = 1;
    /// `kid`.
    pub const KID: u8 = 2;
    /// `audience`.
    pub const AUDIENCE: u8 = 5;
    /// `scope`.
    pub const SCOPE: u8 = 9;
    /// `cnonce`.
    pub const CNONCE: u8 = 39;
}

/// Resource-server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// This RS's audience name (matched against `aud`).
    pub audience: &'a str,
    /// Clock skew allowed for `exp` / `nbf`, in seconds.
    pub leeway_secs: u64,
    /// CBOR size and depth limits.
    pub limits: Limits,
    /// The AS URI announced in AS Request Creation Hints.
    pub as_uri: Option<&'a str>,
    /// The `cti` layout of `exi` tokens (RFC 9200 §5.10.3): prefix and
    /// Sequence Number encoding. Default: no prefix, big-endian number.
    pub exi_cti: CtiFormat<'a>,
    /// Refuse tokens without a `cti` ([`Error::MissingClaim`]). Default
    /// true: without one, the replay cache cannot tell a token posted
    /// twice.
    pub require_cti: bool,
}

impl<'a> Config<'a> {
    /// A configuration for `audience` with default limits and no leeway.
    pub fn new(audience: &'a str) -> Self {
        Self {
            audience,
            leeway_secs: 0,
            limits: Limits::default(),
            as_uri: None,
            exi_cti: CtiFormat::default(),
            require_cti: true,
        }
    }
}

/// The CoAP answer to a `POST /authz-info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// CoAP response code (`class << 5 | detail`).
    pub code: u8,
    /// Bytes of payload written to the output buffer.
    pub payload_len: usize,
    /// The error, when the token was refused.
    pub error: Option<Error>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tokens accepted.
    pub tokens_accepted: u64,
    /// Tokens refused.
    pub tokens_rejected: u64,
    /// Requests allowed.
    pub requests_allowed: u64,
    /// Requests denied.
    pub requests_denied: u64,
}

/// The resource server's token handling: `/authz-info`, the token store,
/// replay cache, `exi` Sequence Numbers and accounting queue. `N` tokens,
/// `R` remembered `cti`s, `E` queued events; the Sequence Numbers of
/// [`EXI_ISSUERS`] issuers and of up to `N` live `exi` tokens.
pub struct AuthzInfo<
    'k,
    K: KeyResolver + ?Sized,
    M: ScopeMapper = NoTextScopes,
    const N: usize = 4,
    const R: usize = 32,
    const E: usize = 16,
> {
    config: Config<'k>,
    keys: &'k K,
    mapper: M,
    store: TokenStore<N>,
    replay: ReplayCache<R>,
    exi: ExiTracker<EXI_ISSUERS, N>,
    events: EventQueue<E>,
    stats: Stats,
    last_kid: Option<Kid>,
    /// Which token key (SHA-256 of it) was handed to which handshake.
    handshake_keys: [Option<(u64, [u8; 32])>; HANDSHAKE_KEYS],
    next_handshake_key: usize,
    crypto: &'static CryptoProvider,
    /// The OSCORE contexts bound to stored tokens (RFC 9203): at most one
    /// per token, so at most `N`.
    #[cfg(feature = "oscore-profile")]
    oscore: [Option<crate::oscore_profile::Binding>; N],
}

impl<'k, K: KeyResolver + ?Sized, const N: usize, const R: usize, const E: usize>
    AuthzInfo<'k, K, NoTextScopes, N, R, E>
{
    /// A resource server with `keys` (to verify tokens and open encrypted
    /// PoP keys) that refuses text scopes.
    pub fn new(config: Config<'k>, keys: &'k K) -> Self {
        Self::with_mapper(config, keys, NoTextScopes)
    }
}

impl<
        'k,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > AuthzInfo<'k, K, M, N, R, E>
{
    /// As [`AuthzInfo::new`], with a mapper for text scopes.
    pub fn with_mapper(config: Config<'k>, keys: &'k K, mapper: M) -> Self {
        Self {
            config,
            keys,
            mapper,
            store: TokenStore::new(),
            replay: ReplayCache::new(),
            exi: ExiTracker::new(),
            events: EventQueue::new(),
            stats: Stats::default(),
            last_kid: None,
            handshake_keys: [None; HANDSHAKE_KEYS],
            crypto: &cssf_provider::rustcrypto::PROVIDER,
            next_handshake_key: 0,
            #[cfg(feature = "oscore-profile")]
            oscore: core::array::from_fn(|_| None),
        }
    }

    /// Checks the ES256 signatures of posted tokens through `provider`
    /// (default
    /// [`rustcrypto::PROVIDER`](cssf_provider::rustcrypto::PROVIDER)):
    /// one [`P256::verify_digest`](cssf_provider::P256::verify_digest)
    /// per COSE_Sign1 layer. MACs, AEADs and the replay digests do not go
    /// through the provider yet.
    pub fn set_crypto(&mut self, provider: &'static CryptoProvider) {
        self.crypto = provider;
    }

    /// The provider [`set_crypto`](Self::set_crypto) selected.
    pub fn crypto(&self) -> &'static CryptoProvider {
        self.crypto
    }

    /// Handles `POST /authz-info` carrying `token` (decrypted in place if it
    /// is an Encrypt0). `now` is monotonic time, `wall` the wall clock in
    /// seconds since the epoch if the device has one. The error payload (on
    /// 4.00) is written to `out`; an `out` too short for it gets none.
    ///
    /// The token buffer is zeroized before returning: after an Encrypt0 token
    /// it holds the decrypted claims, PoP key included.
    pub fn post(
        &mut self,
        now: Duration,
        wall: Option<u64>,
        token: &mut [u8],
        out: &mut [u8],
    ) -> Response {
        let result = self.accept(now, wall, token, false);
        zeroize::Zeroize::zeroize(token);
        let r = self.finish(result.map(|(kid, replaced)| (kid, replaced, 0)), out);
        #[cfg(feature = "oscore-profile")]
        self.sync_oscore();
        r
    }

    /// Records the outcome of a token POST: counters, events, logs, and
    /// the error payload (on 4.00) in `out`.
    fn finish(&mut self, result: Result<(Kid, bool, usize), Error>, out: &mut [u8]) -> Response {
        match result {
            Ok((kid, replaced, payload_len)) => {
                info!(
                    "token accepted{}",
                    if replaced {
                        ", replacing an older one"
                    } else {
                        ""
                    }
                );
                self.stats.tokens_accepted += 1;
                self.last_kid = Some(kid);
                self.events.push(AuthEvent::TokenAccepted { kid, replaced });
                Response {
                    code: CREATED,
                    payload_len,
                    error: None,
                }
            }
            Err(e) => {
                // Anyone can POST to /authz-info, from any address (plain
                // CoAP): a rejection is debug, never info.
                debug!("token rejected: {:?}", e);
                self.stats.tokens_rejected += 1;
                self.events.push(AuthEvent::TokenRejected { reason: e });
                let payload_len = match e.ace_error() {
                    Some(code) => match out.get_mut(..4) {
                        Some(p) => {
                            // {30: code}
                            p.copy_from_slice(&[0xa1, 0x18, PARAM_ERROR, code]);
                            4
                        }
                        None => 0,
                    },
                    None => 0,
                };
                Response {
                    code: e.code(),
                    payload_len,
                    error: Some(e),
                }
            }
        }
    }

    fn accept(
        &mut self,
        now: Duration,
        wall: Option<u64>,
        token: &mut [u8],
        oscore: bool,
    ) -> Result<(Kid, bool), Error> {
        let limits = self.config.limits;
        let digest: [u8; 32] = Sha256::digest(&*token).into();
        let verified = Token::new(token, limits)
            .crypto(self.crypto)
            .verify(self.keys, &[])?;
        let claims = verified.claims();
        let v = Validation {
            audience: self.config.audience,
            leeway_secs: self.config.leeway_secs,
        };
        let lifetime = claims.validate(&v, now, wall)?;
        if self.config.require_cti && claims.cti.is_none() {
            return Err(Error::MissingClaim);
        }
        // RFC 9200 §5.10.3: an `exi` token's cti carries a Sequence Number;
        // numbers at or below the highest expired one of the issuer are
        // expired, and a live one posted again is a replay. That check
        // replaces the cti ring for `exi` tokens (it is per issuer and
        // covers every expired token, not only the last `R`).
        let exi_seq = match (claims.exi, claims.cti, lifetime.deadline) {
            (Some(_), Some(cti), Some(deadline)) => {
                let seq = self.config.exi_cti.sequence_number(cti)?;
                let issuer = issuer_id(claims.iss);
                self.exi.check(now, &issuer, seq)?;
                if !self.exi.has_room(&issuer) {
                    return Err(Error::ExiStateFull);
                }
                Some((issuer, seq, deadline))
            }
            (Some(_), _, _) => return Err(Error::MissingClaim),
            _ => {
                if let Some(cti) = claims.cti {
                    if self.replay.contains(cti) {
                        return Err(Error::Replay);
                    }
                    if !self.replay.has_room(now, wall, self.config.leeway_secs) {
                        return Err(Error::ReplayCacheFull);
                    }
                }
                None
            }
        };
        let cnf = claims.cnf.as_ref().ok_or(Error::MissingClaim)?;
        // RFC 9203: an `osc` token comes with the nonces of §4.1, and only
        // an `osc` token does (a token update naming the material by kid
        // alone is a bare POST).
        #[cfg(feature = "oscore-profile")]
        if matches!(cnf, crate::pop::Cnf::Osc(_)) != oscore {
            return Err(crate::oscore_profile::OscoreError::WrongProfile.into());
        }
        #[cfg(not(feature = "oscore-profile"))]
        let _ = oscore;
        let mut pop = cnf.resolve(self.keys, &limits)?;
        let kid = Kid::from_slice(pop.kid().ok_or(Error::MissingClaim)?)?;
        if let PopKey::KidOnly(_) = pop {
            // RFC 9202 §4 / RFC 8747 §3.4: a `cnf` of only a kid names a key
            // the RS already has: the key of the token stored under it (a
            // scope update; the key stays), or one known out of band (the
            // record then holds no key and no DTLS PSK resolves to it).
            if let Some(old) = self.store.get(kid.as_slice()) {
                pop = old.pop.clone();
            }
        }
        let scope = StoredScope::from_claim(claims.scope.as_ref().ok_or(Error::InvalidScope)?)?;
        let issued = match (&exi_seq, claims.iat) {
            (Some((issuer, seq, _)), _) => Issued::Sequence {
                issuer: *issuer,
                seq: *seq,
            },
            (None, Some(iat)) => Issued::At(iat),
            (None, None) => Issued::Unordered,
        };
        let rec = TokenRecord {
            pop,
            scope,
            lifetime,
            issued,
            digest,
            cti: match exi_seq {
                Some(_) => None,
                None => claims.cti.map(ReplayCache::<R>::digest),
            },
        };
        let ins = self.store.insert(rec, now, wall, self.config.leeway_secs)?;
        match exi_seq {
            // Cannot fail: the issuer slot was checked above.
            Some((issuer, seq, deadline)) => self.exi.record(&issuer, seq, deadline)?,
            None => {
                if let Some(cti) = claims.cti {
                    // Cannot fail: checked above.
                    let leeway = self.config.leeway_secs;
                    self.replay
                        .check_and_insert(cti, lifetime, now, wall, leeway)?;
                }
            }
        }
        let replaced = match ins {
            Inserted::New => false,
            Inserted::Replaced => true,
            Inserted::Evicted(old) => {
                self.events.push(AuthEvent::TokenExpired { kid: old });
                false
            }
            Inserted::Displaced(old, cti) => {
                // Dropped unused, not superseded: it may be posted again.
                if let Some(d) = cti {
                    self.replay.forget(&d);
                }
                self.events.push(AuthEvent::TokenDisplaced { kid: old });
                false
            }
        };
        Ok((kid, replaced))
    }

    /// Authorizes `method` on `path` for the security association bound to
    /// `kid` (e.g. the DTLS psk_identity), recording the decision.
    pub fn authorize(
        &mut self,
        now: Duration,
        wall: Option<u64>,
        kid: Option<&[u8]>,
        method: Method,
        path: &str,
    ) -> Decision {
        if let Some(k) = kid {
            self.store.mark_used(k);
        }
        let d = match kid {
            Some(k) => self.store.authorize(
                k,
                now,
                wall,
                self.config.leeway_secs,
                method,
                path,
                &self.mapper,
            ),
            None => Decision::Deny(DenyReason::NoToken),
        };
        let kid_owned = kid.and_then(|k| Kid::from_slice(k).ok());
        match d {
            Decision::Allow => {
                trace!("request allowed by its token: {:?} {:?}", method, path);
                self.stats.requests_allowed += 1;
                self.events.push(AuthEvent::RequestAllowed {
                    kid: kid_owned.unwrap_or_default(),
                    method,
                    path: event_path(path),
                });
            }
            Decision::Deny(reason) => {
                debug!("request denied: {:?} {:?}: {:?}", method, path, reason);
                self.stats.requests_denied += 1;
                self.events.push(AuthEvent::RequestDenied {
                    kid: kid_owned,
                    method,
                    path: event_path(path),
                    reason,
                });
            }
        }
        d
    }

    /// Writes the AS Request Creation Hints (RFC 9200 §5.3) for a 4.01
    /// answer: the configured AS URI, this RS's audience and, if given, a
    /// `cnonce` and the requested `scope` (AIF CBOR, embedded as is).
    pub fn creation_hints(
        &self,
        cnonce: Option<&[u8]>,
        scope: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        emit_creation_hints(
            self.config.as_uri,
            Some(self.config.audience),
            cnonce,
            scope,
            out,
        )
    }

    /// Drops expired tokens, recording a [`AuthEvent::TokenExpired`] for each.
    pub fn handle_timeout(&mut self, now: Duration, wall: Option<u64>) {
        self.exi.expire(now);
        let leeway = self.config.leeway_secs;
        let mut expired: [Option<Kid>; N] = core::array::from_fn(|_| None);
        for (slot, r) in expired.iter_mut().zip(self.store.iter()) {
            if r.lifetime.expired(now, wall, leeway) {
                *slot = Kid::from_slice(r.kid()).ok();
            }
        }
        for kid in expired.into_iter().flatten() {
            self.store.remove(kid.as_slice());
            self.events.push(AuthEvent::TokenExpired { kid });
        }
        #[cfg(feature = "oscore-profile")]
        self.sync_oscore();
    }

    /// The earliest monotonic deadline of a stored `exi` token.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let stored = self.store.iter().filter_map(|r| r.lifetime.deadline).min();
        match (stored, self.exi.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The `exi` Sequence Number state to keep in persistent storage (RFC
    /// 9200 §5.10.3): per issuer, the highest number seen. Save it whenever
    /// a token with `exi` was accepted, and give it back with
    /// [`Self::restore_exi_watermark`] after a restart, before accepting
    /// tokens; otherwise an `exi` token accepted before the restart could be
    /// posted again and live again.
    pub fn exi_watermarks(&self) -> impl Iterator<Item = ExiWatermark> + '_ {
        self.exi.persistent()
    }

    /// Restores one issuer's `exi` state saved by [`Self::exi_watermarks`].
    pub fn restore_exi_watermark(&mut self, w: ExiWatermark) -> Result<(), Error> {
        self.exi.restore(w)
    }

    /// The next accounting event.
    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.events.pop()
    }

    /// Counters (events dropped for lack of queue space: [`Self::events_dropped`]).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Accounting events dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped()
    }

    /// The kid of the token most recently accepted.
    pub fn last_accepted_kid(&self) -> Option<Kid> {
        self.last_kid
    }

    /// The configured leeway for `exp` / `nbf`, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.config.leeway_secs
    }

    /// The `cti`s the replay cache remembers (tokens accepted and not
    /// forgotten; `exi` tokens are tracked by [`Self::exi_watermarks`]
    /// instead). A device that keeps its tokens across a restart keeps
    /// these too and gives them back with [`Self::restore_replay_entry`]
    /// after posting its stored tokens again: otherwise a token replaced
    /// before the restart by one that does not order after it by `iat`
    /// (issued the same second, or neither carrying `iat`) is taken again
    /// when posted, and with it the scope it had.
    pub fn replay_entries(&self) -> impl Iterator<Item = ReplayEntry> + '_ {
        self.replay
            .entries()
            .filter(|(_, l)| l.deadline.is_none())
            .map(|(digest, l)| ReplayEntry { digest, exp: l.exp })
    }

    /// Remembers a `cti` saved from [`Self::replay_entries`] before a
    /// restart (nothing if it expired by `wall`, or is remembered already).
    /// [`Error::ReplayCacheFull`] if every entry is a live token's.
    pub fn restore_replay_entry(
        &mut self,
        now: Duration,
        wall: Option<u64>,
        e: ReplayEntry,
    ) -> Result<(), Error> {
        let lifetime = Lifetime {
            exp: e.exp,
            deadline: None,
        };
        let leeway = self.config.leeway_secs;
        if lifetime.expired(now, wall, leeway) {
            return Ok(());
        }
        self.replay
            .insert_digest(e.digest, lifetime, now, wall, leeway)
    }

    /// The token store.
    pub fn store(&self) -> &TokenStore<N> {
        &self.store
    }

    /// Records that handshake `handshake` (e.g. a DTLS session handle's
    /// raw value) was given the token PoP key whose SHA-256 is
    /// `key_digest`: the key its Finished will prove, whatever token is
    /// stored for the kid by then. The DTLS glue calls it when it hands out
    /// a token's key; [`Authorizer::on_connected`] binds the session to it.
    ///
    /// [`Authorizer::on_connected`]: crate::authorizer::Authorizer::on_connected
    pub fn note_handshake_key(&mut self, handshake: u64, key_digest: [u8; 32]) {
        let slot = self
            .handshake_keys
            .iter()
            .position(|e| e.is_some_and(|(h, _)| h == handshake))
            .or_else(|| self.handshake_keys.iter().position(Option::is_none))
            .unwrap_or(self.next_handshake_key);
        if let Some(e) = self.handshake_keys.get_mut(slot) {
            *e = Some((handshake, key_digest));
        }
        if slot == self.next_handshake_key {
            self.next_handshake_key = (self.next_handshake_key + 1) % HANDSHAKE_KEYS;
        }
    }

    /// The digest of the token key handed to `handshake`, if remembered.
    pub fn handshake_key(&self, handshake: u64) -> Option<[u8; 32]> {
        self.handshake_keys
            .iter()
            .flatten()
            .find(|(h, _)| *h == handshake)
            .map(|(_, d)| *d)
    }

    /// Removes and returns what [`Self::handshake_key`] would (the
    /// handshake completed or ended).
    pub fn take_handshake_key(&mut self, handshake: u64) -> Option<[u8; 32]> {
        let e = self
            .handshake_keys
            .iter_mut()
            .find(|e| e.is_some_and(|(h, _)| h == handshake))?;
        e.take().map(|(_, d)| d)
    }

    /// Notes that a proven session uses the token under `kid` (see
    /// [`TokenStore::mark_used`]).
    pub fn mark_token_used(&mut self, kid: &[u8]) {
        self.store.mark_used(kid);
    }

    /// The kid of the stored token a DTLS `psk_identity` names: the
    /// RFC 9202 §3.3.2 form (the CBOR map `{8: {1: {1: 4, 2: kid}}}`, see
    /// [`psk_identity_kid`]), a bare kid, or a token that was posted (to
    /// `/authz-info` or as an earlier identity) with exactly these bytes.
    pub fn kid_for_psk_identity(&self, identity: &[u8]) -> Option<Kid> {
        if let Some(kid) = psk_identity_kid(identity) {
            return self
                .store
                .get(kid)
                .and_then(|r| Kid::from_slice(r.kid()).ok());
        }
        if let Some(r) = self.store.get(identity) {
            return Kid::from_slice(r.kid()).ok();
        }
        let digest: [u8; 32] = Sha256::digest(identity).into();
        self.store
            .iter()
            .find(|r| r.digest == digest)
            .and_then(|r| Kid::from_slice(r.kid()).ok())
    }
}

/// A `cti` the replay cache remembers, as a device keeps it across a
/// restart ([`AuthzInfo::replay_entries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The first 16 bytes of SHA-256 of the `cti`.
    pub digest: [u8; 16],
    /// The token's `exp` (seconds since the epoch), if it has one.
    pub exp: Option<i64>,
}

/// The kid in an RFC 9202 §3.3.2 `psk_identity`: the CBOR serialization
/// of a `cnf` holding only a symmetric COSE_Key with a kid,
/// `{8: {1: {1: 4, 2: h'..'}}}` (in either key order inside the COSE_Key).
/// `None` for anything else (a bare kid, or an access token).
///
/// ```
/// use cssf_auth::authz_info::psk_identity_kid;
/// // RFC 9202 §3.3.2, the example identity
/// let id = [0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02, 0x48,
///           0x3D, 0x02, 0x78, 0x33, 0xFC, 0x62, 0x67, 0xCE];
/// assert_eq!(psk_identity_kid(&id), Some(&[0x3D, 0x02, 0x78, 0x33, 0xFC, 0x62, 0x67, 0xCE][..]));
/// assert_eq!(psk_identity_kid(b"client-1"), None);
/// ```
pub fn psk_identity_kid(identity: &[u8]) -> Option<&[u8]> {
    let mut d = minicbor::Decoder::new(identity);
    if cbor::map(&mut d).ok()? != 1 || cbor::int(&mut d).ok()? != crate::cwt::CNF {
        return None;
    }
    if cbor::map(&mut d).ok()? != 1 || cbor::int(&mut d).ok()? != 1 {
        return None;
    }
    if cbor::map(&mut d).ok()? != 2 {
        return None;
    }
    let (mut kty, mut kid) = (None, None);
    for _ in 0..2 {
        match cbor::int(&mut d).ok()? {
            1 => kty = Some(cbor::int(&mut d).ok()?),
            2 => kid = Some(cbor::bytes(&mut d).ok()?),
            _ => return None,
        }
    }
    if d.position() != identity.len() || kty != Some(4) {
        return None;
    }
    kid
}

/// Emits AS Request Creation Hints (a CBOR map, RFC 9200 §5.3) into `out`.
pub fn emit_creation_hints(
    as_uri: Option<&str>,
    audience: Option<&str>,
    cnonce: Option<&[u8]>,
    scope: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let n = u64::from(as_uri.is_some())
        + u64::from(audience.is_some())
        + u64::from(cnonce.is_some())
        + u64::from(scope.is_some());
    let mut e = minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut *out));
    let r: Result<(), minicbor::encode::Error<_>> = (|| {
        e.map(n)?;
        if let Some(a) = as_uri {
            e.u8(hints::AS)?.str(a)?;
        }
        if let Some(a) = audience {
            e.u8(hints::AUDIENCE)?.str(a)?;
        }
        if let Some(s) = scope {
            e.u8(hints::SCOPE)?;
            minicbor::encode::Write::write_all(e.writer_mut(), s)
                .map_err(|_| minicbor::encode::Error::message("short"))?;
        }
        if let Some(c) = cnonce {
            e.u8(hints::CNONCE)?.bytes(c)?;
        }
        Ok(())
    })();
    let needed = 1
        + as_uri.map_or(0, |a| 10 + a.len())
        + audience.map_or(0, |a| 10 + a.len())
        + scope.map_or(0, |s| 1 + s.len())
        + cnonce.map_or(0, |c| 11 + c.len());
    r.map_err(|_| Error::BufferTooSmall { needed })?;
    Ok(e.into_writer().position())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_hints_rfc9200_figure_4_shape() {
        let mut out = [0u8; 96];
        let n = emit_creation_hints(
            Some("coaps://as.example.com/token"),
            Some("coaps://rs.example.com"),
            Some(&[0xe0, 0xa1, 0x56, 0xbb, 0x8f, 0x7a, 0x16, 0x82]),
            None,
            &mut out,
        )
        .unwrap();
        // {1: "coaps://as.example.com/token", 5: "coaps://rs.example.com", 39: h'...'}
        assert_eq!(out[0], 0xa3);
        assert_eq!(out[1], 0x01);
        assert_eq!(&out[n - 11..n - 8], &[0x18, 0x27, 0x48]);
        assert!(matches!(
            emit_creation_hints(
                Some("coaps://as.example.com/token"),
                None,
                None,
                None,
                &mut out[..4]
            ),
            Err(Error::BufferTooSmall { .. })
        ));
    }
}
