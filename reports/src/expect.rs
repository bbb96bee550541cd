//! The expectations file (`--expect FILE`): known failures a CI accepts
//! while its IUT is not yet compliant.
//!
//! ```toml
//! # optional; default false. When true, an expected failure that passes
//! # is reported as `xpassed` but does not fail the run.
//! allow_xpass = false
//!
//! [[expect]]
//! case = "join.admit-redirects-toward-key"   # exact id, or a glob: see below
//! verdict = "fail"                           # fail (default) | skip | error
//! reason = "302 picks S1 instead of closest finger, ticket #12"
//! ```
//!
//! `case` is an exact case id unless it contains `*`, which matches any run
//! of characters (dots included, possibly empty); there are no other glob
//! characters. When several entries match a case, an exact id wins over a
//! glob, and among globs the first in the file wins. `reason` is required.
//!
//! Semantics are strict, so the file cannot rot:
//! * a case expected to `fail` that fails is `xfailed`; one expected to
//!   `error` that errors likewise; one that fails in the other way counts as
//!   it would without the entry;
//! * `skip` asks the harness not to run the case at all (see
//!   [`Expectations::skip_reason`]); if it ran anyway, a failure or error is
//!   `xfailed`;
//! * an expected failure that passes is `xpassed`, which fails the run unless
//!   `allow_xpass` is set;
//! * an entry that matches no known case is an error (exit 2). Entries that
//!   match only cases the user did not select are ignored (reported in
//!   `run.unused_expectations`).
//!
//! Unknown keys, a missing `reason` and duplicate entries are errors that
//! name the line.

use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{ExpectError, StaleEntry, WriteError};
use crate::model::{CaseVerdict, ExpectedVerdict, Level, Report};
use crate::text::first_line;

/// A parsed expectations file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectations {
    pub entries: Vec<Expectation>,
    /// Tolerate expected failures that pass.
    pub allow_xpass: bool,
    /// Where the file came from, for messages (its path, usually).
    pub origin: String,
}

/// One `[[expect]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The `case` value: an exact id or a glob with `*`.
    pub pattern: String,
    pub verdict: ExpectedVerdict,
    pub reason: String,
    /// 1-based line of the `case` key.
    pub line: usize,
}

impl Expectation {
    /// Whether `case` is a glob rather than an exact id.
    pub fn is_glob(&self) -> bool {
        self.pattern.contains('*')
    }

    /// Whether this entry applies to the case id.
    pub fn matches(&self, case_id: &str) -> bool {
        if self.is_glob() {
            glob_match(&self.pattern, case_id)
        } else {
            self.pattern == case_id
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default)]
    allow_xpass: bool,
    #[serde(default)]
    expect: Vec<EntryRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRepr {
    case: Spanned<String>,
    #[serde(default)]
    verdict: ExpectedVerdict,
    reason: Spanned<String>,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

impl Expectations {
    /// Parses the TOML text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: impl Into<String>) -> Result<Self, ExpectError> {
        let origin = origin.into();
        let file: FileRepr = toml::from_str(text).map_err(|e| {
            let pos = e.span().map(|Range { start, .. }| line_col(text, start));
            ExpectError::Syntax {
                origin: origin.clone(),
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                message: e.message().trim().to_string(),
            }
        })?;
        let mut entries: Vec<Expectation> = Vec::with_capacity(file.expect.len());
        for e in file.expect {
            let line = line_col(text, e.case.span().start).0;
            let pattern = e.case.into_inner();
            if pattern.trim().is_empty() {
                return Err(ExpectError::Empty {
                    origin,
                    line,
                    field: "case",
                });
            }
            let reason_line = line_col(text, e.reason.span().start).0;
            let reason = e.reason.into_inner();
            if reason.trim().is_empty() {
                return Err(ExpectError::Empty {
                    origin,
                    line: reason_line,
                    field: "reason",
                });
            }
            if let Some(first) = entries.iter().find(|x| x.pattern == pattern) {
                return Err(ExpectError::Duplicate {
                    origin,
                    line,
                    first_line: first.line,
                    pattern,
                });
            }
            entries.push(Expectation {
                pattern,
                verdict: e.verdict,
                reason,
                line,
            });
        }
        Ok(Expectations {
            entries,
            allow_xpass: file.allow_xpass,
            origin,
        })
    }

    /// Reads and parses a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ExpectError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| ExpectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path.display().to_string())
    }

