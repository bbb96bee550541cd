/*!
Vectors for IDs: Peer-IDs (ID-2), Resource-IDs and replicas (ID-4, ID-5),
and ring math (ID-6, QUERY-2, the oracle's successor lists).
*/

use std::net::IpAddr;

use p2psip_wire::{Id, Ring, closest_preceding, id, is_responsible, parse_uri, resource};
use serde::Serialize;

#[derive(Serialize)]
pub struct PeerIdVector {
    /// The address as a user might write it.
    pub ip: &'static str,
    pub port: u16,
    /// The text ID-2 hashes (RFC 5952 form for IPv6).
    pub hashed_text: String,
    /// SHA-1 of `hashed_text`.
    pub sha1: String,
    /// The Peer-ID: `sha1` with its last 16 bits replaced by the port.
    pub peer_id: String,
}

const PEER_ADDRESSES: &[(&str, u16)] = &[
    ("10.4.1.2", 5060),
    ("10.4.1.2", 5061),
    ("127.0.0.1", 0),
    ("127.0.0.1", 65535),
    ("192.0.2.1", 5060),
    ("255.255.255.255", 5060),
    ("0.0.0.0", 1),
    ("::1", 5060),
    ("2001:db8::1", 5060),
    ("2001:0DB8:0000:0000:0000:0000:0000:0001", 5060),
    ("2001:db8:0:0:1:0:0:1", 0),
    ("2001:db8:0:1:1:1:1:1", 65535),
    ("fe80::a:b:c:d", 5070),
    ("::ffff:192.0.2.1", 5060),
    ("::", 5060),
];

pub fn peer_ids() -> Vec<PeerIdVector> {
    PEER_ADDRESSES
        .iter()
        .map(|&(ip, port)| {
            let addr: IpAddr = ip.parse().expect("vector addresses are valid");
            let text = id::ip_text(&addr);
            PeerIdVector {
                ip,
                port,
                sha1: Id::hash(text.as_bytes()).to_string(),
                hashed_text: text,
                peer_id: id::peer_id(addr, port).to_string(),
            }
        })
        .collect()
}

#[derive(Serialize)]
pub struct ResourceIdVector {
    pub uri: &'static str,
    pub canonical: String,
    /// SHA-1 of `canonical`.
    pub primary: String,
    /// Replica 1..=3: SHA-1 of `canonical + ";replica=N"`.
    pub replicas: Vec<String>,
}

const RESOURCE_URIS: &[&str] = &[
    "SIP:al%69ce@EXAMPLE.org:5070;transport=tcp",
    "sip:alice@example.org",
    "sip:Alice@Example.ORG",
    "sip:alice@example.org:5060",
    "sip:alice@example.org;user=phone?subject=hello",
    "sip:alice@example.org;replica=1",
    "sips:bob@secure.example.com",
    "sip:%41%42%43@example.org",
    "sip:caf%C3%A9@example.org",
    "sip:100%25@example.org",
    "sip:broken%4@example.org",
    "sip:bob@[2001:DB8::1]:5060",
    "sip:bob@192.0.2.7",
    "sip:example.org",
    "sip:+1-201-555-0123@gw.example.org;user=phone",
];

pub fn resource_ids() -> Vec<ResourceIdVector> {
    RESOURCE_URIS
        .iter()
        .map(|&text| {
            let uri = parse_uri(text).expect("vector URIs parse");
            ResourceIdVector {
                uri: text,
                canonical: resource::canonical_text(&uri),
                primary: resource::resource_id(&uri).to_string(),
                replicas: (1..=3)
                    .map(|n| resource::replica_id(&uri, n).to_string())
                    .collect(),
            }
        })
        .collect()
}

/// An ID with the given leading byte and the rest zero, so ring cases
/// stay readable.
fn lead(b: u8) -> Id {
    let mut x = [0u8; 20];
    x[0] = b;
    Id(x)
}

#[derive(Serialize)]
pub struct RingVectors {
    /// ID-6: is `node` (whose predecessor is `predecessor`) responsible
    /// for `key`? A null predecessor owns every key.
    pub responsibility: Vec<ResponsibilityCase>,
    /// QUERY-2: the known peer in (node, key] closest to key, or null.
    pub closest_preceding: Vec<ClosestCase>,
    /// succ_L(key): the first live ID at or after key, wrapping.
    pub successor: Vec<SuccessorCase>,
    /// The ideal successor list of `node` in `ring`, at most `r` entries,
    /// each other peer at most once.
    pub successor_list: Vec<SuccessorListCase>,
    /// n + 2^i modulo 2^160.
    pub finger_start: Vec<FingerCase>,
}

