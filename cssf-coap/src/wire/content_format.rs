//! Content-Format identifiers (RFC 7252 §12.3 and the IANA registry).

use core::fmt;

/// A Content-Format (and Accept) value.
///
/// ```
/// use cssf_coap::ContentFormat;
/// assert_eq!(ContentFormat::CBOR.0, 60);
/// assert_eq!(ContentFormat::LINK_FORMAT.media_type(), Some("application/link-format"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentFormat(pub u16);

macro_rules! formats {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $text:literal;)*) => {
        impl ContentFormat {
            $($(#[$doc])* pub const $name: ContentFormat = ContentFormat($num);)*

            /// The registered media type (with parameters), if known.
            pub const fn media_type(self) -> Option<&'static str> {
                match self.0 {
                    $($num => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

formats! {
    /// 0: `text/plain; charset=utf-8`.
    TEXT_PLAIN = 0, "text/plain; charset=utf-8";
    /// 16: `application/cose; cose-type="cose-encrypt0"`.
    COSE_ENCRYPT0 = 16, "application/cose; cose-type=\"cose-encrypt0\"";
    /// 17: `application/cose; cose-type="cose-mac0"`.
    COSE_MAC0 = 17, "application/cose; cose-type=\"cose-mac0\"";
    /// 18: `application/cose; cose-type="cose-sign1"`.
    COSE_SIGN1 = 18, "application/cose; cose-type=\"cose-sign1\"";
    /// 19: `application/ace+cbor` (RFC 9200).
    ACE_CBOR = 19, "application/ace+cbor";
    /// 40: `application/link-format` (RFC 6690).
    LINK_FORMAT = 40, "application/link-format";
    /// 41: `application/xml`.
    XML = 41, "application/xml";
    /// 42: `application/octet-stream`.
    OCTET_STREAM = 42, "application/octet-stream";
    /// 47: `application/exi`.
    EXI = 47, "application/exi";
    /// 50: `application/json`.
    JSON = 50, "application/json";
    /// 51: `application/json-patch+json`.
    JSON_PATCH_JSON = 51, "application/json-patch+json";
    /// 52: `application/merge-patch+json`.
    MERGE_PATCH_JSON = 52, "application/merge-patch+json";
    /// 60: `application/cbor`.
    CBOR = 60, "application/cbor";
    /// 61: `application/cwt` (RFC 8392).
    CWT = 61, "application/cwt";
    /// 101: `application/cose-key`.
    COSE_KEY = 101, "application/cose-key";
    /// 102: `application/cose-key-set`.
    COSE_KEY_SET = 102, "application/cose-key-set";
    /// 110: `application/senml+json` (RFC 8428).
    SENML_JSON = 110, "application/senml+json";
    /// 112: `application/senml+cbor` (RFC 8428).
    SENML_CBOR = 112, "application/senml+cbor";
    /// 11542: `application/vnd.oma.lwm2m+tlv`.
    LWM2M_TLV = 11542, "application/vnd.oma.lwm2m+tlv";
}

impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.media_type() {
            Some(m) => write!(f, "{} ({m})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn registry_values() {
        // RFC 7252 §12.3, RFC 8428 §12.3, RFC 9200 §8.16, RFC 8392 §9.4.
        let expected = [
            (ContentFormat::TEXT_PLAIN, 0),
            (ContentFormat::LINK_FORMAT, 40),
            (ContentFormat::OCTET_STREAM, 42),
            (ContentFormat::JSON, 50),
            (ContentFormat::CBOR, 60),
            (ContentFormat::SENML_JSON, 110),
            (ContentFormat::SENML_CBOR, 112),
            (ContentFormat::ACE_CBOR, 19),
            (ContentFormat::CWT, 61),
        ];
        for (cf, n) in expected {
            assert_eq!(cf.0, n);
            assert!(cf.media_type().is_some());
        }
        assert_eq!(ContentFormat(9999).media_type(), None);
        assert_eq!(format!("{}", ContentFormat::CBOR), "60 (application/cbor)");
        assert_eq!(format!("{}", ContentFormat(9999)), "9999");
    }
}
