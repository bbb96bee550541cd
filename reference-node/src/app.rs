/*!
The reference peer as a process: parses the command line, sets up
logging, starts the nodes, prints the ready lines and turns SIGTERM /
Ctrl-C into a graceful leave. The `p2psip-node` binary and the harness's
built-in default IUT (`p2psip node ...`) both run [`main_with_args`].
*/

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Args, Bootstrap, LogFormat, Plan};
use crate::driver;
use tokio::sync::watch;

/// How long leaving may take before the process exits anyway.
const LEAVE_GRACE: Duration = Duration::from_secs(8);

/// Runs the reference node with `argv` (the first item is the program
/// name) until it is told to stop. Exit code 0 after a graceful stop, 2
/// for bad flags or a failure to start; `--help` and `--version` print and
/// exit 0.
pub fn main_with_args<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&plan);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
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

async fn run(plan: Plan) -> anyhow::Result<()> {
    if let Some(dir) = &plan.data_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create --data-dir {}: {e}", dir.display()))?;
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
        // The harness waits for this line (documented in --help).
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready {} {}", node.addr, node.id);
        let _ = out.flush();
        running.push(node);
    }
    wait_for_signal().await;
    tracing::info!("signal received: leaving");
    let _ = stop_tx.send(true);
    let all = async {
        for r in running {
            let _ = r.task.await;
        }
    };
    tokio::select! {
        () = all => {}
        () = tokio::time::sleep(LEAVE_GRACE) => tracing::warn!("leaving took too long; exiting"),
        () = wait_for_signal() => tracing::warn!("second signal; exiting"),
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
