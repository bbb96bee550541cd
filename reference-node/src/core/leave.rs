/*!
Leaving (LEAVE-1, LEAVE-2): the leaver hands its registrations to its
successor, then tells predecessor and successor; they close the gap.
*/

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::build::{self, Link};
use p2psip_wire::{LinkKind, Peer};

use super::inbound::Req;
use super::join::reported;
use super::{Event, Fault, LeaveStage, Leaving, Node, Phase, ProbeWhy, Purpose, Timer};

impl Node {
    /// How long each leave stage may wait for answers: enough for a few
    /// retransmissions, bounded so a stopping node stops.
    fn leave_stage_timeout(&self) -> Duration {
        self.cfg
            .timer_f()
            .min((self.cfg.t1 * 4).max(Duration::from_secs(1)))
    }

    /// LEAVE-1. `rejoin`: after leaving, join again through the first
    /// address with the second as own address (NAT-6).
    pub(super) fn start_leave(&mut self, rejoin: Option<(SocketAddr, SocketAddr)>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        let m = match phase {
            Phase::Member(m) => m,
            Phase::Leaving(l) => {
                self.phase = Phase::Leaving(l);
                return;
            }
            Phase::Joining(_) | Phase::Stopped => {
                self.finish_leave(rejoin);
                return;
            }
        };
        for t in [Timer::Stabilize, Timer::FixFingers, Timer::Keepalive] {
            self.timers.stop(t);
        }
        if self.faults().has(Fault::NoLeave) {
            tracing::info!("leaving without telling anyone (fault no-leave)");
            self.finish_leave(rejoin);
            return;
        }
        let s1 = m.table.succ1();
        self.phase = Phase::Leaving(Leaving {
            table: m.table,
            stage: LeaveStage::Transfers,
            outstanding: 0,
            rejoin,
        });
        tracing::info!(records = self.store.len(), "leaving (LEAVE-1)");
        let mut sent = 0;
        if let Some(s1) = s1 {
            let keys: Vec<_> = self.store.keys().copied().collect();
            for key in keys {
                if self.send_transfer(key, s1, true, true) {
                    sent += 1;
                }
            }
        }
        if let Phase::Leaving(l) = &mut self.phase {
            l.outstanding = sent;
        }
        let t = self.leave_stage_timeout();
        self.timers.set(Timer::Leave, self.now + t);
        if sent == 0 {
            self.send_leaves();
        }
    }

    /// The join-shaped REGISTERs with Expires 0 to predecessor and
    /// successor, carrying P1 and S1..S4.
    fn send_leaves(&mut self) {
        let now = self.now;
        let stale = self.faults().has(Fault::StaleLinks);
        let Phase::Leaving(l) = &mut self.phase else {
            return;
        };
        l.stage = LeaveStage::Leaves;
        let links: Vec<Link> = l
            .table
            .links(now, stale)
            .into_iter()
            .filter(|k| k.link.kind != LinkKind::F)
            .collect();
        let mut targets: Vec<Peer> = Vec::new();
        for p in [l.table.pred(), l.table.succ1()].into_iter().flatten() {
            if !targets.iter().any(|t| t.id == p.id) {
                targets.push(p);
            }
        }
        l.outstanding = targets.len();
        for t in &targets {
            let to = t.addr;
            self.send_request(to, None, Purpose::Leave, |me, txn| {
                build::leave(me, to, txn, &links)
            });
        }
        let t = self.leave_stage_timeout();
        self.timers.set(Timer::Leave, self.now + t);
        if targets.is_empty() {
            self.finish_leave_now();
        }
    }

    pub(super) fn on_leave_transfer_done(&mut self) {
        if let Phase::Leaving(l) = &mut self.phase
            && l.stage == LeaveStage::Transfers
        {
            l.outstanding = l.outstanding.saturating_sub(1);
            if l.outstanding == 0 {
                self.send_leaves();
            }
        }
    }

    pub(super) fn on_leave_answer(&mut self) {
        if let Phase::Leaving(l) = &mut self.phase
            && l.stage == LeaveStage::Leaves
        {
            l.outstanding = l.outstanding.saturating_sub(1);
            if l.outstanding == 0 {
                self.finish_leave_now();
            }
        }
    }

    pub(super) fn on_leave_timer(&mut self) {
        match &self.phase {
            Phase::Leaving(l) if l.stage == LeaveStage::Transfers => self.send_leaves(),
            Phase::Leaving(_) => self.finish_leave_now(),
            _ => {}
        }
    }

    fn finish_leave_now(&mut self) {
        let rejoin = match &self.phase {
            Phase::Leaving(l) => l.rejoin,
            _ => None,
        };
        self.finish_leave(rejoin);
    }

    fn finish_leave(&mut self, rejoin: Option<(SocketAddr, SocketAddr)>) {
        self.timers.stop(Timer::Leave);
        match rejoin {
            Some((via, addr)) => {
                let old = self.me.peer;
                self.set_identity(addr);
                self.event(Event::AddressChanged {
                    old,
                    new: self.me.peer,
                });
                self.start_join(via, false);
            }
            None => {
                self.phase = Phase::Stopped;
                self.timers.clear();
                tracing::info!("left the overlay");
                self.event(Event::Left);
            }
        }
    }

    /// LEAVE-2: the successor of a leaver adopts its P1, the predecessor
    /// its S1; both answer 200. A reported peer not verified yet is probed
    /// before it is reported (QUERY-7).
    pub(super) fn handle_leave(&mut self, req: &Req<'_, '_>) {
        let Some(leaver) = req.sender() else { return };
        let now = self.now;
        let me = self.me.peer.id;
        let p1 = reported(req.msg, LinkKind::P).into_iter().next();
        let s1 = reported(req.msg, LinkKind::S).into_iter().next();
        let mut probes = Vec::new();
        if let Some(m) = self.member_mut() {
            let was_pred = m.table.pred_id() == Some(leaver.id);
            let was_s1 = m.table.succ_ids().first() == Some(&leaver.id);
            if was_s1 {
                m.table.drop_succ1();
            }
            m.table.remove(&leaver.id);
            if was_pred {
                match p1 {
                    Some((p, exp)) if p.id != me && p.id != leaver.id => {
                        if !m.table.is_live(&p.id, now) {
                            m.table.learn(p, now, exp);
                            probes.push((p, ProbeWhy::Predecessor));
                        }
                        m.table.set_pred(Some(p.id));
                    }
                    _ => m.table.set_pred(None),
                }
            }
            if was_s1 && let Some((s, exp)) = s1.filter(|(s, _)| s.id != me && s.id != leaver.id) {
                if m.table.is_live(&s.id, now) {
                    let closer = m.table.succ1().is_none_or(|c| s.id.in_open(&me, &c.id));
                    if closer {
                        m.table.push_front_succ(s.id, now);
                    }
                } else {
                    m.table.learn(s, now, exp);
                    probes.push((s, ProbeWhy::Successor));
                }
            }
            m.table.rebuild_succs(now);
            m.table.gc();
            tracing::info!(leaver = %leaver, was_pred, was_s1, "neighbour left (LEAVE-2)");
        }
        let mut r = self.p2p_response(req, 200, "OK", true);
        r.push_contact(p2psip_wire::build::peer_uri(&leaver), Some(0));
        self.send_response(req, r, true);
        for (p, why) in probes {
            self.probe(p, why);
        }
    }
}
