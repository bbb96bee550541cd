/*!
The routing table: predecessor, successor list and fingers (PROFILE §4-§6),
over one small list of known peers.

Every peer the node refers to has one [`Known`] entry, which records when
the node last completed a transaction with it. QUERY-7 is enforced here:
only verified, unexpired entries are reported ([`Table::links`]) or chosen
as a redirect target ([`Table::next_hop`]).

Fingers are kept compact: the table stores only the distinct peers that
fix-fingers lookups returned. Finger `i` is then the first known live peer
at or after `n + 2^i` (QUERY-5), computed when needed.
*/

use std::net::SocketAddr;

use p2psip_wire::build::Link;
use p2psip_wire::{Id, LinkKind, LinkType, Peer, closest_preceding};

use super::time::{Time, secs_left};

/// What the node knows about one peer.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub peer: Peer,
    /// When the last successful transaction with it ended (QUERY-7);
    /// `None`: only heard about from someone else.
    pub verified: Option<Time>,
    /// When the entry lapses unless refreshed (STAB-6): the last
    /// verification plus the lifetime the peer advertised.
    pub expires_at: Time,
    /// When the node last sent it anything (NAT-5).
    pub last_sent: Time,
    /// A probe (verification query) to it is in flight.
    pub probing: bool,
    /// A keep-alive to it is in flight.
    pub pinging: bool,
}

impl Known {
    pub fn is_live(&self, now: Time) -> bool {
        self.verified.is_some() && self.expires_at > now
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    me: Peer,
    /// The successor-list length (STAB-4).
    r: usize,
    known: Vec<Known>,
    pred: Option<Id>,
    /// The successor list, clockwise from `me`; empty means S1 = `me`
    /// (a lone first peer, JOIN-8).
    succs: Vec<Id>,
    /// What S1 last reported after itself (candidates for S2..Sr, some
    /// perhaps not verified yet).
    candidates: Vec<Id>,
    /// Distinct finger peers found by fix-fingers lookups (STAB-3).
    fingers: Vec<Id>,
}

/// F links are capped (QUERY-4).
pub(crate) const MAX_F_LINKS: usize = 32;

impl Table {
    pub fn new(me: Peer, r: usize) -> Table {
        Table {
            me,
            r,
            known: Vec::new(),
            pred: None,
            succs: Vec::new(),
            candidates: Vec::new(),
            fingers: Vec::new(),
        }
    }

    // ----- the known-peer list --------------------------------------

    pub fn get(&self, id: &Id) -> Option<&Known> {
        self.known.iter().find(|k| k.peer.id == *id)
    }

    pub fn get_mut(&mut self, id: &Id) -> Option<&mut Known> {
        self.known.iter_mut().find(|k| k.peer.id == *id)
    }

    pub fn by_addr_mut(&mut self, addr: SocketAddr) -> Option<&mut Known> {
        self.known.iter_mut().find(|k| k.peer.addr == addr)
    }

    pub fn known(&self) -> &[Known] {
        &self.known
    }

    pub fn is_live(&self, id: &Id, now: Time) -> bool {
        self.get(id).is_some_and(|k| k.is_live(now))
    }

    fn peer(&self, id: &Id) -> Option<Peer> {
        self.get(id).map(|k| k.peer)
    }

    /// Records a peer heard about from someone else (unverified), keeping
    /// what is already known about it. `lifetime` bounds how long the
    /// report may be believed.
    pub fn learn(&mut self, peer: Peer, now: Time, lifetime: u32) -> &mut Known {
        let at = match self.known.iter().position(|k| k.peer.id == peer.id) {
            Some(at) => at,
            None => {
                self.known.push(Known {
                    peer,
                    verified: None,
                    expires_at: now + std::time::Duration::from_secs(lifetime.into()),
                    last_sent: Time::ZERO,
                    probing: false,
                    pinging: false,
                });
                self.known.len() - 1
            }
        };
        &mut self.known[at]
    }

