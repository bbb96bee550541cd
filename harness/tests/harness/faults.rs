//! Self-validation: every fault switch of the reference node breaks one
//! requirement (`Fault::requirement`, two for some). Against each faulty
//! node the suites must exit 1 and, for every requirement it breaks, some
//! MUST case that checks the requirement must fail with a detail naming
//! it. A fault whose requirement no case checks fails the test too, unless
//! it is listed in `NOT_YET_COVERED`. (The clean node passing every MUST
//! case is `default_run`.)
//!
//! Each faulty node runs only the cases that check its requirements
//! (`-r`), a few runs at a time, which keeps the test near a minute.
//! `P2PSIP_WRITE_MATRIX=1 cargo test --release -p p2psip-harness --test harness faults`
//! runs every case against the clean node and every faulty node instead
//! (same assertions) and writes the fault × case matrix into the
//! top-level README.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use p2psip_harness::iut::NODE_ARGS;
use p2psip_node::Fault;
use serde_json::Value;

use crate::util::*;

/// Faults whose requirement no suite checks yet, e.g. a new fault switch
/// whose suite is still being written (none today). Strict both ways: a fault missing here without a case fails
/// the test, and so does a fault listed here that some case now checks.
const NOT_YET_COVERED: &[&str] = &[];

/// `p2psip run`s at a time: they mostly wait on timers, but each runs
/// many cases in parallel on a small machine.
const PARALLEL: usize = 4;

/// An IUT file for the reference node, with one fault or none, with the
/// built-in default's arguments and roles but through the IUT-file path.
pub fn fault_iut(d: &Dir, fault: Option<&str>) -> PathBuf {
    let mut argv: Vec<String> = vec![P2PSIP.into(), "node".into()];
    argv.extend(NODE_ARGS.iter().map(|a| a.to_string()));
    if let Some(f) = fault {
        argv.extend(["--fault".to_string(), f.to_string()]);
    }
    let quoted: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    let name = fault.unwrap_or("clean");
    d.write(
        &format!("{name}.toml"),
        &format!(
            "[iut]\nname = \"reference node, fault {name}\"\nversion = \"0.0-test\"\n\
             command = [{}]\ntransports = [\"udp\", \"tcp\"]\nfeatures = [\"adapter\", \"stun\"]\n\
             ready_timeout_ms = 5000\nstop_grace_ms = 1000\n",
            quoted.join(", ")
        ),
    )
}

/// The requirement IDs a fault breaks ("NAT-2 / TXN-3" names two).
fn broken(f: Fault) -> Vec<String> {
    f.requirement()
        .split('/')
        .map(|r| r.trim().to_string())
        .collect()
}

/// One case of a report.
struct Case {
    id: String,
    suite: String,
    requirements: Vec<String>,
    level: String,
    verdict: String,
    detail: String,
}

impl Case {
    fn failed(&self) -> bool {
        matches!(self.verdict.as_str(), "fail" | "warn" | "unsupported")
    }

    /// Checks `req` and failed with a detail naming it.
    fn catches(&self, req: &str) -> bool {
        self.failed() && self.requirements.iter().any(|r| r == req) && names(&self.detail, req)
    }
}

