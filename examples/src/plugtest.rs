//! `cssf-server --plugtest`: the resource set of the CoAP interoperability
//! test descriptions used at the ETSI/IETF CoAP plugtests (TD_COAP_CORE,
//! TD_COAP_LINK, TD_COAP_BLOCK and TD_COAP_OBS), so that conformance tools
//! and other CoAP clients can be pointed at the device.
//!
//! | resource | methods | behaviour |
//! | --- | --- | --- |
//! | `/test` | GET PUT POST DELETE | 2.05 text; PUT 2.04 (stores the body); POST 2.01 with Location-Path `location1/location2/location3`; DELETE 2.02 |
//! | `/separate` | GET | answered after [`SEPARATE_DELAY`]: an Empty ACK first, then a confirmable 2.05 |
//! | `/seg1/seg2/seg3` | GET | 2.05 |
//! | `/query` | GET | 2.05 listing the Uri-Query parameters |
//! | `/location-query` | POST | 2.01 with Location-Query `first=1` and `second=2` |
//! | `/multi-format` | GET | Accept 0 (or none): text; Accept 41: XML; others 4.06 |
//! | `/validate` | GET PUT | ETag on every 2.05; 2.03 to a GET with the current ETag; PUT changes the body and the ETag, 4.12 when an If-Match does not hold |
//! | `/create1` | GET PUT DELETE | PUT with If-None-Match creates once (2.01), then 4.12; DELETE removes it |
//! | `/large` | GET | (the device's 4096-byte resource) Block2 |
//! | `/large-update` | GET PUT | Block1 PUT replaces the body (2.04) |
//! | `/large-create` | POST | Block1 POST creates `/large-create/N` (2.01 with Location-Path), N in 1..=4, the oldest replaced |
//! | `/large-post` | POST | Block1 POST answered 2.04 with the body back (Block2) |
//! | `/obs` | GET | observable, a new value every [`OBS_PERIOD`], every notification confirmable |
//! | `/obs-non` | GET | observable, a new value every [`OBS_PERIOD`], notifications non-confirmable (every eighth confirmable, the endpoint's liveness check, RFC 7641 §4.5) |
//! | `/link1` `/link2` `/link3` | GET | `rt` "Type1 Type2", "Type2 Type3", "Type1 Type3"; `if` "If1", "If2", "foo" (discovery filters) |
//! | `/path` | GET | link-format listing of `/path/sub1`..`/path/sub3` |
//!
//! Everything is bounded: bodies are at most the endpoint's `max_body`,
//! `/large-create` keeps [`CREATED_SLOTS`] resources, and deferred
//! `/separate` answers are capped by the server.

use std::time::Duration;

use cssf_coap::endpoint::{Methods, Received, Resource};
use cssf_coap::{Code, ContentFormat, OptionNumber};

/// How long `/separate` waits before answering (longer than the endpoint's
/// `separate_ack_delay`, so the request is first acknowledged empty).
pub const SEPARATE_DELAY: Duration = Duration::from_secs(2);

/// How often `/obs` and `/obs-non` change.
pub const OBS_PERIOD: Duration = Duration::from_secs(5);

/// How many `/large-create/N` resources exist at most.
pub const CREATED_SLOTS: usize = 4;

const GET: Methods = Methods::GET;
const GET_PUT: Methods = Methods(Methods::GET.0 | Methods::PUT.0);

/// The plugtest resources (added to the device's own).
pub static RESOURCES: [Resource; 24] = [
    Resource::new("test", Methods::ALL).ct(0),
    Resource::new("separate", GET).ct(0),
    Resource::new("seg1/seg2/seg3", GET).ct(0),
    Resource::new("query", GET).ct(0),
    Resource::new("location-query", Methods::POST),
    Resource::new("multi-format", GET).ct(0),
    Resource::new("validate", GET_PUT).ct(0),
    Resource::new("create1", Methods(GET_PUT.0 | Methods::DELETE.0)),
    Resource::new("large-update", GET_PUT).ct(0),
    Resource::new("large-create", Methods::POST),
    Resource::new("large-create/1", GET),
    Resource::new("large-create/2", GET),
    Resource::new("large-create/3", GET),
    Resource::new("large-create/4", GET),
    Resource::new("large-post", Methods::POST),
    Resource::new("obs", GET).ct(0).observable_con(),
    Resource::new("obs-non", GET).ct(0).observable(),
    Resource::new("link1", GET).rt("Type1 Type2").if_("If1"),
    Resource::new("link2", GET).rt("Type2 Type3").if_("If2"),
    Resource::new("link3", GET).rt("Type1 Type3").if_("foo"),
    Resource::new("path", GET).ct(40),
    Resource::new("path/sub1", GET).ct(0),
    Resource::new("path/sub2", GET).ct(0),
    Resource::new("path/sub3", GET).ct(0),
];

