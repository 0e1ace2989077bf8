//! oneM2M access-control policies (ACPs) for CoAP requests: the
//! `<accessControlPolicy>` privileges of oneM2M TS-0001 §9.6.2, decided as
//! TS-0003 §7.1 describes, with the originator bound to the DTLS credential
//! first (the impersonation check of TS-0003 §7.2).
//!
//! An [`AccessControl`] holds, in fixed-capacity tables (no heap):
//!
//! - **policies** (`<accessControlPolicy>`), each with a name (`rn`) and
//!   the path prefixes it is **bound** to ([`AccessControl::bind`]), which
//!   stand in for the `accessControlPolicyIDs` attribute of the resources;
//! - their **privileges** (`pv`), a list of access-control rules (`acr`,
//!   [`Rule`]) per policy: originators (`acor`), operations (`acop`),
//!   contexts (`acco`: time windows `actw`, IP addresses `acip`) and the
//!   authentication flag (`acaf`);
//! - **app rules** ([`AccessControl::add_app_rule`]), in the manner of the
//!   `serviceSubscribedAppRule` (`applicableCredIDs` → `allowedAEs`): which
//!   originators a DTLS-proven credential id (a PSK identity, the KpsaId, or
//!   a public key fingerprint) may claim.
//!
//! [`AccessControl::check`] decides a [`Request`]:
//!
//! 1. **Identity** ([`AccessControl::identify`]). A request over a secure
//!    session names the credential its handshake proved; the originator it
//!    claims (oneM2M `From`, CoAP option [`ONEM2M_FR`]) must be allowed for
//!    that credential by an app rule, else the verdict is
//!    [`AcpVerdict::Impersonation`], before any policy is looked at. An
//!    originator that an app rule lists literally (no wildcard) is reserved
//!    to the credentials listing it: claimed without a secure session, or by
//!    another credential through a wildcard, it is impersonation too. A
//!    secure request claiming no originator takes its credential's default
//!    originator, the first literal entry of its app rule (none: the request
//!    is anonymous). A request without a secure session keeps its claimed
//!    originator, unauthenticated.
//! 2. **Applicable policies**: those bound to the longest path prefix that
//!    covers the target path, the way a resource's own
//!    `accessControlPolicyIDs` replace those it would inherit. None:
//!    [`AcpVerdict::NoPolicy`] (a resource without a policy is not
//!    accessible).
//! 3. **Permit-overrides**: the first rule, in policy then rule order, that
//!    matches grants ([`AcpVerdict::Granted`]); no match is
//!    [`AcpVerdict::Denied`]. A rule matches when its operations include the
//!    request's, one of its originators matches, the originator is
//!    authenticated if `acaf` asks for it, and it has no contexts or one of
//!    its contexts matches: every constraint present in the context holds
//!    (one of its windows contains the request time, one of its address
//!    ranges contains the peer address).
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use cssf_auth::acp::{AccessControl, AcpVerdict, Context, Operation, Request, Rule};
//!
//! let mut ac: AccessControl = AccessControl::new();
//! let p = ac.add_policy("acp-actuators")?;
//! ac.bind(p, "/actuators")?;
//! // every AE may read; Cadmin may update, authenticated, in office hours,
//! // from the LAN
//! ac.add_rule(p, Rule::new(&["C*"], Operation::Retrieve.bit()))?;
//! let office = [Context {
//!     windows: &["* * 8-17 * * 1-5"],
//!     ipv4: &["192.168.1.0/24"],
//!     ..Context::default()
//! }];
//! let rule = Rule::new(&["Cadmin"], Operation::Update.bit()).with_contexts(&office);
//! ac.add_rule(p, rule.authenticated())?;
//! // the PSK identity "admin-psk" may only be Cadmin
//! ac.add_app_rule(b"admin-psk", &["Cadmin"])?;
//!
//! let lan = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 7));
//! let monday_10h = 1_700_474_400; // 2023-11-20T10:00:00Z
//! let put = Request::new(Operation::Update, "/actuators/led")
//!     .credential(b"admin-psk")
//!     .originator("Cadmin")
//!     .ip(lan)
//!     .wall(monday_10h);
//! assert_eq!(ac.check(&put), AcpVerdict::Granted { policy: 0, rule: 1 });
//! // at night, or without a wall clock: no rule grants the update
//! assert_eq!(ac.check(&put.wall(monday_10h + 12 * 3600)), AcpVerdict::Denied);
//! assert_eq!(ac.check(&Request { wall: None, ..put }), AcpVerdict::Denied);
//! // the admin credential claiming to be someone else
//! assert_eq!(ac.check(&put.originator("Csensor1")), AcpVerdict::Impersonation);
//! // a plain CoAP request claiming Cadmin: Cadmin is bound to its credential
//! let plain = Request::new(Operation::Retrieve, "/actuators/led").originator("Cadmin");
//! assert_eq!(ac.check(&plain), AcpVerdict::Impersonation);
//! let sensor = Request::new(Operation::Retrieve, "/actuators/led").originator("Csensor1");
//! assert_eq!(ac.check(&sensor), AcpVerdict::Granted { policy: 0, rule: 0 });
//! // no policy is bound to /sensors
//! assert_eq!(ac.check(&Request { path: "/sensors/t", ..sensor }), AcpVerdict::NoPolicy);
//! # Ok::<(), cssf_auth::Error>(())
//! ```
//!
//! ## Choices where the specifications leave room
//!
//! - **Originators** (`acor`): an entry matches an originator equal to it,
//!   byte for byte (no normalisation between CSE-relative, SP-relative and
//!   absolute forms: write the form requests use); `all` matches every
//!   request, even one without an originator; an entry ending in `*` (the
//!   only wildcard, `C*`, `Csensor*`, `//example.net/*`) matches originators
//!   starting with the rest, and needs an originator. Group and role ids are
//!   not resolved: they match only as literal originators.
//! - **Operations** (`acop`): the TS-0004 bit mask, [`Operation::bit`].
//!   CoAP requests map by [`Operation::from_coap`] (TS-0008: GET retrieves,
//!   or discovers with the `fu=1` query; POST creates; PUT updates; DELETE
//!   deletes); a notification is a POST the caller recognises and passes as
//!   [`Operation::Notify`].
//! - **Time windows** (`actw`, a [`Schedule`]): crontab-like entries
//!   `second minute hour day month weekday [year]`, evaluated in UTC on the
//!   caller's wall clock. Six fields, or seven with a trailing year: the
//!   seven-field form is the one of the TS-0003 token example
//!   (`* 0-5 2,6,10 * * * *`) and of oneM2M implementations of
//!   `m2m:scheduleEntry`; the six-field form is read as any year. Each
//!   field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
//!   (from `a` to the field's end), or a comma list of these; steps count
//!   from the start of the range as in cron (`*/3` in the month field is
//!   January, April, July, October). Weekdays are 0-7 with Sunday 0 or 7,
//!   years 1970-2097. All fields must match (day of month and weekday are
//!   not OR-ed as in Vixie cron). Without a wall clock a window never
//!   matches.
//! - **IP addresses** (`acip`, an [`IpRange`]): addresses, CIDR prefixes
//!   (`192.168.1.0/24`, `2001:db8::/32`) or, for IPv4, a contiguous dotted
//!   mask (`10.0.0.0/255.0.0.0`); host bits of the network are ignored. An
//!   IPv4-mapped IPv6 peer address counts as its IPv4 address. Without a
//!   peer address a range never matches.
//! - **Unsupported constraints**: a context with a location region (`aclr`),
//!   or anything else this module cannot evaluate, is stored with
//!   [`Context::unsupported`] and never matches: nothing is granted on a
//!   condition that is not checked. The `accessControlAttributes` and
//!   `accessControlObjectDetails` of a rule, which narrow what it grants,
//!   are not supported either: a loader must refuse such a rule.
//! - **Authentication** (`acaf`): the originator is authenticated when the
//!   request comes over a secure session and its originator was allowed (or
//!   given as default) by the credential's app rule.
//! - **Paths**: prefixes match whole segments (`/a` covers `/a` and `/a/b`,
//!   not `/ab`); `/` covers everything. A target path that does not start
//!   with `/` or has a `.` or `..` segment has no policy.
//! - `selfPrivileges` (`pvs`) govern the ACP resources themselves, which a
//!   device does not serve over this module: they are not modelled.
//! - Refusals are distinct verdicts for logging and accounting, but answer
//!   the same 4.03 ([`AcpVerdict::code`], oneM2M 4103
//!   ORIGINATOR_HAS_NO_PRIVILEGE), so a prober cannot tell them apart.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heapless::Vec;

use crate::bytes::Bytes;
use crate::Error;

/// The CoAP option number of oneM2M-FR, the `From` (originator) parameter
/// of a oneM2M request (TS-0008 §6.2.2.4).
pub const ONEM2M_FR: u16 = 256;

/// The `accessControlOriginators` entry that matches every originator.
pub const ALL: &str = "all";

/// A oneM2M operation, as checked against `accessControlOperations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// CREATE (bit 1).
    Create,
    /// RETRIEVE (bit 2).
    Retrieve,
    /// UPDATE (bit 4).
    Update,
    /// DELETE (bit 8).
    Delete,
    /// NOTIFY (bit 16).
    Notify,
    /// DISCOVERY (bit 32): a RETRIEVE with `filterUsage` 1.
    Discover,
}