/// Whether `text` names requirement `req` (not merely a longer ID that
/// starts with it, as QUERY-1 in QUERY-10).
fn names(text: &str, req: &str) -> bool {
    text.match_indices(req).any(|(i, _)| {
        !text[i + req.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// A finished `p2psip run` against the reference node with `fault`.
struct Run {
    fault: Option<Fault>,
    output: std::process::Output,
    cases: Vec<Case>,
}

/// Runs the suites against the reference node with `fault`: the cases
/// citing one of `reqs`, or every case when `reqs` is empty.
fn run(fault: Option<Fault>, reqs: &[String]) -> Run {
    let d = Dir::new();
    let iut = fault_iut(&d, fault.map(Fault::name));
    let out = d.join("out");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--iut".into(),
        iut.display().to_string(),
        "--report".into(),
        out.display().to_string(),
        "-q".into(),
    ];
    for r in reqs {
        args.extend(["-r".to_string(), r.clone()]);
    }
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let output = p2psip(&a, Duration::from_secs(240));
    let report: Value = std::fs::read(out.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let cases = report["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Case {
            id: s(&c["id"]),
            suite: s(&c["suite"]),
            requirements: c["requirements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect(),
            level: s(&c["level"]),
            verdict: s(&c["verdict"]),
            detail: s(&c["detail"]),
        })
        .collect();
    Run {
        fault,
        output,
        cases,
    }
}

/// Runs `jobs` on `PARALLEL` threads, results in job order.
fn parallel(jobs: Vec<(Option<Fault>, Vec<String>)>) -> Vec<Run> {
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                loop {
                    let Some((i, (fault, reqs))) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let r = run(fault, &reqs);
                    done.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Every requirement some embedded case cites.
fn checked_requirements() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
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

/// What is wrong with the run of a faulty node, if anything.
fn judge(run: &Run) -> Option<String> {
    let fault = run.fault.expect("a faulty run");
    let mut problems = Vec::new();
    if run.output.status.code() != Some(1) {
        problems.push(format!(
            "exit {:?}, expected 1 (non-compliant)",
            run.output.status.code()
        ));
    }
    for req in broken(fault) {
        let tied: Vec<&Case> = run
            .cases
            .iter()
            .filter(|c| c.requirements.contains(&req))
            .collect();
        let caught = tied
            .iter()
            .any(|c| c.catches(&req) && c.level == "MUST" && c.verdict == "fail");
        if !caught {
            let seen: Vec<String> = tied
                .iter()
                .map(|c| format!("{} ({} {})", c.id, c.level, c.verdict))
                .collect();
            problems.push(format!(
                "no MUST case checking {req} failed naming it; cases checking it: {seen:?}"
            ));
        }
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "fault {} (breaks {}): {}\n{}",
        fault.name(),
        fault.requirement(),
        problems.join("; "),
        text(&run.output)
    ))
}

#[test]
fn every_fault_is_caught_by_a_case_checking_its_requirement() {
    let all = std::env::var_os("P2PSIP_WRITE_MATRIX").is_some();
    let checked = checked_requirements();
    let mut uncovered: Vec<String> = Fault::ALL
        .iter()
        .flat_map(|f| broken(*f).into_iter().map(move |r| (f, r)))
        .filter(|(f, r)| !checked.contains(r) && !NOT_YET_COVERED.contains(&f.name()))
        .map(|(f, r)| format!("fault {} breaks {r}, which no case checks", f.name()))
        .collect();
    for name in NOT_YET_COVERED {
        let f = *Fault::ALL.iter().find(|f| f.name() == *name).unwrap();
        if broken(f).iter().any(|r| checked.contains(r)) {
            uncovered.push(format!(
                "fault {name} is in NOT_YET_COVERED but a case checks {}: remove it",
                f.requirement()
            ));
        }
    }
    let mut jobs: Vec<(Option<Fault>, Vec<String>)> = Fault::ALL
        .iter()
        .filter(|f| all || broken(**f).iter().any(|r| checked.contains(r)))
        .map(|f| (Some(*f), if all { Vec::new() } else { broken(*f) }))
        .collect();
    if all {
        jobs.push((None, Vec::new()));
    }
    let runs = parallel(jobs);
    if all {
        write_matrix(&runs);
    }
    let problems: Vec<String> = uncovered
        .into_iter()
        .chain(
            runs.iter()
                .filter(|r| {
                    r.fault
                        .is_some_and(|f| broken(f).iter().any(|q| checked.contains(q)))
                })
                .filter_map(judge),
        )
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The generated section of the top-level README.
const BEGIN: &str = "<!-- fault-matrix:begin -->\n";
const END: &str = "<!-- fault-matrix:end -->";

fn readme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

fn write_matrix(runs: &[Run]) {
    let clean = runs.iter().find(|r| r.fault.is_none()).expect("clean run");
    let clean_failed: BTreeSet<&str> = clean
        .cases
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.id.as_str())
        .collect();
    let faulty: Vec<&Run> = runs.iter().filter(|r| r.fault.is_some()).collect();
    let mut t = String::from(
        "| # | fault | breaks | caught by: failing cases that check the requirement and name it | other cases failing (not failing clean) |\n|---|---|---|---|---|\n",
    );
    for (i, r) in faulty.iter().enumerate() {
        let f = r.fault.unwrap();
        let reqs = broken(f);
        let caught: Vec<String> = r
            .cases
            .iter()
            .filter(|c| reqs.iter().any(|q| c.catches(q)))
            .map(|c| format!("`{}`", c.id))
            .collect();
        let mut per_suite: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &r.cases {
            if c.failed()
                && !reqs.iter().any(|q| c.catches(q))
                && !clean_failed.contains(c.id.as_str())
            {
                *per_suite.entry(c.suite.as_str()).or_default() += 1;
            }
        }
        let n: usize = per_suite.values().sum();
        let others = if n == 0 {
            "none".to_string()
        } else {
            let v: Vec<String> = per_suite.iter().map(|(s, k)| format!("{s} {k}")).collect();
            format!("{n} ({})", v.join(", "))
        };
        let caught = if caught.is_empty() && NOT_YET_COVERED.contains(&f.name()) {
            "not caught: no case checks it yet".to_string()
        } else if caught.is_empty() {
            "**not caught**".to_string()
        } else {
            caught.join(", ")
        };
        t.push_str(&format!(
            "| {} | `{}` | {} | {caught} | {others} |\n",
            i + 1,
            f.name(),
            f.requirement()
        ));
    }
    // The grid: every case failing against some node, one column per run.
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    for r in runs {
        ids.extend(r.cases.iter().filter(|c| c.failed()).map(|c| c.id.as_str()));
    }
    let total = clean.cases.len();
    t.push_str(&format!(
        "\n<details><summary>Per case: the {} of {total} cases that fail against some node</summary>\n\n\
         `●` fails naming the fault's requirement, `○` fails otherwise, `e` error, `s` skipped, blank: passes. Columns: the clean node, then the faults by number.\n\n",
        ids.len()
    ));
    t.push_str("| case | clean |");
    for i in 0..faulty.len() {
        t.push_str(&format!(" {} |", i + 1));
    }
    t.push_str("\n|---|---|");
    t.push_str(&"---|".repeat(faulty.len()));
    t.push('\n');
    for id in &ids {
        t.push_str(&format!("| `{id}` |"));
        for r in std::iter::once(clean).chain(faulty.iter().copied()) {
            let reqs = r.fault.map(broken).unwrap_or_default();
            let mark = match r.cases.iter().find(|c| c.id == *id) {
                None => "",
                Some(c) if reqs.iter().any(|q| c.catches(q)) => "●",
                Some(c) if c.failed() => "○",
                Some(c) if c.verdict == "error" => "e",
                Some(c) if c.verdict == "skip" => "s",
                Some(_) => "",
            };
            t.push_str(&format!(" {mark} |"));
        }
        t.push('\n');
    }
    t.push_str("\n</details>\n");
    let path = readme();
    let text = std::fs::read_to_string(&path).unwrap();
    let a = text.find(BEGIN).expect("begin marker in README.md") + BEGIN.len();
    let b = text.find(END).expect("end marker in README.md");
    std::fs::write(&path, format!("{}{t}{}", &text[..a], &text[b..])).unwrap();
}

/// The generated matrix has one row per fault switch, with the
/// requirement it breaks: a new or renamed fault needs a regeneration.
#[test]
fn readme_matrix_lists_every_fault() {
    let text = std::fs::read_to_string(readme()).unwrap();
    let a = text.find(BEGIN).expect("begin marker in README.md") + BEGIN.len();
    let b = text.find(END).expect("end marker in README.md");
    let rows: Vec<&str> = text[a..b]
        .lines()
        .take_while(|l| !l.is_empty())
        .skip(2)
        .collect();
    assert_eq!(rows.len(), Fault::ALL.len(), "{rows:#?}");
    for (row, f) in rows.iter().zip(Fault::ALL) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[1], format!("`{}`", f.name()), "{row}");
        assert_eq!(cells[2], f.requirement(), "{row}");
        if !NOT_YET_COVERED.contains(&f.name()) {
            assert!(!cells[3].contains("not caught"), "{row}");
        }
    }
}

#[test]
fn requirement_names_are_matched_whole() {
    assert!(names("QUERY-1: expected", "QUERY-1"));
    assert!(names("x (QUERY-1)", "QUERY-1"));
    assert!(!names("QUERY-10: expected", "QUERY-1"));
    assert!(names("QUERY-10 and QUERY-1", "QUERY-1"));
}
