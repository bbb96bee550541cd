/*!
Queries and routing (QUERY-1..5): answering for keys this peer is
responsible for, and redirecting towards the key otherwise.
*/

use p2psip_wire::build::{peer_uri, reason_phrase};
use p2psip_wire::{Header, Id};

use super::inbound::Req;
use super::{Fault, Node, Phase};

impl Node {
    /// A query for the key in To's `peer-ID` (PROFILE §4).
    pub(super) fn handle_query(&mut self, req: &Req<'_, '_>) {
        let Some(key) = req.msg.to().and_then(|t| t.addr.uri.peer_id()) else {
            let r = self.p2p_response(req, 400, "Bad Request (query without a key)", false);
            self.send_response(req, r, false);
            return;
        };
        if self.faults().has(Fault::QueryMutates) {
            self.query_mutates(req);
        }
        // QUERY-1: nothing below changes the routing state.
        let responsible = self.table().is_some_and(|t| t.is_responsible(&key));
        if responsible {
            // QUERY-3
            let code = if key == self.me.peer.id { 200 } else { 404 };
            let r = self.p2p_response(req, code, reason_phrase(code), true);
            self.send_response(req, r, false);
        } else {
            self.redirect(req, &key, false);
        }
    }

    /// QUERY-2 / JOIN-3: `302` with a single Contact, the known peer
    /// closest to the key in (me, key], else S1; with the link set
    /// (QUERY-4). `keep`: the request changes state when answered 200, so
    /// its answer is kept for retransmissions (TXN-2).
    pub(super) fn redirect(&mut self, req: &Req<'_, '_>, key: &Id, keep: bool) {
        let now = self.now;
        let target = self.table().and_then(|t| {
            if self.faults().has(Fault::Wrong302) {
                // The fault: a redirect that makes no progress.
                t.pred().or_else(|| t.next_hop(key, now))
            } else {
                t.next_hop(key, now)
            }
        });
        let Some(target) = target else {
            // Only a node that lost every neighbour gets here.
            let r = self.p2p_response(req, 503, "Service Unavailable", false);
            self.send_response(req, r, false);
            return;
        };
        let mut r = self.p2p_response(req, 302, reason_phrase(302), false);
        r.push_contact(peer_uri(&target), None);
        r.push_links(&self.links());
        tracing::debug!(key = %key, to = %target, "redirect (QUERY-2)");
        self.send_response(req, r, keep);
    }

    /// The `query-mutates` fault (breaks QUERY-1): the sender of a query
    /// becomes a finger, and the predecessor when it is closer.
    fn query_mutates(&mut self, req: &Req<'_, '_>) {
        let Some(s) = req.sender().filter(|s| req.id_matches_source(&s.id)) else {
            return;
        };
        let (now, life) = (self.now, Node::lifetime_of(req.msg));
        let me = self.me.peer.id;
        if let Phase::Member(m) = &mut self.phase
            && s.id != me
        {
            m.table.verify(s, now, life);
            m.table.add_finger(s.id);
            let closer = m.table.pred_id().is_none_or(|p| s.id.in_open(&p, &me));
            if closer {
                m.table.set_pred(Some(s.id));
            }
        }
    }
}

/// Adds Contact headers, one per binding.
pub(super) fn push_contacts(
    m: &mut p2psip_wire::Message<'static>,
    contacts: &[p2psip_wire::ContactAddr<'static>],
) {
    for c in contacts {
        m.push_header(Header::Contact(p2psip_wire::Contact::Addr(c.clone())));
    }
}
