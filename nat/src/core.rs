//! The sans-I/O NAT: RFC 4787 mapping, filtering, timeouts, port
//! preservation, hairpinning and scripted rebinding, as a pure state
//! machine. Time is an argument, port choices come from the seed, and the
//! caller moves the bytes.
//!
//! A *mapping* binds an internal endpoint (and, depending on the mapping
//! behaviour, a destination address or endpoint: its [`Scope`]) to one
//! public port. Each mapping remembers the destinations it sent to; the
//! filtering behaviour decides which of them may answer. Permissions live
//! and die with their mapping.
//!
//! Ports are checked with a caller-supplied `port_ok` callback before they
//! are used, so an I/O driver can bind a socket on the chosen port and make
//! the core pick another if the port is taken outside the emulator.
//!
//! Choices this module makes where RFC 4787 leaves room (each documented at
//! the place it is made):
//! - only outbound packets refresh a mapping (REQ-6 allows either);
//! - hairpinned packets are not filtered: the NAT sees they come from inside;
//! - a rebound mapping keeps its scope, permissions and expiry, only its
//!   public port changes;
//! - without port preservation the internal port is never chosen.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Behaviour, ConfigError, NatConfig};

/// What a mapping depends on besides the internal endpoint (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Endpoint-independent mapping: every destination.
    Any,
    /// Address-dependent mapping: destinations with this IP.
    Address(IpAddr),
    /// Address-and-port-dependent mapping: this destination only.
    Endpoint(SocketAddr),
}

/// Why the NAT did not pass a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Inbound to a public port with no mapping.
    NoMapping,
    /// A mapping exists but its filter refuses the sender (RFC 4787 §5).
    Filtered,
    /// The mapping of that port timed out (RFC 4787 §4.3).
    Expired,
    /// Sent to the NAT's own public address while hairpinning is off.
    HairpinDisabled,
    /// No public port could be allocated.
    PortsExhausted,
}

/// The fate of a packet from inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// It leaves from `public` towards its destination.
    Forward {
        public: SocketAddr,
    },
    /// It was addressed to a public endpoint of this NAT and is delivered
    /// back inside to `to`, appearing to come from `from`, the sender's
    /// public endpoint (RFC 4787 REQ-9).
    Hairpin {
        from: SocketAddr,
        to: SocketAddr,
    },
    Drop(DropReason),
}

/// The fate of a packet from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Delivered to this internal endpoint.
    Forward {
        to: SocketAddr,
    },
    Drop(DropReason),
}

/// A mapping whose public port changed in [`NatCore::rebind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebound {
    pub internal: SocketAddr,
    pub old: SocketAddr,
    pub new: SocketAddr,
}

/// State changes an I/O driver may need to act on (open or close sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatEvent {
    MappingCreated {
        internal: SocketAddr,
        public: SocketAddr,
        scope: Scope,
    },
    MappingExpired {
        internal: SocketAddr,
        public: SocketAddr,
    },
    MappingRebound(Rebound),
    /// A port freed by expiry or rebinding is forgotten: inbound packets to
    /// it no longer report [`DropReason::Expired`], and the driver may
    /// close its socket. Reallocating a freed port emits no event.
    PortReleased {
        port: u16,
    },
}

/// A snapshot of one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    pub internal: SocketAddr,
    pub public: SocketAddr,
    pub scope: Scope,
    pub last_outbound: Instant,
    /// `None` when `now + mapping_timeout` overflows: never.
    pub expires_at: Option<Instant>,
    /// Destinations it sent to, sorted.
    pub destinations: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    internal: SocketAddr,
    scope: Scope,
}

