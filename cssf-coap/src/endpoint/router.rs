//! The server's resource table (RFC 7252 §5.8 method dispatch, §5.9.2.4/5
//! 4.04 and 4.05) with the RFC 6690 attributes `/.well-known/core` lists.

use crate::wire::Code;

/// A set of request methods (bit `n` = method code 0.0n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Methods(pub u8);

impl Methods {
    /// No method.
    pub const NONE: Methods = Methods(0);
    /// GET.
    pub const GET: Methods = Methods(1 << 1);
    /// POST.
    pub const POST: Methods = Methods(1 << 2);
    /// PUT.
    pub const PUT: Methods = Methods(1 << 3);
    /// DELETE.
    pub const DELETE: Methods = Methods(1 << 4);
    /// FETCH.
    pub const FETCH: Methods = Methods(1 << 5);
    /// GET, POST, PUT and DELETE.
    pub const ALL: Methods = Methods(0b1_1110);

    /// Both sets.
    pub const fn union(self, other: Methods) -> Methods {
        Methods(self.0 | other.0)
    }

    /// Whether `code` (a request code) is in the set.
    pub const fn allows(self, code: Code) -> bool {
        code.class() == 0 && code.detail() < 8 && self.0 & (1 << code.detail()) != 0
    }
}

impl core::ops::BitOr for Methods {
    type Output = Methods;
    fn bitor(self, rhs: Methods) -> Methods {
        self.union(rhs)
    }
}

/// One resource the server hosts: its path, the methods it takes and the
/// link-format attributes it is listed with.
///
/// ```
/// use cssf_coap::endpoint::{Methods, Resource};
/// static RESOURCES: [Resource; 2] = [
///     Resource::new("sensors/temp", Methods::GET).rt("temperature-c").ct(0).observable(),
///     Resource::new("actuators/led", Methods::GET.union(Methods::PUT)).echo(),
/// ];
/// assert!(RESOURCES[0].obs);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The path without leading `/`, segments separated by `/`.
    pub path: &'static str,
    /// Methods the resource accepts (others get 4.05).
    pub methods: Methods,
    /// Resource type (`rt`).
    pub rt: Option<&'static str>,
    /// Interface description (`if`).
    pub if_: Option<&'static str>,
    /// Content-Format (`ct`).
    pub ct: Option<u16>,
    /// Observable (`obs`): GET with Observe 0 registers an observer.
    pub obs: bool,
    /// Maximum size estimate (`sz`).
    pub sz: Option<u32>,
    /// Requests need a fresh Echo value (RFC 9175 §2.4): the endpoint
    /// answers 4.01 with an Echo option otherwise.
    pub echo: bool,
    /// Every notification is confirmable (otherwise every
    /// [`Config::notify_con_every`](super::Config::notify_con_every)-th).
    pub con_notify: bool,
    /// Requests must be OSCORE-protected (RFC 8613; listed with the `osc`
    /// attribute, §9): the endpoint answers any other request 4.01
    /// itself. Without the `oscore` feature no request is, so every
    /// request to such a resource gets 4.01.
    pub oscore: bool,
}

impl Resource {
    /// A resource with no attributes.
    pub const fn new(path: &'static str, methods: Methods) -> Self {
        Resource {
            path,
            methods,
            rt: None,
            if_: None,
            ct: None,
            obs: false,
            sz: None,
            echo: false,
            con_notify: false,
            oscore: false,
        }
    }

    /// Sets `rt`.
    pub const fn rt(mut self, rt: &'static str) -> Self {
        self.rt = Some(rt);
        self
    }

    /// Sets `if`.
    pub const fn if_(mut self, if_: &'static str) -> Self {
        self.if_ = Some(if_);
        self
    }

    /// Sets `ct`.
    pub const fn ct(mut self, ct: u16) -> Self {
        self.ct = Some(ct);
        self
    }

    /// Sets `sz`.
    pub const fn sz(mut self, sz: u32) -> Self {
        self.sz = Some(sz);
        self
    }

    /// Marks the resource observable.
    pub const fn observable(mut self) -> Self {
        self.obs = true;
        self
    }

    /// Marks the resource observable with every notification confirmable
    /// (RFC 7641 §4.5 lets the server choose; by default most are NON).
    pub const fn observable_con(mut self) -> Self {
        self.obs = true;
        self.con_notify = true;
        self
    }

    /// Requires a fresh Echo value on every request.
    pub const fn echo(mut self) -> Self {
        self.echo = true;
        self
    }

    /// Requires OSCORE: a request that is not OSCORE-protected gets 4.01
    /// (the handler never sees it); see [`Resource::oscore`](Resource#structfield.oscore).
    pub const fn requires_oscore(mut self) -> Self {
        self.oscore = true;
        self
    }

    /// The path without a leading `/`.
    pub fn trimmed_path(&self) -> &'static str {
        self.path.strip_prefix('/').unwrap_or(self.path)
    }

    /// Whether the Uri-Path segments `segs` name this resource.
    pub fn matches<'s>(&self, segs: impl Iterator<Item = &'s [u8]>) -> bool {
        path_matches(self.trimmed_path(), segs)
    }
}

/// Whether Uri-Path segments equal the `/`-separated `path` (no leading `/`).
pub(crate) fn path_matches<'s>(path: &str, mut segs: impl Iterator<Item = &'s [u8]>) -> bool {
    if path.is_empty() {
        return segs.next().is_none();
    }
    for want in path.split('/') {
        match segs.next() {
            Some(got) if got == want.as_bytes() => {}
            _ => return false,
        }
    }
    segs.next().is_none()
}

/// How a request is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/.well-known/core`.
    WellKnownCore,
    /// Resource at this index of the table.
    Resource(usize),
    /// 4.04.
    NotFound,
    /// 4.05.
    MethodNotAllowed,
}

/// Routes a request by path and method.
pub(crate) fn route<'s>(
    table: &[Resource],
    code: Code,
    segs: impl Iterator<Item = &'s [u8]> + Clone,
) -> Route {
    if path_matches(".well-known/core", segs.clone()) {
        return if code == Code::GET {
            Route::WellKnownCore
        } else {
            Route::MethodNotAllowed
        };
    }
    match table.iter().position(|r| r.matches(segs.clone())) {
        None => Route::NotFound,
        Some(i) => match table.get(i) {
            Some(r) if r.methods.allows(code) => Route::Resource(i),
            _ => Route::MethodNotAllowed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static T: [Resource; 2] = [
        Resource::new("a/b", Methods::GET),
        Resource::new("c", Methods::ALL),
    ];

    fn segs<'a>(p: &'a [&'a str]) -> impl Iterator<Item = &'a [u8]> + Clone {
        p.iter().map(|s| s.as_bytes())
    }

    #[test]
    fn routes() {
        assert_eq!(route(&T, Code::GET, segs(&["a", "b"])), Route::Resource(0));
        assert_eq!(
            route(&T, Code::PUT, segs(&["a", "b"])),
            Route::MethodNotAllowed
        );
        assert_eq!(route(&T, Code::GET, segs(&["a"])), Route::NotFound);
        assert_eq!(
            route(&T, Code::GET, segs(&["a", "b", "c"])),
            Route::NotFound
        );
        assert_eq!(route(&T, Code::DELETE, segs(&["c"])), Route::Resource(1));
        assert_eq!(
            route(&T, Code::GET, segs(&[".well-known", "core"])),
            Route::WellKnownCore
        );
        assert_eq!(
            route(&T, Code::POST, segs(&[".well-known", "core"])),
            Route::MethodNotAllowed
        );
    }
}
