/*!
Addresses of the simulated endpoints.

Node `i` lives at `10.a.b.c:5060` where `a.b.c` is `i + 1` in base 256,
so the address of a node and the node of an address are computed, not
stored: at 100,000 peers a map would cost more than the rest of the
simulator's per-node state. A node may instead be placed at a chosen
address (a joiner that must land in a given gap of the ring); those few
live in a small map. Nothing binds a socket: any address will do.
*/

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::net::Endpoint;

/// The endpoint of the simulator's own lookup client (not a node).
pub const CLIENT: Endpoint = u32::MAX - 1;

/// The lookup client's address (TEST-NET-1, never a node's).
pub const CLIENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5060);

/// A hasher without a random key (SipHash with zero keys): the simulator's
/// hash tables then grow and shrink the same way in every run, so the
/// capacities in the memory report depend on the seed only.
pub type FixedHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// The most nodes the computed addresses can name.
pub const MAX_NODES: u32 = (1 << 24) - 2;

/// The computed address of node `i`.
pub fn default_addr(i: Endpoint) -> SocketAddr {
    let n = i + 1;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
        5060,
    )
}

/// Maps endpoints to addresses and back.
#[derive(Debug, Default)]
pub struct AddrBook {
    /// Nodes placed at chosen addresses. Only looked up, never iterated;
    /// a fixed hasher keeps even their capacities the same run to run.
    chosen: HashMap<SocketAddr, Endpoint, FixedHasher>,
    chosen_rev: HashMap<Endpoint, SocketAddr, FixedHasher>,
}

impl AddrBook {
    /// The address of endpoint `e`.
    pub fn addr(&self, e: Endpoint) -> SocketAddr {
        if e == CLIENT {
            return CLIENT_ADDR;
        }
        if !self.chosen_rev.is_empty()
            && let Some(a) = self.chosen_rev.get(&e)
        {
            return *a;
        }
        default_addr(e)
    }

    /// The endpoint at `addr` among the first `count` nodes and the client.
    pub fn endpoint(&self, addr: SocketAddr, count: u32) -> Option<Endpoint> {
        if addr == CLIENT_ADDR {
            return Some(CLIENT);
        }
        if !self.chosen.is_empty()
            && let Some(e) = self.chosen.get(&addr)
        {
            return Some(*e);
        }
        let IpAddr::V4(ip) = addr.ip() else {
            return None;
        };
        let o = ip.octets();
        if o[0] != 10 || addr.port() != 5060 {
            return None;
        }
        let n = (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
        let e = n.checked_sub(1)?;
        // A node placed elsewhere does not answer at its computed address.
        (e < count && !self.chosen_rev.contains_key(&e)).then_some(e)
    }

    /// Places node `e` at `addr` instead of its computed address.
    pub fn choose(&mut self, e: Endpoint, addr: SocketAddr) {
        self.chosen.insert(addr, e);
        self.chosen_rev.insert(e, addr);
    }

    /// Is `addr` taken by a node, the client, or a computed address of one
    /// of the first `count` nodes?
    pub fn is_taken(&self, addr: SocketAddr, count: u32) -> bool {
        self.endpoint(addr, count).is_some() || self.chosen.contains_key(&addr)
    }

    /// Bytes held for chosen addresses.
    pub fn memory(&self) -> usize {
        (self.chosen.capacity() + self.chosen_rev.capacity())
            * (std::mem::size_of::<SocketAddr>() + std::mem::size_of::<Endpoint>() + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_addresses_round_trip() {
        let book = AddrBook::default();
        for i in [0, 1, 254, 255, 256, 65_535, 65_536, 99_999, MAX_NODES - 1] {
            let a = book.addr(i);
            assert_eq!(book.endpoint(a, MAX_NODES), Some(i), "{a}");
        }
        assert_eq!(default_addr(0).to_string(), "10.0.0.1:5060");
        assert_eq!(default_addr(255).to_string(), "10.0.1.0:5060");
        assert_eq!(book.endpoint(default_addr(10), 10), None, "not yet started");
        assert_eq!(book.endpoint("10.0.0.1:5061".parse().unwrap(), 10), None);
        assert_eq!(book.endpoint("0.0.0.0:5060".parse().unwrap(), 10), None);
        assert_eq!(book.endpoint(CLIENT_ADDR, 0), Some(CLIENT));
    }

    #[test]
    fn chosen_addresses_replace_computed_ones() {
        let mut book = AddrBook::default();
        let a: SocketAddr = "127.100.3.4:5060".parse().unwrap();
        book.choose(5, a);
        assert_eq!(book.addr(5), a);
        assert_eq!(book.endpoint(a, 10), Some(5));
        assert_eq!(book.endpoint(default_addr(5), 10), None);
        assert!(book.is_taken(a, 10));
        assert_eq!(book.endpoint(default_addr(6), 10), Some(6));
    }
}
