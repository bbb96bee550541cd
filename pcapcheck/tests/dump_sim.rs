mod common;
#[test]
#[ignore]
fn dump() {
    let f = std::env::var("FAULT").ok().map(|f| f.parse().unwrap());
    let pcap = common::simulated(f, 10, 1);
    std::fs::write("/tmp/sim.pcap", pcap).unwrap();
    let p = common::plan(10, 1);
    eprintln!("{p:?}");
}
#[test]
#[ignore]
fn summary() {
    let f = std::env::var("FAULT").ok().map(|f| f.parse().unwrap());
    let pcap = common::simulated(f, 10, 1);
    let a = p2psip_pcapcheck::check_bytes(&pcap, &common::options()).unwrap();
    for r in &a.requirements {
        eprintln!("{:<18} judged {:>6} violations {}", r.requirement.id(), r.judged, r.violations);
    }
    eprintln!("{:?} bytes {}", a.counters, pcap.len());
    for n in &a.notes { eprintln!("note {n}"); }
}
