/*!
Running one attempt of one case, start to finish:

1. decide whether it can run here (`--iut-addr`, `needs`);
2. place the instances and puppets on the ring (fresh 127.x.y.z
   addresses whose Peer-IDs land in the arcs the topology asks for);
3. run the steps under the case deadline, failing at once when an
   instance exits on its own (a crash: exit status and last log lines);
4. run the `after` checks, then the OPTIONS liveness probe of every IUT
   instance still running (TXN-4), which pins a crash on this case;
5. stop every instance (SIGTERM, grace, SIGKILL, reaped) and collect the
   evidence: ladder, pcap, the instances' log lines in the case window,
   the harness's own log, and for a failure the requirement, the
   expectation and what was seen instead.
*/

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2psip_reports::{Attempt, Evidence, Failure, LogBlock, RawVerdict};
use p2psip_wire::{Id, Peer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha1::{Digest, Sha1};
use tokio::sync::watch;

use super::ctx::{Ctx, Finding, Node, NodeState, Role, RunEnv, StepResult, Stop};
use super::load::Case;
use super::model::Place;
use super::steps;
use crate::checks::{self, CheckInput};
use crate::evidence::Recorder;
use crate::iut::{Feature, Params, StopMode, TransportName, describe_status};
use crate::net::{self, Arc as RingArc};
use crate::probe;
use crate::puppet::Puppet;

/// Why a case cannot run with this IUT (checked before anything starts).
pub fn skip_reason(case: &Case, env: &RunEnv) -> Option<String> {
    if let Some(nat) = &case.def.topology.nat
        && let Some(why) = crate::natlab::skip_reason(nat, env.external.is_some())
    {
        return Some(why);
    }
    for n in &case.def.needs {
        if n == "tcp" {
            if !env.iut.transports.contains(&TransportName::Tcp) {
                return Some("needs TCP; the IUT file's transports do not list \"tcp\"".into());
            }
        } else if let Some(f) = Feature::from_name(n)
            && !env.iut.has_feature(f)
        {
            return Some(format!(
                "needs the {n} role, which the IUT file does not claim (features)"
            ));
        }
    }
    if env.external.is_some() {
        let t = &case.def.topology;
        if t.iut > 1 {
            return Some(
                "needs several IUT instances; --iut-addr gives one user-managed instance".into(),
            );
        }
        if t.refs > 0 {
            return Some("needs reference nodes in the IUT's overlay; a user-managed IUT cannot be joined to them".into());
        }
        if t.place.contains_key("iut1") {
            return Some(
                "places the IUT on the ring; a user-managed IUT's address is fixed".into(),
            );
        }
        for s in &case.steps {
            use super::model::Step;
            let why = match &s.step {
                Step::Kill(_) | Step::Leave(_) => Some("stops the IUT"),
                Step::Restart(_) => Some("restarts the IUT"),
                Step::Start(x) if x.bootstrap.is_some() => {
                    Some("starts the IUT with a bootstrap of its choosing")
                }
                _ => None,
            };
            if let Some(w) = why {
                return Some(format!(
                    "{w}; --iut-addr gives a user-managed instance the harness cannot start or stop"
                ));
            }
        }
    }
    None
}

/// A seed per (run seed, case, attempt): cases draw the same numbers
/// whatever the order or parallelism they run in.
pub fn case_seed(seed: u64, id: &str, attempt: u32) -> u64 {
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(id.as_bytes());
    h.update(attempt.to_be_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn arc_for(p: &Place, placed: &[(String, Id)]) -> Option<RingArc> {
    let id_of = |n: &str| {
        let (name, k) = net::split_offset(n);
        let id = placed.iter().find(|(x, _)| x == name).map(|(_, i)| *i)?;
        Some(k.map_or(id, |k| id.finger_start(k)))
    };
    let ring = p2psip_wire::Ring::new(placed.iter().map(|(_, i)| *i));
    if let Some(a) = &p.after {
        let from = id_of(a)?;
        let to = ring.next_after(&from).unwrap_or(from);
        return Some(RingArc { from, to });
    }
    if let Some(b) = &p.before {
        let to = id_of(b)?;
        let from = ring.predecessor_of(&to).unwrap_or(to);
        return Some(RingArc { from, to });
    }
    if let Some([a, b]) = &p.between {
        return Some(RingArc {
            from: id_of(a)?,
            to: id_of(b)?,
        });
    }
    None
}

/// Builds the case context: addresses, puppets, observer.
async fn setup(
    case: &Arc<Case>,
    env: &Arc<RunEnv>,
    rec: &Arc<Recorder>,
    attempt: u32,
) -> Result<Ctx, Stop> {
    let params = Params::default().with(&case.def.params);
    let mut placed: Vec<(String, Id)> = Vec::new();
    let mut nodes = Vec::new();
    for name in case.instance_names() {
        let role = if name.starts_with("iut") {
            Role::Iut
        } else {
            Role::Reference
        };
        let external = role == Role::Iut && env.external.is_some();
        let addr: SocketAddr = match (external, env.external) {
            (true, Some(a)) => a,
            _ => {
                let arc = case
                    .def
                    .topology
                    .place
                    .get(&name)
                    .and_then(|p| arc_for(p, &placed));
                net::place(arc, |ip| Ok(((), SocketAddr::new(ip, net::free_port(ip)?))))
                    .map_err(|e| Stop::Error(format!("placing {name}: {e}")))?
                    .1
            }
        };
        let peer = Peer::at(addr);
        rec.label(addr, name.clone());
        placed.push((name.clone(), peer.id));
        nodes.push(Node {
            name,
            role,
            peer,
            state: NodeState::NotStarted,
            instance: None,
            data_dir: None,
            external,
        });
    }
    let mut puppets = Vec::new();
    let mut members = Vec::new();
    for p in &case.puppets {
        let arc = p.place.as_ref().and_then(|pl| arc_for(pl, &placed));
        let pup = Puppet::bind_in(
            &p.name,
            arc,
            &params.overlay,
            params.peer_expires_s,
            rec.clone(),
        )
        .await
        .map_err(|e| Stop::Error(format!("puppet {}: {e}", p.name)))?;
        pup.set_auto(steps::auto_from(&p.auto));
        placed.push((p.name.clone(), pup.id()));
        if p.member {
            members.push(p.name.clone());
        }
        puppets.push((p.name.clone(), Arc::new(pup)));
    }
    let observer = Puppet::bind_in(
        "observer",
        None,
        &params.overlay,
        params.peer_expires_s,
        rec.clone(),
    )
    .await
    .map_err(|e| Stop::Error(format!("observer: {e}")))?;
    let nat = match &case.def.topology.nat {
        Some(def) => Some(
            crate::natlab::NatLab::start(
                def,
                &params,
                &nodes,
                &puppets,
                rec,
                case_seed(env.seed, case.id(), attempt),
            )
            .await?,
        ),
        None => None,
    };
    Ok(Ctx {
        case: case.clone(),
        env: env.clone(),
        rec: rec.clone(),
        rng: ChaCha8Rng::seed_from_u64(case_seed(env.seed, case.id(), attempt)),
        params,
        nodes,
        puppets,
        members,
        observer: Arc::new(observer),
        saved: Default::default(),
        last_request: Default::default(),
        snapshots: Default::default(),
        nat,
        resources: Default::default(),
        deadline: Instant::now() + case.deadline,
        step_no: 0,
    })
}

/// Resolves when any watched instance exits: (name, status).
async fn first_exit(
    watchers: Vec<(String, watch::Receiver<Option<std::process::ExitStatus>>)>,
) -> (String, std::process::ExitStatus) {
    let mut set = tokio::task::JoinSet::new();
    for (name, mut rx) in watchers {
        set.spawn(async move {
            loop {
                if let Some(st) = *rx.borrow_and_update() {
                    return (name, st);
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        });
    }
    loop {
        match set.join_next().await {
            Some(Ok(x)) => return x,
            Some(Err(_)) => continue,
            None => std::future::pending::<()>().await,
        }
    }
}

fn watchers(
    cx: &Ctx,
    except: &[String],
) -> Vec<(String, watch::Receiver<Option<std::process::ExitStatus>>)> {
    cx.nodes
        .iter()
        .filter(|n| n.is_running() && !except.contains(&n.name))
        .filter_map(|n| {
            n.instance
                .as_ref()
                .map(|i| (n.name.clone(), i.exit_watch()))
        })
        .collect()
}

fn crash(cx: &Ctx, name: &str, st: &std::process::ExitStatus) -> Stop {
    let tail = cx
        .node(name)
        .and_then(|n| n.instance.as_ref())
        .map(|i| {
            i.logs()
                .tail(10)
                .into_iter()
                .map(|l| format!("{}: {}", l.stream, l.text))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default();
    Stop::Fail(Finding::new(
        cx.primary_requirement(),
        format!("{name} keeps running during the case"),
        format!(
            "{name} exited ({}) during step {}; last output: {}",
            describe_status(st),
            cx.step_no,
            if tail.is_empty() {
                "(none)".to_string()
            } else {
                tail
            }
        ),
    ))
}

async fn run_steps(cx: &mut Ctx) -> StepResult {
    let case = cx.case.clone();
    for (i, s) in case.steps.iter().enumerate() {
        cx.step_no = i + 1;
        let w = watchers(cx, &steps::stops(&s.step));
        let r = tokio::select! {
            r = steps::run(cx, s) => r,
            (name, st) = first_exit(w) => Err(crash(cx, &name, &st)),
        };
        if let Err(e) = r {
            return Err(match e {
                Stop::Error(m) => Stop::Error(format!(
                    "step {} ({}, line {}): {m}",
                    i + 1,
                    s.step.name(),
                    s.line
                )),
                other => other,
            });
        }
        // A node that exited during a step that did not stop it crashed.
        for n in &cx.nodes {
            if n.is_running()
                && !steps::stops(&s.step).contains(&n.name)
                && let Some(st) = n.instance.as_ref().and_then(|i| i.exit_status())
            {
                return Err(crash(cx, &n.name, &st));
            }
        }
    }
    for c in case.after.clone() {
        cx.step_no = case.steps.len() + 1;
        let w = watchers(cx, &[]);
        let input = CheckInput::default();
        tokio::select! {
            r = checks::run(cx, &c, &input) => r?,
            (name, st) = first_exit(w) => return Err(crash(cx, &name, &st)),
        }
    }
    Ok(())
}

/// TXN-4 after the case: every IUT instance still running answers.
async fn liveness(cx: &mut Ctx) -> StepResult {
    let targets: Vec<(String, SocketAddr)> = cx
        .nodes
        .iter()
        .filter(|n| n.role == Role::Iut && n.is_running())
        .map(|n| (n.name.clone(), n.addr()))
        .collect();
    for (name, addr) in targets {
        if let Some(st) = cx
            .node(&name)
            .and_then(|n| n.instance.as_ref())
            .and_then(|i| i.exit_status())
        {
            return Err(crash(cx, &name, &st));
        }
        let deadline = Instant::now() + Duration::from_millis(2000);
        let interval = cx.params.t1().max(Duration::from_millis(50)) * 2;
        if let Err(e) = probe::options(&cx.observer, addr, deadline, interval).await {
            return Err(Stop::Fail(Finding::new(
                cx.primary_requirement(),
                format!("{name} still answers the OPTIONS liveness probe after the case (TXN-4)"),
                e.to_string(),
            )));
        }
    }
    Ok(())
}

/// Stops every instance; returns their log blocks for the case window.
async fn teardown(cx: &mut Ctx) -> Vec<LogBlock> {
    let t0 = cx.rec.t0();
    let grace = cx.env.iut.stop_grace.min(Duration::from_millis(1000));
    let mode_iut = cx.env.iut.stop;
    let mut stops = Vec::new();
    for n in cx.nodes.iter_mut() {
        if let Some(mut inst) = n.instance.take() {
            let mode = if n.role == Role::Iut {
                mode_iut
            } else {
                StopMode::Sigterm
            };
            stops.push(async move {
                inst.stop(mode, grace).await;
                inst
            });
        }
    }
    let stopped = join_all(stops).await;
    let mut blocks = Vec::new();
    for inst in stopped {
        let lines: Vec<String> = inst
            .logs()
            .since(t0)
            .into_iter()
            .map(|l| {
                format!(
                    "{:9.1} ms {}: {}",
                    l.at.saturating_duration_since(t0).as_secs_f64() * 1000.0,
                    l.stream,
                    l.text
                )
            })
            .collect();
        blocks.push(LogBlock {
            instance: inst.label.clone(),
            lines,
        });
    }
    blocks.sort_by(|a, b| a.instance.cmp(&b.instance));
    if let Some(nat) = &cx.nat {
        blocks.push(nat.log_block(&cx.rec));
    }
    blocks
}

/// Runs futures concurrently on the current task.
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|c| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(c) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Where a case's pcap goes, relative to the report directory.
pub fn pcap_name(id: &str, attempt: u32) -> String {
    if attempt <= 1 {
        format!("cases/{id}.pcap")
    } else {
        format!("cases/{id}.{attempt}.pcap")
    }
}

/// Runs one attempt; never panics on IUT behaviour.
pub async fn run_attempt(
    case: Arc<Case>,
    env: Arc<RunEnv>,
    attempt: u32,
    report_dir: Option<&Path>,
) -> Attempt {
    if let Some(why) = skip_reason(&case, &env) {
        return Attempt::skip(why);
    }
    let rec = Recorder::new();
    crate::trace::CASE
        .scope(
            rec.clone(),
            attempt_with(case, env, attempt, report_dir, rec),
        )
        .await
}

async fn attempt_with(
    case: Arc<Case>,
    env: Arc<RunEnv>,
    attempt: u32,
    report_dir: Option<&Path>,
    rec: Arc<Recorder>,
) -> Attempt {
    let started = Instant::now();
    tracing::debug!(case = case.id(), attempt, "case starts");
    let mut cx = match setup(&case, &env, &rec, attempt).await {
        Ok(cx) => cx,
        Err(e) => {
            return finish(
                &case,
                &rec,
                None,
                started,
                Err(e),
                Vec::new(),
                attempt,
                report_dir,
            );
        }
    };
    let deadline = tokio::time::Instant::from_std(cx.deadline);
    let mut result = match tokio::time::timeout_at(deadline, run_steps(&mut cx)).await {
        Ok(r) => r,
        Err(_) => {
            let s = case.steps.get(cx.step_no.saturating_sub(1));
            Err(Stop::Fail(Finding::new(
                cx.primary_requirement(),
                format!(
                    "the case done within its deadline of {} ms",
                    case.deadline.as_millis()
                ),
                format!(
                    "deadline expired during step {}{}",
                    cx.step_no,
                    s.map(|s| format!(" ({}, line {})", s.step.name(), s.line))
                        .unwrap_or_default()
                ),
            )))
        }
    };
    if matches!(result, Ok(())) {
        result = liveness(&mut cx).await;
    }
    let logs = teardown(&mut cx).await;
    let names: Vec<(String, Id)> = cx
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.peer.id))
        .collect();
    drop(cx);
    finish(
        &case,
        &rec,
        Some(names),
        started,
        result,
        logs,
        attempt,
        report_dir,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    case: &Case,
    rec: &Recorder,
    names: Option<Vec<(String, Id)>>,
    started: Instant,
    result: StepResult,
    mut logs: Vec<LogBlock>,
    attempt: u32,
    report_dir: Option<&Path>,
) -> Attempt {
    let recorded = rec.finish();
    let mut ev = Evidence {
        ladder: recorded.ladder,
        notes: recorded.notes,
        ..Evidence::default()
    };
    if let Some(names) = names {
        let ids: Vec<String> = names
            .iter()
            .map(|(n, id)| format!("{n} = {}", id.to_hex().as_str()))
            .collect();
        ev.notes.insert(0, format!("peer IDs: {}", ids.join(", ")));
    }
    if !recorded.log.is_empty() {
        logs.push(LogBlock {
            instance: "harness".into(),
            lines: recorded.log,
        });
    }
    ev.logs = logs;
    match (recorded.pcap, report_dir) {
        (Ok(bytes), Some(dir)) => {
            let rel = pcap_name(&case.def.id, attempt);
            let path = dir.join(&rel);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::write(&path, &bytes));
            match written {
                Ok(()) => ev.pcap = Some(rel),
                Err(e) => ev.notes.push(format!("pcap not written: {e}")),
            }
        }
        (Err(e), _) => ev.notes.push(format!("pcap incomplete: {e}")),
        (Ok(_), None) => {}
    }
    let ms = started.elapsed().as_millis() as u64;
    let (verdict, detail) = match result {
        Ok(()) => (RawVerdict::Pass, "passed".to_string()),
        Err(Stop::Skip(why)) => (RawVerdict::Skip, why),
        Err(Stop::Error(why)) => (RawVerdict::Error, why),
        Err(Stop::Fail(f)) => {
            let at_ms = f.at.map(|t| rec.ms(t));
            let detail = format!(
                "{}: expected {}\n  got {}",
                f.requirement, f.expected, f.actual
            );
            ev.failure = Some(Failure {
                requirement: f.requirement,
                expected: f.expected,
                actual: f.actual,
                at_ms,
            });
            (RawVerdict::Fail, detail)
        }
    };
    Attempt::new(verdict, detail).duration_ms(ms).evidence(ev)
}
