//! Alerts (RFC 5246 §7.2): level and description.

use super::Reader;
use crate::{AlertDescription, Error};

/// Alert level warning (1).
pub const LEVEL_WARNING: u8 = 1;
/// Alert level fatal (2).
pub const LEVEL_FATAL: u8 = 2;

/// An alert message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRepr {
    /// 1 = warning, 2 = fatal.
    pub level: u8,
    /// What happened.
    pub description: AlertDescription,
}

impl AlertRepr {
    /// Parses a 2-byte alert.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(buf);
        let level = r.u8()?;
        let description = AlertDescription::from_u8(r.u8()?);
        r.finish()?;
        Ok(AlertRepr { level, description })
    }
    /// Always 2.
    pub const fn buffer_len(&self) -> usize {
        2
    }
    /// Writes the alert.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let out = buf
            .get_mut(..2)
            .ok_or(Error::BufferTooSmall { needed: 2 })?;
        out.copy_from_slice(&[self.level, self.description.to_u8()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_notify_bytes() {
        let a = AlertRepr::parse(&[1, 0]).unwrap();
        assert_eq!(a.description, AlertDescription::CloseNotify);
        let mut b = [0u8; 2];
        AlertRepr {
            level: 2,
            description: AlertDescription::DecryptError,
        }
        .emit(&mut b)
        .unwrap();
        assert_eq!(b, [2, 51]);
        assert!(AlertRepr::parse(&[1]).is_err());
        assert!(AlertRepr::parse(&[1, 0, 0]).is_err());
    }
}
