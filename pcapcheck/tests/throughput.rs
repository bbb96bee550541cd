//! The smoke version of the throughput bench (`benches/throughput.rs`): a
//! few MB of the replicated clean scenario, checked clean (state carried
//! from one copy of the ring to the next makes no false positive), with
//! the rate printed.

mod common;

use std::time::Instant;

use p2psip_pcapcheck::{check_bytes, check_pipelined};

#[test]
fn replicated_clean_capture_checks_clean_and_fast_enough_to_measure() {
    let mut cap = Vec::new();
    let bytes = common::replicated(&mut cap, 4 << 20);
    assert_eq!(bytes as usize, cap.len());
    let t = Instant::now();
    let a = check_bytes(&cap, &common::options()).expect("readable");
    let secs = t.elapsed().as_secs_f64();
    let shown: Vec<String> = a.findings.iter().take(10).map(|f| f.to_string()).collect();
    assert!(a.is_clean(), "{}", shown.join("\n"));
    println!(
        "{:.1} MB in {secs:.3} s: {:.0} MB/s, {:.0} messages/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        a.counters.messages as f64 / secs
    );
}

#[test]
fn pipelined_gives_the_same_analysis() {
    for name in ["wrong-302", "no-retransmit", "clean"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../vectors/pcap/{name}.pcap"));
        let bytes = std::fs::read(path).expect("a sample");
        let one = check_bytes(&bytes, &common::options()).expect("readable");
        let two = check_pipelined(&bytes[..], &common::options()).expect("readable");
        assert_eq!(one, two, "{name}");
    }
    // Batches cut at every size: a capture larger than one batch.
    let mut cap = Vec::new();
    common::replicated(&mut cap, 3 << 20);
    let one = check_bytes(&cap, &common::options()).expect("readable");
    let two = check_pipelined(&cap[..], &common::options()).expect("readable");
    assert_eq!(one, two);
}
