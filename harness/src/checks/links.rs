/*!
Checks of reported links (DHT-Link): local sanity (C-L1, C-L2, C-L4),
truth against the oracle's ideal ring (QUERY-5), and exact expectations
of a case (`links.expect`).

Each works on the subject message when there is one, else queries the
node named by `node`, else every running node.
*/

use p2psip_wire::{Id, Peer, Ring};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, StepResult, Stop};
use crate::oracle::{self, NodeLinks, Reading};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "links.sane",
        requirements: &["QUERY-5", "WIRE-5", "C-L1", "C-L2", "C-L4"],
        subject: Subject::Optional,
        args: &["node"],
        doc: "successor list strictly increasing clockwise without the responder, predecessor not inside (responder, S1), every link with expires > 0",
        run: sane,
    },
    CheckDef {
        name: "links.true",
        requirements: &["QUERY-5", "QUERY-4", "C-L1", "C-L2", "C-L4"],
        subject: Subject::Optional,
        args: &["node"],
        doc: "links are sane and equal those of the ideal ring of the live peers: P1, S1..Sk, Fi = succ_L(n + 2^i); S1 present",
        run: true_links,
    },
    CheckDef {
        name: "links.expect",
        requirements: &["QUERY-5"],
        subject: Subject::Optional,
        args: &["node", "P1", "S1", "S2", "S3", "S4", "requirement"],
        doc: "the node reports exactly these links: P1/S1.. = a node or puppet name, or \"none\"",
        run: expect,
    },
];

/// The link readings a check looks at: (who, expected responder, links).
async fn readings(
    cx: &mut Ctx,
    input: &CheckInput,
) -> Result<Vec<(String, Option<Peer>, NodeLinks)>, Stop> {
    if let Some(r) = &input.subject {
        let Some(l) = oracle::links_of(r) else {
            return Err(finding(
                "QUERY-4",
                "a SIP response with links",
                r.describe(),
            ));
        };
        let who = l
            .responder
            .map(|p| cx.name_of_id(&p.id))
            .unwrap_or_else(|| r.from.to_string());
        return Ok(vec![(who, None, l)]);
    }
    let targets: Vec<(String, Peer)> = match input.str("node") {
        Some(n) => vec![(n.to_string(), cx.peer_of(n)?)],
        None => cx.running_nodes(),
    };
    let snap = cx
        .snapshot_of(&targets, std::time::Duration::from_secs(3))
        .await;
    let mut out = Vec::new();
    for (name, peer, reading) in snap.nodes {
        match reading {
            Reading::Links(l) => out.push((name, Some(peer), *l)),
            Reading::NoAnswer => {
                return Err(finding(
                    "QUERY-3",
                    format!("{name} answers a node query for its own ID with 200"),
                    "no answer before Timer F",
                ));
            }
        }
    }
    Ok(out)
}

fn responder_of(cx: &Ctx, who: &str, expected: Option<Peer>, l: &NodeLinks) -> Result<Peer, Stop> {
    if l.status != 200 {
        return Err(finding(
            "QUERY-3",
            format!("{who} answers a node query for its own ID with 200"),
            l.response.describe(),
        ));
    }
    match (expected, l.responder) {
        (_, None) => Err(finding(
            "WIRE-4",
            format!("a DHT-PeerID in {who}'s answer"),
            l.response.describe(),
        )),
        (Some(e), Some(r)) if e.id != r.id => Err(finding(
            "WIRE-4",
            format!("{who}'s DHT-PeerID names {}", cx.show(&e)),
            format!("it names {}", cx.show(&r)),
        )),
        (_, Some(r)) => Ok(r),
    }
}

/// QUERY-1: the harness's observer only sends node queries, OPTIONS and
/// user-agent REGISTERs, so a node that reports it as a link adopted it
/// from one of those.
pub fn check_no_observer(cx: &Ctx, who: &str, l: &NodeLinks) -> StepResult {
    let observer = cx.observer.id();
    if let Some((t, p, _)) = l.all.iter().find(|(_, p, _)| p.id == observer) {
        return Err(finding(
            "QUERY-1",
            format!(
                "{who} never links to the harness's observer, which only sent it node queries and OPTIONS (a query changes nothing)"
            ),
            format!("link {}{} = {}", t.kind.letter(), t.depth, cx.show(p)),
        ));
    }
    Ok(())
}

