//! Authorization bound to authenticated sessions: who may do what, decided
//! per request from what the session's handshake proved, never from an
//! address (DESIGN.md, "Sessions, identity and authorization").
//!
//! An [`Authorizer`] keeps one grant per live session, keyed by the
//! transport's session handle `S` (for DTLS, `cssf_dtls::SessionHandle`),
//! and nothing else that a session could leave behind:
//!
//! - [`on_connected`](Authorizer::on_connected) records what the session's
//!   handshake proved ([`Proof`]): a provisioned PSK identity or public key
//!   gets its configured [`Rights`]; a PSK identity that is the kid of a
//!   stored ACE token, or the token itself (RFC 9202 §3.3.1, §3.3.2), or a
//!   public key that is a stored token's PoP key (RFC 9202 §3.2, raw public
//!   keys), gets that token's scope, looked up at every request (so expiry
//!   and a newer token take effect at once); anything else is anonymous;
//! - [`on_closed`](Authorizer::on_closed) forgets the session;
//! - [`decide`](Authorizer::decide) answers a request in the order of RFC
//!   9200 §5.10.2: no grant (or an expired token) is
//!   [`Verdict::Unauthorized`] (4.01, with AS Request Creation Hints), a
//!   path outside the grant [`Verdict::Forbidden`] (4.03), a path inside
//!   but not the method [`Verdict::MethodNotAllowed`] (4.05). The public
//!   rights (such as `POST /authz-info`) are everyone's, sessions and plain
//!   requests alike; anonymous sessions have the anonymous rights besides.
//!
//! ```
//! use core::time::Duration;
//! use cssf_auth::authorizer::{Authorizer, Proof, Requester, Rights, Verdict};
//! use cssf_auth::{AuthzInfo, Config, KeyEntry, Method};
//!
//! let keys: [KeyEntry; 0] = [];
//! let mut rs: AuthzInfo<'_, _> = AuthzInfo::new(Config::new("rs1"), &keys);
//! let mut az: Authorizer<u32> = Authorizer::new();
//! az.set_public(Rights::parse("/authz-info:POST")?);
//! az.provision_psk(b"sensor-admin", Rights::parse("/actuators/led:GET,PUT")?)?;
//! az.on_connected(7, Proof::Psk(b"sensor-admin"), &mut rs)?;
//! let now = Duration::ZERO;
//! let mut ask = |who, m, p: &str| az.decide(&mut rs, who, m, p, now, None);
//! assert_eq!(ask(Requester::Session(7), Method::Put, "/actuators/led"), Verdict::Allow);
//! assert_eq!(ask(Requester::Session(7), Method::Get, "/sensors/temp"), Verdict::Forbidden);
//! assert_eq!(ask(Requester::Plain, Method::Put, "/actuators/led"), Verdict::Unauthorized);
//! assert_eq!(ask(Requester::Plain, Method::Post, "/authz-info"), Verdict::Allow);
//! az.on_closed(&7, &mut rs);
//! assert_eq!(az.decide(&mut rs, Requester::Session(7), Method::Put, "/actuators/led", now, None), Verdict::Unauthorized);
//! # Ok::<(), cssf_auth::Error>(())
//! ```

use core::fmt;
use core::time::Duration;

use subtle::ConstantTimeEq;

use crate::aif::{Method, ScopeMapper};
use crate::authz_info::AuthzInfo;
use crate::bytes::Bytes;
use crate::cose::KeyResolver;
use crate::pop::{Kid, PopKey};
use crate::store::{Decision, DenyReason};
use crate::Error;

/// Longest path in a [`Rights`] entry.
pub const MAX_RIGHTS_PATH: usize = 64;
/// Most entries in a [`Rights`].
pub const MAX_RIGHTS_ENTRIES: usize = 8;
/// Longest provisioned PSK identity.
pub const MAX_PROVISIONED_IDENTITY: usize = 128;

/// Every method bit (GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH).
const ALL_METHODS: u64 = 0x7F;

