//! Unit tests of the core, one or more per requirement, named after it.
//! Each drives nodes with bytes built by the wire builders and printer and
//! checks what they send, parsed back.

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::build::{self, Identity, Link, QueryKey, Txn, peer_uri};
use p2psip_wire::resource::{replica_id, resource_id};
use p2psip_wire::{
    Class, Header, LinkKind, LinkType, Message, ParseOptions, Ring, Rport, parse, print,
};

use super::*;
use crate::testnet::{Datagram, Net};

// ----- helpers -----------------------------------------------------------------

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 1, i], 5060))
}

fn fast(i: u8) -> Config {
    Config::fast(addr(i)).with_seed(u64::from(i))
}

/// `cfg` with `fault` switched on, or clean. The fault_* tests run their
/// scenario both ways: the violation shows with the fault and not without.
fn faulty(cfg: Config, fault: Option<Fault>) -> Config {
    match fault {
        Some(f) => cfg.with_fault(f),
        None => cfg,
    }
}

/// A fresh node with its start-up output drained.
fn fresh(cfg: Config) -> Node {
    let mut n = Node::new(cfg, Time::ZERO).unwrap();
    while n.poll_output().is_some() {}
    n
}

fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Something a node sent, parsed back.
#[derive(Debug, Clone)]
struct Sent {
    to: SocketAddr,
    transport: Transport,
    bytes: Vec<u8>,
}

impl Sent {
    fn msg(&self) -> Message<'_> {
        parse(&self.bytes, ParseOptions::lenient())
            .unwrap_or_else(|e| {
                panic!(
                    "node sent unparsable bytes ({e}): {}",
                    String::from_utf8_lossy(&self.bytes)
                )
            })
            .message
    }

    fn status(&self) -> Option<u16> {
        self.msg().status()
    }

    fn class(&self) -> Class {
        Class::of(&self.msg())
    }

    fn links(&self, kind: LinkKind) -> Vec<(u8, Peer, u32)> {
        self.msg()
            .dht_links()
            .filter(|l| l.link.kind == kind)
            .map(|l| (l.link.depth, l.addr.uri.peer().unwrap(), l.expires.unwrap()))
            .collect()
    }

    fn link_peer(&self, kind: LinkKind, depth: u8) -> Option<Peer> {
        self.msg().link(kind, depth).and_then(|l| l.addr.uri.peer())
    }
}

impl From<&Datagram> for Sent {
    fn from(d: &Datagram) -> Sent {
        Sent {
            to: d.to,
            transport: d.transport,
            bytes: d.bytes.clone(),
        }
    }
}

fn sent(outs: Vec<Output>) -> Vec<Sent> {
    outs.into_iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(Sent {
                to: t.to,
                transport: t.transport,
                bytes: t.bytes,
            }),
            Output::Event(_) => None,
        })
        .collect()
}

fn events(outs: &[Output]) -> Vec<Event> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Transmit(_) => None,
        })
        .collect()
}

/// Delivers a UDP datagram from `from`; returns what the node sent.
fn feed(node: &mut Node, now: Time, from: SocketAddr, bytes: &[u8]) -> Vec<Sent> {
    sent(node.handle(
        Input::Receive {
            from,
            transport: Transport::Udp,
            bytes,
        },
        now,
    ))
}

fn feed_tcp(node: &mut Node, now: Time, from: SocketAddr, bytes: &[u8]) -> Vec<Sent> {
    sent(node.handle(
        Input::Receive {
            from,
            transport: Transport::Tcp,
            bytes,
        },
        now,
    ))
}

/// The only response among `out`.
fn response(out: &[Sent]) -> &Sent {
    let r: Vec<&Sent> = out.iter().filter(|s| s.msg().status().is_some()).collect();
    assert_eq!(r.len(), 1, "want one response, got {out:#?}");
    r[0]
}

/// A scripted peer: builds messages with the wire builders.
struct Puppet {
    me: Identity,
    n: u32,
}

impl Puppet {
    fn at(addr: SocketAddr) -> Puppet {
        Puppet {
            me: Identity::new(Peer::at(addr), "chat").with_expires(30),
            n: 0,
        }
    }

    fn peer(&self) -> Peer {
        self.me.peer
    }

    fn addr(&self) -> SocketAddr {
        self.me.peer.addr
    }

    fn txn(&mut self) -> Txn {
        self.n += 1;
        let n = self.n;
        let who = &self.me.peer.id.to_hex()[..8];
        Txn::udp(
            &format!("z9hG4bK{who}x{n}"),
            &format!("call{who}{n}"),
            &format!("tag{n}"),
            n,
            self.addr(),
        )
    }

    fn join(&mut self, to: SocketAddr) -> Vec<u8> {
        let t = self.txn();
        print(&build::join(&self.me, to, &t, 30))
    }

    fn query(&mut self, to: SocketAddr, key: QueryKey) -> Vec<u8> {
        let t = self.txn();
        print(&build::query(&self.me, to, &t, key))
    }

    fn notify(&mut self, to: SocketAddr, links: &[Link]) -> Vec<u8> {
        let t = self.txn();
        print(&build::notify(&self.me, to, &t, 30, links))
    }

    fn leave(&mut self, to: SocketAddr, links: &[Link]) -> Vec<u8> {
        let t = self.txn();
        print(&build::leave(&self.me, to, &t, links))
    }

    fn options(&mut self, to: SocketAddr) -> Vec<u8> {
        let t = self.txn();
        print(&build::options(
            Some(&self.me),
            to,
            &t,
            peer_uri(&self.me.peer),
        ))
    }

    /// A P2P response of this puppet to `req` (which came from `source`).
    fn answer(&self, req: &Message<'_>, code: u16, source: SocketAddr, links: &[Link]) -> Vec<u8> {
        let mut r = build::response(req, code, build::reason_phrase(code), source, "ptag");
        r.make_p2p(&self.me);
        r.push_links(links);
        print(&r)
    }
}

fn link(kind: LinkKind, depth: u8, peer: Peer) -> Link {
    Link {
        link: LinkType { kind, depth },
        peer,
        expires: 30,
    }
}

/// An address (port 5060) whose Peer-ID lies in the open arc (from, to).
fn addr_between(from: &Id, to: &Id, salt: u8) -> SocketAddr {
    for a in 0..=255u8 {
        for b in 1..=254u8 {
            let addr = SocketAddr::from(([127, 100 + salt, a, b], 5060));
            if Peer::at(addr).id.in_open(from, to) {
                return addr;
            }
        }
    }
    panic!("no address in the arc");
}

/// A first peer at 127.0.1.1 (fast timers).
fn first() -> Node {
    let mut n = Node::new(fast(1), Time::ZERO).unwrap();
    while n.poll_output().is_some() {}
    n
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

/// A ring of `n` nodes, run until quiescent (C-G5).
fn converged(n: u8) -> Net {
    let mut net = ring_of(n);
    net.run_for(secs(u64::from(n / 2 + 6)));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
    net
}

fn ring(net: &Net) -> Ring {
    Ring::new(net.live().iter().map(|i| net.node(*i).me().id))
}

fn index_of(net: &Net, id: &Id) -> usize {
    net.live()
        .into_iter()
        .find(|i| net.node(*i).me().id == *id)
        .expect("a live node with that ID")
}

/// Differences between the nodes' state and the ideal ring of the live
/// nodes (CHECKS C-G5).
fn not_ideal(net: &Net) -> Vec<String> {
    let live = net.live();
    let ring = ring(net);
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
            out.push(format!(
                "{}: succs {:?} want {:?}",
                n.me(),
                succs,
                ring.successor_list(&id, 4)
            ));
        }
        for (f, p) in n.fingers() {
            if Some(p.id) != ring.finger(&id, f) {
                out.push(format!("{}: F{f} = {}", n.me(), p));
            }
        }
    }
    out
}

/// The responses that reached scripted peers (addresses outside the net).
fn outside_to(net: &mut Net, to: SocketAddr) -> Vec<Sent> {
    net.take_outside()
        .iter()
        .filter(|d| d.to == to)
        .map(Sent::from)
        .collect()
}

// ----- JOIN-8, JOIN-4, JOIN-5 ------------------------------------------------------

#[test]
fn join_8_first_peer_is_its_own_successor_without_predecessor() {
    let mut n = Node::new(fast(1), Time::ZERO).unwrap();
    let out: Vec<Output> = std::iter::from_fn(|| n.poll_output()).collect();
    assert!(events(&out).contains(&Event::Joined {
        me: n.me(),
        by: None
    }));
    assert_eq!(n.phase(), PhaseKind::Member);
    assert_eq!(n.predecessor(), None);
    assert!(n.successors().is_empty());
    // ID-6: with no predecessor it is responsible for every key.
    let mut q = Puppet::at(addr(9));
    let r = feed(
        &mut n,
        ms(10),
        q.addr(),
        &q.query(addr(1), QueryKey::Key(Id::pow2(3))),
    );
    assert_eq!(response(&r).status(), Some(404));
    let r = feed(
        &mut n,
        ms(10),
        q.addr(),
        &q.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
    );
    assert_eq!(response(&r).status(), Some(200));
}

#[test]
fn join_4_admitting_peer_answers_200_with_contact_and_links() {
    let mut a = first();
    let mut x = Puppet::at(addr(9));
    feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
    // J lies between X and A: A (pred X) is responsible for it.
    let mut j = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
    let out = feed(&mut a, ms(2), j.addr(), &j.join(addr(1)));
    let r = response(&out);
    assert_eq!(r.status(), Some(200));
    let m = r.msg();
    assert_eq!(m.sender_peer(), Some(a.me()));
    assert!(m.supports_dht());
    let c = m.contact_addrs().next().expect("the Contact echoed");
    assert_eq!(c.addr.uri.peer(), Some(j.peer()));
    assert!(c.expires.is_some_and(|e| e > 0));
    assert_eq!(r.link_peer(LinkKind::P, 1), Some(x.peer()));
    assert_eq!(r.to, j.addr());
}

#[test]
fn join_5_predecessor_changes_only_after_the_200() {
    let mut a = first();
    let mut x = Puppet::at(addr(9));
    feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
    assert_eq!(a.predecessor(), Some(x.peer()));
    let mut j = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
    let out = feed(&mut a, ms(2), j.addr(), &j.join(addr(1)));
    // The 200 still reports the old predecessor; the state has the joiner.
    assert_eq!(response(&out).link_peer(LinkKind::P, 1), Some(x.peer()));
    assert_eq!(a.predecessor(), Some(j.peer()));
    // Successors are unchanged by the join.
    assert!(a.successors().is_empty());
}

