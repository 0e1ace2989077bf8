//! Key exchange messages: ServerKeyExchange and ClientKeyExchange for
//! PSK (RFC 4279 §2), ECDHE_PSK (RFC 5489 §2, ECParameters per RFC 8422) and
//! ECDHE_ECDSA (RFC 8422 §5.4, §5.7).

use super::certificate::DigitallySignedRepr;
use super::{Reader, Writer};
use crate::Error;

/// ECCurveType named_curve (3).
pub const NAMED_CURVE: u8 = 3;

/// ServerKeyExchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerKeyExchangeRepr<'a> {
    /// psk_identity_hint (may be empty).
    pub hint: &'a [u8],
    /// For ECDHE_PSK: the named group and the server's public point.
    pub ecdh: Option<(u16, &'a [u8])>,
}

impl<'a> ServerKeyExchangeRepr<'a> {
    /// Parses the body; `ecdhe` says which suite family is negotiated.
    pub fn parse(body: &'a [u8], ecdhe: bool) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let hint = r.vec16()?;
        let ecdh = if ecdhe {
            if r.u8()? != NAMED_CURVE {
                return Err(Error::IllegalParameter);
            }
            let group = r.u16()?;
            let point = r.vec8()?;
            if point.is_empty() {
                return Err(Error::Decode);
            }
            Some((group, point))
        } else {
            None
        };
        r.finish()?;
        Ok(ServerKeyExchangeRepr { hint, ecdh })
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        2 + self.hint.len() + self.ecdh.map_or(0, |(_, p)| 4 + p.len())
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.vec16(self.hint)?;
        if let Some((g, p)) = self.ecdh {
            w.u8(NAMED_CURVE)?;
            w.u16(g)?;
            w.vec8(p)?;
        }
        Ok(w.len())
    }
}

/// ClientKeyExchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeyExchangeRepr<'a> {
    /// psk_identity.
    pub identity: &'a [u8],
    /// For ECDHE_PSK: the client's public point.
    pub point: Option<&'a [u8]>,
}

impl<'a> ClientKeyExchangeRepr<'a> {
    /// Parses the body.
    pub fn parse(body: &'a [u8], ecdhe: bool) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let identity = r.vec16()?;
        let point = if ecdhe {
            let p = r.vec8()?;
            if p.is_empty() {
                return Err(Error::Decode);
            }
            Some(p)
        } else {
            None
        };
        r.finish()?;
        Ok(ClientKeyExchangeRepr { identity, point })
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        2 + self.identity.len() + self.point.map_or(0, |p| 1 + p.len())
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.vec16(self.identity)?;
        if let Some(p) = self.point {
            w.vec8(p)?;
        }
        Ok(w.len())
    }
}

/// ECDHE_ECDSA ServerKeyExchange (RFC 8422 §5.4): `ServerECDHParams` and
/// its signature over `client_random + server_random + params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedServerKeyExchangeRepr<'a> {
    /// The named group.
    pub group: u16,
    /// The server's ephemeral public point.
    pub point: &'a [u8],
    /// The signature.
    pub signed: DigitallySignedRepr<'a>,
}

impl<'a> SignedServerKeyExchangeRepr<'a> {
    /// Parses the body; also returns the signed `ServerECDHParams` bytes.
    pub fn parse(body: &'a [u8]) -> Result<(Self, &'a [u8]), Error> {
        let mut r = Reader::new(body);
        if r.u8()? != NAMED_CURVE {
            return Err(Error::IllegalParameter);
        }
        let group = r.u16()?;
        let point = r.vec8()?;
        if point.is_empty() {
            return Err(Error::Decode);
        }
        let params = body.get(..4 + point.len()).ok_or(Error::Decode)?;
        let signed = DigitallySignedRepr::read(&mut r)?;
        r.finish()?;
        Ok((
            SignedServerKeyExchangeRepr {
                group,
                point,
                signed,
            },
            params,
        ))
    }
    /// Length of the `ServerECDHParams` part.
    pub fn params_len(&self) -> usize {
        4 + self.point.len()
    }
    /// Writes `ServerECDHParams` (what is signed) into `buf`.
    pub fn emit_params(group: u16, point: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u8(NAMED_CURVE)?;
        w.u16(group)?;
        w.vec8(point)?;
        Ok(w.len())
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        self.params_len() + self.signed.buffer_len()
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.u8(NAMED_CURVE)?;
        w.u16(self.group)?;
        w.vec8(self.point)?;
        self.signed.write(&mut w)?;
        Ok(w.len())
    }
}

