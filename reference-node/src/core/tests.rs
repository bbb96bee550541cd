//! Unit tests of the core, named after the requirement they check.

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::Ring;

use super::*;
use crate::testnet::Net;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 1, i], 5060))
}

fn fast(i: u8) -> Config {
    Config::fast(addr(i))
}

/// `n` nodes joining one after the other through the first.
fn ring_of(n: u8) -> Net {
    let mut net = Net::new(Duration::from_millis(2));
    let a = net.add(fast(1));
    for i in 2..=n {
        net.run_for(Duration::from_millis(50));
        let boot = net.addr(a);
        net.add(fast(i).with_bootstrap(Some(boot)));
    }
    net
}

/// Differences between the nodes' state and the ideal ring of the live
/// nodes (CHECKS C-G5).
fn not_ideal(net: &Net) -> Vec<String> {
    let live = net.live();
    let ring = Ring::new(live.iter().map(|i| net.node(*i).me().id));
    let mut out = Vec::new();
    for i in live {
        let n = net.node(i);
        let id = n.me().id;
        let pred = n.predecessor().map(|p| p.id);
        if pred != ring.ideal_predecessor(&id) {
            out.push(format!("{}: pred {:?}", n.me(), pred));
        }
        let succs: Vec<Id> = n.successors().iter().map(|p| p.id).collect();
        if succs != ring.successor_list(&id, 4) {
            out.push(format!("{}: succs {:?} want {:?}", n.me(), succs, ring.successor_list(&id, 4)));
        }
        for (f, p) in n.fingers() {
            if Some(p.id) != ring.finger(&id, f) {
                out.push(format!("{}: F{f} = {}", n.me(), p));
            }
        }
    }
    out
}

#[test]
fn stab_5_eight_nodes_converge_to_the_ideal_ring() {
    let mut net = ring_of(8);
    // (log2 8 + 3) stabilisation intervals of 1 s after the last join.
    net.run_for(Duration::from_secs(6));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
    // C-G7: and it stays there.
    net.run_for(Duration::from_secs(10));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
}

#[test]
fn debug_convergence_time() {
    let n: u8 = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let mut net = ring_of(n);
    for s in 0..60 {
        let bad = not_ideal(&net);
        eprintln!("t={s}: {}", bad.iter().map(|b| b.split(':').nth(2).unwrap_or("").split(' ').nth(1).unwrap_or("").to_string()).collect::<Vec<_>>().join(","));
        if bad.is_empty() {
            eprintln!("ideal after {s} s");
            return;
        }
        net.run_for(Duration::from_millis(500));
    }
    panic!("{:?}", not_ideal(&net));
}

#[test]
fn debug_trace() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("p2psip_node=info").try_init();
    let mut net = ring_of(4);
    for s in 0..20 {
        let bad = not_ideal(&net);
        eprintln!("--- t={} bad={:?}", net.now(), bad);
        if bad.is_empty() {
            return;
        }
        net.run_for(Duration::from_millis(500));
    }
}
