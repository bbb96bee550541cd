/*!
NAT checks (PROFILE §9, CHECKS.md C-NAT1..C-NAT6), for cases with an
emulated NAT (`topology.nat`, `crate::natlab`). They judge what crossed
the relay (its packet log and the packets it carried, which are in the
case's recording) and what nodes report, queried at their own addresses
through the observer (never through the NAT). C-NAT0, the emulator's own
check, runs before a NAT case starts (`crate::natlab::selfcheck`).

Messages are judged against what the NAT made of them: the source a
receiver observed is the sender's relay front (outside) or its public
mapping (inside), never a socket address the receiver could not have
seen.
*/

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2psip_nat::{Decision, Direction, DropReason, RelayDrop};
use p2psip_wire::{Class, Message, ParseOptions, Peer, Ring, Rport, looks_like_stun, parse};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};
use crate::evidence::{Dir, Packet};
use crate::natlab::NatLab;
use crate::oracle::{self, Reading};
use crate::puppet::{Puppet, Received};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "nat.rport-in-requests",
        requirements: &["NAT-1"],
        subject: Subject::None,
        args: &["node"],
        doc: "C-NAT1: every request `node` (default iut1) sent in the case (to puppets, and through the NAT) has rport in its top Via",
        run: rport_in_requests,
    },
    CheckDef {
        name: "nat.via-received-rport",
        requirements: &["NAT-2"],
        subject: Subject::Required,
        args: &["from"],
        doc: "C-NAT2: the subject response (from `from`, default iut1) has received= and rport= of the source the responder observed (its public mapping behind a NAT, also when it equals the Via), and came back the way the request went (to that source, from the address it was sent to)",
        run: via_received_rport,
    },
    CheckDef {
        name: "nat.public-identity",
        requirements: &["NAT-3", "ID-3"],
        subject: Subject::Required,
        args: &[],
        doc: "C-NAT3: the subject, sent by a node behind the NAT, names the observed (public) source in its DHT-PeerID (Peer-ID = ID-2 of it) and, for a join, notify or leave, in To, From and Contact",
        run: public_identity,
    },
    CheckDef {
        name: "nat.options-first",
        requirements: &["JOIN-10"],
        subject: Subject::Required,
        args: &[],
        doc: "the subject join reached its bootstrap puppet after an OPTIONS from the same source, and carries the address that OPTIONS' answer reported (received/rport)",
        run: options_first,
    },
    CheckDef {
        name: "nat.known-as-public",
        requirements: &["NAT-3", "ID-3"],
        subject: Subject::None,
        args: &["node", "peer"],
        doc: "a node query to `node` (default ref1) shows `peer` (default iut1, behind the NAT) among P1/S1..Sk with the Peer-ID and Peer URI of its public mapping, and no link to its private address",
        run: known_as_public,
    },
    CheckDef {
        name: "nat.silence",
        requirements: &["NAT-5"],
        subject: Subject::None,
        args: &["node", "to", "window_ms", "max_ms"],
        doc: "C-NAT4: over the last `window_ms` (default 10·K), the longest outbound silence of `node` (default iut1) towards each of `to` (default every outside instance and member puppet) is at most `max_ms` (default K + 10%), and nothing sent to it was lost to an expired mapping",
        run: silence,
    },
    CheckDef {
        name: "nat.rebinding",
        requirements: &["NAT-6"],
        subject: Subject::None,
        args: &["node", "within_ms", "settle_ms"],
        doc: "C-NAT5: after the last nat-rebind of `node` (default iut1) it joins with the Peer-ID of its new public address within `within_ms` (default T + F), and within `settle_ms` (default T + F + (log2|L| + 3)·T: failure detection of the dead old address, C-L3, then convergence, C-G6) of the rebinding no other node lists its old Peer-ID and one lists the Peer-ID of its public address then",
        run: rebinding,
    },
    CheckDef {
        name: "nat.stun-mapped",
        requirements: &["NAT-7"],
        subject: Subject::Required,
        args: &["from"],
        doc: "C-NAT6: the subject is a STUN Binding success response from the SIP port the puppet's request went to, with its transaction ID and XOR-MAPPED-ADDRESS = the source `from` (default iut1) observed",
        run: stun_mapped,
    },
    CheckDef {
        name: "nat.no-peer-join",
        requirements: &["NAT-8"],
        subject: Subject::None,
        args: &["node"],
        doc: "behind an address-and-port-dependent mapping, `node` (default iut1) was seen at two public endpoints (it compared destinations) and sent no join through the NAT",
        run: no_peer_join,
    },
    CheckDef {
        name: "nat.ring",
        requirements: &["NAT-3", "ID-3"],
        subject: Subject::None,
        args: &[],
        doc: "every running instance reports P1 and S1 of the ideal ring of the peers' public identities (relay fronts outside, public mappings behind the NAT), queried at its own address",
        run: ring,
    },
];