#[derive(Debug)]
struct Mapping {
    key: Key,
    last_outbound: Instant,
    expires_at: Option<Instant>,
    allowed_ips: HashSet<IpAddr>,
    allowed: HashSet<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freed {
    Expired,
    Rebound,
}

/// How many freed ports are remembered (and, in the relay, kept bound).
const MAX_FREED: usize = 64;
/// Calls of `port_ok` per allocation: bounds the work when ports are taken.
const MAX_PORT_CHECKS: usize = 64;
/// Random picks before a scan from a random start.
const RANDOM_PICKS: usize = 32;
/// Unpolled events kept; a caller that never polls loses the oldest ones
/// rather than growing memory without bound.
const MAX_EVENTS: usize = 1024;

/// The NAT state machine. See the module documentation.
#[derive(Debug)]
pub struct NatCore {
    config: NatConfig,
    rng: ChaCha8Rng,
    mappings: HashMap<u16, Mapping>,
    index: HashMap<Key, u16>,
    freed: VecDeque<(u16, Freed)>,
    events: VecDeque<NatEvent>,
}

impl NatCore {
    pub fn new(config: NatConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(NatCore {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            mappings: HashMap::new(),
            index: HashMap::new(),
            freed: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    pub fn config(&self) -> &NatConfig {
        &self.config
    }

    /// A packet from internal `src` to `dst`, every port being usable.
    pub fn handle_outbound(&mut self, src: SocketAddr, dst: SocketAddr, now: Instant) -> Outbound {
        self.handle_outbound_with(src, dst, now, &mut |_| true)
    }

    /// A packet from internal `src` to `dst`; a new public port is used only
    /// if `port_ok` accepts it.
    pub fn handle_outbound_with(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        now: Instant,
        port_ok: &mut dyn FnMut(u16) -> bool,
    ) -> Outbound {
        self.expire(now);
        if dst.ip() != self.config.public_ip {
            return match self.translate(src, dst, now, port_ok) {
                Ok(public) => Outbound::Forward { public },
                Err(reason) => Outbound::Drop(reason),
            };
        }
        // Addressed to our own outside: hairpinning (RFC 4787 §6).
        if !self.config.hairpinning {
            return Outbound::Drop(DropReason::HairpinDisabled);
        }
        if !self.mappings.contains_key(&dst.port()) {
            return Outbound::Drop(self.freed_reason(dst.port()));
        }
        let from = match self.translate(src, dst, now, port_ok) {
            Ok(from) => from,
            Err(reason) => return Outbound::Drop(reason),
        };
        // Not filtered: the NAT knows the packet comes from inside, and
        // RFC 4787 only requires the external source to be presented.
        match self.mappings.get(&dst.port()) {
            Some(target) => Outbound::Hairpin {
                from,
                to: target.key.internal,
            },
            None => Outbound::Drop(DropReason::NoMapping),
        }
    }

    /// A packet from external `src` to public port `public_port`. Does not
    /// refresh the mapping.
    pub fn handle_inbound(&mut self, src: SocketAddr, public_port: u16, now: Instant) -> Inbound {
        self.expire(now);
        let Some(m) = self.mappings.get(&public_port) else {
            return Inbound::Drop(self.freed_reason(public_port));
        };
        let allowed = match self.config.filtering {
            Behaviour::EndpointIndependent => true,
            Behaviour::AddressDependent => m.allowed_ips.contains(&src.ip()),
            Behaviour::AddressAndPortDependent => m.allowed.contains(&src),
        };
        if allowed {
            Inbound::Forward { to: m.key.internal }
        } else {
            Inbound::Drop(DropReason::Filtered)
        }
    }

    /// Moves every mapping of `internal` to a new public port, as a NAT
    /// that lost its state or reassigned ports would. The old ports answer
    /// [`DropReason::NoMapping`] from then on.
    pub fn rebind(&mut self, internal: SocketAddr, now: Instant) -> Vec<Rebound> {
        self.rebind_with(internal, now, &mut |_| true)
    }

    /// [`NatCore::rebind`] with a port check; a mapping for which no port
    /// is accepted keeps its old one and is not reported.
    pub fn rebind_with(
        &mut self,
        internal: SocketAddr,
        now: Instant,
        port_ok: &mut dyn FnMut(u16) -> bool,
    ) -> Vec<Rebound> {
        self.expire(now);
        let mut ports: Vec<u16> = self
            .mappings
            .iter()
            .filter(|(_, m)| m.key.internal == internal)
            .map(|(p, _)| *p)
            .collect();
        ports.sort_unstable();
        let mut out = Vec::new();
        for old in ports {
            let mut avoid = vec![old];
            if !self.config.port_preservation {
                avoid.push(internal.port());
            }
            let Some(new) = self.allocate(None, &avoid, port_ok) else {
                continue;
            };
            let Some(m) = self.mappings.remove(&old) else {
                continue;
            };
            self.index.insert(m.key, new);
            self.mappings.insert(new, m);
            self.push_freed(old, Freed::Rebound);
            let rebound = Rebound {
                internal,
                old: self.public(old),
                new: self.public(new),
            };
            self.push_event(NatEvent::MappingRebound(rebound));
            out.push(rebound);
        }
        out
    }

    /// Removes the mappings idle for `mapping_timeout` at `now`. Every other
    /// input does this first too, so calling it is only needed to learn
    /// about expiry (events) when no packet flows.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// When the next mapping expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.mappings.values().filter_map(|m| m.expires_at).min()
    }

    /// The next state change, oldest first (at most 1024 are kept).
    pub fn poll_event(&mut self) -> Option<NatEvent> {
        self.events.pop_front()
    }

    /// All live mappings (as of the last input), sorted by public port.
    pub fn mappings(&self) -> Vec<MappingInfo> {
        let mut out: Vec<MappingInfo> = self
            .mappings
            .iter()
            .map(|(port, m)| {
                let mut destinations: Vec<SocketAddr> = m.allowed.iter().copied().collect();
                destinations.sort_unstable();
                MappingInfo {
                    internal: m.key.internal,
                    public: self.public(*port),
                    scope: m.key.scope,
                    last_outbound: m.last_outbound,
                    expires_at: m.expires_at,
                    destinations,
                }
            })
            .collect();
        out.sort_unstable_by_key(|m| m.public.port());
        out
    }

    /// The public endpoint `internal` used last (for an endpoint-independent
    /// mapping, its only one).
    pub fn public_endpoint_of(&self, internal: SocketAddr) -> Option<SocketAddr> {
        self.mappings
            .iter()
            .filter(|(_, m)| m.key.internal == internal)
            .max_by_key(|(port, m)| (m.last_outbound, std::cmp::Reverse(**port)))
            .map(|(port, _)| self.public(*port))
    }

    /// The public endpoint a packet from `internal` to `dst` would leave
    /// from, if its mapping exists.
    pub fn public_endpoint_towards(
        &self,
        internal: SocketAddr,
        dst: SocketAddr,
    ) -> Option<SocketAddr> {
        let key = Key {
            internal,
            scope: self.scope_for(dst),
        };
        self.index.get(&key).map(|p| self.public(*p))
    }

    fn public(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.config.public_ip, port)
    }

    fn scope_for(&self, dst: SocketAddr) -> Scope {
        match self.config.mapping {
            Behaviour::EndpointIndependent => Scope::Any,
            Behaviour::AddressDependent => Scope::Address(dst.ip()),
            Behaviour::AddressAndPortDependent => Scope::Endpoint(dst),
        }
    }

    /// Finds or creates the mapping for `src` towards `dst`, refreshes it
    /// and records `dst` as allowed to answer. Returns the public endpoint.
    fn translate(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        now: Instant,
        port_ok: &mut dyn FnMut(u16) -> bool,
    ) -> Result<SocketAddr, DropReason> {
        let key = Key {
            internal: src,
            scope: self.scope_for(dst),
        };
        let port = match self.index.get(&key) {
            Some(port) => *port,
            None => {
                let (preferred, avoid) = if self.config.port_preservation {
                    (Some(src.port()), Vec::new())
                } else {
                    (None, vec![src.port()])
                };
                let port = self
                    .allocate(preferred, &avoid, port_ok)
                    .ok_or(DropReason::PortsExhausted)?;
                self.index.insert(key, port);
                self.mappings.insert(
                    port,
                    Mapping {
                        key,
                        last_outbound: now,
                        expires_at: None,
                        allowed_ips: HashSet::new(),
                        allowed: HashSet::new(),
                    },
                );
                self.push_event(NatEvent::MappingCreated {
                    internal: src,
                    public: self.public(port),
                    scope: key.scope,
                });
                port
            }
        };
        let timeout = self.config.mapping_timeout;
        if let Some(m) = self.mappings.get_mut(&port) {
            // Outbound traffic refreshes the mapping (RFC 4787 §4.3).
            m.last_outbound = now;
            m.expires_at = now.checked_add(timeout);
            m.allowed_ips.insert(dst.ip());
            m.allowed.insert(dst);
        }
        Ok(self.public(port))
    }

    /// Picks a free public port: `preferred` first (port preservation),
    /// then random ports of the range, then a scan from a random start;
    /// never one in `avoid`, at most [`MAX_PORT_CHECKS`] calls of `port_ok`.
    fn allocate(
        &mut self,
        preferred: Option<u16>,
        avoid: &[u16],
        port_ok: &mut dyn FnMut(u16) -> bool,
    ) -> Option<u16> {
        let lo = *self.config.ports.start();
        let hi = *self.config.ports.end();
        let size = u32::from(hi - lo) + 1;
        let mut checks = 0usize;
        let mut chosen = None;
        let mut consider = |core: &Self, port: u16| -> Option<bool> {
            if avoid.contains(&port) || core.mappings.contains_key(&port) {
                return Some(false);
            }
            if checks >= MAX_PORT_CHECKS {
                return None;
            }
            checks += 1;
            Some(port_ok(port))
        };
        if let Some(p) = preferred.filter(|p| (lo..=hi).contains(p))
            && consider(self, p) == Some(true)
        {
            chosen = Some(p);
        }
        let mut picks = 0;
        while chosen.is_none() && picks < RANDOM_PICKS {
            picks += 1;
            // `size - 1` fits u16 since size <= 65535 (port 0 is excluded).
            let p = lo + self.rng.random_range(0..size) as u16;
            match consider(self, p) {
                Some(true) => chosen = Some(p),
                Some(false) => {}
                None => return None,
            }
        }
        if chosen.is_none() {
            // Scan from a random start so a nearly full range still works.
            let start = self.rng.random_range(0..size);
            for i in 0..size {
                let p = lo + ((start + i) % size) as u16;
                match consider(self, p) {
                    Some(true) => {
                        chosen = Some(p);
                        break;
                    }
                    Some(false) => {}
                    None => return None,
                }
            }
        }
        let port = chosen?;
        // Reusing a freed port: it is no longer "freed".
        self.freed.retain(|(p, _)| *p != port);
        Some(port)
    }

    fn expire(&mut self, now: Instant) {
        let mut expired: Vec<u16> = self
            .mappings
            .iter()
            .filter(|(_, m)| m.expires_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        expired.sort_unstable();
        for port in expired {
            if let Some(m) = self.mappings.remove(&port) {
                self.index.remove(&m.key);
                self.push_event(NatEvent::MappingExpired {
                    internal: m.key.internal,
                    public: self.public(port),
                });
                self.push_freed(port, Freed::Expired);
            }
        }
    }

    fn push_event(&mut self, event: NatEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn push_freed(&mut self, port: u16, why: Freed) {
        self.freed.retain(|(p, _)| *p != port);
        self.freed.push_back((port, why));
        while self.freed.len() > MAX_FREED {
            if let Some((port, _)) = self.freed.pop_front() {
                self.push_event(NatEvent::PortReleased { port });
            }
        }
    }

    fn freed_reason(&self, port: u16) -> DropReason {
        match self.freed.iter().find(|(p, _)| *p == port) {
            Some((_, Freed::Expired)) => DropReason::Expired,
            _ => DropReason::NoMapping,
        }
    }
}
