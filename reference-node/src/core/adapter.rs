/*!
The adapter role (RES-4) and the registering peer's duties (REPL-1..5).

A user agent that does not speak the overlay sends a plain REGISTER (no
`Require: dht`). The adapter registers it in the overlay at the peer
responsible for the AOR's Resource-ID and at the R replica positions
(ID-5), and answers the UA `200` once the primary copy is stored. It then
re-places every copy each refresh interval, so a copy whose holder left or
failed reappears at the new responsible peer (REPL-5), and removals reach
every copy (REPL-2). A plain REGISTER without Contact asks for the
bindings: the adapter looks the AOR up at the primary and the replicas and
answers with the majority (REPL-4).
*/

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::build::{self, reason_phrase};
use p2psip_wire::resource::{canonical, replica_id, resource_id};
use p2psip_wire::{ContactAddr, Header, Id, Message, ParseOptions, Peer, Transport, Uri, parse};

use super::inbound::Req;
use super::query::push_contacts;
use super::route::{Answer, RouteMsg, RouteWhy};
use super::store::{bare_aor, owned_contact};
use super::time::Time;
use super::{Event, Fault, Node, Phase, Purpose, Timer};

/// A registration this peer made in the overlay for someone.
#[derive(Debug)]
struct Reg {
    aor: Uri<'static>,
    /// One Call-ID per registration, with a growing CSeq (RFC 3261 §10.2).
    call_id: String,
    /// The bindings as the primary holder last confirmed them.
    bindings: Vec<(ContactAddr<'static>, Time)>,
}

/// Who waits for an adapter operation.
#[derive(Debug)]
enum Origin {
    /// A user agent's REGISTER, answered when the operation ends.
    Ua {
        req: Box<Message<'static>>,
        from: SocketAddr,
        transport: Transport,
        key: u64,
    },
    /// A [`Command`](super::Command).
    Command,
}

#[derive(Debug)]
enum OpKind {
    Register,
    /// One slot per copy: `None` while waiting, then the Contacts that
    /// copy answered (`None` inside when it could not be reached).
    Fetch {
        answers: Vec<Option<Option<Vec<ContactAddr<'static>>>>>,
    },
}

#[derive(Debug)]
struct Op {
    id: u64,
    origin: Origin,
    aor: Uri<'static>,
    kind: OpKind,
}

#[derive(Debug, Default)]
pub(super) struct Adapter {
    regs: Vec<Reg>,
    ops: Vec<Op>,
    next_op: u64,
}

impl Adapter {
    pub fn next_expiry(&self) -> Option<Time> {
        self.regs
            .iter()
            .flat_map(|r| r.bindings.iter().map(|(_, t)| *t))
            .min()
    }

    pub fn expire(&mut self, now: Time) {
        self.regs.retain_mut(|r| {
            r.bindings.retain(|(_, t)| *t > now);
            !r.bindings.is_empty()
        });
    }

    pub fn len(&self) -> usize {
        self.regs.len()
    }

    pub fn memory(&self) -> usize {
        self.regs.capacity() * std::mem::size_of::<Reg>()
            + self.ops.capacity() * std::mem::size_of::<Op>()
            + self
                .regs
                .iter()
                .map(|r| r.bindings.len() * 256)
                .sum::<usize>()
    }