fn lab(cx: &Ctx, check: &str) -> Result<Arc<NatLab>, Stop> {
    cx.nat
        .clone()
        .ok_or_else(|| Stop::Error(format!("{check} needs topology.nat")))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The puppet that received `r`: the one whose advertised address (or
/// socket) it arrived at.
fn receiver(cx: &Ctx, r: &Received) -> Option<(String, Arc<Puppet>)> {
    cx.puppets
        .iter()
        .find(|(_, p)| p.addr() == r.local || p.socket_addr() == r.local)
        .map(|(n, p)| (n.clone(), p.clone()))
}

fn parse_lenient(bytes: &[u8], transport: p2psip_wire::Transport) -> Option<Message<'_>> {
    if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') || looks_like_stun(bytes) {
        return None;
    }
    let opts = ParseOptions {
        max_size: usize::MAX,
        ..ParseOptions::lenient()
            .with_transport(transport)
            .without_peer_id_check()
    };
    parse(bytes, opts).ok().map(|p| p.message)
}

/// The first Via line of raw bytes, for findings.
fn via_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("via:") || l.starts_with("v:")
        })
        .unwrap_or("(no Via)")
        .trim()
        .to_string()
}

/// Packets `real` sent that a harness socket (a puppet, or the relay)
/// received, in order.
fn sent_by(cx: &Ctx, real: SocketAddr) -> Vec<Packet> {
    cx.rec
        .packets()
        .into_iter()
        .filter(|p| p.dir == Dir::Received && p.from == real)
        .collect()
}

fn node_real(cx: &Ctx, name: &str) -> Result<SocketAddr, Stop> {
    cx.node(name)
        .map(|n| n.addr())
        .ok_or_else(|| Stop::Error(format!("no instance {name}")))
}

fn rport_in_requests<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let node = input.str("node").unwrap_or("iut1").to_string();
        let real = node_real(cx, &node)?;
        let mut n = 0;
        for p in sent_by(cx, real) {
            let Some(m) = parse_lenient(&p.bytes, p.transport) else {
                continue;
            };
            if !m.is_request() {
                continue;
            }
            n += 1;
            if m.top_via().is_none_or(|v| v.rport == Rport::Absent) {
                return Err(finding(
                    "NAT-1",
                    format!("rport in the top Via of every request {node} sends (RFC 3581)"),
                    format!(
                        "{} at {:.1} ms: {}",
                        p2psip_wire::summary(&m),
                        cx.rec.ms(p.at),
                        via_line(&p.bytes)
                    ),
                ));
            }
        }
        if n == 0 {
            return Err(Stop::Error(format!(
                "nat.rport-in-requests: {node} sent no request a harness socket saw"
            )));
        }
        cx.rec.note(format!(
            "nat.rport-in-requests: {n} requests from {node}, every top Via has rport"
        ));
        Ok(())
    })
}

