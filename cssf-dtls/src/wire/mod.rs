//! Wire formats (RFC 6347 §4.1, §4.2; RFC 5246 §7.4): checked parsing into
//! `Repr`s borrowing from the input, and `emit` into caller buffers.
//!
//! Every parser checks lengths once and never panics; every `Repr` has
//! `buffer_len` and `emit`, and `parse(emit(r)) == r`.

pub mod alert;
pub mod certificate;
pub mod cid_record;
pub mod client_hello;
pub mod extensions;
pub mod handshake;
pub mod hello_verify_request;
pub mod key_exchange;
pub mod record;
#[cfg(feature = "cid")]
#[cfg_attr(docsrs, doc(cfg(feature = "cid")))]
pub mod rrc;
pub mod server_hello;

use crate::Error;

/// A bounds-checked cursor over input bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (a, b) = self.buf.split_at_checked(n).ok_or(Error::Decode)?;
        self.buf = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(b.iter().fold(0u16, |a, &x| (a << 8) | u16::from(x)))
    }
    pub(crate) fn u24(&mut self) -> Result<u32, Error> {
        let b = self.take(3)?;
        Ok(b.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)))
    }
    pub(crate) fn u48(&mut self) -> Result<u64, Error> {
        let b = self.take(6)?;
        Ok(b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }
    pub(crate) fn vec8(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    pub(crate) fn vec16(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    pub(crate) fn array32(&mut self) -> Result<&'a [u8; 32], Error> {
        self.take(32)?.try_into().map_err(|_| Error::Decode)
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Decode)
        }
    }
}

/// A bounds-checked cursor over an output buffer.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    pub(crate) fn put(&mut self, data: &[u8]) -> Result<(), Error> {
        let end = self.pos + data.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall { needed: end })?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }
    pub(crate) fn u8(&mut self, v: u8) -> Result<(), Error> {
        self.put(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), Error> {
        self.put(&v.to_be_bytes())
    }
    pub(crate) fn u24(&mut self, v: u32) -> Result<(), Error> {
        self.put(&v.to_be_bytes()[1..])
    }
    pub(crate) fn u48(&mut self, v: u64) -> Result<(), Error> {
        self.put(&v.to_be_bytes()[2..])
    }
    pub(crate) fn vec8(&mut self, data: &[u8]) -> Result<(), Error> {
        let n = u8::try_from(data.len()).map_err(|_| Error::Internal)?;
        self.u8(n)?;
        self.put(data)
    }
    pub(crate) fn vec16(&mut self, data: &[u8]) -> Result<(), Error> {
        let n = u16::try_from(data.len()).map_err(|_| Error::Internal)?;
        self.u16(n)?;
        self.put(data)
    }
    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}

/// The DTLS 1.2 version on the wire ({254, 253}).
pub const DTLS_1_2: u16 = 0xFEFD;
/// The DTLS 1.0 version on the wire ({254, 255}), used in HelloVerifyRequest.
pub const DTLS_1_0: u16 = 0xFEFF;
