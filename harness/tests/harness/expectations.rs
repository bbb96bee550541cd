use std::time::Duration;

use crate::util::*;

fn run(d: &Dir, extra: &[&str]) -> std::process::Output {
    d.write("suites/tiny.toml", TINY);
    let iut = d.stub_iut("stub.toml", &[]);
    let mut args = vec![
        "run".to_string(),
        "--iut".into(),
        iut.display().to_string(),
        "--suites".into(),
        d.join("suites").display().to_string(),
        "tiny.options".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    p2psip(&a, Duration::from_secs(30))
}

#[test]
fn an_expected_failure_makes_the_run_compliant() {
    let d = Dir::new();
    let e = d.write(
        "expect.toml",
        "[[expect]]\ncase = \"tiny.options-404\"\nreason = \"known\"\n",
    );
    let o = run(&d, &["--expect", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 xfailed"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_expected_failure_that_passes_fails_the_run_unless_allowed() {
    let d = Dir::new();
    let e = d.write(
        "expect.toml",
        "[[expect]]\ncase = \"tiny.options-404\"\nreason = \"known\"\n[[expect]]\ncase = \"tiny.options-200\"\nreason = \"was broken\"\n",
    );
    let o = run(&d, &["--expect", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("xpass"),
        "{}",
        text(&o)
    );
    let o = run(&d, &["--expect", e.to_str().unwrap(), "--allow-xpass"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn an_entry_matching_no_case_is_an_error() {
    let d = Dir::new();
    let e = d.write(
        "expect.toml",
        "[[expect]]\ncase = \"tiny.no-such-case\"\nreason = \"typo\"\n",
    );
    let o = run(&d, &["--expect", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("tiny.no-such-case"),
        "{}",
        text(&o)
    );
    let bad = d.write("bad.toml", "[[expect]]\ncase = \"tiny.options-404\"\n");
    let o = run(&d, &["--expect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn write_expect_then_expect_is_compliant() {
    let d = Dir::new();
    let e = d.join("written.toml");
    let o = run(&d, &["--write-expect", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let written = std::fs::read_to_string(&e).unwrap();
    assert!(written.contains("tiny.options-404"), "{written}");
    let o = run(&d, &["--expect", e.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
