/*!
Query checks (PROFILE §4, QUERY-1..QUERY-7; CHECKS.md C-Q3, C-L3): what a
peer answers to a node query, judged against the oracle's ring of live
peers.

- `query.redirect`: one 302 (QUERY-2): exactly one Contact, making
  progress (C-Q3); optionally the closest peer the responder reports
  (QUERY-2's SHOULD).
- `query.links-present` / `query.links-full`: what a 200, 302 or 404
  carries (QUERY-4, MUST and SHOULD parts).
- `query.links-true`: the links of any response equal the ideal ring
  (QUERY-5); `links.true` does the same for a node's own 200.
- `query.scan`: queries one node for every live ID, ID±1 and random keys
  and judges every answer (QUERY-2..QUERY-5).
- `query.never-names`: a peer that never completed a transaction with
  the node is never reported nor redirected to (QUERY-7).
- `query.proxied`: the shape of a query an IUT forwards under
  `Request-Disposition: proxy` (QUERY-6, MAY).

The SHOULD reading of "closest known peer" uses what the responder itself
reports in the same answer: a peer it reports is a peer it knows, so a
Contact farther from the key than one of them is not the closest.
*/

use std::time::{Duration, Instant};

use p2psip_wire::{Header, Id, LinkKind, Message, Peer, Ring, Rport};
use rand::RngCore;

use super::links::check_true;
use super::lookup::check_progress;
use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, StepResult, Stop};
use crate::oracle::{self, NodeLinks, links_of};
use crate::puppet::Received;

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "query.redirect",
        requirements: &["QUERY-2", "C-Q3"],
        subject: Subject::Required,
        args: &["closest", "requirement"],
        doc: "a 302 with exactly one Contact, a Peer URI in (responder, key] or the responder's S1 for a key in (responder, S1), never the responder; with closest = true also no farther from the key than any peer the 302 itself reports in (responder, key] (QUERY-2's SHOULD)",
        run: redirect,
    },
    CheckDef {
        name: "query.links-present",
        requirements: &["QUERY-4"],
        subject: Subject::Required,
        args: &["P1"],
        doc: "a 200, 302 or 404 carries exactly one DHT-PeerID, S1 (unless the responder is the only live peer) and P1 (unless `P1 = \"none\"`: the responder's predecessor is NULL)",
        run: links_present,
    },
    CheckDef {
        name: "query.links-full",
        requirements: &["QUERY-4"],
        subject: Subject::Optional,
        args: &["node"],
        doc: "QUERY-4's SHOULD part: S1..Sk for k = min(successors, |L| - 1), an F link for every distinct ideal finger, at most 32 F links, each F link's peer differing from the previous one's",
        run: links_full,
    },
    CheckDef {
        name: "query.links-true",
        requirements: &["QUERY-5", "C-L1", "C-L2", "C-L4"],
        subject: Subject::Required,
        args: &[],
        doc: "the links of a 200, 302 or 404 are sane and equal those of the ideal ring of the live peers (P1, S1..Sk, Fi = succ_L(responder + 2^i))",
        run: links_true,
    },
    CheckDef {
        name: "query.scan",
        requirements: &["QUERY-2", "QUERY-3", "QUERY-4", "QUERY-5", "C-Q3"],
        subject: Subject::None,
        args: &["node", "keys", "closest", "truth"],
        doc: "queries `node` (default iut1) for every live ID, ID±1 and `keys` (20) random keys: where the ideal ring makes it responsible, 200 for its own ID and 404 otherwise; elsewhere a 302 as `query.redirect` (with `closest`); every answer as `query.links-present`, and with truth = true as `query.links-true`",
        run: scan,
    },
    CheckDef {
        name: "query.never-names",
        requirements: &["QUERY-7", "C-L3"],
        subject: Subject::None,
        args: &["node", "peer", "for_ms", "poll_ms", "requirement"],
        doc: "for `for_ms` (default 3000), repeated node queries to `node` (default iut1) never show `peer` in a DHT-Link and queries for `peer`'s ID are never redirected to it",
        run: never_names,
    },
    CheckDef {
        name: "query.proxied",
        requirements: &["QUERY-6"],
        subject: Subject::Optional,
        args: &["node", "origin", "at", "key", "within_ms"],
        doc: "a query `node` (default iut1) forwarded under Request-Disposition: proxy (the subject, or the first query for `key` from `node` that puppet `at` receives within `within_ms`, 3000): the node's own top Via with rport, below it the Via of `origin` (a puppet) kept with received/rport filled in, and a Record-Route naming the node",
        run: proxied,
    },
];

