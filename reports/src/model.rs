//! The conformance result model: what `report.json` contains.
//!
//! Every renderer reads this model and nothing else, so a report loaded back
//! from `report.json` renders exactly like the one the harness produced.
//!
//! # The `p2psip-report/1` JSON format
//!
//! `report.json` is the pretty-printed serde JSON of [`Report`]. Field by
//! field (`?` marks a value that may be `null`):
//!
//! ```text
//! {
//!   "schema": "p2psip-report/1",            // format id; readers reject another major
//!   "harness": {"name", "version", "suites_digest", "profile_digest"},  // digests: sha256/sha1 hex
//!   "iut": {"name", "version"?, "command"?: [argv...], "address"?},
//!   "profile": "dsip-chord/1",
//!   "seed": u64,                             // see the note on precision below
//!   "started": "2025-01-02T03:04:05.678Z",   // RFC 3339, UTC, milliseconds
//!   "duration_ms": u64,
//!   "run": {"repeat", "filters": [..], "expectations"?, "allow_xpass",
//!           "known_cases"?, "unused_expectations": [..]},
//!   "summary": {"passed", "failed", "warned", "skipped", "errored", "xfailed",
//!               "xpassed", "unsupported", "flaky", "total",
//!               "verdict": "compliant" | "non-compliant" | "could-not-run",
//!               "verdict_reasons": [..]},
//!   "requirements": [{"id", "level": "MUST"|"SHOULD"|"MAY", "title"?,
//!                     "verdict": "pass"|"fail"|"warn"|"skip"|"error"
//!                                |"supported"|"unsupported"|"untested",
//!                     "cases": [case ids]}],
//!   "cases": [{
//!     "id", "suite", "title", "requirements": [ids], "level",
//!     "verdict": "pass"|"fail"|"warn"|"skip"|"error"|"unsupported",
//!     "outcome": "passed"|"failed"|"warned"|"skipped"|"errored"
//!                |"xfailed"|"xpassed"|"unsupported",
//!     "duration_ms", "detail",
//!     "attempts": ["pass"|"fail"|"skip"|"error", ...],  // one per --repeat run
//!     "flaky": bool, "flake_rate"?: f64,
//!     "expected_failure"?: {"reason", "verdict", "pattern", "line"?},
//!     "evidence": {
//!       "ladder": [{"t_ms": f64, "from", "to", "from_label"?, "to_label"?,
//!                   "transport": "udp"|"tcp"|"tls", "summary",
//!                   "raw": "text"   // or "raw_b64": "..." when not UTF-8, or neither
//!                 }],
//!       "pcap"?: "relative/path.pcap",
//!       "logs": [{"instance", "lines": [..]}],
//!       "failure"?: {"requirement", "expected", "actual", "at_ms"?},
//!       "notes": [..]
//!     }
//!   }]
//! }
//! ```
//!
//! Counting rule: every case is counted in exactly one of `passed`, `failed`,
//! `warned`, `skipped`, `errored`, `xfailed`, `xpassed` and `unsupported`
//! (its `outcome`), so they add up to `total`; `flaky` counts across them.
//!
//! A case's `verdict` is what the IUT did, graded by the case level; its
//! `outcome` is how that verdict counts for the run once the expectations file
//! is applied. A requirement's verdict ignores expectations: an expected
//! failure is still a failure of the requirement.
//!
//! Readers must ignore fields they do not know: minor additions keep the
//! major version. `seed` is a full `u64`; tools that read JSON numbers as
//! doubles (`jq`, JavaScript) lose precision above 2^53.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The schema id written into every report.
pub const SCHEMA: &str = "p2psip-report/1";
/// The schema id prefix; the part after it is the version.
pub const SCHEMA_PREFIX: &str = "p2psip-report/";
/// The major schema version this crate reads and writes.
pub const SCHEMA_MAJOR: u32 = 1;

