//! The NAT core in virtual time: every mapping x filtering combination,
//! timeouts and their refresh rule, port preservation, hairpinning,
//! rebinding, port exhaustion, and a randomized consistency check.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2psip_nat::{Behaviour, DropReason, Inbound, NatConfig, NatCore, NatEvent, Outbound, Scope};
use proptest::prelude::*;

const PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config(mapping: Behaviour, filtering: Behaviour) -> NatConfig {
    NatConfig {
        mapping,
        filtering,
        port_preservation: false,
        hairpinning: true,
        mapping_timeout: Duration::from_secs(30),
        public_ip: IpAddr::V4(PUBLIC),
        ports: 40000..=49999,
        seed: 7,
    }
}

fn out(core: &mut NatCore, src: SocketAddr, dst: SocketAddr, now: Instant) -> SocketAddr {
    match core.handle_outbound(src, dst, now) {
        Outbound::Forward { public } => public,
        other => panic!("expected a forward, got {other:?}"),
    }
}

// Internal host, and three outside endpoints: A, A' (same IP, other port)
// and B (other IP).
const I: &str = "10.0.0.1:5000";
const A: &str = "198.51.100.1:1000";
const A2: &str = "198.51.100.1:2000";
const B: &str = "198.51.100.2:1000";

#[test]
fn mapping_behaviours() {
    let t = Instant::now();
    for mapping in Behaviour::ALL {
        let mut core = NatCore::new(config(mapping, Behaviour::EndpointIndependent)).unwrap();
        let pa = out(&mut core, sa(I), sa(A), t);
        let pa2 = out(&mut core, sa(I), sa(A2), t);
        let pb = out(&mut core, sa(I), sa(B), t);
        assert_eq!(pa.ip(), IpAddr::V4(PUBLIC));
        // Same destination again: same mapping whatever the behaviour.
        assert_eq!(out(&mut core, sa(I), sa(A), t), pa);
        match mapping {
            Behaviour::EndpointIndependent => {
                assert_eq!(pa, pa2);
                assert_eq!(pa, pb);
                assert_eq!(core.mappings().len(), 1);
                assert_eq!(core.mappings()[0].scope, Scope::Any);
            }
            Behaviour::AddressDependent => {
                assert_eq!(pa, pa2);
                assert_ne!(pa, pb);
                assert_eq!(core.mappings().len(), 2);
            }
            Behaviour::AddressAndPortDependent => {
                assert_ne!(pa, pa2);
                assert_ne!(pa, pb);
                assert_ne!(pa2, pb);
                assert_eq!(core.mappings().len(), 3);
            }
        }
        assert_eq!(core.public_endpoint_towards(sa(I), sa(A2)), Some(pa2));
    }
}

/// The filtering table, for every mapping behaviour: after I contacted A
/// only, who may send to the mapping I used?
#[test]
fn filtering_table() {
    let t = Instant::now();
    for mapping in Behaviour::ALL {
        for filtering in Behaviour::ALL {
            let mut core = NatCore::new(config(mapping, filtering)).unwrap();
            let p = out(&mut core, sa(I), sa(A), t).port();
            let fate = |core: &mut NatCore, from: &str| core.handle_inbound(sa(from), p, t);
            let forward = Inbound::Forward { to: sa(I) };
            let filtered = Inbound::Drop(DropReason::Filtered);
            let label = format!("{mapping} / {filtering}");
            assert_eq!(fate(&mut core, A), forward, "{label}: A");
            let (a2, b) = match filtering {
                Behaviour::EndpointIndependent => (forward, forward),
                Behaviour::AddressDependent => (forward, filtered),
                Behaviour::AddressAndPortDependent => (filtered, filtered),
            };
            assert_eq!(fate(&mut core, A2), a2, "{label}: A'");
            assert_eq!(fate(&mut core, B), b, "{label}: B");
            // Contacting B opens the mapping used towards B for B.
            let pb = out(&mut core, sa(I), sa(B), t).port();
            assert_eq!(
                core.handle_inbound(sa(B), pb, t),
                forward,
                "{label}: B after"
            );
            // A port nobody holds.
            let free = (40000..=49999).find(|q| *q != p && *q != pb).unwrap();
            assert_eq!(
                core.handle_inbound(sa(A), free, t),
                Inbound::Drop(DropReason::NoMapping)
            );
        }
    }
}

