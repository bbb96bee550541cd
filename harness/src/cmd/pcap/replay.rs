/*!
`p2psip pcap replay FILE`: the requests one endpoint of a capture sent to
one counterpart, replayed against a fresh IUT standing in for that
counterpart, each answer compared structurally with the recorded one.

The overlay around the IUT is rebuilt from the capture: every other peer
the conversation names runs as a reference node, on an address whose
Peer-ID keeps the peer's place on the ring relative to every ID the
conversation names (`p2psip_pcapcheck::replay::map`), so that who is
responsible for a key and whom a redirect names are the same as in the
capture. The replayed endpoint is a scripted peer on its own placed
address (it answers OPTIONS, notifies, queries and leaves by itself, so
the IUT sees a live peer). Requests are rewritten through the address
map and sent in capture order, with the recorded gaps (capped), each
retransmitted on the TXN-1 schedule until its final answer or Timer F.

Every instance is stopped and reaped at the end, whatever happened.
*/

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use p2psip_pcapcheck::replay::{
    self, Context, Conversation, Difference, Exchange, Fresh, Mapping, ReadOptions, cell, compare,
    rewrite,
};
use p2psip_reports::{
    Attempt, CaseRun, Evidence, HarnessInfo, IutInfo, Level, RunInput, grade, write_all,
};
use p2psip_wire::{Id, LinkKind, Profile, Transport, peer_id};

use crate::cli::Outcome;
use crate::evidence::Recorder;
use crate::iut::{self, Instance, IutSpec, Launch, Params};
use crate::net::{self, Arc as RingArc};
use crate::probe;
use crate::puppet::{Auto, Matcher, Puppet, branch_of};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// The implementation under test (IUT file, TOML). Default: the
    /// built-in reference node.
    #[arg(long, value_name = "FILE")]
    pub iut: Option<PathBuf>,
    /// The endpoint whose requests are replayed (default: the sender of
    /// most requests in the capture).
    #[arg(long = "as", value_name = "IP:PORT")]
    pub endpoint: Option<SocketAddr>,
    /// The peer the IUT stands in for (default: the destination of most
    /// of the endpoint's requests); requests to others are not replayed.
    #[arg(long = "to", value_name = "IP:PORT")]
    pub counterpart: Option<SocketAddr>,
    /// Wire profile: dsip-chord or sipping-02.
    #[arg(long, default_value = "dsip-chord", value_parser = parse_profile)]
    pub profile: Profile,
    /// Run the IUT alone instead of among reference nodes standing in for
    /// the other peers the conversation names.
    #[arg(long)]
    pub no_ring: bool,
    /// Longest pause between two replayed requests (the recorded gap
    /// otherwise).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub max_gap_ms: u64,
    /// T1 of the replay and of the instances it starts (Timer F = 64·T1
    /// bounds every wait for an answer).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub t1_ms: u64,
    /// Stabilisation interval of the instances.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub stabilize_ms: u64,
    /// How long the rebuilt overlay has to converge around the IUT.
    #[arg(long, value_name = "MS", default_value_t = 20_000)]
    pub converge_ms: u64,
    /// Requests replayed at most.
    #[arg(long, default_value_t = 2000)]
    pub max_requests: usize,
    /// Write report.json, junit.xml, summary.md, report.html and
    /// replay.pcap (the replayed traffic) here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print every exchange, not only those that differ.
    #[arg(long, short)]
    pub verbose: bool,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::from_name(s).ok_or_else(|| format!("unknown profile {s:?} (dsip-chord, sipping-02)"))
}

/// Requests left unanswered in a row (with answers recorded) that end a
/// replay.
const MAX_SILENT: usize = 3;