#[test]
fn fault_pred_before_200_reports_the_joiner_as_p1() {
    for fault in [None, Some(Fault::PredBefore200)] {
        let mut a = fresh(faulty(fast(1), fault));
        let mut x = Puppet::at(addr(9));
        feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
        let mut j = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
        let out = feed(&mut a, ms(2), j.addr(), &j.join(addr(1)));
        let p1 = response(&out).link_peer(LinkKind::P, 1);
        // JOIN-5: the 200 reports the predecessor before the joiner.
        let expected = if fault.is_some() { j.peer() } else { x.peer() };
        assert_eq!(p1, Some(expected), "{fault:?}");
        assert_eq!(a.predecessor(), Some(j.peer()), "adopted either way");
    }
}

// ----- ID-7, NAT-4, JOIN-7, SEC-1 ---------------------------------------------------

#[test]
fn id_7_mismatch_gets_493_and_no_state_change() {
    let mut a = first();
    // Claims the ID of 127.0.1.9:5060 but sends from 127.0.1.8:5060.
    let mut liar = Puppet::at(addr(9));
    let out = feed(&mut a, ms(1), addr(8), &liar.join(addr(1)));
    assert_eq!(response(&out).status(), Some(493));
    assert_eq!(response(&out).to, addr(8));
    assert_eq!(a.predecessor(), None);
    // The same for a notify (C-S1).
    let out = feed(
        &mut a,
        ms(2),
        addr(8),
        &liar.notify(addr(1), &[link(LinkKind::S, 1, Peer::at(addr(1)))]),
    );
    assert_eq!(response(&out).status(), Some(493));
    assert_eq!(a.predecessor(), None);
}

#[test]
fn fault_no_id_check_admits_a_mismatching_joiner() {
    for fault in [None, Some(Fault::NoIdCheck)] {
        let mut a = fresh(faulty(fast(1), fault));
        // Claims the ID of 127.0.1.9:5060 but sends from 127.0.1.8:5060.
        let mut liar = Puppet::at(addr(9));
        let out = feed(&mut a, ms(1), addr(8), &liar.join(addr(1)));
        if fault.is_some() {
            assert_eq!(response(&out).status(), Some(200));
            // Adopted under an ID that is not the hash of its address.
            let p = a.predecessor().unwrap();
            assert_eq!(p.id, liar.peer().id);
            assert_ne!(p.id, Peer::at(addr(8)).id);
        } else {
            assert_eq!(response(&out).status(), Some(493));
            assert_eq!(a.predecessor(), None);
        }
    }
}

#[test]
fn nat_4_id_of_the_public_mapping_is_admitted_private_refused() {
    let mut a = first();
    let public: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let private: SocketAddr = "10.0.0.5:5060".parse().unwrap();
    // Behind a NAT with the Peer-ID of its mapping: admitted.
    let mut good = Puppet::at(public);
    let mut t = good.txn();
    t.via = private;
    let join = print(&build::join(&good.me, addr(1), &t, 30));
    let out = feed(&mut a, ms(1), public, &join);
    assert_eq!(response(&out).status(), Some(200));
    // With the Peer-ID of its private address: 493.
    let mut bad = Puppet::at(private);
    let out = feed(&mut a, ms(2), public, &bad.join(addr(1)));
    assert_eq!(response(&out).status(), Some(493));
    assert_eq!(a.predecessor(), Some(good.peer()));
}

#[test]
fn id_7_over_tcp_checks_ip_and_via_port() {
    let mut a = first();
    let src_ip = [127, 0, 1, 9];
    let ephemeral = SocketAddr::from((src_ip, 41_234));
    let mut p = Puppet::at(SocketAddr::from((src_ip, 5070)));
    let mut t = p.txn().over(Transport::Tcp);
    t.via = p.addr();
    let join = print(&build::join(&p.me, addr(1), &t, 30));
    let out = feed_tcp(&mut a, ms(1), ephemeral, &join);
    let r = response(&out);
    assert_eq!(
        (r.status(), r.transport, r.to),
        (Some(200), Transport::Tcp, ephemeral)
    );
    // The Via names another port than the ID's: refused.
    let mut t = p.txn().over(Transport::Tcp);
    t.via = SocketAddr::from((src_ip, 5080));
    let join = print(&build::join(&p.me, addr(1), &t, 30));
    let out = feed_tcp(&mut a, ms(2), ephemeral, &join);
    assert_eq!(response(&out).status(), Some(493));
}

#[test]
fn join_7_third_party_node_registration_gets_403() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let other = Identity::new(Peer::at(addr(7)), "chat");
    let t = p.txn();
    // To/From/Contact name someone else; DHT-PeerID is the sender's own.
    let mut m = build::join(&other, addr(1), &t, 30);
    m.headers.retain(|h| !matches!(h, Header::DhtPeerId(_)));
    m.push_header(p.me.header());
    let out = feed(&mut a, ms(1), p.addr(), &print(&m));
    assert_eq!(response(&out).status(), Some(403));
    assert_eq!(a.predecessor(), None);
}

// ----- WIRE-7, WIRE-8, WIRE-10 ----------------------------------------------------------

#[test]
fn wire_7_malformed_request_gets_400_naming_the_problem() {
    let mut a = first();
    let bad = b"REGISTER sip:127.0.1.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.1.9:5060;branch=z9hG4bKbad;rport\r\nMax-Forwards: 70\r\n\
To: <sip:peer@127.0.1.1:5060;peer-ID=1234>\r\nFrom: <sip:a@b>;tag=1\r\n\
Call-ID: c1\r\nCSeq: 7 REGISTER\r\nContent-Length: 0\r\n\r\n";
    let out = feed(&mut a, ms(1), addr(9), bad);
    let r = response(&out);
    assert_eq!(r.status(), Some(400));
    let m = r.msg();
    let reason = match &m.start {
        p2psip_wire::StartLine::Response { reason, .. } => reason.to_string(),
        _ => unreachable!(),
    };
    assert!(reason.contains("ID"), "reason names the problem: {reason}");
    assert_eq!(m.call_id(), Some("c1"));
    assert_eq!(m.top_via().unwrap().received, Some(addr(9).ip()));
    // No Via to answer to: dropped. Binary noise: dropped.
    assert!(
        feed(
            &mut a,
            ms(2),
            addr(9),
            b"REGISTER sip:x SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n"
        )
        .is_empty()
    );
    assert!(feed(&mut a, ms(3), addr(9), &[0xff, 0x00, 0x13, 0x37]).is_empty());
    // And the node keeps serving.
    let mut p = Puppet::at(addr(9));
    let out = feed(&mut a, ms(4), p.addr(), &p.options(addr(1)));
    assert_eq!(response(&out).status(), Some(200));
}

#[test]
fn wire_8_oversized_gets_513_on_tcp_and_is_dropped_on_udp() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let mut big = p.options(addr(1));
    let head_end = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    big.truncate(head_end + 2);
    big.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "a".repeat(9000)).as_bytes());
    assert!(feed(&mut a, ms(1), p.addr(), &big).is_empty());
    let out = sent(a.handle(
        Input::TooLarge {
            from: p.addr(),
            transport: Transport::Tcp,
            head: &big[..8192],
        },
        ms(2),
    ));
    assert_eq!(response(&out).status(), Some(513));
    let out = feed_tcp(&mut a, ms(3), p.addr(), &big);
    assert_eq!(response(&out).status(), Some(513));
}

#[test]
fn wire_10_wrong_overlay_dht_or_algorithm_gets_488() {
    let mut a = first();
    for (overlay, dht, alg) in [
        ("other", "Chord1.0", "sha1"),
        ("chat", "Pastry", "sha1"),
        ("chat", "Chord1.0", "md5"),
    ] {
        let mut p = Puppet::at(addr(9));
        p.me.overlay = overlay.into();
        p.me.dht = dht.into();
        p.me.algorithm = alg.into();
        let out = feed(&mut a, ms(1), p.addr(), &p.join(addr(1)));
        assert_eq!(response(&out).status(), Some(488), "{overlay} {dht} {alg}");
    }
    assert_eq!(a.predecessor(), None);
}

#[test]
fn unknown_require_gets_420_with_unsupported() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let t = p.txn();
    let mut m = build::query(&p.me, addr(1), &t, QueryKey::Peer(Peer::at(addr(1))));
    m.push_header(Header::Require("frobnicate".into()));
    let out = feed(&mut a, ms(1), p.addr(), &print(&m));
    let r = response(&out);
    assert_eq!(r.status(), Some(420));
    assert!(
        r.msg()
            .headers
            .iter()
            .any(|h| matches!(h, Header::Unsupported(t) if t == "frobnicate"))
    );
}

// ----- TXN-1..4, NAT-1, NAT-2 ----------------------------------------------------------------

/// A joiner whose bootstrap never answers: the times its OPTIONS is sent.
fn silent_bootstrap_sends(cfg: Config) -> (Vec<u64>, Vec<Event>) {
    let boot = addr(200);
    let mut n = Node::new(cfg.with_bootstrap(Some(boot)), Time::ZERO).unwrap();
    let mut times = Vec::new();
    let mut evs = Vec::new();
    let mut now = Time::ZERO;
    let mut outs: Vec<Output> = std::iter::from_fn(|| n.poll_output()).collect();
    loop {
        evs.extend(events(&outs));
        for s in sent(outs) {
            if s.to == boot {
                times.push(now.as_duration().as_millis() as u64);
            }
        }
        if evs.iter().any(|e| matches!(e, Event::JoinFailed { .. })) {
            break;
        }
        now = n.poll_timeout().expect("a timer");
        outs = n.handle(Input::Timeout, now);
    }
    (times, evs)
}

#[test]
fn txn_1_retransmits_at_t1_doubling_capped_at_t2_until_timer_f() {
    let mut cfg = fast(5);
    cfg.t2 = Duration::from_millis(400);
    let (times, _) = silent_bootstrap_sends(cfg);
    // T1 = 100 ms: 0, 100, 300, 700, then every T2 = 400 ms until 6.4 s.
    assert_eq!(&times[..5], &[0, 100, 300, 700, 1100]);
    assert!(times.windows(2).all(|w| w[1] - w[0] <= 400));
    assert_eq!(*times.last().unwrap(), 6300);
}

