//! Grading: from what the harness measured ([`RunInput`]) to a [`Report`].
//!
//! Each rule is one function so it can be read and tested on its own:
//! * [`combine_attempts`]: `--repeat` attempts to one raw verdict; attempts
//!   that disagree make the case flaky, and a flaky case counts as failed;
//! * [`grade_case`]: the level decides what a failure means (MUST: fail,
//!   SHOULD: warn, MAY: unsupported);
//! * [`case_outcome`]: the expectations file turns failures into `xfailed`
//!   and passes into `xpassed`;
//! * [`requirement_verdict`]: a requirement over its cases;
//! * [`run_verdict`]: the verdict of the run, with the reasons for it;
//!   [`RunVerdict::exit_code`] maps it to the exit code.

use std::collections::{HashMap, HashSet};

use crate::expect::Expectations;
use crate::model::{
    CaseResult, CaseVerdict, Evidence, ExpectedFailure, ExpectedVerdict, HarnessInfo, IutInfo,
    Level, Outcome, RawVerdict, Report, RequirementResult, RequirementVerdict, RunInfo, RunVerdict,
    SCHEMA, Summary, Timestamp,
};
use crate::text::{first_line, natural_cmp};

/// Everything the harness measured in one run, before grading.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInput {
    pub harness: HarnessInfo,
    pub iut: IutInfo,
    pub profile: String,
    pub seed: u64,
    pub started: Timestamp,
    pub duration_ms: u64,
    /// Requirement catalogue of the profile: gives levels and titles, and
    /// lists requirements no selected case tests (they become `untested`).
    /// Requirements that cases cite but the catalogue lacks are added, with
    /// the strictest level among those cases.
    pub requirements: Vec<RequirementDef>,
    /// The selected cases, in the order to report them.
    pub cases: Vec<CaseRun>,
    /// Set when the harness could not set up the run (IUT did not start…):
    /// the verdict is then `could-not-run`.
    pub setup_failure: Option<String>,
    /// Every case id the harness knows, selected or not. With it, an
    /// expectation that matches only unselected cases is ignored; without
    /// it, every expectation must match a case of this run.
    pub known_case_ids: Option<Vec<String>>,
    /// Selection and options; `allow_xpass` here (e.g. from the command
    /// line) adds to the expectations file's own setting.
    pub run: RunInfo,
}

impl RunInput {
    /// A run started now, with no case yet.
    pub fn new(harness: HarnessInfo, iut: IutInfo, profile: impl Into<String>, seed: u64) -> Self {
        RunInput {
            harness,
            iut,
            profile: profile.into(),
            seed,
            started: Timestamp::now(),
            duration_ms: 0,
            requirements: Vec::new(),
            cases: Vec::new(),
            setup_failure: None,
            known_case_ids: None,
            run: RunInfo::default(),
        }
    }
}

/// A requirement of the profile's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementDef {
    pub id: String,
    pub level: Level,
    pub title: Option<String>,
}

impl RequirementDef {
    pub fn new(id: impl Into<String>, level: Level) -> Self {
        RequirementDef {
            id: id.into(),
            level,
            title: None,
        }
    }
}

/// One case as run: its identity and its attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRun {
    pub id: String,
    pub suite: String,
    pub title: String,
    pub requirements: Vec<String>,
    pub level: Level,
    /// One per `--repeat` run, in order.
    pub attempts: Vec<Attempt>,
}

impl CaseRun {
    pub fn new(
        id: impl Into<String>,
        suite: impl Into<String>,
        title: impl Into<String>,
        level: Level,
    ) -> Self {
        CaseRun {
            id: id.into(),
            suite: suite.into(),
            title: title.into(),
            requirements: Vec::new(),
            level,
            attempts: Vec::new(),
        }
    }

    /// Adds the requirement ids this case tests.
    pub fn requirements<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.requirements.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Adds an attempt.
    pub fn attempt(mut self, attempt: Attempt) -> Self {
        self.attempts.push(attempt);
        self
    }
}

/// One run of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub verdict: RawVerdict,
    pub detail: String,
    pub duration_ms: u64,
    pub evidence: Evidence,
}

impl Attempt {
    pub fn new(verdict: RawVerdict, detail: impl Into<String>) -> Self {
        Attempt {
            verdict,
            detail: detail.into(),
            duration_ms: 0,
            evidence: Evidence::default(),
        }
    }

    pub fn pass(detail: impl Into<String>) -> Self {
        Self::new(RawVerdict::Pass, detail)
    }

