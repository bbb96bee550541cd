/*!
Routed requests: iterative routing from this peer (QUERY-2, QUERY-6 "the
default"). A request for a key goes to the closest known peer before it;
each `302` names the next peer; the `200`/`404` of the responsible peer
ends it. A repeated Contact is a loop; more than 2·ceil(log2 N)+8
redirects is too many (JOIN-2, C-Q2), with N estimated from the density
of the successors the responders report.

Used for fix-fingers lookups (STAB-3) and for the copies the adapter
registers and looks up (RES-1, REPL-1, REPL-4).
*/

use std::net::SocketAddr;

use p2psip_wire::build::{self, QueryKey};
use p2psip_wire::{ContactAddr, Id, Message, Peer, Uri};

use super::join::{estimate_log2, hop_bound};
use super::store::owned_contact;
use super::{Node, Phase, Purpose};

/// What a routed request carries.
#[derive(Debug, Clone)]
pub(super) enum RouteMsg {
    /// A query for the key (PROFILE §4).
    Query,
    /// A resource registration (RES-1, REPL-1).
    Register {
        aor: Uri<'static>,
        replica: Option<u32>,
        contacts: Vec<ContactAddr<'static>>,
        expires: u32,
        call_id: String,
    },
    /// A resource lookup (RES-2).
    Lookup {
        aor: Uri<'static>,
        replica: Option<u32>,
    },
}

/// What the result is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum RouteWhy {
    /// Finger `index` (STAB-3).
    Finger { index: u8 },
    /// Copy `copy` (0 = primary) of an adapter registration, for the
    /// pending operation `op` when one waits for it.
    Copy { copy: u32, op: Option<u64> },
    /// Copy `copy` of an adapter lookup.
    Fetch { op: u64, copy: u32 },
}

#[derive(Debug)]
pub(super) struct Route {
    id: u32,
    key: Id,
    msg: RouteMsg,
    why: RouteWhy,
    hops: u32,
    log2n: u32,
    visited: Vec<SocketAddr>,
    restarts: u8,
    /// The first hop was a guess (the current finger): a 302 from it
    /// sends the request through normal routing instead.
    guess: bool,
}

/// The final answer of a routed request.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub responder: Peer,
    /// The lifetime the responder advertised.
    pub lifetime: u32,
    pub code: u16,
    pub contacts: Vec<ContactAddr<'static>>,
}

#[derive(Debug, Default)]
pub(super) struct Routes {
    next: u32,
    list: Vec<Route>,
}

impl Routes {
    pub fn memory(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Route>()
    }

    pub fn shrink(&mut self) {
        super::txn::shrink(&mut self.list);
    }
}

/// A routed request is given up after this many restarts (a hop that did
/// not answer is removed from the table and the route starts again).
const MAX_RESTARTS: u8 = 2;

impl Node {
    pub(super) fn start_route(&mut self, key: Id, msg: RouteMsg, why: RouteWhy) {
        self.start_route_via(key, msg, why, None);
    }

    /// Like [`Node::start_route`], but asks `guess` first: the peer that
    /// was responsible last time. When it still is, that is one round trip
    /// instead of a whole lookup.
    pub(super) fn start_route_via(
        &mut self,
        key: Id,
        msg: RouteMsg,
        why: RouteWhy,
        guess: Option<SocketAddr>,
    ) {
        self.routes.next = self.routes.next.wrapping_add(1);
        let log2n = self.table().map_or(1, |t| t.log2_size());
        let route = Route {
            id: self.routes.next,
            key,
            msg,
            why,
            hops: 0,
            log2n,
            visited: vec![self.me.peer.addr],
            restarts: 0,
            guess: guess.is_some(),
        };
        match guess {
            Some(addr) if matches!(self.phase, Phase::Member(_)) => self.send_hop(route, addr),
            _ => self.route_step(route),
        }
    }

    /// Local step: answer it here when responsible, else send it to the
    /// closest known peer.
    fn route_step(&mut self, route: Route) {
        let now = self.now;
        let (responsible, next) = match &self.phase {
            Phase::Member(m) => (
                m.table.is_responsible(&route.key),
                m.table.next_hop(&route.key, now),
            ),
            _ => (false, None),
        };
        if !matches!(self.phase, Phase::Member(_)) {
            self.route_done(route, None);
        } else if responsible {
            self.route_local(route);
        } else if let Some(p) = next {
            self.send_hop(route, p.addr);
        } else {
            self.route_done(route, None);
        }
    }

    fn send_hop(&mut self, mut route: Route, to: SocketAddr) {
        if !route.visited.contains(&to) {
            route.visited.push(to);
        }
        let id = route.id;
        let key = route.key;
        let msg = route.msg.clone();
        let call_id = match &msg {
            RouteMsg::Register { call_id, .. } => Some(call_id.clone()),
            _ => None,
        };
        self.routes.list.push(route);
        self.send_request(
            to,
            call_id.as_deref(),
            Purpose::Route { route: id },
            |me, txn| match &msg {
                RouteMsg::Query => build::query(me, to, txn, QueryKey::Key(key)),
                RouteMsg::Register {
                    aor,
                    replica,
                    contacts,
                    expires,
                    ..
                } => build::resource_register(me, to, txn, aor, *replica, contacts, *expires),
                RouteMsg::Lookup { aor, replica } => build::lookup(me, to, txn, aor, *replica),
            },
        );
    }

