/*!
The one pass over a capture: every SIP message is parsed once (lenient,
without the per-URI ID-2 check: [`Checker::id2`] computes ID-2 once per
address instead) and judged against what the capture showed before it.

State, all bounded and expired by capture time:
- the transaction table (one entry per branch/Call-ID/CSeq, with up to two
  legs, so that a request relayed through a NAT is one transaction);
- the peers seen (by Peer-ID): their advertised lifetime, the peers they
  completed a transaction with, their latest P1 report, whether they left
  or stopped answering;
- lookup chains (requester, key) for loops;
- judgements that need the future: replica placements (the holder's next
  P1 report), adapter registrations (the copies sent within Timer F),
  reports of a peer believed gone (retracted if it speaks again),
  requests that waited without a retransmission (the sender's T1).

Every rule and its guard against false positives is described in the
crate's README; the comments here name the requirement next to the check.
*/

use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};

use p2psip_capture::{Event, Stats, Timestamp, Transport};
use p2psip_wire::resource::{canonical, key_of, replica_id, resource_id};
use p2psip_wire::{
    Class, Deviation, DhtPeerId, ErrorKind, Host, Id, LinkKind, Message, Method, ParseError,
    ParseOptions, Rport, Uri, Warnings, parse,
};

use crate::catalogue::Req;
use crate::hash::{FxMap, digest};
use crate::model::{Analysis, CaptureProblem, Counters, Finding};
use crate::options::Options;
use crate::ring::Pos;
use crate::sink::{At, Sink, texts};

type Ns = i64;

const MS: Ns = 1_000_000;
const SEC: Ns = 1_000_000_000;
/// Copies of a request closer together than this are the same packet seen
/// twice by the capture (two interfaces), not a retransmission.
const DUPLICATE_WINDOW: Ns = MS;
/// Bounds of the deferred judgements and side tables.
const MAX_PENDING: usize = 10_000;
const MAX_CHAINS: usize = 100_000;
const MAX_CHAIN_HOPS: usize = 64;
const MAX_CAPTURE_PROBLEMS: usize = 100;
const MAX_VERIFIED_PER_PEER: usize = 4096;
/// Legs of one transaction: a request relayed through a NAT is seen on
/// both sides, and a rebinding mid-transaction adds the new mapping's.
const MAX_LEGS: usize = 4;
/// Pairs of addresses seen exchanging messages (QUERY-7 on partial
/// captures), and pairs with held QUERY-7 findings.
const MAX_TALK_PAIRS: usize = 200_000;
/// How late a timer may fire on a loaded machine (TXN-1 judgements).
const SLACK: Ns = 40 * MS;

/// When copy `k` of a request is due after the first: T1·(2^k - 1),
/// with every interval capped at T2 (RFC 3261 §17.1.2.2).
fn schedule(t1: Ns, t2: Ns, k: u32) -> Ns {
    let mut due: Ns = 0;
    let mut interval = t1;
    for _ in 0..k.min(64) {
        due = due.saturating_add(interval.min(t2.max(t1)));
        interval = interval.saturating_mul(2);
    }
    due
}

fn ns(ts: Timestamp) -> Ns {
    ts.as_nanos()
}

fn ms_text(d: Ns) -> String {
    format!("{:.1} ms", d as f64 / MS as f64)
}

fn short(id: &Id) -> String {
    id.to_hex()[..10].to_owned()
}

/// A peer as named in a message: its ID and the address of its URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Named {
    id: Id,
    addr: Option<SocketAddr>,
}

fn named(uri: &Uri<'_>) -> Option<Named> {
    Some(Named {
        id: uri.peer_id()?,
        addr: uri.socket_addr(),
    })
}

/// One reported link, as the analysis needs it.
#[derive(Debug, Clone, Copy)]
struct LinkRef {
    kind: LinkKind,
    depth: u8,
    id: Id,
    /// `id` as a ring position (distances without the byte loop).
    pos: Pos,
    expires: Option<u32>,
    /// The address its Peer URI names.
    addr: Option<SocketAddr>,
}

/// What the analysis knows of a reported link's peer, looked up once per
/// answer for all the link checks (none of them changes the peers).
#[derive(Debug, Clone, Copy)]
struct LinkFacts {
    /// The linked peer: (last message it sent, gone, advertised lifetime).
    linked: Option<(Ns, Option<Gone>, Option<u32>)>,
    /// The responder's transaction record with it (verified, last heard),
    /// looked up only for a complete responder (the only one judged by it).
    verified: Option<(bool, Ns)>,
}

/// One direction a request travelled (two when a NAT relay is captured on
/// both sides).
#[derive(Debug, Clone)]
struct Leg {
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    first: Ns,
    first_frame: u64,
    last_copy: Ns,
    copies: u16,
    /// The first retransmission interval: the sender's T1.
    t1: Ns,
    early_reported: bool,
    any_response: bool,
    first_response: Ns,
    final_status: u16,
    final_frame: u64,
    copies_after_final: u16,
    answers_after_final: u16,
    dead_marked: bool,
    /// The request's Peer-ID sender address (NAT-3 bookkeeping).
    advertised: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct Txn {
    legs: Vec<Leg>,
    class: Class,
    requester: Option<Id>,
    /// The key a routed REGISTER is for (PROFILE §4, §8).
    key: Option<Id>,
    via_port: u16,
    rport_requested: bool,
    /// A plain REGISTER with bindings: the adapter role (RES-4, REPL-1).
    ua_register: bool,
    last_activity: Ns,
    /// Frame of the first copy.
    frame: u64,
}

impl Txn {
    fn leg_mut(&mut self, src: SocketAddr, dst: SocketAddr) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.src == src && l.dst == dst)
    }
}

/// Why a peer is believed gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// Its leave was answered 200 at this time.
    Left(Ns),
    /// A request to it went unanswered from this time for Timer F.
    Silent(Ns),
}

#[derive(Debug, Clone)]
struct PeerState {
    addr: Option<SocketAddr>,
    /// The first message seen from it showed a peer with nothing to hide:
    /// a join, an OPTIONS probe or an answer with no links. Only then is
    /// everything it knows in the capture (QUERY-7, STAB-6).
    complete: bool,
    last_sent: Ns,
    /// Largest lifetime it advertised in its DHT-PeerID (WIRE-4).
    advertised: Option<u32>,
    /// Peers it exchanged a transaction with: whether one verified them
    /// (QUERY-7), and when it last heard from them.
    verified: FxMap<Pos, (bool, Ns)>,
    /// Its latest link report: (time, P1) (`None`: no P1 link).
    p1: Option<(Ns, Option<Id>)>,
    /// Its latest S1 report: (time, S1, the link's lifetime in seconds).
    s1: Option<(Ns, Id, u32)>,
    gone: Option<Gone>,
    /// When it first sent a leave (never cleared).
    left_at: Option<Ns>,
    /// Peers whose leave it answered 200 (LEAVE-2), and when.
    leaves_answered: Vec<(Id, Ns)>,
    /// STAB-1: since when its reports show a successor other than itself,
    /// and its last stabilisation query (a query for the receiver's own
    /// ID) or the last finding of a missing one.
    succ_since: Option<Ns>,
    stab_last: Option<Ns>,
}

impl PeerState {
    fn new() -> PeerState {
        PeerState {
            addr: None,
            complete: false,
            last_sent: Ns::MIN,
            advertised: None,
            verified: FxMap::default(),
            p1: None,
            s1: None,
            gone: None,
            left_at: None,
            leaves_answered: Vec::new(),
            succ_since: None,
            stab_last: None,
        }
    }
}

/// A lookup in progress (C-Q3): the peers asked so far and who is next.
#[derive(Debug, Clone)]
struct Chain {
    visited: Vec<SocketAddr>,
    next: Option<SocketAddr>,
    last: Ns,
}

/// What a request source was told of its own address (NAT-3).
#[derive(Debug, Clone, Copy)]
struct Observed {
    addr: SocketAddr,
    count: u8,
    /// When it was learned (the second agreeing answer).
    since: Ns,
    last: Ns,
}

/// A 200 to a registration, judged at the holder's next P1 report.
#[derive(Debug)]
struct Placement {
    holder: Id,
    key: Id,
    replica: Option<u32>,
    before: Option<Id>,
    finding: Finding,
}

/// A UA's REGISTER at an adapter: the copies it must place (REPL-1).
#[derive(Debug)]
struct UaReg {
    txn: u64,
    adapter: SocketAddr,
    aor: u64,
    /// The Resource-IDs of the primary and each replica (ID-4, ID-5).
    keys: Vec<Id>,
    /// The adapter's P1 when it answered the UA (`Some(None)`: it
    /// reported no P1).
    p1_then: Option<Option<Id>>,
    seen: u64,
    deadline: Option<Ns>,
    finding: Option<Finding>,
}

/// A report of a peer believed gone, kept until the end: it stands only
/// if the peer never spoke again.
#[derive(Debug)]
struct StaleReport {
    peer: Id,
    gone: Gone,
    finding: Finding,
}

/// A request that waited long without a copy: judged at the end with the
/// sender's T1.
#[derive(Debug)]
struct Waited {
    sender: SocketAddr,
    dst: SocketAddr,
    first: Ns,
    wait: Ns,
    finding: Finding,
}

/// The streaming analysis. Feed it events with [`Checker::event`], then
/// take the result with [`Checker::finish`].
pub struct Checker {
    opts: Options,
    parse_opts_udp: ParseOptions,
    parse_opts_tcp: ParseOptions,
    sink: Sink,
    counters: Counters,
    ids: FxMap<SocketAddr, Id>,
    txns: FxMap<u64, Txn>,
    /// By Peer-ID as a ring position (cheaper to hash and compare).
    peers: FxMap<Pos, PeerState>,
    by_addr: FxMap<SocketAddr, Id>,
    chains: FxMap<u64, Chain>,
    observed: FxMap<SocketAddr, Observed>,
    sender_t1: FxMap<SocketAddr, Ns>,
    placements: Vec<Placement>,
    ua_regs: Vec<UaReg>,
    stale: Vec<StaleReport>,
    waited: Vec<Waited>,
    problems: Vec<CaptureProblem>,
    notes: Vec<String>,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    now: Ns,
    next_sweep: Ns,
    links: Vec<LinkRef>,
    /// Scratch for the link checks: the facts of each link of one answer.
    facts: Vec<LinkFacts>,
    /// Timer F and the stale-report grace, in capture-time units.
    timer_f: Ns,
    stale_grace: Ns,
    /// Scratch for C-L1: the successors of one answer, by depth.
    succ: Vec<(u8, Id, Pos)>,
    peers_full_noted: bool,
    /// Last time the membership changed: a new peer, a join or leave
    /// answered 200, a peer found silent.
    last_change: Ns,
    /// Address pairs (lower first) the capture shows exchanging a message.
    talked: FxMap<(SocketAddr, SocketAddr), ()>,
    talked_full: bool,
    /// QUERY-7 findings held until the end, by (responder, linked peer)
    /// address pair: they stand only if the capture shows the two ever
    /// exchanging a message (else it does not see their traffic).
    unverified: FxMap<(SocketAddr, SocketAddr), HeldReports>,
    /// STAB-1 findings held until the end the same way, by (responder,
    /// its S1) address pair.
    unstabilized: FxMap<(SocketAddr, SocketAddr), HeldReports>,
}

