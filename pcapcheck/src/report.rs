/*!
An [`Analysis`] as a [`RunInput`] of the report model, so the harness's
renderers (JSON, JUnit, Markdown, HTML) write `pcap check` reports.

One case per check family ([`Check`]), in the suite `pcap`. A family that
judged nothing is skipped; one with violations fails (a SHOULD family
warns). The case's detail lists the violations with their frame numbers;
its evidence has one ladder entry per kept finding (the offending message,
raw, at its capture time) and the first finding as the failure. A family
that failed names only the requirements it found violated, one that passed
the requirements it judged, so that the requirement matrix is exact. The
capture's own problems (truncation, TCP gaps) are the SHOULD case
`pcap.capture`.
*/

use std::fmt::Write as _;

use p2psip_capture::Transport as CaptureTransport;
use p2psip_reports::{
    Attempt, CaseRun, Evidence, Failure, HarnessInfo, IutInfo, LadderEntry, Level, RequirementDef,
    RunInput, Transport,
};
use p2psip_wire::{Id, ParseOptions, parse, summary};

use crate::catalogue::{Check, Req};
use crate::model::{Analysis, Finding};

/// Lines of findings listed in a case's detail.
const DETAIL_FINDINGS: usize = 20;

/// What the report says about where the analysis came from.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The capture, as the user named it.
    pub capture: String,
    /// The wire profile's name (`dsip-chord`, `sipping-02`).
    pub profile: String,
    /// Endpoints judged (empty: every sender).
    pub subjects: Vec<String>,
    /// Wall-clock duration of the analysis.
    pub duration_ms: u64,
}

/// The report model of an analysis.
pub fn run_input(analysis: &Analysis, meta: &Meta) -> RunInput {
    let catalogue: String = Check::ALL
        .iter()
        .map(|c| format!("{}:{};", c.id(), c.level()))
        .collect();
    let harness = HarnessInfo {
        name: "p2psip pcap check".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        suites_digest: digest16(catalogue.as_bytes()),
        profile_digest: digest16(meta.profile.as_bytes()),
    };
    let iut = IutInfo {
        name: format!("capture {}", meta.capture),
        version: None,
        command: None,
        address: (!meta.subjects.is_empty()).then(|| meta.subjects.join(", ")),
    };
    let mut run = RunInput::new(harness, iut, format!("{}/1", meta.profile), 0);
    run.duration_ms = meta.duration_ms;
    run.requirements = Req::ALL
        .iter()
        .map(|r| RequirementDef {
            id: r.id().into(),
            level: r.level(),
            title: Some(r.title().into()),
        })
        .collect();
    for check in Check::ALL {
        run.cases.push(case(analysis, *check));
    }
    run.cases.push(capture_case(analysis));
    run.known_case_ids = Some(run.cases.iter().map(|c| c.id.clone()).collect());
    run
}

fn case(analysis: &Analysis, check: Check) -> CaseRun {
    let result = analysis.check(check);
    let judged: Vec<Req> = check
        .requirements()
        .iter()
        .copied()
        .filter(|r| analysis.requirement(*r).judged > 0)
        .collect();
    let violated: Vec<Req> = check
        .requirements()
        .iter()
        .copied()
        .filter(|r| analysis.requirement(*r).violations > 0)
        .collect();
    let mut c = CaseRun::new(check.id(), "pcap", check.title(), check.level());
    let attempt = if result.violations > 0 {
        c = c.requirements(violated.iter().map(|r| r.id()));
        let findings: Vec<&Finding> = analysis
            .findings
            .iter()
            .filter(|f| f.check == check)
            .collect();
        let mut detail = format!(
            "{} violation(s) of {} in {} judgement(s)",
            result.violations,
            violated
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
                .join(", "),
            result.judged
        );
        if let Some(first) = findings.first() {
            let _ = write!(
                detail,
                "; first at frame {}: {}",
                first.frame, first.message
            );
        }
        for f in findings.iter().take(DETAIL_FINDINGS) {
            let _ = write!(detail, "\n{f}");
        }
        if result.violations as usize > findings.len().min(DETAIL_FINDINGS) {
            let _ = write!(
                detail,
                "\n... {} more (evidence kept for {})",
                result.violations as usize - findings.len().min(DETAIL_FINDINGS),
                findings.len()
            );
        }
        Attempt::fail(detail).evidence(evidence(analysis, &findings))
    } else if judged.is_empty() {
        c = c.requirements(check.requirements().iter().map(|r| r.id()));
        Attempt::skip("nothing in the capture to judge")
    } else {
        c = c.requirements(judged.iter().map(|r| r.id()));
        let per: Vec<String> = judged
            .iter()
            .map(|r| format!("{} ({})", r.id(), analysis.requirement(*r).judged))
            .collect();
        Attempt::pass(format!(
            "no violation in {} judgement(s): {}",
            result.judged,
            per.join(", ")
        ))
    };
    c.attempt(attempt)
}

