/*!
What an analysis produces: findings (each a broken rule at a frame), and
per check family and per requirement how much was judged and how much
failed.
*/

use std::fmt;
use std::net::SocketAddr;

use p2psip_capture::{FindingKind, Stats, Timestamp, Transport};
use p2psip_reports::Level;

use crate::catalogue::{Check, Req};

/// One broken rule, at one message of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Frame (1-based, as Wireshark numbers them) that completed the
    /// offending message.
    pub frame: u64,
    /// Frame that carried its first byte.
    pub first_frame: u64,
    /// Capture time of `frame`.
    pub ts: Timestamp,
    pub check: Check,
    pub requirement: Req,
    pub level: Level,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    /// One line: what happened.
    pub message: String,
    pub expected: String,
    pub actual: String,
    /// Another frame the finding refers to (the request a response
    /// answers, the earlier report it contradicts...).
    pub related_frame: Option<u64>,
    /// The offending message, as captured.
    pub raw: Option<Box<[u8]>>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame {}{}: {} {} {} -> {}: {} (expected {}; actual {})",
            self.frame,
            match self.related_frame {
                Some(r) => format!(" (see frame {r})"),
                None => String::new(),
            },
            self.requirement.id(),
            self.level,
            self.src,
            self.dst,
            self.message,
            self.expected,
            self.actual
        )
    }
}

/// How one check family fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult {
    pub check: Check,
    /// Messages (or transactions, or placements) the family judged.
    pub judged: u64,
    /// Violations found (all of them, kept or not).
    pub violations: u64,
}

/// The verdict on one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Judged at least once, never violated.
    Pass,
    /// Violated at least once (a warning for SHOULD requirements).
    Fail,
    /// Nothing in the capture could judge it.
    Untested,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Untested => "untested",
        }
    }
}

/// How one requirement fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequirementResult {
    pub requirement: Req,
    pub judged: u64,
    pub violations: u64,
}

impl RequirementResult {
    pub fn verdict(&self) -> Verdict {
        if self.violations > 0 {
            Verdict::Fail
        } else if self.judged > 0 {
            Verdict::Pass
        } else {
            Verdict::Untested
        }
    }
}

/// A problem of the capture itself (from the reader), bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureProblem {
    pub frame: u64,
    pub kind: FindingKind,
    pub message: String,
}

/// Counters of the pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// SIP messages seen (UDP datagrams and framed TCP messages).
    pub messages: u64,
    /// Bytes of those messages.
    pub message_bytes: u64,
    pub requests: u64,
    pub responses: u64,
    /// Messages the lenient parser refused.
    pub unparsable: u64,
    /// Messages not judged because their sender is not a subject.
    pub not_judged: u64,
    /// Responses paired with a captured request leg.
    pub paired: u64,
    /// Distinct peers (by Peer-ID) seen.
    pub peers: u64,
    /// Distinct addresses whose ID-2 was computed.
    pub id2_computed: u64,
    /// Transactions dropped because the table was full.
    pub transactions_evicted: u64,
    /// Deferred judgements dropped because their queue was full.
    pub deferred_dropped: u64,
}

/// The result of [`check`](crate::check).
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Findings kept (at most `max_findings` per family), in capture
    /// order within each family, families in [`Check::ALL`] order.
    pub findings: Vec<Finding>,
    pub checks: Vec<CheckResult>,
    pub requirements: Vec<RequirementResult>,
    pub counters: Counters,
    /// The reader's counters.
    pub capture: Stats,
    /// The reader's findings (truncated file, TCP gaps...), at most 100.
    pub capture_problems: Vec<CaptureProblem>,
    /// Capture time of the first and last frame with a SIP message.
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Remarks about the analysis itself (limits reached...).
    pub notes: Vec<String>,
}

impl Analysis {
    /// No MUST-level violation.
    pub fn is_compliant(&self) -> bool {
        self.requirements
            .iter()
            .all(|r| r.violations == 0 || r.requirement.level() != Level::Must)
    }

    /// No violation at all, SHOULD included.
    pub fn is_clean(&self) -> bool {
        self.requirements.iter().all(|r| r.violations == 0)
    }

    pub fn requirement(&self, req: Req) -> RequirementResult {
        self.requirements
            .iter()
            .find(|r| r.requirement == req)
            .copied()
            .unwrap_or(RequirementResult {
                requirement: req,
                judged: 0,
                violations: 0,
            })
    }

    pub fn check(&self, check: Check) -> CheckResult {
        self.checks
            .iter()
            .find(|c| c.check == check)
            .copied()
            .unwrap_or(CheckResult {
                check,
                judged: 0,
                violations: 0,
            })
    }

    /// The kept findings of one requirement.
    pub fn findings_of(&self, req: Req) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.requirement == req)
    }

    /// Requirements with at least one violation.
    pub fn violated(&self) -> Vec<Req> {
        self.requirements
            .iter()
            .filter(|r| r.violations > 0)
            .map(|r| r.requirement)
            .collect()
    }
}
