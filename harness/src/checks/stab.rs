/*!
Stabilisation checks (PROFILE §6, STAB-1..STAB-6; CHECKS.md C-L1..C-L4,
C-G1..C-G7), measured from outside:

- `stab.periodic-queries`: a puppet that is the node's successor times
  the node's queries for its ID (STAB-1).
- `stab.finger-queries`: puppets see the node query finger starts
  n + 2^i for every distinct finger beyond S1 (STAB-3).
- `stab.converges` / `stab.stays-ideal`: convergence time (C-G6) and
  stability (C-G7) over snapshots of every live peer.
- `stab.forgets`: a killed peer leaves every list within the C-L3
  bounds and does not come back.
- `stab.sane-throughout`: C-L1, C-L2 and C-L4 on every node, polled
  while the ring changes.
- `stab.lifetimes`: every link's `expires` is > 0 and no later than the
  lifetime the linked peer advertises (C-L4, STAB-6).

Timing checks take their bounds from the case's parameters (T, the
fix-fingers interval, F = 64·T1) and report what they measured in the
case's notes.
*/

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use p2psip_wire::{Class, Id, LinkKind, Peer};

use super::links::check_sane;
use super::ring::zave_and_ideal;
use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Finding, NodeState, Stop};
use crate::oracle::{Reading, Snapshot};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "stab.periodic-queries",
        requirements: &["STAB-1"],
        subject: Subject::None,
        args: &["puppet", "node", "intervals"],
        doc: "over `intervals` (6) stabilisation intervals T from now, `puppet` (the node's S1) receives node queries for its own ID from `node` (iut1): mean gap <= 1.25·T + 50 ms, no gap above 2·T",
        run: periodic_queries,
    },
    CheckDef {
        name: "stab.finger-queries",
        requirements: &["STAB-3"],
        subject: Subject::None,
        args: &["node", "within_ms"],
        doc: "within `within_ms` (default 2 fix-fingers intervals + F), for every distinct ideal finger f of `node` (iut1) whose starts are not all in (node, S1], f itself (when a puppet; else any puppet) receives from `node` a query whose key is a start node + 2^i with succ_L(start) = f: the node's lookup followed any 302s to f (puppets must be members to count in L)",
        run: finger_queries,
    },
    CheckDef {
        name: "stab.converges",
        requirements: &["STAB-5", "C-G1", "C-G2", "C-G3", "C-G4", "C-G5", "C-G6"],
        subject: Subject::None,
        args: &["slack_ms", "poll_ms"],
        doc: "snapshots show the ideal ring (as `ring.converged`) within (log2 |L| + 3)·T (+ `slack_ms`, 300) of the last membership event: the check's start, or a kill + F when later (C-G6)",
        run: converges,
    },
    CheckDef {
        name: "stab.quiescent",
        requirements: &["STAB-5", "C-G5"],
        subject: Subject::None,
        args: &[],
        doc: "two snapshots T apart show every node with the same P1, successors and fingers, and the second shows the ideal ring (CHECKS.md: a quiescent ring); for `wait-until` before checks that compare snapshots",
        run: quiescent,
    },
    CheckDef {
        name: "stab.stays-ideal",
        requirements: &["STAB-5", "C-G7"],
        subject: Subject::None,
        args: &["intervals", "poll_ms"],
        doc: "every snapshot for `intervals` (10) stabilisation intervals shows the ideal ring (C-G7)",
        run: stays_ideal,
    },
    CheckDef {
        name: "stab.forgets",
        requirements: &["STAB-4", "C-L3"],
        subject: Subject::None,
        args: &["peer", "slack_ms", "hold_ms"],
        doc: "`peer` (a killed node) is gone from every running node's P1 and S1 by kill + T + F, from Sj by kill + j·T + F (learnt through S1's reports) and from F links by kill + fix-fingers + F (each + `slack_ms`, 500), and stays gone for `hold_ms` (2·T) after the last bound (C-L3)",
        run: forgets,
    },
    CheckDef {
        name: "stab.sane-throughout",
        requirements: &["QUERY-5", "WIRE-5", "C-L1", "C-L2", "C-L4"],
        subject: Subject::None,
        args: &["for_ms", "poll_ms"],
        doc: "for `for_ms` (3000), every 200 a running node gives to a node query has an ordered successor list, a sane P1 and expires > 0 on every link (C-L1, C-L2, C-L4), while the ring changes",
        run: sane_throughout,
    },
    CheckDef {
        name: "stab.lifetimes",
        requirements: &["STAB-6", "WIRE-5", "C-L4"],
        subject: Subject::None,
        args: &["node"],
        doc: "every DHT-Link `node` (default every running node) reports has 0 < expires <= the lifetime the linked peer advertises (its DHT-PeerID expires; the case's peer_expires_s for puppets)",
        run: lifetimes,
    },
];

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// T of the case.
fn t_stab(cx: &Ctx) -> Duration {
    Duration::from_millis(cx.params.stabilize_ms)
}

