//! Memory of idle nodes in the in-memory network, measured with a counting
//! allocator: the simulator must fit 10,000 peers (aim: 100,000 in 24 GiB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use p2psip_node::testnet::Net;
use p2psip_node::{Config, PhaseKind};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, same contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `System.realloc`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn addr(i: u32) -> SocketAddr {
    let b = (i + 1).to_be_bytes();
    SocketAddr::from(([10, b[1], b[2], b[3]], 5060))
}

#[test]
fn idle_nodes_take_a_few_kilobytes_each() {
    let n: u32 = std::env::var("NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 40 } else { 200 });
    let started = Instant::now();
    let before = LIVE.load(Ordering::Relaxed);
    let mut net = Net::new(Duration::from_millis(5));
    // PROFILE §12 defaults: what a large simulation would run.
    let first = net.add(Config::new(addr(0)));
    for i in 1..n {
        net.run_for(Duration::from_millis(200));
        let boot = net.addr(first);
        net.add(Config::new(addr(i)).with_bootstrap(Some(boot)));
    }
    // Long enough for the default intervals (60 s) to settle the ring.
    let settle = if cfg!(debug_assertions) { 10 } else { 20 };
    net.run_for(Duration::from_secs(settle * 60));
    assert!(
        net.live()
            .iter()
            .all(|i| net.node(*i).phase() == PhaseKind::Member)
    );
    // Idle: what dropping the nodes frees is what they held on the heap;
    // their structs sit inline in the network's vector.
    let approx: usize = net
        .live()
        .iter()
        .map(|i| net.node(*i).memory())
        .sum::<usize>()
        / n as usize;
    let s = net.node(n as usize / 2).snapshot();
    let big = net
        .live()
        .into_iter()
        .max_by_key(|i| net.node(*i).memory())
        .unwrap();
    eprintln!("largest: {:?}", net.node(big).memory_parts());
    let held = LIVE.load(Ordering::Relaxed);
    for i in 0..n as usize {
        net.kill(i);
    }
    let heap = (held - LIVE.load(Ordering::Relaxed)) as usize;
    let per_node = heap / n as usize + std::mem::size_of::<p2psip_node::Node>();
    let total = (held - before) as usize / n as usize;
    eprintln!(
        "{n} nodes: {per_node} bytes per idle node ({approx} by Node::memory; {total} with the test network), \
         {} datagrams, {:?}\n{s:?}",
        net.delivered,
        started.elapsed()
    );
    assert!(per_node < 30_000, "{per_node} bytes per idle node");
}
