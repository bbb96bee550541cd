/*!
The state of one running case attempt ([`Ctx`]): its nodes (IUT instances
and reference nodes, started or not), its puppets, the observer socket the
harness probes and queries through, saved messages and snapshots, the
deadline, the seeded random generator, and the evidence recorder.

Steps ([`super::steps`]) and named checks ([`crate::checks`]) work on it;
the helpers here resolve the names a case uses (`iut1`, `ref2`, a puppet,
or a literal `ip:port`) and give the oracle's view of the live ring.
*/

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2psip_wire::{Id, Peer, Ring};
use rand_chacha::ChaCha8Rng;

use crate::evidence::Recorder;
use crate::iut::{Instance, IutSpec, Params};
use crate::oracle::Snapshot;
use crate::puppet::{Puppet, Received};

use super::load::Case;

/// What the run gives every case.
pub struct RunEnv {
    pub iut: IutSpec,
    /// How reference nodes are started.
    pub reference: IutSpec,
    /// `--iut-addr`: a user-managed IUT; cases that need to start,
    /// restart or place instances are skipped.
    pub external: Option<SocketAddr>,
    pub seed: u64,
}

/// A problem found: which requirement, what was expected, what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub requirement: String,
    pub expected: String,
    pub actual: String,
    /// When the offending message arrived (for the ladder).
    pub at: Option<Instant>,
}

impl Finding {
    pub fn new(
        requirement: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Finding {
        Finding {
            requirement: requirement.into(),
            expected: expected.into(),
            actual: actual.into(),
            at: None,
        }
    }

    pub fn at(mut self, at: Instant) -> Finding {
        self.at = Some(at);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}; got {}",
            self.requirement, self.expected, self.actual
        )
    }
}

/// Why a case stopped before the end of its steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The IUT did something wrong.
    Fail(Finding),
    /// The case cannot run here (with the reason).
    Skip(String),
    /// No verdict could be reached (setup trouble, IUT never ready).
    Error(String),
}

impl From<Finding> for Stop {
    fn from(f: Finding) -> Stop {
        Stop::Fail(f)
    }
}

/// Step and check results.
pub type StepResult = Result<(), Stop>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Iut,
    Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    NotStarted,
    Running,
    /// Killed by the case (a failure it injected).
    Killed(Instant),
    /// Left gracefully at the case's request.
    Left(Instant),
}

/// An IUT instance or reference node of the case.
pub struct Node {
    pub name: String,
    pub role: Role,
    pub peer: Peer,
    pub state: NodeState,
    pub instance: Option<Instance>,
    pub data_dir: Option<Arc<tempfile::TempDir>>,
    /// The user-managed IUT of `--iut-addr`.
    pub external: bool,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr
    }

    pub fn is_running(&self) -> bool {
        self.state == NodeState::Running
    }
}

/// A case attempt in progress.
pub struct Ctx {
    pub case: Arc<Case>,
    pub env: Arc<RunEnv>,
    pub rec: Arc<Recorder>,
    pub rng: ChaCha8Rng,
    pub params: Params,
    pub nodes: Vec<Node>,
    pub puppets: Vec<(String, Arc<Puppet>)>,
    /// Puppets that count as live ring members for the oracle.
    pub members: Vec<String>,
    /// The harness's own socket: probes, snapshots, lookups.
    pub observer: Arc<Puppet>,
    pub saved: HashMap<String, Received>,
    /// The last request each puppet matched (for `reply`).
    pub last_request: HashMap<String, Received>,
    pub snapshots: HashMap<String, Snapshot>,
    /// The case's emulated NAT (`topology.nat`): with one, names mean
    /// relay fronts and public mappings ([`Ctx::peer_of`]).
    pub nat: Option<Arc<crate::natlab::NatLab>>,
    /// Resources named by `aor` steps and what was registered for them.
    pub resources: HashMap<String, super::resource::Resource>,
    pub deadline: Instant,
    /// Index of the step running (1-based, 0 during setup).
    pub step_no: usize,
}

impl Ctx {
    pub fn fail(&self, expected: impl Into<String>, actual: impl Into<String>) -> Stop {
        Stop::Fail(Finding::new(self.primary_requirement(), expected, actual))
    }

    /// The requirement a failure is charged to unless a step says otherwise.
    pub fn primary_requirement(&self) -> String {
        self.case
            .def
            .requirements
            .first()
            .cloned()
            .unwrap_or_default()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    pub fn puppet(&self, name: &str) -> Result<Arc<Puppet>, Stop> {
        self.puppets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| Stop::Error(format!("no puppet named {name:?}")))
    }

