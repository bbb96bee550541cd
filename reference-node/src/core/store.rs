/*!
The registrations a peer stores for the keys it is responsible for
(RES-1, RES-2), with the binding rules of RFC 3261 §10.3: each Contact is
a binding with its own expiry; a refresh extends it, `expires=0` or
`Expires: 0` removes it, `Contact: *` with `Expires: 0` removes them all,
and within one Call-ID the CSeq must grow.
*/

use std::collections::BTreeMap;
use std::time::Duration;

use p2psip_wire::{Contact, ContactAddr, Id, Message, Text, Uri, UriParams};

use super::time::{Time, secs_left};

/// One stored resource (a primary or a replica).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// The resource URI, parameters removed.
    pub aor: Uri<'static>,
    /// `Some(n)` for replica n (ID-5).
    pub replica: Option<u32>,
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// The Contact, without its `expires` parameter.
    pub contact: ContactAddr<'static>,
    /// The Contact URI as printed, to compare bindings.
    pub uri: String,
    pub expires_at: Time,
    pub call_id: String,
    pub cseq: u32,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// RFC 3261 §10.3 step 6: `*` must be alone and with Expires: 0.
    #[error("Contact * needs Expires 0 and no other Contact")]
    BadStar,
    /// RFC 3261 §10.3 step 7: an older CSeq for the same Call-ID.
    #[error("CSeq out of order")]
    OutOfOrder,
}

