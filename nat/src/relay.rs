//! The tokio relay: drives a [`NatCore`] with real UDP sockets on loopback.
//!
//! The relay owns three kinds of sockets (see the crate documentation for
//! the whole picture):
//! - one **front** socket per outside node, the only address of that node
//!   the NATed implementation is given;
//! - one **public mapping** socket per public port the core allocates,
//!   bound on [`NatConfig::public_ip`];
//! - nothing on the inside: the implementation keeps its own socket.
//!
//! Public ports: the core picks them (so port preservation and the seed
//! work) and the relay binds each one before the core commits to it (the
//! core's `port_ok` callback); a port that cannot be bound is skipped.
//! Sockets of expired or rebound mappings stay open (inbound packets to them
//! are logged as dropped) until the core releases the port.
//!
//! Each socket has one reader task; the NAT state sits behind one mutex
//! that is never held across an await. Sends have a deadline. Queues are
//! the kernel's socket buffers: a reader handles one datagram at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, NatConfig};
use crate::core::{DropReason, Inbound, MappingInfo, NatCore, NatEvent, Outbound, Rebound};

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// Relay settings besides the NAT itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    pub nat: NatConfig,
    /// IPs for front sockets, one per distinct outside IP in order of
    /// first use; when they run out (or if empty), fresh loopback IPs are
    /// drawn with [`unique_loopback_ip`].
    pub front_ips: Vec<Ipv4Addr>,
    /// Packet log entries kept; older ones are dropped and counted.
    pub log_capacity: usize,
    /// Deadline of one `send_to`.
    pub send_timeout: Duration,
    /// Deadline of [`RelayHandle::shutdown`] waiting for its tasks.
    pub shutdown_timeout: Duration,
    /// Called with every logged packet and its payload (for evidence such
    /// as a pcap); `None` keeps only the payload-free log.
    pub tap: Option<PacketTap>,
}

/// A callback that sees every packet the relay logs, with its payload, as
/// it is handled: after the decision, before a forwarded copy is sent. It
/// runs on the relay's reader tasks, outside the relay's lock; it must be
/// quick and must not block.
#[derive(Clone)]
pub struct PacketTap(pub Arc<TapFn>);

/// The callback of a [`PacketTap`].
pub type TapFn = dyn Fn(&PacketLogEntry, &[u8]) + Send + Sync;

impl PacketTap {
    pub fn new(f: impl Fn(&PacketLogEntry, &[u8]) + Send + Sync + 'static) -> PacketTap {
        PacketTap(Arc::new(f))
    }
}

impl std::fmt::Debug for PacketTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketTap")
    }
}

/// Two taps are equal when they are the same callback.
impl PartialEq for PacketTap {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PacketTap {}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            nat: NatConfig::default(),
            front_ips: Vec::new(),
            log_capacity: 100_000,
            send_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
            tap: None,
        }
    }
}

impl RelayConfig {
    pub fn new(nat: NatConfig) -> Self {
        RelayConfig {
            nat,
            ..RelayConfig::default()
        }
    }
}

/// Why the relay could not do something.
#[derive(Debug, Error)]
pub enum RelayError {
    #[error("invalid NAT configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0} is not an IPv4 loopback address (127.0.0.0/8)")]
    NotLoopback(SocketAddr),
    #[error("front {front} would share the NAT's public IP")]
    FrontOnPublicIp { front: SocketAddr },
    #[error("the relay needs a running tokio runtime")]
    NoRuntime,
    #[error("the relay has been shut down")]
    Closed,
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("{0} is already an outside node with another front")]
    AlreadyOutside(SocketAddr),
    #[error("tasks did not stop within {0:?}")]
    ShutdownTimeout(Duration),
}

/// Which way a logged packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From an internal host towards an outside node's front.
    Outbound,
    /// From an outside node to a public mapping.
    Inbound,
    /// From an internal host to a public mapping of this NAT.
    Hairpin,
    /// Between two outside nodes through their fronts (no NAT involved).
    OutsideToOutside,
    /// From a sender the relay does not know.
    Unknown,
}

