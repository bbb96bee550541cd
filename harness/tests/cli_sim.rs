//! `p2psip sim` through the binary: a small run is deterministic (same
//! seed, same output), its verdict is the exit code, and bad arguments
//! exit 2 with a message that names the problem.

use std::process::{Command, Output};

use serde_json::Value;

fn p2psip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2psip"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A small ring: 12 peers, a few registrations and lookups, two failures.
const SMALL: &[&str] = &[
    "sim",
    "--peers",
    "12",
    "--resources",
    "4",
    "--lookups",
    "300",
    "--failures",
    "2",
    "--no-measured",
];

fn small(seed: &str, extra: &[&str]) -> Output {
    let mut args = SMALL.to_vec();
    args.extend(["--seed", seed]);
    args.extend(extra);
    p2psip(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_same_seed_gives_the_same_output_and_exit_0() {
    let a = small("4", &[]);
    assert_eq!(a.status.code(), Some(0), "{}{}", stdout(&a), stderr(&a));
    let b = small("4", &[]);
    assert_eq!(b.status.code(), Some(0));
    assert_eq!(stdout(&a), stdout(&b), "two runs of seed 4 differ");
    let text = stdout(&a);
    assert!(
        text.starts_with("p2psip sim: scenario join, seed 4"),
        "{text}"
    );
    for id in ["C-G5", "C-G6", "C-Q1", "C-R1", "C-R3", "kept"] {
        assert!(text.contains(id), "no {id} in\n{text}");
    }
    assert!(
        !text.contains("measured "),
        "--no-measured leaves wall time out"
    );
    // Another seed is another run.
    let c = small("5", &[]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));
    assert_ne!(stdout(&c), text);
}

#[test]
fn json_is_the_report_and_is_deterministic_too() {
    let a = small("9", &["--json"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let b = small("9", &["--json"]);
    assert_eq!(a.stdout, b.stdout);
    let v: Value = serde_json::from_slice(&a.stdout).expect("one JSON document");
    assert_eq!(v["schema"], "p2psip-sim/1");
    assert_eq!(v["params"]["seed"], 9);
    assert_eq!(v["passed"], true);
    assert!(v.get("measured").is_none());
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true));
    assert!(checks.iter().any(|c| c["id"] == "C-G5"));
}

#[test]
fn a_failed_check_exits_1() {
    // A runaway bound no ring can meet stops the run with a failed check.
    let o = small("4", &["--max-event-rate", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("runaway"), "{}", stdout(&o));
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["sim", "--loss", "2"], "--loss must be in [0, 1]"),
        (&["sim", "--peers", "0"], "--peers must be at least 1"),
        (&["sim", "--latency-ms", "9..3"], "the range is empty"),
        (&["sim", "--peers", "many"], "invalid value 'many'"),
        (&["sim", "--no-such-flag"], "unexpected argument"),
        (
            &["sim", "--scenario", "/nonexistent/run.toml"],
            "reading scenario file /nonexistent/run.toml",
        ),
    ];
    for (args, message) in cases {
        let o = p2psip(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn an_invalid_scenario_file_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "name = \"t\"\n[[step]]\naction = \"join\"\ncuont = 3\n",
    )
    .unwrap();
    let o = p2psip(&["sim", "--scenario", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cuont"), "{}", stderr(&o));
}

#[test]
fn help_explains_scenarios_output_and_exit_codes() {
    let o = p2psip(&["sim", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for needle in [
        "Scenarios (--scenario):",
        "churn",
        "zave",
        "TOML scenario file",
        "Exit codes: 0 every check passed, 1 a check failed",
        "--seed",
        "--peers",
        "--latency-ms",
        "Examples:",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
}
