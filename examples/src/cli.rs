//! The command lines of the binaries (clap, derive): the arguments, their
//! conversion into configurations, and the programs themselves, so each
//! `main` is a thin wrapper and the tests can drive the same code.
//!
//! `--help` prints the usage and exits 0; an argument clap refuses prints
//! clap's error and exits 2; a failure at run time (an unreadable file, a
//! refused token, no answer) prints one `error: ...` line and exits 1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser, Subcommand};
use cssf_coap::endpoint::Request;
use cssf_coap::{Block, Code, ContentFormat};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::client::{Link, Reply};
use crate::fail;
use crate::keys::{load_private_key, load_public_key, Psk};
use crate::server::{default_rights, RpkConfig, Server, ServerConfig};
use crate::token::{self, AsKey, MintRequest};
use crate::uri::Target;
use crate::util::{hex, init_logging, parse_duration_secs, unhex, Failure, Result};
use cssf_auth::authorizer::Rights;

/// Builds a single-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the runtime: {e}"))
}

const RIGHTS_HELP: &str = "RIGHTS: PATH:METHOD[,METHOD]... entries separated by ';' or spaces, \
PATH `*` for every path, METHOD `ALL` for every method (e.g. `/actuators/led:GET,PUT;*:GET`); \
default `*:GET`.
-v, -vv, -vvv: the DTLS and token steps on stderr (info, debug, trace).
--config FILE: a TOML file whose keys are the long option names, e.g.
    bind = \"127.0.0.1:5683\"
    psk = [\"dev-1:00112233445566778899aabbccddeeff:*:ALL\"]
    verbose = 1
  options given on the command line override the file (a list option replaces the file's list).
--oscore-context FILE: a JSON object with aiocoap's settings.json keys, e.g.
    {\"sender-id_hex\": \"01\", \"recipient-id_hex\": \"\",
     \"secret_hex\": \"0102030405060708090a0b0c0d0e0f10\", \"salt_hex\": \"9e7ca92223786340\",
     \"scope\": \"/sensors/temp:GET\"}
  secret_hex|secret_ascii (Master Secret), salt_hex|salt_ascii (optional), sender-id_hex (the
  server's), recipient-id_hex (the client's, its kid), id-context_hex (optional); scope: RIGHTS
  the context's holder has beyond the public rights (none: public rights only; refused: 4.03).
  AES-CCM-16-64-128 and HKDF-SHA256 only. The replay window is kept in --store (required) so a
  request taken before a restart stays refused; Observe is not offered over OSCORE.";

/// `cssf-server`'s command line; also the keys of its `--config` file.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(
    name = "cssf-server",
    version,
    // A later value of a single-valued option wins, as before clap.
    args_override_self = true,
    about = "A CoAP + CoAPs (DTLS 1.2) device: PSKs, raw public keys, ACE tokens, a file-backed store.",
    after_help = RIGHTS_HELP
)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerArgs {
    /// A TOML file with the same options (keys = long option names); the
    /// command line overrides it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The plain CoAP address [default: 127.0.0.1:5683].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// The CoAPs (DTLS) address [default: 127.0.0.1:5684].
    #[arg(long, value_name = "ADDR")]
    pub dtls_bind: Option<SocketAddr>,
    /// A PSK client and what it may do (repeatable).
    #[arg(long, value_name = "IDENTITY:HEXKEY[:RIGHTS]")]
    #[serde(default)]
    pub psk: Vec<String>,
    /// The device's P-256 private key (raw public keys, RFC 7250).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A client public key accepted, and its rights (repeatable; needs --key).
    #[arg(long, value_name = "FILE[:RIGHTS]")]
    #[serde(default)]
    pub trust: Vec<String>,
    /// Refuse raw-public-key clients that send no key of their own.
    #[arg(long)]
    #[serde(default)]
    pub require_client_key: bool,
    /// The Authorization Server's ES256 public key (tokens).
    #[arg(long, value_name = "FILE")]
    pub as_public_key: Option<PathBuf>,
    /// The Authorization Server's HMAC key (tokens).
    #[arg(long, value_name = "HEX")]
    pub as_hmac_key: Option<String>,
    /// The HMAC token algorithm.
    #[arg(long, value_name = "HS256|HS256/64")]
    pub as_hmac_alg: Option<String>,
    /// The key id of the AS key.
    #[arg(long, value_name = "KID")]
    pub as_kid: Option<String>,
    /// The AS URI sent in the 4.01 hints.
    #[arg(long, value_name = "URI")]
    pub as_uri: Option<String>,
    /// The audience tokens must name.
    #[arg(long, value_name = "NAME")]
    pub audience: Option<String>,
    /// Rights of clients without credentials (plain CoAP).
    #[arg(long, value_name = "RIGHTS")]
    pub public: Option<String>,
    /// A oneM2M access-control policy file (JSON).
    #[arg(long, value_name = "FILE")]
    pub acp: Option<PathBuf>,
    /// The store file (tokens, counters, resources survive restarts).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Log the DTLS and token steps on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = ArgAction::Count)]
    #[serde(default)]
    pub verbose: u8,
    /// Also serve the CoAP plugtest resources (/test, /separate,
    /// /seg1/seg2/seg3, /query, /location-query, /multi-format, /validate,
    /// /create1, /large-update, /large-create, /large-post, /obs, /obs-non,
    /// /link1../link3, /path), for conformance tools.
    #[arg(long)]
    #[serde(default)]
    pub plugtest: bool,
    /// Concurrent DTLS sessions: 8 (a device), 64, 1024 or 16384 (a
    /// gateway; handshakes in progress at once: 2, 16, 64, 256).
    #[arg(long, value_name = "N", value_parser = parse_max_sessions)]
    pub max_sessions: Option<usize>,
    /// Relaxed CoAP deduplication (RFC 7252 §4.5): GET and FETCH without
    /// Observe or Block1 take no message-ID cache entry, so a fast client
    /// is not answered 5.03 once its share of the cache is used; their
    /// retransmissions reach the handler again.
    #[arg(long)]
    #[serde(default)]
    pub relaxed_dedup: bool,
    /// No line per request or session on standard output (the start-up
    /// line and errors still).
    #[arg(short, long)]
    #[serde(default)]
    pub quiet: bool,
    /// An OSCORE security context (RFC 8613) the plain CoAP port accepts
    /// requests with (repeatable, needs --store; JSON file, see below).
    #[arg(long, value_name = "FILE")]
    #[serde(default)]
    pub oscore_context: Vec<PathBuf>,
}

impl ServerArgs {
    /// These arguments over `file`'s: what is given here wins; a list
    /// given here replaces the file's.
    pub fn over(self, file: ServerArgs) -> ServerArgs {
        let list = |a: Vec<String>, b: Vec<String>| if a.is_empty() { b } else { a };
        ServerArgs {
            config: self.config,
            bind: self.bind.or(file.bind),
            dtls_bind: self.dtls_bind.or(file.dtls_bind),
            psk: list(self.psk, file.psk),
            key: self.key.or(file.key),
            trust: list(self.trust, file.trust),
            require_client_key: self.require_client_key || file.require_client_key,
            as_public_key: self.as_public_key.or(file.as_public_key),
            as_hmac_key: self.as_hmac_key.or(file.as_hmac_key),
            as_hmac_alg: self.as_hmac_alg.or(file.as_hmac_alg),
            as_kid: self.as_kid.or(file.as_kid),
            as_uri: self.as_uri.or(file.as_uri),
            audience: self.audience.or(file.audience),
            public: self.public.or(file.public),
            acp: self.acp.or(file.acp),
            store: self.store.or(file.store),
            verbose: if self.verbose > 0 {
                self.verbose
            } else {
                file.verbose
            },
            plugtest: self.plugtest || file.plugtest,
            max_sessions: self.max_sessions.or(file.max_sessions),
            relaxed_dedup: self.relaxed_dedup || file.relaxed_dedup,
            quiet: self.quiet || file.quiet,
            oscore_context: if self.oscore_context.is_empty() {
                file.oscore_context
            } else {
                self.oscore_context
            },
        }
    }

    /// Reads a `--config` file.
    pub fn from_file(path: &std::path::Path) -> Result<ServerArgs> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| fail!("config {}: {e}", path.display()))
    }
}