/// One replayed request and what came of it.
struct Outcome1 {
    frame: u64,
    class: &'static str,
    recorded: Option<(u16, u64)>,
    fresh: Option<u16>,
    differences: Vec<Difference>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let iut = match &args.iut {
        Some(path) => IutSpec::load(path)?,
        None => iut::reference_node(&[]),
    };
    let opts = ReadOptions {
        endpoint: args.endpoint,
        counterpart: args.counterpart,
        profile: args.profile,
        max_exchanges: args.max_requests,
        ..ReadOptions::default()
    };
    let file = args.file.clone();
    let conv = replay::read(|| std::fs::File::open(&file), &opts)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if conv.exchanges.is_empty() {
        bail!("{}: nothing to replay", args.file.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = Instant::now();
    let (outcomes, notes, pcap) = runtime.block_on(replay_all(&args, &iut, &conv))?;
    let duration = started.elapsed();
    print_text(&args, &conv, &outcomes, &notes);
    let unexplained = outcomes
        .iter()
        .filter(|o| o.differences.iter().any(|d| d.explained.is_none()))
        .count();
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating report directory {}", dir.display()))?;
        let pcap_name = match pcap {
            Ok(bytes) => std::fs::write(dir.join("replay.pcap"), bytes)
                .ok()
                .map(|_| "replay.pcap".to_string()),
            Err(_) => None,
        };
        let input = run_input(&args, &iut, &conv, &outcomes, &notes, pcap_name, duration);
        write_all(&grade(input, None), dir)
            .map_err(|e| anyhow::anyhow!("writing the reports into {}: {e}", dir.display()))?;
        eprintln!("p2psip: reports in {}", dir.display());
    }
    Ok(if unexplained == 0 {
        Outcome::Yes
    } else {
        Outcome::No
    })
}

type Replayed = (Vec<Outcome1>, Vec<String>, Result<Vec<u8>, String>);

async fn replay_all(args: &Args, spec: &IutSpec, conv: &Conversation) -> anyhow::Result<Replayed> {
    let defaults = Params::default();
    let params = Params {
        // The overlay the capture's peers were in: its name is checked.
        overlay: conv.overlay.clone().unwrap_or(defaults.overlay.clone()),
        t1_ms: args.t1_ms,
        stabilize_ms: args.stabilize_ms,
        ..defaults
    };
    let rec = Recorder::new();
    let mut notes = Vec::new();
    let mut points: Vec<Id> = conv.peers.values().copied().collect();
    points.extend(conv.keys.iter().copied());
    let mut map = Mapping::new();

    // The IUT, in the counterpart's place.
    let iut_addr = placed_endpoint(conv.counterpart, &points, &mut notes)?;
    map.insert(conv.counterpart, iut_addr);
    let mut instances: Vec<Instance> = Vec::new();
    let result = async {
        let iut = Instance::spawn(
            spec,
            &Launch {
                label: "iut".into(),
                addr: iut_addr,
                bootstrap: None,
                advertise: None,
                params: params.clone(),
                data_dir: None,
            },
        )
        .map_err(|e| anyhow::anyhow!("the IUT {} could not be started: {e}", spec.name))?;
        instances.push(iut);
        rec.label(iut_addr, "iut");
        let obs = Puppet::bind_in("observer", None, &params.overlay, 30, rec.clone()).await?;
        ready(&obs, &instances[0], iut_addr, spec.ready_timeout).await?;

        // The other peers, as reference nodes in their places.
        let reference = iut::reference_node(&[]);
        let others: Vec<SocketAddr> = conv
            .peers
            .keys()
            .copied()
            .filter(|a| *a != conv.endpoint && *a != conv.counterpart)
            .filter(|a| Some(*a) != conv.identity)
            .collect();
        let mut ring = vec![iut_addr];
        for (i, old) in others.iter().enumerate() {
            let new = placed_endpoint(*old, &points, &mut notes)?;
            map.insert(*old, new);
            if args.no_ring {
                continue;
            }
            let label = format!("ref{}", i + 1);
            rec.label(new, label.clone());
            let inst = Instance::spawn(
                &reference,
                &Launch {
                    label,
                    addr: new,
                    bootstrap: Some(iut_addr),
                    advertise: None,
                    params: params.clone(),
                    data_dir: None,
                },
            )
            .map_err(|e| anyhow::anyhow!("a reference node could not be started: {e}"))?;
            instances.push(inst);
            ready(&obs, instances.last().expect("just pushed"), new, Duration::from_secs(5))
                .await?;
            ring.push(new);
        }
        if ring.len() > 1 {
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_millis(args.converge_ms);
            match converge(&obs, iut_addr, &ring, params.successors, deadline).await {
                Ok(()) => notes.push(format!(
                    "{} peers of the capture run as reference nodes; the IUT's links were as expected after {:.1} s",
                    ring.len() - 1,
                    t0.elapsed().as_secs_f64()
                )),
                Err(why) => notes.push(format!(
                    "{} peers of the capture run as reference nodes; the IUT's links were not as expected after {} ms ({why}): differences may follow from that",
                    ring.len() - 1,
                    args.converge_ms
                )),
            }
        }
        drop(obs);

        // The replayed endpoint, in the place of the peer it speaks for.
        let me_old = conv.identity.unwrap_or(conv.endpoint);
        let (from, to) = cell(&conv.peers[&me_old], &points);
        let me = match Puppet::bind_in(
            "replayed",
            Some(RingArc { from, to }),
            &params.overlay,
            params.peer_expires_s,
            rec.clone(),
        )
        .await
        {
            Ok(p) => p,
            Err(_) => {
                notes.push(format!(
                    "no address keeps the place of {me_old} on the ring; it replays from anywhere"
                ));
                Puppet::bind_in("replayed", None, &params.overlay, params.peer_expires_s, rec.clone())
                    .await?
            }
        };
        me.set_auto(Auto {
            options: true,
            queries: true,
            notifies: true,
            store: true,
            leaves: true,
        });
        // Its listening address first: that is what answers name.
        if let Some(identity) = conv.identity {
            map.insert(identity, me.addr());
        }
        map.insert(conv.endpoint, me.addr());
        let (p1, succ) = replay::expected_neighbours(iut_addr, &ring, params.successors as usize);
        let expected: BTreeSet<SocketAddr> = p1.into_iter().chain(succ).collect();
        let cx = Context {
            conv,
            map: &map,
            profile: args.profile,
            expected: &expected,
        };
        let outcomes = exchanges(args, &cx, &me, iut_addr, &params, &instances[0]).await;
        anyhow::Ok(outcomes)
    }
    .await;
    for inst in instances.iter_mut().rev() {
        inst.stop(spec.stop, spec.stop_grace).await;
    }
    let outcomes = result?;
    notes.extend(
        map.iter()
            .map(|(old, new)| format!("{old} is replayed as {new}")),
    );
    Ok((outcomes, notes, rec.finish().pcap))
}

/// An address for the peer at `old` whose Peer-ID keeps its place on the
/// ring; anywhere (with a note) when none is found.
fn placed_endpoint(
    old: SocketAddr,
    points: &[Id],
    notes: &mut Vec<String>,
) -> anyhow::Result<SocketAddr> {
    let (from, to) = cell(&peer_id(old.ip(), old.port()), points);
    let bind = |ip: IpAddr| -> std::io::Result<((), SocketAddr)> {
        Ok(((), SocketAddr::new(ip, net::free_port(ip)?)))
    };
    match net::place(Some(RingArc { from, to }), bind) {
        Ok(((), a)) => Ok(a),
        Err(e) => {
            notes.push(format!("{old}: {e}; placed anywhere"));
            Ok(net::fresh_endpoint()?)
        }
    }
}

/// The instance answers OPTIONS with 200 before `timeout`, else the
/// replay cannot run.
async fn ready(
    obs: &Puppet,
    inst: &Instance,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let r = tokio::select! {
        r = probe::options(obs, addr, deadline, Duration::from_millis(100)) => r.map(|_| ()).map_err(|e| e.to_string()),
        st = inst.exited() => Err(format!("it exited ({}) before answering", iut::describe_status(&st))),
    };
    r.map_err(|why| {
        let tail: Vec<String> = inst
            .logs()
            .tail(10)
            .into_iter()
            .map(|l| format!("    {}: {}", l.stream, l.text))
            .collect();
        anyhow::anyhow!(
            "the instance at {addr} (`{}`) did not answer OPTIONS with 200 within {} ms: {why}\n  last output:\n{}",
            inst.argv.join(" "),
            timeout.as_millis(),
            if tail.is_empty() { "    (none)".to_string() } else { tail.join("\n") }
        )
    })
}

/// Waits until the IUT reports the P1 and S1..Sk the rebuilt overlay
/// gives it.
async fn converge(
    obs: &Puppet,
    iut: SocketAddr,
    ring: &[SocketAddr],
    successors: u32,
    deadline: Instant,
) -> Result<(), String> {
    let (want_p, want_s) = replay::expected_neighbours(iut, ring, successors as usize);
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Ok(r) = probe::options(obs, iut, deadline, Duration::from_millis(200)).await
            && let Some(m) = &r.message
        {
            let link = |kind: LinkKind, depth: usize| {
                m.link(kind, depth as u8)
                    .and_then(|l| l.addr.uri.socket_addr())
            };
            let got_s: Vec<Option<SocketAddr>> =
                (1..=want_s.len()).map(|d| link(LinkKind::S, d)).collect();
            let got_p = link(LinkKind::P, 1);
            if got_p == want_p && got_s.iter().zip(&want_s).all(|(g, w)| *g == Some(*w)) {
                return Ok(());
            }
            let show = |a: Option<SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
            last = format!(
                "P1 {} S {}",
                show(got_p),
                got_s.iter().map(|a| show(*a)).collect::<Vec<_>>().join(",")
            );
        }
        let pause =
            Duration::from_millis(250).min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
    }
    Err(last)
}