/// Why the relay dropped a packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayDrop {
    /// The NAT's decision.
    Nat(DropReason),
    /// The sender is neither an internal host nor a registered outside node.
    UnknownSource,
    /// The socket to send from is gone (the relay is closing).
    NoSocket,
    /// `send_to` failed or missed its deadline.
    SendFailed(String),
}

/// What happened to a logged packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Sent on from relay socket `from` to `to`.
    Forwarded {
        from: SocketAddr,
        to: SocketAddr,
    },
    Dropped(RelayDrop),
}

/// One packet the relay received, for evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PacketLogEntry {
    /// Time since the relay started.
    pub at: Duration,
    pub direction: Direction,
    /// The sender as the relay saw it.
    pub src: SocketAddr,
    /// The relay socket it arrived on.
    pub dst: SocketAddr,
    pub len: usize,
    pub decision: Decision,
}

/// A task that is aborted when this is dropped.
#[derive(Debug)]
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Front {
    real: SocketAddr,
    socket: Arc<UdpSocket>,
    task: Task,
}

#[derive(Debug)]
struct Public {
    socket: Arc<UdpSocket>,
    task: Task,
}

#[derive(Debug)]
struct State {
    core: NatCore,
    internals: HashSet<SocketAddr>,
    fronts: HashMap<SocketAddr, Front>,
    front_of_real: HashMap<SocketAddr, SocketAddr>,
    front_ip_of: HashMap<IpAddr, Ipv4Addr>,
    next_front_ip: usize,
    publics: HashMap<u16, Public>,
    log: VecDeque<PacketLogEntry>,
    log_overflow: u64,
    closed: bool,
    timer: Option<Task>,
}

#[derive(Debug)]
struct Inner {
    config: RelayConfig,
    public_ip: Ipv4Addr,
    started: Instant,
    runtime: Handle,
    state: Mutex<State>,
    /// Wakes the timer when a mapping appears.
    timer_wake: Notify,
}

/// Entry point; see [`Relay::start`].
pub struct Relay;

/// A running relay. Dropping it stops every task and closes every socket
/// (asynchronously); [`RelayHandle::shutdown`] waits for that.
#[derive(Debug)]
pub struct RelayHandle {
    inner: Arc<Inner>,
    internal: SocketAddr,
}

/// Where a reader task's socket sits.
#[derive(Debug, Clone, Copy)]
enum Side {
    Front(SocketAddr),
    Public(u16),
}

/// A fresh IPv4 loopback address for this process: 127.x.y.z with x and
/// the base of y drawn from the process ID, and z (then y) from a counter,
/// so that relays and tests running in parallel, in one process or many,
/// rarely share an IP (and the relay copes when they do: a port that cannot
/// be bound is skipped).
pub fn unique_loopback_ip() -> Ipv4Addr {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    // x in 100..=219; z avoids .0 and .255.
    let x = 100 + (pid % 120) as u8;
    let y = ((pid / 120 + n / 254) % 256) as u8;
    let z = (n % 254) as u8 + 1;
    Ipv4Addr::new(127, x, y, z)
}

fn check_loopback(addr: SocketAddr) -> Result<Ipv4Addr, RelayError> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok(ip),
        _ => Err(RelayError::NotLoopback(addr)),
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    // A panic elsewhere must not wedge the relay; the state stays usable.
    inner.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn bind_udp(runtime: &Handle, addr: SocketAddr) -> io::Result<Arc<UdpSocket>> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    let _guard = runtime.enter();
    Ok(Arc::new(UdpSocket::from_std(socket)?))
}