#[test]
fn fault_no_retransmit_sends_once() {
    for fault in [None, Some(Fault::NoRetransmit)] {
        let (times, evs) = silent_bootstrap_sends(faulty(fast(5), fault));
        if fault.is_some() {
            assert_eq!(times, vec![0]);
        } else {
            assert_eq!(&times[..3], &[0, 100, 300], "TXN-1 retransmits");
        }
        // Timer F ends the transaction either way.
        assert!(evs.iter().any(|e| matches!(e, Event::JoinFailed { .. })));
    }
}

#[test]
fn txn_2_retransmitted_join_gets_the_same_response_and_changes_nothing_twice() {
    let mut a = first();
    let mut x = Puppet::at(addr(9));
    let join = x.join(addr(1));
    let first_out = a.handle(
        Input::Receive {
            from: x.addr(),
            transport: Transport::Udp,
            bytes: &join,
        },
        ms(1),
    );
    let again = a.handle(
        Input::Receive {
            from: x.addr(),
            transport: Transport::Udp,
            bytes: &join,
        },
        ms(300),
    );
    assert_eq!(events(&again), vec![], "no second state change");
    let r1 = response(&sent(first_out)).bytes.clone();
    let r2 = sent(again);
    assert_eq!(r2.len(), 1);
    assert_eq!(r2[0].bytes, r1);
}

#[test]
fn txn_3_and_nat_2_response_goes_to_the_source_with_received_and_rport() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let source: SocketAddr = "127.0.1.9:40001".parse().unwrap();
    let out = feed(
        &mut a,
        ms(1),
        source,
        &p.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
    );
    let r = response(&out);
    assert_eq!(r.to, source);
    let via = r.msg().top_via().cloned().unwrap();
    assert_eq!(via.received, Some(source.ip()));
    assert_eq!(via.rport, Rport::Filled(40001));
}

#[test]
fn fault_ignore_rport_answers_the_via_address() {
    for fault in [None, Some(Fault::IgnoreRport)] {
        let mut a = fresh(faulty(fast(1), fault));
        let mut p = Puppet::at(addr(9));
        // Sent from another port than the Via's sent-by (a NAT mapping).
        let source: SocketAddr = "127.0.1.9:40001".parse().unwrap();
        let out = feed(
            &mut a,
            ms(1),
            source,
            &p.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
        );
        let r = response(&out);
        let via = r.msg().top_via().cloned().unwrap();
        if fault.is_some() {
            assert_eq!(r.to, p.addr());
            assert_eq!((via.received, via.rport), (None, Rport::Requested));
        } else {
            assert_eq!(r.to, source);
            assert_eq!(
                (via.received, via.rport),
                (Some(source.ip()), Rport::Filled(40001))
            );
        }
    }
}

#[test]
fn txn_4_options_gets_200_with_dht_peer_id_and_links() {
    let net = converged(3);
    let mut net = net;
    let mut p = Puppet::at(addr(99));
    let target = net.addr(0);
    let bytes = p.options(target);
    net.inject(p.addr(), target, Transport::Udp, bytes);
    net.run_for(Duration::from_millis(10));
    let out = outside_to(&mut net, p.addr());
    let r = response(&out);
    assert_eq!(r.status(), Some(200));
    assert!(r.msg().supports_dht());
    assert_eq!(r.msg().sender_peer(), Some(net.node(0).me()));
    assert!(r.link_peer(LinkKind::P, 1).is_some() && r.link_peer(LinkKind::S, 1).is_some());
    // A plain OPTIONS (no DHT headers) of a joining node is answered too.
    let mut j = Node::new(fast(50).with_bootstrap(Some(addr(200))), Time::ZERO).unwrap();
    let t = Txn::udp("z9hG4bKplain", "c", "t", 1, addr(99));
    let plain = print(&build::options(
        None,
        addr(50),
        &t,
        build::addr_uri(addr(99)),
    ));
    let out = feed(&mut j, ms(1), addr(99), &plain);
    let r = response(&out);
    assert_eq!(r.status(), Some(200));
    assert!(r.msg().dht_peer_id().is_some());
}

#[test]
fn nat_1_every_request_has_rport_and_every_message_is_strictly_valid() {
    let mut net = ring_of(5);
    net.record = true;
    net.run_for(secs(8));
    assert!(!net.trace.is_empty());
    for d in &net.trace {
        let p = parse(&d.bytes, ParseOptions::strict())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&d.bytes)));
        if p.message.is_request() {
            assert_eq!(p.message.top_via().unwrap().rport, Rport::Requested);
        }
    }
}

// ----- ID-1, WIRE-5 faults ----------------------------------------------------------------------

fn trace_of_faulty_ring(fault: Option<Fault>) -> Vec<Datagram> {
    let mut net = Net::new(Duration::from_millis(2));
    let a = net.add(faulty(fast(1), fault));
    net.record = true;
    let boot = net.addr(a);
    net.add(fast(2).with_bootstrap(Some(boot)));
    net.run_for(secs(3));
    net.trace
        .into_iter()
        .filter(|d| d.from == addr(1))
        .collect()
}

#[test]
fn fault_upper_hex_sends_upper_case_ids() {
    let trace = trace_of_faulty_ring(Some(Fault::UpperHex));
    let err = parse(&trace[0].bytes, ParseOptions::strict()).unwrap_err();
    assert_eq!(err.requirement(), "ID-1");
    // The clean node's messages all pass the strict parser.
    let clean = trace_of_faulty_ring(None);
    assert!(clean.len() > 2);
    for d in &clean {
        parse(&d.bytes, ParseOptions::strict())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&d.bytes)));
    }
}

#[test]
fn wire_5_links_have_expires_and_fault_stale_links_reports_zero() {
    let mut a = first();
    let mut x = Puppet::at(addr(9));
    let out = feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
    assert!(response(&out).links(LinkKind::P).is_empty());
    let out = feed(
        &mut a,
        ms(2),
        x.addr(),
        &x.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
    );
    let p = response(&out).links(LinkKind::P);
    assert!(p.len() == 1 && p[0].2 > 0 && p[0].2 <= 30);
    for fault in [None, Some(Fault::StaleLinks)] {
        let trace = trace_of_faulty_ring(fault);
        let with_links: Vec<&Datagram> = trace
            .iter()
            .filter(|d| Sent::from(*d).msg().dht_links().next().is_some())
            .collect();
        assert!(!with_links.is_empty(), "messages with links");
        for d in with_links {
            let strict = parse(&d.bytes, ParseOptions::strict());
            if fault.is_some() {
                assert_eq!(strict.unwrap_err().requirement(), "WIRE-5");
            } else {
                assert!(strict.is_ok(), "{:?}", strict.err());
            }
        }
    }
}

// ----- the joiner's side: JOIN-1, JOIN-2, JOIN-6, JOIN-10, NAT-3, QUERY-7, STAB-3, NAT-6 --------

/// A joiner node whose bootstrap is the scripted peer at 127.0.1.30.
fn scripted_joiner(cfg: Config) -> (Node, Puppet, Sent) {
    let b = Puppet::at(addr(30));
    let mut n = Node::new(cfg.with_bootstrap(Some(b.addr())), Time::ZERO).unwrap();
    let out = sent(std::iter::from_fn(|| n.poll_output()).collect());
    assert_eq!(out.len(), 1);
    (n, b, out[0].clone())
}

/// The puppet answers `req` (sent by `node`), which it saw from `seen_as`.
fn reply(
    node: &mut Node,
    now: Time,
    p: &Puppet,
    req: &Sent,
    code: u16,
    seen_as: SocketAddr,
    links: &[Link],
) -> Vec<Sent> {
    let bytes = p.answer(&req.msg(), code, seen_as, links);
    feed(node, now, p.addr(), &bytes)
}

fn reply_302(node: &mut Node, now: Time, p: &Puppet, req: &Sent, to: Peer) -> Vec<Sent> {
    let mut r = build::response(
        &req.msg(),
        302,
        "Moved Temporarily",
        node.config().local,
        "ptag",
    );
    r.make_p2p(&p.me);
    r.push_contact(peer_uri(&to), None);
    feed(node, now, p.addr(), &print(&r))
}

fn joins(out: &[Sent]) -> Vec<Sent> {
    out.iter()
        .filter(|s| s.msg().is_request() && s.class() == Class::Join)
        .cloned()
        .collect()
}

#[test]
fn join_1_the_join_register_follows_the_options_probe() {
    let (mut n, b, options) = scripted_joiner(fast(40));
    assert_eq!(options.msg().method(), Some(&p2psip_wire::Method::Options));
    let out = reply(&mut n, ms(5), &b, &options, 200, addr(40), &[]);
    let j = &joins(&out)[0];
    let m = j.msg();
    assert_eq!(j.to, b.addr());
    assert_eq!(m.request_uri().unwrap().to_string(), "sip:127.0.1.30:5060");
    let me = peer_uri(&n.me());
    assert_eq!(m.to().unwrap().addr.uri, me);
    assert_eq!(m.from().unwrap().addr.uri, me);
    assert_eq!(m.contact_addrs().next().unwrap().addr.uri, me);
    assert!(m.expires().is_some_and(|e| e > 0));
    assert!(m.requires_dht() && m.supports_dht());
    assert_eq!(m.sender_peer(), Some(n.me()));
}

#[test]
fn join_10_and_nat_3_the_observed_address_decides_the_peer_id() {
    let seen: SocketAddr = "192.0.2.9:7000".parse().unwrap();
    let (mut n, b, options) = scripted_joiner(fast(40));
    let out = reply(&mut n, ms(5), &b, &options, 200, seen, &[]);
    assert_eq!(n.me(), Peer::at(seen));
    assert_eq!(joins(&out)[0].msg().sender_peer(), Some(Peer::at(seen)));
    // The fault keeps the ID of the local address.
    let (mut n, b, options) = scripted_joiner(fast(40).with_fault(Fault::IdFromPrivate));
    let out = reply(&mut n, ms(5), &b, &options, 200, seen, &[]);
    assert_eq!(joins(&out)[0].msg().sender_peer(), Some(Peer::at(addr(40))));
}

/// NAT-8 setup: a joiner behind a NAT (B saw it at `first`, not at its
/// local address) whose bootstrap B reports C as its successor.
fn behind_nat_with_two_peers(first: SocketAddr) -> (Node, Puppet, Puppet, Sent) {
    let (mut n, b, options) = scripted_joiner(fast(40));
    let c = Puppet::at(addr(31));
    let out = reply(
        &mut n,
        ms(5),
        &b,
        &options,
        200,
        first,
        &[link(LinkKind::S, 1, c.peer())],
    );
    assert!(joins(&out).is_empty(), "no join before comparing: {out:#?}");
    let ask: Vec<Sent> = out.into_iter().filter(|s| s.to == c.addr()).collect();
    assert_eq!(ask.len(), 1);
    assert_eq!(ask[0].msg().method(), Some(&p2psip_wire::Method::Options));
    (n, b, c, ask[0].clone())
}