#[derive(Serialize)]
pub struct ResponsibilityCase {
    pub node: String,
    pub predecessor: Option<String>,
    pub key: String,
    pub responsible: bool,
}

#[derive(Serialize)]
pub struct ClosestCase {
    pub node: String,
    pub key: String,
    pub known: Vec<String>,
    pub expected: Option<String>,
}

#[derive(Serialize)]
pub struct SuccessorCase {
    pub ring: Vec<String>,
    pub key: String,
    pub successor: String,
}

#[derive(Serialize)]
pub struct SuccessorListCase {
    pub ring: Vec<String>,
    pub node: String,
    pub r: usize,
    pub expected: Vec<String>,
}

#[derive(Serialize)]
pub struct FingerCase {
    pub node: String,
    pub i: u8,
    pub start: String,
}

fn hex(ids: &[Id]) -> Vec<String> {
    ids.iter().map(Id::to_string).collect()
}

pub fn ring() -> RingVectors {
    let resp = [
        (lead(0x50), Some(lead(0x20)), lead(0x30)),
        (lead(0x50), Some(lead(0x20)), lead(0x50)),
        (lead(0x50), Some(lead(0x20)), lead(0x20)),
        (lead(0x50), Some(lead(0x20)), lead(0x60)),
        (lead(0x10), Some(lead(0xf0)), lead(0xff)),
        (lead(0x10), Some(lead(0xf0)), Id::ZERO),
        (lead(0x10), Some(lead(0xf0)), lead(0x11)),
        (lead(0x10), None, lead(0x80)),
        (lead(0x10), Some(lead(0x10)), lead(0x80)),
    ];
    let known = [lead(0x20), lead(0x40), lead(0x60), lead(0x90), lead(0xe0)];
    let closest = [
        (lead(0x10), lead(0x60)),
        (lead(0x10), lead(0x5f)),
        (lead(0x10), lead(0x15)),
        (lead(0x90), lead(0x30)),
        (lead(0xe0), lead(0x10)),
        (lead(0x40), lead(0x40)),
    ];
    let live = [lead(0x20), lead(0x40), lead(0x60), lead(0x90), lead(0xe0)];
    let ring = Ring::new(live);
    let keys = [
        Id::ZERO,
        lead(0x20),
        lead(0x21),
        lead(0x90),
        lead(0xe1),
        Id::MAX,
    ];
    let finger_nodes = [Id::ZERO, Id::MAX, lead(0x80)];
    RingVectors {
        responsibility: resp
            .iter()
            .map(|(n, p, k)| ResponsibilityCase {
                node: n.to_string(),
                predecessor: p.map(|p| p.to_string()),
                key: k.to_string(),
                responsible: is_responsible(n, p.as_ref(), k),
            })
            .collect(),
        closest_preceding: closest
            .iter()
            .map(|(n, k)| ClosestCase {
                node: n.to_string(),
                key: k.to_string(),
                known: hex(&known),
                expected: closest_preceding(n, k, &known).map(|x| x.to_string()),
            })
            .collect(),
        successor: keys
            .iter()
            .map(|k| SuccessorCase {
                ring: hex(ring.ids()),
                key: k.to_string(),
                successor: ring.successor(k).map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect(),
        successor_list: [
            (&ring, lead(0x60), 4),
            (&ring, lead(0xe0), 2),
            (&ring, lead(0x20), 8),
        ]
        .iter()
        .chain([(&Ring::new([lead(0x20), lead(0x40)]), lead(0x20), 4)].iter())
        .map(|(ring, n, r)| SuccessorListCase {
            ring: hex(ring.ids()),
            node: n.to_string(),
            r: *r,
            expected: hex(&ring.successor_list(n, *r)),
        })
        .collect(),
        finger_start: finger_nodes
            .iter()
            .flat_map(|n| [0u8, 1, 15, 16, 159].map(|i| (*n, i)))
            .map(|(n, i)| FingerCase {
                node: n.to_string(),
                i,
                start: n.finger_start(i).to_string(),
            })
            .collect(),
    }
}