/// Splits `SPEC[:RIGHTS]` where RIGHTS starts with `/` or `*`: the first
/// `:` followed by one of those whose remainder parses as rights.
fn split_rights(spec: &str) -> Result<(&str, Option<Rights>)> {
    for (i, _) in spec.match_indices(':') {
        let rest = spec.get(i + 1..).unwrap_or("");
        if !(rest.starts_with('/') || rest.starts_with('*')) {
            continue;
        }
        if let Ok(r) = Rights::parse(rest) {
            return Ok((spec.get(..i).unwrap_or(""), Some(r)));
        }
        return Err(fail!(
            "`{rest}` is not RIGHTS (PATH:METHOD[,METHOD]..., see --help)"
        ));
    }
    Ok((spec, None))
}

/// `cssf-server`'s configuration from its arguments (and `--config` file).
pub fn server_config(args: ServerArgs) -> Result<ServerConfig> {
    let args = match &args.config {
        Some(f) => {
            let file = ServerArgs::from_file(f)?;
            args.over(file)
        }
        None => args,
    };
    let mut cfg = ServerConfig::default();
    if let Some(a) = args.bind {
        cfg.bind = a;
    }
    if let Some(a) = args.dtls_bind {
        cfg.dtls_bind = a;
    }
    for v in &args.psk {
        let (spec, rights) = split_rights(v)?;
        let psk = Psk::parse(spec)?;
        let rights = rights.unwrap_or_else(default_rights);
        cfg.psk_rights.push((psk.identity.clone(), rights));
        cfg.psks.push(psk);
    }
    let key = args.key.as_ref().map(|k| load_private_key(k)).transpose()?;
    let mut trust = Vec::new();
    for v in &args.trust {
        let (file, rights) = split_rights(v)?;
        let k = load_public_key(&PathBuf::from(file))?;
        trust.push((k, rights.unwrap_or_else(default_rights)));
    }
    if let Some(v) = &args.public {
        cfg.public = Some(Rights::parse(v).map_err(|_| fail!("--public: `{v}` is not RIGHTS"))?);
    }
    let mut opts = token::KeyOptions::default();
    let mut es256 = None;
    if let Some(f) = &args.as_public_key {
        let (k, kid) = token::load_as_public_key(f)?;
        es256 = Some(k);
        opts.es256_kid = kid;
    }
    let hmac = args
        .as_hmac_key
        .as_deref()
        .map(|h| unhex(h).map(Zeroizing::new))
        .transpose()
        .map_err(|e| fail!("--as-hmac-key: {e}"))?;
    if let Some(a) = &args.as_hmac_alg {
        opts.hmac_alg = token::KeyOptions::parse_hmac_alg(a)?;
    }
    opts.kid = args.as_kid.map(String::into_bytes);
    if let Some(a) = args.audience {
        cfg.audience = a;
    }
    cfg.as_uri = args.as_uri;
    cfg.store = args.store;
    cfg.acp = args.acp;
    cfg.verbose = args.verbose;
    cfg.plugtest = args.plugtest;
    if let Some(n) = args.max_sessions {
        cfg.max_sessions = n;
    }
    cfg.relaxed_dedup = args.relaxed_dedup;
    cfg.quiet = args.quiet;
    for f in &args.oscore_context {
        cfg.oscore
            .push(crate::oscore_file::OscoreContextFile::load(f)?);
    }
    cfg.rpk = match key {
        Some(key) => Some(RpkConfig {
            key,
            trust,
            require_client_key: args.require_client_key,
        }),
        None if !trust.is_empty() => {
            return Err(fail!("--trust needs --key (the device's own private key)"))
        }
        None if args.require_client_key => return Err(fail!("--require-client-key needs --key")),
        None => None,
    };
    cfg.as_keys =
        token::verification_keys_with(es256.as_ref(), hmac.as_deref().map(|v| &v[..]), &opts)?;
    Ok(cfg)
}

