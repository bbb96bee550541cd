/*!
`p2psip pcap check FILE`: the arguments (a clap [`Args`](clap::Args)
struct the harness binary flattens into its subcommand) and the run, with
the exit-code policy of `p2psip run`: `Ok(0)` compliant (no MUST
violation), `Ok(1)` non-compliant, `Err` when the capture cannot be read,
holds no SIP message at all, or the report cannot be written (the binary
exits 2).
*/

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use p2psip_reports::{grade, write_all};
use p2psip_wire::Profile;

use crate::catalogue::Check;
use crate::model::Analysis;
use crate::options::{Options, Subject};
use crate::report::{Meta, run_input};

/// Arguments of `pcap check`.
#[derive(Debug, Clone, clap::Args)]
pub struct PcapCheckArgs {
    /// The capture (pcap or pcapng); `-` reads standard input.
    pub file: PathBuf,
    /// Wire profile: dsip-chord or sipping-02.
    #[arg(long, default_value = "dsip-chord", value_parser = parse_profile)]
    pub profile: Profile,
    /// Write report.json, junit.xml, summary.md and report.html here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// The harness's fast timer values (T1 100 ms, stabilise and
    /// keep-alive 1 s); the flags below override them.
    #[arg(long)]
    pub fast: bool,
    /// T1 the peers ran with (default: each sender's own, else 500).
    #[arg(long, value_name = "MS")]
    pub t1_ms: Option<u64>,
    /// T2 (RFC 3261).
    #[arg(long, value_name = "MS", default_value_t = 4000)]
    pub t2_ms: u64,
    /// Stabilisation interval the peers ran with (default 60000).
    #[arg(long, value_name = "MS")]
    pub stabilize_ms: Option<u64>,
    /// Keep-alive interval the peers ran with (default 25000).
    #[arg(long, value_name = "MS")]
    pub keepalive_ms: Option<u64>,
    /// R, the replica count.
    #[arg(long, default_value_t = 2)]
    pub replicas: u32,
    /// Judge only what these endpoints send (IP or IP:PORT; repeatable).
    #[arg(long = "subject", value_name = "IP[:PORT]")]
    pub subjects: Vec<Subject>,
    /// Findings kept with evidence per check family.
    #[arg(long, default_value_t = 50)]
    pub max_findings: usize,
    /// Threads: 2 reads and parses ahead on a second core, 1 does
    /// everything on one (faster when the other core is busy). Default: 2
    /// when the machine has two cores or more. The result is the same.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: Option<u8>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::from_name(s).ok_or_else(|| format!("unknown profile {s:?} (dsip-chord, sipping-02)"))
}

impl PcapCheckArgs {
    /// Arguments for `file` with every default.
    pub fn new(file: impl Into<PathBuf>) -> PcapCheckArgs {
        PcapCheckArgs {
            file: file.into(),
            profile: Profile::DsipChord,
            report: None,
            fast: false,
            t1_ms: None,
            t2_ms: 4000,
            stabilize_ms: None,
            keepalive_ms: None,
            replicas: 2,
            subjects: Vec::new(),
            max_findings: 50,
            threads: None,
            quiet: false,
        }
    }

    /// The analysis options these arguments ask for.
    pub fn options(&self) -> Options {
        let base = if self.fast {
            Options::fast()
        } else {
            Options::default()
        };
        Options {
            profile: self.profile,
            t1: self.t1_ms.map(Duration::from_millis).or(base.t1),
            t2: Duration::from_millis(self.t2_ms),
            stabilize: self
                .stabilize_ms
                .map(Duration::from_millis)
                .unwrap_or(base.stabilize),
            keepalive: self
                .keepalive_ms
                .map(Duration::from_millis)
                .unwrap_or(base.keepalive),
            replicas: self.replicas,
            subjects: self.subjects.clone(),
            max_findings: self.max_findings,
            ..base
        }
    }
}

/// Runs `pcap check`, printing to standard output.
pub fn run_check(args: &PcapCheckArgs) -> anyhow::Result<i32> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    run_check_to(args, &mut out)
}

/// Runs `pcap check`, printing to `out`.
pub fn run_check_to(args: &PcapCheckArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let opts = args.options();
    let started = Instant::now();
    let input: Box<dyn Read + Send> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        Box::new(f)
    };
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores >= 2 { 2 } else { 1 }
    });
    // Both give the same analysis (tested). No BufReader: the capture
    // reader reads large blocks straight into its own buffer.
    let analysis = if threads >= 2 {
        crate::check_pipelined(input, &opts)
    } else {
        crate::check(input, &opts)
    }
    .with_context(|| format!("cannot read {}", args.file.display()))?;
    let meta = Meta {
        capture: args.file.display().to_string(),
        profile: args.profile.name().to_owned(),
        subjects: args.subjects.iter().map(subject_text).collect(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let report = grade(run_input(&analysis, &meta), None);
    if let Some(dir) = &args.report {
        write_all(&report, dir)
            .with_context(|| format!("cannot write the report into {}", dir.display()))?;
    }
    print_text(&analysis, args, out)?;
    writeln!(out, "{}", report.summary)?;
    // As with `p2psip run`, nothing judged is not a pass.
    if analysis.counters.messages == 0 {
        anyhow::bail!(
            "{}: no SIP message in the capture ({} frames read): nothing to judge",
            args.file.display(),
            analysis.capture.frames
        );
    }
    Ok(report.exit_code())
}

fn subject_text(s: &Subject) -> String {
    match s.port {
        Some(p) => std::net::SocketAddr::new(s.ip, p).to_string(),
        None => s.ip.to_string(),
    }
}

/// The console summary: one line per check family, then the findings.
pub fn print_text(
    analysis: &Analysis,
    args: &PcapCheckArgs,
    out: &mut dyn Write,
) -> io::Result<()> {
    if args.quiet {
        return Ok(());
    }
    let c = &analysis.counters;
    writeln!(
        out,
        "{}: {} frames, {} SIP messages ({} requests, {} responses, {} unparsable), {} peers",
        args.file.display(),
        analysis.capture.frames,
        c.messages,
        c.requests,
        c.responses,
        c.unparsable,
        c.peers
    )?;
    for check in Check::ALL {
        let r = analysis.check(*check);
        let verdict = if r.violations > 0 {
            "FAIL"
        } else if r.judged == 0 {
            "-"
        } else {
            "pass"
        };
        writeln!(
            out,
            "  {:<24} {:<6} {:<4} judged {:>9}, violations {}",
            check.id(),
            check.level().as_str(),
            verdict,
            r.judged,
            r.violations
        )?;
    }
    for f in &analysis.findings {
        writeln!(out, "{f}")?;
    }
    for p in &analysis.capture_problems {
        writeln!(out, "capture: frame {}: {}: {}", p.frame, p.kind, p.message)?;
    }
    for n in &analysis.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
