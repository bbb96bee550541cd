/*!
The step interpreter: one function per step of the vocabulary
([`super::model::Step`]). Every wait is bounded by the step's own
`within_ms` and by the case deadline.
*/

use std::time::{Duration, Instant};

use p2psip_wire::build::{self, Link};
use p2psip_wire::{Class, LinkKind, LinkType, Transport};

use super::ctx::{Ctx, Finding, NodeState, Role, StepResult, Stop};
use super::load::StepAt;
use super::model::{
    AutoStep, CheckStep, CloseStep, ExpectStep, NodeStep, ReplyStep, SendStep, StartStep, Step,
    ViewStep,
};
use super::msg;
use crate::checks::{self, CheckInput};
use crate::iut::{Instance, Launch, StopMode, describe_status};
use crate::probe;
use crate::puppet::{Auto, Kind, Matcher, View};

/// Default wait of `expect`.
pub const DEFAULT_WITHIN: Duration = Duration::from_millis(2000);

/// Runs one step.
pub async fn run(cx: &mut Ctx, s: &StepAt) -> StepResult {
    cx.rec.log(format!(
        "step {} ({}) at line {}",
        cx.step_no,
        s.step.name(),
        s.line
    ));
    match &s.step {
        Step::Start(x) => start(cx, x, false).await,
        Step::Restart(x) => start(cx, x, true).await,
        Step::Kill(x) => kill(cx, x).await,
        Step::Leave(x) => leave(cx, x).await,
        Step::Alive(x) => {
            let mut args = toml::Table::new();
            args.insert("node".into(), x.node.clone().into());
            if let Some(w) = x.within_ms {
                args.insert("within_ms".into(), (w as i64).into());
            }
            if let Some(r) = &x.requirement {
                args.insert("requirement".into(), r.clone().into());
            }
            checks::run(
                cx,
                "node.alive",
                &CheckInput {
                    subject: None,
                    args,
                },
            )
            .await
        }
        Step::Send(x) => send(cx, x).await,
        Step::Expect(x) => expect(cx, x, false).await,
        Step::ExpectNone(x) => expect(cx, x, true).await,
        Step::Reply(x) => reply(cx, x).await,
        Step::Wait(x) => {
            let until = cx.until(Duration::from_millis(x.ms));
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
            Ok(())
        }
        Step::WaitUntil(x) => wait_until(cx, x).await,
        Step::Check(x) => {
            let input = check_input(cx, x)?;
            checks::run(cx, &x.check, &input).await
        }
        Step::Snapshot(x) => {
            cx.snapshot_live(x.name.as_deref()).await;
            Ok(())
        }
        Step::LookupAll(x) => {
            let mut args = toml::Table::new();
            if let Some(k) = x.keys {
                args.insert("keys".into(), i64::from(k).into());
            }
            checks::run(
                cx,
                "lookup.correct",
                &CheckInput {
                    subject: None,
                    args,
                },
            )
            .await
        }
        Step::View(x) => view(cx, x),
        Step::Auto(x) => auto(cx, x),
        Step::Close(x) => close(cx, x).await,
        Step::NatRebind(x) => crate::natlab::rebind(cx, x),
        Step::NatAdopt(x) => crate::natlab::adopt(cx, x),
        Step::Aor(x) => super::resource::aor_step(cx, x),
        Step::Register(x) => super::resource::register_step(cx, x).await,
    }
}

/// Names of the instances a step stops on purpose (not a crash).
pub fn stops(step: &Step) -> Vec<String> {
    match step {
        Step::Kill(x) | Step::Leave(x) => vec![x.node.clone()],
        Step::Restart(x) => x.targets(),
        _ => Vec::new(),
    }
}

fn tail(inst: &Instance, n: usize) -> String {
    let lines: Vec<String> = inst
        .logs()
        .tail(n)
        .into_iter()
        .map(|l| format!("    {}: {}", l.stream, l.text))
        .collect();
    if lines.is_empty() {
        "  (no output)".to_string()
    } else {
        format!("  last output lines:\n{}", lines.join("\n"))
    }
}

