//! `coap://` and `coaps://` URIs on the command line, decomposed with
//! cssf-coap's RFC 7252 §6.4 parser.

use std::net::{SocketAddr, ToSocketAddrs};

use cssf_coap::wire::uri::decompose;
use cssf_coap::{Code, Message, MessageBuilder, MessageType};

use crate::fail;
use crate::util::Result;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `coaps://`.
    pub secure: bool,
    /// The server's address.
    pub addr: SocketAddr,
    /// The path without leading `/` (percent-decoded segments joined by `/`).
    pub path: String,
    /// The query without `?` (arguments joined by `&`), if any.
    pub query: Option<String>,
}

impl Target {
    /// Parses and resolves `uri`.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| fail!("malformed URI `{uri}`: {why}");
        if !(uri.starts_with("coap://") || uri.starts_with("coaps://")) {
            return Err(bad("it must start with coap:// or coaps://"));
        }
        let mut scratch = [0u8; 1024];
        let mut b = MessageBuilder::<32>::new(MessageType::Con, Code::GET, 0);
        let parts = decompose(uri, &mut scratch, None, &mut b).map_err(|e| bad(&e.to_string()))?;
        let mut buf = [0u8; 1280];
        let n = b.emit(&mut buf).map_err(|e| bad(&e.to_string()))?;
        let msg = Message::parse(buf.get(..n).unwrap_or(&[])).map_err(|e| bad(&e.to_string()))?;
        let seg = |s: &[u8]| {
            std::str::from_utf8(s)
                .map(str::to_owned)
                .map_err(|_| bad("a path segment is not UTF-8"))
        };
        let path = msg
            .uri_path()
            .map(seg)
            .collect::<Result<Vec<_>>>()?
            .join("/");
        let q = msg.uri_query().map(seg).collect::<Result<Vec<_>>>()?;
        let query = (!q.is_empty()).then(|| q.join("&"));
        if parts.host.is_empty() {
            return Err(bad("no host"));
        }
        let addr = (parts.host, parts.port)
            .to_socket_addrs()
            .map_err(|e| fail!("cannot resolve host `{}` of `{uri}`: {e}", parts.host))?
            .next()
            .ok_or_else(|| fail!("host `{}` of `{uri}` has no address", parts.host))?;
        Ok(Target {
            secure: parts.secure,
            addr,
            path,
            query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        let t = Target::parse("coaps://127.0.0.1:5999/sensors/temp?unit=C&x").unwrap();
        assert!(t.secure);
        assert_eq!(t.addr, "127.0.0.1:5999".parse().unwrap());
        assert_eq!(t.path, "sensors/temp");
        assert_eq!(t.query.as_deref(), Some("unit=C&x"));
        let t = Target::parse("coap://[::1]/").unwrap();
        assert_eq!(
            (t.secure, t.addr.port(), t.path.as_str()),
            (false, 5683, "")
        );
        let t = Target::parse("coap://127.0.0.1/a%20b").unwrap();
        assert_eq!(t.path, "a b");
    }

    #[test]
    fn rejects_malformed() {
        for u in [
            "http://x/",
            "coap://",
            "coap://[::1/",
            "coap://h:99999/",
            "coap://a/%zz",
        ] {
            let e = Target::parse(u).unwrap_err();
            assert!(e.0.contains(u), "{u}: {e}");
        }
    }
}
