//! `p2psip sim` as a standalone program, until the `p2psip` binary wires
//! [`p2psip_sim::SimArgs`] in: `cargo run --release -p p2psip-sim --example
//! sim -- --peers 256 --scenario churn`.

use std::process::ExitCode;

use clap::Parser;
use p2psip_sim::SimArgs;

#[derive(Parser)]
#[command(name = "p2psip-sim", about = "The deterministic dsip-chord simulator")]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

fn main() -> ExitCode {
    match p2psip_sim::run(Cli::parse().args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
