//! The ring scenario behind the sample captures, run two ways: in the
//! reference node's in-memory network (virtual time, deterministic, written
//! with `PcapWriter` exactly as the harness writes its per-case pcaps), and
//! live on loopback sockets captured by tcpdump.
//!
//! Six peers form a ring (peer 1 may carry a fault switch); then a seventh
//! joins into peer 1's range (so peer 1 admits it), a scripted sender
//! sends peer 1 a join with another address's Peer-ID (ID-7), a user agent
//! registers three AORs at peer 1 (the adapter places primaries and
//! replicas), a client queries peer 1 for keys around the ring, one peer
//! leaves gracefully and peer 1's successor is killed (its requests then go
//! unanswered). Addresses are chosen so that these roles hold: a peer's
//! position on the ring is SHA-1 of its IP (ID-2; the port only sets the
//! low 16 bits), so the IPs decide the order whatever ports are bound.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use p2psip_capture::{PcapWriter, Timestamp};
use p2psip_node::testnet::{Datagram, Net};
use p2psip_node::{Command, Config, Fault};
use p2psip_pcapcheck::Options;
use p2psip_wire::build::{self, Identity, QueryKey, Txn};
use p2psip_wire::{Id, Peer, Transport, print};

pub const OVERLAY: &str = "pcap";
pub const T1: Duration = Duration::from_millis(50);
pub const PERIOD: Duration = Duration::from_millis(1000);
/// Fix-fingers rounds are most of a ring's traffic; a slow one keeps the
/// sample captures small.
pub const FIX_FINGERS: Duration = Duration::from_millis(3000);
/// Keep-alives (NAT-5) also probe newly adopted neighbours; a slow one
/// leaves a window in which a faulty peer reports a peer it never
/// verified (QUERY-7).
pub const KEEPALIVE: Duration = Duration::from_millis(2000);
pub const RING: usize = 6;
/// AORs the user agent registers at the faulty peer.
pub const AORS: u32 = 2;
/// Queries the client sends the faulty peer after the second joiner
/// started, and their spacing: its answers are what shows a peer reported
/// before it was verified (QUERY-7).
pub const QUERIES: u32 = 60;
pub const QUERY_GAP: Duration = Duration::from_millis(50);
/// Index of the peer that carries the fault.
pub const FAULTY: usize = 1;

/// The faults a passive capture can show, with the requirement each breaks
/// as the analysis reports it.
pub const OBSERVABLE: &[(Fault, &str)] = &[
    (Fault::IgnoreRport, "NAT-2"),
    (Fault::UpperHex, "ID-1"),
    (Fault::Wrong302, "QUERY-2"),
    (Fault::StaleLinks, "WIRE-5"),
    (Fault::NoIdCheck, "ID-7"),
    (Fault::PredBefore200, "JOIN-5"),
    (Fault::NoRetransmit, "TXN-1"),
    (Fault::ReportUnverified, "QUERY-7"),
    (Fault::ReplicaSuccessor, "REPL-3"),
    (Fault::NoStabilize, "STAB-1"),
];

/// The analysis options for captures of this scenario.
pub fn options() -> Options {
    Options {
        t1: Some(T1),
        stabilize: PERIOD,
        keepalive: KEEPALIVE,
        ..Options::default()
    }
}

/// A node's configuration in the scenario.
pub fn config(addr: SocketAddr, seed: u64, fault: Option<Fault>) -> Config {
    let mut c = Config::fast(addr).with_seed(seed);
    c.overlay = OVERLAY.to_owned();
    c.stabilize = PERIOD;
    c.fix_fingers = FIX_FINGERS;
    c.keepalive = KEEPALIVE;
    c.t1 = T1;
    c.expires = 60;
    // The adapter re-places every copy each refresh interval (REPL-5):
    // slower than stabilisation, to keep the samples small.
    c.refresh = Some(Duration::from_secs(5));
    c.peer_expires = 30;
    if let Some(f) = fault {
        c = c.with_fault(f);
    }
    c
}

fn ring_pos(ip: IpAddr) -> Id {
    p2psip_wire::peer_id(ip, 0)
}