/// What a session's handshake proved about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    /// The peer knows the PSK of this identity (a provisioned identity, a
    /// token's kid, or a token used as identity).
    Psk(&'a [u8]),
    /// The peer holds the private key of this P-256 public key (a raw
    /// public key or a certificate's key): its x and y coordinates.
    PublicKey(&'a [u8; 32], &'a [u8; 32]),
    /// Nothing: a client of a server-only raw-public-key handshake.
    Anonymous,
    /// The peer holds the OSCORE context with this Recipient ID (the kid
    /// its requests carry) and ID Context (RFC 9203): report it when the
    /// context is added, with the context's handle as the session (one
    /// that no DTLS session handle of the same `Authorizer` shares); each
    /// request verified under it is then decided by the scope of the token
    /// the context was derived from, while that binding lasts
    /// ([`AuthzInfo::post_oscore`]).
    #[cfg(feature = "oscore-profile")]
    Oscore {
        /// The context's Recipient ID.
        recipient_id: &'a [u8],
        /// Its ID Context, if any.
        id_context: Option<&'a [u8]>,
    },
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<S> {
    /// A secure session, by its handle.
    Session(S),
    /// A request without a secure session (plain CoAP).
    Plain,
}

/// The answer to a request (RFC 9200 §5.10.2).
#[cfg_attr(all(feature = "defmt", target_os = "none"), derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// No grant covers the request, or the token expired: 4.01, with AS
    /// Request Creation Hints.
    Unauthorized,
    /// The grant does not cover the path: 4.03.
    Forbidden,
    /// The grant covers the path but not the method: 4.05.
    MethodNotAllowed,
}

impl Verdict {
    /// The CoAP response code of a refusal (`class << 5 | detail`).
    pub fn code(self) -> Option<u8> {
        match self {
            Verdict::Allow => None,
            Verdict::Unauthorized => Some(0x81),
            Verdict::Forbidden => Some(0x83),
            Verdict::MethodNotAllowed => Some(0x85),
        }
    }
}

/// What a grant allows: paths (or `*`, every path) with the methods on
/// each, written like a token's text scope:
/// `"/sensors/temp:GET /actuators/led:GET,PUT"`, `"*:GET"` (read-only),
/// `"*:ALL"` (everything).
///
/// ```
/// use cssf_auth::authorizer::Rights;
/// use cssf_auth::Method;
/// let r = Rights::parse("/actuators/led:GET,PUT *:GET")?;
/// assert_eq!(r, Rights::parse("/actuators/led:GET,PUT;*:GET")?);
/// assert_eq!(r.to_string(), "/actuators/led:GET,PUT *:GET");
/// assert!(r.allows(Method::Put, "/actuators/led"));
/// assert!(r.allows(Method::Get, "/anything"));
/// assert!(!r.allows(Method::Delete, "/actuators/led"));
/// assert!(Rights::parse("/x:BREW").is_err());
/// # Ok::<(), cssf_auth::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Rights {
    entries: heapless::Vec<(Bytes<MAX_RIGHTS_PATH>, u64), MAX_RIGHTS_ENTRIES>,
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for (p, m) in &self.entries {
            l.entry(&(core::str::from_utf8(p.as_slice()).unwrap_or("?"), m));
        }
        l.finish()
    }
}

impl fmt::Display for Rights {
    /// The text [`Rights::parse`] reads (`-` for no rights).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("-");
        }
        for (i, (path, bits)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(core::str::from_utf8(path.as_slice()).unwrap_or("?"))?;
            f.write_str(":")?;
            if *bits == ALL_METHODS {
                f.write_str("ALL")?;
                continue;
            }
            let mut first = true;
            for (m, name) in METHOD_NAMES {
                if bits & m.bit() != 0 {
                    f.write_str(if first { "" } else { "," })?;
                    f.write_str(name)?;
                    first = false;
                }
            }
        }
        Ok(())
    }
}

/// The method names of the rights syntax.
const METHOD_NAMES: [(Method, &str); 7] = [
    (Method::Get, "GET"),
    (Method::Post, "POST"),
    (Method::Put, "PUT"),
    (Method::Delete, "DELETE"),
    (Method::Fetch, "FETCH"),
    (Method::Patch, "PATCH"),
    (Method::IPatch, "iPATCH"),
];

impl Rights {
    /// No rights at all.
    pub fn none() -> Self {
        Rights::default()
    }

    /// GET on every path.
    pub fn read_only() -> Self {
        Rights::every_path(Method::Get.bit())
    }

    /// Every method on every path.
    pub fn all() -> Self {
        Rights::every_path(ALL_METHODS)
    }

    fn every_path(methods: u64) -> Self {
        let mut r = Rights::none();
        let _ = r
            .entries
            .push((Bytes::from_slice(b"*").unwrap_or_default(), methods));
        r
    }

