/*!
Global ring checks over a snapshot (CHECKS.md C-G1..C-G5, STAB-5): with
bestSucc(p) = the first live entry of p's successor list,

- C-G1 AtLeastOneRing: some live peer reaches itself by bestSucc;
- C-G2 AtMostOneRing: all peers on rings reach each other (one cycle);
- C-G3 OrderedRing: the cycle visits the live IDs in sorted order, one lap;
- C-G4 ConnectedAppendages: every live peer reaches the cycle;
- C-G5 Ideal: the cycle is L, and every P1, Si, Fi is the ideal one.
*/

use std::collections::{BTreeMap, HashSet};

use p2psip_wire::{Id, Ring};

use super::links::{check_no_observer, check_true};
use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, StepResult};
use crate::oracle::{NodeLinks, Reading, Snapshot};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "ring.converged",
        requirements: &["STAB-5", "C-G1", "C-G2", "C-G3", "C-G4", "C-G5"],
        subject: Subject::None,
        args: &[],
        doc: "a snapshot of every live peer shows one ordered ring of all live peers with every P1, Si and Fi ideal",
        run: converged,
    },
    CheckDef {
        name: "ring.unchanged",
        requirements: &["QUERY-1"],
        subject: Subject::None,
        args: &["before", "requirement"],
        doc: "a new snapshot shows every node with the same P1, successors and fingers as the snapshot `before` (a `snapshot` step's name)",
        run: unchanged,
    },
    CheckDef {
        name: "ring.consistent",
        requirements: &["STAB-5", "C-G1", "C-G2", "C-G3", "C-G4"],
        subject: Subject::None,
        args: &[],
        doc: "a snapshot shows at least and at most one ring, ordered, with every live peer reaching it (Zave's invariants; not necessarily ideal)",
        run: consistent,
    },
];

/// The per-node table of a snapshot, for findings.
pub fn table(cx: &Ctx, snap: &Snapshot) -> String {
    let mut out = Vec::new();
    for (name, _, r) in &snap.nodes {
        match r {
            Reading::Links(l) => {
                let s: Vec<String> = l.succ.iter().map(|p| cx.name_of_id(&p.id)).collect();
                out.push(format!(
                    "{name}: P1={} S=[{}]",
                    l.pred.map_or("none".to_string(), |p| cx.name_of_id(&p.id)),
                    s.join(",")
                ));
            }
            Reading::NoAnswer => out.push(format!("{name}: no answer")),
        }
    }
    out.join("; ")
}

/// QUERY-1 on a snapshot: no node links to the observer, which only ever
/// queried them. Checked first, so a node that adopts the querier fails
/// with the requirement it breaks rather than with the ring it disturbs.
pub fn no_observer(cx: &Ctx, snap: &Snapshot) -> StepResult {
    for (name, _, r) in &snap.nodes {
        if let Reading::Links(l) = r {
            check_no_observer(cx, name, l)?;
        }
    }
    Ok(())
}

/// C-G1..C-G4 on a snapshot (after [`no_observer`]).
pub fn zave(cx: &Ctx, snap: &Snapshot) -> StepResult {
    no_observer(cx, snap)?;
    let ring = &snap.ring;
    let mut links: BTreeMap<Id, &NodeLinks> = BTreeMap::new();
    for (name, peer, r) in &snap.nodes {
        match r {
            Reading::Links(l) if l.status == 200 => {
                links.insert(peer.id, l);
            }
            Reading::Links(l) => {
                return Err(finding(
                    "QUERY-3",
                    format!("{name} answers a node query for its own ID with 200"),
                    l.response.describe(),
                ));
            }
            Reading::NoAnswer => {
                return Err(finding(
                    "STAB-5",
                    format!("every live peer ({name} too) answers a node query"),
                    format!("{name} did not answer"),
                ));
            }
        }
    }
    if ring.len() <= 1 {
        return Ok(());
    }
    let best: BTreeMap<Id, Option<Id>> = links
        .iter()
        .map(|(id, l)| {
            let b = l
                .succ
                .iter()
                .map(|p| p.id)
                .find(|s| ring.contains(s) && s != id);
            (*id, b)
        })
        .collect();
    // Follow bestSucc from each node; find the cycles.
    let mut cycles: Vec<Vec<Id>> = Vec::new();
    let mut on_cycle: HashSet<Id> = HashSet::new();
    for start in ring.ids() {
        let mut path: Vec<Id> = vec![*start];
        let mut cur = *start;
        while let Some(Some(next)) = best.get(&cur) {
            if let Some(pos) = path.iter().position(|x| x == next) {
                let cyc = path[pos..].to_vec();
                if !cyc.iter().any(|x| on_cycle.contains(x)) {
                    on_cycle.extend(cyc.iter().copied());
                    cycles.push(cyc);
                }
                break;
            }
            if on_cycle.contains(next) {
                break;
            }
            path.push(*next);
            cur = *next;
        }
    }
    let t = table(cx, snap);
    if cycles.is_empty() {
        return Err(finding(
            "STAB-5",
            "at least one ring: some live peer reaches itself by its first live successor (C-G1)",
            format!("no cycle; {t}"),
        ));
    }
    if cycles.len() > 1 {
        let names: Vec<String> = cycles
            .iter()
            .map(|c| {
                let v: Vec<String> = c.iter().map(|i| cx.name_of_id(i)).collect();
                format!("[{}]", v.join("→"))
            })
            .collect();
        return Err(finding(
            "STAB-5",
            "at most one ring (C-G2)",
            format!("{} rings {}; {t}", cycles.len(), names.join(" ")),
        ));
    }
    let cyc = &cycles[0];
    for (i, a) in cyc.iter().enumerate() {
        let b = cyc[(i + 1) % cyc.len()];
        if let Some(x) = cyc.iter().find(|x| x.in_open(a, &b)) {
            return Err(finding(
                "STAB-5",
                "an ordered ring: each peer's best successor is the next ring member clockwise (C-G3)",
                format!(
                    "{} → {} skips {}; {t}",
                    cx.name_of_id(a),
                    cx.name_of_id(&b),
                    cx.name_of_id(x)
                ),
            ));
        }
    }
    // C-G4: every live peer reaches the cycle.
    for start in ring.ids() {
        let mut cur = *start;
        let mut seen = HashSet::new();
        while !on_cycle.contains(&cur) {
            if !seen.insert(cur) {
                break;
            }
            match best.get(&cur) {
                Some(Some(n)) => cur = *n,
                _ => break,
            }
        }
        if !on_cycle.contains(&cur) {
            return Err(finding(
                "STAB-5",
                format!(
                    "{} reaches the ring by best successors (C-G4)",
                    cx.name_of_id(start)
                ),
                format!("it does not; {t}"),
            ));
        }
    }
    Ok(())
}