/// Who is who.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The ring peers, peer 0 first (the bootstrap).
    pub ring: Vec<IpAddr>,
    pub joiner: IpAddr,
    /// Joins between the faulty peer's S1 and S2: the faulty peer hears of
    /// it first from its S1's report (QUERY-7).
    pub joiner2: IpAddr,
    /// Index (in `ring`) of the peer that leaves, and of the one killed.
    pub leaver: usize,
    pub victim: usize,
    pub spoofer: IpAddr,
    pub ua: IpAddr,
    pub client: IpAddr,
    /// The address whose Peer-ID the spoofer claims.
    pub spoof_as: SocketAddr,
}

/// Picks the roles among `127.a.b.1..=250`: six consecutive addresses
/// from 1 up for the ring (the first six for which the joiners' ranges
/// hold a candidate), joiners from 100..=250.
pub fn plan(a: u8, b: u8) -> Plan {
    (0..14u8)
        .find_map(|k| try_plan(a, b, 1 + k * 6))
        .expect("some ring leaves room for both joiners")
}

fn try_plan(a: u8, b: u8, first: u8) -> Option<Plan> {
    let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(127, a, b, n));
    let ring: Vec<IpAddr> = (first..first + RING as u8).map(ip).collect();
    let mut sorted: Vec<(Id, usize)> = ring
        .iter()
        .enumerate()
        .map(|(i, a)| (ring_pos(*a), i))
        .collect();
    sorted.sort();
    let at = sorted.iter().position(|(_, i)| *i == FAULTY)?;
    let pred = sorted[(at + RING - 1) % RING].0;
    let faulty = sorted[at].0;
    let victim = sorted[(at + 1) % RING].1;
    // Neither the bootstrap, nor the faulty peer, nor the one killed.
    let leaver = sorted[(at + 3) % RING].1;
    let leaver = if leaver == 0 {
        sorted[(at + 4) % RING].1
    } else {
        leaver
    };
    let joiner = (100..=250u8)
        .map(ip)
        .find(|a| ring_pos(*a).in_open(&pred, &faulty))?;
    let (s1, s2) = (sorted[(at + 1) % RING].0, sorted[(at + 2) % RING].0);
    let joiner2 = (100..=250u8)
        .map(ip)
        .find(|a| *a != joiner && ring_pos(*a).in_open(&s1, &s2))?;
    Some(Plan {
        ring,
        joiner,
        joiner2,
        leaver,
        victim,
        spoofer: ip(251),
        ua: ip(252),
        client: ip(253),
        spoof_as: SocketAddr::new(ip(254), 5060),
    })
}

/// The spoofer's join: Peer-ID and Peer URI of `spoof_as`, sent from
/// another address.
pub fn spoofed_join(plan: &Plan, from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let me = Identity::new(Peer::at(plan.spoof_as), OVERLAY).with_expires(30);
    let txn = Txn::udp("z9hG4bKspoof1", "spoof1", "s1", 1, from);
    print(&build::join(&me, to, &txn, 60))
}

/// A user agent's plain REGISTER (the adapter role, RES-4).
pub fn ua_register(from: SocketAddr, to: SocketAddr, n: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:{to} SIP/2.0\r\n\
Via: SIP/2.0/UDP {from};branch=z9hG4bKua{n};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{n}@example.org>;tag=u{n}\r\n\
To: <sip:user{n}@example.org>\r\n\
Call-ID: ua{n}@example.org\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:user{n}@{from}>\r\n\
Expires: 60\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A client peer's query for `key` (the harness's lookups).
pub fn query(from: SocketAddr, to: SocketAddr, n: u32, key: Id) -> Vec<u8> {
    let me = Identity::new(Peer::at(from), OVERLAY).with_expires(30);
    let txn = Txn::udp(&format!("z9hG4bKq{n}"), &format!("q{n}"), "c", n, from);
    print(&build::query(&me, to, &txn, QueryKey::Key(key)))
}

/// Keys spread over the ring.
pub fn keys() -> Vec<Id> {
    (0..8u8)
        .map(|i| {
            let mut b = [0x5au8; 20];
            b[0] = i * 32 + 7;
            Id(b)
        })
        .collect()
}

