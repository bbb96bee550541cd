/*!
Runs a [`Scenario`] on a [`Sim`] and measures it into a [`Report`].

Every choice a step makes (which peer registers, which keys are looked
up, which peers fail, churn lifetimes) is drawn from one ChaCha generator
seeded from the run seed, apart from the network's and the nodes' own
generators. Correctness is always judged against the ground truth
([`crate::truth`]) with `p2psip_wire::Ring`; nodes are read only through
the core's public read-only view.

Wall time and RSS are read here (the driver, not the core) and go only
into [`Measured`].
*/

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2psip_node::{Command, ConfigError, Event, PhaseKind, Time};
use p2psip_wire::resource::all_ids;
use p2psip_wire::{Id, Peer, parse_uri};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checks::{RingCheck, check_ring, short};
use crate::churn::{Broken, Lifetimes, Rules};
use crate::client::{Ending, Outcome, Request, Target};
use crate::net::{Endpoint, mix};
use crate::report::*;
use crate::scenario::{Scenario, ScenarioError, Step, Via};
use crate::sim::{Runaway, Sim, SimConfig};

/// How a run is carried out and measured.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time between ring snapshots while converging (`None`: T/10). The
    /// convergence time is known to this resolution.
    pub check_every: Option<Duration>,
    /// Fill [`Report::measured`] (wall time, RSS).
    pub measured: bool,
    /// Progress lines on stderr every couple of seconds.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            check_every: None,
            measured: true,
            progress: false,
        }
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("node configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Runs `scenario` and reports. A runaway ends the run early with a failed
/// `runaway` check rather than an error.
pub fn run(cfg: SimConfig, opts: Options, scenario: &Scenario) -> Result<Report, RunError> {
    scenario.validate()?;
    cfg.node.validate()?;
    let wall = Instant::now();
    let check_every = opts
        .check_every
        .unwrap_or(cfg.node.stabilize / 10)
        .max(Duration::from_millis(1));
    let mut r = Runner {
        rng: ChaCha8Rng::seed_from_u64(mix(cfg.seed ^ 0x7363_656e_6172_696f)),
        rules: Rules::new(cfg.node.successors, cfg.node.stabilize + cfg.node.timer_f()),
        sim: Sim::new(cfg),
        check_every,
        regs: Vec::new(),
        checks: Vec::new(),
        index: 0,
        failures_since_register: false,
        fresh_registrations: false,
        bootstrap: None,
        progress: Progress::new(opts.progress),
    };
    let mut steps = Vec::new();
    let mut step_walls = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        r.index = i;
        let at = r.sim.now();
        r.progress
            .step(i, scenario.steps.len(), step.name(), &r.sim);
        let started = Instant::now();
        let out = r.step(step);
        step_walls.push(started.elapsed().as_secs_f64());
        let report = match out {
            Ok(rep) => rep,
            Err(e) => {
                r.check("runaway", false, e.to_string());
                steps.push(StepEntry {
                    index: i,
                    at_s: secs(at),
                    end_s: secs(r.sim.now()),
                    report: StepReport::Aborted {
                        reason: e.to_string(),
                    },
                });
                break;
            }
        };
        steps.push(StepEntry {
            index: i,
            at_s: secs(at),
            end_s: secs(r.sim.now()),
            report,
        });
    }
    let sim = &r.sim;
    let c = sim.counters();
    let mem = sim.memory();
    let t = sim.interval();
    let totals = Totals {
        virtual_s: secs(sim.now()),
        intervals: sim.now().as_duration().as_secs_f64() / t.as_secs_f64(),
        live_at_end: sim.truth().len(),
        counters: c,
        network: sim.net_stats(),
        client_messages: sim.client_messages(),
        messages_per_node_per_interval: round3(
            c.node_messages as f64 / sim.peer_intervals().max(1e-9),
        ),
    };
    let memory = MemoryReport {
        nodes: mem.nodes,
        node_mean_bytes: round3(mem.node_mean()),
        node_max_bytes: mem.node_max,
        node_max_parts: mem
            .node_max_parts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        sim_slots_per_node_bytes: round3(mem.sim_slots as f64 / mem.nodes.max(1) as f64),
        sim_shared_bytes: mem.sim_shared,
        sim_overhead_per_node_bytes: round3(mem.overhead_per_node()),
    };
    let node = &sim.config().node;
    let params = Params {
        scenario: scenario.name.clone(),
        seed: sim.config().seed,
        stabilize_ms: node.stabilize.as_millis() as u64,
        fix_fingers_ms: node.fix_fingers.as_millis() as u64,
        keepalive_ms: node.keepalive.as_millis() as u64,
        t1_ms: node.t1.as_millis() as u64,
        successors: node.successors,
        replicas: node.replicas,
        expires_s: node.expires,
        peer_expires_s: node.peer_expires,
        link: sim.config().link.clone(),
        check_every_ms: r.check_every.as_secs_f64() * 1e3,
        lookup_parallelism: sim.config().lookup_parallelism,
    };
    let measured = opts.measured.then(|| {
        let wall_s = wall.elapsed().as_secs_f64();
        let (rss, peak) = crate::rss::rss();
        Measured {
            wall_s,
            events_per_s: c.events as f64 / wall_s.max(1e-9),
            rss_bytes: rss,
            peak_rss_bytes: peak,
            peak_rss_per_peer_bytes: peak.map(|p| p as f64 / c.started.max(1) as f64),
            steps_wall_s: step_walls,
        }
    });
    let passed = r.checks.iter().all(|c| c.passed);
    Ok(Report {
        schema: SCHEMA,
        params,
        steps,
        checks: r.checks,
        totals,
        memory,
        passed,
        measured,
    })
}

fn secs(t: Time) -> f64 {
    round3(t.as_duration().as_secs_f64())
}

