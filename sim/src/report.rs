/*!
The result of a run: a serializable [`Report`] and its human summary.

The JSON form (`p2psip sim --json`) is the report serialized as it is,
schema `p2psip-sim/1`:

```text
{ "schema": "p2psip-sim/1",
  "params":  { seed, scenario, timers, link model, ... },
  "steps":   [ { "index", "action", "at_s", "end_s", ...step fields }, ... ],
  "checks":  [ { "id": "C-G6", "step": 2, "passed": true, "detail": "..." }, ... ],
  "totals":  { virtual time, counters, traffic, messages per node per interval },
  "memory":  { Node::memory() mean and max, simulator bytes per node },
  "passed":  true,
  "measured": { wall time, events per second, RSS } }
```

Everything but `measured` is a function of the seed and the arguments:
the same run gives the same bytes. `measured` holds what the machine
decides (wall time, RSS) and is left out with `--no-measured`.
*/

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::churn::Broken;
use crate::net::{LinkModel, NetStats};
use crate::sim::Counters;

pub const SCHEMA: &str = "p2psip-sim/1";

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub params: Params,
    pub steps: Vec<StepEntry>,
    pub checks: Vec<Check>,
    pub totals: Totals,
    pub memory: MemoryReport,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// What the run was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub scenario: String,
    pub seed: u64,
    pub stabilize_ms: u64,
    pub fix_fingers_ms: u64,
    pub keepalive_ms: u64,
    pub t1_ms: u64,
    pub successors: usize,
    pub replicas: u32,
    pub expires_s: u32,
    pub peer_expires_s: u32,
    pub link: LinkModel,
    pub check_every_ms: f64,
    pub lookup_parallelism: usize,
}

/// One named check and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// A CHECKS.md identifier (`C-G6`, `C-Q1`...) or a simulator check
    /// (`kept`: no acknowledged registration lost; `healed`; `registered`;
    /// `runaway`).
    pub id: String,
    /// The step (0-based) that made it.
    pub step: usize,
    pub passed: bool,
    pub detail: String,
}

