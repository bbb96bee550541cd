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
