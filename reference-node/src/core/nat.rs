/*!
NAT behaviour on the node's side (NAT-1..8): the address other peers
observe (from `received`/`rport` of responses) decides the Peer-ID (ID-3,
NAT-3); a change of it while in the ring is a rebinding (NAT-6).

NAT-8: a joiner that finds itself behind a NAT (the bootstrap saw it at
an address that is neither its local nor its advertised one) asks a
second peer the bootstrap reported how it sees it. Two different public
endpoints mean a mapping per destination, under which its Peer-ID could
verify at one peer only: it does not join and sends its registrations
and lookups to the bootstrap as plain REGISTERs (RES-4, the bootstrap as
adapter). With no second peer to ask, or no answer within 4·T1, it joins.

NAT-1 (rport in every request) is the builders' Via; NAT-2 (received and
rport in every response) is `respond`; NAT-5 is in `stabilize`.
*/

use std::net::SocketAddr;

use p2psip_wire::build::{self, Identity, addr_uri, peer_uri};
use p2psip_wire::{Header, LinkKind, Message, Method, Peer, Rport, Transport};

use p2psip_stun as stun;

use super::join::reported;
use super::{Event, Fault, JoinStep, Joining, Node, Phase, Purpose, Timer};

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

    /// NAT-8: the peer to compare with, when the bootstrap saw us at
    /// `first`, not at our local or advertised address: one it reported
    /// (successors first), other than itself and us.
    pub(super) fn compare_target(
        &self,
        msg: &Message<'_>,
        via: SocketAddr,
        first: SocketAddr,
    ) -> Option<SocketAddr> {
        if first == self.cfg.local || Some(first) == self.cfg.advertise {
            return None;
        }
        [LinkKind::S, LinkKind::P, LinkKind::F]
            .into_iter()
            .flat_map(|k| reported(msg, k))
            .map(|(p, _)| p.addr)
            .find(|a| *a != via && *a != first && *a != self.cfg.local)
    }

    /// NAT-8: OPTIONS to `other`; its answer, or 4·T1 without one, decides.
    pub(super) fn start_compare(&mut self, other: SocketAddr, first: SocketAddr) {
        let Phase::Joining(j) = &mut self.phase else {
            return;
        };
        j.step = JoinStep::Compare { first };
        tracing::info!(%first, peer = %other, "behind a NAT: asking a second peer how it sees us (NAT-8)");
        self.send_request(other, None, Purpose::NatCompare, |me, txn| {
            build::options(Some(me), other, txn, peer_uri(&me.peer))
        });
        self.timers.set(Timer::Join, self.now + self.cfg.t1 * 4);
    }

    pub(super) fn on_compare_response(&mut self, msg: &Message<'_>) {
        let Phase::Joining(Joining {
            step: JoinStep::Compare { first },
            via,
            ..
        }) = &self.phase
        else {
            return;
        };
        let (first, via) = (*first, *via);
        self.timers.stop(Timer::Join);
        match observed_addr(msg) {
            Some(second) if second != first => {
                if let Phase::Joining(j) = &mut self.phase {
                    j.step = JoinStep::Client;
                }
                tracing::warn!(%first, %second, adapter = %via, "the NAT maps per destination: not joining as a peer, using the bootstrap as adapter (NAT-8)");
                self.event(Event::Client {
                    adapter: via,
                    seen: [first, second],
                });
            }
            _ => self.send_join_to(via, 0, vec![via], 1),
        }
    }

    /// The adapter of a NAT-8 client.
    pub(super) fn client_adapter(&self) -> Option<SocketAddr> {
        match &self.phase {
            Phase::Joining(Joining {
                step: JoinStep::Client,
                via,
                ..
            }) => Some(*via),
            _ => None,
        }
    }

    /// A register or lookup command of a NAT-8 client: the command's
    /// REGISTER goes to the adapter as a plain SIP REGISTER (no Require:
    /// dht, RES-4).
    pub(super) fn client_command(&mut self, cmd: &Message<'static>, aor: &str) {
        let (Some(adapter), Some(to)) =
            (self.client_adapter(), cmd.to().map(|t| t.addr.uri.clone()))
        else {
            return;
        };
        let contact = cmd.contact_addrs().next().map(|c| c.addr.uri.clone());
        let expires = cmd.expires();
        let lookup = contact.is_none();
        let purpose = Purpose::Client {
            aor: aor.to_owned(),
            lookup,
        };
        self.send_request(adapter, None, purpose, |_, txn| {
            let mut m = build::request(Method::Register, addr_uri(adapter), to.clone(), to, txn);
            if let Some(c) = contact {
                m.push_contact(c, None);
            }
            if let Some(e) = expires {
                m.push_header(Header::Expires(e));
            }
            m
        });
    }

    /// The adapter's answer to a client command (`None`: no answer).
    pub(super) fn on_client_answer(
        &mut self,
        aor: &str,
        lookup: bool,
        status: u16,
        msg: Option<&Message<'_>>,
    ) {
        let aor = aor.to_owned();
        self.event(if lookup {
            Event::LookedUp {
                aor,
                status,
                contacts: msg
                    .map(|m| m.contact_addrs().map(|c| c.addr.uri.to_string()).collect())
                    .unwrap_or_default(),
            }
        } else {
            Event::Registered { aor, status }
        });
    }
}
