/*!
A deterministic simulator of dsip-chord overlays (`p2psip sim`).

The reference node's sans-I/O core ([`p2psip_node::Node`]) runs unchanged
on an in-memory network in virtual time: no sockets, no clock, no threads.
Every random draw (link latencies, losses, churn, scenario choices, the
nodes' own branches and tags) comes from ChaCha generators seeded from one
run seed, so the same seed gives the same run and the same report, byte
for byte (wall time and RSS aside, which sit in a section of their own).

- [`net`]: links (latency, jitter, loss, oversize drop) and the one queue
  of datagrams in flight.
- [`addr`]: the address plan (computed addresses, no per-node map).
- [`timers`]: the nodes' wake-ups, one heap entry per node.
- [`sim`]: the driver ([`Sim::step`], [`Sim::run_until`], runaway bounds).
- [`truth`]: the ground truth (the live set L) and the ring oracle.
- [`client`]: lookups on the network with real query REGISTERs.
- [`checks`]: Zave's invariants and the ideal ring (C-G1..C-G5).
- [`churn`]: lifetime models and the failure-injection rules.
- [`scenario`]: scripted steps (Rust builder or TOML) and the built-in
  `join`, `churn` and `zave` scenarios.
- [`runner`]: runs a scenario and measures it into a [`report::Report`].
- [`cli`]: [`SimArgs`] and [`run`], the `p2psip sim` command.

```
use p2psip_sim::{Scenario, SimConfig, runner};

let scenario = Scenario::new("tiny").join(8, Some(8.0)).converge();
let report = runner::run(SimConfig::new(7), runner::Options::default(), &scenario).unwrap();
assert!(report.passed, "{}", report.summary());
```
*/

pub mod addr;
pub mod checks;
pub mod churn;
pub mod cli;
pub mod client;
pub mod net;
pub mod report;
pub mod rss;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod timers;
pub mod truth;

pub use cli::{SimArgs, run};
pub use report::Report;
pub use scenario::{Scenario, Step};
pub use sim::{Runaway, Sim, SimConfig};
