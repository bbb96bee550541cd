//! Renderer tests over a small fixed run.

mod common;

use p2psip_reports::*;
use quick_xml::events::Event;

#[test]
fn fixture_grades_as_expected() {
    let r = common::report();
    let s = &r.summary;
    assert_eq!(s.verdict, RunVerdict::NonCompliant);
    assert_eq!(
        (s.passed, s.failed, s.warned, s.skipped, s.errored),
        (2, 2, 1, 1, 1)
    );
    assert_eq!(
        (s.xfailed, s.xpassed, s.unsupported, s.flaky, s.total),
        (1, 1, 1, 1, 10)
    );
    assert_eq!(r.run.unused_expectations, vec!["line 11: route.*"]);
    assert_eq!(
        s.to_string(),
        "NON-COMPLIANT: 2 passed, 2 failed, 1 skipped (1 warned, 1 errored, 1 xfailed, 1 xpassed, 1 unsupported, 1 flaky; 10 cases)"
    );
}

#[test]
fn json_snapshot() {
    // The renderer's own bytes, i.e. exactly what report.json holds.
    let json = json::to_string(&common::report()).unwrap();
    insta::assert_snapshot!("report_json", json);
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("summary_md", markdown::to_string(&common::report()));
}

#[test]
fn json_round_trips_through_load() {
    let r = common::report();
    let mut buf = Vec::new();
    json::write(&r, &mut buf).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(
        text.starts_with("{\n  \"schema\": \"p2psip-report/1\","),
        "{text}"
    );
    let back = json::load(buf.as_slice()).unwrap();
    assert_eq!(back, r);

    // Unknown fields of a later minor version are ignored.
    let mut v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    v["schema"] = "p2psip-report/1.1".into();
    v["future_field"] = 1.into();
    v["cases"][0]["future_case_field"] = true.into();
    let back = json::from_str(&v.to_string()).unwrap();
    assert_eq!(back.cases, r.cases);

    v["schema"] = "p2psip-report/2".into();
    assert!(matches!(
        json::from_str(&v.to_string()),
        Err(LoadError::UnsupportedSchema { .. })
    ));
}

#[derive(Default, Debug)]
struct JunitCounts {
    suites: usize,
    cases: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    root_tests: Option<usize>,
    root_failures: Option<usize>,
    case_names: Vec<(String, String)>,
    failure_messages: Vec<String>,
    failure_texts: Vec<String>,
    system_out: Vec<String>,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref() == name.as_bytes())
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap()
                .into_owned()
        })
}