/// A complete conformance report: the root of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`] when written by this crate.
    pub schema: String,
    pub harness: HarnessInfo,
    pub iut: IutInfo,
    /// The conformance profile, e.g. `dsip-chord/1`.
    pub profile: String,
    /// The seed that makes the run reproducible.
    pub seed: u64,
    pub started: Timestamp,
    pub duration_ms: u64,
    /// How the run was selected and graded.
    #[serde(default)]
    pub run: RunInfo,
    pub summary: Summary,
    pub requirements: Vec<RequirementResult>,
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// The process exit code for this report; see [`RunVerdict::exit_code`].
    pub fn exit_code(&self) -> i32 {
        self.summary.verdict.exit_code()
    }

    /// Looks a case up by id.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Looks a requirement up by id.
    pub fn requirement(&self, id: &str) -> Option<&RequirementResult> {
        self.requirements.iter().find(|r| r.id == id)
    }
}

/// The harness that produced the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessInfo {
    pub name: String,
    pub version: String,
    /// Hex digest (sha256 or sha1) of the suites that were run.
    pub suites_digest: String,
    /// Hex digest of the conformance profile definition.
    pub profile_digest: String,
}

/// The implementation under test.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IutInfo {
    pub name: String,
    pub version: Option<String>,
    /// The command line the harness started, when it started the IUT.
    pub command: Option<Vec<String>>,
    /// The address the IUT was reached at, when it was already running.
    pub address: Option<String>,
}

/// How the run was selected and graded; absent from old reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// How many times each case was run (`--repeat`).
    #[serde(default = "one")]
    pub repeat: u32,
    /// The case filters the user gave; empty means every case was selected.
    #[serde(default)]
    pub filters: Vec<String>,
    /// The expectations file that was applied, as the user named it.
    #[serde(default)]
    pub expectations: Option<String>,
    /// Whether an expected failure that passes is tolerated.
    #[serde(default)]
    pub allow_xpass: bool,
    /// How many cases the harness knows (selected or not), when it said.
    #[serde(default)]
    pub known_cases: Option<usize>,
    /// Expectation patterns that matched only cases not selected in this run.
    #[serde(default)]
    pub unused_expectations: Vec<String>,
}

fn one() -> u32 {
    1
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo {
            repeat: 1,
            filters: Vec::new(),
            expectations: None,
            allow_xpass: false,
            known_cases: None,
            unused_expectations: Vec::new(),
        }
    }
}

/// Counts per outcome and the run verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
    pub errored: usize,
    pub xfailed: usize,
    pub xpassed: usize,
    #[serde(default)]
    pub unsupported: usize,
    pub flaky: usize,
    #[serde(default)]
    pub total: usize,
    pub verdict: RunVerdict,
    /// Why the verdict is what it is, one sentence each (empty when compliant).
    #[serde(default)]
    pub verdict_reasons: Vec<String>,
}

impl fmt::Display for Summary {
    /// One line for the console, e.g. `NON-COMPLIANT: 8 passed, 1 failed,
    /// 2 skipped (1 warned, 0 errored, ...; 12 cases)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} passed, {} failed, {} skipped ({} warned, {} errored, {} xfailed, {} xpassed, {} unsupported, {} flaky; {} cases)",
            self.verdict.as_str().to_uppercase(),
            self.passed,
            self.failed,
            self.skipped,
            self.warned,
            self.errored,
            self.xfailed,
            self.xpassed,
            self.unsupported,
            self.flaky,
            self.total
        )
    }
}

/// The verdict of one requirement over the cases that test it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementResult {
    /// Requirement id, e.g. `JOIN-4`.
    pub id: String,
    pub level: Level,
    /// Short statement of the requirement, when the catalogue has one.
    #[serde(default)]
    pub title: Option<String>,
    pub verdict: RequirementVerdict,
    /// Ids of the cases that test this requirement, in report order.
    pub cases: Vec<String>,
}

/// The result of one test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case id, e.g. `join.admit-redirects-toward-key`.
    pub id: String,
    /// The suite the case belongs to, e.g. `join`.
    pub suite: String,
    pub title: String,
    /// Requirement ids this case tests.
    pub requirements: Vec<String>,
    pub level: Level,
    /// What the IUT did, graded by `level`.
    pub verdict: CaseVerdict,
    /// How the verdict counts for the run after expectations.
    pub outcome: Outcome,
    /// Total over all attempts.
    pub duration_ms: u64,
    /// Human-readable explanation; the first line is the headline.
    pub detail: String,
    /// The raw verdict of every attempt, in order (one unless `--repeat`).
    pub attempts: Vec<RawVerdict>,
    /// Attempts disagreed.
    #[serde(default)]
    pub flaky: bool,
    /// Share of attempts that did not pass, when the case ran more than once.
    #[serde(default)]
    pub flake_rate: Option<f64>,
    /// The expectations entry that matched this case.
    pub expected_failure: Option<ExpectedFailure>,
    pub evidence: Evidence,
}

