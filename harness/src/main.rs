//! The `p2psip` command: a thin shell over the harness library.

use std::process::ExitCode;

fn main() -> ExitCode {
    p2psip_harness::cli::main()
}
