//! The one driver shape of the workspace, written once: a `Driver` trait
//! whose impls for the DTLS client and endpoint, the CoAP endpoint and the
//! lite CoAP client are one macro with one body (so their five verbs must
//! have the same shape, or this file does not compile), and one generic
//! loop that drives every pair of them through a lossy in-memory link, its
//! timers included.
#![allow(
    clippy::std_instead_of_core,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::time::Duration;

use cssf_coap::endpoint::{Config as CoapConfig, Event as CoapEvent, Methods, Request, Resource};
use cssf_coap::lite::{Client as Lite, Config as LiteConfig, Event as LiteEvent};
use cssf_coap::{Code, MessageBuilder, MessageType};
use cssf_dtls::{
    Client as DtlsClient, ClientBuilder, Config as DtlsConfig, EndpointBuilder, Event as DtlsEvent,
    StaticPsk,
};
use cssf_netsim::SimRng;

/// `handle_datagram(now, peer, bytes)`, `handle_timeout(now)`,
/// `poll_transmit(now, buf)`, `poll_event()`, `poll_timeout()`: the verbs
/// every sans-IO type of the workspace has, with one meaning of `Err` (the
/// caller's misuse; a peer's bad input is dropped, counted, or an event).
trait Driver {
    type Addr: Clone;
    type Error: core::fmt::Debug;
    type Event<'a>
    where
        Self: 'a;
    fn handle_datagram(
        &mut self,
        now: Duration,
        from: Self::Addr,
        data: &mut [u8],
    ) -> Result<(), Self::Error>;
    fn handle_timeout(&mut self, now: Duration);
    /// `(to, len)` of the next datagram.
    fn poll_transmit(
        &mut self,
        now: Duration,
        buf: &mut [u8],
    ) -> Result<Option<(Self::Addr, usize)>, Self::Error>;
    fn poll_event(&mut self) -> Option<Self::Event<'_>>;
    fn poll_timeout(&self) -> Option<Duration>;
}

/// One body for every type: each verb calls the type's own method of the
/// same name with the same arguments.
macro_rules! driver {
    ($ty:ty, $addr:ty, $err:ty, $ev:ty) => {
        impl Driver for $ty {
            type Addr = $addr;
            type Error = $err;
            type Event<'a> = $ev;
            fn handle_datagram(
                &mut self,
                now: Duration,
                from: $addr,
                data: &mut [u8],
            ) -> Result<(), $err> {
                <$ty>::handle_datagram(self, now, from, data)
            }
            fn handle_timeout(&mut self, now: Duration) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(
                &mut self,
                now: Duration,
                buf: &mut [u8],
            ) -> Result<Option<($addr, usize)>, $err> {
                Ok(<$ty>::poll_transmit(self, now, buf)?.map(|t| (t.to, t.len)))
            }
            fn poll_event(&mut self) -> Option<Self::Event<'_>> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Duration> {
                <$ty>::poll_timeout(self)
            }
        }
    };
}

type Dtls = DtlsClient<u8, SimRng>;
type DtlsServer = cssf_dtls::Endpoint<u8, StaticPsk<'static>, SimRng, 4>;
type Coap = cssf_coap::Endpoint<u8, SimRng>;
type LiteClient = Lite<SimRng, 256, u8>;

