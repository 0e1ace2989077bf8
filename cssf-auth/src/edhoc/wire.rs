//! The EDHOC messages as CBOR sequences (RFC 9528 §5, §6): a bounded writer
//! and the readers for message_1, the plaintexts, ID_CRED and EAD items.

use minicbor::Decoder;

use crate::cbor;
use crate::Error;

use super::{ConnId, EadItem, EdhocError, IdCred, MAX_EAD_LEN, MAX_KID_LEN, MAX_SUITES};

pub(crate) fn malformed() -> Error {
    Error::Edhoc(EdhocError::Malformed)
}

/// Writes CBOR into a fixed buffer; running out of room is
/// [`Error::TooLarge`] (the buffers are sized for the maximum messages).
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.pos
    }

    pub(crate) fn raw(&mut self, b: &[u8]) -> Result<(), Error> {
        let end = self.pos.checked_add(b.len()).ok_or(Error::TooLarge)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Error::TooLarge)?
            .copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn head(&mut self, major: u8, arg: u64) -> Result<(), Error> {
        let mut h = [0u8; 9];
        let h = cbor::head(major, arg, &mut h);
        self.raw(h)
    }

    pub(crate) fn bstr(&mut self, b: &[u8]) -> Result<(), Error> {
        self.head(2, b.len() as u64)?;
        self.raw(b)
    }

    pub(crate) fn int(&mut self, v: i64) -> Result<(), Error> {
        if v >= 0 {
            self.head(0, v as u64)
        } else {
            self.head(1, (-1 - v) as u64)
        }
    }
}

/// Whether a one-byte connection identifier or kid is itself the CBOR
/// encoding of an integer in -24..=23, and so is sent as that integer
/// (RFC 9528 §3.3.2, §3.5.3.2).
pub(crate) fn is_int_byte(b: u8) -> bool {
    b <= 0x17 || (0x20..=0x37).contains(&b)
}

/// Reads a one-byte integer (-24..=23) or a byte string: a connection
/// identifier or a compact kid, in its byte form.
fn int_or_bstr<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], Error> {
    let input: &'a [u8] = d.input();
    let pos = d.position();
    let first = *input.get(pos).ok_or_else(malformed)?;
    match first >> 5 {
        0 | 1 if first & 0x1f < 24 => {
            d.set_position(pos + 1);
            input.get(pos..pos + 1).ok_or_else(malformed)
        }
        2 => {
            let b = cbor::bytes_strict(d).map_err(|_| malformed())?;
            match b {
                // must have been sent as an integer
                [x] if is_int_byte(*x) => Err(malformed()),
                _ => Ok(b),
            }
        }
        _ => Err(malformed()),
    }
}

pub(crate) fn conn_id(d: &mut Decoder<'_>) -> Result<ConnId, Error> {
    ConnId::new(int_or_bstr(d)?).map_err(|_| malformed())
}

/// A received kid: 1 to [`MAX_KID_LEN`] bytes (an empty kid would match a
/// credential that has none; a longer one matches none of ours).
fn kid(k: &[u8]) -> Result<IdCred<'_>, Error> {
    match k.len() {
        0 => Err(malformed()),
        n if n > MAX_KID_LEN => Err(Error::Edhoc(EdhocError::TooLarge)),
        _ => Ok(IdCred::Kid(k)),
    }
}

/// ID_CRED_x as sent in a plaintext: a compact kid (int or bstr), `{4: kid}`
/// or `{14: CCS}` (kccs, by value). A kid is 1 to [`MAX_KID_LEN`] bytes.
pub(crate) fn id_cred<'a>(d: &mut Decoder<'a>) -> Result<IdCred<'a>, Error> {
    match cbor::peek_major(d) {
        Some(0..=2) => kid(int_or_bstr(d)?),
        Some(5) => {
            if d.input().get(d.position()) != Some(&0xa1) {
                return Err(malformed());
            }
            d.set_position(d.position() + 1);
            match cbor::int_strict(d).map_err(|_| malformed())? {
                // A lone kid is sent in the compact form (RFC 9528
                // §3.5.3.2: "if and only if"), never as {4: kid}.
                4 => Err(malformed()),
                14 => {
                    let start = d.position();
                    if cbor::peek_major(d) != Some(5) {
                        return Err(malformed());
                    }
                    cbor::skip(d, 8).map_err(|_| malformed())?;
                    let input: &'a [u8] = d.input();
                    Ok(IdCred::Ccs(
                        input.get(start..d.position()).ok_or_else(malformed)?,
                    ))
                }
                _ => Err(Error::Edhoc(EdhocError::UnsupportedCredential)),
            }
        }
        _ => Err(malformed()),
    }
}

/// message_1 (RFC 9528 §5.2.1), parsed.
pub(crate) struct Message1<'a> {
    pub(crate) method: i64,
    pub(crate) suites: heapless::Vec<i64, MAX_SUITES>,
    pub(crate) g_x: [u8; 32],
    pub(crate) c_i: ConnId,
    pub(crate) ead: &'a [u8],
}