/// What an answer's request was: (requester, routed key, its frame, the
/// leg's source, when it was first seen).
type Paired = (Option<Id>, Option<Id>, u64, SocketAddr, Ns);

/// QUERY-7 (or STAB-1) findings of one pair, held until the end.
#[derive(Default)]
struct HeldReports {
    count: u64,
    kept: Vec<Finding>,
}

fn ordered(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Checker {
    pub fn new(opts: Options) -> Checker {
        let base = ParseOptions::lenient()
            .with_profile(opts.profile)
            .without_peer_id_check();
        let timer_f = opts.timer_f().as_nanos() as Ns;
        let stale_grace = opts.stale_grace().as_nanos() as Ns;
        Checker {
            parse_opts_udp: base.with_transport(p2psip_wire::Transport::Udp),
            parse_opts_tcp: base.with_transport(p2psip_wire::Transport::Tcp),
            sink: Sink::new(opts.max_findings),
            opts,
            counters: Counters::default(),
            ids: FxMap::default(),
            txns: FxMap::default(),
            peers: FxMap::default(),
            by_addr: FxMap::default(),
            chains: FxMap::default(),
            observed: FxMap::default(),
            sender_t1: FxMap::default(),
            placements: Vec::new(),
            ua_regs: Vec::new(),
            stale: Vec::new(),
            waited: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            first_ts: None,
            last_ts: None,
            now: Ns::MIN,
            next_sweep: Ns::MIN,
            links: Vec::with_capacity(64),
            succ: Vec::with_capacity(16),
            facts: Vec::with_capacity(64),
            timer_f,
            stale_grace,
            peers_full_noted: false,
            last_change: Ns::MIN,
            talked: FxMap::default(),
            talked_full: false,
            unverified: FxMap::default(),
            unstabilized: FxMap::default(),
        }
    }

    /// Takes one event of a capture.
    pub fn event(&mut self, event: &Event<'_>) {
        if let Some((at, payload)) = At::of_sip(event) {
            self.message(&at, payload);
            return;
        }
        if let Event::Finding {
            frame,
            kind,
            message,
        } = event
            && self.problems.len() < MAX_CAPTURE_PROBLEMS
        {
            self.problems.push(CaptureProblem {
                frame: *frame,
                kind: *kind,
                message: message.clone(),
            });
        }
    }

    /// No membership change for C-G6's convergence bound,
    /// (ceil(log2 N) + 3)·T + Timer F: the ring is taken as converged.
    fn quiet(&self, now: Ns) -> bool {
        let n = self.peers.len().max(2) as u32;
        let log2n = 32 - (n - 1).leading_zeros();
        let window = (self.opts.stabilize * (log2n + 3) + self.opts.timer_f()).as_nanos() as Ns;
        now - self.last_change > window
    }

    /// ID-2 of an address, computed once per address.
    fn id2(&mut self, addr: SocketAddr) -> Id {
        let profile = self.opts.profile;
        let counters = &mut self.counters;
        *self.ids.entry(addr).or_insert_with(|| {
            counters.id2_computed += 1;
            profile.peer_id(addr.ip(), addr.port())
        })
    }

    fn clock(&mut self, ts: Timestamp) {
        let t = ns(ts);
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
        // Capture time is taken as it comes; a frame earlier than the last
        // one does not move the clock back.
        if t > self.now {
            self.now = t;
            self.last_ts = Some(ts);
        }
        if self.now >= self.next_sweep {
            self.sweep(false);
            self.next_sweep = self.now.saturating_add(SEC);
        }
    }

    /// The parse options of a message over `transport`: what
    /// [`Checker::event`] parses with, for parsing elsewhere (another
    /// thread) and handing the result to [`Checker::parsed`].
    pub(crate) fn parse_options(&self, transport: Transport) -> ParseOptions {
        match transport {
            Transport::Udp => self.parse_opts_udp,
            Transport::Tcp => self.parse_opts_tcp,
        }
    }

    fn message(&mut self, at: &At, raw: &[u8]) {
        let parsed = parse(raw, self.parse_options(at.transport));
        self.parsed(at, raw, &parsed);
    }

    /// Judges a SIP message already parsed with
    /// [`Checker::parse_options`] (parsing is pure: where it ran does not
    /// change the judgement).
    pub(crate) fn parsed(
        &mut self,
        at: &At,
        raw: &[u8],
        parsed: &Result<p2psip_wire::Parsed<'_>, ParseError>,
    ) {
        self.clock(at.ts);
        self.counters.messages += 1;
        let pair = ordered(at.src, at.dst);
        if !self.talked.contains_key(&pair) {
            if self.talked.len() < MAX_TALK_PAIRS {
                self.talked.insert(pair, ());
            } else {
                self.talked_full = true;
            }
        }
        self.counters.message_bytes += raw.len() as u64;
        let judged = self.opts.judges(at.src);
        if !judged {
            self.counters.not_judged += 1;
        }
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.counters.unparsable += 1;
                if judged {
                    self.unparsable(at, raw, e);
                }
                return;
            }
        };
        let msg = &parsed.message;
        // Looked up once: every check below asks for it.
        let peer_id = msg.dht_peer_id();
        if judged {
            self.wire(at, raw, msg, peer_id.is_some(), &parsed.warnings);
        }
        if msg.is_request() {
            self.counters.requests += 1;
            self.request(at, raw, msg, peer_id, judged);
        } else {
            self.counters.responses += 1;
            self.response(at, raw, msg, peer_id, judged);
        }
    }

    // ----- pcap.wire, pcap.wire-should, pcap.link-expiry (WIRE-5) -----

    fn unparsable(&mut self, at: &At, raw: &[u8], e: &ParseError) {
        if matches!(e.kind, ErrorKind::Stun | ErrorKind::NotSip) {
            return;
        }
        let req = match e.kind {
            ErrorKind::Deviation(d) => deviation_req(d, at.transport),
            ErrorKind::BadId => Req::Id1,
            ErrorKind::BadLinkType => Req::Wire5,
            // Any other syntax error: the message is not the RFC 3261
            // message WIRE-1 asks for.
            _ => Req::Wire1,
        };
        self.sink.judged(req);
        self.sink.violation(req, at, raw, None, || {
            texts(
                format!("message refused by the parser: {e}"),
                "a well-formed SIP message",
                e.message(),
            )
        });
    }

    fn wire(
        &mut self,
        at: &At,
        raw: &[u8],
        msg: &Message<'_>,
        has_peer_id: bool,
        warnings: &Warnings,
    ) {
        let p2p = has_peer_id || msg.requires_dht() || msg.supports_dht();
        self.sink.judged(Req::Wire1);
        if at.transport == Transport::Udp {
            self.sink.judged(Req::Wire1Udp);
        }
        if p2p {
            for r in [
                Req::Wire2,
                Req::Wire3,
                Req::Wire4,
                Req::Wire6,
                Req::Wire10,
                Req::Id1,
            ] {
                self.sink.judged(r);
            }
        }
        if msg.dht_links().next().is_some() {
            self.sink.judged(Req::Wire5);
        }
        if warnings.is_empty() {
            return;
        }
        for (d, offset) in warnings.iter() {
            // Only the sender's ID-2 is judged (pcap.id-source), with the
            // cache; a lenient parse does not report it anyway.
            if d == Deviation::PeerIdNotOfAddress {
                continue;
            }
            let req = deviation_req(d, at.transport);
            self.sink.violation(req, at, raw, None, || {
                texts(
                    format!("{} (byte {offset})", d.message()),
                    "what senders emit (PROFILE: senders never emit the lenient variants)",
                    excerpt(raw, offset),
                )
            });
        }
    }

    // ----- requests -----

    fn request(
        &mut self,
        at: &At,
        raw: &[u8],
        msg: &Message<'_>,
        peer_id: Option<&DhtPeerId<'_>>,
        judged: bool,
    ) {
        let Some(via) = msg.top_via() else { return };
        let class = Class::of_request(msg);
        let p2p = peer_id.is_some() || msg.requires_dht();
        let sender = peer_id.and_then(|d| named(&d.addr.uri));
        let lifetime = peer_id.map(|d| d.expires.unwrap_or(3600));

        // NAT-1: rport in the top Via of every request a peer sends.
        if p2p && judged {
            self.sink.judged(Req::Nat1);
            if via.rport == Rport::Absent {
                self.sink.violation(Req::Nat1, at, raw, None, || {
                    texts(
                        "request without rport in its top Via",
                        "Via: ...;rport",
                        format!("Via host {} without rport", via.host),
                    )
                });
            }
        }
        if let Some(s) = sender {
            if judged {
                self.id2_of_sender(at, raw, s);
                self.nat3(at, raw, s);
            }
            self.seen_peer(s, at, lifetime, msg, class);
            if class == Class::Leave
                && let Some(p) = self.peers.get_mut(&Pos::of(&s.id))
            {
                let t = ns(at.ts);
                p.left_at = Some(p.left_at.map_or(t, |l| l.min(t)));
            }
        }

        let Some(branch) = via.branch.as_deref() else {
            return;
        };
        let key = txn_key(branch, msg);
        let now = ns(at.ts);
        let max_txns = self.opts.max_transactions;
        if !self.txns.contains_key(&key) && self.txns.len() >= max_txns {
            self.sweep(true);
            if self.txns.len() >= max_txns {
                self.counters.transactions_evicted += 1;
                return;
            }
        }
        let t2 = self.opts.t2.as_nanos() as Ns;
        let opt_t1 = self.opts.t1.map(|t| t.as_nanos() as Ns);
        let mut early: Option<(Ns, Ns, Ns, u32)> = None;
        let mut after_f: Option<(Ns, Ns)> = None;
        let mut t1_seen: Option<Ns> = None;
        let mut new_leg = false;
        match self.txns.get_mut(&key) {
            Some(txn) => {
                txn.last_activity = now;
                match txn.leg_mut(at.src, at.dst) {
                    Some(leg) => {
                        let dt = now - leg.last_copy;
                        if dt < DUPLICATE_WINDOW {
                            return;
                        }
                        leg.last_copy = now;
                        if leg.final_status != 0 {
                            leg.copies_after_final = leg.copies_after_final.saturating_add(1);
                        } else if leg.transport == Transport::Udp {
                            // TXN-1: copy k is due T1·(2^k - 1) after the
                            // first (intervals capped at T2). Copies may
                            // come late (scheduling), never early: only
                            // an early copy is judged, against the
                            // configured T1 or, without one, the first
                            // interval less the scheduling slack.
                            leg.copies = leg.copies.saturating_add(1);
                            let k = u32::from(leg.copies - 1);
                            if k == 1 {
                                leg.t1 = dt;
                                t1_seen = Some(dt);
                            }
                            let base = match opt_t1 {
                                Some(t) => t,
                                None => (leg.t1 - SLACK).max(leg.t1 / 4),
                            };
                            let elapsed = now - leg.first;
                            let due = schedule(base, t2, k);
                            if (opt_t1.is_some() || k >= 2)
                                && !leg.early_reported
                                && elapsed < due * 9 / 10 - SLACK
                            {
                                leg.early_reported = true;
                                early = Some((elapsed, due, base, k));
                            }
                            let f = opt_t1.unwrap_or(leg.t1) * 64;
                            if elapsed > f + f / 10 + 100 * MS {
                                after_f = Some((elapsed, f));
                            }
                        }
                    }
                    None => {
                        if txn.legs.len() < MAX_LEGS {
                            txn.legs.push(new_leg_of(at, sender));
                            new_leg = true;
                        }
                    }
                }
            }
            None => {
                let method = msg.method();
                let routed_key = routing_key(msg, class);
                let ua_register = method == Some(&Method::Register)
                    && !p2p
                    && msg.contact_addrs().next().is_some()
                    && msg.expires() != Some(0);
                self.txns.insert(
                    key,
                    Txn {
                        legs: vec![new_leg_of(at, sender)],
                        class,
                        requester: sender.map(|s| s.id),
                        key: routed_key,
                        via_port: via.sent_by_port(),
                        rport_requested: via.rport != Rport::Absent,
                        ua_register,
                        last_activity: now,
                        frame: at.frame,
                    },
                );
                new_leg = true;
                if ua_register
                    && self.ua_regs.len() < MAX_PENDING
                    && let Some(to) = msg.to()
                {
                    let uri = &to.addr.uri;
                    let mut keys = vec![resource_id(uri)];
                    keys.extend((1..=self.opts.replicas.min(63)).map(|n| replica_id(uri, n)));
                    self.ua_regs.push(UaReg {
                        txn: key,
                        adapter: at.dst,
                        aor: digest(&[&canonical(uri)]),
                        keys,
                        p1_then: None,
                        seen: 0,
                        deadline: None,
                        finding: None,
                    });
                }
            }
        }
        if let Some(t1) = t1_seen {
            let e = self.sender_t1.entry(at.src).or_insert(t1);
            *e = (*e).max(t1);
        }
        if judged && at.transport == Transport::Udp {
            if let Some((elapsed, due, base, k)) = early {
                self.sink.violation(Req::Txn1, at, raw, None, || {
                    texts(
                        format!("retransmission {k} too early for the doubling schedule"),
                        format!(
                            "at least {} after the first copy (T1 = {}, doubling, capped at T2)",
                            ms_text(due),
                            ms_text(base)
                        ),
                        format!("{} after the first copy", ms_text(elapsed)),
                    )
                });
            }
            if let Some((since, f)) = after_f {
                self.sink.violation(Req::Txn1, at, raw, None, || {
                    texts(
                        "retransmission after Timer F",
                        format!("no copy after 64·T1 = {}", ms_text(f)),
                        format!("a copy {} after the first", ms_text(since)),
                    )
                });
            }
        }
        if new_leg {
            self.new_request(at, msg, class, sender);
        }
    }

    /// Bookkeeping for the first copy of a request on a leg.
    fn new_request(&mut self, at: &At, msg: &Message<'_>, class: Class, sender: Option<Named>) {
        let now = ns(at.ts);
        // STAB-1: a query for the receiver's own ID.
        if class == Class::Query
            && let Some(s) = sender
            && let Some(key) = routing_key(msg, class)
        {
            let to_receiver =
                msg.request_uri().and_then(|u| u.peer_id()) == Some(key) || self.id2(at.dst) == key;
            if to_receiver && let Some(p) = self.peers.get_mut(&Pos::of(&s.id)) {
                p.stab_last = Some(now);
            }
        }
        // C-Q3: lookups in progress, per requester and key.
        if matches!(
            class,
            Class::Query | Class::Lookup | Class::Join | Class::ResourceRegister | Class::Transfer
        ) && let Some(key) = routing_key(msg, class)
        {
            let ck = chain_key(at.src, &key);
            let f = self.opts.timer_f().as_nanos() as Ns;
            if self.chains.len() >= MAX_CHAINS {
                self.chains.clear();
            }
            let chain = self.chains.entry(ck).or_insert(Chain {
                visited: Vec::new(),
                next: None,
                last: now,
            });
            if chain.next == Some(at.dst) && now - chain.last <= f {
                if chain.visited.len() < MAX_CHAIN_HOPS {
                    chain.visited.push(at.dst);
                }
            } else {
                chain.visited.clear();
                chain.visited.push(at.dst);
            }
            chain.next = None;
            chain.last = now;
        }
        // REPL-1: copies an adapter places for a UA's REGISTER.
        if sender.is_some()
            && matches!(class, Class::ResourceRegister | Class::Transfer)
            && self.ua_regs.iter().any(|u| u.adapter == at.src)
            && let Some(to) = msg.to()
        {
            let uri = &to.addr.uri;
            let copy = uri.params.replica.unwrap_or(0);
            let aor = digest(&[&canonical(uri)]);
            for u in self.ua_regs.iter_mut() {
                if u.adapter == at.src && u.aor == aor && copy < 64 {
                    u.seen |= 1 << copy;
                }
            }
        }
    }

    /// ID-2: the sender's Peer-ID is the one of the address in its own
    /// Peer URI.
    fn id2_of_sender(&mut self, at: &At, raw: &[u8], s: Named) {
        let Some(addr) = s.addr else { return };
        if addr.ip().is_unspecified() {
            return;
        }
        self.sink.judged(Req::Id2);
        let want = self.id2(addr);
        if want != s.id {
            self.sink.violation(Req::Id2, at, raw, None, || {
                texts(
                    format!("the sender's Peer-ID is not the one of its Peer URI's address {addr}"),
                    want.to_string(),
                    s.id.to_string(),
                )
            });
        }
    }

    /// NAT-3: once two answers agree that a source is seen at another
    /// address than the one it advertises, its requests must advertise the
    /// observed one after a stabilisation interval plus Timer F.
    fn nat3(&mut self, at: &At, raw: &[u8], s: Named) {
        let Some(obs) = self.observed.get(&at.src).copied() else {
            return;
        };
        let Some(adv) = s.addr else { return };
        if obs.count < 2 {
            return;
        }
        let grace = (self.opts.stabilize + self.opts.timer_f()).as_nanos() as Ns;
        if ns(at.ts) < obs.since + grace {
            return;
        }
        self.sink.judged(Req::Nat3);
        if adv != obs.addr {
            self.sink.violation(Req::Nat3, at, raw, None, || {
                texts(
                    "the sender still advertises an address other than the one its peers observe",
                    format!(
                        "Peer URI and Peer-ID of {} (received/rport of its answers since {})",
                        obs.addr,
                        Timestamp::from_nanos(obs.since)
                    ),
                    adv.to_string(),
                )
            });
        }
    }

    /// Records that peer `s` sent a message.
    fn seen_peer(
        &mut self,
        s: Named,
        at: &At,
        lifetime: Option<u32>,
        msg: &Message<'_>,
        class: Class,
    ) {
        let now = ns(at.ts);
        let f = self.timer_f;
        let tracked = self.peers.len();
        // One lookup whether the peer is known or new.
        let p = match self.peers.entry(Pos::of(&s.id)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if tracked >= self.opts.max_peers => {
                if !self.peers_full_noted {
                    self.peers_full_noted = true;
                    self.notes.push(format!(
                        "more than {} peers: later peers are not tracked (ring checks skip them)",
                        self.opts.max_peers
                    ));
                }
                return;
            }
            Entry::Vacant(e) => {
                let complete = if msg.is_request() {
                    matches!(class, Class::Join) || msg.method() == Some(&Method::Options)
                } else {
                    msg.dht_links().next().is_none()
                };
                self.counters.peers += 1;
                self.last_change = now;
                let mut p = PeerState::new();
                p.complete = complete;
                e.insert(p)
            }
        };
        p.last_sent = p.last_sent.max(now);
        if let Some(a) = s.addr {
            p.addr = Some(a);
            if self.by_addr.len() < self.opts.max_peers * 2 {
                self.by_addr.insert(a, s.id);
            }
        }
        // Sent from the address it advertises (no NAT between): already
        // mapped just above.
        if s.addr != Some(at.src) && self.by_addr.len() < self.opts.max_peers * 2 {
            self.by_addr.entry(at.src).or_insert(s.id);
        }
        if let Some(l) = lifetime {
            p.advertised = Some(p.advertised.map_or(l, |a| a.max(l)));
        }
        // A peer that speaks is not gone (a departed one only after it
        // could have finished leaving).
        match p.gone {
            Some(Gone::Silent(t)) if now > t => p.gone = None,
            Some(Gone::Left(t)) if now > t + f => p.gone = None,
            _ => {}
        }
    }

    // ----- responses -----

    fn response(
        &mut self,
        at: &At,
        raw: &[u8],
        msg: &Message<'_>,
        peer_id: Option<&DhtPeerId<'_>>,
        judged: bool,
    ) {
        let Some(via) = msg.top_via() else { return };
        let Some(status) = msg.status() else { return };
        let responder = peer_id.and_then(|d| named(&d.addr.uri));
        let lifetime = peer_id.map(|d| d.expires.unwrap_or(3600));

        // NAT-2 from the response alone: a bare `rport` echoed back, or an
        // rport filled without received.
        if judged && via.rport != Rport::Absent {
            self.sink.judged(Req::Nat2);
            let missing = match (via.rport, via.received) {
                (Rport::Requested, _) => Some("rport not filled in"),
                (Rport::Filled(_), None) => Some("received= missing"),
                _ => None,
            };
            if let Some(what) = missing {
                self.sink.violation(Req::Nat2, at, raw, None, || {
                    texts(
                        format!("response to a request with rport: {what}"),
                        "top Via with rport=<source port> and received=<source IP>",
                        format!(
                            "rport {:?}, received {:?}",
                            via.rport,
                            via.received.map(|r| r.to_string())
                        ),
                    )
                });
            }
        }

        if let Some(r) = responder {
            if judged {
                self.id2_of_sender(at, raw, r);
            }
            self.seen_peer(r, at, lifetime, msg, Class::Plain);
        }

        // Pair with the request.
        let Some(branch) = via.branch.as_deref() else {
            return;
        };
        let key = txn_key(branch, msg);
        let now = ns(at.ts);
        let Some(txn) = self.txns.get_mut(&key) else {
            // The request is not in the capture: only what the response
            // shows by itself is judged.
            if let Some(r) = responder {
                let class = Class::of_response(msg);
                self.p2p_response(at, raw, msg, status, r, class, None, judged);
            }
            return;
        };
        txn.last_activity = now;
        let class = txn.class;
        let requester = txn.requester;
        let routed_key = txn.key;
        let state_changing = class.changes_state() && requester.is_some();
        let via_port = txn.via_port;
        let rport_requested = txn.rport_requested;
        let ua_register = txn.ua_register;
        let req_frame = txn.frame;
        // The legs' sources, without an allocation per answer.
        let mut sources = [None; MAX_LEGS];
        for (s, l) in sources.iter_mut().zip(&txn.legs) {
            *s = Some(l.src);
        }
        let paired = txn
            .legs
            .iter()
            .position(|l| l.dst == at.src && l.src == at.dst);
        let Some(li) = paired else {
            // TXN-3 / NAT-2: a response that is not the reverse of any leg.
            let wrong_dst = txn.legs.iter().find(|l| l.dst == at.src).map(|l| l.src);
            let wrong_src = txn.legs.iter().find(|l| l.src == at.dst).map(|l| l.dst);
            if judged {
                if let Some(expected) = wrong_dst {
                    self.sink.judged(Req::Txn3);
                    self.sink
                        .violation(Req::Txn3, at, raw, Some(req_frame), || {
                            texts(
                                "response not sent to the request's source address and port",
                                expected.to_string(),
                                at.dst.to_string(),
                            )
                        });
                } else if let Some(expected) = wrong_src {
                    self.sink.judged(Req::Nat2);
                    self.sink
                        .violation(Req::Nat2, at, raw, Some(req_frame), || {
                            texts(
                                "response not sent from the socket that received the request",
                                expected.to_string(),
                                at.src.to_string(),
                            )
                        });
                }
            }
            return;
        };
        self.counters.paired += 1;
        if judged {
            self.sink.judged(Req::Txn3);
        }
        let leg = &mut txn.legs[li];
        let req_first = leg.first;
        let provisional = status < 200;
        let first_answer = !leg.any_response;
        if first_answer {
            leg.any_response = true;
            leg.first_response = now;
        }
        let udp_first_answer = first_answer && leg.transport == Transport::Udp;
        let waited = (udp_first_answer && leg.copies == 1).then_some((
            now - leg.first,
            leg.first_frame,
            leg.src,
            leg.dst,
        ));
        let mut changed_status: Option<u16> = None;
        let mut first_final = false;
        if !provisional {
            if leg.final_status == 0 {
                leg.final_status = status;
                leg.final_frame = at.frame;
                first_final = true;
            } else {
                if leg.copies_after_final > leg.answers_after_final {
                    leg.answers_after_final = leg.answers_after_final.saturating_add(1);
                }
                if leg.final_status != status {
                    changed_status = Some(leg.final_status);
                }
            }
        }
        let leg_src = leg.src;
        let leg_transport = leg.transport;
        let advertised = leg.advertised;
        let final_frame = leg.final_frame;

        // NAT-2 values: received/rport against the captured source.
        if judged
            && rport_requested
            && let (Rport::Filled(port), Some(ip)) = (via.rport, via.received)
        {
            self.sink.judged(Req::Nat2Values);
            let told = SocketAddr::new(ip, port);
            if leg_transport == Transport::Udp && !sources.contains(&Some(told)) {
                self.sink.violation(Req::Nat2Values, at, raw, Some(req_frame), || {
                    texts(
                        "received/rport differ from the request's source seen at the capture point (a NAT between them would explain it)",
                        leg_src.to_string(),
                        told.to_string(),
                    )
                });
            }
        }
        // NAT-3 bookkeeping: what the requester's source was told.
        if !provisional
            && status != 493
            && status < 400
            && let (Rport::Filled(port), Some(ip)) = (via.rport, via.received)
        {
            let told = SocketAddr::new(ip, port);
            if advertised == Some(told) {
                self.observed.remove(&leg_src);
            } else if advertised.is_some() && self.observed.len() < self.opts.max_peers {
                let window = 2 * self.opts.timer_f().as_nanos() as Ns;
                let e = self.observed.entry(leg_src).or_insert(Observed {
                    addr: told,
                    count: 0,
                    since: now,
                    last: now,
                });
                // Two answers in a row within 2·Timer F make it learned;
                // from then on it stays learned while answers agree.
                if e.addr == told && (e.count >= 2 || now - e.last <= window) {
                    e.count = e.count.saturating_add(1);
                    if e.count == 2 {
                        e.since = now;
                    }
                    e.last = now;
                } else {
                    *e = Observed {
                        addr: told,
                        count: 1,
                        since: now,
                        last: now,
                    };
                }
            }
        }
        // TXN-1: a request that waited without a copy (judged at the end
        // with the sender's T1).
        if let Some((wait, first_frame, src, dst)) = waited
            && judged_by(&self.opts, src)
            && wait > 150 * MS
            && self.waited.len() < MAX_PENDING
        {
            let f = self.sink.finding(
                Req::Txn1,
                &At {
                    frame: first_frame,
                    first_frame,
                    ts: Timestamp::from_nanos(now - wait),
                    src,
                    dst,
                    transport: Transport::Udp,
                },
                None,
                Some(at.frame),
                texts(
                    "request over UDP not retransmitted while it waited for its answer",
                    "a copy after T1",
                    format!("the first answer {} later, no copy", ms_text(wait)),
                ),
            );
            self.waited.push(Waited {
                sender: src,
                dst,
                first: now - wait,
                wait,
                finding: f,
            });
        }
        // TXN-2: the same final response to every copy (state-changing
        // requests; queries are answered from the current state).
        if let Some(before) = changed_status
            && state_changing
            && judged
        {
            self.sink.judged(Req::Txn2);
            self.sink
                .violation(Req::Txn2, at, raw, Some(final_frame), || {
                    texts(
                        "a retransmitted request got a different final response",
                        format!("{before} again"),
                        status.to_string(),
                    )
                });
        }
        if provisional {
            return;
        }
        // ID-7 at the receiver of a state-changing request.
        if first_final
            && state_changing
            && judged
            && let Some(q) = requester
        {
            let ip = via.received.unwrap_or(leg_src.ip());
            let port = match (leg_transport, via.rport) {
                (Transport::Tcp, _) => via_port,
                (_, Rport::Filled(p)) => p,
                _ => leg_src.port(),
            };
            let observed = SocketAddr::new(ip, port);
            let want = self.id2(observed);
            self.sink.judged(Req::Id7);
            let matches = want == q;
            if !matches && (200..400).contains(&status) {
                self.sink.violation(Req::Id7, at, raw, Some(req_frame), || {
                    texts(
                        format!(
                            "{} accepted although the requester's Peer-ID is not the one of its observed source {observed}",
                            class.name()
                        ),
                        "493 Undecipherable",
                        format!("{status} (Peer-ID {} , ID-2 of the source {})", short(&q), short(&want)),
                    )
                });
            } else if matches && status == 493 {
                self.sink.violation(Req::Id7, at, raw, Some(req_frame), || {
                    texts(
                        format!("493 although the requester's Peer-ID is the one of its observed source {observed}"),
                        "the request handled",
                        "493",
                    )
                });
            }
        }
        if ua_register
            && first_final
            && (200..300).contains(&status)
            && let Some(u) = self.ua_regs.iter_mut().find(|u| u.txn == key)
        {
            u.deadline = Some(now + self.opts.timer_f().as_nanos() as Ns);
            u.p1_then = responder
                .and_then(|r| self.peers.get(&Pos::of(&r.id)))
                .and_then(|p| p.p1)
                .map(|(_, p1)| p1);
            if judged_by(&self.opts, at.src) {
                u.finding = Some(self.sink.finding(
                    Req::Repl1,
                    at,
                    self.sink.keeps(Req::Repl1).then_some(raw),
                    Some(req_frame),
                    texts("", "", ""),
                ));
            }
        }
        let Some(r) = responder else { return };
        // QUERY-7 bookkeeping: the requester completed a transaction with
        // the responder (a final answer from it, carrying its DHT-PeerID);
        // the responder one with the requester only when the request was
        // state-changing and not refused with 493, i.e. passed ID-7 (a query's
        // DHT-PeerID is not verified, so it proves nothing). Any
        // transaction refreshes the lifetime (STAB-6, QUERY-1).
        if let Some(q) = requester
            && q != r.id
        {
            // Passing ID-7 is what counts, not the outcome: a notify
            // answered 302 (rectify) has been verified too.
            let accepted = class.changes_state() && status != 493;
            for (a, b, verifies) in [(q, r.id, true), (r.id, q, accepted)] {
                if let Some(p) = self.peers.get_mut(&Pos::of(&a))
                    && (p.verified.len() < MAX_VERIFIED_PER_PEER
                        || p.verified.contains_key(&Pos::of(&b)))
                {
                    let e = p.verified.entry(Pos::of(&b)).or_insert((false, now));
                    e.0 |= verifies;
                    e.1 = now;
                }
            }
        }
        // A leave answered 200: the leaver is gone; LEAVE-2 for the
        // answering peer.
        if matches!(class, Class::Join | Class::Leave) && (200..300).contains(&status) {
            self.last_change = now;
        }
        if class == Class::Leave
            && (200..300).contains(&status)
            && let Some(q) = requester
        {
            if let Some(p) = self.peers.get_mut(&Pos::of(&q))
                && p.gone.is_none()
            {
                p.gone = Some(Gone::Left(now));
            }
            if let Some(p) = self.peers.get_mut(&Pos::of(&r.id))
                && p.leaves_answered.len() < 64
            {
                p.leaves_answered.push((q, now));
            }
        }
        if first_final {
            self.p2p_response(
                at,
                raw,
                msg,
                status,
                r,
                class,
                Some((requester, routed_key, req_frame, leg_src, req_first)),
                judged,
            );
        }
    }

    /// The checks of an answer from peer `r`: its links (pcap.links-*,
    /// pcap.link-expiry) and, for routed REGISTERs, its routing
    /// (pcap.query-*) and placement (pcap.replica-placement).
    #[allow(clippy::too_many_arguments)]
    fn p2p_response(
        &mut self,
        at: &At,
        raw: &[u8],
        msg: &Message<'_>,
        status: u16,
        r: Named,
        class: Class,
        pair: Option<Paired>,
        judged: bool,
    ) {
        let now = ns(at.ts);
        let mut links = std::mem::take(&mut self.links);
        links.clear();
        for l in msg.dht_links() {
            if let Some(id) = l.addr.uri.peer_id() {
                links.push(LinkRef {
                    kind: l.link.kind,
                    depth: l.link.depth,
                    id,
                    pos: Pos::of(&id),
                    expires: l.expires,
                    addr: l.addr.uri.socket_addr(),
                });
            }
        }
        let p1 = links
            .iter()
            .find(|l| l.kind == LinkKind::P && l.depth == 1)
            .map(|l| l.id);
        let s1 = links
            .iter()
            .find(|l| l.kind == LinkKind::S && l.depth == 1)
            .map(|l| l.id);
        if judged {
            if !links.is_empty() {
                self.link_order(at, raw, &r, &links, p1, s1);
                let mut facts = std::mem::take(&mut self.facts);
                let complete = self.link_facts(&r, &links, &mut facts);
                if let Some(complete) = complete {
                    self.link_truth(
                        at,
                        raw,
                        &r,
                        &links,
                        &facts,
                        complete,
                        now,
                        pair.map(|p| p.4),
                    );
                }
                self.link_expiry(at, raw, &links, &facts, complete == Some(true), now);
                self.facts = facts;
            }
            let routing = msg.cseq().is_some_and(|c| c.method == Method::Register)
                && matches!(status, 200 | 302 | 404);
            if routing && matches!(class, Class::Query | Class::Join) {
                // QUERY-4: P1 (unless NULL) and S1; a lone peer reports nothing.
                // A first peer whose successor is still itself reports no
                // S1 (JOIN-8): judged once the responder has reported one.
                // A responder whose last S1 is known gone (left, or silent
                // for Timer F) may be alone again (its successor is itself).
                let had_s1 = self
                    .peers
                    .get(&Pos::of(&r.id))
                    .and_then(|p| p.s1)
                    .is_some_and(|(t, s, life)| {
                        now - t <= i64::from(life) * SEC
                            && self
                                .peers
                                .get(&Pos::of(&s))
                                .is_none_or(|p| p.gone.is_none())
                    });
                self.sink.judged(Req::Query4);
                if !links.is_empty() && s1.is_none() && had_s1 {
                    self.sink
                        .violation(Req::Query4, at, raw, pair.map(|p| p.2), || {
                            texts(
                                format!("{status} to a {} without an S1 link", class.name()),
                                "DHT-Link ...;link=S1",
                                format!("{} links, no S1", links.len()),
                            )
                        });
                }
            }
            if routing {
                let key = match pair {
                    Some((_, k, _, _, _)) => k,
                    None => response_key(msg, class),
                };
                if let Some(key) = key {
                    let requester = pair.and_then(|p| p.0);
                    let req_frame = pair.map(|p| p.2);
                    let req_src = pair.map(|p| p.3);
                    self.routing(
                        at,
                        raw,
                        msg,
                        status,
                        &r,
                        class,
                        key,
                        p1,
                        s1,
                        &links,
                        requester,
                        req_frame,
                        req_src,
                        pair.is_some(),
                    );
                }
            }
        }
        // Registrations stored: judged at the holder's next P1 report.
        if status == 200
            && pair.is_some()
            && matches!(class, Class::ResourceRegister | Class::Transfer)
            && msg.contacts().next().is_some()
            && let Some(to) = msg.to()
            && judged
            && self.placements.len() < MAX_PENDING
        {
            let uri = &to.addr.uri;
            let key = key_of(uri);
            let replica = uri.params.replica;
            let before = self
                .peers
                .get(&Pos::of(&r.id))
                .and_then(|p| p.p1)
                .map(|(_, p)| p);
            if let Some(before) = before {
                let req = if replica.is_some() {
                    Req::Repl3
                } else {
                    Req::Res1
                };
                let finding = self.sink.finding(
                    req,
                    at,
                    self.sink.keeps(req).then_some(raw),
                    pair.map(|p| p.2),
                    texts("", "", ""),
                );
                self.placements.push(Placement {
                    holder: r.id,
                    key,
                    replica,
                    before,
                    finding,
                });
            }
        }
        if judged && let Some(s) = s1 {
            self.stabilises(at, raw, &r, s, &links, now);
        }
        // The responder's latest P1 and S1 (after the checks, which judge
        // this answer against earlier ones).
        if !links.is_empty() {
            self.p1_report(r.id, now, p1);
            let s1_life = links
                .iter()
                .find(|l| l.kind == LinkKind::S && l.depth == 1)
                .and_then(|l| l.expires)
                .unwrap_or(0);
            if let (Some(p), Some(s)) = (self.peers.get_mut(&Pos::of(&r.id)), s1) {
                p.s1 = Some((now, s, s1_life));
            }
        }
        self.links = links;
    }

    /// STAB-1: a responder that reports a successor other than itself has
    /// queried a peer for that peer's own ID within two stabilisation
    /// intervals plus Timer F (one query may be skipped while the previous
    /// one is still pending) since it first reported one. Held until the
    /// end: it stands only when the capture shows the responder and that
    /// successor exchanging a message (else it does not hold their
    /// traffic).
    fn stabilises(&mut self, at: &At, raw: &[u8], r: &Named, s1: Id, links: &[LinkRef], now: Ns) {
        if s1 == r.id {
            return;
        }
        let Some(s1_addr) = links
            .iter()
            .find(|l| l.kind == LinkKind::S && l.depth == 1)
            .and_then(|l| l.addr)
        else {
            return;
        };
        let t = self.opts.stabilize.as_nanos() as Ns;
        let bound = 2 * t + self.opts.timer_f().as_nanos() as Ns + 200 * MS;
        let Some(p) = self.peers.get_mut(&Pos::of(&r.id)) else {
            return;
        };
        if p.left_at.is_some() {
            return;
        }
        let since = *p.succ_since.get_or_insert(now);
        let from = p.stab_last.map_or(since, |l| l.max(since));
        self.sink.judged(Req::Stab1);
        if now - from <= bound {
            return;
        }
        // One finding per missed stretch.
        p.stab_last = Some(now);
        let pair = ordered(at.src, s1_addr);
        let held = self.unstabilized.entry(pair).or_default();
        held.count += 1;
        if held.kept.len() < self.opts.max_findings.min(4) {
            let finding = self.sink.finding(
                Req::Stab1,
                at,
                self.sink.keeps(Req::Stab1).then_some(raw),
                None,
                texts(
                    "a peer with a successor queries it for its own ID every stabilisation interval",
                    format!(
                        "a stabilisation query within {} (2·T + Timer F)",
                        ms_text(bound)
                    ),
                    format!(
                        "none for {} while it reports S1 {}",
                        ms_text(now - from),
                        short(&s1)
                    ),
                ),
            );
            held.kept.push(finding);
        }
    }

    /// C-L1 and C-L2 on one link set.
    fn link_order(
        &mut self,
        at: &At,
        raw: &[u8],
        r: &Named,
        links: &[LinkRef],
        p1: Option<Id>,
        s1: Option<Id>,
    ) {
        self.sink.judged(Req::Cl1);
        let mut succ = std::mem::take(&mut self.succ);
        succ.clear();
        succ.extend(
            links
                .iter()
                .filter(|l| l.kind == LinkKind::S)
                .map(|l| (l.depth, l.id, l.pos)),
        );
        succ.sort_unstable_by_key(|s| s.0);
        let rp = Pos::of(&r.id);
        // The distance of the previous successor from the responder.
        let mut last: Option<Pos> = None;
        for (i, (depth, _, pos)) in succ.iter().enumerate() {
            let dist = rp.distance_to(*pos);
            let bad = if *pos == rp {
                Some("the responder itself".to_owned())
            } else if succ[..i].iter().any(|s| s.2 == *pos) {
                Some("a duplicate".to_owned())
            } else if last.is_some_and(|l| l >= dist) {
                Some("not after the previous successor, clockwise from the responder".to_owned())
            } else {
                None
            };
            if let Some(why) = bad {
                self.sink.violation(Req::Cl1, at, raw, None, || {
                    texts(
                        format!("successor list out of order: S{depth} is {why}"),
                        "S1..Sk strictly increasing clockwise from the responder, no duplicates",
                        succ.iter()
                            .map(|(d, id, _)| format!("S{d}={}", short(id)))
                            .collect::<Vec<_>>()
                            .join(" "),
                    )
                });
                break;
            }
            last = Some(dist);
        }
        self.succ = succ;
        if let Some(p) = p1 {
            self.sink.judged(Req::Cl2);
            // A P1 inside (R, S1) is a legitimate transient while the ring
            // converges (a notify is adopted when P1 is NULL, whatever S1
            // says): judged, like C-Q3, only on a quiet ring.
            let quiet = self.quiet(ns(at.ts));
            let bad = if p == r.id {
                Some("P1 is the responder itself")
            } else if quiet && s1.is_some_and(|s| p != s && Pos::of(&p).in_open(rp, Pos::of(&s))) {
                Some("P1 lies between the responder and its S1")
            } else {
                None
            };
            if let Some(why) = bad {
                self.sink.violation(Req::Cl2, at, raw, None, || {
                    texts(
                        why,
                        "P1 outside (responder, S1), not the responder",
                        format!(
                            "responder {}, P1 {}, S1 {}",
                            short(&r.id),
                            short(&p),
                            s1.map(|s| short(&s)).unwrap_or_default()
                        ),
                    )
                });
            }
        }
    }

    /// The facts of each link of an answer from `r` (into `out`, one per
    /// link), and whether `r` is complete (`None`: `r` is not tracked).
    fn link_facts(&self, r: &Named, links: &[LinkRef], out: &mut Vec<LinkFacts>) -> Option<bool> {
        let state = self.peers.get(&Pos::of(&r.id));
        let complete = state.map(|s| s.complete);
        let verified = state.filter(|s| s.complete).map(|s| &s.verified);
        out.clear();
        out.extend(links.iter().map(|l| {
            LinkFacts {
                linked: self
                    .peers
                    .get(&l.pos)
                    .map(|p| (p.last_sent, p.gone, p.advertised)),
                verified: verified.and_then(|v| v.get(&l.pos).copied()),
            }
        }));
        complete
    }

    /// QUERY-7, LEAVE-2 and C-L3 against what the capture showed.
    /// `asked` is when the request answered was first seen, if captured.
    #[allow(clippy::too_many_arguments)]
    fn link_truth(
        &mut self,
        at: &At,
        raw: &[u8],
        r: &Named,
        links: &[LinkRef],
        facts: &[LinkFacts],
        complete: bool,
        now: Ns,
        asked: Option<Ns>,
    ) {
        let grace = self.stale_grace;
        let f = self.timer_f;
        let mut unverified: Vec<LinkRef> = Vec::new();
        let mut after_leave: Vec<(LinkRef, Ns)> = Vec::new();
        let mut gone: Vec<(LinkRef, Gone)> = Vec::new();
        let leaves: &[(Id, Ns)] = match self.peers.get(&Pos::of(&r.id)) {
            Some(p) if !p.leaves_answered.is_empty() => &p.leaves_answered,
            _ => &[],
        };
        let rp = Pos::of(&r.id);
        for (l, facts) in links.iter().zip(facts) {
            if l.pos == rp {
                continue;
            }
            if complete && !facts.verified.is_some_and(|v| v.0) {
                unverified.push(*l);
            }
            let last_sent = facts.linked.map(|p| p.0);
            let back = last_sent.is_some_and(|t| t > now);
            if matches!(l.kind, LinkKind::P | LinkKind::S)
                && l.depth == 1
                && let Some((_, t)) = leaves.iter().find(|(x, _)| *x == l.id)
                && now > *t
                // An answer to a request that arrived before the leave was
                // answered may have been composed before it.
                && asked.is_none_or(|a| a > *t)
                && last_sent.is_none_or(|s| s <= *t + f)
            {
                after_leave.push((*l, *t));
            }
            if let Some(g) = facts.linked.and_then(|p| p.1)
                && !back
            {
                let since = match g {
                    Gone::Left(t) | Gone::Silent(t) => t,
                };
                if now > since + grace {
                    gone.push((*l, g));
                }
            }
        }
        if complete {
            self.sink.judged(Req::Query7);
        }
        for l in unverified {
            let describe = || {
                texts(
                    format!(
                        "reports {}{} {} without a successful transaction with it in the capture",
                        l.kind.letter(),
                        l.depth,
                        short(&l.id)
                    ),
                    "only peers it completed a transaction with",
                    format!(
                        "no transaction between {} and {}",
                        short(&r.id),
                        short(&l.id)
                    ),
                )
            };
            // Held until the end unless the capture already showed the two
            // talking: a capture that never shows their traffic (taken at
            // one host, or the harness's own per-case capture) cannot
            // tell whether they completed a transaction.
            let pair = l.addr.map(|x| ordered(at.src, x));
            let hold = pair.filter(|p| {
                !self.talked_full
                    && !self.talked.contains_key(p)
                    && (self.unverified.contains_key(p) || self.unverified.len() < MAX_TALK_PAIRS)
            });
            match hold {
                None => self.sink.violation(Req::Query7, at, raw, None, describe),
                Some(p) => {
                    let held = self.unverified.entry(p).or_default();
                    held.count += 1;
                    if held.kept.len() < self.opts.max_findings.min(4) {
                        held.kept.push(self.sink.finding(
                            Req::Query7,
                            at,
                            Some(raw),
                            None,
                            describe(),
                        ));
                    }
                }
            }
        }
        self.sink.judged(Req::Leave2);
        for (l, t) in after_leave {
            self.sink.violation(Req::Leave2, at, raw, None, || {
                texts(
                    format!(
                        "still reports {} as {}{} after answering its leave",
                        short(&l.id),
                        l.kind.letter(),
                        l.depth
                    ),
                    "the leaver's P1/S1 adopted in its place",
                    format!("{} after the 200", ms_text(now - t)),
                )
            });
        }
        self.sink.judged(Req::Query5);
        for (l, g) in gone {
            if self.stale.len() >= MAX_PENDING {
                self.counters.deferred_dropped += 1;
                continue;
            }
            let (how, since) = match g {
                Gone::Left(t) => ("left (its leave was answered 200)", t),
                Gone::Silent(t) => (
                    "stopped answering (a request to it got no answer for Timer F)",
                    t,
                ),
            };
            let finding = self.sink.finding(
                Req::Query5,
                at,
                self.sink.keeps(Req::Query5).then_some(raw),
                None,
                texts(
                    format!(
                        "reports {}{} {}, which {how}",
                        l.kind.letter(),
                        l.depth,
                        short(&l.id)
                    ),
                    format!(
                        "no report later than {} after {}",
                        ms_text(grace),
                        Timestamp::from_nanos(since)
                    ),
                    format!("reported {} after", ms_text(now - since)),
                ),
            );
            self.stale.push(StaleReport {
                peer: l.id,
                gone: g,
                finding,
            });
        }
    }

    /// C-L4 and STAB-6: a link's lifetime against what its peer advertised
    /// and when the responder last heard from it.
    fn link_expiry(
        &mut self,
        at: &At,
        raw: &[u8],
        links: &[LinkRef],
        facts: &[LinkFacts],
        complete: bool,
        now: Ns,
    ) {
        for (l, facts) in links.iter().zip(facts) {
            let Some(e) = l.expires else { continue };
            let Some(adv) = facts.linked.and_then(|p| p.2) else {
                continue;
            };
            self.sink.judged(Req::Cl4);
            if e > adv.saturating_add(1) {
                self.sink.violation(Req::Cl4, at, raw, None, || {
                    texts(
                        format!(
                            "{}{} {} reported with a lifetime longer than the peer advertised",
                            l.kind.letter(),
                            l.depth,
                            short(&l.id)
                        ),
                        format!("expires <= {adv}"),
                        format!("expires={e}"),
                    )
                });
            }
            if complete && let Some(last) = facts.verified.map(|v| v.1) {
                self.sink.judged(Req::Stab6);
                let age = now - last;
                if age > i64::from(adv) * SEC + 2 * SEC {
                    self.sink.violation(Req::Stab6, at, raw, None, || {
                        texts(
                            format!(
                                "reports {}{} {} after its entry expired",
                                l.kind.letter(),
                                l.depth,
                                short(&l.id)
                            ),
                            format!(
                                "no report later than its lifetime ({adv} s) after the last transaction with it"
                            ),
                            format!("{} after the last transaction", ms_text(age)),
                        )
                    });
                }
            }
        }
    }

    /// QUERY-2, QUERY-3, JOIN-5 and C-Q3 for an answer to a routed
    /// REGISTER, judged against what the responder reported itself.
    #[allow(clippy::too_many_arguments)]
    fn routing(
        &mut self,
        at: &At,
        raw: &[u8],
        msg: &Message<'_>,
        status: u16,
        r: &Named,
        class: Class,
        key: Id,
        p1: Option<Id>,
        s1: Option<Id>,
        links: &[LinkRef],
        requester: Option<Id>,
        req_frame: Option<u64>,
        req_src: Option<SocketAddr>,
        paired: bool,
    ) {
        let (kp, rp) = (Pos::of(&key), Pos::of(&r.id));
        let responsible_by_p1 = p1.map(|p| kp.in_open_closed(Pos::of(&p), rp));
        match (status, class) {
            (302, Class::Leave) => {}
            (302, _) => {
                self.sink.judged(Req::Query2);
                let contacts: Vec<Option<Named>> =
                    msg.contact_addrs().map(|c| named(&c.addr.uri)).collect();
                let contact = match contacts.as_slice() {
                    [Some(c)] => *c,
                    _ => {
                        self.sink.violation(Req::Query2, at, raw, req_frame, || {
                            texts(
                                "302 without exactly one Peer URI Contact",
                                "a single Contact naming a peer",
                                format!("{} Contact(s)", contacts.len()),
                            )
                        });
                        return;
                    }
                };
                let c = contact.id;
                // Only the S1 of this answer: an earlier report may be
                // of an earlier life of the peer.
                let why = if c == r.id {
                    Some("names the responder itself".to_owned())
                } else if key == r.id {
                    Some("the key is the responder's own Peer-ID".to_owned())
                } else if responsible_by_p1 == Some(true) {
                    Some(format!(
                        "the responder is responsible for the key by its own P1 {}",
                        short(&p1.unwrap_or(Id::ZERO))
                    ))
                } else if Pos::of(&c).in_open_closed(rp, kp)
                    || (s1 == Some(c) && kp.in_open(rp, Pos::of(&c)))
                    // A first peer whose successor is still itself
                    // (JOIN-8) reports no S1: the fallback cannot be judged.
                    || s1.is_none()
                {
                    None
                } else {
                    Some(format!(
                        "{} is not in (responder, key] and not its S1 {}",
                        short(&c),
                        s1.map(|s| short(&s)).unwrap_or_else(|| "(unknown)".into())
                    ))
                };
                if let Some(why) = why {
                    self.sink.violation(Req::Query2, at, raw, req_frame, || {
                        texts(
                            format!("302 for key {} makes no progress: {why}", short(&key)),
                            format!(
                                "a peer in ({}, {}], or S1 when the key is before S1",
                                short(&r.id),
                                short(&key)
                            ),
                            short(&c),
                        )
                    });
                    return;
                }
                // QUERY-2 SHOULD: the closest peer it reported itself.
                self.sink.judged(Req::Query2Closest);
                let cp = Pos::of(&c);
                if cp.in_open_closed(rp, kp) {
                    let gap = cp.distance_to(kp);
                    if let Some(better) = links
                        .iter()
                        .filter(|l| l.id != c && l.pos.in_open_closed(rp, kp))
                        .min_by_key(|l| l.pos.distance_to(kp))
                        .filter(|l| l.pos.distance_to(kp) < gap)
                    {
                        self.sink.violation(Req::Query2Closest, at, raw, req_frame, || {
                            texts(
                                "302 to a peer farther from the key than one the responder reports itself",
                                format!("{} ({}{})", short(&better.id), better.kind.letter(), better.depth),
                                short(&c),
                            )
                        });
                    }
                }
                // C-Q3: a redirect back to a peer the lookup already asked.
                // Judged only on a quiet ring: while peers join or fail,
                // a lookup may legitimately pass a peer twice (C-Q3 holds
                // at quiescence; C-G6 bounds convergence).
                if paired
                    && self.quiet(ns(at.ts))
                    && let Some(src) = req_src
                {
                    let ck = chain_key(src, &key);
                    if let Some(chain) = self.chains.get_mut(&ck) {
                        self.sink.judged(Req::Cq3Loop);
                        let revisit = contact.addr.is_some_and(|a| chain.visited.contains(&a));
                        chain.next = contact.addr;
                        if revisit {
                            self.sink.violation(Req::Cq3Loop, at, raw, req_frame, || {
                                texts(
                                    "302 names a peer this lookup already asked (a loop)",
                                    "a peer not yet on the path",
                                    contact.addr.map(|a| a.to_string()).unwrap_or_default(),
                                )
                            });
                        }
                    }
                }
            }
            (200 | 404, Class::Query) => {
                // QUERY-3: 200 for its own ID, 404 otherwise, and only
                // when responsible (by its own P1).
                self.sink.judged(Req::Query3);
                let want = if key == r.id { 200 } else { 404 };
                if status != want {
                    self.sink.violation(Req::Query3, at, raw, req_frame, || {
                        texts(
                            format!("wrong answer to a query for key {}", short(&key)),
                            format!(
                                "{want} (the key {} the responder's ID)",
                                if want == 200 { "is" } else { "is not" }
                            ),
                            status.to_string(),
                        )
                    });
                } else if responsible_by_p1 == Some(false) {
                    self.not_responsible(at, raw, req_frame, status, &key, p1);
                }
            }
            (200, Class::Join) if paired => {
                self.sink.judged(Req::Join5);
                if p1 == Some(key) || requester.is_some_and(|q| p1 == Some(q)) {
                    self.sink.violation(Req::Join5, at, raw, req_frame, || {
                        texts(
                            "the 200 admitting a joiner reports the joiner itself as P1",
                            "P1 = the admitting peer's predecessor before the join",
                            format!("P1 = {}", short(&key)),
                        )
                    });
                } else if responsible_by_p1 == Some(false) {
                    self.sink.judged(Req::Query3);
                    self.not_responsible(at, raw, req_frame, status, &key, p1);
                }
            }
            (200 | 404, Class::Lookup) => {
                self.sink.judged(Req::Query3);
                if responsible_by_p1 == Some(false) {
                    self.not_responsible(at, raw, req_frame, status, &key, p1);
                }
            }
            _ => {}
        }
    }

    fn not_responsible(
        &mut self,
        at: &At,
        raw: &[u8],
        req_frame: Option<u64>,
        status: u16,
        key: &Id,
        p1: Option<Id>,
    ) {
        self.sink.violation(Req::Query3, at, raw, req_frame, || {
            texts(
                format!(
                    "{status} for key {} by a peer not responsible for it by its own P1",
                    short(key)
                ),
                "302 towards the key (the key is outside (P1, responder])",
                format!("P1 {}", p1.map(|p| short(&p)).unwrap_or_default()),
            )
        });
    }

    /// A new P1 report of `holder`: judges the placements waiting for it.
    fn p1_report(&mut self, holder: Id, now: Ns, p1: Option<Id>) {
        if let Some(p) = self.peers.get_mut(&Pos::of(&holder)) {
            p.p1 = Some((now, p1));
        }
        if self.placements.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.placements.len() {
            if self.placements[i].holder != holder {
                i += 1;
                continue;
            }
            let pl = self.placements.swap_remove(i);
            // Judged only when the holder's predecessor was the same before
            // and after the 200: its range did not move meanwhile.
            if pl.before != p1 {
                continue;
            }
            let req = pl.finding.requirement;
            self.sink.judged(req);
            let responsible =
                p1.is_none_or(|p| Pos::of(&pl.key).in_open_closed(Pos::of(&p), Pos::of(&holder)));
            if !responsible {
                let mut f = pl.finding;
                let what = match pl.replica {
                    Some(n) => format!("replica {n}"),
                    None => "the primary copy".to_owned(),
                };
                f.message = format!(
                    "{what} (key {}) stored at {}, which is not responsible for it by its own P1 before and after",
                    short(&pl.key),
                    short(&holder)
                );
                f.expected =
                    "the peer whose range (P1, peer] holds the key (ID-4, ID-5, ID-6)".into();
                f.actual = format!(
                    "holder range ({}, {}]",
                    p1.map(|p| short(&p)).unwrap_or_default(),
                    short(&holder)
                );
                self.sink.push(f);
            }
        }
    }

    /// Expires transactions and deferred judgements by capture time.
    fn sweep(&mut self, full: bool) {
        let now = self.now;
        let f = self.opts.timer_f().as_nanos() as Ns;
        let ttl = if full { SEC } else { f + 5 * SEC };
        // Legs unanswered for Timer F: their destination stopped answering.
        let mut silent: Vec<(SocketAddr, Ns)> = Vec::new();
        let mut done: Vec<u64> = Vec::new();
        for (k, t) in self.txns.iter_mut() {
            for l in t.legs.iter_mut() {
                if !l.any_response && !l.dead_marked && now - l.first >= f {
                    l.dead_marked = true;
                    silent.push((l.dst, l.first));
                }
            }
            if now - t.last_activity > ttl {
                done.push(*k);
            }
        }
        for (dst, since) in silent {
            if let Some(id) = self.by_addr.get(&dst).copied()
                && let Some(p) = self.peers.get_mut(&Pos::of(&id))
                && p.gone.is_none()
                && p.last_sent <= since
            {
                p.gone = Some(Gone::Silent(since));
                self.last_change = now;
            }
        }
        for k in done {
            if let Some(t) = self.txns.remove(&k) {
                self.finish_txn(t);
            }
        }
        // Adapter registrations whose copies had Timer F to appear.
        let mut i = 0;
        while i < self.ua_regs.len() {
            let u = &self.ua_regs[i];
            let expired_without_answer = u.deadline.is_none() && !self.txns.contains_key(&u.txn);
            if expired_without_answer {
                self.ua_regs.swap_remove(i);
                continue;
            }
            if u.deadline.is_some_and(|d| now > d) {
                let u = self.ua_regs.swap_remove(i);
                self.judge_ua_reg(u);
                continue;
            }
            i += 1;
        }
    }

    fn judge_ua_reg(&mut self, u: UaReg) {
        let Some(mut f) = u.finding else { return };
        let r = self.opts.replicas.min(63);
        let want: u64 = (1u64 << (r + 1)) - 1;
        // A copy the adapter is responsible for itself is stored without a
        // message: missing copies are judged only when the adapter's P1
        // (when it answered the UA, and now) says it is not theirs.
        let adapter = self.by_addr.get(&u.adapter).copied();
        let p1_now = adapter
            .and_then(|a| self.peers.get(&Pos::of(&a)))
            .and_then(|p| p.p1)
            .map(|(_, p1)| p1);
        let (Some(me), Some(then), Some(now)) = (adapter, u.p1_then, p1_now) else {
            return;
        };
        self.sink.judged(Req::Repl1);
        let own = |k: &Id, p1: Option<Id>| p1.is_none_or(|p| k.in_open_closed(&p, &me));
        let missing_bits: u64 = (0..=r)
            .filter(|c| u.seen & (1 << c) == 0)
            .filter(|c| {
                let k = &u.keys[*c as usize];
                !own(k, then) && !own(k, now)
            })
            .fold(0, |acc, c| acc | (1 << c));
        if missing_bits != 0 {
            let missing: Vec<String> = (0..=r)
                .filter(|c| missing_bits & (1 << c) != 0)
                .map(|c| {
                    if c == 0 {
                        "primary".into()
                    } else {
                        format!("replica {c}")
                    }
                })
                .collect();
            f.message = format!(
                "the adapter answered a UA's REGISTER but did not register every copy within Timer F: {} missing",
                missing.join(", ")
            );
            f.expected =
                format!("REGISTERs for the primary and replicas 1..{r} (To with ;replica=N)");
            f.actual = format!("copies seen: {:#b}", u.seen & want);
            self.sink.push(f);
        }
    }

    /// TXN-2 for a transaction leaving the table.
    fn finish_txn(&mut self, t: Txn) {
        if !(t.class.changes_state() && t.requester.is_some()) {
            return;
        }
        for l in &t.legs {
            if l.final_status != 0
                && l.copies_after_final >= 2
                && l.answers_after_final == 0
                && judged_by(&self.opts, l.dst)
            {
                self.sink.judged(Req::Txn2);
                let f = self.sink.finding(
                    Req::Txn2,
                    &At {
                        frame: l.final_frame,
                        first_frame: l.final_frame,
                        ts: Timestamp::from_nanos(l.last_copy),
                        src: l.dst,
                        dst: l.src,
                        transport: l.transport,
                    },
                    None,
                    Some(t.frame),
                    texts(
                        "retransmissions of an answered request got no response",
                        format!("the final response {} again", l.final_status),
                        format!("{} copies after it, none answered", l.copies_after_final),
                    ),
                );
                self.sink.push(f);
            } else if l.final_status != 0 && l.copies_after_final > 0 {
                self.sink.judged(Req::Txn2);
            }
        }
    }

    /// Ends the pass: judges what was waiting for the future.
    /// Pushes the held findings of every pair the capture shows talking;
    /// returns how many findings, of how many pairs, it could not judge.
    fn release_held(
        &mut self,
        held: FxMap<(SocketAddr, SocketAddr), HeldReports>,
        req: Req,
    ) -> (u64, usize) {
        let mut unseen = (0u64, 0usize);
        for (pair, h) in held {
            if self.talked_full || self.talked.contains_key(&pair) {
                let n = h.kept.len() as u64;
                for f in h.kept {
                    self.sink.push(f);
                }
                for _ in n..h.count {
                    self.sink.count_only(req);
                }
            } else {
                unseen.0 += h.count;
                unseen.1 += 1;
            }
        }
        unseen
    }

    pub fn finish(mut self, capture: Stats) -> Analysis {
        // Every transaction and deferred judgement, as if time ran out.
        let keys: Vec<u64> = self.txns.keys().copied().collect();
        let now = self.now;
        let f = self.opts.timer_f().as_nanos() as Ns;
        for k in keys {
            if let Some(t) = self.txns.remove(&k) {
                for l in &t.legs {
                    // A request still waiting at the end without a copy.
                    let wait = now - l.first;
                    if !l.any_response
                        && l.copies == 1
                        && l.transport == Transport::Udp
                        && wait > 150 * MS
                        && judged_by(&self.opts, l.src)
                        && self.waited.len() < MAX_PENDING
                    {
                        let finding = self.sink.finding(
                            Req::Txn1,
                            &At {
                                frame: l.first_frame,
                                first_frame: l.first_frame,
                                ts: Timestamp::from_nanos(l.first),
                                src: l.src,
                                dst: l.dst,
                                transport: l.transport,
                            },
                            None,
                            None,
                            texts(
                                "request over UDP never answered and never retransmitted",
                                "a copy after T1",
                                format!("no copy in {}", ms_text(wait.min(f))),
                            ),
                        );
                        self.waited.push(Waited {
                            sender: l.src,
                            dst: l.dst,
                            first: l.first,
                            wait,
                            finding,
                        });
                    }
                }
                self.finish_txn(t);
            }
        }
        for u in std::mem::take(&mut self.ua_regs) {
            if u.deadline.is_some_and(|d| now > d) {
                self.judge_ua_reg(u);
            }
        }
        // TXN-1: waits without a copy, against the sender's own T1.
        let default_t1 = self.opts.t1_or_default().as_nanos() as Ns;
        for w in std::mem::take(&mut self.waited) {
            let t1 = match self.opts.t1 {
                Some(t) => {
                    (t.as_nanos() as Ns).max(self.sender_t1.get(&w.sender).copied().unwrap_or(0))
                }
                None => self.sender_t1.get(&w.sender).copied().unwrap_or(default_t1),
            };
            // Twice T1 plus 200 ms: a timer may fire late on a loaded
            // machine, and the rule is about a copy missing, not a late one.
            let due = t1 * 2 + 200 * MS;
            // A peer that left (or stopped) ends its transactions, and one
            // to a peer that left may be abandoned: not judged.
            let peer = |a: &SocketAddr| {
                self.by_addr
                    .get(a)
                    .and_then(|id| self.peers.get(&Pos::of(id)))
            };
            let stopped = peer(&w.sender).is_some_and(|p| {
                p.last_sent <= w.first + due || p.left_at.is_some_and(|l| l <= w.first + w.wait)
            });
            let dst_left =
                peer(&w.dst).is_some_and(|p| p.left_at.is_some_and(|l| l <= w.first + w.wait));
            if stopped || dst_left {
                continue;
            }
            if w.wait > due {
                let mut f = w.finding;
                f.expected = format!("a copy after T1 = {}", ms_text(t1));
                self.sink.push(f);
            }
        }
        // QUERY-7 and STAB-1: held findings stand when the pair talked at
        // some point.
        let held = std::mem::take(&mut self.unverified);
        let (n, pairs) = self.release_held(held, Req::Query7);
        if n > 0 {
            self.notes.push(format!(
                "QUERY-7 not judged for {n} report(s) of {pairs} pair(s) of peers the capture never shows exchanging a message (it does not hold their traffic)"
            ));
        }
        let held = std::mem::take(&mut self.unstabilized);
        let (n, pairs) = self.release_held(held, Req::Stab1);
        if n > 0 {
            self.notes.push(format!(
                "STAB-1 not judged for {n} stretch(es) of {pairs} peer(s) whose successor the capture never shows them talking to"
            ));
        }
        // C-L3: reports of gone peers stand if the peer never spoke again.
        for s in std::mem::take(&mut self.stale) {
            let last = self
                .peers
                .get(&Pos::of(&s.peer))
                .map_or(Ns::MIN, |p| p.last_sent);
            let spoke_again = match s.gone {
                Gone::Silent(t) => last > t,
                Gone::Left(t) => last > t + f,
            };
            if !spoke_again {
                self.sink.push(s.finding);
            }
        }
        if self.counters.transactions_evicted > 0 {
            self.notes.push(format!(
                "{} requests not tracked: more than {} transactions at once",
                self.counters.transactions_evicted, self.opts.max_transactions
            ));
        }
        if self.counters.deferred_dropped > 0 {
            self.notes.push(format!(
                "{} deferred judgements dropped (queue full)",
                self.counters.deferred_dropped
            ));
        }
        let unjudged_placements = self.placements.len();
        if unjudged_placements > 0 {
            self.notes.push(format!(
                "{unjudged_placements} stored registrations not judged: their holder reported no P1 afterwards"
            ));
        }
        let (findings, checks, requirements) = self.sink.finish();
        Analysis {
            findings,
            checks,
            requirements,
            counters: self.counters,
            capture,
            capture_problems: self.problems,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            notes: self.notes,
        }
    }
}

