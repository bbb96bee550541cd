/*!
Keeping the ring right (STAB-1..6, NAT-5): stabilisation and notify,
checking the predecessor, fixing fingers, keep-alives, probes that verify
a peer before it is used (QUERY-7), and failover when a peer stops
answering (STAB-4).
*/

use p2psip_wire::build::{self, QueryKey, peer_uri};
use p2psip_wire::{Id, LinkKind, Message, Peer};

use super::inbound::Req;
use super::join::reported;
use super::route::{RouteMsg, RouteWhy};
use super::{Fault, FixRound, Node, Phase, ProbeWhy, Purpose, Timer};

/// The first finger index whose start lies beyond `p` (clockwise from
/// `me`): the smallest `j` with 2^j > distance(me, p).
fn index_after(me: &Id, p: &Id) -> u8 {
    let d = me.distance_to(p);
    (160 - d.common_prefix_bits(&Id::ZERO)) as u8
}

impl Node {
    pub(super) fn start_member_timers(&mut self) {
        let now = self.now;
        let s = self.period(self.cfg.stabilize);
        self.timers.set(Timer::Stabilize, now + s);
        let f = self.period(self.cfg.fix_fingers);
        self.timers.set(Timer::FixFingers, now + f);
        let k = self.period(self.cfg.keepalive / 4);
        self.timers.set(Timer::Keepalive, now + k);
    }

    // ----- STAB-1 / STAB-2: the querier's side ------------------------------

    pub(super) fn on_stabilize_timer(&mut self) {
        if !matches!(self.phase, Phase::Member(_)) {
            return;
        }
        let p = self.period(self.cfg.stabilize);
        self.timers.set(Timer::Stabilize, self.now + p);
        if self.faults().has(Fault::NoStabilize) {
            return;
        }
        self.stabilize();
        self.check_predecessor();
    }

    /// STAB-1: query S1 for its own ID.
    pub(super) fn stabilize(&mut self) {
        let now = self.now;
        let Some(m) = self.member_mut() else { return };
        if m.table.succ1().is_none() && !m.table.adopt_closest_as_succ(now) {
            return; // alone
        }
        let Some(s1) = m.table.succ1() else { return };
        let busy = self
            .txns
            .iter()
            .any(|t| matches!(t.purpose, Purpose::Stabilize { succ } if succ == s1.id));
        if busy {
            return;
        }
        self.send_request(
            s1.addr,
            None,
            Purpose::Stabilize { succ: s1.id },
            |me, txn| build::query(me, s1.addr, txn, QueryKey::Peer(s1)),
        );
    }

    /// STAB-2 / STAB-4: learn S1's predecessor and successors.
    pub(super) fn on_stabilize_response(
        &mut self,
        succ: Id,
        msg: &Message<'_>,
        responder: Option<Peer>,
    ) {
        let Some(s1) = responder.filter(|r| r.id == succ) else {
            // Someone else answers at S1's address: S1 is gone.
            self.fail_peer(succ);
            return;
        };
        let now = self.now;
        let me = self.me.peer.id;
        let life = Node::lifetime_of(msg);
        let unverified = self.faults().has(Fault::ReportUnverified);
        let Some(m) = self.member_mut() else { return };
        if m.table.succ_ids().first() != Some(&succ) {
            return; // S1 changed while the query was out
        }
        m.table.verify(s1, now, life);
        // STAB-4: the list is S1 and what S1 reports after itself; a
        // reported peer is used once a transaction with it succeeded.
        let mut probes = Vec::new();
        let mut cands = Vec::new();
        for (p, exp) in reported(msg, LinkKind::S) {
            if p.id == me || p.id == s1.id {
                continue;
            }
            if !m.table.is_live(&p.id, now) {
                if unverified {
                    m.table.verify(p, now, exp);
                } else {
                    m.table.learn(p, now, exp);
                    probes.push(p);
                }
            }
            cands.push(p.id);
        }
        m.table.set_candidates(cands, now);
        // STAB-2
        let x = reported(msg, LinkKind::P).into_iter().next();
        match x {
            Some((x, _)) if x.id == me => {}
            Some((x, exp)) if x.id.in_open(&me, &s1.id) => {
                if m.table.is_live(&x.id, now) || unverified {
                    if unverified {
                        m.table.verify(x, now, exp);
                    }
                    m.table.push_front_succ(x.id, now);
                    self.send_notify(x, false);
                } else {
                    m.table.learn(x, now, exp);
                    // Adopted once it answers the notify (QUERY-7).
                    self.send_notify(x, true);
                }
            }
            _ => self.send_notify(s1, false),
        }
        for p in probes {
            self.probe(p, ProbeWhy::Successor);
        }
    }

