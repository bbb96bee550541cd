//! The capture side of `pcap replay` on the committed clean sample: which
//! conversation is read, how the map keeps the ring order, what a request
//! looks like rewritten, and how fresh answers compare with the recorded
//! ones (alike, different, explained).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use p2psip_pcapcheck::replay::{
    Context, Conversation, Fresh, Mapping, ReadOptions, ReplayError, cell, compare,
    expected_neighbours, read, rewrite,
};
use p2psip_wire::{Id, ParseOptions, parse, peer_id};

const CLIENT: &str = "127.119.200.253:50361";
const QUERIED: &str = "127.119.200.2:53467";

fn clean() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/pcap/clean.pcap")
}

fn conversation(endpoint: Option<&str>) -> Result<Conversation, ReplayError> {
    let opts = ReadOptions {
        endpoint: endpoint.map(|e| e.parse().unwrap()),
        ..ReadOptions::default()
    };
    read(|| std::fs::File::open(clean()), &opts)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn reads_the_busiest_sender_by_default_and_a_chosen_one() {
    let busiest = conversation(None).unwrap();
    assert_eq!(busiest.endpoint, sa(QUERIED));
    assert_eq!(busiest.senders[0].0, sa(QUERIED));
    assert!(busiest.elsewhere > 0);

    let c = conversation(Some(CLIENT)).unwrap();
    assert_eq!(c.counterpart, sa(QUERIED));
    assert_eq!(c.exchanges.len(), 68);
    assert_eq!(c.elsewhere, 0);
    assert_eq!(c.overlay.as_deref(), Some("pcap"));
    // Every query answered, 302 or 200/404, never twice counted.
    assert!(c.exchanges.iter().all(|e| e.response.is_some()));
    assert!(c.exchanges.iter().all(|e| e.class.name() == "query"));
    // The 32 keys of the client and the peers the answers name.
    assert!(c.keys.len() >= 8, "{:?}", c.keys);
    assert!(c.peers.contains_key(&sa(CLIENT)));
    assert!(c.peers.contains_key(&sa(QUERIED)));
    assert!(c.peers.len() >= 6, "{:?}", c.peers);

    let e = conversation(Some("10.1.1.1:1")).unwrap_err();
    assert!(matches!(e, ReplayError::NotASender { .. }), "{e}");
}

#[test]
fn cells_of_the_conversation_keep_every_peer_between_its_neighbours() {
    let c = conversation(Some(CLIENT)).unwrap();
    let mut points: Vec<Id> = c.peers.values().copied().collect();
    points.extend(c.keys.iter().copied());
    for id in c.peers.values() {
        let (from, to) = cell(id, &points);
        assert!(id.in_open(&from, &to));
        for other in points.iter().filter(|p| *p != id) {
            assert!(
                !other.in_open(&from, &to),
                "{other} inside the cell of {id}"
            );
        }
    }
}

#[test]
fn a_rewritten_request_names_the_new_addresses_and_ids() {
    let c = conversation(Some(CLIENT)).unwrap();
    let mut map = Mapping::new();
    let (me, them) = (sa("127.9.8.7:4000"), sa("127.6.5.4:5000"));
    map.insert(sa(CLIENT), me);
    map.insert(sa(QUERIED), them);
    let raw = &c.exchanges[0].raw;
    let new = rewrite(raw, &map);
    let text = String::from_utf8(new.clone()).unwrap();
    assert!(!text.contains("127.119.200.253"), "{text}");
    assert!(text.contains("127.9.8.7:4000"), "{text}");
    let m = parse(&new, ParseOptions::strict())
        .expect("still a valid message")
        .message;
    let p = m.dht_peer_id().unwrap().addr.uri.peer().unwrap();
    assert_eq!(p.id, peer_id(me.ip(), me.port()));
    // The key of the query stays as it was.
    let old = parse(raw, ParseOptions::strict()).unwrap().message;
    assert_eq!(
        m.to().unwrap().addr.uri.peer_id(),
        old.to().unwrap().addr.uri.peer_id()
    );
}

#[test]
fn comparison_alike_different_and_explained() {
    let c = conversation(Some(CLIENT)).unwrap();
    let ex = c
        .exchanges
        .iter()
        .find(|e| e.response.as_ref().is_some_and(|r| r.shape.status == 302))
        .expect("a redirected query");
    let rec = ex.response.as_ref().unwrap();
    // The recorded answer, as raw bytes of the capture: find it by frame.
    let recorded = recorded_answer(rec.frame);
    // Identity map: the replayed overlay is the captured one.
    let mut map = Mapping::new();
    for a in c.peers.keys() {
        map.insert(*a, *a);
    }
    let expected: BTreeSet<SocketAddr> = rec.neighbours.clone();
    let cx = Context {
        conv: &c,
        map: &map,
        profile: p2psip_wire::Profile::DsipChord,
        expected: &expected,
    };
    assert!(compare(ex, Fresh::Answer(&recorded), &cx).is_empty());

    // Upper-case hex: a deviation, never explained.
    let upper = upper_hex(&recorded);
    let d = compare(ex, Fresh::Answer(&upper), &cx);
    assert!(
        d.iter()
            .any(|d| d.what.contains("ID-1") && d.explained.is_none()),
        "{d:?}"
    );

    // Another redirect target in the same overlay: unexplained.
    let target = rec.contact.unwrap();
    let other = *rec
        .neighbours
        .iter()
        .find(|a| **a != target)
        .expect("another neighbour");
    let moved = String::from_utf8(recorded.clone())
        .unwrap()
        .replacen(
            &format!("Contact: <sip:peer@{target};peer-ID={}>", hex(target)),
            &format!("Contact: <sip:peer@{other};peer-ID={}>", hex(other)),
            1,
        )
        .into_bytes();
    let d = compare(ex, Fresh::Answer(&moved), &cx);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].what.starts_with("redirects to"), "{d:?}");
    assert!(d[0].explained.is_none(), "{d:?}");

    // The same, with a replayed overlay that differs from the recorded
    // one: explained.
    let mut fewer = expected.clone();
    fewer.remove(&other);
    let cx2 = Context {
        expected: &fewer,
        ..cx
    };
    let d = compare(ex, Fresh::Answer(&moved), &cx2);
    assert!(d[0].explained.is_some(), "{d:?}");

    // Silence where the capture has an answer: unexplained.
    let d = compare(ex, Fresh::Silent, &cx);
    assert!(d.len() == 1 && d[0].explained.is_none(), "{d:?}");

    // A peer's order against the replayed overlay.
    let (p1, succ) =
        expected_neighbours(sa(QUERIED), &c.peers.keys().copied().collect::<Vec<_>>(), 4);
    assert!(p1.is_some());
    assert_eq!(succ.len(), 4);
}

fn hex(a: SocketAddr) -> String {
    peer_id(a.ip(), a.port()).to_hex().as_str().to_owned()
}

fn upper_hex(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let at = text.find("peer-ID=").unwrap() + "peer-ID=".len();
    let mut out = text[..at].to_owned();
    out.push_str(&text[at..at + 40].to_ascii_uppercase());
    out.push_str(&text[at + 40..]);
    out.into_bytes()
}

/// The SIP payload of frame `frame` of the clean sample.
fn recorded_answer(frame: u64) -> Vec<u8> {
    let file = std::fs::File::open(clean()).unwrap();
    let mut reader = p2psip_capture::CaptureReader::new(std::io::BufReader::new(file)).unwrap();
    let mut found = None;
    reader
        .for_each(|e| {
            if let p2psip_capture::Event::Datagram {
                frame: f, payload, ..
            } = e
                && f == frame
            {
                found = Some(payload.into_owned());
            }
        })
        .unwrap();
    found.expect("the frame")
}
