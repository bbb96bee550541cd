/*!
The address and Peer-ID map of a replay, and request rewriting.

Every peer a conversation names gets a fresh address; its Peer-ID (ID-2)
changes with it, which would move it on the ring and change who is
responsible for what. [`cell`] gives the arc its new ID must fall in so
that the cyclic order of all IDs the conversation names (peers and the
keys that stay as they are) is kept: the arc halfway to its neighbours.
The harness places the new addresses there.

[`rewrite`] replaces, in the header section of a message, every mapped
`IP:PORT` and every mapped Peer-ID (in the case it was written in). The
body is left alone, so Content-Length stays right.
*/

use std::net::SocketAddr;

use p2psip_wire::{Id, peer_id};

/// Old address to new, and the Peer-IDs that go with them.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    addrs: Vec<(SocketAddr, SocketAddr)>,
}

impl Mapping {
    pub fn new() -> Mapping {
        Mapping::default()
    }

    /// Maps `from` (an address of the capture) to `to`; an earlier
    /// mapping of `from` is replaced.
    pub fn insert(&mut self, from: SocketAddr, to: SocketAddr) {
        self.addrs.retain(|(f, _)| *f != from);
        self.addrs.push((from, to));
    }

    /// The new address of a captured one.
    pub fn addr(&self, from: SocketAddr) -> Option<SocketAddr> {
        self.addrs.iter().find(|(f, _)| *f == from).map(|(_, t)| *t)
    }

