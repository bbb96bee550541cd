//! The printer and the parser agree: every message the builders can make
//! prints to text that parses back equal, passes the strict checker, and
//! reads the same in rsip, an independent parser (on the subset rsip
//! handles: it rejects IPv6 hosts).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use p2psip_wire::build::{self, Identity, Link, QueryKey, Txn};
use p2psip_wire::{
    Class, ContactAddr, Id, LinkKind, LinkType, Message, NameAddr, ParseOptions, Peer, Transport,
    parse, print,
};
use proptest::prelude::*;
use rsip::headers::UntypedHeader;
use rsip::message::{HasHeaders, HeadersExt};

fn ip(v6: bool, seed: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (seed >> 16) as u16,
            seed as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | (seed & 0x00ff_ffff)))
    }
}

fn arb_addr(v6: bool) -> impl Strategy<Value = SocketAddr> {
    (any::<u32>(), any::<u16>()).prop_map(move |(s, p)| SocketAddr::new(ip(v6, s), p))
}

fn arb_id() -> impl Strategy<Value = Id> {
    any::<[u8; 20]>().prop_map(Id)
}

fn arb_txn(v6: bool) -> impl Strategy<Value = Txn> {
    (
        "[a-zA-Z0-9.~_-]{1,24}",
        "[a-zA-Z0-9]{1,16}(@[a-z0-9.]{1,12})?",
        "[a-zA-Z0-9]{1,12}",
        any::<u32>(),
        any::<bool>(),
        arb_addr(v6),
    )
        .prop_map(|(b, c, t, seq, tcp, via)| {
            let txn = Txn::udp(&format!("z9hG4bK{b}"), &c, &t, seq, via);
            if tcp { txn.over(Transport::Tcp) } else { txn }
        })
}

fn arb_links(v6: bool) -> impl Strategy<Value = Vec<Link>> {
    prop::collection::vec((0..3u8, 0..160u8, arb_addr(v6), 1..u32::MAX), 0..16).prop_map(|v| {
        v.into_iter()
            .map(|(k, d, a, e)| Link {
                link: LinkType {
                    kind: [LinkKind::P, LinkKind::S, LinkKind::F][k as usize],
                    depth: d,
                },
                peer: Peer::at(a),
                expires: e,
            })
            .collect()
    })
}

fn aor(user: &str, host: &str, port: Option<u16>) -> p2psip_wire::Uri<'static> {
    let text = match port {
        Some(p) => format!("sip:{user}@{host}:{p}"),
        None => format!("sip:{user}@{host}"),
    };
    p2psip_wire::parse_uri(&text).unwrap().into_owned()
}

fn contact(addr: SocketAddr, expires: Option<u32>) -> ContactAddr<'static> {
    ContactAddr {
        addr: NameAddr {
            display: None,
            uri: build::addr_uri(addr),
        },
        expires,
        q: None,
        other: p2psip_wire::Text::EMPTY,
    }
}