impl Relay {
    /// Starts a relay for the internal host `internal` (the implementation
    /// under test's own socket address). Needs a tokio runtime (multi- or
    /// current-thread); binds nothing until traffic or outside nodes exist.
    pub fn start(config: RelayConfig, internal: SocketAddr) -> Result<RelayHandle, RelayError> {
        config.nat.validate()?;
        check_loopback(internal)?;
        let public_ip = check_loopback(SocketAddr::new(config.nat.public_ip, 0))?;
        for ip in &config.front_ips {
            if *ip == public_ip {
                return Err(RelayError::FrontOnPublicIp {
                    front: SocketAddr::new(IpAddr::V4(*ip), 0),
                });
            }
            check_loopback(SocketAddr::new(IpAddr::V4(*ip), 0))?;
        }
        let runtime = Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let core = NatCore::new(config.nat.clone())?;
        let inner = Arc::new(Inner {
            public_ip,
            started: Instant::now(),
            runtime: runtime.clone(),
            state: Mutex::new(State {
                core,
                internals: HashSet::from([internal]),
                fronts: HashMap::new(),
                front_of_real: HashMap::new(),
                front_ip_of: HashMap::new(),
                next_front_ip: 0,
                publics: HashMap::new(),
                log: VecDeque::new(),
                log_overflow: 0,
                closed: false,
                timer: None,
            }),
            timer_wake: Notify::new(),
            config,
        });
        let timer = runtime.spawn(timertask(Arc::downgrade(&inner)));
        lock(&inner).timer = Some(Task(timer));
        Ok(RelayHandle { inner, internal })
    }
}

impl RelayHandle {
    /// The primary internal host given to [`Relay::start`].
    pub fn internal(&self) -> SocketAddr {
        self.internal
    }

    pub fn public_ip(&self) -> IpAddr {
        IpAddr::V4(self.inner.public_ip)
    }

    /// Puts another host behind the same NAT (for hairpinning between
    /// internal hosts).
    pub fn add_internal(&self, addr: SocketAddr) -> Result<(), RelayError> {
        check_loopback(addr)?;
        let mut st = self.open_state()?;
        st.internals.insert(addr);
        Ok(())
    }

    /// Registers an outside node whose socket is `real` and returns its
    /// front: the address the internal host must be given for it, and the
    /// one the node must advertise as its own. Outside nodes with the same
    /// real IP share a front IP; the front port is the real port when it
    /// can be bound, else an ephemeral one. Idempotent.
    pub fn add_outside_node(&self, real: SocketAddr) -> Result<SocketAddr, RelayError> {
        check_loopback(real)?;
        let mut st = self.open_state()?;
        if let Some(front) = st.front_of_real.get(&real) {
            return Ok(*front);
        }
        let front_ip = match st.front_ip_of.get(&real.ip()) {
            Some(ip) => *ip,
            None => {
                let ip = loop {
                    let candidate = match self.inner.config.front_ips.get(st.next_front_ip) {
                        Some(ip) => *ip,
                        None => unique_loopback_ip(),
                    };
                    st.next_front_ip += 1;
                    if candidate != self.inner.public_ip {
                        break candidate;
                    }
                };
                st.front_ip_of.insert(real.ip(), ip);
                ip
            }
        };
        let preferred = SocketAddr::new(IpAddr::V4(front_ip), real.port());
        let socket = match bind_udp(&self.inner.runtime, preferred) {
            Ok(s) => s,
            Err(_) => {
                let any = SocketAddr::new(IpAddr::V4(front_ip), 0);
                bind_udp(&self.inner.runtime, any)
                    .map_err(|source| RelayError::Bind { addr: any, source })?
            }
        };
        self.register_front(&mut st, real, socket, preferred)
    }

    /// Like [`RelayHandle::add_outside_node`] with a front address chosen by
    /// the caller (port 0 lets the system pick the port).
    pub fn add_outside_node_at(
        &self,
        real: SocketAddr,
        front: SocketAddr,
    ) -> Result<SocketAddr, RelayError> {
        check_loopback(real)?;
        let front_ip = check_loopback(front)?;
        if front_ip == self.inner.public_ip {
            return Err(RelayError::FrontOnPublicIp { front });
        }
        let mut st = self.open_state()?;
        if let Some(existing) = st.front_of_real.get(&real) {
            if *existing == front || front.port() == 0 && existing.ip() == front.ip() {
                return Ok(*existing);
            }
            return Err(RelayError::AlreadyOutside(real));
        }
        let socket = bind_udp(&self.inner.runtime, front).map_err(|source| RelayError::Bind {
            addr: front,
            source,
        })?;
        self.register_front(&mut st, real, socket, front)
    }

