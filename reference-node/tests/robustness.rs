//! Bad input never panics the core (DESIGN: "bad input gets a typed error,
//! never a panic"): random bytes, and valid messages of every class with
//! random mutations, fed to a member, a joiner, over UDP and TCP, with time
//! passing in between.

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_node::{Command, Config, Input, Node, Output, Time};
use p2psip_wire::build::{self, Identity, Link, QueryKey, Txn};
use p2psip_wire::{LinkKind, LinkType, ParseOptions, Peer, Transport, parse, print};
use proptest::prelude::*;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 1, i], 5060))
}

/// Valid messages of every kind the node reads.
fn templates() -> Vec<Vec<u8>> {
    let me = Identity::new(Peer::at(addr(9)), "chat");
    let node = addr(1);
    let t = |n: u32| Txn::udp(&format!("z9hG4bKr{n}"), "call", "tag", n, addr(9));
    let links = [
        Link {
            link: LinkType {
                kind: LinkKind::P,
                depth: 1,
            },
            peer: Peer::at(addr(7)),
            expires: 30,
        },
        Link {
            link: LinkType {
                kind: LinkKind::S,
                depth: 1,
            },
            peer: Peer::at(addr(1)),
            expires: 30,
        },
        Link {
            link: LinkType {
                kind: LinkKind::F,
                depth: 150,
            },
            peer: Peer::at(addr(8)),
            expires: 30,
        },
    ];
    let aor_msg = parse(
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\nMax-Forwards: 1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:alice@example.org>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
Contact: <sip:alice@192.0.2.1>\r\nContent-Length: 0\r\n\r\n",
        ParseOptions::lenient(),
    )
    .unwrap()
    .message;
    let aor = aor_msg.to().unwrap().addr.uri.clone();
    let contacts: Vec<_> = aor_msg.contact_addrs().cloned().collect();
    let join = build::join(&me, node, &t(1), 30);
    let mut out = vec![
        print(&join),
        print(&build::query(&me, node, &t(2), QueryKey::Key(Peer::at(addr(3)).id))),
        print(&build::notify(&me, node, &t(3), 30, &links)),
        print(&build::leave(&me, node, &t(4), &links)),
        print(&build::resource_register(&me, node, &t(5), &aor, Some(1), &contacts, 60)),
        print(&build::lookup(&me, node, &t(6), &aor, None)),
        print(&build::transfer(&me, node, &t(7), &aor, None, &contacts, 60)),
        print(&build::options(Some(&me), node, &t(8), build::peer_uri(&me.peer))),
        b"REGISTER sip:127.0.1.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKua;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: ua\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:bob@192.0.2.1>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    ];
    let mut ok = build::response(&join, 200, "OK", addr(9), "x");
    ok.make_p2p(&me);
    ok.push_links(&links);
    out.push(print(&ok));
    let mut moved = build::response(&join, 302, "Moved Temporarily", addr(9), "x");
    moved.make_p2p(&me);
    moved.push_contact(build::peer_uri(&Peer::at(addr(4))), None);
    out.push(print(&moved));
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    DupLine(usize),
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(at, x) => {
                let i = at % b.len();
                b[i] ^= x;
            }
            Mutation::Cut(at) => b.truncate(at % (b.len() + 1)),
            Mutation::Insert(at, bytes) => {
                let i = at % (b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::DupLine(at) => {
                let i = at % b.len();
                let start = b[..i]
                    .iter()
                    .rposition(|c| *c == b'\n')
                    .map_or(0, |p| p + 1);
                let end = b[i..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
                let line = b[start..end].to_vec();
                b.splice(end..end, line);
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(a, x)| Mutation::Flip(a, x)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(a, v)| Mutation::Insert(a, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b";".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"%".to_vec()),
                Just(b"<".to_vec())
            ]
        )
            .prop_map(|(a, v)| Mutation::Insert(a, v)),
        any::<usize>().prop_map(Mutation::DupLine),
    ]
}

/// A member (the first peer) and a joiner (with an unreachable bootstrap).
fn nodes() -> Vec<Node> {
    vec![
        Node::new(Config::fast(addr(1)), Time::ZERO).unwrap(),
        Node::new(
            Config::fast(addr(2)).with_bootstrap(Some(addr(1))),
            Time::ZERO,
        )
        .unwrap(),
    ]
}

fn drain(n: &mut Node) -> usize {
    let mut count = 0;
    while let Some(o) = n.poll_output() {
        if let Output::Transmit(t) = o {
            assert!(!t.bytes.is_empty());
            count += 1;
        }
    }
    count
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(inputs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..600), any::<bool>(), 0u64..3000), 1..8)) {
        for mut n in nodes() {
            let mut now = 0;
            for (bytes, tcp, dt) in &inputs {
                now += dt;
                let transport = if *tcp { Transport::Tcp } else { Transport::Udp };
                n.handle_input(Time::from_millis(now), Input::Receive { from: addr(9), transport, bytes });
                drain(&mut n);
                n.handle_input(Time::from_millis(now), Input::TooLarge { from: addr(9), transport, head: bytes });
                drain(&mut n);
                n.handle_input(Time::from_millis(now), Input::Timeout);
                drain(&mut n);
            }
        }
    }

    #[test]
    fn mutated_messages_never_panic(picks in proptest::collection::vec((any::<proptest::sample::Index>(), proptest::collection::vec(mutation(), 0..4), any::<bool>(), 0u64..2000), 1..10)) {
        let templates = templates();
        for mut n in nodes() {
            let mut now = 0;
            for (which, muts, tcp, dt) in &picks {
                now += dt;
                let bytes = apply(which.get(&templates).clone(), muts);
                let transport = if *tcp { Transport::Tcp } else { Transport::Udp };
                n.handle_input(Time::from_millis(now), Input::Receive { from: addr(9), transport, bytes: &bytes });
                drain(&mut n);
                n.handle_input(Time::from_millis(now), Input::Timeout);
                drain(&mut n);
            }
            n.handle_input(Time::from_millis(now), Input::Command(Command::Leave));
            drain(&mut n);
        }
    }

    #[test]
    fn commands_with_odd_arguments_never_panic(aor in ".{0,40}", contact in ".{0,40}", expires in any::<u32>()) {
        for mut n in nodes() {
            n.handle_input(Time::ZERO, Input::Command(Command::Register { aor: aor.clone(), contact: contact.clone(), expires }));
            n.handle_input(Time::ZERO, Input::Command(Command::Lookup { aor: aor.clone() }));
            drain(&mut n);
            n.handle_input(Time::from_millis(10_000), Input::Timeout);
            drain(&mut n);
        }
    }
}