    /// STAB-2: the join-shaped REGISTER carrying our links.
    fn send_notify(&mut self, to: Peer, adopt: bool) {
        let links = self.links();
        let expires = self.cfg.expires;
        self.send_request(to.addr, None, Purpose::Notify { to, adopt }, |me, txn| {
            build::notify(me, to.addr, txn, expires, &links)
        });
    }

    /// STAB-2: the sender of a notify ignores the answer's content; an
    /// answer from the candidate is the transaction that lets it become S1.
    pub(super) fn on_notify_response(
        &mut self,
        to: Peer,
        adopt: bool,
        ok: bool,
        msg: &Message<'_>,
    ) {
        let now = self.now;
        let me = self.me.peer.id;
        let life = Node::lifetime_of(msg);
        let Some(m) = self.member_mut() else { return };
        if !ok {
            if adopt {
                m.table.remove(&to.id);
            }
            return;
        }
        m.table.verify(to, now, life);
        if adopt {
            let closer = m.table.succ1().is_none_or(|s1| to.id.in_open(&me, &s1.id));
            if closer {
                m.table.push_front_succ(to.id, now);
            }
        }
    }

    // ----- STAB-2: the receiver's side ---------------------------------------

    /// A notify: adopt the sender as predecessor when the predecessor is
    /// NULL or the sender lies in (pred, me); otherwise check the
    /// predecessor ("rectify") and answer as to a join this peer is not
    /// responsible for.
    pub(super) fn handle_notify(&mut self, req: &Req<'_, '_>) {
        let Some(x) = req.sender() else { return };
        let me = self.me.peer.id;
        let life = Node::lifetime_of(req.msg);
        let Some(t) = self.table() else { return };
        let pred = t.pred_id();
        let adopt = pred.is_none_or(|p| x.id.in_open(&p, &me));
        if adopt || pred == Some(x.id) {
            if pred != Some(x.id) {
                tracing::debug!(from = %x, "notify: new predecessor");
                self.adopt_pred(x, life);
            }
            let expires = req.msg.expires().unwrap_or(self.cfg.expires);
            let mut r = self.p2p_response(req, 200, "OK", false);
            r.push_contact(peer_uri(&x), Some(expires));
            r.push_links(&self.links());
            self.send_response(req, r, true);
            return;
        }
        // Rectify (Zave): if the predecessor is dead, the sender takes its
        // place. Remember the sender (it passed ID-7) and check.
        let now = self.now;
        if let Some(m) = self.member_mut() {
            m.table.verify(x, now, life);
            m.rectify = Some(x);
        }
        if let Some(p) = self.table().and_then(|t| t.pred()) {
            self.probe(p, ProbeWhy::CheckPredecessor);
        }
        self.redirect(req, &x.id, true);
    }

    /// Chord's check_predecessor: a predecessor not heard from for a
    /// stabilisation interval is queried (bounded by Timer F).
    fn check_predecessor(&mut self) {
        let now = self.now;
        let Some(t) = self.table() else { return };
        let Some(p) = t.pred() else { return };
        let stale = t.get(&p.id).is_none_or(|k| {
            k.verified
                .is_none_or(|v| now.saturating_since(v) >= self.cfg.stabilize)
        });
        if stale {
            self.probe(p, ProbeWhy::CheckPredecessor);
        }
    }

    // ----- probes (QUERY-7) -----------------------------------------------------