/// Parses JUnit XML strictly and counts its elements.
fn parse_junit(xml: &str) -> JunitCounts {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut c = JunitCounts::default();
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                count(&mut c, &name, &e);
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                count(&mut c, &name, &e);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                let text = t.decode().unwrap().into_owned();
                let text = quick_xml::escape::unescape(&text).unwrap().into_owned();
                match stack.last().map(String::as_str) {
                    Some("failure") => c.failure_texts.push(text),
                    Some("system-out") => c.system_out.push(text),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                // Entity references split text nodes; keep them attached.
                let s = format!("&{};", String::from_utf8_lossy(r.as_ref()));
                let s = quick_xml::escape::unescape(&s).unwrap().into_owned();
                match stack.last().map(String::as_str) {
                    Some("failure") => push_tail(&mut c.failure_texts, &s),
                    Some("system-out") => push_tail(&mut c.system_out, &s),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    c
}

fn push_tail(v: &mut Vec<String>, s: &str) {
    match v.last_mut() {
        Some(last) => last.push_str(s),
        None => v.push(s.to_string()),
    }
}

fn count(c: &mut JunitCounts, name: &str, e: &quick_xml::events::BytesStart<'_>) {
    match name {
        "testsuites" => {
            c.root_tests = attr(e, "tests").and_then(|v| v.parse().ok());
            c.root_failures = attr(e, "failures").and_then(|v| v.parse().ok());
        }
        "testsuite" => c.suites += 1,
        "testcase" => {
            c.cases += 1;
            c.case_names.push((
                attr(e, "classname").unwrap_or_default(),
                attr(e, "name").unwrap_or_default(),
            ));
        }
        "failure" => {
            c.failures += 1;
            c.failure_messages
                .push(attr(e, "message").unwrap_or_default());
        }
        "error" => c.errors += 1,
        "skipped" => c.skipped += 1,
        _ => {}
    }
}

#[test]
fn junit_parses_back_with_the_right_counts() {
    let r = common::report();
    let mut buf = Vec::new();
    junit::write(&r, &mut buf).unwrap();
    let xml = String::from_utf8(buf).unwrap();
    let c = parse_junit(&xml);

    // Suites in order of first appearance: join, fingers, nat, leave, stab, query.
    assert_eq!(c.suites, 6, "{xml}");
    assert_eq!(c.cases, 10);
    assert_eq!(c.root_tests, Some(10));
    // failed (2) + xpassed (1, not allowed)
    assert_eq!(c.failures, 3);
    assert_eq!(c.root_failures, Some(3));
    assert_eq!(c.errors, 1);
    // skipped + unsupported + xfailed
    assert_eq!(c.skipped, 3);
    assert!(
        c.case_names
            .contains(&("join".into(), "join.admit-redirects-toward-key".into()))
    );
    assert!(
        c.failure_messages
            .iter()
            .any(|m| m.starts_with("redirected to S1 instead of the closest preceding finger"))
    );
    let text = c.failure_texts.concat();
    assert!(text.contains("requirement: JOIN-4 (MUST)"), "{text}");
    assert!(
        text.contains("expected: 302 Contact is the closest preceding finger"),
        "{text}"
    );
    assert!(text.contains("actual: 302 Contact is S1"), "{text}");
    assert!(
        text.contains("attempts: pass, fail, pass (flaky)"),
        "{text}"
    );
    let out = c.system_out.concat();
    assert!(
        out.contains("puppet-a (10.0.0.2:5060) -> iut-1 (10.0.0.1:5060) udp: REGISTER (join)"),
        "{out}"
    );
    assert!(
        out.contains("DEBUG redirecting to <sip:S1@10.0.0.9:5060>"),
        "{out}"
    );

    // quick-junit's own reader agrees.
    let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(back.tests, 10);
    assert_eq!(back.failures, 3);
    assert_eq!(back.errors, 1);
}

#[test]
fn junit_xpass_is_success_when_allowed() {
    let mut input = common::run_input();
    input.run.allow_xpass = true;
    let r = grade(input, Some(&common::expectations()));
    let mut buf = Vec::new();
    junit::write(&r, &mut buf).unwrap();
    let c = parse_junit(std::str::from_utf8(&buf).unwrap());
    assert_eq!(c.failures, 2);
}

#[test]
fn junit_of_hostile_text_is_valid_xml() {
    let r = common::hostile_report();
    let mut buf = Vec::new();
    junit::write(&r, &mut buf).unwrap();
    let xml = String::from_utf8(buf).unwrap();
    let c = parse_junit(&xml);
    assert_eq!(c.cases, 2);
    assert!(!xml.contains("<script>"), "{xml}");
}

fn html(r: &Report) -> String {
    let mut buf = Vec::new();
    html::write(r, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Every `src=`/`href=` value and every `url(`.
fn references(h: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for key in ["src=\"", "href=\"", "src='", "href='", "url("] {
        let mut rest = h;
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            let end = rest.find(['"', '\'', ')']).unwrap_or(rest.len());
            refs.push(rest[..end].to_string());
        }
    }
    refs
}

#[test]
fn html_is_self_contained() {
    let h = html(&common::report());
    assert!(h.starts_with("<!DOCTYPE html>"));
    let lower = h.to_ascii_lowercase();
    assert!(!lower.contains("<link"), "no external stylesheet");
    assert!(!lower.contains("@import"));
    assert!(!lower.contains("<script src"));
    for r in references(&h) {
        let l = r.to_ascii_lowercase();
        assert!(
            !(l.starts_with("http:") || l.starts_with("https:") || l.starts_with("//")),
            "external reference {r}"
        );
    }
    // The pieces a reader needs are there.
    assert!(h.contains("NON-COMPLIANT"));
    assert!(h.contains("<style>"));
    assert!(h.contains("href=\"#case-join.admit-redirects-toward-key\""));
    assert!(h.contains("id=\"case-join.admit-redirects-toward-key\""));
    assert!(h.contains("id=\"req-JOIN-4\""));
    assert!(
        h.contains("href=\"pcap&#x2f;join.admit-redirects-toward-key.pcap\"")
            || h.contains("href=\"pcap/join.admit-redirects-toward-key.pcap\""),
        "relative pcap link"
    );
    assert!(h.contains("302 Moved Temporarily -&gt; S1"));
    // Raw SIP is escaped, not interpreted.
    assert!(h.contains("To: &lt;sip:peer-ID@overlay&gt;"));
    // Binary messages are shown as a hex dump.
    assert!(h.contains("00000000  00 01 fe ff"));
    assert!(h.contains("DEBUG redirecting to &lt;sip:S1@10.0.0.9:5060&gt;"));
    assert!(h.contains(common::harness().suites_digest.as_str()));
    assert!(h.contains("1234"), "seed");
}

#[test]
fn html_escapes_hostile_text() {
    let h = html(&common::hostile_report());
    // Only the page's own script element exists.
    assert_eq!(h.matches("<script").count(), 1, "{h}");
    assert!(!h.contains("<img"), "attribute breakout");
    assert!(!h.contains("onmouseover=\"alert"), "attribute breakout");
    assert!(
        !h.contains("</pre></td></tr></table><script"),
        "raw message breakout"
    );
    assert!(h.contains("&lt;script&gt;alert("));
    // A remote pcap is shown, not linked.
    assert!(!h.contains("href=\"http"), "remote link");
    assert!(h.contains("not a relative path; not linked"));
    for r in references(&h) {
        assert!(
            !r.to_ascii_lowercase().starts_with("http"),
            "external reference {r}"
        );
    }
}

/// Markdown with fenced blocks and code spans removed: what a renderer
/// would interpret as markup.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|&c| c == '`').collect();
        match &fence {
            Some(f) if line.trim_end() == f.as_str() => fence = None,
            Some(_) => {}
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                out.push_str(&strip_spans(line));
                out.push('\n');
            }
        }
    }
    assert!(fence.is_none(), "unclosed fence");
    out
}

