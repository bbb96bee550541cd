//! The `nat` suite against the reference node: every case passes on the
//! clean node, and each fault switch that breaks NAT behaviour
//! (`ignore-rport`, `id-from-private`, `no-keepalive`) makes a NAT case
//! fail naming the requirement it breaks. The four runs go in parallel:
//! they mostly wait on timers.

use std::path::PathBuf;
use std::time::Duration;

use p2psip_node::Fault;
use serde_json::Value;

use crate::util::*;

/// The built-in reference node's argv (with `{advertise}`, which NAT
/// cases need for instances outside the NAT), optionally with a fault.
fn node_iut(d: &Dir, fault: Option<&str>) -> PathBuf {
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
        "--replicas",
        "{replicas}",
        "--successors",
        "{successors}",
        "--advertise",
        "{advertise}",
    ] {
        argv.push(a.into());
    }
    if let Some(f) = fault {
        argv.extend(["--fault".to_string(), f.to_string()]);
    }
    d.iut_file(
        &format!("{}.toml", fault.unwrap_or("clean")),
        &argv,
        "transports = [\"udp\", \"tcp\"]\n",
    )
}

/// `p2psip run -s nat` against the node; the exit status, the output and
/// the JSON report.
fn run_nat(fault: Option<&str>) -> (std::process::Output, Value) {
    let d = Dir::new();
    let iut = node_iut(&d, fault);
    let out = d.join("out");
    let (iut, report) = (iut.display().to_string(), out.display().to_string());
    let o = p2psip(
        &["run", "-s", "nat", "--iut", &iut, "--report", &report, "-q"],
        Duration::from_secs(240),
    );
    let r = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap_or_default())
        .unwrap_or(Value::Null);
    (o, r)
}

fn cases(r: &Value) -> Vec<Value> {
    r["cases"].as_array().cloned().unwrap_or_default()
}

fn show(cases: &[Value]) -> String {
    cases
        .iter()
        .map(|c| {
            format!(
                "{} [{}]: {}",
                c["id"].as_str().unwrap_or("?"),
                c["verdict"].as_str().unwrap_or("?"),
                c["detail"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nat_faults_are_caught_by_nat_cases_naming_their_requirement() {
    let faults = [Fault::IgnoreRport, Fault::IdFromPrivate, Fault::NoKeepalive];
    let clean = std::thread::spawn(|| run_nat(None));
    let runs: Vec<_> = faults
        .iter()
        .map(|f| {
            let name = f.name();
            (*f, std::thread::spawn(move || run_nat(Some(name))))
        })
        .collect();

    // The clean node: every case passes, the MAY one (NAT-8) included.
    let (o, r) = clean.join().unwrap();
    let all = cases(&r);
    assert_eq!(all.len(), 18, "{}", text(&o));
    let not_passed: Vec<Value> = all
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .cloned()
        .collect();
    assert!(not_passed.is_empty(), "clean node:\n{}", show(&not_passed));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    for (fault, run) in runs {
        let (o, r) = run.join().unwrap();
        // "NAT-2 / TXN-3": the NAT suite checks the NAT requirement.
        let req = fault
            .requirement()
            .split('/')
            .map(str::trim)
            .find(|r| r.starts_with("NAT-"))
            .unwrap()
            .to_string();
        let all = cases(&r);
        let caught: Vec<&Value> = all
            .iter()
            .filter(|c| {
                c["verdict"] == "fail"
                    && c["requirements"]
                        .as_array()
                        .is_some_and(|rs| rs.iter().any(|x| *x == *req))
                    && c["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with(&format!("{req}:")))
            })
            .collect();
        assert!(
            !caught.is_empty(),
            "fault {} breaks {req}; no nat case failed naming it:\n{}",
            fault.name(),
            show(&all)
        );
        assert_eq!(o.status.code(), Some(1), "{}: {}", fault.name(), text(&o));
        eprintln!(
            "{} caught by {}",
            fault.name(),
            caught
                .iter()
                .map(|c| c["id"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