    fn register_front(
        &self,
        st: &mut State,
        real: SocketAddr,
        socket: Arc<UdpSocket>,
        requested: SocketAddr,
    ) -> Result<SocketAddr, RelayError> {
        let front = socket.local_addr().map_err(|source| RelayError::Bind {
            addr: requested,
            source,
        })?;
        let task = spawn_reader(&self.inner, socket.clone(), Side::Front(front));
        st.fronts.insert(front, Front { real, socket, task });
        st.front_of_real.insert(real, front);
        Ok(front)
    }

    /// The front of a registered outside node.
    pub fn front_of(&self, real: SocketAddr) -> Option<SocketAddr> {
        lock(&self.inner).front_of_real.get(&real).copied()
    }

    /// The public endpoint `internal` used last; `None` before it sent
    /// anything (or after its mappings expired).
    pub fn public_endpoint_of(&self, internal: SocketAddr) -> Option<SocketAddr> {
        let mut guard = lock(&self.inner);
        let st = &mut *guard;
        st.core.handle_timeout(Instant::now());
        handle_events(&self.inner, st);
        st.core.public_endpoint_of(internal)
    }

    /// The public endpoint `internal`'s packets to `front` leave from.
    pub fn public_endpoint_towards(
        &self,
        internal: SocketAddr,
        front: SocketAddr,
    ) -> Option<SocketAddr> {
        let mut guard = lock(&self.inner);
        let st = &mut *guard;
        st.core.handle_timeout(Instant::now());
        handle_events(&self.inner, st);
        st.core.public_endpoint_towards(internal, front)
    }

    pub fn mappings(&self) -> Vec<MappingInfo> {
        let mut guard = lock(&self.inner);
        let st = &mut *guard;
        st.core.handle_timeout(Instant::now());
        handle_events(&self.inner, st);
        st.core.mappings()
    }

    /// Scripted rebinding of the primary internal host: every mapping of it
    /// moves to a new public port (RFC 4787 §4.3's NAT that reassigns).
    pub fn rebind(&self) -> Result<Vec<Rebound>, RelayError> {
        self.rebind_host(self.internal)
    }

    pub fn rebind_host(&self, internal: SocketAddr) -> Result<Vec<Rebound>, RelayError> {
        let mut guard = self.open_state()?;
        let st = &mut *guard;
        let out = {
            let mut port_ok = port_binder(&self.inner, &mut st.publics);
            st.core.rebind_with(internal, Instant::now(), &mut port_ok)
        };
        handle_events(&self.inner, st);
        Ok(out)
    }

    /// Every logged packet so far, oldest first.
    pub fn packet_log(&self) -> Vec<PacketLogEntry> {
        lock(&self.inner).log.iter().cloned().collect()
    }

    /// How many log entries were discarded because of `log_capacity`.
    pub fn log_overflow(&self) -> u64 {
        lock(&self.inner).log_overflow
    }

    /// Waits until some log entry satisfies `pred`, up to `deadline`.
    pub async fn wait_for_log(
        &self,
        deadline: Duration,
        mut pred: impl FnMut(&PacketLogEntry) -> bool,
    ) -> Option<PacketLogEntry> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(e) = lock(&self.inner).log.iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops every task and waits (up to `shutdown_timeout`) until they are
    /// gone, so every socket is closed when this returns `Ok`.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        let tasks = close(&self.inner);
        let deadline = self.inner.config.shutdown_timeout;
        let all = async {
            for mut t in tasks {
                // Cancelled tasks finish with a JoinError; that is the point.
                let _ = (&mut t.0).await;
            }
        };
        tokio::time::timeout(deadline, all)
            .await
            .map_err(|_| RelayError::ShutdownTimeout(deadline))
    }

    fn open_state(&self) -> Result<MutexGuard<'_, State>, RelayError> {
        let st = lock(&self.inner);
        if st.closed {
            return Err(RelayError::Closed);
        }
        Ok(st)
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        // Aborts on drop of the returned tasks.
        drop(close(&self.inner));
    }
}