fn strip_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('`') {
        if i > 0 && rest.as_bytes()[i - 1] == b'\\' {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            continue;
        }
        out.push_str(&rest[..i]);
        let run = rest[i..].chars().take_while(|&c| c == '`').count();
        let after = &rest[i + run..];
        let closer = "`".repeat(run);
        match after.find(&closer) {
            Some(j) => rest = &after[j + run..],
            None => panic!("unclosed code span in {line}"),
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn markdown_escapes_hostile_text() {
    let md = markdown::to_string(&common::hostile_report());
    let prose = outside_code(&md);
    assert!(!prose.contains("<script"), "{prose}");
    assert!(!prose.contains("<img"), "{prose}");
    assert!(!prose.contains("</dd>"), "{prose}");
    // The only HTML is the summary's own collapsible sections.
    let tags: Vec<&str> = prose
        .match_indices('<')
        .map(|(i, _)| &prose[i..(i + 9).min(prose.len())])
        .collect();
    assert!(
        tags.iter().all(|t| t.starts_with("<details>")
            || t.starts_with("</details")
            || t.starts_with("<summary>")
            || t.starts_with("</summary")),
        "{tags:?}"
    );
    // Hostile text inside code stays inside it: fences are longer than any backtick run.
    let md = markdown::to_string(&grade(
        {
            let mut i = common::run_input();
            i.cases[0].attempts[0].detail = "```\n<script>x</script>\n```".into();
            i.cases[0].attempts[0].verdict = RawVerdict::Fail;
            i
        },
        None,
    ));
    assert!(!outside_code(&md).contains("<script"));
}

#[test]
fn markdown_caps_passing_cases_but_lists_every_failure() {
    let mut input = common::run_input();
    input.known_case_ids = None;
    for i in 0..120 {
        input.cases.push(
            CaseRun::new(format!("bulk.pass-{i:03}"), "bulk", "bulk", Level::Must)
                .attempt(Attempt::pass("ok")),
        );
        input.cases.push(
            CaseRun::new(format!("bulk.fail-{i:03}"), "bulk", "bulk", Level::Must)
                .attempt(Attempt::fail(format!("failure {i}"))),
        );
    }
    let r = grade(input, None);
    let md = markdown::to_string(&r);
    let listed_passing = md.matches("`bulk.pass-").count();
    assert!(listed_passing <= 50, "{listed_passing}");
    let passing = r
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Passed)
        .count();
    assert_eq!(passing, 123);
    assert!(md.contains("- and 73 more cases (see report.html)"), "{md}");
    for i in 0..120 {
        assert!(
            md.contains(&format!("### FAIL `bulk.fail-{i:03}`")),
            "fail {i}"
        );
    }
}

#[test]
fn write_all_writes_four_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/out");
    let r = common::report();
    let files = write_all(&r, &out).unwrap();
    for p in [&files.json, &files.junit, &files.markdown, &files.html] {
        let meta = std::fs::metadata(p).unwrap();
        assert!(meta.len() > 100, "{}", p.display());
    }
    assert_eq!(files.json, out.join("report.json"));
    assert_eq!(json::load_path(&files.json).unwrap(), r);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    // A file where the directory should be is a typed error, not a panic.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    assert!(matches!(
        write_all(&r, &blocker),
        Err(WriteError::CreateDir { .. })
    ));
}

