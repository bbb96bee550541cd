//! Parses the valid corpus in a loop: a fixed workload for profilers
//! (`valgrind --tool=callgrind target/release/examples/parse_loop 2000`).

use std::path::Path;

use p2psip_wire::{ParseOptions, parse};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/messages/valid");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("vectors present")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| std::fs::read(p).expect("readable"))
        .collect();
    corpus.sort();
    let opts = ParseOptions::lenient().without_peer_id_check();
    let start = std::time::Instant::now();
    let mut ok = 0usize;
    for _ in 0..rounds {
        for m in &corpus {
            ok += parse(m, opts).is_ok() as usize;
        }
    }
    let n = rounds * corpus.len();
    let bytes: usize = rounds * corpus.iter().map(Vec::len).sum::<usize>();
    let el = start.elapsed();
    println!(
        "{ok}/{n} parsed, {:.0} ns/message, {:.0} MB/s",
        el.as_nanos() as f64 / n as f64,
        bytes as f64 / el.as_secs_f64() / 1e6
    );
}
