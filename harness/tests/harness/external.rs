use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A stub peer the "user" runs, killed at the end.
struct UserIut(std::process::Child);

impl Drop for UserIut {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn iut_addr_runs_what_it_can_and_skips_the_rest() {
    let d = Dir::new();
    d.write("suites/tiny.toml", TINY);
    let addr = p2psip_harness::net::fresh_endpoint().unwrap();
    let _iut = UserIut(
        Command::new(P2PSIP)
            .args(["stub-peer", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let o = p2psip(
        &[
            "run",
            "--iut-addr",
            &addr.to_string(),
            "--suites",
            d.join("suites").to_str().unwrap(),
            "--report",
            d.join("out").to_str().unwrap(),
            "--skip",
            "404",
            "--skip",
            "should",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(status_of(&out, "tiny.options-200"), "ok", "{}", text(&o));
    let skipped = status_of(&out, "tiny.two-instances");
    assert!(
        skipped.starts_with("ignored") && skipped.contains("needs several IUT instances"),
        "{}",
        text(&o)
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/report.json")).unwrap()).unwrap();
    assert_eq!(r["iut"]["address"], addr.to_string());
    let skipped = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "tiny.two-instances")
        .unwrap();
    assert_eq!(skipped["verdict"], "skip");
    assert!(skipped["detail"].as_str().unwrap().contains("--iut-addr"));
}

#[test]
fn iut_addr_with_nobody_there_could_not_run() {
    let d = Dir::new();
    d.write("suites/tiny.toml", TINY);
    // Nobody listens there.
    let addr = p2psip_harness::net::fresh_endpoint().unwrap();
    let o = p2psip(
        &[
            "run",
            "--iut-addr",
            &addr.to_string(),
            "--suites",
            d.join("suites").to_str().unwrap(),
            "--exact",
            "tiny.options-200",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--iut-addr"),
        "{}",
        text(&o)
    );
}