fn judged_by(opts: &Options, addr: SocketAddr) -> bool {
    opts.judges(addr)
}

fn new_leg_of(at: &At, sender: Option<Named>) -> Leg {
    let now = ns(at.ts);
    Leg {
        src: at.src,
        dst: at.dst,
        transport: at.transport,
        first: now,
        first_frame: at.frame,
        last_copy: now,
        copies: 1,
        t1: 0,
        early_reported: false,
        any_response: false,
        first_response: 0,
        final_status: 0,
        final_frame: 0,
        copies_after_final: 0,
        answers_after_final: 0,
        dead_marked: false,
        advertised: sender.and_then(|s| s.addr),
    }
}

/// The transaction of a message: branch, Call-ID and CSeq (RFC 3261
/// §17.2.3 matches on branch and method; Call-ID and CSeq keep apart
/// senders that reuse branches).
fn txn_key(branch: &str, msg: &Message<'_>) -> u64 {
    let call = msg.call_id().unwrap_or("");
    let (seq, method) = msg
        .cseq()
        .map(|c| (c.seq, c.method.as_str()))
        .unwrap_or((0, ""));
    // CANCEL and ACK share the INVITE's branch: the method keeps them apart.
    digest(&[
        branch.as_bytes(),
        call.as_bytes(),
        &seq.to_le_bytes(),
        method.as_bytes(),
    ])
}

