//! CBOR Web Tokens (RFC 8392): the claims set, read lazily from the COSE
//! payload, and the verification flow as a consuming typestate
//! `Token<Unverified>` → [`Token::verify`] → `Token<Verified>` →
//! [`Token::validate`].
//!
//! Claims: iss (1), sub (2), aud (3), exp (4), nbf (5), iat (6), cti (7),
//! cnf (8, RFC 8747), scope (9, RFC 9200), exi (40, RFC 9200 §5.10.3).
//! Dates may be integers or floats (RFC 8392 §2, Appendix A.7).

use core::marker::PhantomData;
use core::ops::Range;
use core::time::Duration;

use cssf_provider::CryptoProvider;
use minicbor::Decoder;

use crate::aif::Aif;
use crate::cbor::{self, Label};
use crate::cose::{KeyResolver, Limits, Message, MessageKind};
use crate::pop::Cnf;
use crate::Error;

/// Claim key `iss`.
pub const ISS: i64 = 1;
/// Claim key `sub`.
pub const SUB: i64 = 2;
/// Claim key `aud`.
pub const AUD: i64 = 3;
/// Claim key `exp`.
pub const EXP: i64 = 4;
/// Claim key `nbf`.
pub const NBF: i64 = 5;
/// Claim key `iat`.
pub const IAT: i64 = 6;
/// Claim key `cti`.
pub const CTI: i64 = 7;
/// Claim key `cnf` (RFC 8747).
pub const CNF: i64 = 8;
/// Claim key `scope` (RFC 9200 §5.9.2).
pub const SCOPE: i64 = 9;
/// Claim key `exi` (RFC 9200 §5.10.3, IANA CWT registry).
pub const EXI: i64 = 40;

/// At most this many COSE layers (e.g. Sign1 inside Encrypt0, RFC 8392 A.6).
pub const MAX_NESTING: usize = 2;

/// The scope claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// An AIF scope (RFC 9237), given directly or wrapped in a byte string.
    Aif(Aif<'a>),
    /// A text scope, interpreted by a [`crate::aif::ScopeMapper`].
    Text(&'a str),
}

/// The audience claim: a string, or an array of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// A single audience.
    One(&'a str),
    /// Several audiences (the serialized CBOR array of strings).
    Many(&'a [u8]),
}

impl Audience<'_> {
    /// Whether `aud` is (one of) the audience(s).
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => *a == aud,
            Audience::Many(raw) => {
                let mut d = Decoder::new(raw);
                let Ok(n) = cbor::array(&mut d) else {
                    return false;
                };
                (0..n).any(|_| cbor::text(&mut d).map(|a| a == aud).unwrap_or(false))
            }
        }
    }
}

/// A parsed CWT claims set, borrowing from the payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims<'a> {
    /// Issuer.
    pub iss: Option<&'a str>,
    /// Subject.
    pub sub: Option<&'a str>,
    /// Audience.
    pub aud: Option<Audience<'a>>,
    /// Expiration time (seconds since the epoch, rounded down).
    pub exp: Option<i64>,
    /// Not before (seconds since the epoch, rounded up).
    pub nbf: Option<i64>,
    /// Issued at (seconds since the epoch, rounded down).
    pub iat: Option<i64>,
    /// CWT ID.
    pub cti: Option<&'a [u8]>,
    /// Confirmation (proof-of-possession key).
    pub cnf: Option<Cnf<'a>>,
    /// Scope.
    pub scope: Option<Scope<'a>>,
    /// Expires in: lifetime in seconds from reception (RFC 9200 §5.10.3).
    pub exi: Option<u64>,
}

#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
}

/// The largest NumericDate magnitude taken from a floating-point number.
const MAX_FLOAT_DATE: u128 = 9_000_000_000_000_000_000;

