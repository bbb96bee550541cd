//! `p2psip parse FILE|- [--profile] [--lenient] [--json]`

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use p2psip_vectors::{Description, describe};
use p2psip_wire::{ParseOptions, Profile};

use crate::cli::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message file, or `-` for standard input.
    pub file: PathBuf,
    /// Wire profile.
    #[arg(long, default_value = "dsip-chord", value_parser = ["dsip-chord", "sipping-02"])]
    pub profile: String,
    /// Accept what a robust receiver accepts, reporting deviations as
    /// warnings (default: strict, the checker of what a sender emits).
    #[arg(long)]
    pub lenient: bool,
    /// Print one JSON object (the default output is a readable summary).
    #[arg(long)]
    pub json: bool,
    /// Refuse messages larger than this many bytes (WIRE-8).
    #[arg(long, default_value_t = ParseOptions::DEFAULT_MAX_SIZE)]
    pub max_size: usize,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let bytes = read_input(&args.file)?;
    let profile = Profile::from_name(&args.profile).context("unknown profile")?;
    let base = if args.lenient {
        ParseOptions::lenient()
    } else {
        ParseOptions::strict()
    };
    let opts = ParseOptions {
        max_size: args.max_size,
        ..base.with_profile(profile)
    };
    let d = describe(&bytes, opts);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &d)?;
        writeln!(out)?;
    } else {
        write_human(&mut out, &d)?;
    }
    Ok(if d.is_ok() { Outcome::Yes } else { Outcome::No })
}

fn read_input(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    // A bound on what is read: a message is at most 64 KiB, so a little
    // more than that is enough to tell.
    const LIMIT: u64 = 1 << 20;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(LIMIT)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?
            .take(LIMIT)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(bytes)
}

fn write_human(out: &mut impl Write, d: &Description) -> std::io::Result<()> {
    match d {
        Description::Err(f) => writeln!(
            out,
            "invalid: {} at byte {} ({})",
            f.error.message, f.error.offset, f.error.requirement
        ),
        Description::Ok(s) => {
            match (&s.method, s.status) {
                (Some(m), _) => writeln!(out, "request {m} ({})", s.class)?,
                (_, Some(code)) => writeln!(out, "response {code} ({})", s.class)?,
                _ => {}
            }
            if let Some(p) = &s.peer {
                writeln!(
                    out,
                    "  sender   {} at {}:{} overlay={} dht={}",
                    p.peer_id.as_deref().unwrap_or("-"),
                    p.host,
                    p.port.map_or("-".into(), |p| p.to_string()),
                    p.overlay.as_deref().unwrap_or("-"),
                    p.dht.as_deref().unwrap_or("-"),
                )?;
            }
            for l in &s.links {
                writeln!(
                    out,
                    "  link {}{:<3} {} at {}:{} expires={}",
                    l.kind,
                    l.depth,
                    l.peer_id.as_deref().unwrap_or("-"),
                    l.host,
                    l.port.map_or("-".into(), |p| p.to_string()),
                    l.expires.map_or("-".into(), |e| e.to_string()),
                )?;
            }
            writeln!(
                out,
                "  contacts={} expires={} require-dht={}",
                s.contacts,
                s.expires.map_or("-".into(), |e| e.to_string()),
                s.require_dht
            )?;
            for w in &s.warnings {
                writeln!(
                    out,
                    "  warning: {} at byte {} ({})",
                    w.message, w.offset, w.requirement
                )?;
            }
            Ok(())
        }
    }
}
