/*!
Lookups (CHECKS.md C-Q1..C-Q3): iterative routing followed by the
harness, hop by hop, with the oracle's answer for every key.

- C-Q1 correctness: from every live node, for random keys and every
  peer's ID and ID±1, the final 200/404 comes from succ_L(key) (QUERY-2,
  QUERY-3).
- C-Q2 hops: mean, p99 and max bounds (QUERY-8, only with `hops = true`);
  a repeated Contact is a loop and fails at once.
- C-Q3 progress: every 302 Contact is a peer in (sender, key], or the
  sender's S1 when the key lies in (sender, S1); never the sender itself.
*/

use std::sync::Arc;
use std::time::{Duration, Instant};

use p2psip_wire::{Id, Peer, Ring};
use rand::RngCore;

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Finding, StepResult, Stop};
use crate::oracle::{self, links_of};
use crate::puppet::{Puppet, Received};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "lookup.correct",
        requirements: &["QUERY-2", "QUERY-3", "QUERY-8", "C-Q1", "C-Q2", "C-Q3"],
        subject: Subject::None,
        args: &["keys", "hops"],
        doc: "lookups from every live node for random keys and every ID and ID±1 end at succ_L(key), each 302 making progress; with hops = true also the C-Q2 hop bounds",
        run: correct,
    },
    CheckDef {
        name: "redirect.progress",
        requirements: &["QUERY-2", "C-Q3"],
        subject: Subject::Required,
        args: &["requirement"],
        doc: "a 302 names a peer in (responder, key], or the responder's S1 when the key lies in (responder, S1); never the responder",
        run: progress,
    },
];

/// C-Q3 for one 302 from `sender` for `key`; `s1` is the sender's S1
/// when its answer reported one.
pub fn check_progress(
    sender: &Peer,
    key: &Id,
    contact: &Peer,
    s1: Option<&Peer>,
) -> Result<(), String> {
    if contact.id == sender.id {
        return Err("the 302 names the responder itself".to_string());
    }
    if contact.id.in_open_closed(&sender.id, key) {
        return Ok(());
    }
    if let Some(s1) = s1
        && key.in_open(&sender.id, &s1.id)
        && contact.id == s1.id
    {
        return Ok(());
    }
    Err("the Contact is not in (responder, key] nor the responder's S1 for a key in (responder, S1)".to_string())
}

fn contact_peer(r: &Received) -> Option<Peer> {
    r.message.as_ref()?.contact_addrs().next()?.addr.uri.peer()
}

fn progress<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "redirect.progress")?;
        let req = input.str("requirement").unwrap_or("QUERY-2").to_string();
        let Some(m) = r.message.as_ref() else {
            return Err(finding(&req, "a 302 response", r.describe()));
        };
        if m.status() != Some(302) {
            return Err(finding(&req, "a 302 response", r.describe()));
        }
        let Some(key) = m.to().and_then(|t| t.addr.uri.peer_id()) else {
            return Err(finding(
                &req,
                "a response whose To carries the key",
                r.describe(),
            ));
        };
        let sender = m.sender_peer().unwrap_or(p2psip_wire::Peer::at(r.from));
        let Some(contact) = contact_peer(r) else {
            return Err(finding(&req, "a 302 with a Peer URI Contact", r.describe()));
        };
        let s1 = links_of(r).and_then(|l| l.succ.first().copied());
        check_progress(&sender, &key, &contact, s1.as_ref()).map_err(|why| {
            finding(
                &req,
                format!(
                    "a Contact in ({}, key {}…] (C-Q3)",
                    cx.name_of_id(&sender.id),
                    &key.to_hex()[..8]
                ),
                format!("Contact {}: {why}", cx.show(&contact)),
            )
        })
    })
}

/// One lookup from `start` for `key`: the hops, or a finding.
async fn lookup(
    obs: Arc<Puppet>,
    ring: Ring,
    start: Peer,
    key: Id,
    t1: Duration,
    per_hop: Duration,
    names: Arc<dyn Fn(&Id) -> String + Send + Sync>,
) -> Result<usize, Finding> {
    let n = ring.len().max(1);
    let log2n = (n as f64).log2().ceil() as usize;
    let max_hops = 2 * log2n + 8;
    let mut cur = start;
    let mut visited = vec![start.id];
    let short = |id: &Id| format!("{}…", &id.to_hex()[..8]);
    for hops in 0..=max_hops {
        let deadline = Instant::now() + per_hop;
        let Some(r) = oracle::query(&obs, cur, key, t1, deadline).await else {
            return Err(Finding::new(
                "QUERY-3",
                format!("{} answers a query for key {}", names(&cur.id), short(&key)),
                "no answer before Timer F",
            ));
        };
        match r.status() {
            Some(302) => {
                let Some(next) = contact_peer(&r) else {
                    return Err(Finding::new(
                        "QUERY-2",
                        "a 302 with a Peer URI Contact",
                        r.describe(),
                    )
                    .at(r.at));
                };
                let s1 = links_of(&r).and_then(|l| l.succ.first().copied());
                if let Err(why) = check_progress(&cur, &key, &next, s1.as_ref()) {
                    return Err(Finding::new(
                        "QUERY-2",
                        format!(
                            "{}'s 302 for key {} makes progress (C-Q3)",
                            names(&cur.id),
                            short(&key)
                        ),
                        format!("Contact {}: {why}", names(&next.id)),
                    )
                    .at(r.at));
                }
                if visited.contains(&next.id) {
                    return Err(Finding::new(
                        "QUERY-2",
                        format!(
                            "a lookup for key {} never revisits a peer (C-Q2)",
                            short(&key)
                        ),
                        format!("{} redirected back to {}", names(&cur.id), names(&next.id)),
                    )
                    .at(r.at));
                }
                visited.push(next.id);
                cur = next;
                let _ = hops;
            }
            Some(200) | Some(404) => {
                let want = ring.responsible(&key);
                if want != Some(cur.id) {
                    let path: Vec<String> = visited.iter().map(|i| names(i)).collect();
                    return Err(Finding::new(
                        "QUERY-3",
                        format!(
                            "the lookup for key {} ends at succ_L(key) = {} (C-Q1)",
                            short(&key),
                            want.map_or("nothing".to_string(), |w| names(&w))
                        ),
                        format!(
                            "{} answered {} after path {}",
                            names(&cur.id),
                            r.status().unwrap_or(0),
                            path.join("→")
                        ),
                    )
                    .at(r.at));
                }
                return Ok(visited.len() - 1);
            }
            _ => {
                return Err(
                    Finding::new("QUERY-2", "200, 302 or 404 to a query", r.describe()).at(r.at),
                );
            }
        }
    }
    Err(Finding::new(
        "QUERY-8",
        format!(
            "a lookup for key {} within {max_hops} redirects (C-Q2)",
            short(&key)
        ),
        "more redirects",
    ))
}