/// Replays every exchange in order; stops early if the IUT exits.
async fn exchanges(
    args: &Args,
    cx: &Context<'_>,
    me: &Puppet,
    iut_addr: SocketAddr,
    params: &Params,
    iut: &Instance,
) -> Vec<Outcome1> {
    let mut out = Vec::new();
    let max_gap = Duration::from_millis(args.max_gap_ms);
    let mut prev: Option<(p2psip_capture::Timestamp, Instant)> = None;
    let mut silent = 0;
    for ex in &cx.conv.exchanges {
        if let Some((ts, sent)) = prev {
            let gap = ex.ts.since(ts).min(max_gap);
            tokio::time::sleep_until((sent + gap).into()).await;
        }
        prev = Some((ex.ts, Instant::now()));
        let bytes = rewrite(&ex.raw, cx.map);
        let fresh = exchange(me, iut_addr, ex, &bytes, params).await;
        let (fresh_status, differences) = match &fresh {
            Some(raw) => (
                p2psip_wire::parse(raw, p2psip_wire::ParseOptions::lenient())
                    .ok()
                    .and_then(|p| p.message.status()),
                compare(ex, Fresh::Answer(raw), cx),
            ),
            None => (None, compare(ex, Fresh::Silent, cx)),
        };
        // An IUT that went silent would cost Timer F per request: a few
        // unanswered in a row, where the capture has answers, end it.
        silent = match (&fresh, &ex.response) {
            (None, Some(_)) => silent + 1,
            _ => 0,
        };
        out.push(Outcome1 {
            frame: ex.frame,
            class: ex.class.name(),
            recorded: ex.response.as_ref().map(|r| (r.shape.status, r.frame)),
            fresh: fresh_status,
            differences,
        });
        if silent >= MAX_SILENT {
            out.push(Outcome1 {
                frame: ex.frame,
                class: ex.class.name(),
                recorded: None,
                fresh: None,
                differences: vec![Difference {
                    what: format!(
                        "the IUT left {MAX_SILENT} requests in a row unanswered; the replay stopped here"
                    ),
                    explained: None,
                }],
            });
            break;
        }
        if let Some(st) = iut.exit_status() {
            out.push(Outcome1 {
                frame: ex.frame,
                class: ex.class.name(),
                recorded: None,
                fresh: None,
                differences: vec![Difference {
                    what: format!(
                        "the IUT exited ({}); the replay stopped here",
                        iut::describe_status(&st)
                    ),
                    explained: None,
                }],
            });
            break;
        }
    }
    out
}