    pub fn fail(detail: impl Into<String>) -> Self {
        Self::new(RawVerdict::Fail, detail)
    }

    pub fn skip(detail: impl Into<String>) -> Self {
        Self::new(RawVerdict::Skip, detail)
    }

    pub fn error(detail: impl Into<String>) -> Self {
        Self::new(RawVerdict::Error, detail)
    }

    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    pub fn evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = evidence;
        self
    }
}

/// The attempts of a case reduced to one raw verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    pub verdict: RawVerdict,
    /// The attempts disagreed.
    pub flaky: bool,
    /// For a flaky case, the share of attempts that did not pass; 0 when
    /// repeated attempts agreed; `None` for a single attempt.
    pub flake_rate: Option<f64>,
}

/// Reduces attempts to one verdict. Agreeing attempts give their verdict;
/// disagreeing ones make the case flaky, which counts as `Fail` (an IUT
/// that does what a MUST asks only sometimes does not do it). No attempt at
/// all is an `Error`: the harness lost the case.
pub fn combine_attempts(attempts: &[RawVerdict]) -> Combined {
    let Some((&first, rest)) = attempts.split_first() else {
        return Combined {
            verdict: RawVerdict::Error,
            flaky: false,
            flake_rate: None,
        };
    };
    let flaky = rest.iter().any(|&v| v != first);
    let flake_rate = (attempts.len() > 1).then(|| {
        if flaky {
            let not_passed = attempts.iter().filter(|&&v| v != RawVerdict::Pass).count();
            not_passed as f64 / attempts.len() as f64
        } else {
            0.0
        }
    });
    Combined {
        verdict: if flaky { RawVerdict::Fail } else { first },
        flaky,
        flake_rate,
    }
}

/// Which attempt's detail and evidence represent the case: the first that
/// failed, else the first that errored, else the last.
pub fn representative_attempt(attempts: &[RawVerdict]) -> Option<usize> {
    attempts
        .iter()
        .position(|&v| v == RawVerdict::Fail)
        .or_else(|| attempts.iter().position(|&v| v == RawVerdict::Error))
        .or_else(|| attempts.len().checked_sub(1))
}

/// Grades a raw verdict by level: a failing MUST case fails, a failing
/// SHOULD case warns, a failing MAY case marks the feature unsupported.
/// Pass, skip and error are the same at every level.
pub fn grade_case(level: Level, raw: RawVerdict) -> CaseVerdict {
    match (raw, level) {
        (RawVerdict::Pass, _) => CaseVerdict::Pass,
        (RawVerdict::Skip, _) => CaseVerdict::Skip,
        (RawVerdict::Error, _) => CaseVerdict::Error,
        (RawVerdict::Fail, Level::Must) => CaseVerdict::Fail,
        (RawVerdict::Fail, Level::Should) => CaseVerdict::Warn,
        (RawVerdict::Fail, Level::May) => CaseVerdict::Unsupported,
    }
}

/// How a case counts for the run, given the verdict the expectations file
/// predicts for it (if any).
///
/// * no expectation: the graded verdict (`fail` → `failed`, …);
/// * a pass is `xpassed`;
/// * a skip stays `skipped` (it says nothing about the expectation);
/// * a failure or error that the entry predicts (or any, for `skip`
///   entries) is `xfailed`; one of the other kind counts as without entry.
pub fn case_outcome(
    graded: CaseVerdict,
    raw: RawVerdict,
    expected: Option<ExpectedVerdict>,
) -> Outcome {
    let plain = match graded {
        CaseVerdict::Pass => Outcome::Passed,
        CaseVerdict::Fail => Outcome::Failed,
        CaseVerdict::Warn => Outcome::Warned,
        CaseVerdict::Skip => Outcome::Skipped,
        CaseVerdict::Error => Outcome::Errored,
        CaseVerdict::Unsupported => Outcome::Unsupported,
    };
    let Some(expected) = expected else {
        return plain;
    };
    match (raw, expected) {
        (RawVerdict::Pass, _) => Outcome::XPassed,
        (RawVerdict::Skip, _) => Outcome::Skipped,
        (RawVerdict::Fail, ExpectedVerdict::Fail | ExpectedVerdict::Skip) => Outcome::XFailed,
        (RawVerdict::Error, ExpectedVerdict::Error | ExpectedVerdict::Skip) => Outcome::XFailed,
        (RawVerdict::Fail, ExpectedVerdict::Error) | (RawVerdict::Error, ExpectedVerdict::Fail) => {
            plain
        }
    }
}

