/*!
Joining (JOIN-1..10): the joiner's side (learn the address, follow 302s,
take the admitting peer's links) and the admitting peer's side (answer 200,
adopt the joiner as predecessor after the 200, transfer its registrations).
*/

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::build::{self, peer_uri, reason_phrase};
use p2psip_wire::{Id, LinkKind, Message, Peer};

use super::inbound::Req;
use super::table::{Table, log2_size};
use super::{Event, Fault, JoinStep, Joining, Member, Node, Phase, ProbeWhy, Purpose, Timer};

/// The peers of one kind of DHT-Link in a message, in depth order, each
/// with its remaining lifetime. Lapsed links (`expires=0`, WIRE-5) and
/// links without an IP address are skipped.
pub(super) fn reported(msg: &Message<'_>, kind: LinkKind) -> Vec<(Peer, u32)> {
    let mut out: Vec<(u8, Peer, u32)> = msg
        .dht_links()
        .filter(|l| l.link.kind == kind)
        .filter_map(|l| {
            let exp = l.expires.unwrap_or(0);
            let p = l.addr.uri.peer()?;
            (exp > 0).then_some((l.link.depth, p, exp))
        })
        .collect();
    out.sort_by_key(|(d, _, _)| *d);
    out.into_iter().map(|(_, p, e)| (p, e)).collect()
}

/// log2 of the ring size suggested by the S links a responder reported.
pub(super) fn estimate_log2(msg: &Message<'_>) -> u32 {
    let Some(responder) = msg.sender_peer() else {
        return 1;
    };
    let ids: Vec<Id> = reported(msg, LinkKind::S)
        .iter()
        .map(|(p, _)| p.id)
        .collect();
    log2_size(&responder.id, &ids)
}

/// JOIN-2: at most 2·ceil(log2 N)+8 redirects.
pub(super) fn hop_bound(log2n: u32) -> u32 {
    2 * log2n + 8
}

impl Node {
    /// JOIN-8: the first peer is its own successor with no predecessor.
    pub(super) fn become_first(&mut self) {
        let table = Table::new(self.me.peer, self.cfg.successors);
        self.phase = Phase::Member(Member {
            table,
            fix: None,
            rectify: None,
        });
        self.start_member_timers();
        tracing::info!(me = %self.me.peer, "first peer of the overlay (JOIN-8)");
        self.event(Event::Joined {
            me: self.me.peer,
            by: None,
        });
    }

    /// Starts joining through `via`: OPTIONS first to learn the observed
    /// address when `probe` (JOIN-10), then the join REGISTER.
    pub(super) fn start_join(&mut self, via: SocketAddr, probe: bool) {
        for t in [
            Timer::Stabilize,
            Timer::FixFingers,
            Timer::Keepalive,
            Timer::Leave,
        ] {
            self.timers.stop(t);
        }
        self.phase = Phase::Joining(Joining {
            step: JoinStep::Backoff,
            via,
            attempts: 0,
        });
        if probe {
            self.send_probe_to_bootstrap();
        } else {
            self.send_join_to(via, 0, vec![via], 1);
        }
    }

    fn send_probe_to_bootstrap(&mut self) {
        let Phase::Joining(j) = &mut self.phase else {
            return;
        };
        j.step = JoinStep::Probe;
        let via = j.via;
        tracing::info!(bootstrap = %via, "joining: OPTIONS to the bootstrap (JOIN-10)");
        self.send_request(via, None, Purpose::Bootstrap, |me, txn| {
            build::options(Some(me), via, txn, peer_uri(&me.peer))
        });
    }

    pub(super) fn send_join_to(
        &mut self,
        target: SocketAddr,
        hops: u32,
        visited: Vec<SocketAddr>,
        log2n: u32,
    ) {
        let Phase::Joining(j) = &mut self.phase else {
            return;
        };
        j.step = JoinStep::Register {
            hops,
            visited,
            log2n,
        };
        let expires = self.cfg.expires;
        self.send_request(target, None, Purpose::Join, |me, txn| {
            build::join(me, target, txn, expires)
        });
    }

    /// JOIN-10 / NAT-3: take the address the bootstrap saw, then join.
    pub(super) fn on_bootstrap_response(&mut self, msg: &Message<'_>) {
        if !matches!(
            &self.phase,
            Phase::Joining(Joining {
                step: JoinStep::Probe,
                ..
            })
        ) {
            return;
        }
        let Phase::Joining(j) = &self.phase else {
            return;
        };
        let via = j.via;
        match super::nat::observed_addr(msg) {
            Some(addr) => {
                self.learn_address(addr);
                match self.compare_target(msg, via, addr) {
                    Some(other) => self.start_compare(other, addr),
                    None => self.send_join_to(via, 0, vec![via], 1),
                }
            }
            None => {
                // The bootstrap did not fill in received/rport: ask STUN
                // (NAT-7 on its SIP port), briefly.
                let tid = self.send_stun_probe(via);
                if let Phase::Joining(j) = &mut self.phase {
                    j.step = JoinStep::Stun { tid };
                }
                self.timers.set(Timer::Join, self.now + self.cfg.t1 * 4);
            }
        }
    }

