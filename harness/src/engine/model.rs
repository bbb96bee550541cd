/*!
The suite TOML model: a suite file holds cases; a case is data (id, title,
requirements, level, what the tester does, what the IUT must do, topology,
parameters, steps, deadline). `suites/README.md` is the guide to writing
them; this module is the exact schema. Every struct refuses unknown keys.
*/

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::iut::ParamOverrides;

/// One `suites/<name>.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// The suite name; every case id starts with `<suite>.`.
    pub suite: String,
    pub title: String,
    #[serde(default)]
    pub doc: String,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default, rename = "case")]
    pub cases: Vec<Spanned<CaseDef>>,
}

/// Values every case of the file inherits unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub deadline_ms: Option<u64>,
    /// Checks run after the steps of every case (added to the case's own).
    #[serde(default)]
    pub after: Vec<String>,
}

/// RFC 2119 level of a case: the strongest keyword it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LevelName {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MAY")]
    May,
}

impl LevelName {
    pub fn to_report(self) -> p2psip_reports::Level {
        match self {
            LevelName::Must => p2psip_reports::Level::Must,
            LevelName::Should => p2psip_reports::Level::Should,
            LevelName::May => p2psip_reports::Level::May,
        }
    }
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    /// Stable id `suite.kebab-name`: never positional, never reused.
    pub id: String,
    pub title: String,
    /// Requirement IDs of the profile (`TXN-1`); the first is the one a
    /// failure is charged to unless a step names another.
    pub requirements: Vec<String>,
    pub level: LevelName,
    /// What the tester does (h2spec's Desc).
    pub desc: String,
    /// What the IUT must do (h2spec's Requirement).
    pub expect: String,
    #[serde(default)]
    pub topology: Topology,
    /// Overrides of the overlay parameters (PROFILE §12 fast values).
    #[serde(default)]
    pub params: ParamOverrides,
    /// What the IUT must offer for the case to run; otherwise it is
    /// skipped with the reason: `tcp`, or a feature of the IUT file
    /// (`adapter`, `stun`, ...).
    #[serde(default)]
    pub needs: Vec<String>,
    /// The steps, kept as TOML values here so each step's errors can name
    /// its own line; [`super::load`] turns them into [`Step`]s.
    pub steps: Vec<Spanned<toml::Value>>,
    /// Checks run after the steps.
    #[serde(default)]
    pub after: Vec<String>,
    pub deadline_ms: Option<u64>,
}

/// Who takes part in a case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// IUT instances, named `iut1`, `iut2`, ...
    #[serde(default)]
    pub iut: u32,
    /// Reference nodes, named `ref1`, `ref2`, ...
    #[serde(default)]
    pub refs: u32,
    /// Scripted peers.
    #[serde(default)]
    pub puppets: Vec<PuppetDecl>,
    /// Placement of instances on the ring, by name (`iut1 = { after = "ref1" }`).
    #[serde(default)]
    pub place: BTreeMap<String, Place>,
    /// An emulated NAT between the parties it names and everyone else
    /// (`crate::natlab`).
    #[serde(default)]
    pub nat: Option<crate::natlab::NatDef>,
}

/// A puppet: just a name, or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PuppetDecl {
    Name(String),
    Full(PuppetDef),
}

impl PuppetDecl {
    pub fn def(&self) -> PuppetDef {
        match self {
            PuppetDecl::Name(n) => PuppetDef {
                name: n.clone(),
                ..PuppetDef::default()
            },
            PuppetDecl::Full(d) => d.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PuppetDef {
    pub name: String,
    /// Where its Peer-ID must land.
    #[serde(default)]
    pub place: Option<Place>,
    /// What it answers by itself: `options`, `queries`, `notifies`, or
    /// `peer` for all three.
    #[serde(default)]
    pub auto: Vec<String>,
    /// It counts as a live ring member for the oracle (ring checks,
    /// `links.true`).
    #[serde(default)]
    pub member: bool,
}

/// A wanted arc. Exactly one of the keys. Names refer to nodes or
/// puppets declared (placed) earlier: instances are placed first, in
/// order `iut1..`, `ref1..`, then puppets in declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Between the named node and the next one placed so far, clockwise:
    /// the node's immediate successor.
    pub after: Option<String>,
    /// Between the previous node placed so far and the named one: its
    /// immediate predecessor.
    pub before: Option<String>,
    /// In the open arc (a, b).
    pub between: Option<[String; 2]>,
}

/// A transport name in steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Udp,
    Tcp,
}

impl Via {
    pub fn wire(self) -> p2psip_wire::Transport {
        match self {
            Via::Udp => p2psip_wire::Transport::Udp,
            Via::Tcp => p2psip_wire::Transport::Tcp,
        }
    }
}

/// One status or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Codes {
    One(u16),
    Many(Vec<u16>),
}

impl Codes {
    pub fn list(&self) -> Vec<u16> {
        match self {
            Codes::One(c) => vec![*c],
            Codes::Many(v) => v.clone(),
        }
    }
}

