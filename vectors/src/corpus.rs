/*!
The message corpus: realistic P2P-SIP messages in three groups.

- `valid`: every sender rule holds; strict and lenient both accept.
- `lenient`: a deviation a robust receiver tolerates (WIRE-6 SHOULD part
  and the other tolerated deviations); strict refuses, lenient warns.
- `invalid`: both modes refuse.
- `legacy`: the sipping-02 syntax, read with `--profile sipping-02`.

The valid messages are made by the builders, so their IDs follow ID-2 from
their addresses; the others are edits of valid ones, each changing one
thing.
*/

use std::net::SocketAddr;

use p2psip_wire::build::{self, Identity, Link, QueryKey, Txn};
use p2psip_wire::{ContactAddr, LinkKind, LinkType, Message, NameAddr, Peer, Transport, print};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Valid,
    Lenient,
    Invalid,
    Legacy,
}

impl Group {
    pub fn dir(self) -> &'static str {
        match self {
            Group::Valid => "valid",
            Group::Lenient => "lenient",
            Group::Invalid => "invalid",
            Group::Legacy => "legacy",
        }
    }
}

pub struct Sample {
    pub name: &'static str,
    pub group: Group,
    /// What the sample shows, for the index.
    pub about: &'static str,
    pub bytes: Vec<u8>,
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

fn peer(last: u8) -> Peer {
    Peer::at(addr(last, 5060))
}

fn me(last: u8) -> Identity {
    Identity::new(peer(last), "chat").with_expires(3600)
}

fn txn(n: u32, from: &Identity) -> Txn {
    Txn::udp(
        &format!("z9hG4bK-v{n}"),
        &format!("call-{n}@{}", from.peer.addr.ip()),
        &format!("ft{n}"),
        n,
        from.peer.addr,
    )
}

fn link(kind: LinkKind, depth: u8, p: Peer) -> Link {
    Link {
        link: LinkType { kind, depth },
        peer: p,
        expires: 3600,
    }
}

/// The responder's links: P1, S1..S4 and ten distinct fingers.
fn full_links() -> Vec<Link> {
    let mut l = vec![link(LinkKind::P, 1, peer(9))];
    for (i, last) in [12u8, 13, 14, 15].iter().enumerate() {
        l.push(link(LinkKind::S, i as u8 + 1, peer(*last)));
    }
    for (i, last) in [12u8, 13, 14, 15, 20, 21, 22, 23, 24, 25]
        .iter()
        .enumerate()
    {
        l.push(link(LinkKind::F, 150 + i as u8, peer(*last)));
    }
    l
}

fn short_links() -> Vec<Link> {
    vec![
        link(LinkKind::P, 1, peer(9)),
        link(LinkKind::S, 1, peer(12)),
        link(LinkKind::S, 2, peer(13)),
    ]
}

fn contact(uri: &str, expires: Option<u32>) -> ContactAddr<'static> {
    ContactAddr {
        addr: NameAddr {
            display: None,
            uri: p2psip_wire::parse_uri(uri)
                .expect("corpus URIs parse")
                .into_owned(),
        },
        expires,
        q: None,
        other: p2psip_wire::Text::EMPTY,
    }
}

fn aor() -> p2psip_wire::Uri<'static> {
    p2psip_wire::parse_uri("sip:alice@example.org")
        .expect("valid")
        .into_owned()
}

fn text(m: &Message<'_>) -> String {
    String::from_utf8(print(m)).expect("builders print UTF-8")
}

fn respond(
    req: &Message<'_>,
    code: u16,
    from_addr: SocketAddr,
    responder: &Identity,
) -> Message<'static> {
    let mut r = build::response(req, code, build::reason_phrase(code), from_addr, "rt1");
    r.make_p2p(responder);
    r
}

