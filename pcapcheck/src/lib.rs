/*!
Offline conformance analysis of P2P-SIP (dSIP/Chord) captures.

[`check`] reads a pcap or pcapng capture in one streaming pass (through
[`p2psip_capture::CaptureReader`]) and judges every SIP message against
PROFILE.md, with bounded state expired by capture time. The result, an
[`Analysis`], holds findings with frame numbers (so a user can jump to them
in Wireshark), per-requirement verdicts and counters; [`report::run_input`]
turns it into a [`p2psip_reports::RunInput`] (one case per check family)
so that the harness's renderers write JSON, JUnit, Markdown and HTML
reports of it.

What can be judged from a passive capture without false positives is
limited: the capture does not know the ring (peers may not have been seen
yet), the timers the peers ran with, or what happened before it started.
Every rule therefore judges a message against what its own sender showed
(its other reports, its transactions) and stays silent when the capture
cannot tell; the README lists each rule with its guard.

```no_run
use p2psip_pcapcheck::{Options, check};

let file = std::fs::File::open("ring.pcap")?;
let analysis = check(std::io::BufReader::new(file), &Options::fast())?;
for f in &analysis.findings {
    println!("{f}");
}
assert!(analysis.is_compliant());
# Ok::<(), Box<dyn std::error::Error>>(())
```

[`check_pipelined`] gives the same result on two threads (reading and
part of the parsing on a helper).

Layers: [`engine`] (the pass and its state), [`pipeline`] (the two-thread
pass), [`catalogue`] (requirements
and check families), [`model`] (findings and results), [`shape`] (the
structural summary of a response), [`replay`] (the capture side of
`pcap replay`), [`report`] (to the report
model), [`cli`] (the `pcap check` arguments and exit codes).
*/

pub mod catalogue;
pub mod cli;
pub mod engine;
mod hash;
pub mod model;
pub mod options;
pub mod pipeline;
pub mod replay;
pub mod report;
mod ring;
pub mod shape;
mod sink;

use std::io::Read;

use p2psip_capture::{CaptureError, CaptureReader};

pub use catalogue::{Check, Req};
pub use cli::{PcapCheckArgs, run_check};
pub use engine::Checker;
pub use model::{
    Analysis, CaptureProblem, CheckResult, Counters, Finding, RequirementResult, Verdict,
};
pub use options::{Options, Subject};
pub use pipeline::{Tuning, check_pipelined, check_pipelined_with};
pub use shape::{FingerMatch, LinkSet, ResponseShape, shape_of};

/// Analyses a whole capture. Fails only when the input is not a capture
/// at all or cannot be read; problems inside it are
/// [`Analysis::capture_problems`].
pub fn check<R: Read>(reader: R, options: &Options) -> Result<Analysis, CaptureError> {
    let mut capture = CaptureReader::with_limits(reader, options.limits)?;
    let mut checker = Checker::new(options.clone());
    capture.for_each(|event| checker.event(&event))?;
    Ok(checker.finish(capture.stats()))
}

/// [`check`] of a capture held in memory.
pub fn check_bytes(capture: &[u8], options: &Options) -> Result<Analysis, CaptureError> {
    check(capture, options)
}
