/*!
The `p2psip sim` command: [`SimArgs`] (clap) and [`run`].

Two stages, as ripgrep does it: the raw flags, then [`plan`] turns them
into a validated run (a [`SimConfig`], [`Options`] and a [`Scenario`]),
which [`run`] carries out and prints.

Built-in scenarios (`--scenario`):

- `join`: `--peers` peers join through the first one at `--join-rate`;
  convergence (C-G5..C-G7); `--resources` registrations (C-R1, C-R2);
  lookups (C-Q1..C-Q3); then `--failures` peers killed within the failure
  rules, healing, re-placement (C-R3) and no acknowledged registration
  lost.
- `churn`: the same start, then seeded churn (`--churn-model`,
  `--mean-lifetime-s`, `--duration-s`, `--leave-fraction`), healing and the
  same checks afterwards.
- `zave`: the same start, then `--zave-rounds` joins into gaps each
  followed by the joiner's failure, healing and the checks.
- anything else is read as a TOML scenario file ([`crate::scenario`]).
*/

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use p2psip_node::Config;

use crate::addr;
use crate::churn::Lifetimes;
use crate::net::{LinkModel, MAX_UDP};
use crate::runner::{self, Options};
use crate::scenario::Scenario;
use crate::sim::SimConfig;

/// Base timer values (PROFILE §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Timers {
    /// The harness's fast values: T = fix-fingers = keep-alive = 1 s,
    /// T1 = 100 ms, expires 30 s.
    Fast,
    /// The profile defaults: T = fix-fingers = 60 s, keep-alive 25 s,
    /// T1 = 500 ms, expires 600 s, peer expires 3600 s.
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChurnModel {
    Exponential,
    Weibull,
}

/// The text after `p2psip sim --help`: scenarios, output, exit codes and
/// examples, so the command is usable without reading the code.
pub const AFTER_HELP: &str = "\
Scenarios (--scenario):
  join    --peers peers join through the first one (at --join-rate) and the
          ring must become ideal (C-G5) within log2 N + 3 stabilisation
          intervals (C-G6) and stay so (C-G7); --resources registrations
          through the peers' adapter role, replicas on the hashed holders
          (C-R1, C-R2); lookups of random keys and of every peer's ID, ID-1
          and ID+1 (C-Q1..C-Q3); then --failures peers killed within the
          failure rules of CHECKS.md, the ring heals, replicas are placed
          again (C-R3) and no acknowledged registration is lost.
  churn   the same start, then seeded churn (--churn-model, --mean-lifetime-s,
          --duration-s, --leave-fraction) with lookups under churn; healing
          and the same checks afterwards.
  zave    the same start, then --zave-rounds joins into gaps of the ring,
          each followed by the failure of the joiner; healing and the checks.
  FILE    any other value is read as a TOML scenario file (sim/README.md).

Time is virtual: nothing sleeps, no socket is opened. Every random draw comes
from --seed, so the same seed and arguments give the same output, byte for
byte, except the `measured` line (wall time, RSS), which --no-measured leaves
out. Durations in the report are also given in stabilisation intervals T.

Output: a summary on stdout (one line per step, traffic, memory, then every
check with its verdict), or the JSON report with --json (schema
p2psip-sim/1). --progress prints progress lines on stderr.

Exit codes: 0 every check passed, 1 a check failed (a run that hits the
--max-event-rate bound stops with a failed `runaway` check), 2 could not run
(bad arguments, an unreadable or invalid scenario file).

Examples:
  p2psip sim                                   64 peers, the join scenario
  p2psip sim --peers 1000 --seed 7 --json      a larger ring, JSON report
  p2psip sim --scenario churn --churn-model weibull --loss 0.01
  p2psip sim --peers 10000 --lookups 10000 --id-lookups 1000 --progress
  p2psip sim --scenario my-run.toml --no-measured";