    /// Queries `peer` for its own ID; the answer verifies it.
    pub(super) fn probe(&mut self, peer: Peer, why: ProbeWhy) {
        let busy = self.txns.iter().any(
            |t| matches!(t.purpose, Purpose::Probe { peer: p, why: w } if p.id == peer.id && w == why),
        );
        if busy || peer.id == self.me.peer.id {
            return;
        }
        if let Some(t) = self.table_mut()
            && let Some(k) = t.get_mut(&peer.id)
        {
            k.probing = true;
        }
        self.send_request(peer.addr, None, Purpose::Probe { peer, why }, |me, txn| {
            build::query(me, peer.addr, txn, QueryKey::Peer(peer))
        });
    }

    pub(super) fn on_probe_result(&mut self, peer: Peer, why: ProbeWhy, ok: bool) {
        let now = self.now;
        let me = self.me.peer.id;
        let Some(m) = self.member_mut() else { return };
        if let Some(k) = m.table.get_mut(&peer.id) {
            k.probing = false;
        }
        match (why, ok) {
            (ProbeWhy::Successor, true) => {
                // A verified peer closer than S1 is the better S1.
                let closer = m
                    .table
                    .succ1()
                    .is_none_or(|s1| peer.id.in_open(&me, &s1.id));
                if closer {
                    m.table.push_front_succ(peer.id, now);
                } else {
                    m.table.rebuild_succs(now);
                }
            }
            (ProbeWhy::Successor, false) => {
                m.table.remove(&peer.id);
                m.table.rebuild_succs(now);
            }
            (ProbeWhy::Predecessor, true) => {}
            (ProbeWhy::Predecessor, false) => {
                m.table.remove(&peer.id);
            }
            (ProbeWhy::CheckPredecessor, true) => m.rectify = None,
            (ProbeWhy::CheckPredecessor, false) => self.fail_peer(peer.id),
        }
    }

    // ----- STAB-4: failures ---------------------------------------------------

    /// `id` stopped answering (Timer F) or lapsed: forget it; S2 takes over
    /// from a failed S1 and is queried at once (STAB-4); a failed
    /// predecessor is replaced by a waiting notify sender (rectify).
    pub(super) fn fail_peer(&mut self, id: Id) {
        let now = self.now;
        let Some(m) = self.member_mut() else {
            if let Some(t) = self.table_mut() {
                t.remove(&id);
            }
            return;
        };
        let was_s1 = m.table.succ_ids().first() == Some(&id);
        let was_pred = m.table.pred_id() == Some(id);
        if !was_s1 && !was_pred && m.table.get(&id).is_none() {
            return;
        }
        tracing::info!(peer = %id, was_s1, was_pred, "peer failed");
        if was_s1 {
            m.table.drop_succ1();
            m.table.rebuild_succs(now);
        }
        m.table.remove(&id);
        let mut adopt = None;
        if was_pred && let Some(x) = m.rectify.take() {
            adopt = Some(x);
        }
        m.table.gc();
        if let Some(x) = adopt {
            tracing::info!(peer = %x, "predecessor failed: adopting the notify sender (STAB-2 rectify)");
            let life = self.cfg.peer_expires;
            self.adopt_pred(x, life);
        }
        if was_s1 {
            self.stabilize();
        }
    }

    pub(super) fn after_peer_gone(&mut self, id: Id) {
        self.fail_peer(id);
    }

    // ----- STAB-3: fix fingers ----------------------------------------------------

    pub(super) fn on_fix_fingers_timer(&mut self) {
        if !matches!(self.phase, Phase::Member(_)) {
            return;
        }
        let p = self.period(self.cfg.fix_fingers);
        self.timers.set(Timer::FixFingers, self.now + p);
        let Some(m) = self.member_mut() else { return };
        if m.fix.is_some() {
            return; // the last round is still running
        }
        m.fix = Some(FixRound {
            index: 0,
            found: Vec::new(),
        });
        self.advance_fix();
    }