/// Three decimals: enough for a human, and it keeps the JSON short.
fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// A registration made through a peer's adapter role.
#[derive(Debug, Clone)]
struct Reg {
    aor: String,
    contact: String,
    adapter: Endpoint,
    expires_s: u32,
    at: Time,
    acked: bool,
    /// Rid_0..Rid_R (ID-4, ID-5).
    keys: Vec<Id>,
}

struct Runner {
    sim: Sim,
    rng: ChaCha8Rng,
    rules: Rules,
    check_every: Duration,
    regs: Vec<Reg>,
    checks: Vec<Check>,
    index: usize,
    failures_since_register: bool,
    /// Registrations made since the last replica check (C-R1 compares
    /// their remaining expiry).
    fresh_registrations: bool,
    /// The first peer started: the bootstrap of `Via::Bootstrap`.
    bootstrap: Option<Endpoint>,
    progress: Progress,
}

impl Runner {
    fn step(&mut self, step: &Step) -> Result<StepReport, Runaway> {
        Ok(match step {
            Step::Join { count, rate, via } => StepReport::Join(self.join(*count, *rate, *via)?),
            Step::Wait { secs } => {
                self.run_for(Duration::from_secs_f64(*secs))?;
                StepReport::Wait { secs: *secs }
            }
            Step::Settle => {
                let d = self.settle_time();
                self.run_for(d)?;
                StepReport::Settle {
                    secs: d.as_secs_f64(),
                }
            }
            Step::Converge => StepReport::Converge(self.converge()?),
            Step::Register { count, expires_s } => {
                StepReport::Register(self.register(*count, *expires_s)?)
            }
            Step::Lookups { random, ids } => StepReport::Lookups(self.lookups(*random, *ids)?),
            Step::CheckReplicas => StepReport::CheckReplicas(self.check_replicas()?),
            Step::CheckRegistrations => StepReport::CheckRegistrations(self.check_kept()?),
            Step::Fail {
                count,
                peers,
                spare_adapters,
            } => StepReport::Fail(self.remove(*count, peers, *spare_adapters, false)?),
            Step::Leave {
                count,
                peers,
                spare_adapters,
            } => StepReport::Leave(self.remove(*count, peers, *spare_adapters, true)?),
            Step::Churn {
                lifetimes,
                mean_lifetime_s,
                duration_s,
                leave_fraction,
                lookups_per_s,
            } => StepReport::Churn(self.churn(
                *lifetimes,
                *mean_lifetime_s,
                *duration_s,
                *leave_fraction,
                *lookups_per_s,
            )?),
            Step::Zave { rounds } => StepReport::Zave(self.zave(*rounds)?),
        })
    }

    fn check(&mut self, id: &str, passed: bool, detail: String) {
        self.checks.push(Check {
            id: id.to_owned(),
            step: self.index,
            passed,
            detail,
        });
    }

    // ----- time ------------------------------------------------------------------

    fn interval(&self) -> Duration {
        self.sim.interval()
    }

    fn timer_f(&self) -> Duration {
        self.sim.config().node.timer_f()
    }

    /// refresh + T + F: copies are re-placed by then (C-R3).
    fn settle_time(&self) -> Duration {
        let c = &self.sim.config().node;
        c.refresh_interval() + c.stabilize + c.timer_f()
    }

    fn run_until(&mut self, t: Time) -> Result<(), Runaway> {
        // In slices, so progress shows during long stretches.
        while self.sim.now() < t {
            let slice = (self.sim.now() + self.interval()).min(t);
            self.sim.run_until(slice)?;
            self.progress.tick(&self.sim);
        }
        Ok(())
    }

    fn run_for(&mut self, d: Duration) -> Result<(), Runaway> {
        self.run_until(self.sim.now() + d)
    }

