//! COSE header parameters (RFC 9052 §3): the protected and unprotected
//! buckets, read with the strict rules a verifier needs.
//!
//! - `alg` is taken ONLY from the protected bucket; `alg` in the unprotected
//!   bucket is refused ([`Error::AlgNotProtected`]); a missing `alg` is
//!   [`Error::MissingAlg`]; an algorithm we do not implement is
//!   [`Error::UnsupportedAlgorithm`].
//! - `crit` must be protected, non-empty, and list only labels this
//!   implementation processes; anything else is [`Error::UnknownCritical`].
//! - A label may appear once across both buckets ([`Error::DuplicateLabel`]).
//! - `IV` and `Partial IV` together are refused ([`Error::BadIv`]).
//! - Other labels are skipped (depth-bounded).

use minicbor::Decoder;

use crate::cbor::{self, Label};
use crate::cose::Algorithm;
use crate::Error;

/// Header label `alg`.
pub const ALG: i64 = 1;
/// Header label `crit`.
pub const CRIT: i64 = 2;
/// Header label `content type`.
pub const CONTENT_TYPE: i64 = 3;
/// Header label `kid`.
pub const KID: i64 = 4;
/// Header label `IV`.
pub const IV: i64 = 5;
/// Header label `Partial IV`.
pub const PARTIAL_IV: i64 = 6;

/// At most this many labels across both buckets.
pub const MAX_LABELS: usize = 16;
/// At most this many labels in `crit`.
pub const MAX_CRIT: usize = 4;

/// The header parameters of one COSE message that this crate processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header<'a> {
    /// The algorithm (protected bucket only).
    pub alg: Option<Algorithm>,
    /// Key identifier (either bucket).
    pub kid: Option<&'a [u8]>,
    /// Full IV (either bucket).
    pub iv: Option<&'a [u8]>,
    /// Partial IV (either bucket).
    pub partial_iv: Option<&'a [u8]>,
    /// Content type as an integer CoAP content format, if given as one.
    pub content_type: Option<i64>,
}

/// Labels seen so far: a bitmask for small integer labels (the common
/// case) and a short list for the rest.
struct Seen<'a> {
    small: u64,
    others: [Option<Label<'a>>; MAX_LABELS],
    n: usize,
}

fn small_bit(l: &Label<'_>) -> Option<u64> {
    match l {
        Label::Int(i @ -32..=31) => Some(1u64 << (i + 32)),
        _ => None,
    }
}

impl<'a> Seen<'a> {
    fn insert(&mut self, l: Label<'a>) -> Result<(), Error> {
        if let Some(bit) = small_bit(&l) {
            if self.small & bit != 0 {
                return Err(Error::DuplicateLabel);
            }
            self.small |= bit;
            return Ok(());
        }
        if self.others.iter().flatten().any(|x| *x == l) {
            return Err(Error::DuplicateLabel);
        }
        *self.others.get_mut(self.n).ok_or(Error::TooLarge)? = Some(l);
        self.n += 1;
        Ok(())
    }

    /// Whether `l` was seen among the first `n` other labels / in `small`.
    fn contains(&self, l: &Label<'a>, small: u64, n: usize) -> bool {
        match small_bit(l) {
            Some(bit) => small & bit != 0,
            None => self
                .others
                .get(..n)
                .unwrap_or(&[])
                .iter()
                .flatten()
                .any(|x| x == l),
        }
    }
}

/// Parses the serialized protected bucket and then the unprotected map at
/// the decoder's position.
pub(crate) fn parse<'a>(
    protected: &'a [u8],
    unprotected: &mut Decoder<'a>,
    max_depth: usize,
) -> Result<Header<'a>, Error> {
    let mut h = Header::default();
    let mut seen = Seen {
        small: 0,
        others: [None; MAX_LABELS],
        n: 0,
    };
    let mut crit: [Option<Label<'a>>; MAX_CRIT] = [None; MAX_CRIT];
    let (mut protected_small, mut protected_n) = (0u64, 0usize);
    if !protected.is_empty() {
        cbor::check_single_item(protected, max_depth)?;
        let mut d = Decoder::new(protected);
        bucket(&mut d, true, &mut h, &mut seen, &mut crit, max_depth)?;
        protected_small = seen.small;
        protected_n = seen.n;
    }
    bucket(unprotected, false, &mut h, &mut seen, &mut crit, max_depth)?;
    for c in crit.iter().flatten() {
        let understood = matches!(c, Label::Int(ALG | CONTENT_TYPE | KID | IV | PARTIAL_IV));
        let present = seen.contains(c, protected_small, protected_n);
        if !understood || !present {
            return Err(Error::UnknownCritical);
        }
    }
    if h.iv.is_some() && h.partial_iv.is_some() {
        return Err(Error::BadIv);
    }
    if h.alg.is_none() {
        return Err(Error::MissingAlg);
    }
    Ok(h)
}

