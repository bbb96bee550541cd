/*!
The capture side of `pcap replay`: which requests to replay, what was
answered to them, and how addresses and Peer-IDs map onto a fresh overlay.
No I/O besides reading the capture; the harness sends and compares.

A *conversation* is what one endpoint (the replayed one) sent to one
counterpart (the peer a fresh IUT stands in for), each request once
(retransmissions are counted, not repeated), with the counterpart's
final answer as recorded. [`read`] makes two streaming passes over the
file: the first counts requests per sender and per destination (so that
the defaults can pick the busiest endpoint and its main counterpart) and
notes when each address was active; the second collects the conversation.

[`map`] places every peer the conversation mentions on a fresh loopback
address whose Peer-ID keeps the peer's position on the ring relative to
every other ID the conversation mentions, and rewrites requests through
that map. [`compare`] judges a fresh answer against the recorded one.
*/

pub mod compare;
pub mod map;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::SocketAddr;

pub use p2psip_capture::Transport;
use p2psip_capture::{CaptureError, CaptureReader, Limits, Timestamp};
use p2psip_wire::resource::key_of;
use p2psip_wire::{Class, Id, LinkKind, Message, ParseOptions, Profile, Uri, parse, peer_id};

pub use compare::{Context, Difference, Fresh, compare};
pub use map::{Mapping, cell, rewrite};

use crate::shape::{ResponseShape, shape_of};

/// The answer the counterpart gave in the capture.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub frame: u64,
    pub ts: Timestamp,
    pub shape: ResponseShape,
    /// The first Contact's peer (a 302's target).
    pub contact: Option<SocketAddr>,
    /// Profile deviations the lenient parser noted in it (their names).
    pub deviations: Vec<&'static str>,
    /// The peers its P and S links name.
    pub neighbours: BTreeSet<SocketAddr>,
}

/// One request of the conversation and its recorded answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Frame of its first copy.
    pub frame: u64,
    pub ts: Timestamp,
    pub transport: Transport,
    /// The request as first sent.
    pub raw: Vec<u8>,
    pub class: Class,
    pub method: String,
    /// Copies seen (1: never retransmitted).
    pub copies: u32,
    /// The final answer, if the capture holds one.
    pub response: Option<Recorded>,
}

/// What one endpoint sent to one counterpart.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub endpoint: SocketAddr,
    /// The peer the endpoint's requests name as their sender when that is
    /// another port of the endpoint's IP: over TCP a peer sends from an
    /// ephemeral port, and its Peer-ID and Via name its listening address.
    pub identity: Option<SocketAddr>,
    pub counterpart: SocketAddr,
    pub exchanges: Vec<Exchange>,
    /// Peers the conversation names (ID-2 consistent Peer URIs), endpoint
    /// and counterpart included.
    pub peers: BTreeMap<SocketAddr, Id>,
    /// Other IDs it names (query keys, Resource-IDs), which stay as they
    /// are.
    pub keys: BTreeSet<Id>,
    /// Requests per sender in the whole capture, busiest first.
    pub senders: Vec<(SocketAddr, u64)>,
    /// Requests of the endpoint to other destinations (not replayed).
    pub elsewhere: u64,
    /// When each address was first and last seen sending.
    pub active: HashMap<SocketAddr, (Timestamp, Timestamp)>,
    /// Requests beyond [`ReadOptions::max_exchanges`], not kept.
    pub dropped: u64,
    /// The overlay name the conversation's DHT-PeerIDs carry.
    pub overlay: Option<String>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The endpoint to replay (default: the sender of most requests).
    pub endpoint: Option<SocketAddr>,
    /// The counterpart (default: the destination of most of them).
    pub counterpart: Option<SocketAddr>,
    pub profile: Profile,
    /// Requests kept; the rest are counted in [`Conversation::dropped`].
    pub max_exchanges: usize,
    pub limits: Limits,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            endpoint: None,
            counterpart: None,
            profile: Profile::DsipChord,
            max_exchanges: 10_000,
            limits: Limits::default(),
        }
    }
}

/// Why no conversation could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Capture(#[from] CaptureError),
    #[error("the capture holds no SIP request")]
    NoRequests,
    #[error("{endpoint} sent no request in the capture; senders: {senders}")]
    NotASender {
        endpoint: SocketAddr,
        senders: String,
    },
    #[error("{endpoint} sent no request to {counterpart}; its destinations: {destinations}")]
    NotADestination {
        endpoint: SocketAddr,
        counterpart: SocketAddr,
        destinations: String,
    },
}

/// A SIP message of the capture, parsed leniently.
struct Sip<'a> {
    frame: u64,
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    payload: &'a [u8],
    message: Message<'a>,
    deviations: Vec<&'static str>,
}

