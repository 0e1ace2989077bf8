//! The command lines of the binaries: parsing into configurations, and the
//! programs themselves, so each `main` is a thin wrapper and the tests can
//! drive the same code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cssf_coap::endpoint::Request;
use cssf_coap::Code;
use zeroize::Zeroizing;

use crate::client::{Link, Reply};
use crate::fail;
use crate::keys::{load_private_key, load_public_key, Psk};
use crate::server::{default_rights, RpkConfig, Server, ServerConfig};
use crate::token::{self, AsKey, MintRequest};
use crate::uri::Target;
use crate::util::{hex, init_logging, parse_duration_secs, unhex, verbosity, Arg, Args, Result};
use cssf_auth::authorizer::Rights;

/// Builds a single-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the runtime: {e}"))
}

fn addr(s: &str, opt: &str) -> Result<SocketAddr> {
    s.parse()
        .map_err(|_| fail!("{opt}: `{s}` is not an address like 127.0.0.1:5683"))
}

/// Usage of `cssf-server`.
pub const SERVER_USAGE: &str = "usage: cssf-server [--bind ADDR] [--dtls-bind ADDR] \
[--psk IDENTITY:HEXKEY[:RIGHTS]]... [--key FILE [--trust FILE[:RIGHTS]]... [--require-client-key]] \
[--as-public-key FILE] [--as-hmac-key HEX [--as-hmac-alg HS256|HS256/64]] [--as-kid KID] \
[--as-uri URI] [--audience NAME] [--public RIGHTS] [--acp FILE] [--store FILE] [-v|-vv|-vvv]
RIGHTS: PATH:METHOD[,METHOD]... entries separated by ';' or spaces, PATH `*` for every path, \
METHOD `ALL` for every method (e.g. `/actuators/led:GET,PUT;*:GET`); default `*:GET`
-v, -vv, -vvv: the DTLS and token steps on stderr (info, debug, trace)";

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
        return Err(fail!("`{rest}` is not RIGHTS; {SERVER_USAGE}"));
    }
    Ok((spec, None))
}

/// Parses `cssf-server`'s arguments.
pub fn server_config(mut args: Args) -> Result<ServerConfig> {
    let mut cfg = ServerConfig::default();
    let (mut es256, mut hmac) = (None, None);
    let (mut key, mut trust, mut require_client_key) = (None, Vec::new(), false);
    let mut opts = token::KeyOptions::default();
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "--bind" => cfg.bind = addr(&args.value(&o)?, &o)?,
                "--dtls-bind" => cfg.dtls_bind = addr(&args.value(&o)?, &o)?,
                "--psk" => {
                    let v = args.value(&o)?;
                    let (spec, rights) = split_rights(&v)?;
                    let psk = Psk::parse(spec)?;
                    let rights = rights.unwrap_or_else(default_rights);
                    cfg.psk_rights.push((psk.identity.clone(), rights));
                    cfg.psks.push(psk);
                }
                "--key" => key = Some(load_private_key(&PathBuf::from(args.value(&o)?))?),
                "--trust" => {
                    let v = args.value(&o)?;
                    let (file, rights) = split_rights(&v)?;
                    let k = load_public_key(&PathBuf::from(file))?;
                    trust.push((k, rights.unwrap_or_else(default_rights)));
                }
                "--require-client-key" => require_client_key = true,
                "--public" => {
                    let v = args.value(&o)?;
                    cfg.public = Some(
                        Rights::parse(&v).map_err(|_| fail!("--public: `{v}` is not RIGHTS"))?,
                    );
                }
                "--as-public-key" => {
                    let (k, kid) = token::load_as_public_key(&PathBuf::from(args.value(&o)?))?;
                    es256 = Some(k);
                    opts.es256_kid = kid;
                }
                "--as-hmac-key" => {
                    hmac = Some(Zeroizing::new(
                        unhex(&args.value(&o)?).map_err(|e| fail!("--as-hmac-key: {e}"))?,
                    ))
                }
                "--as-hmac-alg" => {
                    opts.hmac_alg = token::KeyOptions::parse_hmac_alg(&args.value(&o)?)?
                }
                "--as-kid" => opts.kid = Some(args.value(&o)?.into_bytes()),
                "--audience" => cfg.audience = args.value(&o)?,
                "--as-uri" => cfg.as_uri = Some(args.value(&o)?),
                "--store" => cfg.store = Some(PathBuf::from(args.value(&o)?)),
                "--acp" => cfg.acp = Some(PathBuf::from(args.value(&o)?)),
                v if verbosity(v).is_some() => {
                    cfg.verbose = cfg.verbose.saturating_add(verbosity(v).unwrap_or(1))
                }
                "-h" | "--help" => return Err(fail!("{SERVER_USAGE}")),
                _ => return Err(fail!("unknown option {o}; {SERVER_USAGE}")),
            },
            Arg::Pos(p) => return Err(fail!("unexpected argument `{p}`; {SERVER_USAGE}")),
        }
    }
    cfg.rpk = match key {
        Some(key) => Some(RpkConfig {
            key,
            trust,
            require_client_key,
        }),
        None if !trust.is_empty() => {
            return Err(fail!("--trust needs --key (the device's own private key)"))
        }
        None if require_client_key => return Err(fail!("--require-client-key needs --key")),
        None => None,
    };
    cfg.as_keys =
        token::verification_keys_with(es256.as_ref(), hmac.as_deref().map(|v| &v[..]), &opts)?;
    Ok(cfg)
}

