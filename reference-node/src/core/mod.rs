/*!
The sans-I/O core of the reference peer: a Chord node of the `dsip-chord`
profile as a deterministic state machine.

No sockets, no clock, no threads, no randomness of its own: bytes and time
come in as arguments, bytes to send and events come out, and the only
random numbers (branches, tags, Call-IDs) come from a generator seeded by
[`Config::seed`]. The tokio driver feeds it real sockets and real time; a
simulator feeds it an in-memory network and virtual time.

# Calling contract

1. [`Node::new`] builds a node at time `now` and queues its first outputs
   (the first peer of an overlay is a member at once, JOIN-8; a joiner
   sends its OPTIONS to the bootstrap, JOIN-10).
2. Feed it with [`Node::handle_input`]: a datagram or one framed TCP
   message ([`Input::Receive`]), a message that exceeded the size limit
   ([`Input::TooLarge`]), a [`Command`], or [`Input::Timeout`].
3. After every call, drain [`Node::poll_output`] until it returns `None`:
   each [`Output::Transmit`] must be sent from the node's socket (a UDP
   datagram, or a write on the TCP connection whose remote address is
   `to`); each [`Output::Event`] is informative.
4. Then ask [`Node::poll_timeout`] for the next deadline and call
   `handle_input(now, Input::Timeout)` once `now` has reached it. Calling
   it early does nothing harmful; a deadline of `None` means "nothing
   scheduled".
5. `now` never goes backwards across calls. Its epoch is the caller's.

[`Node::handle`] is the batch form of 2 and 3: it returns every output of
one input as a `Vec`.

A node runs until it has left: after [`Event::Left`] it answers nothing
and schedules nothing ([`Node::is_stopped`]).

# Structure

- [`config`]: [`Config`], the fault switches ([`Fault`], [`FaultSet`]).
- `table`: predecessor, successors, fingers and the peers they refer to.
- `txn`: client retransmissions (TXN-1) and server absorption (TXN-2).
- `store`: the registrations this peer holds (RES-1, RFC 3261 §10.3).
- `inbound`: parsing, the error responses (WIRE-7, WIRE-8, WIRE-10,
  ID-7, JOIN-7) and dispatch per message class.
- `join`, `stabilize`, `leave`, `query`, `resource`, `route`, `adapter`,
  `nat`: the protocol, one concern per file.
*/

mod adapter;
pub mod config;
mod ids;
mod inbound;
mod join;
mod leave;
mod nat;
mod query;
mod resource;
mod respond;
mod route;
mod salvage;
mod stabilize;
mod store;
mod table;
pub mod time;
mod txn;
mod view;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::build::{Identity, Link, Txn};
use p2psip_wire::{Id, Message, Peer, Transport};

pub use config::{Config, ConfigError, Fault, FaultSet, UnknownFault};
pub use time::Time;
pub use view::{Phase as PhaseKind, Snapshot};

use adapter::Adapter;
use ids::Ids;
use route::Routes;
use store::Store;
use table::Table;
use txn::{ClientTxns, ServerTxns};

/// Something for the node to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// A UDP datagram, or one complete message framed from a TCP stream,
    /// received from `from` (for TCP: the connection's remote address).
    Receive {
        from: SocketAddr,
        transport: Transport,
        bytes: &'a [u8],
    },
    /// A message larger than [`Config::max_message`] (WIRE-8). `head` is
    /// what the driver buffered (at most the limit): enough to read a Via
    /// and answer `513` on TCP. Over UDP the node drops it.
    TooLarge {
        from: SocketAddr,
        transport: Transport,
        head: &'a [u8],
    },
    /// A local command (the driver's signal handler, a simulator).
    Command(Command),
    /// Time has passed: fire what is due.
    Timeout,
}

/// A local command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Leave the overlay gracefully (LEAVE-1), then stop.
    Leave,
    /// Register `contact` for `aor` in the overlay, as the adapter does for
    /// a user agent (RES-4, REPL-1). Ends with [`Event::Registered`].
    Register {
        aor: String,
        contact: String,
        expires: u32,
    },
    /// Look `aor` up at its primary and replicas (REPL-4). Ends with
    /// [`Event::LookedUp`].
    Lookup { aor: String },
}

/// Something the node wants done or wants known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(Transmit),
    Event(Event),
}