/// `p2psip sim`: the reference node's core on a simulated network in
/// virtual time. The same seed gives the same output.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Peers to start.
    #[arg(long, help_heading = "Run", default_value_t = 64)]
    pub peers: usize,
    /// Seed of every random draw of the run.
    #[arg(long, help_heading = "Run", default_value_t = 1)]
    pub seed: u64,
    /// `join`, `churn`, `zave`, or a TOML scenario file.
    #[arg(long, help_heading = "Run", default_value = "join")]
    pub scenario: String,
    /// Base timer values.
    #[arg(long, help_heading = "Timers", value_enum, default_value_t = Timers::Fast)]
    pub timers: Timers,
    /// Stabilisation interval T (STAB-1), overriding `--timers`.
    #[arg(long, help_heading = "Timers")]
    pub stabilize_ms: Option<u64>,
    /// Fix-fingers interval (STAB-3), overriding `--timers`.
    #[arg(long, help_heading = "Timers")]
    pub fix_fingers_ms: Option<u64>,
    /// Keep-alive interval K (NAT-5), overriding `--timers`.
    #[arg(long, help_heading = "Timers")]
    pub keepalive_ms: Option<u64>,
    /// T1 (TXN-1; Timer F = 64 T1), overriding `--timers`.
    #[arg(long, help_heading = "Timers")]
    pub t1_ms: Option<u64>,
    /// Successor-list length r (STAB-4).
    #[arg(long, help_heading = "Timers", default_value_t = 4)]
    pub successors: usize,
    /// Replica count R (REPL-1).
    #[arg(long, help_heading = "Timers", default_value_t = 2)]
    pub replicas: u32,
    /// One-way latency range `A..B` in ms; each link gets a fixed value in it.
    #[arg(long, help_heading = "Network", default_value = "10..40", value_parser = parse_range)]
    pub latency_ms: (f64, f64),
    /// Extra delay per datagram, uniform in 0..J ms (reorders when > 0).
    #[arg(long, help_heading = "Network", default_value_t = 0.0)]
    pub jitter_ms: f64,
    /// Probability that a datagram is lost.
    #[arg(long, help_heading = "Network", default_value_t = 0.0)]
    pub loss: f64,
    /// Datagrams larger than this are dropped (WIRE-8).
    #[arg(long, help_heading = "Network", default_value_t = MAX_UDP)]
    pub max_datagram: usize,
    /// Peers started per second of virtual time [default: all of them
    /// over 8 stabilisation intervals].
    #[arg(long, help_heading = "Workload")]
    pub join_rate: Option<f64>,
    /// Random-key lookups, each from a random peer [default: 100 per peer,
    /// at most 20,000].
    #[arg(long, help_heading = "Workload")]
    pub lookups: Option<usize>,
    /// Peers whose ID, ID-1 and ID+1 are looked up [default: all, at most
    /// 2,000].
    #[arg(long, help_heading = "Workload")]
    pub id_lookups: Option<usize>,
    /// Lookups the client runs at once.
    #[arg(long, help_heading = "Workload", default_value_t = 256)]
    pub parallel_lookups: usize,
    /// Resources registered through peers' adapter role.
    #[arg(long, help_heading = "Workload", default_value_t = 16)]
    pub resources: usize,
    /// Peers killed after convergence in the `join` scenario [default:
    /// peers/16, 1..=64; 0 for none].
    #[arg(long, help_heading = "Workload")]
    pub failures: Option<usize>,
    /// Lifetime distribution under churn.
    #[arg(long, help_heading = "Churn and Zave schedules", value_enum, default_value_t = ChurnModel::Exponential)]
    pub churn_model: ChurnModel,
    /// Shape of the Weibull lifetimes.
    #[arg(long, help_heading = "Churn and Zave schedules", default_value_t = 0.5)]
    pub weibull_shape: f64,
    /// Mean peer lifetime under churn [default: 30 intervals].
    #[arg(long, help_heading = "Churn and Zave schedules")]
    pub mean_lifetime_s: Option<f64>,
    /// How long churn lasts [default: 20 intervals].
    #[arg(long, help_heading = "Churn and Zave schedules")]
    pub duration_s: Option<f64>,
    /// Share of deaths that are graceful leaves rather than failures.
    #[arg(long, help_heading = "Churn and Zave schedules", default_value_t = 0.5)]
    pub leave_fraction: f64,
    /// Lookups per second during churn [default: 4 per interval].
    #[arg(long, help_heading = "Churn and Zave schedules")]
    pub churn_lookups_per_s: Option<f64>,
    /// Join-into-a-gap-then-fail rounds of the `zave` scenario.
    #[arg(long, help_heading = "Churn and Zave schedules", default_value_t = 8)]
    pub zave_rounds: usize,
    /// Time between ring snapshots while converging [default: T/10].
    #[arg(long, help_heading = "Checks and output")]
    pub check_every_ms: Option<f64>,
    /// Runaway bound: events per live peer per stabilisation interval.
    #[arg(long, help_heading = "Checks and output", default_value_t = 20_000.0)]
    pub max_event_rate: f64,
    /// Print the report as JSON.
    #[arg(long, help_heading = "Checks and output")]
    pub json: bool,
    /// Leave out wall time and RSS, so the output depends on the seed and
    /// the arguments only.
    #[arg(long, help_heading = "Checks and output")]
    pub no_measured: bool,
    /// Progress lines on stderr.
    #[arg(long, help_heading = "Checks and output")]
    pub progress: bool,
}

