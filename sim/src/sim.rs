/*!
The simulator's driver: reference-node cores on the simulated network, in
virtual time.

[`Sim::step`] processes the earliest thing due (quinn's `Pair::step`): a
datagram delivery, a node's timer, or the lookup client's timer, in that
order when they are due at the same instant, and jumps virtual time to
it. [`Sim::run_until`] repeats it up to a time; [`Sim::drive_bounded`]
up to a number of steps. Both report a [`Runaway`] instead of looping
forever: a run whose rate of events per live node and stabilisation
interval passes a bound, or that keeps finding work at one instant.

Per node the simulator keeps the boxed [`Node`] and 24 bytes beside it:
its timer-heap entry and position and a counter of datagrams sent. There
is no per-node queue; every datagram in flight sits in the network's one
heap. Node `i`'s address is computed from `i` ([`crate::addr`]).

Calling contract towards the nodes (the core's rustdoc): after every
input the node's outputs are drained, then its `poll_timeout` is read and
the node's heap entry moved only when the deadline changed.
*/

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_node::{Command, Config, Event, Input, Node, Output, PhaseKind, Time};
use p2psip_wire::{Id, Transport};

use crate::addr::{self, AddrBook, CLIENT};
use crate::client::{Client, Outcome, Request};
use crate::net::{Endpoint, Fate, LinkModel, NetStats, Network, mix, nanos, time_of};
use crate::timers::TimerHeap;
use crate::truth::Truth;

/// What the simulator is built from.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds the network's draws and every node's generator.
    pub seed: u64,
    /// The template of every node's configuration (`local`, `bootstrap`
    /// and `seed` are set per node).
    pub node: Config,
    pub link: LinkModel,
    /// How many lookups the client runs at once.
    pub lookup_parallelism: usize,
    /// Runaway bound: events per live node per stabilisation interval.
    pub max_event_rate: f64,
}

impl SimConfig {
    /// Harness fast timers (PROFILE §12), default links.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            node: Config::fast(addr::default_addr(0)),
            link: LinkModel::default(),
            lookup_parallelism: 256,
            max_event_rate: 20_000.0,
        }
    }
}

/// The run could not go on: an unbounded amount of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Runaway {
    /// More events than the rate bound allows.
    #[error(
        "runaway at {at}: {events} events in {window:?} of virtual time with {live} live peers"
    )]
    Rate {
        at: Time,
        events: u64,
        window: Duration,
        live: usize,
    },
    /// Work kept appearing without time advancing.
    #[error("runaway at {at}: {events} events without virtual time advancing")]
    Stalled { at: Time, events: u64 },
    /// [`Sim::drive_bounded`] hit its step bound with work left.
    #[error("runaway at {at}: still busy after {steps} steps")]
    Steps { at: Time, steps: u64 },
}

/// Node events the scenario runner needs (others are only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    pub at: Time,
    pub node: Endpoint,
    pub event: Event,
}

/// Counters of what the simulator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Events processed (deliveries, node timers, client timers).
    pub events: u64,
    pub deliveries: u64,
    pub node_timers: u64,
    /// Datagrams sent by nodes (the client's are not counted).
    pub node_messages: u64,
    /// Datagrams that arrived for a node no longer running.
    pub to_dead: u64,
    /// Datagrams for an address no endpoint has.
    pub unroutable: u64,
    /// Messages larger than the receiver's limit (given as `TooLarge`).
    pub too_large: u64,
    /// A node still due after its timeout was handled (re-armed 1 ms
    /// later; would be a core bug).
    pub stuck_timers: u64,
    pub joined: u64,
    pub join_failed: u64,
    pub left: u64,
    pub started: u64,
    pub killed: u64,
    pub leaves: u64,
}

