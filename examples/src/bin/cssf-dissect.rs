//! `cssf-dissect`: decode CoAP messages field by field, like a packet
//! dissector.
//!
//! Without arguments it builds a real request (CON GET
//! `coap://[::1]/sensors/temp?unit=C` with a token, Observe 0, Accept and
//! Block2) and its response (ACK 2.05 Content with Content-Format, Max-Age,
//! ETag, Observe and a payload) with cssf-coap and dissects both. Given hex
//! arguments (`cssf-dissect 4401...`), it dissects each of them instead; a
//! malformed message prints a one-line error and exits with status 1 (bad
//! hex: status 2).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use cssf_coap::wire::uri::{compose, decompose};
use cssf_coap::wire::{RawOptions, PAYLOAD_MARKER};
use cssf_coap::{
    Block, Code, ContentFormat, Error, Message, MessageBuilder, MessageType, OptionFormat,
    OptionNumber,
};

fn hexdump(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "  {:04x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if j == 7 {
                s.push(' ');
            }
        }
        s.push(' ');
        for &b in chunk {
            s.push(if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            });
        }
        s.push('\n');
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::Con => "Confirmable",
        MessageType::Non => "Non-Confirmable",
        MessageType::Ack => "Acknowledgement",
        MessageType::Rst => "Reset",
    }
}

fn properties(n: OptionNumber) -> String {
    let mut p = vec![if n.is_critical() {
        "critical"
    } else {
        "elective"
    }];
    p.push(if n.is_unsafe() {
        "unsafe-to-forward"
    } else {
        "safe-to-forward"
    });
    if n.is_no_cache_key() {
        p.push("no-cache-key");
    }
    p.join(", ")
}

fn describe_value(n: OptionNumber, value: &[u8], is_request: bool) -> String {
    let Some(info) = n.info() else {
        return format!("{} (unknown option, {} bytes)", hex(value), value.len());
    };
    let bad_len = n.check_len(value.len()).is_err();
    let mut s = match info.format {
        OptionFormat::Empty => "(empty)".to_string(),
        OptionFormat::Opaque => {
            if value.is_empty() {
                "(empty)".to_string()
            } else {
                format!("0x{}", hex(value))
            }
        }
        OptionFormat::String => match core::str::from_utf8(value) {
            Ok(t) => format!("\"{}\"", t.escape_debug()),
            Err(_) => format!("0x{} (not UTF-8)", hex(value)),
        },
        OptionFormat::Uint => match cssf_coap::wire::decode_uint(value) {
            Err(e) => format!("0x{} ({e})", hex(value)),
            Ok(v) => match n {
                OptionNumber::CONTENT_FORMAT | OptionNumber::ACCEPT => {
                    match u16::try_from(v)
                        .ok()
                        .and_then(|v| ContentFormat(v).media_type())
                    {
                        Some(m) => format!("{v} ({m})"),
                        None => format!("{v}"),
                    }
                }
                OptionNumber::BLOCK1 | OptionNumber::BLOCK2 => match Block::from_uint(v) {
                    Ok(b) => format!(
                        "{v}: NUM {}, M {}, SZX {} (block size {}, offset {})",
                        b.num(),
                        u8::from(b.more()),
                        b.szx(),
                        b.size(),
                        b.offset()
                    ),
                    Err(e) => format!("{v} ({e})"),
                },
                OptionNumber::OBSERVE if is_request => match v {
                    0 => "0 (register)".to_string(),
                    1 => "1 (deregister)".to_string(),
                    _ => format!("{v}"),
                },
                OptionNumber::OBSERVE => format!("{v} (sequence number)"),
                OptionNumber::MAX_AGE => format!("{v} s"),
                OptionNumber::SIZE1 | OptionNumber::SIZE2 => format!("{v} bytes"),
                _ => format!("{v}"),
            },
        },
    };
    if bad_len {
        let _ = write!(
            s,
            "  [length {} outside {}..={}]",
            value.len(),
            info.min_len,
            info.max_len
        );
    }
    s
}