/// The scenario in virtual time; the capture as the harness writes one.
pub fn simulated(fault: Option<Fault>, a: u8, b: u8) -> Vec<u8> {
    let trace = simulate(fault, a, b);
    let mut w = PcapWriter::new(Vec::new()).expect("pcap header");
    write_trace(&mut w, &trace, Timestamp::from_secs_nanos(1_700_000_000, 0));
    w.into_inner().expect("flush")
}

/// Everything the scenario's nodes and scripted senders sent, with the
/// virtual time of sending.
pub fn simulate(fault: Option<Fault>, a: u8, b: u8) -> Vec<Datagram> {
    let plan = plan(a, b);
    let port = 5060;
    let addr = |ip: IpAddr| SocketAddr::new(ip, port);
    let mut net = Net::new(Duration::from_millis(1));
    net.record = true;
    let first = net.add(config(addr(plan.ring[0]), 1, None));
    let mut idx = vec![first];
    for (i, ip) in plan.ring.iter().enumerate().skip(1) {
        net.run_for(Duration::from_millis(100));
        let f = if i == FAULTY { fault } else { None };
        let c = config(addr(*ip), i as u64 + 1, f).with_bootstrap(Some(net.addr(first)));
        idx.push(net.add(c));
    }
    net.run_for(Duration::from_millis(2500));
    net.add(config(addr(plan.joiner), 99, None).with_bootstrap(Some(net.addr(first))));
    net.run_for(Duration::from_millis(1000));
    let target = net.addr(idx[FAULTY]);
    let spoofer = SocketAddr::new(plan.spoofer, 40000);
    net.inject(
        spoofer,
        target,
        Transport::Udp,
        spoofed_join(&plan, spoofer, target),
    );
    let ua = SocketAddr::new(plan.ua, 40001);
    for n in 1..=AORS {
        net.inject(ua, target, Transport::Udp, ua_register(ua, target, n));
    }
    let client = SocketAddr::new(plan.client, 40002);
    for (n, k) in keys().into_iter().enumerate() {
        net.inject(
            client,
            target,
            Transport::Udp,
            query(client, target, n as u32 + 1, k),
        );
    }
    net.run_for(Duration::from_millis(1000));
    net.add(config(addr(plan.joiner2), 98, None).with_bootstrap(Some(net.addr(first))));
    let keys = keys();
    for n in 0..QUERIES {
        let k = keys[n as usize % keys.len()];
        net.inject(
            client,
            target,
            Transport::Udp,
            query(client, target, 100 + n, k),
        );
        net.run_for(QUERY_GAP);
    }
    net.command(idx[plan.leaver], Command::Leave);
    net.run_for(Duration::from_millis(1000));
    net.kill(idx[plan.victim]);
    net.run_for(Duration::from_millis(2000));
    std::mem::take(&mut net.trace)
}

/// Writes a trace as capture records, times counted from `base`.
pub fn write_trace<W: std::io::Write>(w: &mut PcapWriter<W>, trace: &[Datagram], base: Timestamp) {
    for d in trace {
        let ts = base.saturating_add(d.at.as_duration());
        match d.transport {
            Transport::Udp => w.write_udp(ts, d.from, d.to, &d.bytes),
            Transport::Tcp => w.write_tcp(ts, d.from, d.to, &d.bytes),
        }
        .expect("write a record");
    }
}

/// A large capture: the clean scenario's trace written `copies` times,
/// each copy a minute after the previous one ended (the same ring,
/// restarted), until `min_bytes` are written when that is larger.
/// Returns the bytes written.
pub fn replicated<W: std::io::Write>(out: W, min_bytes: u64) -> u64 {
    let trace = simulate(None, 10, 1);
    let span =
        trace.last().map_or(Duration::ZERO, |d| d.at.as_duration()) + Duration::from_secs(60);
    let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let sink = CountingWriter {
        inner: out,
        n: std::rc::Rc::clone(&count),
    };
    let mut w = PcapWriter::new(sink).expect("pcap header");
    let mut base = Timestamp::from_secs_nanos(1_700_000_000, 0);
    loop {
        write_trace(&mut w, &trace, base);
        base = base.saturating_add(span);
        if count.get() >= min_bytes {
            break;
        }
    }
    w.into_inner().expect("flush");
    count.get()
}

struct CountingWriter<W> {
    inner: W,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