/// The valid messages, as text (every edit below starts from one of them).
fn valid() -> Vec<(&'static str, &'static str, String)> {
    let joiner = me(10);
    let boot = me(1);
    let admit = me(10 + 1);
    let join = build::join(&joiner, boot.peer.addr, &txn(1, &joiner), 600);

    let mut join_302 = respond(&join, 302, joiner.peer.addr, &boot);
    join_302.push_contact(build::peer_uri(&admit.peer), None);
    join_302.push_links(&short_links());

    let mut join_200 = respond(&join, 200, joiner.peer.addr, &admit);
    join_200.push_contact(build::peer_uri(&joiner.peer), Some(600));
    join_200.push_links(&full_links());

    let q = build::query(
        &joiner,
        boot.peer.addr,
        &txn(2, &joiner),
        QueryKey::Key(p2psip_wire::Id::hash(b"some key")),
    );
    let stab = build::query(
        &joiner,
        admit.peer.addr,
        &txn(3, &joiner),
        QueryKey::Peer(admit.peer),
    );
    let mut q302 = respond(&q, 302, joiner.peer.addr, &boot);
    q302.push_contact(build::peer_uri(&peer(12)), None);
    q302.push_links(&full_links());
    let mut q404 = respond(&q, 404, joiner.peer.addr, &admit);
    q404.push_links(&full_links());
    let mut stab200 = respond(&stab, 200, joiner.peer.addr, &admit);
    stab200.push_links(&full_links());

    let notify = build::notify(
        &joiner,
        admit.peer.addr,
        &txn(4, &joiner),
        600,
        &short_links(),
    );
    let leave = build::leave(
        &joiner,
        admit.peer.addr,
        &txn(5, &joiner),
        &full_links()[..5],
    );
    let contacts = [
        contact("sip:alice@192.0.2.10:5060", Some(300)),
        contact("sip:alice@198.51.100.7:5062;transport=tcp", None),
    ];
    let reg = build::resource_register(
        &joiner,
        admit.peer.addr,
        &txn(6, &joiner),
        &aor(),
        None,
        &contacts,
        600,
    );
    let reg_replica = build::resource_register(
        &joiner,
        admit.peer.addr,
        &txn(7, &joiner),
        &aor(),
        Some(1),
        &contacts[..1],
        600,
    );
    let look = build::lookup(&joiner, admit.peer.addr, &txn(8, &joiner), &aor(), None);
    let mut look200 = respond(&look, 200, joiner.peer.addr, &admit);
    for c in &contacts {
        look200.push_contact(c.addr.uri.clone(), Some(542));
    }
    let xfer = build::transfer(
        &admit,
        joiner.peer.addr,
        &txn(9, &admit),
        &aor(),
        Some(2),
        &contacts,
        431,
    );
    let opts = build::options(
        Some(&joiner),
        boot.peer.addr,
        &txn(10, &joiner),
        build::peer_uri(&joiner.peer),
    );
    let mut opts200 = respond(&opts, 200, joiner.peer.addr, &boot);
    opts200.push_links(&short_links());
    let mut msg = build::request(
        p2psip_wire::Method::Message,
        p2psip_wire::parse_uri("sip:bob@example.org")
            .expect("valid")
            .into_owned(),
        aor(),
        p2psip_wire::parse_uri("sip:bob@example.org")
            .expect("valid")
            .into_owned(),
        &txn(11, &joiner),
    );
    msg.set_body(
        "text/plain;charset=utf-8",
        "Hello Bob, are you there? \u{263A}\r\n".as_bytes().to_vec(),
    );
    let ua_reg = {
        let mut r = build::request(
            p2psip_wire::Method::Register,
            p2psip_wire::parse_uri("sip:10.0.0.11:5060")
                .expect("valid")
                .into_owned(),
            aor(),
            aor(),
            &Txn::udp(
                "z9hG4bK-ua1",
                "ua-call-1",
                "uat1",
                1,
                "192.0.2.10:5060".parse().expect("valid"),
            ),
        );
        r.push_contact(
            p2psip_wire::parse_uri("sip:alice@192.0.2.10:5060")
                .expect("valid")
                .into_owned(),
            None,
        );
        r.push_header(p2psip_wire::Header::Expires(600));
        r
    };
    let mut bad_ext = build::response(
        &ua_reg,
        420,
        "Bad Extension",
        "192.0.2.10:5060".parse().expect("valid"),
        "x1",
    );
    bad_ext.push_header(p2psip_wire::Header::Unsupported("dht".into()));
    let mut undecipherable = respond(&join, 493, joiner.peer.addr, &admit);
    undecipherable.push_links(&short_links());

    let v6 = Identity::new(
        Peer::at("[2001:db8::10]:5060".parse().expect("valid")),
        "chat",
    );
    let join_v6 = build::join(
        &v6,
        "[2001:db8::1]:5060".parse().expect("valid"),
        &txn(12, &v6),
        600,
    );
    let tcp_join = build::join(
        &joiner,
        boot.peer.addr,
        &txn(13, &joiner).over(Transport::Tcp),
        600,
    );

    let join_200_text = text(&join_200);
    let folded = join_200_text
        .replacen("DHT-PeerID: <", "DHT-PeerID:\r\n   <", 1)
        .replacen(";algorithm=sha1", "\r\n\t;algorithm=sha1", 1)
        .replace("DHT-Link: <", "DHT-Link:\r\n <");
    let compact = text(&join)
        .replace("Via:", "v:")
        .replace("To:", "t:")
        .replace("From:", "f:")
        .replace("Call-ID:", "i:")
        .replace("Contact:", "m:")
        .replace("Supported:", "k:")
        .replace("Content-Length:", "l:");
    let spaced = text(&q302)
        .replace(";link=", " ; link = ")
        .replace("DHT-Link:", "dht-link  :")
        .replace(";tag=", " ;tag= ");

    vec![
        ("join", "JOIN-1 join REGISTER to the bootstrap", text(&join)),
        (
            "join-302",
            "JOIN-3 302 towards the admitting peer, with links",
            text(&join_302),
        ),
        (
            "join-200",
            "JOIN-4 200 with P1, S1..S4 and ten fingers",
            join_200_text,
        ),
        (
            "join-200-folded",
            "WIRE-6 the same 200 with folded header lines",
            folded,
        ),
        (
            "join-compact",
            "WIRE-6 a join with compact header names",
            compact,
        ),
        ("join-ipv6", "ID-2 a join from an IPv6 peer", text(&join_v6)),
        ("join-tcp", "WIRE-1 a join over TCP", text(&tcp_join)),
        (
            "query",
            "QUERY a query for a bare key (host 0.0.0.0)",
            text(&q),
        ),
        (
            "query-302",
            "QUERY-2 302 with one Contact and the responder's links",
            text(&q302),
        ),
        (
            "query-302-spaced",
            "WIRE-6 white space around separators",
            spaced,
        ),
        (
            "query-404",
            "QUERY-3 404 from the responsible peer",
            text(&q404),
        ),
        (
            "stabilize-query",
            "STAB-1 a query for the successor's own ID",
            text(&stab),
        ),
        (
            "stabilize-200",
            "QUERY-3 200 to a query for the responder's ID",
            text(&stab200),
        ),
        (
            "notify",
            "STAB-2 a notify carrying the sender's links",
            text(&notify),
        ),
        (
            "leave",
            "LEAVE-1 Expires 0 with P1 and S1..S4",
            text(&leave),
        ),
        (
            "resource-register",
            "RES-1 a resource registration with two Contacts",
            text(&reg),
        ),
        (
            "resource-register-replica",
            "REPL-1 a replica registration",
            text(&reg_replica),
        ),
        ("lookup", "RES-2 a lookup", text(&look)),
        (
            "lookup-200",
            "RES-2 a lookup answered with the Contacts",
            text(&look200),
        ),
        (
            "transfer",
            "JOIN-9 a third-party REGISTER handing over a replica",
            text(&xfer),
        ),
        ("options", "TXN-4 the OPTIONS probe", text(&opts)),
        (
            "options-200",
            "TXN-4 200 to OPTIONS with links",
            text(&opts200),
        ),
        ("message-body", "a MESSAGE with a body", text(&msg)),
        (
            "ua-register",
            "RES-4 a plain REGISTER from a user agent",
            text(&ua_reg),
        ),
        (
            "bad-extension-420",
            "WIRE-10 420 with Unsupported: dht",
            text(&bad_ext),
        ),
        (
            "undecipherable-493",
            "ID-7 493 to a join with a wrong Peer-ID",
            text(&undecipherable),
        ),
    ]
}

