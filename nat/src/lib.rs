#![doc = include_str!("../README.md")]

pub mod config;
pub mod core;
pub mod probe;
pub mod relay;
pub mod responder;
pub mod selfcheck;

pub use config::{Behaviour, ConfigError, NatConfig};
pub use core::{DropReason, Inbound, MappingInfo, NatCore, NatEvent, Outbound, Rebound, Scope};
pub use probe::{Classification, Probe, ProbeConfig, ProbeError, Transmit, run_probe};
pub use relay::{
    Decision, Direction, PacketLogEntry, PacketTap, Relay, RelayConfig, RelayDrop, RelayError,
    RelayHandle, unique_loopback_ip,
};
pub use responder::{Reply, ResponderError, StunResponder, answer};
pub use selfcheck::{SelfCheckError, SelfCheckReport, compare, self_check};