/// `cssf-server`: runs until Ctrl-C.
pub fn server_main(args: ServerArgs) -> Result<()> {
    let cfg = server_config(args)?;
    init_logging(cfg.verbose);
    // The DTLS endpoint's tables are inline and it is built by value: the
    // gateway sizes (`--max-sessions 16384`, about 13 MB) pass through the
    // stack of the thread that starts it, more than a main thread's 8 MB.
    // Untouched stack pages cost nothing.
    let stack = 64 * 1024 * 1024 + cfg.max_sessions * 4096;
    std::thread::Builder::new()
        .name("cssf-server".into())
        .stack_size(stack)
        .spawn(move || {
            runtime()?.block_on(async {
                let server = Server::start(cfg).await?;
                server.run(stop_signal()).await
            })
        })
        .map_err(|e| fail!("cannot start the server thread: {e}"))?
        .join()
        .map_err(|_| fail!("the server thread panicked"))?
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `-b [NUM,]SIZE`: the block to start at and the block size exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockArg {
    /// The first Block2 block asked for.
    pub num: u32,
    /// SZX (size = 16 << szx).
    pub szx: u8,
}

/// `-O NUM,TEXT`: a custom option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomOption {
    /// The option number.
    pub number: u16,
    /// Its value (text, or bytes from `0x..` hex).
    pub value: Vec<u8>,
}

/// A CoAP method name (`get`, `post`, `put`, `delete`, `fetch`, `patch`,
/// `ipatch`; any case).
pub fn parse_method(m: &str) -> Result<Code> {
    Ok(match m.to_ascii_lowercase().as_str() {
        "get" => Code::GET,
        "post" => Code::POST,
        "put" => Code::PUT,
        "delete" => Code::DELETE,
        "fetch" => Code::FETCH,
        "patch" => Code::PATCH,
        "ipatch" => Code::IPATCH,
        _ => {
            return Err(fail!(
                "unknown method `{m}` (get, post, put, delete, fetch, patch, ipatch)"
            ))
        }
    })
}

/// A Content-Format: a number, a media type (`text/plain`,
/// `application/json`, `application/cbor`, ...) or a short name as libcoap
/// takes them (`text`, `plain`, `link`, `xml`, `binary`, `octet-stream`,
/// `exi`, `json`, `cbor`, `ace+cbor`).
pub fn parse_content_format(t: &str) -> Result<ContentFormat> {
    if let Ok(n) = t.parse::<u16>() {
        return Ok(ContentFormat(n));
    }
    let want = t.trim().to_ascii_lowercase();
    let short = match want.as_str() {
        "text" | "plain" => Some(ContentFormat::TEXT_PLAIN),
        "link" => Some(ContentFormat(40)),
        "xml" => Some(ContentFormat(41)),
        "binary" | "octet-stream" | "octet" => Some(ContentFormat(42)),
        "exi" => Some(ContentFormat(47)),
        "json" => Some(ContentFormat(50)),
        "cbor" => Some(ContentFormat(60)),
        "ace+cbor" => Some(ContentFormat::ACE_CBOR),
        _ => None,
    };
    if let Some(cf) = short {
        return Ok(cf);
    }
    // The registry's media types, with or without their parameters.
    (0..=u16::MAX)
        .map(ContentFormat)
        .find(|cf| {
            cf.media_type().is_some_and(|m| {
                let m = m.to_ascii_lowercase();
                m == want || m.split(';').next().is_some_and(|b| b.trim() == want)
            })
        })
        .ok_or_else(|| fail!("`{t}` is not a Content-Format number or known media type"))
}

/// `[NUM,]SIZE` with SIZE a power of two from 16 to 1024.
pub fn parse_block(v: &str) -> Result<BlockArg> {
    let (num, size) = match v.split_once(',') {
        Some((n, s)) => (n, s),
        None => ("0", v),
    };
    let num = num
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n < 1 << 20)
        .ok_or_else(|| fail!("`{num}` is not a block number"))?;
    let size = size.trim().parse::<usize>().ok();
    let szx = (0u8..=6)
        .find(|z| Some(16usize << z) == size)
        .ok_or_else(|| fail!("`{v}`: the size is one of 16, 32, 64, 128, 256, 512, 1024"))?;
    Ok(BlockArg { num, szx })
}