impl Operation {
    /// Every operation bit (63).
    pub const EVERY: u8 = 0x3F;

    /// All six operations, in bit order.
    pub const ALL: [Operation; 6] = [
        Operation::Create,
        Operation::Retrieve,
        Operation::Update,
        Operation::Delete,
        Operation::Notify,
        Operation::Discover,
    ];

    /// The `accessControlOperations` bit (TS-0004): Create 1, Retrieve 2,
    /// Update 4, Delete 8, Notify 16, Discover 32.
    pub const fn bit(self) -> u8 {
        match self {
            Operation::Create => 1,
            Operation::Retrieve => 2,
            Operation::Update => 4,
            Operation::Delete => 8,
            Operation::Notify => 16,
            Operation::Discover => 32,
        }
    }

    /// The operation of a CoAP request (TS-0008): GET (0.01) is Retrieve, or
    /// Discover when the request has the Uri-Query `fu=1`
    /// ([`is_discovery_query`]); POST (0.02) Create; PUT (0.03) Update;
    /// DELETE (0.04) Delete. A POST carrying a notification is for the
    /// caller to recognise ([`Operation::Notify`]). Other codes: `None`.
    pub const fn from_coap(method_code: u8, query_fu1: bool) -> Option<Self> {
        match method_code {
            1 if query_fu1 => Some(Operation::Discover),
            1 => Some(Operation::Retrieve),
            2 => Some(Operation::Create),
            3 => Some(Operation::Update),
            4 => Some(Operation::Delete),
            _ => None,
        }
    }
}

/// Whether one Uri-Query option value asks for discovery (`fu=1`, the
/// `filterUsage` of TS-0004).
pub fn is_discovery_query(uri_query: &str) -> bool {
    uri_query == "fu=1"
}

// ---------------------------------------------------------------------------
// Time windows

/// Earliest year a [`Schedule`] year field can name.
pub const FIRST_YEAR: u32 = 1970;
/// Latest year a [`Schedule`] year field can name.
pub const LAST_YEAR: u32 = FIRST_YEAR + 127;

/// An `accessControlWindow` entry, compiled: the set of seconds of the
/// UTC calendar it covers (see the module docs for the syntax).
///
/// ```
/// use cssf_auth::acp::Schedule;
/// let office = Schedule::parse("* * 8-17 * * 1-5")?;
/// assert!(office.matches(1_700_474_400)); // Monday 2023-11-20 10:00:00Z
/// assert!(!office.matches(1_700_355_600)); // Sunday 2023-11-19 01:00:00Z
/// assert!(Schedule::parse("* * 25 * * *").is_err());
/// # Ok::<(), cssf_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    second: u64,
    minute: u64,
    hour: u32,
    /// Bit `d - 1` for day `d`.
    day: u32,
    /// Bit `m - 1` for month `m`.
    month: u16,
    /// Bit 0 Sunday .. bit 6 Saturday.
    weekday: u8,
    /// Bit `y - 1970`; `None` for `*` (every year, past 2097 too).
    year: Option<u128>,
}

impl Schedule {
    /// Compiles `second minute hour day month weekday [year]`.
    /// [`Error::InvalidPolicy`] for anything else: another number of
    /// fields, a value out of its field's range, a reversed range, a zero
    /// step, a character that is not a digit, `*`, `-`, `/` or `,`.
    pub fn parse(entry: &str) -> Result<Self, Error> {
        let mut fields = [""; 7];
        let mut n = 0usize;
        for f in entry.split_ascii_whitespace() {
            *fields.get_mut(n).ok_or(Error::InvalidPolicy)? = f;
            n += 1;
        }
        if n < 6 {
            return Err(Error::InvalidPolicy);
        }
        let [second, minute, hour, day, month, weekday, year] = fields;
        let narrow = |m: u128| u64::try_from(m).map_err(|_| Error::InvalidPolicy);
        let weekday = field(weekday, 0, 7)?;
        // 7 is Sunday too
        let weekday = (weekday | (weekday >> 7)) & 0x7F;
        Ok(Schedule {
            second: narrow(field(second, 0, 59)?)?,
            minute: narrow(field(minute, 0, 59)?)?,
            hour: u32::try_from(field(hour, 0, 23)?).map_err(|_| Error::InvalidPolicy)?,
            day: u32::try_from(field(day, 1, 31)?).map_err(|_| Error::InvalidPolicy)?,
            month: u16::try_from(field(month, 1, 12)?).map_err(|_| Error::InvalidPolicy)?,
            weekday: u8::try_from(weekday).map_err(|_| Error::InvalidPolicy)?,
            year: match year {
                "" | "*" => None,
                y => Some(field(y, FIRST_YEAR, LAST_YEAR)?),
            },
        })
    }

    /// Whether the second `wall` (UTC seconds since the Unix epoch) is in
    /// the window.
    pub fn matches(&self, wall: u64) -> bool {
        self.matches_civil(&Civil::from_unix(wall))
    }

    fn matches_civil(&self, t: &Civil) -> bool {
        let bit = |mask: u128, v: u64| v < 128 && (mask >> v) & 1 == 1;
        bit(u128::from(self.second), t.second)
            && bit(u128::from(self.minute), t.minute)
            && bit(u128::from(self.hour), t.hour)
            && bit(u128::from(self.day), t.day.saturating_sub(1))
            && bit(u128::from(self.month), t.month.saturating_sub(1))
            && bit(u128::from(self.weekday), t.weekday)
            && self.year.map_or(true, |y| {
                t.year >= u64::from(FIRST_YEAR) && bit(y, t.year - u64::from(FIRST_YEAR))
            })
    }
}

/// One schedule field as a mask, bit `v - min` for value `v`.
fn field(text: &str, min: u32, max: u32) -> Result<u128, Error> {
    let mut mask = 0u128;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(number(s)?)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let a = number(range)?;
            // `a/n` runs to the end of the field
            (a, if step.is_some() { max } else { a })
        };
        let step = step.unwrap_or(1);
        if lo < min || hi > max || lo > hi || step == 0 {
            return Err(Error::InvalidPolicy);
        }
        let mut v = lo;
        while v <= hi {
            mask |= 1u128.checked_shl(v - min).ok_or(Error::InvalidPolicy)?;
            v = v.checked_add(step).ok_or(Error::InvalidPolicy)?;
        }
    }
    Ok(mask)
}

/// A short decimal number (1 to 4 ASCII digits).
fn number(s: &str) -> Result<u32, Error> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidPolicy);
    }
    s.parse().map_err(|_| Error::InvalidPolicy)
}

/// A UTC calendar second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    /// 0 Sunday .. 6 Saturday.
    weekday: u64,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`, on unsigned days (the epoch
    /// onwards; no overflow for any `u64` second).
    fn from_unix(wall: u64) -> Self {
        let days = wall / 86_400;
        let secs = wall % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: secs / 3_600,
            minute: secs % 3_600 / 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday
            weekday: (days + 4) % 7,
        }
    }
}

// ---------------------------------------------------------------------------
// Address ranges

/// An `accessControlIpAddresses` entry: an address or a network.
///
/// ```
/// use core::net::IpAddr;
/// use cssf_auth::acp::IpRange;
/// let lan = IpRange::parse_v4("192.168.1.0/24")?;
/// assert!(lan.contains(IpAddr::from([192, 168, 1, 9])));
/// assert!(!lan.contains(IpAddr::from([192, 168, 2, 9])));
/// assert!(IpRange::parse_v6("2001:db8::/32")?.contains("2001:db8::1".parse().unwrap()));
/// # Ok::<(), cssf_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRange {
    /// IPv4 addresses `a` with `a & mask == net`.
    V4 {
        /// The network (host bits cleared).
        net: u32,
        /// The network mask.
        mask: u32,
    },
    /// IPv6 addresses `a` with `a & mask == net`.
    V6 {
        /// The network (host bits cleared).
        net: u128,
        /// The network mask.
        mask: u128,
    },
}

impl IpRange {
    /// An `ipv4` entry: `a.b.c.d`, `a.b.c.d/n` (n ≤ 32) or
    /// `a.b.c.d/m.m.m.m` with a contiguous mask. [`Error::InvalidPolicy`]
    /// otherwise.
    pub fn parse_v4(entry: &str) -> Result<Self, Error> {
        let (addr, len) = split_prefix(entry);
        let net = u32::from(addr.parse::<Ipv4Addr>().map_err(|_| Error::InvalidPolicy)?);
        let mask = match len {
            None => u32::MAX,
            Some(m) if m.contains('.') => {
                let m = u32::from(m.parse::<Ipv4Addr>().map_err(|_| Error::InvalidPolicy)?);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(Error::InvalidPolicy);
                }
                m
            }
            Some(n) => {
                let n = number(n)?;
                if n > 32 {
                    return Err(Error::InvalidPolicy);
                }
                u32::MAX.checked_shl(32 - n).unwrap_or(0)
            }
        };
        Ok(IpRange::V4 {
            net: net & mask,
            mask,
        })
    }

    /// An `ipv6` entry: an IPv6 address, with an optional `/n` (n ≤ 128).
    /// [`Error::InvalidPolicy`] otherwise.
    pub fn parse_v6(entry: &str) -> Result<Self, Error> {
        let (addr, len) = split_prefix(entry);
        let net = u128::from(addr.parse::<Ipv6Addr>().map_err(|_| Error::InvalidPolicy)?);
        let mask = match len {
            None => u128::MAX,
            Some(n) => {
                let n = number(n)?;
                if n > 128 {
                    return Err(Error::InvalidPolicy);
                }
                u128::MAX.checked_shl(128 - n).unwrap_or(0)
            }
        };
        Ok(IpRange::V6 {
            net: net & mask,
            mask,
        })
    }

    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (IpRange::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (IpRange::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

fn split_prefix(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (entry, None),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

// ---------------------------------------------------------------------------
// Rules, requests, verdicts

/// One `accessControlContexts` entry, as text. Empty lists are absent
/// constraints; a context with nothing in it always matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// `accessControlWindow`: [`Schedule`] entries; one must contain the
    /// request time.
    pub windows: &'a [&'a str],
    /// `accessControlIpAddresses` `ipv4`: [`IpRange::parse_v4`] entries.
    pub ipv4: &'a [&'a str],
    /// `accessControlIpAddresses` `ipv6`: [`IpRange::parse_v6`] entries.
    /// One entry of `ipv4` or `ipv6` must contain the peer address.
    pub ipv6: &'a [&'a str],
    /// The context has a constraint this module cannot check (a location
    /// region, or anything unknown): it never matches.
    pub unsupported: bool,
}