fn correct<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move { run_lookups(cx, input).await })
}

async fn run_lookups(cx: &mut Ctx, input: &CheckInput) -> StepResult {
    let ring = cx.live_ring();
    let starts = cx.running_nodes();
    if starts.is_empty() {
        return Err(Stop::Error("lookup.correct: no running node".into()));
    }
    let random = input.int("keys").unwrap_or(20).clamp(0, 1000) as usize;
    let mut keys: Vec<Id> = Vec::new();
    for id in ring.ids() {
        keys.extend([*id, id.successor(), id.predecessor()]);
    }
    for _ in 0..random {
        let mut b = [0u8; 20];
        cx.rng.fill_bytes(&mut b);
        keys.push(Id(b));
    }
    let names: std::collections::HashMap<Id, String> = cx
        .live_peers()
        .into_iter()
        .map(|(n, p)| (p.id, n))
        .collect();
    let names: Arc<dyn Fn(&Id) -> String + Send + Sync> = Arc::new(move |id: &Id| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("{}…", &id.to_hex()[..8]))
    });
    let per_hop = cx.timer_f().min(Duration::from_secs(3));
    let t1 = cx.params.t1();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut set = tokio::task::JoinSet::new();
    for (_, s) in &starts {
        for k in &keys {
            let (obs, ring, names, sem) = (
                cx.observer.clone(),
                ring.clone(),
                names.clone(),
                sem.clone(),
            );
            let (s, k) = (*s, *k);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                lookup(obs, ring, s, k, t1, per_hop, names).await
            });
        }
    }
    let mut hops: Vec<usize> = Vec::new();
    let mut first: Option<Finding> = None;
    let mut failed = 0usize;
    let deadline = tokio::time::Instant::from_std(cx.deadline);
    loop {
        let next = tokio::time::timeout_at(deadline, set.join_next()).await;
        match next {
            Err(_) => {
                set.abort_all();
                return Err(Stop::Fail(first.unwrap_or_else(|| {
                    Finding::new(
                        "QUERY-3",
                        "every lookup done before the case deadline",
                        "lookups still running",
                    )
                })));
            }
            Ok(None) => break,
            Ok(Some(Ok(Ok(h)))) => hops.push(h),
            Ok(Some(Ok(Err(f)))) => {
                failed += 1;
                first.get_or_insert(f);
            }
            Ok(Some(Err(_))) => {}
        }
    }
    let total = hops.len() + failed;
    if let Some(mut f) = first {
        f.actual = format!("{} ({failed} of {total} lookups failed)", f.actual);
        return Err(Stop::Fail(f));
    }
    if input.args.get("hops").and_then(|v| v.as_bool()) == Some(true) && !hops.is_empty() {
        let n = ring.len().max(2) as f64;
        let mean = hops.iter().sum::<usize>() as f64 / hops.len() as f64;
        hops.sort_unstable();
        let p99 = hops[((hops.len() as f64 * 0.99).ceil() as usize)
            .saturating_sub(1)
            .min(hops.len() - 1)];
        let max = *hops.last().unwrap_or(&0);
        let (mean_b, p99_b, max_b) = (
            n.log2() / 2.0 + 1.5,
            n.log2() + 2.0,
            2.0 * n.log2().ceil() + 8.0,
        );
        if mean > mean_b || p99 as f64 > p99_b || max as f64 > max_b {
            return Err(finding(
                "QUERY-8",
                format!("hops mean <= {mean_b:.2}, p99 <= {p99_b:.2}, max <= {max_b} (C-Q2)"),
                format!("mean {mean:.2}, p99 {p99}, max {max} over {total} lookups"),
            ));
        }
    }
    cx.rec.note(format!(
        "lookup.correct: {total} lookups from {} nodes, all correct",
        starts.len()
    ));
    Ok(())
}