    /// Parses `path:METHOD[,METHOD..]` entries separated by spaces or `;`; a path
    /// `*` is every path, a method `ALL` every method. `InvalidScope` for
    /// anything else (an unknown method, an empty list, too many entries,
    /// a path longer than [`MAX_RIGHTS_PATH`]).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut r = Rights::none();
        for entry in text
            .split(|c: char| c.is_ascii_whitespace() || c == ';')
            .filter(|e| !e.is_empty())
        {
            let (path, methods) = entry.rsplit_once(':').ok_or(Error::InvalidScope)?;
            if path.is_empty() || (path != "*" && !path.starts_with('/')) {
                return Err(Error::InvalidScope);
            }
            let mut bits = 0u64;
            for m in methods.split(',') {
                bits |= match m {
                    "ALL" => ALL_METHODS,
                    "IPATCH" => Method::IPatch.bit(),
                    _ => METHOD_NAMES
                        .iter()
                        .find(|(_, name)| *name == m)
                        .ok_or(Error::InvalidScope)?
                        .0
                        .bit(),
                };
            }
            let path = Bytes::from_slice(path.as_bytes()).map_err(|_| Error::InvalidScope)?;
            r.entries
                .push((path, bits))
                .map_err(|_| Error::InvalidScope)?;
        }
        Ok(r)
    }

    /// The methods granted on `path` (`/` prefix optional; `*` entries
    /// cover every path).
    fn methods(&self, path: &str) -> u64 {
        let p = path.strip_prefix('/').unwrap_or(path);
        self.entries
            .iter()
            .filter(|(e, _)| {
                let e = e.as_slice();
                e == b"*" || e.strip_prefix(b"/").unwrap_or(e) == p.as_bytes()
            })
            .fold(0, |a, (_, m)| a | m)
    }

    /// True when `method` on `path` is granted.
    pub fn allows(&self, method: Method, path: &str) -> bool {
        self.methods(path) & method.bit() != 0
    }

    /// The verdict of these rights alone: allowed, the path granted but
    /// not the method, or the path not granted.
    fn decide(&self, method: Method, path: &str) -> Verdict {
        match self.methods(path) {
            0 => Verdict::Forbidden,
            m if m & method.bit() == 0 => Verdict::MethodNotAllowed,
            _ => Verdict::Allow,
        }
    }
}

/// A provisioned credential and its rights.
#[derive(Clone)]
struct Provisioned {
    credential: Credential,
    rights: Rights,
}

#[derive(Clone, PartialEq, Eq)]
enum Credential {
    Psk(Bytes<MAX_PROVISIONED_IDENTITY>),
    Key([u8; 32], [u8; 32]),
}

impl Credential {
    fn matches(&self, proof: &Proof<'_>) -> bool {
        match (self, proof) {
            (Credential::Psk(id), Proof::Psk(p)) => {
                id.len() == p.len() && bool::from(id.as_slice().ct_eq(p))
            }
            (Credential::Key(x, y), Proof::PublicKey(px, py)) => {
                bool::from(x.ct_eq(*px) & y.ct_eq(*py))
            }
            _ => false,
        }
    }
}

/// A session handle's number, as the DTLS glue records it with
/// [`AuthzInfo::note_handshake_key`] (for `cssf_dtls::SessionHandle`, its
/// `raw()` value).
pub trait SessionId {
    /// The number.
    fn session_id(&self) -> u64;
}

macro_rules! session_id_for_ints {
    ($($t:ty),*) => {$(
        impl SessionId for $t {
            fn session_id(&self) -> u64 {
                u64::from(*self)
            }
        }
    )*};
}
session_id_for_ints!(u8, u16, u32, u64);

#[cfg(feature = "dtls")]
impl SessionId for cssf_dtls::SessionHandle {
    fn session_id(&self) -> u64 {
        self.raw()
    }
}

/// What a live session is granted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Grant {
    /// The rights of provisioned credential `i`.
    Provisioned(usize),
    /// The scope of the token stored under this kid, at each request, as
    /// long as that token's PoP key is still the key the session proved
    /// (SHA-256 of it).
    Token(Kid, [u8; 32]),
    /// The scope of the token stored under this kid, as long as the OSCORE
    /// context bound to it is still this one (its digest).
    #[cfg(feature = "oscore-profile")]
    Oscore(Kid, [u8; 32]),
    /// Nothing beyond the public and anonymous rights.
    Anonymous,
}

/// What [`Authorizer::on_connected`] granted a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// A provisioned identity's or key's rights.
    Provisioned,
    /// A stored access token's scope.
    Token,
    /// Nothing but the public and anonymous rights.
    Anonymous,
}

/// The grants of up to `N` live sessions, keyed by their handle `S`, from
/// up to `P` provisioned credentials and the ACE tokens of an
/// [`AuthzInfo`] (see the [module docs](self)).
pub struct Authorizer<S, const N: usize = 8, const P: usize = 8> {
    provisioned: heapless::Vec<Provisioned, P>,
    sessions: heapless::Vec<(S, Grant), N>,
    public: Rights,
    anonymous: Rights,
}

