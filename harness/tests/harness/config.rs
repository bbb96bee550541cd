use std::time::Duration;

use crate::util::*;

#[test]
fn iut_file_errors_name_the_line() {
    let d = Dir::new();
    let bad = d.write(
        "bad.toml",
        "[iut]\nname = \"x\"\ncommand = [\n  \"node\",\n  \"--listen\", \"{adress}\",\n]\n",
    );
    let o = p2psip(
        &["run", "--iut", bad.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:5:") && err.contains("{adress}"),
        "{}",
        text(&o)
    );

    let typo = d.write(
        "typo.toml",
        "[iut]\nname = \"x\"\ncommand = [\"node\"]\nready_timout_ms = 10\n",
    );
    let o = p2psip(
        &["run", "--iut", typo.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("typo.toml:4:") && err.contains("ready_timout_ms"),
        "{}",
        text(&o)
    );

    let missing = d.join("nope.toml");
    let o = p2psip(
        &["run", "--iut", missing.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn zero_selected_cases_is_an_error() {
    let o = p2psip(&["run", "no-case-has-this-name"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no case selected"),
        "{}",
        text(&o)
    );
    let o = p2psip(&["run", "-s", "no-such-suite"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown suite"),
        "{}",
        text(&o)
    );
    let o = p2psip(&["run", "--exact", "transactions"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = p2psip(&["run", "--partition", "3/2"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn suite_errors_name_the_line() {
    let d = Dir::new();
    let bad = TINY.replace("{ do = \"send\", from = \"p\", msg = \"options\" },\n  { do = \"expect\", at = \"p\", response = 200, checks", "{ do = \"send\", from = \"q\", msg = \"options\" },\n  { do = \"expect\", at = \"p\", response = 200, checks");
    d.write("suites/tiny.toml", &bad);
    let o = p2psip(
        &[
            "run",
            "--suites",
            d.join("suites").to_str().unwrap(),
            "--list",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tiny.toml:15:") && err.contains("\"q\""),
        "{}",
        text(&o)
    );
}

#[test]
fn list_shows_stable_ids_of_the_embedded_suites() {
    let o = p2psip(&["run", "--list"], Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for id in [
        "transactions.retransmits-unanswered-request",
        "wire.oversized-tcp-gets-513",
        "join.mixed-ring-converges",
    ] {
        assert!(s.contains(&format!("{id}: test")), "{id} not listed:\n{s}");
    }
}