/// A step's report with where it sat in virtual time.
#[derive(Debug, Clone, Serialize)]
pub struct StepEntry {
    pub index: usize,
    pub at_s: f64,
    pub end_s: f64,
    #[serde(flatten)]
    pub report: StepReport,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StepReport {
    Join(JoinReport),
    Wait {
        secs: f64,
    },
    Settle {
        secs: f64,
    },
    Converge(ConvergeReport),
    Register(RegisterReport),
    Lookups(LookupReport),
    CheckReplicas(ReplicaReport),
    CheckRegistrations(KeptReport),
    Fail(FailReport),
    Leave(FailReport),
    Churn(ChurnReport),
    Zave(ZaveReport),
    /// The step could not finish (see the `runaway` check).
    Aborted {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinReport {
    pub started: usize,
    /// Peers per second (none: all at once).
    pub rate: Option<f64>,
    pub via: String,
    /// Members of the ring when the last peer started.
    pub members_at_end: usize,
    pub live: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConvergeReport {
    pub live: usize,
    /// The last membership event, in seconds of virtual time.
    pub from_s: f64,
    /// C-G6 bound: log2|L| + 3 intervals, plus the allowance below.
    pub bound_intervals: f64,
    /// When a peer died or left within T + F before the last event: the
    /// time until its failure can have been detected (T + F after it).
    pub detection_allowance_intervals: f64,
    /// C-G1..C-G5 held, after this many intervals from the last event.
    pub intervals: Option<f64>,
    /// C-G1..C-G4 first held after this many intervals.
    pub invariants_intervals: Option<f64>,
    /// C-G7: still ideal at every check over the next 10 T.
    pub stable: bool,
    pub stable_intervals: f64,
    /// Why the ring was not (or no longer) ideal, at the last check.
    pub problem: Option<String>,
    pub snapshots: usize,
    /// Over the 10 T of quiet (steady state).
    pub messages_per_node_per_interval: Option<f64>,
    pub max_messages_per_node_per_interval: Option<f64>,
    /// `Node::memory()` at the end of the step (after the quiet 10 T).
    pub node_memory_mean_bytes: f64,
    pub node_memory_max_bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterReport {
    pub requested: usize,
    pub acknowledged: usize,
    /// Final statuses other than 200, by status.
    pub refused: BTreeMap<u16, usize>,
    pub unanswered: usize,
    pub expires_s: u32,
}

/// Lookup statistics (C-Q1, C-Q2, C-Q3).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LookupStats {
    pub lookups: usize,
    /// Final answer from succ_L(key) (C-Q1).
    pub correct: usize,
    pub success_rate: f64,
    pub hops_mean: f64,
    pub hops_p99: u32,
    pub hops_max: u32,
    pub loops: usize,
    pub too_many_hops: usize,
    pub timeouts: usize,
    /// Answers other than 200, 302, 404, by status.
    pub unexpected: BTreeMap<u16, usize>,
    pub bad_contacts: usize,
    /// 302s that broke C-Q3.
    pub progress_violations: usize,
    /// Requests the client sent (retransmissions included).
    pub messages: u64,
    pub mean_latency_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LookupReport {
    /// The ring was ideal when the lookups started.
    pub quiescent: bool,
    pub live: usize,
    pub random_keys: usize,
    pub id_keys: usize,
    #[serde(flatten)]
    pub stats: LookupStats,
    /// C-Q2 bounds for |L|.
    pub bound_mean: f64,
    pub bound_p99: f64,
    pub bound_max: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaReport {
    /// Acknowledged registrations whose adapter is live (checked).
    pub registrations: usize,
    /// Copies checked: registrations x (R + 1).
    pub copies: usize,
    /// succ_L(Rid_i) stores Rid_i with the Contact (C-R1, by its view).
    pub placed: usize,
    /// The live peers storing Rid_i are exactly succ_L(Rid_i) (C-R2).
    pub exact: usize,
    /// succ_L(Rid_i) answered a lookup on the network with 200, the
    /// Contact, and the remaining expiry within 2 s (C-R1).
    pub answered: usize,
    /// Registrations whose adapter is gone (not refreshed by anyone; not
    /// checked).
    pub orphaned: usize,
    pub after_failures: bool,
    /// The remaining expiry was compared (the first check after the
    /// registrations, CHECKS C-R1).
    pub expiry_checked: bool,
    /// The largest difference between the expiry a holder reported and
    /// what is left of the UA's Expires, in seconds.
    pub expiry_drift_max_s: f64,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptReport {
    pub acknowledged: usize,
    /// Found by a REPL-4 lookup through a random live peer's adapter.
    pub found: usize,
    /// Some live peer stores a copy with the Contact.
    pub stored: usize,
    /// Acknowledged, adapter live, and not found.
    pub lost: usize,
    pub orphaned: usize,
    pub orphans_found: usize,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailReport {
    pub requested: usize,
    /// Start-order indices of the peers killed (or told to leave).
    pub peers: Vec<u32>,
    /// Draws discarded by the failure rules, by rule.
    pub discarded: BTreeMap<Broken, usize>,
    pub live: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    pub lifetimes: String,
    pub mean_lifetime_s: f64,
    pub duration_s: f64,
    pub failures: usize,
    pub leaves: usize,
    pub joins: usize,
    /// Deaths discarded by the failure rules (redrawn), by rule.
    pub discarded: BTreeMap<Broken, usize>,
    pub live_min: usize,
    pub live_max: usize,
    /// Lookups during churn (C-Q1 under churn: the rate is reported).
    pub lookups: LookupStats,
    pub messages_per_node_per_interval: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZaveRound {
    pub variant: &'static str,
    /// The gap (predecessor, successor) the joiner went into.
    pub gap: [String; 2],
    pub joiner: u32,
    /// From the joiner's start to its failure.
    pub killed_after_ms: Option<f64>,
    /// The failure was refused by the rules (not counted).
    pub discarded: Option<Broken>,
    /// From the failure to C-G1..C-G5 holding again.
    pub healed_intervals: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZaveReport {
    pub rounds: Vec<ZaveRound>,
    pub healed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub virtual_s: f64,
    pub intervals: f64,
    pub live_at_end: usize,
    pub counters: Counters,
    pub network: NetStats,
    pub client_messages: u64,
    /// Datagrams nodes sent per live peer per stabilisation interval, over
    /// the whole run.
    pub messages_per_node_per_interval: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub nodes: usize,
    /// `Node::memory()`: the node struct and what it owns.
    pub node_mean_bytes: f64,
    pub node_max_bytes: usize,
    /// `Node::memory_parts()` of the largest node.
    pub node_max_parts: BTreeMap<String, usize>,
    /// Per-node slots of the simulator (node pointer, counter, timer-heap
    /// entry and position), per node.
    pub sim_slots_per_node_bytes: f64,
    /// Shared structures: datagrams in flight, ground truth, client.
    pub sim_shared_bytes: usize,
    /// The simulator's own bytes per running node (slots, timer heap,
    /// network queue, ground truth), computed from capacities.
    pub sim_overhead_per_node_bytes: f64,
}

/// What the machine decided: not part of the deterministic output.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub wall_s: f64,
    pub events_per_s: f64,
    /// VmRSS and VmHWM of /proc/self/status, when readable.
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub peak_rss_per_peer_bytes: Option<f64>,
    pub steps_wall_s: Vec<f64>,
}

impl Report {
    /// The deterministic JSON (everything but `measured`).
    pub fn deterministic_json(&self) -> String {
        let mut r = self.clone();
        r.measured = None;
        serde_json::to_string_pretty(&r).expect("the report serializes")
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// A few lines for a human.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let p = &self.params;
        let _ = writeln!(
            s,
            "p2psip sim: scenario {}, seed {}, T = {} ms, fix-fingers {} ms, keep-alive {} ms, T1 {} ms, \
             latency {:.0}..{:.0} ms, jitter {:.0} ms, loss {}",
            p.scenario,
            p.seed,
            p.stabilize_ms,
            p.fix_fingers_ms,
            p.keepalive_ms,
            p.t1_ms,
            p.link.latency_min.as_secs_f64() * 1e3,
            p.link.latency_max.as_secs_f64() * 1e3,
            p.link.jitter.as_secs_f64() * 1e3,
            p.link.loss
        );
        for e in &self.steps {
            let _ = write!(s, "{:>3} t+{:<9.1}", e.index + 1, e.at_s);
            let _ = writeln!(s, "{}", step_line(&e.report));
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "traffic   {} datagrams by nodes ({:.1} per peer per interval over the run), {} by the lookup client; \
             {} lost, {} to stopped peers; virtual time {:.1} s ({:.1} T)",
            t.counters.node_messages,
            t.messages_per_node_per_interval,
            t.client_messages,
            t.network.lost,
            t.counters.to_dead,
            t.virtual_s,
            t.intervals
        );
        let m = &self.memory;
        let _ = writeln!(
            s,
            "memory    Node::memory {:.1} KB mean, {:.1} KB max over {} nodes; simulator {:.0} B per node",
            m.node_mean_bytes / 1e3,
            m.node_max_bytes as f64 / 1e3,
            m.nodes,
            m.sim_overhead_per_node_bytes
        );
        if let Some(x) = &self.measured {
            let rss =
                |b: Option<u64>| b.map_or("?".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
            let _ = writeln!(
                s,
                "measured  wall {:.2} s, {:.0} events/s, RSS {} (peak {}, {} per peer)",
                x.wall_s,
                x.events_per_s,
                rss(x.rss_bytes),
                rss(x.peak_rss_bytes),
                x.peak_rss_per_peer_bytes
                    .map_or("?".to_owned(), |b| format!("{:.1} KB", b / 1e3))
            );
        }
        for c in &self.checks {
            let _ = writeln!(
                s,
                "check     {:<10} step {:<3} {}  {}",
                c.id,
                c.step + 1,
                if c.passed { "pass" } else { "FAIL" },
                c.detail
            );
        }
        let _ = writeln!(s, "result    {}", if self.passed { "pass" } else { "FAIL" });
        s
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn discards(d: &BTreeMap<Broken, usize>) -> String {
    if d.is_empty() {
        return "none".to_owned();
    }
    d.iter()
        .map(|(k, v)| {
            format!(
                "{v} {}",
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn lookup_line(l: &LookupStats) -> String {
    format!(
        "{} lookups, {} correct ({:.2} %), hops mean {:.2} p99 {} max {}, {} loops, {} timeouts, {} C-Q3 violations",
        l.lookups,
        l.correct,
        l.success_rate * 100.0,
        l.hops_mean,
        l.hops_p99,
        l.hops_max,
        l.loops,
        l.timeouts,
        l.progress_violations
    )
}

fn step_line(r: &StepReport) -> String {
    match r {
        StepReport::Join(j) => format!(
            "join      {} peers via {} at {}; {} members, {} live when the last started",
            j.started,
            j.via,
            j.rate
                .map_or_else(|| "once".to_owned(), |r| format!("{r}/s")),
            j.members_at_end,
            j.live
        ),
        StepReport::Wait { secs } => format!("wait      {secs} s"),
        StepReport::Settle { secs } => format!("settle    {secs:.1} s (refresh + T + F)"),
        StepReport::Converge(c) => format!(
            "converge  {} live: ideal after {} T (bound {:.2} T), invariants after {} T, stable {} for {:.0} T; \
             {} msgs/peer/T (max {}); Node::memory {:.1} KB mean{}",
            c.live,
            opt(c.intervals),
            c.bound_intervals,
            opt(c.invariants_intervals),
            if c.stable { "yes" } else { "NO" },
            c.stable_intervals,
            opt(c.messages_per_node_per_interval),
            opt(c.max_messages_per_node_per_interval),
            c.node_memory_mean_bytes / 1e3,
            c.problem
                .as_ref()
                .map_or_else(String::new, |p| format!("; {p}"))
        ),
        StepReport::Register(r) => format!(
            "register  {} AORs: {} acknowledged, {} unanswered, refused {:?}",
            r.requested, r.acknowledged, r.unanswered, r.refused
        ),
        StepReport::Lookups(l) => format!(
            "lookups   {}{}; bounds mean {:.2} p99 {:.0} max {}",
            if l.quiescent { "" } else { "(not quiescent) " },
            lookup_line(&l.stats),
            l.bound_mean,
            l.bound_p99,
            l.bound_max
        ),
        StepReport::CheckReplicas(r) => format!(
            "replicas  {} registrations, {} copies: placed {} (C-R1), exact holders {} (C-R2), answered {}; \
             expiry drift {:.1} s; {} orphaned{}",
            r.registrations,
            r.copies,
            r.placed,
            r.exact,
            r.answered,
            r.expiry_drift_max_s,
            r.orphaned,
            if r.after_failures {
                " (after failures: C-R3)"
            } else {
                ""
            }
        ),
        StepReport::CheckRegistrations(k) => format!(
            "kept      {} acknowledged: {} found (REPL-4), {} stored, {} lost; {} orphaned ({} found)",
            k.acknowledged, k.found, k.stored, k.lost, k.orphaned, k.orphans_found
        ),
        StepReport::Fail(f) | StepReport::Leave(f) => format!(
            "{}{} of {} peers, {} live after; draws discarded by the failure rules: {}",
            if matches!(r, StepReport::Fail(_)) {
                "fail      "
            } else {
                "leave     "
            },
            f.peers.len(),
            f.requested,
            f.live,
            discards(&f.discarded)
        ),
        StepReport::Churn(c) => format!(
            "churn     {} lifetimes, mean {} s, {} s: {} failures, {} leaves, {} joins, live {}..{}; discarded: {}; \
             {} msgs/peer/T; {}",
            c.lifetimes,
            c.mean_lifetime_s,
            c.duration_s,
            c.failures,
            c.leaves,
            c.joins,
            c.live_min,
            c.live_max,
            discards(&c.discarded),
            format_args!("{:.1}", c.messages_per_node_per_interval),
            lookup_line(&c.lookups)
        ),
        StepReport::Zave(z) => {
            let heals: Vec<String> = z
                .rounds
                .iter()
                .map(|r| format!("{}: {}", r.variant, opt(r.healed_intervals)))
                .collect();
            format!(
                "zave      {} rounds, {} healed; T to heal: {}",
                z.rounds.len(),
                z.healed,
                heals.join(", ")
            )
        }
        StepReport::Aborted { reason } => format!("ABORTED   {reason}"),
    }
}
