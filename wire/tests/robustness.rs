//! Bad input never panics and never costs more than linear time
//! (WIRE-7, WIRE-8): random bytes, mutated valid messages, truncation at
//! every offset, and hostile shapes that break naive parsers.

use std::time::{Duration, Instant};

use p2psip_wire::{Framer, ParseOptions, Profile, parse, parse_one};
use proptest::prelude::*;

const VALID: &str = "REGISTER sip:10.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\n\
To: \"Peer\" <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>\r\n\
From: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>;tag=1\r\n\
Contact: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>, \"B\" <sip:b@example.org>;expires=0\r\n\
Call-ID: q1\r\nCSeq: 1 REGISTER\r\nExpires: 600\r\nRequire: dht\r\nSupported: dht\r\n\
DHT-PeerID: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>;algorithm=sha1;dht=Chord1.0;overlay=chat;expires=600\r\n\
DHT-Link: <sip:peer@[2001:db8::1]:5060;pID=0123456789ABCDEF0123456789abcdef01234567>;link=F12;expires=60\r\n\
Content-Length: 4\r\n\r\nbody";

fn all_modes(bytes: &[u8]) {
    for profile in [Profile::DsipChord, Profile::Sipping02] {
        for opts in [ParseOptions::strict(), ParseOptions::lenient()] {
            let opts = opts.with_profile(profile);
            if let Ok(p) = parse(bytes, opts) {
                // Whatever parsed prints to its canonical form, which reads
                // back as the same message.
                let printed = p2psip_wire::print(&p.message);
                let again = parse(&printed, ParseOptions::lenient().with_profile(profile))
                    .unwrap_or_else(|e| {
                        panic!(
                            "printed form refused: {e}\n{}",
                            String::from_utf8_lossy(&printed)
                        )
                    });
                assert_eq!(
                    again.message,
                    p.message,
                    "{}",
                    String::from_utf8_lossy(&printed)
                );
            }
            let _ = parse_one(bytes, opts);
        }
    }
    let mut f = Framer::new(65_535);
    let _ = f.next_frame(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        all_modes(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in prop::collection::vec((0..VALID.len(), any::<u8>(), 0..3u8), 1..8)
    ) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, b, op) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match op {
                0 if !bytes.is_empty() => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ if !bytes.is_empty() => { bytes.remove(at); }
                _ => {}
            }
        }
        all_modes(&bytes);
    }

    #[test]
    fn grammar_shaped_noise_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "<", ">", ";", ",", ":", "=", "\"", "\\", "\r\n", "\r\n ", "\n", " ", "sip:", "@", "[", "]",
            "peer-ID=", "link=S1", "expires=", "Via: ", "SIP/2.0/UDP ", "DHT-Link: ", "DHT-PeerID: ",
            "0123456789abcdef0123456789abcdef01234567", "?", "%", "%4", "z9hG4bK", "rport",
        ]), 0..60)
    ) {
        let mut s = String::from("REGISTER sip:a SIP/2.0\r\n");
        for p in parts { s.push_str(p); }
        s.push_str("\r\n\r\n");
        all_modes(s.as_bytes());
    }
}

#[test]
fn truncation_at_every_offset() {
    let bytes = VALID.as_bytes();
    for cut in 0..bytes.len() {
        all_modes(&bytes[..cut]);
    }
    let p = parse(bytes, ParseOptions::lenient());
    assert!(p.is_ok(), "{p:?}");
}

/// Parses `bytes` and returns how long it took; the parse may fail.
fn time(bytes: &[u8]) -> Duration {
    let t = Instant::now();
    let _ = parse(bytes, ParseOptions::lenient().with_max(1 << 22));
    t.elapsed()
}

trait WithMax {
    fn with_max(self, n: usize) -> ParseOptions;
}
impl WithMax for ParseOptions {
    fn with_max(self, n: usize) -> ParseOptions {
        ParseOptions {
            max_size: n,
            ..self
        }
    }
}

/// Makes a hostile input of about the given size.
type Shape = Box<dyn Fn(usize) -> Vec<u8>>;

/// Hostile shapes of 64 KiB and 256 KiB: the larger must not cost more
/// than ~4x the smaller plus noise (linear), never 16x (quadratic).
/// Both sizes keep the header index (~400 bytes per 8-byte header line)
/// under the allocator's mmap threshold: above it every parse maps and
/// faults fresh pages, a cost of the allocator, not of the grammar.
#[test]
fn hostile_inputs_cost_linear_time() {
    let shapes: Vec<(&str, Shape)> = vec![
        (
            "many headers",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b"X-A: b\r\n");
                }
                s
            }),
        ),
        (
            "many uri params",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nTo: <sip:a@b".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b";x=1;peer-ID=0123456789abcdef0123456789abcdef01234567;y");
                }
                s.extend_from_slice(b">\r\n\r\n");
                s
            }),
        ),
        (
            "many header params",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nContact: <sip:a@b>".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b" ; q=1 ; x = y");
                }
                s.extend_from_slice(b"\r\n\r\n");
                s
            }),
        ),
        (
            "many contacts",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nContact: <sip:a@b>".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b",sip:c@d,\"x\" <sip:e@f>");
                }
                s.extend_from_slice(b"\r\n\r\n");
                s
            }),
        ),
        (
            "many folds",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nSubject: a".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b"\r\n b");
                }
                s.extend_from_slice(b"\r\n\r\n");
                s
            }),
        ),
        (
            "no line end",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nSubject: ".to_vec();
                s.resize(n, b'a');
                s
            }),
        ),
        (
            "open quote",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nTo: \"".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b"\\\"a,");
                }
                s.extend_from_slice(b"\r\n\r\n");
                s
            }),
        ),
        (
            "many vias",
            Box::new(|n| {
                let mut s = b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h".to_vec();
                while s.len() < n {
                    s.extend_from_slice(b",SIP/2.0/UDP h;branch=z9hG4bK1;rport");
                }
                s.extend_from_slice(b"\r\n\r\n");
                s
            }),
        ),
    ];
    for (name, make) in shapes {
        let small = make(64 * 1024);
        let large = make(256 * 1024);
        // The best of nine dampens scheduling noise on a loaded machine.
        let best = |b: &[u8]| (0..9).map(|_| time(b)).min().unwrap();
        let (ts, tl) = (best(&small), best(&large));
        assert!(
            // A quadratic rule at these sizes costs seconds (every line
            // rescanning the head is ~10^9 byte steps at 256 KiB), so the
            // 50 ms slack for a preempted run hides no such rule.
            tl <= ts * 8 + Duration::from_millis(50),
            "{name}: 64 KiB took {ts:?}, 256 KiB took {tl:?}"
        );
    }
}

#[test]
fn wire_8_size_limit() {
    let big = vec![b'a'; 70_000];
    let e = parse(&big, ParseOptions::lenient()).unwrap_err();
    assert_eq!(e.requirement(), "WIRE-8");
}