    /// Resolves the next distinct finger: starts inside (me, S1] are S1's;
    /// any other start is looked up by a routed query (STAB-3). After a
    /// result `p`, every start up to `p` is `p`'s too, so the next lookup
    /// is for the first start beyond it.
    fn advance_fix(&mut self) {
        let me = self.me.peer.id;
        let now = self.now;
        loop {
            let Some(m) = self.member_mut() else { return };
            let Some(round) = &mut m.fix else { return };
            let s1 = m.table.succ1();
            let (Some(s1), true) = (s1, round.index < 160) else {
                let found = std::mem::take(&mut round.found);
                m.fix = None;
                m.table.set_fingers(found);
                m.table.gc();
                return;
            };
            let start = me.finger_start(round.index);
            if start.in_open_closed(&me, &s1.id) {
                round.found.push(s1.id);
                round.index = index_after(&me, &s1.id).max(round.index + 1);
                continue;
            }
            let index = round.index;
            // The current finger for this start, when it is not S1: most
            // of the time it is still responsible and confirms that in
            // one round trip (STAB-3: a query for the finger start).
            let guess = m
                .table
                .fingers(now)
                .into_iter()
                .take_while(|(i, _)| *i <= index)
                .last()
                .map(|(_, p)| p)
                .filter(|p| p.id != s1.id && start.in_open_closed(&me, &p.id))
                .map(|p| p.addr);
            self.start_route_via(start, RouteMsg::Query, RouteWhy::Finger { index }, guess);
            return;
        }
    }

    /// The lookup for finger `index` ended with the responsible peer (or
    /// failed: the index is skipped this round).
    pub(super) fn on_finger_result(&mut self, index: u8, result: Option<(Peer, u32)>) {
        let now = self.now;
        let me = self.me.peer.id;
        let Some(m) = self.member_mut() else { return };
        let Some(round) = &mut m.fix else { return };
        if round.index != index {
            return;
        }
        match result {
            Some((p, _)) if p.id == me => round.index = 160,
            Some((p, life)) => {
                round.found.push(p.id);
                round.index = index_after(&me, &p.id).max(index + 1);
                m.table.verify(p, now, life);
                m.table.add_finger(p.id);
            }
            None => round.index = index.saturating_add(1),
        }
        self.advance_fix();
    }

    // ----- NAT-5: keep-alives ---------------------------------------------------

    /// Every neighbour hears from this node at least once per keep-alive
    /// interval K: the timer runs every K/4 and pings whoever was not sent
    /// anything for K/2, so no silence lasts longer than 3K/4. The spare
    /// quarter absorbs a late timer (a loaded host) before a NAT mapping
    /// with a timeout just above K lapses.
    pub(super) fn on_keepalive_timer(&mut self) {
        if !matches!(self.phase, Phase::Member(_)) {
            return;
        }
        let quarter = self.cfg.keepalive / 4;
        let p = self.period(quarter);
        self.timers.set(Timer::Keepalive, self.now + p);
        let threshold = self.cfg.keepalive / 2;
        if self.faults().has(Fault::NoKeepalive) {
            return;
        }
        let now = self.now;
        let Some(t) = self.table() else { return };
        let due: Vec<Peer> = t
            .neighbours()
            .iter()
            .filter_map(|id| t.get(id))
            .filter(|k| {
                k.verified.is_some() && !k.pinging && now.saturating_since(k.last_sent) >= threshold
            })
            .map(|k| k.peer)
            .collect();
        for peer in due {
            if let Some(t) = self.table_mut()
                && let Some(k) = t.get_mut(&peer.id)
            {
                k.pinging = true;
            }
            self.send_request(
                peer.addr,
                None,
                Purpose::Keepalive { peer: peer.id },
                |me, txn| build::options(Some(me), peer.addr, txn, peer_uri(&me.peer)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_after_is_first_start_beyond() {
        let me = Id::ZERO;
        assert_eq!(index_after(&me, &Id::pow2(0)), 1);
        assert_eq!(index_after(&me, &Id::pow2(5)), 6);
        let mut x = Id::pow2(5);
        x.0[19] |= 1; // 2^5 + 1
        assert_eq!(index_after(&me, &x), 6);
        assert_eq!(index_after(&me, &Id::MAX), 160);
    }
}