/// Answers to the node's own requests (so the branch matches), of a
/// chosen code, mutated: exercises every response path.
fn answer(req: &[u8], code: u16, muts: &[Mutation]) -> Option<Vec<u8>> {
    let req = parse(req, ParseOptions::lenient()).ok()?.message;
    if !req.is_request() {
        return None;
    }
    let peer = Identity::new(Peer::at(addr(30)), "chat");
    let mut r = build::response(&req, code, "X", addr(2), "t");
    r.make_p2p(&peer);
    r.push_links(&[
        Link {
            link: LinkType {
                kind: LinkKind::P,
                depth: 1,
            },
            peer: Peer::at(addr(31)),
            expires: 30,
        },
        Link {
            link: LinkType {
                kind: LinkKind::S,
                depth: 1,
            },
            peer: Peer::at(addr(32)),
            expires: 30,
        },
    ]);
    if code == 302 {
        r.push_contact(build::peer_uri(&Peer::at(addr(33))), None);
    }
    Some(apply(print(&r), muts))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mutated_answers_to_own_requests_never_panic(rounds in proptest::collection::vec((prop_oneof![Just(200u16), Just(302), Just(404), Just(493), Just(500)], proptest::collection::vec(mutation(), 0..3), 0u64..3000), 1..12)) {
        let mut n = Node::new(Config::fast(addr(2)).with_bootstrap(Some(addr(30))), Time::ZERO).unwrap();
        let mut now = 0;
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for (code, muts, dt) in &rounds {
            while let Some(o) = n.poll_output() {
                if let Output::Transmit(t) = o {
                    pending.push(t.bytes);
                }
            }
            for req in pending.drain(..) {
                if let Some(bytes) = answer(&req, *code, muts) {
                    n.handle_input(Time::from_millis(now), Input::Receive { from: addr(30), transport: Transport::Udp, bytes: &bytes });
                }
            }
            now += dt;
            n.handle_input(Time::from_millis(now), Input::Timeout);
        }
        n.handle_input(Time::from_millis(now), Input::Command(Command::Leave));
        drain(&mut n);
    }
}

#[test]
fn every_template_is_answered() {
    // The templates are valid: the member answers each request.
    for (i, t) in templates().iter().enumerate() {
        let mut n = Node::new(Config::fast(addr(1)), Time::ZERO).unwrap();
        drain(&mut n);
        let is_request = !t.starts_with(b"SIP/2.0");
        n.handle_input(
            Time::from_millis(1),
            Input::Receive {
                from: addr(9),
                transport: Transport::Udp,
                bytes: t,
            },
        );
        let sent = drain(&mut n);
        if is_request {
            assert!(sent >= 1, "template {i} got no answer");
        }
        let _ = Duration::ZERO;
    }
}
