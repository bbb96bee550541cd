//! The vectors are right and pinned:
//! - the files under vectors/ are exactly what the code generates;
//! - every generated file is pinned by a snapshot (a change is reviewed);
//! - the ID vectors agree with an independent computation: the `sha1`
//!   crate over canonical strings written out literally here, and ring
//!   arithmetic redone on plain integers;
//! - each corpus group holds what its name says.

use std::path::Path;

use p2psip_vectors::{Mismatch, check, generate};
use serde_json::Value;
use sha1::{Digest, Sha1};

fn sha1_hex(s: &[u8]) -> String {
    hex::encode(Sha1::digest(s))
}

fn files_json(name: &str) -> Value {
    let files = generate();
    serde_json::from_slice(&files[Path::new(name)]).unwrap()
}

#[test]
fn committed_vectors_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mismatches = check(dir).unwrap();
    assert!(
        mismatches.is_empty(),
        "run `cargo run -p p2psip-harness -- vectors regen`:\n{}",
        mismatches
            .iter()
            .map(Mismatch::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn snapshots() {
    let files = generate();
    for name in [
        "peer-ids.json",
        "resource-ids.json",
        "ring.json",
        "messages/index.json",
    ] {
        let text = String::from_utf8(files[Path::new(name)].clone()).unwrap();
        insta::assert_snapshot!(name.replace('/', "-"), text);
    }
    for group in ["valid", "lenient", "invalid", "legacy"] {
        let mut all = String::new();
        for (path, bytes) in &files {
            let p = path.to_string_lossy();
            if p.starts_with(&format!("messages/{group}/")) {
                all.push_str(&format!("=== {p}\n"));
                if p.ends_with(".json") {
                    all.push_str(std::str::from_utf8(bytes).unwrap());
                } else {
                    all.push_str(&String::from_utf8_lossy(bytes).escape_debug().to_string());
                    all.push('\n');
                }
            }
        }
        insta::assert_snapshot!(format!("messages-{group}"), all);
    }
}

/// ID-2, redone: SHA-1 of the literal text, last 16 bits = port.
#[test]
fn peer_ids_agree_with_independent_sha1() {
    let literal: &[(&str, u16, &str)] = &[
        ("10.4.1.2", 5060, "10.4.1.2"),
        ("10.4.1.2", 5061, "10.4.1.2"),
        ("127.0.0.1", 0, "127.0.0.1"),
        ("127.0.0.1", 65535, "127.0.0.1"),
        ("192.0.2.1", 5060, "192.0.2.1"),
        ("255.255.255.255", 5060, "255.255.255.255"),
        ("0.0.0.0", 1, "0.0.0.0"),
        ("::1", 5060, "::1"),
        ("2001:db8::1", 5060, "2001:db8::1"),
        (
            "2001:0DB8:0000:0000:0000:0000:0000:0001",
            5060,
            "2001:db8::1",
        ),
        ("2001:db8:0:0:1:0:0:1", 0, "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", 65535, "2001:db8:0:1:1:1:1:1"),
        ("fe80::a:b:c:d", 5070, "fe80::a:b:c:d"),
        ("::ffff:192.0.2.1", 5060, "::ffff:192.0.2.1"),
        ("::", 5060, "::"),
    ];
    let v = files_json("peer-ids.json");
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), literal.len());
    for (entry, (ip, port, text)) in v.iter().zip(literal) {
        assert_eq!(entry["ip"], *ip);
        assert_eq!(entry["port"], *port);
        assert_eq!(entry["hashed_text"], *text, "RFC 5952 text of {ip}");
        let sha = sha1_hex(text.as_bytes());
        assert_eq!(entry["sha1"], sha);
        let want = format!("{}{:04x}", &sha[..36], port);
        assert_eq!(entry["peer_id"], want, "{ip}:{port}");
    }
    // The profile's own example.
    assert_eq!(v[0]["peer_id"], "6c7c752f7592a104b9ba5e48ec077a01385b13c4");
}

/// ID-4 / ID-5, redone from the canonical strings written out here.
#[test]
fn resource_ids_agree_with_independent_sha1() {
    let literal: &[(&str, &[u8])] = &[
        (
            "SIP:al%69ce@EXAMPLE.org:5070;transport=tcp",
            b"sip:alice@example.org:5070",
        ),
        ("sip:alice@example.org", b"sip:alice@example.org"),
        ("sip:Alice@Example.ORG", b"sip:Alice@example.org"),
        ("sip:alice@example.org:5060", b"sip:alice@example.org:5060"),
        (
            "sip:alice@example.org;user=phone?subject=hello",
            b"sip:alice@example.org",
        ),
        ("sip:alice@example.org;replica=1", b"sip:alice@example.org"),
        (
            "sips:bob@secure.example.com",
            b"sips:bob@secure.example.com",
        ),
        ("sip:%41%42%43@example.org", b"sip:ABC@example.org"),
        (
            "sip:caf%C3%A9@example.org",
            "sip:café@example.org".as_bytes(),
        ),
        ("sip:100%25@example.org", b"sip:100%@example.org"),
        ("sip:broken%4@example.org", b"sip:broken%4@example.org"),
        ("sip:bob@[2001:DB8::1]:5060", b"sip:bob@[2001:db8::1]:5060"),
        ("sip:bob@192.0.2.7", b"sip:bob@192.0.2.7"),
        ("sip:example.org", b"sip:example.org"),
        (
            "sip:+1-201-555-0123@gw.example.org;user=phone",
            b"sip:+1-201-555-0123@gw.example.org",
        ),
    ];
    let v = files_json("resource-ids.json");
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), literal.len());
    for (entry, (uri, canon)) in v.iter().zip(literal) {
        assert_eq!(entry["uri"], *uri);
        assert_eq!(
            entry["canonical"],
            String::from_utf8_lossy(canon).as_ref(),
            "{uri}"
        );
        assert_eq!(entry["primary"], sha1_hex(canon), "{uri}");
        for n in 1..=3 {
            let mut c = canon.to_vec();
            c.extend_from_slice(format!(";replica={n}").as_bytes());
            assert_eq!(entry["replicas"][n - 1], sha1_hex(&c), "{uri} replica {n}");
        }
    }
}

