/*!
Replica and resource checks (PROFILE §8, CHECKS C-R1..C-R5): where the
copies of a resource are (lookups at succ_L(Rid_i), computed with the
wire crate's [`Ring`](p2psip_wire::Ring) from the live peers the harness
started, never from a node), that they are nowhere else (member puppets
that hold copies, C-R2), that they are gone after a removal, the shape of
a transfer (JOIN-9, LEAVE-1), and the adapter's fetch (REPL-4).

A resource is named by an `aor` step (or a `register`/`send` that used
it first); what was registered for it (Contacts, lifetime, when) comes
from the `register` step or the puppet's `send`.
*/

use std::time::{Duration, Instant};

use p2psip_wire::build;
use p2psip_wire::resource::canonical_text;
use p2psip_wire::{Class, Id, Message, Peer, parse_uri};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};
use crate::engine::resource::{self, Resource};
use crate::puppet::Received;

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "replicas.placed",
        requirements: &["REPL-1", "RES-2", "C-R1", "REPL-3", "C-R2"],
        subject: Subject::None,
        args: &["aor", "copies", "exact", "requirement"],
        doc: "each copy i (default 0..R) of the resource is at succ_L(Rid_i): a lookup there answers 200 with the registered Contacts and their remaining expiry (±1 s; C-R1), or the member puppet there holds it; with `exact`, no other member puppet holds it (C-R2, REPL-3)",
        run: placed,
    },
    CheckDef {
        name: "replicas.absent",
        requirements: &["REPL-2", "RES-1", "C-R5"],
        subject: Subject::None,
        args: &["aor", "copies", "requirement"],
        doc: "no holder has the resource: a lookup at each succ_L(Rid_i) answers anything but 200, and no member puppet holds a copy (C-R5)",
        run: absent,
    },
    CheckDef {
        name: "replicas.transfer",
        requirements: &["JOIN-9", "LEAVE-1"],
        subject: Subject::Required,
        args: &["aor", "replica", "requirement"],
        doc: "a third-party REGISTER handing over the resource: From = DHT-PeerID = the sender's Peer URI (ID-2 of its source), To = the resource URI (with ;replica=N for a replica), the registered Contacts, Expires = the remaining lifetime (±1 s)",
        run: transfer,
    },
    CheckDef {
        name: "replicas.fetch",
        requirements: &["REPL-4"],
        subject: Subject::None,
        args: &["node", "aor", "ua", "minority", "requirement"],
        doc: "a user agent's REGISTER without Contact (a fetch) to the node's adapter role: lookups reach the primary and at least one replica (where member puppets hold them), and the answer is 200 with the registered Contacts; with `minority` (a Contact one copy was changed to) 500 is also right, a 200 listing it is not",
        run: fetch,
    },
    CheckDef {
        name: "replicas.contacts-listed",
        requirements: &["RES-1"],
        subject: Subject::Required,
        args: &["aor", "requirement"],
        doc: "the subject 200 (to a registration) lists the resource's registered Contacts, each with expires = the remaining lifetime (±1 s)",
        run: contacts_listed,
    },
    CheckDef {
        name: "replicas.redirect-progress",
        requirements: &["RES-1", "QUERY-2"],
        subject: Subject::Required,
        args: &["requirement"],
        doc: "the subject is a 302 to a resource request whose Contact is a peer in (responder, Rid], or the responder's S1 when Rid is in (responder, S1), with Rid computed from To (RES-3), never a resource-ID hint",
        run: redirect_progress,
    },
    CheckDef {
        name: "replicas.adapter-answer",
        requirements: &["RES-4"],
        subject: Subject::None,
        args: &["node", "aor", "ua", "requirement"],
        doc: "a user agent's plain REGISTER (no Require: dht) to the node is answered 200 listing its Contact when the IUT file claims the adapter role, 421 Extension Required when it does not",
        run: adapter_answer,
    },
];

fn req_of(cx: &Ctx, input: &CheckInput) -> String {
    input
        .str("requirement")
        .map(str::to_string)
        .unwrap_or_else(|| cx.primary_requirement())
}

fn the_resource(cx: &mut Ctx, input: &CheckInput, check: &str) -> Result<(String, Resource), Stop> {
    let name = input
        .str("aor")
        .ok_or_else(|| Stop::Error(format!("{check} needs aor")))?
        .to_string();
    let r = resource::resource(cx, &name)?;
    Ok((name, r))
}

