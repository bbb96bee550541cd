/*!
NAT behaviour on the node's side (NAT-1..7): the address other peers
observe (from `received`/`rport` of responses) decides the Peer-ID (ID-3,
NAT-3); a change of it while in the ring is a rebinding (NAT-6).

NAT-1 (rport in every request) is the builders' Via; NAT-2 (received and
rport in every response) is `respond`; NAT-5 is in `stabilize`.
*/

use std::net::SocketAddr;

use p2psip_wire::build::Identity;
use p2psip_wire::{Message, Peer, Rport, Transport};

use p2psip_stun as stun;

use super::{Event, Fault, Node, Phase, Purpose};

/// NAT-6 bookkeeping: an address seen in responses that differs from ours.
#[derive(Debug, Default)]
pub(super) struct Observed {
    candidate: Option<SocketAddr>,
    count: u8,
}

/// Responses in a row that must show the same new address before it is
/// believed (one odd answer, e.g. through a hairpin, is not a rebinding).
const REBIND_AFTER: u8 = 2;

/// The address a response says the request came from: `received` and a
/// filled-in `rport` of its top Via (RFC 3581).
pub(super) fn observed_addr(msg: &Message<'_>) -> Option<SocketAddr> {
    let via = msg.top_via()?;
    let ip = via.received?;
    match via.rport {
        Rport::Filled(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

impl Node {
    /// NAT-3: compute the Peer-ID from the observed address (before
    /// joining).
    pub(super) fn learn_address(&mut self, addr: SocketAddr) {
        if self.faults().has(Fault::IdFromPrivate) || addr == self.me.peer.addr {
            return;
        }
        let old = self.me.peer;
        self.set_identity(addr);
        tracing::info!(old = %old, new = %self.me.peer, "observed address differs: new Peer-ID (NAT-3)");
        self.event(Event::AddressChanged {
            old,
            new: self.me.peer,
        });
    }

    pub(super) fn set_identity(&mut self, addr: SocketAddr) {
        self.me =
            Identity::new(Peer::at(addr), &self.cfg.overlay).with_expires(self.cfg.peer_expires);
    }

    /// Every response to one of our requests shows how we were seen; two
    /// in a row with a new address while in the ring mean the NAT rebound
    /// us: leave with the old ID, re-join with the new one (NAT-6).
    pub(super) fn observe(&mut self, msg: &Message<'_>, purpose: &Purpose) {
        if matches!(purpose, Purpose::Bootstrap) || self.faults().has(Fault::IdFromPrivate) {
            return;
        }
        let Some(addr) = observed_addr(msg) else {
            return;
        };
        if !matches!(self.phase, Phase::Member(_)) {
            return;
        }
        if addr == self.me.peer.addr {
            self.nat = Observed::default();
            return;
        }
        if self.nat.candidate == Some(addr) {
            self.nat.count += 1;
        } else {
            self.nat = Observed {
                candidate: Some(addr),
                count: 1,
            };
        }
        if self.nat.count < REBIND_AFTER {
            return;
        }
        self.nat = Observed::default();
        let via = self
            .table()
            .and_then(|t| t.succ1())
            .map(|p| p.addr)
            .or(self.cfg.bootstrap);
        match via {
            Some(via) => {
                tracing::info!(old = %self.me.peer.addr, new = %addr, "NAT rebinding: leaving to re-join (NAT-6)");
                self.start_leave(Some((via, addr)));
            }
            None => {
                // Alone in the ring: nobody to tell, just take the address.
                let old = self.me.peer;
                self.set_identity(addr);
                self.phase = Phase::Stopped;
                self.become_first();
                self.event(Event::AddressChanged {
                    old,
                    new: self.me.peer,
                });
            }
        }
    }

    /// NAT-7: a Binding request on the SIP port gets a success response
    /// with XOR-MAPPED-ADDRESS = the observed source, same transaction ID.
    /// A Binding success response may answer our own request (JOIN-10
    /// fallback).
    pub(super) fn on_stun(&mut self, from: SocketAddr, transport: Transport, bytes: &[u8]) {
        let msg = match stun::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%from, error = %e, "undecodable STUN message dropped");
                return;
            }
        };
        if msg.method != stun::Method::BINDING {
            return;
        }
        match msg.class {
            stun::Class::Request => {
                let unknown = msg.unknown_comprehension_required();
                let mut resp = if unknown.is_empty() {
                    stun::Message::success_response(&msg)
                        .with(stun::Attribute::XorMappedAddress(from))
                } else {
                    // RFC 5389 §7.3.1
                    stun::Message::error_response(&msg, 420, "Unknown Attribute")
                        .with(stun::Attribute::UnknownAttributes(unknown))
                };
                if msg.fingerprint {
                    resp = resp.with_fingerprint();
                }
                match resp.encode() {
                    Ok(bytes) => {
                        tracing::debug!(%from, "STUN Binding answered (NAT-7)");
                        self.out.push_back(super::Output::Transmit(super::Transmit {
                            to: from,
                            transport,
                            bytes,
                        }));
                    }
                    Err(e) => tracing::debug!(error = %e, "STUN response not encodable"),
                }
            }
            stun::Class::SuccessResponse => self.on_stun_answer(&msg),
            _ => {}
        }
    }

    /// JOIN-10 fallback: the bootstrap's OPTIONS answer did not say how it
    /// saw us; ask with a STUN Binding request on its SIP port.
    pub(super) fn send_stun_probe(&mut self, to: SocketAddr) -> [u8; 12] {
        let tid = self.ids.bytes12();
        let req = stun::Message::binding_request(stun::TransactionId::from(tid)).with_fingerprint();
        if let Ok(bytes) = req.encode() {
            self.out.push_back(super::Output::Transmit(super::Transmit {
                to,
                transport: Transport::Udp,
                bytes,
            }));
        }
        tid
    }
}