impl Default for SimArgs {
    fn default() -> SimArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: SimArgs,
        }
        Wrap::parse_from(["sim"]).args
    }
}

/// `A..B` (or a single `A`) in milliseconds.
fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let num = |x: &str| {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{x:?} is not a number of milliseconds >= 0"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b {
        return Err(format!("{a}..{b}: the range is empty"));
    }
    Ok((a, b))
}

/// Turns the flags into a run: the simulator's configuration, how to run
/// it, and the scenario.
pub fn plan(args: &SimArgs) -> anyhow::Result<(SimConfig, Options, Scenario)> {
    let local = addr::default_addr(0);
    let mut node = match args.timers {
        Timers::Fast => Config::fast(local),
        Timers::Default => Config::new(local),
    };
    if let Some(ms) = args.stabilize_ms {
        node.stabilize = Duration::from_millis(ms);
    }
    if let Some(ms) = args.fix_fingers_ms {
        node.fix_fingers = Duration::from_millis(ms);
    }
    if let Some(ms) = args.keepalive_ms {
        node.keepalive = Duration::from_millis(ms);
    }
    if let Some(ms) = args.t1_ms {
        node.t1 = Duration::from_millis(ms);
    }
    node.successors = args.successors;
    node.replicas = args.replicas;
    node.validate().context("node configuration")?;
    anyhow::ensure!((0.0..=1.0).contains(&args.loss), "--loss must be in [0, 1]");
    anyhow::ensure!(
        args.jitter_ms.is_finite() && args.jitter_ms >= 0.0,
        "--jitter-ms must be >= 0"
    );
    anyhow::ensure!(args.peers >= 1, "--peers must be at least 1");
    anyhow::ensure!(
        args.peers < addr::MAX_NODES as usize / 4,
        "--peers: at most {} peers",
        addr::MAX_NODES / 4
    );
    let ms = |x: f64| Duration::from_secs_f64(x / 1e3);
    let link = LinkModel {
        latency_min: ms(args.latency_ms.0),
        latency_max: ms(args.latency_ms.1),
        jitter: ms(args.jitter_ms),
        loss: args.loss,
        max_datagram: args.max_datagram,
    };
    let t = node.stabilize.as_secs_f64();
    let cfg = SimConfig {
        seed: args.seed,
        node,
        link,
        lookup_parallelism: args.parallel_lookups.max(1),
        max_event_rate: args.max_event_rate,
    };
    let opts = Options {
        check_every: args.check_every_ms.map(ms),
        measured: !args.no_measured,
        progress: args.progress,
    };
    let scenario = match args.scenario.as_str() {
        "join" | "churn" | "zave" => builtin(args, t),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario file {path}"))?;
            Scenario::from_toml(&text).with_context(|| format!("scenario file {path}"))?
        }
    };
    scenario.validate()?;
    Ok((cfg, opts, scenario))
}