#[test]
fn nat_8_a_mapping_per_destination_makes_the_node_a_client_of_its_bootstrap() {
    let first: SocketAddr = "192.0.2.9:7000".parse().unwrap();
    let second: SocketAddr = "192.0.2.9:7001".parse().unwrap();
    let (mut n, b, c, ask) = behind_nat_with_two_peers(first);
    let bytes = c.answer(&ask.msg(), 200, second, &[]);
    let outs = n.handle(
        Input::Receive {
            from: c.addr(),
            transport: Transport::Udp,
            bytes: &bytes,
        },
        ms(6),
    );
    assert!(events(&outs).contains(&Event::Client {
        adapter: b.addr(),
        seen: [first, second]
    }));
    assert!(sent(outs).is_empty());
    // Nothing more: no join, ever.
    let later = sent(n.handle(Input::Timeout, ms(10_000)));
    assert!(joins(&later).is_empty(), "{later:#?}");
    assert_eq!(n.phase(), PhaseKind::Joining);
    // Registrations go to the bootstrap as plain REGISTERs (RES-4).
    let outs = sent(n.handle(
        Input::Command(Command::Register {
            aor: "sip:alice@chat".into(),
            contact: "sip:alice@192.0.2.9:7000".into(),
            expires: 60,
        }),
        ms(11_000),
    ));
    assert_eq!(outs.len(), 1);
    let reg = &outs[0];
    assert_eq!(reg.to, b.addr());
    let m = reg.msg();
    assert_eq!(reg.class(), Class::Plain);
    assert!(!m.requires_dht());
    assert_eq!(m.to().unwrap().addr.uri.to_string(), "sip:alice@chat");
    assert_eq!(
        m.contact_addrs().next().unwrap().addr.uri.to_string(),
        "sip:alice@192.0.2.9:7000"
    );
    assert_eq!(m.expires(), Some(60));
    let ok = print(&build::response(&m, 200, "OK", first, "a"));
    let outs = n.handle(
        Input::Receive {
            from: b.addr(),
            transport: Transport::Udp,
            bytes: &ok,
        },
        ms(11_000),
    );
    assert!(events(&outs).contains(&Event::Registered {
        aor: "sip:alice@chat".into(),
        status: 200
    }));
}

#[test]
fn nat_8_one_public_endpoint_or_no_answer_and_the_node_joins() {
    let first: SocketAddr = "192.0.2.9:7000".parse().unwrap();
    // The second peer sees the same endpoint: join through the bootstrap.
    let (mut n, b, c, ask) = behind_nat_with_two_peers(first);
    let out = reply(&mut n, ms(6), &c, &ask, 200, first, &[]);
    let j = joins(&out);
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].to, b.addr());
    assert_eq!(j[0].msg().sender_peer(), Some(Peer::at(first)));
    // No answer within 4·T1: join anyway.
    let (mut n, b, _c, _ask) = behind_nat_with_two_peers(first);
    let t1 = n.config().t1;
    let early = sent(n.handle(Input::Timeout, ms(5) + t1 * 3));
    assert!(joins(&early).is_empty());
    let out = sent(n.handle(Input::Timeout, ms(5) + t1 * 4));
    assert_eq!(joins(&out)[0].to, b.addr());
    // Not behind a NAT (seen at its own address): no comparison at all.
    let (mut n, b, options) = scripted_joiner(fast(40));
    let c = Puppet::at(addr(31));
    let out = reply(
        &mut n,
        ms(5),
        &b,
        &options,
        200,
        addr(40),
        &[link(LinkKind::S, 1, c.peer())],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(joins(&out)[0].to, b.addr());
}

#[test]
fn join_2_follows_302s_and_gives_up_on_a_loop() {
    let (mut n, b, options) = scripted_joiner(fast(40));
    let out = reply(&mut n, ms(5), &b, &options, 200, addr(40), &[]);
    let c = Puppet::at(addr(31));
    let out = reply_302(&mut n, ms(6), &b, &joins(&out)[0], c.peer());
    let j = joins(&out);
    assert_eq!(j[0].to, c.addr());
    let outs = n.handle(
        Input::Receive {
            from: c.addr(),
            transport: Transport::Udp,
            bytes: &{
                let mut r = build::response(&j[0].msg(), 302, "Moved Temporarily", addr(40), "t");
                r.make_p2p(&c.me);
                r.push_contact(peer_uri(&b.peer()), None);
                print(&r)
            },
        },
        ms(7),
    );
    assert!(
        events(&outs)
            .iter()
            .any(|e| matches!(e, Event::JoinFailed { reason } if reason.contains("loop")))
    );
    assert!(joins(&sent(outs)).is_empty());
}

#[test]
fn join_2_gives_up_after_the_hop_bound() {
    let (mut n, b, options) = scripted_joiner(fast(40));
    let mut out = reply(&mut n, ms(5), &b, &options, 200, addr(40), &[]);
    let mut sent_joins = 1;
    let mut from = b;
    let mut failed = false;
    for i in 0..40u8 {
        let j = joins(&out);
        if j.is_empty() {
            failed = true;
            break;
        }
        let next = Puppet::at(SocketAddr::from(([127, 0, 2, i + 1], 5060)));
        out = reply_302(&mut n, ms(10 + u64::from(i)), &from, &j[0], next.peer());
        sent_joins += joins(&out).len();
        from = next;
    }
    assert!(failed);
    // No links reported: N is unknown (log2 N = 1), so 2*1+8 = 10 redirects.
    assert_eq!(sent_joins, 11);
}

/// A scripted join admitted by B, which reports P1 = X, S1 = Y, F5 = Z.
fn admitted(cfg: Config) -> (Node, Puppet, Puppet, Puppet, Vec<Sent>) {
    let (mut n, b, options) = scripted_joiner(cfg);
    let out = reply(&mut n, ms(5), &b, &options, 200, addr(40), &[]);
    let (x, y, z) = (
        Puppet::at(addr(32)),
        Puppet::at(addr(33)),
        Puppet::at(addr(34)),
    );
    let links = [
        link(LinkKind::P, 1, x.peer()),
        link(LinkKind::S, 1, y.peer()),
        link(LinkKind::F, 5, z.peer()),
    ];
    let out = reply(&mut n, ms(6), &b, &joins(&out)[0], 200, addr(40), &links);
    (n, b, x, y, out)
}

fn options_links(n: &mut Node, now: Time) -> Sent {
    let mut p = Puppet::at(addr(99));
    let out = feed(n, now, p.addr(), &p.options(addr(40)));
    response(&out).clone()
}

#[test]
fn join_6_joiner_takes_the_admitting_peer_as_successor_and_its_p1() {
    let (n, b, x, _y, _) = admitted(fast(40));
    assert_eq!(n.phase(), PhaseKind::Member);
    assert_eq!(n.successors()[0], b.peer());
    assert_eq!(n.predecessor(), Some(x.peer()));
}

#[test]
fn query_7_reported_peers_are_verified_first() {
    let (mut n, _b, x, y, out) = admitted(fast(40));
    // Probes went to the reported P1 and S2.
    let probes: Vec<SocketAddr> = out
        .iter()
        .filter(|s| s.class() == Class::Query)
        .map(|s| s.to)
        .collect();
    assert!(
        probes.contains(&x.addr()) && probes.contains(&y.addr()),
        "{probes:?}"
    );
    let r = options_links(&mut n, ms(7));
    assert_eq!(r.link_peer(LinkKind::P, 1), None, "P1 not verified yet");
    assert_eq!(r.link_peer(LinkKind::S, 2), None, "S2 not verified yet");
    // X answers its probe: now it is reported.
    let probe = out.iter().find(|s| s.to == x.addr()).unwrap();
    reply(&mut n, ms(8), &x, probe, 200, addr(40), &[]);
    assert_eq!(
        options_links(&mut n, ms(9)).link_peer(LinkKind::P, 1),
        Some(x.peer())
    );
}

#[test]
fn fault_report_unverified_reports_a_successor_s_links_at_once() {
    for fault in [None, Some(Fault::ReportUnverified)] {
        let (mut n, _b, _x, y, _) = admitted(faulty(fast(40), fault));
        // Y, reported as S2 by the successor, before any transaction with
        // it (QUERY-7).
        let s2 = options_links(&mut n, ms(7)).link_peer(LinkKind::S, 2);
        let expected = fault.is_some().then(|| y.peer());
        assert_eq!(s2, expected, "{fault:?}");
    }
}

#[test]
fn stab_3_reported_fingers_are_not_copied() {
    let (n, _b, _x, _y, _) = admitted(fast(40));
    let z = Peer::at(addr(34));
    assert!(n.fingers().iter().all(|(_, p)| *p != z));
}

#[test]
fn nat_6_a_new_observed_address_makes_the_node_leave_and_rejoin() {
    let (mut n, b, _x, _y, out) = admitted(fast(40));
    let rebound: SocketAddr = "127.0.1.40:6000".parse().unwrap();
    // Answer the stabilisation queries to B as if from a new mapping.
    let mut pending: Vec<Sent> = out
        .into_iter()
        .filter(|s| s.to == b.addr() && s.class() == Class::Query)
        .collect();
    let mut now = ms(10);
    let mut all = Vec::new();
    for _ in 0..6 {
        if let Some(q) = pending.pop() {
            all.extend(reply(&mut n, now, &b, &q, 200, rebound, &[]));
        }
        now += Duration::from_millis(600);
        let o = sent(n.handle(Input::Timeout, now));
        pending.extend(
            o.iter()
                .filter(|s| s.to == b.addr() && s.msg().is_request())
                .cloned(),
        );
        all.extend(o);
        if let Some(l) = all
            .iter()
            .find(|s| s.msg().is_request() && s.class() == Class::Leave)
            .cloned()
        {
            assert_eq!(
                l.msg().sender_peer(),
                Some(Peer::at(addr(40))),
                "leaves with the old ID"
            );
            let mut out = reply(&mut n, now, &b, &l, 200, rebound, &[]);
            // The leave to the (silent) predecessor ends with the stage.
            out.extend(sent(
                n.handle(Input::Timeout, now + Duration::from_millis(1100)),
            ));
            let j = joins(&out);
            assert_eq!(
                j[0].msg().sender_peer(),
                Some(Peer::at(rebound)),
                "re-joins with the new ID"
            );
            return;
        }
    }
    panic!("no leave after the address changed");
}