/// A requirement's verdict from the raw verdicts of its cases, graded by
/// the requirement's level: any failure fails it (warn for SHOULD,
/// unsupported for MAY); else any error makes it `error`; else any pass
/// passes it (`supported` for MAY); all skipped is `skip`; no case is
/// `untested`. Expectations do not change it.
pub fn requirement_verdict(level: Level, raws: &[RawVerdict]) -> RequirementVerdict {
    let any = |v: RawVerdict| raws.contains(&v);
    if raws.is_empty() {
        RequirementVerdict::Untested
    } else if any(RawVerdict::Fail) {
        match level {
            Level::Must => RequirementVerdict::Fail,
            Level::Should => RequirementVerdict::Warn,
            Level::May => RequirementVerdict::Unsupported,
        }
    } else if any(RawVerdict::Error) {
        RequirementVerdict::Error
    } else if any(RawVerdict::Pass) {
        match level {
            Level::May => RequirementVerdict::Supported,
            _ => RequirementVerdict::Pass,
        }
    } else {
        RequirementVerdict::Skip
    }
}

/// Counts the outcomes of the cases; the verdict fields are left for
/// [`run_verdict`].
pub fn count_outcomes(cases: &[CaseResult]) -> Summary {
    let mut s = Summary {
        passed: 0,
        failed: 0,
        warned: 0,
        skipped: 0,
        errored: 0,
        xfailed: 0,
        xpassed: 0,
        unsupported: 0,
        flaky: 0,
        total: cases.len(),
        verdict: RunVerdict::CouldNotRun,
        verdict_reasons: Vec::new(),
    };
    for c in cases {
        let n = match c.outcome {
            Outcome::Passed => &mut s.passed,
            Outcome::Failed => &mut s.failed,
            Outcome::Warned => &mut s.warned,
            Outcome::Skipped => &mut s.skipped,
            Outcome::Errored => &mut s.errored,
            Outcome::XFailed => &mut s.xfailed,
            Outcome::XPassed => &mut s.xpassed,
            Outcome::Unsupported => &mut s.unsupported,
        };
        *n += 1;
        s.flaky += usize::from(c.flaky);
    }
    s
}

/// At most this many failing cases are named in the verdict reasons.
const MAX_REASON_CASES: usize = 20;

/// The verdict of the run and the reasons for it.
///
/// `could-not-run` when `blockers` (setup failure, stale expectations) is
/// not empty or no case ran (every case skipped, or none selected);
/// otherwise `non-compliant` when a MUST case failed or errored (a flaky
/// MUST case has failed) or an expected failure passed without
/// `allow_xpass`; otherwise `compliant`.
pub fn run_verdict(
    cases: &[CaseResult],
    allow_xpass: bool,
    blockers: Vec<String>,
) -> (RunVerdict, Vec<String>) {
    let mut reasons = blockers;
    let ran = cases.iter().any(|c| c.verdict != CaseVerdict::Skip);
    if !ran {
        reasons.push(if cases.is_empty() {
            "no case was selected".to_string()
        } else {
            format!(
                "no case ran: all {} selected cases were skipped",
                cases.len()
            )
        });
    }
    let could_not_run = !reasons.is_empty();

    let mut failures = Vec::new();
    for c in cases {
        let what = match c.outcome {
            Outcome::Failed | Outcome::Errored if c.level == Level::Must => {
                let how = if c.flaky {
                    "is flaky"
                } else if c.outcome == Outcome::Failed {
                    "failed"
                } else {
                    "errored"
                };
                format!("MUST case {} {how}: {}", c.id, first_line(&c.detail).trim())
            }
            Outcome::XPassed if !allow_xpass => {
                let (pattern, line) = c
                    .expected_failure
                    .as_ref()
                    .map(|e| (e.pattern.as_str(), e.line))
                    .unwrap_or(("?", None));
                let line = line.map_or(String::new(), |l| format!(" (line {l})"));
                format!(
                    "case {} passed but the expectations entry {pattern:?}{line} expects it to fail: remove the entry or allow xpass",
                    c.id
                )
            }
            _ => continue,
        };
        failures.push(what);
    }
    let failed = !failures.is_empty();
    let listed = failures.len().min(MAX_REASON_CASES);
    let more = failures.len() - listed;
    reasons.extend(failures.into_iter().take(listed));
    if more > 0 {
        reasons.push(format!("and {more} more failing cases"));
    }

    let verdict = if could_not_run {
        RunVerdict::CouldNotRun
    } else if failed {
        RunVerdict::NonCompliant
    } else {
        RunVerdict::Compliant
    };
    if verdict == RunVerdict::Compliant {
        // A compliant verdict that leans on expectations should say so.
        let xfailed = cases
            .iter()
            .filter(|c| c.outcome == Outcome::XFailed)
            .count();
        if xfailed > 0 {
            reasons.push(format!(
                "{xfailed} cases failed as the expectations file predicts"
            ));
        }
        let xpassed = cases
            .iter()
            .filter(|c| c.outcome == Outcome::XPassed)
            .count();
        if xpassed > 0 {
            reasons.push(format!(
                "{xpassed} expected failures passed (tolerated: allow_xpass)"
            ));
        }
    }
    (verdict, reasons)
}

