//! `junit.xml`: one `<testsuite>` per suite, one `<testcase>` per case
//! (`classname` = suite, `name` = case id), for CI test-result viewers.
//!
//! Outcomes map to JUnit so that only what fails the run shows as failed:
//!
//! | outcome | JUnit |
//! | --- | --- |
//! | passed, warned | success (a warning is stated in `system-out`) |
//! | failed | `<failure>` |
//! | errored | `<error>` |
//! | skipped | `<skipped>` |
//! | unsupported (MAY) | `<skipped type="unsupported">` |
//! | xfailed | `<skipped type="xfail">` with the expectation's reason |
//! | xpassed | `<failure type="xpass">`, or success when `allow_xpass` |
//!
//! A failure's message is the case detail; its text holds the failed
//! requirement with expected and actual. `system-out` holds the message
//! ladder summary, notes and IUT log lines.

use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use crate::error::RenderError;
use crate::model::{CaseResult, Outcome, Report};
use crate::text::time_ms;

/// Writes the JUnit XML of the report.
pub fn write(report: &Report, w: impl Write) -> Result<(), RenderError> {
    to_junit(report).serialize(w)?;
    Ok(())
}

/// The report as a `quick_junit` report, for callers that want to add to it.
pub fn to_junit(report: &Report) -> quick_junit::Report {
    let mut out = quick_junit::Report::new(x(format!("p2psip conformance: {}", report.iut.name)));
    out.set_timestamp(report.started.0.fixed_offset());
    out.set_time(Duration::from_millis(report.duration_ms));

    let mut suites: Vec<TestSuite> = Vec::new();
    for case in &report.cases {
        let suite_name = x(&case.suite);
        let i = match suites.iter().position(|s| s.name.as_str() == suite_name) {
            Some(i) => i,
            None => {
                suites.push(new_suite(report, &x(&case.suite)));
                suites.len() - 1
            }
        };
        suites[i].add_test_case(test_case(report, case));
    }
    for s in &mut suites {
        let ms: u64 = s
            .test_cases
            .iter()
            .filter_map(|c| c.time)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add);
        s.set_time(Duration::from_millis(ms));
    }
    out.add_test_suites(suites);
    out
}

fn new_suite(report: &Report, name: &str) -> TestSuite {
    let mut s = TestSuite::new(name);
    s.set_timestamp(report.started.0.fixed_offset());
    let mut props = vec![
        Property::new(
            "harness",
            format!("{} {}", report.harness.name, report.harness.version),
        ),
        Property::new("suites_digest", &report.harness.suites_digest),
        Property::new("profile", &report.profile),
        Property::new("profile_digest", &report.harness.profile_digest),
        Property::new("seed", report.seed.to_string()),
        Property::new("iut", &report.iut.name),
        Property::new("verdict", report.summary.verdict.as_str()),
    ];
    if let Some(v) = &report.iut.version {
        props.push(Property::new("iut_version", x(v)));
    }
    s.add_properties(props);
    s
}

fn test_case(report: &Report, case: &CaseResult) -> TestCase {
    let reason = case
        .expected_failure
        .as_ref()
        .map_or("", |e| e.reason.as_str());
    let status = match case.outcome {
        Outcome::Passed | Outcome::Warned => TestCaseStatus::success(),
        Outcome::XPassed if report.run.allow_xpass => TestCaseStatus::success(),
        Outcome::XPassed => non_success(
            NonSuccessKind::Failure,
            format!("passed but expected to fail: {reason}"),
            "xpass",
            case,
        ),
        Outcome::Failed => non_success(
            NonSuccessKind::Failure,
            case.detail.clone(),
            &failure_type(case),
            case,
        ),
        Outcome::Errored => non_success(NonSuccessKind::Error, case.detail.clone(), "error", case),
        Outcome::Skipped => skipped(case.detail.clone(), "skip", None),
        Outcome::Unsupported => skipped(
            format!("optional (MAY) feature not supported: {}", case.detail),
            "unsupported",
            Some(failure_text(case)),
        ),
        Outcome::XFailed => skipped(
            format!("expected failure: {reason}"),
            "xfail",
            Some(failure_text(case)),
        ),
    };
    let mut tc = TestCase::new(x(&case.id), status);
    tc.set_classname(x(&case.suite));
    tc.set_time(Duration::from_millis(case.duration_ms));
    tc.set_system_out(x(system_out(case)));
    tc
}