/// The built-in scenario named by `--scenario`.
fn builtin(args: &SimArgs, t: f64) -> Scenario {
    let n = args.peers;
    let rate = args.join_rate.unwrap_or((n as f64 / (8.0 * t)).max(1e-3));
    let random = args.lookups.unwrap_or((100 * n).min(20_000));
    let ids = args.id_lookups.unwrap_or(n.min(2_000));
    let res = args.resources;
    let mut s = Scenario::new(&args.scenario).join(n, Some(rate)).converge();
    if res > 0 {
        s = s.register(res).check_replicas();
    }
    s = s.lookups(random, ids);
    let after = |mut s: Scenario| {
        s = s.converge().settle();
        if res > 0 {
            s = s.check_replicas().check_registrations();
        }
        s.lookups(random, ids)
    };
    match args.scenario.as_str() {
        "churn" => {
            let lifetimes = match args.churn_model {
                ChurnModel::Exponential => Lifetimes::Exponential,
                ChurnModel::Weibull => Lifetimes::Weibull {
                    shape: args.weibull_shape,
                },
            };
            let s = s.churn(
                lifetimes,
                args.mean_lifetime_s.unwrap_or(30.0 * t),
                args.duration_s.unwrap_or(20.0 * t),
                args.leave_fraction,
                args.churn_lookups_per_s.unwrap_or(4.0 / t),
            );
            after(s)
        }
        "zave" => after(s.zave(args.zave_rounds)),
        _ => {
            let failures = args.failures.unwrap_or((n / 16).clamp(1, 64));
            if failures == 0 || n < 6 {
                s
            } else {
                after(s.fail(failures))
            }
        }
    }
}

/// Runs `p2psip sim`: prints the summary (or the JSON report) on stdout;
/// `Ok(true)` when every check passed.
pub fn run(args: SimArgs) -> anyhow::Result<bool> {
    let (cfg, opts, scenario) = plan(&args)?;
    let report = runner::run(cfg, opts, &scenario)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
    }
    Ok(report.passed)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn flags_parse_into_a_plan() {
        let c = Cmd::parse_from([
            "sim",
            "--peers",
            "10",
            "--latency-ms",
            "5..20",
            "--scenario",
            "churn",
            "--churn-model",
            "weibull",
            "--timers",
            "default",
            "--stabilize-ms",
            "2000",
        ]);
        let (cfg, _, s) = plan(&c.args).unwrap();
        assert_eq!(cfg.node.stabilize, Duration::from_secs(2));
        assert_eq!(cfg.node.keepalive, Duration::from_secs(25));
        assert_eq!(cfg.link.latency_max, Duration::from_millis(20));
        assert!(s.steps.iter().any(|s| s.name() == "churn"));
        assert!(Cmd::try_parse_from(["sim", "--latency-ms", "9..3"]).is_err());
        assert!(
            plan(&SimArgs {
                loss: 2.0,
                ..SimArgs::default()
            })
            .is_err()
        );
    }

    #[test]
    fn defaults_are_small() {
        let a = SimArgs::default();
        assert_eq!((a.peers, a.seed, a.scenario.as_str()), (64, 1, "join"));
        let (_, _, s) = plan(&a).unwrap();
        assert_eq!(s.steps[0].name(), "join");
        assert!(s.steps.iter().any(|s| s.name() == "fail"));
    }
}