/// `NUM,TEXT` or `NUM,0xHEX`.
pub fn parse_custom_option(v: &str) -> Result<CustomOption> {
    let (n, text) = v
        .split_once(',')
        .ok_or_else(|| fail!("`{v}` is not NUM,TEXT"))?;
    let number = n
        .trim()
        .parse::<u16>()
        .map_err(|_| fail!("`{n}` is not an option number"))?;
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(h) => unhex(h)?,
        None => text.as_bytes().to_vec(),
    };
    Ok(CustomOption { number, value })
}

/// `-T HEX`: the request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoapToken(pub Vec<u8>);

/// A token in hex (at most 8 bytes; `0x` allowed in front).
pub fn parse_token_hex(v: &str) -> Result<CoapToken> {
    let h = v.strip_prefix("0x").unwrap_or(v);
    let t = unhex(h)?;
    if t.len() > 8 {
        return Err(fail!("a token is at most 8 bytes, `{v}` has {}", t.len()));
    }
    Ok(CoapToken(t))
}

fn parse_secs(v: &str) -> Result<u64> {
    parse_duration_secs(v)
}

fn parse_max_sessions(v: &str) -> Result<usize> {
    match v.parse::<usize>() {
        Ok(n) if crate::server::SESSION_SIZES.contains(&n) => Ok(n),
        _ => Err(fail!(
            "--max-sessions takes one of {:?}, got `{v}`",
            crate::server::SESSION_SIZES
        )),
    }
}

fn parse_psk(v: &str) -> Result<Psk> {
    Psk::parse(v)
}

const CLIENT_HELP: &str =
    "Flags in libcoap coap-client's spelling: -m -e -f -o -u -k -b -N -t -A -O -T -s -B.
-s SECONDS observes for that long (as in libcoap); --observe N stops after N notifications.
-v, -vv, -vvv: the DTLS and token steps, and every CoAP message sent and received, on stderr.
Exit status: 0 when a response arrived (whatever its code), 1 on a failure, 2 on bad arguments.";

/// `cssf-client`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cssf-client",
    version,
    // A later value of a single-valued option wins, as before clap.
    args_override_self = true,
    about = "A CoAP / CoAPs client in the style of libcoap's coap-client.",
    after_help = CLIENT_HELP
)]
pub struct ClientArgs {
    /// The request method: get, post, put, delete, fetch, patch, ipatch.
    #[arg(short, long, value_name = "METHOD", default_value = "get", value_parser = parse_method)]
    pub method: Code,
    /// A PSK for coaps: the identity and the key in hex.
    #[arg(long, value_name = "IDENTITY:HEXKEY", value_parser = parse_psk, conflicts_with = "identity")]
    pub psk: Option<Psk>,
    /// The PSK identity (text), with -k.
    #[arg(
        short = 'u',
        long = "psk-identity",
        value_name = "IDENTITY",
        requires = "psk_text"
    )]
    pub identity: Option<String>,
    /// The PSK as text (libcoap's `-k secretPSK`), with -u.
    #[arg(
        short = 'k',
        long = "psk-text",
        value_name = "KEY",
        requires = "identity"
    )]
    pub psk_text: Option<String>,
    /// Our P-256 private key (raw public keys, RFC 7250); needs --trust.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A server public key we accept (repeatable).
    #[arg(long, value_name = "FILE")]
    pub trust: Vec<PathBuf>,
    /// An access token file (from `cssf-token mint`): POSTed to /authz-info, its PoP key keys the DTLS session.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
    /// Where to POST the token [default: the server's host, CoAP port = CoAPs port - 1].
    #[arg(long, value_name = "URI")]
    pub authz_info: Option<String>,
    /// Observe: stop after N notifications (the first response counts).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub observe: Option<u32>,
    /// Observe for SECONDS (libcoap's -s); with --observe, whichever ends first.
    #[arg(short = 's', long = "observe-for", value_name = "SECONDS", value_parser = parse_secs)]
    pub observe_for: Option<u64>,
    /// The payload, as text.
    #[arg(
        short = 'e',
        long,
        value_name = "TEXT",
        conflicts_with = "payload_file"
    )]
    pub payload: Option<String>,
    /// The payload, from a file (`-` for stdin).
    #[arg(short = 'f', long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,
    /// Write the response payload to FILE (raw bytes; notifications appended); stdout keeps the code and options.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Block size (16..1024) for the response (Block2) and for uploads (Block1); NUM: the first Block2 block.
    #[arg(short = 'b', long = "block", value_name = "[NUM,]SIZE", value_parser = parse_block)]
    pub block: Option<BlockArg>,
    /// Send the request non-confirmable (NON).
    #[arg(short = 'N', long = "non")]
    pub non: bool,
    /// Content-Format of the payload: a number or a name (text/plain, application/json, application/cbor, json, cbor, ...) [default with a payload: text/plain].
    #[arg(short = 't', long = "content-format", value_name = "TYPE", value_parser = parse_content_format)]
    pub content_format: Option<ContentFormat>,
    /// Accept: the Content-Format wanted in the response (number or name).
    #[arg(short = 'A', long = "accept", value_name = "TYPE", value_parser = parse_content_format)]
    pub accept: Option<ContentFormat>,
    /// A custom option (repeatable): its number and its value as text, or 0x.. hex for opaque bytes.
    #[arg(short = 'O', long = "option", value_name = "NUM,TEXT", value_parser = parse_custom_option)]
    pub options: Vec<CustomOption>,
    /// The request's token, in hex (at most 8 bytes).
    #[arg(short = 'T', long = "coap-token", value_name = "HEX", value_parser = parse_token_hex)]
    pub coap_token: Option<CoapToken>,
    /// Bound on every single wait (a handshake, a response, the next notification), in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout: u64,
    /// Give up after SECONDS in all (libcoap's -B).
    #[arg(short = 'B', long = "wait", value_name = "SECONDS", value_parser = parse_secs)]
    pub wait: Option<u64>,
    /// Print only the payload.
    #[arg(short, long)]
    pub quiet: bool,
    /// Send the request OSCORE-protected (RFC 8613) with this context, over
    /// coap:// (a JSON file as for cssf-server, IDs from the client's side;
    /// its Sender Sequence Number is kept in FILE.seq).
    #[arg(long, value_name = "FILE")]
    pub oscore_context: Option<PathBuf>,
    /// Log on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// The resource (a coap or coaps URI).
    #[arg(
        value_name = "URI",
        help = "The resource: coap://HOST[:PORT]/PATH[?QUERY] or coaps://..."
    )]
    pub uri: String,
}