driver!(Dtls, u8, cssf_dtls::Error, DtlsEvent<u8>);
driver!(DtlsServer, u8, cssf_dtls::Error, DtlsEvent<u8>);
driver!(Coap, u8, cssf_coap::Error, CoapEvent<u8, 1152>);
driver!(LiteClient, u8, cssf_coap::Error, LiteEvent<'a>);

const CLIENT: u8 = 1;
const SERVER: u8 = 2;
const KEYS: [(&[u8], &[u8]); 1] = [(b"Client_identity", b"secretPSK")];
static RESOURCES: [Resource; 1] = [Resource::new("hello", Methods::GET)];

/// The one driver loop, for any pair: moves datagrams both ways (the
/// first one the client sends is lost, so a retransmission timer has to
/// fire), advances time to the earliest timer and calls `handle_timeout`,
/// and lets `app` act on events, until `app` says done. Returns the time
/// it took.
fn drive<C: Driver, S: Driver>(
    client: &mut C,
    server: &mut S,
    to_server: C::Addr,
    to_client: S::Addr,
    mut app: impl FnMut(&mut C, &mut S, Duration) -> bool,
) -> Duration {
    let mut now = Duration::ZERO;
    let mut buf = [0u8; 1500];
    let mut lost_first = false;
    for _ in 0..200 {
        if app(client, server, now) {
            return now;
        }
        let mut moved = false;
        while let Some((_, len)) = client.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            if !lost_first {
                lost_first = true;
                continue;
            }
            server
                .handle_datagram(now, to_client.clone(), &mut buf[..len])
                .unwrap();
        }
        while let Some((_, len)) = server.poll_transmit(now, &mut buf).unwrap() {
            moved = true;
            client
                .handle_datagram(now, to_server.clone(), &mut buf[..len])
                .unwrap();
        }
        if !moved {
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            now = next.map_or(now, |t| t.max(now));
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    panic!("the exchange did not finish");
}

#[test]
fn one_loop_drives_a_dtls_client_and_endpoint() {
    let mut client: Dtls = ClientBuilder::new(DtlsConfig::default(), SERVER, SimRng::new(1))
        .psk(KEYS[0].0, KEYS[0].1)
        .start(Duration::ZERO)
        .unwrap();
    let mut server: DtlsServer =
        EndpointBuilder::new(DtlsConfig::default(), StaticPsk::new(&KEYS), SimRng::new(2))
            .build(Duration::ZERO)
            .unwrap();
    let (mut sent, mut echoed) = (false, None);
    let took = drive(&mut client, &mut server, SERVER, CLIENT, |c, s, now| {
        while let Some(e) = Driver::poll_event(c) {
            match e {
                DtlsEvent::Connected { .. } if !sent => {
                    c.send(now, b"ping").unwrap();
                    sent = true;
                }
                DtlsEvent::ApplicationData { .. } => {
                    let mut b = [0u8; 64];
                    let n = c.recv(&mut b).unwrap().unwrap();
                    echoed = Some(b[..n].to_vec());
                }
                DtlsEvent::Closed { reason, .. } => panic!("client closed: {reason:?}"),
                _ => {}
            }
        }
        while let Some(e) = Driver::poll_event(s) {
            if let DtlsEvent::ApplicationData { handle, .. } = e {
                let mut b = [0u8; 64];
                let n = s.recv(handle, &mut b).unwrap().unwrap();
                s.send(now, handle, &b[..n]).unwrap();
            }
        }
        echoed.is_some()
    });
    assert_eq!(echoed.as_deref(), Some(&b"ping"[..]));
    // The lost ClientHello came back only through `handle_timeout`.
    assert!(took >= DtlsConfig::default().retransmit_initial, "{took:?}");
}

/// A CoAP server endpoint answering GET /hello with "world".
fn hello_server(s: &mut Coap, now: Duration) {
    while let Some(e) = Driver::poll_event(s) {
        if let CoapEvent::Request { id, .. } = e {
            let r = cssf_coap::endpoint::Response::new(Code::CONTENT).payload(b"world");
            s.respond(now, id, &r).unwrap();
        }
    }
}

#[test]
fn one_loop_drives_two_coap_endpoints() {
    let mut client: Coap = cssf_coap::Endpoint::new(CoapConfig::default(), SimRng::new(3), &[]);
    let mut server: Coap =
        cssf_coap::Endpoint::new(CoapConfig::default(), SimRng::new(4), &RESOURCES);
    let mut asked = false;
    let mut got = None;
    let took = drive(&mut client, &mut server, SERVER, CLIENT, |c, s, now| {
        if !asked {
            c.request(now, SERVER, &Request::get("hello")).unwrap();
            asked = true;
        }
        hello_server(s, now);
        while let Some(e) = Driver::poll_event(c) {
            if let CoapEvent::Response { response, .. } = e {
                got = Some(response.payload().to_vec());
            }
        }
        got.is_some()
    });
    assert_eq!(got.as_deref(), Some(&b"world"[..]));
    assert!(took >= CoapConfig::default().ack_timeout, "{took:?}");
}

#[test]
fn one_loop_drives_the_lite_client_and_a_coap_endpoint() {
    let mut client: LiteClient = Lite::with_server(LiteConfig::default(), SimRng::new(5), SERVER);
    let mut server: Coap =
        cssf_coap::Endpoint::new(CoapConfig::default(), SimRng::new(6), &RESOURCES);
    let mut asked = false;
    let mut got = None;
    let took = drive(&mut client, &mut server, SERVER, CLIENT, |c, s, now| {
        if !asked {
            let mut get = MessageBuilder::<1>::new(MessageType::Con, Code::GET, 0);
            get.uri_path("hello").unwrap();
            c.request(now, &get).unwrap();
            asked = true;
        }
        hello_server(s, now);
        if let Some(e) = Driver::poll_event(c) {
            match e {
                LiteEvent::Response(m) => got = Some(m.payload().to_vec()),
                other => panic!("{other:?}"),
            }
        }
        got.is_some()
    });
    assert_eq!(got.as_deref(), Some(&b"world"[..]));
    assert!(took >= LiteConfig::default().ack_timeout, "{took:?}");
}
