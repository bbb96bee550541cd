/*!
The ground truth: which peers are live (the set L of CHECKS.md), kept by
the simulator because it starts, kills and stops them.

Nothing here asks a node what it believes. Correctness questions (who is
responsible for a key, what a peer's successors should be) are answered
from this set with `p2psip_wire::Ring`, so a bug in the node cannot hide
itself.
*/

use std::collections::BTreeMap;
use std::ops::Bound;

use p2psip_node::Time;
use p2psip_wire::{Id, Ring};

use crate::net::Endpoint;

/// The live peers, in ring order, and when membership last changed.
#[derive(Debug, Default)]
pub struct Truth {
    live: BTreeMap<Id, Endpoint>,
    last_change: Time,
    last_departure: Option<Time>,
    changes: u64,
    /// `p2psip_wire::Ring` of `live`, rebuilt after membership changes.
    ring: Option<(u64, Ring)>,
}

impl Truth {
    /// A peer started (it counts as live from its first instant, CHECKS: the
    /// harness knows L because it started the peers).
    pub fn insert(&mut self, id: Id, e: Endpoint, now: Time) {
        self.live.insert(id, e);
        self.changed(now);
    }

    /// A peer was killed or told to leave.
    pub fn remove(&mut self, id: &Id, now: Time) -> bool {
        let had = self.live.remove(id).is_some();
        if had {
            self.changed(now);
            self.last_departure = Some(now);
        }
        had
    }

    fn changed(&mut self, now: Time) {
        self.last_change = now;
        self.changes += 1;
    }

    /// |L|.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.live.contains_key(id)
    }

    pub fn endpoint(&self, id: &Id) -> Option<Endpoint> {
        self.live.get(id).copied()
    }

    /// The time of the last membership event (a start, kill or leave).
    pub fn last_change(&self) -> Time {
        self.last_change
    }

    /// The time of the last kill or leave.
    pub fn last_departure(&self) -> Option<Time> {
        self.last_departure
    }

    /// How many membership events there were.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Live peers in ring (ID) order.
    pub fn iter(&self) -> impl Iterator<Item = (&Id, &Endpoint)> {
        self.live.iter()
    }

    /// succ_L(k): the first live peer at or after `k`, wrapping.
    pub fn successor(&self, k: &Id) -> Option<(Id, Endpoint)> {
        self.live
            .range(k..)
            .next()
            .or_else(|| self.live.iter().next())
            .map(|(i, e)| (*i, *e))
    }

    /// The first live peer strictly after `n`, wrapping.
    pub fn next_after(&self, n: &Id) -> Option<(Id, Endpoint)> {
        self.live
            .range((Bound::Excluded(n), Bound::Unbounded))
            .next()
            .or_else(|| self.live.iter().next())
            .map(|(i, e)| (*i, *e))
    }

    /// The last live peer strictly before `n`, wrapping.
    pub fn prev_before(&self, n: &Id) -> Option<(Id, Endpoint)> {
        self.live
            .range(..n)
            .next_back()
            .or_else(|| self.live.iter().next_back())
            .map(|(i, e)| (*i, *e))
    }

    /// The ideal ring of the live peers (`p2psip_wire::Ring`), cached until
    /// the next membership event.
    pub fn ring(&mut self) -> &Ring {
        let stale = self.ring.as_ref().is_none_or(|(at, _)| *at != self.changes);
        if stale {
            self.ring = Some((self.changes, Ring::new(self.live.keys().copied())));
        }
        // Set just above when it was missing.
        &self.ring.as_ref().expect("ring cached").1
    }

    /// The endpoint that should answer for `k`: succ_L(k) by the wire crate's
    /// ring oracle.
    pub fn responsible(&mut self, k: &Id) -> Option<Endpoint> {
        let id = self.ring().responsible(k)?;
        self.endpoint(&id)
    }

    /// Approximate bytes held: B-tree entries (key, value, about a third
    /// of each node unused, node headers) and the cached ring.
    pub fn memory(&self) -> usize {
        let entry = std::mem::size_of::<Id>() + std::mem::size_of::<Endpoint>();
        self.live.len() * (entry * 3 / 2 + 8)
            + self
                .ring
                .as_ref()
                .map_or(0, |(_, r)| r.len() * std::mem::size_of::<Id>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        let mut b = [0u8; 20];
        b[0] = n;
        Id(b)
    }

    #[test]
    fn successor_and_neighbours_wrap() {
        let mut t = Truth::default();
        for (n, e) in [(10, 1), (30, 2), (50, 3)] {
            t.insert(id(n), e, Time::ZERO);
        }
        assert_eq!(t.successor(&id(30)), Some((id(30), 2)));
        assert_eq!(t.successor(&id(51)), Some((id(10), 1)));
        assert_eq!(t.next_after(&id(30)), Some((id(50), 3)));
        assert_eq!(t.next_after(&id(50)), Some((id(10), 1)));
        assert_eq!(t.prev_before(&id(10)), Some((id(50), 3)));
        assert_eq!(t.responsible(&id(31)), Some(3));
        assert!(t.remove(&id(50), Time::from_millis(7)));
        assert_eq!(t.responsible(&id(31)), Some(1), "the cached ring follows");
        assert_eq!(t.last_change(), Time::from_millis(7));
        assert_eq!(t.changes(), 4);
    }
}
