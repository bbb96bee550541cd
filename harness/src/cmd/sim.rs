//! `p2psip sim`: the deterministic simulator ([`p2psip_sim`]), the
//! reference node's core on an in-memory network in virtual time.

use crate::cli::Outcome;

pub use p2psip_sim::SimArgs as Args;

/// Runs the simulation and prints its report (summary or JSON) on stdout.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    Ok(if p2psip_sim::run(args)? {
        Outcome::Yes
    } else {
        Outcome::No
    })
}