    /// Runs in small slices until `done` holds or `limit` passes; whether
    /// it held.
    fn run_while(
        &mut self,
        limit: Time,
        slice: Duration,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Result<bool, Runaway> {
        loop {
            if done(&mut self.sim) {
                return Ok(true);
            }
            if self.sim.now() >= limit {
                return Ok(false);
            }
            let next = (self.sim.now() + slice).min(limit);
            self.sim.run_until(next)?;
            self.progress.tick(&self.sim);
        }
    }

    fn snapshot(&mut self) -> RingCheck {
        let r = self.sim.config().node.successors;
        check_ring(&mut self.sim, r)
    }

    // ----- draws -----------------------------------------------------------------

    /// A random live member (joined, not leaving), other than `not`.
    fn random_member(&mut self, not: &[Endpoint]) -> Option<Endpoint> {
        let n = self.sim.started();
        if n == 0 {
            return None;
        }
        let ok = |sim: &Sim, e: Endpoint| {
            !not.contains(&e)
                && sim.is_live(e)
                && sim.node(e).is_some_and(|x| x.phase() == PhaseKind::Member)
        };
        // Rejection sampling over start order: cheap while most started
        // peers are alive; an exhaustive pick otherwise.
        for _ in 0..64 {
            let e = self.rng.random_range(0..n);
            if ok(&self.sim, e) {
                return Some(e);
            }
        }
        let all: Vec<Endpoint> = self
            .sim
            .live()
            .into_iter()
            .filter(|e| ok(&self.sim, *e))
            .collect();
        (!all.is_empty()).then(|| all[self.rng.random_range(0..all.len())])
    }

    fn random_key(&mut self) -> Id {
        let mut b = [0u8; 20];
        self.rng.fill(&mut b);
        Id(b)
    }

    fn bootstrap_for(&mut self, via: Via) -> Option<Endpoint> {
        if self.sim.truth().is_empty() {
            return None;
        }
        match via {
            Via::Bootstrap => match self.bootstrap.filter(|b| self.sim.is_live(*b)) {
                Some(b) => Some(b),
                None => self.random_member(&[]),
            },
            Via::Random => self.random_member(&[]),
        }
    }

    // ----- steps -----------------------------------------------------------------

    fn join(&mut self, count: usize, rate: Option<f64>, via: Via) -> Result<JoinReport, Runaway> {
        let t0 = self.sim.now();
        for k in 0..count {
            if let Some(r) = rate
                && k > 0
            {
                self.run_until(t0 + Duration::from_secs_f64(k as f64 / r))?;
            }
            let boot = self.bootstrap_for(via);
            let e = self.sim.add_node(boot);
            if boot.is_none() || self.bootstrap.is_none() {
                self.bootstrap.get_or_insert(e);
            }
        }
        let members = self
            .sim
            .live()
            .iter()
            .filter(|e| {
                self.sim
                    .node(**e)
                    .is_some_and(|n| n.phase() == PhaseKind::Member)
            })
            .count();
        Ok(JoinReport {
            started: count,
            rate,
            via: match via {
                Via::Bootstrap => "the first peer".to_owned(),
                Via::Random => "random members".to_owned(),
            },
            members_at_end: members,
            live: self.sim.truth().len(),
        })
    }

    fn converge(&mut self) -> Result<ConvergeReport, Runaway> {
        let t = self.interval();
        let ts = t.as_secs_f64();
        let t0 = self.sim.truth().last_change();
        let live = self.sim.truth().len();
        let log_bound = (live.max(1) as f64).log2() + 3.0;
        // No peer can know of a failure before its transaction times out:
        // when a peer died or left within T + F of the last event, the
        // bound counts from when it can have been detected (STAB-4: S1 is
        // replaced within T + F; C-L3 gives the same allowance).
        let detect = self
            .sim
            .truth()
            .last_departure()
            .map(|d| (d + t + self.timer_f()).saturating_since(t0))
            .unwrap_or_default();
        let allowance = detect.as_secs_f64() / ts;
        let bound = log_bound + allowance;
        // Wait well past the bound, so a slow ring is measured, not cut off.
        let cap = (t0 + t.mul_f64(2.0 * bound + 10.0)).max(self.sim.now() + t.mul_f64(bound + 3.0));
        let mut snapshots = 0;
        let mut inv_at = None;
        let mut ideal_at = None;
        let mut problem;
        loop {
            let c = self.snapshot();
            snapshots += 1;
            if c.invariants() && inv_at.is_none() {
                inv_at = Some(self.sim.now());
            }
            problem = c.problem.clone();
            if c.ideal() {
                ideal_at = Some(self.sim.now());
                break;
            }
            if self.sim.now() >= cap {
                break;
            }
            let next = (self.sim.now() + self.check_every).min(cap);
            self.sim.run_until(next)?;
            self.progress.tick(&self.sim);
        }
        let since = |x: Time| round3(x.saturating_since(t0).as_secs_f64() / ts);
        let intervals = ideal_at.map(since);
        // C-G7: ideal at every snapshot over 10 T of quiet.
        let mut stable = false;
        let mut stable_for = 0.0;
        let (mut msgs, mut max_msgs) = (None, None);
        if ideal_at.is_some() {
            stable = true;
            let start = self.sim.now();
            let sent0 = self.sim.sent_per_node().to_vec();
            let total0 = self.sim.counters().node_messages;
            let end = start + t * 10;
            while self.sim.now() < end {
                let next = (self.sim.now() + self.check_every).min(end);
                self.sim.run_until(next)?;
                self.progress.tick(&self.sim);
                let c = self.snapshot();
                snapshots += 1;
                if !c.ideal() {
                    stable = false;
                    problem = c.problem;
                    break;
                }
            }
            let span = self.sim.now().saturating_since(start).as_secs_f64() / ts;
            stable_for = round3(span);
            if span > 0.0 {
                let n = self.sim.truth().len().max(1) as f64;
                let total = self.sim.counters().node_messages - total0;
                msgs = Some(round3(total as f64 / n / span));
                let sent = self.sim.sent_per_node();
                let max = self
                    .sim
                    .live()
                    .into_iter()
                    .map(|e| sent[e as usize] - sent0.get(e as usize).copied().unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                max_msgs = Some(round3(f64::from(max) / span));
            }
        }
        let bound = round3(bound);
        self.check(
            "C-G5",
            ideal_at.is_some(),
            match intervals {
                Some(i) => format!("ideal ring of {live} after {i} T"),
                None => format!(
                    "not ideal after {} T: {}",
                    since(self.sim.now()),
                    problem.clone().unwrap_or_default()
                ),
            },
        );
        self.check(
            "C-G6",
            intervals.is_some_and(|i| i <= bound),
            if allowance > 0.0 {
                format!(
                    "{} T from the last membership event, bound log2|L| + 3 = {} T + failure detection T + F = {} T",
                    opt3(intervals),
                    round3(log_bound),
                    round3(allowance)
                )
            } else {
                format!(
                    "{} T from the last membership event, bound log2|L| + 3 = {bound} T",
                    opt3(intervals)
                )
            },
        );
        if ideal_at.is_some() {
            self.check(
                "C-G7",
                stable,
                if stable {
                    "ideal at every snapshot for 10 T".to_owned()
                } else {
                    format!(
                        "left the ideal state after {stable_for} T: {}",
                        problem.clone().unwrap_or_default()
                    )
                },
            );
        }
        let mem = self.sim.memory();
        Ok(ConvergeReport {
            node_memory_mean_bytes: round3(mem.node_mean()),
            node_memory_max_bytes: mem.node_max,
            live,
            from_s: secs(t0),
            bound_intervals: bound,
            detection_allowance_intervals: round3(allowance),
            intervals,
            invariants_intervals: inv_at.map(since),
            stable,
            stable_intervals: stable_for,
            problem: if stable { None } else { problem },
            snapshots,
            messages_per_node_per_interval: msgs,
            max_messages_per_node_per_interval: max_msgs,
        })
    }

    fn register(&mut self, count: usize, expires_s: u32) -> Result<RegisterReport, Runaway> {
        let replicas = self.sim.config().node.replicas;
        let mut used = Vec::new();
        let first = self.regs.len();
        for _ in 0..count {
            // Distinct adapters while there are enough members.
            let adapter = match self.random_member(&used) {
                Some(a) => a,
                None => match self.random_member(&[]) {
                    Some(a) => a,
                    None => break,
                },
            };
            used.push(adapter);
            let n = self.regs.len();
            let aor = format!("sip:user{n}@sim.example");
            let contact = format!(
                "sip:user{n}@198.51.{}.{}:5060",
                100 + n / 250 % 100,
                1 + n % 250
            );
            let keys = parse_uri(&aor)
                .map(|u| all_ids(&u, replicas))
                .unwrap_or_default();
            self.regs.push(Reg {
                aor: aor.clone(),
                contact: contact.clone(),
                adapter,
                expires_s,
                at: self.sim.now(),
                acked: false,
                keys,
            });
            self.sim.command(
                adapter,
                Command::Register {
                    aor,
                    contact,
                    expires: expires_s,
                },
            );
        }
        self.failures_since_register = false;
        self.fresh_registrations = true;
        let limit = self.sim.now() + self.timer_f() * 2 + self.interval();
        let mut statuses: BTreeMap<usize, u16> = BTreeMap::new();
        let slice = self.check_every;
        let total = self.regs.len() - first;
        loop {
            for ev in self.sim.take_events() {
                if let Event::Registered { aor, status } = ev.event
                    && let Some(i) = (first..self.regs.len())
                        .find(|i| self.regs[*i].aor == aor && self.regs[*i].adapter == ev.node)
                {
                    statuses.entry(i).or_insert(status);
                }
            }
            if statuses.len() == total || self.sim.now() >= limit {
                break;
            }
            let next = (self.sim.now() + slice).min(limit);
            self.sim.run_until(next)?;
            self.progress.tick(&self.sim);
        }
        let mut refused = BTreeMap::new();
        let mut acked = 0;
        for (i, st) in &statuses {
            if *st == 200 {
                self.regs[*i].acked = true;
                acked += 1;
            } else {
                *refused.entry(*st).or_insert(0) += 1;
            }
        }
        let unanswered = total - statuses.len();
        self.check(
            "registered",
            acked == total,
            format!("{acked} of {total} registrations acknowledged (200) by their adapters"),
        );
        Ok(RegisterReport {
            requested: total,
            acknowledged: acked,
            refused,
            unanswered,
            expires_s,
        })
    }

    /// Runs until the client has finished every lookup (or `limit`), and
    /// takes this step's outcomes.
    fn finish_lookups(&mut self, limit: Time) -> Result<Vec<Outcome>, Runaway> {
        let slice = self.check_every;
        let tag = self.index as u32;
        self.run_while(limit, slice, |sim| sim.lookups_busy() == 0)?;
        Ok(self
            .sim
            .take_lookup_outcomes()
            .into_iter()
            .filter(|o| o.tag == tag)
            .collect())
    }

    fn lookups(&mut self, random: usize, ids: usize) -> Result<LookupReport, Runaway> {
        let quiescent = self.snapshot().ideal();
        let tag = self.index as u32;
        let live = self.sim.truth().len();
        let mut reqs = Vec::new();
        for _ in 0..random {
            let key = self.random_key();
            if let Some(start) = self.random_member(&[]) {
                reqs.push(Request {
                    tag,
                    start,
                    target: Target::Key(key),
                });
            }
        }
        // The IDs of `ids` peers (all when there are fewer), each with
        // ID - 1 and ID + 1 (CHECKS C-Q1).
        let mut peers: Vec<Id> = self.sim.truth().iter().map(|(i, _)| *i).collect();
        if ids < peers.len() {
            for i in 0..ids {
                let j = self.rng.random_range(i..peers.len());
                peers.swap(i, j);
            }
            peers.truncate(ids);
        }
        let mut id_keys = 0;
        for p in peers {
            for key in [p, p.predecessor(), p.successor()] {
                if let Some(start) = self.random_member(&[]) {
                    reqs.push(Request {
                        tag,
                        start,
                        target: Target::Key(key),
                    });
                    id_keys += 1;
                }
            }
        }
        let n = reqs.len();
        for r in reqs {
            self.sim.lookup(r);
        }
        let per_wave = self.timer_f() * 2;
        let waves = (n / self.sim.config().lookup_parallelism.max(1) + 2) as u32;
        let limit = self.sim.now() + per_wave * waves;
        let outcomes = self.finish_lookups(limit)?;
        let stats = lookup_stats(&outcomes, n, self.sim.client_messages());
        let l2 = (live.max(1) as f64).log2();
        let (bound_mean, bound_p99, bound_max) = (
            round3(l2 / 2.0 + 1.5),
            round3(l2 + 2.0),
            2 * l2.ceil() as u32 + 8,
        );
        let all_correct = stats.correct == n;
        self.check(
            "C-Q1",
            all_correct || !quiescent,
            format!(
                "{} of {n} lookups answered by succ_L(key){}",
                stats.correct,
                if quiescent {
                    ""
                } else {
                    " (not quiescent: rate only)"
                }
            ),
        );
        let hops_ok = stats.hops_mean <= bound_mean
            && f64::from(stats.hops_p99) <= bound_p99
            && stats.hops_max <= bound_max
            && stats.loops == 0
            && stats.too_many_hops == 0;
        self.check(
            "C-Q2",
            hops_ok || !quiescent,
            format!(
                "hops mean {:.3} (<= {bound_mean}), p99 {} (<= {bound_p99}), max {} (<= {bound_max}), {} loops",
                stats.hops_mean, stats.hops_p99, stats.hops_max, stats.loops
            ),
        );
        self.check(
            "C-Q3",
            stats.progress_violations == 0 || !quiescent,
            format!("{} redirects without progress", stats.progress_violations),
        );
        Ok(LookupReport {
            quiescent,
            live,
            random_keys: random,
            id_keys,
            stats,
            bound_mean,
            bound_p99,
            bound_max,
        })
    }

    /// Which live peers store which of `keys` with which Contacts.
    fn holders(&self, keys: &HashSet<Id>) -> BTreeMap<Id, Vec<(Endpoint, Vec<String>)>> {
        let mut out: BTreeMap<Id, Vec<(Endpoint, Vec<String>)>> = BTreeMap::new();
        for (_, e) in self.sim.truth().iter() {
            let Some(node) = self.sim.node(*e) else {
                continue;
            };
            for k in node.stored_keys() {
                if keys.contains(&k) {
                    out.entry(k)
                        .or_default()
                        .push((*e, node.stored_contacts(&k)));
                }
            }
        }
        out
    }

    fn check_replicas(&mut self) -> Result<ReplicaReport, Runaway> {
        let tag = self.index as u32;
        let now = self.sim.now();
        let checked: Vec<usize> = (0..self.regs.len())
            .filter(|i| {
                let r = &self.regs[*i];
                r.acked
                    && self.sim.is_live(r.adapter)
                    && now < r.at + Duration::from_secs(u64::from(r.expires_s))
            })
            .collect();
        let orphaned = self
            .regs
            .iter()
            .filter(|r| r.acked && !self.sim.is_live(r.adapter))
            .count();
        let keys: HashSet<Id> = checked
            .iter()
            .flat_map(|i| self.regs[*i].keys.iter().copied())
            .collect();
        let stored = self.holders(&keys);
        let mut placed = 0;
        let mut exact = 0;
        let mut copies = 0;
        let mut problems = Vec::new();
        let mut expect: BTreeMap<(usize, usize), Endpoint> = BTreeMap::new();
        for &ri in &checked {
            let reg = self.regs[ri].clone();
            for (i, key) in reg.keys.iter().enumerate() {
                copies += 1;
                let Some(holder) = self.sim.truth_mut().responsible(key) else {
                    continue;
                };
                let at = stored.get(key).map(Vec::as_slice).unwrap_or(&[]);
                let has = at
                    .iter()
                    .any(|(e, c)| *e == holder && c.contains(&reg.contact));
                placed += usize::from(has);
                let who: BTreeSet<Endpoint> = at.iter().map(|(e, _)| *e).collect();
                let is_exact = who.len() == 1 && who.contains(&holder);
                exact += usize::from(is_exact);
                if (!has || !is_exact) && problems.len() < 8 {
                    // Where the other holders sit relative to succ_L, in
                    // ring steps (-1: its live predecessor).
                    let ring = self.sim.truth_mut().ring().clone();
                    let pos = |e: &Endpoint| {
                        self.sim
                            .node(*e)
                            .and_then(|n| ring.ids().binary_search(&n.me().id).ok())
                    };
                    let n = ring.len() as i64;
                    let hp = pos(&holder).unwrap_or(0) as i64;
                    let rel: Vec<String> = who
                        .iter()
                        .filter(|e| **e != holder)
                        .map(|e| match pos(e) {
                            Some(p) => {
                                let d = (p as i64 - hp).rem_euclid(n);
                                let d = if d > n / 2 { d - n } else { d };
                                format!("node {e} ({d:+})")
                            }
                            None => format!("node {e}"),
                        })
                        .collect();
                    problems.push(format!(
                        "{} copy {i} ({}): succ_L = node {holder}{}, also at {}",
                        reg.aor,
                        short(Some(key)),
                        if has { "" } else { " (missing there)" },
                        if rel.is_empty() {
                            "-".to_owned()
                        } else {
                            rel.join(", ")
                        }
                    ));
                }
                expect.insert((ri, i), holder);
                self.sim.lookup(Request {
                    tag,
                    start: holder,
                    target: Target::Resource {
                        aor: reg.aor.clone(),
                        replica: (i > 0).then_some(i as u32),
                    },
                });
            }
        }
        // Match outcomes to copies by (AOR, replica).
        let limit = self.sim.now() + self.timer_f() * 4;
        let outcomes = self.finish_lookups(limit)?;
        let fresh = std::mem::take(&mut self.fresh_registrations);
        let mut drift_max: f64 = 0.0;
        let mut answered = 0;
        for o in outcomes {
            let Target::Resource { aor, replica } = &o.target else {
                continue;
            };
            let Some(&ri) = checked.iter().find(|i| self.regs[**i].aor == *aor) else {
                continue;
            };
            let reg = &self.regs[ri];
            let i = replica.unwrap_or(0) as usize;
            let left = (reg.at + Duration::from_secs(u64::from(reg.expires_s)))
                .saturating_since(o.ended)
                .as_secs_f64();
            let ok = match &o.ending {
                Ending::Final {
                    status: 200,
                    responder,
                    contacts,
                    ..
                } => {
                    let mine = contacts.iter().find(|(c, _)| *c == reg.contact);
                    let drift = mine
                        .and_then(|(_, e)| *e)
                        .map(|e| (f64::from(e) - left).abs());
                    if let Some(d) = drift {
                        drift_max = drift_max.max(d);
                    }
                    // C-R1 compares the remaining expiry right after the
                    // UA's 200; later it is only reported (drift).
                    Some(responder) == expect.get(&(ri, i))
                        && mine.is_some()
                        && (!fresh || drift.is_some_and(|d| d <= 2.0))
                }
                _ => false,
            };
            answered += usize::from(ok);
            if !ok && problems.len() < 8 {
                problems.push(format!(
                    "{aor} copy {i}: lookup at succ_L gave {:?}",
                    o.ending
                ));
            }
        }
        let all = copies;
        let detail = format!(
            "{placed} of {all} copies at succ_L(Rid_i) by the holders' view, {answered} answered on the network{}",
            if fresh {
                " with the remaining expiry (+-2 s)"
            } else {
                ""
            }
        );
        // After failures, C-R3 stands for C-R1 (the same placement, at the
        // new holders).
        if !self.failures_since_register {
            self.check("C-R1", placed == all && answered == all, detail);
        }
        let after = self.failures_since_register;
        if after {
            // After failures a peer that was briefly responsible (its
            // predecessor unknown, ID-6) may keep a copy until it expires:
            // nothing in the profile removes it, and it is not replication
            // on successors (REPL-3). Counted, not judged.
            self.check(
                "C-R3",
                placed == all && answered == all,
                format!(
                    "{placed} of {all} copies re-placed at the new holders after failures, \
                     {answered} answered there; {} copies also held elsewhere (stale, not judged)",
                    all - exact
                ),
            );
        } else {
            self.check(
                "C-R2",
                exact == all,
                format!("{exact} of {all} copies held by exactly succ_L(Rid_i)"),
            );
        }
        Ok(ReplicaReport {
            registrations: checked.len(),
            copies,
            placed,
            exact,
            answered,
            orphaned,
            after_failures: after,
            expiry_checked: fresh,
            expiry_drift_max_s: round3(drift_max),
            problems,
        })
    }

    fn check_kept(&mut self) -> Result<KeptReport, Runaway> {
        let now = self.sim.now();
        let acked: Vec<usize> = (0..self.regs.len())
            .filter(|i| {
                let r = &self.regs[*i];
                r.acked && now < r.at + Duration::from_secs(u64::from(r.expires_s))
            })
            .collect();
        let keys: HashSet<Id> = acked
            .iter()
            .flat_map(|i| self.regs[*i].keys.iter().copied())
            .collect();
        let stored_at = self.holders(&keys);
        // REPL-4 lookups through random live peers' adapters.
        let mut asked: Vec<(usize, Endpoint)> = Vec::new();
        for &ri in &acked {
            if let Some(p) = self.random_member(&[]) {
                asked.push((ri, p));
                let aor = self.regs[ri].aor.clone();
                self.sim.command(p, Command::Lookup { aor });
            }
        }
        let limit = self.sim.now() + self.timer_f() * 2 + self.interval();
        let mut answers: BTreeMap<usize, (u16, Vec<String>)> = BTreeMap::new();
        let slice = self.check_every;
        loop {
            for ev in self.sim.take_events() {
                if let Event::LookedUp {
                    aor,
                    status,
                    contacts,
                } = ev.event
                    && let Some((ri, _)) = asked
                        .iter()
                        .find(|(ri, p)| *p == ev.node && self.regs[*ri].aor == aor)
                {
                    answers.entry(*ri).or_insert((status, contacts));
                }
            }
            if answers.len() == asked.len() || self.sim.now() >= limit {
                break;
            }
            let next = (self.sim.now() + slice).min(limit);
            self.sim.run_until(next)?;
            self.progress.tick(&self.sim);
        }
        let mut rep = KeptReport {
            acknowledged: acked.len(),
            found: 0,
            stored: 0,
            lost: 0,
            orphaned: 0,
            orphans_found: 0,
            problems: Vec::new(),
        };
        for &ri in &acked {
            let reg = &self.regs[ri];
            let found = answers
                .get(&ri)
                .is_some_and(|(st, c)| *st == 200 && c.contains(&reg.contact));
            let stored = reg.keys.iter().any(|k| {
                stored_at
                    .get(k)
                    .is_some_and(|v| v.iter().any(|(_, c)| c.contains(&reg.contact)))
            });
            rep.found += usize::from(found);
            rep.stored += usize::from(stored);
            if self.sim.is_live(reg.adapter) {
                if !found {
                    rep.lost += 1;
                    if rep.problems.len() < 8 {
                        rep.problems.push(format!(
                            "{}: REPL-4 lookup answered {:?}",
                            reg.aor,
                            answers.get(&ri)
                        ));
                    }
                }
            } else {
                rep.orphaned += 1;
                rep.orphans_found += usize::from(found);
            }
        }
        self.check(
            "kept",
            rep.lost == 0,
            format!(
                "{} of {} acknowledged registrations with a live adapter lost ({} orphaned, {} of them found)",
                rep.lost,
                rep.acknowledged - rep.orphaned,
                rep.orphaned,
                rep.orphans_found
            ),
        );
        Ok(rep)
    }

    /// Kills (or makes leave) peers within the failure rules.
    fn remove(
        &mut self,
        count: usize,
        peers: &[u32],
        spare_adapters: bool,
        leave: bool,
    ) -> Result<FailReport, Runaway> {
        let adapters: BTreeSet<Endpoint> = if spare_adapters {
            self.regs
                .iter()
                .filter(|r| r.acked)
                .map(|r| r.adapter)
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut chosen: Vec<Endpoint> = Vec::new();
        let mut discarded: BTreeMap<Broken, usize> = BTreeMap::new();
        let requested;
        if peers.is_empty() {
            requested = count;
            let mut draws = 0;
            while chosen.len() < count && draws < 100 * count + 100 {
                draws += 1;
                let mut not = chosen.clone();
                not.extend(adapters.iter().copied());
                let Some(v) = self.random_member(&not) else {
                    break;
                };
                let mut set = chosen.clone();
                set.push(v);
                match self.rules.check(&self.sim, &set) {
                    Ok(()) => chosen.push(v),
                    Err(b) => *discarded.entry(b).or_insert(0) += 1,
                }
            }
        } else {
            requested = peers.len();
            let set: Vec<Endpoint> = peers
                .iter()
                .copied()
                .filter(|e| self.sim.is_live(*e))
                .collect();
            match self.rules.check(&self.sim, &set) {
                Ok(()) => chosen = set,
                Err(b) => *discarded.entry(b).or_insert(0) += 1,
            }
        }
        for &v in &chosen {
            if let Some(id) = self.sim.node(v).map(|n| n.me().id) {
                self.rules.killed(id, self.sim.now());
            }
            if leave {
                self.sim.leave(v);
            } else {
                self.sim.kill(v);
            }
        }
        if !chosen.is_empty() {
            self.failures_since_register = true;
        }
        Ok(FailReport {
            requested,
            peers: chosen,
            discarded,
            live: self.sim.truth().len(),
        })
    }

    fn churn(
        &mut self,
        lifetimes: Lifetimes,
        mean_s: f64,
        duration_s: f64,
        leave_fraction: f64,
        lookups_per_s: f64,
    ) -> Result<ChurnReport, Runaway> {
        let mean = Duration::from_secs_f64(mean_s);
        let start = self.sim.now();
        let end = start + Duration::from_secs_f64(duration_s);
        let tag = self.index as u32;
        // Deaths in time order; ties by start order.
        let mut deaths: BTreeSet<(Time, Endpoint)> = BTreeSet::new();
        for e in self.sim.live() {
            let t = start + lifetimes.draw(&mut self.rng, mean);
            deaths.insert((t, e));
        }
        let gap = (lookups_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / lookups_per_s));
        let mut next_lookup = gap.map(|g| start + g);
        let mut rep = ChurnReport {
            lifetimes: lifetimes.name(),
            mean_lifetime_s: mean_s,
            duration_s,
            failures: 0,
            leaves: 0,
            joins: 0,
            discarded: BTreeMap::new(),
            live_min: self.sim.truth().len(),
            live_max: self.sim.truth().len(),
            lookups: LookupStats::default(),
            messages_per_node_per_interval: 0.0,
        };
        let msgs0 = self.sim.counters().node_messages;
        let pi0 = self.sim.peer_intervals();
        let mut submitted = 0;
        loop {
            let death = deaths.first().map(|(t, _)| *t);
            let next = [death, next_lookup, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            self.run_until(next)?;
            if next >= end && death.is_none_or(|d| d >= end) && next_lookup.is_none_or(|l| l >= end)
            {
                break;
            }
            if next_lookup == Some(next) {
                let key = self.random_key();
                if let Some(s) = self.random_member(&[]) {
                    self.sim.lookup(Request {
                        tag,
                        start: s,
                        target: Target::Key(key),
                    });
                    submitted += 1;
                }
                next_lookup = gap.map(|g| next + g);
                continue;
            }
            let Some((t, e)) = deaths.pop_first() else {
                continue;
            };
            if !self.sim.is_live(e) {
                continue;
            }
            let leaves = self.rng.random::<f64>() < leave_fraction;
            if let Err(b) = self.rules.check(&self.sim, &[e]) {
                *rep.discarded.entry(b).or_insert(0) += 1;
                deaths.insert((t + lifetimes.draw(&mut self.rng, mean), e));
                continue;
            }
            if let Some(id) = self.sim.node(e).map(|n| n.me().id) {
                self.rules.killed(id, t);
            }
            if leaves {
                self.sim.leave(e);
                rep.leaves += 1;
            } else {
                self.sim.kill(e);
                rep.failures += 1;
            }
            self.failures_since_register = true;
            // A newcomer keeps the population steady.
            let boot = self.random_member(&[]);
            let n = self.sim.add_node(boot);
            rep.joins += 1;
            deaths.insert((t + lifetimes.draw(&mut self.rng, mean), n));
            let live = self.sim.truth().len();
            rep.live_min = rep.live_min.min(live);
            rep.live_max = rep.live_max.max(live);
        }
        let pi = self.sim.peer_intervals() - pi0;
        rep.messages_per_node_per_interval =
            round3((self.sim.counters().node_messages - msgs0) as f64 / pi.max(1e-9));
        let limit = self.sim.now() + self.timer_f() * 2;
        let outcomes = self.finish_lookups(limit)?;
        rep.lookups = lookup_stats(&outcomes, submitted, 0);
        rep.lookups.messages = 0;
        Ok(rep)
    }

    /// An address whose Peer-ID lies in the open arc (from, to), not used
    /// by any endpoint.
    fn address_in_gap(&mut self, from: &Id, to: &Id, salt: usize) -> Option<SocketAddr> {
        let second = 100 + (salt % 100) as u8;
        let base: u32 = self.rng.random_range(0..65_536);
        for k in 0..65_536u32 {
            let x = (base + k) % 65_536;
            let ip = Ipv4Addr::new(127, second, (x >> 8) as u8, x as u8);
            let addr = SocketAddr::new(IpAddr::V4(ip), 5060);
            if Peer::at(addr).id.in_open(from, to) && self.sim.addr_is_free(addr) {
                return Some(addr);
            }
        }
        None
    }

    fn zave(&mut self, rounds: usize) -> Result<ZaveReport, Runaway> {
        const VARIANTS: [&str; 4] = ["admitted", "adopted-as-s1", "adopted-plus-t", "two-joiners"];
        let t = self.interval();
        let mut out = Vec::new();
        for round in 0..rounds {
            let variant = round % VARIANTS.len();
            let Some(a) = self.random_member(&[]) else {
                break;
            };
            let Some(a_id) = self.sim.node(a).map(|n| n.me().id) else {
                break;
            };
            let Some((b_id, _)) = self.sim.truth().next_after(&a_id) else {
                break;
            };
            let Some(addr) = self.address_in_gap(&a_id, &b_id, round) else {
                continue;
            };
            let boot = self.random_member(&[a]);
            let started = self.sim.now();
            let j = self.sim.add_node_at(addr, boot);
            let j_id = Peer::at(addr).id;
            let mut other = None;
            if variant == 3
                && let Some(addr2) = self.address_in_gap(&j_id, &b_id, round + 1)
            {
                let boot2 = self.random_member(&[a]);
                other = Some((self.sim.add_node_at(addr2, boot2), Peer::at(addr2).id));
            }
            let limit = self.sim.now() + t * 4 + self.timer_f();
            let slice = Duration::from_millis(5).min(self.check_every);
            let candidates: Vec<Id> = std::iter::once(j_id).chain(other.map(|(_, i)| i)).collect();
            let reached = match variant {
                0 => self.run_while(limit, slice, |sim| {
                    sim.node(j).is_some_and(|n| n.phase() == PhaseKind::Member)
                })?,
                _ => self.run_while(limit, slice, |sim| {
                    sim.node(a)
                        .and_then(|n| n.successors().first().map(|s| s.id))
                        .is_some_and(|s| candidates.contains(&s))
                })?,
            };
            if reached && variant == 2 {
                self.run_for(t)?;
            }
            let mut round_rep = ZaveRound {
                variant: VARIANTS[variant],
                gap: [short(Some(&a_id)), short(Some(&b_id))],
                joiner: j,
                killed_after_ms: None,
                discarded: None,
                healed_intervals: None,
            };
            match self.rules.check(&self.sim, &[j]) {
                Err(b) => round_rep.discarded = Some(b),
                Ok(()) => {
                    self.rules.killed(j_id, self.sim.now());
                    round_rep.killed_after_ms = Some(round3(
                        self.sim.now().saturating_since(started).as_secs_f64() * 1e3,
                    ));
                    self.sim.kill(j);
                    self.failures_since_register = true;
                }
            }
            // Heal: C-G1..C-G5 again.
            let killed_at = self.sim.now();
            let live = self.sim.truth().len() as f64;
            let cap = killed_at + t.mul_f64(2.0 * (live.log2() + 3.0) + 10.0);
            let every = self.check_every;
            let r = self.sim.config().node.successors;
            let healed = self.run_while(cap, every, |sim| check_ring(sim, r).ideal())?;
            if healed {
                round_rep.healed_intervals = Some(round3(
                    self.sim.now().saturating_since(killed_at).as_secs_f64() / t.as_secs_f64(),
                ));
            }
            out.push(round_rep);
        }
        let healed = out.iter().filter(|r| r.healed_intervals.is_some()).count();
        let n = out.len();
        self.check(
            "healed",
            healed == n,
            format!("{healed} of {n} Zave rounds healed to the ideal ring"),
        );
        Ok(ZaveReport {
            rounds: out,
            healed,
        })
    }
}

fn opt3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v}"))
}

/// Statistics of lookup outcomes; `submitted` counts lookups that never
/// finished as failures.
fn lookup_stats(outcomes: &[Outcome], submitted: usize, messages: u64) -> LookupStats {
    let mut s = LookupStats {
        lookups: submitted.max(outcomes.len()),
        messages,
        ..LookupStats::default()
    };
    let mut hops: Vec<u32> = Vec::new();
    let mut latency = 0.0;
    for o in outcomes {
        latency += o.ended.saturating_since(o.started).as_secs_f64();
        match &o.ending {
            Ending::Final { correct, .. } => {
                s.correct += usize::from(*correct);
                hops.push(o.hops);
            }
            Ending::Loop => s.loops += 1,
            Ending::TooManyHops => s.too_many_hops += 1,
            Ending::Timeout => s.timeouts += 1,
            Ending::Unexpected(st) => *s.unexpected.entry(*st).or_insert(0) += 1,
            Ending::BadContact => s.bad_contacts += 1,
        }
        s.progress_violations += o.progress_violations as usize;
    }
    s.timeouts += s.lookups - outcomes.len();
    s.success_rate = round3(s.correct as f64 / s.lookups.max(1) as f64 * 1e3) / 1e3;
    if !hops.is_empty() {
        hops.sort_unstable();
        s.hops_mean = round3(hops.iter().map(|h| f64::from(*h)).sum::<f64>() / hops.len() as f64);
        let p = ((hops.len() as f64) * 0.99).ceil() as usize;
        s.hops_p99 = hops[p.clamp(1, hops.len()) - 1];
        s.hops_max = *hops.last().unwrap_or(&0);
    }
    s.mean_latency_ms = round3(latency / outcomes.len().max(1) as f64 * 1e3);
    s
}

/// Progress lines on stderr, at most one every two seconds of wall time.
struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress {
            on,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    /// A line as each step starts, so a long run shows where it is.
    fn step(&mut self, index: usize, of: usize, name: &str, sim: &Sim) {
        if self.on {
            eprintln!(
                "[{:7.1} s] step {}/{of}: {name} at t+{:.1}s",
                self.started.elapsed().as_secs_f64(),
                index + 1,
                sim.now().as_duration().as_secs_f64()
            );
        }
    }

    fn tick(&mut self, sim: &Sim) {
        if !self.on || self.last.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.last = Instant::now();
        let c = sim.counters();
        let wall = self.started.elapsed().as_secs_f64();
        let (rss, _) = crate::rss::rss();
        eprintln!(
            "[{wall:7.1} s] t+{:.1}s ({:.1} T) live {} started {} joined {} events {} ({:.0}/s) in flight {} RSS {}",
            sim.now().as_duration().as_secs_f64(),
            sim.now().as_duration().as_secs_f64() / sim.interval().as_secs_f64(),
            sim.truth().len(),
            c.started,
            c.joined,
            c.events,
            c.events as f64 / wall.max(1e-9),
            sim.network().in_flight(),
            rss.map_or("?".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6)),
        );
    }
}