/// What `cssf-client` does.
#[derive(Debug)]
pub struct ClientConfig {
    /// Method.
    pub method: Code,
    /// PSK for coaps.
    pub psk: Option<Psk>,
    /// Our private key for raw public keys (RFC 7250).
    pub key: Option<p256::SecretKey>,
    /// The server public keys we accept (raw public keys).
    pub trust: Vec<p256::PublicKey>,
    /// Token file.
    pub token: Option<PathBuf>,
    /// Where to POST the token (default: the server's host, CoAP port =
    /// CoAPs port - 1).
    pub authz_info: Option<Target>,
    /// Notifications to wait for.
    pub observe: Option<u32>,
    /// How long to observe.
    pub observe_for: Option<Duration>,
    /// Request payload.
    pub payload: Vec<u8>,
    /// Content-Format of the payload (text/plain when there is a payload
    /// and none is given).
    pub content_format: Option<ContentFormat>,
    /// Accept.
    pub accept: Option<ContentFormat>,
    /// Block size and first Block2 block.
    pub block: Option<BlockArg>,
    /// Non-confirmable.
    pub non: bool,
    /// Custom options.
    pub options: Vec<CustomOption>,
    /// The request's token.
    pub coap_token: Option<Vec<u8>>,
    /// Target.
    pub target: Target,
    /// Bound on every wait.
    pub timeout: Duration,
    /// Bound on the whole run.
    pub wait: Option<Duration>,
    /// Print only the payload.
    pub quiet: bool,
    /// Where the response payload goes instead of stdout.
    pub output: Option<PathBuf>,
    /// `-v` count: the crates' log messages on stderr (see
    /// [`init_logging`]).
    pub verbose: u8,
    /// The OSCORE context requests are protected with, if any.
    pub oscore: Option<crate::oscore_file::OscoreContextFile>,
}

/// `cssf-client`'s configuration: reads the files its arguments name.
pub fn client_config(a: ClientArgs) -> Result<ClientConfig> {
    let target = Target::parse(&a.uri)?;
    let psk = match (a.psk, a.identity, a.psk_text) {
        (Some(p), _, _) => Some(p),
        (None, Some(id), Some(k)) => {
            if id.is_empty() || id.len() > cssf_dtls::MAX_IDENTITY_LEN {
                return Err(fail!(
                    "-u: the identity is 1 to {} bytes",
                    cssf_dtls::MAX_IDENTITY_LEN
                ));
            }
            if k.is_empty() || k.len() > cssf_dtls::MAX_PSK_LEN {
                return Err(fail!(
                    "-k: the key is 1 to {} bytes",
                    cssf_dtls::MAX_PSK_LEN
                ));
            }
            Some(Psk {
                identity: id.into_bytes(),
                key: Zeroizing::new(k.into_bytes()),
            })
        }
        _ => None,
    };
    let key = a.key.as_ref().map(|k| load_private_key(k)).transpose()?;
    let trust = a
        .trust
        .iter()
        .map(|t| load_public_key(t))
        .collect::<Result<Vec<_>>>()?;
    let payload = match (&a.payload, &a.payload_file) {
        (Some(p), _) => p.clone().into_bytes(),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                .map_err(|e| fail!("cannot read the payload from stdin: {e}"))?;
            b
        }
        (None, Some(f)) => {
            std::fs::read(f).map_err(|e| fail!("cannot read {}: {e}", f.display()))?
        }
        (None, None) => Vec::new(),
    };
    if key.is_some() && trust.is_empty() {
        return Err(fail!("--key needs --trust FILE (the server's public key)"));
    }
    if target.secure && psk.is_none() && a.token.is_none() && trust.is_empty() {
        return Err(fail!(
            "{} is coaps: give --psk IDENTITY:HEXKEY, -u IDENTITY -k KEY, --token FILE or --trust FILE [--key FILE]",
            a.uri
        ));
    }
    let oscore = match &a.oscore_context {
        None => None,
        Some(f) => {
            if target.secure {
                return Err(fail!(
                    "--oscore-context: use a coap:// URI (OSCORE replaces DTLS here)"
                ));
            }
            // Observe and block-wise transfers are protected too (each
            // notification verified, each block its own protected request);
            // an ACE token or a rewritten token or option is not.
            if a.token.is_some() || a.coap_token.is_some() || !a.options.is_empty() {
                return Err(fail!(
                    "--oscore-context: not with --token, -T or -O (the message is protected as the endpoint builds it)"
                ));
            }
            Some(crate::oscore_file::OscoreContextFile::load(f)?)
        }
    };
    Ok(ClientConfig {
        oscore,
        method: a.method,
        psk,
        key,
        trust,
        token: a.token,
        authz_info: a.authz_info.as_deref().map(Target::parse).transpose()?,
        observe: a.observe,
        observe_for: a.observe_for.map(Duration::from_secs),
        payload,
        content_format: a.content_format,
        accept: a.accept,
        block: a.block,
        non: a.non,
        options: a.options,
        coap_token: a.coap_token.map(|t| t.0),
        target,
        timeout: Duration::from_secs(a.timeout.max(1)),
        wait: a.wait.map(|s| Duration::from_secs(s.max(1))),
        quiet: a.quiet,
        output: a.output,
        verbose: a.verbose,
    })
}