/// Bytes to send from the node's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// For UDP the destination; for TCP the remote address of the
    /// connection the request came in on (the node opens no connections).
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// What happened, for logs and simulators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node is a member of the ring: admitted by `by`, or the first
    /// peer (`by` = `None`, JOIN-8).
    Joined { me: Peer, by: Option<Peer> },
    /// A join attempt failed; the node tries again after a pause.
    JoinFailed { reason: String },
    PredecessorChanged {
        old: Option<Peer>,
        new: Option<Peer>,
    },
    SuccessorChanged {
        old: Option<Peer>,
        new: Option<Peer>,
    },
    /// The node's own address (and so its Peer-ID) changed (NAT-3, NAT-6).
    AddressChanged { old: Peer, new: Peer },
    /// NAT-8: two peers saw the node at different public endpoints
    /// (`seen`), so it is behind an address- or address-and-port-dependent
    /// mapping NAT; it does not join and uses `adapter` (RES-4) instead.
    Client {
        adapter: SocketAddr,
        seen: [SocketAddr; 2],
    },
    /// A [`Command::Register`] ended with this status.
    Registered { aor: String, status: u16 },
    /// A [`Command::Lookup`] ended: the status and the Contacts agreed on.
    LookedUp {
        aor: String,
        status: u16,
        contacts: Vec<String>,
    },
    /// The node left (or stopped) and does nothing more.
    Left,
}

/// The life of a node: only the data valid in each phase.
#[derive(Debug)]
enum Phase {
    /// Finding its address (JOIN-10) and following 302s to the peer that
    /// admits it (JOIN-1, JOIN-2).
    Joining(Joining),
    /// In the ring.
    Member(Member),
    /// Handing over registrations, then telling its neighbours (LEAVE-1).
    Leaving(Leaving),
    /// Gone.
    Stopped,
}

#[derive(Debug)]
struct Joining {
    step: JoinStep,
    /// Where to (re)start: the bootstrap.
    via: SocketAddr,
    attempts: u32,
}

#[derive(Debug)]
enum JoinStep {
    /// Waiting for the retry timer.
    Backoff,
    /// OPTIONS to the bootstrap in flight (JOIN-10).
    Probe,
    /// The OPTIONS answer did not show our address: a STUN Binding
    /// request to the bootstrap is out.
    Stun { tid: [u8; 12] },
    /// NAT-8: the bootstrap saw us at `first`, not at our local address;
    /// an OPTIONS to a second peer it reported asks how that one sees us.
    Compare { first: SocketAddr },
    /// NAT-8: behind a mapping that differs per destination, the node
    /// stays out of the ring and uses the bootstrap as its adapter.
    Client,
    /// The join REGISTER in flight to `target`, after `hops` redirects.
    Register {
        hops: u32,
        visited: Vec<SocketAddr>,
        log2n: u32,
    },
}

#[derive(Debug)]
struct Member {
    table: Table,
    /// The fix-fingers round in progress (STAB-3).
    fix: Option<FixRound>,
    /// A notify sender outside (pred, me) to adopt if the predecessor
    /// turns out dead (STAB-2 "rectify").
    rectify: Option<Peer>,
}

#[derive(Debug)]
struct FixRound {
    /// The next finger index to resolve.
    index: u8,
    /// The distinct peers found so far.
    found: Vec<Id>,
}