/// One `accessControlRule` (`acr`), as text, for
/// [`AccessControl::add_rule`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule<'a> {
    /// `accessControlOriginators`: originator ids, [`ALL`], or prefixes
    /// ending in `*`.
    pub originators: &'a [&'a str],
    /// `accessControlOperations`: a mask of [`Operation::bit`]s.
    pub operations: u8,
    /// `accessControlContexts`: empty for none, else one must match.
    pub contexts: &'a [Context<'a>],
    /// `accessControlAuthenticationFlag`: the originator must be
    /// authenticated.
    pub authentication: bool,
}

impl<'a> Rule<'a> {
    /// A rule for `originators` and the `operations` mask, without contexts
    /// or authentication flag.
    pub const fn new(originators: &'a [&'a str], operations: u8) -> Self {
        Rule {
            originators,
            operations,
            contexts: &[],
            authentication: false,
        }
    }

    /// The rule with these contexts.
    pub const fn with_contexts(self, contexts: &'a [Context<'a>]) -> Self {
        Rule { contexts, ..self }
    }

    /// The rule with the authentication flag set.
    pub const fn authenticated(self) -> Self {
        Rule {
            authentication: true,
            ..self
        }
    }
}

/// A request to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The credential id the secure session proved (PSK identity, or a
    /// public key fingerprint); `None` without a secure session.
    pub credential: Option<&'a [u8]>,
    /// The originator the request claims (oneM2M `From`, CoAP option
    /// [`ONEM2M_FR`]); `None` (or empty) if it claims none.
    pub originator: Option<&'a str>,
    /// The operation ([`Operation::from_coap`], or Notify).
    pub operation: Operation,
    /// The target resource path: the Uri-Path options, each after a `/`
    /// (a caller refuses an option that contains `/` itself, which would
    /// read as two segments).
    pub path: &'a str,
    /// The peer address.
    pub ip: Option<IpAddr>,
    /// The wall clock, UTC seconds since the Unix epoch.
    pub wall: Option<u64>,
}

impl<'a> Request<'a> {
    /// A request for `operation` on `path`, with no credential, originator,
    /// address or clock.
    pub const fn new(operation: Operation, path: &'a str) -> Self {
        Request {
            credential: None,
            originator: None,
            operation,
            path,
            ip: None,
            wall: None,
        }
    }

    /// With the credential id of the secure session.
    pub const fn credential(self, id: &'a [u8]) -> Self {
        Request {
            credential: Some(id),
            ..self
        }
    }

    /// With a claimed originator.
    pub const fn originator(self, originator: &'a str) -> Self {
        Request {
            originator: Some(originator),
            ..self
        }
    }

    /// With the peer address.
    pub const fn ip(self, ip: IpAddr) -> Self {
        Request {
            ip: Some(ip),
            ..self
        }
    }

    /// With the wall clock.
    pub const fn wall(self, wall: u64) -> Self {
        Request {
            wall: Some(wall),
            ..self
        }
    }
}

/// Who a request is, after the impersonation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity<'a> {
    /// No originator: matched only by [`ALL`].
    Anonymous,
    /// An originator claimed without a secure session: not authenticated.
    Claimed(&'a str),
    /// An originator the secure session's credential may be (claimed, or
    /// the credential's default).
    Authenticated(&'a str),
    /// The claimed originator is not the credential's to claim.
    Impersonation,
}

/// The decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcpVerdict {
    /// A rule grants the request: the policy index (as returned by
    /// [`AccessControl::add_policy`]) and the rule's index in that policy's
    /// privileges (as returned by [`AccessControl::add_rule`]).
    Granted {
        /// The policy.
        policy: usize,
        /// The rule within the policy.
        rule: usize,
    },
    /// Policies apply, but none of their rules grants the request.
    Denied,
    /// The originator is not one the request's credential may claim.
    Impersonation,
    /// No policy is bound to the target path.
    NoPolicy,
}

impl AcpVerdict {
    /// Whether the request may proceed.
    pub const fn is_granted(self) -> bool {
        matches!(self, AcpVerdict::Granted { .. })
    }

    /// The CoAP response code of a refusal (`class << 5 | detail`): 4.03 for
    /// all of them (oneM2M 4103 ORIGINATOR_HAS_NO_PRIVILEGE).
    pub const fn code(self) -> Option<u8> {
        match self {
            AcpVerdict::Granted { .. } => None,
            _ => Some(0x83),
        }
    }
}

/// How full each table of an [`AccessControl`] is (or, from
/// [`AccessControl::capacity`], how large).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Policies (`POLICIES`).
    pub policies: usize,
    /// Rules, over all policies (`RULES`).
    pub rules: usize,
    /// Originator patterns, path bindings and app rule originators
    /// (`STRINGS`).
    pub strings: usize,
    /// Time windows, address ranges and unsupported markers, over all
    /// contexts (`CONSTRAINTS`).
    pub constraints: usize,
    /// App rules, one per credential (`APPS`).
    pub apps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// An `acor` entry of the rule at this index.
    Originator(u16),
    /// A path the policy at this index is bound to.
    Path(u16),
    /// An originator the app rule at this index allows.
    App(u16),
}

#[derive(Debug, Clone)]
struct Text<const LEN: usize> {
    owner: Owner,
    text: Bytes<LEN>,
}

#[derive(Debug, Clone, Copy)]
struct RuleEntry {
    policy: u16,
    /// Index within the policy.
    index: u16,
    operations: u8,
    authentication: bool,
    contexts: u16,
}

