//! `p2psip run`: run the suites against an implementation and report.
//!
//! Two stages, as in ripgrep's flags: the clap [`Args`] (libtest-mimic's
//! own arguments flattened in, so `--list`, a name filter, `--exact`,
//! `--skip`, `--test-threads`, `-q` and `--format` behave as with `cargo
//! test`), then a checked plan: suites loaded, IUT file read, cases
//! selected (zero is an error), expectations read. Then a preflight (one
//! IUT instance must start and answer OPTIONS, else the run could not
//! run: exit 2), then one libtest-mimic trial per case, then grading and
//! the reports.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use libtest_mimic::{Completion, Failed, FormatSetting, Trial};
use p2psip_reports::{
    Attempt, CaseRun, Expectations, HarnessInfo, IutInfo, RawVerdict, RunInfo, RunInput, grade,
};

use crate::cli::Outcome;
use crate::engine::case::{run_attempt, skip_reason};
use crate::engine::ctx::RunEnv;
use crate::engine::load::{self, Case, Catalogue};
use crate::engine::plan::{self, Partition};
use crate::evidence::Recorder;
use crate::iut::{self, Instance, IutSpec, Launch, Params, StopMode, registry};
use crate::net;
use crate::probe;
use crate::puppet::Puppet;

/// The profile the suites check.
pub const PROFILE: &str = "dsip-chord/1";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The implementation under test (IUT file, TOML). Default: the
    /// built-in reference node.
    #[arg(long, value_name = "FILE")]
    pub iut: Option<PathBuf>,
    /// A user-managed IUT already running at IP:PORT; cases that must
    /// start, stop or place instances are skipped.
    #[arg(long, value_name = "IP:PORT")]
    pub iut_addr: Option<SocketAddr>,
    /// Run only this suite (repeatable).
    #[arg(short = 's', long = "suite", value_name = "NAME")]
    pub suite: Vec<String>,
    /// Run only cases that check this requirement ID (repeatable).
    #[arg(short = 'r', long = "requirement", value_name = "ID")]
    pub requirement: Vec<String>,
    /// Load the suites from this directory instead of the built-in ones.
    #[arg(long = "suites", value_name = "DIR")]
    pub suites_dir: Option<PathBuf>,
    /// Write report.json, junit.xml, summary.md, report.html and the
    /// per-case pcaps into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Known failures to accept (strict: see `p2psip_reports::expect`).
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Write an expectations file accepting this run's failures.
    #[arg(long, value_name = "FILE")]
    pub write_expect: Option<PathBuf>,
    /// Tolerate expected failures that pass.
    #[arg(long)]
    pub allow_xpass: bool,
    /// Seed of every random choice (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run every case N times and report the flake rate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Run shard K of N (1-based) of the selected cases.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<Partition>,
    #[command(flatten)]
    pub test: libtest_mimic::Arguments,
}

/// Default number of cases in flight: they mostly wait on timers.
const DEFAULT_THREADS: usize = 16;