/// A step: `{ do = "<action>", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
// Steps are loaded once per run; a few hundred bytes each do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Start instances (waiting for each to answer the OPTIONS probe).
    Start(StartStep),
    /// SIGKILL an instance (a failure).
    Kill(NodeStep),
    /// SIGTERM an instance and wait for it to exit (a graceful leave).
    Leave(NodeStep),
    /// Kill (if running) and start again on the same address and data dir.
    Restart(StartStep),
    /// A puppet sends a message.
    Send(SendStep),
    /// A puppet waits for a matching message.
    Expect(ExpectStep),
    /// A puppet must not receive a matching message for `within_ms`.
    ExpectNone(ExpectStep),
    /// A puppet answers a request it received.
    Reply(ReplyStep),
    /// Let time pass (a quiet period the case needs, e.g. stabilisation).
    Wait(WaitStep),
    /// Retry a named check until it passes, or fail with its last finding.
    WaitUntil(CheckStep),
    /// Run a named check once.
    Check(CheckStep),
    /// Query every live node for its links (stored for later checks).
    Snapshot(SnapshotStep),
    /// C-Q1..C-Q3 from every live node (the `lookup.correct` check).
    LookupAll(LookupStep),
    /// Set what a puppet reports about its neighbours when it answers.
    View(ViewStep),
    /// Set what a puppet answers by itself.
    Auto(AutoStep),
    /// Close a puppet's TCP connection.
    Close(CloseStep),
    /// OPTIONS liveness probe of a node now (TXN-4).
    Alive(NodeStep),
    /// The NAT moves a node's mappings to new public ports (NAT-6).
    NatRebind(crate::natlab::NatRebindStep),
    /// A puppet behind the NAT advertises its public mapping (NAT-4).
    NatAdopt(crate::natlab::NatAdoptStep),
    /// Name a resource URI, chosen so that its copies land on given nodes.
    Aor(AorStep),
    /// Register a resource through a node (adapter role, or the IUT
    /// file's register_command).
    Register(RegisterStep),
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Start(_) => "start",
            Step::Kill(_) => "kill",
            Step::Leave(_) => "leave",
            Step::Restart(_) => "restart",
            Step::Send(_) => "send",
            Step::Expect(_) => "expect",
            Step::ExpectNone(_) => "expect-none",
            Step::Reply(_) => "reply",
            Step::Wait(_) => "wait",
            Step::WaitUntil(_) => "wait-until",
            Step::Check(_) => "check",
            Step::Snapshot(_) => "snapshot",
            Step::LookupAll(_) => "lookup-all",
            Step::View(_) => "view",
            Step::Auto(_) => "auto",
            Step::Close(_) => "close",
            Step::Alive(_) => "alive",
            Step::NatRebind(_) => "nat-rebind",
            Step::NatAdopt(_) => "nat-adopt",
            Step::Aor(_) => "aor",
            Step::Register(_) => "register",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartStep {
    pub node: Option<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Node or puppet to join through; a node that is its own bootstrap
    /// starts as the first peer.
    pub bootstrap: Option<String>,
    /// Wait for the OPTIONS probe (default true).
    pub ready: Option<bool>,
}

