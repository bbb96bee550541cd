/*!
The harness's view of the ring: what each live node says about itself
(read with node queries, CHECKS.md "Reading a peer's state without
changing it") next to what an ideal ring of the live IDs would say
(`p2psip_wire::Ring`, computed from `wire` alone, never from a node).

A node query is a REGISTER whose To is the peer's own Peer URI, without
Contact or Expires; the 200 carries P1, S1..S4 and fingers (QUERY-3,
QUERY-4) and must not change the peer's state (QUERY-1). A snapshot
sends one to every running node at once.
*/

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2psip_wire::build::{self, QueryKey};
use p2psip_wire::{Id, LinkKind, LinkType, Message, Peer, Ring, Transport};

use crate::puppet::{Matcher, Puppet, Received};

/// What one node reported about its neighbours.
#[derive(Debug, Clone)]
pub struct NodeLinks {
    /// The responder, per its DHT-PeerID.
    pub responder: Option<Peer>,
    pub status: u16,
    pub pred: Option<Peer>,
    /// S1, S2, ... in depth order (gaps skipped).
    pub succ: Vec<Peer>,
    /// (i, Fi) in increasing i.
    pub fingers: Vec<(u8, Peer)>,
    /// Every link with its `expires` (C-L4).
    pub all: Vec<(LinkType, Peer, Option<u32>)>,
    pub response: Received,
}

/// What a node query got.
#[derive(Debug, Clone)]
pub enum Reading {
    Links(Box<NodeLinks>),
    /// No answer before the deadline.
    NoAnswer,
}

/// The links of every running node, read at about the same time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    /// (name, peer, reading) per queried node.
    pub nodes: Vec<(String, Peer, Reading)>,
    /// The live IDs when it was taken (the oracle's L).
    pub ring: Ring,
}

/// Reads the DHT-Link set of a response.
pub fn links_of(r: &Received) -> Option<NodeLinks> {
    let m: &Message<'_> = r.message.as_ref()?;
    let mut pred = None;
    let mut succ: Vec<(u8, Peer)> = Vec::new();
    let mut fingers: Vec<(u8, Peer)> = Vec::new();
    let mut all = Vec::new();
    for l in m.dht_links() {
        let Some(p) = l.addr.uri.peer() else {
            continue;
        };
        all.push((l.link, p, l.expires));
        match l.link.kind {
            LinkKind::P if l.link.depth == 1 => pred = pred.or(Some(p)),
            LinkKind::P => {}
            LinkKind::S => succ.push((l.link.depth, p)),
            LinkKind::F => fingers.push((l.link.depth, p)),
        }
    }
    succ.sort_by_key(|(d, _)| *d);
    fingers.sort_by_key(|(d, _)| *d);
    Some(NodeLinks {
        responder: m.sender_peer(),
        status: m.status().unwrap_or(0),
        pred,
        succ: succ.into_iter().map(|(_, p)| p).collect(),
        fingers,
        all,
        response: r.clone(),
    })
}

/// One node query for `target`'s own ID, retransmitted as a client
/// transaction would (T1 doubling, TXN-1) until an answer or `deadline`.
pub async fn query(
    obs: &Puppet,
    target: Peer,
    key: Id,
    t1: Duration,
    deadline: Instant,
) -> Option<Received> {
    let txn = obs.txn();
    let qk = if key == target.id {
        QueryKey::Peer(target)
    } else {
        QueryKey::Key(key)
    };
    let msg = build::query(&obs.identity(), target.addr, &txn, qk);
    let bytes = p2psip_wire::print(&msg);
    let m = Matcher::response_to(&txn.branch, &[]).from(target.addr);
    let mut gap = t1.max(Duration::from_millis(10));
    loop {
        // A send error is like a lost datagram.
        let _ = obs
            .send_bytes(target.addr, Transport::Udp, &bytes, &[], Duration::ZERO)
            .await;
        let next = (Instant::now() + gap).min(deadline);
        while let Some(r) = obs.inbox().wait(&m, next).await {
            // Provisional responses do not end a transaction.
            if r.status().is_some_and(|s| s >= 200) {
                return Some(r);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        gap = (gap * 2).min(Duration::from_secs(4));
    }
}

/// Reads one node's links.
pub async fn read(obs: &Puppet, target: Peer, t1: Duration, deadline: Instant) -> Reading {
    match query(obs, target, target.id, t1, deadline).await {
        Some(r) => match links_of(&r) {
            Some(l) => Reading::Links(Box::new(l)),
            None => Reading::NoAnswer,
        },
        None => Reading::NoAnswer,
    }
}

/// Queries every node of `nodes` at once.
pub async fn snapshot(
    obs: &Arc<Puppet>,
    nodes: &[(String, Peer)],
    ring: Ring,
    t1: Duration,
    deadline: Instant,
) -> Snapshot {
    let mut set = tokio::task::JoinSet::new();
    for (i, (_, peer)) in nodes.iter().enumerate() {
        let obs = obs.clone();
        let peer = *peer;
        set.spawn(async move { (i, read(&obs, peer, t1, deadline).await) });
    }
    let mut readings: Vec<Option<Reading>> = vec![None; nodes.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, r)) = done {
            readings[i] = Some(r);
        }
    }
    Snapshot {
        at: Instant::now(),
        nodes: nodes
            .iter()
            .zip(readings)
            .map(|((n, p), r)| (n.clone(), *p, r.unwrap_or(Reading::NoAnswer)))
            .collect(),
        ring,
    }
}

/// The address of the peer whose ID is `id`, among `peers`.
pub fn addr_of(peers: &[(String, Peer)], id: &Id) -> Option<SocketAddr> {
    peers.iter().find(|(_, p)| p.id == *id).map(|(_, p)| p.addr)
}