/// The expectations entry applied to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedFailure {
    pub reason: String,
    /// The verdict the entry expects.
    #[serde(default)]
    pub verdict: ExpectedVerdict,
    /// The `case` value of the entry (an id or a glob).
    #[serde(default)]
    pub pattern: String,
    /// Line of the entry in the expectations file.
    #[serde(default)]
    pub line: Option<usize>,
}

/// What the harness recorded while running a case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// Messages exchanged, in time order.
    #[serde(default)]
    pub ladder: Vec<LadderEntry>,
    /// Capture file, relative to the report directory.
    #[serde(default)]
    pub pcap: Option<String>,
    #[serde(default)]
    pub logs: Vec<LogBlock>,
    /// The first check that failed.
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "LadderEntryRepr", into = "LadderEntryRepr")]
pub struct LadderEntry {
    /// Milliseconds since the case started.
    pub t_ms: f64,
    /// Sender `ip:port`.
    pub from: String,
    /// Receiver `ip:port`.
    pub to: String,
    /// Who the sender is, e.g. `iut-1` or `puppet-a`.
    pub from_label: Option<String>,
    pub to_label: Option<String>,
    pub transport: Transport,
    /// One line, e.g. `REGISTER (join)` or `302 Moved Temporarily`.
    pub summary: String,
    /// The full message, when it was captured.
    pub raw: Option<RawMessage>,
}

impl LadderEntry {
    /// A message with no labels and no raw text; fill the rest in as needed.
    pub fn new(
        t_ms: f64,
        from: impl Into<String>,
        to: impl Into<String>,
        transport: Transport,
        summary: impl Into<String>,
    ) -> Self {
        LadderEntry {
            t_ms,
            from: from.into(),
            to: to.into(),
            from_label: None,
            to_label: None,
            transport,
            summary: summary.into(),
            raw: None,
        }
    }

    /// Sets the endpoint labels.
    pub fn labels(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.from_label = Some(from.into());
        self.to_label = Some(to.into());
        self
    }

    /// Sets the raw message from its bytes (text when they are UTF-8).
    pub fn raw_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw = Some(RawMessage::from_bytes(bytes.into()));
        self
    }
}

/// The JSON shape of a ladder entry: `raw` or `raw_b64`, never both.
#[derive(Serialize, Deserialize)]
struct LadderEntryRepr {
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    t_ms: f64,
    from: String,
    to: String,
    #[serde(default)]
    from_label: Option<String>,
    #[serde(default)]
    to_label: Option<String>,
    transport: Transport,
    summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_b64: Option<String>,
}

impl From<LadderEntry> for LadderEntryRepr {
    fn from(e: LadderEntry) -> Self {
        let (raw, raw_b64) = match e.raw {
            None => (None, None),
            Some(RawMessage::Text(t)) => (Some(t), None),
            Some(RawMessage::Binary(b)) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(b)),
            ),
        };
        LadderEntryRepr {
            t_ms: e.t_ms,
            from: e.from,
            to: e.to,
            from_label: e.from_label,
            to_label: e.to_label,
            transport: e.transport,
            summary: e.summary,
            raw,
            raw_b64,
        }
    }
}

impl From<LadderEntryRepr> for LadderEntry {
    fn from(r: LadderEntryRepr) -> Self {
        // Text wins when both are present; undecodable base64 is kept as text
        // so a damaged report still loads and shows what it holds.
        let raw = match (r.raw, r.raw_b64) {
            (Some(t), _) => Some(RawMessage::Text(t)),
            (None, Some(b)) => Some(
                match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                    Ok(bytes) => RawMessage::Binary(bytes),
                    Err(_) => RawMessage::Text(b),
                },
            ),
            (None, None) => None,
        };
        LadderEntry {
            t_ms: r.t_ms,
            from: r.from,
            to: r.to,
            from_label: r.from_label,
            to_label: r.to_label,
            transport: r.transport,
            summary: r.summary,
            raw,
        }
    }
}