#[derive(Debug, Clone, Copy)]
enum Constraint {
    Window(Schedule),
    Range(IpRange),
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
struct ConstraintEntry {
    rule: u16,
    context: u16,
    constraint: Constraint,
}

/// oneM2M access-control policies, their bindings to paths, and the app
/// rules binding credentials to originators (see the [module docs](self)).
///
/// Capacities: `POLICIES` policies, `RULES` rules over all policies,
/// `STRINGS` strings (originator patterns, path bindings, app rule
/// originators), `CONSTRAINTS` context constraints (windows, address
/// ranges, unsupported markers), `APPS` credentials, `LEN` bytes per
/// string, policy name and credential id. A full table or a long string is
/// [`Error::TooLarge`]; nothing is half added.
#[derive(Debug, Clone)]
pub struct AccessControl<
    const POLICIES: usize = 8,
    const RULES: usize = 32,
    const STRINGS: usize = 64,
    const CONSTRAINTS: usize = 32,
    const APPS: usize = 8,
    const LEN: usize = 64,
> {
    policies: Vec<Bytes<LEN>, POLICIES>,
    rules: Vec<RuleEntry, RULES>,
    strings: Vec<Text<LEN>, STRINGS>,
    constraints: Vec<ConstraintEntry, CONSTRAINTS>,
    apps: Vec<Bytes<LEN>, APPS>,
}

impl<
        const POLICIES: usize,
        const RULES: usize,
        const STRINGS: usize,
        const CONSTRAINTS: usize,
        const APPS: usize,
        const LEN: usize,
    > Default for AccessControl<POLICIES, RULES, STRINGS, CONSTRAINTS, APPS, LEN>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
        const POLICIES: usize,
        const RULES: usize,
        const STRINGS: usize,
        const CONSTRAINTS: usize,
        const APPS: usize,
        const LEN: usize,
    > AccessControl<POLICIES, RULES, STRINGS, CONSTRAINTS, APPS, LEN>
{
    /// No policies, no app rules: every request is [`AcpVerdict::NoPolicy`]
    /// (or [`AcpVerdict::Impersonation`]).
    pub const fn new() -> Self {
        AccessControl {
            policies: Vec::new(),
            rules: Vec::new(),
            strings: Vec::new(),
            constraints: Vec::new(),
            apps: Vec::new(),
        }
    }

    /// The table sizes.
    pub const fn capacity() -> Usage {
        Usage {
            policies: POLICIES,
            rules: RULES,
            strings: STRINGS,
            constraints: CONSTRAINTS,
            apps: APPS,
        }
    }

    /// How much of each table is used.
    pub fn usage(&self) -> Usage {
        Usage {
            policies: self.policies.len(),
            rules: self.rules.len(),
            strings: self.strings.len(),
            constraints: self.constraints.len(),
            apps: self.apps.len(),
        }
    }

    /// Adds a policy named `name` (its `rn`; may be empty), bound to no
    /// path yet, and returns its index. [`Error::TooLarge`] if the policy
    /// table is full or the name longer than `LEN`;
    /// [`Error::InvalidPolicy`] if another policy has this (non-empty) name.
    pub fn add_policy(&mut self, name: &str) -> Result<usize, Error> {
        if !name.is_empty() && self.find_policy(name).is_some() {
            return Err(Error::InvalidPolicy);
        }
        let index = self.policies.len();
        u16::try_from(index).map_err(|_| Error::TooLarge)?;
        let name = Bytes::from_slice(name.as_bytes())?;
        self.policies.push(name).map_err(|_| Error::TooLarge)?;
        Ok(index)
    }

    /// The index of the policy named `name`.
    pub fn find_policy(&self, name: &str) -> Option<usize> {
        self.policies
            .iter()
            .position(|n| n.as_slice() == name.as_bytes())
    }

    /// The name of the policy at `policy`.
    pub fn policy_name(&self, policy: usize) -> Option<&str> {
        self.policies
            .get(policy)
            .and_then(|n| core::str::from_utf8(n.as_slice()).ok())
    }

    /// Number of policies.
    pub fn policies(&self) -> usize {
        self.policies.len()
    }

    /// Number of rules of the policy at `policy`.
    pub fn rules(&self, policy: usize) -> usize {
        self.rules
            .iter()
            .filter(|r| usize::from(r.policy) == policy)
            .count()
    }

    /// Binds the policy at `policy` to the resources under `prefix` (a
    /// path starting with `/`; a trailing `/` is dropped; `/` is every
    /// resource). [`Error::InvalidPolicy`] for an unknown policy, a prefix
    /// not starting with `/` or with a `.` or `..` segment;
    /// [`Error::TooLarge`] if the string table is full or the prefix longer
    /// than `LEN`.
    pub fn bind(&mut self, policy: usize, prefix: &str) -> Result<(), Error> {
        let p = self.policy_id(policy)?;
        if !prefix.starts_with('/') || has_dot_segment(prefix) {
            return Err(Error::InvalidPolicy);
        }
        let prefix = match prefix.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        let owner = Owner::Path(p);
        if self
            .strings
            .iter()
            .any(|s| s.owner == owner && s.text.as_slice() == prefix.as_bytes())
        {
            return Ok(());
        }
        self.push_text(owner, prefix)
    }

    /// Appends `rule` to the privileges of the policy at `policy` and
    /// returns its index there. [`Error::InvalidPolicy`] for an unknown
    /// policy, operation bits above 32, an empty originator or one with a
    /// `*` before its end, a malformed window or address range;
    /// [`Error::TooLarge`] if the rule, string or constraint table is full
    /// or a string longer than `LEN`. On error nothing is added.
    pub fn add_rule(&mut self, policy: usize, rule: Rule<'_>) -> Result<usize, Error> {
        let p = self.policy_id(policy)?;
        if rule.operations & !Operation::EVERY != 0 {
            return Err(Error::InvalidPolicy);
        }
        if self.rules.is_full() {
            return Err(Error::TooLarge);
        }
        let id = u16::try_from(self.rules.len()).map_err(|_| Error::TooLarge)?;
        let index = u16::try_from(self.rules(policy)).map_err(|_| Error::TooLarge)?;
        let contexts = u16::try_from(rule.contexts.len()).map_err(|_| Error::TooLarge)?;
        let marks = (self.strings.len(), self.constraints.len());
        let entry = RuleEntry {
            policy: p,
            index,
            operations: rule.operations,
            authentication: rule.authentication,
            contexts,
        };
        let added = self
            .add_rule_parts(id, &rule)
            .and_then(|()| self.rules.push(entry).map_err(|_| Error::TooLarge));
        if let Err(e) = added {
            self.strings.truncate(marks.0);
            self.constraints.truncate(marks.1);
            return Err(e);
        }
        Ok(usize::from(index))
    }

    fn add_rule_parts(&mut self, id: u16, rule: &Rule<'_>) -> Result<(), Error> {
        for o in rule.originators {
            check_pattern(o)?;
            self.push_text(Owner::Originator(id), o)?;
        }
        for (c, ctx) in (0u16..).zip(rule.contexts) {
            for w in ctx.windows {
                self.push_constraint(id, c, Constraint::Window(Schedule::parse(w)?))?;
            }
            for a in ctx.ipv4 {
                self.push_constraint(id, c, Constraint::Range(IpRange::parse_v4(a)?))?;
            }
            for a in ctx.ipv6 {
                self.push_constraint(id, c, Constraint::Range(IpRange::parse_v6(a)?))?;
            }
            if ctx.unsupported {
                self.push_constraint(id, c, Constraint::Unsupported)?;
            }
        }
        Ok(())
    }

    /// Allows the credential id `credential` (a PSK identity or a public
    /// key fingerprint) to claim the originators matching `allowed`
    /// (originator ids, or prefixes ending in `*`); the first entry without
    /// a wildcard is the credential's default originator. Adding to a known
    /// credential extends its list. Returns the app rule's index.
    /// [`Error::InvalidPolicy`] for an empty credential or pattern, or a
    /// `*` before a pattern's end; [`Error::TooLarge`] if the app or string
    /// table is full or a string longer than `LEN`. On error nothing is
    /// added.
    pub fn add_app_rule(&mut self, credential: &[u8], allowed: &[&str]) -> Result<usize, Error> {
        if credential.is_empty() {
            return Err(Error::InvalidPolicy);
        }
        for a in allowed {
            check_pattern(a)?;
        }
        let marks = (self.apps.len(), self.strings.len());
        let index = match self.app(credential) {
            Some(i) => i,
            None => {
                let id = Bytes::from_slice(credential)?;
                let i = self.apps.len();
                u16::try_from(i).map_err(|_| Error::TooLarge)?;
                self.apps.push(id).map_err(|_| Error::TooLarge)?;
                i
            }
        };
        let owner = Owner::App(u16::try_from(index).map_err(|_| Error::TooLarge)?);
        for a in allowed {
            if let Err(e) = self.push_text(owner, a) {
                self.apps.truncate(marks.0);
                self.strings.truncate(marks.1);
                return Err(e);
            }
        }
        Ok(index)
    }

    /// The impersonation check (see the [module docs](self)): who a request
    /// with this credential id and claimed originator is. An empty
    /// originator is none.
    pub fn identify<'a>(
        &'a self,
        credential: Option<&[u8]>,
        originator: Option<&'a str>,
    ) -> Identity<'a> {
        let originator = originator.filter(|o| !o.is_empty());
        let app = credential.map(|c| self.app(c).and_then(|i| u16::try_from(i).ok()));
        match (app, originator) {
            (None, None) => Identity::Anonymous,
            (None, Some(o)) if self.reserved(o, None) => Identity::Impersonation,
            (None, Some(o)) => Identity::Claimed(o),
            // a credential without an app rule may claim nothing
            (Some(None), None) => Identity::Anonymous,
            (Some(None), Some(_)) => Identity::Impersonation,
            (Some(Some(app)), None) => self
                .texts(Owner::App(app))
                .find(|t| is_literal(t))
                .and_then(|t| core::str::from_utf8(t).ok())
                .map_or(Identity::Anonymous, Identity::Authenticated),
            (Some(Some(app)), Some(o)) => {
                let allowed = self
                    .texts(Owner::App(app))
                    .any(|t| pattern_matches(t, Some(o.as_bytes())));
                if allowed && !self.reserved(o, Some(app)) {
                    Identity::Authenticated(o)
                } else {
                    Identity::Impersonation
                }
            }
        }
    }

    /// Decides `request` (see the [module docs](self)).
    pub fn check(&self, request: &Request<'_>) -> AcpVerdict {
        let (originator, authenticated) =
            match self.identify(request.credential, request.originator) {
                Identity::Impersonation => return AcpVerdict::Impersonation,
                Identity::Anonymous => (None, false),
                Identity::Claimed(o) => (Some(o.as_bytes()), false),
                Identity::Authenticated(o) => (Some(o.as_bytes()), true),
            };
        let path = request.path.as_bytes();
        if !request.path.starts_with('/') || has_dot_segment(request.path) {
            return AcpVerdict::NoPolicy;
        }
        // the longest bound prefix covering the path
        let Some(best) = self
            .strings
            .iter()
            .filter(|s| matches!(s.owner, Owner::Path(_)) && prefix_covers(s.text.as_slice(), path))
            .map(|s| s.text.len())
            .max()
        else {
            return AcpVerdict::NoPolicy;
        };
        let when = request.wall.map(Civil::from_unix);
        let ip = request.ip.map(canonical);
        let facts = Facts {
            operation: request.operation,
            originator,
            authenticated,
            ip,
            when,
        };
        for (p, _) in (0u16..).zip(self.policies.iter()) {
            let bound = self
                .texts(Owner::Path(p))
                .any(|t| t.len() == best && prefix_covers(t, path));
            if !bound {
                continue;
            }
            for (id, rule) in (0u16..).zip(self.rules.iter()) {
                if rule.policy == p && self.rule_matches(id, rule, &facts) {
                    return AcpVerdict::Granted {
                        policy: usize::from(p),
                        rule: usize::from(rule.index),
                    };
                }
            }
        }
        AcpVerdict::Denied
    }

    fn rule_matches(&self, id: u16, rule: &RuleEntry, facts: &Facts<'_>) -> bool {
        if rule.operations & facts.operation.bit() == 0
            || (rule.authentication && !facts.authenticated)
            || !self
                .texts(Owner::Originator(id))
                .any(|t| pattern_matches(t, facts.originator))
        {
            return false;
        }
        rule.contexts == 0 || (0..rule.contexts).any(|c| self.context_matches(id, c, facts))
    }

    fn context_matches(&self, id: u16, context: u16, facts: &Facts<'_>) -> bool {
        // None: no such constraint; Some(hit): present, and whether one holds
        let mut window: Option<bool> = None;
        let mut range: Option<bool> = None;
        for k in self
            .constraints
            .iter()
            .filter(|k| k.rule == id && k.context == context)
        {
            match &k.constraint {
                Constraint::Unsupported => return false,
                Constraint::Window(s) => {
                    let hit = facts.when.as_ref().is_some_and(|t| s.matches_civil(t));
                    window = Some(window.unwrap_or(false) || hit);
                }
                Constraint::Range(r) => {
                    let hit = facts.ip.is_some_and(|a| r.contains(a));
                    range = Some(range.unwrap_or(false) || hit);
                }
            }
        }
        window.unwrap_or(true) && range.unwrap_or(true)
    }

    fn policy_id(&self, policy: usize) -> Result<u16, Error> {
        if policy >= self.policies.len() {
            return Err(Error::InvalidPolicy);
        }
        u16::try_from(policy).map_err(|_| Error::InvalidPolicy)
    }

    fn app(&self, credential: &[u8]) -> Option<usize> {
        self.apps.iter().position(|a| a.as_slice() == credential)
    }

    /// Whether an app rule other than `mine` lists `originator` literally
    /// while `mine` (if any) does not.
    fn reserved(&self, originator: &str, mine: Option<u16>) -> bool {
        let o = originator.as_bytes();
        let listed = |owner: Owner| self.texts(owner).any(|t| is_literal(t) && t == o);
        if mine.is_some_and(|m| listed(Owner::App(m))) {
            return false;
        }
        self.strings.iter().any(|s| {
            matches!(s.owner, Owner::App(a) if Some(a) != mine)
                && is_literal(s.text.as_slice())
                && s.text.as_slice() == o
        })
    }

    fn texts(&self, owner: Owner) -> impl Iterator<Item = &[u8]> + '_ {
        self.strings
            .iter()
            .filter(move |s| s.owner == owner)
            .map(|s| s.text.as_slice())
    }

    fn push_text(&mut self, owner: Owner, text: &str) -> Result<(), Error> {
        let text = Bytes::from_slice(text.as_bytes())?;
        self.strings
            .push(Text { owner, text })
            .map_err(|_| Error::TooLarge)
    }

    fn push_constraint(&mut self, rule: u16, context: u16, c: Constraint) -> Result<(), Error> {
        self.constraints
            .push(ConstraintEntry {
                rule,
                context,
                constraint: c,
            })
            .map_err(|_| Error::TooLarge)
    }
}