#[test]
fn written_expectations_accept_the_current_failures() {
    let r = grade(common::run_input(), None);
    let mut buf = Vec::new();
    let n = expect::write(&r, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    // MUST fail x2 (admit, known-bug), flaky MUST, MUST error, SHOULD warn;
    // not the MAY case, not the skip, not the passes.
    assert_eq!(n, 5, "{text}");
    let exp = Expectations::parse(&text, "written").unwrap();
    let admit = exp.matching("join.admit-redirects-toward-key").unwrap();
    assert_eq!(
        admit.reason,
        "redirected to S1 instead of the closest preceding finger"
    );
    assert_eq!(admit.verdict, ExpectedVerdict::Fail);
    assert_eq!(
        exp.matching("query.unknown-key").unwrap().verdict,
        ExpectedVerdict::Error
    );
    assert!(exp.matching("nat.relay").is_none());
    assert!(exp.matching("fingers.refresh-period").is_some());

    // Re-running with it: everything failing is xfailed, the run compliant.
    let mut input = common::run_input();
    input.cases.retain(|c| c.id != "join.old-bug");
    let again = grade(input, Some(&exp));
    assert_eq!(
        again.summary.verdict,
        RunVerdict::Compliant,
        "{:?}",
        again.summary
    );
    assert_eq!(again.summary.xfailed, 5);
}

#[test]
fn written_expectations_escape_hostile_ids() {
    let r = common::hostile_report();
    let mut buf = Vec::new();
    expect::write(&r, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let exp = Expectations::parse(&text, "written").unwrap();
    assert!(exp.matching(&r.cases[0].id).is_some(), "{text}");
}