fn via_received_rport<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "nat.via-received-rport")?.clone();
        let from = input.str("from").unwrap_or("iut1").to_string();
        let (pname, pup) = receiver(cx, &r).ok_or_else(|| {
            Stop::Error("nat.via-received-rport: the subject was not received by a puppet".into())
        })?;
        // The source the responder saw the request come from.
        let source = match &cx.nat {
            Some(nat) => nat
                .observed_source(&pname, &from)
                .ok_or_else(|| Stop::Error(format!("{pname} has no mapping towards {from}")))?,
            None => pup.addr(),
        };
        let answer_from = cx.peer_seen_by(&pname, &from)?.addr;
        let Some(v) = r.message.as_ref().and_then(|m| m.top_via()) else {
            return Err(finding("NAT-2", "a response with a Via", r.describe()));
        };
        if r.from != answer_from {
            let direct = cx.node(&from).is_some_and(|n| n.addr() == r.from);
            return Err(finding(
                "NAT-2",
                format!(
                    "the response sent to the request's source {source}, from the socket the request arrived on (so {pname} gets it from {answer_from})"
                ),
                if direct {
                    format!(
                        "it came straight from {from}'s socket {} to {}: sent to the Via's address, not to the observed source (behind a real NAT that private address is unreachable); {}",
                        r.from,
                        r.local,
                        via_line(&r.bytes)
                    )
                } else {
                    format!("it came from {}; {}", r.from, via_line(&r.bytes))
                },
            ));
        }
        if v.received != Some(source.ip()) {
            return Err(finding(
                "NAT-2",
                format!(
                    "received={} in the top Via (the source IP {from} observed; always added, RFC 3581 §4)",
                    source.ip()
                ),
                match v.received {
                    Some(x) => format!("received={x}: {}", via_line(&r.bytes)),
                    None => format!("no received parameter: {}", via_line(&r.bytes)),
                },
            ));
        }
        if v.rport != Rport::Filled(source.port()) {
            return Err(finding(
                "NAT-2",
                format!(
                    "rport={} in the top Via (the source port {from} observed)",
                    source.port()
                ),
                via_line(&r.bytes),
            ));
        }
        Ok(())
    })
}

fn public_identity<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "nat.public-identity")?.clone();
        let nat = lab(cx, "nat.public-identity")?;
        if r.from.ip() != nat.public_ip() {
            return Err(Stop::Error(format!(
                "nat.public-identity: the subject came from {}, not through the NAT ({})",
                r.from,
                nat.public_ip()
            )));
        }
        let sender = nat
            .name_of_addr(r.from)
            .unwrap_or_else(|| "the sender".into());
        let observed = Peer::at(r.from);
        let Some(m) = r.message.as_ref() else {
            return Err(finding("NAT-3", "a SIP message", r.describe()));
        };
        let describe = |p: &Peer| -> String {
            match nat.name_of_addr(p.addr) {
                Some(n) if p.addr != r.from => format!("{} ({n})", p.addr),
                _ => p.addr.to_string(),
            }
        };
        let expected = format!(
            "{sender}'s identity is the address the NAT gives it, {}: Peer-ID {} (ID-2 of it) in its DHT-PeerID and Peer URIs",
            r.from, observed.id
        );
        let Some(me) = m.sender_peer() else {
            return Err(finding(
                "NAT-3",
                expected,
                format!("no DHT-PeerID in {}", r.describe()),
            ));
        };
        if me != observed {
            return Err(finding(
                "NAT-3",
                expected,
                format!(
                    "DHT-PeerID names {} with Peer-ID {} in {}",
                    describe(&me),
                    me.id,
                    p2psip_wire::summary(m)
                ),
            ));
        }
        if m.is_request()
            && matches!(
                Class::of_request(m),
                Class::Join | Class::Notify | Class::Leave
            )
        {
            let uris = [
                ("To", m.to().and_then(|t| t.addr.uri.peer())),
                ("From", m.from().and_then(|t| t.addr.uri.peer())),
                (
                    "Contact",
                    m.contact_addrs().next().and_then(|c| c.addr.uri.peer()),
                ),
            ];
            for (h, p) in uris {
                if let Some(p) = p
                    && p != observed
                {
                    return Err(finding(
                        "NAT-3",
                        expected,
                        format!("{h} names {} (Peer-ID {})", describe(&p), p.id),
                    ));
                }
            }
        }
        Ok(())
    })
}

