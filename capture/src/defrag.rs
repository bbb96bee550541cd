//! IPv4 and IPv6 fragment reassembly in a bounded pool.
//!
//! etherparse has a defragmentation pool, but it has no bound on the
//! number of pending datagrams or their bytes, no timeout by capture time
//! and lets a later overlapping fragment silently overwrite an earlier
//! one. This pool bounds both count and bytes (evicting the oldest pending
//! datagram), expires datagrams by capture time, and treats overlaps
//! safely: an overlap carrying the same bytes (a duplicate) is accepted, an
//! overlap carrying different bytes drops the whole datagram with a
//! finding, as RFC 5722 requires for IPv6 and as is the only unambiguous
//! choice for IPv4 too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::{FindingKind, Timestamp};

/// Reassembled payloads cannot exceed what a 16-bit length can describe.
pub const MAX_DATAGRAM: u32 = 65_535;
/// Spare buffers kept for reuse.
const SPARES: usize = 4;

/// Identifies the fragments of one datagram (RFC 791 §3.2; RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    /// IPv4 protocol; 0 for IPv6, whose next header comes from the
    /// first fragment.
    pub proto: u8,
}

/// One fragment as seen on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `data` in the reassembled payload.
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
    /// Protocol (next header) of the reassembled payload.
    pub proto: u8,
}

/// A complete datagram payload.
#[derive(Debug)]
pub struct Reassembled {
    pub data: Vec<u8>,
    pub proto: u8,
    pub first_frame: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct FragLimits {
    pub max_datagrams: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    /// Received byte ranges, sorted and disjoint.
    ranges: Vec<(u32, u32)>,
    total: Option<u32>,
    proto: Option<u8>,
    first_frame: u64,
    first_ts: Timestamp,
}

/// Pending datagrams, bounded in count and bytes.
#[derive(Debug)]
pub struct Defrag {
    pending: HashMap<FragKey, Pending>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
    limits: FragLimits,
}

type Report<'r> = &'r mut dyn FnMut(FindingKind, String);

impl Defrag {
    pub fn new(limits: FragLimits) -> Defrag {
        Defrag {
            pending: HashMap::new(),
            bytes: 0,
            spare: Vec::new(),
            limits,
        }
    }

    /// Bytes held by pending datagrams.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    pub fn pending_datagrams(&self) -> usize {
        self.pending.len()
    }