fn each_sip<R: Read>(
    reader: R,
    opts: &ReadOptions,
    mut f: impl FnMut(Sip<'_>),
) -> Result<(), CaptureError> {
    let mut capture = CaptureReader::with_limits(reader, opts.limits)?;
    capture.for_each(|event| {
        let Some((at, payload)) = crate::sink::At::of_sip(&event) else {
            return;
        };
        let wire_transport = match at.transport {
            Transport::Udp => p2psip_wire::Transport::Udp,
            Transport::Tcp => p2psip_wire::Transport::Tcp,
        };
        let popts = ParseOptions::lenient()
            .with_profile(opts.profile)
            .with_transport(wire_transport)
            .without_peer_id_check();
        let Ok(parsed) = parse(payload, popts) else {
            return;
        };
        let deviations = parsed.warnings.iter().map(|(d, _)| d.message()).collect();
        f(Sip {
            frame: at.frame,
            ts: at.ts,
            src: at.src,
            dst: at.dst,
            transport: at.transport,
            payload,
            message: parsed.message,
            deviations,
        });
    })
}

/// Reads the conversation; `open` opens the capture afresh for each of
/// the two passes.
pub fn read<R: Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    opts: &ReadOptions,
) -> Result<Conversation, ReplayError> {
    // Pass 1: who sent how many requests to whom, and when each address
    // was active.
    let mut per_sender: HashMap<SocketAddr, u64> = HashMap::new();
    let mut per_pair: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    let mut active: HashMap<SocketAddr, (Timestamp, Timestamp)> = HashMap::new();
    each_sip(open().map_err(CaptureError::Io)?, opts, |m| {
        let span = active.entry(m.src).or_insert((m.ts, m.ts));
        span.1 = m.ts;
        if m.message.is_request() {
            *per_sender.entry(m.src).or_default() += 1;
            *per_pair.entry((m.src, m.dst)).or_default() += 1;
        }
    })?;
    let mut senders: Vec<(SocketAddr, u64)> = per_sender.into_iter().collect();
    senders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let endpoint = match opts.endpoint {
        Some(e) if senders.iter().any(|(s, _)| *s == e) => e,
        Some(e) => {
            return Err(ReplayError::NotASender {
                endpoint: e,
                senders: listing(&senders),
            });
        }
        None => senders.first().ok_or(ReplayError::NoRequests)?.0,
    };
    let mut destinations: Vec<(SocketAddr, u64)> = per_pair
        .iter()
        .filter(|((s, _), _)| *s == endpoint)
        .map(|((_, d), n)| (*d, *n))
        .collect();
    destinations.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let counterpart = match opts.counterpart {
        Some(c) if destinations.iter().any(|(d, _)| *d == c) => c,
        Some(c) => {
            return Err(ReplayError::NotADestination {
                endpoint,
                counterpart: c,
                destinations: listing(&destinations),
            });
        }
        None => destinations.first().ok_or(ReplayError::NoRequests)?.0,
    };
    let elsewhere = destinations
        .iter()
        .filter(|(d, _)| *d != counterpart)
        .map(|(_, n)| n)
        .sum();

    // Pass 2: the conversation.
    let mut conv = Conversation {
        endpoint,
        identity: None,
        counterpart,
        exchanges: Vec::new(),
        peers: BTreeMap::new(),
        keys: BTreeSet::new(),
        senders,
        elsewhere,
        active,
        dropped: 0,
        overlay: None,
    };
    let mut index: HashMap<TxnKey, usize> = HashMap::new();
    each_sip(open().map_err(CaptureError::Io)?, opts, |m| {
        let Some(key) = txn_key(&m.message) else {
            return;
        };
        if m.message.is_request() && m.src == endpoint && m.dst == counterpart {
            if let Some(&i) = index.get(&key) {
                conv.exchanges[i].copies += 1;
                return;
            }
            if conv.exchanges.len() >= opts.max_exchanges {
                conv.dropped += 1;
                return;
            }
            let class = Class::of_request(&m.message);
            if conv.identity.is_none() {
                conv.identity = m
                    .message
                    .sender_peer()
                    .filter(|p| p.addr != endpoint && p.addr.ip() == endpoint.ip())
                    .filter(|p| p.id_matches_addr())
                    .map(|p| p.addr);
            }
            if conv.overlay.is_none() {
                conv.overlay = overlay_of(&m.message);
            }
            mentions(&m.message, class, &mut conv.peers, &mut conv.keys);
            index.insert(key, conv.exchanges.len());
            conv.exchanges.push(Exchange {
                frame: m.frame,
                ts: m.ts,
                transport: m.transport,
                raw: m.payload.to_vec(),
                class,
                method: m
                    .message
                    .method()
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default(),
                copies: 1,
                response: None,
            });
        } else if !m.message.is_request() && m.src == counterpart && m.dst == endpoint {
            let final_answer = m.message.status().is_some_and(|s| s >= 200);
            let Some(&i) = index.get(&key) else {
                return;
            };
            let ex = &mut conv.exchanges[i];
            if !final_answer || ex.response.is_some() {
                return;
            }
            mentions(&m.message, ex.class, &mut conv.peers, &mut conv.keys);
            if conv.overlay.is_none() {
                conv.overlay = overlay_of(&m.message);
            }
            ex.response = Some(Recorded {
                frame: m.frame,
                ts: m.ts,
                shape: shape_of(&m.message, Some(ex.class)),
                contact: first_contact(&m.message),
                deviations: m.deviations,
                neighbours: neighbours(&m.message),
            });
        }
    })?;
    // The two ends are peers whatever their messages said of themselves.
    conv.peers
        .entry(endpoint)
        .or_insert_with(|| peer_id(endpoint.ip(), endpoint.port()));
    conv.peers
        .entry(counterpart)
        .or_insert_with(|| peer_id(counterpart.ip(), counterpart.port()));
    Ok(conv)
}