fn options_first<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "nat.options-first")?.clone();
        let (pname, pup) = receiver(cx, &r).ok_or_else(|| {
            Stop::Error("nat.options-first: the subject was not received by a puppet".into())
        })?;
        let earlier: Vec<Received> = pup
            .inbox()
            .all()
            .into_iter()
            .filter(|x| x.idx < r.idx && x.from == r.from && x.is_request())
            .collect();
        let options = earlier.iter().find(|x| {
            x.message
                .as_ref()
                .is_some_and(|m| m.method().is_some_and(|m| m.as_str() == "OPTIONS"))
        });
        let Some(opt) = options else {
            return Err(finding(
                "JOIN-10",
                format!(
                    "an OPTIONS to its bootstrap {pname} before the join, to learn its address from the answer's Via (JOIN-10)"
                ),
                match earlier.first() {
                    Some(x) => format!("the first request to {pname} was {}", x.describe()),
                    None => format!("the join was the first request to {pname}"),
                },
            ));
        };
        let me = r.message.as_ref().and_then(|m| m.sender_peer());
        if me.map(|p| p.addr) != Some(opt.from) {
            return Err(finding(
                "JOIN-10",
                format!(
                    "the join uses the address the OPTIONS answer reported in received/rport, {}",
                    opt.from
                ),
                match me {
                    Some(p) => format!("its DHT-PeerID names {}", p.addr),
                    None => "no DHT-PeerID".to_string(),
                },
            ));
        }
        Ok(())
    })
}

/// Reads `name`'s links with a node query to its own address.
async fn read_links(cx: &Ctx, name: &str) -> Result<Reading, Stop> {
    let id = cx.peer_of(name)?.id;
    let addr = cx.contact_of(name)?;
    let deadline = cx.until(Duration::from_millis(1500));
    Ok(oracle::read(&cx.observer, Peer { id, addr }, cx.params.t1(), deadline).await)
}

fn link_peers(r: &Reading) -> Vec<(String, Peer)> {
    match r {
        Reading::Links(l) => l.all.iter().map(|(t, p, _)| (t.to_string(), *p)).collect(),
        Reading::NoAnswer => Vec::new(),
    }
}