/// Posts a token to `/authz-info` over plain CoAP; `Ok` on 2.01.
pub async fn post_token(at: &Target, token: &[u8], timeout: Duration) -> Result<Reply> {
    let mut link = Link::plain(at.addr, timeout).await?;
    let path = if at.path.is_empty() {
        "authz-info"
    } else {
        at.path.as_str()
    };
    let r = link
        .request(
            &Request::post(path)
                .payload(token)
                .content_format(cssf_coap::ContentFormat::ACE_CBOR),
        )
        .await?;
    if r.code != Code::CREATED {
        return Err(fail!(
            "the server refused the token: {} {}",
            r.code,
            r.code.name().unwrap_or("")
        ));
    }
    Ok(r)
}

/// `cssf-client`.
pub fn client_main(args: ClientArgs) -> Result<()> {
    let cfg = client_config(args)?;
    init_logging(cfg.verbose);
    runtime()?.block_on(async {
        match cfg.wait {
            Some(w) => tokio::time::timeout(w, run_client(&cfg))
                .await
                .unwrap_or_else(|_| Err(fail!("gave up after {} s (-B)", w.as_secs()))),
            None => run_client(&cfg).await,
        }
    })
}

async fn run_client(cfg: &ClientConfig) -> Result<()> {
    let t = &cfg.target;
    let mut creds = cfg.psk.clone().map(|p| (p.identity, p.key));
    let mut refused = None;
    if let Some(f) = &cfg.token {
        let file = token::read_token_file(f)?;
        let at = match &cfg.authz_info {
            Some(a) => a.clone(),
            None => {
                let mut a = t.addr;
                if t.secure {
                    a.set_port(a.port().saturating_sub(1));
                }
                Target {
                    secure: false,
                    addr: a,
                    path: "authz-info".into(),
                    query: None,
                }
            }
        };
        match post_token(&at, &file.token, cfg.timeout).await {
            Ok(_) => {
                if !cfg.quiet {
                    eprintln!("token accepted by coap://{}/{}", at.addr, at.path);
                }
            }
            // The device may hold the token already (a second post of the
            // same token is a replay): the handshake tells.
            Err(e) if t.secure => {
                refused = Some(e);
            }
            Err(e) => return Err(e),
        }
        creds = Some(file.psk()?);
    }
    let link = match (&creds, t.secure) {
        (Some((id, key)), true) => Link::dtls_psk(t.addr, id, key, cfg.timeout).await,
        (None, true) => {
            Link::dtls_rpk(t.addr, cfg.key.clone(), cfg.trust.clone(), cfg.timeout).await
        }
        _ => Link::plain(t.addr, cfg.timeout).await,
    };
    let mut link = match (link, refused) {
        (Ok(l), refused) => {
            if let (Some(r), false) = (refused, cfg.quiet) {
                eprintln!("note: {r}, but the device holds it already: the handshake with its PoP key worked");
            }
            l
        }
        (Err(e), Some(r)) => {
            return Err(fail!(
                "{r}, and the DTLS handshake with its PoP key failed: {e}"
            ))
        }
        (Err(e), None) => return Err(e),
    };
    // The block size first: it rebuilds the CoAP endpoint, which would
    // drop an OSCORE context added before.
    if let Some(b) = cfg.block {
        link.set_max_szx(b.szx);
    }
    if let Some(f) = &cfg.oscore {
        link.use_oscore(f)?;
    }
    link.set_rewrite(
        cfg.coap_token.clone(),
        cfg.options
            .iter()
            .map(|o| (o.number, o.value.clone()))
            .collect(),
    );
    let quiet = cfg.quiet;
    let mut out = match &cfg.output {
        Some(f) => Some((
            f,
            std::fs::File::create(f).map_err(|e| fail!("cannot write {}: {e}", f.display()))?,
        )),
        None => None,
    };
    let mut write_error = None;
    let mut show = |r: &Reply| match out.as_mut() {
        Some((f, file)) => {
            if !quiet {
                print!("{}", r.render_head());
            }
            if let Err(e) = std::io::Write::write_all(file, &r.payload) {
                write_error.get_or_insert(fail!("cannot write {}: {e}", f.display()));
            }
        }
        None if quiet => println!("{}", String::from_utf8_lossy(&r.payload)),
        None => print!("{}", r.render()),
    };
    let mut req = Request::new(cfg.method, &t.path).payload(&cfg.payload);
    if let Some(q) = &t.query {
        req = req.query(q);
    }
    if let Some(cf) = cfg.content_format {
        req = req.content_format(cf);
    } else if !cfg.payload.is_empty() {
        req = req.content_format(ContentFormat::TEXT_PLAIN);
    }
    req.accept = cfg.accept;
    if cfg.non {
        req = req.non();
    }
    if let Some(b) = cfg.block {
        // Early Block2 size negotiation (RFC 7959 §2.4), from block NUM.
        let block = Block::new(b.num, false, b.szx).map_err(|e| fail!("-b: {e}"))?;
        req = req.block2(block);
    }
    if cfg.observe.is_some() || cfg.observe_for.is_some() {
        let until = cfg.observe_for.map(|d| Instant::now() + d);
        let count = cfg.observe.unwrap_or(u32::MAX);
        link.observe_with(&req, count, until, |r, _| show(r))
            .await?;
    } else {
        let r = link.request(&req).await?;
        show(&r);
    }
    link.close().await;
    write_error.map_or(Ok(()), Err)
}

