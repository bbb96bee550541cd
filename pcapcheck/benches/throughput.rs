//! Throughput of `pcap check` on a large capture, with `tshark -r FILE -Y
//! sip` on the same file as the baseline.
//!
//! `cargo bench -p p2psip-pcapcheck --bench throughput` writes a capture of
//! at least `PCAPCHECK_BENCH_MB` MiB (default 1024) into a temporary
//! directory: the simulated clean ring scenario of `tests/common`, written
//! with `PcapWriter` again and again, each copy a minute after the previous
//! one (the same ring restarted; addresses unchanged, timestamps shifted).
//! It then runs `check` on the file (one core; the file is in the page
//! cache after writing, so this measures the analysis, not the disk),
//! reports MB/s and messages/s, runs tshark on it when installed
//! (`PCAPCHECK_BENCH_TSHARK=0` skips it), prints the ratio, and deletes the
//! file. `PCAPCHECK_BENCH_FILE=PATH` writes the capture there instead and
//! keeps it (to time `p2psip pcap check PATH` itself; delete it after);
//! `PCAPCHECK_BENCH_INPUT=PATH` reads an existing capture instead of
//! writing one (and leaves it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::BufWriter;
use std::process::{Command, Stdio};
use std::time::Instant;

use p2psip_pcapcheck::{check, check_pipelined};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // other flags: run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mb: u64 = std::env::var("PCAPCHECK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = std::env::var_os("PCAPCHECK_BENCH_INPUT").map(std::path::PathBuf::from);
    let keep = std::env::var_os("PCAPCHECK_BENCH_FILE")
        .map(std::path::PathBuf::from)
        .or(input.clone());
    let path = keep.clone().unwrap_or_else(|| dir.path().join("big.pcap"));
    let bytes = match &input {
        Some(p) => {
            let n = std::fs::metadata(p).expect("the input capture").len();
            println!("reading {:.1} MB ({})", n as f64 / 1e6, p.display());
            n
        }
        None => {
            let t = Instant::now();
            let file = std::fs::File::create(&path).expect("create the capture");
            let n = common::replicated(BufWriter::with_capacity(1 << 20, file), mb << 20);
            println!(
                "wrote {:.1} MB in {:.1} s ({})",
                n as f64 / 1e6,
                t.elapsed().as_secs_f64(),
                path.display()
            );
            n
        }
    };

    let mut best = f64::MAX;
    let mut best2 = f64::MAX;
    let mut messages = 0;
    let mut frames = 0;
    for (run, pipelined) in [(1, false), (2, false), (3, true), (4, true)] {
        let t = Instant::now();
        // As the CLI reads it: the capture reader reads large blocks
        // itself, no BufReader in front.
        let input = std::fs::File::open(&path).expect("open the capture");
        let a = if pipelined {
            check_pipelined(input, &common::options())
        } else {
            check(input, &common::options())
        }
        .expect("readable");
        let secs = t.elapsed().as_secs_f64();
        if !pipelined {
            best = best.min(secs);
        } else {
            best2 = best2.min(secs);
        }
        messages = a.counters.messages;
        frames = a.capture.frames;
        println!(
            "pcap check{}, run {run}: {secs:.2} s, {:.0} MB/s, {:.0} messages/s ({} frames, {} SIP messages, {} violations)",
            if pipelined {
                " (two threads)"
            } else {
                " (one core)"
            },
            bytes as f64 / 1e6 / secs,
            messages as f64 / secs,
            frames,
            messages,
            a.requirements.iter().map(|r| r.violations).sum::<u64>()
        );
    }

    let tshark_wanted = std::env::var("PCAPCHECK_BENCH_TSHARK").map_or(true, |v| v != "0");
    let tshark = tshark_wanted
        && Command::new("tshark")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if tshark {
        let t = Instant::now();
        let status = Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-Y", "sip"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run tshark");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "tshark -r FILE -Y sip: {secs:.2} s, {:.0} MB/s, {:.0} frames/s (exit {status})",
            bytes as f64 / 1e6 / secs,
            frames as f64 / secs
        );
        println!(
            "ratio: pcap check is {:.1}x tshark on one core, {:.1}x on two threads",
            secs / best,
            secs / best2
        );
    } else {
        println!("tshark not run (not installed, or PCAPCHECK_BENCH_TSHARK=0)");
    }
    drop(dir);
    match keep {
        Some(p) if input.is_some() => println!(
            "left the input capture at {}; {messages} messages per pass",
            p.display()
        ),
        Some(p) => println!(
            "kept the capture at {} (delete it); {messages} messages per pass",
            p.display()
        ),
        None => println!("deleted the capture; {messages} messages per pass"),
    }
}