    /// Adds a fragment; returns the datagram it completes, if any.
    pub fn add(
        &mut self,
        frag: Fragment<'_>,
        frame: u64,
        ts: Timestamp,
        report: Report<'_>,
    ) -> Option<Reassembled> {
        let len = frag.data.len() as u32;
        let end = frag.offset.saturating_add(len);
        if end > MAX_DATAGRAM {
            report(
                FindingKind::BadFragment,
                format!(
                    "fragment at offset {} of {len} bytes ends past 65535",
                    frag.offset
                ),
            );
            return None;
        }
        if frag.more && (len == 0 || !len.is_multiple_of(8)) {
            report(
                FindingKind::BadFragment,
                format!("non-final fragment of {len} bytes is not a multiple of 8"),
            );
            return None;
        }
        let key = frag.key;
        let known = self.pending.get(&key).map(|p| p.data.len());
        if known.is_none() && self.pending.len() >= self.limits.max_datagrams {
            self.evict_oldest(None, report);
        }
        // Memory: the buffer grows to the furthest end seen.
        let grow = (end as usize).saturating_sub(known.unwrap_or(0));
        while self.bytes + grow > self.limits.max_bytes {
            if !self.evict_oldest(Some(key), report) {
                report(
                    FindingKind::FragmentPoolOverflow,
                    format!(
                        "datagram {} from {} would hold more than {} bytes of fragments; dropped",
                        key.id, key.src, self.limits.max_bytes
                    ),
                );
                self.drop_datagram(&key);
                return None;
            }
        }
        let spare = &mut self.spare;
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            data: spare.pop().unwrap_or_default(),
            ranges: Vec::new(),
            total: None,
            proto: None,
            first_frame: frame,
            first_ts: ts,
        });
        let furthest = p.ranges.last().map_or(0, |r| r.1);
        let conflict = match p.total {
            Some(total) => end > total || (!frag.more && end != total),
            None => !frag.more && furthest > end,
        };
        if conflict {
            report(
                FindingKind::BadFragment,
                format!(
                    "fragment [{}, {end}) contradicts the datagram's end; datagram {} dropped",
                    frag.offset, key.id
                ),
            );
            self.drop_datagram(&key);
            return None;
        }
        let overlap_differs = p.ranges.iter().any(|&(s, e)| {
            let (lo, hi) = (s.max(frag.offset), e.min(end));
            lo < hi
                && p.data[lo as usize..hi as usize]
                    != frag.data[(lo - frag.offset) as usize..(hi - frag.offset) as usize]
        });
        if overlap_differs {
            report(
                FindingKind::FragmentOverlap,
                format!(
                    "fragment [{}, {end}) overlaps earlier fragments with different bytes; datagram {} from {} dropped",
                    frag.offset, key.id, key.src
                ),
            );
            self.drop_datagram(&key);
            return None;
        }
        if p.data.len() < end as usize {
            p.data.resize(end as usize, 0);
        }
        p.data[frag.offset as usize..end as usize].copy_from_slice(frag.data);
        self.bytes += grow;
        insert_range(&mut p.ranges, (frag.offset, end));
        if !frag.more {
            p.total = Some(end);
        }
        if frag.offset == 0 {
            p.proto = Some(frag.proto);
        }
        let complete = p.total.is_some_and(|t| p.ranges == [(0, t)]);
        if !complete {
            return None;
        }
        // Just looked up and complete, so present.
        let p = self.pending.remove(&key)?;
        self.bytes -= p.data.len();
        Some(Reassembled {
            data: p.data,
            // The fragment at offset 0 is part of a complete datagram.
            proto: p.proto.unwrap_or(frag.proto),
            first_frame: p.first_frame,
        })
    }

    /// Gives a reassembled buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < SPARES {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Drops datagrams older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: Timestamp, report: Report<'_>) {
        let timeout = self.limits.timeout;
        let expired: Vec<FragKey> = self
            .pending
            .iter()
            .filter(|(_, p)| now.since(p.first_ts) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(p) = self.take(&key) {
                report(
                    FindingKind::FragmentTimeout,
                    timeout_message(&key, &p, "timed out"),
                );
            }
        }
    }

    /// Reports every datagram still pending (end of capture).
    pub fn finish(&mut self, report: Report<'_>) {
        let mut left: Vec<(FragKey, Pending)> = self.pending.drain().collect();
        self.bytes = 0;
        left.sort_by_key(|(_, p)| p.first_frame);
        for (key, p) in left {
            report(
                FindingKind::FragmentTimeout,
                timeout_message(&key, &p, "never completed before the capture ended"),
            );
        }
    }

    /// Evicts the oldest pending datagram other than `keep`; false if
    /// there is none.
    fn evict_oldest(&mut self, keep: Option<FragKey>, report: Report<'_>) -> bool {
        let oldest = self
            .pending
            .iter()
            .filter(|(k, _)| Some(**k) != keep)
            .min_by_key(|(_, p)| (p.first_ts, p.first_frame))
            .map(|(k, _)| *k);
        let Some(key) = oldest else { return false };
        if let Some(p) = self.take(&key) {
            report(
                FindingKind::FragmentPoolOverflow,
                format!(
                    "fragment pool full: dropped pending datagram {} from {} (first fragment in frame {})",
                    key.id, key.src, p.first_frame
                ),
            );
        }
        true
    }

    fn take(&mut self, key: &FragKey) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.bytes -= p.data.len();
        Some(p)
    }

    fn drop_datagram(&mut self, key: &FragKey) {
        if let Some(p) = self.take(key) {
            self.recycle(p.data);
        }
    }
}

fn timeout_message(key: &FragKey, p: &Pending, what: &str) -> String {
    let have: u32 = p.ranges.iter().map(|(s, e)| e - s).sum();
    format!(
        "fragmented datagram {} from {} to {} (first fragment in frame {}, {have} bytes received) {what}",
        key.id, key.src, key.dst, p.first_frame
    )
}

