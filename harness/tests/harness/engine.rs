use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn report(dir: &Dir) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("out/report.json")).unwrap()).unwrap()
}

fn case<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[test]
fn tiny_suite_end_to_end() {
    let d = Dir::new();
    d.write("suites/tiny.toml", TINY);
    let iut = d.stub_iut("stub.toml", &[]);
    let out = d.join("out");
    let o = d.run(&iut, &["--seed", "7"]);
    // One MUST case fails: non-compliant.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(status_of(&stdout, "tiny.options-200"), "ok", "{}", text(&o));
    assert_eq!(
        status_of(&stdout, "tiny.options-404"),
        "FAILED",
        "{}",
        text(&o)
    );
    for f in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = report(&d);
    assert_eq!(r["seed"], 7);
    assert_eq!(r["iut"]["name"], "stub.toml");
    assert_eq!(r["summary"]["verdict"], "non-compliant");
    assert!(r["harness"]["suites_digest"].as_str().unwrap().len() == 40);

    let ok = case(&r, "tiny.options-200");
    assert_eq!(ok["verdict"], "pass");
    let ladder = ok["evidence"]["ladder"].as_array().unwrap();
    assert!(
        ladder
            .iter()
            .any(|l| l["from_label"] == "p" && l["to_label"] == "iut1"),
        "{ladder:?}"
    );
    assert!(
        ladder
            .iter()
            .any(|l| l["from_label"] == "iut1" && l["summary"] == "200 OK"),
        "{ladder:?}"
    );
    let pcap = ok["evidence"]["pcap"].as_str().unwrap();
    let bytes = std::fs::read(out.join(pcap)).unwrap();
    assert_eq!(&bytes[..4], &0xA1B2_3C4Du32.to_le_bytes());
    let logs = ok["evidence"]["logs"].as_array().unwrap();
    assert!(logs.iter().any(|b| {
        b["instance"] == "iut1"
            && b["lines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().contains("ready"))
    }));

    let bad = case(&r, "tiny.options-404");
    assert_eq!(bad["verdict"], "fail");
    let f = &bad["evidence"]["failure"];
    assert_eq!(f["requirement"], "TXN-4");
    assert!(f["expected"].as_str().unwrap().contains("404"), "{f}");
    assert!(f["actual"].as_str().unwrap().contains("200 OK"), "{f}");

    // A failing SHOULD case is a warning, not a failure.
    assert_eq!(case(&r, "tiny.should-fail")["verdict"], "warn");
    assert_eq!(case(&r, "tiny.two-instances")["verdict"], "pass");
}

#[test]
fn passing_selection_is_compliant_and_filters_work() {
    let d = Dir::new();
    d.write("suites/tiny.toml", TINY);
    let iut = d.stub_iut("stub.toml", &[]);
    let suites = d.join("suites");
    let args = [
        "run",
        "--iut",
        iut.to_str().unwrap(),
        "--suites",
        suites.to_str().unwrap(),
    ];
    let mut a = args.to_vec();
    a.extend(["--exact", "tiny.options-200"]);
    let o = p2psip(&a, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("running 1 test"),
        "{}",
        text(&o)
    );
    // A SHOULD failure alone leaves the run compliant.
    let mut a = args.to_vec();
    a.extend(["tiny.s"]);
    let o = p2psip(&a, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // --skip and --list.
    let mut a = args.to_vec();
    a.extend(["--list", "--skip", "404"]);
    let o = p2psip(&a, Duration::from_secs(20));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("tiny.options-200: test") && !s.contains("tiny.options-404"),
        "{}",
        text(&o)
    );
    // --partition: the shards together are the whole selection.
    let mut seen = Vec::new();
    for k in ["1/2", "2/2"] {
        let mut a = args.to_vec();
        a.extend(["--list", "--partition", k]);
        let o = p2psip(&a, Duration::from_secs(20));
        seen.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.strip_suffix(": test").map(str::to_string)),
        );
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "tiny.options-200",
            "tiny.options-404",
            "tiny.should-fail",
            "tiny.two-instances"
        ]
    );
}

#[test]
fn repeat_reports_attempts_and_same_seed_same_verdicts() {
    let d = Dir::new();
    d.write("suites/tiny.toml", TINY);
    let iut = d.stub_iut("stub.toml", &[]);
    let o = d.run(&iut, &["--repeat", "3", "tiny.options"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&d);
    let ok = case(&r, "tiny.options-200");
    assert_eq!(ok["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(ok["flaky"], false);
    assert_eq!(r["run"]["repeat"], 3);
}
