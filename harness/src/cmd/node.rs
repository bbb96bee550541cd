//! `p2psip node ...` (hidden): the reference node, in-process, with exactly
//! the command line of the `p2psip-node` binary (both run
//! `p2psip_node::app::main_with_args`). The built-in default IUT starts
//! the harness's own executable with this subcommand, so `p2psip run`
//! needs no second binary.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The arguments of `p2psip-node` (see `p2psip-node --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let argv = std::iter::once("p2psip-node".to_string()).chain(args.args);
    p2psip_node::app::main_with_args(argv)
}
