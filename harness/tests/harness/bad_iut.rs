use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn run_tiny(d: &Dir, iut: &std::path::Path, filter: &str) -> std::process::Output {
    d.write("suites/tiny.toml", TINY);
    d.run(iut, &["--exact", filter])
}

#[test]
fn never_ready_iut_could_not_run_and_leaves_nothing() {
    let d = Dir::new();
    // Never answers anything; starts a child of its own too.
    let iut = d.shell_iut(
        "sleeper.toml",
        "echo $$ >> PIDS; sleep 1000 & echo $! >> PIDS; exec sleep 1000",
    );
    let o = run_tiny(&d, &iut, "tiny.options-200");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("never became ready") && err.contains("no answer"),
        "{}",
        text(&o)
    );
    let pids = d.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_gone(&pids);
    // The report says why.
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/report.json")).unwrap()).unwrap();
    assert_eq!(r["summary"]["verdict"], "could-not-run");
}

#[test]
fn iut_crashing_at_start_could_not_run() {
    let d = Dir::new();
    let iut = d.shell_iut(
        "crash.toml",
        "echo $$ >> PIDS; echo 'boom: cannot start' >&2; exit 3",
    );
    let o = run_tiny(&d, &iut, "tiny.options-200");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exit code 3") && err.contains("boom: cannot start"),
        "{}",
        text(&o)
    );
    assert_gone(&d.pids());
}

#[test]
fn iut_crashing_mid_case_fails_the_case_with_status_and_logs() {
    let d = Dir::new();
    // Answers the readiness probe and one OPTIONS, then exits 7.
    let tiny = TINY.replace(
        "  { do = \"expect\", at = \"p\", response = 200, checks = [\"msg.options-200\"] },\n]",
        "  { do = \"expect\", at = \"p\", response = 200 },\n  { do = \"send\", from = \"p\", msg = \"options\" },\n  { do = \"expect\", at = \"p\", response = 200 },\n  { do = \"send\", from = \"p\", msg = \"options\" },\n  { do = \"expect\", at = \"p\", response = 200 },\n]",
    );
    d.write("suites/tiny.toml", &tiny);
    let iut = d.stub_iut(
        "crash.toml",
        &["--answer", "2", "--then", "exit", "--exit-code", "7"],
    );
    let o = d.run(&iut, &["--exact", "tiny.options-200"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("exited (exit code 7)"), "{}", text(&o));
    assert!(
        out.contains("stub: exiting with 7"),
        "the last log lines: {}",
        text(&o)
    );
}

#[test]
fn hung_iut_fails_and_is_killed_even_ignoring_sigterm() {
    let d = Dir::new();
    // Ready, answers one request, then reads and ignores everything; it
    // also ignores SIGTERM and starts a child: only SIGKILL of the group
    // stops them all.
    let iut = d.iut_file(
        "hung.toml",
        &[
            "sh".into(),
            "-c".into(),
            format!(
                "echo $$ >> {}; exec {} stub-peer --listen $0 --answer 2 --then silent --ignore-sigterm --spawn-sleeper",
                d.join("pids").display(),
                P2PSIP
            ),
            "{ip}:{port}".into(),
        ],
        "",
    );
    let started = Instant::now();
    let o = run_tiny(&d, &iut, "tiny.options-200");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("OPTIONS liveness probe") || out.contains("got nothing"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // The sleeper children printed their pids on stdout of the IUT; the
    // shell pids are in the file. All groups are gone.
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/report.json")).unwrap()).unwrap();
    let mut pids = d.pids();
    for c in r["cases"].as_array().unwrap() {
        for b in c["evidence"]["logs"].as_array().unwrap() {
            for l in b["lines"].as_array().unwrap() {
                if let Some(p) = l.as_str().unwrap().split("out: sleeper ").nth(1) {
                    pids.push(p.trim().parse().unwrap());
                }
            }
        }
    }
    assert!(pids.len() >= 2, "{pids:?}");
    assert_gone(&pids);
}

#[test]
fn garbage_answering_iut_could_not_run() {
    let d = Dir::new();
    let iut = d.stub_iut("garbage.toml", &["--answer", "0", "--then", "garbage"]);
    let o = run_tiny(&d, &iut, "tiny.options-200");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("never with 200") && err.contains("unparsable"),
        "{}",
        text(&o)
    );
}

#[test]
fn garbage_mid_case_fails_the_case() {
    let d = Dir::new();
    let iut = d.stub_iut("garbage.toml", &["--answer", "1", "--then", "garbage"]);
    let o = run_tiny(&d, &iut, "tiny.options-200");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("unparsable"), "{}", text(&o));
}

#[test]
fn interrupted_harness_leaves_no_process() {
    let d = Dir::new();
    let slow = r#"
suite = "tiny"
title = "Tiny"

[[case]]
id = "tiny.slow"
title = "A case that takes a minute"
requirements = ["TXN-4"]
level = "MUST"
desc = "Starts the IUT and waits."
expect = "Nothing in particular."
topology = { iut = 1, puppets = ["p"] }
deadline_ms = 120000
steps = [
  { do = "start", node = "iut1" },
  { do = "wait", ms = 60000 },
]
"#;
    d.write("suites/tiny.toml", slow);
    let iut = d.iut_file(
        "iut.toml",
        &[
            "sh".into(),
            "-c".into(),
            format!(
                "echo $$ >> {}; exec {} stub-peer --listen $0",
                d.join("pids").display(),
                P2PSIP
            ),
            "{ip}:{port}".into(),
        ],
        "",
    );
    let child = Command::new(P2PSIP)
        .args([
            "run",
            "--iut",
            iut.to_str().unwrap(),
            "--suites",
            d.join("suites").to_str().unwrap(),
            "--exact",
            "tiny.slow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Preflight instance, then the case's instance: wait for the second.
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.pids().len() < 2 {
        assert!(Instant::now() < deadline, "the case's IUT never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids = d.pids();
    assert!(running(pids[1]));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = wait_output(child, Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("interrupted"),
        "{}",
        text(&o)
    );
    assert_gone(&pids);
}