/// Seconds from an IEEE 754 binary floating-point number given as its
/// `bits` with `exp_bits` exponent and `mant_bits` fraction bits (half,
/// single or double precision), rounded `round`; infinities, NaNs and
/// magnitudes above [`MAX_FLOAT_DATE`] are malformed. Integer arithmetic
/// only: no software floating point is linked on targets without an FPU
/// for doubles.
fn float_bits_to_secs(
    bits: u64,
    exp_bits: u32,
    mant_bits: u32,
    round: Round,
) -> Result<i64, Error> {
    let exp_max = (1u64 << exp_bits) - 1;
    let negative = (bits >> (exp_bits + mant_bits)) & 1 == 1;
    let biased = (bits >> mant_bits) & exp_max;
    let fraction = bits & ((1u64 << mant_bits) - 1);
    if biased == exp_max {
        return Err(Error::Malformed); // infinity or NaN
    }
    let bias = (1i64 << (exp_bits - 1)) - 1;
    // value = significand * 2^shift
    let (significand, shift) = if biased == 0 {
        (fraction, 1 - bias - i64::from(mant_bits))
    } else {
        (
            fraction | (1u64 << mant_bits),
            biased as i64 - bias - i64::from(mant_bits),
        )
    };
    let (whole, inexact) = if shift >= 0 {
        if shift > 64 {
            return Err(Error::Malformed);
        }
        (u128::from(significand) << shift, false)
    } else if shift <= -64 {
        (0, significand != 0)
    } else {
        let s = shift.unsigned_abs() as u32;
        (
            u128::from(significand >> s),
            significand & ((1u64 << s) - 1) != 0,
        )
    };
    if whole > MAX_FLOAT_DATE || (whole == MAX_FLOAT_DATE && inexact) {
        return Err(Error::Malformed);
    }
    let t = i64::try_from(whole).map_err(|_| Error::Malformed)?;
    Ok(match (negative, round, inexact) {
        (false, Round::Up, true) => t + 1,
        (true, Round::Down, true) => -t - 1,
        (true, _, _) => -t,
        _ => t,
    })
}

/// The big-endian bytes after the initial byte of a float item of `n`
/// bytes, as an integer; the decoder moves past the item.
fn float_bits(d: &mut Decoder<'_>, n: usize) -> Result<u64, Error> {
    let p = d.position();
    let b = d.input().get(p + 1..p + 1 + n).ok_or(Error::Malformed)?;
    let bits = b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    d.set_position(p + 1 + n);
    Ok(bits)
}

/// The first byte of the next item (its major type and additional
/// information: definite lengths are additional information 0..=27).
fn first_byte(d: &Decoder<'_>) -> Result<u8, Error> {
    d.input().get(d.position()).copied().ok_or(Error::Malformed)
}

/// Reads a NumericDate: an integer or a floating-point number (16/32/64-bit).
fn date(d: &mut Decoder<'_>, round: Round) -> Result<i64, Error> {
    match d.input().get(d.position()).copied() {
        Some(0xf9) => float_bits_to_secs(float_bits(d, 2)?, 5, 10, round),
        Some(0xfa) => float_bits_to_secs(float_bits(d, 4)?, 8, 23, round),
        Some(0xfb) => float_bits_to_secs(float_bits(d, 8)?, 11, 52, round),
        _ => cbor::int(d),
    }
}

impl<'a> Claims<'a> {
    /// Parses a claims set (a CBOR map) from `payload`. Unknown claims are
    /// skipped (RFC 8392 §3); a known claim appearing twice is refused.
    pub fn parse(payload: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        // One pass: every value is read by a bounded typed reader or skipped
        // with the depth limit, so no separate well-formedness walk is needed.
        let mut d = Decoder::new(payload);
        let n = cbor::map(&mut d)?;
        let mut c = Claims::default();
        let mut seen = 0u64;
        for _ in 0..n {
            let l = cbor::label(&mut d)?;
            let key = match l {
                Label::Int(k @ 1..=9) | Label::Int(k @ EXI) => k,
                _ => {
                    cbor::skip(&mut d, limits.max_depth)?;
                    continue;
                }
            };
            let bit = 1u64 << key;
            if seen & bit != 0 {
                return Err(Error::Malformed);
            }
            seen |= bit;
            match key {
                ISS => c.iss = Some(cbor::text(&mut d)?),
                SUB => c.sub = Some(cbor::text(&mut d)?),
                AUD => {
                    c.aud = Some(match first_byte(&d)? {
                        0x80..=0x9b => {
                            let start = d.position();
                            cbor::skip(&mut d, 1)?;
                            let raw = payload.get(start..d.position()).ok_or(Error::Malformed)?;
                            Audience::Many(raw)
                        }
                        _ => Audience::One(cbor::text(&mut d)?),
                    })
                }
                EXP => c.exp = Some(date(&mut d, Round::Down)?),
                NBF => c.nbf = Some(date(&mut d, Round::Up)?),
                IAT => c.iat = Some(date(&mut d, Round::Down)?),
                CTI => c.cti = Some(cbor::bytes(&mut d)?),
                CNF => c.cnf = Some(Cnf::read(&mut d, limits.max_depth)?),
                SCOPE => {
                    c.scope = Some(match first_byte(&d)? {
                        0x60..=0x7b => Scope::Text(cbor::text(&mut d)?),
                        0x40..=0x5b => Scope::Aif(Aif::parse(cbor::bytes(&mut d)?)?),
                        0x80..=0x9b => {
                            let start = d.position();
                            cbor::skip(&mut d, 2).map_err(|_| Error::InvalidScope)?;
                            let raw = payload.get(start..d.position()).ok_or(Error::Malformed)?;
                            Scope::Aif(Aif::parse(raw)?)
                        }
                        _ => return Err(Error::InvalidScope),
                    })
                }
                EXI => c.exi = Some(cbor::uint(&mut d)?),
                _ => cbor::skip(&mut d, limits.max_depth)?,
            }
        }
        if d.position() != payload.len() {
            return Err(Error::Malformed);
        }
        Ok(c)
    }
}