    /// This peer is responsible: serve the request from its own store.
    fn route_local(&mut self, route: Route) {
        let now = self.now;
        let me = self.me.peer;
        let lifetime = self.cfg.peer_expires;
        let answer = match &route.msg {
            RouteMsg::Query => Answer {
                responder: me,
                lifetime,
                code: if route.key == me.id { 200 } else { 404 },
                contacts: Vec::new(),
            },
            RouteMsg::Register {
                aor,
                replica,
                contacts,
                expires,
                call_id,
            } => {
                let txn = build::Txn::udp("z9hG4bKlocal", call_id, "local", u32::MAX, me.addr);
                let req = build::resource_register(
                    &self.me, me.addr, &txn, aor, *replica, contacts, *expires,
                );
                let default = self.cfg.expires;
                match self
                    .store
                    .apply(route.key, aor, *replica, &req, now, default)
                {
                    Ok(()) => Answer {
                        responder: me,
                        lifetime,
                        code: 200,
                        contacts: self.store.contacts(&route.key, now),
                    },
                    Err(e) => Answer {
                        responder: me,
                        lifetime,
                        code: e.status(),
                        contacts: Vec::new(),
                    },
                }
            }
            RouteMsg::Lookup { .. } => {
                let contacts = self.store.contacts(&route.key, now);
                Answer {
                    responder: me,
                    lifetime,
                    code: if contacts.is_empty() { 404 } else { 200 },
                    contacts,
                }
            }
        };
        self.route_done(route, Some(answer));
    }

    fn take_route(&mut self, id: u32) -> Option<Route> {
        let at = self.routes.list.iter().position(|r| r.id == id)?;
        Some(self.routes.list.swap_remove(at))
    }

    pub(super) fn on_route_response(
        &mut self,
        id: u32,
        msg: &Message<'_>,
        code: u16,
        responder: Option<Peer>,
        from: SocketAddr,
    ) {
        let Some(mut route) = self.take_route(id) else {
            return;
        };
        if route.guess {
            route.guess = false;
            if code == 302 {
                // The guess is no longer responsible: route from here.
                route.visited = vec![self.me.peer.addr];
                self.route_step(route);
                return;
            }
        }
        match code {
            302 => {
                let next = msg
                    .contact_addrs()
                    .next()
                    .and_then(|c| c.addr.uri.socket_addr());
                let Some(next) = next else {
                    tracing::debug!(%from, "302 without a usable Contact");
                    self.route_done(route, None);
                    return;
                };
                route.log2n = route.log2n.max(estimate_log2(msg));
                if next == self.me.peer.addr {
                    // Sent back here: answer locally if this peer is now
                    // responsible, else it is a loop.
                    let mine = self.table().is_some_and(|t| t.is_responsible(&route.key));
                    if mine {
                        self.route_local(route);
                    } else {
                        self.route_done(route, None);
                    }
                    return;
                }
                if route.visited.contains(&next) {
                    tracing::debug!(key = %route.key, %next, "redirect loop");
                    self.route_done(route, None);
                    return;
                }
                route.hops += 1;
                if route.hops > hop_bound(route.log2n) {
                    tracing::debug!(key = %route.key, hops = route.hops, "too many redirects");
                    self.route_done(route, None);
                    return;
                }
                self.send_hop(route, next);
            }
            200..=299 | 404 => {
                let answer = responder.map(|r| Answer {
                    responder: r,
                    lifetime: Node::lifetime_of(msg),
                    code,
                    contacts: msg
                        .contact_addrs()
                        .map(owned_contact_with_expires)
                        .collect(),
                });
                self.route_done(route, answer);
            }
            _ => {
                tracing::debug!(%from, code, key = %route.key, "routed request refused");
                self.route_done(route, None);
            }
        }
    }

    /// A hop did not answer: forget it and start again from here.
    pub(super) fn on_route_timeout(&mut self, id: u32, to: SocketAddr) {
        let Some(mut route) = self.take_route(id) else {
            return;
        };
        let dead = self.table().and_then(|t| {
            t.known()
                .iter()
                .find(|k| k.peer.addr == to)
                .map(|k| k.peer.id)
        });
        if let Some(dead) = dead {
            self.fail_peer(dead);
        }
        if route.restarts < MAX_RESTARTS {
            route.restarts += 1;
            route.guess = false;
            route.hops = 0;
            route.visited = vec![self.me.peer.addr];
            self.route_step(route);
        } else {
            self.route_done(route, None);
        }
    }

    fn route_done(&mut self, route: Route, answer: Option<Answer>) {
        match route.why {
            RouteWhy::Finger { index } => {
                self.on_finger_result(index, answer.map(|a| (a.responder, a.lifetime)))
            }
            RouteWhy::Copy { copy, op } => {
                let RouteMsg::Register { aor, call_id, .. } = &route.msg else {
                    return;
                };
                self.on_copy_done(aor, call_id, copy, op, answer)
            }
            RouteWhy::Fetch { op, copy } => self.on_fetch_done(op, copy, answer),
        }
    }
}

/// An owned Contact keeping its `expires` parameter (the holder's seconds
/// left).
fn owned_contact_with_expires(c: &ContactAddr<'_>) -> ContactAddr<'static> {
    let mut o = owned_contact(c);
    o.expires = c.expires;
    o
}
