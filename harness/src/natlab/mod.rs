/*!
NAT cases: putting IUT instances (and reference nodes) behind an emulated
NAT, with every other party of the case outside it.

- [`model`]: `topology.nat` in the suite TOML, the `nat-rebind` and
  `nat-adopt` steps, their validation.
- [`lab`]: one case's NAT ([`NatLab`]): the `p2psip-nat` relay, the
  fronts of the outside parties, what each name means on each side, the
  relay's packets in the case evidence.
- [`selfcheck`]: C-NAT0, once per run and configuration; a NAT the RFC
  5780 probe does not classify as configured voids its cases (they are
  reported as skipped with "void" and the probe's findings: not failed,
  since nothing can be concluded about the IUT, and not errors, which
  would make the run non-compliant for a harness defect).
- [`kernel`]: the optional kernel backend (a network namespace behind
  nftables masquerade): not implemented, its cases are skipped with the
  reason and what the host would allow.

The checks of NAT behaviour are in `crate::checks::nat`; `nat/README.md`
says what each backend can and cannot emulate.
*/

pub mod kernel;
pub mod lab;
pub mod model;
pub mod selfcheck;

use std::sync::Arc;

pub use lab::NatLab;
pub use model::{NatAdoptStep, NatDef, NatRebindStep};

use crate::engine::ctx::{Ctx, StepResult, Stop};

fn lab(cx: &Ctx, step: &str) -> Result<Arc<NatLab>, Stop> {
    cx.nat
        .clone()
        .ok_or_else(|| Stop::Error(format!("{step} needs topology.nat")))
}

/// `nat-rebind`.
pub fn rebind(cx: &mut Ctx, s: &NatRebindStep) -> StepResult {
    let nat = lab(cx, "nat-rebind")?;
    let node = s.node.clone().unwrap_or_else(|| "iut1".into());
    let r = nat.rebind(&node)?;
    cx.rec.label(r.new, format!("{node} (public)"));
    cx.rec
        .label(r.old, format!("{node} (public, before the rebinding)"));
    cx.rec.note(format!(
        "the NAT rebound {node}: public {} -> {} (old Peer-ID {}, new {})",
        r.old,
        r.new,
        p2psip_wire::Peer::at(r.old).id,
        p2psip_wire::Peer::at(r.new).id
    ));
    Ok(())
}

/// `nat-adopt`.
pub fn adopt(cx: &mut Ctx, s: &NatAdoptStep) -> StepResult {
    let nat = lab(cx, "nat-adopt")?;
    let towards = s.towards.clone().unwrap_or_else(|| "iut1".into());
    let public = nat.adopt(&s.puppet, &towards)?;
    cx.rec.note(format!(
        "{} now advertises its public mapping {public} (Peer-ID {})",
        s.puppet,
        p2psip_wire::Peer::at(public).id
    ));
    Ok(())
}

/// Why a case with a NAT cannot run here, if it cannot.
pub fn skip_reason(def: &NatDef, external: bool) -> Option<String> {
    if external {
        return Some(
            "puts instances behind or beside an emulated NAT; a user-managed IUT (--iut-addr) cannot be given relay addresses".into(),
        );
    }
    if def.is_kernel() {
        return kernel::unavailable();
    }
    None
}
