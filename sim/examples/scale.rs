//! The scale run: N peers join from one bootstrap and converge; then a
//! sample of lookups and registrations. Prints the summary (wall time,
//! virtual time, intervals to converge, memory per peer, RSS) and writes
//! the JSON report next to it.
//!
//! ```text
//! cargo run --release -p p2psip-sim --example scale -- 10000
//! cargo run --release -p p2psip-sim --example scale -- 100000 --timers default --json-out /tmp/100k.json
//! ```
//!
//! Every `p2psip sim` flag applies (`--timers`, `--join-rate`,
//! `--latency-ms`, `--seed`...); progress lines go to stderr.

use std::process::ExitCode;

use clap::Parser;
use p2psip_sim::{Scenario, SimArgs, cli, runner};

#[derive(Parser)]
#[command(name = "scale")]
struct Cli {
    /// Peers to start.
    #[arg(value_name = "PEERS")]
    n: usize,
    /// Where to write the JSON report.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// Random-key lookups after convergence.
    #[arg(long, default_value_t = 10_000)]
    sample_lookups: usize,
    /// Peers whose ID and ID+-1 are looked up after convergence.
    #[arg(long, default_value_t = 1_000)]
    sample_ids: usize,
    /// Registrations after convergence.
    #[arg(long, default_value_t = 100)]
    sample_resources: usize,
    #[command(flatten)]
    args: SimArgs,
}

fn main() -> ExitCode {
    let mut c = Cli::parse();
    c.args.peers = c.n;
    c.args.progress = true;
    let (cfg, opts, _) = match cli::plan(&c.args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let t = cfg.node.stabilize.as_secs_f64();
    let rate = c
        .args
        .join_rate
        .unwrap_or((c.n as f64 / (8.0 * t)).max(1e-3));
    let mut s = Scenario::new("scale").join(c.n, Some(rate)).converge();
    if c.sample_resources > 0 {
        s = s.register(c.sample_resources).check_replicas();
    }
    s = s.lookups(c.sample_lookups, c.sample_ids);
    let report = match runner::run(cfg, opts, &s) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    if let Some(m) = &report.measured {
        let peers = c.n as f64;
        println!(
            "scale     {} peers: wall {:.1} s; Node::memory {:.1} KB mean; simulator {:.0} B per peer; \
             peak RSS {:.2} GB = {:.1} KB per peer",
            c.n,
            m.wall_s,
            report.memory.node_mean_bytes / 1e3,
            report.memory.sim_overhead_per_node_bytes,
            m.peak_rss_bytes.unwrap_or(0) as f64 / 1e9,
            m.peak_rss_bytes.unwrap_or(0) as f64 / peers / 1e3,
        );
    }
    if let Some(path) = &c.json_out {
        let json = serde_json::to_string_pretty(&report).expect("the report serializes");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