    fn reg_mut(&mut self, aor: &Uri<'_>) -> Option<&mut Reg> {
        let c = canonical(aor);
        self.regs.iter_mut().find(|r| canonical(&r.aor) == c)
    }
}

/// The key of copy `copy` (0 = primary, ID-4; n = replica n, ID-5).
fn copy_key(aor: &Uri<'_>, copy: u32) -> Id {
    if copy == 0 {
        resource_id(aor)
    } else {
        replica_id(aor, copy)
    }
}

/// An owned Contact keeping its `expires` parameter.
fn contact_as_sent(c: &ContactAddr<'_>) -> ContactAddr<'static> {
    let mut o = owned_contact(c);
    o.expires = c.expires;
    o
}

impl Node {
    /// RES-4: a plain REGISTER of a user agent.
    pub(super) fn on_ua_register(&mut self, req: &Req<'_, '_>) {
        if !matches!(self.phase, Phase::Member(_)) {
            let mut r = self.response(req, 503, "Service Unavailable");
            r.push_header(Header::Other {
                name: "Retry-After".into(),
                value: "1".into(),
            });
            self.send_response(req, r, false);
            return;
        }
        // TXN-2: retransmissions are absorbed until the answer is ready.
        self.server.open(req.key, self.now + self.cfg.timer_f() * 4);
        let origin = Origin::Ua {
            req: Box::new(req.msg.clone().into_owned()),
            from: req.from,
            transport: req.transport,
            key: req.key,
        };
        self.adapter_start(req.msg.clone().into_owned(), origin);
    }

    pub(super) fn command_register(&mut self, aor: &str, contact: &str, expires: u32) {
        match command_message(aor, Some((contact, expires))) {
            Some(msg) if matches!(self.phase, Phase::Member(_)) => {
                self.adapter_start(msg, Origin::Command)
            }
            // NAT-8: through the adapter.
            Some(msg) if self.client_adapter().is_some() => self.client_command(&msg, aor),
            _ => self.event(Event::Registered {
                aor: aor.to_owned(),
                status: 503,
            }),
        }
    }

    pub(super) fn command_lookup(&mut self, aor: &str) {
        match command_message(aor, None) {
            Some(msg) if matches!(self.phase, Phase::Member(_)) => {
                self.adapter_start(msg, Origin::Command)
            }
            Some(msg) if self.client_adapter().is_some() => self.client_command(&msg, aor),
            _ => self.event(Event::LookedUp {
                aor: aor.to_owned(),
                status: 503,
                contacts: Vec::new(),
            }),
        }
    }

    fn adapter_start(&mut self, msg: Message<'static>, origin: Origin) {
        let Some(to) = msg.to() else { return };
        let aor = bare_aor(&to.addr.uri);
        self.adapter.next_op += 1;
        let id = self.adapter.next_op;
        let copies = self.cfg.replicas + 1;
        if msg.contacts().next().is_none() {
            // REPL-4: ask the primary and every replica.
            self.adapter.ops.push(Op {
                id,
                origin,
                aor: aor.clone(),
                kind: OpKind::Fetch {
                    answers: vec![None; copies as usize],
                },
            });
            for copy in 0..copies {
                let replica = (copy > 0).then_some(copy);
                let msg = RouteMsg::Lookup {
                    aor: aor.clone(),
                    replica,
                };
                self.start_route(copy_key(&aor, copy), msg, RouteWhy::Fetch { op: id, copy });
            }
            return;
        }
        // RES-4 / REPL-1: the UA's Contacts go to every copy as sent.
        let contacts: Vec<ContactAddr<'static>> =
            msg.contact_addrs().map(contact_as_sent).collect();
        let expires = msg.expires().unwrap_or(self.cfg.expires);
        // One Call-ID per registration; the Reg itself appears once the
        // primary holder confirmed it.
        let call_id = match self.adapter.reg_mut(&aor) {
            Some(r) => r.call_id.clone(),
            None => self.ids.call_id(),
        };
        self.adapter.ops.push(Op {
            id,
            origin,
            aor: aor.clone(),
            kind: OpKind::Register,
        });
        for copy in 0..copies {
            self.place_copy(
                &aor,
                copy,
                contacts.clone(),
                expires,
                &call_id,
                (copy == 0).then_some(id),
            );
        }
    }

    /// Registers copy `copy` at the peer responsible for its key (REPL-1).
    fn place_copy(
        &mut self,
        aor: &Uri<'static>,
        copy: u32,
        contacts: Vec<ContactAddr<'static>>,
        expires: u32,
        call_id: &str,
        op: Option<u64>,
    ) {
        let key = copy_key(aor, copy);
        if copy > 0 && self.faults().has(Fault::ReplicaSuccessor) {
            // The fault (breaks REPL-3): replica N on this peer's own SN.
            let succs = self.table().map(|t| t.successors()).unwrap_or_default();
            let Some(target) = succs.get(copy as usize - 1).or(succs.last()).copied() else {
                return;
            };
            self.replica_on_successor(key, target, aor, copy, &contacts, expires);
            return;
        }
        let msg = RouteMsg::Register {
            aor: aor.clone(),
            replica: (copy > 0).then_some(copy),
            contacts,
            expires,
            call_id: call_id.to_owned(),
        };
        self.start_route(key, msg, RouteWhy::Copy { copy, op });
    }

    fn replica_on_successor(
        &mut self,
        key: Id,
        to: Peer,
        aor: &Uri<'static>,
        copy: u32,
        contacts: &[ContactAddr<'static>],
        expires: u32,
    ) {
        let purpose = Purpose::Transfer {
            key,
            to,
            delete: false,
            leaving: false,
        };
        self.send_request(to.addr, None, purpose, |me, txn| {
            build::transfer(me, to.addr, txn, aor, Some(copy), contacts, expires)
        });
    }

    /// A copy was placed (or could not be): the primary's answer is what
    /// the UA gets, and what later refreshes repeat.
    pub(super) fn on_copy_done(
        &mut self,
        aor: &Uri<'static>,
        call_id: &str,
        copy: u32,
        op: Option<u64>,
        answer: Option<Answer>,
    ) {
        let ok = answer.as_ref().filter(|a| (200..300).contains(&a.code));
        if ok.is_none() {
            tracing::warn!(%aor, copy, "placing a copy failed");
        }
        // Only a registration (a UA's or a command's) sets the bindings:
        // a refresh's answer repeats lifetimes rounded to whole seconds,
        // and taking them back would stretch the registration (REPL-2).
        if copy == 0
            && op.is_some()
            && let Some(a) = ok
        {
            let now = self.now;
            let bindings: Vec<(ContactAddr<'static>, Time)> = a
                .contacts
                .iter()
                .map(|c| {
                    let secs = c.expires.unwrap_or(self.cfg.expires);
                    let mut plain = c.clone();
                    plain.expires = None;
                    (plain, now + Duration::from_secs(secs.into()))
                })
                .filter(|(_, t)| *t > now)
                .collect();
            let c = canonical(aor);
            self.adapter.regs.retain(|r| canonical(&r.aor) != c);
            if !bindings.is_empty() {
                self.adapter.regs.push(Reg {
                    aor: aor.clone(),
                    call_id: call_id.to_owned(),
                    bindings,
                });
            }
        }
        let Some(op) = op else { return };
        match answer {
            Some(a) if (200..300).contains(&a.code) => self.finish_op(op, 200, a.contacts),
            Some(a) => self.finish_op(op, a.code, Vec::new()),
            None => self.finish_op(op, 500, Vec::new()),
        }
    }

    /// REPL-4: one copy answered; with all in, the majority wins.
    pub(super) fn on_fetch_done(&mut self, op: u64, copy: u32, answer: Option<Answer>) {
        let Some(o) = self.adapter.ops.iter_mut().find(|o| o.id == op) else {
            return;
        };
        let OpKind::Fetch { answers } = &mut o.kind else {
            return;
        };
        let got = answer.map(|a| {
            if a.code == 200 {
                a.contacts
            } else {
                Vec::new()
            }
        });
        if let Some(slot) = answers.get_mut(copy as usize) {
            *slot = Some(got);
        }
        if answers.iter().any(Option::is_none) {
            return;
        }
        let heard: Vec<&Vec<ContactAddr<'static>>> = answers.iter().flatten().flatten().collect();
        let sets: Vec<Vec<String>> = heard
            .iter()
            .map(|cs| {
                let mut v: Vec<String> = cs.iter().map(|c| c.addr.uri.to_string()).collect();
                v.sort();
                v
            })
            .collect();
        let mut best: Option<(usize, usize)> = None; // (index, votes)
        for (i, s) in sets.iter().enumerate() {
            let votes = sets.iter().filter(|t| *t == s).count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((i, votes));
            }
        }
        let distinct = {
            let mut d = sets.clone();
            d.sort();
            d.dedup();
            d.len()
        };
        let aor = o.aor.to_string();
        if distinct > 1 {
            tracing::warn!(%aor, answers = ?sets, "primary and replicas disagree (REPL-4)");
        }
        match best {
            Some((i, votes)) if votes * 2 > sets.len() => {
                let contacts = heard[i].clone();
                self.finish_op(op, 200, contacts);
            }
            _ => self.finish_op(op, 500, Vec::new()),
        }
    }

    fn finish_op(&mut self, op: u64, code: u16, contacts: Vec<ContactAddr<'static>>) {
        let Some(at) = self.adapter.ops.iter().position(|o| o.id == op) else {
            return;
        };
        let o = self.adapter.ops.swap_remove(at);
        match o.origin {
            Origin::Ua {
                req,
                from,
                transport,
                key,
            } => {
                let r = Req {
                    msg: &req,
                    from,
                    transport,
                    key,
                };
                let reason = match code {
                    500 if matches!(o.kind, OpKind::Fetch { .. }) => {
                        "Server Internal Error (copies disagree or unreachable)"
                    }
                    500 => "Server Internal Error (overlay registration failed)",
                    c => reason_phrase(c),
                };
                let mut m = self.response(&r, code, reason);
                push_contacts(&mut m, &contacts);
                self.send_response(&r, m, true);
            }
            Origin::Command => {
                let aor = o.aor.to_string();
                let e = match o.kind {
                    OpKind::Register => Event::Registered { aor, status: code },
                    OpKind::Fetch { .. } => Event::LookedUp {
                        aor,
                        status: code,
                        contacts: contacts.iter().map(|c| c.addr.uri.to_string()).collect(),
                    },
                };
                self.event(e);
            }
        }
    }

    /// REPL-2 / REPL-5: every copy of every registration this peer made is
    /// placed again at whoever is responsible now.
    pub(super) fn on_refresh_timer(&mut self) {
        let every = self.cfg.refresh_interval();
        self.timers.set(Timer::Refresh, self.now + every);
        if !matches!(self.phase, Phase::Member(_)) {
            return;
        }
        let now = self.now;
        self.adapter.expire(now);
        let work: Vec<(Uri<'static>, String, Vec<ContactAddr<'static>>)> = self
            .adapter
            .regs
            .iter()
            .map(|r| {
                // Whole seconds left, rounded down: a copy never outlives
                // the registration.
                let contacts = r
                    .bindings
                    .iter()
                    .map(|(c, t)| {
                        let mut c = c.clone();
                        c.expires = Some(secs_left_floor(now, *t));
                        c
                    })
                    .filter(|c| c.expires.is_some_and(|e| e > 0))
                    .collect();
                (r.aor.clone(), r.call_id.clone(), contacts)
            })
            .collect();
        for (aor, call_id, contacts) in work {
            let expires = contacts.iter().filter_map(|c| c.expires).max().unwrap_or(0);
            if expires == 0 {
                continue;
            }
            for copy in 0..=self.cfg.replicas {
                self.place_copy(&aor, copy, contacts.clone(), expires, &call_id, None);
            }
        }
    }
}

/// Whole seconds from `now` to `deadline`, rounded down.
fn secs_left_floor(now: Time, deadline: Time) -> u32 {
    u32::try_from(deadline.saturating_since(now).as_secs()).unwrap_or(u32::MAX)
}

/// A plain REGISTER standing for a command (parsed, so the AOR and
/// Contact follow the grammar).
fn command_message(aor: &str, contact: Option<(&str, u32)>) -> Option<Message<'static>> {
    let mut text = format!(
        "REGISTER sip:invalid SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0:9;branch=z9hG4bKcommand\r\n\
Max-Forwards: 70\r\nFrom: <{aor}>;tag=command\r\nTo: <{aor}>\r\nCall-ID: command\r\nCSeq: 1 REGISTER\r\n"
    );
    if let Some((c, expires)) = contact {
        text.push_str(&format!("Contact: <{c}>\r\nExpires: {expires}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    let parsed = parse(text.as_bytes(), ParseOptions::lenient()).ok()?;
    Some(parsed.message.into_owned())
}