/// `cssf-server`: runs until Ctrl-C.
pub fn server_main(args: Args) -> Result<()> {
    let cfg = server_config(args)?;
    init_logging(cfg.verbose);
    runtime()?.block_on(async {
        let server = Server::start(cfg).await?;
        server.run(stop_signal()).await
    })
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
    /// Request payload.
    pub payload: Vec<u8>,
    /// Target.
    pub target: Target,
    /// Bound on every wait.
    pub timeout: Duration,
    /// Print only the payload.
    pub quiet: bool,
    /// `-v` count: the crates' log messages on stderr (see
    /// [`init_logging`]).
    pub verbose: u8,
}

/// Usage of `cssf-client`.
pub const CLIENT_USAGE: &str = "usage: cssf-client [-m get|put|post|delete] [--psk IDENTITY:HEXKEY] \
[--key FILE --trust FILE] [--token FILE [--authz-info URI]] [--observe N] [--payload TEXT | --payload-file FILE] \
[--timeout SECS] [-q] [-v|-vv|-vvv] URI
-v, -vv, -vvv: the DTLS and token steps on stderr (info, debug, trace)";

/// Parses `cssf-client`'s arguments.
pub fn client_config(mut args: Args) -> Result<ClientConfig> {
    let mut method = Code::GET;
    let (mut psk, mut token, mut authz, mut observe) = (None, None, None, None);
    let mut payload = Vec::new();
    let mut uri = None;
    let mut timeout = Duration::from_secs(10);
    let (mut key, mut trust) = (None, Vec::new());
    let mut quiet = false;
    let mut verbose = 0u8;
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "-m" | "--method" => {
                    let m = args.value(&o)?;
                    method = match m.to_ascii_lowercase().as_str() {
                        "get" => Code::GET,
                        "put" => Code::PUT,
                        "post" => Code::POST,
                        "delete" => Code::DELETE,
                        "fetch" => Code::FETCH,
                        _ => {
                            return Err(fail!("-m: unknown method `{m}` (get, put, post, delete)"))
                        }
                    }
                }
                "--psk" => psk = Some(Psk::parse(&args.value(&o)?)?),
                "--key" => key = Some(load_private_key(&PathBuf::from(args.value(&o)?))?),
                "--trust" => trust.push(load_public_key(&PathBuf::from(args.value(&o)?))?),
                "--token" => token = Some(PathBuf::from(args.value(&o)?)),
                "--authz-info" => authz = Some(Target::parse(&args.value(&o)?)?),
                "--observe" | "-s" => {
                    let v = args.value(&o)?;
                    observe = Some(
                        v.parse::<u32>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| fail!("{o}: `{v}` is not a positive count"))?,
                    );
                }
                "--payload" | "-e" => payload = args.value(&o)?.into_bytes(),
                "--payload-file" | "-f" => {
                    let f = args.value(&o)?;
                    payload = std::fs::read(&f).map_err(|e| fail!("cannot read {f}: {e}"))?;
                }
                "--timeout" => {
                    timeout = Duration::from_secs(parse_duration_secs(&args.value(&o)?)?.max(1))
                }
                "-q" | "--quiet" => quiet = true,
                v if verbosity(v).is_some() => {
                    verbose = verbose.saturating_add(verbosity(v).unwrap_or(1))
                }
                "-h" | "--help" => return Err(fail!("{CLIENT_USAGE}")),
                _ => return Err(fail!("unknown option {o}; {CLIENT_USAGE}")),
            },
            Arg::Pos(p) => {
                if uri.is_some() {
                    return Err(fail!("more than one URI; {CLIENT_USAGE}"));
                }
                uri = Some(p);
            }
        }
    }
    let uri = uri.ok_or_else(|| fail!("no URI; {CLIENT_USAGE}"))?;
    let target = Target::parse(&uri)?;
    if key.is_some() && trust.is_empty() {
        return Err(fail!("--key needs --trust FILE (the server's public key)"));
    }
    if target.secure && psk.is_none() && token.is_none() && trust.is_empty() {
        return Err(fail!(
            "{uri} is coaps: give --psk IDENTITY:HEXKEY, --token FILE or --trust FILE [--key FILE]"
        ));
    }
    Ok(ClientConfig {
        method,
        psk,
        key,
        trust,
        token,
        authz_info: authz,
        observe,
        payload,
        target,
        timeout,
        quiet,
        verbose,
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
pub fn client_main(args: Args) -> Result<()> {
    let cfg = client_config(args)?;
    init_logging(cfg.verbose);
    runtime()?.block_on(run_client(cfg))
}

async fn run_client(cfg: ClientConfig) -> Result<()> {
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
    let quiet = cfg.quiet;
    let show = |r: &Reply| {
        if quiet {
            println!("{}", String::from_utf8_lossy(&r.payload));
        } else {
            print!("{}", r.render());
        }
    };
    match cfg.observe {
        Some(n) => {
            link.observe(&t.path, t.query.as_deref(), n, |r, _| show(r))
                .await?
        }
        None => {
            let mut req = Request::new(cfg.method, &t.path).payload(&cfg.payload);
            if let Some(q) = &t.query {
                req = req.query(q);
            }
            if !cfg.payload.is_empty() {
                req = req.content_format(cssf_coap::ContentFormat::TEXT_PLAIN);
            }
            let r = link.request(&req).await?;
            show(&r);
        }
    }
    link.close().await;
    Ok(())
}

/// Usage of `cssf-token`.
pub const TOKEN_USAGE: &str =
    "usage: cssf-token mint (--as-key FILE | --as-hmac-key HEX) [--aud NAME] \
--scope 'PATH:METHOD[,METHOD] ...' [--expires-in DURATION [--exi]] [--kid TEXT] [--iss NAME] --out FILE\n\
       cssf-token inspect [--as-public-key FILE | --as-hmac-key HEX] FILE\n\
       cssf-token genkey --out FILE [--public FILE] [--sec1]";

/// `cssf-token`.
pub fn token_main(mut args: Args) -> Result<()> {
    let cmd = match args.next_arg() {
        Some(Arg::Pos(c)) => c,
        _ => return Err(fail!("{TOKEN_USAGE}")),
    };
    match cmd.as_str() {
        "mint" => token_mint(args),
        "inspect" => token_inspect(args),
        "genkey" => token_genkey(args),
        _ => Err(fail!("unknown command `{cmd}`; {TOKEN_USAGE}")),
    }
}

fn token_mint(mut args: Args) -> Result<()> {
    let (mut key, mut scope, mut out) = (None, None, None);
    let mut aud = "rs1".to_string();
    let mut expires_in = 3600;
    let mut exi = false;
    let (mut kid, mut iss) = (None, None);
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "--as-key" => {
                    key = Some(AsKey::Es256(load_private_key(&PathBuf::from(
                        args.value(&o)?,
                    ))?))
                }
                "--as-hmac-key" => {
                    key = Some(AsKey::Hmac(Zeroizing::new(
                        unhex(&args.value(&o)?).map_err(|e| fail!("--as-hmac-key: {e}"))?,
                    )))
                }
                "--aud" | "--audience" => aud = args.value(&o)?,
                "--scope" => scope = Some(token::parse_scope(&args.value(&o)?)?),
                "--expires-in" => expires_in = parse_duration_secs(&args.value(&o)?)?,
                "--exi" => exi = true,
                "--kid" => kid = Some(args.value(&o)?.into_bytes()),
                "--iss" => iss = Some(args.value(&o)?),
                "--out" | "-o" => out = Some(PathBuf::from(args.value(&o)?)),
                _ => return Err(fail!("unknown option {o}; {TOKEN_USAGE}")),
            },
            Arg::Pos(p) => return Err(fail!("unexpected argument `{p}`; {TOKEN_USAGE}")),
        }
    }
    let req = MintRequest {
        as_key: key.ok_or_else(|| fail!("mint needs --as-key FILE or --as-hmac-key HEX"))?,
        issuer: iss,
        audience: aud,
        scope: scope.ok_or_else(|| fail!("mint needs --scope"))?,
        expires_in,
        exi,
        kid,
    };
    let out = out.ok_or_else(|| fail!("mint needs --out FILE"))?;
    let m = token::mint(&req)?;
    let resp = token::token_response(&m)?;
    crate::keys::write_private(&out, &resp)?;
    println!(
        "wrote {} ({} bytes: access token {} bytes + PoP key)",
        out.display(),
        resp.len(),
        m.token.len()
    );
    println!("kid (psk_identity): {}", token::kid_text(&m.kid));
    println!("PoP key (PSK):      {}", hex(&m.key));
    if exi {
        println!(
            "audience {}, expires {expires_in} s after the device receives it (exi)",
            req.audience
        );
    } else {
        println!(
            "audience {}, expires at {} ({} s)",
            req.audience, m.exp, expires_in
        );
    }
    Ok(())
}

