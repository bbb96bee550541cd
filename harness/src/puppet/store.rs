/*!
What a puppet keeps when it answers resource requests by itself (`auto =
["store"]`): a small registrar keyed by Resource-ID, so that a puppet in
a ring can hold copies an IUT places on it (C-R1, C-R2), receive
transfers (JOIN-9, LEAVE-1) and answer lookups as a holder would.

From the puppet's [`View`](super::View): a resource registration or a
lookup for a key it is not responsible for (ID-6) gets a 302 towards the
key (QUERY-2); one it is responsible for is stored (RFC 3261 §10.3:
`expires` per Contact, `Expires: 0` or `Contact: *` removes) and
answered 200 with the current Contacts, or looked up (200, or 404 when
nothing is stored, RES-2). A transfer is stored whatever the range, as a
peer accepts what a leaving predecessor hands over.
*/

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2psip_wire::resource::{canonical_text, key_of};
use p2psip_wire::{Class, Contact, Id, Message, Uri};

/// One copy the puppet holds.
#[derive(Debug, Clone)]
pub struct Held {
    /// The canonical resource URI (ID-4), without the replica number.
    pub aor: String,
    /// `Some(n)` for replica n.
    pub replica: Option<u32>,
    /// (Contact URI, expiry).
    pub bindings: Vec<(Uri<'static>, Instant)>,
    /// Who placed it last, and how (registration or transfer).
    pub from: SocketAddr,
    pub class: Class,
}

impl Held {
    /// The live Contacts with their seconds left.
    pub fn live(&self, now: Instant) -> Vec<(Uri<'static>, u32)> {
        self.bindings
            .iter()
            .filter(|(_, t)| *t > now)
            .map(|(u, t)| (u.clone(), t.duration_since(now).as_secs() as u32))
            .collect()
    }
}

/// The copies a puppet holds, by Resource-ID.
#[derive(Debug, Default)]
pub struct Store {
    held: HashMap<Id, Held>,
}

impl Store {
    /// Applies a registration or transfer to the copy at `key`.
    pub fn apply(&mut self, key: Id, msg: &Message<'_>, from: SocketAddr, now: Instant) {
        let Some(to) = msg.to() else { return };
        let uri = &to.addr.uri;
        let header = msg.expires();
        let star = msg.contacts().any(|c| matches!(c, Contact::Star));
        if star && header == Some(0) {
            self.held.remove(&key);
            return;
        }
        let h = self.held.entry(key).or_insert_with(|| Held {
            aor: canonical_text(&bare(uri)),
            replica: uri.params.replica,
            bindings: Vec::new(),
            from,
            class: Class::of_request(msg),
        });
        h.from = from;
        h.class = Class::of_request(msg);
        for c in msg.contact_addrs() {
            let secs = c.expires.or(header).unwrap_or(3600);
            let u = c.addr.uri.clone().into_owned();
            h.bindings.retain(|(b, _)| b.to_string() != u.to_string());
            if secs > 0 {
                h.bindings
                    .push((u, now + Duration::from_secs(u64::from(secs))));
            }
        }
        h.bindings.retain(|(_, t)| *t > now);
        if h.bindings.is_empty() {
            self.held.remove(&key);
        }
    }

    /// The copy at `key`, when it has live bindings.
    pub fn get(&self, key: &Id, now: Instant) -> Option<Held> {
        self.held
            .get(key)
            .filter(|h| h.bindings.iter().any(|(_, t)| *t > now))
            .cloned()
    }
}

fn bare(uri: &Uri<'_>) -> Uri<'static> {
    let mut u = uri.clone().into_owned();
    u.params = Default::default();
    u.headers = None;
    u
}

/// The key a resource request is about (RES-3: computed, never read
/// from a `resource-ID` parameter).
pub fn key_of_request(msg: &Message<'_>) -> Option<Id> {
    msg.to().map(|t| key_of(&t.addr.uri))
}
