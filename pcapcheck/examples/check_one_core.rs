//! `cargo run --release -p p2psip-pcapcheck --example check_one_core --
//! FILE [ARGS]`: [`check`](p2psip_pcapcheck::check) on the calling thread
//! only (`--threads 2`: `check_pipelined`), printing its time, the message
//! and finding counts, and a digest of the whole analysis (findings,
//! counters, notes) to standard error. For counting the instructions of
//! one pass (`valgrind --tool=callgrind`, `perf stat`) and for checking
//! that two builds give the same analysis of a large capture (same digest,
//! same toolchain). `DUMP=PATH` writes the analysis itself there.

use std::hash::{DefaultHasher, Hash, Hasher};

use clap::Parser;
use p2psip_pcapcheck::PcapCheckArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PcapCheckArgs,
}

fn main() {
    let cli = Cli::parse();
    let opts = cli.args.options();
    let input = match std::fs::File::open(&cli.args.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", cli.args.file.display());
            std::process::exit(2);
        }
    };
    let t = std::time::Instant::now();
    let analysis = if cli.args.threads == Some(2) {
        p2psip_pcapcheck::check_pipelined(input, &opts)
    } else {
        p2psip_pcapcheck::check(input, &opts)
    };
    let analysis = match analysis {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {}: {e}", cli.args.file.display());
            std::process::exit(2);
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let text = format!("{analysis:#?}");
    // DefaultHasher::new() has fixed keys: the same text, the same digest.
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    eprintln!(
        "{secs:.3} s, {} messages, {} findings, analysis digest {:016x}",
        analysis.counters.messages,
        analysis.findings.len(),
        h.finish()
    );
    if let Some(path) = std::env::var_os("DUMP")
        && let Err(e) = std::fs::write(&path, text)
    {
        eprintln!("error: cannot write the analysis: {e}");
        std::process::exit(2);
    }
}
