//! The `nat` suite against the reference node: every case passes on the
//! clean node, and each fault switch that breaks NAT behaviour
//! (`ignore-rport`, `id-from-private`, `no-keepalive`) makes a NAT case
//! fail naming the requirement it breaks. The three faulty runs go in
//! parallel: they mostly wait on timers.

use std::path::PathBuf;
use std::time::Duration;

use p2psip_harness::iut::NODE_ARGS;
use p2psip_node::Fault;
use serde_json::Value;

use crate::util::*;

/// The built-in reference node's argv (its `{advertise}` is what NAT
/// cases need for instances outside the NAT), optionally with a fault.
fn node_iut(d: &Dir, fault: Option<&str>) -> PathBuf {
    let mut argv: Vec<String> = vec![P2PSIP.into(), "node".into()];
    argv.extend(NODE_ARGS.iter().map(|a| a.to_string()));
    if let Some(f) = fault {
        argv.extend(["--fault".to_string(), f.to_string()]);
    }
    d.iut_file(
        &format!("{}.toml", fault.unwrap_or("clean")),
        &argv,
        "transports = [\"udp\", \"tcp\"]\n",
    )
}

/// `p2psip run -s nat` against the node; the exit status, the output,
/// the JSON report, and the scratch directory holding the reports.
fn run_nat(fault: Option<&str>) -> (std::process::Output, Value, Dir) {
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
    (o, r, d)
}

/// Keeps the reports of a failed run (evidence: ladders, pcaps, the NAT's
/// packet log) and says where they are.
fn keep(d: Dir) -> String {
    format!("reports kept in {}", d.tmp.keep().join("out").display())
}

/// The number of cases in suites/nat.toml.
fn suite_cases() -> usize {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/nat.toml");
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["case"].as_array().map_or(0, |c| c.len())
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
    // The clean node first, alone: its keep-alive cases measure timing
    // against a 10 % margin, which three more suite runs at once would eat
    // into on a small machine. Every case passes, the MAY one (NAT-8)
    // included.
    let (o, r, d) = run_nat(None);
    let all = cases(&r);
    let not_passed: Vec<Value> = all
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .cloned()
        .collect();
    if all.len() != suite_cases() || !not_passed.is_empty() || o.status.code() != Some(0) {
        panic!(
            "clean node: {} of {} cases ran, not passed:\n{}\n{}\n{}",
            all.len(),
            suite_cases(),
            show(&not_passed),
            text(&o),
            keep(d)
        );
    }

    let faults = [Fault::IgnoreRport, Fault::IdFromPrivate, Fault::NoKeepalive];
    let runs: Vec<_> = faults
        .iter()
        .map(|f| {
            let name = f.name();
            (*f, std::thread::spawn(move || run_nat(Some(name))))
        })
        .collect();
    for (fault, run) in runs {
        let (o, r, d) = run.join().unwrap();
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
                        .is_some_and(|t| t.starts_with(&format!("{req}:")))
            })
            .collect();
        if caught.is_empty() || o.status.code() != Some(1) {
            panic!(
                "fault {} breaks {req}; no nat case failed naming it (or the run did not exit 1):\n{}\n{}\n{}",
                fault.name(),
                show(&all),
                text(&o),
                keep(d)
            );
        }
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