fn show_links(cx: &Ctx, links: &[(String, Peer)]) -> String {
    if links.is_empty() {
        return "no links".into();
    }
    links
        .iter()
        .map(|(t, p)| format!("{t} = {}", cx.show(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn known_as_public<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let nat = lab(cx, "nat.known-as-public")?;
        let node = input.str("node").unwrap_or("ref1").to_string();
        let peer = input.str("peer").unwrap_or("iut1").to_string();
        let private = Peer::at(node_real(cx, &peer)?);
        let public = nat.public_of(&peer).map(Peer::at).ok_or_else(|| {
            finding(
                "NAT-3",
                format!("{peer} sends through the NAT"),
                "it has no public mapping",
            )
        })?;
        let reading = read_links(cx, &node).await?;
        if matches!(reading, Reading::NoAnswer) {
            return Err(Stop::Error(format!("{node} did not answer a node query")));
        }
        let links = link_peers(&reading);
        let expected = format!(
            "{node} lists {peer} by its public address {} (Peer-ID {})",
            public.addr, public.id
        );
        if let Some((t, _)) = links.iter().find(|(_, p)| p.id == private.id) {
            return Err(finding(
                "NAT-3",
                expected,
                format!(
                    "{node}'s {t} is {peer}'s private address {} (the Peer-ID it would have without the NAT)",
                    private.addr
                ),
            ));
        }
        if !links
            .iter()
            .any(|(t, p)| *p == public && (t == "P1" || t.starts_with('S')))
        {
            return Err(finding("NAT-3", expected, show_links(cx, &links)));
        }
        Ok(())
    })
}

/// The names in an argument that is a string or an array of strings.
fn names(input: &CheckInput, key: &str) -> Option<Vec<String>> {
    match input.args.get(key)? {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn silence<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let nat = lab(cx, "nat.silence")?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let real = node_real(cx, &node)?;
        if !nat.is_inside(&node) {
            return Err(Stop::Error(format!(
                "nat.silence: {node} is not behind the NAT"
            )));
        }
        let k = Duration::from_millis(cx.params.keepalive_ms);
        let window = input
            .int("window_ms")
            .map_or(k * 10, |w| Duration::from_millis(w.max(1) as u64));
        let bound = input
            .int("max_ms")
            .map_or(k + k / 10, |w| Duration::from_millis(w.max(1) as u64));
        let to = names(input, "to").unwrap_or_else(|| {
            cx.nodes
                .iter()
                .filter(|n| n.is_running() && n.name != node)
                .map(|n| n.name.clone())
                .chain(cx.members.iter().cloned())
                .filter(|n| !nat.is_inside(n))
                .collect()
        });
        if to.is_empty() {
            return Err(Stop::Error("nat.silence: no neighbour to measure".into()));
        }
        let now = Instant::now();
        let start = now.checked_sub(window).unwrap_or(now);
        let log = nat.log();
        let mut report = Vec::new();
        for t in &to {
            let front = nat
                .front_of(t)
                .ok_or_else(|| Stop::Error(format!("nat.silence: {t} is not outside the NAT")))?;
            let mut prev = start;
            let mut worst = (Duration::ZERO, start, start);
            let mut sent = 0;
            for (at, e) in &log {
                if *at < start
                    || e.src != real
                    || e.dst != front
                    || e.direction != Direction::Outbound
                {
                    continue;
                }
                sent += 1;
                let gap = at.saturating_duration_since(prev);
                if gap > worst.0 {
                    worst = (gap, prev, *at);
                }
                prev = *at;
            }
            let tail = now.saturating_duration_since(prev);
            if tail > worst.0 {
                worst = (tail, prev, now);
            }
            report.push(format!(
                "{t}: {sent} packets, longest silence {} ms",
                ms(worst.0)
            ));
            if worst.0 > bound {
                return Err(finding(
                    "NAT-5",
                    format!(
                        "{node}, behind the NAT, sends something to its neighbour {t} at least once per keep-alive interval K = {} ms: the longest outbound silence of the flow is at most K + 10% = {} ms (C-NAT4) over the last {} ms",
                        ms(k),
                        ms(bound),
                        ms(window)
                    ),
                    format!(
                        "nothing from {node} to {t} for {} ms (from {:.0} to {:.0} ms; {sent} packets in the window); the NAT's mapping timeout is {} ms",
                        ms(worst.0),
                        cx.rec.ms(worst.1),
                        cx.rec.ms(worst.2),
                        ms(nat.mapping_timeout())
                    ),
                ));
            }
        }
        // C-NAT4, second half: nothing became unreachable.
        let publics: BTreeSet<SocketAddr> = log
            .iter()
            .filter(|(_, e)| e.src == real)
            .filter_map(|(_, e)| match e.decision {
                Decision::Forwarded { from, .. } if e.direction == Direction::Outbound => {
                    Some(from)
                }
                _ => None,
            })
            .collect();
        if let Some((at, e)) = log.iter().find(|(at, e)| {
            *at >= start
                && e.direction == Direction::Inbound
                && publics.contains(&e.dst)
                && matches!(
                    e.decision,
                    Decision::Dropped(RelayDrop::Nat(DropReason::Expired | DropReason::NoMapping))
                )
        }) {
            return Err(finding(
                "NAT-5",
                format!("{node}'s mappings stay alive: nothing sent to it is lost (C-NAT4)"),
                format!(
                    "at {:.0} ms the NAT dropped a packet from {} to {node}'s old public address {}: {}",
                    cx.rec.ms(*at),
                    nat.name_of_addr(e.src).unwrap_or_else(|| e.src.to_string()),
                    e.dst,
                    crate::natlab::lab::entry_text(e)
                ),
            ));
        }
        cx.rec.note(format!(
            "nat.silence ({node}, bound {} ms): {}",
            ms(bound),
            report.join("; ")
        ));
        Ok(())
    })
}

/// The join requests `real` sent after `since`, with when and as whom.
fn joins_since(cx: &Ctx, real: SocketAddr, since: Instant) -> Vec<(Instant, Option<Peer>)> {
    sent_by(cx, real)
        .into_iter()
        .filter(|p| p.at >= since)
        .filter_map(|p| {
            let m = parse_lenient(&p.bytes, p.transport)?;
            (m.is_request() && Class::of_request(&m) == Class::Join)
                .then(|| (p.at, m.sender_peer()))
        })
        .collect()
}