    /// Records a successful transaction with `peer` (QUERY-7), which may
    /// be cached for `lifetime` seconds (its DHT-PeerID `expires`).
    pub fn verify(&mut self, peer: Peer, now: Time, lifetime: u32) {
        let k = self.learn(peer, now, lifetime);
        k.peer.addr = peer.addr;
        k.verified = Some(now);
        k.expires_at = now + std::time::Duration::from_secs(lifetime.into());
    }

    /// Refreshes a peer the table already knows and has verified (a
    /// request from it passed the ID check). Never adds a peer (QUERY-1).
    pub fn refresh(&mut self, id: &Id, now: Time, lifetime: u32) {
        if let Some(k) = self.get_mut(id)
            && k.verified.is_some()
        {
            k.verified = Some(now);
            k.expires_at = now + std::time::Duration::from_secs(lifetime.into());
        }
    }

    pub fn touch_sent(&mut self, addr: SocketAddr, now: Time) {
        if let Some(k) = self.by_addr_mut(addr) {
            k.last_sent = now;
        }
    }

    /// Forgets a peer everywhere (it failed, left or expired). Returns
    /// whether it was referenced.
    pub fn remove(&mut self, id: &Id) -> bool {
        let mut hit = false;
        if self.pred == Some(*id) {
            self.pred = None;
            hit = true;
        }
        for list in [&mut self.succs, &mut self.candidates, &mut self.fingers] {
            let before = list.len();
            list.retain(|x| x != id);
            hit |= list.len() != before;
        }
        self.known.retain(|k| k.peer.id != *id);
        hit
    }

    /// STAB-6: drops every entry whose lifetime has passed; returns them.
    pub fn expire(&mut self, now: Time) -> Vec<Peer> {
        let dead: Vec<Peer> = self
            .known
            .iter()
            .filter(|k| k.expires_at <= now && !k.probing && !k.pinging)
            .map(|k| k.peer)
            .collect();
        for p in &dead {
            self.remove(&p.id);
        }
        dead
    }

    /// The earliest lapse of a referenced entry.
    pub fn next_expiry(&self) -> Option<Time> {
        self.known.iter().map(|k| k.expires_at).min()
    }

    /// Drops entries nothing refers to any more.
    pub fn gc(&mut self) {
        let Table {
            known,
            pred,
            succs,
            candidates,
            fingers,
            ..
        } = self;
        known.retain(|k| {
            let id = &k.peer.id;
            k.probing
                || k.pinging
                || *pred == Some(*id)
                || succs.contains(id)
                || candidates.contains(id)
                || fingers.contains(id)
        });
    }

    // ----- predecessor ------------------------------------------------

    pub fn pred_id(&self) -> Option<Id> {
        self.pred
    }

    /// The predecessor, verified or not (it decides responsibility, ID-6).
    pub fn pred(&self) -> Option<Peer> {
        self.pred.and_then(|id| self.peer(&id))
    }

    /// Sets the predecessor (the caller has recorded the peer with
    /// `learn` or `verify`).
    pub fn set_pred(&mut self, pred: Option<Id>) {
        self.pred = pred.filter(|p| *p != self.me.id);
    }

    /// ID-6: `key` in (pred, me], or every key with no predecessor.
    pub fn is_responsible(&self, key: &Id) -> bool {
        p2psip_wire::is_responsible(&self.me.id, self.pred.as_ref(), key)
    }

    // ----- successors -------------------------------------------------

    /// S1, or `None` when the node is its own successor.
    pub fn succ1(&self) -> Option<Peer> {
        self.succs.first().and_then(|id| self.peer(id))
    }

    pub fn succ_ids(&self) -> &[Id] {
        &self.succs
    }

    pub fn successors(&self) -> Vec<Peer> {
        self.succs.iter().filter_map(|id| self.peer(id)).collect()
    }

    /// Makes `id` S1, keeping the old list behind it as candidates.
    pub fn push_front_succ(&mut self, id: Id, now: Time) {
        if id == self.me.id {
            return;
        }
        let mut cands = std::mem::take(&mut self.succs);
        cands.retain(|x| *x != id);
        self.candidates = cands;
        self.succs = vec![id];
        self.rebuild_succs(now);
    }

