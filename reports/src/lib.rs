//! Conformance result model and its JSON, JUnit, Markdown and HTML renderers.
//!
//! The harness describes what it measured as a [`RunInput`] (one
//! [`CaseRun`] per selected case, one [`Attempt`] per `--repeat` run), then
//! [`grade()`] turns it into a [`Report`]: it grades each case by its level,
//! applies the expectations file ([`Expectations`]), builds the requirement
//! matrix and decides the [`RunVerdict`], whose
//! [`exit_code`](RunVerdict::exit_code) is the process exit code
//! (0 compliant, 1 non-compliant, 2 could not run).
//!
//! The renderers only read the [`Report`]: [`json`] (`report.json`, whose
//! format is documented on [`model`], and [`json::load`] to read it back),
//! [`junit`] (`junit.xml`), [`markdown`] (`summary.md`, for CI job
//! summaries) and [`html`] (a self-contained `report.html`). Each writes to
//! any [`std::io::Write`]; [`write_all`] writes all four into a directory.
//! [`expect::write()`] produces an expectations file that accepts the current
//! failures (`--write-expect`).
//!
//! ```
//! use p2psip_reports::*;
//!
//! let harness = HarnessInfo {
//!     name: "p2psip".into(),
//!     version: "0.1.0".into(),
//!     suites_digest: "9f86d081884c7d65".into(),
//!     profile_digest: "2c26b46b68ffc68f".into(),
//! };
//! let iut = IutInfo { name: "chordd".into(), version: Some("2.1".into()), ..Default::default() };
//! let mut run = RunInput::new(harness, iut, "dsip-chord/1", 42);
//!
//! let mut evidence = Evidence::default();
//! evidence.ladder.push(
//!     LadderEntry::new(0.4, "10.0.0.2:5060", "10.0.0.1:5060", Transport::Udp, "REGISTER (join)")
//!         .labels("puppet-a", "iut-1")
//!         .raw_bytes("REGISTER sip:overlay SIP/2.0\r\n\r\n"),
//! );
//! evidence.failure = Some(Failure {
//!     requirement: "JOIN-4".into(),
//!     expected: "302 to the closest preceding finger".into(),
//!     actual: "302 to S1".into(),
//!     at_ms: Some(1.2),
//! });
//! run.cases.push(
//!     CaseRun::new("join.admit-redirects-toward-key", "join", "Admitting peer redirects", Level::Must)
//!         .requirements(["JOIN-3", "JOIN-4"])
//!         .attempt(Attempt::fail("redirected to the wrong peer").duration_ms(12).evidence(evidence)),
//! );
//! run.cases.push(
//!     CaseRun::new("join.accepts-register", "join", "Bootstrap accepts REGISTER", Level::Must)
//!         .requirements(["JOIN-1"])
//!         .attempt(Attempt::pass("200 OK").duration_ms(3)),
//! );
//!
//! // Without expectations the MUST failure makes the run non-compliant...
//! let report = grade(run.clone(), None);
//! assert_eq!(report.summary.verdict, RunVerdict::NonCompliant);
//! assert_eq!(report.exit_code(), 1);
//!
//! // ...with the failure expected, it is `xfailed` and the run compliant.
//! let exp = Expectations::parse(
//!     "[[expect]]\ncase = \"join.admit-*\"\nreason = \"ticket #12\"\n",
//!     "expect.toml",
//! )?;
//! let report = grade(run, Some(&exp));
//! assert_eq!(report.summary.xfailed, 1);
//! assert_eq!(report.exit_code(), 0);
//!
//! let mut md = Vec::new();
//! markdown::write(&report, &mut md)?;
//! assert!(String::from_utf8_lossy(&md).contains("COMPLIANT"));
//!
//! let dir = std::env::temp_dir().join(format!("p2psip-doc-{}", std::process::id()));
//! let files = write_all(&report, &dir)?;
//! assert_eq!(json::load_path(&files.json)?, report);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod expect;
pub mod grade;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
mod output;
mod text;

pub use error::{ExpectError, LoadError, RenderError, StaleEntry, WriteError};
pub use expect::{Expectation, Expectations};
pub use grade::{Attempt, CaseRun, RequirementDef, RunInput, grade};
pub use model::{
    CaseResult, CaseVerdict, Evidence, ExpectedFailure, ExpectedVerdict, Failure, HarnessInfo,
    IutInfo, LadderEntry, Level, LogBlock, Outcome, RawMessage, RawVerdict, Report,
    RequirementResult, RequirementVerdict, RunInfo, RunVerdict, SCHEMA, Summary, Timestamp,
    Transport,
};
pub use output::{HTML_FILE, JSON_FILE, JUNIT_FILE, MARKDOWN_FILE, WrittenFiles, write_all};
