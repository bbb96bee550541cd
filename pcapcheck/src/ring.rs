/*!
Ring arithmetic for the analysis's hot path. [`Id`] keeps its 160 bits as
20 bytes and subtracts them byte by byte; here a position is two machine
words (the high 32 bits and the low 128), so a clockwise distance is two
subtractions and comparing two distances is two integer compares. The
results are exactly those of `Id::distance_to`, `Id::in_open` and
`Id::in_open_closed` (tested against them below).
*/

use std::hash::{Hash, Hasher};

use p2psip_wire::Id;

/// A ring position, or a clockwise distance: numeric order (high word
/// first) is the order of the 160-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    hi: u32,
    lo: u128,
}

/// Three words into the hasher (an `Id` hashes its length and 20 bytes).
impl Hash for Pos {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.lo as u64);
        state.write_u64((self.lo >> 64) as u64);
        state.write_u32(self.hi);
    }
}

impl Pos {
    #[inline]
    pub(crate) fn of(id: &Id) -> Pos {
        let b = &id.0;
        let mut hi = [0u8; 4];
        let mut lo = [0u8; 16];
        hi.copy_from_slice(&b[..4]);
        lo.copy_from_slice(&b[4..]);
        Pos {
            hi: u32::from_be_bytes(hi),
            lo: u128::from_be_bytes(lo),
        }
    }

    /// The clockwise distance from `self` to `to` (`to - self` modulo
    /// 2^160), as `Id::distance_to`.
    #[inline]
    pub(crate) fn distance_to(self, to: Pos) -> Pos {
        let (lo, borrow) = to.lo.overflowing_sub(self.lo);
        Pos {
            hi: to.hi.wrapping_sub(self.hi).wrapping_sub(u32::from(borrow)),
            lo,
        }
    }

    /// Is `self` in the clockwise arc `(from, to]`? With `from == to` that
    /// is the whole ring (`Id::in_open_closed`).
    #[inline]
    pub(crate) fn in_open_closed(self, from: Pos, to: Pos) -> bool {
        if from == to {
            return true;
        }
        from.distance_to(self) <= from.distance_to(to) && self != from
    }

    /// Is `self` in the clockwise arc `(from, to)`? With `from == to` that
    /// is every position but `from` (`Id::in_open`).
    #[inline]
    pub(crate) fn in_open(self, from: Pos, to: Pos) -> bool {
        if from == to {
            return self != from;
        }
        self != from && from.distance_to(self) < from.distance_to(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random IDs, plus the values where borrows
    /// cross the word boundary.
    fn ids() -> Vec<Id> {
        let mut out = vec![Id::ZERO, Id::MAX, Id::pow2(0), Id::pow2(127), Id::pow2(128)];
        out.push(Id::pow2(128).predecessor());
        out.push(Id::pow2(159));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..60 {
            let mut b = [0u8; 20];
            for byte in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
            // Some that share the high word with another one.
            if x.is_multiple_of(3)
                && let Some(prev) = out.last()
            {
                b[..4].copy_from_slice(&prev.0[..4]);
            }
            out.push(Id(b));
        }
        out
    }

    #[test]
    fn matches_id_arithmetic() {
        let ids = ids();
        for a in &ids {
            assert_eq!(Pos::of(a), Pos::of(&Id::ZERO).distance_to(Pos::of(a)));
            for b in &ids {
                let d = a.distance_to(b);
                assert_eq!(Pos::of(a).distance_to(Pos::of(b)), Pos::of(&d));
                assert_eq!(Pos::of(a).cmp(&Pos::of(b)), a.cmp(b));
                for c in ids.iter().step_by(3) {
                    let (pa, pb, pc) = (Pos::of(a), Pos::of(b), Pos::of(c));
                    assert_eq!(pc.in_open_closed(pa, pb), c.in_open_closed(a, b));
                    assert_eq!(pc.in_open(pa, pb), c.in_open(a, b));
                    assert_eq!(pa.in_open_closed(pa, pb), a.in_open_closed(a, b));
                    assert_eq!(pb.in_open(pa, pb), b.in_open(a, b));
                }
            }
        }
    }
}
