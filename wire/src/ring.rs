/*!
Ring math over sets of peers: responsibility (ID-6), closest-preceding
selection (QUERY-2), and the harness's oracle of an ideal ring (CHECKS.md:
succ_L, successor lists, fingers, replica holders).

The oracle is computed from this crate alone, never from a node's
internals, so a bug in a node cannot hide itself.
*/

use crate::id::Id;

/// ID-6: a node `n` whose predecessor is `pred` is responsible for `key`
/// iff `key` is in `(pred, n]`; with no predecessor it owns every key.
pub fn is_responsible(n: &Id, pred: Option<&Id>, key: &Id) -> bool {
    match pred {
        None => true,
        Some(p) => key.in_open_closed(p, n),
    }
}

/// QUERY-2: among `known` peers, the one in `(n, key]` closest to `key`
/// (Chord's `closest_preceding_node`, where a peer equal to the key
/// counts). `None` when no known peer lies in that arc.
pub fn closest_preceding<'a>(
    n: &Id,
    key: &Id,
    known: impl IntoIterator<Item = &'a Id>,
) -> Option<Id> {
    let mut best: Option<(Id, Id)> = None; // (distance from key back to peer, peer)
    for p in known {
        if p == n || !p.in_open_closed(n, key) {
            continue;
        }
        let gap = p.distance_to(key);
        if best.is_none_or(|(g, _)| gap < g) {
            best = Some((gap, *p));
        }
    }
    best.map(|(_, p)| p)
}

/// The sorted set of live peer IDs: the ground truth a harness knows
/// because it started the peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    ids: Vec<Id>,
}

impl Ring {
    pub fn new(ids: impl IntoIterator<Item = Id>) -> Ring {
        let mut ids: Vec<Id> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        Ring { ids }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.ids.binary_search(id).is_ok()
    }

    pub fn insert(&mut self, id: Id) {
        if let Err(at) = self.ids.binary_search(&id) {
            self.ids.insert(at, id);
        }
    }

    pub fn remove(&mut self, id: &Id) -> bool {
        match self.ids.binary_search(id) {
            Ok(at) => {
                self.ids.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// succ_L(k): the first live ID at or after `k`, wrapping.
    pub fn successor(&self, k: &Id) -> Option<Id> {
        if self.ids.is_empty() {
            return None;
        }
        let at = self.ids.partition_point(|x| x < k);
        Some(self.ids[at % self.ids.len()])
    }

    /// The peer responsible for `k` in the ideal ring: succ_L(k) (ID-6).
    pub fn responsible(&self, k: &Id) -> Option<Id> {
        self.successor(k)
    }

    /// The first live ID strictly after `n`, wrapping (`n` itself in a
    /// ring of one).
    pub fn next_after(&self, n: &Id) -> Option<Id> {
        if self.ids.is_empty() {
            return None;
        }
        let at = self.ids.partition_point(|x| x <= n);
        Some(self.ids[at % self.ids.len()])
    }

    /// The last live ID strictly before `n`, wrapping.
    pub fn predecessor_of(&self, n: &Id) -> Option<Id> {
        if self.ids.is_empty() {
            return None;
        }
        let at = self.ids.partition_point(|x| x < n);
        Some(self.ids[(at + self.ids.len() - 1) % self.ids.len()])
    }

    /// The ideal successor list of `n`: the next `r` live peers clockwise,
    /// each other peer at most once (STAB-5: in rings of `r` or fewer
    /// others, each other peer once, in ring order).
    pub fn successor_list(&self, n: &Id, r: usize) -> Vec<Id> {
        let mut out = Vec::with_capacity(r);
        let mut cur = *n;
        for _ in 0..r {
            match self.next_after(&cur) {
                Some(s) if s != *n && !out.contains(&s) => {
                    out.push(s);
                    cur = s;
                }
                _ => break,
            }
        }
        out
    }

    /// The ideal predecessor of `n` (`None` when `n` is alone).
    pub fn ideal_predecessor(&self, n: &Id) -> Option<Id> {
        self.predecessor_of(n).filter(|p| p != n)
    }

    /// The ideal finger `i` of `n`: succ_L(n + 2^i).
    pub fn finger(&self, n: &Id, i: u8) -> Option<Id> {
        self.successor(&n.finger_start(i))
    }

    /// The peers that should hold the primary and each replica of a
    /// resource whose IDs are `ids` (C-R1/C-R2). Holders may coincide.
    pub fn holders(&self, ids: &[Id]) -> Vec<Id> {
        ids.iter().filter_map(|k| self.successor(k)).collect()
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
    fn id_6_responsibility() {
        assert!(is_responsible(&id(10), Some(&id(5)), &id(10)));
        assert!(is_responsible(&id(10), Some(&id(5)), &id(6)));
        assert!(!is_responsible(&id(10), Some(&id(5)), &id(5)));
        assert!(!is_responsible(&id(10), Some(&id(5)), &id(11)));
        assert!(is_responsible(&id(10), Some(&id(200)), &id(250)));
        assert!(is_responsible(&id(10), None, &id(99)));
    }

    #[test]
    fn query_2_closest_preceding_counts_the_key_itself() {
        let known = [id(20), id(40), id(60), id(90)];
        assert_eq!(closest_preceding(&id(10), &id(60), &known), Some(id(60)));
        assert_eq!(closest_preceding(&id(10), &id(59), &known), Some(id(40)));
        assert_eq!(closest_preceding(&id(10), &id(15), &known), None);
        // Wrapping: from 90 towards 30 the arc (90, 30] holds 20.
        assert_eq!(closest_preceding(&id(90), &id(30), &known), Some(id(20)));
    }

    #[test]
    fn oracle() {
        let ring = Ring::new([id(50), id(10), id(30), id(30)]);
        assert_eq!(ring.ids(), &[id(10), id(30), id(50)]);
        assert_eq!(ring.successor(&id(30)), Some(id(30)));
        assert_eq!(ring.successor(&id(31)), Some(id(50)));
        assert_eq!(ring.successor(&id(51)), Some(id(10)));
        assert_eq!(ring.successor_list(&id(30), 4), vec![id(50), id(10)]);
        assert_eq!(ring.ideal_predecessor(&id(10)), Some(id(50)));
        let alone = Ring::new([id(7)]);
        assert_eq!(alone.successor_list(&id(7), 4), vec![]);
        assert_eq!(alone.ideal_predecessor(&id(7)), None);
        assert_eq!(alone.successor(&id(200)), Some(id(7)));
    }
}