/// Sends one request (retransmitted over UDP on the TXN-1 schedule) and
/// returns the final answer's bytes, or `None` at Timer F.
async fn exchange(
    me: &Puppet,
    to: SocketAddr,
    ex: &Exchange,
    bytes: &[u8],
    params: &Params,
) -> Option<Arc<[u8]>> {
    let transport = match ex.transport {
        replay::Transport::Udp => Transport::Udp,
        replay::Transport::Tcp => Transport::Tcp,
    };
    let branch = branch_of(bytes)?;
    let start = Instant::now();
    let deadline = start + params.timer_f();
    let mut interval = params.t1();
    let mut next = start;
    let finals = Matcher::response_to(&branch, &[]).from(to);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        if now >= next {
            if me
                .send_bytes(to, transport, bytes, &[], Duration::ZERO)
                .await
                .is_err()
            {
                return None;
            }
            next = if transport == Transport::Udp {
                now + interval
            } else {
                deadline
            };
            interval = (interval * 2).min(params.t2());
        }
        let until = next.min(deadline);
        if let Some(r) = me.inbox().wait(&finals, until).await
            && r.status().is_some_and(|s| s >= 200)
        {
            return Some(r.bytes.clone());
        }
    }
}

fn print_text(args: &Args, conv: &Conversation, outcomes: &[Outcome1], notes: &[String]) {
    println!(
        "{}: replayed {} request(s) of {} to {} (the IUT stands in for it){}",
        args.file.display(),
        outcomes.len(),
        conv.endpoint,
        conv.counterpart,
        if conv.elsewhere > 0 {
            format!(
                "; {} request(s) to other destinations not replayed",
                conv.elsewhere
            )
        } else {
            String::new()
        }
    );
    for o in outcomes {
        if o.differences.is_empty() && !args.verbose {
            continue;
        }
        let recorded = o.recorded.map_or("no answer".to_string(), |(s, f)| {
            format!("{s} at frame {f}")
        });
        let fresh = o.fresh.map_or("no answer".to_string(), |s| s.to_string());
        println!(
            "  frame {} {}: {} (recorded {})",
            o.frame, o.class, fresh, recorded
        );
        for d in &o.differences {
            println!("    differs: {d}");
        }
    }
    for n in notes {
        println!("note: {n}");
    }
    let (alike, explained, differ) = tally(outcomes);
    println!(
        "{}: {} alike, {} differ only in ways the capture explains, {} differ",
        if differ == 0 { "ALIKE" } else { "DIFFERENT" },
        alike,
        explained,
        differ
    );
}

