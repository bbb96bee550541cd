//! C-NAT0: the emulator proves itself. A fresh relay with the configuration
//! under test is put between an RFC 5780 client and a [`StunResponder`]
//! whose four addresses are outside nodes; the client's classification must
//! equal the configuration.
//!
//! The RFC 5780 client computes "other IP, primary port" from OTHER-ADDRESS,
//! so the fronts must keep the server's layout: two front IPs, and each
//! front port equal to its real port. The relay preserves front ports when
//! it can; if it could not, the setup is retried with fresh ports.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;

use crate::config::{Behaviour, NatConfig};
use crate::probe::{Classification, ProbeConfig, ProbeError, run_probe};
use crate::relay::{Relay, RelayConfig, RelayError, unique_loopback_ip};
use crate::responder::{ResponderError, StunResponder};

/// The result of one self-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfCheckReport {
    pub config: NatConfig,
    pub observed: Classification,
    /// What differs from the configuration; empty when it passed.
    pub mismatches: Vec<String>,
}

impl SelfCheckReport {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Why a self-check could not be run (a mismatch is not an error: it is a
/// report with mismatches).
#[derive(Debug, Error)]
pub enum SelfCheckError {
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(transparent)]
    Responder(#[from] ResponderError),
    #[error("probe failed: {0}")]
    Probe(#[from] ProbeError),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not give the responder fronts with its address layout in {0} attempts")]
    FrontLayout(usize),
}

const SETUP_ATTEMPTS: usize = 3;

/// Runs C-NAT0 for `nat` (its `public_ip` is used as is; give each
/// concurrent check its own, e.g. from [`unique_loopback_ip`]). The mapping
/// timeout must outlast the probe ([`ProbeConfig::max_duration`]).
pub async fn self_check(
    nat: NatConfig,
    probe: ProbeConfig,
) -> Result<SelfCheckReport, SelfCheckError> {
    for _ in 0..SETUP_ATTEMPTS {
        let responder = StunResponder::bind(unique_loopback_ip(), unique_loopback_ip())?;
        let client = UdpSocket::bind(SocketAddr::new(IpAddr::V4(unique_loopback_ip()), 0)).await?;
        let relay = Relay::start(RelayConfig::new(nat.clone()), client.local_addr()?)?;
        let real = responder.addresses();
        let mut fronts = real;
        for (front, real) in fronts.iter_mut().zip(real) {
            *front = relay.add_outside_node(real)?;
        }
        if !same_layout(&real, &fronts) {
            tracing::debug!(?real, ?fronts, "front ports not preserved, retrying");
            continue;
        }
        responder.set_advertised(fronts);
        let result = run_probe(&client, fronts[0], probe.clone()).await;
        let _ = relay.shutdown().await;
        responder.shutdown(Duration::from_secs(2)).await;
        let observed = result?;
        let mismatches = compare(&nat, &observed, probe.hairpinning);
        return Ok(SelfCheckReport {
            config: nat,
            observed,
            mismatches,
        });
    }
    Err(SelfCheckError::FrontLayout(SETUP_ATTEMPTS))
}

/// Fronts keep the ports and the "same IP" relation of the real addresses.
fn same_layout(real: &[SocketAddr; 4], fronts: &[SocketAddr; 4]) -> bool {
    let ports = real.iter().zip(fronts).all(|(r, f)| r.port() == f.port());
    ports
        && fronts[0].ip() == fronts[1].ip()
        && fronts[2].ip() == fronts[3].ip()
        && fronts[0].ip() != fronts[2].ip()
}

/// Differences between what was configured and what was observed.
pub fn compare(nat: &NatConfig, observed: &Classification, hairpin_tested: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, want: Behaviour, got: Behaviour| {
        if want != got {
            out.push(format!("{what}: configured {want}, observed {got}"));
        }
    };
    check("mapping", nat.mapping, observed.mapping);
    check("filtering", nat.filtering, observed.filtering);
    if hairpin_tested && observed.hairpinning != Some(nat.hairpinning) {
        out.push(format!(
            "hairpinning: configured {}, observed {:?}",
            nat.hairpinning, observed.hairpinning
        ));
    }
    if observed.port_preserved != nat.port_preservation {
        out.push(format!(
            "port preservation: configured {}, observed {} (local {}, mapped {})",
            nat.port_preservation, observed.port_preserved, observed.local, observed.mapped
        ));
    }
    if !observed.behind_nat || observed.mapped.ip() != nat.public_ip {
        out.push(format!(
            "mapped address {} is not on the NAT's public IP {}",
            observed.mapped, nat.public_ip
        ));
    }
    out
}
