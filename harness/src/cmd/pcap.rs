//! `p2psip pcap`: judge a capture offline (`check`, the
//! `p2psip-pcapcheck` library) and replay one endpoint of it against a
//! fresh IUT (`replay`).

mod replay;

use clap::Subcommand;
use p2psip_pcapcheck::PcapCheckArgs;

use crate::cli::Outcome;

#[derive(Debug, Subcommand)]
pub enum PcapCommand {
    /// Judge a pcap/pcapng capture against the profile, offline: every
    /// finding with its frame number; reports as `run` writes them.
    #[command(after_help = "Exit codes: 0 compliant, 1 non-compliant, 2 could not read.")]
    Check(Box<PcapCheckArgs>),
    /// Replay the requests one endpoint of a capture sent against a fresh
    /// IUT and compare its answers with the recorded ones.
    #[command(
        after_help = "Exit codes: 0 answers alike (or differences explained by \
                            the capture), 1 some answer differs, 2 could not run."
    )]
    Replay(Box<replay::Args>),
}

pub fn run(c: PcapCommand) -> anyhow::Result<Outcome> {
    match c {
        PcapCommand::Check(args) => Ok(match p2psip_pcapcheck::run_check(&args)? {
            0 => Outcome::Yes,
            1 => Outcome::No,
            _ => Outcome::CouldNotRun,
        }),
        PcapCommand::Replay(args) => replay::run(*args),
    }
}