    /// Replaces the candidates behind S1 with what S1 reported.
    pub fn set_candidates(&mut self, ids: Vec<Id>, now: Time) {
        self.candidates = ids;
        self.rebuild_succs(now);
    }

    /// S1 followed by the verified live candidates, strictly clockwise, at
    /// most `r` entries, each other peer once (STAB-5, C-L1). Like Chord,
    /// the list is S1 plus what S1 reports, never an old entry S1 left out.
    pub fn rebuild_succs(&mut self, now: Time) {
        let Some(s1) = self.succs.first().copied() else {
            return;
        };
        let me = self.me.id;
        let d1 = me.distance_to(&s1);
        let mut rest: Vec<Id> = self
            .candidates
            .iter()
            .copied()
            .filter(|c| *c != me && me.distance_to(c) > d1 && self.is_live(c, now))
            .collect();
        rest.sort_by_key(|c| me.distance_to(c));
        rest.dedup();
        rest.truncate(self.r.saturating_sub(1));
        self.succs = std::iter::once(s1).chain(rest).collect();
    }

    /// Takes S1 out (it failed or left): S2 becomes S1 (STAB-4).
    pub fn drop_succ1(&mut self) -> Option<Id> {
        if self.succs.is_empty() {
            return None;
        }
        let gone = self.succs.remove(0);
        self.candidates = self.succs.iter().skip(1).copied().collect();
        Some(gone)
    }

    /// A node that is its own successor takes the closest live verified
    /// peer clockwise it knows (Chord's stabilise with succ = self finds
    /// x = pred in (n, n); a first peer also knows every joiner it
    /// admitted, and the closest of them saves walking back one peer per
    /// round).
    pub fn adopt_closest_as_succ(&mut self, now: Time) -> bool {
        if !self.succs.is_empty() {
            return false;
        }
        let me = self.me.id;
        let best = self
            .known
            .iter()
            .filter(|k| k.is_live(now) && k.peer.id != me)
            .min_by_key(|k| me.distance_to(&k.peer.id))
            .map(|k| k.peer.id);
        match best {
            Some(p) => {
                self.succs.push(p);
                true
            }
            None => false,
        }
    }

    // ----- fingers ------------------------------------------------------

    /// Replaces the finger peers with those of a completed fix-fingers round.
    pub fn set_fingers(&mut self, mut ids: Vec<Id>) {
        let me = self.me.id;
        ids.retain(|i| *i != me);
        ids.sort_by_key(|i| me.distance_to(i));
        ids.dedup();
        self.fingers = ids;
    }

    /// Adds one finger peer (a round's partial result, or the
    /// `query-mutates` fault).
    pub fn add_finger(&mut self, id: Id) {
        if id != self.me.id && !self.fingers.contains(&id) {
            self.fingers.push(id);
            let me = self.me.id;
            self.fingers.sort_by_key(|i| me.distance_to(i));
        }
    }

    /// The live verified peers the node knows in its routing state:
    /// successors, fingers and predecessor, each once, sorted clockwise
    /// from `me`.
    fn routing_peers(&self, now: Time) -> Vec<&Known> {
        let me = self.me.id;
        let mut out: Vec<&Known> = Vec::with_capacity(self.succs.len() + self.fingers.len() + 1);
        for id in self
            .succs
            .iter()
            .chain(self.fingers.iter())
            .chain(self.pred.iter())
        {
            if let Some(k) = self.get(id)
                && k.is_live(now)
                && *id != me
                && !out.iter().any(|o| o.peer.id == *id)
            {
                out.push(k);
            }
        }
        out.sort_by_key(|k| me.distance_to(&k.peer.id));
        out
    }

