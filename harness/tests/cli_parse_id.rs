//! `p2psip parse` and `p2psip id` against the committed vectors: every
//! corpus message in both modes, every ID vector, and the exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn p2psip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2psip"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn parse_gets_every_corpus_message_right_in_both_modes() {
    let index = json(&vectors().join("messages/index.json"));
    let mut n = 0;
    for entry in index.as_array().unwrap() {
        let file = vectors().join(entry["file"].as_str().unwrap());
        let expected = json(&file.with_extension("json"));
        let profile = entry["profile"].as_str().unwrap();
        for (mode, flag) in [("strict", None), ("lenient", Some("--lenient"))] {
            let mut args = vec![
                "parse",
                file.to_str().unwrap(),
                "--json",
                "--profile",
                profile,
            ];
            args.extend(flag);
            let out = p2psip(&args);
            let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{}: not JSON ({e}): {}",
                    file.display(),
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            assert_eq!(got, expected[mode], "{} ({mode})", file.display());
            let ok = expected[mode]["ok"].as_bool().unwrap();
            assert_eq!(
                out.status.code(),
                Some(if ok { 0 } else { 1 }),
                "{}",
                file.display()
            );
            n += 1;
        }
    }
    assert!(n > 100, "only {n} parses checked");
}

#[test]
fn parse_reads_standard_input_and_reports_usage_errors() {
    use std::io::Write;
    let file = vectors().join("messages/valid/join.sip");
    let mut child = Command::new(env!("CARGO_BIN_EXE_p2psip"))
        .args(["parse", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&file).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["class"], "join");

    let missing = p2psip(&["parse", "/nonexistent/file.sip", "--json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));
    assert_eq!(p2psip(&["parse"]).status.code(), Some(2));
    assert_eq!(
        p2psip(&["parse", "x", "--profile", "nope"]).status.code(),
        Some(2)
    );
}

#[test]
fn stun_is_not_sip() {
    let file = vectors().join("messages/invalid/stun-binding-request.sip");
    let out = p2psip(&["parse", file.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["requirement"], "WIRE-7");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not SIP: STUN")
    );
}

#[test]
fn id_peer_agrees_with_vectors() {
    for v in json(&vectors().join("peer-ids.json")).as_array().unwrap() {
        let port = v["port"].to_string();
        let out = p2psip(&["id", "peer", v["ip"].as_str().unwrap(), &port]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            v["peer_id"].as_str().unwrap()
        );
    }
}

#[test]
fn id_resource_agrees_with_vectors() {
    for v in json(&vectors().join("resource-ids.json"))
        .as_array()
        .unwrap()
    {
        let out = p2psip(&[
            "id",
            "resource",
            v["uri"].as_str().unwrap(),
            "--replicas",
            "3",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("canonical {}", v["canonical"].as_str().unwrap())
        );
        assert_eq!(
            lines[1],
            format!("primary {}", v["primary"].as_str().unwrap())
        );
        for n in 1..=3 {
            assert_eq!(
                lines[1 + n],
                format!("replica{n} {}", v["replicas"][n - 1].as_str().unwrap())
            );
        }
    }
    let bad = p2psip(&["id", "resource", "not a uri"]);
    assert_eq!(bad.status.code(), Some(2));
    let default = p2psip(&["id", "resource", "sip:alice@example.org"]);
    assert_eq!(
        String::from_utf8_lossy(&default.stdout).lines().count(),
        4,
        "canonical, primary, 2 replicas"
    );
}

#[test]
fn vectors_check_detects_drift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(
        p2psip(&["vectors", "regen", "--dir", d]).status.code(),
        Some(0)
    );
    assert_eq!(
        p2psip(&["vectors", "check", "--dir", d]).status.code(),
        Some(0)
    );
    std::fs::write(dir.path().join("ring.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("messages/valid/stray.sip"), b"x").unwrap();
    let out = p2psip(&["vectors", "check", "--dir", d]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("differs: ring.json")
            && text.contains("not generated: messages/valid/stray.sip"),
        "{text}"
    );
}