/// C-G1..C-G5 on one snapshot. Only the links each node reports are
/// judged: a node may report fewer than S successors (QUERY-4 makes
/// S2..S4 a SHOULD; docs/spec.md §14.25).
pub fn zave_and_ideal(cx: &Ctx, snap: &Snapshot) -> StepResult {
    zave(cx, snap)?;
    ideal(cx, snap, &snap.ring)
}

/// C-G5 on a snapshot that passed [`zave`].
pub fn ideal(cx: &Ctx, snap: &Snapshot, ring: &Ring) -> StepResult {
    let r = cx.params.successors as usize;
    for (name, peer, reading) in &snap.nodes {
        let Reading::Links(l) = reading else {
            continue;
        };
        check_true(cx, name, peer, l, ring, r).map_err(|stop| match stop {
            // Wrong links make the ring non-ideal (STAB-5); malformed ones
            // (C-L4, WIRE-5) and the observer adopted from a query
            // (QUERY-1) keep their own requirement.
            crate::engine::ctx::Stop::Fail(mut f) => {
                if f.requirement.starts_with("QUERY-") && f.requirement != "QUERY-1" {
                    f.requirement = "STAB-5".to_string();
                }
                f.expected = format!("the ideal ring (C-G5): {}", f.expected);
                f.actual = format!("{}; {}", f.actual, table(cx, snap));
                crate::engine::ctx::Stop::Fail(f)
            }
            other => other,
        })?;
    }
    Ok(())
}

fn converged<'a>(cx: &'a mut Ctx, _input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let snap = cx.snapshot_live(None).await;
        zave_and_ideal(cx, &snap)
    })
}

fn consistent<'a>(cx: &'a mut Ctx, _input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let snap = cx.snapshot_live(None).await;
        zave(cx, &snap)
    })
}

fn summary(l: &NodeLinks) -> (Option<Id>, Vec<Id>, Vec<(u8, Id)>) {
    (
        l.pred.map(|p| p.id),
        l.succ.iter().map(|p| p.id).collect(),
        l.fingers.iter().map(|(i, p)| (*i, p.id)).collect(),
    )
}

fn unchanged<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let name = input.str("before").unwrap_or("last").to_string();
        let req = input.str("requirement").unwrap_or("QUERY-1").to_string();
        let Some(before) = cx.snapshots.get(&name).cloned() else {
            return Err(crate::engine::ctx::Stop::Error(format!(
                "ring.unchanged: no snapshot named {name:?} (take one with a snapshot step)"
            )));
        };
        let now = cx.snapshot_live(None).await;
        no_observer(cx, &now)?;
        for (node, _, r) in &before.nodes {
            let Reading::Links(a) = r else { continue };
            let Some((_, _, Reading::Links(b))) = now.nodes.iter().find(|(n, _, _)| n == node)
            else {
                continue;
            };
            if summary(a) != summary(b) {
                return Err(finding(
                    &req,
                    format!("{node}'s links unchanged since snapshot {name:?}"),
                    format!("before: {}; now: {}", table(cx, &before), table(cx, &now)),
                ));
            }
        }
        Ok(())
    })
}