const TOKEN_HELP: &str = "DURATION: 3600, 3600s, 60m, 2h or 1d.
SCOPE: 'PATH:METHOD[,METHOD] ...' (AIF, e.g. '/sensors/temp:GET /actuators/led:GET,PUT').";

/// `cssf-token`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cssf-token",
    version,
    // A later value of a single-valued option wins, as before clap.
    args_override_self = true,
    about = "The Authorization Server's side: key pairs, minting and inspecting ACE access tokens.",
    after_help = TOKEN_HELP
)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `cssf-token`'s commands.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Mints an access token and its PoP key (an RFC 9201 token response).
    Mint {
        /// The AS's ES256 private key.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "as_hmac_key",
            conflicts_with = "as_hmac_key"
        )]
        as_key: Option<PathBuf>,
        /// The AS's HMAC key.
        #[arg(long, value_name = "HEX")]
        as_hmac_key: Option<String>,
        /// The audience (the device).
        #[arg(
            long = "aud",
            visible_alias = "audience",
            value_name = "NAME",
            default_value = "rs1"
        )]
        aud: String,
        /// What the token allows.
        #[arg(long, value_name = "SCOPE")]
        scope: String,
        /// Lifetime.
        #[arg(long, value_name = "DURATION", default_value = "3600", value_parser = parse_secs)]
        expires_in: u64,
        /// Count the lifetime from reception (exi) instead of an absolute exp.
        #[arg(long)]
        exi: bool,
        /// The key id (the PSK identity of the session).
        #[arg(long, value_name = "TEXT")]
        kid: Option<String>,
        /// The issuer.
        #[arg(long, value_name = "NAME")]
        iss: Option<String>,
        /// Where to write the token response.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Describes a token file (and checks it with the AS key when given).
    Inspect {
        /// The AS's ES256 public key.
        #[arg(long, visible_alias = "as-key", value_name = "FILE")]
        as_public_key: Option<PathBuf>,
        /// The AS's HMAC key.
        #[arg(long, value_name = "HEX")]
        as_hmac_key: Option<String>,
        /// The token file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Generates a P-256 key pair.
    Genkey {
        /// The private key file.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
        /// Also write the public key here.
        #[arg(long, value_name = "FILE")]
        public: Option<PathBuf>,
        /// Write the private key as SEC1 (libcoap's -M) instead of PKCS#8.
        #[arg(long)]
        sec1: bool,
    },
}

fn hmac_key(h: Option<&str>) -> Result<Option<Zeroizing<Vec<u8>>>> {
    h.map(|h| unhex(h).map(Zeroizing::new))
        .transpose()
        .map_err(|e: Failure| fail!("--as-hmac-key: {e}"))
}

/// `cssf-token`.
pub fn token_main(args: TokenArgs) -> Result<()> {
    match args.command {
        TokenCommand::Mint {
            as_key,
            as_hmac_key,
            aud,
            scope,
            expires_in,
            exi,
            kid,
            iss,
            out,
        } => {
            let as_key = match (as_key, hmac_key(as_hmac_key.as_deref())?) {
                (Some(f), _) => AsKey::Es256(load_private_key(&f)?),
                (None, Some(k)) => AsKey::Hmac(k),
                (None, None) => return Err(fail!("mint needs --as-key FILE or --as-hmac-key HEX")),
            };
            let req = MintRequest {
                as_key,
                issuer: iss,
                audience: aud,
                scope: token::parse_scope(&scope)?,
                expires_in,
                exi,
                kid: kid.map(String::into_bytes),
            };
            token_mint(&req, &out)
        }
        TokenCommand::Inspect {
            as_public_key,
            as_hmac_key,
            file,
        } => {
            let es256 = as_public_key
                .as_ref()
                .map(|f| load_public_key(f))
                .transpose()?;
            let hmac = hmac_key(as_hmac_key.as_deref())?;
            let t = token::read_token_file(&file)?;
            let keys = (es256.is_some() || hmac.is_some())
                .then(|| token::verification_keys(es256.as_ref(), hmac.as_deref().map(|v| &v[..])))
                .transpose()?;
            for line in token::describe(&t, keys.as_deref())? {
                println!("{line}");
            }
            Ok(())
        }
        TokenCommand::Genkey { out, public, sec1 } => {
            crate::keys::generate_key_pair(&out, public.as_deref(), sec1)?;
            println!("wrote P-256 private key {}", out.display());
            if let Some(p) = public {
                println!("wrote public key {}", p.display());
            }
            Ok(())
        }
    }
}

