/*!
A tiny deterministic network of [`Node`]s in virtual time, for tests.

Every datagram takes a fixed latency; delivery order is (time, send
order); timers fire from a heap. Nothing is random except what the nodes'
own seeds draw, so a run is the same every time. Messages to an address
that no node has (a test's scripted peer) are collected in
[`Net::outside`].

```
use std::time::Duration;
use p2psip_node::testnet::Net;
use p2psip_node::Config;

let mut net = Net::new(Duration::from_millis(5));
let a = net.add(Config::fast("127.0.0.1:5060".parse().unwrap()));
let b = net.add(Config::fast("127.0.0.2:5060".parse().unwrap()).with_bootstrap(Some(net.addr(a))));
net.run_for(Duration::from_secs(5));
assert_eq!(net.node(b).successors()[0].id, net.node(a).me().id);
```
*/

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::Transport;

use crate::core::{Command, Config, Event, Input, Node, Output, Time};

/// A datagram the network carried to an address that is not a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub at: Time,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// In-memory nodes, links and virtual time.
pub struct Net {
    now: Time,
    latency: Duration,
    nodes: Vec<Option<Node>>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    seq: u64,
    /// (deliver at, order, datagram)
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    in_flight: HashMap<usize, Datagram>,
    /// (deadline, node)
    timers: BinaryHeap<Reverse<(Time, usize)>>,
    /// Datagrams for addresses no node has.
    pub outside: Vec<Datagram>,
    /// Every event, with the index of the node that reported it.
    pub events: Vec<(usize, Event)>,
    /// Datagrams delivered so far.
    pub delivered: u64,
    /// When set, every datagram sent is recorded in [`Net::trace`].
    pub record: bool,
    pub trace: Vec<Datagram>,
}

impl Net {
    pub fn new(latency: Duration) -> Net {
        Net {
            now: Time::ZERO,
            latency,
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: HashMap::new(),
            seq: 0,
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            timers: BinaryHeap::new(),
            outside: Vec::new(),
            events: Vec::new(),
            delivered: 0,
            record: false,
            trace: Vec::new(),
        }
    }

    pub fn now(&self) -> Time {
        self.now
    }

    /// Starts a node now; returns its index. The seed defaults to the index
    /// when the config has seed 0.
    pub fn add(&mut self, mut cfg: Config) -> usize {
        let i = self.nodes.len();
        if cfg.seed == 0 {
            cfg.seed = i as u64 + 1;
        }
        let addr = cfg.local;
        let node = Node::new(cfg, self.now).expect("a valid test config");
        self.nodes.push(Some(node));
        self.addrs.push(addr);
        self.by_addr.insert(addr, i);
        self.pump(i);
        i
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `i` (panics when it was killed).
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node was killed")
    }

    pub fn try_node(&self, i: usize) -> Option<&Node> {
        self.nodes[i].as_ref()
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs[i]
    }

    /// The indices of the nodes still running.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].as_ref().is_some_and(|n| !n.is_stopped()))
            .collect()
    }

    /// Removes a node at once, as a crash would (no leave).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    pub fn command(&mut self, i: usize, c: Command) {
        self.input(i, Input::Command(c));
    }

    /// Sends a datagram from `from` (typically a scripted peer) into the
    /// network.
    pub fn inject(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    ) {
        self.enqueue(Datagram {
            at: self.now,
            from,
            to,
            transport,
            bytes,
        });
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        let now = self.now;
        if let Some(n) = self.nodes[i].as_mut() {
            n.handle_input(now, input);
        }
        self.pump(i);
    }

    /// Moves a node's outputs into the network and re-arms its timer.
    fn pump(&mut self, i: usize) {
        let from = self.addrs[i];
        let mut out = Vec::new();
        if let Some(n) = self.nodes[i].as_mut() {
            while let Some(o) = n.poll_output() {
                out.push(o);
            }
            if let Some(t) = n.poll_timeout() {
                self.timers.push(Reverse((t.max(self.now), i)));
            }
        }
        for o in out {
            match o {
                Output::Transmit(t) => self.enqueue(Datagram {
                    at: self.now,
                    from,
                    to: t.to,
                    transport: t.transport,
                    bytes: t.bytes,
                }),
                Output::Event(e) => self.events.push((i, e)),
            }
        }
    }

    fn enqueue(&mut self, d: Datagram) {
        if self.record {
            self.trace.push(d.clone());
        }
        self.seq += 1;
        let at = self.now + self.latency;
        self.in_flight.insert(self.seq as usize, d);
        self.queue.push(Reverse((at, self.seq, self.seq as usize)));
    }

    /// Processes the next delivery or timer; `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let next_msg = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
        match (next_msg, next_timer) {
            (None, None) => false,
            (Some(m), t) if t.is_none_or(|t| m <= t) => {
                let Some(Reverse((at, _, key))) = self.queue.pop() else {
                    return false;
                };
                self.now = self.now.max(at);
                let Some(mut d) = self.in_flight.remove(&key) else {
                    return true;
                };
                d.at = self.now;
                self.deliver(d);
                true
            }
            _ => {
                let Some(Reverse((at, i))) = self.timers.pop() else {
                    return false;
                };
                // Stale heap entries (the node re-armed since) are skipped.
                let due = self.nodes[i].as_ref().and_then(|n| n.poll_timeout());
                if due.is_some_and(|d| d <= at) {
                    self.now = self.now.max(at);
                    self.input(i, Input::Timeout);
                }
                true
            }
        }
    }

    fn deliver(&mut self, d: Datagram) {
        match self.by_addr.get(&d.to).copied() {
            Some(i) if self.nodes[i].is_some() => {
                self.delivered += 1;
                let bytes = d.bytes;
                self.input(
                    i,
                    Input::Receive {
                        from: d.from,
                        transport: d.transport,
                        bytes: &bytes,
                    },
                );
            }
            Some(_) => {} // a killed node: the datagram is lost
            None => self.outside.push(d),
        }
    }

    /// Runs until virtual time `t` (everything due at or before it).
    pub fn run_until(&mut self, t: Time) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let next = match (next_msg, next_timer) {
                (None, None) => break,
                (a, b) => a.into_iter().chain(b).min().expect("one is set"),
            };
            if next > t {
                break;
            }
            self.step();
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Takes the datagrams that went to addresses no node has.
    pub fn take_outside(&mut self) -> Vec<Datagram> {
        std::mem::take(&mut self.outside)
    }
}