fn token_inspect(mut args: Args) -> Result<()> {
    let (mut file, mut es256, mut hmac) = (None, None, None);
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "--as-public-key" | "--as-key" => {
                    es256 = Some(load_public_key(&PathBuf::from(args.value(&o)?))?)
                }
                "--as-hmac-key" => {
                    hmac = Some(Zeroizing::new(
                        unhex(&args.value(&o)?).map_err(|e| fail!("--as-hmac-key: {e}"))?,
                    ))
                }
                _ => return Err(fail!("unknown option {o}; {TOKEN_USAGE}")),
            },
            Arg::Pos(p) => file = Some(PathBuf::from(p)),
        }
    }
    let file = file.ok_or_else(|| fail!("inspect needs a token FILE"))?;
    let t = token::read_token_file(&file)?;
    let keys = (es256.is_some() || hmac.is_some())
        .then(|| token::verification_keys(es256.as_ref(), hmac.as_deref().map(|v| &v[..])))
        .transpose()?;
    for line in token::describe(&t, keys.as_deref())? {
        println!("{line}");
    }
    Ok(())
}

fn token_genkey(mut args: Args) -> Result<()> {
    let (mut out, mut public, mut sec1) = (None, None, false);
    while let Some(a) = args.next_arg() {
        match a {
            Arg::Opt(o) => match o.as_str() {
                "--out" | "-o" => out = Some(PathBuf::from(args.value(&o)?)),
                "--public" => public = Some(PathBuf::from(args.value(&o)?)),
                "--sec1" => sec1 = true,
                _ => return Err(fail!("unknown option {o}; {TOKEN_USAGE}")),
            },
            Arg::Pos(p) => return Err(fail!("unexpected argument `{p}`; {TOKEN_USAGE}")),
        }
    }
    let out = out.ok_or_else(|| fail!("genkey needs --out FILE"))?;
    crate::keys::generate_key_pair(&out, public.as_deref(), sec1)?;
    println!("wrote P-256 private key {}", out.display());
    if let Some(p) = public {
        println!("wrote public key {}", p.display());
    }
    Ok(())
}