/// Waits for the OPTIONS probe of `name` to be answered (TXN-4), or the
/// instance to exit, or the ready timeout.
async fn wait_ready(cx: &mut Ctx, name: &str, timeout: Duration) -> StepResult {
    let node = cx
        .node(name)
        .ok_or_else(|| Stop::Error(format!("no node {name}")))?;
    let addr = node.addr();
    let deadline = cx.until(timeout);
    let interval = Duration::from_millis(100);
    let obs = cx.observer.clone();
    let result = match &node.instance {
        Some(inst) => {
            tokio::select! {
                r = probe::options(&obs, addr, deadline, interval) => r.map_err(|e| e.to_string()),
                st = inst.exited() => Err(format!("it exited ({}) before answering", describe_status(&st))),
            }
        }
        None => probe::options(&obs, addr, deadline, interval)
            .await
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(_) => Ok(()),
        Err(why) => {
            let logs = cx
                .node(name)
                .and_then(|n| n.instance.as_ref())
                .map(|i| tail(i, 15))
                .unwrap_or_default();
            Err(Stop::Error(format!(
                "{name} at {addr} never became ready (an OPTIONS probe answered 200, TXN-4) within {} ms: {why}\n{logs}",
                timeout.as_millis()
            )))
        }
    }
}

async fn start(cx: &mut Ctx, s: &StartStep, restart: bool) -> StepResult {
    for name in s.targets() {
        // As the node itself will know it (behind a NAT: a relay front).
        let boot = match &s.bootstrap {
            Some(b) if *b != name => Some(cx.peer_seen_by(&name, b)?),
            _ => None,
        };
        let (role, addr, external, running) = {
            let n = cx
                .node(&name)
                .ok_or_else(|| Stop::Error(format!("no node {name}")))?;
            (n.role, n.addr(), n.external, n.is_running())
        };
        if external {
            // The user runs it: only check that it answers.
            wait_ready(cx, &name, cx.env.iut.ready_timeout).await?;
            if let Some(n) = cx.node_mut(&name) {
                n.state = NodeState::Running;
            }
            continue;
        }
        if running {
            if !restart {
                return Err(Stop::Error(format!("{name} is already running")));
            }
            if let Some(inst) = cx.node_mut(&name).and_then(|n| n.instance.as_mut()) {
                inst.kill().await;
            }
        }
        let spec = match role {
            Role::Iut => cx.env.iut.clone(),
            Role::Reference => cx.env.reference.clone(),
        };
        let launch = Launch {
            label: name.clone(),
            addr,
            bootstrap: boot.filter(|b| b.addr != addr).map(|b| b.addr),
            advertise: cx.nat.as_ref().and_then(|n| n.advertise_of(&name)),
            params: cx.params.clone(),
            data_dir: cx.node(&name).and_then(|n| n.data_dir.clone()),
        };
        // An instance that exits at once, before answering, is started a
        // second time: a port another process grabbed between the
        // harness's check and the instance's bind must not cost a verdict.
        // A real crash at start crashes twice.
        for attempt in 1..=2 {
            let inst =
                Instance::spawn(&spec, &launch).map_err(|e| Stop::Error(format!("{name}: {e}")))?;
            cx.rec.note(format!(
                "{name} {} at {addr} (pid {}): {}",
                if restart || attempt > 1 {
                    "restarted"
                } else {
                    "started"
                },
                inst.pgid(),
                inst.argv.join(" ")
            ));
            let spawned = Instant::now();
            if let Some(n) = cx.node_mut(&name) {
                n.data_dir = Some(inst.data_dir().clone());
                n.instance = Some(inst);
                n.state = NodeState::Running;
            }
            if s.ready == Some(false) {
                break;
            }
            match wait_ready(cx, &name, spec.ready_timeout).await {
                Ok(()) => break,
                Err(e) => {
                    let quick_exit = spawned.elapsed() < Duration::from_secs(1)
                        && cx
                            .node(&name)
                            .and_then(|n| n.instance.as_ref())
                            .is_some_and(|i| i.exit_status().is_some());
                    if attempt == 2 || !quick_exit {
                        return Err(e);
                    }
                    cx.rec.note(format!(
                        "{name} exited at once before answering; starting it once more"
                    ));
                    if let Some(inst) = cx.node_mut(&name).and_then(|n| n.instance.as_mut()) {
                        inst.kill().await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    Ok(())
}

async fn kill(cx: &mut Ctx, s: &NodeStep) -> StepResult {
    let n = cx
        .node_mut(&s.node)
        .ok_or_else(|| Stop::Error(format!("no node {}", s.node)))?;
    if let Some(inst) = n.instance.as_mut() {
        inst.kill().await;
    }
    n.state = NodeState::Killed(Instant::now());
    cx.rec.note(format!("{} killed (SIGKILL)", s.node));
    Ok(())
}

async fn leave(cx: &mut Ctx, s: &NodeStep) -> StepResult {
    let within = Duration::from_millis(
        s.within_ms
            .unwrap_or(cx.timer_f().as_millis() as u64 + 2000),
    );
    let req = s
        .requirement
        .clone()
        .unwrap_or_else(|| "LEAVE-1".to_string());
    let role = cx.node(&s.node).map(|n| n.role);
    if role == Some(Role::Iut) && cx.env.iut.stop == StopMode::Sigkill {
        return Err(Stop::Skip(
            "the IUT file says stop = \"sigkill\": it has no graceful leave on SIGTERM".into(),
        ));
    }
    let n = cx
        .node_mut(&s.node)
        .ok_or_else(|| Stop::Error(format!("no node {}", s.node)))?;
    let mut graceful = true;
    if let Some(inst) = n.instance.as_mut() {
        graceful = inst.stop(StopMode::Sigterm, within).await.1;
    }
    n.state = NodeState::Left(Instant::now());
    if !graceful {
        return Err(Stop::Fail(Finding::new(
            req,
            format!(
                "{} leaves and exits within {} ms of SIGTERM",
                s.node,
                within.as_millis()
            ),
            "still running; killed",
        )));
    }
    cx.rec.note(format!("{} left (SIGTERM, exited)", s.node));
    Ok(())
}

async fn send(cx: &mut Ctx, s: &SendStep) -> StepResult {
    let puppet = cx.puppet(&s.from)?;
    let out = msg::outgoing(cx, s, &puppet)?;
    let gap = Duration::from_millis(s.gap_ms.unwrap_or(0));
    if let Err(e) = puppet
        .send_bytes(out.to, out.transport, &out.bytes, &s.segments, gap)
        .await
    {
        if out.transport == Transport::Tcp {
            return Err(cx.fail(
                format!(
                    "a TCP connection to {} (the IUT lists tcp in its transports)",
                    out.to
                ),
                format!("{e}"),
            ));
        }
        return Err(Stop::Error(format!("{} could not send: {e}", s.from)));
    }
    Ok(())
}

fn matcher(cx: &Ctx, s: &ExpectStep) -> Result<Matcher, Stop> {
    let puppet = cx.puppet(&s.at)?;
    let kind = if let Some(codes) = &s.response {
        let branches = if s.any_txn {
            Vec::new()
        } else {
            puppet
                .last_sent()
                .and_then(|l| l.branch)
                .into_iter()
                .collect()
        };
        Kind::Response {
            codes: codes.list(),
            branches,
        }
    } else if let Some(m) = &s.request {
        let class = match s.class.as_deref() {
            None => None,
            Some(c) => Some(class_of(c).ok_or_else(|| Stop::Error(format!("unknown class {c}")))?),
        };
        Kind::Request {
            method: Some(m.clone()),
            class,
            branch: None,
        }
    } else if s.stun {
        Kind::Stun
    } else if s.closed {
        Kind::Closed
    } else {
        Kind::Any
    };
    let from = match &s.from {
        Some(f) => Some(cx.peer_seen_by(&s.at, f)?.addr),
        None => None,
    };
    Ok(Matcher {
        kind,
        from,
        transport: s.transport.map(|t| t.wire()),
        include_auto: s.include_auto.unwrap_or(true),
    })
}

fn class_of(name: &str) -> Option<Class> {
    [
        Class::Join,
        Class::Query,
        Class::Notify,
        Class::Leave,
        Class::ResourceRegister,
        Class::Lookup,
        Class::Transfer,
        Class::Plain,
    ]
    .into_iter()
    .find(|c| c.name() == name)
}

fn describe(cx: &Ctx, s: &ExpectStep, within: Duration) -> String {
    let what = if let Some(c) = &s.response {
        let codes: Vec<String> = c.list().iter().map(|c| c.to_string()).collect();
        format!(
            "a {} response{}",
            codes.join("/"),
            if s.any_txn {
                ""
            } else {
                " to its last request"
            }
        )
    } else if let Some(m) = &s.request {
        format!(
            "a {} request{}",
            m,
            s.class
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        )
    } else if s.stun {
        "a STUN message".into()
    } else if s.closed {
        "the TCP connection closed".into()
    } else {
        "a message".into()
    };
    let from = s
        .from
        .as_ref()
        .map(|f| format!(" from {f}"))
        .unwrap_or_default();
    let _ = cx;
    format!("{what}{from} at {} within {} ms", s.at, within.as_millis())
}

async fn expect(cx: &mut Ctx, s: &ExpectStep, none: bool) -> StepResult {
    let puppet = cx.puppet(&s.at)?;
    let m = matcher(cx, s)?;
    let within = Duration::from_millis(s.within_ms.unwrap_or(DEFAULT_WITHIN.as_millis() as u64));
    let started = Instant::now();
    let deadline = cx.until(within);
    let req = s
        .requirement
        .clone()
        .unwrap_or_else(|| cx.primary_requirement());
    let got = puppet.inbox().wait(&m, deadline).await;
    if none {
        return match got {
            None => Ok(()),
            Some(r) => Err(Stop::Fail(
                Finding::new(req, format!("no {}", describe(cx, s, within)), r.describe()).at(r.at),
            )),
        };
    }
    let Some(r) = got else {
        let seen: Vec<String> = puppet
            .inbox()
            .all()
            .into_iter()
            .filter(|x| x.at >= started.checked_sub(within).unwrap_or(started))
            .rev()
            .take(5)
            .map(|x| x.describe())
            .collect();
        let actual = if seen.is_empty() {
            "nothing".to_string()
        } else {
            format!(
                "only: {}",
                seen.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        };
        return Err(Stop::Fail(Finding::new(
            req,
            describe(cx, s, within),
            actual,
        )));
    };
    if r.is_request() {
        cx.last_request.insert(s.at.clone(), r.clone());
    }
    if let Some(name) = &s.save {
        cx.saved.insert(name.clone(), r.clone());
    }
    for c in &s.checks {
        let input = CheckInput {
            subject: Some(r.clone()),
            args: toml::Table::new(),
        };
        checks::run(cx, c, &input).await.map_err(|e| match e {
            Stop::Fail(f) if f.at.is_none() => Stop::Fail(Finding {
                at: Some(r.at),
                ..f
            }),
            other => other,
        })?;
    }
    Ok(())
}

fn link_type(key: &str) -> Option<LinkType> {
    let kind = match key.get(..1)? {
        "P" => LinkKind::P,
        "S" => LinkKind::S,
        "F" => LinkKind::F,
        _ => return None,
    };
    Some(LinkType {
        kind,
        depth: key.get(1..)?.parse().ok()?,
    })
}

async fn reply(cx: &mut Ctx, s: &ReplyStep) -> StepResult {
    let puppet = cx.puppet(&s.at)?;
    let req = match &s.to {
        Some(name) => cx.saved.get(name).cloned(),
        None => cx.last_request.get(&s.at).cloned(),
    }
    .ok_or_else(|| Stop::Error(format!("reply: {} has no request to answer", s.at)))?;
    let Some(m) = req.message.as_ref() else {
        return Err(Stop::Error("reply: the request did not parse".into()));
    };
    let links: Vec<Link> = match &s.links {
        Some(map) => {
            let mut v = Vec::new();
            for (k, name) in map {
                let link = link_type(k).ok_or_else(|| Stop::Error(format!("bad link {k}")))?;
                v.push(Link {
                    link,
                    peer: cx.peer_seen_by(&s.at, name)?,
                    expires: cx.params.peer_expires_s.max(1),
                });
            }
            v.sort_by_key(|l| l.link);
            v
        }
        None => puppet.view().links(),
    };
    let mut resp = build::response(
        m,
        s.status,
        build::reason_phrase(s.status),
        req.from,
        &puppet.tag(),
    );
    let contact = match s.contact.as_deref() {
        Some(c) => Some(c.to_string()),
        None if s.status == 200 && Class::of_request(m) == Class::Join => Some("echo".to_string()),
        None => None,
    };
    match contact.as_deref() {
        Some("echo") => {
            let expires = m.expires().unwrap_or(cx.params.expires_s);
            if let Some(c) = m.contact_addrs().next() {
                resp.push_contact(c.addr.uri.clone().into_owned(), Some(expires));
            }
        }
        Some(name) => {
            let p = cx.peer_seen_by(&s.at, name)?;
            resp.push_contact(build::peer_uri(&p), None);
        }
        None => {}
    }
    resp.make_p2p(&puppet.identity());
    resp.push_links(&links);
    puppet
        .respond(&req, &resp)
        .await
        .map_err(|e| Stop::Error(format!("reply: {e}")))
}

fn check_input(cx: &Ctx, s: &CheckStep) -> Result<CheckInput, Stop> {
    let subject = match &s.subject {
        Some(n) => Some(
            cx.saved
                .get(n)
                .cloned()
                .ok_or_else(|| Stop::Error(format!("no saved message {n:?}")))?,
        ),
        None => None,
    };
    Ok(CheckInput {
        subject,
        args: s.args.clone(),
    })
}

async fn wait_until(cx: &mut Ctx, s: &CheckStep) -> StepResult {
    let input = check_input(cx, s)?;
    let until = match s.within_ms {
        Some(ms) => cx.until(Duration::from_millis(ms)),
        None => cx.deadline,
    };
    let poll = Duration::from_millis(s.poll_ms.unwrap_or(250).max(10));
    let mut tries = 0;
    loop {
        tries += 1;
        match checks::run(cx, &s.check, &input).await {
            Ok(()) => {
                cx.rec.note(format!("{} held after {tries} tries", s.check));
                return Ok(());
            }
            Err(Stop::Fail(mut f)) => {
                if Instant::now() + poll >= until {
                    f.actual = format!("{} (still after {tries} tries)", f.actual);
                    return Err(Stop::Fail(f));
                }
            }
            Err(other) => return Err(other),
        }
        tokio::time::sleep(poll).await;
    }
}

fn view(cx: &mut Ctx, s: &ViewStep) -> StepResult {
    let puppet = cx.puppet(&s.puppet)?;
    let pred = match &s.pred {
        Some(p) => Some(cx.peer_seen_by(&s.puppet, p)?),
        None => None,
    };
    let succ = s
        .succ
        .iter()
        .map(|n| cx.peer_seen_by(&s.puppet, n))
        .collect::<Result<Vec<_>, _>>()?;
    puppet.set_view(View {
        pred,
        succ,
        link_expires: cx.params.peer_expires_s,
    });
    Ok(())
}

/// Auto-answer flags from their names.
pub fn auto_from(names: &[String]) -> Auto {
    let mut a = Auto::NONE;
    for n in names {
        match n.as_str() {
            "options" => a.options = true,
            "queries" => a.queries = true,
            "notifies" => a.notifies = true,
            "store" => a.store = true,
            "leaves" => a.leaves = true,
            "peer" => {
                a.options = true;
                a.queries = true;
                a.notifies = true;
            }
            _ => {}
        }
    }
    a
}

fn auto(cx: &mut Ctx, s: &AutoStep) -> StepResult {
    cx.puppet(&s.puppet)?.set_auto(auto_from(&s.answer));
    Ok(())
}

async fn close(cx: &mut Ctx, s: &CloseStep) -> StepResult {
    let puppet = cx.puppet(&s.puppet)?;
    let to = cx.addr_of(s.to.as_deref().unwrap_or("iut1"))?;
    puppet.close_tcp(to).await;
    Ok(())
}