fn grade_one(case: CaseRun, expectations: Option<&Expectations>) -> CaseResult {
    let raws: Vec<RawVerdict> = case.attempts.iter().map(|a| a.verdict).collect();
    let combined = combine_attempts(&raws);
    let duration_ms = case
        .attempts
        .iter()
        .fold(0u64, |acc, a| acc.saturating_add(a.duration_ms));
    let rep = representative_attempt(&raws);
    let mut attempts = case.attempts;
    let (detail, mut evidence) = match rep {
        Some(i) if i < attempts.len() => {
            let a = attempts.swap_remove(i);
            (a.detail, a.evidence)
        }
        _ => (
            "the harness recorded no attempt of this case".to_string(),
            Evidence::default(),
        ),
    };
    if combined.flaky {
        let not_passed = raws.iter().filter(|&&v| v != RawVerdict::Pass).count();
        let list: Vec<&str> = raws.iter().map(|v| v.as_str()).collect();
        evidence.notes.insert(
            0,
            format!(
                "flaky: {not_passed} of {} attempts did not pass ({}); detail and evidence are from attempt {}",
                raws.len(),
                list.join(", "),
                rep.map_or(0, |i| i + 1)
            ),
        );
    }
    let verdict = grade_case(case.level, combined.verdict);
    let expectation = expectations.and_then(|e| e.matching(&case.id));
    let outcome = case_outcome(verdict, combined.verdict, expectation.map(|e| e.verdict));
    CaseResult {
        id: case.id,
        suite: case.suite,
        title: case.title,
        requirements: case.requirements,
        level: case.level,
        verdict,
        outcome,
        duration_ms,
        detail,
        attempts: raws,
        flaky: combined.flaky,
        flake_rate: combined.flake_rate,
        expected_failure: expectation.map(|e| ExpectedFailure {
            reason: e.reason.clone(),
            verdict: e.verdict,
            pattern: e.pattern.clone(),
            line: Some(e.line),
        }),
        evidence,
    }
}

