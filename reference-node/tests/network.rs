//! The `p2psip-node` binary on real loopback sockets: 16 processes form a
//! ring, serve a plain SIP REGISTER through the adapter, survive the loss of
//! a replica holder, and stop cleanly on SIGTERM. Everything is checked on
//! the wire, against the ideal ring computed with `p2psip_wire::Ring`.
//!
//! Every wait has a deadline; every process is killed (its whole process
//! group) when a test fails. Each test binds its own 127.x.y.z addresses
//! with port 0, so tests run in parallel safely.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use p2psip_wire::build::{self, Identity, QueryKey, Txn};
use p2psip_wire::resource::{replica_id, resource_id};
use p2psip_wire::{Id, LinkKind, Message, ParseOptions, Peer, Ring, parse, print};

const BIN: &str = env!("CARGO_BIN_EXE_p2psip-node");

/// Fast timers: T = 150 ms, T1 = 50 ms (Timer F = 3.2 s).
const FAST: &[&str] = &[
    "--overlay",
    "itest",
    "--stabilize-ms",
    "150",
    "--fix-fingers-ms",
    "150",
    "--keepalive-ms",
    "1000",
    "--t1-ms",
    "50",
    "--expires-s",
    "60",
    "--peer-expires-s",
    "30",
];

/// 127.<per process>.<per test>.<n>: tests never share an address.
fn ip(test: u8, n: u8) -> String {
    format!("127.{}.{test}.{n}", 10 + std::process::id() % 200)
}

/// One node process; killed with its process group when dropped.
struct Proc {
    child: Child,
    addr: SocketAddr,
    id: Id,
}

impl Proc {
    fn start(
        test: u8,
        n: u8,
        bootstrap: Option<SocketAddr>,
        extra: &[&str],
    ) -> mpsc::Receiver<Result<Proc, String>> {
        let (tx, rx) = mpsc::channel();
        let listen = format!("{}:0", ip(test, n));
        let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("node-{}-{test}-{n}.log", std::process::id()));
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--listen",
            &listen,
            "--bootstrap",
            &bootstrap.map(|b| b.to_string()).unwrap_or_default(),
        ])
        .args(FAST)
        .args(extra)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(&log)
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return rx;
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let parsed = first.and_then(Result::ok).and_then(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("ready")).then_some(())?;
                let addr: SocketAddr = w.next()?.parse().ok()?;
                let id: Id = w.next()?.parse().ok()?;
                Some((addr, id))
            });
            let msg = match parsed {
                Some((addr, id)) => Ok(Proc { child, addr, id }),
                None => {
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    let _ = child.wait();
                    Err("no ready line".to_owned())
                }
            };
            let _ = tx.send(msg);
            // Keep draining so the node never blocks on stdout.
            for _ in lines {}
        });
        rx
    }

    fn wait_ready(rx: mpsc::Receiver<Result<Proc, String>>) -> Proc {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a ready line within 10 s")
            .expect("the node started")
    }

    fn peer(&self) -> Peer {
        Peer {
            id: self.id,
            addr: self.addr,
        }
    }

    /// SIGTERM, then the exit status within `deadline`.
    fn stop(mut self, deadline: Duration) -> std::process::ExitStatus {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "node {} did not exit within {deadline:?}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The test's own peer-like client: builds requests with the wire builders
/// and retransmits until an answer or the deadline.
struct Client {
    sock: UdpSocket,
    me: Identity,
    n: u32,
}

impl Client {
    fn new(test: u8) -> Client {
        let sock = UdpSocket::bind(format!("{}:0", ip(test, 250))).expect("bind the client");
        let me = Identity::new(Peer::at(sock.local_addr().unwrap()), "itest");
        Client { sock, me, n: 0 }
    }

    fn addr(&self) -> SocketAddr {
        self.me.peer.addr
    }

    fn txn(&mut self) -> Txn {
        self.n += 1;
        Txn::udp(
            &format!("z9hG4bKitest{}", self.n),
            &format!("c{}", self.n),
            "t",
            self.n,
            self.addr(),
        )
    }

    /// Sends `msg` to `to` and returns the final response (None at the
    /// deadline).
    fn ask(
        &mut self,
        to: SocketAddr,
        msg: &Message<'_>,
        deadline: Duration,
    ) -> Option<Message<'static>> {
        let branch = msg.top_via()?.branch.clone()?.into_owned();
        let bytes = print(msg);
        let until = Instant::now() + deadline;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < until {
            let _ = self.sock.send_to(&bytes, to);
            let resend = Instant::now() + Duration::from_millis(200);
            while Instant::now() < resend.min(until) {
                let left = resend
                    .min(until)
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                self.sock.set_read_timeout(Some(left)).unwrap();
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(p) = parse(&buf[..n], ParseOptions::lenient()) else {
                    continue;
                };
                let m = p.message;
                let ours = m.top_via().and_then(|v| v.branch.as_deref()) == Some(branch.as_str());
                if ours && m.status().is_some_and(|c| c >= 200) {
                    return Some(m.into_owned());
                }
            }
        }
        None
    }

    /// A query for a peer's own ID (CHECKS: reading state without changing it).
    fn query(&mut self, p: Peer) -> Option<Message<'static>> {
        let t = self.txn();
        let q = build::query(&self.me, p.addr, &t, QueryKey::Peer(p));
        self.ask(p.addr, &q, Duration::from_secs(2))
    }

    fn lookup(
        &mut self,
        at: SocketAddr,
        aor: &p2psip_wire::Uri<'_>,
        replica: Option<u32>,
    ) -> Option<Message<'static>> {
        let t = self.txn();
        let q = build::lookup(&self.me, at, &t, aor, replica);
        self.ask(at, &q, Duration::from_secs(2))
    }
}