/// A 160-bit number as (high 32 bits, low 128 bits): plain integers, no
/// code shared with the wire crate.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct U160(u32, u128);

impl U160 {
    fn parse(s: &str) -> U160 {
        U160(
            u32::from_str_radix(&s[..8], 16).unwrap(),
            u128::from_str_radix(&s[8..], 16).unwrap(),
        )
    }
    fn hex(self) -> String {
        format!("{:08x}{:032x}", self.0, self.1)
    }
    fn sub(self, o: U160) -> U160 {
        let (lo, borrow) = self.1.overflowing_sub(o.1);
        U160(self.0.wrapping_sub(o.0).wrapping_sub(borrow as u32), lo)
    }
    fn add(self, o: U160) -> U160 {
        let (lo, carry) = self.1.overflowing_add(o.1);
        U160(self.0.wrapping_add(o.0).wrapping_add(carry as u32), lo)
    }
    fn pow2(i: u32) -> U160 {
        if i < 128 {
            U160(0, 1u128 << i)
        } else {
            U160(1 << (i - 128), 0)
        }
    }
    /// x in (a, b], the whole ring when a == b.
    fn in_open_closed(self, a: U160, b: U160) -> bool {
        a == b || (self != a && self.sub(a) <= b.sub(a))
    }
}

fn ids(v: &Value) -> Vec<U160> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| U160::parse(x.as_str().unwrap()))
        .collect()
}

#[test]
fn ring_vectors_agree_with_independent_arithmetic() {
    let v = files_json("ring.json");
    for c in v["responsibility"].as_array().unwrap() {
        let n = U160::parse(c["node"].as_str().unwrap());
        let k = U160::parse(c["key"].as_str().unwrap());
        let want = match c["predecessor"].as_str() {
            None => true,
            Some(p) => k.in_open_closed(U160::parse(p), n),
        };
        assert_eq!(c["responsible"], want, "{c}");
    }
    for c in v["closest_preceding"].as_array().unwrap() {
        let n = U160::parse(c["node"].as_str().unwrap());
        let k = U160::parse(c["key"].as_str().unwrap());
        let best = ids(&c["known"])
            .into_iter()
            .filter(|p| *p != n && p.in_open_closed(n, k))
            .min_by_key(|p| k.sub(*p));
        assert_eq!(
            c["expected"].as_str().map(str::to_owned),
            best.map(U160::hex),
            "{c}"
        );
    }
    for c in v["successor"].as_array().unwrap() {
        let mut ring = ids(&c["ring"]);
        ring.sort();
        let k = U160::parse(c["key"].as_str().unwrap());
        let want = ring.iter().find(|x| **x >= k).unwrap_or(&ring[0]);
        assert_eq!(c["successor"], want.hex(), "{c}");
    }
    for c in v["successor_list"].as_array().unwrap() {
        let mut ring = ids(&c["ring"]);
        ring.sort();
        let n = U160::parse(c["node"].as_str().unwrap());
        let r = c["r"].as_u64().unwrap() as usize;
        let at = ring.iter().position(|x| *x == n).unwrap();
        let want: Vec<String> = (1..ring.len())
            .take(r)
            .map(|i| ring[(at + i) % ring.len()].hex())
            .collect();
        assert_eq!(c["expected"], serde_json::json!(want), "{c}");
    }
    for c in v["finger_start"].as_array().unwrap() {
        let n = U160::parse(c["node"].as_str().unwrap());
        let i = c["i"].as_u64().unwrap() as u32;
        assert_eq!(c["start"], n.add(U160::pow2(i)).hex(), "{c}");
    }
}

#[test]
fn corpus_groups_hold_what_they_say() {
    let files = generate();
    let mut counts = std::collections::HashMap::new();
    for (path, bytes) in &files {
        let p = path.to_string_lossy();
        if !p.starts_with("messages/") || !p.ends_with(".json") || p.ends_with("index.json") {
            continue;
        }
        let e: Value = serde_json::from_slice(bytes).unwrap();
        let group = e["group"].as_str().unwrap().to_owned();
        let (s, l) = (
            e["strict"]["ok"].as_bool().unwrap(),
            e["lenient"]["ok"].as_bool().unwrap(),
        );
        match group.as_str() {
            "valid" | "legacy" => {
                assert!(s && l, "{p}: {e}");
                assert_eq!(e["strict"]["warnings"], serde_json::json!([]), "{p}");
            }
            "lenient" => {
                assert!(!s && l, "{p}: {e}");
                // The warning that lenient reports is the error strict gives.
                let err = &e["strict"]["error"];
                let warned = e["lenient"]["warnings"].as_array().unwrap();
                assert!(warned.iter().any(|w| w["message"] == err["message"]), "{p}");
            }
            "invalid" => assert!(!s && !l, "{p}: {e}"),
            other => panic!("unknown group {other}"),
        }
        *counts.entry(group).or_insert(0) += 1;
    }
    assert!(counts["valid"] >= 20, "{counts:?}");
    assert!(counts["lenient"] >= 10, "{counts:?}");
    assert!(counts["invalid"] >= 15, "{counts:?}");
}
