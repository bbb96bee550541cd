/*!
The only randomness of the core: transaction branches, tags and Call-IDs,
drawn from a generator seeded by [`Config::seed`](super::Config::seed), so
a simulator run is reproducible from its seed.
*/

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// RFC 3261 §8.1.1.7: every branch starts with the magic cookie (WIRE-1).
pub(crate) const COOKIE: &str = "z9hG4bK";

pub(crate) struct Ids {
    rng: ChaCha8Rng,
    cseq: u32,
}

impl Ids {
    pub(crate) fn new(seed: u64) -> Ids {
        Ids {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cseq: 0,
        }
    }

    /// A fresh branch: the number that identifies our client transaction,
    /// and its text `z9hG4bK` + 16 hex digits.
    pub(crate) fn branch(&mut self) -> (u64, String) {
        let n = self.rng.next_u64();
        (n, format!("{COOKIE}{n:016x}"))
    }

    /// A Call-ID (unique per request unless a registration keeps one).
    pub(crate) fn call_id(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    pub(crate) fn tag(&mut self) -> String {
        format!("{:08x}", self.rng.next_u32())
    }

    /// A STUN transaction ID.
    pub(crate) fn bytes12(&mut self) -> [u8; 12] {
        let mut b = [0u8; 12];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.rng.next_u32() >> 8) as f64 / f64::from(1u32 << 24)
    }

    pub(crate) fn next_cseq(&mut self) -> u32 {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        self.cseq
    }
}

/// The number of one of our branches, or `None` when the branch is not one
/// we made.
pub(crate) fn branch_number(branch: &str) -> Option<u64> {
    let hex = branch.strip_prefix(COOKIE)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// FNV-1a over some byte strings: the key of a server transaction and a
/// deterministic To-tag (so a response computed again is the same).
pub(crate) fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate the parts, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_ours_and_reproducible() {
        let (mut a, mut b) = (Ids::new(7), Ids::new(7));
        let (n, text) = a.branch();
        assert_eq!(b.branch(), (n, text.clone()));
        assert!(text.starts_with(COOKIE));
        assert_eq!(branch_number(&text), Some(n));
        assert_eq!(branch_number("z9hG4bKabc"), None);
        assert_eq!(branch_number("xyz"), None);
        assert_ne!(fnv64(&[b"ab", b"c"]), fnv64(&[b"a", b"bc"]));
    }
}