/// What a resource server checks claims against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation<'a> {
    /// This resource server's audience name.
    pub audience: &'a str,
    /// Allowed clock skew in seconds for `exp` / `nbf`.
    pub leeway_secs: u64,
}

/// When a validated token stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// `exp` in seconds since the epoch, checked against the wall clock.
    pub exp: Option<i64>,
    /// Deadline on the caller's monotonic clock (from `exi`).
    pub deadline: Option<Duration>,
}

impl Lifetime {
    /// Whether the token has expired at `now` (monotonic) / `wall` (seconds
    /// since the epoch, if the device has a clock), allowing `leeway_secs`.
    pub fn expired(&self, now: Duration, wall: Option<u64>, leeway_secs: u64) -> bool {
        if let Some(deadline) = self.deadline {
            if now >= deadline {
                return true;
            }
        }
        match (self.exp, wall) {
            (Some(exp), Some(w)) => i128::from(w) > i128::from(exp) + i128::from(leeway_secs),
            _ => false,
        }
    }
}

impl Claims<'_> {
    /// Checks audience and lifetime (RFC 9200 §5.10.1, §5.10.3).
    ///
    /// - `aud` must be present and name `v.audience`.
    /// - With an `exi` claim the token needs a `cti` and expires `exi`
    ///   seconds after `now`, the monotonic time of reception.
    /// - `exp` / `nbf` are checked against `wall` when the device has a
    ///   clock; a token whose only lifetime is `exp`, on a device without a
    ///   clock, or with no lifetime at all, is refused ([`Error::NoLifetime`]).
    /// - Devices without a wall clock (`wall == None`, RFC 9200 §5.10.3)
    ///   cannot check `exp` or `nbf` and rely on `exi`: a token with `nbf`
    ///   (and/or `exp`) but no `exi` is refused ([`Error::NoLifetime`]); a
    ///   token with `exi` is accepted for `exi` seconds from reception and
    ///   its `nbf` is not checked (there is no time to check it against).
    /// - The `exi` Sequence Number rule (the `cti` of an `exi` token must be
    ///   above the highest expired one of its issuer) needs state across
    ///   tokens and is applied by [`crate::AuthzInfo`] ([`crate::exi`]).
    pub fn validate(
        &self,
        v: &Validation<'_>,
        now: Duration,
        wall: Option<u64>,
    ) -> Result<Lifetime, Error> {
        match &self.aud {
            Some(a) if a.contains(v.audience) => {}
            _ => return Err(Error::WrongAudience),
        }
        let mut life = Lifetime::default();
        if let Some(exi) = self.exi {
            if self.cti.is_none() {
                return Err(Error::MissingClaim);
            }
            life.deadline = Some(now.saturating_add(Duration::from_secs(exi)));
        }
        if let Some(w) = wall {
            let w = i128::from(w);
            let leeway = i128::from(v.leeway_secs);
            if let Some(nbf) = self.nbf {
                if w + leeway < i128::from(nbf) {
                    return Err(Error::NotYetValid);
                }
            }
            if let Some(exp) = self.exp {
                if w > i128::from(exp) + leeway {
                    return Err(Error::Expired);
                }
                life.exp = Some(exp);
            }
        }
        if life.exp.is_none() && life.deadline.is_none() {
            return Err(Error::NoLifetime);
        }
        if life.expired(now, wall, v.leeway_secs) {
            return Err(Error::Expired);
        }
        Ok(life)
    }
}