    /// The STUN answer of the bootstrap: its XOR-MAPPED-ADDRESS is our
    /// observed address (NAT-3).
    pub(super) fn on_stun_answer(&mut self, msg: &p2psip_stun::Message) {
        let Phase::Joining(Joining {
            step: JoinStep::Stun { tid },
            via,
            ..
        }) = &self.phase
        else {
            return;
        };
        if msg.transaction_id != p2psip_stun::TransactionId::from(*tid) {
            return;
        }
        let via = *via;
        self.timers.stop(Timer::Join);
        if let Some(addr) = msg.xor_mapped_address() {
            self.learn_address(addr);
        }
        self.send_join_to(via, 0, vec![via], 1);
    }

    /// JOIN-2 / JOIN-6: follow a 302, or take the admitting peer's links.
    pub(super) fn on_join_response(
        &mut self,
        msg: &Message<'_>,
        code: u16,
        responder: Option<Peer>,
    ) {
        let Phase::Joining(Joining {
            step:
                JoinStep::Register {
                    hops,
                    visited,
                    log2n,
                    ..
                },
            ..
        }) = &self.phase
        else {
            return;
        };
        let (hops, mut visited, log2n) = (*hops, visited.clone(), *log2n);
        match code {
            302 => {
                let next = msg
                    .contact_addrs()
                    .next()
                    .and_then(|c| c.addr.uri.socket_addr());
                let Some(next) = next else {
                    self.join_failed("302 without a usable Contact");
                    return;
                };
                let log2n = log2n.max(estimate_log2(msg));
                if visited.contains(&next) || next == self.me.peer.addr {
                    self.join_failed("redirect loop (JOIN-2)");
                    return;
                }
                if hops + 1 > hop_bound(log2n) {
                    self.join_failed("too many redirects (JOIN-2)");
                    return;
                }
                visited.push(next);
                self.send_join_to(next, hops + 1, visited, log2n);
            }
            200..=299 => match responder {
                Some(admitting) => self.become_member(admitting, msg),
                None => self.join_failed("200 from a peer whose ID is not of its address"),
            },
            _ => self.join_failed(&format!("join answered {code}")),
        }
    }

    /// JOIN-6: successor = the admitting peer, predecessor = its P1, and
    /// its successors as candidates; stabilisation starts.
    fn become_member(&mut self, admitting: Peer, msg: &Message<'_>) {
        let now = self.now;
        let me = self.me.peer.id;
        let unverified = self.faults().has(Fault::ReportUnverified);
        let mut table = Table::new(self.me.peer, self.cfg.successors);
        table.verify(admitting, now, Node::lifetime_of(msg));
        table.push_front_succ(admitting.id, now);
        let mut probes = Vec::new();
        if let Some((p1, exp)) = reported(msg, LinkKind::P).into_iter().next()
            && p1.id != me
        {
            if p1.id != admitting.id {
                table.learn(p1, now, exp);
                // QUERY-7: it is not reported before a probe answered.
                probes.push((p1, ProbeWhy::Predecessor));
            }
            table.set_pred(Some(p1.id));
        }
        let mut cands = Vec::new();
        for (p, exp) in reported(msg, LinkKind::S) {
            if p.id == me || p.id == admitting.id {
                continue;
            }
            if !table.is_live(&p.id, now) {
                if unverified {
                    table.verify(p, now, exp);
                } else {
                    table.learn(p, now, exp);
                    probes.push((p, ProbeWhy::Successor));
                }
            }
            cands.push(p.id);
        }
        table.set_candidates(cands, now);
        self.phase = Phase::Member(Member {
            table,
            fix: None,
            rectify: None,
        });
        self.start_member_timers();
        for (p, why) in probes {
            self.probe(p, why);
        }
        tracing::info!(me = %self.me.peer, by = %admitting, "joined (JOIN-6)");
        self.event(Event::Joined {
            me: self.me.peer,
            by: Some(admitting),
        });
    }

    /// JOIN-2: give up this attempt, try again after a pause.
    pub(super) fn join_failed(&mut self, reason: &str) {
        let Phase::Joining(j) = &mut self.phase else {
            return;
        };
        j.step = JoinStep::Backoff;
        j.attempts += 1;
        let pause = self
            .cfg
            .stabilize
            .min(Duration::from_secs(2))
            .max(self.cfg.t1 * 2);
        tracing::warn!(reason, attempt = j.attempts, "join failed; retrying");
        self.timers.set(Timer::Join, self.now + pause);
        self.event(Event::JoinFailed {
            reason: reason.to_owned(),
        });
    }