fn dissect(title: &str, bytes: &[u8], destination: Option<SocketAddr>) -> Result<String, Error> {
    let m = Message::parse(bytes)?;
    let mut s = String::new();
    let _ = writeln!(s, "=== {title}: {} bytes", bytes.len());
    s.push_str(&hexdump(bytes));
    let code_name = m.code().name().unwrap_or("Unknown");
    let _ = writeln!(
        s,
        "Constrained Application Protocol, {}, {} {}, MID:{}",
        type_name(m.ty()),
        m.code(),
        code_name,
        m.message_id()
    );
    let b0 = bytes.first().copied().unwrap_or(0);
    let _ = writeln!(s, "    {:02b}.. .... = Version: {}", b0 >> 6, m.version());
    let _ = writeln!(
        s,
        "    ..{:02b} .... = Type: {} ({})",
        (b0 >> 4) & 3,
        type_name(m.ty()),
        m.ty().bits()
    );
    let _ = writeln!(
        s,
        "    .... {:04b} = Token Length: {}",
        b0 & 0x0f,
        m.token_len()
    );
    let c = m.code().0;
    let _ = writeln!(
        s,
        "    {:03b} {:05b} = Code: {} {} (class {}, detail {})  [byte 1]",
        c >> 5,
        c & 0x1f,
        m.code(),
        code_name,
        m.code().class(),
        m.code().detail()
    );
    let _ = writeln!(
        s,
        "    Message ID: {} (0x{:04x})  [bytes 2-3]",
        m.message_id(),
        m.message_id()
    );
    if m.token_len() > 0 {
        let _ = writeln!(
            s,
            "    Token: {}  [bytes 4-{}]",
            hex(m.token()),
            3 + m.token_len()
        );
    }
    let is_request = m.code().is_request();
    for (i, o) in RawOptions::new(bytes, m.options_offset()).enumerate() {
        // the message was validated, so the raw walk cannot fail
        let Ok(o) = o else { break };
        let name = o.number.name().unwrap_or("Unknown");
        let _ = writeln!(
            s,
            "    Opt #{}: {}: {}",
            i + 1,
            name,
            describe_value(o.number, o.value, is_request)
        );
        let head = bytes.get(o.offset..o.offset + o.header_len).unwrap_or(&[]);
        let _ = writeln!(
            s,
            "        Delta: {}, Length: {}, header {} byte(s) at offset {}: {}",
            o.delta,
            o.value.len(),
            o.header_len,
            o.offset,
            hex(head)
        );
        let fmt = o.number.info().map_or("unknown", |i| i.format.name());
        let _ = writeln!(
            s,
            "        Number: {} ({}), Format: {}",
            o.number.0,
            properties(o.number),
            fmt
        );
    }
    if let Some(n) = m.first_unknown_critical() {
        let _ = writeln!(
            s,
            "    [unknown critical option {} -> 4.02 Bad Option]",
            n.0
        );
    }
    if !m.payload().is_empty() {
        let marker_at = bytes.len() - m.payload().len() - 1;
        let _ = writeln!(
            s,
            "    End of options marker: {PAYLOAD_MARKER}  [byte {marker_at}]"
        );
        let cf = m.content_format().ok().flatten();
        let cf = cf.map_or(String::new(), |c| format!(", Content-Format {c}"));
        let p = m.payload();
        let text = core::str::from_utf8(p)
            .ok()
            .filter(|t| t.chars().all(|ch| !ch.is_control() || ch == '\n'));
        match text {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "    Payload: {} bytes{cf}: \"{}\"",
                    p.len(),
                    t.escape_debug()
                );
            }
            None => {
                let _ = writeln!(s, "    Payload: {} bytes{cf}: {}", p.len(), hex(p));
            }
        }
    }
    if let (true, Some(dest)) = (is_request, destination) {
        let mut uri = String::new();
        if compose(&m, false, dest, &mut uri).is_ok() {
            let _ = writeln!(s, "    [Request URI: {uri}]");
        }
    }
    Ok(s)
}