/// Every kind of message the builders make, from random ingredients.
fn arb_message(v6: bool) -> impl Strategy<Value = (Message<'static>, Class)> {
    (
        arb_addr(v6),
        arb_addr(v6),
        arb_txn(v6),
        arb_links(v6),
        arb_id(),
        0..11u8,
        1..u32::MAX,
        "[a-z][a-z0-9]{0,11}",
        prop::collection::vec((arb_addr(v6), prop::option::of(0..100_000u32)), 0..4),
        prop::option::of(1..5u32),
    )
        .prop_map(
            move |(me, target, txn, links, key, which, exp, user, contacts, replica)| {
                let me = Identity::new(Peer::at(me), "chat").with_expires(exp);
                let aor = aor(&user, "example.org", None);
                let contacts: Vec<_> = contacts.into_iter().map(|(a, e)| contact(a, e)).collect();
                match which {
                    0 => (build::join(&me, target, &txn, exp), Class::Join),
                    1 => (
                        build::notify(&me, target, &txn, exp, &links),
                        if links.is_empty() {
                            Class::Join
                        } else {
                            Class::Notify
                        },
                    ),
                    2 => (build::leave(&me, target, &txn, &links), Class::Leave),
                    3 => (
                        build::query(&me, target, &txn, QueryKey::Key(key)),
                        Class::Query,
                    ),
                    4 => (
                        build::query(&me, target, &txn, QueryKey::Peer(Peer::at(target))),
                        Class::Query,
                    ),
                    5 => (
                        build::resource_register(&me, target, &txn, &aor, replica, &contacts, exp),
                        Class::ResourceRegister,
                    ),
                    6 => (
                        build::lookup(&me, target, &txn, &aor, replica),
                        Class::Lookup,
                    ),
                    7 => (
                        build::transfer(&me, target, &txn, &aor, replica, &contacts, exp),
                        Class::Transfer,
                    ),
                    8 => (
                        build::options(Some(&me), target, &txn, build::peer_uri(&me.peer)),
                        Class::Plain,
                    ),
                    9 => {
                        let req = build::query(&me, target, &txn, QueryKey::Key(key));
                        let mut resp =
                            build::response(&req, 302, "Moved Temporarily", me.peer.addr, "rt");
                        resp.make_p2p(&Identity::new(Peer::at(target), "chat"));
                        resp.push_contact(build::peer_uri(&Peer::at(me.peer.addr)), None);
                        resp.push_links(&links);
                        (resp, Class::Query)
                    }
                    _ => {
                        let req = build::join(&me, target, &txn, exp);
                        let mut resp = build::response(&req, 200, "OK", me.peer.addr, "rt");
                        resp.push_contact(build::peer_uri(&me.peer), Some(exp));
                        resp.make_p2p(&Identity::new(Peer::at(target), "chat"));
                        resp.push_links(&links);
                        (resp, Class::Join)
                    }
                }
            },
        )
}

fn check_roundtrip(m: &Message<'static>, class: Class) {
    let bytes = print(m);
    let strict = parse(&bytes, ParseOptions::strict()).unwrap_or_else(|e| {
        panic!(
            "strict parse of built message failed: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        &strict.message,
        m,
        "parse(print(m)) != m\n{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(strict.warnings.is_empty(), "{:?}", strict.warnings);
    assert_eq!(strict.len, bytes.len());
    assert_eq!(Class::of(&strict.message), class);
    // Printing is a fixed point.
    assert_eq!(print(&strict.message), bytes);
}

fn check_rsip(m: &Message<'static>) {
    let bytes = print(m);
    let theirs = rsip::SipMessage::try_from(bytes.as_slice()).unwrap_or_else(|e| {
        panic!(
            "rsip refused our output: {e:?}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    match (&m.start, &theirs) {
        (p2psip_wire::StartLine::Request { method, .. }, rsip::SipMessage::Request(r)) => {
            assert_eq!(method.as_str(), r.method().to_string());
        }
        (p2psip_wire::StartLine::Response { code, .. }, rsip::SipMessage::Response(r)) => {
            assert_eq!(*code, Into::<u16>::into(r.status_code().clone()));
        }
        _ => panic!("rsip sees another kind of message"),
    }
    assert_eq!(
        theirs.call_id_header().unwrap().value(),
        m.call_id().unwrap()
    );
    let cseq = theirs.cseq_header().unwrap().value().to_owned();
    let ours = m.cseq().unwrap();
    assert_eq!(cseq, format!("{} {}", ours.seq, ours.method.as_str()));
    assert_eq!(theirs.headers().iter().count(), m.headers.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn builders_roundtrip_ipv4((m, class) in arb_message(false)) {
        check_roundtrip(&m, class);
        check_rsip(&m);
    }

    #[test]
    fn builders_roundtrip_ipv6((m, class) in arb_message(true)) {
        check_roundtrip(&m, class);
    }
}

#[test]
fn every_builder_kind_is_covered_once() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..500 {
        let (m, class) = arb_message(false).new_tree(&mut runner).unwrap().current();
        check_roundtrip(&m, class);
        seen.insert(class);
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
}