fn short(id: &Id) -> String {
    format!("{}…", &id.to_hex()[..8])
}

/// The key of the query a response answers (To's peer-ID).
fn key_of(m: &Message<'_>) -> Option<Id> {
    m.to().and_then(|t| t.addr.uri.peer_id())
}

/// The Contacts of a response that name peers, and how many Contacts
/// there are in all.
fn contacts(m: &Message<'_>) -> (usize, Option<Peer>) {
    let all: Vec<Option<Peer>> = m.contact_addrs().map(|c| c.addr.uri.peer()).collect();
    (all.len(), all.first().copied().flatten())
}

/// QUERY-2 for one 302 from `sender` for `key`.
fn judge_redirect(
    cx: &Ctx,
    r: &Received,
    sender: &Peer,
    key: &Id,
    closest: bool,
    req: &str,
) -> StepResult {
    let Some(m) = r.message.as_ref() else {
        return Err(finding(req, "a 302 response", r.describe()));
    };
    let (n, contact) = contacts(m);
    if n != 1 {
        return Err(finding(
            req,
            format!(
                "{}'s 302 for key {} with exactly one Contact",
                cx.name_of_id(&sender.id),
                short(key)
            ),
            format!("{n} Contacts: {}", r.describe()),
        ));
    }
    let Some(contact) = contact else {
        return Err(finding(
            req,
            "a 302 whose Contact is a Peer URI (sip:peer@HOST:PORT;peer-ID=...)",
            r.describe(),
        ));
    };
    let links = links_of(r);
    let s1 = links.as_ref().and_then(|l| l.succ.first().copied());
    check_progress(sender, key, &contact, s1.as_ref()).map_err(|why| {
        finding(
            req,
            format!(
                "a Contact in ({}, key {}], or its S1 for a key in ({0}, S1) (C-Q3)",
                cx.name_of_id(&sender.id),
                short(key)
            ),
            format!("Contact {}: {why}", cx.show(&contact)),
        )
    })?;
    if closest {
        let reported: Vec<Peer> = links
            .map(|l| l.all.iter().map(|(_, p, _)| *p).collect())
            .unwrap_or_default();
        let better = reported
            .iter()
            .filter(|p| p.id != sender.id && p.id.in_open_closed(&sender.id, key))
            .filter(|p| p.id.distance_to(key) < contact.id.distance_to(key))
            .min_by_key(|p| p.id.distance_to(key));
        if let Some(b) = better {
            return Err(finding(
                req,
                format!(
                    "the known peer closest to key {} in ({}, key] (closest preceding node, QUERY-2 SHOULD)",
                    short(key),
                    cx.name_of_id(&sender.id)
                ),
                format!(
                    "Contact {}, though the 302 itself reports {}, closer to the key",
                    cx.show(&contact),
                    cx.show(b)
                ),
            ));
        }
    }
    Ok(())
}

fn redirect<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "query.redirect")?;
        let req = input.str("requirement").unwrap_or("QUERY-2").to_string();
        let closest = input.args.get("closest").and_then(|v| v.as_bool()) == Some(true);
        let Some(m) = r.message.as_ref() else {
            return Err(finding(&req, "a 302 response", r.describe()));
        };
        if m.status() != Some(302) {
            return Err(finding(&req, "a 302 response", r.describe()));
        }
        let Some(key) = key_of(m) else {
            return Err(finding(
                &req,
                "a response whose To carries the key (peer-ID)",
                r.describe(),
            ));
        };
        let sender = m.sender_peer().unwrap_or(Peer::at(r.from));
        judge_redirect(cx, r, &sender, &key, closest, &req)
    })
}

