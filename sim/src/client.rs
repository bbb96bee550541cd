/*!
The lookup client: an endpoint on the simulated network that is not a
peer, and asks peers the way the harness does, with real messages.

A key lookup (C-Q1, C-Q2, C-Q3) sends a query REGISTER (PROFILE §4, built
by `p2psip_wire::build::query`) to a start peer and follows every 302 to
its Contact until a 200 or 404. The answer is judged against the ground
truth: it is correct when the datagram carrying it came from succ_L(key).
The responder's own claims (its DHT-PeerID) are not trusted; the source
of the datagram is.

A resource lookup (C-R1) sends a RES-2 lookup straight to one peer and
records the status and Contacts it answers, without following redirects.

Requests are retransmitted as a UDP client transaction does (TXN-1: T1,
doubling, capped at T2, given up at Timer F), so lookups work over lossy
links. Many lookups run at once, up to a configured number; the rest wait
in a queue.
*/

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use p2psip_node::Time;
use p2psip_wire::build::{self, Identity, QueryKey, Txn};
use p2psip_wire::{Id, ParseOptions, Peer, parse, parse_uri, print};

use crate::addr::{AddrBook, CLIENT_ADDR, FixedHasher};
use crate::net::{Endpoint, nanos, time_of};
use crate::truth::Truth;

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Follow 302s to the peer responsible for this key.
    Key(Id),
    /// Ask the start peer for a resource (the primary, or replica N).
    Resource { aor: String, replica: Option<u32> },
}

/// One lookup to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller's label, returned with the outcome.
    pub tag: u32,
    /// The peer the first request goes to.
    pub start: Endpoint,
    pub target: Target,
}

/// How a lookup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A final response (for key lookups: 200 or 404).
    Final {
        status: u16,
        /// The endpoint the final response came from.
        responder: Endpoint,
        /// Key lookups: the responder is succ_L(key) (C-Q1).
        correct: bool,
        /// The Contact URIs and their `expires` (resource lookups).
        contacts: Vec<(String, Option<u32>)>,
    },
    /// A 302 named a peer already on the path (C-Q2).
    Loop,
    /// More 302s than 2·ceil(log2 |L|) + 8 (C-Q2).
    TooManyHops,
    /// No final response within Timer F of a request.
    Timeout,
    /// A key lookup got a status other than 200, 302 or 404.
    Unexpected(u16),
    /// A 302 without a usable Contact, or naming no simulated peer.
    BadContact,
}

/// The result of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub tag: u32,
    pub start: Endpoint,
    pub target: Target,
    /// 302s followed.
    pub hops: u32,
    /// 302s whose Contact broke C-Q3 (no progress towards the key, judged
    /// against the live ring).
    pub progress_violations: u32,
    pub ending: Ending,
    pub started: Time,
    pub ended: Time,
}

#[derive(Debug)]
struct Active {
    req: Request,
    key: Id,
    at: Endpoint,
    hops: u32,
    max_hops: u32,
    visited: Vec<Endpoint>,
    bytes: Vec<u8>,
    started: Time,
    interval: Duration,
    next_resend: Time,
    deadline: Time,
    progress_violations: u32,
}

impl Active {
    fn outcome(self, ending: Ending, ended: Time) -> Outcome {
        Outcome {
            tag: self.req.tag,
            start: self.req.start,
            target: self.req.target,
            hops: self.hops,
            progress_violations: self.progress_violations,
            ending,
            started: self.started,
            ended,
        }
    }
}

/// The client. See the module documentation.
#[derive(Debug)]
pub struct Client {
    me: Identity,
    t1: Duration,
    t2: Duration,
    timer_f: Duration,
    parallel: usize,
    next_id: u64,
    queue: VecDeque<Request>,
    /// Only looked up by id, never iterated. A fixed hasher all the same:
    /// with a random one the table's capacity after removals, which the
    /// memory report counts, would differ from run to run.
    active: HashMap<u64, Active, FixedHasher>,
    /// (wake-up, lookup id); entries of finished lookups are skipped.
    wake: BinaryHeap<Reverse<(u64, u64)>>,
    out: VecDeque<(Endpoint, Vec<u8>)>,
    done: Vec<Outcome>,
    sent: u64,
}

const BRANCH: &str = "z9hG4bKsim";