/// Typestate marker: the COSE protection has not been checked.
#[derive(Debug)]
pub enum Unverified {}
/// Typestate marker: signature / MAC / AEAD checked.
#[derive(Debug)]
pub enum Verified {}

/// A CWT moving through verification.
#[derive(Debug)]
pub struct Token<'a, S> {
    buf: &'a mut [u8],
    claims: Option<Claims<'a>>,
    outer: Option<MessageKind>,
    limits: Limits,
    crypto: &'static CryptoProvider,
    _state: PhantomData<S>,
}

fn subrange(outer: &[u8], inner: &[u8]) -> Result<Range<usize>, Error> {
    let start = (inner.as_ptr() as usize)
        .checked_sub(outer.as_ptr() as usize)
        .ok_or(Error::Malformed)?;
    let end = start.checked_add(inner.len()).ok_or(Error::Malformed)?;
    if end > outer.len() {
        return Err(Error::Malformed);
    }
    Ok(start..end)
}

impl<'a> Token<'a, Unverified> {
    /// Takes the token bytes (an Encrypt0 token is decrypted in place).
    /// ES256 signatures are checked by
    /// [`rustcrypto::PROVIDER`](cssf_provider::rustcrypto::PROVIDER)
    /// unless [`crypto`](Self::crypto) selects another provider.
    pub fn new(buf: &'a mut [u8], limits: Limits) -> Self {
        Token {
            buf,
            claims: None,
            outer: None,
            limits,
            crypto: &cssf_provider::rustcrypto::PROVIDER,
            _state: PhantomData,
        }
    }

    /// Checks ES256 (COSE_Sign1) signatures through `provider`'s
    /// [`P256`](cssf_provider::P256) entry: one
    /// [`verify_digest`](cssf_provider::P256::verify_digest) per signed
    /// layer. MACs and AEADs do not go through the provider yet.
    ///
    /// ```
    /// use cssf_auth::cwt::Token;
    /// use cssf_auth::Limits;
    /// let mut buf = [0u8; 4];
    /// let token = Token::new(&mut buf, Limits::default())
    ///     .crypto(&cssf_provider::rustcrypto::PROVIDER);
    /// # let _ = token;
    /// ```
    #[must_use]
    pub fn crypto(mut self, provider: &'static CryptoProvider) -> Self {
        self.crypto = provider;
        self
    }

    /// Verifies the COSE layers (at most [`MAX_NESTING`]) with keys from
    /// `keys`, selected by each layer's protected `alg` and `kid`, and parses
    /// the claims.
    pub fn verify<K: KeyResolver + ?Sized>(
        self,
        keys: &K,
        external_aad: &[u8],
    ) -> Result<Token<'a, Verified>, Error> {
        let Token {
            buf,
            limits,
            crypto,
            ..
        } = self;
        let (claims, outer) = verify_layers(buf, keys, external_aad, &limits, crypto)?;
        Ok(Token {
            buf: &mut [],
            claims: Some(claims),
            outer,
            limits,
            crypto,
            _state: PhantomData,
        })
    }
}

