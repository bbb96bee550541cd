//! What kind of NAT to emulate: the RFC 4787 behaviours and their knobs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How much of the remote endpoint a mapping or a filter depends on
/// (RFC 4787 §4.1 for mapping, §5 for filtering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Mapping: one public endpoint per internal endpoint, whatever the
    /// destination. Filtering: anyone may send to an existing mapping.
    EndpointIndependent,
    /// Per destination IP address.
    AddressDependent,
    /// Per destination IP address and port.
    AddressAndPortDependent,
}

impl Behaviour {
    pub const ALL: [Behaviour; 3] = [
        Behaviour::EndpointIndependent,
        Behaviour::AddressDependent,
        Behaviour::AddressAndPortDependent,
    ];

    /// "EI", "AD" or "APD": prefix of the RFC 4787 acronyms (EIM, ADF...).
    pub fn short(self) -> &'static str {
        match self {
            Behaviour::EndpointIndependent => "EI",
            Behaviour::AddressDependent => "AD",
            Behaviour::AddressAndPortDependent => "APD",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        })
    }
}

/// The emulated NAT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatConfig {
    pub mapping: Behaviour,
    pub filtering: Behaviour,
    /// Try to keep the internal port as the public port (RFC 4787 §4.2.1).
    /// When off, the internal port is never chosen, so its absence is
    /// observable.
    pub port_preservation: bool,
    /// Deliver packets sent to a public endpoint of this NAT back inside
    /// (RFC 4787 §6), with the sender's public endpoint as source.
    pub hairpinning: bool,
    /// Idle time after which a mapping is removed; only outbound packets
    /// reset it (RFC 4787 REQ-6 lets either direction refresh; outbound
    /// only is the stricter, commonly deployed choice).
    pub mapping_timeout: Duration,
    /// The address of the NAT's outside. In the relay, public mapping
    /// sockets are bound on it.
    pub public_ip: IpAddr,
    /// Public ports the NAT allocates from.
    pub ports: RangeInclusive<u16>,
    /// Seed of the port choices: the same seed and inputs give the same ports.
    pub seed: u64,
}

impl Default for NatConfig {
    /// EIM/EIF, hairpinning, no port preservation, the RFC 4787 REQ-5
    /// minimum of two minutes.
    fn default() -> Self {
        NatConfig {
            mapping: Behaviour::EndpointIndependent,
            filtering: Behaviour::EndpointIndependent,
            port_preservation: false,
            hairpinning: true,
            mapping_timeout: Duration::from_secs(120),
            public_ip: IpAddr::V4(Ipv4Addr::new(127, 77, 0, 1)),
            ports: 1024..=65535,
            seed: 0,
        }
    }
}

impl NatConfig {
    /// A config with these behaviours and the defaults otherwise.
    pub fn with_behaviour(mapping: Behaviour, filtering: Behaviour) -> Self {
        NatConfig {
            mapping,
            filtering,
            ..NatConfig::default()
        }
    }

    /// E.g. "EIM/APDF, hairpinning, port preservation".
    pub fn describe(&self) -> String {
        let mut s = format!("{}M/{}F", self.mapping.short(), self.filtering.short());
        if self.hairpinning {
            s.push_str(", hairpinning");
        }
        if self.port_preservation {
            s.push_str(", port preservation");
        }
        s
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ports.is_empty() || *self.ports.start() == 0 {
            return Err(ConfigError::BadPortRange(
                *self.ports.start(),
                *self.ports.end(),
            ));
        }
        if self.mapping_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(())
    }
}

/// Why a [`NatConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("port range {0}..={1} is empty or includes port 0")]
    BadPortRange(u16, u16),
    #[error("mapping timeout is zero: every mapping would expire at once")]
    ZeroTimeout,
}