    /// The peer a name refers to: a node, a puppet, or `ip:port`. With a
    /// NAT, a party as everyone outside knows it: its relay front, or the
    /// public mapping of a party behind the NAT.
    pub fn peer_of(&self, name: &str) -> Result<Peer, Stop> {
        if let Some(p) = self.nat.as_ref().and_then(|n| n.identity(name)) {
            return p.map_err(Stop::Error);
        }
        if let Some(n) = self.node(name) {
            return Ok(n.peer);
        }
        if let Some((_, p)) = self.puppets.iter().find(|(n, _)| n == name) {
            return Ok(p.peer());
        }
        if name == "observer" {
            return Ok(self.observer.peer());
        }
        name.parse::<SocketAddr>()
            .map(Peer::at)
            .map_err(|_| Stop::Error(format!("{name:?} names no node, puppet or ip:port")))
    }

    pub fn addr_of(&self, name: &str) -> Result<SocketAddr, Stop> {
        self.peer_of(name).map(|p| p.addr)
    }

    /// The peer `name` is to `viewer`: where `viewer`'s packets to it go
    /// and where its packets to `viewer` come from. Without a NAT (or for
    /// names it does not know) this is [`Ctx::peer_of`].
    pub fn peer_seen_by(&self, viewer: &str, name: &str) -> Result<Peer, Stop> {
        if let Some(p) = self.nat.as_ref().and_then(|n| n.seen_by(viewer, name)) {
            return p.map_err(Stop::Error);
        }
        self.peer_of(name)
    }

    /// Where the harness itself reaches a node (probes, node queries): its
    /// own address, never through a NAT.
    pub fn contact_of(&self, name: &str) -> Result<SocketAddr, Stop> {
        match self.node(name) {
            Some(n) => Ok(n.addr()),
            None => self.addr_of(name),
        }
    }

    /// The name of the node or puppet with this ID, or its short hex.
    pub fn name_of_id(&self, id: &Id) -> String {
        if let Some(n) = self.nat.as_ref().and_then(|n| n.name_of_id(id)) {
            return n;
        }
        if let Some(n) = self.nodes.iter().find(|n| n.peer.id == *id) {
            return n.name.clone();
        }
        if let Some((n, _)) = self.puppets.iter().find(|(_, p)| p.id() == *id) {
            return n.clone();
        }
        if self.observer.id() == *id {
            return "observer".to_string();
        }
        format!("{}…", &id.to_hex()[..10])
    }

    /// A peer as `name (id…)`, for findings.
    pub fn show(&self, p: &Peer) -> String {
        format!("{} ({}…)", self.name_of_id(&p.id), &p.id.to_hex()[..8])
    }

    pub fn show_opt(&self, p: Option<&Peer>) -> String {
        p.map_or_else(|| "none".to_string(), |p| self.show(p))
    }

    /// The live ring members: running nodes and member puppets.
    pub fn live_peers(&self) -> Vec<(String, Peer)> {
        let mut out: Vec<(String, Peer)> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| (n.name.clone(), n.peer))
            .collect();
        for (name, p) in &self.puppets {
            if self.members.contains(name) {
                out.push((name.clone(), p.peer()));
            }
        }
        out
    }

    /// The oracle's ring of live IDs (CHECKS.md L).
    pub fn live_ring(&self) -> Ring {
        Ring::new(self.live_peers().into_iter().map(|(_, p)| p.id))
    }

    /// The running nodes the harness can query (instances, not puppets).
    pub fn running_nodes(&self) -> Vec<(String, Peer)> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| (n.name.clone(), n.peer))
            .collect()
    }

    /// Time left until the case deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `now + d`, never past the case deadline.
    pub fn until(&self, d: Duration) -> Instant {
        (Instant::now() + d).min(self.deadline)
    }

    /// Timer F of the case's parameters (TXN-1).
    pub fn timer_f(&self) -> Duration {
        self.params.timer_f()
    }

    /// Reads the links of `nodes` with one node query each, every query
    /// given min(F, `cap`), judged against the live ring.
    pub async fn snapshot_of(&self, nodes: &[(String, Peer)], cap: Duration) -> Snapshot {
        let deadline = self.until(self.timer_f().min(cap));
        crate::oracle::snapshot(
            &self.observer,
            nodes,
            self.live_ring(),
            self.params.t1(),
            deadline,
        )
        .await
    }

    /// A snapshot of the live ring members, kept as `last` (and as `name`
    /// when given) for later checks.
    pub async fn snapshot_live(&mut self, name: Option<&str>) -> Snapshot {
        let snap = self
            .snapshot_of(&self.live_peers(), Duration::from_secs(3))
            .await;
        if let Some(name) = name {
            self.snapshots.insert(name.to_string(), snap.clone());
        }
        self.snapshots.insert("last".to_string(), snap.clone());
        snap
    }
}
