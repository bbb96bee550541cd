//! The per-case captures `p2psip run --report DIR` writes check clean
//! with `p2psip pcap check`: a clean run of a few suites against the
//! reference node, then every pcap written, judged for what the
//! implementations under test and the reference nodes sent (the scripted
//! peers' deliberate mistakes are not theirs), with the timers the case
//! ran with (its `params` in the suite file, else the harness's fast
//! values).

#[allow(dead_code)]
#[path = "harness/util.rs"]
mod util;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use util::*;

/// The suites of the normal test (a short run); the ignored test runs
/// every suite.
const SUITES: &[&str] = &["join", "wire", "transactions"];

/// The harness's fast values (PROFILE §12) and each case's overrides.
#[derive(Debug, Clone, Copy)]
struct Timers {
    t1_ms: u64,
    stabilize_ms: u64,
    keepalive_ms: u64,
}

fn case_timers() -> HashMap<String, Timers> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        for case in doc["case"].as_array().unwrap() {
            let id = case["id"].as_str().unwrap().to_string();
            let p = case.get("params").and_then(|p| p.as_table());
            let get = |k: &str, d: u64| {
                p.and_then(|p| p.get(k))
                    .and_then(|v| v.as_integer())
                    .map_or(d, |v| v as u64)
            };
            out.insert(
                id,
                Timers {
                    t1_ms: get("t1_ms", 100),
                    stabilize_ms: get("stabilize_ms", 1000),
                    keepalive_ms: get("keepalive_ms", 1000),
                },
            );
        }
    }
    out
}

/// The addresses of the case's IUT instances and reference nodes, from
/// the labels of its ladder.
fn subjects(case: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in case["evidence"]["ladder"].as_array().into_iter().flatten() {
        for side in ["from", "to"] {
            let label = e[format!("{side}_label")].as_str().unwrap_or("");
            if (label.starts_with("iut") || label.starts_with("ref"))
                && let Some(a) = e[side].as_str()
            {
                out.insert(a.to_string());
            }
        }
    }
    out
}

#[test]
fn every_pcap_of_a_clean_run_checks_clean() {
    check_run(SUITES, 40);
}

/// Every suite, NAT lab included
/// (`cargo test --release -p p2psip-harness --test harness_pcaps -- --ignored`).
#[test]
#[ignore = "every suite: about a minute"]
fn every_pcap_of_a_clean_run_of_every_suite_checks_clean() {
    check_run(&[], 100);
}

/// Runs `suites` (all when empty) and checks every pcap written; at least
/// `min` must be checked.
fn check_run(suites: &[&str], min: usize) {
    let d = Dir::new();
    let dir = d.join("report");
    let mut args = vec![
        "run",
        "--report",
        dir.to_str().unwrap(),
        "--test-threads",
        "4",
    ];
    for s in suites {
        args.extend(["-s", s]);
    }
    let o = p2psip(&args, Duration::from_secs(600));
    // A case that failed (the harness's own tests judge that) is no clean
    // run: its capture is not checked.
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "the run: {}",
        text(&o)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let timers = case_timers();
    let (mut checked, mut failures, mut skipped_failed) = (0, Vec::new(), Vec::new());
    for case in report["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let Some(pcap) = case["evidence"]["pcap"].as_str() else {
            continue;
        };
        if case["outcome"] != "passed" {
            skipped_failed.push(id.to_string());
            continue;
        }
        let who = subjects(case);
        if who.is_empty() {
            continue;
        }
        let t = timers[id];
        let (t1, stab, ka) = (
            t.t1_ms.to_string(),
            t.stabilize_ms.to_string(),
            t.keepalive_ms.to_string(),
        );
        let file = dir.join(pcap);
        let mut args = vec![
            "pcap",
            "check",
            file.to_str().unwrap(),
            "--t1-ms",
            &t1,
            "--stabilize-ms",
            &stab,
            "--keepalive-ms",
            &ka,
        ];
        for s in &who {
            args.extend(["--subject", s.as_str()]);
        }
        let o = p2psip(&args, Duration::from_secs(60));
        checked += 1;
        if o.status.code() != Some(0) {
            let out = String::from_utf8_lossy(&o.stdout);
            let findings: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("frame ") || l.contains("FAIL"))
                .take(8)
                .collect();
            failures.push(format!(
                "{id} ({}): exit {:?}\n  {}\n  {}",
                file.display(),
                o.status.code(),
                findings.join("\n  "),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
    }
    if !skipped_failed.is_empty() {
        eprintln!("cases that did not pass, captures not checked: {skipped_failed:?}");
    }
    assert!(checked >= min, "only {checked} captures checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} harness captures do not check clean:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
