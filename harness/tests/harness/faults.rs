//! Each fault switch of the reference node that the suites of this crate
//! are meant to catch makes at least one case fail whose requirements
//! include the fault's requirement, and the failure names it.

use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// (fault, requirement it breaks, suite that catches it).
const CAUGHT: &[(&str, &str, &str)] = &[
    ("no-retransmit", "TXN-1", "transactions"),
    ("ignore-rport", "NAT-2", "transactions"),
    ("upper-hex", "ID-1", "wire"),
    ("stale-links", "WIRE-5", "wire"),
    ("pred-before-200", "JOIN-5", "join"),
    ("wrong-302", "QUERY-2", "join"),
];

/// An IUT file for the reference node with one fault, through the same
/// template path as any IUT.
pub fn fault_iut(d: &Dir, fault: &str) -> std::path::PathBuf {
    let mut argv: Vec<String> = vec![P2PSIP.into(), "node".into()];
    for a in [
        "--listen",
        "{ip}:{port}",
        "--bootstrap",
        "{bootstrap}",
        "--overlay",
        "{overlay}",
        "--stabilize-ms",
        "{stabilize_ms}",
        "--fix-fingers-ms",
        "{fix_fingers_ms}",
        "--keepalive-ms",
        "{keepalive_ms}",
        "--t1-ms",
        "{t1_ms}",
        "--expires-s",
        "{expires_s}",
        "--peer-expires-s",
        "{expires_s}",
        "--fault",
        fault,
    ] {
        argv.push(a.into());
    }
    d.iut_file(
        &format!("{fault}.toml"),
        &argv,
        "transports = [\"udp\", \"tcp\"]\n",
    )
}

/// Runs `suite` against the reference node with `fault`; returns the
/// report.
pub fn run_fault(fault: &str, suite: &str) -> (std::process::Output, Value) {
    let d = Dir::new();
    let iut = fault_iut(&d, fault);
    let out = d.join("out");
    let o = p2psip(
        &[
            "run",
            "--iut",
            iut.to_str().unwrap(),
            "-s",
            suite,
            "--report",
            out.to_str().unwrap(),
            "-q",
        ],
        Duration::from_secs(120),
    );
    let r = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    (o, r)
}

#[test]
fn every_fault_of_the_slice_is_caught() {
    let mut threads = Vec::new();
    for (fault, req, suite) in CAUGHT {
        threads.push(std::thread::spawn(move || {
            let (o, r) = run_fault(fault, suite);
            assert_eq!(o.status.code(), Some(1), "fault {fault}: {}", text(&o));
            let caught = r["cases"].as_array().unwrap().iter().any(|c| {
                c["verdict"] == "fail"
                    && c["requirements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == req)
                    && c["detail"].as_str().unwrap().contains(req)
            });
            assert!(
                caught,
                "fault {fault} ({req}): no failing case of suite {suite} names {req}:\n{}",
                text(&o)
            );
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}
