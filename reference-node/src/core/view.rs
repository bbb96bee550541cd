/*!
Read-only views of a node, for tests, simulators and logs.
*/

use p2psip_wire::build::Link;
use p2psip_wire::{Id, Peer};

use super::time::Time;
use super::{Config, Node, Phase as P};

/// The phase a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Joining,
    Member,
    Leaving,
    Stopped,
}

/// The state of a node at one moment, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub me: Peer,
    pub phase: Phase,
    /// The predecessor the node holds (verified or not).
    pub predecessor: Option<Peer>,
    /// S1..Sr (empty: the node is its own successor).
    pub successors: Vec<Peer>,
    /// The distinct fingers `(i, peer)` (QUERY-4).
    pub fingers: Vec<(u8, Peer)>,
    /// Stored records (primaries and replicas) and their bindings.
    pub records: usize,
    pub bindings: usize,
    /// Registrations this node made as adapter (RES-4).
    pub adapter_registrations: usize,
    pub client_transactions: usize,
    pub server_transactions: usize,
    /// Approximate bytes held ([`Node::memory`]).
    pub memory: usize,
}

impl Node {
    /// This node as it names itself (WIRE-4).
    pub fn me(&self) -> Peer {
        self.me.peer
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The latest time the node was given.
    pub fn now(&self) -> Time {
        self.now
    }

    pub fn phase(&self) -> Phase {
        match self.phase {
            P::Joining(_) => Phase::Joining,
            P::Member(_) => Phase::Member,
            P::Leaving(_) => Phase::Leaving,
            P::Stopped => Phase::Stopped,
        }
    }

    pub fn predecessor(&self) -> Option<Peer> {
        self.table().and_then(|t| t.pred())
    }

    pub fn successors(&self) -> Vec<Peer> {
        self.table().map(|t| t.successors()).unwrap_or_default()
    }

    /// The distinct fingers `(i, peer)` the node would report now.
    pub fn fingers(&self) -> Vec<(u8, Peer)> {
        self.table()
            .map(|t| t.fingers(self.now))
            .unwrap_or_default()
    }

    /// The DHT-Link set the node would report now (QUERY-4).
    pub fn reported_links(&self) -> Vec<Link> {
        self.links()
    }

    /// Keys of the records this node stores.
    pub fn stored_keys(&self) -> Vec<Id> {
        self.store.keys().copied().collect()
    }

    /// The Contact URIs stored at `key`, live ones only.
    pub fn stored_contacts(&self, key: &Id) -> Vec<String> {
        self.store
            .contacts(key, self.now)
            .iter()
            .map(|c| c.addr.uri.to_string())
            .collect()
    }

    /// Approximate bytes this node holds: its struct, tables, stored
    /// registrations, transactions and queued output.
    pub fn memory(&self) -> usize {
        self.memory_parts().iter().map(|(_, n)| n).sum()
    }

    /// [`Node::memory`] by part, for finding what grows.
    pub fn memory_parts(&self) -> [(&'static str, usize); 9] {
        [
            (
                "node",
                std::mem::size_of::<Node>() + self.cfg.overlay.capacity() * 2,
            ),
            ("table", self.table().map_or(0, |t| t.memory())),
            ("store", self.store.memory()),
            ("client transactions", self.txns.memory()),
            ("server transactions", self.server.memory()),
            ("adapter", self.adapter.memory()),
            ("routes", self.routes.memory()),
            (
                "output queue",
                self.out.capacity() * std::mem::size_of::<super::Output>(),
            ),
            (
                "identity",
                self.me.overlay.capacity() + self.me.dht.capacity() + self.me.algorithm.capacity(),
            ),
        ]
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            me: self.me(),
            phase: self.phase(),
            predecessor: self.predecessor(),
            successors: self.successors(),
            fingers: self.fingers(),
            records: self.store.len(),
            bindings: self.store.bindings(),
            adapter_registrations: self.adapter.len(),
            client_transactions: self.txns.len(),
            server_transactions: self.server.len(),
            memory: self.memory(),
        }
    }
}
