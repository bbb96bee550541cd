/*!
The transaction layer (RFC 3261 §17, non-INVITE only).

Client side (TXN-1): a request over UDP is retransmitted at T1, 2·T1,
4·T1 … capped at T2 until a final response or Timer F (64·T1). A
provisional response moves the retransmissions to T2.

Server side (TXN-2): the final response of a state-changing request is
kept for Timer J (64·T1 over UDP), so a retransmission (same branch, same
source) gets the same bytes again and is not processed twice.
*/

use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::Transport;

use super::time::Time;

/// One client transaction, waiting for its final response.
#[derive(Debug)]
pub(crate) struct ClientTxn<P> {
    /// The number of our branch (see `ids::branch_number`).
    pub branch: u64,
    pub to: SocketAddr,
    pub bytes: Box<[u8]>,
    /// The next retransmission; `None` when none is due (retransmissions
    /// switched off).
    pub next_resend: Option<Time>,
    pub interval: Duration,
    /// Timer F.
    pub deadline: Time,
    pub purpose: P,
}

/// The open client transactions of a node.
#[derive(Debug)]
pub(crate) struct ClientTxns<P> {
    list: Vec<ClientTxn<P>>,
}

/// What [`ClientTxns::poll`] found due.
pub(crate) struct Due<P> {
    pub resend: Vec<(SocketAddr, Vec<u8>)>,
    pub expired: Vec<ClientTxn<P>>,
}

impl<P> ClientTxns<P> {
    pub fn new() -> ClientTxns<P> {
        ClientTxns { list: Vec::new() }
    }

    /// Opens a transaction for a request just sent at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Time,
        branch: u64,
        to: SocketAddr,
        bytes: Box<[u8]>,
        t1: Duration,
        timer_f: Duration,
        retransmit: bool,
        purpose: P,
    ) {
        self.list.push(ClientTxn {
            branch,
            to,
            bytes,
            next_resend: retransmit.then_some(now + t1),
            interval: t1,
            deadline: now + timer_f,
            purpose,
        });
    }

    /// Closes the transaction a final response belongs to.
    pub fn take(&mut self, branch: u64) -> Option<ClientTxn<P>> {
        let at = self.list.iter().position(|t| t.branch == branch)?;
        Some(self.list.swap_remove(at))
    }

    /// A provisional response: keep waiting, retransmit every T2
    /// (RFC 3261 §17.1.2.2, Proceeding state).
    pub fn provisional(&mut self, branch: u64, now: Time, t2: Duration) {
        if let Some(t) = self.list.iter_mut().find(|t| t.branch == branch) {
            t.interval = t2;
            if t.next_resend.is_some() {
                t.next_resend = Some(now + t2);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &ClientTxn<P>> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.list
            .iter()
            .map(|t| t.next_resend.map_or(t.deadline, |r| r.min(t.deadline)))
            .min()
    }

    /// Retransmissions due at `now` and transactions whose Timer F fired.
    pub fn poll(&mut self, now: Time, t2: Duration) -> Due<P> {
        let mut resend = Vec::new();
        let mut expired = Vec::new();
        let mut i = 0;
        while i < self.list.len() {
            let t = &mut self.list[i];
            if t.deadline <= now {
                expired.push(self.list.swap_remove(i));
                continue;
            }
            if let Some(at) = t.next_resend
                && at <= now
            {
                resend.push((t.to, t.bytes.to_vec()));
                // TXN-1: T1, 2·T1, 4·T1 … capped at T2.
                t.interval = (t.interval * 2).min(t2.max(t.interval));
                t.next_resend = Some(now + t.interval);
            }
            i += 1;
        }
        shrink(&mut self.list);
        Due { resend, expired }
    }

    pub fn memory(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<ClientTxn<P>>()
            + self.list.iter().map(|t| t.bytes.len()).sum::<usize>()
    }
}

/// Gives back what a burst left behind, so an idle node stays small.
pub(crate) fn shrink<T>(v: &mut Vec<T>) {
    if v.capacity() > 16 && v.capacity() > 4 * v.len() {
        v.shrink_to(2 * v.len());
    }
}

/// A final response kept for retransmissions of its request (TXN-2).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Box<[u8]>,
}

#[derive(Debug)]
struct ServerEntry {
    key: u64,
    until: Time,
    /// `None` while the request is still being served (the adapter waits
    /// for the overlay before it answers a user agent).
    reply: Option<Reply>,
}

/// What the server side remembers of a request.
pub(crate) enum Seen<'a> {
    New,
    /// Being served; a retransmission is absorbed silently.
    Pending,
    /// Answered; a retransmission gets this again.
    Replied(&'a Reply),
}

#[derive(Debug, Default)]
pub(crate) struct ServerTxns {
    list: Vec<ServerEntry>,
}

impl ServerTxns {
    pub fn seen(&self, key: u64) -> Seen<'_> {
        match self.list.iter().find(|e| e.key == key) {
            None => Seen::New,
            Some(ServerEntry { reply: None, .. }) => Seen::Pending,
            Some(ServerEntry { reply: Some(r), .. }) => Seen::Replied(r),
        }
    }

    /// Marks a request as being served until `until` at the latest.
    pub fn open(&mut self, key: u64, until: Time) {
        if !self.list.iter().any(|e| e.key == key) {
            self.list.push(ServerEntry {
                key,
                until,
                reply: None,
            });
        }
    }

    /// Keeps the final response of a request until `until`.
    pub fn complete(&mut self, key: u64, reply: Reply, until: Time) {
        match self.list.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.reply = Some(reply);
                e.until = until;
            }
            None => self.list.push(ServerEntry {
                key,
                until,
                reply: Some(reply),
            }),
        }
    }

    pub fn expire(&mut self, now: Time) {
        self.list.retain(|e| e.until > now);
        shrink(&mut self.list);
    }

    pub fn next_expiry(&self) -> Option<Time> {
        self.list.iter().map(|e| e.until).min()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn memory(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<ServerEntry>()
            + self
                .list
                .iter()
                .filter_map(|e| e.reply.as_ref())
                .map(|r| r.bytes.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Time::from_millis(n)
    }

    #[test]
    fn txn_1_retransmits_at_t1_doubling_capped_at_t2() {
        let (t1, t2) = (Duration::from_millis(500), Duration::from_secs(4));
        let mut txns = ClientTxns::new();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        txns.start(ms(0), 1, to, Box::from(&b"x"[..]), t1, t1 * 64, true, ());
        let mut sent = Vec::new();
        let mut now = ms(0);
        while let Some(at) = txns.next_deadline() {
            now = at;
            let due = txns.poll(now, t2);
            if !due.resend.is_empty() {
                sent.push(now.as_duration().as_millis());
            }
            if !due.expired.is_empty() {
                break;
            }
        }
        assert_eq!(
            sent,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(now, ms(32_000)); // Timer F = 64·T1
    }

    #[test]
    fn txn_2_server_keeps_reply_until_timer_j() {
        let mut s = ServerTxns::default();
        assert!(matches!(s.seen(7), Seen::New));
        s.open(7, ms(100));
        assert!(matches!(s.seen(7), Seen::Pending));
        let to = "127.0.0.1:9".parse().unwrap();
        s.complete(
            7,
            Reply {
                to,
                transport: Transport::Udp,
                bytes: Box::from(&b"r"[..]),
            },
            ms(200),
        );
        assert!(matches!(s.seen(7), Seen::Replied(r) if &*r.bytes == b"r"));
        s.expire(ms(200));
        assert!(matches!(s.seen(7), Seen::New));
    }
}
