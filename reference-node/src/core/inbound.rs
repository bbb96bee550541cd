/*!
Everything that arrives: parsing, the checks every request passes before
it may touch state, and the dispatch to the handler of its class.

Order of the checks for a request (each answers and stops):
1. malformed: `400` naming the problem when a Via can be read, else
   dropped (WIRE-7); over the size limit: `513` on TCP, dropped on UDP
   (WIRE-8);
2. a retransmission of an answered request: the same response again
   (TXN-2);
3. an unknown `Require` option tag: `420` with `Unsupported`;
4. a P2P request of another overlay, DHT or algorithm: `488` (WIRE-10);
5. a state-changing request whose DHT-PeerID is not the one of its
   observed source: `493` (ID-7, NAT-4, SEC-1); a join-shaped request
   registering someone else: `403` (JOIN-7);
6. a node not (yet, or any more) in the ring: `503`.
*/

use std::net::SocketAddr;

use p2psip_wire::{
    Class, ErrorKind, Id, Message, Method, ParseError, ParseOptions, Peer, Transport, parse,
    peer_id,
};

use super::ids::{branch_number, fnv64};
use super::txn::Seen;
use super::{Node, Phase, Purpose, salvage};

/// A request being served.
pub(super) struct Req<'m, 'a> {
    pub msg: &'m Message<'a>,
    /// The observed source (TXN-3).
    pub from: SocketAddr,
    pub transport: Transport,
    /// The server-transaction key (TXN-2): branch, method and source.
    pub key: u64,
}

impl Req<'_, '_> {
    /// The address the sender can be reached at for new requests: the
    /// observed source over UDP; over TCP the source IP with the top Via's
    /// port (the connection's port is ephemeral, ID-7).
    pub fn observed(&self) -> SocketAddr {
        match self.transport {
            Transport::Udp => self.from,
            Transport::Tcp => {
                let port = self.msg.top_via().map_or(5060, |v| v.sent_by_port());
                SocketAddr::new(self.from.ip(), port)
            }
        }
    }

    /// ID-7: does `id` belong to the observed source? Over TCP the high
    /// 144 bits are checked against the source IP and the low 16 bits
    /// against the top Via's port.
    pub fn id_matches_source(&self, id: &Id) -> bool {
        let o = self.observed();
        *id == peer_id(o.ip(), o.port())
    }

    /// The sender as it names itself in DHT-PeerID, at its observed address
    /// (ID-3).
    pub fn sender(&self) -> Option<Peer> {
        let named = self.msg.sender_peer()?;
        Some(Peer {
            id: named.id,
            addr: self.observed(),
        })
    }
}

