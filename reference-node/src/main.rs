//! `p2psip-node`: the reference peer as a process; see [`p2psip_node::app`].

use std::process::ExitCode;

fn main() -> ExitCode {
    p2psip_node::app::main_with_args(std::env::args_os())
}