fn t_fix(cx: &Ctx) -> Duration {
    Duration::from_millis(cx.params.fix_fingers_ms)
}

fn node_arg(cx: &Ctx, input: &CheckInput) -> Result<(String, Peer), Stop> {
    let name = input.str("node").unwrap_or("iut1").to_string();
    let p = cx.peer_of(&name)?;
    Ok((name, p))
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

fn periodic_queries<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let (name, node) = node_arg(cx, input)?;
        let Some(pname) = input.str("puppet").map(str::to_string) else {
            return Err(Stop::Error(
                "stab.periodic-queries needs args.puppet".into(),
            ));
        };
        let puppet = cx.puppet(&pname)?;
        let t = t_stab(cx);
        let n = input.int("intervals").unwrap_or(6).clamp(2, 100) as u32;
        let start = Instant::now();
        let end = start + t * n;
        if end > cx.deadline {
            return Err(Stop::Error(format!(
                "stab.periodic-queries: {n} intervals of {} ms do not fit before the case deadline",
                ms(t)
            )));
        }
        sleep_until(end).await;
        // First transmission of every query transaction for the puppet's
        // own ID from the node, inside the window.
        let me = puppet.id();
        let mut firsts: BTreeMap<String, Instant> = BTreeMap::new();
        for r in puppet.inbox().all() {
            if r.from != node.addr {
                continue;
            }
            let Some(m) = r.message.as_ref().filter(|m| m.is_request()) else {
                continue;
            };
            if Class::of_request(m) != Class::Query
                || m.to().and_then(|t| t.addr.uri.peer_id()) != Some(me)
            {
                continue;
            }
            let Some(b) = m.top_via().and_then(|v| v.branch.as_ref()) else {
                continue;
            };
            firsts.entry(b.to_string()).or_insert(r.at);
        }
        let mut times: Vec<Instant> = firsts
            .into_values()
            .filter(|at| *at >= start && *at <= end)
            .collect();
        times.sort();
        let mut marks = vec![start];
        marks.extend(times.iter().copied());
        marks.push(end);
        let gaps: Vec<Duration> = marks.windows(2).map(|w| w[1] - w[0]).collect();
        let max = gaps.iter().copied().max().unwrap_or_default();
        let mean = if times.len() >= 2 {
            (times[times.len() - 1] - times[0]) / (times.len() as u32 - 1)
        } else {
            end - start
        };
        let offsets: Vec<String> = times.iter().map(|x| ms(*x - start).to_string()).collect();
        let seen = format!(
            "{} queries at [{}] ms of a {} ms window (mean gap {} ms, longest gap {} ms)",
            times.len(),
            offsets.join(", "),
            ms(end - start),
            ms(mean),
            ms(max)
        );
        cx.rec.note(format!("stab.periodic-queries: {seen}"));
        if max > t * 2 || mean > t * 5 / 4 + Duration::from_millis(50) {
            return Err(finding(
                "STAB-1",
                format!(
                    "{name} queries its successor {pname} for {pname}'s ID once per stabilisation interval (T = {} ms)",
                    ms(t)
                ),
                seen,
            ));
        }
        Ok(())
    })
}