fn failure_type(case: &CaseResult) -> String {
    match &case.evidence.failure {
        Some(f) if !f.requirement.is_empty() => format!("{} {}", case.level, f.requirement),
        _ => case.level.to_string(),
    }
}

fn non_success(
    kind: NonSuccessKind,
    message: String,
    ty: &str,
    case: &CaseResult,
) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_message(x(message));
    s.set_type(x(ty));
    s.set_description(x(failure_text(case)));
    s
}

fn skipped(message: String, ty: &str, description: Option<String>) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(x(message));
    s.set_type(ty);
    if let Some(d) = description {
        s.set_description(x(d));
    }
    s
}

/// Detail, then the failed check and the attempts.
fn failure_text(case: &CaseResult) -> String {
    let mut t = String::new();
    t.push_str(case.detail.trim_end());
    t.push('\n');
    if let Some(f) = &case.evidence.failure {
        let _ = write!(t, "\nrequirement: {} ({})", f.requirement, case.level);
        let _ = write!(t, "\nexpected: {}", f.expected);
        let _ = write!(t, "\nactual: {}", f.actual);
        if let Some(at) = f.at_ms {
            let _ = write!(t, "\nat: {} ms", time_ms(at));
        }
        t.push('\n');
    }
    if case.attempts.len() > 1 {
        let list: Vec<&str> = case.attempts.iter().map(|v| v.as_str()).collect();
        let _ = writeln!(
            t,
            "attempts: {}{}",
            list.join(", "),
            if case.flaky { " (flaky)" } else { "" }
        );
    }
    t
}

fn system_out(case: &CaseResult) -> String {
    // `write!` into a String cannot fail; results are ignored on purpose.
    let mut t = String::new();
    let _ = writeln!(t, "case: {} - {}", case.id, case.title);
    let _ = writeln!(
        t,
        "level: {}; requirements: {}",
        case.level,
        case.requirements.join(", ")
    );
    let _ = writeln!(t, "verdict: {}; outcome: {}", case.verdict, case.outcome);
    if case.outcome == Outcome::Warned {
        let _ = writeln!(t, "WARNING (SHOULD not met): {}", case.detail.trim_end());
    }
    if let Some(e) = &case.expected_failure {
        let _ = writeln!(t, "expected to {}: {}", e.verdict, e.reason);
    }
    let ev = &case.evidence;
    if let Some(p) = &ev.pcap {
        let _ = writeln!(t, "pcap: {p}");
    }
    for n in &ev.notes {
        let _ = writeln!(t, "note: {n}");
    }
    if !ev.ladder.is_empty() {
        let _ = writeln!(t, "ladder:");
        for m in &ev.ladder {
            let from = endpoint(m.from_label.as_deref(), &m.from);
            let to = endpoint(m.to_label.as_deref(), &m.to);
            let _ = writeln!(
                t,
                "  [{:>10} ms] {from} -> {to} {}: {}",
                time_ms(m.t_ms),
                m.transport,
                m.summary
            );
        }
    }
    for log in &ev.logs {
        let _ = writeln!(t, "log {} ({} lines):", log.instance, log.lines.len());
        for l in &log.lines {
            let _ = writeln!(t, "  {l}");
        }
    }
    t
}

/// Text fit for XML 1.0: quick-junit drops C0 controls and ANSI escapes;
/// U+FFFE and U+FFFF are not XML characters either.
fn x(s: impl AsRef<str>) -> String {
    s.as_ref()
        .chars()
        .filter(|&c| c != '\u{FFFE}' && c != '\u{FFFF}')
        .collect()
}

fn endpoint(label: Option<&str>, addr: &str) -> String {
    match label {
        Some(l) if !l.is_empty() => format!("{l} ({addr})"),
        _ => addr.to_string(),
    }
}