impl Client {
    pub fn new(overlay: &str, t1: Duration, t2: Duration, parallel: usize) -> Client {
        Client {
            me: Identity::new(Peer::at(CLIENT_ADDR), overlay),
            t1,
            t2,
            timer_f: t1 * 64,
            parallel: parallel.max(1),
            next_id: 0,
            queue: VecDeque::new(),
            active: HashMap::default(),
            wake: BinaryHeap::new(),
            out: VecDeque::new(),
            done: Vec::new(),
            sent: 0,
        }
    }

    /// Queues a lookup; it starts when fewer than the configured number run.
    pub fn submit(&mut self, req: Request) {
        self.queue.push_back(req);
    }

    /// Lookups queued or running.
    pub fn busy(&self) -> usize {
        self.queue.len() + self.active.len()
    }

    /// Requests sent so far (retransmissions included).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Takes the finished lookups, in the order they finished.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.done)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(Endpoint, Vec<u8>)> {
        self.out.pop_front()
    }

    /// When [`Client::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.wake.peek().map(|Reverse((t, _))| time_of(*t))
    }

    /// Starts queued lookups while there is room.
    pub fn start_queued(&mut self, now: Time, truth: &Truth, book: &AddrBook) {
        while self.active.len() < self.parallel {
            let Some(req) = self.queue.pop_front() else {
                break;
            };
            let key = match &req.target {
                Target::Key(k) => *k,
                Target::Resource { aor, replica } => match parse_uri(aor) {
                    Ok(u) => match replica {
                        Some(n) => p2psip_wire::resource::replica_id(&u, *n),
                        None => p2psip_wire::resource::resource_id(&u),
                    },
                    Err(_) => Id::ZERO,
                },
            };
            let n = truth.len().max(1) as f64;
            let max_hops = 2 * n.log2().ceil() as u32 + 8;
            let id = self.next_id;
            self.next_id += 1;
            let mut a = Active {
                at: req.start,
                req,
                key,
                hops: 0,
                max_hops,
                visited: Vec::new(),
                bytes: Vec::new(),
                started: now,
                interval: self.t1,
                next_resend: now,
                deadline: now,
                progress_violations: 0,
            };
            a.visited.push(a.at);
            self.send(now, id, &mut a, book);
            self.active.insert(id, a);
        }
    }

    /// Builds and sends the request of the current hop.
    fn send(&mut self, now: Time, id: u64, a: &mut Active, book: &AddrBook) {
        let to = book.addr(a.at);
        let txn = Txn::udp(
            &format!("{BRANCH}{id}h{}", a.hops),
            &format!("sim{id}"),
            &format!("c{id}"),
            a.hops + 1,
            CLIENT_ADDR,
        );
        let msg = match &a.req.target {
            Target::Key(k) => build::query(&self.me, to, &txn, QueryKey::Key(*k)),
            Target::Resource { aor, replica } => {
                // An AOR that does not parse was refused when submitted
                // (its key is zero); it is asked for as a bare key then.
                match parse_uri(aor) {
                    Ok(u) => build::lookup(&self.me, to, &txn, &u, *replica),
                    Err(_) => build::query(&self.me, to, &txn, QueryKey::Key(a.key)),
                }
            }
        };
        a.bytes = print(&msg);
        a.interval = self.t1;
        a.next_resend = now + self.t1;
        a.deadline = now + self.timer_f;
        self.transmit(a.at, a.bytes.clone());
        self.wake.push(Reverse((nanos(a.next_resend), id)));
    }

    fn transmit(&mut self, to: Endpoint, bytes: Vec<u8>) {
        self.sent += 1;
        self.out.push_back((to, bytes));
    }

    /// Retransmits what is due and gives up on what passed Timer F.
    pub fn handle_timeout(&mut self, now: Time, truth: &Truth, book: &AddrBook) {
        while let Some(Reverse((t, id))) = self.wake.peek().copied() {
            if t > nanos(now) {
                break;
            }
            self.wake.pop();
            let Some(a) = self.active.get_mut(&id) else {
                continue;
            };
            if nanos(a.next_resend) != t {
                continue; // an entry of an earlier hop
            }
            if now >= a.deadline {
                self.finish(now, id, Ending::Timeout);
                continue;
            }
            a.interval = (a.interval * 2).min(self.t2);
            a.next_resend = (now + a.interval).min(a.deadline);
            let (to, bytes, next) = (a.at, a.bytes.clone(), a.next_resend);
            self.transmit(to, bytes);
            self.wake.push(Reverse((nanos(next), id)));
        }
        self.start_queued(now, truth, book);
    }

    fn finish(&mut self, now: Time, id: u64, ending: Ending) {
        if let Some(a) = self.active.remove(&id) {
            self.done.push(a.outcome(ending, now));
        }
    }

    /// A datagram from `from` arrived at the client.
    pub fn handle_datagram(
        &mut self,
        now: Time,
        from: Endpoint,
        bytes: &[u8],
        truth: &Truth,
        book: &AddrBook,
    ) {
        self.on_response(now, from, bytes, truth, book);
        self.start_queued(now, truth, book);
    }

    fn on_response(
        &mut self,
        now: Time,
        from: Endpoint,
        bytes: &[u8],
        truth: &Truth,
        book: &AddrBook,
    ) {
        let Ok(parsed) = parse(bytes, ParseOptions::lenient()) else {
            return;
        };
        let msg = parsed.message;
        let Some(status) = msg.status() else {
            return; // the client answers no requests
        };
        let Some((id, hop)) = msg
            .top_via()
            .and_then(|v| v.branch.as_deref())
            .and_then(parse_branch)
        else {
            return;
        };
        let Some(mut a) = self.active.remove(&id) else {
            return; // a late answer to a finished lookup
        };
        if hop != a.hops || from != a.at || status < 200 {
            // A retransmission's answer from an earlier hop.
            self.active.insert(id, a);
            return;
        }
        let is_key = matches!(a.req.target, Target::Key(_));
        let ending = match status {
            302 if is_key => {
                let next = msg
                    .contact_addrs()
                    .next()
                    .and_then(|c| c.addr.uri.socket_addr())
                    .and_then(|addr| book.endpoint(addr, u32::MAX - 2));
                match next {
                    None => Ending::BadContact,
                    Some(next) if a.visited.contains(&next) => Ending::Loop,
                    Some(_) if a.hops + 1 > a.max_hops => {
                        a.hops += 1;
                        Ending::TooManyHops
                    }
                    Some(next) => {
                        let sender = Peer::at(book.addr(from)).id;
                        let contact = Peer::at(book.addr(next)).id;
                        if !progress_ok(truth, &sender, &contact, &a.key) {
                            a.progress_violations += 1;
                        }
                        a.hops += 1;
                        a.at = next;
                        a.visited.push(next);
                        self.send(now, id, &mut a, book);
                        self.active.insert(id, a);
                        return;
                    }
                }
            }
            200 | 404 if is_key => {
                let correct = truth.successor(&a.key).map(|(_, e)| e) == Some(from);
                Ending::Final {
                    status,
                    responder: from,
                    correct,
                    contacts: Vec::new(),
                }
            }
            _ if is_key => Ending::Unexpected(status),
            _ => Ending::Final {
                status,
                responder: from,
                correct: true,
                contacts: msg
                    .contact_addrs()
                    .map(|c| (c.addr.uri.to_string(), c.expires.or(msg.expires())))
                    .collect(),
            },
        };
        self.done.push(a.outcome(ending, now));
    }

    /// Bytes held: queued and running lookups and the wake-up heap.
    pub fn memory(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Request>()
            + self.active.capacity() * (std::mem::size_of::<Active>() + 8)
            + self.wake.capacity() * 16
    }
}

/// C-Q3: a 302 from `sender` for `key` names a peer in (sender, key], or
/// the sender's S1 when the key lies in (sender, S1). S1 is judged by the
/// live ring (succ_L after the sender).
fn progress_ok(truth: &Truth, sender: &Id, contact: &Id, key: &Id) -> bool {
    if contact == sender {
        return false;
    }
    if contact.in_open_closed(sender, key) {
        return true;
    }
    key.in_open(sender, contact) && truth.next_after(sender).map(|(i, _)| i) == Some(*contact)
}

/// `z9hG4bKsim<id>h<hop>` back to (id, hop).
fn parse_branch(b: &str) -> Option<(u64, u32)> {
    let rest = b.strip_prefix(BRANCH)?;
    let (id, hop) = rest.split_once('h')?;
    Some((id.parse().ok()?, hop.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_round_trip() {
        assert_eq!(parse_branch("z9hG4bKsim12h3"), Some((12, 3)));
        assert_eq!(parse_branch("z9hG4bKother"), None);
    }
}