impl<S, const N: usize, const P: usize> fmt::Debug for Authorizer<S, N, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("provisioned", &self.provisioned.len())
            .field("sessions", &self.sessions.len())
            .field("public", &self.public)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl<S: Clone + PartialEq + SessionId, const N: usize, const P: usize> Default
    for Authorizer<S, N, P>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + PartialEq + SessionId, const N: usize, const P: usize> Authorizer<S, N, P> {
    /// No credentials, no sessions, no public or anonymous rights.
    pub fn new() -> Self {
        Authorizer {
            provisioned: heapless::Vec::new(),
            sessions: heapless::Vec::new(),
            public: Rights::none(),
            anonymous: Rights::none(),
        }
    }

    /// What everyone may do, with or without a session (e.g.
    /// `POST /authz-info`, `GET /.well-known/core`).
    pub fn set_public(&mut self, rights: Rights) {
        self.public = rights;
    }

    /// What a session that proved no identity may do besides (default:
    /// nothing).
    pub fn set_anonymous(&mut self, rights: Rights) {
        self.anonymous = rights;
    }

    /// Grants `rights` to sessions that prove the PSK of `identity`.
    /// `StoreFull` beyond `P` credentials, `TooLarge` for an identity over
    /// [`MAX_PROVISIONED_IDENTITY`] bytes.
    pub fn provision_psk(&mut self, identity: &[u8], rights: Rights) -> Result<(), Error> {
        let id = Bytes::from_slice(identity).map_err(|_| Error::TooLarge)?;
        self.provision(Credential::Psk(id), rights)
    }

    /// Grants `rights` to sessions that prove the private key of the P-256
    /// public key `(x, y)`.
    pub fn provision_key(
        &mut self,
        x: &[u8; 32],
        y: &[u8; 32],
        rights: Rights,
    ) -> Result<(), Error> {
        self.provision(Credential::Key(*x, *y), rights)
    }

    fn provision(&mut self, credential: Credential, rights: Rights) -> Result<(), Error> {
        if let Some(p) = self
            .provisioned
            .iter_mut()
            .find(|p| p.credential == credential)
        {
            p.rights = rights;
            return Ok(());
        }
        self.provisioned
            .push(Provisioned { credential, rights })
            .map_err(|_| Error::StoreFull)
    }

    /// The public rights.
    pub fn public(&self) -> &Rights {
        &self.public
    }

    /// Live sessions with a grant.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// A session's handshake completed and proved `proof`: records its
    /// grant (replacing any earlier one for the same handle). Provisioned
    /// credentials come first; then a PSK identity that names a stored token
    /// (its kid, RFC 9202's `cnf` identity, or the token itself) whose key
    /// is the one the DTLS glue handed this handshake
    /// ([`AuthzInfo::handshake_key`] of the handle's [`SessionId`]), or a
    /// public key that is a stored token's PoP key (RFC 9202 §3.2); anything
    /// else is anonymous. `StoreFull` when `N` sessions already have grants (the
    /// session then has none: every request gets 4.01).
    pub fn on_connected<K, M, const T: usize, const R: usize, const E: usize>(
        &mut self,
        session: S,
        proof: Proof<'_>,
        tokens: &mut AuthzInfo<'_, K, M, T, R, E>,
    ) -> Result<Granted, Error>
    where
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
    {
        self.sessions.retain(|(s, _)| s != &session);
        // The key the DTLS glue gave this handshake, if it gave a token's:
        // taken, the handshake is over.
        let handed = match proof {
            // An OSCORE context has no handshake: the handshake keys
            // noted under the same number are a DTLS session's.
            #[cfg(feature = "oscore-profile")]
            Proof::Oscore { .. } => None,
            _ => tokens.take_handshake_key(session.session_id()),
        };
        let grant = if let Some(i) = self
            .provisioned
            .iter()
            .position(|p| p.credential.matches(&proof))
        {
            Grant::Provisioned(i)
        } else {
            let record = match proof {
                // The key the handshake was given for this identity, not
                // the one stored for the kid now: a token posted between
                // the key exchange and Finished is not this session's.
                Proof::Psk(id) => tokens
                    .kid_for_psk_identity(id)
                    .and_then(|kid| tokens.store().get(kid.as_slice()))
                    .filter(|r| r.pop_digest().is_some() && handed == r.pop_digest()),
                Proof::PublicKey(x, y) => tokens.store().iter().find(
                    |r| matches!(&r.pop, PopKey::Ec2 { x: kx, y: ky, .. } if kx == x && ky == y),
                ),
                Proof::Anonymous => None,
                #[cfg(feature = "oscore-profile")]
                Proof::Oscore {
                    recipient_id,
                    id_context,
                } => {
                    let grant = tokens
                        .oscore_grant(recipient_id, id_context)
                        .map_or(Grant::Anonymous, |(kid, ctx)| Grant::Oscore(kid, ctx));
                    return self.record(session, grant, tokens);
                }
            };
            record
                .and_then(|r| {
                    Some(Grant::Token(
                        Kid::from_slice(r.kid()).ok()?,
                        r.pop_digest()?,
                    ))
                })
                .unwrap_or(Grant::Anonymous)
        };
        self.record(session, grant, tokens)
    }

    fn record<K, M, const T: usize, const R: usize, const E: usize>(
        &mut self,
        session: S,
        grant: Grant,
        tokens: &mut AuthzInfo<'_, K, M, T, R, E>,
    ) -> Result<Granted, Error>
    where
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
    {
        let granted = match &grant {
            Grant::Provisioned(_) => Granted::Provisioned,
            Grant::Token(kid, _) => {
                // A proven session uses the token: it is not displaced for
                // a newcomer while it lives.
                tokens.mark_token_used(kid.as_slice());
                Granted::Token
            }
            #[cfg(feature = "oscore-profile")]
            Grant::Oscore(kid, _) => {
                tokens.mark_token_used(kid.as_slice());
                Granted::Token
            }
            Grant::Anonymous => Granted::Anonymous,
        };
        self.sessions
            .push((session, grant))
            .map_err(|_| Error::StoreFull)?;
        Ok(granted)
    }

    /// The session (or a handshake that never completed) ended: its grant,
    /// and any token key handed to its handshake, go. Call it for every
    /// DTLS `Closed`, so the record of keys handed to handshakes holds only
    /// handshakes in flight.
    pub fn on_closed<K, M, const T: usize, const R: usize, const E: usize>(
        &mut self,
        session: &S,
        tokens: &mut AuthzInfo<'_, K, M, T, R, E>,
    ) where
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
    {
        self.sessions.retain(|(s, _)| s != session);
        let _ = tokens.take_handshake_key(session.session_id());
    }

    /// The kid of the token a session's grant comes from, if it does (for
    /// logs and accounting).
    pub fn token_kid(&self, session: &S) -> Option<&[u8]> {
        self.sessions.iter().find_map(|(s, g)| match g {
            Grant::Token(kid, _) if s == session => Some(kid.as_slice()),
            #[cfg(feature = "oscore-profile")]
            Grant::Oscore(kid, _) if s == session => Some(kid.as_slice()),
            _ => None,
        })
    }

    /// Decides `method` on `path` for `who` at `now` (and the wall clock
    /// `wall`, if any, for token expiry). Token decisions are recorded in
    /// `tokens`' accounting events.
    pub fn decide<K, M, const T: usize, const R: usize, const E: usize>(
        &mut self,
        tokens: &mut AuthzInfo<'_, K, M, T, R, E>,
        who: Requester<S>,
        method: Method,
        path: &str,
        now: Duration,
        wall: Option<u64>,
    ) -> Verdict
    where
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
    {
        let v = self.verdict(tokens, who, method, path, now, wall);
        match v {
            Verdict::Allow => trace!("allowed: {:?} {:?}", method, path),
            refused => debug!("refused: {:?} {:?}: {:?}", method, path, refused),
        }
        v
    }

    fn verdict<K, M, const T: usize, const R: usize, const E: usize>(
        &mut self,
        tokens: &mut AuthzInfo<'_, K, M, T, R, E>,
        who: Requester<S>,
        method: Method,
        path: &str,
        now: Duration,
        wall: Option<u64>,
    ) -> Verdict
    where
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
    {
        if self.public.allows(method, path) {
            return Verdict::Allow;
        }
        let grant = match &who {
            Requester::Plain => None,
            Requester::Session(s) => self.sessions.iter().find(|(h, _)| h == s).map(|(_, g)| g),
        };
        match grant {
            None => Verdict::Unauthorized,
            Some(Grant::Anonymous) => match self.anonymous.decide(method, path) {
                Verdict::Allow => Verdict::Allow,
                _ => Verdict::Unauthorized,
            },
            Some(Grant::Provisioned(i)) => self
                .provisioned
                .get(*i)
                .map_or(Verdict::Unauthorized, |p| p.rights.decide(method, path)),
            Some(Grant::Token(kid, key)) => {
                let same_key = tokens
                    .store()
                    .get(kid.as_slice())
                    .and_then(|r| r.pop_digest())
                    .is_some_and(|d| bool::from(d.ct_eq(key)));
                if !same_key {
                    // The token for this kid was replaced by one for
                    // another key (or is gone): not this session's grant.
                    return Verdict::Unauthorized;
                }
                token_verdict(tokens.authorize(now, wall, Some(kid.as_slice()), method, path))
            }
            #[cfg(feature = "oscore-profile")]
            Some(Grant::Oscore(kid, ctx)) => {
                if !tokens.oscore_bound(kid.as_slice(), ctx) {
                    // The context lost its binding (token gone, or a new
                    // context for it): not this session's grant any more.
                    return Verdict::Unauthorized;
                }
                token_verdict(tokens.authorize(now, wall, Some(kid.as_slice()), method, path))
            }
        }
    }
}

