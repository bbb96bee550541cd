/*!
What a message is for in the overlay (PROFILE §4, §5, §7, §8).

- **query**: REGISTER, To is a Peer URI, no Contact and no Expires.
- **join**: REGISTER, To = From = Contact = a Peer URI, Expires > 0.
- **notify**: join-shaped, sent by a peer already in the ring; it carries
  the sender's DHT-Link set, which is how it is told apart from a join
  (a joiner has no links yet).
- **leave**: join-shaped with Expires 0.
- **resource registration**: REGISTER, To is a resource URI, with Contacts
  or Expires, From not a Peer URI (From is the AOR).
- **transfer**: the same, but From is a peer's Peer URI (JOIN-9, LEAVE-1).
- **lookup**: REGISTER, To is a resource URI, no Contact and no Expires.
- **plain**: anything else (OPTIONS, MESSAGE, a REGISTER of a user agent
  without Require: dht).

A response carries its request's From and To, so the same rules mostly
apply; what a response cannot show (the request's Contact and Expires) is
guessed from its own, and [`Class::of_response`] says so. Pair a response
with its request where that matters.
*/

use crate::message::{Message, Method, Uri};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Join,
    Query,
    Notify,
    Leave,
    ResourceRegister,
    Lookup,
    Transfer,
    Plain,
}

impl Class {
    /// The name used in JSON output and reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Join => "join",
            Class::Query => "query",
            Class::Notify => "notify",
            Class::Leave => "leave",
            Class::ResourceRegister => "resource-register",
            Class::Lookup => "lookup",
            Class::Transfer => "transfer",
            Class::Plain => "plain",
        }
    }

    /// Classifies a request, or a response by the request fields it echoes.
    pub fn of(msg: &Message<'_>) -> Class {
        if msg.is_request() {
            Class::of_request(msg)
        } else {
            Class::of_response(msg)
        }
    }

    pub fn of_request(msg: &Message<'_>) -> Class {
        if msg.method() != Some(&Method::Register) {
            return Class::Plain;
        }
        if !msg.requires_dht() && msg.dht_peer_id().is_none() {
            return Class::Plain;
        }
        let Some(to) = msg.to() else {
            return Class::Plain;
        };
        let has_contact = msg.contacts().next().is_some();
        let expires = msg.expires();
        let to_id = to.addr.uri.peer_id();
        if to_id.is_some() {
            if !has_contact && expires.is_none() {
                return Class::Query;
            }
            let from_id = msg.from().and_then(|f| f.addr.uri.peer_id());
            let join_shaped = from_id == to_id;
            return match expires {
                Some(0) if join_shaped => Class::Leave,
                _ if join_shaped && msg.dht_links().next().is_some() => Class::Notify,
                _ => Class::Join,
            };
        }
        if !has_contact && expires.is_none() {
            return Class::Lookup;
        }
        if from_is_peer(msg) {
            Class::Transfer
        } else {
            Class::ResourceRegister
        }
    }

    /// A best guess for a response: a join and a notify, and a transfer
    /// and a lookup answered by a peer, look the same from the response
    /// alone (they are reported as join and lookup).
    pub fn of_response(msg: &Message<'_>) -> Class {
        if msg.cseq().map(|c| &c.method) != Some(&Method::Register) {
            return Class::Plain;
        }
        if !msg.supports_dht() && msg.dht_peer_id().is_none() {
            return Class::Plain;
        }
        let Some(to) = msg.to() else {
            return Class::Plain;
        };
        match to.addr.uri.peer_id() {
            Some(to_id) => {
                let from_id = msg.from().and_then(|f| f.addr.uri.peer_id());
                if from_id == Some(to_id) {
                    Class::Join
                } else {
                    Class::Query
                }
            }
            None if from_is_peer(msg) => Class::Lookup,
            None => Class::ResourceRegister,
        }
    }

    /// Does this class change the receiver's state (SEC-1)?
    pub fn changes_state(self) -> bool {
        matches!(
            self,
            Class::Join | Class::Notify | Class::Leave | Class::ResourceRegister | Class::Transfer
        )
    }
}

fn from_is_peer(msg: &Message<'_>) -> bool {
    msg.from().is_some_and(|f| is_peer_uri(&f.addr.uri))
}

/// A Peer URI names a peer: it carries a Peer-ID.
pub fn is_peer_uri(uri: &Uri<'_>) -> bool {
    uri.peer_id().is_some()
}
