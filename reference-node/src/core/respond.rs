/*!
Building and sending responses: RFC 3261 §8.2.6 with RFC 3581 (NAT-2,
TXN-3), the P2P headers (WIRE-2, WIRE-4) and the link set (QUERY-4).
*/

use std::net::SocketAddr;

use p2psip_wire::build::{self, reason_phrase};
use p2psip_wire::{Message, Rport, Transport};

use super::ids::fnv64;
use super::inbound::Req;
use super::txn::Reply;
use super::{Fault, Node, Output, Transmit};

impl Node {
    /// A response to `req` (no P2P headers). The top Via gets `received`
    /// and, when asked for, `rport` (NAT-2). The To-tag is derived from
    /// the branch, so a response computed again is the same.
    pub(super) fn response(&self, req: &Req<'_, '_>, code: u16, reason: &str) -> Message<'static> {
        let branch = req
            .msg
            .top_via()
            .and_then(|v| v.branch.as_deref())
            .unwrap_or("");
        let tag = format!("{:08x}", fnv64(&[branch.as_bytes(), b"to-tag"]) as u32);
        let mut m = build::response(req.msg, code, reason, req.from, &tag);
        if self.faults().has(Fault::IgnoreRport)
            && let Some(v) = m.top_via_mut()
        {
            v.received = None;
            if v.rport != Rport::Absent {
                v.rport = Rport::Requested;
            }
        }
        m
    }

    /// A P2P response: `Supported: dht`, the responder's DHT-PeerID, and
    /// with `links` its DHT-Link set (QUERY-4, TXN-4).
    pub(super) fn p2p_response(
        &self,
        req: &Req<'_, '_>,
        code: u16,
        reason: &str,
        links: bool,
    ) -> Message<'static> {
        let mut m = self.response(req, code, reason);
        m.make_p2p(&self.me);
        if links {
            m.push_links(&self.links());
        }
        m
    }

    /// Sends a response to the request's source from the socket it came in
    /// on (TXN-3, NAT-2). `keep` keeps it for retransmissions (TXN-2).
    pub(super) fn send_response(&mut self, req: &Req<'_, '_>, msg: Message<'static>, keep: bool) {
        let to = if self.faults().has(Fault::IgnoreRport) {
            // The fault: RFC 3261 §18.2.2 without RFC 3581.
            req.msg
                .top_via()
                .and_then(|v| v.host.ip().map(|ip| SocketAddr::new(ip, v.sent_by_port())))
                .unwrap_or(req.from)
        } else {
            req.from
        };
        let bytes = self.encode(&msg);
        tracing::debug!(%to, "send {}", p2psip_wire::summary(&msg));
        if keep {
            let reply = Reply {
                to,
                transport: req.transport,
                bytes: bytes.clone().into_boxed_slice(),
            };
            self.server
                .complete(req.key, reply, self.now + self.cfg.timer_f());
        }
        self.out.push_back(Output::Transmit(Transmit {
            to,
            transport: req.transport,
            bytes,
        }));
    }

    /// A response to a request that could only be partly read (WIRE-7,
    /// WIRE-8).
    pub(super) fn reply_raw(
        &mut self,
        msg: &Message<'_>,
        from: SocketAddr,
        transport: Transport,
        code: u16,
        reason: &str,
    ) {
        let req = Req {
            msg,
            from,
            transport,
            key: 0,
        };
        let r = self.response(&req, code, reason);
        self.send_response(&req, r, false);
    }

    /// TXN-4: OPTIONS gets `200 OK` with `Supported: dht`, the DHT-PeerID
    /// and the link set, in every phase (the harness's readiness probe).
    pub(super) fn answer_options(&mut self, req: &Req<'_, '_>) {
        let r = self.p2p_response(req, 200, reason_phrase(200), true);
        self.send_response(req, r, false);
    }
}

/// The `upper-hex` fault (ID-1): every `peer-ID=` / `resource-ID=` value
/// in upper case.
pub(super) fn upper_case_ids(bytes: &mut [u8]) {
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i..i + 4].eq_ignore_ascii_case(b"-ID=") {
            let start = i + 4;
            let end = (start + 40).min(bytes.len());
            if bytes[start..end].iter().all(u8::is_ascii_hexdigit) {
                bytes[start..end].make_ascii_uppercase();
            }
            i = end;
        } else {
            i += 1;
        }
    }
}
