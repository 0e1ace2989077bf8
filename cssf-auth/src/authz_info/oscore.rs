//! `/authz-info` for the OSCORE profile (RFC 9203 §4.1 - §4.3) and the
//! bindings of OSCORE contexts to tokens (§4.4, §5).

use core::time::Duration;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthzInfo, Response};
use crate::accounting::AuthEvent;
use crate::aif::ScopeMapper;
use crate::cose::KeyResolver;
use crate::oscore_profile::{
    candidate, context_input, emit_response, nonce_digest, AuthzInfoRequest, Binding,
    OscoreContextInput, OscoreError, MAX_RECIPIENT_ID, NONCE2_LEN, NONCE_HISTORY,
};
use crate::pop::{Kid, PopKey};
use crate::Error;

/// Whether a Recipient ID (with an ID Context, if any) is in use outside
/// the contexts bound to tokens.
pub type InUse = dyn Fn(&[u8], Option<&[u8]>) -> bool;

/// What the caller of [`AuthzInfo::post_oscore`] supplies besides the
/// request: the clocks, the RNG for `nonce2`, and the Recipient IDs it
/// uses outside this RS's token contexts (e.g. EDHOC or provisioned
/// OSCORE contexts), which `ace_server_recipientid` must not repeat.
pub struct OscorePost<'a, R> {
    /// Monotonic time.
    pub now: Duration,
    /// The wall clock (seconds since the epoch), if the device has one.
    pub wall: Option<u64>,
    /// Randomness for `nonce2`.
    pub rng: &'a mut R,
    /// True for a Recipient ID (with this ID Context, if any) in use
    /// elsewhere, including contexts the caller still keeps after their
    /// binding ended. Asked once without an ID Context before the token
    /// is verified (so that a POST refused for want of an ID stores
    /// nothing), then with the material's `contextId`.
    pub in_use: &'a InUse,
}