#[derive(Debug)]
struct Leaving {
    table: Table,
    stage: LeaveStage,
    /// Transactions of the current stage still open.
    outstanding: usize,
    /// NAT-6: re-join through this peer with this address afterwards.
    rejoin: Option<(SocketAddr, SocketAddr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaveStage {
    Transfers,
    Leaves,
}

/// Why a client transaction was started: what to do with its answer.
#[derive(Debug)]
enum Purpose {
    /// JOIN-10: OPTIONS to the bootstrap.
    Bootstrap,
    /// NAT-8: OPTIONS to a second peer, to compare observed addresses.
    NatCompare,
    /// NAT-8: a register (or, without `contact`, a lookup) command sent as
    /// a plain REGISTER to the adapter.
    Client { aor: String, lookup: bool },
    /// JOIN-1: the join REGISTER.
    Join,
    /// STAB-1: the query to S1.
    Stabilize { succ: Id },
    /// STAB-2: notify; `adopt` makes the target S1 once it answered.
    Notify { to: Peer, adopt: bool },
    /// QUERY-7: a query to a peer for its own ID before using it.
    Probe { peer: Peer, why: ProbeWhy },
    /// NAT-5.
    Keepalive { peer: Id },
    /// One hop of a routed request.
    Route { route: u32 },
    /// JOIN-9 / LEAVE-1 / the `replica-successor` fault.
    Transfer {
        key: Id,
        to: Peer,
        delete: bool,
        leaving: bool,
    },
    /// LEAVE-1.
    Leave,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeWhy {
    /// A successor candidate reported by S1 (or a leaver).
    Successor,
    /// A predecessor taken from a report (JOIN-6 P1, LEAVE-2 P1).
    Predecessor,
    /// Is the predecessor still alive (check_predecessor, STAB-2 rectify)?
    CheckPredecessor,
}

/// The node's periodic and one-shot timers (quinn's TimerTable shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Join = 0,
    Stabilize,
    FixFingers,
    Keepalive,
    Refresh,
    Leave,
}

const TIMERS: usize = 6;

#[derive(Debug, Default)]
struct Timers([Option<Time>; TIMERS]);

impl Timers {
    fn set(&mut self, t: Timer, at: Time) {
        self.0[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    fn get(&self, t: Timer) -> Option<Time> {
        self.0[t as usize]
    }
    fn next(&self) -> Option<Time> {
        self.0.iter().flatten().min().copied()
    }
    /// Takes the timers due at `now`, in table order.
    fn take_due(&mut self, now: Time) -> Vec<Timer> {
        const ALL: [Timer; TIMERS] = [
            Timer::Join,
            Timer::Stabilize,
            Timer::FixFingers,
            Timer::Keepalive,
            Timer::Refresh,
            Timer::Leave,
        ];
        let mut due = Vec::new();
        for t in ALL {
            if self.get(t).is_some_and(|at| at <= now) {
                self.stop(t);
                due.push(t);
            }
        }
        due
    }
    fn clear(&mut self) {
        self.0 = [None; TIMERS];
    }
}

/// A peer of the overlay. See the module documentation for the calling
/// contract.
pub struct Node {
    cfg: Config,
    ids: Ids,
    now: Time,
    /// The identity this node announces (WIRE-4): its Peer URI and Peer-ID.
    me: Identity,
    phase: Phase,
    store: Store,
    adapter: Adapter,
    routes: Routes,
    txns: ClientTxns<Purpose>,
    server: ServerTxns,
    timers: Timers,
    out: VecDeque<Output>,
    nat: nat::Observed,
    /// (predecessor, S1) as last announced in events.
    announced: (Option<Peer>, Option<Peer>),
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me.peer)
            .field("phase", &self.phase)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Node {
    // ----- construction ----------------------------------------------------

    /// A node at `now`. The first peer of an overlay (no bootstrap) is a
    /// member at once (JOIN-8); a joiner queues its first request.
    pub fn new(cfg: Config, now: Time) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let addr = match cfg.advertise {
            // NAT-3 broken on purpose: the private address, always.
            _ if cfg.faults.has(Fault::IdFromPrivate) => cfg.local,
            Some(public) => public,
            None => cfg.local,
        };
        let me = Identity::new(Peer::at(addr), &cfg.overlay).with_expires(cfg.peer_expires);
        let mut node = Node {
            ids: Ids::new(cfg.seed),
            now,
            me,
            phase: Phase::Stopped,
            store: Store::default(),
            adapter: Adapter::default(),
            routes: Routes::default(),
            txns: ClientTxns::new(),
            server: ServerTxns::default(),
            timers: Timers::default(),
            out: VecDeque::new(),
            nat: nat::Observed::default(),
            announced: (None, None),
            cfg,
        };
        match node
            .cfg
            .bootstrap
            .filter(|b| *b != node.cfg.local && *b != addr)
        {
            None => node.become_first(),
            Some(bootstrap) => node.start_join(bootstrap, true),
        }
        node.timers
            .set(Timer::Refresh, now + node.cfg.refresh_interval());
        Ok(node)
    }

    // ----- input -------------------------------------------------------------

    /// Processes one input at `now`. Outputs are queued for
    /// [`Node::poll_output`].
    pub fn handle_input(&mut self, now: Time, input: Input<'_>) {
        self.now = self.now.max(now);
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        match input {
            Input::Receive {
                from,
                transport,
                bytes,
            } => self.on_receive(from, transport, bytes),
            Input::TooLarge {
                from,
                transport,
                head,
            } => self.on_too_large(from, transport, head),
            Input::Command(c) => self.on_command(c),
            Input::Timeout => self.on_timeout(),
        }
        self.announce();
    }

    /// [`Node::handle_input`] followed by draining every output.
    pub fn handle(&mut self, input: Input<'_>, now: Time) -> Vec<Output> {
        self.handle_input(now, input);
        self.out.drain(..).collect()
    }

    // ----- output ------------------------------------------------------------

    /// The next thing to send or report, in the order it happened.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.out.pop_front();
        if o.is_none() && self.out.capacity() > 64 {
            self.out.shrink_to(16);
        }
        o
    }

    /// When [`Input::Timeout`] is next due; `None` when nothing is
    /// scheduled.
    pub fn poll_timeout(&self) -> Option<Time> {
        if matches!(self.phase, Phase::Stopped) {
            return None;
        }
        let mut next = self.timers.next();
        let mut take = |t: Option<Time>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        take(self.txns.next_deadline());
        take(self.server.next_expiry());
        take(self.store.next_expiry());
        take(self.adapter.next_expiry());
        if let Some(t) = self.table() {
            take(t.next_expiry());
        }
        next
    }

    /// Has the node left (nothing more will happen)?
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    // ----- internals shared by the handlers ------------------------------

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Leave => self.start_leave(None),
            Command::Register {
                aor,
                contact,
                expires,
            } => self.command_register(&aor, &contact, expires),
            Command::Lookup { aor } => self.command_lookup(&aor),
        }
    }

