//! `cargo run --release -p p2psip-pcapcheck --example check_file -- FILE
//! [ARGS]`: `pcap check` as the harness will run it (for profiling and for
//! trying the flags without the harness binary).

use clap::Parser;
use p2psip_pcapcheck::PcapCheckArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PcapCheckArgs,
}

fn main() {
    let cli = Cli::parse();
    match p2psip_pcapcheck::run_check(&cli.args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