#[test]
fn timeout_expires_and_only_outbound_refreshes() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut core = NatCore::new(config(
        Behaviour::EndpointIndependent,
        Behaviour::EndpointIndependent,
    ))
    .unwrap();
    let p = out(&mut core, sa(I), sa(A), t0).port();
    assert_eq!(core.poll_timeout(), Some(t0 + s(30)));
    // Inbound traffic at 20 s is forwarded but does not refresh.
    assert_eq!(
        core.handle_inbound(sa(A), p, t0 + s(20)),
        Inbound::Forward { to: sa(I) }
    );
    assert_eq!(core.poll_timeout(), Some(t0 + s(30)));
    assert_eq!(
        core.handle_inbound(sa(A), p, t0 + s(29)),
        Inbound::Forward { to: sa(I) }
    );
    assert_eq!(
        core.handle_inbound(sa(A), p, t0 + s(30)),
        Inbound::Drop(DropReason::Expired)
    );
    assert!(core.mappings().is_empty());
    assert_eq!(core.poll_timeout(), None);

    // Outbound traffic refreshes: a new mapping, kept alive at 20 s.
    let mut core = NatCore::new(config(
        Behaviour::EndpointIndependent,
        Behaviour::EndpointIndependent,
    ))
    .unwrap();
    let p = out(&mut core, sa(I), sa(A), t0).port();
    assert_eq!(out(&mut core, sa(I), sa(A), t0 + s(20)).port(), p);
    assert_eq!(core.poll_timeout(), Some(t0 + s(50)));
    assert_eq!(
        core.handle_inbound(sa(A), p, t0 + s(45)),
        Inbound::Forward { to: sa(I) }
    );
    // handle_timeout reports the expiry as an event.
    while core.poll_event().is_some() {}
    core.handle_timeout(t0 + s(50));
    assert_eq!(
        core.poll_event(),
        Some(NatEvent::MappingExpired {
            internal: sa(I),
            public: SocketAddr::new(IpAddr::V4(PUBLIC), p),
        })
    );
    assert_eq!(
        core.handle_inbound(sa(A), p, t0 + s(51)),
        Inbound::Drop(DropReason::Expired)
    );
    // After expiry the next outbound packet creates a fresh mapping.
    let again = out(&mut core, sa(I), sa(A), t0 + s(60));
    assert_eq!(core.mappings().len(), 1);
    assert_eq!(core.public_endpoint_of(sa(I)), Some(again));
}

#[test]
fn expiry_is_per_mapping() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut core = NatCore::new(config(
        Behaviour::AddressAndPortDependent,
        Behaviour::EndpointIndependent,
    ))
    .unwrap();
    let pa = out(&mut core, sa(I), sa(A), t0).port();
    let pb = out(&mut core, sa(I), sa(B), t0 + s(10)).port();
    // Refreshing the mapping towards B does not keep the one towards A.
    out(&mut core, sa(I), sa(B), t0 + s(25));
    assert_eq!(
        core.handle_inbound(sa(A), pa, t0 + s(31)),
        Inbound::Drop(DropReason::Expired)
    );
    assert_eq!(
        core.handle_inbound(sa(B), pb, t0 + s(31)),
        Inbound::Forward { to: sa(I) }
    );
}

#[test]
fn port_preservation() {
    let t = Instant::now();
    let mut on = config(Behaviour::AddressDependent, Behaviour::EndpointIndependent);
    on.port_preservation = true;
    on.ports = 1024..=65535;
    let mut core = NatCore::new(on).unwrap();
    assert_eq!(out(&mut core, sa(I), sa(A), t).port(), 5000);
    // A second mapping of the same host cannot reuse 5000...
    assert_ne!(out(&mut core, sa(I), sa(B), t).port(), 5000);
    // ...and neither can another host with the same port.
    let other = sa("10.0.0.2:5000");
    assert_ne!(out(&mut core, other, sa(A), t).port(), 5000);
    // Another host whose port is free keeps it.
    assert_eq!(out(&mut core, sa("10.0.0.3:45000"), sa(A), t).port(), 45000);
    // Outside the range: not preserved.
    assert_ne!(out(&mut core, sa("10.0.0.4:999"), sa(A), t).port(), 999);

    // Off: never the internal port, even over many hosts and seeds.
    for seed in 0..50 {
        let mut off = config(
            Behaviour::EndpointIndependent,
            Behaviour::EndpointIndependent,
        );
        off.seed = seed;
        off.ports = 45000..=45003;
        let mut core = NatCore::new(off).unwrap();
        let internal = sa("10.0.0.1:45001");
        assert_ne!(out(&mut core, internal, sa(A), t).port(), 45001);
    }
}