fn rebinding<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let nat = lab(cx, "nat.rebinding")?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let real = node_real(cx, &node)?;
        let rb = nat
            .rebinds()
            .into_iter()
            .rev()
            .find(|r| r.node == node)
            .ok_or_else(|| Stop::Error(format!("nat.rebinding: no nat-rebind of {node} before")))?;
        let t = cx.params.stabilize();
        let within = input
            .int("within_ms")
            .map_or(t + cx.timer_f(), |w| Duration::from_millis(w.max(1) as u64));
        let old = Peer::at(rb.old);
        let new = Peer::at(rb.new);
        // A: the join with the new ID.
        let joined = loop {
            let found = joins_since(cx, real, rb.at)
                .into_iter()
                .find(|(_, p)| *p == Some(new));
            if let Some((at, _)) = found {
                break at;
            }
            if Instant::now() >= (rb.at + within).min(cx.deadline) {
                let joins = joins_since(cx, real, rb.at);
                return Err(finding(
                    "NAT-6",
                    format!(
                        "after the NAT moved {node} from {} to {}, a join with the Peer-ID of the new address ({}) within T + F = {} ms",
                        rb.old,
                        rb.new,
                        new.id,
                        ms(within)
                    ),
                    if joins.is_empty() {
                        format!("no join from {node} since the rebinding")
                    } else {
                        format!(
                            "joins since, as: {}",
                            joins
                                .iter()
                                .map(|(_, p)| p
                                    .map_or("no DHT-PeerID".into(), |p| p.addr.to_string()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        cx.rec.note(format!(
            "nat.rebinding: {node} joined with its new Peer-ID {:.0} ms after the rebinding",
            ms(joined.saturating_duration_since(rb.at))
        ));
        // B: the old ID disappears, the new one is in the ring.
        let others: Vec<String> = cx
            .nodes
            .iter()
            .filter(|n| n.is_running() && n.name != node)
            .map(|n| n.name.clone())
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        // The old address is dead from the rebinding on, and a leave sent
        // with the old Peer-ID from the new address is refused (ID-7), so
        // the others drop the old ID by failure detection: C-L3's T + F
        // after the rebinding. Then the ring converges with the new ID in
        // C-G6's (log2|L| + 3)·T.
        let live = cx.live_peers().len().max(2) as f64;
        let converge = t.mul_f64(live.log2() + 3.0);
        let settle = input.int("settle_ms").map_or_else(
            || t + cx.timer_f() + converge,
            |w| Duration::from_millis(w.max(1) as u64),
        );
        let until = (rb.at + settle).min(cx.deadline);
        loop {
            let mut stale = None;
            let mut seen_new = false;
            let mut all = Vec::new();
            // Its public address now: the rebinding's, or a later one if
            // that mapping expired meanwhile and it learned its address again.
            let current = nat.public_of(&node).map(Peer::at).unwrap_or(new);
            for o in &others {
                let links = link_peers(&read_links(cx, o).await?);
                if let Some((t, _)) = links.iter().find(|(_, p)| p.id == old.id) {
                    stale.get_or_insert(format!("{o}'s {t}"));
                }
                seen_new |= links.iter().any(|(_, p)| *p == current);
                all.push(format!("{o}: {}", show_links(cx, &links)));
            }
            if stale.is_none() && seen_new {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(finding(
                    "NAT-6",
                    format!(
                        "within T + F + (log2|L| + 3)·T = {} ms of the rebinding (failure detection of the dead old address, then convergence), {node}'s old Peer-ID ({}) is in no list and the one of its public address now ({}) is in the ring",
                        ms(settle),
                        old.id,
                        nat.public_of(&node).map_or(new.id, |a| Peer::at(a).id)
                    ),
                    match stale {
                        Some(s) => format!("{s} still names the old ID; {}", all.join("; ")),
                        None => format!("no node lists the new ID: {}", all.join("; ")),
                    },
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

fn stun_mapped<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "nat.stun-mapped")?.clone();
        let from = input.str("from").unwrap_or("iut1").to_string();
        let (pname, pup) = receiver(cx, &r).ok_or_else(|| {
            Stop::Error("nat.stun-mapped: the subject was not received by a puppet".into())
        })?;
        let sent = pup
            .last_sent()
            .ok_or_else(|| Stop::Error(format!("{pname} sent no STUN request")))?;
        let req = p2psip_stun::decode(&sent.bytes)
            .map_err(|e| Stop::Error(format!("{pname}'s last message is not STUN: {e}")))?;
        let source = match &cx.nat {
            Some(nat) => nat
                .observed_source(&pname, &from)
                .ok_or_else(|| Stop::Error(format!("{pname} has no mapping towards {from}")))?,
            None => pup.addr(),
        };
        let expected = format!(
            "a Binding success response from the SIP port {} with transaction ID {} and XOR-MAPPED-ADDRESS {source} (the source {from} observed)",
            sent.to,
            hex::encode(req.transaction_id.as_bytes())
        );
        let resp = match p2psip_stun::decode(&r.bytes) {
            Ok(m) => m,
            Err(e) => return Err(finding("NAT-7", expected, format!("undecodable STUN: {e}"))),
        };
        let mut wrong = Vec::new();
        if resp.method != p2psip_stun::Method::BINDING
            || resp.class != p2psip_stun::Class::SuccessResponse
        {
            wrong.push(format!("a {:?} {:?}", resp.class, resp.method));
        }
        if resp.transaction_id != req.transaction_id {
            wrong.push(format!(
                "transaction ID {}",
                hex::encode(resp.transaction_id.as_bytes())
            ));
        }
        match resp.xor_mapped_address() {
            Some(a) if a == source => {}
            Some(a) => wrong.push(format!(
                "XOR-MAPPED-ADDRESS {a}{}",
                match cx.nat.as_ref().and_then(|n| n.name_of_addr(a)) {
                    Some(n) => format!(" ({n})"),
                    None => String::new(),
                }
            )),
            None => wrong.push("no XOR-MAPPED-ADDRESS".into()),
        }
        if r.from != sent.to {
            wrong.push(format!("sent from {}", r.from));
        }
        if !wrong.is_empty() {
            return Err(finding("NAT-7", expected, wrong.join(", ")));
        }
        Ok(())
    })
}

fn no_peer_join<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let nat = lab(cx, "nat.no-peer-join")?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let real = node_real(cx, &node)?;
        let expected = format!(
            "{node}, behind a NAT with address-and-port-dependent mapping, finds out (its packets to different destinations leave from different public ports) and does not join as a peer (NAT-8: it uses a peer as its adapter)"
        );
        if let Some((at, p)) = joins_since(cx, real, cx.rec.t0()).into_iter().next() {
            return Err(finding(
                "NAT-8",
                expected,
                format!(
                    "it sent a join at {:.0} ms{}",
                    cx.rec.ms(at),
                    p.map(|p| format!(" as {}", p.addr)).unwrap_or_default()
                ),
            ));
        }
        let publics: BTreeSet<SocketAddr> = nat
            .log()
            .iter()
            .filter(|(_, e)| e.src == real && e.direction == Direction::Outbound)
            .filter_map(|(_, e)| match e.decision {
                Decision::Forwarded { from, .. } => Some(from),
                _ => None,
            })
            .collect();
        if publics.len() < 2 {
            return Err(finding(
                "NAT-8",
                expected,
                format!(
                    "it did not join, but never compared: the NAT gave it {} public endpoint(s) ({})",
                    publics.len(),
                    publics
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    })
}

fn ring<'a>(cx: &'a mut Ctx, _input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let names: Vec<String> = cx
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.name.clone())
            .collect();
        let mut ids = Vec::new();
        for n in &names {
            ids.push((n.clone(), cx.peer_of(n)?));
        }
        let ideal = Ring::new(ids.iter().map(|(_, p)| p.id));
        let expected = "every node's P1 and S1 are those of the ideal ring of the peers' public identities (relay fronts outside, public mappings behind the NAT)";
        for (n, me) in &ids {
            let Reading::Links(l) = read_links(cx, n).await? else {
                return Err(finding(
                    "NAT-3",
                    expected,
                    format!("{n} did not answer a node query"),
                ));
            };
            let want_p = ideal.predecessor_of(&me.id);
            let want_s = ideal.next_after(&me.id);
            let got_p = l.pred.map(|p| p.id);
            let got_s = l.succ.first().map(|p| p.id);
            if got_p != want_p || got_s != want_s {
                let show =
                    |id: Option<p2psip_wire::Id>| id.map_or("none".into(), |i| cx.name_of_id(&i));
                return Err(finding(
                    "NAT-3",
                    expected,
                    format!(
                        "{n} reports P1 = {}, S1 = {}; the ideal ring has P1 = {}, S1 = {}",
                        show(got_p),
                        show(got_s),
                        show(want_p),
                        show(want_s)
                    ),
                ));
            }
        }
        Ok(())
    })
}