fn chain_key(requester: SocketAddr, key: &Id) -> u64 {
    let addr = match requester.ip() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    digest(&[&addr, &requester.port().to_le_bytes(), &key.0])
}

/// The key a REGISTER is routed by (PROFILE §4, §5, §8).
fn routing_key(msg: &Message<'_>, class: Class) -> Option<Id> {
    let to = msg.to()?;
    match class {
        Class::Query | Class::Join | Class::Notify | Class::Leave => to.addr.uri.peer_id(),
        Class::Lookup | Class::ResourceRegister | Class::Transfer => {
            if resource_host(&to.addr.uri) {
                Some(key_of(&to.addr.uri))
            } else {
                None
            }
        }
        Class::Plain => None,
    }
}

/// The key of an answer whose request is not in the capture (To is echoed).
fn response_key(msg: &Message<'_>, class: Class) -> Option<Id> {
    routing_key(msg, class)
}

fn resource_host(uri: &Uri<'_>) -> bool {
    !matches!(&uri.host, Host::Domain(d) if d.is_empty())
}

/// The requirement a parser deviation breaks, for its sender.
fn deviation_req(d: Deviation, transport: Transport) -> Req {
    match d {
        Deviation::BareLf | Deviation::DhtParamAlias | Deviation::LegacyDhtToken => Req::Wire6,
        Deviation::UpperHexId => Req::Id1,
        Deviation::ShortIdParam | Deviation::PeerUriWithoutPort => Req::Wire3,
        Deviation::PeerIdNotOfAddress => Req::Id2,
        Deviation::MissingContentLength if transport == Transport::Udp => Req::Wire1Udp,
        Deviation::MissingRequireDht | Deviation::MissingSupportedDht => Req::Wire2,
        Deviation::MissingDhtPeerId
        | Deviation::DuplicateDhtPeerId
        | Deviation::DhtPeerIdMissingParam
        | Deviation::DhtPeerIdWithoutId => Req::Wire4,
        Deviation::LinkWithoutExpires | Deviation::LinkExpired | Deviation::LinkWithoutId => {
            Req::Wire5
        }
        Deviation::UnknownDhtOrAlgorithm => Req::Wire10,
        _ => Req::from_id(d.requirement()).unwrap_or(Req::Wire1),
    }
}