#[test]
fn ports_follow_the_seed() {
    let t = Instant::now();
    let ports = |seed| {
        let mut c = config(
            Behaviour::AddressAndPortDependent,
            Behaviour::EndpointIndependent,
        );
        c.seed = seed;
        let mut core = NatCore::new(c).unwrap();
        (1..16u8)
            .map(|i| {
                out(
                    &mut core,
                    sa(I),
                    SocketAddr::new(Ipv4Addr::new(8, 8, 8, i).into(), 53),
                    t,
                )
                .port()
            })
            .collect::<Vec<u16>>()
    };
    assert_eq!(ports(1), ports(1));
    assert_ne!(ports(1), ports(2));
}

#[test]
fn hairpinning_between_internal_hosts() {
    let t = Instant::now();
    let i2 = sa("10.0.0.2:6000");
    for mapping in Behaviour::ALL {
        for filtering in Behaviour::ALL {
            let mut core = NatCore::new(config(mapping, filtering)).unwrap();
            let p1 = out(&mut core, sa(I), sa(A), t);
            match core.handle_outbound(i2, p1, t) {
                Outbound::Hairpin { from, to } => {
                    assert_eq!(to, sa(I));
                    // The receiver sees I2's public endpoint (REQ-9)...
                    assert_eq!(from.ip(), IpAddr::V4(PUBLIC));
                    assert_eq!(core.public_endpoint_towards(i2, p1), Some(from));
                    assert_ne!(from, p1);
                }
                other => panic!("{mapping}/{filtering}: {other:?}"),
            }
            // A host hairpinning to its own mapping.
            assert!(matches!(
                core.handle_outbound(sa(I), p1, t),
                Outbound::Hairpin { to, .. } if to == sa(I)
            ));
            // To a public port nobody holds.
            let unused = SocketAddr::new(IpAddr::V4(PUBLIC), 1);
            assert_eq!(
                core.handle_outbound(i2, unused, t),
                Outbound::Drop(DropReason::NoMapping)
            );
        }
    }
    let mut off = config(
        Behaviour::EndpointIndependent,
        Behaviour::EndpointIndependent,
    );
    off.hairpinning = false;
    let mut core = NatCore::new(off).unwrap();
    let p1 = out(&mut core, sa(I), sa(A), t);
    assert_eq!(
        core.handle_outbound(i2, p1, t),
        Outbound::Drop(DropReason::HairpinDisabled)
    );
    // No mapping was created for the refused hairpin.
    assert_eq!(core.public_endpoint_of(i2), None);
}

#[test]
fn rebinding_moves_every_mapping_of_the_host() {
    let t = Instant::now();
    let mut core = NatCore::new(config(
        Behaviour::AddressDependent,
        Behaviour::AddressAndPortDependent,
    ))
    .unwrap();
    let pa = out(&mut core, sa(I), sa(A), t);
    let pb = out(&mut core, sa(I), sa(B), t);
    let other = out(&mut core, sa("10.0.0.9:1"), sa(A), t);
    while core.poll_event().is_some() {}
    let moved = core.rebind(sa(I), t);
    assert_eq!(moved.len(), 2);
    let new_a = out(&mut core, sa(I), sa(A), t);
    let new_b = out(&mut core, sa(I), sa(B), t);
    assert_ne!(new_a, pa);
    assert_ne!(new_b, pb);
    assert!(moved.iter().any(|r| r.old == pa && r.new == new_a));
    assert!(matches!(
        core.poll_event(),
        Some(NatEvent::MappingRebound(_))
    ));
    // Old ports are dead, new ones keep the permissions.
    assert_eq!(
        core.handle_inbound(sa(A), pa.port(), t),
        Inbound::Drop(DropReason::NoMapping)
    );
    assert_eq!(
        core.handle_inbound(sa(A), new_a.port(), t),
        Inbound::Forward { to: sa(I) }
    );
    // Other hosts are untouched.
    assert_eq!(out(&mut core, sa("10.0.0.9:1"), sa(A), t), other);
    assert!(core.rebind(sa("10.9.9.9:9"), t).is_empty());
}

