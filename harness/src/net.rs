/*!
Loopback addresses for IUT instances, reference nodes and scripted peers.

Every endpoint the harness creates gets its own 127.x.y.z address (Linux
routes all of 127.0.0.0/8 to the loopback interface), so Peer-IDs (ID-2:
SHA-1 of the IP text) spread over the whole ring, and parallel cases or
parallel test processes never share an address by accident: the sequence
of addresses starts at an offset derived from the process id and advances
with a process-wide counter. `127.0.0.0/16` is never used (127.0.0.1 and
127.0.0.53 belong to the host).

A port for a process the harness starts is found by binding a candidate
on the address (UDP and TCP both, since an IUT may listen on both) and
releasing the sockets. Candidates come from outside the kernel's
ephemeral range: a port the kernel could hand to someone else's
`bind(0.0.0.0:0)` between our release and the IUT's bind would make the
IUT fail with "address in use" (a wildcard bind blocks every specific
address), and that happens on a busy machine. Ports inside the range are
used only when the range leaves no room outside it.
*/

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use p2psip_wire::{Id, peer_id};

/// x in 1..=254, y in 0..=255, z in 1..=254.
const SPACE: u64 = 254 * 256 * 254;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn base() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| {
        // Spread processes far apart: a large odd multiplier of the pid.
        let pid = u64::from(std::process::id());
        pid.wrapping_mul(2_654_435_761) % SPACE
    })
}

/// The next loopback address of this process's sequence.
pub fn next_loopback() -> Ipv4Addr {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // A stride coprime to SPACE walks the whole space before repeating.
    let i = (base() + n.wrapping_mul(7_919)) % SPACE;
    let z = (i % 254) as u8 + 1;
    let y = ((i / 254) % 256) as u8;
    let x = (i / (254 * 256)) as u8 + 1;
    Ipv4Addr::new(127, x, y, z)
}

/// The kernel's ephemeral port range (Linux), or the IANA default.
fn ephemeral_range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().map(|x| x.parse::<u16>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((49152, 65535))
    })
}

/// The next candidate port outside the ephemeral range (and above 1024).
fn next_port() -> Option<u16> {
    static PORTS: AtomicU64 = AtomicU64::new(0);
    let (lo, hi) = ephemeral_range();
    let below = u64::from(lo.saturating_sub(1025));
    let above = u64::from(u16::MAX - hi);
    let room = below + above;
    if room < 1000 {
        return None;
    }
    let n = PORTS.fetch_add(1, Ordering::Relaxed);
    let i = (base() + n.wrapping_mul(7_919)) % room;
    Some(if i < below {
        1025 + i as u16
    } else {
        hi + 1 + (i - below) as u16
    })
}

/// A free port on `ip` for both UDP and TCP, checked by binding it and
/// released (the process the harness starts binds it next).
pub fn free_port(ip: IpAddr) -> io::Result<u16> {
    let mut last = None;
    for _ in 0..64 {
        let Some(candidate) = next_port() else {
            break;
        };
        let addr = SocketAddr::new(ip, candidate);
        match UdpSocket::bind(addr).and_then(|_udp| TcpListener::bind(addr)) {
            Ok(_tcp) => return Ok(candidate),
            Err(e) => last = Some(e),
        }
    }
    // No room outside the ephemeral range: let the kernel pick.
    for _ in 0..16 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(_tcp) => return Ok(port),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// A fresh address with a free port, for a process the harness starts.
pub fn fresh_endpoint() -> io::Result<SocketAddr> {
    let ip = IpAddr::V4(next_loopback());
    Ok(SocketAddr::new(ip, free_port(ip)?))
}

/// An arc of the ring a placed endpoint must land in: the open interval
/// `(from, to)`; with `from == to`, everywhere but `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    pub from: Id,
    pub to: Id,
}

impl Arc {
    pub fn contains(&self, id: &Id) -> bool {
        id.in_open(&self.from, &self.to)
    }

    /// The middle half of the arc. A peer placed there leaves at least a
    /// quarter of the arc on each side, so chains of placements (`after`
    /// X, then after that) never squeeze a later peer, or the keys a case
    /// then looks for, into a sliver of the ring.
    pub fn middle(&self) -> Arc {
        // (from, from) is the whole ring: a quarter is 2^158.
        let quarter = if self.from == self.to {
            Id::pow2(158)
        } else {
            shr2(&self.from.distance_to(&self.to))
        };
        Arc {
            from: self.from.wrapping_add(&quarter),
            to: self.to.wrapping_sub(&quarter),
        }
    }
}

/// `id / 4`.
fn shr2(id: &Id) -> Id {
    let mut out = [0u8; 20];
    let mut carry = 0u8;
    for (o, b) in out.iter_mut().zip(id.0) {
        *o = (b >> 2) | carry;
        carry = b << 6;
    }
    Id(out)
}

/// A placement reference: a name, or `name+2^k` (the finger start k of
/// that peer: its ID + 2^k, k < 160), so a case can put a peer in a
/// given part of the ring (`between = ["iut1", "iut1+2^156"]`).
pub fn split_offset(reference: &str) -> (&str, Option<u8>) {
    if let Some((name, k)) = reference.split_once("+2^")
        && let Ok(k) = k.parse::<u8>()
        && k < 160
    {
        return (name, Some(k));
    }
    (reference, None)
}