    pub(super) fn on_join_timer(&mut self) {
        let Phase::Joining(j) = &self.phase else {
            return;
        };
        match j.step {
            JoinStep::Backoff => self.send_probe_to_bootstrap(),
            // No STUN answer, or no answer of the second peer (NAT-8):
            // join with the address we have.
            JoinStep::Stun { .. } | JoinStep::Compare { .. } => {
                let via = j.via;
                self.send_join_to(via, 0, vec![via], 1);
            }
            _ => {}
        }
    }

    // ----- the admitting peer ----------------------------------------------

    /// JOIN-3..5, JOIN-9: admit the joiner when responsible for its ID.
    pub(super) fn handle_join(&mut self, req: &Req<'_, '_>) {
        // inbound checked ID-7 and JOIN-7: the sender names itself.
        let Some(joiner) = req.sender() else { return };
        if joiner.id == self.me.peer.id {
            let r = self.p2p_response(req, 403, "Forbidden (Peer-ID in use)", false);
            self.send_response(req, r, true);
            return;
        }
        if !self.table().is_some_and(|t| t.is_responsible(&joiner.id)) {
            self.redirect(req, &joiner.id, true); // JOIN-3
            return;
        }
        let life = Node::lifetime_of(req.msg);
        if self.faults().has(Fault::PredBefore200) {
            // The fault: adopted before the 200 is built, which then
            // reports the joiner as P1.
            self.adopt_pred(joiner, life);
        }
        // JOIN-4: echo the Contact with an expiry, report the links.
        let expires = req.msg.expires().unwrap_or(self.cfg.expires);
        let mut r = self.p2p_response(req, 200, reason_phrase(200), false);
        r.push_contact(peer_uri(&joiner), Some(expires));
        r.push_links(&self.links());
        self.send_response(req, r, true);
        tracing::info!(joiner = %joiner, "admitted a joiner (JOIN-4)");
        if !self.faults().has(Fault::PredBefore200) {
            // JOIN-5: only after the 200 has been sent.
            self.adopt_pred(joiner, life);
        }
    }

    /// Makes `p` (verified) the predecessor and hands it the registrations
    /// that are now in its range (JOIN-9).
    pub(super) fn adopt_pred(&mut self, p: Peer, life: u32) {
        let now = self.now;
        let Some(t) = self.table_mut() else { return };
        t.verify(p, now, life);
        t.set_pred(Some(p.id));
        self.transfer_range_to(p);
    }

    /// JOIN-9: every stored registration whose key is no longer in
    /// (pred, me] goes to the new predecessor `p`.
    pub(super) fn transfer_range_to(&mut self, p: Peer) {
        if self.faults().has(Fault::NoTransfer) {
            return;
        }
        let me = self.me.peer.id;
        let keys = self.store.keys_where(|k| !k.in_open_closed(&p.id, &me));
        for key in keys {
            self.send_transfer(key, p, true, false);
        }
    }

    /// A third-party REGISTER handing over the record at `key` (JOIN-9,
    /// LEAVE-1): From = this peer, To = the resource URI, the stored
    /// Contacts with their remaining lifetimes. Returns whether one was
    /// sent.
    pub(super) fn send_transfer(&mut self, key: Id, to: Peer, delete: bool, leaving: bool) -> bool {
        let now = self.now;
        let Some(rec) = self.store.get(&key) else {
            return false;
        };
        let contacts = super::store::live_contacts(rec, now);
        let Some(expires) = contacts.iter().filter_map(|c| c.expires).max() else {
            return false;
        };
        let (aor, replica) = (rec.aor.clone(), rec.replica);
        tracing::debug!(%key, to = %to, "transferring a registration (JOIN-9/LEAVE-1)");
        self.send_request(
            to.addr,
            None,
            Purpose::Transfer {
                key,
                to,
                delete,
                leaving,
            },
            |me, txn| build::transfer(me, to.addr, txn, &aor, replica, &contacts, expires),
        );
        true
    }

    pub(super) fn on_transfer_done(
        &mut self,
        key: Id,
        to: Peer,
        delete: bool,
        leaving: bool,
        ok: bool,
    ) {
        if ok && delete {
            // Still ours after all (the joiner left meanwhile)? Keep it.
            let ours = matches!(self.phase, Phase::Member(_))
                && self.table().is_some_and(|t| t.is_responsible(&key));
            if !ours {
                self.store.remove(&key);
            }
        }
        if !ok {
            tracing::warn!(%key, to = %to, "transfer failed");
        }
        if leaving {
            self.on_leave_transfer_done();
        }
    }
}
