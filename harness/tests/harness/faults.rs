//! Self-validation: every fault switch of the reference node breaks one
//! requirement; when some case of the suites checks that requirement, at
//! least one such case must fail against the faulty node, and its failure
//! must name the requirement. Faults whose requirement no suite checks yet
//! are listed as not covered.
//!
//! Each faulty node runs the cases that check the fault's requirement
//! (`-r`), which keeps the test short.
//! `P2PSIP_WRITE_MATRIX=1 cargo test -p p2psip-harness --test harness faults`
//! runs every case instead and writes the fault × case matrix into
//! `suites/README.md`.

use std::collections::BTreeSet;

use std::time::Duration;

use p2psip_node::Fault;
use serde_json::Value;

use crate::util::*;

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
        "--replicas",
        "{replicas}",
        "--successors",
        "{successors}",
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

/// The requirement IDs a fault breaks ("NAT-2 / TXN-3" names two).
fn broken(f: Fault) -> Vec<String> {
    f.requirement()
        .split('/')
        .map(|r| r.trim().to_string())
        .collect()
}

/// Runs the suites against the reference node with `fault`: every case
/// (`all`), or those citing one of `reqs`.
fn run_fault(fault: &str, reqs: &[String], all: bool) -> (std::process::Output, Value) {
    let d = Dir::new();
    let iut = fault_iut(&d, fault);
    let out = d.join("out");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--iut".into(),
        iut.display().to_string(),
        "--report".into(),
        out.display().to_string(),
        "-q".into(),
    ];
    if !all {
        for r in reqs {
            args.extend(["-r".to_string(), r.clone()]);
        }
    }
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = p2psip(&a, Duration::from_secs(180));
    let r = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap())
        .unwrap_or(Value::Null);
    (o, r)
}

struct Row {
    fault: Fault,
    /// Cases checking the broken requirement at all.
    tied: Vec<String>,
    /// Of those, the ones that failed naming the requirement.
    caught: Vec<String>,
    /// Other failing cases.
    others: Vec<String>,
}

#[test]
fn every_fault_is_caught_where_a_suite_checks_its_requirement() {
    let all = std::env::var_os("P2PSIP_WRITE_MATRIX").is_some();
    // Requirements some case checks: a fault outside them is not covered.
    let checked = checked_requirements();
    let faults: Vec<Fault> = Fault::ALL.to_vec();
    let mut rows: Vec<Row> = Vec::new();
    // Five runs at a time: they mostly wait on timers.
    for chunk in faults.chunks(5) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|f| {
                let f = *f;
                let reqs = broken(f);
                let covered = reqs.iter().any(|r| checked.contains(r));
                std::thread::spawn(move || {
                    if covered || all {
                        (f, run_fault(f.name(), &reqs, all))
                    } else {
                        (
                            f,
                            (
                                std::process::Command::new("true").output().unwrap(),
                                Value::Null,
                            ),
                        )
                    }
                })
            })
            .collect();
        for h in handles {
            let (fault, (o, r)) = h.join().unwrap();
            let reqs = broken(fault);
            let cases = r["cases"].as_array().cloned().unwrap_or_default();
            let has = |c: &Value| {
                c["requirements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| reqs.iter().any(|r| x == r))
            };
            let failed = |c: &Value| {
                matches!(
                    c["verdict"].as_str(),
                    Some("fail") | Some("warn") | Some("unsupported")
                )
            };
            let tied: Vec<String> = cases
                .iter()
                .filter(|c| has(c))
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            let caught: Vec<String> = cases
                .iter()
                .filter(|c| {
                    has(c)
                        && failed(c)
                        && reqs
                            .iter()
                            .any(|r| c["detail"].as_str().unwrap().contains(r.as_str()))
                })
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            let others: Vec<String> = cases
                .iter()
                .filter(|c| failed(c) && !caught.iter().any(|x| x == c["id"].as_str().unwrap()))
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            if !tied.is_empty() {
                assert!(
                    !caught.is_empty(),
                    "fault {} breaks {:?}; cases {tied:?} check it, none failed naming it:\n{}",
                    fault.name(),
                    reqs,
                    text(&o)
                );
                assert_eq!(
                    o.status.code(),
                    Some(1),
                    "fault {}: {}",
                    fault.name(),
                    text(&o)
                );
            }
            rows.push(Row {
                fault,
                tied,
                caught,
                others,
            });
        }
    }
    rows.sort_by_key(|r| r.fault.name());
    if all {
        write_matrix(&rows);
    }
}

/// Every requirement some embedded case cites.
fn checked_requirements() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "toml") {
            let v: toml::Value =
                toml::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            for c in v
                .get("case")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
            {
                for r in c["requirements"].as_array().unwrap() {
                    out.insert(r.as_str().unwrap().to_string());
                }
            }
        }
    }
    out
}

fn write_matrix(rows: &[Row]) {
    let mut t = String::from(
        "| fault | breaks | caught by (failing cases that check the requirement) | other failing cases |\n|---|---|---|---|\n",
    );
    for r in rows {
        let caught = if r.tied.is_empty() {
            "not covered yet: no case checks it".to_string()
        } else {
            r.caught
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let others: BTreeSet<&String> = r.others.iter().collect();
        let others = others
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        t.push_str(&format!(
            "| `{}` | {} | {caught} | {others} |\n",
            r.fault.name(),
            r.fault.requirement()
        ));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- fault-matrix:begin -->\n", "<!-- fault-matrix:end -->");
    let a = readme.find(begin).expect("begin marker") + begin.len();
    let b = readme.find(end).expect("end marker");
    let new = format!("{}{t}{}", &readme[..a], &readme[b..]);
    std::fs::write(&path, new).unwrap();
}