fn copies(cx: &Ctx, input: &CheckInput) -> Result<Vec<u32>, Stop> {
    match input.args.get("copies") {
        None => Ok((0..=cx.params.replicas).collect()),
        Some(v) => v
            .as_array()
            .ok_or_else(|| Stop::Error("copies is a list of copy numbers (0 = primary)".into()))?
            .iter()
            .map(|x| {
                x.as_integer()
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|i| *i <= cx.params.replicas)
                    .ok_or_else(|| Stop::Error(format!("copies: {x} is not in 0..=R")))
            })
            .collect(),
    }
}

fn copy_name(c: u32) -> String {
    if c == 0 {
        "the primary".to_string()
    } else {
        format!("replica {c}")
    }
}

/// The Contact URIs as printed by the wire crate (so spellings compare).
fn norm(uri: &str) -> String {
    parse_uri(uri).map_or_else(|_| uri.to_string(), |u| u.to_string())
}

/// (Contact URI, expires) of a message.
fn contacts_of(m: &Message<'_>) -> Vec<(String, Option<u32>)> {
    m.contact_addrs()
        .map(|c| (c.addr.uri.to_string(), c.expires))
        .collect()
}

/// A lookup for copy `copy` of `res` at `holder`, from the observer.
async fn lookup(cx: &Ctx, res: &Resource, copy: u32, holder: Peer) -> Option<Received> {
    let obs = cx.observer.clone();
    let txn = obs.txn();
    let replica = (copy > 0).then_some(copy);
    let m = build::lookup(&obs.identity(), holder.addr, &txn, &res.uri(), replica);
    let within = cx.timer_f().min(Duration::from_secs(3));
    resource::send_until_final(cx, &obs, holder.addr, &m, within).await
}

/// The live holder of `key` and whether it is a node (not a puppet).
fn holder_of(cx: &Ctx, key: &Id) -> Result<(String, Peer), Stop> {
    let ring = cx.live_ring();
    let id = ring
        .successor(key)
        .ok_or_else(|| Stop::Error("no live peer".into()))?;
    let (name, peer) = cx
        .live_peers()
        .into_iter()
        .find(|(_, p)| p.id == id)
        .ok_or_else(|| Stop::Error("holder not found".into()))?;
    Ok((name, peer))
}

/// Remaining lifetime tolerance: C-R1's ±1 s, plus half a second for
/// whole-second rounding.
const SLACK_S: f64 = 1.5;