fn find<'a>(all: &'a [(&'static str, &'static str, String)], name: &str) -> &'a str {
    &all.iter()
        .find(|(n, _, _)| *n == name)
        .expect("known sample")
        .2
}

/// Replaces the first occurrence, and insists there was one (so a builder
/// change cannot silently turn an edit into a copy).
fn edit(s: &str, from: &str, to: &str) -> String {
    assert!(s.contains(from), "corpus edit lost its anchor: {from:?}");
    s.replacen(from, to, 1)
}

fn remove_line(s: &str, prefix: &str) -> String {
    let out: String = s
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with(prefix))
        .collect();
    assert_ne!(out, s, "no line starts with {prefix:?}");
    out
}

pub fn samples() -> Vec<Sample> {
    let v = valid();
    let join = find(&v, "join");
    let join_200 = find(&v, "join-200");
    let q302 = find(&v, "query-302");
    let reg = find(&v, "resource-register");
    let id10 = peer(10).id.to_string();

    let lenient: Vec<(&'static str, &'static str, String)> = vec![
        (
            "upper-hex-id",
            "ID-1 upper-case hex in a peer-ID",
            edit(join, &id10, &id10.to_uppercase()),
        ),
        (
            "dht-param-alias",
            "WIRE-6 dht-param= for dht=",
            edit(join, ";dht=Chord1.0", ";dht-param=Chord1.0"),
        ),
        (
            "legacy-dht-token",
            "WIRE-6 ChordIter1.0 in dsip-chord",
            edit(join, "dht=Chord1.0", "dht=ChordIter1.0"),
        ),
        ("bare-lf", "WIRE-6 LF line ends", join.replace("\r\n", "\n")),
        (
            "short-param-pid",
            "WIRE-3 pID for peer-ID",
            edit(join, ";peer-ID=", ";pID="),
        ),
        (
            "param-case-peerid",
            "WIRE-3 peerid for peer-ID",
            edit(join, ";peer-ID=", ";peerid="),
        ),
        (
            "peer-uri-without-port",
            "WIRE-3 a Peer URI without port",
            edit(join_200, "@10.0.0.12:5060;", "@10.0.0.12;"),
        ),
        (
            "peer-id-not-of-address",
            "ID-2 a Peer-ID that is not of its address",
            edit(join, "@10.0.0.10:5060;", "@10.0.0.10:5070;"),
        ),
        (
            "branch-without-cookie",
            "WIRE-1 a branch without z9hG4bK",
            edit(join, "branch=z9hG4bK-v1", "branch=v1"),
        ),
        (
            "from-without-tag",
            "WIRE-1 From without tag",
            edit(join, ";tag=ft1", ""),
        ),
        (
            "no-max-forwards",
            "WIRE-1 a request without Max-Forwards",
            remove_line(join, "Max-Forwards:"),
        ),
        (
            "no-content-length",
            "WIRE-1 no Content-Length (UDP)",
            remove_line(join, "Content-Length:"),
        ),
        (
            "link-without-expires",
            "WIRE-5 a DHT-Link without expires",
            edit(q302, ";link=S1;expires=3600", ";link=S1"),
        ),
        (
            "link-expires-zero",
            "WIRE-5 a DHT-Link with expires=0",
            edit(q302, ";link=S1;expires=3600", ";link=S1;expires=0"),
        ),
        (
            "no-require-dht",
            "WIRE-2 a P2P request without Require: dht",
            remove_line(join, "Require:"),
        ),
        (
            "no-supported-dht",
            "WIRE-2 a P2P response without Supported: dht",
            remove_line(join_200, "Supported:"),
        ),
        (
            "unknown-algorithm",
            "WIRE-10 algorithm=md5",
            edit(join, "algorithm=sha1", "algorithm=md5"),
        ),
    ];

    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(b"0123456789ab");
    let invalid: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
        (
            "no-call-id",
            "WIRE-1 Call-ID missing",
            remove_line(join, "Call-ID:").into_bytes(),
        ),
        (
            "no-via",
            "WIRE-1 Via missing",
            remove_line(join, "Via:").into_bytes(),
        ),
        (
            "no-cseq",
            "WIRE-1 CSeq missing",
            remove_line(join, "CSeq:").into_bytes(),
        ),
        (
            "cseq-method-mismatch",
            "WIRE-1 CSeq method differs",
            edit(join, "CSeq: 1 REGISTER", "CSeq: 1 OPTIONS").into_bytes(),
        ),
        ("two-dht-peer-ids", "WIRE-4 two DHT-PeerID headers", {
            let line = join
                .split_inclusive("\r\n")
                .find(|l| l.starts_with("DHT-PeerID:"))
                .expect("has one")
                .to_owned();
            edit(join, &line, &format!("{line}{line}")).into_bytes()
        }),
        (
            "dht-peer-id-without-overlay",
            "WIRE-4 DHT-PeerID without overlay",
            edit(join, ";overlay=chat", "").into_bytes(),
        ),
        (
            "p2p-request-without-dht-peer-id",
            "WIRE-4 Require: dht but no DHT-PeerID",
            remove_line(join, "DHT-PeerID:").into_bytes(),
        ),
        (
            "id-39-digits",
            "ID-1 a peer-ID of 39 digits",
            edit(
                join,
                &format!("peer-ID={id10}"),
                &format!("peer-ID={}", &id10[..39]),
            )
            .into_bytes(),
        ),
        (
            "id-not-hex",
            "ID-1 a peer-ID with a non-hex digit",
            edit(
                join,
                &format!("peer-ID={id10}"),
                &format!("peer-ID=x{}", &id10[1..]),
            )
            .into_bytes(),
        ),
        (
            "link-type-unknown",
            "WIRE-5 link=Q1",
            edit(q302, "link=S1", "link=Q1").into_bytes(),
        ),
        (
            "link-finger-160",
            "WIRE-5 link=F160",
            edit(q302, "link=F150", "link=F160").into_bytes(),
        ),
        (
            "link-without-type",
            "WIRE-5 a DHT-Link without link=",
            edit(q302, ";link=S1", "").into_bytes(),
        ),
        (
            "body-truncated",
            "WIRE-1 Content-Length beyond the body",
            edit(reg, "Content-Length: 0", "Content-Length: 40").into_bytes(),
        ),
        (
            "bad-start-line",
            "WIRE-7 a malformed request line",
            edit(join, " SIP/2.0\r\n", " SIP/3.0\r\n").into_bytes(),
        ),
        (
            "bad-status-code",
            "WIRE-7 a status code of two digits",
            edit(join_200, "SIP/2.0 200 OK", "SIP/2.0 20 OK").into_bytes(),
        ),
        (
            "unclosed-angle",
            "WIRE-7 an address without its closing >",
            edit(join, &format!("{id10}>;tag"), &format!("{id10};tag")).into_bytes(),
        ),
        (
            "port-out-of-range",
            "WIRE-7 a port above 65535",
            edit(
                join,
                "REGISTER sip:10.0.0.1:5060",
                "REGISTER sip:10.0.0.1:65536",
            )
            .into_bytes(),
        ),
        (
            "header-without-colon",
            "WIRE-7 a header line without a colon",
            edit(join, "Max-Forwards: 70", "Max-Forwards 70").into_bytes(),
        ),
        (
            "unterminated",
            "WIRE-7 the header section never ends",
            join.trim_end_matches("\r\n").as_bytes().to_vec(),
        ),
        (
            "stun-binding-request",
            "WIRE-7 a STUN Binding Request on the SIP port",
            stun,
        ),
        (
            "binary",
            "WIRE-7 binary noise",
            vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x10, 0x80],
        ),
        ("empty", "WIRE-7 nothing at all", Vec::new()),
    ];

    let legacy_id = p2psip_wire::id::legacy_node_id("10.0.0.10".parse().expect("valid"), 5060);
    let legacy_boot = p2psip_wire::id::legacy_node_id("10.0.0.1".parse().expect("valid"), 5060);
    let legacy_join = format!(
        "REGISTER sip:10.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK-l1;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:{legacy_id}@10.0.0.10:5060;user=node>\r\n\
From: <sip:{legacy_id}@10.0.0.10:5060;user=node>;tag=l1\r\n\
Call-ID: legacy-1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:{legacy_id}@10.0.0.10:5060;user=node>\r\n\
Expires: 600\r\n\
Require: dht\r\n\
Supported: dht\r\n\
DHT-NodeID: <sip:{legacy_id}@10.0.0.10:5060;user=node>;algorithm=sha1;dht=ChordIter1.0;overlay=chat;expires=600\r\n\
Content-Length: 0\r\n\r\n"
    );
    let legacy_200 = format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK-l1;rport=5060;received=10.0.0.10\r\n\