fn finger_queries<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let (name, node) = node_arg(cx, input)?;
        let ring = cx.live_ring();
        let Some(s1) = ring.next_after(&node.id).filter(|s| *s != node.id) else {
            return Err(Stop::Error(
                "stab.finger-queries: the node has no live successor (declare puppets with member = true)"
                    .into(),
            ));
        };
        // Per distinct finger beyond S1: the starts whose query refreshes it.
        let mut need: BTreeMap<Id, Vec<(u8, Id)>> = BTreeMap::new();
        for i in 0..160u8 {
            let start = node.id.finger_start(i);
            let Some(f) = ring.successor(&start) else {
                continue;
            };
            if f == node.id || start.in_open_closed(&node.id, &s1) {
                continue;
            }
            need.entry(f).or_default().push((i, start));
        }
        if need.is_empty() {
            return Err(Stop::Error(format!(
                "stab.finger-queries: every finger of {name} is S1 or itself; place the puppets so that some finger lies beyond S1"
            )));
        }
        let within = input
            .int("within_ms")
            .map(|v| Duration::from_millis(v.max(0) as u64))
            .unwrap_or(t_fix(cx) * 2 + cx.timer_f());
        let end = cx.until(within);
        let puppets: Vec<_> = cx.puppets.iter().map(|(_, p)| p.clone()).collect();
        loop {
            // (receiver, key) of every query from the node.
            let mut keys: Vec<(Id, Id)> = Vec::new();
            for p in &puppets {
                for r in p.inbox().all() {
                    if r.from != node.addr {
                        continue;
                    }
                    if let Some(m) = r.message.as_ref().filter(|m| m.is_request())
                        && Class::of_request(m) == Class::Query
                        && let Some(k) = m.to().and_then(|t| t.addr.uri.peer_id())
                    {
                        keys.push((p.id(), k));
                    }
                }
            }
            // The lookup must reach the finger itself when it is a
            // puppet (it answers 200/404 there): the node followed the
            // 302s to the end.
            let is_puppet = |id: &Id| puppets.iter().any(|p| p.id() == *id);
            let missing: Vec<(&Id, &Vec<(u8, Id)>)> = need
                .iter()
                .filter(|(f, starts)| {
                    !starts.iter().any(|(_, s)| {
                        keys.iter()
                            .any(|(at, k)| k == s && (at == *f || !is_puppet(f)))
                    })
                })
                .collect();
            if missing.is_empty() {
                cx.rec.note(format!(
                    "stab.finger-queries: {name} queried a start of each of its {} distinct fingers beyond S1",
                    need.len()
                ));
                return Ok(());
            }
            if Instant::now() >= end {
                let (f, starts) = missing[0];
                let idx: Vec<String> = starts.iter().map(|(i, _)| i.to_string()).collect();
                let fingers = keys
                    .iter()
                    .filter_map(|(at, k)| {
                        (0..160u8)
                            .find(|i| node.id.finger_start(*i) == *k)
                            .map(|i| format!("n+2^{i} at {}", cx.name_of_id(at)))
                    })
                    .collect::<std::collections::BTreeSet<_>>();
                return Err(finding(
                    "STAB-3",
                    format!(
                        "within {} ms, {name} refreshes its finger {} with a query for one of its starts {name} + 2^i, i in [{}], that reaches it (through any 302s)",
                        ms(within),
                        cx.name_of_id(f),
                        idx.join(", ")
                    ),
                    format!(
                        "{} queries from {name} reached the puppets; finger starts among their keys: [{}]",
                        keys.len(),
                        fingers.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The last kill or leave of the case, if any.
fn last_departure(cx: &Ctx) -> Option<(Instant, bool)> {
    cx.nodes
        .iter()
        .filter_map(|n| match n.state {
            NodeState::Killed(at) => Some((at, true)),
            NodeState::Left(at) => Some((at, false)),
            _ => None,
        })
        .max_by_key(|(at, _)| *at)
}

fn with_prefix(stop: Stop, what: &str) -> Stop {
    match stop {
        Stop::Fail(mut f) => {
            f.expected = format!("{what}: {}", f.expected);
            Stop::Fail(f)
        }
        other => other,
    }
}

fn converges<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let t = t_stab(cx);
        let n = cx.live_ring().len().max(1);
        let rounds = (n as f64).log2() + 3.0;
        let bound = t.mul_f64(rounds);
        let slack = Duration::from_millis(input.int("slack_ms").unwrap_or(300).max(0) as u64);
        let poll =
            Duration::from_millis(input.int("poll_ms").unwrap_or(100).clamp(10, 2000) as u64);
        let now = Instant::now();
        let (origin, why) = match last_departure(cx) {
            Some((at, true)) if at + cx.timer_f() > now => {
                (at + cx.timer_f(), "the kill + F (the failure's detection)")
            }
            _ => (now, "the last membership step"),
        };
        let end = origin + bound + slack;
        let mut tries = 0;
        loop {
            tries += 1;
            let snap = cx.snapshot_live(None).await;
            match zave_and_ideal(cx, &snap) {
                Ok(()) => {
                    let took = Instant::now().saturating_duration_since(origin);
                    cx.rec.note(format!(
                        "stab.converges: ideal after {} ms from {why} (bound (log2 {n} + 3)·T = {} ms, {tries} snapshots)",
                        ms(took),
                        ms(bound)
                    ));
                    return Ok(());
                }
                Err(Stop::Fail(mut f)) => {
                    if Instant::now() + poll >= end || Instant::now() + poll >= cx.deadline {
                        f.expected = format!(
                            "convergence within (log2 {n} + 3)·T = {} ms (+{} ms) of {why} (C-G6): {}",
                            ms(bound),
                            ms(slack),
                            f.expected
                        );
                        f.actual = format!("{} (still after {tries} snapshots)", f.actual);
                        return Err(Stop::Fail(f));
                    }
                }
                Err(other) => return Err(other),
            }
            tokio::time::sleep(poll).await;
        }
    })
}

type Summary = (Option<Id>, Vec<Id>, Vec<(u8, Id)>);

fn summaries(snap: &Snapshot) -> BTreeMap<String, Option<Summary>> {
    snap.nodes
        .iter()
        .map(|(name, _, r)| {
            let s = match r {
                Reading::Links(l) => Some((
                    l.pred.map(|p| p.id),
                    l.succ.iter().map(|p| p.id).collect(),
                    l.fingers.iter().map(|(i, p)| (*i, p.id)).collect(),
                )),
                Reading::NoAnswer => None,
            };
            (name.clone(), s)
        })
        .collect()
}

fn quiescent<'a>(cx: &'a mut Ctx, _input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let first = cx.snapshot_live(None).await;
        sleep_until(cx.until(t_stab(cx))).await;
        let second = cx.snapshot_live(None).await;
        super::ring::no_observer(cx, &second)?;
        if summaries(&first) != summaries(&second) {
            return Err(finding(
                "STAB-5",
                format!(
                    "a quiescent ring: two snapshots {} ms apart equal",
                    ms(t_stab(cx))
                ),
                format!(
                    "first: {}; then: {}",
                    super::ring::table(cx, &first),
                    super::ring::table(cx, &second)
                ),
            ));
        }
        zave_and_ideal(cx, &second)
    })
}

