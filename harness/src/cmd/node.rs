//! `p2psip node ...` (hidden): the reference node, in-process, from the
//! `p2psip-node` library, with exactly the command line of the
//! `p2psip-node` binary. The built-in default IUT starts the harness's
//! own executable with this subcommand, so `p2psip run` needs no second
//! binary.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use p2psip_node::cli::{Args as NodeArgs, Bootstrap, LogFormat, Plan};
use p2psip_node::driver;
use tokio::sync::watch;

use crate::cli::Outcome;

/// How long leaving may take before the process exits anyway (as the
/// `p2psip-node` binary).
const LEAVE_GRACE: Duration = Duration::from_secs(8);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The arguments of `p2psip-node` (see `p2psip-node --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let argv = std::iter::once("p2psip-node".to_string()).chain(args.args);
    let plan = match NodeArgs::try_parse_from(argv) {
        Ok(a) => a.plan().map_err(|e| anyhow::anyhow!(e))?,
        Err(e) => {
            // --help and --version print and succeed, as in the binary.
            e.print()?;
            return Ok(if e.use_stderr() {
                Outcome::CouldNotRun
            } else {
                Outcome::Yes
            });
        }
    };
    init_logging(&plan);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(plan))?;
    Ok(Outcome::Yes)
}

fn init_logging(plan: &Plan) {
    use tracing_subscriber::EnvFilter;
    let default = match plan.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match plan.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn serve(plan: Plan) -> anyhow::Result<()> {
    if let Some(dir) = &plan.data_dir {
        std::fs::create_dir_all(dir)?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let seed_base: u64 = rand::random();
    let mut running = Vec::new();
    let mut first = None;
    for (i, n) in plan.nodes.iter().enumerate() {
        let bound = driver::bind(n.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", n.listen))?;
        let addr = bound.addr();
        let mut cfg = plan.config.clone();
        cfg.advertise = n.advertise;
        cfg.seed = seed_base.wrapping_add(i as u64);
        cfg.bootstrap = match n.bootstrap {
            Bootstrap::None => None,
            Bootstrap::Addr(a) => Some(a),
            Bootstrap::FirstNode => first,
        };
        let node = driver::spawn(bound, cfg, stop_rx.clone())?;
        first.get_or_insert(addr);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready {} {}", node.addr, node.id);
        let _ = out.flush();
        running.push(node);
    }
    signal().await;
    let _ = stop_tx.send(true);
    let all = async {
        for r in running {
            let _ = r.task.await;
        }
    };
    tokio::select! {
        () = all => {}
        () = tokio::time::sleep(LEAVE_GRACE) => {}
        () = signal() => {}
    }
    Ok(())
}

async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