    fn on_timeout(&mut self) {
        let now = self.now;
        let due = self.txns.poll(now, self.cfg.t2);
        for (to, bytes) in due.resend {
            self.out.push_back(Output::Transmit(Transmit {
                to,
                transport: Transport::Udp,
                bytes,
            }));
            if let Some(t) = self.table_mut() {
                t.touch_sent(to, now);
            }
        }
        for txn in due.expired {
            self.on_txn_timeout(txn);
        }
        for t in self.timers.take_due(now) {
            match t {
                Timer::Join => self.on_join_timer(),
                Timer::Stabilize => self.on_stabilize_timer(),
                Timer::FixFingers => self.on_fix_fingers_timer(),
                Timer::Keepalive => self.on_keepalive_timer(),
                Timer::Refresh => self.on_refresh_timer(),
                Timer::Leave => self.on_leave_timer(),
            }
        }
        self.server.expire(now);
        self.store.expire(now);
        self.adapter.expire(now);
        let lapsed = match self.table_mut() {
            Some(t) => t.expire(now),
            None => Vec::new(),
        };
        for p in lapsed {
            tracing::info!(peer = %p, "entry expired (STAB-6)");
            self.after_peer_gone(p.id);
        }
        self.routes.shrink();
    }

    /// A client transaction ended without a final response (Timer F).
    fn on_txn_timeout(&mut self, txn: txn::ClientTxn<Purpose>) {
        tracing::debug!(to = %txn.to, purpose = ?txn.purpose, "transaction timed out (Timer F)");
        match txn.purpose {
            Purpose::Bootstrap | Purpose::Join => self.join_failed("no answer (Timer F)"),
            // The join timer already went on without it.
            Purpose::NatCompare => {}
            Purpose::Client { aor, lookup } => self.on_client_answer(&aor, lookup, 408, None),
            Purpose::Stabilize { succ } => self.fail_peer(succ),
            Purpose::Notify { to, adopt } => {
                if !adopt {
                    self.fail_peer(to.id);
                } else if let Some(t) = self.table_mut() {
                    t.remove(&to.id);
                }
            }
            Purpose::Probe { peer, why } => self.on_probe_result(peer, why, false),
            Purpose::Keepalive { peer } => self.fail_peer(peer),
            Purpose::Route { route } => self.on_route_timeout(route, txn.to),
            Purpose::Transfer {
                key,
                to,
                delete,
                leaving,
            } => self.on_transfer_done(key, to, delete, leaving, false),
            Purpose::Leave => self.on_leave_answer(),
        }
    }

    /// The routing table, while the node has one.
    fn table(&self) -> Option<&Table> {
        match &self.phase {
            Phase::Member(m) => Some(&m.table),
            Phase::Leaving(l) => Some(&l.table),
            _ => None,
        }
    }

    fn table_mut(&mut self) -> Option<&mut Table> {
        match &mut self.phase {
            Phase::Member(m) => Some(&mut m.table),
            Phase::Leaving(l) => Some(&mut l.table),
            _ => None,
        }
    }

