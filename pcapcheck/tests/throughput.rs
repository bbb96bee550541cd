//! The smoke version of the throughput bench (`benches/throughput.rs`): a
//! few MB of the replicated clean scenario, checked clean (state carried
//! from one copy of the ring to the next makes no false positive), with
//! the rate printed. The two-thread pass is compared with this one in
//! `tests/pipeline.rs`.

mod common;

use std::time::Instant;

use p2psip_pcapcheck::check_bytes;

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