/// What a request brings to the rules.
struct Facts<'a> {
    operation: Operation,
    originator: Option<&'a [u8]>,
    authenticated: bool,
    ip: Option<IpAddr>,
    when: Option<Civil>,
}

/// An originator pattern: not empty, `*` only at the end.
fn check_pattern(p: &str) -> Result<(), Error> {
    match p.find('*') {
        _ if p.is_empty() => Err(Error::InvalidPolicy),
        Some(i) if i + 1 != p.len() => Err(Error::InvalidPolicy),
        _ => Ok(()),
    }
}

/// A pattern that names one originator (no wildcard, not [`ALL`]).
fn is_literal(p: &[u8]) -> bool {
    p != ALL.as_bytes() && !p.ends_with(b"*")
}

fn pattern_matches(pattern: &[u8], originator: Option<&[u8]>) -> bool {
    if pattern == ALL.as_bytes() {
        return true;
    }
    let Some(o) = originator else {
        return false;
    };
    match pattern.split_last() {
        Some((b'*', prefix)) => o.starts_with(prefix),
        _ => pattern == o,
    }
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

/// Whether the (normalised) `prefix` covers `path`, by whole segments.
fn prefix_covers(prefix: &[u8], path: &[u8]) -> bool {
    if prefix == b"/" {
        return path.first() == Some(&b'/');
    }
    path.starts_with(prefix) && matches!(path.get(prefix.len()), None | Some(b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;
    use std::vec::Vec as StdVec;

    type Ac = AccessControl<4, 16, 32, 16, 4, 32>;

    const R: u8 = 2; // Retrieve
    const U: u8 = 4; // Update

    /// 2023-11-20T10:00:00Z, a Monday.
    const MONDAY_10H: u64 = 1_700_474_400;

    fn one(rule: Rule<'_>) -> Ac {
        let mut ac = Ac::new();
        let p = ac.add_policy("acp1").unwrap();
        ac.bind(p, "/").unwrap();
        ac.add_rule(p, rule).unwrap();
        ac
    }

    fn get(path: &str) -> Request<'_> {
        Request::new(Operation::Retrieve, path)
    }

    const GRANT0: AcpVerdict = AcpVerdict::Granted { policy: 0, rule: 0 };

    // TS-0001 §9.6.2: acor lists the originators a rule applies to.
    #[test]
    fn originator_exact() {
        let ac = one(Rule::new(&["Csensor1", "CAdmin"], R));
        assert_eq!(ac.check(&get("/x").originator("Csensor1")), GRANT0);
        assert_eq!(ac.check(&get("/x").originator("CAdmin")), GRANT0);
        assert_eq!(
            ac.check(&get("/x").originator("Csensor10")),
            AcpVerdict::Denied
        );
        assert_eq!(
            ac.check(&get("/x").originator("csensor1")),
            AcpVerdict::Denied
        );
        assert_eq!(ac.check(&get("/x")), AcpVerdict::Denied);
    }

    // TS-0001 §9.6.2: "all" is every originator.
    #[test]
    fn originator_all() {
        let ac = one(Rule::new(&["all"], R));
        assert_eq!(ac.check(&get("/x").originator("Canything")), GRANT0);
        assert_eq!(ac.check(&get("/x")), GRANT0, "anonymous too");
        assert_eq!(ac.check(&get("/x").originator("")), GRANT0);
    }

    // AE-ID wildcards (TS-0001 allows `*` in AE-ID patterns), trailing only.
    #[test]
    fn originator_wildcard() {
        let ac = one(Rule::new(&["Csensor*"], R));
        assert_eq!(ac.check(&get("/x").originator("Csensor")), GRANT0);
        assert_eq!(ac.check(&get("/x").originator("Csensor42")), GRANT0);
        assert_eq!(
            ac.check(&get("/x").originator("Cactuator")),
            AcpVerdict::Denied
        );
        assert_eq!(
            ac.check(&get("/x")),
            AcpVerdict::Denied,
            "needs an originator"
        );
        let any = one(Rule::new(&["*"], R));
        assert_eq!(any.check(&get("/x").originator("S1")), GRANT0);
        assert_eq!(any.check(&get("/x")), AcpVerdict::Denied);

        let mut ac = Ac::new();
        let p = ac.add_policy("p").unwrap();
        for bad in ["", "C*x", "*C", "C**"] {
            let r = Rule::new(core::slice::from_ref(&bad), R);
            assert_eq!(ac.add_rule(p, r), Err(Error::InvalidPolicy), "{bad:?}");
        }
    }

    // TS-0004 accessControlOperations: one bit per operation.
    #[test]
    fn each_operation_bit() {
        for op in Operation::ALL {
            let ac = one(Rule::new(&["all"], op.bit()));
            for other in Operation::ALL {
                let v = ac.check(&Request::new(other, "/x"));
                assert_eq!(
                    v.is_granted(),
                    other == op,
                    "{op:?} rule, {other:?} request"
                );
            }
        }
        let ac = one(Rule::new(&["all"], Operation::EVERY));
        assert!(Operation::ALL
            .iter()
            .all(|op| ac.check(&Request::new(*op, "/x")).is_granted()));
        // onem2m.org ACP primer: 5 is CREATE and UPDATE
        let ac = one(Rule::new(&["all"], 5));
        assert!(ac
            .check(&Request::new(Operation::Create, "/x"))
            .is_granted());
        assert!(ac
            .check(&Request::new(Operation::Update, "/x"))
            .is_granted());
        assert!(!ac
            .check(&Request::new(Operation::Retrieve, "/x"))
            .is_granted());
        let mut ac = Ac::new();
        let p = ac.add_policy("p").unwrap();
        assert_eq!(
            ac.add_rule(p, Rule::new(&["all"], 64)),
            Err(Error::InvalidPolicy)
        );
    }

    // TS-0008 operation mapping.
    #[test]
    fn coap_methods() {
        assert_eq!(Operation::from_coap(1, false), Some(Operation::Retrieve));
        assert_eq!(Operation::from_coap(1, true), Some(Operation::Discover));
        assert_eq!(Operation::from_coap(2, false), Some(Operation::Create));
        assert_eq!(Operation::from_coap(2, true), Some(Operation::Create));
        assert_eq!(Operation::from_coap(3, false), Some(Operation::Update));
        assert_eq!(Operation::from_coap(4, false), Some(Operation::Delete));
        assert_eq!(Operation::from_coap(5, false), None);
        assert_eq!(Operation::from_coap(0x45, false), None);
        assert!(is_discovery_query("fu=1"));
        assert!(!is_discovery_query("fu=2"));
        assert_eq!(ONEM2M_FR, 256);
    }

    #[test]
    fn civil_dates() {
        let c = Civil::from_unix(0);
        assert_eq!((c.year, c.month, c.day, c.weekday), (1970, 1, 1, 4));
        let c = Civil::from_unix(MONDAY_10H);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.weekday),
            (2023, 11, 20, 10, 1)
        );
        // 2024-02-29T23:59:59Z, a Thursday
        let c = Civil::from_unix(1_709_251_199);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday),
            (2024, 2, 29, 23, 59, 59, 4)
        );
        // 2000-03-01 (a leap century), a Wednesday
        let c = Civil::from_unix(951_868_800);
        assert_eq!((c.year, c.month, c.day, c.weekday), (2000, 3, 1, 3));
        let _ = Civil::from_unix(u64::MAX);
    }

    fn window(entry: &str) -> Ac {
        let windows = [entry];
        let ctx = [Context {
            windows: &windows,
            ..Context::default()
        }];
        one(Rule::new(&["all"], R).with_contexts(&ctx))
    }

    fn at(ac: &Ac, wall: u64) -> bool {
        ac.check(&get("/x").wall(wall)).is_granted()
    }

    // TS-0001 §9.6.2 accessControlWindow; hours in and out.
    #[test]
    fn window_hours_in_and_out() {
        let ac = window("* * 8-17 * * *");
        assert!(at(&ac, MONDAY_10H));
        assert!(at(&ac, MONDAY_10H - 2 * 3600)); // 08:00:00
        assert!(!at(&ac, MONDAY_10H - 2 * 3600 - 1)); // 07:59:59
        assert!(at(&ac, MONDAY_10H + 8 * 3600 - 1)); // 17:59:59
        assert!(!at(&ac, MONDAY_10H + 8 * 3600)); // 18:00:00
    }

    #[test]
    fn window_lists_ranges_steps() {
        // minutes 0-14 and 30, every other second
        let ac = window("*/2 0-14,30 * * * *");
        assert!(at(&ac, MONDAY_10H)); // 10:00:00
        assert!(!at(&ac, MONDAY_10H + 1)); // odd second
        assert!(at(&ac, MONDAY_10H + 14 * 60 + 58));
        assert!(!at(&ac, MONDAY_10H + 15 * 60));
        assert!(at(&ac, MONDAY_10H + 30 * 60 + 10));
        assert!(!at(&ac, MONDAY_10H + 31 * 60));
        // a range with a step, and `a/n`
        let ac = window("0 0 8-18/5 * * *"); // 8, 13, 18
        assert!(at(&ac, MONDAY_10H + 3 * 3600)); // 13:00:00
        assert!(!at(&ac, MONDAY_10H)); // 10:00:00
        let ac = window("0 0 20/2 * * *"); // 20, 22
        assert!(at(&ac, MONDAY_10H + 12 * 3600)); // 22:00:00
        assert!(!at(&ac, MONDAY_10H + 11 * 3600));
        // months by cron steps: */3 is Jan, Apr, Jul, Oct
        let ac = window("* * * * */3 *");
        assert!(!at(&ac, MONDAY_10H)); // November
        assert!(at(&ac, 1_696_118_400)); // 2023-10-01
                                         // day of month list
        let ac = window("* * * 1,20 * *");
        assert!(at(&ac, MONDAY_10H));
        assert!(!at(&ac, MONDAY_10H + 86_400));
    }

    #[test]
    fn window_weekday() {
        let ac = window("* * * * * 1-5");
        assert!(at(&ac, MONDAY_10H));
        assert!(at(&ac, MONDAY_10H + 4 * 86_400)); // Friday
        assert!(!at(&ac, MONDAY_10H + 5 * 86_400)); // Saturday
        assert!(!at(&ac, MONDAY_10H - 86_400)); // Sunday
                                                // Sunday is 0 and 7
        for sunday in ["* * * * * 0", "* * * * * 7", "* * * * * 6-7"] {
            let ac = window(sunday);
            assert!(at(&ac, MONDAY_10H - 86_400), "{sunday}");
            assert!(!at(&ac, MONDAY_10H), "{sunday}");
        }
    }

    // The accessControlWindow of the TS-0003 token example
    // (`* 0-5 2,6,10 * * * *`, seven fields with the year).
    #[test]
    fn window_ts0003_example_seven_fields() {
        let ac = window("* 0-5 2,6,10 * * * *");
        assert!(at(&ac, MONDAY_10H + 5 * 60 + 59)); // 10:05:59
        assert!(!at(&ac, MONDAY_10H + 6 * 60)); // 10:06:00
        assert!(!at(&ac, MONDAY_10H + 3600)); // 11:00
        let ac = window("* * * * * * 2023-2024");
        assert!(at(&ac, MONDAY_10H));
        assert!(!at(&ac, 1_735_689_600)); // 2025-01-01
        assert!(!at(&ac, 0));
    }

    #[test]
    fn window_without_wall_clock_never_matches() {
        let ac = window("* * * * * *");
        assert!(at(&ac, MONDAY_10H));
        assert_eq!(ac.check(&get("/x")), AcpVerdict::Denied);
    }

    #[test]
    fn malformed_windows() {
        for bad in [
            "",
            "* * * * *",
            "* * * * * * * *",
            "60 * * * * *",
            "* * 24 * * *",
            "* * * 0 * *",
            "* * * 32 * *",
            "* * * * 13 *",
            "* * * * * 8",
            "* * * * * * 1969",
            "* * * * * * 2098",
            "* * 5-3 * * *",
            "*/0 * * * * *",
            "a * * * * *",
            "+1 * * * * *",
            "1,,2 * * * * *",
            "1- * * * * *",
            "*/ * * * * *",
            "1/2/3 * * * * *",
            "99999 * * * * *",
        ] {
            assert_eq!(Schedule::parse(bad), Err(Error::InvalidPolicy), "{bad:?}");
        }
        assert!(Schedule::parse("  0\t0 8 * *  *  ").is_ok());
    }

    fn ranges(ipv4: &[&str], ipv6: &[&str]) -> Ac {
        let ctx = [Context {
            ipv4,
            ipv6,
            ..Context::default()
        }];
        one(Rule::new(&["all"], R).with_contexts(&ctx))
    }

    fn from(ac: &Ac, ip: &str) -> bool {
        ac.check(&get("/x").ip(ip.parse().unwrap())).is_granted()
    }

    // TS-0001 §9.6.2 accessControlIpAddresses, IPv4 (the TS-0003 token
    // example lists `192.168.11.2` and a network with a dotted mask).
    #[test]
    fn ipv4_ranges() {
        let ac = ranges(
            &["192.168.11.2", "10.1.0.0/16", "172.16.0.0/255.240.0.0"],
            &[],
        );
        assert!(from(&ac, "192.168.11.2"));
        assert!(!from(&ac, "192.168.11.3"));
        assert!(from(&ac, "10.1.255.7"));
        assert!(!from(&ac, "10.2.0.1"));
        assert!(from(&ac, "172.31.0.1"));
        assert!(!from(&ac, "172.32.0.1"));
        assert!(from(&ac, "::ffff:10.1.2.3"), "IPv4-mapped");
        assert!(!from(&ac, "2001:db8::1"));
        assert_eq!(ac.check(&get("/x")), AcpVerdict::Denied, "no address");
        let all = ranges(&["0.0.0.0/0"], &[]);
        assert!(from(&all, "203.0.113.9"));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/255.0.255.0",
            "::1",
            "10.0.0.0/-1",
        ] {
            assert_eq!(IpRange::parse_v4(bad), Err(Error::InvalidPolicy), "{bad}");
        }
        // host bits are ignored
        assert_eq!(
            IpRange::parse_v4("10.1.2.3/8"),
            IpRange::parse_v4("10.0.0.0/8")
        );
    }

    #[test]
    fn ipv6_ranges() {
        let ac = ranges(&[], &["2001:db8:1::/48", "fe80::1"]);
        assert!(from(&ac, "2001:db8:1:ffff::9"));
        assert!(!from(&ac, "2001:db8:2::9"));
        assert!(from(&ac, "fe80::1"));
        assert!(!from(&ac, "fe80::2"));
        assert!(!from(&ac, "192.168.1.1"));
        let both = ranges(&["192.168.1.0/24"], &["::/0"]);
        assert!(from(&both, "192.168.1.200"), "either family");
        assert!(from(&both, "2001:db8::1"));
        assert!(!from(&both, "192.168.2.1"));
        for bad in [
            "2001:db8::/129",
            "2001:db8::/",
            "10.0.0.1",
            "fe80::1%eth0/64",
        ] {
            assert_eq!(IpRange::parse_v6(bad), Err(Error::InvalidPolicy), "{bad}");
        }
    }

    // Within a context every constraint present must hold; any context of
    // the rule may match.
    #[test]
    fn contexts_all_within_any_across() {
        let ctx = [
            Context {
                windows: &["* * 8-17 * * *"],
                ipv4: &["192.168.1.0/24"],
                ..Context::default()
            },
            Context {
                ipv4: &["10.0.0.1"],
                ..Context::default()
            },
        ];
        let ac = one(Rule::new(&["all"], R).with_contexts(&ctx));
        let lan = "192.168.1.5".parse().unwrap();
        let admin = "10.0.0.1".parse().unwrap();
        assert!(ac.check(&get("/x").ip(lan).wall(MONDAY_10H)).is_granted());
        assert!(!ac
            .check(&get("/x").ip(lan).wall(MONDAY_10H + 12 * 3600))
            .is_granted());
        assert!(!ac.check(&get("/x").wall(MONDAY_10H)).is_granted());
        assert!(
            ac.check(&get("/x").ip(admin)).is_granted(),
            "second context"
        );
        let empty = [Context::default()];
        let ac = one(Rule::new(&["all"], R).with_contexts(&empty));
        assert!(ac.check(&get("/x")).is_granted(), "an empty context holds");
    }

    // accessControlLocationRegion is not evaluated: the context never matches.
    #[test]
    fn unsupported_context_never_matches() {
        let ctx = [Context {
            unsupported: true,
            ..Context::default()
        }];
        let ac = one(Rule::new(&["all"], R).with_contexts(&ctx));
        assert_eq!(ac.check(&get("/x").wall(MONDAY_10H)), AcpVerdict::Denied);
        let ctx = [
            Context {
                windows: &["* * * * * *"],
                unsupported: true,
                ..Context::default()
            },
            Context {
                ipv4: &["10.0.0.1"],
                ..Context::default()
            },
        ];
        let ac = one(Rule::new(&["all"], R).with_contexts(&ctx));
        assert_eq!(ac.check(&get("/x").wall(MONDAY_10H)), AcpVerdict::Denied);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(ac.check(&get("/x").ip(ip)).is_granted());
    }

    // TS-0003 §7.1 accessControlAuthenticationFlag.
    #[test]
    fn authentication_flag() {
        let mut ac = one(Rule::new(&["Csensor1"], R).authenticated());
        ac.add_app_rule(b"psk-1", &["Csensor1"]).unwrap();
        ac.add_app_rule(b"psk-any", &["C*"]).unwrap();
        let secure = get("/x").credential(b"psk-1");
        assert_eq!(ac.check(&secure.originator("Csensor1")), GRANT0);
        assert_eq!(ac.check(&secure), GRANT0, "default originator");
        // without the flag a plain claim of an unreserved originator would do
        let mut open = one(Rule::new(&["Cfree"], R));
        let mut flagged = one(Rule::new(&["Cfree"], R).authenticated());
        assert_eq!(open.check(&get("/x").originator("Cfree")), GRANT0);
        assert_eq!(
            flagged.check(&get("/x").originator("Cfree")),
            AcpVerdict::Denied
        );
        for ac in [&mut open, &mut flagged] {
            ac.add_app_rule(b"psk-any", &["C*"]).unwrap();
        }
        let wild = get("/x").credential(b"psk-any").originator("Cfree");
        assert_eq!(
            flagged.check(&wild),
            GRANT0,
            "authenticated through a wildcard"
        );
        assert_eq!(open.check(&wild), GRANT0);
    }

    // TS-0003 §7.2 / serviceSubscribedAppRule: the claimed originator must be
    // one the credential may use.
    #[test]
    fn impersonation_refused() {
        let mut ac = one(Rule::new(&["all"], Operation::EVERY));
        ac.add_app_rule(b"psk-1", &["Csensor1", "Csensor1-*"])
            .unwrap();
        ac.add_app_rule(b"gateway", &["C*"]).unwrap();
        let v = |c: Option<&[u8]>, o: Option<&str>| {
            let mut r = get("/x");
            r.credential = c;
            r.originator = o;
            ac.check(&r)
        };
        assert_eq!(v(Some(b"psk-1"), Some("Csensor1")), GRANT0);
        assert_eq!(v(Some(b"psk-1"), Some("Csensor1-b")), GRANT0);
        assert_eq!(
            v(Some(b"psk-1"), Some("Csensor2")),
            AcpVerdict::Impersonation
        );
        assert_eq!(v(Some(b"psk-1"), Some("CAdmin")), AcpVerdict::Impersonation);
        // Csensor1 is reserved to psk-1: not through the gateway's wildcard,
        // not without a secure session
        assert_eq!(
            v(Some(b"gateway"), Some("Csensor1")),
            AcpVerdict::Impersonation
        );
        assert_eq!(v(None, Some("Csensor1")), AcpVerdict::Impersonation);
        assert_eq!(v(Some(b"gateway"), Some("Csensor1-b")), GRANT0);
        assert_eq!(v(Some(b"gateway"), Some("Cother")), GRANT0);
        assert_eq!(
            v(Some(b"gateway"), Some("Sother")),
            AcpVerdict::Impersonation
        );
        // a credential without an app rule may claim nothing
        assert_eq!(v(Some(b"stranger"), Some("Cx")), AcpVerdict::Impersonation);
        assert_eq!(
            v(Some(b"stranger"), None),
            GRANT0,
            "anonymous, and `all` matches"
        );
        // the impersonation verdict comes before any policy
        assert_eq!(
            ac.check(
                &Request::new(Operation::Delete, "/nowhere")
                    .credential(b"psk-1")
                    .originator("Cx")
            ),
            AcpVerdict::Impersonation
        );
        assert_eq!(AcpVerdict::Impersonation.code(), Some(0x83));
        assert_eq!(GRANT0.code(), None);
    }

    #[test]
    fn default_originator() {
        let mut ac = Ac::new();
        ac.add_app_rule(b"psk-1", &["C*", "all", "Cfirst", "Csecond"])
            .unwrap();
        ac.add_app_rule(b"wild", &["C*"]).unwrap();
        assert_eq!(
            ac.identify(Some(b"psk-1"), None),
            Identity::Authenticated("Cfirst")
        );
        assert_eq!(
            ac.identify(Some(b"psk-1"), Some("")),
            Identity::Authenticated("Cfirst")
        );
        assert_eq!(ac.identify(Some(b"wild"), None), Identity::Anonymous);
        assert_eq!(ac.identify(None, Some("Cx")), Identity::Claimed("Cx"));
        assert_eq!(ac.identify(None, None), Identity::Anonymous);
        // extending an app rule keeps its index and default
        assert_eq!(ac.add_app_rule(b"psk-1", &["Cthird"]), Ok(0));
        assert_eq!(
            ac.identify(Some(b"psk-1"), Some("Cthird")),
            Identity::Authenticated("Cthird")
        );
        assert_eq!(
            ac.identify(Some(b"psk-1"), None),
            Identity::Authenticated("Cfirst")
        );
        assert_eq!(ac.add_app_rule(b"", &["C"]), Err(Error::InvalidPolicy));
        assert_eq!(ac.add_app_rule(b"x", &["C*x"]), Err(Error::InvalidPolicy));
    }

    // TS-0001 §9.6.2: privileges are permit-overrides, over all the policies
    // a resource lists.
    #[test]
    fn permit_overrides_two_policies() {
        let mut ac = Ac::new();
        let a = ac.add_policy("acp-read").unwrap();
        let b = ac.add_policy("acp-write").unwrap();
        ac.bind(a, "/actuators").unwrap();
        ac.bind(b, "/actuators/").unwrap();
        ac.add_rule(a, Rule::new(&["all"], R)).unwrap();
        ac.add_rule(b, Rule::new(&["CAdmin"], R)).unwrap();
        ac.add_rule(b, Rule::new(&["CAdmin"], U)).unwrap();
        let upd = Request::new(Operation::Update, "/actuators/led");
        assert_eq!(
            ac.check(&get("/actuators/led").originator("CAdmin")),
            GRANT0
        );
        assert_eq!(
            ac.check(&upd.originator("CAdmin")),
            AcpVerdict::Granted { policy: 1, rule: 1 }
        );
        assert_eq!(ac.check(&upd.originator("Cuser")), AcpVerdict::Denied);
        assert_eq!(ac.check(&get("/actuators").originator("Cuser")), GRANT0);
        assert_eq!(ac.policy_name(1), Some("acp-write"));
        assert_eq!(ac.find_policy("acp-read"), Some(0));
        assert_eq!(ac.rules(1), 2);
        assert_eq!(ac.add_policy("acp-read"), Err(Error::InvalidPolicy));
    }

    // A resource's own accessControlPolicyIDs replace the inherited ones:
    // the longest bound prefix decides which policies apply.
    #[test]
    fn bindings_longest_prefix() {
        let mut ac = Ac::new();
        let public = ac.add_policy("public").unwrap();
        let admin = ac.add_policy("admin").unwrap();
        ac.bind(public, "/").unwrap();
        ac.bind(admin, "/admin").unwrap();
        ac.add_rule(public, Rule::new(&["all"], R)).unwrap();
        ac.add_rule(admin, Rule::new(&["CAdmin"], R)).unwrap();
        assert_eq!(ac.check(&get("/sensors/t")), GRANT0);
        assert_eq!(ac.check(&get("/administrator")), GRANT0, "whole segments");
        assert_eq!(ac.check(&get("/admin/users")), AcpVerdict::Denied);
        assert_eq!(
            ac.check(&get("/admin").originator("CAdmin")),
            AcpVerdict::Granted { policy: 1, rule: 0 }
        );
        for odd in ["/admin/../sensors", "/./admin", "admin", ""] {
            assert_eq!(ac.check(&get(odd)), AcpVerdict::NoPolicy, "{odd:?}");
        }
        let mut unbound = Ac::new();
        let p = unbound.add_policy("p").unwrap();
        unbound.add_rule(p, Rule::new(&["all"], R)).unwrap();
        assert_eq!(unbound.check(&get("/x")), AcpVerdict::NoPolicy);
        unbound.bind(p, "/x").unwrap();
        assert_eq!(unbound.check(&get("/x/y")), GRANT0);
        assert_eq!(unbound.check(&get("/y")), AcpVerdict::NoPolicy);
        for bad in ["x", "", "/a/../b", "/a/."] {
            assert_eq!(unbound.bind(p, bad), Err(Error::InvalidPolicy), "{bad:?}");
        }
        assert_eq!(unbound.bind(7, "/"), Err(Error::InvalidPolicy));
        assert_eq!(
            unbound.add_rule(7, Rule::new(&["all"], R)),
            Err(Error::InvalidPolicy)
        );
    }

    #[test]
    fn capacity_errors() {
        // policies
        let mut ac = AccessControl::<2, 2, 4, 2, 1, 8>::new();
        assert_eq!(AccessControl::<2, 2, 4, 2, 1, 8>::capacity().rules, 2);
        ac.add_policy("a").unwrap();
        ac.add_policy("b").unwrap();
        assert_eq!(ac.add_policy("c"), Err(Error::TooLarge));
        assert_eq!(
            ac.add_policy("123456789"),
            Err(Error::TooLarge),
            "name length"
        );
        // strings: 4 in all
        ac.bind(0, "/a").unwrap();
        assert_eq!(
            ac.bind(0, "/123456789"),
            Err(Error::TooLarge),
            "path length"
        );
        assert_eq!(
            ac.add_rule(0, Rule::new(&["123456789"], R)),
            Err(Error::TooLarge)
        );
        assert_eq!(
            ac.add_rule(0, Rule::new(&["o1", "o2", "o3", "o4"], R)),
            Err(Error::TooLarge)
        );
        assert_eq!(ac.usage().strings, 1, "nothing half added");
        // constraints: 2 in all
        let ctx = [Context {
            windows: &["* * * * * *", "* * * * * *", "* * * * * *"],
            ..Context::default()
        }];
        assert_eq!(
            ac.add_rule(0, Rule::new(&["all"], R).with_contexts(&ctx)),
            Err(Error::TooLarge)
        );
        let u = ac.usage();
        assert_eq!((u.rules, u.strings, u.constraints), (0, 1, 0));
        // a malformed part also rolls back
        let ctx = [Context {
            windows: &["* * * * * *"],
            ipv4: &["bad"],
            ..Context::default()
        }];
        assert_eq!(
            ac.add_rule(0, Rule::new(&["all"], R).with_contexts(&ctx)),
            Err(Error::InvalidPolicy)
        );
        assert_eq!(ac.usage(), u);
        // rules
        ac.add_rule(0, Rule::new(&["all"], R)).unwrap();
        ac.add_rule(1, Rule::new(&[], R)).unwrap();
        assert_eq!(ac.add_rule(1, Rule::new(&[], R)), Err(Error::TooLarge));
        // apps
        ac.add_app_rule(b"k1", &["C1"]).unwrap();
        assert_eq!(ac.add_app_rule(b"k2", &[]), Err(Error::TooLarge));
        assert_eq!(
            ac.add_app_rule(b"k1", &["C2", "C3"]),
            Err(Error::TooLarge),
            "strings"
        );
        assert_eq!(
            ac.identify(Some(b"k1"), Some("C2")),
            Identity::Impersonation
        );
        let mut long = AccessControl::<1, 1, 1, 1, 1, 4>::new();
        assert_eq!(long.add_app_rule(b"12345", &[]), Err(Error::TooLarge));
        assert_eq!(long.usage().apps, 0);
    }

    // --- property tests -------------------------------------------------

    const ORIGS: [&str; 6] = ["all", "C*", "Ca", "Cb", "Cb*", "S1"];
    const WINDOWS: [&str; 4] = [
        "* * 8-17 * * *",
        "* * * * * 1-5",
        "*/2 * * * * *",
        "* * * * * * 2023",
    ];
    const V4: [&str; 3] = ["10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0"];
    const PATHS: [&str; 4] = ["/", "/a", "/a/b", "/c"];

    #[derive(Debug, Clone)]
    struct GenRule {
        origs: StdVec<usize>,
        ops: u8,
        window: Option<usize>,
        v4: Option<usize>,
        unsupported: bool,
        auth: bool,
    }

    fn gen_rule() -> impl Strategy<Value = GenRule> {
        (
            proptest::collection::vec(0..ORIGS.len(), 0..3),
            0u8..64,
            proptest::option::of(0..WINDOWS.len()),
            proptest::option::of(0..V4.len()),
            proptest::bool::weighted(0.1),
            any::<bool>(),
        )
            .prop_map(|(origs, ops, window, v4, unsupported, auth)| GenRule {
                origs,
                ops,
                window,
                v4,
                unsupported,
                auth,
            })
    }

    fn add(ac: &mut AccessControl<4, 32, 96, 64, 4, 32>, policy: usize, g: &GenRule) {
        let origs: StdVec<&str> = g.origs.iter().map(|&i| ORIGS[i]).collect();
        let windows: StdVec<&str> = g.window.iter().map(|&i| WINDOWS[i]).collect();
        let v4: StdVec<&str> = g.v4.iter().map(|&i| V4[i]).collect();
        let ctx = [Context {
            windows: &windows,
            ipv4: &v4,
            ipv6: &[],
            unsupported: g.unsupported,
        }];
        let has_ctx = g.window.is_some() || g.v4.is_some() || g.unsupported;
        let mut rule = Rule::new(&origs, g.ops);
        if has_ctx {
            rule = rule.with_contexts(&ctx);
        }
        rule.authentication = g.auth;
        ac.add_rule(policy, rule).unwrap();
    }

    proptest! {
        // Permit-overrides is monotone: adding a rule never takes a grant
        // away (nor changes an impersonation or no-policy verdict).
        #[test]
        fn adding_a_rule_never_revokes(
            bindings in proptest::collection::vec((0usize..3, 0..PATHS.len()), 0..5),
            rules in proptest::collection::vec((0usize..3, gen_rule()), 0..8),
            extra in (0usize..3, gen_rule()),
            cred in proptest::option::of(0usize..3),
            orig in proptest::option::of(0..ORIGS.len()),
            op in 0usize..6,
            path in 0..PATHS.len(),
            ip in proptest::option::of(any::<u32>()),
            wall in proptest::option::of(1_600_000_000u64..1_800_000_000),
        ) {
            let mut ac = AccessControl::<4, 32, 96, 64, 4, 32>::new();
            for name in ["p0", "p1", "p2"] {
                ac.add_policy(name).unwrap();
            }
            for (p, path) in &bindings {
                ac.bind(*p, PATHS[*path]).unwrap();
            }
            ac.add_app_rule(b"k0", &["Ca"]).unwrap();
            ac.add_app_rule(b"k1", &["C*"]).unwrap();
            for (p, g) in &rules {
                add(&mut ac, *p, g);
            }
            let creds: [&[u8]; 3] = [b"k0", b"k1", b"k2"];
            let mut req = Request::new(Operation::ALL[op], PATHS[path]);
            req.credential = cred.map(|c| creds[c]);
            req.originator = orig.map(|o| ORIGS[o]);
            req.ip = ip.map(|a| IpAddr::V4(Ipv4Addr::from(a)));
            req.wall = wall;
            let before = ac.check(&req);
            add(&mut ac, extra.0, &extra.1);
            let after = ac.check(&req);
            if before != AcpVerdict::Denied {
                prop_assert_eq!(before, after);
            }
        }

        // Whatever the strings, nothing panics.
        #[test]
        fn never_panics(
            pattern in ".{0,12}",
            prefix in ".{0,12}",
            window in "[0-9*,/ -]{0,30}|.{0,30}",
            v4 in ".{0,24}",
            v6 in ".{0,24}",
            cred in proptest::collection::vec(any::<u8>(), 0..40),
            orig in proptest::option::of(".{0,40}"),
            path in ".{0,40}",
            op in 0usize..6,
            wall in proptest::option::of(any::<u64>()),
        ) {
            let mut ac = AccessControl::<2, 4, 8, 4, 2, 16>::new();
            let p = ac.add_policy("p").unwrap();
            let _ = ac.bind(p, &prefix);
            let _ = ac.bind(p, "/");
            let _ = ac.add_app_rule(&cred, &[pattern.as_str()]);
            let windows = [window.as_str()];
            let v4s = [v4.as_str()];
            let v6s = [v6.as_str()];
            let ctx = [Context { windows: &windows, ipv4: &v4s, ipv6: &v6s, unsupported: false }];
            let _ = ac.add_rule(p, Rule::new(&[pattern.as_str()], Operation::EVERY).with_contexts(&ctx));
            let _ = ac.add_rule(p, Rule::new(&[pattern.as_str()], Operation::EVERY));
            let _ = Schedule::parse(&window).map(|s| wall.map(|w| s.matches(w)));
            let mut req = Request::new(Operation::ALL[op], &path);
            req.credential = Some(&cred);
            req.originator = orig.as_deref();
            req.wall = wall;
            let _ = ac.check(&req);
            req.credential = None;
            let _ = ac.check(&req);
        }
    }
}