    fn member_mut(&mut self) -> Option<&mut Member> {
        match &mut self.phase {
            Phase::Member(m) => Some(m),
            _ => None,
        }
    }

    fn faults(&self) -> FaultSet {
        self.cfg.faults
    }

    /// The current link set (WIRE-5), empty outside the ring.
    fn links(&self) -> Vec<Link> {
        self.table()
            .map(|t| t.links(self.now, self.faults().has(Fault::StaleLinks)))
            .unwrap_or_default()
    }

    /// The lifetime a peer advertised in its DHT-PeerID (WIRE-4: 3600
    /// when absent).
    fn lifetime_of(msg: &Message<'_>) -> u32 {
        msg.dht_peer_id().and_then(|d| d.expires).unwrap_or(3600)
    }

    /// A jittered period: 90-100 % of `d`, so peers started together do
    /// not tick in step.
    fn period(&mut self, d: Duration) -> Duration {
        d - (d / 10).mul_f64(self.ids.unit())
    }

    /// Sends a request over UDP as a new client transaction (TXN-1).
    /// `build` gets the identity and the transaction identifiers.
    fn send_request(
        &mut self,
        to: SocketAddr,
        call_id: Option<&str>,
        purpose: Purpose,
        build: impl FnOnce(&Identity, &Txn) -> Message<'static>,
    ) {
        let (number, branch) = self.ids.branch();
        let call = call_id.map_or_else(|| self.ids.call_id(), str::to_owned);
        let txn = Txn::udp(
            &branch,
            &call,
            &self.ids.tag(),
            self.ids.next_cseq(),
            self.cfg.local,
        );
        let msg = build(&self.me, &txn);
        let bytes = self.encode(&msg);
        tracing::debug!(
            %to,
            class = p2psip_wire::Class::of(&msg).name(),
            ?purpose,
            "send {}",
            p2psip_wire::summary(&msg)
        );
        let now = self.now;
        self.out.push_back(Output::Transmit(Transmit {
            to,
            transport: Transport::Udp,
            bytes: bytes.clone(),
        }));
        if let Some(t) = self.table_mut() {
            t.touch_sent(to, now);
        }
        let retransmit = !self.faults().has(Fault::NoRetransmit);
        self.txns.start(
            now,
            number,
            to,
            bytes.into_boxed_slice(),
            self.cfg.t1,
            self.cfg.timer_f(),
            retransmit,
            purpose,
        );
    }

    /// The bytes of a message as this node sends it.
    fn encode(&self, msg: &Message<'_>) -> Vec<u8> {
        let mut bytes = p2psip_wire::print(msg);
        if self.faults().has(Fault::UpperHex) {
            respond::upper_case_ids(&mut bytes);
        }
        bytes
    }

    /// Emits events for predecessor and S1 changes since the last call.
    fn announce(&mut self) {
        if self.is_stopped() {
            return;
        }
        let now_state = match self.table() {
            Some(t) => (t.pred(), t.succ1()),
            None => (None, None),
        };
        let (old_pred, old_succ) = self.announced;
        if now_state.0.map(|p| p.id) != old_pred.map(|p| p.id) {
            tracing::info!(
                old = ?old_pred.map(|p| p.to_string()),
                new = ?now_state.0.map(|p| p.to_string()),
                "predecessor changed"
            );
            self.out.push_back(Output::Event(Event::PredecessorChanged {
                old: old_pred,
                new: now_state.0,
            }));
        }
        let succ_changed = now_state.1.map(|p| p.id) != old_succ.map(|p| p.id);
        if succ_changed {
            tracing::info!(
                old = ?old_succ.map(|p| p.to_string()),
                new = ?now_state.1.map(|p| p.to_string()),
                "successor changed"
            );
            self.out.push_back(Output::Event(Event::SuccessorChanged {
                old: old_succ,
                new: now_state.1,
            }));
        }
        self.announced = now_state;
        // A new S1 is asked for its links at once rather than a whole
        // interval later: changes then travel round the ring in round
        // trips, not intervals. (STAB-1 asks for at least one query per
        // interval; this adds one per change.)
        if succ_changed && now_state.1.is_some() && !self.faults().has(Fault::NoStabilize) {
            self.stabilize();
            self.announce();
        }
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }
}

#[cfg(test)]
mod tests;