/// Inserts `new` into sorted disjoint ranges, merging touching ones.
fn insert_range(ranges: &mut Vec<(u32, u32)>, new: (u32, u32)) {
    let (mut s, mut e) = new;
    ranges.retain(|&(rs, re)| {
        if re < s || rs > e {
            true
        } else {
            s = s.min(rs);
            e = e.max(re);
            false
        }
    });
    let at = ranges.partition_point(|r| r.0 < s);
    ranges.insert(at, (s, e));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 17,
        }
    }

    fn frag(id: u32, offset: u32, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
            proto: 17,
        }
    }

    fn limits() -> FragLimits {
        FragLimits {
            max_datagrams: 4,
            max_bytes: 1000,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn out_of_order_and_duplicate_fragments() {
        let mut d = Defrag::new(limits());
        let mut found = vec![];
        let mut r = |k, m| found.push((k, m));
        let data: Vec<u8> = (0..24).collect();
        assert!(
            d.add(frag(1, 16, false, &data[16..]), 3, Timestamp::ZERO, &mut r)
                .is_none()
        );
        assert!(
            d.add(frag(1, 0, true, &data[..8]), 1, Timestamp::ZERO, &mut r)
                .is_none()
        );
        assert!(
            d.add(frag(1, 0, true, &data[..8]), 2, Timestamp::ZERO, &mut r)
                .is_none()
        );
        let done = d
            .add(frag(1, 8, true, &data[8..16]), 4, Timestamp::ZERO, &mut r)
            .unwrap();
        assert_eq!(done.data, data);
        assert_eq!(done.first_frame, 3);
        assert!(found.is_empty());
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn conflicting_overlap_drops_the_datagram() {
        let mut d = Defrag::new(limits());
        let mut found = vec![];
        let mut r = |k, _m| found.push(k);
        d.add(frag(1, 0, true, &[1; 16]), 1, Timestamp::ZERO, &mut r);
        d.add(frag(1, 8, false, &[2; 16]), 2, Timestamp::ZERO, &mut r);
        assert_eq!(found, vec![FindingKind::FragmentOverlap]);
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn pool_is_bounded_in_count_and_bytes() {
        let mut d = Defrag::new(limits());
        let found = std::cell::RefCell::new(vec![]);
        let mut r = |k, _m| found.borrow_mut().push(k);
        for id in 0..10 {
            d.add(
                frag(id, 0, true, &[0; 8]),
                u64::from(id),
                Timestamp::ZERO,
                &mut r,
            );
        }
        assert_eq!(d.pending_datagrams(), 4);
        assert_eq!(found.borrow().len(), 6);
        found.borrow_mut().clear();
        let big = vec![0u8; 600];
        d.add(frag(20, 0, true, &big), 11, Timestamp::ZERO, &mut r);
        d.add(frag(21, 0, true, &big), 12, Timestamp::ZERO, &mut r);
        assert!(d.buffered_bytes() <= 1000);
        assert!(!found.borrow().is_empty());
        assert!(
            found
                .borrow()
                .iter()
                .all(|k| *k == FindingKind::FragmentPoolOverflow)
        );
        // A single datagram larger than the pool is refused outright.
        d.add(frag(22, 1200, true, &[0; 8]), 13, Timestamp::ZERO, &mut r);
        assert!(d.buffered_bytes() <= 1000);
    }

    #[test]
    fn timeout_by_capture_time() {
        let mut d = Defrag::new(limits());
        let mut found = vec![];
        let mut r = |k, _m| found.push(k);
        d.add(
            frag(1, 0, true, &[0; 8]),
            1,
            Timestamp::from_secs_nanos(100, 0),
            &mut r,
        );
        d.expire(Timestamp::from_secs_nanos(129, 0), &mut r);
        assert_eq!(d.pending_datagrams(), 1);
        d.expire(Timestamp::from_secs_nanos(131, 0), &mut r);
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(found, vec![FindingKind::FragmentTimeout]);
    }

    #[test]
    fn bad_fragments() {
        let mut d = Defrag::new(limits());
        let mut found = vec![];
        let mut r = |k, _m| found.push(k);
        d.add(frag(1, 0, true, &[0; 7]), 1, Timestamp::ZERO, &mut r);
        d.add(frag(1, 65_530, false, &[0; 8]), 1, Timestamp::ZERO, &mut r);
        d.add(frag(2, 0, false, &[0; 8]), 1, Timestamp::ZERO, &mut r);
        d.add(frag(3, 8, false, &[0; 8]), 1, Timestamp::ZERO, &mut r);
        d.add(frag(3, 16, true, &[0; 8]), 1, Timestamp::ZERO, &mut r);
        assert_eq!(found, vec![FindingKind::BadFragment; 3]);
    }

    #[test]
    fn ranges_merge() {
        let mut r = vec![];
        insert_range(&mut r, (16, 24));
        insert_range(&mut r, (0, 8));
        assert_eq!(r, vec![(0, 8), (16, 24)]);
        insert_range(&mut r, (8, 16));
        assert_eq!(r, vec![(0, 24)]);
    }
}