To: <sip:{legacy_id}@10.0.0.10:5060;user=node>;tag=b1\r\n\
From: <sip:{legacy_id}@10.0.0.10:5060;user=node>;tag=l1\r\n\
Call-ID: legacy-1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:{legacy_id}@10.0.0.10:5060;user=node>;expires=600\r\n\
Supported: dht\r\n\
DHT-NodeID: <sip:{legacy_boot}@10.0.0.1:5060;user=node>;algorithm=sha1;overlay=chat;expires=600\r\n\
DHT-Link: <sip:{legacy_boot}@10.0.0.1:5060;user=node>;link=P;expires=600\r\n\
DHT-Link: <sip:{legacy_boot}@10.0.0.1:5060;user=node>;link=S1;expires=600\r\n\
Content-Length: 0\r\n\r\n"
    );

    let mut out = Vec::new();
    for (name, about, s) in v {
        out.push(Sample {
            name,
            group: Group::Valid,
            about,
            bytes: s.into_bytes(),
        });
    }
    for (name, about, s) in lenient {
        out.push(Sample {
            name,
            group: Group::Lenient,
            about,
            bytes: s.into_bytes(),
        });
    }
    for (name, about, bytes) in invalid {
        out.push(Sample {
            name,
            group: Group::Invalid,
            about,
            bytes,
        });
    }
    out.push(Sample {
        name: "legacy-join",
        group: Group::Legacy,
        about: "sipping-02 join with DHT-NodeID and user=node",
        bytes: legacy_join.into_bytes(),
    });
    out.push(Sample {
        name: "legacy-join-200",
        group: Group::Legacy,
        about: "sipping-02 200 without dht= and with link=P",
        bytes: legacy_200.into_bytes(),
    });
    out
}