impl<
        'k,
        K: KeyResolver + ?Sized,
        M: ScopeMapper,
        const N: usize,
        const R: usize,
        const E: usize,
    > AuthzInfo<'k, K, M, N, R, E>
{
    /// Handles `POST /authz-info` of the OSCORE profile (RFC 9203 §4.1):
    /// `payload` is the `application/ace+cbor` map `{1: access_token, 40:
    /// nonce1, 43: ace_client_recipientid}`. The token is verified and
    /// stored as by [`AuthzInfo::post`] (its `cnf` must be `osc`); the
    /// answer (§4.2) is 2.01 with `{42: nonce2, 44:
    /// ace_server_recipientid}` written to `out` (at most
    /// [`MAX_RESPONSE_LEN`](crate::oscore_profile::MAX_RESPONSE_LEN)
    /// bytes), and the context derivation inputs (§4.3) are returned: key
    /// an OSCORE context with them (cssf-coap `SecurityContext::new`), and
    /// have requests under it authorized by [`Self::oscore_token`] or the
    /// `Authorizer` (`Proof::Oscore`).
    ///
    /// The same token posted again (a client that lost its context) with
    /// a fresh `nonce1` is not verified again: it gets a new context,
    /// which replaces the token's previous one
    /// ([`AuthEvent::OscoreContextRemoved`]); with a `nonce1` among the
    /// last [`NONCE_HISTORY`] used with it, it is refused
    /// ([`OscoreError::NonceReplay`]). Errors are answered as by
    /// [`AuthzInfo::post`]. `payload` is zeroized before returning.
    pub fn post_oscore<G: RngCore + CryptoRng>(
        &mut self,
        ctx: OscorePost<'_, G>,
        payload: &mut [u8],
        out: &mut [u8],
    ) -> (Response, Option<OscoreContextInput>) {
        let result = self.accept_oscore(ctx, payload, out);
        zeroize::Zeroize::zeroize(payload);
        let (result, input) = match result {
            Ok((kid, replaced, len, input)) => (Ok((kid, replaced, len)), Some(input)),
            Err(e) => (Err(e), None),
        };
        let r = self.finish(result, out);
        self.sync_oscore();
        (r, input)
    }

    fn accept_oscore<G: RngCore + CryptoRng>(
        &mut self,
        ctx: OscorePost<'_, G>,
        payload: &mut [u8],
        out: &mut [u8],
    ) -> Result<(Kid, bool, usize, OscoreContextInput), Error> {
        let req = AuthzInfoRequest::parse(payload)?;
        let mut nonce1 = [0u8; crate::oscore_profile::MAX_NONCE];
        let n1 = nonce1
            .get_mut(..req.nonce1.len())
            .ok_or(OscoreError::FieldLength)?;
        n1.copy_from_slice(req.nonce1);
        let n1_len = req.nonce1.len();
        let id1 = crate::bytes::Bytes::<MAX_RECIPIENT_ID>::from_slice(req.client_recipient_id)?;
        let range = req.token.clone();
        let token = payload.get_mut(range).ok_or(Error::Malformed)?;
        let nonce1 = nonce1.get(..n1_len).unwrap_or(&[]);
        let n1_digest = nonce_digest(nonce1);
        let mut nonce2 = [0u8; NONCE2_LEN];
        ctx.rng.fill_bytes(&mut nonce2);

        // The same token again: a new context for it, no second record.
        let digest: [u8; 32] = Sha256::digest(&*token).into();
        let again = self
            .store
            .iter()
            .find(|r| r.digest == digest && matches!(r.pop, PopKey::Oscore(_)))
            .map(|r| (Kid::from_slice(r.kid()), r.lifetime));
        // Every check that can fail comes before the store changes: a
        // refused POST leaves no state.
        if out.len() < crate::oscore_profile::MAX_RESPONSE_LEN {
            return Err(Error::BufferTooSmall {
                needed: crate::oscore_profile::MAX_RESPONSE_LEN,
            });
        }
        let _ = self.choose_recipient_id(id1.as_slice(), None, ctx.in_use)?;
        let (kid, replaced) = match again {
            Some((kid, lifetime)) => {
                let kid = kid?;
                if lifetime.expired(ctx.now, ctx.wall, self.config.leeway_secs) {
                    return Err(Error::Expired);
                }
                if self
                    .binding_of(kid.as_slice())
                    .is_some_and(|b| b.nonce_seen(&n1_digest))
                {
                    return Err(OscoreError::NonceReplay.into());
                }
                (kid, false)
            }
            None => self.accept(ctx.now, ctx.wall, token, true)?,
        };
        // Bindings of tokens the store just let go.
        self.sync_oscore();
        let material = match self.store.get(kid.as_slice()).map(|r| &r.pop) {
            Some(PopKey::Oscore(m)) => m.clone(),
            _ => return Err(OscoreError::WrongProfile.into()),
        };
        let id_context = material.context_id.as_ref().map(|c| c.as_slice());
        let id2 = self.choose_recipient_id(id1.as_slice(), id_context, ctx.in_use)?;
        let len = emit_response(&nonce2, id2.as_slice(), out)?;
        let input = context_input(&material, nonce1, &nonce2, id1.as_slice(), id2.as_slice())?;
        // One context per token: a new one replaces the old (whose nonce1s
        // stay remembered).
        let mut nonces = [None; NONCE_HISTORY];
        if let Some(i) = self.binding_index(kid.as_slice()) {
            if let Some(old) = self.oscore.get_mut(i).and_then(Option::take) {
                nonces = old.nonces;
                self.events.push(AuthEvent::OscoreContextRemoved {
                    recipient_id: old.recipient_id,
                    id_context: old.id_context,
                });
            }
        }
        nonces.rotate_right(1);
        if let Some(first) = nonces.first_mut() {
            *first = Some(n1_digest);
        }
        let binding = Binding {
            token: kid,
            ms_digest: material.digest(),
            context: input.digest(),
            recipient_id: id2,
            id_context: material.context_id,
            nonces,
        };
        // There is a free slot: one binding per stored token, and the
        // store holds N.
        let slot = self
            .oscore
            .iter_mut()
            .find(|b| b.is_none())
            .ok_or(Error::StoreFull)?;
        *slot = Some(binding);
        Ok((kid, replaced, len, input))
    }

    /// An `ace_server_recipientid` for a client that chose `id1`: the first
    /// one- or two-byte ID that is not `id1`, not the Recipient ID of a
    /// bound context, and not `in_use`.
    fn choose_recipient_id(
        &self,
        id1: &[u8],
        id_context: Option<&[u8]>,
        in_use: &InUse,
    ) -> Result<crate::bytes::Bytes<MAX_RECIPIENT_ID>, Error> {
        let mut n = 0u32;
        while let Some(c) = candidate(n) {
            n += 1;
            let id = c.as_slice();
            if id == id1
                || self
                    .oscore
                    .iter()
                    .flatten()
                    .any(|b| b.recipient_id.as_slice() == id)
                || in_use(id, id_context)
            {
                continue;
            }
            return Ok(c);
        }
        Err(OscoreError::NoRecipientId.into())
    }

    fn binding_index(&self, kid: &[u8]) -> Option<usize> {
        self.oscore
            .iter()
            .position(|b| b.as_ref().is_some_and(|b| b.token.as_slice() == kid))
    }

    fn binding_of(&self, kid: &[u8]) -> Option<&Binding> {
        self.oscore
            .iter()
            .flatten()
            .find(|b| b.token.as_slice() == kid)
    }

    /// The one way bindings end: each whose token is gone (expired,
    /// evicted, displaced) or now holds another Master Secret is removed,
    /// with an [`AuthEvent::OscoreContextRemoved`].
    pub(super) fn sync_oscore(&mut self) {
        for slot in self.oscore.iter_mut() {
            let live = slot.as_ref().is_some_and(|b| {
                self.store
                    .get(b.token.as_slice())
                    .and_then(|r| r.pop_digest())
                    .is_some_and(|d| bool::from(d.ct_eq(&b.ms_digest)))
            });
            if live {
                continue;
            }
            if let Some(b) = slot.take() {
                self.events.push(AuthEvent::OscoreContextRemoved {
                    recipient_id: b.recipient_id,
                    id_context: b.id_context,
                });
            }
        }
    }

    /// The kid of the token bound to the OSCORE context whose Recipient ID
    /// (the kid of requests under it) is `recipient_id`, with ID Context
    /// `id_context`: give it to [`Self::authorize`] for a request verified
    /// under that context. `None` for a context bound to no live token.
    pub fn oscore_token(&self, recipient_id: &[u8], id_context: Option<&[u8]>) -> Option<Kid> {
        self.oscore
            .iter()
            .flatten()
            .find(|b| b.matches(recipient_id, id_context))
            .map(|b| b.token)
    }

    /// The token kid and context digest of a binding, for the `Authorizer`.
    pub(crate) fn oscore_grant(
        &self,
        recipient_id: &[u8],
        id_context: Option<&[u8]>,
    ) -> Option<(Kid, [u8; 32])> {
        self.oscore
            .iter()
            .flatten()
            .find(|b| b.matches(recipient_id, id_context))
            .map(|b| (b.token, b.context))
    }

    /// Whether the binding of token `kid` is still the context `context`.
    pub(crate) fn oscore_bound(&self, kid: &[u8], context: &[u8; 32]) -> bool {
        self.binding_of(kid)
            .is_some_and(|b| bool::from(b.context.ct_eq(context)))
    }

    /// OSCORE contexts bound to tokens.
    pub fn oscore_bindings(&self) -> usize {
        self.oscore.iter().flatten().count()
    }
}