// ----- QUERY-1..5 --------------------------------------------------------------------------

/// A first peer A with the scripted peer X as predecessor.
fn with_pred() -> (Node, Puppet) {
    let mut a = first();
    let mut x = Puppet::at(addr(9));
    feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
    assert_eq!(a.predecessor(), Some(x.peer()));
    (a, x)
}

#[test]
fn query_1_a_query_changes_no_routing_state() {
    let (mut a, x) = with_pred();
    let mut q = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
    let before = a.snapshot();
    let out = feed(
        &mut a,
        ms(2),
        q.addr(),
        &q.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
    );
    assert_eq!(response(&out).status(), Some(200));
    let after = a.snapshot();
    assert_eq!(
        (before.predecessor, before.successors, before.fingers),
        (after.predecessor, after.successors, after.fingers)
    );
}

#[test]
fn fault_query_mutates_adopts_the_querier() {
    for fault in [None, Some(Fault::QueryMutates)] {
        let mut a = fresh(faulty(fast(1), fault));
        let mut x = Puppet::at(addr(9));
        feed(&mut a, ms(1), x.addr(), &x.join(addr(1)));
        // The querier sits between the predecessor and A: closer.
        let mut q = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
        feed(
            &mut a,
            ms(2),
            q.addr(),
            &q.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
        );
        let expected = if fault.is_some() { q.peer() } else { x.peer() };
        assert_eq!(a.predecessor(), Some(expected), "{fault:?}");
    }
}

#[test]
fn query_2_redirects_to_the_closest_preceding_known_peer() {
    let mut net = converged(8);
    let r = ring(&net);
    let x = net.node(0).me();
    let mut p = Puppet::at(addr(99));
    for k in 0..32u8 {
        let key = Id::hash(&[k]);
        if r.responsible(&key) == Some(x.id) {
            continue;
        }
        let bytes = p.query(x.addr, QueryKey::Key(key));
        net.inject(p.addr(), x.addr, Transport::Udp, bytes);
        net.run_for(Duration::from_millis(10));
        let out = outside_to(&mut net, p.addr());
        let resp = response(&out);
        assert_eq!(resp.status(), Some(302));
        let m = resp.msg();
        let contact = m.contact_addrs().next().unwrap().addr.uri.peer().unwrap();
        assert_ne!(contact.id, x.id, "never the responder itself");
        let s1 = resp.link_peer(LinkKind::S, 1).unwrap();
        assert!(
            contact.id.in_open_closed(&x.id, &key) || contact == s1,
            "progress towards {key}"
        );
        // SHOULD: the closest known peer (links are what the node knows).
        let known: Vec<Id> = m.dht_links().filter_map(|l| l.addr.uri.peer_id()).collect();
        let best = p2psip_wire::closest_preceding(&x.id, &key, known.iter()).unwrap_or(s1.id);
        assert_eq!(contact.id, best);
    }
}

#[test]
fn fault_wrong_302_redirects_to_the_predecessor() {
    for fault in [None, Some(Fault::Wrong302)] {
        let mut net = Net::new(Duration::from_millis(2));
        let a = net.add(faulty(fast(1), fault));
        for i in 2..=6 {
            net.run_for(Duration::from_millis(50));
            net.add(fast(i).with_bootstrap(Some(net.addr(a))));
        }
        net.run_for(secs(8));
        let x = net.node(a).me();
        let pred = net.node(a).predecessor().unwrap();
        // Half the ring away: A is not responsible and must redirect.
        let key = x.id.finger_start(159);
        assert_ne!(ring(&net).responsible(&key), Some(x.id));
        let mut p = Puppet::at(addr(99));
        let bytes = p.query(x.addr, QueryKey::Key(key));
        net.inject(p.addr(), x.addr, Transport::Udp, bytes);
        net.run_for(Duration::from_millis(10));
        let out = outside_to(&mut net, p.addr());
        let r = response(&out);
        assert_eq!(r.status(), Some(302));
        let contact = r
            .msg()
            .contact_addrs()
            .next()
            .unwrap()
            .addr
            .uri
            .peer()
            .unwrap();
        if fault.is_some() {
            assert_eq!(contact, pred);
            assert!(!contact.id.in_open_closed(&x.id, &key), "no progress");
        } else {
            assert!(contact.id.in_open_closed(&x.id, &key), "progress (QUERY-2)");
        }
    }
}

#[test]
fn query_3_200_for_own_id_404_for_other_keys_in_range() {
    let mut net = converged(4);
    let x = net.node(1).me();
    let mut p = Puppet::at(addr(99));
    for (key, want) in [(x.id, 200), (x.id.predecessor(), 404)] {
        let bytes = p.query(x.addr, QueryKey::Key(key));
        net.inject(p.addr(), x.addr, Transport::Udp, bytes);
        net.run_for(Duration::from_millis(10));
        assert_eq!(
            response(&outside_to(&mut net, p.addr())).status(),
            Some(want)
        );
    }
}

#[test]
fn query_4_and_query_5_links_are_complete_and_true() {
    let mut net = converged(8);
    let r = ring(&net);
    let mut p = Puppet::at(addr(99));
    for i in net.live() {
        let x = net.node(i).me();
        let bytes = p.query(x.addr, QueryKey::Peer(x));
        net.inject(p.addr(), x.addr, Transport::Udp, bytes);
        net.run_for(Duration::from_millis(10));
        let out = outside_to(&mut net, p.addr());
        let resp = response(&out);
        assert_eq!(resp.status(), Some(200));
        assert_eq!(resp.msg().sender_peer(), Some(x));
        assert_eq!(
            resp.link_peer(LinkKind::P, 1).map(|p| p.id),
            r.ideal_predecessor(&x.id)
        );
        let s: Vec<Id> = resp
            .links(LinkKind::S)
            .iter()
            .map(|(_, p, _)| p.id)
            .collect();
        assert_eq!(s, r.successor_list(&x.id, 4));
        let f = resp.links(LinkKind::F);
        assert!(!f.is_empty() && f.len() <= 32);
        let mut last = None;
        for (i, peer, _) in &f {
            assert_eq!(Some(peer.id), r.finger(&x.id, *i), "F{i}");
            assert_ne!(last, Some(peer.id), "distinct fingers only");
            last = Some(peer.id);
        }
        assert!(
            resp.msg()
                .dht_links()
                .all(|l| l.expires.is_some_and(|e| e > 0))
        );
    }
}

// ----- STAB-1, STAB-2, STAB-4, STAB-5 ------------------------------------------------------------

/// The stabilisation queries (a query for S1's own ID) `from` sent to `to`.
fn stabilize_queries(trace: &[Datagram], from: SocketAddr, to: Peer) -> usize {
    trace
        .iter()
        .filter(|d| d.from == from && d.to == to.addr)
        .filter(|d| {
            let s = Sent::from(*d);
            let m = s.msg();
            m.is_request()
                && Class::of(&m) == Class::Query
                && m.to().and_then(|t| t.addr.uri.peer_id()) == Some(to.id)
        })
        .count()
}

#[test]
fn stab_1_queries_the_successor_every_interval() {
    let mut net = converged(4);
    net.record = true;
    net.run_for(secs(10));
    for i in net.live() {
        let n = net.node(i);
        let s1 = n.successors()[0];
        assert!(
            stabilize_queries(&net.trace, n.me().addr, s1) >= 10,
            "{}",
            n.me()
        );
    }
}

#[test]
fn fault_no_stabilize_never_queries_the_successor() {
    for fault in [None, Some(Fault::NoStabilize)] {
        let mut net = Net::new(Duration::from_millis(2));
        let a = net.add(fast(1));
        let b = net.add(faulty(fast(2).with_bootstrap(Some(net.addr(a))), fault));
        net.record = true;
        net.run_for(secs(10));
        let s1 = net.node(b).successors()[0];
        let queries = stabilize_queries(&net.trace, net.addr(b), s1);
        if fault.is_some() {
            assert_eq!(queries, 0);
        } else {
            assert!(queries >= 9, "one per interval (T = 1 s): {queries}");
        }
    }
}

#[test]
fn stab_2_notify_adopts_a_closer_predecessor_and_rectifies_a_dead_one() {
    let (mut a, x) = with_pred();
    let mut q = Puppet::at(addr_between(&x.peer().id, &a.me().id, 0));
    let out = feed(
        &mut a,
        ms(2),
        q.addr(),
        &q.notify(addr(1), &[link(LinkKind::S, 1, Peer::at(addr(1)))]),
    );
    assert_eq!(response(&out).status(), Some(200));
    assert_eq!(a.predecessor(), Some(q.peer()));
    // A notify from outside (pred, me): 302, and the predecessor is checked.
    let mut r = Puppet::at(addr_between(&a.me().id, &q.peer().id, 1));
    let out = feed(
        &mut a,
        ms(3),
        r.addr(),
        &r.notify(addr(1), &[link(LinkKind::S, 1, Peer::at(addr(1)))]),
    );
    assert_eq!(response(&out).status(), Some(302));
    assert!(
        out.iter()
            .any(|s| s.to == q.addr() && s.class() == Class::Query),
        "check the predecessor"
    );
    assert_eq!(a.predecessor(), Some(q.peer()));
    // Q never answers: after Timer F the notify sender takes its place.
    let mut now = ms(3);
    while now < ms(8000) {
        now = a.poll_timeout().unwrap().max(now);
        a.handle(Input::Timeout, now);
    }
    assert_eq!(a.predecessor(), Some(r.peer()));
}