/// The requirement matrix: catalogue order first, then requirements only
/// cases cite, in natural id order.
fn requirement_matrix(defs: &[RequirementDef], cases: &[CaseResult]) -> Vec<RequirementResult> {
    let mut rows: Vec<(String, Option<Level>, Option<String>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for d in defs {
        if seen.insert(d.id.as_str()) {
            rows.push((d.id.clone(), Some(d.level), d.title.clone()));
        }
    }
    let mut extra: Vec<&str> = Vec::new();
    for c in cases {
        for r in &c.requirements {
            if seen.insert(r.as_str()) {
                extra.push(r.as_str());
            }
        }
    }
    extra.sort_by(|a, b| natural_cmp(a, b));
    rows.extend(extra.into_iter().map(|id| (id.to_string(), None, None)));

    let mut by_req: HashMap<&str, Vec<&CaseResult>> = HashMap::new();
    for c in cases {
        let mut own: HashSet<&str> = HashSet::new();
        for r in &c.requirements {
            if own.insert(r.as_str()) {
                by_req.entry(r.as_str()).or_default().push(c);
            }
        }
    }
    rows.into_iter()
        .map(|(id, level, title)| {
            let cs = by_req.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let level = level.unwrap_or_else(|| {
                cs.iter()
                    .map(|c| c.level)
                    .max_by_key(|l| l.strictness())
                    .unwrap_or(Level::Must)
            });
            let raws: Vec<RawVerdict> = cs.iter().map(|c| c.verdict.raw()).collect();
            RequirementResult {
                verdict: requirement_verdict(level, &raws),
                cases: cs.iter().map(|c| c.id.clone()).collect(),
                id,
                level,
                title,
            }
        })
        .collect()
}

/// Grades a run: applies the expectations (if any), builds the requirement
/// matrix and the summary, and decides the verdict.
pub fn grade(input: RunInput, expectations: Option<&Expectations>) -> Report {
    let mut run = input.run;
    run.allow_xpass |= expectations.is_some_and(|e| e.allow_xpass);
    if let Some(known) = &input.known_case_ids {
        run.known_cases = Some(known.len());
    }
    if run.expectations.is_none() {
        run.expectations = expectations.map(|e| e.origin.clone());
    }

    let mut blockers = Vec::new();
    if let Some(why) = &input.setup_failure {
        blockers.push(format!("setup failed: {}", why.trim()));
    }
    if let Some(exp) = expectations {
        let run_ids: Vec<&str> = input.cases.iter().map(|c| c.id.as_str()).collect();
        for stale in exp.stale_entries(&run_ids) {
            let selected_elsewhere = input.known_case_ids.as_ref().is_some_and(|known| {
                exp.entries
                    .iter()
                    .find(|e| e.line == stale.line)
                    .is_some_and(|e| known.iter().any(|id| e.matches(id)))
            });
            if selected_elsewhere {
                run.unused_expectations
                    .push(format!("line {}: {}", stale.line, stale.pattern));
            } else {
                blockers.push(format!(
                    "expectations file {}, line {}: {:?} matches no known case",
                    exp.origin, stale.line, stale.pattern
                ));
            }
        }
    }

    let cases: Vec<CaseResult> = input
        .cases
        .into_iter()
        .map(|c| grade_one(c, expectations))
        .collect();
    let requirements = requirement_matrix(&input.requirements, &cases);
    let mut summary = count_outcomes(&cases);
    let (verdict, reasons) = run_verdict(&cases, run.allow_xpass, blockers);
    summary.verdict = verdict;
    summary.verdict_reasons = reasons;

    Report {
        schema: SCHEMA.to_string(),
        harness: input.harness,
        iut: input.iut,
        profile: input.profile,
        seed: input.seed,
        started: input.started,
        duration_ms: input.duration_ms,
        run,
        summary,
        requirements,
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RawVerdict::{Error as E, Fail as F, Pass as P, Skip as S};

    fn harness() -> HarnessInfo {
        HarnessInfo {
            name: "p2psip".into(),
            version: "0.1.0".into(),
            suites_digest: "ab".into(),
            profile_digest: "cd".into(),
        }
    }

    fn input(cases: Vec<CaseRun>) -> RunInput {
        let mut i = RunInput::new(harness(), IutInfo::default(), "dsip-chord/1", 7);
        i.cases = cases;
        i
    }

    fn case(id: &str, level: Level, attempts: &[RawVerdict]) -> CaseRun {
        let suite = id.split('.').next().unwrap_or(id);
        let mut c = CaseRun::new(id, suite, id, level).requirements([format!("R-{id}")]);
        for (i, &v) in attempts.iter().enumerate() {
            c = c.attempt(Attempt::new(v, format!("attempt {} {v}", i + 1)).duration_ms(10));
        }
        c
    }

    fn expect(text: &str) -> Expectations {
        Expectations::parse(text, "exp.toml").expect("valid test expectations")
    }

    #[test]
    fn combine_agreeing_attempts() {
        let c = combine_attempts(&[P]);
        assert_eq!((c.verdict, c.flaky, c.flake_rate), (P, false, None));
        let c = combine_attempts(&[F, F, F]);
        assert_eq!((c.verdict, c.flaky, c.flake_rate), (F, false, Some(0.0)));
        let c = combine_attempts(&[]);
        assert_eq!((c.verdict, c.flaky), (E, false));
    }

    #[test]
    fn disagreeing_attempts_are_flaky_and_fail() {
        let c = combine_attempts(&[P, F, P, P]);
        assert_eq!(c.verdict, F);
        assert!(c.flaky);
        assert_eq!(c.flake_rate, Some(0.25));
        let c = combine_attempts(&[P, S]);
        assert!(c.flaky);
        assert_eq!(c.verdict, F);
    }

    #[test]
    fn representative_is_first_failure_else_error_else_last() {
        assert_eq!(representative_attempt(&[P, E, F, F]), Some(2));
        assert_eq!(representative_attempt(&[P, E, P]), Some(1));
        assert_eq!(representative_attempt(&[P, P]), Some(1));
        assert_eq!(representative_attempt(&[]), None);
    }

    #[test]
    fn levels_grade_failures() {
        assert_eq!(grade_case(Level::Must, F), CaseVerdict::Fail);
        assert_eq!(grade_case(Level::Should, F), CaseVerdict::Warn);
        assert_eq!(grade_case(Level::May, F), CaseVerdict::Unsupported);
        for l in [Level::Must, Level::Should, Level::May] {
            assert_eq!(grade_case(l, P), CaseVerdict::Pass);
            assert_eq!(grade_case(l, S), CaseVerdict::Skip);
            assert_eq!(grade_case(l, E), CaseVerdict::Error);
        }
    }

    #[test]
    fn outcomes_with_expectations() {
        use ExpectedVerdict as X;
        let o = |g, r, x| case_outcome(g, r, x);
        assert_eq!(o(CaseVerdict::Fail, F, None), Outcome::Failed);
        assert_eq!(o(CaseVerdict::Fail, F, Some(X::Fail)), Outcome::XFailed);
        assert_eq!(o(CaseVerdict::Warn, F, Some(X::Fail)), Outcome::XFailed);
        assert_eq!(o(CaseVerdict::Pass, P, Some(X::Fail)), Outcome::XPassed);
        assert_eq!(o(CaseVerdict::Pass, P, Some(X::Skip)), Outcome::XPassed);
        assert_eq!(o(CaseVerdict::Error, E, Some(X::Error)), Outcome::XFailed);
        // Failing in the other way is not what the entry predicts.
        assert_eq!(o(CaseVerdict::Error, E, Some(X::Fail)), Outcome::Errored);
        assert_eq!(o(CaseVerdict::Fail, F, Some(X::Error)), Outcome::Failed);
        assert_eq!(o(CaseVerdict::Skip, S, Some(X::Fail)), Outcome::Skipped);
        assert_eq!(o(CaseVerdict::Error, E, Some(X::Skip)), Outcome::XFailed);
    }

    #[test]
    fn requirement_aggregation() {
        use RequirementVerdict as R;
        assert_eq!(requirement_verdict(Level::Must, &[]), R::Untested);
        assert_eq!(requirement_verdict(Level::Must, &[P, F, E]), R::Fail);
        assert_eq!(requirement_verdict(Level::Should, &[P, F]), R::Warn);
        assert_eq!(requirement_verdict(Level::Must, &[P, E]), R::Error);
        assert_eq!(requirement_verdict(Level::Must, &[P, S]), R::Pass);
        assert_eq!(requirement_verdict(Level::Must, &[S, S]), R::Skip);
        assert_eq!(requirement_verdict(Level::May, &[P]), R::Supported);
        assert_eq!(requirement_verdict(Level::May, &[P, F]), R::Unsupported);
        assert_eq!(requirement_verdict(Level::May, &[S]), R::Skip);
    }

    #[test]
    fn must_failure_makes_run_non_compliant() {
        let r = grade(
            input(vec![
                case("a.ok", Level::Must, &[P]),
                case("a.bad", Level::Must, &[F]),
            ]),
            None,
        );
        assert_eq!(r.summary.verdict, RunVerdict::NonCompliant);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.summary.failed, 1);
        assert!(r.summary.verdict_reasons[0].contains("a.bad failed"));
    }

    #[test]
    fn must_error_makes_run_non_compliant() {
        let r = grade(input(vec![case("a.err", Level::Must, &[E])]), None);
        assert_eq!(r.summary.verdict, RunVerdict::NonCompliant);
        assert_eq!(r.summary.errored, 1);
    }

    #[test]
    fn should_failure_warns_and_may_failure_is_unsupported() {
        let r = grade(
            input(vec![
                case("a.ok", Level::Must, &[P]),
                case("a.should", Level::Should, &[F]),
                case("a.may-no", Level::May, &[F]),
                case("a.may-yes", Level::May, &[P]),
                case("a.should-err", Level::Should, &[E]),
            ]),
            None,
        );
        assert_eq!(r.summary.verdict, RunVerdict::Compliant, "{:?}", r.summary);
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.case("a.should").unwrap().verdict, CaseVerdict::Warn);
        assert_eq!(r.summary.warned, 1);
        assert_eq!(r.summary.unsupported, 1);
        assert_eq!(r.summary.errored, 1);
        assert_eq!(
            r.requirement("R-a.may-no").unwrap().verdict,
            RequirementVerdict::Unsupported
        );
        assert_eq!(
            r.requirement("R-a.may-yes").unwrap().verdict,
            RequirementVerdict::Supported
        );
        assert_eq!(
            r.requirement("R-a.should").unwrap().verdict,
            RequirementVerdict::Warn
        );
    }

    #[test]
    fn nothing_ran_could_not_run() {
        let r = grade(input(vec![case("a.s", Level::Must, &[S])]), None);
        assert_eq!(r.summary.verdict, RunVerdict::CouldNotRun);
        assert_eq!(r.exit_code(), 2);
        let r = grade(input(vec![]), None);
        assert_eq!(r.summary.verdict, RunVerdict::CouldNotRun);
    }

    #[test]
    fn setup_failure_could_not_run() {
        let mut i = input(vec![case("a.ok", Level::Must, &[P])]);
        i.setup_failure = Some("IUT exited with status 3".into());
        let r = grade(i, None);
        assert_eq!(r.summary.verdict, RunVerdict::CouldNotRun);
        assert!(r.summary.verdict_reasons[0].contains("status 3"));
    }

    #[test]
    fn flaky_must_case_fails_the_run() {
        let r = grade(input(vec![case("a.flaky", Level::Must, &[P, F, P])]), None);
        let c = r.case("a.flaky").unwrap();
        assert!(c.flaky);
        assert_eq!(c.verdict, CaseVerdict::Fail);
        assert_eq!(c.attempts, vec![P, F, P]);
        assert!((c.flake_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        // Evidence from the failing attempt.
        assert_eq!(c.detail, "attempt 2 fail");
        assert!(c.evidence.notes[0].starts_with("flaky: 1 of 3"));
        assert_eq!(c.duration_ms, 30);
        assert_eq!(r.summary.flaky, 1);
        assert_eq!(r.summary.verdict, RunVerdict::NonCompliant);
        assert!(r.summary.verdict_reasons[0].contains("is flaky"));
    }

    #[test]
    fn flaky_should_case_only_warns() {
        let r = grade(
            input(vec![
                case("a.ok", Level::Must, &[P, P]),
                case("a.flaky", Level::Should, &[P, F]),
            ]),
            None,
        );
        assert_eq!(r.summary.flaky, 1);
        assert_eq!(r.summary.warned, 1);
        assert_eq!(r.summary.verdict, RunVerdict::Compliant);
    }

    #[test]
    fn expected_failure_is_xfailed_and_run_is_compliant() {
        let e = expect("[[expect]]\ncase = \"a.bad\"\nreason = \"ticket 12\"\n");
        let r = grade(
            input(vec![
                case("a.ok", Level::Must, &[P]),
                case("a.bad", Level::Must, &[F]),
            ]),
            Some(&e),
        );
        assert_eq!(r.summary.verdict, RunVerdict::Compliant);
        assert_eq!(r.summary.xfailed, 1);
        assert_eq!(r.summary.failed, 0);
        let c = r.case("a.bad").unwrap();
        assert_eq!(c.outcome, Outcome::XFailed);
        // The requirement still fails: expectations only change the run verdict.
        assert_eq!(c.verdict, CaseVerdict::Fail);
        assert_eq!(
            r.requirement("R-a.bad").unwrap().verdict,
            RequirementVerdict::Fail
        );
        assert_eq!(c.expected_failure.as_ref().unwrap().reason, "ticket 12");
        assert!(r.summary.verdict_reasons[0].contains("1 cases failed as"));
    }

    #[test]
    fn xpass_fails_the_run_unless_allowed() {
        let text = "[[expect]]\ncase = \"a.*\"\nreason = \"old bug\"\n";
        let cases = || vec![case("a.fixed", Level::Must, &[P])];
        let r = grade(input(cases()), Some(&expect(text)));
        assert_eq!(r.summary.xpassed, 1);
        assert_eq!(r.summary.verdict, RunVerdict::NonCompliant);
        assert!(r.summary.verdict_reasons[0].contains("a.fixed passed"));

        let allowed = format!("allow_xpass = true\n{text}");
        let r = grade(input(cases()), Some(&expect(&allowed)));
        assert_eq!(r.summary.verdict, RunVerdict::Compliant);
        assert!(r.run.allow_xpass);

        let mut i = input(cases());
        i.run.allow_xpass = true;
        let r = grade(i, Some(&expect(text)));
        assert_eq!(r.summary.verdict, RunVerdict::Compliant);
    }

    #[test]
    fn error_where_failure_expected_still_fails_the_run() {
        let e = expect("[[expect]]\ncase = \"a.bad\"\nreason = \"r\"\n");
        let r = grade(input(vec![case("a.bad", Level::Must, &[E])]), Some(&e));
        assert_eq!(r.case("a.bad").unwrap().outcome, Outcome::Errored);
        assert_eq!(r.summary.verdict, RunVerdict::NonCompliant);
    }

    #[test]
    fn stale_entry_is_an_error_but_unselected_case_is_not() {
        let e = expect(
            "[[expect]]\ncase = \"a.bad\"\nreason = \"r\"\n\n[[expect]]\ncase = \"b.other\"\nreason = \"r\"\n\n[[expect]]\ncase = \"gone.*\"\nreason = \"r\"\n",
        );
        let cases = || vec![case("a.bad", Level::Must, &[F])];

        // Without the list of known cases, every entry must match this run.
        let r = grade(input(cases()), Some(&e));
        assert_eq!(r.summary.verdict, RunVerdict::CouldNotRun);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(r.summary.verdict_reasons.len(), 2);

        // With it, `b.other` was merely not selected; `gone.*` is rot.
        let mut i = input(cases());
        i.known_case_ids = Some(vec!["a.bad".into(), "b.other".into()]);
        let r = grade(i, Some(&e));
        assert_eq!(r.summary.verdict, RunVerdict::CouldNotRun);
        assert_eq!(r.summary.verdict_reasons.len(), 1, "{:?}", r.summary);
        assert!(r.summary.verdict_reasons[0].contains("line 10: \"gone.*\""));
        assert_eq!(r.run.unused_expectations, vec!["line 6: b.other"]);
        assert_eq!(r.run.known_cases, Some(2));

        // Fixing the rot leaves a compliant run with one xfail.
        let e = expect(
            "[[expect]]\ncase = \"a.bad\"\nreason = \"r\"\n\n[[expect]]\ncase = \"b.other\"\nreason = \"r\"\n",
        );
        let mut i = input(cases());
        i.known_case_ids = Some(vec!["a.bad".into(), "b.other".into()]);
        let r = grade(i, Some(&e));
        assert_eq!(r.summary.verdict, RunVerdict::Compliant);
    }

    #[test]
    fn counts_add_up() {
        let e = expect("[[expect]]\ncase = \"x.*\"\nreason = \"r\"\n");
        let r = grade(
            input(vec![
                case("a.p", Level::Must, &[P]),
                case("a.f", Level::Must, &[F]),
                case("a.w", Level::Should, &[F]),
                case("a.s", Level::Must, &[S]),
                case("a.e", Level::Must, &[E]),
                case("x.xf", Level::Must, &[F]),
                case("x.xp", Level::Must, &[P]),
                case("a.u", Level::May, &[F]),
            ]),
            Some(&e),
        );
        let s = &r.summary;
        assert_eq!(
            [
                s.passed,
                s.failed,
                s.warned,
                s.skipped,
                s.errored,
                s.xfailed,
                s.xpassed,
                s.unsupported
            ],
            [1; 8]
        );
        assert_eq!(s.total, 8);
    }

    #[test]
    fn requirement_matrix_uses_catalogue_and_infers_the_rest() {
        let mut i = input(vec![
            CaseRun::new("j.a", "j", "A", Level::Must)
                .requirements(["JOIN-10", "JOIN-2"])
                .attempt(Attempt::pass("")),
            CaseRun::new("j.b", "j", "B", Level::Should)
                .requirements(["JOIN-2", "JOIN-2"])
                .attempt(Attempt::fail("")),
        ]);
        i.requirements = vec![
            RequirementDef::new("JOIN-1", Level::Must),
            RequirementDef {
                id: "JOIN-2".into(),
                level: Level::Should,
                title: Some("should".into()),
            },
        ];
        let r = grade(i, None);
        let ids: Vec<&str> = r.requirements.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["JOIN-1", "JOIN-2", "JOIN-10"]);
        assert_eq!(r.requirements[0].verdict, RequirementVerdict::Untested);
        assert_eq!(r.requirements[1].verdict, RequirementVerdict::Warn);
        assert_eq!(r.requirements[1].cases, ["j.a", "j.b"]);
        assert_eq!(r.requirements[2].level, Level::Must);
        assert_eq!(r.requirements[2].verdict, RequirementVerdict::Pass);
    }
}
