//! Parses the valid corpus in a loop: a fixed workload for profilers
//! (`valgrind --tool=callgrind target/release/examples/parse_loop 2000`).
//!
//! `parse_loop ROUNDS [WHAT]`, where WHAT is `ours` (the default: every
//! message), `ours-common` (the messages rsip accepts), `rsip` (rsip's
//! untyped parse of those) or `rsip-typed` (rsip's typed headers too), so
//! that instruction counts compare the same work.

use std::path::Path;

use p2psip_wire::{ParseOptions, parse};
use rsip::headers::ToTypedHeader;

fn rsip_typed(m: &[u8]) -> bool {
    let Ok(msg) = rsip::SipMessage::try_from(m) else {
        return false;
    };
    rsip::message::HasHeaders::headers(&msg)
        .iter()
        .all(|h| match h {
            rsip::Header::Via(v) => v.typed().is_ok(),
            rsip::Header::From(v) => v.typed().is_ok(),
            rsip::Header::To(v) => v.typed().is_ok(),
            rsip::Header::CSeq(v) => v.typed().is_ok(),
            rsip::Header::Contact(v) => v.typed().is_ok(),
            other => !other.to_string().is_empty(),
        })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let what = args.next().unwrap_or_else(|| "ours".to_owned());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/messages/valid");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("vectors present")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| std::fs::read(p).expect("readable"))
        .collect();
    corpus.sort();
    if what != "ours" {
        corpus.retain(|m| rsip::SipMessage::try_from(m.as_slice()).is_ok());
    }
    let opts = ParseOptions::lenient().without_peer_id_check();
    let start = std::time::Instant::now();
    let mut ok = 0usize;
    for _ in 0..rounds {
        for m in &corpus {
            ok += match what.as_str() {
                "ours" | "ours-common" => parse(m, opts).is_ok(),
                "rsip" => rsip::SipMessage::try_from(m.as_slice()).is_ok(),
                "rsip-typed" => rsip_typed(m),
                other => panic!("unknown workload {other}"),
            } as usize;
        }
    }
    let n = rounds * corpus.len();
    let bytes: usize = rounds * corpus.iter().map(Vec::len).sum::<usize>();
    let el = start.elapsed();
    println!(
        "{what}: {ok}/{n} parsed ({} messages, {} bytes a round), {:.0} ns/message, {:.0} MB/s",
        corpus.len(),
        corpus.iter().map(Vec::len).sum::<usize>(),
        el.as_nanos() as f64 / n as f64,
        bytes as f64 / el.as_secs_f64() / 1e6
    );
}