pub(crate) fn message_1(m: &[u8]) -> Result<Message1<'_>, Error> {
    let mut d = Decoder::new(m);
    let method = cbor::int_strict(&mut d).map_err(|_| malformed())?;
    let mut suites = heapless::Vec::new();
    if cbor::peek_major(&d) == Some(4) {
        let n = cbor::array_strict(&mut d).map_err(|_| malformed())?;
        if !(2..=MAX_SUITES as u64).contains(&n) {
            return Err(malformed());
        }
        for _ in 0..n {
            let s = cbor::int_strict(&mut d).map_err(|_| malformed())?;
            suites.push(s).map_err(|_| malformed())?;
        }
    } else {
        let s = cbor::int_strict(&mut d).map_err(|_| malformed())?;
        suites.push(s).map_err(|_| malformed())?;
    }
    let g_x: [u8; 32] = cbor::bytes_strict(&mut d)
        .map_err(|_| malformed())?
        .try_into()
        .map_err(|_| malformed())?;
    let c_i = conn_id(&mut d)?;
    let ead = m.get(d.position()..).ok_or_else(malformed)?;
    check_ead(ead)?;
    Ok(Message1 {
        method,
        suites,
        g_x,
        c_i,
        ead,
    })
}

/// PLAINTEXT_2 = (C_R, ID_CRED_R, Signature_or_MAC_2, ? EAD_2), parsed.
pub(crate) struct Plaintext2<'a> {
    pub(crate) c_r: ConnId,
    pub(crate) id_cred_r: IdCred<'a>,
    pub(crate) sig_or_mac: &'a [u8],
    pub(crate) ead: &'a [u8],
}

pub(crate) fn plaintext_2(p: &[u8]) -> Result<Plaintext2<'_>, Error> {
    let mut d = Decoder::new(p);
    let c_r = conn_id(&mut d)?;
    let id_cred_r = id_cred(&mut d)?;
    let sig_or_mac = cbor::bytes_strict(&mut d).map_err(|_| malformed())?;
    let ead = p.get(d.position()..).ok_or_else(malformed)?;
    check_ead(ead)?;
    Ok(Plaintext2 {
        c_r,
        id_cred_r,
        sig_or_mac,
        ead,
    })
}

/// PLAINTEXT_3 = (ID_CRED_I, Signature_or_MAC_3, ? EAD_3), parsed.
pub(crate) struct Plaintext3<'a> {
    pub(crate) id_cred_i: IdCred<'a>,
    pub(crate) sig_or_mac: &'a [u8],
    pub(crate) ead: &'a [u8],
}

pub(crate) fn plaintext_3(p: &[u8]) -> Result<Plaintext3<'_>, Error> {
    let mut d = Decoder::new(p);
    let id_cred_i = id_cred(&mut d)?;
    let sig_or_mac = cbor::bytes_strict(&mut d).map_err(|_| malformed())?;
    let ead = p.get(d.position()..).ok_or_else(malformed)?;
    check_ead(ead)?;
    Ok(Plaintext3 {
        id_cred_i,
        sig_or_mac,
        ead,
    })
}

/// The single bstr that message_2, message_3 and message_4 are.
pub(crate) fn single_bstr(m: &[u8]) -> Result<&[u8], Error> {
    let mut d = Decoder::new(m);
    let b = cbor::bytes(&mut d).map_err(|_| malformed())?;
    // exactly one item, in the shortest head: the head is not covered by
    // the transcript, so no other encoding of the same message is taken
    let mut h = [0u8; 9];
    let head_len = cbor::head(2, b.len() as u64, &mut h).len();
    if d.position() != m.len() || head_len + b.len() != m.len() {
        return Err(malformed());
    }
    Ok(b)
}

/// Lazily reads the EAD items of an already checked EAD sequence.
#[derive(Clone, Debug)]
pub struct EadItems<'a> {
    d: Decoder<'a>,
}

impl<'a> EadItems<'a> {
    pub(crate) fn new(ead: &'a [u8]) -> Self {
        Self {
            d: Decoder::new(ead),
        }
    }
}

impl<'a> Iterator for EadItems<'a> {
    type Item = Result<EadItem<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.d.position() >= self.d.input().len() {
            return None;
        }
        let r = (|| {
            let label = cbor::int_strict(&mut self.d).map_err(|_| malformed())?;
            let label = i32::try_from(label).map_err(|_| malformed())?;
            let value = if cbor::peek_major(&self.d) == Some(2) {
                Some(cbor::bytes_strict(&mut self.d).map_err(|_| malformed())?)
            } else {
                None
            };
            Ok(EadItem { label, value })
        })();
        if r.is_err() {
            // stop after an error
            let end = self.d.input().len();
            self.d.set_position(end);
        }
        Some(r)
    }
}

/// Checks that `ead` is a sequence of well-formed EAD items within the
/// size limit.
pub(crate) fn check_ead(ead: &[u8]) -> Result<(), Error> {
    if ead.len() > MAX_EAD_LEN {
        return Err(Error::Edhoc(EdhocError::TooLarge));
    }
    for item in EadItems::new(ead) {
        item?;
    }
    Ok(())
}

/// Encodes EAD items; the result must fit [`MAX_EAD_LEN`].
pub(crate) fn write_ead(w: &mut Writer<'_>, items: &[EadItem<'_>]) -> Result<(), Error> {
    let start = w.len();
    for item in items {
        w.int(i64::from(item.label))?;
        if let Some(v) = item.value {
            w.bstr(v)?;
        }
    }
    if w.len() - start > MAX_EAD_LEN {
        return Err(Error::Edhoc(EdhocError::TooLarge));
    }
    Ok(())
}

/// SUITES_I / SUITES_R: one suite as an int, several as an array.
pub(crate) fn write_suites(w: &mut Writer<'_>, suites: &[u8]) -> Result<(), Error> {
    if let [s] = suites {
        return w.int(i64::from(*s));
    }
    w.head(4, suites.len() as u64)?;
    for s in suites {
        w.int(i64::from(*s))?;
    }
    Ok(())
}