/// QUERY-4's MUST part on one response.
fn judge_present(cx: &Ctx, r: &Received, want_p1: bool, want_s1: bool) -> Result<NodeLinks, Stop> {
    let who = r
        .message
        .as_ref()
        .and_then(|m| m.sender_peer())
        .map_or_else(|| r.from.to_string(), |p| cx.name_of_id(&p.id));
    let Some(m) = r.message.as_ref() else {
        return Err(finding("QUERY-4", "a SIP response", r.describe()));
    };
    let ids = m
        .headers
        .iter()
        .filter(|h| matches!(h, Header::DhtPeerId(_)))
        .count();
    if ids != 1 || m.sender_peer().is_none() {
        return Err(finding(
            "QUERY-4",
            format!("{who}'s answer carries exactly one DHT-PeerID naming it"),
            format!("{ids} DHT-PeerID headers: {}", r.describe()),
        ));
    }
    let Some(l) = links_of(r) else {
        return Err(finding("QUERY-4", "a response with links", r.describe()));
    };
    let status = m.status().unwrap_or(0);
    if want_s1 && l.succ.is_empty() {
        return Err(finding(
            "QUERY-4",
            format!("{who}'s {status} carries S1"),
            "no S1 link",
        ));
    }
    if want_p1 && m.link(LinkKind::P, 1).is_none() {
        return Err(finding(
            "QUERY-4",
            format!("{who}'s {status} carries P1 (its predecessor is not NULL)"),
            "no P1 link",
        ));
    }
    Ok(l)
}

fn links_present<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "query.links-present")?;
        let want_p1 = input.str("P1") != Some("none");
        let want_s1 = cx.live_ring().len() > 1;
        judge_present(cx, r, want_p1, want_s1).map(|_| ())
    })
}

/// The distinct ideal fingers of `n`: (first index of the run, peer),
/// leaving out `n` itself.
pub fn distinct_fingers(ring: &Ring, n: &Id) -> Vec<(u8, Id)> {
    let mut out: Vec<(u8, Id)> = Vec::new();
    let mut prev: Option<Id> = None;
    for i in 0..160u8 {
        let Some(f) = ring.finger(n, i) else { break };
        if Some(f) != prev && f != *n {
            out.push((i, f));
        }
        prev = Some(f);
    }
    out
}

/// The links a check looks at: the subject's, or a node query's.
async fn subject_or_read(cx: &mut Ctx, input: &CheckInput) -> Result<(String, NodeLinks), Stop> {
    if let Some(r) = &input.subject {
        let l = links_of(r)
            .ok_or_else(|| finding("QUERY-4", "a SIP response with links", r.describe()))?;
        let who = l
            .responder
            .map_or_else(|| r.from.to_string(), |p| cx.name_of_id(&p.id));
        return Ok((who, l));
    }
    let name = input.str("node").unwrap_or("iut1").to_string();
    let peer = cx.peer_of(&name)?;
    let deadline = cx.until(cx.timer_f().min(Duration::from_secs(3)));
    match oracle::read(&cx.observer, peer, cx.params.t1(), deadline).await {
        oracle::Reading::Links(l) => Ok((name, *l)),
        oracle::Reading::NoAnswer => Err(finding(
            "QUERY-3",
            format!("{name} answers a node query for its own ID"),
            "no answer",
        )),
    }
}

fn links_full<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let (who, l) = subject_or_read(cx, input).await?;
        let Some(n) = l.responder else {
            return Err(finding(
                "QUERY-4",
                "a DHT-PeerID naming the responder",
                l.response.describe(),
            ));
        };
        let ring = cx.live_ring();
        let k = (cx.params.successors as usize).min(ring.len().saturating_sub(1));
        if l.succ.len() < k {
            return Err(finding(
                "QUERY-4",
                format!("{who} reports S1..S{k} (QUERY-4 SHOULD, STAB-4)"),
                format!("{} S links", l.succ.len()),
            ));
        }
        let fs: Vec<(u8, Peer)> = l.fingers.clone();
        if fs.len() > 32 {
            return Err(finding(
                "QUERY-4",
                format!("at most 32 F links from {who}"),
                format!("{} F links", fs.len()),
            ));
        }
        for w in fs.windows(2) {
            if w[0].1.id == w[1].1.id {
                return Err(finding(
                    "QUERY-4",
                    format!(
                        "only distinct fingers from {who}: each F link differs from the previous"
                    ),
                    format!("F{} and F{} both name {}", w[0].0, w[1].0, cx.show(&w[1].1)),
                ));
            }
        }
        for (i, f) in distinct_fingers(&ring, &n.id) {
            if !fs.iter().any(|(_, p)| p.id == f) {
                let got: Vec<String> = fs
                    .iter()
                    .map(|(i, p)| format!("F{i}={}", cx.name_of_id(&p.id)))
                    .collect();
                return Err(finding(
                    "QUERY-4",
                    format!(
                        "{who} reports its distinct finger {} (first at F{i}) (QUERY-4 SHOULD)",
                        cx.name_of_id(&f)
                    ),
                    format!("F links [{}]", got.join(", ")),
                ));
            }
        }
        Ok(())
    })
}