/// The simulator. See the module documentation.
pub struct Sim {
    now: Time,
    cfg: SimConfig,
    nodes: Vec<Option<Box<Node>>>,
    sent: Vec<u32>,
    book: AddrBook,
    net: Network,
    timers: TimerHeap,
    truth: Truth,
    client: Client,
    events: Vec<NodeEvent>,
    counters: Counters,
    /// Sum over time of the number of live peers (peer-seconds), for
    /// messages per node per interval.
    peer_nanos: u128,
    /// Runaway bookkeeping: the window's start and events then.
    window: (Time, u64),
    same_instant: (Time, u64),
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("live", &self.truth.len())
            .field("in_flight", &self.net.in_flight())
            .finish_non_exhaustive()
    }
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let client = Client::new(
            &cfg.node.overlay,
            cfg.node.t1,
            cfg.node.t2,
            cfg.lookup_parallelism,
        );
        Sim {
            now: Time::ZERO,
            net: Network::new(cfg.link.clone(), cfg.seed),
            nodes: Vec::new(),
            sent: Vec::new(),
            book: AddrBook::default(),
            timers: TimerHeap::default(),
            truth: Truth::default(),
            client,
            events: Vec::new(),
            counters: Counters::default(),
            peer_nanos: 0,
            window: (Time::ZERO, 0),
            same_instant: (Time::ZERO, 0),
            cfg,
        }
    }

    // ----- state ---------------------------------------------------------------

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The stabilisation interval T.
    pub fn interval(&self) -> Duration {
        self.cfg.node.stabilize
    }

    /// Nodes ever started (the next node's index).
    pub fn started(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The running node at `e`, if any (killed and stopped nodes are gone).
    pub fn node(&self, e: Endpoint) -> Option<&Node> {
        self.nodes.get(e as usize)?.as_deref()
    }

    pub fn addr(&self, e: Endpoint) -> SocketAddr {
        self.book.addr(e)
    }

    pub fn endpoint(&self, addr: SocketAddr) -> Option<Endpoint> {
        self.book.endpoint(addr, self.started())
    }

    /// The ground truth (the live set L).
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn truth_mut(&mut self) -> &mut Truth {
        &mut self.truth
    }

    /// Is `e` in L (started, not killed, not told to leave)?
    pub fn is_live(&self, e: Endpoint) -> bool {
        self.node(e)
            .is_some_and(|n| self.truth.endpoint(&n.me().id) == Some(e))
    }

    /// Live peers in ring order.
    pub fn live(&self) -> Vec<Endpoint> {
        self.truth.iter().map(|(_, e)| *e).collect()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn net_stats(&self) -> NetStats {
        self.net.stats()
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Datagrams each node sent so far, by node index.
    pub fn sent_per_node(&self) -> &[u32] {
        &self.sent
    }

    /// Live-peer time so far, in stabilisation intervals (peer-intervals).
    pub fn peer_intervals(&self) -> f64 {
        self.peer_nanos as f64 / self.interval().as_nanos() as f64
    }

    /// Takes the node events recorded so far (registrations, lookups).
    pub fn take_events(&mut self) -> Vec<NodeEvent> {
        std::mem::take(&mut self.events)
    }

    // ----- membership -------------------------------------------------------------

    /// Starts a node at its computed address; `bootstrap` `None` makes it
    /// the first peer of an overlay (JOIN-8).
    pub fn add_node(&mut self, bootstrap: Option<Endpoint>) -> Endpoint {
        let e = self.started();
        self.start(e, addr::default_addr(e), bootstrap)
    }

    /// Starts a node at a chosen address (one not used by another node).
    pub fn add_node_at(&mut self, at: SocketAddr, bootstrap: Option<Endpoint>) -> Endpoint {
        let e = self.started();
        self.book.choose(e, at);
        self.start(e, at, bootstrap)
    }

    /// Is `at` free for [`Sim::add_node_at`]?
    pub fn addr_is_free(&self, at: SocketAddr) -> bool {
        !self.book.is_taken(at, self.started()) && at != addr::default_addr(self.started())
    }

    fn start(&mut self, e: Endpoint, at: SocketAddr, bootstrap: Option<Endpoint>) -> Endpoint {
        assert!(e < addr::MAX_NODES, "too many nodes for the address plan");
        let mut cfg = self.cfg.node.clone();
        cfg.local = at;
        cfg.advertise = None;
        cfg.bootstrap = bootstrap.map(|b| self.book.addr(b));
        cfg.seed = mix(self.cfg.seed ^ mix(u64::from(e) + 1)) | 1;
        // The template was validated when the run was planned; a chosen
        // address always carries a port.
        let node = Node::new(cfg, self.now).expect("a valid node configuration");
        self.truth.insert(node.me().id, e, self.now);
        self.nodes.push(Some(Box::new(node)));
        self.sent.push(0);
        self.counters.started += 1;
        self.pump(e);
        e
    }

    /// Kills a node at once, as a crash would: it sends nothing more and
    /// what is in flight to it is lost.
    pub fn kill(&mut self, e: Endpoint) {
        if let Some(n) = self.nodes.get_mut(e as usize).and_then(Option::take) {
            self.truth.remove(&n.me().id, self.now);
            self.timers.set(e, None);
            self.counters.killed += 1;
        }
    }

    /// Tells a node to leave gracefully (LEAVE-1). It leaves L now; it is
    /// dropped once it reports `Left`.
    pub fn leave(&mut self, e: Endpoint) {
        let Some(id) = self.node(e).map(|n| n.me().id) else {
            return;
        };
        self.truth.remove(&id, self.now);
        self.counters.leaves += 1;
        self.input(e, Input::Command(Command::Leave));
    }

    /// Gives a node a local command (`Register`, `Lookup`).
    pub fn command(&mut self, e: Endpoint, c: Command) {
        self.input(e, Input::Command(c));
    }

    /// Queues a lookup by the client.
    pub fn lookup(&mut self, req: Request) {
        self.client.submit(req);
        self.client.start_queued(self.now, &self.truth, &self.book);
        self.pump_client();
    }

    /// Lookups queued or running.
    pub fn lookups_busy(&self) -> usize {
        self.client.busy()
    }

    pub fn take_lookup_outcomes(&mut self) -> Vec<Outcome> {
        self.client.take_outcomes()
    }

    pub fn client_messages(&self) -> u64 {
        self.client.sent()
    }

    // ----- driving -------------------------------------------------------------

    /// When the next event is due.
    pub fn next_event(&self) -> Option<Time> {
        [
            self.net.poll_timeout(),
            self.timers.peek().map(|(t, _)| time_of(t)),
            self.client.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Processes the earliest event; `false` when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else {
            return false;
        };
        self.advance(next);
        self.counters.events += 1;
        if let Some(d) = self.net.poll_delivery(self.now) {
            self.deliver(d.from, d.to, d.bytes);
            return true;
        }
        if let Some((t, e)) = self.timers.peek()
            && t <= nanos(self.now)
        {
            self.counters.node_timers += 1;
            self.input(e, Input::Timeout);
            if self.timers.get(e).is_some_and(|t| t <= nanos(self.now)) {
                // The core promises to fire what is due; should it not,
                // waking it again at once would spin.
                self.counters.stuck_timers += 1;
                self.timers
                    .set(e, Some(nanos(self.now + Duration::from_millis(1))));
            }
            return true;
        }
        self.client
            .handle_timeout(self.now, &self.truth, &self.book);
        self.pump_client();
        true
    }

    fn advance(&mut self, to: Time) {
        if to > self.now {
            let dt = to.saturating_since(self.now).as_nanos();
            self.peer_nanos += dt * self.truth.len() as u128;
            self.now = to;
        }
    }

    /// Runs every event due at or before `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Time) -> Result<(), Runaway> {
        while let Some(next) = self.next_event() {
            if next > t {
                break;
            }
            self.step();
            self.check_runaway()?;
        }
        self.advance(t);
        Ok(())
    }

    pub fn run_for(&mut self, d: Duration) -> Result<(), Runaway> {
        self.run_until(self.now + d)
    }

    /// Runs at most `max_steps` events; [`Runaway::Steps`] when work is
    /// left after them.
    pub fn drive_bounded(&mut self, max_steps: u64) -> Result<u64, Runaway> {
        for n in 0..max_steps {
            if !self.step() {
                return Ok(n);
            }
            self.check_runaway()?;
        }
        if self.next_event().is_some() {
            return Err(Runaway::Steps {
                at: self.now,
                steps: max_steps,
            });
        }
        Ok(max_steps)
    }

    fn check_runaway(&mut self) -> Result<(), Runaway> {
        let events = self.counters.events;
        let live = self.truth.len().max(1);
        if self.same_instant.0 != self.now {
            self.same_instant = (self.now, events);
        } else if events - self.same_instant.1 > 1_000_000 + 1_000 * live as u64 {
            return Err(Runaway::Stalled {
                at: self.now,
                events: events - self.same_instant.1,
            });
        }
        let t = self.interval();
        let window = self.now.saturating_since(self.window.0);
        let in_window = events - self.window.1;
        if window >= t {
            self.window = (self.now, events);
        } else {
            let allowed = self.cfg.max_event_rate * live as f64 + 1_000.0;
            if in_window as f64 > allowed {
                return Err(Runaway::Rate {
                    at: self.now,
                    events: in_window,
                    window,
                    live,
                });
            }
        }
        Ok(())
    }

    fn deliver(&mut self, from: Endpoint, to: Endpoint, bytes: Vec<u8>) {
        self.counters.deliveries += 1;
        if to == CLIENT {
            self.client
                .handle_datagram(self.now, from, &bytes, &self.truth, &self.book);
            self.pump_client();
            return;
        }
        let Some(Some(node)) = self.nodes.get_mut(to as usize) else {
            self.counters.to_dead += 1;
            return;
        };
        let from = self.book.addr(from);
        let limit = node.config().max_message;
        if bytes.len() > limit {
            self.counters.too_large += 1;
            node.handle_input(
                self.now,
                Input::TooLarge {
                    from,
                    transport: Transport::Udp,
                    head: &bytes[..limit],
                },
            );
        } else {
            node.handle_input(
                self.now,
                Input::Receive {
                    from,
                    transport: Transport::Udp,
                    bytes: &bytes,
                },
            );
        }
        self.pump(to);
    }

    fn input(&mut self, e: Endpoint, input: Input<'_>) {
        let Some(Some(node)) = self.nodes.get_mut(e as usize) else {
            return;
        };
        node.handle_input(self.now, input);
        self.pump(e);
    }

    /// Moves a node's outputs into the network and re-arms its timer.
    fn pump(&mut self, e: Endpoint) {
        let Sim {
            nodes,
            net,
            book,
            timers,
            events,
            counters,
            sent,
            now,
            ..
        } = self;
        let Some(Some(node)) = nodes.get_mut(e as usize) else {
            return;
        };
        let count = sent.len() as u32;
        while let Some(o) = node.poll_output() {
            match o {
                Output::Transmit(t) => {
                    sent[e as usize] = sent[e as usize].saturating_add(1);
                    counters.node_messages += 1;
                    match book.endpoint(t.to, count) {
                        Some(to) => {
                            net.handle_send(*now, e, to, t.bytes);
                        }
                        None => counters.unroutable += 1,
                    }
                }
                Output::Event(ev) => match ev {
                    Event::Joined { .. } => counters.joined += 1,
                    Event::JoinFailed { .. } => counters.join_failed += 1,
                    Event::Left => counters.left += 1,
                    Event::Registered { .. } | Event::LookedUp { .. } => events.push(NodeEvent {
                        at: *now,
                        node: e,
                        event: ev,
                    }),
                    _ => {}
                },
            }
        }
        if node.is_stopped() {
            timers.set(e, None);
            nodes[e as usize] = None;
            return;
        }
        timers.set(e, node.poll_timeout().map(nanos));
    }

    fn pump_client(&mut self) {
        while let Some((to, bytes)) = self.client.poll_transmit() {
            // Losses and oversize drops are the network's to count.
            let _: Fate = self.net.handle_send(self.now, CLIENT, to, bytes);
        }
    }

    // ----- measurement -----------------------------------------------------------

    /// Memory of the simulated peers and of the simulator itself.
    pub fn memory(&self) -> Memory {
        let mut total = 0usize;
        let mut max = 0usize;
        let mut n = 0usize;
        let mut parts = Vec::new();
        for node in self.nodes.iter().flatten() {
            let m = node.memory();
            total += m;
            if m > max {
                max = m;
                parts = node.memory_parts().to_vec();
            }
            n += 1;
        }
        let slots = self.nodes.capacity() * std::mem::size_of::<Option<Box<Node>>>()
            + self.sent.capacity() * std::mem::size_of::<u32>()
            + self.timers.memory();
        let shared = self.net.memory()
            + self.truth.memory()
            + self.book.memory()
            + self.client.memory()
            + self.events.capacity() * std::mem::size_of::<NodeEvent>();
        Memory {
            nodes: n,
            node_total: total,
            node_max: max,
            node_max_parts: parts,
            sim_slots: slots,
            sim_shared: shared,
        }
    }

    /// The IDs of the peers that are in L but have not joined yet.
    pub fn joining(&self) -> Vec<Id> {
        self.truth
            .iter()
            .filter(|(_, e)| {
                self.node(**e)
                    .is_some_and(|n| n.phase() == PhaseKind::Joining)
            })
            .map(|(i, _)| *i)
            .collect()
    }
}

/// Bytes held, from [`Node::memory`] and the simulator's own structures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Running nodes.
    pub nodes: usize,
    /// Sum of [`Node::memory`] (the boxed struct and what it owns).
    pub node_total: usize,
    pub node_max: usize,
    /// [`Node::memory_parts`] of the largest node.
    pub node_max_parts: Vec<(&'static str, usize)>,
    /// Per-node slots of the simulator: node pointers, counters, timer heap.
    pub sim_slots: usize,
    /// Shared structures: the network queue and datagrams in flight, the
    /// ground truth, the client.
    pub sim_shared: usize,
}

impl Memory {
    pub fn node_mean(&self) -> f64 {
        self.node_total as f64 / self.nodes.max(1) as f64
    }

    /// Simulator bytes per running node, beyond the node itself.
    pub fn overhead_per_node(&self) -> f64 {
        (self.sim_slots + self.sim_shared) as f64 / self.nodes.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig::new(1)
    }

    #[test]
    fn two_nodes_form_a_ring() {
        let mut sim = Sim::new(small());
        let a = sim.add_node(None);
        sim.run_for(Duration::from_millis(100)).unwrap();
        let b = sim.add_node(Some(a));
        sim.run_for(Duration::from_secs(5)).unwrap();
        let (na, nb) = (sim.node(a).unwrap(), sim.node(b).unwrap());
        assert_eq!(na.successors()[0].id, nb.me().id);
        assert_eq!(nb.successors()[0].id, na.me().id);
        assert_eq!(na.predecessor().map(|p| p.id), Some(nb.me().id));
        assert_eq!(sim.counters().joined, 2);
        assert!(sim.counters().node_messages > 0);
        assert_eq!(sim.counters().unroutable, 0);
    }

    #[test]
    fn killed_nodes_leave_the_truth_and_drop_their_datagrams() {
        let mut sim = Sim::new(small());
        let a = sim.add_node(None);
        let b = sim.add_node(Some(a));
        sim.run_for(Duration::from_secs(3)).unwrap();
        sim.kill(b);
        assert!(!sim.is_live(b) && sim.is_live(a));
        assert_eq!(sim.truth().len(), 1);
        sim.run_for(Duration::from_secs(10)).unwrap();
        assert!(
            sim.counters().to_dead > 0,
            "a kept talking to b for a while"
        );
        assert!(sim.node(a).unwrap().successors().is_empty());
    }

    #[test]
    fn drive_bounded_reports_work_left() {
        let mut sim = Sim::new(small());
        sim.add_node(None);
        // A lone peer keeps its timers forever.
        assert!(matches!(
            sim.drive_bounded(50),
            Err(Runaway::Steps { steps: 50, .. })
        ));
    }

    #[test]
    fn the_rate_bound_catches_a_runaway() {
        let mut cfg = small();
        cfg.max_event_rate = 0.0;
        let mut sim = Sim::new(cfg);
        let a = sim.add_node(None);
        for _ in 0..200 {
            sim.add_node(Some(a));
        }
        let r = sim.run_for(Duration::from_secs(30));
        assert!(matches!(r, Err(Runaway::Rate { .. })), "{r:?}");
    }
}
