//! `summary.md`: a short GitHub-flavoured Markdown summary, fit for a CI job
//! summary (`$GITHUB_STEP_SUMMARY`).
//!
//! Plain-text status, counts, run facts, the requirement matrix, every
//! failed, errored, warned and xpassed case with its detail and failed check,
//! the expected failures, then capped lists of the other cases. Text from the
//! run (details, messages) is escaped so it cannot inject Markdown or HTML.

use std::io::Write;

use crate::error::RenderError;
use crate::model::{CaseResult, Outcome, Report};
use crate::text::{duration, first_line, time_ms, truncate};

/// Limits that keep the summary short for big runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// Passing (and other unremarkable) cases listed per group.
    pub max_listed: usize,
    /// Case ids shown per requirement row.
    pub max_cases_per_requirement: usize,
    /// Lines of a case detail shown.
    pub max_detail_lines: usize,
    /// Characters of a case detail shown.
    pub max_detail_chars: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            max_listed: 50,
            max_cases_per_requirement: 6,
            max_detail_lines: 20,
            max_detail_chars: 2000,
        }
    }
}

/// Writes the summary with the default limits.
pub fn write(report: &Report, w: impl Write) -> Result<(), RenderError> {
    write_with(report, &MarkdownOptions::default(), w)
}

/// Writes the summary with the given limits.
pub fn write_with(
    report: &Report,
    opts: &MarkdownOptions,
    mut w: impl Write,
) -> Result<(), RenderError> {
    w.write_all(to_string_with(report, opts).as_bytes())?;
    Ok(())
}

/// The summary as a string, with the default limits.
pub fn to_string(report: &Report) -> String {
    to_string_with(report, &MarkdownOptions::default())
}

/// Escapes text for inline Markdown on one line (also safe in table cells).
///
/// Characters that start emphasis, code, links, tables or HTML are escaped
/// anywhere; `#`, `-`, `+`, `=` are escaped where they could start a block.
pub fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' | '=' if out.is_empty() => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A code span on one line, safe in table cells.
pub fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // A pipe ends a table cell even inside a code span unless escaped.
    let s = s.replace('|', "\\|");
    let longest = longest_run(&s, '`');
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced block that no text can close early.
fn fenced(s: &str) -> String {
    let fence = "`".repeat((longest_run(s, '`') + 1).max(3));
    let body: String = s
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect();
    format!("{fence}text\n{}\n{fence}\n", body.trim_end())
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary as a string.
pub fn to_string_with(report: &Report, opts: &MarkdownOptions) -> String {
    let mut o = String::new();
    let s = &report.summary;
    let status = s.verdict.as_str().to_uppercase();
    o.push_str(&format!(
        "# p2psip conformance: {status}\n\nStatus: **{status}** (exit code {}) for {}\n\n",
        s.verdict.exit_code(),
        inline(&iut_name(report)),
    ));
    for r in &s.verdict_reasons {
        o.push_str(&format!("- {}\n", inline(r)));
    }
    if !s.verdict_reasons.is_empty() {
        o.push('\n');
    }

    o.push_str("| Passed | Failed | Warned | Skipped | Errored | XFailed | XPassed | Unsupported | Flaky | Total |\n");
    o.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    o.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n\n",
        s.passed,
        s.failed,
        s.warned,
        s.skipped,
        s.errored,
        s.xfailed,
        s.xpassed,
        s.unsupported,
        s.flaky,
        s.total
    ));

    facts(report, &mut o);
    requirements(report, opts, &mut o);
    attention(report, opts, &mut o);
    expected_failures(report, &mut o);
    others(report, opts, &mut o);
    o
}

fn iut_name(report: &Report) -> String {
    match &report.iut.version {
        Some(v) => format!("{} {}", report.iut.name, v),
        None => report.iut.name.clone(),
    }
}

fn facts(report: &Report, o: &mut String) {
    let mut rows: Vec<(&str, String)> = vec![
        ("IUT", inline(&iut_name(report))),
        ("Profile", inline(&report.profile)),
        ("Seed", code(&report.seed.to_string())),
        ("Started", inline(&report.started.to_string())),
        ("Duration", inline(&duration(report.duration_ms))),
        (
            "Harness",
            inline(&format!(
                "{} {}",
                report.harness.name, report.harness.version
            )),
        ),
        ("Suites digest", code(&report.harness.suites_digest)),
        ("Profile digest", code(&report.harness.profile_digest)),
    ];
    if let Some(a) = &report.iut.address {
        rows.insert(1, ("IUT address", code(a)));
    }
    if let Some(cmd) = &report.iut.command {
        rows.insert(1, ("IUT command", code(&cmd.join(" "))));
    }
    if report.run.repeat > 1 {
        rows.push(("Repeat", report.run.repeat.to_string()));
    }
    if !report.run.filters.is_empty() {
        let f: Vec<String> = report.run.filters.iter().map(|f| code(f)).collect();
        rows.push(("Filters", f.join(", ")));
    }
    if let Some(e) = &report.run.expectations {
        let allow = if report.run.allow_xpass {
            " (xpass allowed)"
        } else {
            ""
        };
        rows.push(("Expectations", format!("{}{allow}", code(e))));
    }
    o.push_str("| Run | |\n| --- | --- |\n");
    for (k, v) in rows {
        o.push_str(&format!("| {k} | {v} |\n"));
    }
    o.push('\n');
}