    /// The entry that applies to a case: an exact id first, else the first
    /// matching glob.
    pub fn matching(&self, case_id: &str) -> Option<&Expectation> {
        self.entries
            .iter()
            .find(|e| !e.is_glob() && e.pattern == case_id)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.is_glob() && glob_match(&e.pattern, case_id))
            })
    }

    /// The reason to skip a case, when its entry says `verdict = "skip"`:
    /// the harness should then not run it and record it as skipped.
    pub fn skip_reason(&self, case_id: &str) -> Option<&str> {
        self.matching(case_id)
            .filter(|e| e.verdict == ExpectedVerdict::Skip)
            .map(|e| e.reason.as_str())
    }

    /// Entries that match none of the given case ids.
    pub fn stale_entries<S: AsRef<str>>(&self, case_ids: &[S]) -> Vec<StaleEntry> {
        self.entries
            .iter()
            .filter(|e| !case_ids.iter().any(|id| e.matches(id.as_ref())))
            .map(|e| StaleEntry {
                line: e.line,
                pattern: e.pattern.clone(),
            })
            .collect()
    }

    /// Fails when an entry matches none of the known case ids; call it with
    /// every case id the harness has, before running anything.
    pub fn check_known<S: AsRef<str>>(&self, known_case_ids: &[S]) -> Result<(), ExpectError> {
        let entries = self.stale_entries(known_case_ids);
        if entries.is_empty() {
            Ok(())
        } else {
            Err(ExpectError::Stale {
                origin: self.origin.clone(),
                entries,
            })
        }
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters
/// and every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Byte-wise is exact for UTF-8: a literal sequence cannot match in the
    // middle of another character.
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, mark)) = backtrack {
            // Let the last star swallow one more character and retry.
            pi = star + 1;
            ti = mark + 1;
            backtrack = Some((star, mark + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A TOML basic string, quoted and escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text safe inside a TOML comment: one line, no control characters.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether `write` lists a case: failing or erroring MUST and SHOULD cases.
fn needs_expectation(c: &crate::model::CaseResult) -> bool {
    c.level != Level::May
        && matches!(
            c.verdict,
            CaseVerdict::Fail | CaseVerdict::Warn | CaseVerdict::Error
        )
}

/// Writes an expectations file that accepts every failing or erroring MUST
/// and SHOULD case of `report` (`p2psip run --write-expect FILE`), with the
/// first line of the case detail as reason. Returns the number of entries.
pub fn write(report: &Report, mut w: impl Write) -> io::Result<usize> {
    let iut = match &report.iut.version {
        Some(v) => format!("{} {}", report.iut.name, v),
        None => report.iut.name.clone(),
    };
    writeln!(
        w,
        "# Expected failures of {} under {}.",
        comment(&iut),
        comment(&report.profile)
    )?;
    writeln!(
        w,
        "# Written by {} {} from the run started {} (seed {}).",
        comment(&report.harness.name),
        comment(&report.harness.version),
        report.started,
        report.seed
    )?;
    writeln!(
        w,
        "# `case` is an exact case id; a `*` in it would match any run of characters."
    )?;
    writeln!(
        w,
        "# An expected failure that passes fails the run (unless allow_xpass = true):"
    )?;
    writeln!(
        w,
        "# delete its entry. An entry that names no known case is an error."
    )?;
    let mut n = 0;
    let mut written: Vec<&str> = Vec::new();
    for c in report.cases.iter().filter(|c| needs_expectation(c)) {
        // An empty or repeated id cannot make a valid entry; the file must
        // always load back.
        if c.id.trim().is_empty() || written.contains(&c.id.as_str()) {
            continue;
        }
        written.push(&c.id);
        let verdict = if c.verdict == CaseVerdict::Error {
            ExpectedVerdict::Error
        } else {
            ExpectedVerdict::Fail
        };
        let mut reason = first_line(&c.detail).trim().to_string();
        if reason.is_empty() {
            reason = c
                .evidence
                .failure
                .as_ref()
                .map(|f| first_line(&f.actual).trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("{} without detail", c.verdict));
        }
        writeln!(w)?;
        writeln!(
            w,
            "# {} {}: {}",
            c.level,
            comment(&c.requirements.join(", ")),
            comment(&c.title)
        )?;
        writeln!(w, "[[expect]]")?;
        writeln!(w, "case = {}", toml_string(&c.id))?;
        writeln!(w, "verdict = {}", toml_string(verdict.as_str()))?;
        writeln!(w, "reason = {}", toml_string(&reason))?;
        n += 1;
    }
    Ok(n)
}

/// [`write()`] into a file (created or replaced).
pub fn write_file(report: &Report, path: impl AsRef<Path>) -> Result<usize, WriteError> {
    let path = path.as_ref();
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail; map anyway rather than unwrap.
    let n = write(report, &mut buf).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    crate::output::write_atomically(path, &buf)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        assert!(glob_match("join.*", "join.admit"));
        assert!(glob_match("join.*", "join."));
        assert!(!glob_match("join.*", "join"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*.admit-*", "join.admit-redirects"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-b-b-d"));
        assert!(glob_match("*key", "join.admit-redirects-toward-key"));
        assert!(!glob_match("join.admit", "join.admit-x"));
        assert!(glob_match("é*ü", "éxyü"));
        // `?` and brackets are literal.
        assert!(!glob_match("join.?", "join.a"));
        assert!(glob_match("[x]", "[x]"));
    }

    const SAMPLE: &str = r#"
allow_xpass = false

[[expect]]
case = "join.admit-redirects-toward-key"
reason = "302 picks S1 instead of closest finger, ticket #12"

[[expect]]
case = "join.*"
verdict = "error"
reason = "join suite crashes the IUT"

[[expect]]
case = "leave.graceful"
verdict = "skip"
reason = "hangs"
"#;

    #[test]
    fn parses_entries_with_lines_and_default_verdict() {
        let e = Expectations::parse(SAMPLE, "x.toml").unwrap();
        assert!(!e.allow_xpass);
        assert_eq!(e.entries.len(), 3);
        assert_eq!(e.entries[0].verdict, ExpectedVerdict::Fail);
        assert_eq!(e.entries[0].line, 5);
        assert_eq!(e.entries[1].verdict, ExpectedVerdict::Error);
        assert_eq!(e.entries[1].line, 9);
        assert_eq!(e.entries[2].verdict, ExpectedVerdict::Skip);
    }

    #[test]
    fn exact_id_wins_over_glob_and_first_glob_wins() {
        let e = Expectations::parse(SAMPLE, "x.toml").unwrap();
        let m = e.matching("join.admit-redirects-toward-key").unwrap();
        assert_eq!(m.line, 5);
        let m = e.matching("join.other").unwrap();
        assert_eq!(m.pattern, "join.*");
        assert!(e.matching("query.x").is_none());
        assert_eq!(e.skip_reason("leave.graceful"), Some("hangs"));
        assert_eq!(e.skip_reason("join.other"), None);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_line() {
        let text = "[[expect]]\ncase = \"a\"\nreason = \"r\"\nverdit = \"fail\"\n";
        let err = Expectations::parse(text, "exp.toml").unwrap_err();
        match &err {
            ExpectError::Syntax { line, message, .. } => {
                assert_eq!(*line, Some(4), "{err}");
                assert!(message.contains("verdit"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("exp.toml:4:"), "{err}");
    }

    #[test]
    fn unknown_top_level_key_and_bad_verdict_name_the_line() {
        let err = Expectations::parse("allow_xpas = true\n", "e").unwrap_err();
        assert!(err.to_string().starts_with("e:1:"), "{err}");
        let text = "\n[[expect]]\ncase = \"a\"\nverdict = \"pass\"\nreason = \"r\"\n";
        let err = Expectations::parse(text, "e").unwrap_err();
        assert!(err.to_string().starts_with("e:4:"), "{err}");
    }

    #[test]
    fn missing_or_empty_reason_and_duplicates_are_errors() {
        let err = Expectations::parse("[[expect]]\ncase = \"a\"\n", "e").unwrap_err();
        assert!(matches!(err, ExpectError::Syntax { .. }), "{err}");
        assert!(err.to_string().contains("reason"), "{err}");

        let err =
            Expectations::parse("[[expect]]\ncase = \"a\"\nreason = \" \"\n", "e").unwrap_err();
        assert!(
            matches!(
                err,
                ExpectError::Empty {
                    line: 3,
                    field: "reason",
                    ..
                }
            ),
            "{err}"
        );

        let text =
            "[[expect]]\ncase = \"a\"\nreason = \"r\"\n[[expect]]\ncase = \"a\"\nreason = \"r\"\n";
        let err = Expectations::parse(text, "e").unwrap_err();
        assert!(
            matches!(
                err,
                ExpectError::Duplicate {
                    line: 5,
                    first_line: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn stale_entries_are_reported_against_known_ids() {
        let e = Expectations::parse(SAMPLE, "x.toml").unwrap();
        let known = ["join.admit-redirects-toward-key", "join.b"];
        let stale = e.stale_entries(&known);
        assert_eq!(
            stale,
            vec![StaleEntry {
                line: 14,
                pattern: "leave.graceful".into()
            }]
        );
        let err = e.check_known(&known).unwrap_err();
        assert!(
            err.to_string().contains("line 14: `leave.graceful`"),
            "{err}"
        );
        assert!(
            e.check_known(&[
                "join.a",
                "leave.graceful",
                "join.admit-redirects-toward-key"
            ])
            .is_ok()
        );
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