/// C-L1, C-L2, C-L4 for responder `n`, and no link to the observer.
pub fn check_sane(cx: &Ctx, who: &str, n: &Peer, l: &NodeLinks, ring_len: usize) -> StepResult {
    check_no_observer(cx, who, l)?;
    // C-L4 (WIRE-5): expires > 0 on every link.
    for (t, p, e) in &l.all {
        if e.is_none_or(|e| e == 0) {
            return Err(finding(
                "WIRE-5",
                format!(
                    "every DHT-Link of {who} with expires > 0 (C-L4: an expired entry is never reported, STAB-6)"
                ),
                format!(
                    "link {}{} to {} with {}",
                    t.kind.letter(),
                    t.depth,
                    cx.show(p),
                    e.map_or("no expires".to_string(), |e| format!("expires={e}"))
                ),
            ));
        }
    }
    // C-L1: S1..Sk strictly increasing clockwise from n, not n (a lone
    // node may report itself as S1).
    let mut last = Id::ZERO;
    for (i, s) in l.succ.iter().enumerate() {
        let d = n.id.distance_to(&s.id);
        let lone_self = s.id == n.id && ring_len <= 1 && l.succ.len() == 1;
        if (d == Id::ZERO && !lone_self) || (i > 0 && d <= last) {
            return Err(finding(
                "QUERY-5",
                format!(
                    "{who}'s successor list strictly increasing clockwise from it, without itself (C-L1)"
                ),
                format!("S{} = {} in {}", i + 1, cx.show(s), list(cx, &l.succ)),
            ));
        }
        last = d;
    }
    // C-L2: P1 is not n and not inside (n, S1).
    if let Some(p) = &l.pred {
        if p.id == n.id {
            return Err(finding(
                "QUERY-5",
                format!("{who}'s P1 is not itself (C-L2)"),
                format!("P1 = {}", cx.show(p)),
            ));
        }
        if let Some(s1) = l.succ.first()
            && p.id.in_open(&n.id, &s1.id)
        {
            return Err(finding(
                "QUERY-5",
                format!("{who}'s P1 not inside (it, S1) (C-L2)"),
                format!("P1 = {} inside ({who}, S1 = {})", cx.show(p), cx.show(s1)),
            ));
        }
    }
    Ok(())
}

fn list(cx: &Ctx, peers: &[Peer]) -> String {
    let v: Vec<String> = peers.iter().map(|p| cx.name_of_id(&p.id)).collect();
    format!("[{}]", v.join(", "))
}

/// QUERY-5 against the ideal ring: P1, S1..Sk, fingers.
pub fn check_true(
    cx: &Ctx,
    who: &str,
    n: &Peer,
    l: &NodeLinks,
    ring: &Ring,
    r: usize,
) -> StepResult {
    check_sane(cx, who, n, l, ring.len())?;
    let ideal_pred = ring.ideal_predecessor(&n.id);
    if l.pred.map(|p| p.id) != ideal_pred {
        return Err(finding(
            "QUERY-5",
            format!(
                "{who}'s P1 = {} (the live predecessor)",
                ideal_pred.map_or("none".to_string(), |i| cx.name_of_id(&i))
            ),
            format!("P1 = {}", cx.show_opt(l.pred.as_ref())),
        ));
    }
    let ideal = ring.successor_list(&n.id, r);
    if ideal.is_empty() {
        if l.succ.iter().any(|s| s.id != n.id) {
            return Err(finding(
                "QUERY-5",
                format!("{who}, alone, reports no successor but itself"),
                format!("successors {}", list(cx, &l.succ)),
            ));
        }
    } else {
        if l.succ.is_empty() {
            return Err(finding(
                "QUERY-4",
                format!("{who} reports S1 (its successor)"),
                "no S link",
            ));
        }
        for (i, s) in l.succ.iter().enumerate() {
            let want = ideal.get(i);
            if want != Some(&s.id) {
                return Err(finding(
                    "QUERY-5",
                    format!(
                        "{who}'s S{} = {} (successor list {})",
                        i + 1,
                        want.map_or("nothing".to_string(), |w| cx.name_of_id(w)),
                        format_ids(cx, &ideal)
                    ),
                    format!("S{} = {}", i + 1, cx.show(s)),
                ));
            }
        }
    }
    for (i, f) in &l.fingers {
        if *i >= 160 {
            continue;
        }
        let want = ring.finger(&n.id, *i);
        if want != Some(f.id) {
            return Err(finding(
                "QUERY-5",
                format!(
                    "{who}'s F{i} = succ_L({who} + 2^{i}) = {}",
                    want.map_or("nothing".to_string(), |w| cx.name_of_id(&w))
                ),
                format!("F{i} = {}", cx.show(f)),
            ));
        }
    }
    Ok(())
}

fn format_ids(cx: &Ctx, ids: &[Id]) -> String {
    let v: Vec<String> = ids.iter().map(|i| cx.name_of_id(i)).collect();
    format!("[{}]", v.join(", "))
}

fn sane<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let ring_len = cx.live_ring().len();
        for (who, exp, l) in readings(cx, input).await? {
            let n = responder_of(cx, &who, exp, &l)?;
            check_sane(cx, &who, &n, &l, ring_len)?;
        }
        Ok(())
    })
}

fn true_links<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let ring = cx.live_ring();
        let r = cx.params.successors as usize;
        for (who, exp, l) in readings(cx, input).await? {
            let n = responder_of(cx, &who, exp, &l)?;
            check_true(cx, &who, &n, &l, &ring, r)?;
        }
        Ok(())
    })
}

fn expect<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = input
            .str("requirement")
            .map(str::to_string)
            .unwrap_or_else(|| cx.primary_requirement());
        for (who, exp, l) in readings(cx, input).await? {
            let _n = responder_of(cx, &who, exp, &l)?;
            for key in ["P1", "S1", "S2", "S3", "S4"] {
                let Some(want) = input.str(key) else {
                    continue;
                };
                let got = if key == "P1" {
                    l.pred
                } else {
                    let i: usize = key[1..].parse().unwrap_or(1);
                    l.succ.get(i - 1).copied()
                };
                let ok = match want {
                    "none" => got.is_none(),
                    name => {
                        let w = cx.peer_of(name)?;
                        got.is_some_and(|g| g.id == w.id)
                    }
                };
                if !ok {
                    return Err(finding(
                        &req,
                        format!("{who} reports {key} = {want}"),
                        format!("{key} = {}", cx.show_opt(got.as_ref())),
                    ));
                }
            }
        }
        Ok(())
    })
}
