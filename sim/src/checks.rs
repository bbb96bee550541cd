/*!
The global ring checks of CHECKS.md (C-G1..C-G5), on the nodes' state
read through the core's read-only view and judged against the ground
truth.

bestSucc(p) is the first entry of p's successor list that is live by the
ground truth (a peer with an empty list is its own successor, JOIN-8).
Following bestSucc from every live peer gives a functional graph; its
cycles are the rings.

- C-G1 AtLeastOneRing: the graph has a cycle.
- C-G2 AtMostOneRing: it has at most one.
- C-G3 OrderedRing: every cycle goes round the identifier circle exactly
  once (successive members increase clockwise; one wrap).
- C-G4 ConnectedAppendages: every live peer reaches a cycle (a peer still
  joining, or with no live entry, does not).
- C-G5 Ideal: the ring is L; every peer's P1 is its live predecessor, its
  S1..Sr the next r live peers (`p2psip_wire::Ring::successor_list`), and
  each distinct finger of start n+2^i is succ_L(n+2^i).
*/

use p2psip_node::PhaseKind;
use p2psip_wire::{Id, Ring};
use serde::Serialize;

use crate::sim::Sim;

/// The verdict of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingCheck {
    /// |L|.
    pub live: usize,
    /// Live peers not yet members (joining).
    pub joining: usize,
    /// Cycles of bestSucc.
    pub rings: usize,
    /// Live peers on a cycle.
    pub on_ring: usize,
    pub g1_at_least_one_ring: bool,
    pub g2_at_most_one_ring: bool,
    pub g3_ordered_ring: bool,
    pub g4_connected_appendages: bool,
    pub g5_ideal: bool,
    /// What broke the first failing check, for a human.
    pub problem: Option<String>,
}

impl RingCheck {
    /// C-G1..C-G4 (Zave's invariants).
    pub fn invariants(&self) -> bool {
        self.g1_at_least_one_ring
            && self.g2_at_most_one_ring
            && self.g3_ordered_ring
            && self.g4_connected_appendages
    }

    /// C-G1..C-G5.
    pub fn ideal(&self) -> bool {
        self.invariants() && self.g5_ideal
    }
}

const NONE: u32 = u32::MAX;