/// ECDHE ClientKeyExchange without PSK identity (RFC 8422 §5.7:
/// `ClientECDiffieHellmanPublic`, the point as `opaque point<1..2^8-1>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcdhClientKeyExchangeRepr<'a> {
    /// The client's ephemeral public point.
    pub point: &'a [u8],
}

impl<'a> EcdhClientKeyExchangeRepr<'a> {
    /// Parses the body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let point = r.vec8()?;
        r.finish()?;
        if point.is_empty() {
            return Err(Error::Decode);
        }
        Ok(EcdhClientKeyExchangeRepr { point })
    }
    /// Emitted length.
    pub fn buffer_len(&self) -> usize {
        1 + self.point.len()
    }
    /// Writes the body; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(buf);
        w.vec8(self.point)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_messages() {
        // ClientKeyExchange carrying "Client_identity" (RFC 4279 §2).
        let mut b = [0u8; 64];
        let c = ClientKeyExchangeRepr {
            identity: b"Client_identity",
            point: None,
        };
        let n = c.emit(&mut b).unwrap();
        assert_eq!(&b[..3], &[0, 15, b'C']);
        assert_eq!(ClientKeyExchangeRepr::parse(&b[..n], false).unwrap(), c);
        assert!(ClientKeyExchangeRepr::parse(&b[..n], true).is_err());
        let s = ServerKeyExchangeRepr {
            hint: b"",
            ecdh: None,
        };
        let n = s.emit(&mut b).unwrap();
        assert_eq!(&b[..n], &[0, 0]);
        assert_eq!(ServerKeyExchangeRepr::parse(&b[..n], false).unwrap(), s);
    }

    #[test]
    fn ecdhe_psk_messages() {
        let point = [4u8; 65];
        let s = ServerKeyExchangeRepr {
            hint: b"hint",
            ecdh: Some((23, &point)),
        };
        let mut b = [0u8; 128];
        let n = s.emit(&mut b).unwrap();
        assert_eq!(n, s.buffer_len());
        assert_eq!(&b[6..10], &[3, 0, 23, 65]);
        assert_eq!(ServerKeyExchangeRepr::parse(&b[..n], true).unwrap(), s);
        let c = ClientKeyExchangeRepr {
            identity: b"id",
            point: Some(&point),
        };
        let n = c.emit(&mut b).unwrap();
        assert_eq!(ClientKeyExchangeRepr::parse(&b[..n], true).unwrap(), c);
    }

    #[test]
    fn ecdhe_ecdsa_messages() {
        let point = [4u8; 65];
        let sig = [0x30u8, 6, 2, 1, 1, 2, 1, 1];
        let s = SignedServerKeyExchangeRepr {
            group: 23,
            point: &point,
            signed: DigitallySignedRepr {
                algorithm: 0x0403,
                signature: &sig,
            },
        };
        let mut b = [0u8; 128];
        let n = s.emit(&mut b).unwrap();
        assert_eq!(n, s.buffer_len());
        // RFC 8422 §5.4: curve_type named_curve(3), secp256r1(23), point<1..255>.
        assert_eq!(&b[..4], &[3, 0, 23, 65]);
        assert_eq!(&b[69..73], &[4, 3, 0, 8]);
        let (p, params) = SignedServerKeyExchangeRepr::parse(&b[..n]).unwrap();
        assert_eq!(p, s);
        let mut pb = [0u8; 80];
        let m = SignedServerKeyExchangeRepr::emit_params(23, &point, &mut pb).unwrap();
        assert_eq!(params, &pb[..m]);
        assert!(SignedServerKeyExchangeRepr::parse(&b[..n - 1]).is_err());
        let c = EcdhClientKeyExchangeRepr { point: &point };
        let n = c.emit(&mut b).unwrap();
        assert_eq!((n, b[0]), (66, 65));
        assert_eq!(EcdhClientKeyExchangeRepr::parse(&b[..n]).unwrap(), c);
        assert!(EcdhClientKeyExchangeRepr::parse(&[0]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any(
            id in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            point in proptest::collection::vec(proptest::num::u8::ANY, 1..=255),
            group: u16,
            ecdhe: bool,
        ) {
            let s = ServerKeyExchangeRepr { hint: &id, ecdh: ecdhe.then_some((group, &point[..])) };
            let mut buf = std::vec![0u8; s.buffer_len()];
            let n = s.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(ServerKeyExchangeRepr::parse(&buf[..n], ecdhe).unwrap(), s);
            let c = ClientKeyExchangeRepr { identity: &id, point: ecdhe.then_some(&point[..]) };
            let mut buf = std::vec![0u8; c.buffer_len()];
            let n = c.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(ClientKeyExchangeRepr::parse(&buf[..n], ecdhe).unwrap(), c);
        }
    }
}