fn placed<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (name, res) = the_resource(cx, input, "replicas.placed")?;
        if res.contacts.is_empty() {
            return Err(Stop::Error(format!(
                "replicas.placed: nothing was registered for {name}"
            )));
        }
        let want: Vec<String> = res.contacts.iter().map(|c| norm(c)).collect();
        let exact = input
            .args
            .get("exact")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        for copy in copies(cx, input)? {
            let key = res.key(copy);
            let (hname, holder) = holder_of(cx, &key)?;
            let what = format!(
                "{} of {} (Resource-ID {}…) at succ_L = {hname}",
                copy_name(copy),
                res.aor,
                &key.to_hex()[..8]
            );
            if let Ok(p) = cx.puppet(&hname) {
                let Some(h) = p.held(&key) else {
                    return Err(finding(
                        &req,
                        format!("{what}, placed there (C-R1)"),
                        format!("{hname} (a puppet holder) received no registration of it"),
                    ));
                };
                let got: Vec<String> = h
                    .live(Instant::now())
                    .iter()
                    .map(|(u, _)| u.to_string())
                    .collect();
                if let Some(miss) = want.iter().find(|w| !got.contains(w)) {
                    return Err(finding(
                        &req,
                        format!("{what} with Contact {miss} (C-R1)"),
                        format!("{hname} holds Contacts {got:?}"),
                    ));
                }
            } else {
                let Some(r) = lookup(cx, &res, copy, holder).await else {
                    return Err(finding(
                        &req,
                        format!("a lookup for {what} answered 200 (C-R1)"),
                        "no answer",
                    ));
                };
                let m = r.message.as_ref();
                if r.status() != Some(200) || m.is_none() {
                    return Err(finding(
                        &req,
                        format!("a lookup for {what} answered 200 with the Contacts (C-R1)"),
                        r.describe(),
                    )
                    .at_msg(&r));
                }
                let got = contacts_of(m.expect("checked"));
                let now_left = res.remaining(r.at);
                for w in &want {
                    let Some((_, exp)) = got.iter().find(|(u, _)| u == w) else {
                        return Err(finding(
                            &req,
                            format!("a lookup for {what} lists Contact {w} (C-R1)"),
                            format!(
                                "Contacts {:?}",
                                got.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>()
                            ),
                        )
                        .at_msg(&r));
                    };
                    if let Some(left) = now_left {
                        let ok = exp.is_some_and(|e| (f64::from(e) - left).abs() <= SLACK_S);
                        if !ok {
                            return Err(finding(
                                &req,
                                format!(
                                    "a lookup for {what} lists {w} with expires = the remaining lifetime, {left:.1} s (±1 s, C-R1)"
                                ),
                                exp.map_or("no expires parameter".to_string(), |e| {
                                    format!("expires={e}")
                                }),
                            )
                            .at_msg(&r));
                        }
                    }
                }
            }
            if exact {
                for (pname, p) in cx.puppets.clone() {
                    if pname == hname || !cx.members.contains(&pname) {
                        continue;
                    }
                    if let Some(h) = p.held(&key) {
                        return Err(finding(
                            "REPL-3",
                            format!(
                                "{} of {} held only by succ_L(Rid_{copy}) = {hname} (C-R2: no successor replication)",
                                copy_name(copy),
                                res.aor
                            ),
                            format!(
                                "{pname} holds it too: a {} from {}",
                                h.class.name(),
                                cx.name_of_id(&Peer::at(h.from).id)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    })
}

fn absent<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (_, res) = the_resource(cx, input, "replicas.absent")?;
        for copy in copies(cx, input)? {
            let key = res.key(copy);
            let (hname, holder) = holder_of(cx, &key)?;
            let what = format!("{} of {} at {hname}", copy_name(copy), res.aor);
            if let Ok(p) = cx.puppet(&hname) {
                if p.held(&key).is_some() {
                    return Err(finding(
                        &req,
                        format!("{what} removed (C-R5)"),
                        format!("{hname} still holds it"),
                    ));
                }
            } else {
                match lookup(cx, &res, copy, holder).await {
                    None => {
                        return Err(finding(
                            &req,
                            format!("a lookup for {what} answered (404: nothing registered)"),
                            "no answer",
                        ));
                    }
                    Some(r) if r.status() == Some(200) => {
                        return Err(finding(
                            &req,
                            format!("no 200 to a lookup for {what} after the removal (C-R5)"),
                            r.describe(),
                        )
                        .at_msg(&r));
                    }
                    Some(_) => {}
                }
            }
            for (pname, p) in cx.puppets.clone() {
                if cx.members.contains(&pname) && p.held(&key).is_some() {
                    return Err(finding(
                        &req,
                        format!(
                            "{} of {} removed everywhere (C-R5)",
                            copy_name(copy),
                            res.aor
                        ),
                        format!("{pname} still holds it"),
                    ));
                }
            }
        }
        Ok(())
    })
}

fn transfer<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (_, res) = the_resource(cx, input, "replicas.transfer")?;
        let r = input.subject(cx, "replicas.transfer")?.clone();
        let bad = |expected: String, actual: String| finding(&req, expected, actual).at_msg(&r);
        let Some(m) = r.message.as_ref() else {
            return Err(bad("a transfer REGISTER".into(), r.describe()));
        };
        if Class::of_request(m) != Class::Transfer {
            return Err(bad(
                "a transfer: a REGISTER whose To is the resource URI, From the sender's Peer URI, with Contacts and Expires".into(),
                format!("a {} request: {}", Class::of_request(m).name(), r.describe()),
            ));
        }
        let sender = Peer::at(r.from);
        let from = m.from().and_then(|f| f.addr.uri.peer());
        let named = m.sender_peer();
        if from.map(|p| p.id) != Some(sender.id) || named.map(|p| p.id) != Some(sender.id) {
            return Err(bad(
                format!(
                    "From and DHT-PeerID = the sender's own Peer URI (Peer-ID {}…, ID-2 of {})",
                    &sender.id.to_hex()[..8],
                    r.from
                ),
                format!(
                    "From {}, DHT-PeerID {}",
                    from.map_or("no Peer URI".to_string(), |p| p.id.to_string()),
                    named.map_or("none".to_string(), |p| p.id.to_string())
                ),
            ));
        }
        let replica = input.int("replica").map(|n| n as u32);
        let to = m.to().map(|t| &t.addr.uri);
        let to_canon = to.map(|u| {
            let mut b = u.clone();
            b.params = Default::default();
            canonical_text(&b)
        });
        let want_canon = canonical_text(&res.uri());
        if to_canon.as_deref() != Some(want_canon.as_str())
            || to.and_then(|u| u.params.replica) != replica
        {
            return Err(bad(
                format!(
                    "To = {}{}",
                    res.aor,
                    replica.map(|n| format!(";replica={n}")).unwrap_or_default()
                ),
                format!("To = {}", to.map(|u| u.to_string()).unwrap_or_default()),
            ));
        }
        let got = contacts_of(m);
        let left = res.remaining(r.at);
        for w in res.contacts.iter().map(|c| norm(c)) {
            let Some((_, exp)) = got.iter().find(|(u, _)| *u == w) else {
                return Err(bad(
                    format!("the stored Contact {w}"),
                    format!(
                        "Contacts {:?}",
                        got.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>()
                    ),
                ));
            };
            let e = exp.or(m.expires());
            if let Some(left) = left
                && !e.is_some_and(|e| e > 0 && (f64::from(e) - left).abs() <= SLACK_S)
            {
                return Err(bad(
                    format!("{w} with the remaining lifetime, {left:.1} s (±1 s)"),
                    e.map_or("no expiry".into(), |e| format!("{e} s")),
                ));
            }
        }
        if !m.requires_dht() || m.sender_peer().is_none() {
            return Err(bad(
                "Require: dht and a DHT-PeerID (a P2P request)".into(),
                r.describe(),
            ));
        }
        Ok(())
    })
}