fn evidence(analysis: &Analysis, findings: &[&Finding]) -> Evidence {
    let t0 = analysis.first_ts.map_or(0, |t| t.as_nanos());
    let mut e = Evidence::default();
    for f in findings {
        let t_ms = (f.ts.as_nanos() - t0) as f64 / 1e6;
        let what = f
            .raw
            .as_deref()
            .and_then(|raw| parse(raw, ParseOptions::lenient().without_peer_id_check()).ok())
            .map(|p| summary(&p.message))
            .unwrap_or_else(|| "(message)".into());
        let mut entry = LadderEntry::new(
            t_ms,
            f.src.to_string(),
            f.dst.to_string(),
            transport(f.transport),
            format!("frame {}: {what} [{}]", f.frame, f.requirement.id()),
        );
        if let Some(raw) = &f.raw {
            entry = entry.raw_bytes(raw.to_vec());
        }
        e.ladder.push(entry);
        e.notes.push(f.to_string());
    }
    e.ladder.sort_by(|a, b| {
        a.t_ms
            .partial_cmp(&b.t_ms)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if let Some(first) = findings.first() {
        e.failure = Some(Failure {
            requirement: first.requirement.id().into(),
            expected: first.expected.clone(),
            actual: format!("frame {}: {}", first.frame, first.actual),
            at_ms: Some((first.ts.as_nanos() - t0) as f64 / 1e6),
        });
    }
    e
}

fn capture_case(analysis: &Analysis) -> CaseRun {
    let c = CaseRun::new(
        "pcap.capture",
        "pcap",
        "The capture reads without problems",
        Level::Should,
    );
    let s = &analysis.capture;
    let head = format!(
        "{} frames, {} SIP messages ({} bytes), {} unparsable, {} peers",
        s.frames,
        analysis.counters.messages,
        analysis.counters.message_bytes,
        analysis.counters.unparsable,
        analysis.counters.peers
    );
    let mut notes: Vec<String> = analysis.notes.clone();
    notes.extend(
        analysis
            .capture_problems
            .iter()
            .map(|p| format!("frame {}: {}: {}", p.frame, p.kind, p.message)),
    );
    let attempt = if analysis.capture_problems.is_empty() {
        Attempt::pass(head)
    } else {
        let mut detail = format!("{} problem(s) reading the capture; {head}", s.findings);
        for p in analysis.capture_problems.iter().take(DETAIL_FINDINGS) {
            let _ = write!(detail, "\nframe {}: {}: {}", p.frame, p.kind, p.message);
        }
        Attempt::fail(detail)
    };
    let e = Evidence {
        notes,
        ..Evidence::default()
    };
    c.attempt(attempt.evidence(e))
}

fn transport(t: CaptureTransport) -> Transport {
    match t {
        CaptureTransport::Udp => Transport::Udp,
        CaptureTransport::Tcp => Transport::Tcp,
    }
}

fn digest16(bytes: &[u8]) -> String {
    Id::hash(bytes).to_hex()[..16].to_owned()
}