/// A captured message: text when it is UTF-8, bytes otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMessage {
    Text(String),
    Binary(Vec<u8>),
}

impl RawMessage {
    /// Text when the bytes are valid UTF-8, binary otherwise.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(s) => RawMessage::Text(s),
            Err(e) => RawMessage::Binary(e.into_bytes()),
        }
    }
}

/// Transport a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Log lines of one process (an IUT instance or a scripted peer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogBlock {
    /// e.g. `iut-1`.
    pub instance: String,
    pub lines: Vec<String>,
}

/// The check that failed: which requirement, what was expected and seen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Failure {
    pub requirement: String,
    pub expected: String,
    pub actual: String,
    /// Time of the offending message on the ladder.
    #[serde(
        default,
        serialize_with = "ser_opt_f64",
        deserialize_with = "de_opt_f64"
    )]
    pub at_ms: Option<f64>,
}

/// Requirement level (RFC 2119 keyword).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }

    /// Higher is stricter; used to infer a requirement's level from its cases.
    pub fn strictness(self) -> u8 {
        match self {
            Level::Must => 2,
            Level::Should => 1,
            Level::May => 0,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of one attempt, as the test measured it, before grading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawVerdict {
    Pass,
    Fail,
    Skip,
    /// The test could not reach a verdict (harness or setup trouble).
    Error,
}

impl RawVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RawVerdict::Pass => "pass",
            RawVerdict::Fail => "fail",
            RawVerdict::Skip => "skip",
            RawVerdict::Error => "error",
        }
    }
}

impl fmt::Display for RawVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case verdict after grading by level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseVerdict {
    Pass,
    /// A MUST case failed.
    Fail,
    /// A SHOULD case failed: recorded, never fails the run.
    Warn,
    Skip,
    Error,
    /// A MAY case failed: the optional feature is not supported.
    Unsupported,
}

impl CaseVerdict {
    /// The raw verdict this graded one came from.
    pub fn raw(self) -> RawVerdict {
        match self {
            CaseVerdict::Pass => RawVerdict::Pass,
            CaseVerdict::Fail | CaseVerdict::Warn | CaseVerdict::Unsupported => RawVerdict::Fail,
            CaseVerdict::Skip => RawVerdict::Skip,
            CaseVerdict::Error => RawVerdict::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaseVerdict::Pass => "pass",
            CaseVerdict::Fail => "fail",
            CaseVerdict::Warn => "warn",
            CaseVerdict::Skip => "skip",
            CaseVerdict::Error => "error",
            CaseVerdict::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for CaseVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A requirement verdict over its cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequirementVerdict {
    Pass,
    Fail,
    Warn,
    Skip,
    Error,
    /// A MAY requirement whose probes passed.
    Supported,
    /// A MAY requirement whose probes failed.
    Unsupported,
    /// No case of this run tests it.
    Untested,
}

impl RequirementVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RequirementVerdict::Pass => "pass",
            RequirementVerdict::Fail => "fail",
            RequirementVerdict::Warn => "warn",
            RequirementVerdict::Skip => "skip",
            RequirementVerdict::Error => "error",
            RequirementVerdict::Supported => "supported",
            RequirementVerdict::Unsupported => "unsupported",
            RequirementVerdict::Untested => "untested",
        }
    }
}

impl fmt::Display for RequirementVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a case counts for the run; one summary counter per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Warned,
    Skipped,
    Errored,
    /// Failed as the expectations file said it would.
    #[serde(rename = "xfailed")]
    XFailed,
    /// Passed although the expectations file said it would fail.
    #[serde(rename = "xpassed")]
    XPassed,
    Unsupported,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Warned => "warned",
            Outcome::Skipped => "skipped",
            Outcome::Errored => "errored",
            Outcome::XFailed => "xfailed",
            Outcome::XPassed => "xpassed",
            Outcome::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict an expectations entry predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedVerdict {
    #[default]
    Fail,
    /// The case must not be run at all (e.g. it crashes the IUT).
    Skip,
    Error,
}

impl ExpectedVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedVerdict::Fail => "fail",
            ExpectedVerdict::Skip => "skip",
            ExpectedVerdict::Error => "error",
        }
    }
}