/// (alike, explained only, unexplained).
fn tally<'a>(outcomes: impl IntoIterator<Item = &'a Outcome1>) -> (usize, usize, usize) {
    let mut t = (0, 0, 0);
    for o in outcomes {
        if o.differences.is_empty() {
            t.0 += 1;
        } else if o.differences.iter().all(|d| d.explained.is_some()) {
            t.1 += 1;
        } else {
            t.2 += 1;
        }
    }
    t
}

/// One case per request class, failing when some answer of that class
/// differs unexplained.
fn run_input(
    args: &Args,
    spec: &IutSpec,
    conv: &Conversation,
    outcomes: &[Outcome1],
    notes: &[String],
    pcap: Option<String>,
    duration: Duration,
) -> RunInput {
    let harness = HarnessInfo {
        name: "p2psip pcap replay".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        suites_digest: String::new(),
        profile_digest: String::new(),
    };
    let iut = IutInfo {
        name: spec.name.clone(),
        version: spec.version.clone(),
        command: Some(spec.command_text()),
        address: None,
    };
    let mut run = RunInput::new(harness, iut, format!("{}/1", args.profile.name()), 0);
    run.duration_ms = duration.as_millis() as u64;
    let mut classes: Vec<&str> = outcomes.iter().map(|o| o.class).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let of: Vec<&Outcome1> = outcomes.iter().filter(|o| o.class == class).collect();
        let (alike, explained, differ) = tally(of.iter().copied());
        let mut detail = format!(
            "{} request(s) of {} replayed: {alike} alike, {explained} explained, {differ} differ",
            of.len(),
            conv.endpoint
        );
        for o in of.iter().filter(|o| !o.differences.is_empty()).take(30) {
            for d in &o.differences {
                detail.push_str(&format!("\nframe {}: {d}", o.frame));
            }
        }
        let attempt = if differ > 0 {
            Attempt::fail(detail)
        } else {
            Attempt::pass(detail)
        };
        let evidence = Evidence {
            pcap: pcap.clone(),
            notes: notes.to_vec(),
            ..Evidence::default()
        };
        run.cases.push(
            CaseRun::new(
                format!("replay.{class}"),
                "replay",
                format!("{class} requests are answered as recorded"),
                Level::Must,
            )
            .attempt(attempt.evidence(evidence)),
        );
    }
    run
}