fn stays_ideal<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let t = t_stab(cx);
        let k = input.int("intervals").unwrap_or(10).clamp(1, 100) as u32;
        let poll =
            Duration::from_millis(input.int("poll_ms").unwrap_or(250).clamp(10, 5000) as u64);
        let start = Instant::now();
        let end = start + t * k;
        if end > cx.deadline {
            return Err(Stop::Error(format!(
                "stab.stays-ideal: {k} intervals of {} ms do not fit before the case deadline",
                ms(t)
            )));
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let snap = cx.snapshot_live(None).await;
            zave_and_ideal(cx, &snap).map_err(|e| {
                with_prefix(
                    e,
                    &format!(
                        "the ideal ring kept for {k}·T = {} ms of quiet (C-G7; broke after {} ms)",
                        ms(t * k),
                        ms(start.elapsed())
                    ),
                )
            })?;
            if Instant::now() + poll >= end {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        cx.rec.note(format!(
            "stab.stays-ideal: {tries} snapshots over {} ms, all ideal",
            ms(start.elapsed())
        ));
        Ok(())
    })
}

fn forgets<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let Some(pname) = input.str("peer").map(str::to_string) else {
            return Err(Stop::Error("stab.forgets needs args.peer".into()));
        };
        let Some(k) = cx.node(&pname).and_then(|n| match n.state {
            NodeState::Killed(at) | NodeState::Left(at) => Some(at),
            _ => None,
        }) else {
            return Err(Stop::Error(format!(
                "stab.forgets: {pname} is not a node the case killed"
            )));
        };
        let dead = cx.peer_of(&pname)?;
        let slack = Duration::from_millis(input.int("slack_ms").unwrap_or(500).max(0) as u64);
        let f = cx.timer_f();
        // P1 and S1: one interval to notice, F to time out. Sj (j > 1) is
        // learnt from S1's report, one more interval per hop
        // (docs/spec.md §14, C-L3 for deep successor entries).
        let depth = cx.params.successors.max(1);
        let bound_link = |kind: LinkKind, d: u8| -> Instant {
            match kind {
                LinkKind::F => k + t_fix(cx) + f + slack,
                LinkKind::S => k + t_stab(cx) * u32::from(d).clamp(1, depth) + f + slack,
                LinkKind::P => k + t_stab(cx) + f + slack,
            }
        };
        let bound_s = k + t_stab(cx) * depth + f + slack;
        let bound_f = k + t_fix(cx) + f + slack;
        let hold = input
            .int("hold_ms")
            .map(|v| Duration::from_millis(v.max(0) as u64))
            .unwrap_or(t_stab(cx) * 2);
        let end = bound_s.max(bound_f) + hold;
        if end > cx.deadline {
            return Err(Stop::Error(format!(
                "stab.forgets: the bounds ({} ms after the kill, plus {} ms) do not fit before the case deadline",
                ms(bound_s.max(bound_f) - k),
                ms(hold)
            )));
        }
        let mut gone_at: HashMap<String, Instant> = HashMap::new();
        loop {
            let snap = cx
                .snapshot_of(&cx.running_nodes(), Duration::from_secs(2))
                .await;
            let now = Instant::now();
            for (name, _, r) in &snap.nodes {
                let Reading::Links(l) = r else { continue };
                let found = l
                    .all
                    .iter()
                    .find(|(t, p, _)| p.id == dead.id && now > bound_link(t.kind, t.depth));
                if let Some((t, _, _)) = found {
                    let bound = bound_link(t.kind, t.depth);
                    let what = match t.kind {
                        LinkKind::F => "fix-fingers interval".to_string(),
                        LinkKind::S if t.depth > 1 => format!("{}·T", t.depth.min(depth as u8)),
                        _ => "T".to_string(),
                    };
                    return Err(Stop::Fail(
                        Finding::new(
                            "STAB-4",
                            format!(
                                "no live peer reports {pname} as {}{} {} ms after it was killed (C-L3: {what} + F + {} ms)",
                                t.kind.letter(),
                                t.depth,
                                ms(bound - k),
                                ms(slack)
                            ),
                            format!(
                                "{name} reports it as {}{} {} ms after the kill{}",
                                t.kind.letter(),
                                t.depth,
                                ms(now - k),
                                gone_at
                                    .get(name)
                                    .map(|g| format!(
                                        ", again (it was gone at {} ms)",
                                        ms(*g - k)
                                    ))
                                    .unwrap_or_default()
                            ),
                        )
                        .at(l.response.at),
                    ));
                }
                if !l.all.iter().any(|(_, p, _)| p.id == dead.id) {
                    gone_at.entry(name.clone()).or_insert(now);
                }
            }
            if now >= end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let last = gone_at.values().max().map(|g| ms(*g - k)).unwrap_or(0);
        cx.rec.note(format!(
            "stab.forgets: {pname} gone from every list {last} ms after the kill"
        ));
        Ok(())
    })
}