fn listing(counts: &[(SocketAddr, u64)]) -> String {
    let mut parts: Vec<String> = counts
        .iter()
        .take(10)
        .map(|(a, n)| format!("{a} ({n})"))
        .collect();
    if counts.len() > 10 {
        parts.push(format!("... {} more", counts.len() - 10));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// A transaction: top branch, Call-ID, CSeq number and method.
type TxnKey = (String, String, u32, String);

fn txn_key(m: &Message<'_>) -> Option<TxnKey> {
    let branch = m.top_via()?.branch.as_deref()?.to_owned();
    let call = m.call_id()?.to_owned();
    let cseq = m.cseq()?;
    Some((branch, call, cseq.seq, cseq.method.as_str().to_owned()))
}

/// The peers a message's P and S links name.
pub fn neighbours(m: &Message<'_>) -> BTreeSet<SocketAddr> {
    m.dht_links()
        .filter(|l| l.link.kind != LinkKind::F)
        .filter_map(|l| l.addr.uri.socket_addr())
        .collect()
}

/// The P1 and S1..Sk (k = `successors`) of `me` in an overlay of
/// `members` (addresses; ID-2 Peer-IDs), as a set of addresses.
pub fn expected_neighbours(
    me: SocketAddr,
    members: &[SocketAddr],
    successors: usize,
) -> (Option<SocketAddr>, Vec<SocketAddr>) {
    let id = peer_id(me.ip(), me.port());
    let mut others: Vec<SocketAddr> = members.iter().copied().filter(|a| *a != me).collect();
    others.sort_by_key(|a| id.distance_to(&peer_id(a.ip(), a.port())));
    others.dedup();
    let k = successors.min(others.len());
    (others.last().copied(), others[..k].to_vec())
}

fn overlay_of(m: &Message<'_>) -> Option<String> {
    m.dht_peer_id()?.overlay.as_deref().map(str::to_owned)
}

/// The first Contact's address, when it is a Peer URI.
pub fn first_contact(m: &Message<'_>) -> Option<SocketAddr> {
    let c = m.contact_addrs().next()?;
    c.addr.uri.peer_id()?;
    c.addr.uri.socket_addr()
}

/// Records the peers and keys a message names.
fn mentions(
    m: &Message<'_>,
    class: Class,
    peers: &mut BTreeMap<SocketAddr, Id>,
    keys: &mut BTreeSet<Id>,
) {
    let mut note = |uri: &Uri<'_>| {
        let Some(id) = uri.peer_id() else {
            return;
        };
        match uri.socket_addr() {
            Some(addr) if id == peer_id(addr.ip(), addr.port()) => {
                peers.insert(addr, id);
            }
            _ => {
                keys.insert(id);
            }
        }
    };
    if let Some(u) = m.request_uri() {
        note(u);
    }
    if let Some(f) = m.from() {
        note(&f.addr.uri);
    }
    if let Some(t) = m.to() {
        note(&t.addr.uri);
    }
    if let Some(p) = m.dht_peer_id() {
        note(&p.addr.uri);
    }
    for l in m.dht_links() {
        note(&l.addr.uri);
    }
    for c in m.contact_addrs() {
        note(&c.addr.uri);
    }
    if matches!(
        class,
        Class::ResourceRegister | Class::Lookup | Class::Transfer
    ) && let Some(t) = m.to()
    {
        keys.insert(key_of(&t.addr.uri));
    }
}