fn demo() -> Result<String, Error> {
    let dest: SocketAddr = "[::1]:5683".parse().map_err(|_| Error::BadUri)?;
    let token = [0x4a, 0x7f, 0x10, 0xc3];
    let mut scratch = [0u8; 64];
    let mut req = MessageBuilder::<12>::new(MessageType::Con, Code::GET, 0x3a91);
    req.token(&token)?;
    decompose(
        "coap://[::1]/sensors/temp?unit=C",
        &mut scratch,
        Some(dest.port()),
        &mut req,
    )?;
    req.observe(0)?;
    req.accept(ContentFormat::TEXT_PLAIN)?;
    req.block2(Block::new(0, false, 2)?)?;
    let mut buf = [0u8; 128];
    let n = req.emit(&mut buf)?;
    let mut out = dissect("request", buf.get(..n).unwrap_or(&[]), Some(dest))?;

    let mut rsp = MessageBuilder::<8>::new(MessageType::Ack, Code::CONTENT, 0x3a91);
    rsp.token(&token)?;
    rsp.observe(12)?;
    rsp.content_format(ContentFormat::TEXT_PLAIN)?;
    rsp.add_uint(OptionNumber::MAX_AGE, 30)?;
    rsp.add_option(OptionNumber::ETAG, &[0x5e, 0x11, 0x0a, 0x77])?;
    rsp.payload(b"21.5 C");
    let mut buf = [0u8; 128];
    let n = rsp.emit(&mut buf)?;
    out.push('\n');
    out.push_str(&dissect("response", buf.get(..n).unwrap_or(&[]), None)?);
    Ok(out)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let s = s.strip_prefix("0x").unwrap_or(&s);
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// `cssf-dissect`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cssf-dissect",
    version,
    about = "Decodes CoAP messages field by field, like a packet dissector.",
    after_help = "Without arguments: dissects a request and a response built with cssf-coap.\n\
Exit status: 1 for a malformed message, 2 for bad hex or bad arguments."
)]
struct Cli {
    /// CoAP messages in hex, one per argument.
    #[arg(value_name = "HEX")]
    messages: Vec<String>,
}

fn main() -> ExitCode {
    let args = <Cli as clap::Parser>::parse().messages;
    if args.is_empty() {
        return match demo() {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cssf-dissect: building the demo messages failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    for (i, a) in args.iter().enumerate() {
        let Some(bytes) = parse_hex(a) else {
            eprintln!("cssf-dissect: argument {} is not valid hex: {a}", i + 1);
            return ExitCode::from(2);
        };
        match dissect(&format!("message {}", i + 1), &bytes, None) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!(
                    "cssf-dissect: malformed CoAP message ({} bytes): {e}",
                    bytes.len()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_dissects_request_and_response() {
        let out = demo().unwrap();
        for needle in [
            "Constrained Application Protocol, Confirmable, 0.01 GET",
            "..00 .... = Type: Confirmable (0)",
            "Opt #1: Observe: 0 (register)",
            "Uri-Path: \"sensors\"",
            "Uri-Query: \"unit=C\"",
            "Block2: 2: NUM 0, M 0, SZX 2 (block size 64, offset 0)",
            "[Request URI: coap://[::1]/sensors/temp?unit=C]",
            "Acknowledgement, 2.05 Content",
            "ETag: 0x5e110a77",
            "Observe: 12 (sequence number)",
            "Max-Age: 30 s",
            "Payload: 6 bytes, Content-Format 0 (text/plain; charset=utf-8): \"21.5 C\"",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
        }
    }

    #[test]
    fn libcoap_response_and_malformed_input() {
        // A 2.05 captured from libcoap 4.3.1 (Max-Age with a 13-extended delta).
        let bytes = parse_hex("6445e20a63616666d10101ff31373935393230343836").unwrap();
        let out = dissect("m", &bytes, None).unwrap();
        assert!(out.contains("Delta: 14, Length: 1, header 2 byte(s) at offset 8: d101"));
        assert!(out.contains("Payload: 10 bytes: \"1795920486\""));
        let bad = parse_hex("40010001ff").unwrap();
        assert_eq!(
            dissect("m", &bad, None).err(),
            Some(Error::PayloadMarkerWithoutPayload)
        );
        assert!(parse_hex("4x").is_none());
        assert!(parse_hex("401").is_none());
    }
}