/// Whether `path` is one of the plugtest resources.
pub fn serves(path: &str) -> bool {
    RESOURCES.iter().any(|r| r.path == path)
}

/// Whether requests to `path` carry their body in Block1 blocks the server
/// assembles before [`Plugtest::handle`] sees it.
pub fn takes_uploads(path: &str) -> bool {
    matches!(
        path,
        "large-update" | "large-create" | "large-post" | "test"
    )
}

/// An answer: the code, the body and the options the plugtest checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// Response code (`None`: not set, read as 2.05).
    pub code: Option<Code>,
    /// The whole body (the endpoint slices it for Block2).
    pub payload: Vec<u8>,
    /// Content-Format.
    pub content_format: Option<ContentFormat>,
    /// ETag.
    pub etag: Option<Vec<u8>>,
    /// Location-Path, `/`-separated.
    pub location_path: Option<String>,
    /// Location-Query, `&`-separated.
    pub location_query: Option<String>,
}

impl Answer {
    fn code(code: Code) -> Self {
        Answer {
            code: Some(code),
            ..Answer::default()
        }
    }

    fn text(code: Code, body: impl Into<Vec<u8>>) -> Self {
        Answer {
            code: Some(code),
            payload: body.into(),
            content_format: Some(ContentFormat::TEXT_PLAIN),
            ..Answer::default()
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Answer now.
    Now(Answer),
    /// Answer after [`SEPARATE_DELAY`] (`/separate`).
    Later(Answer),
}

/// The plugtest resources' state.
#[derive(Debug)]
pub struct Plugtest {
    test: Vec<u8>,
    validate: Vec<u8>,
    validate_version: u32,
    create1: Option<Vec<u8>>,
    large_update: Vec<u8>,
    created: [Option<Vec<u8>>; CREATED_SLOTS],
    next_slot: usize,
    obs: u64,
}

impl Default for Plugtest {
    fn default() -> Self {
        Plugtest {
            test: b"plugtest /test".to_vec(),
            validate: b"validate 1".to_vec(),
            validate_version: 1,
            create1: None,
            large_update: b"large-update: nothing uploaded yet".to_vec(),
            created: Default::default(),
            next_slot: 0,
            obs: 0,
        }
    }
}

impl Plugtest {
    /// The current ETag of `/validate`.
    pub fn validate_etag(&self) -> [u8; 4] {
        self.validate_version.to_be_bytes()
    }

    /// The next value of `/obs` and `/obs-non` (called every
    /// [`OBS_PERIOD`]).
    pub fn tick(&mut self) -> String {
        self.obs += 1;
        format!("obs {}", self.obs)
    }

    /// The current value of `/obs` and `/obs-non`.
    pub fn obs_value(&self) -> String {
        format!("obs {}", self.obs)
    }

    /// Answers `req` to `path`; `body` is the whole request body (the
    /// assembled Block1 upload, or the payload).
    pub fn handle<const M: usize>(
        &mut self,
        path: &str,
        req: &Received<M>,
        body: &[u8],
    ) -> Handled {
        let Ok(msg) = req.message() else {
            return Handled::Now(Answer::code(Code::BAD_REQUEST));
        };
        let code = msg.code();
        let text = |s: &str| Handled::Now(Answer::text(Code::CONTENT, s));
        match (path, code) {
            // Short, so that it fits under the endpoint's amplification
            // limit toward an unverified plain-CoAP client (3x the request).
            ("test", Code::GET) => Handled::Now(Answer::text(Code::CONTENT, self.test.clone())),
            ("test", Code::PUT) => {
                self.test = body.to_vec();
                Handled::Now(Answer::code(Code::CHANGED))
            }
            ("test", Code::POST) => Handled::Now(Answer {
                location_path: Some("location1/location2/location3".into()),
                ..Answer::code(Code::CREATED)
            }),
            ("test", Code::DELETE) => Handled::Now(Answer::code(Code::DELETED)),
            ("separate", Code::GET) => {
                Handled::Later(Answer::text(Code::CONTENT, "plugtest /separate"))
            }
            ("seg1/seg2/seg3", Code::GET) => text("plugtest /seg1/seg2/seg3"),
            ("query", Code::GET) => {
                let q: Vec<String> = msg
                    .uri_query()
                    .map(|q| String::from_utf8_lossy(q).into_owned())
                    .collect();
                text(&format!("query: {}", q.join("&")))
            }
            ("location-query", Code::POST) => Handled::Now(Answer {
                location_query: Some("first=1&second=2".into()),
                ..Answer::code(Code::CREATED)
            }),
            ("multi-format", Code::GET) => Handled::Now(match msg.accept() {
                Ok(None) | Ok(Some(ContentFormat::TEXT_PLAIN)) => {
                    Answer::text(Code::CONTENT, "plugtest /multi-format")
                }
                Ok(Some(ContentFormat::XML)) => Answer {
                    code: Some(Code::CONTENT),
                    payload: b"<msg>plugtest /multi-format</msg>".to_vec(),
                    content_format: Some(ContentFormat::XML),
                    ..Answer::default()
                },
                _ => Answer::code(Code::NOT_ACCEPTABLE),
            }),
            ("validate", Code::GET) => {
                let etag = self.validate_etag();
                let fresh = msg
                    .options_numbered(OptionNumber::ETAG)
                    .any(|o| o.value == etag);
                Handled::Now(if fresh {
                    Answer {
                        etag: Some(etag.to_vec()),
                        ..Answer::code(Code::VALID)
                    }
                } else {
                    Answer {
                        etag: Some(etag.to_vec()),
                        ..Answer::text(Code::CONTENT, self.validate.clone())
                    }
                })
            }
            ("validate", Code::PUT) => {
                let etag = self.validate_etag();
                if !req.preconditions_hold(true, Some(&etag)) {
                    return Handled::Now(Answer::code(Code::PRECONDITION_FAILED));
                }
                self.validate = body.to_vec();
                self.validate_version = self.validate_version.wrapping_add(1);
                Handled::Now(Answer {
                    etag: Some(self.validate_etag().to_vec()),
                    ..Answer::code(Code::CHANGED)
                })
            }
            ("create1", Code::GET) => Handled::Now(match &self.create1 {
                Some(b) => Answer::text(Code::CONTENT, b.clone()),
                None => Answer::code(Code::NOT_FOUND),
            }),
            ("create1", Code::PUT) => {
                let exists = self.create1.is_some();
                if !req.preconditions_hold(exists, None) {
                    return Handled::Now(Answer::code(Code::PRECONDITION_FAILED));
                }
                self.create1 = Some(body.to_vec());
                Handled::Now(Answer::code(if exists {
                    Code::CHANGED
                } else {
                    Code::CREATED
                }))
            }
            ("create1", Code::DELETE) => {
                self.create1 = None;
                Handled::Now(Answer::code(Code::DELETED))
            }
            ("large-update", Code::GET) => {
                Handled::Now(Answer::text(Code::CONTENT, self.large_update.clone()))
            }
            ("large-update", Code::PUT) => {
                self.large_update = body.to_vec();
                Handled::Now(Answer::code(Code::CHANGED))
            }
            ("large-create", Code::POST) => {
                let slot = self.next_slot % CREATED_SLOTS;
                self.next_slot = (slot + 1) % CREATED_SLOTS;
                if let Some(s) = self.created.get_mut(slot) {
                    *s = Some(body.to_vec());
                }
                Handled::Now(Answer {
                    location_path: Some(format!("large-create/{}", slot + 1)),
                    ..Answer::code(Code::CREATED)
                })
            }
            ("large-post", Code::POST) => Handled::Now(Answer::text(Code::CHANGED, body.to_vec())),
            ("obs" | "obs-non", Code::GET) => text(&self.obs_value()),
            ("link1" | "link2" | "link3", Code::GET) => text(&format!("plugtest /{path}")),
            ("path", Code::GET) => Handled::Now(Answer {
                code: Some(Code::CONTENT),
                payload: b"</path/sub1>,</path/sub2>,</path/sub3>".to_vec(),
                content_format: Some(ContentFormat::LINK_FORMAT),
                ..Answer::default()
            }),
            ("path/sub1" | "path/sub2" | "path/sub3", Code::GET) => {
                text(&format!("plugtest /{path}"))
            }
            (p, Code::GET) if p.starts_with("large-create/") => {
                let n: usize = p
                    .strip_prefix("large-create/")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Handled::Now(match n.checked_sub(1).and_then(|i| self.created.get(i)) {
                    Some(Some(b)) => Answer::text(Code::CONTENT, b.clone()),
                    _ => Answer::code(Code::NOT_FOUND),
                })
            }
            _ => Handled::Now(Answer::code(Code::METHOD_NOT_ALLOWED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cssf_coap::{Message, MessageBuilder, MessageType};

    fn request(code: Code, path: &str, edit: impl FnOnce(&mut MessageBuilder<'_, 16>)) -> Vec<u8> {
        let mut b = MessageBuilder::<'_, 16>::new(MessageType::Con, code, 7);
        b.token(&[1]).unwrap();
        b.uri_path(path).unwrap();
        edit(&mut b);
        let mut buf = vec![0u8; 256];
        let n = b.emit(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn answer(
        p: &mut Plugtest,
        code: Code,
        path: &str,
        edit: impl FnOnce(&mut MessageBuilder<'_, 16>),
    ) -> Answer {
        let bytes = request(code, path, edit);
        let m = Message::parse(&bytes).unwrap();
        let body = m.payload().to_vec();
        let req: Received<512> = Received::from_message(&m).unwrap();
        match p.handle(path, &req, &body) {
            Handled::Now(a) | Handled::Later(a) => a,
        }
    }

    #[test]
    fn every_resource_is_in_the_table_and_answered() {
        let mut p = Plugtest::default();
        for r in &RESOURCES {
            let m = if r.methods.allows(Code::GET) {
                Code::GET
            } else {
                Code::POST
            };
            let a = answer(&mut p, m, r.path, |_| {});
            assert_ne!(a.code, Some(Code::METHOD_NOT_ALLOWED), "/{}", r.path);
        }
    }

    #[test]
    fn validate_etag_valid_and_if_match() {
        let mut p = Plugtest::default();
        let a = answer(&mut p, Code::GET, "validate", |_| {});
        let etag1 = a.etag.clone().unwrap();
        assert_eq!(a.code, Some(Code::CONTENT));
        let a = answer(&mut p, Code::GET, "validate", |b| {
            b.add_option(OptionNumber::ETAG, &[0, 0, 0, 1]).unwrap();
        });
        assert_eq!(
            (a.code, a.etag.as_deref()),
            (Some(Code::VALID), Some(&etag1[..]))
        );
        assert!(a.payload.is_empty());
        // PUT with the current ETag in If-Match: changed, new ETag.
        let a = answer(&mut p, Code::PUT, "validate", |b| {
            b.add_option(OptionNumber::IF_MATCH, &[0, 0, 0, 1]).unwrap();
            b.payload(b"v2");
        });
        assert_eq!(a.code, Some(Code::CHANGED));
        assert_ne!(a.etag.as_deref(), Some(&etag1[..]));
        // The old ETag no longer validates, nor matches.
        let a = answer(&mut p, Code::GET, "validate", |b| {
            b.add_option(OptionNumber::ETAG, &[0, 0, 0, 1]).unwrap();
        });
        assert_eq!(
            (a.code, a.payload.as_slice()),
            (Some(Code::CONTENT), &b"v2"[..])
        );
        let a = answer(&mut p, Code::PUT, "validate", |b| {
            b.add_option(OptionNumber::IF_MATCH, &[0, 0, 0, 1]).unwrap();
            b.payload(b"v3");
        });
        assert_eq!(a.code, Some(Code::PRECONDITION_FAILED));
    }

    #[test]
    fn create1_once_then_precondition_failed() {
        let mut p = Plugtest::default();
        let put = |b: &mut MessageBuilder<'_, 16>| {
            b.add_empty(OptionNumber::IF_NONE_MATCH).unwrap();
            b.payload(b"x");
        };
        assert_eq!(
            answer(&mut p, Code::PUT, "create1", put).code,
            Some(Code::CREATED)
        );
        assert_eq!(
            answer(&mut p, Code::PUT, "create1", put).code,
            Some(Code::PRECONDITION_FAILED)
        );
        assert_eq!(
            answer(&mut p, Code::DELETE, "create1", |_| {}).code,
            Some(Code::DELETED)
        );
        assert_eq!(
            answer(&mut p, Code::PUT, "create1", put).code,
            Some(Code::CREATED)
        );
    }

    #[test]
    fn multi_format_by_accept() {
        let mut p = Plugtest::default();
        let a = answer(&mut p, Code::GET, "multi-format", |b| {
            b.accept(ContentFormat::XML).unwrap();
        });
        assert_eq!(a.content_format, Some(ContentFormat::XML));
        assert!(a.payload.starts_with(b"<msg>"));
        let a = answer(&mut p, Code::GET, "multi-format", |b| {
            b.accept(ContentFormat::JSON).unwrap();
        });
        assert_eq!(a.code, Some(Code::NOT_ACCEPTABLE));
    }

    #[test]
    fn large_create_slots_are_bounded_and_readable() {
        let mut p = Plugtest::default();
        for i in 0..(CREATED_SLOTS + 2) {
            let a = answer(&mut p, Code::POST, "large-create", |b| {
                b.payload(if i % 2 == 0 { b"even" } else { b"odd!" });
            });
            let n = i % CREATED_SLOTS + 1;
            assert_eq!(a.location_path, Some(format!("large-create/{n}")));
        }
        let a = answer(&mut p, Code::GET, "large-create/2", |_| {});
        assert_eq!(a.payload, b"odd!");
        let a = answer(&mut p, Code::GET, "large-create/9", |_| {});
        assert_eq!(a.code, Some(Code::NOT_FOUND));
    }
}