impl StoreError {
    pub fn status(self) -> u16 {
        match self {
            StoreError::BadStar => 400,
            StoreError::OutOfOrder => 500,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    records: BTreeMap<Id, Record>,
}

/// The resource URI a record is kept under: the To URI without parameters
/// or headers (ID-4), as owned data.
pub(crate) fn bare_aor(uri: &Uri<'_>) -> Uri<'static> {
    let mut out = owned_uri(uri);
    out.params = UriParams::default();
    out.headers = None;
    out
}

fn owned_uri(uri: &Uri<'_>) -> Uri<'static> {
    let own = |c: &Text<'_>| c.clone().into_owned();
    Uri {
        scheme: match &uri.scheme {
            p2psip_wire::Scheme::Sip => p2psip_wire::Scheme::Sip,
            p2psip_wire::Scheme::Sips => p2psip_wire::Scheme::Sips,
            p2psip_wire::Scheme::Other(s) => p2psip_wire::Scheme::Other(own(s)),
        },
        user: uri.user.as_ref().map(own),
        password: uri.password.as_ref().map(own),
        host: uri.host.clone().into_owned(),
        port: uri.port,
        params: UriParams {
            peer_id: uri.params.peer_id,
            resource_id: uri.params.resource_id,
            replica: uri.params.replica,
            transport: uri.params.transport.as_ref().map(own),
            user: uri.params.user.as_ref().map(own),
            lr: uri.params.lr,
            other: own(&uri.params.other),
        },
        headers: uri.headers.as_ref().map(own),
        opaque: uri.opaque.as_ref().map(own),
    }
}

/// An owned copy of a Contact without its `expires` parameter.
pub(crate) fn owned_contact(c: &ContactAddr<'_>) -> ContactAddr<'static> {
    ContactAddr {
        addr: p2psip_wire::NameAddr {
            display: c.addr.display.as_ref().map(|d| d.clone().into_owned()),
            uri: owned_uri(&c.addr.uri),
        },
        expires: None,
        q: c.q.as_ref().map(|q| q.clone().into_owned()),
        other: c.other.clone().into_owned(),
    }
}

impl Store {
    /// Applies a REGISTER's Contacts to the record at `key` (RFC 3261
    /// §10.3 steps 6-8). `default_expires` applies to Contacts without
    /// an expiry of their own when the request has no Expires.
    pub fn apply(
        &mut self,
        key: Id,
        aor: &Uri<'_>,
        replica: Option<u32>,
        req: &Message<'_>,
        now: Time,
        default_expires: u32,
    ) -> Result<(), StoreError> {
        let header_expires = req.expires();
        let call_id = req.call_id().unwrap_or("");
        let cseq = req.cseq().map_or(0, |c| c.seq);
        let contacts: Vec<&Contact<'_>> = req.contacts().collect();
        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(StoreError::BadStar);
            }
            if let Some(rec) = self.records.get(&key) {
                check_order(rec, call_id, cseq, None)?;
            }
            self.records.remove(&key);
            return Ok(());
        }
        let rec = self.records.entry(key).or_insert_with(|| Record {
            aor: bare_aor(aor),
            replica,
            bindings: Vec::new(),
        });
        for c in &contacts {
            let Contact::Addr(a) = c else { continue };
            let uri = a.addr.uri.to_string();
            check_order(rec, call_id, cseq, Some(&uri))?;
        }
        for c in contacts {
            let Contact::Addr(a) = c else { continue };
            let uri = a.addr.uri.to_string();
            let secs = a.expires.or(header_expires).unwrap_or(default_expires);
            rec.bindings.retain(|b| b.uri != uri);
            if secs > 0 {
                rec.bindings.push(Binding {
                    contact: owned_contact(a),
                    uri,
                    expires_at: now + Duration::from_secs(secs.into()),
                    call_id: call_id.to_owned(),
                    cseq,
                });
            }
        }
        if rec.bindings.is_empty() {
            self.records.remove(&key);
        }
        Ok(())
    }

    /// The live Contacts at `key`, each with `expires` = seconds left.
    pub fn contacts(&self, key: &Id, now: Time) -> Vec<ContactAddr<'static>> {
        self.records
            .get(key)
            .map(|r| live_contacts(r, now))
            .unwrap_or_default()
    }

    pub fn get(&self, key: &Id) -> Option<&Record> {
        self.records.get(key)
    }

    pub fn remove(&mut self, key: &Id) -> Option<Record> {
        self.records.remove(key)
    }

    /// The keys for which `keep` is false.
    pub fn keys_where(&self, mut pick: impl FnMut(&Id) -> bool) -> Vec<Id> {
        self.records.keys().filter(|k| pick(k)).copied().collect()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Id> {
        self.records.keys()
    }

    /// Drops lapsed bindings and empty records.
    pub fn expire(&mut self, now: Time) {
        self.records.retain(|_, r| {
            r.bindings.retain(|b| b.expires_at > now);
            !r.bindings.is_empty()
        });
    }

    pub fn next_expiry(&self) -> Option<Time> {
        self.records
            .values()
            .flat_map(|r| r.bindings.iter().map(|b| b.expires_at))
            .min()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn bindings(&self) -> usize {
        self.records.values().map(|r| r.bindings.len()).sum()
    }

    pub fn memory(&self) -> usize {
        self.records
            .values()
            .map(|r| {
                64 + std::mem::size_of::<Record>()
                    + r.bindings.len()
                        * (std::mem::size_of::<Binding>()
                            + 2 * r.bindings.first().map_or(0, |b| b.uri.len()))
            })
            .sum()
    }
}

/// The Contacts of a record that are still live, with `expires` set to the
/// seconds left.
pub(crate) fn live_contacts(r: &Record, now: Time) -> Vec<ContactAddr<'static>> {
    r.bindings
        .iter()
        .filter(|b| b.expires_at > now)
        .map(|b| {
            let mut c = b.contact.clone();
            c.expires = Some(secs_left(now, b.expires_at));
            c
        })
        .collect()
}

/// RFC 3261 §10.3 step 7: same Call-ID needs a higher CSeq (an equal one
/// is accepted: retransmissions never get here, see TXN-2, and copies of
/// one registration reach several holders with the same CSeq).
fn check_order(
    rec: &Record,
    call_id: &str,
    cseq: u32,
    uri: Option<&str>,
) -> Result<(), StoreError> {
    let clash = rec
        .bindings
        .iter()
        .filter(|b| uri.is_none_or(|u| b.uri == u))
        .any(|b| b.call_id == call_id && b.cseq > cseq);
    if clash {
        Err(StoreError::OutOfOrder)
    } else {
        Ok(())
    }
}