fn links_true<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "query.links-true")?.clone();
        let Some(l) = links_of(&r) else {
            return Err(finding(
                "QUERY-5",
                "a SIP response with links",
                r.describe(),
            ));
        };
        let Some(n) = l.responder else {
            return Err(finding(
                "WIRE-4",
                "a DHT-PeerID naming the responder",
                r.describe(),
            ));
        };
        let who = cx.name_of_id(&n.id);
        let ring = cx.live_ring();
        check_true(cx, &who, &n, &l, &ring, cx.params.successors as usize)
    })
}

fn scan<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let name = input.str("node").unwrap_or("iut1").to_string();
        let node = cx.peer_of(&name)?;
        let closest = input.args.get("closest").and_then(|v| v.as_bool()) == Some(true);
        let truth = input.args.get("truth").and_then(|v| v.as_bool()) == Some(true);
        let random = input.int("keys").unwrap_or(20).clamp(0, 500) as usize;
        let ring = cx.live_ring();
        let mut keys: Vec<Id> = Vec::new();
        for id in ring.ids() {
            keys.extend([*id, id.successor(), id.predecessor()]);
        }
        for _ in 0..random {
            let mut b = [0u8; 20];
            cx.rng.fill_bytes(&mut b);
            keys.push(Id(b));
        }
        let want_p1 = ring.len() > 1;
        let per = cx.timer_f().min(Duration::from_secs(3));
        let r_len = cx.params.successors as usize;
        let (mut ok, mut redirects) = (0usize, 0usize);
        for key in keys {
            let deadline = cx.until(per);
            let Some(r) = oracle::query(&cx.observer, node, key, cx.params.t1(), deadline).await
            else {
                return Err(finding(
                    "QUERY-3",
                    format!("{name} answers a query for key {}", short(&key)),
                    "no answer before Timer F",
                ));
            };
            let status = r.status().unwrap_or(0);
            let responsible = ring.responsible(&key) == Some(node.id);
            if responsible {
                let want = if key == node.id { 200 } else { 404 };
                if status != want {
                    return Err(finding(
                        "QUERY-3",
                        format!(
                            "{want} from {name}, responsible for key {} in the ideal ring",
                            short(&key)
                        ),
                        r.describe(),
                    ));
                }
            } else if status != 302 {
                return Err(finding(
                    "QUERY-2",
                    format!(
                        "a 302 from {name}, not responsible for key {} (succ_L = {})",
                        short(&key),
                        ring.responsible(&key)
                            .map_or("nothing".to_string(), |i| cx.name_of_id(&i))
                    ),
                    r.describe(),
                ));
            } else {
                redirects += 1;
                judge_redirect(cx, &r, &node, &key, closest, "QUERY-2")?;
            }
            let l = judge_present(cx, &r, want_p1, want_p1)?;
            if truth {
                check_true(cx, &name, &node, &l, &ring, r_len)?;
            }
            ok += 1;
        }
        cx.rec.note(format!(
            "query.scan: {ok} answers from {name} judged ({redirects} redirects)"
        ));
        Ok(())
    })
}

fn never_names<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let name = input.str("node").unwrap_or("iut1").to_string();
        let node = cx.peer_of(&name)?;
        let Some(pname) = input.str("peer").map(str::to_string) else {
            return Err(Stop::Error("query.never-names needs args.peer".into()));
        };
        let peer = cx.peer_of(&pname)?;
        let req = input.str("requirement").unwrap_or("QUERY-7").to_string();
        let span = Duration::from_millis(input.int("for_ms").unwrap_or(3000).max(0) as u64);
        let poll =
            Duration::from_millis(input.int("poll_ms").unwrap_or(100).clamp(10, 5000) as u64);
        let end = cx.until(span);
        let t1 = cx.params.t1();
        let mut rounds = 0usize;
        loop {
            let deadline = cx.until(cx.timer_f().min(Duration::from_secs(2)));
            if let oracle::Reading::Links(l) = oracle::read(&cx.observer, node, t1, deadline).await
                && let Some((t, _, _)) = l.all.iter().find(|(_, p, _)| p.id == peer.id)
            {
                return Err(finding(
                    &req,
                    format!(
                        "{name} never reports {pname}, with which it has completed no transaction"
                    ),
                    format!(
                        "{name} reports {pname} as {}{} ({})",
                        t.kind.letter(),
                        t.depth,
                        l.response.describe()
                    ),
                )
                .into_at(l.response.at));
            }
            let deadline = cx.until(cx.timer_f().min(Duration::from_secs(2)));
            if let Some(r) = oracle::query(&cx.observer, node, peer.id, t1, deadline).await
                && let Some(m) = r.message.as_ref()
            {
                let (_, c) = contacts(m);
                if m.status() == Some(302) && c.is_some_and(|c| c.id == peer.id) {
                    return Err(finding(
                            &req,
                            format!("{name} never redirects to {pname}, with which it has completed no transaction"),
                            format!("302 to {pname} for its own ID: {}", r.describe()),
                        )
                        .into_at(r.at));
                }
            }
            rounds += 1;
            if Instant::now() + poll >= end {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        cx.rec.note(format!(
            "query.never-names: {name} did not name {pname} in {rounds} rounds"
        ));
        Ok(())
    })
}