/// Marks the relay closed and takes every task (aborting them when the
/// caller drops them). Sockets close when their reader task is gone.
fn close(inner: &Inner) -> Vec<Task> {
    let mut st = lock(inner);
    st.closed = true;
    let mut tasks: Vec<Task> = Vec::new();
    for (_, f) in st.fronts.drain() {
        f.task.0.abort();
        tasks.push(f.task);
    }
    for (_, p) in st.publics.drain() {
        p.task.0.abort();
        tasks.push(p.task);
    }
    if let Some(t) = st.timer.take() {
        t.0.abort();
        tasks.push(t);
    }
    st.front_of_real.clear();
    tasks
}

/// The `port_ok` callback of the core: a port is usable if the relay
/// already holds its socket (a freed port) or can bind it now.
fn port_binder<'a>(
    inner: &'a Arc<Inner>,
    publics: &'a mut HashMap<u16, Public>,
) -> impl FnMut(u16) -> bool + 'a {
    move |port| {
        if publics.contains_key(&port) {
            return true;
        }
        let addr = SocketAddr::new(IpAddr::V4(inner.public_ip), port);
        match bind_udp(&inner.runtime, addr) {
            Ok(socket) => {
                let task = spawn_reader(inner, socket.clone(), Side::Public(port));
                publics.insert(port, Public { socket, task });
                true
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "public port not bindable, trying another");
                false
            }
        }
    }
}

fn handle_events(inner: &Inner, st: &mut State) {
    while let Some(event) = st.core.poll_event() {
        tracing::debug!(?event, "nat event");
        match event {
            NatEvent::MappingCreated { .. } => inner.timer_wake.notify_one(),
            NatEvent::PortReleased { port } => {
                // Dropping the entry aborts its reader, closing the socket.
                st.publics.remove(&port);
            }
            NatEvent::MappingExpired { .. } | NatEvent::MappingRebound(_) => {}
        }
    }
}

fn spawn_reader(inner: &Arc<Inner>, socket: Arc<UdpSocket>, side: Side) -> Task {
    let weak = Arc::downgrade(inner);
    Task(inner.runtime.spawn(readertask(weak, socket, side)))
}

async fn readertask(inner: std::sync::Weak<Inner>, socket: Arc<UdpSocket>, side: Side) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    loop {
        // Waits for the next datagram for as long as the relay lives: this
        // task is aborted on shutdown.
        let (len, src) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // E.g. an ICMP error reported on Windows; never fatal here.
                tracing::debug!(%local, error = %e, "recv_from failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let (action, entry) = route(&inner, side, local, src, len);
        if let Some(tap) = &inner.config.tap {
            (tap.0)(&entry, &buf[..len]);
        }
        if let Some((from_socket, from, to, direction)) = action {
            let send = from_socket.send_to(&buf[..len], to);
            let failure = match tokio::time::timeout(inner.config.send_timeout, send).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("send deadline passed".to_string()),
            };
            if let Some(why) = failure {
                tracing::debug!(%from, %to, %why, "forwarding failed");
                let mut st = lock(&inner);
                let at = inner.started.elapsed();
                let entry = PacketLogEntry {
                    at,
                    direction,
                    src,
                    dst: local,
                    len,
                    decision: Decision::Dropped(RelayDrop::SendFailed(why)),
                };
                push_log(&inner, &mut st, entry);
            }
        }
    }
}

type Action = (Arc<UdpSocket>, SocketAddr, SocketAddr, Direction);

