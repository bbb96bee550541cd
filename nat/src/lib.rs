#![doc = include_str!("../README.md")]

pub mod config;
pub mod core;
pub mod probe;
pub mod relay;
pub mod responder;
pub mod selfcheck;

pub use config::{Behaviour, ConfigError, NatConfig};
pub use core::{
    DropReason, Inbound, MappingInfo, NatCore, NatEvent, Outbound, Rebound, Scope,
};
pub use probe::{run_probe, Classification, Probe, ProbeConfig, ProbeError, Transmit};
pub use relay::{
    unique_loopback_ip, Decision, Direction, PacketLogEntry, Relay, RelayConfig, RelayDrop,
    RelayError, RelayHandle,
};
pub use responder::{answer, Reply, ResponderError, StunResponder};
pub use selfcheck::{compare, self_check, SelfCheckError, SelfCheckReport};