/// RFC 9200 §5.10.2: a token's decision as the answer to the request.
fn token_verdict(d: Decision) -> Verdict {
    match d {
        Decision::Allow => Verdict::Allow,
        Decision::Deny(DenyReason::PathNotInScope) => Verdict::Forbidden,
        Decision::Deny(DenyReason::MethodNotAllowed) => Verdict::MethodNotAllowed,
        Decision::Deny(_) => Verdict::Unauthorized,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::issuer::{mac0, ClaimsSet, CnfOut, ScopeOut};
    use crate::{Aif, Algorithm, Config, CoseKey, KeyEntry};
    use proptest::prelude::*;

    type Rs<'k> = AuthzInfo<'k, [KeyEntry; 1]>;

    fn as_key() -> CoseKey {
        CoseKey::hmac(Algorithm::Hmac256, &[1; 32]).unwrap()
    }

    /// A token for `pop` granting `scope` (AIF), issued at `iat`.
    fn token(pop: &PopKey, scope: &[(&str, u64)], iat: i64, cti: &[u8]) -> std::vec::Vec<u8> {
        let mut aif = [0u8; 64];
        let n = Aif::emit(scope, &mut aif).unwrap();
        let c = ClaimsSet {
            aud: Some("rs"),
            exi: Some(1000),
            iat: Some(iat),
            cti: Some(cti),
            cnf: Some(CnfOut::Key(pop)),
            scope: Some(ScopeOut::AifBytes(&aif[..n])),
            ..Default::default()
        };
        let mut p = [0u8; 256];
        let n = c.emit(&mut p).unwrap();
        let mut t = [0u8; 300];
        let m = mac0(&as_key(), None, &p[..n], &mut t).unwrap();
        t[..m].to_vec()
    }

    fn sym(kid: &[u8], k: u8) -> PopKey {
        PopKey::Symmetric {
            kid: Some(Bytes::from_slice(kid).unwrap()),
            k: Bytes::from_slice(&[k; 16]).unwrap(),
        }
    }

    /// The DTLS glue handed session `s` the token key `[k; 16]`.
    fn handed(rs: &mut Rs<'_>, s: u8, k: u8) {
        use sha2::Digest;
        rs.note_handshake_key(u64::from(s), sha2::Sha256::digest([k; 16]).into());
    }

    fn post(rs: &mut Rs<'_>, t: &[u8], secs: u64) -> u8 {
        let mut t = t.to_vec();
        rs.post(Duration::from_secs(secs), None, &mut t, &mut [])
            .code
    }

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn token_grants_follow_the_stored_token_and_its_key() {
        let keys = [KeyEntry::new(as_key())];
        let mut rs: Rs<'_> = AuthzInfo::new(Config::new("rs"), &keys);
        let mut az: Authorizer<u8> = Authorizer::new();
        let wide = token(&sym(b"c1", 9), &[("/a", 0x7f)], 10, b"1");
        assert_eq!(post(&mut rs, &wide, 1), 0x41);
        // the bare kid and the RFC 9202 §3.3.2 cnf form both name it
        let cnf_form = [
            0xA1, 0x08, 0xA1, 0x01, 0xA2, 0x01, 0x04, 0x02, 0x42, b'c', b'1',
        ];
        for s in 1..=3 {
            handed(&mut rs, s, 9);
        }
        assert_eq!(
            az.on_connected(1, Proof::Psk(b"c1"), &mut rs),
            Ok(Granted::Token)
        );
        assert_eq!(
            az.on_connected(2, Proof::Psk(&cnf_form), &mut rs),
            Ok(Granted::Token)
        );
        assert_eq!(
            az.on_connected(3, Proof::Psk(&wide), &mut rs),
            Ok(Granted::Token)
        );
        // a session whose handshake was given another key (or none) is not
        // the token's
        handed(&mut rs, 6, 8);
        assert_eq!(
            az.on_connected(6, Proof::Psk(b"c1"), &mut rs),
            Ok(Granted::Anonymous)
        );
        assert_eq!(
            az.on_connected(7, Proof::Psk(b"c1"), &mut rs),
            Ok(Granted::Anonymous)
        );
        assert_eq!(az.token_kid(&3), Some(&b"c1"[..]));
        for s in 1..=3 {
            let v = az.decide(&mut rs, Requester::Session(s), Method::Put, "/a", T, None);
            assert_eq!(v, Verdict::Allow, "session {s}");
        }
        // a newer token for the kid narrows every session at once
        let narrow = token(&sym(b"c1", 9), &[("/a", 1)], 11, b"2");
        assert_eq!(post(&mut rs, &narrow, 1), 0x41);
        let v = az.decide(&mut rs, Requester::Session(1), Method::Put, "/a", T, None);
        assert_eq!(v, Verdict::MethodNotAllowed);
        let v = az.decide(&mut rs, Requester::Session(1), Method::Get, "/b", T, None);
        assert_eq!(v, Verdict::Forbidden);
        // a token for the kid with another key is refused while one lives
        let other = token(&sym(b"c1", 7), &[("/a", 0x7f)], 12, b"3");
        let mut t = other.clone();
        let r = rs.post(Duration::from_secs(1), None, &mut t, &mut []);
        assert_eq!(r.error, Some(Error::KidConflict));
        // expiry: 4.01
        handed(&mut rs, 4, 9);
        assert_eq!(
            az.on_connected(4, Proof::Psk(b"c1"), &mut rs),
            Ok(Granted::Token)
        );
        let late = Duration::from_secs(2000);
        let v = az.decide(
            &mut rs,
            Requester::Session(4),
            Method::Get,
            "/a",
            late,
            None,
        );
        assert_eq!(v, Verdict::Unauthorized);
        // once it expired, a token for the kid with another key is stored,
        // and is not the old sessions' grant
        let other = token(&sym(b"c1", 7), &[("/a", 0x7f)], 12, b"4");
        assert_eq!(post(&mut rs, &other, 1500), 0x41);
        let at = Duration::from_secs(1501);
        let v = az.decide(&mut rs, Requester::Session(1), Method::Get, "/a", at, None);
        assert_eq!(v, Verdict::Unauthorized);
        // an unknown identity is anonymous
        assert_eq!(
            az.on_connected(5, Proof::Psk(b"zz"), &mut rs),
            Ok(Granted::Anonymous)
        );
    }

    #[test]
    fn raw_public_key_pop() {
        let keys = [KeyEntry::new(as_key())];
        let mut rs: Rs<'_> = AuthzInfo::new(Config::new("rs"), &keys);
        let mut az: Authorizer<u8> = Authorizer::new();
        let sk = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
        let point =
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false);
        let x: [u8; 32] = point.x().unwrap().as_slice().try_into().unwrap();
        let y: [u8; 32] = point.y().unwrap().as_slice().try_into().unwrap();
        let pop = PopKey::Ec2 {
            kid: Some(Bytes::from_slice(b"k").unwrap()),
            x,
            y,
        };
        let r = post(&mut rs, &token(&pop, &[("/a", 1)], 1, b"1"), 1);
        assert_eq!(r, 0x41, "{:?}", rs.poll_event());
        assert_eq!(
            az.on_connected(1, Proof::PublicKey(&x, &y), &mut rs),
            Ok(Granted::Token)
        );
        assert_eq!(
            az.on_connected(2, Proof::PublicKey(&x, &[5; 32]), &mut rs),
            Ok(Granted::Anonymous)
        );
        let v = az.decide(&mut rs, Requester::Session(1), Method::Get, "/a", T, None);
        assert_eq!(v, Verdict::Allow);
        let v = az.decide(&mut rs, Requester::Session(2), Method::Get, "/a", T, None);
        assert_eq!(v, Verdict::Unauthorized);
    }

    #[test]
    fn capacity_and_anonymous_rights() {
        let keys = [KeyEntry::new(as_key())];
        let mut rs: Rs<'_> = AuthzInfo::new(Config::new("rs"), &keys);
        let mut az: Authorizer<u8, 2, 1> = Authorizer::new();
        az.provision_psk(b"a", Rights::read_only()).unwrap();
        assert_eq!(az.provision_psk(b"b", Rights::all()), Err(Error::StoreFull));
        // re-provisioning the same identity changes its rights in place
        az.provision_psk(b"a", Rights::all()).unwrap();
        az.set_anonymous(Rights::parse("/pub:GET").unwrap());
        assert_eq!(
            az.on_connected(1, Proof::Anonymous, &mut rs),
            Ok(Granted::Anonymous)
        );
        assert_eq!(
            az.on_connected(2, Proof::Psk(b"a"), &mut rs),
            Ok(Granted::Provisioned)
        );
        assert_eq!(
            az.on_connected(3, Proof::Psk(b"a"), &mut rs),
            Err(Error::StoreFull)
        );
        let v = az.decide(&mut rs, Requester::Session(3), Method::Get, "/x", T, None);
        assert_eq!(v, Verdict::Unauthorized);
        let v = az.decide(&mut rs, Requester::Session(1), Method::Get, "/pub", T, None);
        assert_eq!(v, Verdict::Allow);
        let v = az.decide(&mut rs, Requester::Session(1), Method::Put, "/pub", T, None);
        assert_eq!(v, Verdict::Unauthorized);
        let v = az.decide(
            &mut rs,
            Requester::Session(2),
            Method::Delete,
            "/x",
            T,
            None,
        );
        assert_eq!(v, Verdict::Allow);
        assert_eq!(Verdict::MethodNotAllowed.code(), Some(0x85));
        assert!(Rights::parse("x:GET").is_err());
        assert!(Rights::parse("/x").is_err());
        assert!(Rights::parse("/x:").is_err());
    }

    /// What a session may be connected with in the property test.
    #[derive(Debug, Clone, Copy)]
    enum P {
        A,
        B,
        Tok,
        Anon,
        Unknown,
    }

    fn proof_of(p: P, tok: &[u8]) -> Proof<'_> {
        match p {
            P::A => Proof::Psk(b"id-a"),
            P::B => Proof::PublicKey(&[2; 32], &[2; 32]),
            P::Tok => Proof::Psk(tok),
            P::Anon => Proof::Anonymous,
            P::Unknown => Proof::Psk(b"nobody"),
        }
    }

    /// The verdict a session connected with `p` must get: computed from
    /// its own credential only.
    fn expected(p: Option<P>, m: Method, path: &str) -> Verdict {
        let public = path == "/authz-info" && m == Method::Post;
        if public {
            return Verdict::Allow;
        }
        match p {
            None | Some(P::Anon | P::Unknown) => Verdict::Unauthorized,
            Some(P::A) => Rights::parse("/a:GET,PUT").unwrap().decide(m, path),
            Some(P::B) => Rights::parse("/b:ALL").unwrap().decide(m, path),
            Some(P::Tok) => match (path, m) {
                ("/t", Method::Get) => Verdict::Allow,
                ("/t", _) => Verdict::MethodNotAllowed,
                _ => Verdict::Forbidden,
            },
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u8, P),
        Close(u8),
        Ask(Option<u8>, u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = prop_oneof![
            Just(P::A),
            Just(P::B),
            Just(P::Tok),
            Just(P::Anon),
            Just(P::Unknown)
        ];
        prop_oneof![
            (0u8..6, p).prop_map(|(s, p)| Op::Connect(s, p)),
            (0u8..6).prop_map(Op::Close),
            (proptest::option::of(0u8..6), 0u8..4, 0u8..5).prop_map(|(s, m, x)| Op::Ask(s, m, x)),
        ]
    }

    proptest! {
        /// Through any lifecycle, a session's verdicts come from its own
        /// proof only: never from another session's, never from a closed
        /// one's, never from an earlier session with the same handle.
        #[test]
        fn decisions_never_use_another_sessions_grant(ops in proptest::collection::vec(op(), 1..60)) {
            let keys = [KeyEntry::new(as_key())];
            let mut rs: Rs<'_> = AuthzInfo::new(Config::new("rs"), &keys);
            let tok = token(&sym(b"tk", 5), &[("/t", 1)], 1, b"1");
            prop_assert_eq!(post(&mut rs, &tok, 0), 0x41);
            let mut az: Authorizer<u8, 4, 2> = Authorizer::new();
            az.set_public(Rights::parse("/authz-info:POST").unwrap());
            az.provision_psk(b"id-a", Rights::parse("/a:GET,PUT").unwrap()).unwrap();
            az.provision_key(&[2; 32], &[2; 32], Rights::parse("/b:ALL").unwrap()).unwrap();
            let mut model: std::collections::BTreeMap<u8, P> = Default::default();
            for op in ops {
                match op {
                    Op::Connect(s, p) => {
                        model.remove(&s);
                        if let P::Tok = p {
                            handed(&mut rs, s, 5);
                        }
                        if az.on_connected(s, proof_of(p, &tok), &mut rs).is_ok() {
                            model.insert(s, p);
                        }
                        prop_assert!(az.sessions() <= 4);
                    }
                    Op::Close(s) => {
                        az.on_closed(&s, &mut rs);
                        model.remove(&s);
                    }
                    Op::Ask(s, m, x) => {
                        let m = [Method::Get, Method::Put, Method::Post, Method::Delete][usize::from(m)];
                        let path = ["/a", "/b", "/t", "/authz-info", "/z"][usize::from(x)];
                        let (who, p) = match s {
                            Some(s) => (Requester::Session(s), model.get(&s).copied()),
                            None => (Requester::Plain, None),
                        };
                        let v = az.decide(&mut rs, who, m, path, T, None);
                        prop_assert_eq!(v, expected(p, m, path), "{:?} {:?} {}", who, m, path);
                    }
                }
            }
        }
    }
}
