/*!
Command-line parsing and the exit-code policy.

Exit codes, for every command: 0 success (compliant, valid, equal), 1 a
negative answer (non-compliant, invalid, differs), 2 the command could not
do its job (bad arguments, unreadable files). clap's own usage errors also
exit with 2.
*/

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Conformance and interop harness for P2P-SIP (dSIP/Chord) overlays.
#[derive(Debug, Parser)]
#[command(name = "p2psip", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what the parser sees in one SIP message.
    Parse(cmd::parse::Args),
    /// Compute Peer-IDs and Resource-IDs.
    #[command(subcommand)]
    Id(cmd::id::IdCommand),
    /// Regenerate or check the language-neutral test vectors.
    #[command(subcommand)]
    Vectors(cmd::vectors::VectorsCommand),
    /// Run the conformance suites against an implementation and report.
    #[command(
        help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}",
        after_help = "Exit codes: 0 compliant, 1 non-compliant, 2 could not run."
    )]
    Run(Box<cmd::run::Args>),
    /// Judge captures offline (`check`) and replay them against an IUT (`replay`).
    #[command(subcommand)]
    Pcap(cmd::pcap::PcapCommand),
    /// Simulate an overlay of reference nodes in virtual time and check it.
    #[command(
        long_about = "Simulate an overlay of reference nodes in virtual time and check it: \
            the reference node's sans-I/O core on an in-memory network (latency, jitter, loss), \
            with scripted joins, failures, leaves and seeded churn. Reports convergence in \
            stabilisation intervals, lookup correctness and hops, replica placement, messages \
            per node per interval and memory per node.",
        after_long_help = p2psip_sim::cli::AFTER_HELP
    )]
    Sim(Box<cmd::sim::Args>),
    /// The reference node, in-process (the arguments of `p2psip-node`).
    #[command(hide = true, disable_help_flag = true)]
    Node(cmd::node::Args),
    /// A scriptable stand-in endpoint for the harness's own tests.
    #[command(hide = true)]
    StubPeer(cmd::stub::Args),
}

/// What a command found: success, a negative answer, or could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Yes,
    No,
    /// The command could not do its job and has said why (exit 2).
    CouldNotRun,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => cmd::parse::run(args),
        Command::Id(c) => cmd::id::run(c),
        Command::Vectors(c) => cmd::vectors::run(c),
        Command::Run(args) => cmd::run::run(*args),
        Command::Pcap(c) => cmd::pcap::run(c),
        Command::Sim(args) => cmd::sim::run(*args),
        Command::StubPeer(args) => cmd::stub::run(args),
        // The reference node keeps its own exit-code policy.
        Command::Node(args) => return cmd::node::run(args),
    };
    // Whatever happened, no IUT process outlives the harness.
    crate::iut::registry::kill_all();
    match result {
        Ok(Outcome::Yes) => ExitCode::from(0),
        Ok(Outcome::No) => ExitCode::from(1),
        Ok(Outcome::CouldNotRun) => ExitCode::from(2),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(0);
            }
            eprintln!("p2psip: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