/// Takes a snapshot of every live node and checks C-G1..C-G5. `r` is the
/// successor-list length. The ideal-state check stops looking at further
/// nodes after the first one that differs (the invariants are always
/// computed in full).
pub fn check_ring(sim: &mut Sim, r: usize) -> RingCheck {
    let ring: Ring = sim.truth_mut().ring().clone();
    let ids = ring.ids();
    let n = ids.len();
    let pos = |id: &Id| ids.binary_search(id).ok().map(|p| p as u32);
    let mut best = vec![NONE; n];
    let mut joining = 0;
    let mut ideal = n > 0;
    let mut problem: Option<String> = None;
    let note = |p: &mut Option<String>, s: String| {
        if p.is_none() {
            *p = Some(s);
        }
    };
    for (k, id) in ids.iter().enumerate() {
        let Some(e) = sim.truth().endpoint(id) else {
            continue;
        };
        let Some(node) = sim.node(e) else {
            continue;
        };
        if node.phase() != PhaseKind::Member {
            joining += 1;
            if ideal {
                ideal = false;
                note(&mut problem, format!("{} is {:?}", node.me(), node.phase()));
            }
            continue;
        }
        let succs = node.successors();
        best[k] = if succs.is_empty() {
            k as u32
        } else {
            succs.iter().find_map(|s| pos(&s.id)).unwrap_or(NONE)
        };
        if !ideal {
            continue;
        }
        let want_pred = ring.ideal_predecessor(id);
        let pred = node.predecessor().map(|p| p.id);
        if pred != want_pred {
            ideal = false;
            note(
                &mut problem,
                format!(
                    "{}: P1 {} want {}",
                    node.me(),
                    short(pred.as_ref()),
                    short(want_pred.as_ref())
                ),
            );
            continue;
        }
        let want = ring.successor_list(id, r);
        if succs.len() != want.len() || succs.iter().zip(&want).any(|(s, w)| s.id != *w) {
            ideal = false;
            let have: Vec<String> = succs.iter().map(|s| short(Some(&s.id))).collect();
            let want: Vec<String> = want.iter().map(|w| short(Some(w))).collect();
            note(
                &mut problem,
                format!("{}: S {have:?} want {want:?}", node.me()),
            );
            continue;
        }
        for (i, f) in node.fingers() {
            let w = ring.finger(id, i);
            if w != Some(f.id) {
                ideal = false;
                note(
                    &mut problem,
                    format!(
                        "{}: F{i} {} want {}",
                        node.me(),
                        short(Some(&f.id)),
                        short(w.as_ref())
                    ),
                );
                break;
            }
        }
    }

    // Cycles of the functional graph `best`: 0 unseen, 1 on the current
    // walk, 2 finished. `reach[k]`: k's walk ends on a cycle.
    let mut state = vec![0u8; n];
    let mut on_cycle = vec![false; n];
    let mut reach = vec![false; n];
    let mut rings = 0;
    let mut ordered = true;
    let mut path = Vec::new();
    for s in 0..n {
        if state[s] != 0 {
            continue;
        }
        path.clear();
        let mut k = s;
        let ends_on_cycle = loop {
            if state[k] == 2 {
                break reach[k];
            }
            if state[k] == 1 {
                // A new cycle: from k round to k.
                rings += 1;
                let mut wraps = 0;
                let mut len = 0;
                let mut c = k;
                loop {
                    on_cycle[c] = true;
                    len += 1;
                    let next = best[c] as usize;
                    if next <= c {
                        wraps += 1;
                    }
                    c = next;
                    if c == k {
                        break;
                    }
                }
                // A cycle of one is a lone peer pointing at itself.
                if wraps != 1 && !(len == 1 && n == 1) {
                    ordered = false;
                }
                break true;
            }
            state[k] = 1;
            path.push(k);
            if best[k] == NONE {
                break false;
            }
            k = best[k] as usize;
        };
        for &p in &path {
            state[p] = 2;
            reach[p] = ends_on_cycle;
        }
    }
    let on_ring = on_cycle.iter().filter(|c| **c).count();
    let connected = reach.iter().all(|r| *r);
    let g1 = rings >= 1;
    let g2 = rings <= 1;
    if ideal && on_ring != n {
        ideal = false;
        note(
            &mut problem,
            format!("the ring holds {on_ring} of {n} live peers"),
        );
    }
    if !(g1 && g2 && ordered && connected) {
        let why = if !g1 {
            "no ring (C-G1)".to_owned()
        } else if !g2 {
            format!("{rings} rings (C-G2)")
        } else if !ordered {
            "a ring laps the identifier circle more than once (C-G3)".to_owned()
        } else {
            let loose = reach.iter().filter(|r| !**r).count();
            format!("{loose} live peers do not reach the ring (C-G4)")
        };
        problem = Some(why);
    }
    RingCheck {
        live: n,
        joining,
        rings,
        on_ring,
        g1_at_least_one_ring: g1,
        g2_at_most_one_ring: g2,
        g3_ordered_ring: ordered,
        g4_connected_appendages: connected,
        g5_ideal: ideal,
        problem,
    }
}

/// The first 8 hex digits of an ID, or `-`.
pub fn short(id: Option<&Id>) -> String {
    id.map_or_else(|| "-".to_owned(), |i| i.to_hex()[..8].to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sim::SimConfig;

    #[test]
    fn a_small_ring_becomes_ideal_and_a_kill_breaks_it() {
        let mut sim = Sim::new(SimConfig::new(3));
        let a = sim.add_node(None);
        for _ in 0..7 {
            sim.run_for(Duration::from_millis(100)).unwrap();
            sim.add_node(Some(a));
        }
        let early = check_ring(&mut sim, 4);
        assert!(!early.ideal());
        sim.run_for(Duration::from_secs(12)).unwrap();
        let c = check_ring(&mut sim, 4);
        assert!(c.ideal(), "{c:?}");
        assert_eq!((c.rings, c.on_ring, c.live), (1, 8, 8));
        sim.kill(3);
        let c = check_ring(&mut sim, 4);
        assert!(!c.g5_ideal && c.invariants(), "{c:?}");
        // Failure detection alone takes Timer F (6.4 s at the fast values).
        sim.run_for(Duration::from_secs(30)).unwrap();
        let c = check_ring(&mut sim, 4);
        assert!(c.ideal(), "{c:?}");
    }
}
