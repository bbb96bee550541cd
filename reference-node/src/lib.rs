/*!
The reference dsip-chord peer.

- [`core`]: the sans-I/O Chord node. No sockets, no clock, no threads:
  [`Node`] takes bytes and time and gives back bytes to send and events.
  Its calling contract is in the [`core`] module documentation.
- [`driver`]: runs nodes on tokio UDP and TCP sockets.
- [`cli`]: the `p2psip-node` command line.
- [`app`]: the `p2psip-node` process (logging, ready lines, signals).
- [`testnet`]: a tiny deterministic in-memory network of cores, for tests
  and quick experiments (the full simulator lives in its own crate).
*/

pub mod app;
pub mod cli;
pub mod core;
pub mod driver;
pub mod testnet;

pub use crate::core::{
    Command, Config, ConfigError, Event, Fault, FaultSet, Input, Node, Output, PhaseKind, Snapshot,
    Time, Transmit,
};