fn link_ids(m: &Message<'_>, kind: LinkKind) -> Vec<Id> {
    let mut l: Vec<(u8, Id)> = m
        .dht_links()
        .filter(|l| l.link.kind == kind)
        .filter_map(|l| Some((l.link.depth, l.addr.uri.peer_id()?)))
        .collect();
    l.sort();
    l.into_iter().map(|(_, id)| id).collect()
}

/// Every node's P1 and S1..S4 as it reports them, against the ideal ring.
fn differences(client: &mut Client, nodes: &[&Proc]) -> Vec<String> {
    let ring = Ring::new(nodes.iter().map(|p| p.id));
    let mut out = Vec::new();
    for p in nodes {
        let Some(m) = client.query(p.peer()) else {
            out.push(format!("{}: no answer", p.addr));
            continue;
        };
        if m.status() != Some(200) {
            out.push(format!("{}: {:?}", p.addr, m.status()));
        }
        let p1 = link_ids(&m, LinkKind::P).first().copied();
        if p1 != ring.ideal_predecessor(&p.id) {
            out.push(format!("{}: P1 {p1:?}", p.addr));
        }
        if link_ids(&m, LinkKind::S) != ring.successor_list(&p.id, 4) {
            out.push(format!("{}: S {:?}", p.addr, link_ids(&m, LinkKind::S)));
        }
    }
    out
}

fn wait_converged(client: &mut Client, nodes: &[&Proc], deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let diff = differences(client, nodes);
        if diff.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "not converged after {deadline:?}: {diff:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn uri(text: &str) -> p2psip_wire::Uri<'static> {
    let m = format!(
        "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKu\r\nMax-Forwards: 1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <{text}>\r\nCall-ID: u\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let p = parse(m.as_bytes(), ParseOptions::lenient())
        .unwrap()
        .message
        .into_owned();
    p.to().unwrap().addr.uri.clone()
}

/// A plain SIP REGISTER of a user agent (RES-4: no Require: dht).
fn ua_register(client: &mut Client, to: SocketAddr, user: &str) -> Option<Message<'static>> {
    client.n += 1;
    let text = format!(
        "REGISTER sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKua{n};rport\r\nMax-Forwards: 70\r\n\
From: <sip:{user}@example.org>;tag=ua\r\nTo: <sip:{user}@example.org>\r\nCall-ID: ua-{user}\r\n\
CSeq: {n} REGISTER\r\nContact: <sip:{user}@{c}>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
        c = client.addr(),
        n = client.n
    );
    let m = parse(text.as_bytes(), ParseOptions::lenient())
        .unwrap()
        .message
        .into_owned();
    client.ask(to, &m, Duration::from_secs(5))
}