/// A peer that answers 503 is joining or leaving: a notify or probe it
/// answers so is not the transaction that lets it become S1 (QUERY-7).
/// Seen live: S1 reports the leaver as P1 before it has processed the
/// leave, and the leaver's 503 to the notify made it S1 again (LEAVE-2).
#[test]
fn stab_2_a_candidate_answering_503_is_not_adopted() {
    let (mut a, x) = with_pred();
    let mut now = ms(1);
    let q = loop {
        now = a.poll_timeout().unwrap().max(now);
        let out = sent(a.handle(Input::Timeout, now));
        let stab = out.into_iter().find(|s| {
            s.to == x.addr()
                && s.class() == Class::Query
                && s.msg().to().and_then(|t| t.addr.uri.peer_id()) == Some(x.peer().id)
        });
        if let Some(q) = stab {
            break q;
        }
        assert!(now < ms(3000), "no stabilisation query to X");
    };
    assert_eq!(a.successors()[0], x.peer());
    // X reports a predecessor W in (a, X): W gets a notify.
    let w = Puppet::at(addr_between(&a.me().id, &x.peer().id, 0));
    let me = a.me();
    let out = reply(
        &mut a,
        now,
        &x,
        &q,
        200,
        addr(1),
        &[link(LinkKind::P, 1, w.peer()), link(LinkKind::S, 1, me)],
    );
    let notify = out
        .iter()
        .find(|s| s.to == w.addr() && s.class() == Class::Notify)
        .expect("a notify to W")
        .clone();
    reply(&mut a, now, &w, &notify, 503, addr(1), &[]);
    assert_eq!(a.successors()[0], x.peer(), "W answered 503: not adopted");
    for probe in out
        .iter()
        .filter(|s| s.to == w.addr() && s.class() == Class::Query)
    {
        reply(&mut a, now, &w, probe, 503, addr(1), &[]);
    }
    assert_eq!(a.successors()[0], x.peer(), "W answered 503: not adopted");
}

#[test]
fn stab_4_a_failed_successor_is_replaced_within_t_plus_timer_f() {
    let mut net = converged(6);
    let r = ring(&net);
    let victim = net.node(2).me();
    let pred = index_of(&net, &r.ideal_predecessor(&victim.id).unwrap());
    net.kill(2);
    // STAB-4: one stabilisation interval plus Timer F (1 s + 6.4 s).
    net.run_for(Duration::from_millis(7500));
    let r = ring(&net);
    let s1 = net.node(pred).successors()[0].id;
    assert_eq!(Some(s1), r.successor(&victim.id));
    // And the ring becomes ideal again.
    net.run_for(secs(10));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
}

#[test]
fn stab_5_eight_nodes_converge_to_the_ideal_ring_and_stay() {
    let mut net = ring_of(8);
    // (log2 8 + 3) stabilisation intervals of 1 s after the last join.
    net.run_for(secs(6));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
    // C-G7: it stays ideal.
    for _ in 0..10 {
        net.run_for(secs(1));
        assert_eq!(not_ideal(&net), Vec::<String>::new());
    }
}

// ----- RES-1..3, JOIN-9 -----------------------------------------------------------------------

fn aor(user: &str) -> p2psip_wire::Uri<'static> {
    let text = format!(
        "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\nMax-Forwards: 1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:{user}@example.org>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let m = parse(text.as_bytes(), ParseOptions::lenient())
        .unwrap()
        .message
        .into_owned();
    m.to().unwrap().addr.uri.clone()
}

fn contact(uri: &str, expires: Option<u32>) -> p2psip_wire::ContactAddr<'static> {
    let mut c = store::owned_contact(
        &parse(
            format!(
                "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\nMax-Forwards: 1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContact: <{uri}>\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
            ParseOptions::lenient(),
        )
        .unwrap()
        .message
        .contact_addrs()
        .next()
        .unwrap()
        .clone(),
    );
    c.expires = expires;
    c
}

impl Puppet {
    fn register(
        &mut self,
        to: SocketAddr,
        u: &p2psip_wire::Uri<'_>,
        replica: Option<u32>,
        contacts: &[p2psip_wire::ContactAddr<'_>],
        expires: u32,
    ) -> Vec<u8> {
        let t = self.txn();
        print(&build::resource_register(
            &self.me, to, &t, u, replica, contacts, expires,
        ))
    }

    fn lookup(
        &mut self,
        to: SocketAddr,
        u: &p2psip_wire::Uri<'_>,
        replica: Option<u32>,
    ) -> Vec<u8> {
        let t = self.txn();
        print(&build::lookup(&self.me, to, &t, u, replica))
    }
}

fn contact_uris(s: &Sent) -> Vec<String> {
    s.msg()
        .contact_addrs()
        .map(|c| c.addr.uri.to_string())
        .collect()
}

#[test]
fn res_1_and_res_2_store_refresh_remove_and_look_up() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let alice = aor("alice");
    let c = contact("sip:alice@192.0.2.1:5060", None);
    let out = feed(
        &mut a,
        ms(1),
        p.addr(),
        &p.register(addr(1), &alice, None, std::slice::from_ref(&c), 60),
    );
    let r = response(&out);
    assert_eq!(r.status(), Some(200));
    assert_eq!(contact_uris(r), vec!["sip:alice@192.0.2.1:5060"]);
    assert_eq!(r.msg().contact_addrs().next().unwrap().expires, Some(60));
    let out = feed(&mut a, ms(2), p.addr(), &p.lookup(addr(1), &alice, None));
    assert_eq!(response(&out).status(), Some(200));
    assert_eq!(
        contact_uris(response(&out)),
        vec!["sip:alice@192.0.2.1:5060"]
    );
    let out = feed(
        &mut a,
        ms(3),
        p.addr(),
        &p.lookup(addr(1), &aor("bob"), None),
    );
    assert_eq!(response(&out).status(), Some(404));
    // Expiry (RFC 3261 §10.3).
    a.handle(Input::Timeout, ms(61_000));
    let out = feed(
        &mut a,
        ms(61_001),
        p.addr(),
        &p.lookup(addr(1), &alice, None),
    );
    assert_eq!(response(&out).status(), Some(404));
    // Removal with Expires 0.
    feed(
        &mut a,
        ms(61_002),
        p.addr(),
        &p.register(addr(1), &alice, None, std::slice::from_ref(&c), 60),
    );
    let out = feed(
        &mut a,
        ms(61_003),
        p.addr(),
        &p.register(addr(1), &alice, None, std::slice::from_ref(&c), 0),
    );
    assert!(contact_uris(response(&out)).is_empty());
    assert!(a.stored_keys().is_empty());
}

#[test]
fn res_1_is_routed_like_a_join() {
    let mut net = converged(5);
    let r = ring(&net);
    let alice = aor("alice");
    let key = resource_id(&alice);
    let holder = r.responsible(&key).unwrap();
    let other = net
        .live()
        .into_iter()
        .find(|i| net.node(*i).me().id != holder)
        .unwrap();
    let mut p = Puppet::at(addr(99));
    let bytes = p.register(
        net.addr(other),
        &alice,
        None,
        &[contact("sip:alice@192.0.2.1", None)],
        60,
    );
    net.inject(p.addr(), net.addr(other), Transport::Udp, bytes);
    net.run_for(Duration::from_millis(10));
    let out = outside_to(&mut net, p.addr());
    assert_eq!(response(&out).status(), Some(302));
    assert!(net.node(other).stored_keys().is_empty());
}

#[test]
fn res_3_the_resource_id_is_recomputed() {
    let mut a = first();
    let mut p = Puppet::at(addr(9));
    let mut alice = aor("alice");
    alice.params.resource_id = Some(Id::hash(b"not alice"));
    let t = p.txn();
    let mut m = build::resource_register(
        &p.me,
        addr(1),
        &t,
        &aor("alice"),
        None,
        &[contact("sip:alice@192.0.2.1", None)],
        60,
    );
    if let Some(to) = m.to_mut() {
        to.addr.uri.params.resource_id = Some(Id::hash(b"not alice"));
    }
    feed(&mut a, ms(1), p.addr(), &print(&m));
    assert_eq!(a.stored_keys(), vec![resource_id(&aor("alice"))]);
}

#[test]
fn join_9_registrations_in_the_joiner_s_range_are_transferred() {
    for fault in [None, Some(Fault::NoTransfer)] {
        let mut cfg = fast(1);
        if let Some(f) = fault {
            cfg = cfg.with_fault(f);
        }
        let mut a = Node::new(cfg, Time::ZERO).unwrap();
        while a.poll_output().is_some() {}
        let mut p = Puppet::at(addr(9));
        let alice = aor("alice");
        let key = resource_id(&alice);
        feed(
            &mut a,
            ms(1),
            p.addr(),
            &p.register(
                addr(1),
                &alice,
                None,
                &[contact("sip:alice@192.0.2.1", None)],
                60,
            ),
        );
        // J after the key: its range (pred, J] holds the key.
        let mut j = Puppet::at(addr_between(&key, &a.me().id, 0));
        let out = feed(&mut a, ms(1000), j.addr(), &j.join(addr(1)));
        let transfers: Vec<&Sent> = out
            .iter()
            .filter(|s| s.msg().is_request() && s.class() == Class::Transfer)
            .collect();
        if fault.is_some() {
            assert!(transfers.is_empty());
            assert_eq!(a.stored_keys(), vec![key]);
            continue;
        }
        assert_eq!(transfers.len(), 1);
        let t = transfers[0];
        let m = t.msg();
        assert_eq!(t.to, j.addr());
        assert_eq!(m.from().unwrap().addr.uri, peer_uri(&a.me()));
        assert_eq!(
            m.to().unwrap().addr.uri.to_string(),
            "sip:alice@example.org"
        );
        assert_eq!(contact_uris(t), vec!["sip:alice@192.0.2.1"]);
        assert!(
            m.expires().is_some_and(|e| (59..=60).contains(&e)),
            "remaining lifetime"
        );
        // The joiner's 200 ends A's copy.
        let bytes = j.answer(&m, 200, addr(1), &[]);
        feed(&mut a, ms(1001), j.addr(), &bytes);
        assert!(a.stored_keys().is_empty());
    }
}

// ----- LEAVE-1, LEAVE-2 ------------------------------------------------------------------------

/// An AOR whose primary key node `i` is responsible for.
fn aor_held_by(net: &Net, i: usize) -> p2psip_wire::Uri<'static> {
    let r = ring(net);
    let me = net.node(i).me().id;
    (0..1000)
        .map(|n| aor(&format!("user{n}")))
        .find(|u| r.responsible(&resource_id(u)) == Some(me))
        .expect("an AOR in the node's range")
}