/// A rebound mapping keeps its expiry (the rebinding is no traffic), and
/// outbound packets on the new port refresh it as before.
#[test]
fn rebinding_keeps_the_expiry_and_the_refresh_rule() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut core = NatCore::new(config(
        Behaviour::EndpointIndependent,
        Behaviour::AddressAndPortDependent,
    ))
    .unwrap();
    out(&mut core, sa(I), sa(A), t0);
    let moved = core.rebind(sa(I), t0 + s(20));
    assert_eq!(moved.len(), 1);
    let new = moved[0].new;
    // Not refreshed by the rebinding: still expires at 30 s.
    assert_eq!(core.poll_timeout(), Some(t0 + s(30)));
    assert_eq!(
        core.handle_inbound(sa(A), new.port(), t0 + s(29)),
        Inbound::Forward { to: sa(I) }
    );
    // Inbound traffic on the new port did not refresh it either.
    assert_eq!(
        core.handle_inbound(sa(A), new.port(), t0 + s(30)),
        Inbound::Drop(DropReason::Expired)
    );
    // A second life: outbound refreshes the rebound mapping.
    let mut core = NatCore::new(config(
        Behaviour::EndpointIndependent,
        Behaviour::EndpointIndependent,
    ))
    .unwrap();
    out(&mut core, sa(I), sa(A), t0);
    let new = core.rebind(sa(I), t0 + s(10))[0].new;
    assert_eq!(out(&mut core, sa(I), sa(A), t0 + s(25)), new);
    assert_eq!(core.poll_timeout(), Some(t0 + s(55)));
    assert_eq!(
        core.handle_inbound(sa(B), new.port(), t0 + s(50)),
        Inbound::Forward { to: sa(I) }
    );
}

/// Hairpinned packets are outbound for their sender (they refresh its
/// mapping) and inbound for their receiver (they do not refresh its).
#[test]
fn hairpinned_traffic_refreshes_only_the_sender() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let i2 = sa("10.0.0.2:6000");
    let mut core = NatCore::new(config(
        Behaviour::EndpointIndependent,
        Behaviour::EndpointIndependent,
    ))
    .unwrap();
    let p1 = out(&mut core, sa(I), sa(A), t0);
    let p2 = out(&mut core, i2, sa(A), t0);
    // I2 hairpins to I every 10 s: delivered until I's mapping, refreshed
    // by nobody, expires at 30 s.
    for k in 1..=2 {
        assert_eq!(
            core.handle_outbound(i2, p1, t0 + s(10 * k)),
            Outbound::Hairpin {
                from: p2,
                to: sa(I)
            }
        );
    }
    for k in 3..=4 {
        assert_eq!(
            core.handle_outbound(i2, p1, t0 + s(10 * k)),
            Outbound::Drop(DropReason::Expired)
        );
    }
    // I2's own mapping, refreshed by its hairpinned packets, lives on.
    assert_eq!(core.public_endpoint_of(sa(I)), None);
    assert_eq!(
        core.handle_inbound(sa(A), p1.port(), t0 + s(41)),
        Inbound::Drop(DropReason::Expired)
    );
    assert_eq!(
        core.handle_inbound(sa(A), p2.port(), t0 + s(41)),
        Inbound::Forward { to: i2 }
    );
}

#[test]
fn exhausted_ports_and_refused_ports() {
    let t = Instant::now();
    let mut c = config(
        Behaviour::AddressAndPortDependent,
        Behaviour::EndpointIndependent,
    );
    c.ports = 40000..=40001;
    let mut core = NatCore::new(c.clone()).unwrap();
    out(&mut core, sa(I), sa(A), t);
    out(&mut core, sa(I), sa(A2), t);
    assert_eq!(
        core.handle_outbound(sa(I), sa(B), t),
        Outbound::Drop(DropReason::PortsExhausted)
    );
    // A port the driver cannot bind is never used.
    let mut core = NatCore::new(c).unwrap();
    let mut asked = Vec::new();
    let decision = core.handle_outbound_with(sa(I), sa(A), t, &mut |p| {
        asked.push(p);
        p == 40001
    });
    assert_eq!(
        decision,
        Outbound::Forward {
            public: SocketAddr::new(IpAddr::V4(PUBLIC), 40001)
        }
    );
    assert!(asked.len() <= 64);
    let refused = core.handle_outbound_with(sa(I), sa(A2), t, &mut |_| false);
    assert_eq!(refused, Outbound::Drop(DropReason::PortsExhausted));
}