impl StartStep {
    pub fn targets(&self) -> Vec<String> {
        self.node.iter().chain(self.nodes.iter()).cloned().collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeStep {
    pub node: String,
    pub within_ms: Option<u64>,
    pub requirement: Option<String>,
}

/// Which message a `send` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MsgKind {
    /// P2P OPTIONS (with the puppet's DHT-PeerID).
    Options,
    /// Plain OPTIONS (Supported: dht only), like the harness's probe.
    OptionsPlain,
    /// Node query for `key` (default: the target's own ID).
    Query,
    /// Join (JOIN-1) with `expires` (default: the case's expires_s).
    Join,
    /// Notify: a join carrying the puppet's view as links.
    Notify,
    /// Leave: Expires 0 with the puppet's view as links.
    Leave,
    /// Resource registration (RES-1): From = the AOR, `contact`, `expires`.
    Register,
    /// Resource lookup (RES-2).
    Lookup,
    /// Transfer (JOIN-9, LEAVE-1): From = the puppet's Peer URI.
    Transfer,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The puppet that sends.
    pub from: String,
    /// Node or puppet name, or `ip:port`; default `iut1`.
    pub to: Option<String>,
    pub msg: Option<MsgKind>,
    /// A raw message template (see suites/README.md for placeholders);
    /// bare LF line ends become CRLF unless `line_ends = "lf"`.
    pub raw: Option<String>,
    /// Raw bytes in hex (whitespace ignored): binary, STUN.
    pub raw_hex: Option<String>,
    /// Send the exact bytes this puppet sent last, again (TXN-2).
    #[serde(default)]
    pub resend: bool,
    #[serde(default)]
    pub transport: Via,
    /// Query key: a node/puppet name (its ID), `name+N`/`name-N`, 40 hex
    /// digits, or `random`.
    pub key: Option<String>,
    pub expires: Option<u32>,
    /// Identity overrides (WIRE-10).
    pub overlay: Option<String>,
    pub dht: Option<String>,
    pub algorithm: Option<String>,
    /// Claim another peer's identity (ID-7 tests): name or `ip:port`.
    pub as_peer: Option<String>,
    /// Set the top Via sent-by to this node/puppet/`ip:port` (TXN-3).
    pub via: Option<String>,
    /// Remove the `rport` parameter of the top Via.
    #[serde(default)]
    pub no_rport: bool,
    /// Header names to remove (case-insensitive, long names).
    #[serde(default)]
    pub remove_headers: Vec<String>,
    /// Header lines to add, `Name: value`.
    #[serde(default)]
    pub add_headers: Vec<String>,
    /// Total size the raw message is padded to with `{fill}`.
    pub size: Option<usize>,
    /// `crlf` (default) or `lf` for raw templates.
    pub line_ends: Option<String>,
    /// TCP: write in pieces of these sizes (WIRE-9), `gap_ms` apart.
    #[serde(default)]
    pub segments: Vec<usize>,
    pub gap_ms: Option<u64>,
    /// register/lookup/transfer: the resource (a name of an `aor` step,
    /// or a URI).
    pub aor: Option<String>,
    /// register/lookup/transfer: the replica number (ID-5) on To.
    pub replica: Option<u32>,
    /// register/transfer: the Contact (a party's `sip:ua@ip:port`, or a
    /// URI); default the sender's.
    pub contact: Option<String>,
    /// register/lookup/transfer: a `resource-ID` hint on To (a key, RES-3).
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    /// The puppet that receives.
    pub at: String,
    /// A response with this status (or one of these); by default to the
    /// last request this puppet sent (matched by Via branch).
    pub response: Option<Codes>,
    /// Match a response to any request, not just the last one sent.
    #[serde(default)]
    pub any_txn: bool,
    /// A request with this method (`any` for any method).
    pub request: Option<String>,
    /// ... of this class (`query`, `join`, `notify`, `leave`, ...).
    pub class: Option<String>,
    /// Only from this node/puppet/`ip:port`.
    pub from: Option<String>,
    pub transport: Option<Via>,
    /// A STUN datagram.
    #[serde(default)]
    pub stun: bool,
    /// The TCP connection closed.
    #[serde(default)]
    pub closed: bool,
    /// Also match requests the puppet answered by itself (default true
    /// for requests).
    pub include_auto: Option<bool>,
    /// How long to wait (default 2000 ms, never past the case deadline).
    pub within_ms: Option<u64>,
    /// Named checks applied to the matched message.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Keep the matched message under this name (for `reply`, checks).
    pub save: Option<String>,
    /// The requirement a miss is charged to (default: the case's first).
    pub requirement: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyStep {
    /// The puppet that answers.
    pub at: String,
    /// A saved request (default: the last request `at` matched).
    pub to: Option<String>,
    pub status: u16,
    /// Contact: a node/puppet (302), or `echo` (the request's Contact,
    /// with `;expires=`, the default for a 200 to a join).
    pub contact: Option<String>,
    /// Links to report: `{ P1 = "a", S1 = "b" }`; default the puppet's view.
    pub links: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    pub check: String,
    /// Arguments of the check.
    #[serde(default)]
    pub args: toml::Table,
    /// A saved message the check looks at.
    pub subject: Option<String>,
    /// wait-until: how long to keep trying (default: until the deadline).
    pub within_ms: Option<u64>,
    /// wait-until: time between tries (default 250 ms).
    pub poll_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotStep {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupStep {
    /// Random keys per start node (besides every ID and ID±1).
    pub keys: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewStep {
    pub puppet: String,
    pub pred: Option<String>,
    #[serde(default)]
    pub succ: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoStep {
    pub puppet: String,
    #[serde(default)]
    pub answer: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseStep {
    pub puppet: String,
    pub to: Option<String>,
}

/// `aor`: a resource URI `sip:NAME-N@example.com`, with N the first number
/// for which every copy named in `held_by` (`primary`, `replica1`, ...)
/// has that node as succ(Resource-ID) among `among` (default: every
/// instance and member puppet of the case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AorStep {
    pub name: String,
    #[serde(default)]
    pub held_by: BTreeMap<String, String>,
    #[serde(default)]
    pub among: Vec<String>,
}

/// `register`: a registration through `node`'s adapter role (a plain SIP
/// REGISTER from puppet `ua`, RES-4) or through the IUT file's
/// `register_command`; skipped with the reason when neither is there.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStep {
    pub node: String,
    /// A name of an `aor` step, or a URI.
    pub aor: String,
    /// A party (its `sip:ua@ip:port`) or a URI; default the UA's.
    pub contact: Option<String>,
    /// Default the case's expires_s; 0 removes (adapter role only).
    pub expires: Option<u32>,
    /// The puppet acting as user agent (default the observer).
    pub ua: Option<String>,
    /// The final status the node must answer (default 200).
    pub status: Option<u16>,
    pub within_ms: Option<u64>,
    pub requirement: Option<String>,
}