/// Attaches the time of the offending message to a finding.
trait IntoAt {
    fn into_at(self, at: Instant) -> Stop;
}

impl IntoAt for Stop {
    fn into_at(self, at: Instant) -> Stop {
        match self {
            Stop::Fail(f) => Stop::Fail(f.at(at)),
            other => other,
        }
    }
}

fn proxied<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let name = input.str("node").unwrap_or("iut1").to_string();
        let name = name.as_str();
        let node = cx.addr_of(name)?;
        let bad = |e: &str, a: String| finding("QUERY-6", e, a);
        let waited;
        let r = match (&input.subject, input.str("at"), input.str("key")) {
            (Some(r), _, _) => r,
            (None, Some(at), Some(key)) => {
                let puppet = cx.puppet(at)?;
                let key = crate::engine::msg::resolve_key(cx, key)?;
                let within = input.int("within_ms").unwrap_or(3000).max(0) as u64;
                let end = cx.until(Duration::from_millis(within));
                let mut found = None;
                while found.is_none() {
                    found = puppet.inbox().all().into_iter().find(|r| {
                        r.from == node
                            && r.message.as_ref().is_some_and(|m| {
                                m.is_request()
                                    && p2psip_wire::Class::of_request(m)
                                        == p2psip_wire::Class::Query
                                    && key_of(m) == Some(key)
                            })
                    });
                    if found.is_some() || Instant::now() >= end {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let Some(f) = found else {
                    return Err(bad(
                        &format!(
                            "{name} forwards the query for key {} to {at}, which is responsible (recursive routing when asked)",
                            short(&key)
                        ),
                        format!("no such query at {at} within {within} ms"),
                    ));
                };
                waited = f;
                &waited
            }
            _ => {
                return Err(Stop::Error(
                    "query.proxied needs a subject, or args.at and args.key".into(),
                ));
            }
        };
        let Some(m) = r.message.as_ref().filter(|m| m.is_request()) else {
            return Err(bad("a forwarded query", r.describe()));
        };
        let vias: Vec<_> = m.vias().collect();
        let top = vias.first();
        let top_ok = top.is_some_and(|v| {
            v.host.ip() == Some(node.ip())
                && v.sent_by_port() == node.port()
                && v.rport != Rport::Absent
        });
        if !top_ok {
            return Err(bad(
                &format!("the top Via is {name}'s own ({node}) with rport"),
                r.describe(),
            ));
        }
        if let Some(o) = input.str("origin") {
            let origin = cx.addr_of(o)?;
            let below = vias.get(1);
            let kept = below.is_some_and(|v| {
                v.host.ip() == Some(origin.ip())
                    && v.received == Some(origin.ip())
                    && v.rport == Rport::Filled(origin.port())
            });
            if !kept {
                return Err(bad(
                    &format!(
                        "below it the Via of {o} ({origin}), kept with received={} and rport={}",
                        origin.ip(),
                        origin.port()
                    ),
                    format!("{} Vias: {}", vias.len(), r.describe()),
                ));
            }
        }
        let rr = m.headers.iter().any(|h| match h {
            Header::RecordRoute(p) => p.addr.uri.socket_addr() == Some(node),
            _ => false,
        });
        if !rr {
            return Err(bad(
                &format!("a Record-Route naming {name} ({node})"),
                r.describe(),
            ));
        }
        Ok(())
    })
}
