//! `p2psip id peer IP PORT` and `p2psip id resource URI [--replicas R]`.

use std::io::Write;
use std::net::IpAddr;

use anyhow::Context;
use p2psip_wire::{parse_uri, peer_id, resource};

use crate::cli::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum IdCommand {
    /// Print the Peer-ID of a peer at IP:PORT (ID-2).
    Peer {
        /// IPv4 or IPv6 address (no brackets).
        ip: IpAddr,
        port: u16,
    },
    /// Print the canonical URI and the primary and replica Resource-IDs
    /// (ID-4, ID-5), one per line.
    Resource {
        /// A resource URI, e.g. `sip:alice@example.org`.
        uri: String,
        /// Number of replicas (R).
        #[arg(long, default_value_t = 2)]
        replicas: u32,
    },
}

pub fn run(c: IdCommand) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match c {
        IdCommand::Peer { ip, port } => writeln!(out, "{}", peer_id(ip, port))?,
        IdCommand::Resource { uri, replicas } => {
            let u = parse_uri(&uri)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("not a URI: {uri}"))?;
            writeln!(out, "canonical {}", resource::canonical_text(&u))?;
            writeln!(out, "primary {}", resource::resource_id(&u))?;
            for n in 1..=replicas {
                writeln!(out, "replica{n} {}", resource::replica_id(&u, n))?;
            }
        }
    }
    Ok(Outcome::Yes)
}