struct Shared {
    results: Mutex<HashMap<String, CaseRun>>,
    bar: Option<ProgressBar>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalogue = match &args.suites_dir {
        Some(dir) => load::from_dir(dir),
        None => load::embedded(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let iut = match &args.iut {
        Some(path) => IutSpec::load(path)?,
        None => iut::reference_node(&[]),
    };
    let expectations = match &args.expect {
        Some(p) => Some(Expectations::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let selected = plan::select(
        &catalogue,
        &args.suite,
        &args.requirement,
        &args.test,
        args.partition,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    if selected.is_empty() {
        bail!(
            "no case selected (suites {:?}, requirements {:?}, filter {:?}, skip {:?}, partition {:?}): nothing to run is an error, not a pass; `p2psip run --list` shows the cases",
            args.suite,
            args.requirement,
            args.test.filter,
            args.test.skip,
            args.partition.map(|p| format!("{}/{}", p.k, p.n))
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let env = Arc::new(RunEnv {
        iut: iut.clone(),
        reference: iut::reference_node(&[]),
        external: args.iut_addr,
        seed,
    });

    // libtest-mimic applies no filter to what we hand it: selection is
    // ours (suites, filters, partition).
    let mut lt = args.test.clone();
    lt.filter = None;
    lt.skip.clear();
    lt.exact = false;
    if lt.test_threads.is_none() {
        lt.test_threads = Some(DEFAULT_THREADS);
    }
    if args.test.list {
        let trials = selected
            .iter()
            .map(|c| Trial::test(c.id().to_string(), || Ok(())))
            .collect();
        let _ = libtest_mimic::run(&lt, trials);
        return Ok(Outcome::Yes);
    }

    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating report directory {}", dir.display()))?;
    }

    crate::trace::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.spawn(interrupt_guard());

    let bar_mode = !lt.quiet
        && matches!(lt.format, None | Some(FormatSetting::Pretty))
        && std::io::stderr().is_terminal()
        && std::io::stdout().is_terminal();
    let bar = bar_mode.then(|| {
        let b = ProgressBar::new((selected.len() as u64) * u64::from(args.repeat));
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} cases {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    if bar_mode {
        // Our own per-case lines go through the bar; libtest's would
        // tear it.
        lt.logfile = Some("/dev/null".into());
    }

    let started = Instant::now();
    let run_started = p2psip_reports::Timestamp::now();
    let known_ids: Vec<String> = catalogue.cases.iter().map(|c| c.id().to_string()).collect();
    let mut setup_failure = None;
    let needs_instances = selected
        .iter()
        .any(|c| c.def.topology.iut > 0 && skip_reason(c, &env).is_none());
    if needs_instances && let Err(why) = runtime.block_on(preflight(&env)) {
        setup_failure = Some(why);
    }

    let shared = Arc::new(Shared {
        results: Mutex::new(HashMap::new()),
        bar: bar.clone(),
    });
    if setup_failure.is_none() {
        let trials = selected
            .iter()
            .map(|case| {
                trial(
                    case.clone(),
                    &env,
                    &shared,
                    &runtime,
                    &args,
                    expectations.as_ref(),
                )
            })
            .collect();
        // The verdict comes from grading, not from libtest's conclusion.
        let _ = libtest_mimic::run(&lt, trials);
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    registry::kill_all();

    let mut results =
        std::mem::take(&mut *shared.results.lock().unwrap_or_else(|e| e.into_inner()));
    let cases: Vec<CaseRun> = if setup_failure.is_some() {
        Vec::new()
    } else {
        selected
            .iter()
            .map(|c| {
                results.remove(c.id()).unwrap_or_else(|| {
                    case_run(c).attempt(Attempt::error(
                        "the harness failed while running this case (a panic; see stderr)",
                    ))
                })
            })
            .collect()
    };
    let mut input = RunInput::new(
        HarnessInfo {
            name: "p2psip".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            suites_digest: catalogue.suites_digest.clone(),
            profile_digest: catalogue.profile_digest.clone(),
        },
        IutInfo {
            name: env.iut.name.clone(),
            version: env.iut.version.clone(),
            command: Some(env.iut.command_text()),
            address: args.iut_addr.map(|a| a.to_string()),
        },
        PROFILE,
        seed,
    );
    input.started = run_started;
    input.duration_ms = started.elapsed().as_millis() as u64;
    input.requirements = catalogue.requirements.clone();
    input.cases = cases;
    input.setup_failure = setup_failure;
    input.known_case_ids = Some(known_ids);
    input.run = RunInfo {
        repeat: args.repeat,
        filters: filters(&args),
        allow_xpass: args.allow_xpass,
        ..RunInfo::default()
    };
    let report = grade(input, expectations.as_ref());
    if let Some(dir) = &args.report {
        p2psip_reports::write_all(&report, dir)
            .map_err(|e| anyhow::anyhow!("writing the reports: {e}"))?;
    }
    if let Some(path) = &args.write_expect {
        p2psip_reports::expect::write_file(&report, path)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    print_summary(&report, args.report.as_deref(), bar_mode);
    Ok(match report.exit_code() {
        0 => Outcome::Yes,
        1 => Outcome::No,
        _ => Outcome::CouldNotRun,
    })
}

fn filters(args: &Args) -> Vec<String> {
    let mut f: Vec<String> = args.suite.iter().map(|s| format!("suite:{s}")).collect();
    f.extend(args.requirement.iter().map(|r| format!("requirement:{r}")));
    f.extend(args.test.filter.iter().map(|x| {
        if args.test.exact {
            format!("exact:{x}")
        } else {
            x.clone()
        }
    }));
    f.extend(args.test.skip.iter().map(|s| format!("skip:{s}")));
    if let Some(p) = args.partition {
        f.push(format!("partition:{}/{}", p.k, p.n));
    }
    f
}

fn case_run(c: &Case) -> CaseRun {
    CaseRun::new(
        c.id(),
        c.suite.clone(),
        c.def.title.clone(),
        c.def.level.to_report(),
    )
    .requirements(c.def.requirements.iter().cloned())
}

fn trial(
    case: Arc<Case>,
    env: &Arc<RunEnv>,
    shared: &Arc<Shared>,
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    expectations: Option<&Expectations>,
) -> Trial {
    let env = env.clone();
    let shared = shared.clone();
    let handle = runtime.handle().clone();
    let repeat = args.repeat;
    let report_dir = args.report.clone();
    let skip = expectations.and_then(|e| e.skip_reason(case.id()).map(str::to_string));
    Trial::ignorable_test(case.id().to_string(), move || {
        let mut run = case_run(&case);
        if let Some(why) = skip {
            for _ in 0..repeat {
                run = run.attempt(Attempt::skip(format!(
                    "skipped by the expectations file: {why}"
                )));
            }
        } else {
            for attempt in 1..=repeat {
                let a = handle.block_on(run_attempt(
                    case.clone(),
                    env.clone(),
                    attempt,
                    report_dir.as_deref(),
                ));
                if let Some(b) = &shared.bar {
                    b.inc(1);
                }
                run = run.attempt(a);
            }
        }
        let outcome = conclude(&case, &run);
        if let Some(b) = &shared.bar {
            let status = match &outcome {
                Ok(Completion::Completed) => "ok".to_string(),
                Ok(Completion::Ignored { reason }) => {
                    format!("ignored, {}", reason.as_deref().unwrap_or(""))
                }
                Err(_) => "FAILED".to_string(),
            };
            b.println(format!("test {} ... {status}", case.id()));
        }
        shared
            .results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(case.id().to_string(), run);
        outcome
    })
}

/// The libtest outcome of a case: any attempt not passing fails it, all
/// skipped ignores it.
fn conclude(case: &Case, run: &CaseRun) -> Result<Completion, Failed> {
    if run.attempts.iter().all(|a| a.verdict == RawVerdict::Skip) {
        let why = run
            .attempts
            .first()
            .map(|a| a.detail.clone())
            .unwrap_or_default();
        return Ok(Completion::Ignored { reason: Some(why) });
    }
    let bad: Vec<&Attempt> = run
        .attempts
        .iter()
        .filter(|a| matches!(a.verdict, RawVerdict::Fail | RawVerdict::Error))
        .collect();
    let Some(first) = bad.first() else {
        return Ok(Completion::Completed);
    };
    let level = case.def.level.to_report();
    let mut msg = format!(
        "[{level}] {} ({})\n  {}\n  case defined at {}",
        case.def.title,
        case.def.requirements.join(", "),
        first.detail.replace('\n', "\n  "),
        case.origin
    );
    if run.attempts.len() > 1 {
        msg.push_str(&format!(
            "\n  {} of {} attempts did not pass",
            bad.len(),
            run.attempts.len()
        ));
    }
    if first.verdict == RawVerdict::Error {
        msg.insert_str(0, "could not reach a verdict: ");
    }
    Err(Failed::from(msg))
}

/// One IUT instance must start and answer OPTIONS before any case runs;
/// otherwise the run could not run (exit 2), with the reason and the
/// instance's last output.
async fn preflight(env: &RunEnv) -> Result<(), String> {
    let rec = Recorder::new();
    let obs = Puppet::bind_in("observer", None, "chat", 30, rec.clone())
        .await
        .map_err(|e| format!("preflight observer: {e}"))?;
    let interval = Duration::from_millis(100);
    if let Some(addr) = env.external {
        let deadline = Instant::now() + env.iut.ready_timeout;
        return probe::options(&obs, addr, deadline, interval)
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the IUT at {addr} (--iut-addr) does not answer OPTIONS with 200 (TXN-4): {e}"
                )
            });
    }
    let addr = net::fresh_endpoint().map_err(|e| format!("preflight address: {e}"))?;
    let launch = Launch {
        label: "preflight".into(),
        addr,
        bootstrap: None,
        advertise: None,
        params: Params::default(),
        data_dir: None,
    };
    let mut inst = Instance::spawn(&env.iut, &launch).map_err(|e| {
        format!(
            "the IUT {} could not be started: {e} (command: {})",
            env.iut.name,
            env.iut.command_text().join(" ")
        )
    })?;
    let deadline = Instant::now() + env.iut.ready_timeout;
    let r = tokio::select! {
        r = probe::options(&obs, addr, deadline, interval) => r.map(|_| ()).map_err(|e| e.to_string()),
        st = inst.exited() => Err(format!("it exited ({}) before answering", iut::describe_status(&st))),
    };
    let tail: Vec<String> = inst
        .logs()
        .tail(15)
        .into_iter()
        .map(|l| format!("    {}: {}", l.stream, l.text))
        .collect();
    inst.stop(StopMode::Sigkill, Duration::ZERO).await;
    r.map_err(|why| {
        format!(
            "the IUT {} never became ready: started as `{}`, it did not answer an OPTIONS probe with 200 (TXN-4) within {} ms: {why}\n  last output:\n{}",
            env.iut.name,
            inst.argv.join(" "),
            env.iut.ready_timeout.as_millis(),
            if tail.is_empty() { "    (none)".to_string() } else { tail.join("\n") }
        )
    })
}

/// Ctrl-C or SIGTERM: kill every IUT process group, then exit.
async fn interrupt_guard() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let n = registry::live();
    registry::kill_all();
    eprintln!("\np2psip: interrupted; killed {n} IUT process groups");
    std::process::exit(2);
}

fn print_summary(report: &p2psip_reports::Report, dir: Option<&Path>, bar_mode: bool) {
    let s = &report.summary;
    if bar_mode {
        for c in &report.cases {
            if matches!(
                c.outcome,
                p2psip_reports::Outcome::Failed | p2psip_reports::Outcome::Errored
            ) {
                eprintln!("---- {} ----\n{}\n", c.id, c.detail);
            }
        }
    }
    eprintln!(
        "p2psip: {} - {} passed, {} failed, {} warned, {} skipped, {} errored, {} xfailed, {} xpassed, {} unsupported{} (seed {}, {:.1} s)",
        s.verdict.as_str().to_uppercase(),
        s.passed,
        s.failed,
        s.warned,
        s.skipped,
        s.errored,
        s.xfailed,
        s.xpassed,
        s.unsupported,
        if s.flaky > 0 {
            format!(", {} flaky", s.flaky)
        } else {
            String::new()
        },
        report.seed,
        report.duration_ms as f64 / 1000.0
    );
    for r in &s.verdict_reasons {
        eprintln!("  {r}");
    }
    if let Some(d) = dir {
        eprintln!("  reports in {}", d.display());
    }
}

/// Exposed for tests: the catalogue the run would use.
pub fn catalogue(dir: Option<&Path>) -> Result<Catalogue, load::LoadError> {
    match dir {
        Some(d) => load::from_dir(d),
        None => load::embedded(),
    }
}