#[test]
fn leave_1_and_leave_2_hand_over_then_close_the_gap() {
    let mut net = converged(5);
    // A node with some AOR in its range.
    let x = (0..5)
        .max_by_key(|i| {
            let n = net.node(*i);
            n.predecessor().unwrap().id.distance_to(&n.me().id)
        })
        .unwrap();
    let me = net.node(x).me();
    let pred = net.node(x).predecessor().unwrap();
    let succ = net.node(x).successors()[0];
    let u = aor_held_by(&net, x);
    let mut p = Puppet::at(addr(99));
    let bytes = p.register(me.addr, &u, None, &[contact("sip:u@192.0.2.1", None)], 60);
    net.inject(p.addr(), me.addr, Transport::Udp, bytes);
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.node(x).stored_keys(), vec![resource_id(&u)]);
    net.record = true;
    net.command(x, Command::Leave);
    net.run_for(Duration::from_millis(100));
    let from_x: Vec<Sent> = net
        .trace
        .iter()
        .filter(|d| d.from == me.addr)
        .map(Sent::from)
        .collect();
    let requests: Vec<&Sent> = from_x.iter().filter(|s| s.msg().is_request()).collect();
    // First the transfer to the successor, then the leaves.
    assert_eq!(requests[0].class(), Class::Transfer);
    assert_eq!(requests[0].to, succ.addr);
    let leaves: Vec<&&Sent> = requests
        .iter()
        .filter(|s| s.class() == Class::Leave)
        .collect();
    let targets: Vec<SocketAddr> = leaves.iter().map(|s| s.to).collect();
    assert!(targets.contains(&pred.addr) && targets.contains(&succ.addr));
    for l in &leaves {
        assert_eq!(l.msg().expires(), Some(0));
        assert_eq!(l.link_peer(LinkKind::P, 1), Some(pred));
        assert_eq!(l.link_peer(LinkKind::S, 1), Some(succ));
    }
    assert_eq!(net.node(x).phase(), PhaseKind::Stopped);
    // LEAVE-2, at once.
    let (pi, si) = (index_of(&net, &pred.id), index_of(&net, &succ.id));
    assert_eq!(net.node(pi).successors()[0], succ);
    assert_eq!(net.node(si).predecessor(), Some(pred));
    assert_eq!(net.node(si).stored_keys(), vec![resource_id(&u)]);
}

#[test]
fn leave_2_the_successor_adopts_the_leaver_s_p1_after_verifying_it() {
    let (mut a, mut x) = with_pred();
    let w = Puppet::at(addr_between(&a.me().id, &x.peer().id, 0));
    let out = feed(
        &mut a,
        ms(2),
        x.addr(),
        &x.leave(
            addr(1),
            &[
                link(LinkKind::P, 1, w.peer()),
                link(LinkKind::S, 1, Peer::at(addr(1))),
            ],
        ),
    );
    let r = response(&out);
    assert_eq!(r.status(), Some(200));
    assert_eq!(a.predecessor(), Some(w.peer()));
    // W was only reported: it is probed before it is reported as P1.
    let probe = out.iter().find(|s| s.to == w.addr()).expect("a probe to W");
    assert_eq!(probe.class(), Class::Query);
    reply(&mut a, ms(3), &w, probe, 200, addr(1), &[]);
    let mut q = Puppet::at(addr(98));
    let out = feed(
        &mut a,
        ms(4),
        q.addr(),
        &q.query(addr(1), QueryKey::Peer(Peer::at(addr(1)))),
    );
    assert_eq!(response(&out).link_peer(LinkKind::P, 1), Some(w.peer()));
}

#[test]
fn fault_no_leave_stops_silently() {
    for fault in [None, Some(Fault::NoLeave)] {
        let mut net = Net::new(Duration::from_millis(2));
        let a = net.add(fast(1));
        let b = net.add(faulty(fast(2).with_bootstrap(Some(net.addr(a))), fault));
        net.run_for(secs(3));
        net.record = true;
        net.command(b, Command::Leave);
        net.run_for(Duration::from_millis(100));
        let leaves = net
            .trace
            .iter()
            .filter(|d| d.from == net.addr(b))
            .filter(|d| {
                let s = Sent::from(*d);
                s.msg().is_request() && s.class() == Class::Leave
            })
            .count();
        if fault.is_some() {
            assert!(net.trace.iter().all(|d| d.from != net.addr(b)), "silent");
        } else {
            assert!(leaves >= 1, "LEAVE-1: a leave REGISTER to its neighbour");
        }
        assert!(net.events.iter().any(|(i, e)| *i == b && *e == Event::Left));
    }
}

// ----- RES-4, REPL-1..5 ----------------------------------------------------------------------

/// A plain SIP REGISTER of a user agent (no Require: dht).
fn ua_register(
    to: SocketAddr,
    user: &str,
    contact: Option<&str>,
    expires: u32,
    cseq: u32,
) -> Vec<u8> {
    let mut text = format!(
        "REGISTER sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKua{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@example.org>;tag=ua\r\nTo: <sip:{user}@example.org>\r\n\
Call-ID: ua-{user}\r\nCSeq: {cseq} REGISTER\r\n"
    );
    if let Some(c) = contact {
        text.push_str(&format!("Contact: <{c}>\r\nExpires: {expires}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text.into_bytes()
}

const UA: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    5060,
);

/// Runs until the UA gets a final response (at most 10 s).
fn ua_answer(net: &mut Net) -> Sent {
    for _ in 0..1000 {
        net.run_for(Duration::from_millis(10));
        let out = outside_to(net, UA);
        if let Some(r) = out.iter().find(|s| s.status().is_some_and(|c| c >= 200)) {
            return r.clone();
        }
    }
    panic!("the UA got no answer");
}

fn holders_of(net: &Net, key: &Id) -> Vec<Id> {
    net.live()
        .into_iter()
        .filter(|i| net.node(*i).stored_keys().contains(key))
        .map(|i| net.node(i).me().id)
        .collect()
}

#[test]
fn res_4_and_repl_1_a_plain_register_is_stored_at_the_primary_and_replicas() {
    let mut net = converged(8);
    let x = net.addr(3);
    net.inject(
        UA,
        x,
        Transport::Udp,
        ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 60, 1),
    );
    let r = ua_answer(&mut net);
    assert_eq!(r.status(), Some(200));
    assert_eq!(contact_uris(&r), vec!["sip:alice@192.0.2.1"]);
    // The primary copy is stored when the UA gets its 200.
    let u = aor("alice");
    let ring = ring(&net);
    assert_eq!(
        holders_of(&net, &resource_id(&u)),
        vec![ring.responsible(&resource_id(&u)).unwrap()]
    );
    net.run_for(Duration::from_millis(100));
    for n in 1..=2 {
        let k = replica_id(&u, n);
        assert_eq!(
            holders_of(&net, &k),
            vec![ring.responsible(&k).unwrap()],
            "replica {n}"
        );
    }
}

#[test]
fn fault_replica_successor_puts_replicas_on_own_successors() {
    for fault in [None, Some(Fault::ReplicaSuccessor)] {
        let mut net = Net::new(Duration::from_millis(2));
        let a = net.add(faulty(fast(1), fault));
        for i in 2..=8 {
            net.run_for(Duration::from_millis(50));
            net.add(fast(i).with_bootstrap(Some(net.addr(a))));
        }
        net.run_for(secs(8));
        let x = net.addr(a);
        net.inject(
            UA,
            x,
            Transport::Udp,
            ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 60, 1),
        );
        assert_eq!(ua_answer(&mut net).status(), Some(200));
        net.run_for(Duration::from_millis(100));
        let u = aor("alice");
        let succs = net.node(a).successors();
        let ring = ring(&net);
        for n in 1..=2u32 {
            let k = replica_id(&u, n);
            let hashed = ring.responsible(&k).unwrap();
            let own = succs[n as usize - 1].id;
            // The two placements differ, so the test tells them apart.
            assert_ne!(hashed, own, "replica {n}");
            let expected = if fault.is_some() { own } else { hashed };
            assert_eq!(
                holders_of(&net, &k),
                vec![expected],
                "replica {n} {fault:?}"
            );
        }
    }
}

#[test]
fn repl_2_removal_reaches_every_copy() {
    let mut net = converged(6);
    let x = net.addr(1);
    net.inject(
        UA,
        x,
        Transport::Udp,
        ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 60, 1),
    );
    ua_answer(&mut net);
    net.run_for(Duration::from_millis(100));
    net.inject(
        UA,
        x,
        Transport::Udp,
        ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 0, 2),
    );
    assert!(contact_uris(&ua_answer(&mut net)).is_empty());
    net.run_for(Duration::from_millis(100));
    let u = aor("alice");
    for k in [resource_id(&u), replica_id(&u, 1), replica_id(&u, 2)] {
        assert!(holders_of(&net, &k).is_empty());
    }
    // And refreshes do not bring it back.
    net.run_for(secs(3));
    assert!(holders_of(&net, &resource_id(&u)).is_empty());
}

#[test]
fn repl_2_refreshes_do_not_extend_a_registration() {
    // The adapter re-places copies every refresh interval with the
    // remaining lifetime; rounding must never add to it, so a binding the
    // UA does not refresh lapses on time everywhere.
    let mut net = converged(6);
    let x = net.addr(2);
    net.inject(
        UA,
        x,
        Transport::Udp,
        ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 5, 1),
    );
    assert_eq!(ua_answer(&mut net).status(), Some(200));
    let u = aor("alice");
    net.run_for(secs(2));
    assert!(!holders_of(&net, &resource_id(&u)).is_empty());
    net.run_for(Duration::from_millis(3500));
    for k in [resource_id(&u), replica_id(&u, 1), replica_id(&u, 2)] {
        assert!(
            holders_of(&net, &k).is_empty(),
            "still held after its lifetime"
        );
    }
}

#[test]
fn repl_4_a_lookup_for_a_ua_answers_with_the_majority() {
    let mut net = converged(8);
    let x = net.addr(2);
    net.inject(
        UA,
        x,
        Transport::Udp,
        ua_register(x, "alice", Some("sip:alice@192.0.2.1"), 60, 1),
    );
    ua_answer(&mut net);
    net.run_for(Duration::from_millis(100));
    // One replica holder is given a different binding.
    let u = aor("alice");
    let k2 = replica_id(&u, 2);
    let h2 = net.addr(index_of(&net, &ring(&net).responsible(&k2).unwrap()));
    let mut p = Puppet::at(addr(99));
    let bytes = p.register(
        h2,
        &u,
        Some(2),
        &[contact("sip:mallory@192.0.2.66", None)],
        60,
    );
    net.inject(p.addr(), h2, Transport::Udp, bytes);
    net.run_for(Duration::from_millis(10));
    net.inject(UA, x, Transport::Udp, ua_register(x, "alice", None, 0, 2));
    let r = ua_answer(&mut net);
    assert_eq!(r.status(), Some(200));
    assert_eq!(contact_uris(&r), vec!["sip:alice@192.0.2.1"]);
}