fn fetch<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (_, res) = the_resource(cx, input, "replicas.fetch")?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let target = cx.peer_of(&node)?;
        let ua = match input.str("ua") {
            Some(p) => cx.puppet(p)?,
            None => cx.observer.clone(),
        };
        let minority = match input.str("minority") {
            Some(m) => Some(norm(&resource::contact_uri(cx, Some(m), ua.addr())?)),
            None => None,
        };
        let sent_at = Instant::now();
        let m = resource::plain_message(&ua, target.addr, &res);
        let within = cx.timer_f() + Duration::from_secs(2);
        let Some(r) = resource::send_until_final(cx, &ua, target.addr, &m, within).await else {
            return Err(finding(
                &req,
                format!("{node} answers a user agent's fetch of {}", res.aor),
                "no final response",
            ));
        };
        // Which copies were asked, where a puppet holds them.
        let mut asked_primary = None;
        let mut asked_replica = None;
        for copy in 0..=cx.params.replicas {
            let key = res.key(copy);
            let (hname, _) = holder_of(cx, &key)?;
            let Ok(p) = cx.puppet(&hname) else { continue };
            let got = p.inbox().all().into_iter().any(|x| {
                x.at >= sent_at
                    && x.from == target.addr
                    && x.message.as_ref().is_some_and(|m| {
                        Class::of_request(m) == Class::Lookup
                            && m.to().is_some_and(|t| {
                                resource::copy_key(
                                    &t.addr.uri,
                                    t.addr.uri.params.replica.unwrap_or(0),
                                ) == key
                            })
                    })
            });
            if copy == 0 {
                asked_primary = Some(got);
            } else {
                asked_replica = Some(asked_replica.unwrap_or(false) || got);
            }
        }
        if asked_primary == Some(false) {
            return Err(finding(
                &req,
                format!(
                    "{node} asks the primary holder when a user agent fetches {}",
                    res.aor
                ),
                "no lookup reached it",
            ));
        }
        if asked_replica == Some(false) && cx.params.replicas > 0 {
            return Err(finding(
                &req,
                format!(
                    "{node} asks at least one replica holder when a user agent fetches {}",
                    res.aor
                ),
                "no lookup reached any replica holder",
            ));
        }
        let want: Vec<String> = res.contacts.iter().map(|c| norm(c)).collect();
        match (r.status(), r.message.as_ref()) {
            (Some(500), _) if minority.is_some() => Ok(()),
            (Some(200), Some(m)) => {
                let got: Vec<String> = contacts_of(m).into_iter().map(|(u, _)| u).collect();
                if let Some(min) = &minority
                    && got.contains(min)
                {
                    return Err(finding(
                        &req,
                        "the majority's Contacts (or 500 without a majority)",
                        format!("200 listing the minority's {min}"),
                    )
                    .at_msg(&r));
                }
                if let Some(miss) = want.iter().find(|w| !got.contains(w)) {
                    return Err(finding(
                        &req,
                        format!("200 listing the registered Contact {miss}"),
                        format!("200 with Contacts {got:?}"),
                    )
                    .at_msg(&r));
                }
                Ok(())
            }
            _ => Err(finding(
                &req,
                format!(
                    "200 with the registered Contacts{}",
                    if minority.is_some() { " (or 500)" } else { "" }
                ),
                r.describe(),
            )
            .at_msg(&r)),
        }
    })
}

/// Adds the arrival time of `r` to a finding (for the ladder).
trait AtMsg {
    fn at_msg(self, r: &Received) -> Stop;
}