/// Verifies up to [`MAX_NESTING`] COSE layers and parses the claims.
fn verify_layers<'a, K: KeyResolver + ?Sized>(
    buf: &'a mut [u8],
    keys: &K,
    external_aad: &[u8],
    limits: &Limits,
    crypto: &CryptoProvider,
) -> Result<(Claims<'a>, Option<MessageKind>), Error> {
    let mut range = 0..buf.len();
    let mut outer = None;
    let mut level = 0;
    loop {
        if level >= MAX_NESTING {
            return Err(Error::TooDeep);
        }
        level += 1;
        let here = buf.get(range.clone()).ok_or(Error::Malformed)?;
        let msg = Message::parse(here, limits)?;
        let alg = msg.header().alg.ok_or(Error::MissingAlg)?;
        let key = keys
            .resolve(msg.header().kid, alg)
            .ok_or(Error::UnknownKey)?;
        if key.algorithm() != alg {
            return Err(Error::UnknownKey);
        }
        let kind = alg.message_kind();
        outer.get_or_insert(kind);
        let payload = match msg {
            Message::Sign1(m) => {
                m.verify_with(key, external_aad, crypto)?;
                let r = subrange(here, m.payload)?;
                range.start + r.start..range.start + r.end
            }
            Message::Mac0(m) => {
                m.verify(key, external_aad)?;
                let r = subrange(here, m.payload)?;
                range.start + r.start..range.start + r.end
            }
            Message::Encrypt0(m) => {
                let prep = m.prepare(key, external_aad)?;
                let region = buf.get_mut(range.clone()).ok_or(Error::Malformed)?;
                let r = prep.decrypt_in_place(key, region)?;
                range.start + r.start..range.start + r.end
            }
        };
        range = payload;
        // A nested COSE message starts with a tag (major type 6).
        let first = buf.get(range.start).copied();
        if matches!(first, Some(b) if b >> 5 == 6) {
            continue;
        }
        break;
    }
    let buf: &'a [u8] = buf;
    let payload = buf.get(range).ok_or(Error::Malformed)?;
    let claims = Claims::parse(payload, limits)?;
    Ok((claims, outer))
}

impl<'a> Token<'a, Verified> {
    /// The verified claims.
    pub fn claims(&self) -> &Claims<'a> {
        // Always Some in the Verified state.
        match &self.claims {
            Some(c) => c,
            None => &EMPTY_CLAIMS,
        }
    }

    /// The outermost COSE message type.
    pub fn kind(&self) -> Option<MessageKind> {
        self.outer
    }

    /// The limits the token was parsed with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks audience and lifetime; see [`Claims::validate`].
    pub fn validate(
        &self,
        v: &Validation<'_>,
        now: Duration,
        wall: Option<u64>,
    ) -> Result<Lifetime, Error> {
        self.claims().validate(v, now, wall)
    }

    /// Consumes the token, returning its claims.
    pub fn into_claims(self) -> Claims<'a> {
        self.claims.unwrap_or_default()
    }
}

static EMPTY_CLAIMS: Claims<'static> = Claims {
    iss: None,
    sub: None,
    aud: None,
    exp: None,
    nbf: None,
    iat: None,
    cti: None,
    cnf: None,
    scope: None,
    exi: None,
};