fn bucket<'a>(
    d: &mut Decoder<'a>,
    protected: bool,
    h: &mut Header<'a>,
    seen: &mut Seen<'a>,
    crit: &mut [Option<Label<'a>>; MAX_CRIT],
    max_depth: usize,
) -> Result<(), Error> {
    let n = cbor::map(d)?;
    for _ in 0..n {
        let l = cbor::label(d)?;
        seen.insert(l)?;
        match l {
            Label::Int(ALG) => {
                if !protected {
                    return Err(Error::AlgNotProtected);
                }
                let id = match cbor::label(d)? {
                    Label::Int(i) => i,
                    Label::Text(_) => return Err(Error::UnsupportedAlgorithm),
                };
                h.alg = Some(Algorithm::from_id(id).ok_or(Error::UnsupportedAlgorithm)?);
            }
            Label::Int(CRIT) => {
                if !protected {
                    return Err(Error::UnknownCritical);
                }
                let k = cbor::array(d).map_err(|_| Error::UnknownCritical)?;
                if k == 0 || k > MAX_CRIT as u64 {
                    return Err(Error::UnknownCritical);
                }
                for slot in crit.iter_mut().take(k as usize) {
                    *slot = Some(cbor::label(d)?);
                }
            }
            Label::Int(CONTENT_TYPE) => match cbor::label(d)? {
                Label::Int(i) => h.content_type = Some(i),
                Label::Text(_) => h.content_type = None,
            },
            Label::Int(KID) => h.kid = Some(cbor::bytes(d)?),
            Label::Int(IV) => h.iv = Some(cbor::bytes(d)?),
            Label::Int(PARTIAL_IV) => h.partial_iv = Some(cbor::bytes(d)?),
            _ => cbor::skip(d, max_depth)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_hex(protected: &[u8], unprotected: &[u8]) -> Result<Header<'static>, Error> {
        let p: &'static [u8] = std::boxed::Box::leak(protected.to_vec().into_boxed_slice());
        let u: &'static [u8] = std::boxed::Box::leak(unprotected.to_vec().into_boxed_slice());
        parse(p, &mut Decoder::new(u), 8)
    }

    #[test]
    fn alg_only_from_protected() {
        let h = parse_hex(&[0xa1, 0x01, 0x26], &[0xa1, 0x04, 0x42, 0x31, 0x31]).unwrap();
        assert_eq!(h.alg, Some(Algorithm::Es256));
        assert_eq!(h.kid, Some(&b"11"[..]));
        assert_eq!(
            parse_hex(&[], &[0xa1, 0x01, 0x26]),
            Err(Error::AlgNotProtected)
        );
        assert_eq!(parse_hex(&[], &[0xa0]), Err(Error::MissingAlg));
        assert_eq!(
            parse_hex(&[0xa1, 0x01, 0x38, 0x22], &[0xa0]),
            Err(Error::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn duplicates_and_crit() {
        // kid in both buckets
        assert_eq!(
            parse_hex(
                &[0xa2, 0x01, 0x05, 0x04, 0x41, 0x01],
                &[0xa1, 0x04, 0x41, 0x01]
            ),
            Err(Error::DuplicateLabel)
        );
        // crit [99] with 99 present: unknown
        assert_eq!(
            parse_hex(
                &[0xa3, 0x01, 0x05, 0x02, 0x81, 0x18, 0x63, 0x18, 0x63, 0x00],
                &[0xa0]
            ),
            Err(Error::UnknownCritical)
        );
        // crit [4] with kid protected: understood
        let h = parse_hex(
            &[0xa3, 0x01, 0x05, 0x02, 0x81, 0x04, 0x04, 0x41, 0x07],
            &[0xa0],
        )
        .unwrap();
        assert_eq!(h.kid, Some(&[7u8][..]));
        // IV and Partial IV together
        assert_eq!(
            parse_hex(
                &[0xa1, 0x01, 0x0a],
                &[0xa2, 0x05, 0x41, 0x00, 0x06, 0x41, 0x01]
            ),
            Err(Error::BadIv)
        );
    }
}