impl Node {
    pub(super) fn on_receive(&mut self, from: SocketAddr, transport: Transport, bytes: &[u8]) {
        // A CRLF keep-alive on UDP (RFC 5626 §3.5.1 uses STUN there, but
        // be kind): nothing to answer.
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return;
        }
        if p2psip_wire::looks_like_stun(bytes) {
            self.on_stun(from, transport, bytes);
            return;
        }
        if bytes.len() > self.cfg.max_message {
            self.on_too_large(from, transport, bytes);
            return;
        }
        // Peer-IDs are checked against the observed source where it
        // matters (ID-7), not for every URI of every message.
        let opts = ParseOptions {
            max_size: self.cfg.max_message,
            ..ParseOptions::lenient()
                .with_transport(transport)
                .without_peer_id_check()
        };
        match parse(bytes, opts) {
            Ok(p) if p.message.is_request() => self.on_request(&p.message, from, transport),
            Ok(p) => self.on_response(&p.message, from),
            Err(e) => self.on_malformed(bytes, e, from, transport),
        }
    }

    /// WIRE-8: `513` on TCP when a Via can be read, nothing on UDP.
    pub(super) fn on_too_large(&mut self, from: SocketAddr, transport: Transport, head: &[u8]) {
        if transport == Transport::Udp || salvage::is_response(head) {
            tracing::debug!(%from, len = head.len(), "dropping message over the size limit (WIRE-8)");
            return;
        }
        match salvage::request(head) {
            Some(req) => {
                tracing::debug!(%from, "513 for a message over the size limit (WIRE-8)");
                self.reply_raw(&req, from, transport, 513, "Message Too Large");
            }
            None => tracing::debug!(%from, "dropping oversized message without a readable Via"),
        }
    }

    /// WIRE-7: `400` with a reason naming the problem, or nothing.
    fn on_malformed(
        &mut self,
        bytes: &[u8],
        e: ParseError,
        from: SocketAddr,
        transport: Transport,
    ) {
        if e.kind == ErrorKind::TooLarge {
            self.on_too_large(from, transport, bytes);
            return;
        }
        if salvage::is_response(bytes) {
            tracing::debug!(%from, error = %e, "dropping malformed response");
            return;
        }
        match salvage::request(bytes) {
            Some(req) => {
                tracing::debug!(%from, error = %e, "400 for a malformed request (WIRE-7)");
                let reason = format!("Bad Request ({})", e.message());
                self.reply_raw(&req, from, transport, 400, &reason);
            }
            None => {
                tracing::debug!(%from, error = %e, "dropping malformed request without a readable Via (WIRE-7)")
            }
        }
    }

    fn on_request(&mut self, msg: &Message<'_>, from: SocketAddr, transport: Transport) {
        let Some(method) = msg.method() else { return };
        if *method == Method::Ack {
            return;
        }
        let branch = msg
            .top_via()
            .and_then(|v| v.branch.as_deref())
            .unwrap_or("");
        let (ip, port) = addr_bytes(from);
        let key = fnv64(&[branch.as_bytes(), method.as_str().as_bytes(), &ip, &port]);
        match self.server.seen(key) {
            Seen::Replied(r) => {
                // TXN-2: the same final response, no second processing.
                tracing::debug!(%from, "retransmission: repeating the response (TXN-2)");
                let r = r.clone();
                self.out.push_back(super::Output::Transmit(super::Transmit {
                    to: r.to,
                    transport: r.transport,
                    bytes: r.bytes.into_vec(),
                }));
                return;
            }
            Seen::Pending => {
                tracing::debug!(%from, "retransmission of a request being served (TXN-2)");
                return;
            }
            Seen::New => {}
        }
        tracing::debug!(
            %from,
            ?transport,
            class = Class::of_request(msg).name(),
            "recv {}",
            p2psip_wire::summary(msg)
        );
        let req = Req {
            msg,
            from,
            transport,
            key,
        };
        // RFC 3261 §8.2.2.3: option tags we do not know.
        let unknown: Vec<String> = msg
            .requires()
            .filter(|t| !t.eq_ignore_ascii_case("dht"))
            .map(str::to_owned)
            .collect();
        if !unknown.is_empty() {
            let mut r = self.response(&req, 420, "Bad Extension");
            for t in unknown {
                r.push_header(p2psip_wire::Header::Unsupported(t.into()));
            }
            self.send_response(&req, r, false);
            return;
        }
        let p2p = msg.requires_dht() || msg.dht_peer_id().is_some();
        if p2p && let Some(reason) = self.wrong_overlay(msg) {
            let r = self.p2p_response(&req, 488, reason, false);
            self.send_response(&req, r, false);
            return;
        }
        match method {
            Method::Options => self.answer_options(&req),
            Method::Register if p2p => self.on_p2p_register(&req),
            Method::Register => self.on_ua_register(&req),
            _ => {
                let r = if p2p {
                    self.p2p_response(&req, 501, "Not Implemented", false)
                } else {
                    self.response(&req, 501, "Not Implemented")
                };
                self.send_response(&req, r, false);
            }
        }
    }

    /// WIRE-10: the reason to answer `488`, if any.
    fn wrong_overlay(&self, msg: &Message<'_>) -> Option<&'static str> {
        let d = msg.dht_peer_id()?;
        if d.overlay.as_deref() != Some(self.cfg.overlay.as_str()) {
            return Some("Not Acceptable Here (unknown overlay)");
        }
        // WIRE-6: the legacy token is tolerated (the parser warns).
        let dht_ok = d.dht.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("Chord1.0") || t.eq_ignore_ascii_case("ChordIter1.0")
        });
        if !dht_ok {
            return Some("Not Acceptable Here (unknown dht)");
        }
        if !d
            .algorithm
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("sha1"))
        {
            return Some("Not Acceptable Here (unknown algorithm)");
        }
        None
    }

    /// A REGISTER with `Require: dht`: the checks of SEC-1, then the
    /// handler of its class.
    fn on_p2p_register(&mut self, req: &Req<'_, '_>) {
        let class = Class::of_request(req.msg);
        let sender = req.sender();
        if class.changes_state() {
            let Some(named) = sender else {
                let r = self.p2p_response(
                    req,
                    400,
                    "Bad Request (DHT-PeerID names no IP address)",
                    false,
                );
                self.send_response(req, r, true);
                return;
            };
            // ID-7 / NAT-4: before any state changes.
            if !self.faults().has(super::Fault::NoIdCheck) && !req.id_matches_source(&named.id) {
                tracing::info!(from = %req.from, claimed = %named.id, "Peer-ID does not match the source (ID-7): 493");
                let r = self.p2p_response(req, 493, "Undecipherable", false);
                self.send_response(req, r, true);
                return;
            }
            // JOIN-7: a peer registers only itself.
            if matches!(class, Class::Join | Class::Notify | Class::Leave)
                && !registers_itself(req.msg, &named.id)
            {
                tracing::info!(from = %req.from, "third-party node registration (JOIN-7): 403");
                let r = self.p2p_response(req, 403, "Forbidden", false);
                self.send_response(req, r, true);
                return;
            }
        }
        if !matches!(self.phase, Phase::Member(_)) {
            let mut r = self.p2p_response(req, 503, "Service Unavailable", false);
            r.push_header(p2psip_wire::Header::Other {
                name: "Retry-After".into(),
                value: "1".into(),
            });
            self.send_response(req, r, false);
            return;
        }
        // QUERY-1 allows refreshing what the node already caches.
        if let Some(s) = sender
            && req.id_matches_source(&s.id)
        {
            let (now, life) = (self.now, Node::lifetime_of(req.msg));
            if let Some(t) = self.table_mut() {
                t.refresh(&s.id, now, life);
            }
        }
        match class {
            Class::Query => self.handle_query(req),
            Class::Join => self.handle_join(req),
            Class::Notify => self.handle_notify(req),
            Class::Leave => self.handle_leave(req),
            Class::ResourceRegister => self.handle_resource_register(req),
            Class::Transfer => self.handle_transfer(req),
            Class::Lookup => self.handle_lookup(req),
            Class::Plain => {
                let r = self.p2p_response(req, 400, "Bad Request (not a P2P REGISTER)", false);
                self.send_response(req, r, false);
            }
        }
    }

    fn on_response(&mut self, msg: &Message<'_>, from: SocketAddr) {
        let Some(branch) = msg
            .top_via()
            .and_then(|v| v.branch.as_deref())
            .and_then(branch_number)
        else {
            tracing::debug!(%from, "response to no transaction of ours");
            return;
        };
        let code = msg.status().unwrap_or(0);
        if code < 200 {
            self.txns.provisional(branch, self.now, self.cfg.t2);
            return;
        }
        let Some(txn) = self.txns.take(branch) else {
            tracing::debug!(%from, code, "late or duplicate response");
            return;
        };
        tracing::debug!(%from, code, purpose = ?txn.purpose, "recv {}", p2psip_wire::summary(msg));
        // QUERY-7: the responder counts as verified when it answered from
        // the address we asked and its ID is the one of that address.
        let responder = msg
            .sender_peer()
            .map(|p| Peer {
                id: p.id,
                addr: from,
            })
            .filter(|p| from == txn.to && p.id == peer_id(from.ip(), from.port()));
        if let Some(r) = responder {
            let (now, life) = (self.now, Node::lifetime_of(msg));
            if let Some(t) = self.table_mut() {
                t.refresh(&r.id, now, life);
            }
        }
        self.observe(msg, &txn.purpose);
        match txn.purpose {
            Purpose::Bootstrap => self.on_bootstrap_response(msg),
            Purpose::NatCompare => self.on_compare_response(msg),
            Purpose::Client { aor, lookup } => self.on_client_answer(&aor, lookup, code, Some(msg)),
            Purpose::Join => self.on_join_response(msg, code, responder),
            Purpose::Stabilize { succ } => self.on_stabilize_response(succ, msg, responder),
            // An error answer is no successful transaction (QUERY-7): a
            // peer answering 503 is joining or leaving and must not be
            // adopted. (A 302 to a notify is normal, STAB-2.)
            Purpose::Notify { to, adopt } => {
                let ok = code < 400 && responder.is_some_and(|r| r.id == to.id);
                self.on_notify_response(to, adopt, ok, msg);
            }
            Purpose::Probe { peer, why } => {
                let ok = code < 400 && responder.is_some_and(|r| r.id == peer.id);
                if ok {
                    let (now, life) = (self.now, Node::lifetime_of(msg));
                    if let Some(t) = self.table_mut() {
                        t.verify(peer, now, life);
                    }
                }
                self.on_probe_result(peer, why, ok);
            }
            Purpose::Keepalive { peer } => {
                if let Some(t) = self.table_mut()
                    && let Some(k) = t.get_mut(&peer)
                {
                    k.pinging = false;
                }
                // Any answer from its address will do (NAT-5 keeps the
                // mapping, the answer proves liveness); someone else
                // answering for that address means the peer is gone.
                let named = msg.sender_peer().map(|p| p.id);
                if from != txn.to || named.is_some_and(|id| id != peer) {
                    self.fail_peer(peer);
                }
            }
            Purpose::Route { route } => self.on_route_response(route, msg, code, responder, from),
            Purpose::Transfer {
                key,
                to,
                delete,
                leaving,
            } => self.on_transfer_done(key, to, delete, leaving, (200..300).contains(&code)),
            Purpose::Leave => self.on_leave_answer(),
        }
    }
}

/// The bytes of an address, for hashing.
fn addr_bytes(a: SocketAddr) -> ([u8; 16], [u8; 2]) {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    (ip, a.port().to_be_bytes())
}

/// JOIN-7: To and every Contact name the sender itself.
fn registers_itself(msg: &Message<'_>, sender: &Id) -> bool {
    let to_ok = msg
        .to()
        .and_then(|t| t.addr.uri.peer_id())
        .is_some_and(|id| id == *sender);
    let contacts_ok = msg.contacts().all(|c| match c {
        p2psip_wire::Contact::Star => false,
        p2psip_wire::Contact::Addr(a) => a.addr.uri.peer_id() == Some(*sender),
    });
    to_ok && contacts_ok
}