/// Polls a lookup at `at` until it answers 200 with `contact`.
fn wait_found(
    client: &mut Client,
    at: SocketAddr,
    aor: &p2psip_wire::Uri<'_>,
    replica: Option<u32>,
    contact: &str,
    deadline: Duration,
) {
    let until = Instant::now() + deadline;
    loop {
        let m = client.lookup(at, aor, replica);
        let found = m.as_ref().is_some_and(|m| {
            m.status() == Some(200) && m.contact_addrs().any(|c| c.addr.uri.to_string() == contact)
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < until,
            "{aor} (replica {replica:?}) not found at {at} within {deadline:?}: {:?}",
            m.map(|m| p2psip_wire::summary(&m))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sixteen_processes_converge_register_and_survive_a_failure() {
    const TEST: u8 = 1;
    let first = Proc::wait_ready(Proc::start(TEST, 1, None, &[]));
    let boot = first.addr;
    let pending: Vec<_> = (2..=16)
        .map(|n| Proc::start(TEST, n, Some(boot), &[]))
        .collect();
    let mut nodes: Vec<Proc> = vec![first];
    nodes.extend(pending.into_iter().map(Proc::wait_ready));
    let mut client = Client::new(TEST);

    // STAB-5: the ideal ring, seen on the wire.
    wait_converged(
        &mut client,
        &nodes.iter().collect::<Vec<_>>(),
        Duration::from_secs(20),
    );

    // RES-4 / REPL-1: an AOR whose replica-1 holder is a node of its own.
    let ring = Ring::new(nodes.iter().map(|p| p.id));
    let adapter = nodes[3].addr;
    let (user, aor) = (0..500)
        .map(|i| format!("user{i}"))
        .map(|u| {
            let a = uri(&format!("sip:{u}@example.org"));
            (u, a)
        })
        .find(|(_, a)| {
            let h: Vec<Id> = [resource_id(a), replica_id(a, 1), replica_id(a, 2)]
                .iter()
                .map(|k| ring.responsible(k).unwrap())
                .collect();
            h[1] != h[0] && h[1] != h[2] && h[1] != nodes[3].id && h[1] != nodes[0].id
        })
        .expect("a suitable AOR");
    let contact = format!("sip:{user}@{}", client.addr());
    let ok = ua_register(&mut client, adapter, &user).expect("the UA gets an answer");
    assert_eq!(ok.status(), Some(200));
    let holder = |nodes: &[Proc], ring: &Ring, k: &Id| {
        let id = ring.responsible(k).unwrap();
        nodes.iter().find(|p| p.id == id).unwrap().addr
    };
    let keys = [resource_id(&aor), replica_id(&aor, 1), replica_id(&aor, 2)];
    for (n, k) in keys.iter().enumerate() {
        let replica = (n > 0).then_some(n as u32);
        wait_found(
            &mut client,
            holder(&nodes, &ring, k),
            &aor,
            replica,
            &contact,
            Duration::from_secs(5),
        );
    }

    // REPL-5: the replica-1 holder dies; the copy reappears at the new one.
    let victim = ring.responsible(&keys[1]).unwrap();
    let at = nodes.iter().position(|p| p.id == victim).unwrap();
    let dead = nodes.remove(at);
    drop(dead); // SIGKILL to its process group
    let ring = Ring::new(nodes.iter().map(|p| p.id));
    // refresh (150 ms) + T (150 ms) + Timer F (3.2 s), with room for a loaded machine.
    wait_found(
        &mut client,
        holder(&nodes, &ring, &keys[1]),
        &aor,
        Some(1),
        &contact,
        Duration::from_secs(12),
    );
    wait_converged(
        &mut client,
        &nodes.iter().collect::<Vec<_>>(),
        Duration::from_secs(20),
    );

    // LEAVE-1 on SIGTERM: every node exits 0, promptly.
    for p in nodes {
        let addr = p.addr;
        let status = p.stop(Duration::from_secs(10));
        assert!(status.success(), "{addr} exited with {status:?}");
    }
}

#[test]
fn wire_9_tcp_framing_keepalives_and_size_limit() {
    const TEST: u8 = 2;
    let node = Proc::wait_ready(Proc::start(TEST, 1, None, &[]));
    let mut client = Client::new(TEST);
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut options = |n: u32| {
        let mut t = client.txn().over(p2psip_wire::Transport::Tcp);
        t.branch = format!("z9hG4bKtcp{n}");
        print(&build::options(
            Some(&client.me),
            node.addr,
            &t,
            build::peer_uri(&client.me.peer),
        ))
    };
    // Two messages in one segment, then one split over many, then a ping.
    let mut bytes = options(1);
    bytes.extend(options(2));
    s.write_all(&bytes).unwrap();
    let third = options(3);
    for chunk in third.chunks(7) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
    }
    s.write_all(b"\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 8192];
    let mut framer = p2psip_wire::Framer::new(65_536);
    let (mut answers, mut pong) = (0, false);
    while (answers < 3 || !pong) && Instant::now() < until {
        let Ok(n) = s.read(&mut buf) else { break };
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        loop {
            match framer.next_frame(&got) {
                p2psip_wire::Frame::Message { len, .. } => {
                    let m = parse(&got[..len], ParseOptions::lenient()).unwrap().message;
                    assert_eq!(m.status(), Some(200));
                    drop(m);
                    answers += 1;
                    got.drain(..len);
                }
                p2psip_wire::Frame::Pong { len } => {
                    pong = true;
                    got.drain(..len);
                }
                _ => break,
            }
        }
    }
    assert_eq!((answers, pong), (3, true));
    // WIRE-8: over the limit (8 KiB by default): 513, then the node closes.
    let mut big = options(4);
    let head_end = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    big.truncate(head_end);
    big.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(9000)).as_bytes());
    s.write_all(&big).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let m = parse(&rest, ParseOptions::lenient())
        .expect("a response")
        .message;
    assert_eq!(m.status(), Some(513));
    assert!(node.stop(Duration::from_secs(10)).success());
}

#[test]
fn count_runs_several_nodes_in_one_process() {
    const TEST: u8 = 3;
    let listen = format!("{}:0", ip(TEST, 1));
    let mut child = Command::new(BIN)
        .args(["--listen", &listen, "--count", "3"])
        .args(FAST)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut peers = Vec::new();
    for _ in 0..3 {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("three ready lines");
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w[0], "ready");
        let addr: SocketAddr = w[1].parse().unwrap();
        let id: Id = w[2].parse().unwrap();
        assert_eq!(Peer::at(addr).id, id, "the ID is the one of the bound port");
        peers.push(Peer { id, addr });
    }
    let ips: Vec<String> = peers.iter().map(|p| p.addr.ip().to_string()).collect();
    assert_eq!(ips, [ip(TEST, 1), ip(TEST, 2), ip(TEST, 3)]);
    let mut client = Client::new(TEST);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let ring = Ring::new(peers.iter().map(|p| p.id));
        let ok = peers.iter().all(|p| {
            client
                .query(*p)
                .is_some_and(|m| link_ids(&m, LinkKind::S) == ring.successor_list(&p.id, 4))
        });
        if ok {
            break;
        }
        assert!(Instant::now() < until, "three nodes did not form a ring");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            panic!("did not exit on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn unknown_fault_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--fault", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bogus") && err.contains("replica-successor") && err.contains("no-leave"),
        "{err}"
    );
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--bootstrap",
        "--advertise",
        "--fault",
        "--count",
        "ready <ip:port> <peer-id>",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}