/// Decides what to do with `len` bytes from `src` that arrived on relay
/// socket `local`, logs it, and returns the socket to send from, its
/// address, the destination and the direction, with the log entry.
fn route(
    inner: &Arc<Inner>,
    side: Side,
    local: SocketAddr,
    src: SocketAddr,
    len: usize,
) -> (Option<Action>, PacketLogEntry) {
    let mut guard = lock(inner);
    let st = &mut *guard;
    if st.closed {
        let entry = PacketLogEntry {
            at: inner.started.elapsed(),
            direction: Direction::Unknown,
            src,
            dst: local,
            len,
            decision: Decision::Dropped(RelayDrop::NoSocket),
        };
        return (None, entry);
    }
    let now = Instant::now();
    let is_internal = st.internals.contains(&src);
    let src_front = st.front_of_real.get(&src).copied();
    let (direction, result): (Direction, Result<(SocketAddr, SocketAddr), RelayDrop>) = match side {
        Side::Front(front) => {
            let real_dst = st.fronts.get(&front).map(|f| f.real);
            match (real_dst, is_internal, src_front) {
                (None, _, _) => (Direction::Unknown, Err(RelayDrop::NoSocket)),
                (Some(real_dst), true, _) => {
                    let decision = {
                        let mut port_ok = port_binder(inner, &mut st.publics);
                        st.core.handle_outbound_with(src, front, now, &mut port_ok)
                    };
                    match decision {
                        Outbound::Forward { public } => {
                            (Direction::Outbound, Ok((public, real_dst)))
                        }
                        // Fronts never sit on the public IP, but route it anyway.
                        Outbound::Hairpin { from, to } => (Direction::Hairpin, Ok((from, to))),
                        Outbound::Drop(r) => (Direction::Outbound, Err(RelayDrop::Nat(r))),
                    }
                }
                // Outside to outside: re-source from the sender's own front
                // so the receiver sees the address the sender advertises.
                (Some(real_dst), false, Some(sender_front)) => {
                    (Direction::OutsideToOutside, Ok((sender_front, real_dst)))
                }
                (Some(_), false, None) => (Direction::Unknown, Err(RelayDrop::UnknownSource)),
            }
        }
        Side::Public(port) => {
            if is_internal {
                let decision = {
                    let mut port_ok = port_binder(inner, &mut st.publics);
                    st.core.handle_outbound_with(src, local, now, &mut port_ok)
                };
                match decision {
                    Outbound::Hairpin { from, to } => (Direction::Hairpin, Ok((from, to))),
                    Outbound::Forward { .. } => (Direction::Hairpin, Err(RelayDrop::NoSocket)),
                    Outbound::Drop(r) => (Direction::Hairpin, Err(RelayDrop::Nat(r))),
                }
            } else if let Some(sender_front) = src_front {
                match st.core.handle_inbound(sender_front, port, now) {
                    Inbound::Forward { to } => (Direction::Inbound, Ok((sender_front, to))),
                    Inbound::Drop(r) => (Direction::Inbound, Err(RelayDrop::Nat(r))),
                }
            } else {
                (Direction::Unknown, Err(RelayDrop::UnknownSource))
            }
        }
    };
    handle_events(inner, st);
    // Find the socket that owns the `from` address.
    let result = result.and_then(|(from, to)| {
        let socket = if from.ip() == IpAddr::V4(inner.public_ip) {
            st.publics.get(&from.port()).map(|p| p.socket.clone())
        } else {
            st.fronts.get(&from).map(|f| f.socket.clone())
        };
        socket.map(|s| (s, from, to)).ok_or(RelayDrop::NoSocket)
    });
    let decision = match &result {
        Ok((_, from, to)) => Decision::Forwarded {
            from: *from,
            to: *to,
        },
        Err(d) => Decision::Dropped(d.clone()),
    };
    let entry = PacketLogEntry {
        at: now.saturating_duration_since(inner.started),
        direction,
        src,
        dst: local,
        len,
        decision,
    };
    push_log(inner, st, entry.clone());
    (
        result.ok().map(|(s, from, to)| (s, from, to, direction)),
        entry,
    )
}

fn push_log(inner: &Inner, st: &mut State, entry: PacketLogEntry) {
    tracing::trace!(?entry, "relay");
    st.log.push_back(entry);
    while st.log.len() > inner.config.log_capacity {
        st.log.pop_front();
        st.log_overflow += 1;
    }
}

/// Expires mappings on time so their events (and port releases) happen
/// even when no packet flows.
async fn timertask(inner: std::sync::Weak<Inner>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            let st = lock(&inner);
            if st.closed {
                return;
            }
            st.core.poll_timeout()
        };
        // With no mapping, wake at least once a minute; the deadline is
        // re-read every turn and the task is aborted on shutdown.
        let until = next
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(60));
        let wake = match inner.upgrade() {
            Some(i) => i,
            None => return,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = wake.timer_wake.notified() => {}
        }
        let mut guard = lock(&wake);
        let st = &mut *guard;
        st.core.handle_timeout(Instant::now());
        handle_events(&wake, st);
    }
}