impl fmt::Display for ExpectedVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunVerdict {
    Compliant,
    NonCompliant,
    CouldNotRun,
}

impl RunVerdict {
    /// The exit code policy, in one place: 0 compliant, 1 non-compliant,
    /// 2 could not run (setup failure, broken expectations file, nothing ran).
    pub fn exit_code(self) -> i32 {
        match self {
            RunVerdict::Compliant => 0,
            RunVerdict::NonCompliant => 1,
            RunVerdict::CouldNotRun => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunVerdict::Compliant => "compliant",
            RunVerdict::NonCompliant => "non-compliant",
            RunVerdict::CouldNotRun => "could-not-run",
        }
    }
}

impl fmt::Display for RunVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UTC instant, written as RFC 3339 with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp::from(SystemTime::now())
    }

    /// From milliseconds since the Unix epoch; `None` when out of range.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        DateTime::<Utc>::from_timestamp_millis(ms).map(Timestamp)
    }

    /// RFC 3339 text, e.g. `2025-01-02T03:04:05.678Z`.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncated to milliseconds, the precision of the JSON form, so that a
    /// report equals itself read back.
    fn from(t: SystemTime) -> Self {
        Timestamp(DateTime::<Utc>::from(t).trunc_subsecs(3))
    }
}

impl FromStr for Timestamp {
    type Err = chrono::ParseError;

    /// Parses RFC 3339 with any offset and converts to UTC.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s).map(|t| Timestamp(t.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time: {e}")))
    }
}

// JSON has no NaN or infinity: serde_json writes them as null, so times are
// written as null when not finite and null reads back as NaN. A report with
// a bad clock reading then still round-trips instead of failing to load.
fn ser_f64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

fn de_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn ser_opt_f64<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) if v.is_finite() => s.serialize_f64(*v),
        _ => s.serialize_none(),
    }
}

fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialize_as_documented() {
        fn j<T: Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("enum serializes")
        }
        assert_eq!(j(&Level::Must), "\"MUST\"");
        assert_eq!(j(&Level::May), "\"MAY\"");
        assert_eq!(j(&RunVerdict::NonCompliant), "\"non-compliant\"");
        assert_eq!(j(&RunVerdict::CouldNotRun), "\"could-not-run\"");
        assert_eq!(j(&Outcome::XFailed), "\"xfailed\"");
        assert_eq!(j(&Outcome::XPassed), "\"xpassed\"");
        assert_eq!(j(&RequirementVerdict::Untested), "\"untested\"");
        assert_eq!(j(&CaseVerdict::Warn), "\"warn\"");
        assert_eq!(j(&Transport::Udp), "\"udp\"");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(RunVerdict::Compliant.exit_code(), 0);
        assert_eq!(RunVerdict::NonCompliant.exit_code(), 1);
        assert_eq!(RunVerdict::CouldNotRun.exit_code(), 2);
    }

    #[test]
    fn raw_message_text_or_base64() {
        let text = LadderEntry::new(1.5, "a:1", "b:2", Transport::Udp, "X").raw_bytes("hi <x>");
        let v = serde_json::to_value(&text).unwrap();
        assert_eq!(v["raw"], "hi <x>");
        assert!(v.get("raw_b64").is_none());

        let bin = LadderEntry::new(1.5, "a:1", "b:2", Transport::Tcp, "X")
            .raw_bytes(vec![0xff, 0x00, 0x41]);
        let v = serde_json::to_value(&bin).unwrap();
        assert_eq!(v["raw_b64"], "/wBB");
        assert!(v.get("raw").is_none());
        let back: LadderEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back.raw, Some(RawMessage::Binary(vec![0xff, 0x00, 0x41])));
    }

    #[test]
    fn non_finite_times_round_trip() {
        let e = LadderEntry::new(f64::NAN, "a", "b", Transport::Udp, "X");
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"t_ms\":null"), "{s}");
        let back: LadderEntry = serde_json::from_str(&s).unwrap();
        assert!(back.t_ms.is_nan());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let t = Timestamp::from_unix_millis(1_700_000_000_123).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        let parsed: Timestamp = "2023-11-14T23:13:20.123+01:00".parse().unwrap();
        assert_eq!(parsed, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