    /// The captured address a new one stands for.
    pub fn original(&self, to: SocketAddr) -> Option<SocketAddr> {
        self.addrs.iter().find(|(_, t)| *t == to).map(|(f, _)| *f)
    }

    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.addrs.iter().copied()
    }

    fn patterns(&self) -> Vec<(Vec<u8>, Vec<u8>, Boundary)> {
        let mut out = Vec::new();
        for (from, to) in &self.addrs {
            out.push((
                from.to_string().into_bytes(),
                to.to_string().into_bytes(),
                Boundary::Address,
            ));
            let (old, new) = (peer_id(from.ip(), from.port()), peer_id(to.ip(), to.port()));
            let (old, new) = (old.to_hex().to_string(), new.to_hex().to_string());
            out.push((
                old.clone().into_bytes(),
                new.clone().into_bytes(),
                Boundary::Hex,
            ));
            out.push((
                old.to_ascii_uppercase().into_bytes(),
                new.to_ascii_uppercase().into_bytes(),
                Boundary::Hex,
            ));
        }
        // Longest first, so a longer address wins over its prefix.
        out.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Boundary {
    /// Not inside a longer number or address.
    Address,
    /// Not inside a longer hex string.
    Hex,
}

impl Boundary {
    fn ok(self, before: Option<u8>, after: Option<u8>) -> bool {
        match self {
            Boundary::Address => {
                !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
                    && !after.is_some_and(|b| b.is_ascii_digit())
            }
            Boundary::Hex => {
                !before.is_some_and(|b| b.is_ascii_hexdigit())
                    && !after.is_some_and(|b| b.is_ascii_hexdigit())
            }
        }
    }
}

/// The end of the header section (after its blank line), or the whole.
fn header_end(raw: &[u8]) -> usize {
    if let Some(i) = memchr::memmem::find(raw, b"\r\n\r\n") {
        return i + 4;
    }
    if let Some(i) = memchr::memmem::find(raw, b"\n\n") {
        return i + 2;
    }
    raw.len()
}

/// `raw` with every mapped address and Peer-ID of its header section
/// replaced, in one left-to-right scan (a replacement is never rewritten
/// again).
pub fn rewrite(raw: &[u8], map: &Mapping) -> Vec<u8> {
    let patterns = map.patterns();
    let end = header_end(raw);
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut i = 0;
    'scan: while i < end {
        for (old, new, boundary) in &patterns {
            let stop = i + old.len();
            if stop <= end
                && raw[i..stop] == old[..]
                && boundary.ok(i.checked_sub(1).map(|j| raw[j]), raw.get(stop).copied())
            {
                out.extend_from_slice(new);
                i = stop;
                continue 'scan;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out.extend_from_slice(&raw[end..]);
    out
}

/// Half of an ID (a right shift by one bit).
fn half(id: &Id) -> Id {
    let mut out = [0u8; 20];
    let mut carry = 0u8;
    for (o, b) in out.iter_mut().zip(id.0.iter()) {
        *o = (b >> 1) | (carry << 7);
        carry = b & 1;
    }
    Id(out)
}

/// The open arc a new ID for `id` must fall in to keep its place among
/// `points` (which may contain `id`): from halfway to the point before it
/// to halfway to the point after it. `(x, x)` (the whole ring but `x`)
/// when there is no other point.
pub fn cell(id: &Id, points: &[Id]) -> (Id, Id) {
    let others: Vec<&Id> = points.iter().filter(|p| *p != id).collect();
    // The nearest points on either side: least distance from them to
    // `id`, and from `id` to them.
    let before = others.iter().min_by_key(|p| p.distance_to(id)).copied();
    let after = others.iter().min_by_key(|p| id.distance_to(p)).copied();
    match (before, after) {
        (Some(b), Some(a)) => {
            let from = b.wrapping_add(&half(&b.distance_to(id)));
            let to = id.wrapping_add(&half(&id.distance_to(a)));
            (from, to)
        }
        _ => (
            id.wrapping_add(&half(&Id::MAX)),
            id.wrapping_add(&half(&Id::MAX)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
    }

    #[test]
    fn rewrites_addresses_and_ids_in_headers_only() {
        let a = sa([127, 1, 2, 3], 5000);
        let b = sa([127, 9, 9, 9], 6000);
        let mut m = Mapping::new();
        m.insert(a, b);
        let (ida, idb) = (peer_id(a.ip(), a.port()), peer_id(b.ip(), b.port()));
        let raw = format!(
            "REGISTER sip:127.1.2.3:5000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.1.2.3:50001;branch=z9hG4bK1\r\n\
             To: <sip:peer@127.1.2.3:5000;peer-ID={}>\r\nX: 127.1.2.33:5000 {}\r\nContent-Length: 17\r\n\r\n127.1.2.3:5000 {}",
            ida.to_hex().as_str(),
            ida.to_hex().as_str().to_ascii_uppercase(),
            "x"
        );
        let got = String::from_utf8(rewrite(raw.as_bytes(), &m)).unwrap();
        assert!(
            got.starts_with("REGISTER sip:127.9.9.9:6000 SIP/2.0\r\n"),
            "{got}"
        );
        // A longer port and a longer address are other addresses.
        assert!(got.contains("Via: SIP/2.0/UDP 127.1.2.3:50001;"), "{got}");
        assert!(got.contains("X: 127.1.2.33:5000 "), "{got}");
        assert!(
            got.contains(&format!("peer-ID={}>", idb.to_hex().as_str())),
            "{got}"
        );
        assert!(
            got.contains(&idb.to_hex().as_str().to_ascii_uppercase()),
            "{got}"
        );
        assert!(got.ends_with("\r\n\r\n127.1.2.3:5000 x"), "{got}");
    }

    #[test]
    fn cells_keep_the_cyclic_order() {
        let pts: Vec<Id> = ["10", "40", "80", "f0"]
            .iter()
            .map(|h| Id::from_hex(&format!("{h}{}", "0".repeat(38))).unwrap())
            .collect();
        let (from, to) = cell(&pts[1], &pts);
        assert_eq!(from.to_hex()[..2], *"28");
        assert_eq!(to.to_hex()[..2], *"60");
        // The first point's cell wraps past zero.
        let (from, to) = cell(&pts[0], &pts);
        assert_eq!(from.to_hex()[..2], *"00");
        assert_eq!(to.to_hex()[..2], *"28");
        let (from, _) = cell(&pts[3], &pts);
        assert_eq!(from.to_hex()[..2], *"b8");
        // The cells partition the ring, each around its point: any new
        // IDs taken from them keep the cyclic order.
        for i in 0..pts.len() {
            let (f, t) = cell(&pts[i], &pts);
            assert!(pts[i].in_open(&f, &t));
            let (next_from, _) = cell(&pts[(i + 1) % pts.len()], &pts);
            assert_eq!(t, next_from);
        }
        let lone = cell(&pts[0], &pts[..1]);
        assert_eq!(lone.0, lone.1);
    }
}