#[test]
fn bad_configs_are_refused() {
    let c = NatConfig {
        ports: 0..=10,
        ..NatConfig::default()
    };
    assert!(NatCore::new(c).is_err());
    let c = NatConfig {
        mapping_timeout: Duration::ZERO,
        ..NatConfig::default()
    };
    assert!(NatCore::new(c).is_err());
    // A timeout too long to add to an Instant means "never", not a panic.
    let c = NatConfig {
        mapping_timeout: Duration::MAX,
        ..NatConfig::default()
    };
    let mut core = NatCore::new(c).unwrap();
    let t = Instant::now();
    core.handle_outbound(sa(I), sa(A), t);
    assert_eq!(core.poll_timeout(), None);
}

#[derive(Debug, Clone)]
enum Op {
    Out(usize, usize),
    In(usize, u16),
    Rebind(usize),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4usize).prop_map(|(i, d)| Op::Out(i, d)),
        4 => (0..4usize, 0..6u16).prop_map(|(s, p)| Op::In(s, p)),
        1 => (0..3usize).prop_map(Op::Rebind),
        2 => (0..20u64).prop_map(Op::Wait),
    ]
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::EndpointIndependent),
        Just(Behaviour::AddressDependent),
        Just(Behaviour::AddressAndPortDependent),
    ]
}

proptest! {
    /// Random traffic: ports stay unique and in range, and every forwarded
    /// inbound packet is one the filter allows by the mapping's own record.
    #[test]
    fn random_traffic_is_consistent(
        mapping in behaviour(),
        filtering in behaviour(),
        preservation in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let internals = [sa("10.0.0.1:40000"), sa("10.0.0.2:40000"), sa("10.0.0.3:40002")];
        let outside = [sa(A), sa(A2), sa(B), sa("198.51.100.3:7")];
        let mut c = config(mapping, filtering);
        c.ports = 40000..=40005;
        c.port_preservation = preservation;
        c.mapping_timeout = Duration::from_secs(15);
        let mut core = NatCore::new(c).unwrap();
        let mut now = Instant::now();
        for op in ops {
            match op {
                Op::Out(i, d) => {
                    if let Outbound::Forward { public } = core.handle_outbound(internals[i], outside[d], now) {
                        prop_assert!((40000..=40005).contains(&public.port()));
                        prop_assert_eq!(core.public_endpoint_towards(internals[i], outside[d]), Some(public));
                    }
                }
                Op::In(s, p) => {
                    let before = core.mappings();
                    let decision = core.handle_inbound(outside[s], 40000 + p, now);
                    let live: Vec<_> = before.iter().filter(|m| m.expires_at.is_none_or(|e| e > now)).collect();
                    let m = live.iter().find(|m| m.public.port() == 40000 + p);
                    match (decision, m) {
                        (Inbound::Forward { to }, Some(m)) => {
                            prop_assert_eq!(to, m.internal);
                            let ok = match filtering {
                                Behaviour::EndpointIndependent => true,
                                Behaviour::AddressDependent => m.destinations.iter().any(|d| d.ip() == outside[s].ip()),
                                Behaviour::AddressAndPortDependent => m.destinations.contains(&outside[s]),
                            };
                            prop_assert!(ok);
                        }
                        (Inbound::Forward { .. }, None) => prop_assert!(false, "forwarded without a live mapping"),
                        (Inbound::Drop(DropReason::Filtered), None) => prop_assert!(false, "filtered without a mapping"),
                        (Inbound::Drop(_), _) => {}
                    }
                    // Inbound never changes the expiry.
                    let after = core.mappings();
                    for m in &after {
                        if let Some(b) = before.iter().find(|b| b.public == m.public) {
                            prop_assert_eq!(b.expires_at, m.expires_at);
                        }
                    }
                }
                Op::Rebind(i) => { core.rebind(internals[i], now); }
                Op::Wait(secs) => {
                    now += Duration::from_secs(secs);
                    core.handle_timeout(now);
                }
            }
            let ms = core.mappings();
            let ports: HashSet<u16> = ms.iter().map(|m| m.public.port()).collect();
            prop_assert_eq!(ports.len(), ms.len());
            prop_assert!(ms.iter().all(|m| m.expires_at.is_none_or(|e| e > now)));
            while core.poll_event().is_some() {}
        }
    }
}