/// Verifies `token` (decrypting in place if needed) and returns its claims:
/// shorthand for [`Token::new`] + [`Token::verify`].
pub fn verify<'a, K: KeyResolver + ?Sized>(
    token: &'a mut [u8],
    keys: &K,
    limits: Limits,
) -> Result<Claims<'a>, Error> {
    verify_layers(
        token,
        keys,
        &[],
        &limits,
        &cssf_provider::rustcrypto::PROVIDER,
    )
    .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the same rounding with the host's floating point.
    fn by_float(f: f64, round: Round) -> Result<i64, Error> {
        if !f.is_finite() || !(-9.0e18..=9.0e18).contains(&f) {
            return Err(Error::Malformed);
        }
        let t = f as i64;
        let tf = t as f64;
        Ok(match round {
            Round::Down if tf > f => t - 1,
            Round::Up if tf < f => t + 1,
            _ => t,
        })
    }

    fn double(f: f64, round: Round) -> Result<i64, Error> {
        float_bits_to_secs(f.to_bits(), 11, 52, round)
    }

    #[test]
    fn float_dates_round_safely() {
        assert_eq!(double(1443944944.5, Round::Down), Ok(1443944944));
        assert_eq!(double(1443944944.5, Round::Up), Ok(1443944945));
        assert_eq!(double(-1.5, Round::Down), Ok(-2));
        assert_eq!(double(-1.5, Round::Up), Ok(-1));
        assert_eq!(double(-0.0, Round::Down), Ok(0));
        assert_eq!(double(1e-300, Round::Up), Ok(1));
        assert_eq!(double(5e-324, Round::Down), Ok(0)); // subnormal
        assert_eq!(double(-5e-324, Round::Down), Ok(-1));
        assert_eq!(double(9.0e18, Round::Up), Ok(9_000_000_000_000_000_000));
        assert_eq!(double(9.0e18 + 2048.0, Round::Down), Err(Error::Malformed));
        assert_eq!(double(f64::NAN, Round::Down), Err(Error::Malformed));
        assert_eq!(double(f64::INFINITY, Round::Up), Err(Error::Malformed));
        assert_eq!(double(f64::MAX, Round::Up), Err(Error::Malformed));
        // Half precision: 1.0, 65504 (the largest), 2^-24 (the smallest
        // subnormal), -2.5, infinity.
        assert_eq!(float_bits_to_secs(0x3c00, 5, 10, Round::Down), Ok(1));
        assert_eq!(float_bits_to_secs(0x7bff, 5, 10, Round::Down), Ok(65504));
        assert_eq!(float_bits_to_secs(0x0001, 5, 10, Round::Up), Ok(1));
        assert_eq!(float_bits_to_secs(0xc100, 5, 10, Round::Down), Ok(-3));
        assert_eq!(
            float_bits_to_secs(0x7c00, 5, 10, Round::Down),
            Err(Error::Malformed)
        );
        // Single precision: 1443944944.0 is not exact in 24 bits.
        let f = 1443944944.0f32;
        assert_eq!(
            float_bits_to_secs(u64::from(f.to_bits()), 8, 23, Round::Down),
            by_float(f64::from(f), Round::Down)
        );
    }

    #[test]
    fn float_dates_agree_with_floating_point() {
        // Integer decoding against the host's floating point, over values
        // of every magnitude and sign, both roundings.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = match i % 4 {
                0 => f64::from_bits(x),
                1 => (x >> 11) as f64 / 1024.0 * if x & 1 == 0 { 1.0 } else { -1.0 },
                2 => f64::from(f32::from_bits(x as u32)),
                _ => ((x >> 40) as f64) + 0.5,
            };
            for round in [Round::Down, Round::Up] {
                assert_eq!(double(f, round), by_float(f, round), "{f:e}");
            }
            let h = (x >> 48) as u16;
            let hf = {
                let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
                let e = i32::from((h >> 10) & 0x1f);
                let m = f64::from(h & 0x3ff);
                sign * match e {
                    0 => m * 2f64.powi(-24),
                    31 if m == 0.0 => f64::INFINITY,
                    31 => f64::NAN,
                    e => (1.0 + m / 1024.0) * 2f64.powi(e - 15),
                }
            };
            for round in [Round::Down, Round::Up] {
                assert_eq!(
                    float_bits_to_secs(u64::from(h), 5, 10, round),
                    by_float(hf, round),
                    "half {h:#06x}"
                );
            }
        }
    }

    #[test]
    fn rfc8392_a1_claims() {
        // RFC 8392 A.1 claims set
        let hex = "a70175636f61703a2f2f61732e6578616d706c652e636f6d02656572696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612aeb0051a5610d9f0061a5610d9f007420b71";
        let bytes: std::vec::Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let c = Claims::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(c.iss, Some("coap://as.example.com"));
        assert_eq!(c.sub, Some("erikw"));
        assert_eq!(c.aud, Some(Audience::One("coap://light.example.com")));
        assert_eq!(c.exp, Some(1444064944));
        assert_eq!(c.nbf, Some(1443944944));
        assert_eq!(c.iat, Some(1443944944));
        assert_eq!(c.cti, Some(&[0x0b, 0x71][..]));
        let v = Validation {
            audience: "coap://light.example.com",
            leeway_secs: 0,
        };
        let t0 = Duration::ZERO;
        assert!(c.validate(&v, t0, Some(1444000000)).is_ok());
        assert_eq!(c.validate(&v, t0, Some(1444064945)), Err(Error::Expired));
        assert_eq!(
            c.validate(&v, t0, Some(1443944943)),
            Err(Error::NotYetValid)
        );
        assert_eq!(c.validate(&v, t0, None), Err(Error::NoLifetime));
        let other = Validation {
            audience: "coap://other",
            leeway_secs: 0,
        };
        assert_eq!(
            c.validate(&other, t0, Some(1444000000)),
            Err(Error::WrongAudience)
        );
    }
}