fn token_mint(req: &MintRequest, out: &std::path::Path) -> Result<()> {
    let m = token::mint(req)?;
    let resp = token::token_response(&m)?;
    crate::keys::write_private(out, &resp)?;
    println!(
        "wrote {} ({} bytes: access token {} bytes + PoP key)",
        out.display(),
        resp.len(),
        m.token.len()
    );
    println!("kid (psk_identity): {}", token::kid_text(&m.kid));
    println!("PoP key (PSK):      {}", hex(&m.key));
    if req.exi {
        println!(
            "audience {}, expires {} s after the device receives it (exi)",
            req.audience, req.expires_in
        );
    } else {
        println!(
            "audience {}, expires at {} ({} s)",
            req.audience, m.exp, req.expires_in
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_are_consistent() {
        use clap::CommandFactory;
        ServerArgs::command().debug_assert();
        ClientArgs::command().debug_assert();
        TokenArgs::command().debug_assert();
    }

    #[test]
    fn client_flags_parse() {
        let a = ClientArgs::try_parse_from([
            "cssf-client",
            "-m",
            "ipatch",
            "-N",
            "-t",
            "application/json",
            "-A",
            "cbor",
            "-b",
            "2,64",
            "-O",
            "65000,hi",
            "-O",
            "65001,0x0a0b",
            "-T",
            "0xcafe",
            "-s",
            "5",
            "-B",
            "9",
            "-vv",
            "coap://127.0.0.1/x",
        ])
        .unwrap();
        assert_eq!(a.method, Code::IPATCH);
        assert!(a.non);
        assert_eq!(a.content_format, Some(ContentFormat(50)));
        assert_eq!(a.accept, Some(ContentFormat(60)));
        assert_eq!(a.block, Some(BlockArg { num: 2, szx: 2 }));
        assert_eq!(a.options[1].value, vec![0x0a, 0x0b]);
        assert_eq!(a.options[0].value, b"hi".to_vec());
        assert_eq!(a.coap_token, Some(CoapToken(vec![0xca, 0xfe])));
        assert_eq!((a.observe_for, a.wait, a.verbose), (Some(5), Some(9), 2));
        // Old spellings keep working.
        let a = ClientArgs::try_parse_from([
            "cssf-client",
            "--method",
            "put",
            "--payload=on",
            "--verbose",
            "--observe",
            "3",
            "--timeout",
            "2m",
            "coap://[::1]/x",
        ])
        .unwrap();
        assert_eq!(
            (a.method, a.observe, a.timeout, a.verbose),
            (Code::PUT, Some(3), 120, 1)
        );
        assert_eq!(a.payload.as_deref(), Some("on"));
        // A repeated option: the last value wins (as before clap).
        let a = ClientArgs::try_parse_from([
            "cssf-client",
            "--timeout",
            "10",
            "--timeout",
            "3",
            "coap://[::1]/x",
        ])
        .unwrap();
        assert_eq!(a.timeout, 3);
        for bad in [
            &["cssf-client"][..],
            &["cssf-client", "-m", "brew", "coap://h/"],
            &["cssf-client", "-b", "100", "coap://h/"],
            &["cssf-client", "-t", "nonsense/type", "coap://h/"],
            &["cssf-client", "-O", "x,1", "coap://h/"],
            &["cssf-client", "-T", "00112233445566778899", "coap://h/"],
            &["cssf-client", "-k", "secret", "coap://h/"],
            &["cssf-client", "-e", "a", "-f", "b", "coap://h/"],
            &["cssf-client", "--observe", "0", "coap://h/"],
            &["cssf-client", "--psk", "nokey", "coap://h/"],
        ] {
            assert!(ClientArgs::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_formats_by_name_and_number() {
        assert_eq!(
            parse_content_format("text/plain").unwrap(),
            ContentFormat(0)
        );
        assert_eq!(
            parse_content_format("application/json").unwrap(),
            ContentFormat(50)
        );
        assert_eq!(
            parse_content_format("application/cbor").unwrap(),
            ContentFormat(60)
        );
        assert_eq!(parse_content_format("11542").unwrap(), ContentFormat(11542));
        assert!(parse_content_format("x/y").is_err());
    }

    #[test]
    fn config_file_and_flags_merge() {
        let file: ServerArgs = toml::from_str(
            "bind = \"127.0.0.1:6000\"\npsk = [\"a:00\"]\naudience = \"file\"\nverbose = 2\n",
        )
        .unwrap();
        let cli = ServerArgs::try_parse_from(["cssf-server", "--audience", "cli"]).unwrap();
        let m = cli.over(file);
        assert_eq!(m.bind, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(m.audience.as_deref(), Some("cli"));
        assert_eq!((m.psk.len(), m.verbose), (1, 2));
        assert!(toml::from_str::<ServerArgs>("bnid = \"x\"").is_err());
        assert!(toml::from_str::<ServerArgs>("config = \"x\"").is_err());
    }

    #[test]
    fn token_command_lines() {
        let a = TokenArgs::try_parse_from([
            "cssf-token",
            "mint",
            "--as-hmac-key",
            "00",
            "--audience",
            "x",
            "--scope",
            "/a:GET",
            "-o",
            "t",
        ])
        .unwrap();
        assert!(matches!(a.command, TokenCommand::Mint { ref aud, .. } if aud == "x"));
        assert!(
            TokenArgs::try_parse_from(["cssf-token", "mint", "--scope", "/a:GET", "-o", "t"])
                .is_err()
        );
        assert!(TokenArgs::try_parse_from(["cssf-token", "inspect", "--as-key", "k", "f"]).is_ok());
        assert!(TokenArgs::try_parse_from(["cssf-token", "frob"]).is_err());
    }
}