    /// The distinct fingers `(i, peer)`: finger `i` is the first live peer
    /// at or after `me + 2^i` that the node knows (QUERY-5); an index is
    /// listed when its entry differs from the previous index's (QUERY-4),
    /// at most [`MAX_F_LINKS`]. A start past every known peer wraps to
    /// `me` itself, which is not listed.
    pub fn fingers(&self, now: Time) -> Vec<(u8, Peer)> {
        let me = self.me.id;
        let peers = self.routing_peers(now);
        // distance >= 2^i exactly when the distance has more than i bits.
        let bits: Vec<u32> = peers
            .iter()
            .map(|k| 160 - me.distance_to(&k.peer.id).common_prefix_bits(&Id::ZERO))
            .collect();
        let mut out: Vec<(u8, Peer)> = Vec::new();
        let mut j = 0;
        for i in 0..160u8 {
            while j < bits.len() && bits[j] <= u32::from(i) {
                j += 1;
            }
            if j == bits.len() {
                break;
            }
            if out.last().is_none_or(|(_, p)| p.id != peers[j].peer.id) {
                out.push((i, peers[j].peer));
                if out.len() == MAX_F_LINKS {
                    break;
                }
            }
        }
        out
    }

    // ----- routing and reports -----------------------------------------

    /// QUERY-2: where to redirect a request for `key` this node is not
    /// responsible for: the known live peer in (me, key] closest to the
    /// key, else S1 (the key is then in (me, S1)). A lone node with a
    /// predecessor treats it as its successor.
    pub fn next_hop(&self, key: &Id, now: Time) -> Option<Peer> {
        let peers = self.routing_peers(now);
        let ids: Vec<Id> = peers.iter().map(|k| k.peer.id).collect();
        if let Some(best) = closest_preceding(&self.me.id, key, ids.iter()) {
            return self.peer(&best);
        }
        if let Some(s1) = self.succs.first()
            && self.is_live(s1, now)
        {
            return self.peer(s1);
        }
        // S1 failed or is `me`: the nearest live peer clockwise.
        peers.first().map(|k| k.peer)
    }

    /// The DHT-Link set (WIRE-5, QUERY-4, QUERY-5): P1 when known and
    /// verified, S1..Sr, and the distinct fingers, each with the seconds
    /// left of its entry (never 0: a lapsed entry is not reported, STAB-6).
    /// `stale` is the `stale-links` fault: every expires becomes 0.
    pub fn links(&self, now: Time, stale: bool) -> Vec<Link> {
        let mut out = Vec::with_capacity(1 + self.succs.len() + 8);
        let mut push = |kind: LinkKind, depth: u8, k: &Known| {
            let left = secs_left(now, k.expires_at);
            if left > 0 && k.verified.is_some() {
                out.push(Link {
                    link: LinkType { kind, depth },
                    peer: k.peer,
                    expires: if stale { 0 } else { left },
                });
            }
        };
        if let Some(k) = self.pred.and_then(|p| self.get(&p)) {
            push(LinkKind::P, 1, k);
        }
        let mut depth = 0u8;
        for id in &self.succs {
            if let Some(k) = self.get(id)
                && k.is_live(now)
            {
                depth += 1;
                push(LinkKind::S, depth, k);
            }
        }
        for (i, p) in self.fingers(now) {
            if let Some(k) = self.get(&p.id) {
                push(LinkKind::F, i, k);
            }
        }
        out
    }

    /// Everyone the node keeps state about and must keep reachable
    /// (NAT-5): predecessor, successors and finger peers, each once.
    pub fn neighbours(&self) -> Vec<Id> {
        let mut out: Vec<Id> = Vec::new();
        for id in self
            .pred
            .iter()
            .chain(self.succs.iter())
            .chain(self.fingers.iter())
        {
            if !out.contains(id) {
                out.push(*id);
            }
        }
        out
    }

    /// The rough number of peers in the ring, as log2, from the density of
    /// the successor list (used to bound redirects, JOIN-2).
    pub fn log2_size(&self) -> u32 {
        let ids: Vec<Id> = self.succs.clone();
        log2_size(&self.me.id, &ids)
    }

