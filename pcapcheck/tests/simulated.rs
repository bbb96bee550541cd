//! The scenario of `common` in the reference node's in-memory network,
//! written with `PcapWriter` as the harness writes its per-case captures:
//! the clean ring checks clean, each observable fault reports its
//! requirement.

mod common;

use p2psip_pcapcheck::{Analysis, check_bytes};

fn analyse(fault: Option<p2psip_node::Fault>) -> Analysis {
    let pcap = common::simulated(fault, 10, 1);
    check_bytes(&pcap, &common::options()).expect("a readable capture")
}

fn show(a: &Analysis) -> String {
    a.findings
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn clean_ring_checks_clean() {
    let a = analyse(None);
    assert!(a.counters.messages > 500, "{:?}", a.counters);
    assert!(a.is_clean(), "violations {:?}:\n{}", a.violated(), show(&a));
}

#[test]
fn each_fault_reports_its_requirement() {
    for (fault, req) in common::OBSERVABLE {
        let a = analyse(Some(*fault));
        let violated: Vec<&str> = a.violated().iter().map(|r| r.id()).collect();
        assert!(
            violated.contains(req),
            "{fault}: expected {req}, got {violated:?}:\n{}",
            show(&a)
        );
    }
}
