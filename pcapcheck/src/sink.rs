/*!
Where judgements go: counters per requirement and per check family, and
the findings kept with their evidence (a bounded number per family; the
rest are only counted). Texts are built only for findings that are kept.
*/

use std::net::SocketAddr;

use p2psip_capture::{Event, PayloadKind, Timestamp, Transport};

use crate::catalogue::{Check, Req};
use crate::model::{CheckResult, Finding, RequirementResult};

/// Where in the capture a message is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub frame: u64,
    pub first_frame: u64,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
}

impl At {
    /// Where a SIP datagram of the capture is, and its payload; `None`
    /// for anything else.
    pub(crate) fn of_sip<'e>(event: &'e Event<'_>) -> Option<(At, &'e [u8])> {
        match event {
            Event::Datagram {
                frame,
                first_frame,
                ts,
                src,
                dst,
                transport,
                payload,
                kind: PayloadKind::Sip,
            } => Some((
                At {
                    frame: *frame,
                    first_frame: *first_frame,
                    ts: *ts,
                    src: *src,
                    dst: *dst,
                    transport: *transport,
                },
                payload,
            )),
            _ => None,
        }
    }
}

/// The three texts of a finding.
pub(crate) struct Texts {
    pub message: String,
    pub expected: String,
    pub actual: String,
}

pub(crate) fn texts(
    message: impl Into<String>,
    expected: impl Into<String>,
    actual: impl Into<String>,
) -> Texts {
    Texts {
        message: message.into(),
        expected: expected.into(),
        actual: actual.into(),
    }
}

pub(crate) struct Sink {
    max: usize,
    kept: Vec<Vec<Finding>>,
    check_of: Vec<Check>,
    check_judged: Vec<u64>,
    check_violations: Vec<u64>,
    req_judged: Vec<u64>,
    req_violations: Vec<u64>,
}

impl Sink {
    pub fn new(max: usize) -> Sink {
        Sink {
            max,
            kept: vec![Vec::new(); Check::ALL.len()],
            check_of: Req::ALL.iter().map(|r| Check::of(*r)).collect(),
            check_judged: vec![0; Check::ALL.len()],
            check_violations: vec![0; Check::ALL.len()],
            req_judged: vec![0; Req::ALL.len()],
            req_violations: vec![0; Req::ALL.len()],
        }
    }

    /// One more message (or transaction, placement...) judged for `req`.
    #[inline]
    pub fn judged(&mut self, req: Req) {
        self.req_judged[req as usize] += 1;
        let c = self.check_of[req as usize];
        self.check_judged[c as usize] += 1;
    }

    /// Whether a new finding of `req` would be kept (so its evidence is
    /// worth copying).
    pub fn keeps(&self, req: Req) -> bool {
        let c = self.check_of[req as usize];
        self.kept[c as usize].len() < self.max
    }

    /// Records a violation of `req` by the message at `at`.
    pub fn violation(
        &mut self,
        req: Req,
        at: &At,
        raw: &[u8],
        related: Option<u64>,
        describe: impl FnOnce() -> Texts,
    ) {
        if self.keeps(req) {
            let t = describe();
            let f = self.finding(req, at, Some(raw), related, t);
            self.push(f);
        } else {
            self.count(req);
        }
    }

    /// Builds a finding without recording it (for judgements deferred
    /// until more of the capture is known).
    pub fn finding(
        &self,
        req: Req,
        at: &At,
        raw: Option<&[u8]>,
        related: Option<u64>,
        t: Texts,
    ) -> Finding {
        Finding {
            frame: at.frame,
            first_frame: at.first_frame,
            ts: at.ts,
            check: self.check_of[req as usize],
            requirement: req,
            level: req.level(),
            src: at.src,
            dst: at.dst,
            transport: at.transport,
            message: t.message,
            expected: t.expected,
            actual: t.actual,
            related_frame: related,
            raw: raw.map(Box::from),
        }
    }

    /// Records a finding built earlier.
    pub fn push(&mut self, f: Finding) {
        let c = f.check as usize;
        self.count(f.requirement);
        if self.kept[c].len() < self.max {
            self.kept[c].push(f);
        }
    }

    /// Counts a violation whose finding is not kept.
    pub fn count_only(&mut self, req: Req) {
        self.count(req);
    }

    fn count(&mut self, req: Req) {
        self.req_violations[req as usize] += 1;
        let c = self.check_of[req as usize];
        self.check_violations[c as usize] += 1;
    }

    pub fn finish(self) -> (Vec<Finding>, Vec<CheckResult>, Vec<RequirementResult>) {
        let checks = Check::ALL
            .iter()
            .map(|c| CheckResult {
                check: *c,
                judged: self.check_judged[*c as usize],
                violations: self.check_violations[*c as usize],
            })
            .collect();
        let reqs = Req::ALL
            .iter()
            .map(|r| RequirementResult {
                requirement: *r,
                judged: self.req_judged[*r as usize],
                violations: self.req_violations[*r as usize],
            })
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        for mut k in self.kept {
            k.sort_by_key(|f| (f.frame, f.requirement));
            findings.extend(k);
        }
        (findings, checks, reqs)
    }
}