    /// Bytes held, roughly (for the simulator's memory figures).
    pub fn memory(&self) -> usize {
        self.known.capacity() * std::mem::size_of::<Known>()
            + (self.succs.capacity() + self.candidates.capacity() + self.fingers.capacity())
                * std::mem::size_of::<Id>()
    }
}

/// log2 of the ring size suggested by `ids`, the successors of `from` in
/// order: 2^160 divided by the mean gap between them. 1 when unknown.
pub(crate) fn log2_size(from: &Id, ids: &[Id]) -> u32 {
    let Some(last) = ids.last() else {
        return 1;
    };
    let span = from.distance_to(last);
    let span_bits = 160 - span.common_prefix_bits(&Id::ZERO);
    let count_bits = usize::BITS - ids.len().leading_zeros() - 1;
    // mean gap ~ 2^(span_bits - count_bits); size ~ 2^(160 - that)
    (161 + count_bits).saturating_sub(span_bits).clamp(1, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(top: u8) -> Id {
        let mut b = [0u8; 20];
        b[0] = top;
        Id(b)
    }

    fn peer(top: u8) -> Peer {
        Peer {
            id: id(top),
            addr: SocketAddr::from(([127, 0, 0, top], 5000)),
        }
    }

    fn table_with(me: u8, others: &[u8]) -> Table {
        let now = Time::ZERO;
        let mut t = Table::new(peer(me), 4);
        for o in others {
            t.verify(peer(*o), now, 60);
        }
        t
    }

    #[test]
    fn successor_list_is_ordered_and_verified_only() {
        let now = Time::ZERO;
        let mut t = table_with(10, &[20, 30, 50]);
        t.learn(peer(40), now, 60); // reported, never verified
        t.push_front_succ(id(20), now);
        t.set_candidates(vec![id(50), id(30), id(40), id(10)], now);
        assert_eq!(t.succ_ids(), &[id(20), id(30), id(50)]);
    }

    #[test]
    fn fingers_are_first_known_at_or_after_start() {
        let now = Time::ZERO;
        let mut t = table_with(0, &[1, 64, 200]);
        t.push_front_succ(id(1), now);
        t.set_fingers(vec![id(64), id(200)]);
        let f = t.fingers(now);
        // Starts up to 2^152 land on 1 (id(1) = 2^152), up to 2^158 on
        // 64 (= 2^158), 2^159 (= 128<<152) on 200.
        assert_eq!(
            f.iter().map(|(i, p)| (*i, p.id)).collect::<Vec<_>>(),
            vec![(0, id(1)), (153, id(64)), (159, id(200))]
        );
    }

    #[test]
    fn next_hop_prefers_closest_preceding_then_s1() {
        let now = Time::ZERO;
        let mut t = table_with(10, &[20, 60, 90]);
        t.push_front_succ(id(20), now);
        t.set_fingers(vec![id(60), id(90)]);
        assert_eq!(t.next_hop(&id(70), now).map(|p| p.id), Some(id(60)));
        assert_eq!(t.next_hop(&id(60), now).map(|p| p.id), Some(id(60)));
        assert_eq!(t.next_hop(&id(15), now).map(|p| p.id), Some(id(20)));
    }

    #[test]
    fn stab_6_expired_entries_are_not_reported_and_dropped() {
        let mut t = table_with(10, &[20]);
        t.push_front_succ(id(20), Time::ZERO);
        assert_eq!(t.links(Time::from_millis(59_000), false).len(), 2); // S1, F0
        assert!(t.links(Time::from_millis(60_000), false).is_empty());
        assert_eq!(t.expire(Time::from_millis(60_000)).len(), 1);
        assert!(t.succ1().is_none());
    }

    #[test]
    fn size_estimate() {
        // 4 successors spread over 1/16 of the ring: about 64 peers.
        let me = Id::ZERO;
        let ids: Vec<Id> = (1..=4u8).map(|i| id(i * 4)).collect();
        assert_eq!(log2_size(&me, &ids), 6);
        assert_eq!(log2_size(&me, &[]), 1);
    }
}