/// Why no address was found for an arc.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("no loopback address within {tries} tries has a Peer-ID in ({from}, {to})")]
    Exhausted { tries: u32, from: Id, to: Id },
    #[error("binding a loopback address: {0}")]
    Io(#[from] io::Error),
}

/// How many candidate addresses [`place`] tries. An arc of a fraction f
/// of the ring needs about 1/f tries; the cases place peers in gaps
/// between a handful of nodes, so this is generous.
pub const PLACE_TRIES: u32 = 200_000;

/// Finds a loopback address whose Peer-ID (ID-2: high 144 bits from the
/// IP text, low 16 bits the port) lies in `arc`, and hands it to `bind`,
/// which binds it (port 0) and returns the bound address, or `None` when
/// the port pushed the ID out of the arc... `bind` is only called for
/// addresses whose port-independent part fits.
///
/// The first half of the tries aim at the arc's middle half
/// ([`Arc::middle`]), the rest at the whole arc (very narrow arcs).
pub fn place<T>(
    arc: Option<Arc>,
    mut bind: impl FnMut(IpAddr) -> io::Result<(T, SocketAddr)>,
) -> Result<(T, SocketAddr), PlaceError> {
    for n in 0..PLACE_TRIES {
        let ip = IpAddr::V4(next_loopback());
        let arc = arc.map(|a| if n < PLACE_TRIES / 2 { a.middle() } else { a });
        if let Some(arc) = arc {
            // The ID of this IP spans [lo, hi] over all ports: test both
            // ends cheaply before binding.
            let lo = peer_id(ip, 0);
            let hi = peer_id(ip, u16::MAX);
            if !arc.contains(&lo) && !arc.contains(&hi) {
                continue;
            }
        }
        let (thing, addr) = bind(ip)?;
        if arc.is_none_or(|a| a.contains(&peer_id(addr.ip(), addr.port()))) {
            return Ok((thing, addr));
        }
    }
    let arc = arc.unwrap_or(Arc {
        from: Id::ZERO,
        to: Id::ZERO,
    });
    Err(PlaceError::Exhausted {
        tries: PLACE_TRIES,
        from: arc.from,
        to: arc.to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_outside_127_0() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let a = next_loopback();
            assert_eq!(a.octets()[0], 127);
            assert_ne!(a.octets()[1], 0, "{a}");
            assert_ne!(a.octets()[3], 0, "{a}");
            assert_ne!(a.octets()[3], 255, "{a}");
            assert!(seen.insert(a), "{a} repeated");
        }
    }

    #[test]
    fn free_port_is_bindable_and_outside_the_ephemeral_range() {
        let ip = IpAddr::V4(next_loopback());
        let port = free_port(ip).unwrap();
        UdpSocket::bind(SocketAddr::new(ip, port)).unwrap();
        TcpListener::bind(SocketAddr::new(ip, port)).unwrap();
        let (lo, hi) = ephemeral_range();
        assert!(port < lo || port > hi, "{port} in {lo}..={hi}");
    }

    #[test]
    fn middle_half_of_an_arc() {
        let id = |h: &str| Id::from_hex(&format!("{h:0<40}")).unwrap();
        let m = Arc {
            from: id("10"),
            to: id("50"),
        }
        .middle();
        assert_eq!((m.from, m.to), (id("20"), id("40")));
        // Across zero, and the whole ring from a point.
        let m = Arc {
            from: id("e0"),
            to: id("20"),
        }
        .middle();
        assert_eq!((m.from, m.to), (id("f0"), id("10")));
        let m = Arc {
            from: id("80"),
            to: id("80"),
        }
        .middle();
        assert_eq!((m.from, m.to), (id("c0"), id("40")));
    }

    #[test]
    fn place_lands_in_the_middle_of_a_wide_arc() {
        let from = Id::from_hex("1000000000000000000000000000000000000000").unwrap();
        let to = Id::from_hex("5000000000000000000000000000000000000000").unwrap();
        let arc = Arc { from, to };
        for _ in 0..20 {
            let (_sock, addr) = place(Some(arc), |ip| {
                let s = UdpSocket::bind(SocketAddr::new(ip, 0))?;
                let a = s.local_addr()?;
                Ok((s, a))
            })
            .unwrap();
            assert!(arc.middle().contains(&peer_id(addr.ip(), addr.port())));
        }
    }

    #[test]
    fn place_lands_in_a_narrow_arc() {
        let from = Id::from_hex("8000000000000000000000000000000000000000").unwrap();
        let to = Id::from_hex("8100000000000000000000000000000000000000").unwrap();
        let arc = Arc { from, to };
        let (_sock, addr) = place(Some(arc), |ip| {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0))?;
            let a = s.local_addr()?;
            Ok((s, a))
        })
        .unwrap();
        assert!(arc.contains(&peer_id(addr.ip(), addr.port())));
    }
}