#[test]
fn repl_5_a_copy_reappears_at_the_new_holder_after_a_failure() {
    let mut net = converged(8);
    let x = 0;
    let xa = net.addr(x);
    // An AOR whose replica-1 holder is neither the adapter nor another holder.
    let r = ring(&net);
    let (u, h1) = (0..200)
        .map(|n| aor(&format!("user{n}")))
        .find_map(|u| {
            let hs: Vec<Id> = [resource_id(&u), replica_id(&u, 1), replica_id(&u, 2)]
                .iter()
                .map(|k| r.responsible(k).unwrap())
                .collect();
            let h1 = hs[1];
            (h1 != net.node(x).me().id && h1 != hs[0] && h1 != hs[2]).then_some((u, h1))
        })
        .unwrap();
    let user = u.user.as_deref().unwrap().to_owned();
    net.inject(
        UA,
        xa,
        Transport::Udp,
        ua_register(xa, &user, Some("sip:u@192.0.2.1"), 60, 1),
    );
    ua_answer(&mut net);
    net.run_for(Duration::from_millis(100));
    let k1 = replica_id(&u, 1);
    assert_eq!(holders_of(&net, &k1), vec![h1]);
    net.kill(index_of(&net, &h1));
    // C-R3: within refresh + T + F.
    net.run_for(Duration::from_millis(1000 + 1000 + 6400));
    let new_holder = ring(&net).responsible(&k1).unwrap();
    assert!(holders_of(&net, &k1).contains(&new_holder));
}

// ----- NAT-5 -------------------------------------------------------------------------------

/// The longest silence from node `i` towards each of its neighbours.
fn longest_silences(net: &Net, i: usize, from: Time) -> Vec<(Peer, Duration)> {
    let n = net.node(i);
    let mut neighbours: Vec<Peer> = n.successors();
    neighbours.extend(n.predecessor());
    neighbours.extend(n.fingers().into_iter().map(|(_, p)| p));
    neighbours.sort();
    neighbours.dedup();
    neighbours
        .into_iter()
        .map(|p| {
            let mut last = from;
            let mut worst = Duration::ZERO;
            for d in net
                .trace
                .iter()
                .filter(|d| d.from == n.me().addr && d.to == p.addr)
            {
                worst = worst.max(d.at.saturating_since(last));
                last = d.at;
            }
            worst = worst.max(net.now().saturating_since(last));
            (p, worst)
        })
        .collect()
}

#[test]
fn nat_5_every_neighbour_hears_from_the_node_each_keepalive_interval() {
    let mut net = converged(6);
    net.record = true;
    let start = net.now();
    net.run_for(secs(10));
    // K = 1 s: pinged after K/2 of silence at ticks K/4 apart, so no gap
    // exceeds 3K/4, a quarter of K short of the bound (a late timer on a
    // loaded host must not let a mapping lapse).
    for i in net.live() {
        for (p, gap) in longest_silences(&net, i, start) {
            assert!(
                gap <= Duration::from_millis(750),
                "{} -> {p}: {gap:?}",
                net.node(i).me()
            );
        }
    }
}

/// Runs `node` against scripted peers that answer every request with 200
/// and their `links`, and never send anything on their own. Returns what
/// the node sent, with the time.
fn with_answering_puppets(
    node: &mut Node,
    mut now: Time,
    until: Time,
    puppets: &[(Puppet, Vec<Link>)],
    first: Vec<Sent>,
) -> Vec<(Time, Sent)> {
    let mut log = Vec::new();
    let mut pending: Vec<Sent> = first;
    while now < until {
        while let Some(s) = pending.pop() {
            log.push((now, s.clone()));
            if !s.msg().is_request() {
                continue;
            }
            if let Some((p, links)) = puppets.iter().find(|(p, _)| p.addr() == s.to) {
                let bytes = p.answer(&s.msg(), 200, node.config().local, links);
                pending.extend(feed(node, now, p.addr(), &bytes));
            }
        }
        now = node
            .poll_timeout()
            .unwrap_or(until)
            .max(now + Duration::from_millis(1));
        pending.extend(sent(node.handle(Input::Timeout, now)));
    }
    log
}

#[test]
fn fault_no_keepalive_leaves_a_neighbour_silent() {
    for fault in [false, true] {
        // Fingers are fixed rarely here: only keep-alives go to S2 often.
        let mut cfg = if fault {
            fast(40).with_fault(Fault::NoKeepalive)
        } else {
            fast(40)
        };
        cfg.fix_fingers = secs(60);
        let (mut n, b, x, y, out) = admitted(cfg);
        let me = n.me();
        let puppets = vec![
            (
                b,
                vec![link(LinkKind::P, 1, me), link(LinkKind::S, 1, y.peer())],
            ),
            (x, vec![link(LinkKind::S, 1, me)]),
            (y, vec![]),
        ];
        let log = with_answering_puppets(&mut n, ms(6), ms(10_000), &puppets, out);
        let to_y: Vec<Time> = log
            .iter()
            .filter(|(_, s)| s.to == addr(33))
            .map(|(t, _)| *t)
            .collect();
        let mut gaps: Vec<Duration> = to_y
            .windows(2)
            .map(|w| w[1].saturating_since(w[0]))
            .collect();
        gaps.push(ms(10_000).saturating_since(*to_y.last().unwrap()));
        let worst = gaps.into_iter().max().unwrap();
        if fault {
            assert!(worst > secs(5), "{worst:?}");
        } else {
            assert!(worst <= Duration::from_millis(1100), "{worst:?}");
        }
    }
}

// ----- memory ----------------------------------------------------------------------------------

#[test]
fn an_idle_node_is_small() {
    let net = converged(32);
    let per_node: Vec<usize> = net.live().iter().map(|i| net.node(*i).memory()).collect();
    let max = *per_node.iter().max().unwrap();
    assert!(
        max < 20_000,
        "approximate bytes per idle node: {per_node:?}"
    );
}

#[test]
fn types_are_send_and_reasonably_sized() {
    fn is_send<T: Send>() {}
    is_send::<Node>();
    is_send::<Output>();
    assert!(
        std::mem::size_of::<Output>() <= 128,
        "{}",
        std::mem::size_of::<Output>()
    );
}

// ----- NAT-7 -------------------------------------------------------------------------------------

#[test]
fn nat_7_stun_binding_request_gets_xor_mapped_address() {
    use p2psip_stun as stun;
    let mut a = first();
    let tid = stun::TransactionId::from([7u8; 12]);
    let req = stun::Message::binding_request(tid)
        .with_fingerprint()
        .encode()
        .unwrap();
    let from: SocketAddr = "192.0.2.44:31000".parse().unwrap();
    let out = sent(a.handle(
        Input::Receive {
            from,
            transport: Transport::Udp,
            bytes: &req,
        },
        ms(1),
    ));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, from);
    let resp = stun::decode(&out[0].bytes).unwrap();
    assert_eq!(resp.class, stun::Class::SuccessResponse);
    assert_eq!(resp.transaction_id, tid);
    assert_eq!(resp.xor_mapped_address(), Some(from));
}

#[test]
fn join_10_falls_back_to_stun_when_options_shows_no_address() {
    use p2psip_stun as stun;
    let (mut n, b, options) = scripted_joiner(fast(40));
    // A bootstrap that does not fill in received/rport.
    let mut r = build::response(&options.msg(), 200, "OK", addr(40), "t");
    if let Some(v) = r.top_via_mut() {
        v.received = None;
        v.rport = Rport::Requested;
    }
    r.make_p2p(&b.me);
    let out = feed(&mut n, ms(5), b.addr(), &print(&r));
    assert_eq!(out.len(), 1);
    let req = stun::decode(&out[0].bytes).expect("a STUN Binding request");
    let seen: SocketAddr = "192.0.2.9:7000".parse().unwrap();
    let resp = stun::Message::success_response(&req)
        .with(stun::Attribute::XorMappedAddress(seen))
        .encode()
        .unwrap();
    let out = feed(&mut n, ms(6), b.addr(), &resp);
    assert_eq!(joins(&out)[0].msg().sender_peer(), Some(Peer::at(seen)));
}

// ----- QUERY-8, C-Q1, C-Q2: lookups on a converged ring ---------------------------------------

/// Follows 302s from `start` for `key`; returns the final responder and
/// the number of redirects.
fn lookup_path(net: &mut Net, p: &mut Puppet, start: SocketAddr, key: Id) -> (Peer, usize) {
    let mut at = start;
    let mut seen = vec![start];
    for hops in 0..64 {
        let bytes = p.query(at, QueryKey::Key(key));
        net.inject(p.addr(), at, Transport::Udp, bytes);
        net.run_for(Duration::from_millis(10));
        let out = outside_to(net, p.addr());
        let r = response(&out);
        match r.status() {
            Some(302) => {
                let next = r
                    .msg()
                    .contact_addrs()
                    .next()
                    .unwrap()
                    .addr
                    .uri
                    .socket_addr()
                    .unwrap();
                assert!(!seen.contains(&next), "C-Q2: a repeated Contact is a loop");
                seen.push(next);
                at = next;
            }
            Some(200 | 404) => return (r.msg().sender_peer().unwrap(), hops),
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("no end to the redirects");
}

#[test]
fn query_8_lookups_find_the_responsible_peer_in_few_hops() {
    let mut net = converged(32);
    let r = ring(&net);
    let mut p = Puppet::at(addr(250));
    let mut hops = Vec::new();
    for i in net.live() {
        let start = net.addr(i);
        for k in 0..8u8 {
            let key = Id::hash(&[i as u8, k]);
            let (end, h) = lookup_path(&mut net, &mut p, start, key);
            assert_eq!(Some(end.id), r.responsible(&key), "C-Q1");
            hops.push(h);
        }
    }
    let n = hops.len() as f64;
    let mean = hops.iter().sum::<usize>() as f64 / n;
    let max = *hops.iter().max().unwrap();
    // C-Q2 for |L| = 32: mean <= log2/2 + 1.5 = 4, max <= 2*5 + 8.
    assert!(mean <= 4.0, "mean hops {mean}");
    assert!(max <= 6, "max hops {max} (QUERY-8: ceil(log2 N) + 1)");
}

#[test]
fn stab_5_the_ring_heals_after_failures_and_joins() {
    let mut net = converged(24);
    // Never kill consecutive peers (CHECKS failure-injection rules).
    let r = ring(&net);
    let victims: Vec<Id> = r.ids().iter().step_by(5).take(4).copied().collect();
    for v in &victims {
        let i = index_of(&net, v);
        net.kill(i);
    }
    for i in 30..33 {
        net.add(fast(i).with_bootstrap(Some(net.addr(1))));
    }
    // Failover (T + F) and then (log2 N + 3) intervals.
    net.run_for(secs(8 + 8));
    assert_eq!(not_ideal(&net), Vec::<String>::new());
}