fn requirements(report: &Report, opts: &MarkdownOptions, o: &mut String) {
    if report.requirements.is_empty() {
        return;
    }
    o.push_str("## Requirements\n\n| ID | Level | Verdict | Cases |\n| --- | --- | --- | --- |\n");
    for r in &report.requirements {
        let mut cases: Vec<String> = r
            .cases
            .iter()
            .take(opts.max_cases_per_requirement)
            .map(|c| code(c))
            .collect();
        if r.cases.len() > opts.max_cases_per_requirement {
            cases.push(format!(
                "and {} more",
                r.cases.len() - opts.max_cases_per_requirement
            ));
        }
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            inline(&r.id),
            r.level,
            r.verdict,
            cases.join(", ")
        ));
    }
    o.push('\n');
}

/// Cases that fail the run or deserve a look: always listed in full.
fn needs_attention(c: &CaseResult) -> bool {
    matches!(
        c.outcome,
        Outcome::Failed | Outcome::Errored | Outcome::Warned | Outcome::XPassed
    )
}

fn attention(report: &Report, opts: &MarkdownOptions, o: &mut String) {
    let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| needs_attention(c)).collect();
    if cases.is_empty() {
        return;
    }
    o.push_str("## Failed and warned cases\n\n");
    for c in cases {
        let label = match c.outcome {
            Outcome::Failed => "FAIL",
            Outcome::Errored => "ERROR",
            Outcome::Warned => "WARN",
            _ => "XPASS",
        };
        o.push_str(&format!("### {label} {}\n\n", code(&c.id)));
        let mut facts = vec![
            format!("Title: {}", inline(&c.title)),
            format!("level {}", c.level),
            format!("requirements {}", inline(&c.requirements.join(", "))),
            inline(&duration(c.duration_ms)),
        ];
        if c.attempts.len() > 1 {
            let list: Vec<&str> = c.attempts.iter().map(|v| v.as_str()).collect();
            let rate = c
                .flake_rate
                .filter(|_| c.flaky)
                .map(|r| format!(", flaky: {:.0}% did not pass", r * 100.0))
                .unwrap_or_default();
            facts.push(format!("attempts {}{rate}", list.join(" ")));
        }
        o.push_str(&facts.join("; "));
        o.push_str("\n\n");
        if c.outcome == Outcome::XPassed
            && let Some(e) = &c.expected_failure
        {
            o.push_str(&format!(
                "Passed, but the expectations entry {} expects it to {}: {}\n\n",
                code(&e.pattern),
                e.verdict,
                inline(&e.reason)
            ));
        }
        if !c.detail.trim().is_empty() {
            let (detail, cut) = truncate(&c.detail, opts.max_detail_lines, opts.max_detail_chars);
            o.push_str(&fenced(&detail));
            if cut {
                o.push_str("(detail truncated; see report.html)\n");
            }
            o.push('\n');
        }
        if let Some(f) = &c.evidence.failure {
            o.push_str(&format!("- Requirement: {}\n", inline(&f.requirement)));
            o.push_str(&format!(
                "- Expected: {}\n",
                inline(first_line_or_all(&f.expected))
            ));
            o.push_str(&format!(
                "- Actual: {}\n",
                inline(first_line_or_all(&f.actual))
            ));
            if let Some(at) = f.at_ms {
                o.push_str(&format!("- At: {} ms\n", time_ms(at)));
            }
            o.push('\n');
        }
    }
}

fn first_line_or_all(s: &str) -> &str {
    // Multi-line values are summarised by their first line; the rest is in
    // the HTML report.
    first_line(s)
}

fn expected_failures(report: &Report, o: &mut String) {
    let cases: Vec<&CaseResult> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::XFailed)
        .collect();
    if cases.is_empty() {
        return;
    }
    o.push_str("## Expected failures\n\n");
    for c in cases {
        let reason = c
            .expected_failure
            .as_ref()
            .map_or(String::new(), |e| inline(&e.reason));
        o.push_str(&format!(
            "- {} ({}, {}): {reason}; now: {}\n",
            code(&c.id),
            c.level,
            c.verdict,
            inline(first_line(&c.detail))
        ));
    }
    o.push('\n');
}

fn others(report: &Report, opts: &MarkdownOptions, o: &mut String) {
    let groups = [
        (Outcome::Unsupported, "Unsupported optional features"),
        (Outcome::Skipped, "Skipped cases"),
        (Outcome::Passed, "Passed cases"),
    ];
    for (outcome, heading) in groups {
        let cases: Vec<&CaseResult> = report
            .cases
            .iter()
            .filter(|c| c.outcome == outcome)
            .collect();
        if cases.is_empty() {
            continue;
        }
        o.push_str(&format!(
            "<details><summary>{heading} ({})</summary>\n\n",
            cases.len()
        ));
        for c in cases.iter().take(opts.max_listed) {
            let why = if outcome == Outcome::Passed {
                inline(&c.title)
            } else {
                inline(first_line(&c.detail))
            };
            o.push_str(&format!("- {}: {why}\n", code(&c.id)));
        }
        if cases.len() > opts.max_listed {
            o.push_str(&format!(
                "- and {} (see report.html)\n",
                plural(cases.len() - opts.max_listed, "more case", "more cases")
            ));
        }
        o.push_str("\n</details>\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_escapes_markup_and_html() {
        assert_eq!(inline("<script>|*x*"), "&lt;script&gt;\\|\\*x\\*");
        assert_eq!(inline("a\nb"), "a b");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn fences_outgrow_the_content() {
        let f = fenced("```\nboom\n````");
        assert!(f.starts_with("`````text\n"), "{f}");
        assert!(f.ends_with("\n`````\n"), "{f}");
    }
}