impl AtMsg for Stop {
    fn at_msg(self, r: &Received) -> Stop {
        match self {
            Stop::Fail(f) => Stop::Fail(f.at(r.at)),
            other => other,
        }
    }
}

fn contacts_listed<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (_, res) = the_resource(cx, input, "replicas.contacts-listed")?;
        let r = input.subject(cx, "replicas.contacts-listed")?.clone();
        let Some(m) = r.message.as_ref().filter(|m| m.status() == Some(200)) else {
            return Err(finding(&req, "a 200 listing the Contacts", r.describe()).at_msg(&r));
        };
        let got = contacts_of(m);
        let left = res.remaining(r.at);
        for w in res.contacts.iter().map(|c| norm(c)) {
            let Some((_, e)) = got.iter().find(|(u, _)| *u == w) else {
                return Err(finding(
                    &req,
                    format!("the 200 lists the current Contact {w} (RFC 3261 §10.3)"),
                    format!(
                        "Contacts {:?}",
                        got.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>()
                    ),
                )
                .at_msg(&r));
            };
            if let Some(left) = left
                && !e.is_some_and(|e| (f64::from(e) - left).abs() <= SLACK_S)
            {
                return Err(finding(
                        &req,
                        format!("Contact {w} listed with expires = its remaining lifetime, {left:.1} s (±1 s)"),
                        e.map_or("no expires parameter".to_string(), |e| format!("expires={e}")),
                    )
                    .at_msg(&r));
            }
        }
        Ok(())
    })
}

fn redirect_progress<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = input.str("requirement").unwrap_or("RES-1").to_string();
        let r = input.subject(cx, "replicas.redirect-progress")?.clone();
        let Some(m) = r.message.as_ref().filter(|m| m.status() == Some(302)) else {
            return Err(finding(&req, "a 302 towards the holder", r.describe()).at_msg(&r));
        };
        let Some(to) = m.to() else {
            return Err(finding(&req, "a 302 echoing To", r.describe()).at_msg(&r));
        };
        let key = p2psip_wire::resource::key_of(&to.addr.uri);
        let sender = m.sender_peer().unwrap_or(Peer::at(r.from));
        let Some(contact) = m.contact_addrs().next().and_then(|c| c.addr.uri.peer()) else {
            return Err(finding(&req, "a 302 with a Peer URI Contact", r.describe()).at_msg(&r));
        };
        let s1 = crate::oracle::links_of(&r).and_then(|l| l.succ.first().copied());
        super::lookup::check_progress(&sender, &key, &contact, s1.as_ref()).map_err(|why| {
            finding(
                &req,
                format!(
                    "a Contact in ({}, Resource-ID {}…] (C-Q3)",
                    cx.name_of_id(&sender.id),
                    &key.to_hex()[..8]
                ),
                format!("Contact {}: {why}", cx.show(&contact)),
            )
            .at_msg(&r)
        })
    })
}

fn adapter_answer<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = req_of(cx, input);
        let (name, res) = the_resource(cx, input, "replicas.adapter-answer")?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let target = cx.peer_of(&node)?;
        let ua = match input.str("ua") {
            Some(p) => cx.puppet(p)?,
            None => cx.observer.clone(),
        };
        let contact = resource::contact_uri(cx, None, ua.addr())?;
        let is_ref = cx
            .node(&node)
            .is_some_and(|n| n.role == crate::engine::ctx::Role::Reference);
        let claims = is_ref || cx.env.iut.has_feature(crate::iut::Feature::Adapter);
        let within = cx.timer_f() + Duration::from_secs(2);
        let expires = cx.params.expires_s;
        let Some(r) =
            resource::plain_register(cx, &ua, target.addr, &res, &contact, expires, within).await
        else {
            return Err(finding(
                &req,
                format!("{node} answers a user agent's plain REGISTER"),
                "no final response",
            ));
        };
        if !claims {
            return if r.status() == Some(421) {
                Ok(())
            } else {
                Err(finding(
                    &req,
                    format!(
                        "421 Extension Required from {node}, whose IUT file claims no adapter role"
                    ),
                    r.describe(),
                )
                .at_msg(&r))
            };
        }
        let listed = r.status() == Some(200)
            && r.message
                .as_ref()
                .is_some_and(|m| contacts_of(m).iter().any(|(u, _)| *u == norm(&contact)));
        if !listed {
            return Err(finding(
                &req,
                format!("200 listing the user agent's Contact {contact} (the adapter role)"),
                r.describe(),
            )
            .at_msg(&r));
        }
        resource::record(cx, &name, vec![contact], expires);
        Ok(())
    })
}