/// A short, printable excerpt of the message around `offset`.
fn excerpt(raw: &[u8], offset: usize) -> String {
    let start = raw[..offset.min(raw.len())]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let end = raw[start..]
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .map_or(raw.len(), |p| start + p);
    let line = String::from_utf8_lossy(&raw[start..end.min(start + 160)]);
    line.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2psip_wire::Profile;

    #[test]
    fn excerpt_is_the_line_around_the_offset() {
        let raw = b"REGISTER sip:a SIP/2.0\r\nTo: <sip:x>\r\n\r\n";
        assert_eq!(excerpt(raw, 26), "To: <sip:x>");
        assert_eq!(excerpt(raw, 0), "REGISTER sip:a SIP/2.0");
    }

    #[test]
    fn txn_key_separates_methods_and_call_ids() {
        let a = b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5;branch=z9hG4bK1\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let b = String::from_utf8_lossy(a).replace("c1", "c2");
        let pa = parse(a, ParseOptions::lenient()).unwrap();
        let pb = parse(b.as_bytes(), ParseOptions::lenient()).unwrap();
        assert_ne!(
            txn_key("z9hG4bK1", &pa.message),
            txn_key("z9hG4bK1", &pb.message)
        );
    }

    #[test]
    fn profile_is_used_for_ids() {
        let mut c = Checker::new(Options {
            profile: Profile::Sipping02,
            ..Options::default()
        });
        let a: SocketAddr = "10.0.0.1:5060".parse().unwrap();
        assert_eq!(c.id2(a), p2psip_wire::id::legacy_node_id(a.ip(), a.port()));
    }
}