fn sane_throughout<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let span = Duration::from_millis(input.int("for_ms").unwrap_or(3000).max(0) as u64);
        let poll =
            Duration::from_millis(input.int("poll_ms").unwrap_or(150).clamp(10, 5000) as u64);
        let end = cx.until(span);
        let mut judged = 0usize;
        loop {
            let nodes = cx.running_nodes();
            let ring_len = cx.live_ring().len();
            let snap = cx.snapshot_of(&nodes, Duration::from_secs(2)).await;
            for (name, peer, r) in &snap.nodes {
                let Reading::Links(l) = r else { continue };
                if l.status != 200 {
                    continue;
                }
                check_sane(cx, name, peer, l, ring_len).map_err(|e| match e {
                    Stop::Fail(f) => Stop::Fail(f.at(l.response.at)),
                    other => other,
                })?;
                judged += 1;
            }
            if Instant::now() + poll >= end {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        cx.rec.note(format!(
            "stab.sane-throughout: {judged} answers judged, all sane"
        ));
        Ok(())
    })
}

fn lifetimes<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let all = cx.running_nodes();
        let snap = cx.snapshot_of(&all, Duration::from_secs(3)).await;
        // What each peer advertises: its DHT-PeerID expires.
        let mut advertised: HashMap<Id, u32> = HashMap::new();
        for (_, p) in &cx.puppets {
            advertised.insert(p.id(), p.identity().expires);
        }
        for (_, peer, r) in &snap.nodes {
            if let Reading::Links(l) = r
                && let Some(e) = l
                    .response
                    .message
                    .as_ref()
                    .and_then(|m| m.dht_peer_id())
                    .and_then(|d| d.expires)
            {
                advertised.insert(peer.id, e);
            }
        }
        let only = input.str("node");
        for (name, _, r) in &snap.nodes {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let Reading::Links(l) = r else {
                return Err(finding(
                    "QUERY-3",
                    format!("{name} answers a node query for its own ID"),
                    "no answer",
                ));
            };
            for (t, p, e) in &l.all {
                let Some(e) = e.filter(|e| *e > 0) else {
                    return Err(finding(
                        "WIRE-5",
                        format!(
                            "every DHT-Link of {name} with expires > 0 (C-L4: an expired entry is never reported, STAB-6)"
                        ),
                        format!(
                            "{}{} to {} with {}",
                            t.kind.letter(),
                            t.depth,
                            cx.show(p),
                            e.map_or("no expires".to_string(), |e| format!("expires={e}"))
                        ),
                    ));
                };
                if let Some(adv) = advertised.get(&p.id)
                    && e > adv + 1
                {
                    return Err(finding(
                        "STAB-6",
                        format!(
                            "{name}'s link to {} expires no later than that peer's advertised lifetime ({adv} s) (C-L4)",
                            cx.name_of_id(&p.id)
                        ),
                        format!("{}{} with expires={e}", t.kind.letter(), t.depth),
                    ));
                }
            }
        }
        Ok(())
    })
}
