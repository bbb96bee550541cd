/*!
A puppet's inbox: everything it received, in order, each parsed leniently
(a robust receiver's reading; strict judgement is a check's job), and a
way to wait, with a deadline, for the first unclaimed entry that matches.

`expect` steps claim what they match, so two expectations never take the
same message, and an expectation may match a message that arrived before
it started waiting (responses can be fast), in any order relative to
other traffic.
*/

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use p2psip_wire::{Class, Message, ParseError, ParseOptions, Transport, looks_like_stun, parse};
use tokio::sync::Notify;

/// One thing a puppet received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Position in the inbox.
    pub idx: usize,
    pub at: Instant,
    pub from: SocketAddr,
    /// The puppet's own address it arrived at (for TCP, the connection's
    /// local address).
    pub local: SocketAddr,
    pub transport: Transport,
    pub bytes: Arc<[u8]>,
    /// The lenient parse, when it succeeded.
    pub message: Option<Message<'static>>,
    /// Why the lenient parse failed.
    pub error: Option<ParseError>,
    /// The puppet answered it by itself.
    pub auto_answered: bool,
    /// Not a message: the TCP connection from `from` was closed.
    pub closed: bool,
    claimed: bool,
}

impl Received {
    pub fn is_request(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.is_request())
    }

    pub fn status(&self) -> Option<u16> {
        self.message.as_ref().and_then(|m| m.status())
    }

    /// One line describing it, for failure reports.
    pub fn describe(&self) -> String {
        if self.closed {
            return format!("TCP connection closed by {}", self.from);
        }
        format!(
            "{} from {}",
            crate::evidence::summarize(&self.bytes, self.transport),
            self.from
        )
    }
}

/// What an expectation waits for.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub kind: Kind,
    /// Only from this address (or only from this IP, when the port is 0).
    pub from: Option<SocketAddr>,
    pub transport: Option<Transport>,
    /// Also match requests the puppet answered by itself.
    pub include_auto: bool,
}

#[derive(Debug, Clone, Default)]
pub enum Kind {
    /// Anything at all (a message, garbage, STUN).
    #[default]
    Any,
    /// A request, optionally of one method and class.
    Request {
        method: Option<String>,
        class: Option<Class>,
        /// Only retransmissions of this branch.
        branch: Option<String>,
    },
    /// A response with one of these codes (any code when empty), to a
    /// request with one of these top Via branches (any when empty).
    Response {
        codes: Vec<u16>,
        branches: Vec<String>,
    },
    /// A datagram that looks like STUN.
    Stun,
    /// The TCP connection was closed by the other side.
    Closed,
}

impl Matcher {
    pub fn response_to(branch: &str, codes: &[u16]) -> Matcher {
        Matcher {
            kind: Kind::Response {
                codes: codes.to_vec(),
                branches: vec![branch.to_string()],
            },
            ..Matcher::default()
        }
    }

    pub fn request(method: Option<&str>, class: Option<Class>) -> Matcher {
        Matcher {
            kind: Kind::Request {
                method: method.map(str::to_string),
                class,
                branch: None,
            },
            include_auto: true,
            ..Matcher::default()
        }
    }

    pub fn from(mut self, addr: SocketAddr) -> Matcher {
        self.from = Some(addr);
        self
    }

    pub fn matches(&self, r: &Received) -> bool {
        if r.auto_answered && !self.include_auto {
            return false;
        }
        if let Some(f) = self.from {
            let same = if f.port() == 0 {
                f.ip() == r.from.ip()
            } else {
                f == r.from
            };
            if !same {
                return false;
            }
        }
        if self.transport.is_some_and(|t| t != r.transport) {
            return false;
        }
        if r.closed {
            return matches!(self.kind, Kind::Closed);
        }
        match &self.kind {
            Kind::Any => true,
            Kind::Closed => false,
            Kind::Stun => looks_like_stun(&r.bytes),
            Kind::Request {
                method,
                class,
                branch,
            } => {
                let Some(m) = r.message.as_ref().filter(|m| m.is_request()) else {
                    return false;
                };
                if let Some(want) = method {
                    let got = m.method().map(|x| x.as_str()).unwrap_or("");
                    if !want.eq_ignore_ascii_case("any") && got != want {
                        return false;
                    }
                }
                if class.is_some_and(|c| Class::of_request(m) != c) {
                    return false;
                }
                if let Some(b) = branch {
                    let got = m.top_via().and_then(|v| v.branch.as_deref());
                    if got != Some(b.as_str()) {
                        return false;
                    }
                }
                true
            }
            Kind::Response { codes, branches } => {
                let Some(m) = r.message.as_ref() else {
                    return false;
                };
                let Some(code) = m.status() else {
                    return false;
                };
                if !codes.is_empty() && !codes.contains(&code) {
                    return false;
                }
                if !branches.is_empty() {
                    let got = m.top_via().and_then(|v| v.branch.as_deref());
                    if !branches.iter().any(|b| got == Some(b.as_str())) {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// What a puppet received, and a notification when more arrives.
#[derive(Default)]
pub struct Inbox {
    items: Mutex<Vec<Received>>,
    notify: Notify,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds received bytes; returns their index.
    pub fn push(
        &self,
        from: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) -> usize {
        self.push_with(from, local, transport, bytes, |_| (false, ()))
            .0
    }

    /// Adds received bytes after `before` has seen the entry: what it
    /// does (a puppet's automatic answer, its store) is done before any
    /// waiter can match the entry. `before` returns whether the entry was
    /// answered automatically, and a value passed back with the index.
    pub fn push_with<T>(
        &self,
        from: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        bytes: &[u8],
        before: impl FnOnce(&Received) -> (bool, T),
    ) -> (usize, T) {
        let opts = ParseOptions {
            max_size: usize::MAX,
            ..ParseOptions::lenient().with_transport(transport)
        };
        let (message, error) = if looks_like_stun(bytes) {
            (None, None)
        } else {
            match parse(bytes, opts) {
                Ok(p) => (Some(p.message.into_owned()), None),
                Err(e) => (None, Some(e)),
            }
        };
        let mut r = Received {
            idx: 0,
            at: Instant::now(),
            from,
            local,
            transport,
            bytes: Arc::from(bytes),
            message,
            error,
            auto_answered: false,
            closed: false,
            claimed: false,
        };
        let (auto, out) = before(&r);
        r.auto_answered = auto;
        let idx = {
            let mut g = self.lock();
            r.idx = g.len();
            let idx = r.idx;
            g.push(r);
            idx
        };
        self.notify.notify_waiters();
        (idx, out)
    }

    /// Records that the TCP connection from `from` was closed.
    pub fn push_closed(&self, from: SocketAddr, local: SocketAddr) {
        {
            let mut g = self.lock();
            let idx = g.len();
            g.push(Received {
                idx,
                at: Instant::now(),
                from,
                local,
                transport: Transport::Tcp,
                bytes: Arc::from(&b""[..]),
                message: None,
                error: None,
                auto_answered: false,
                closed: true,
                claimed: false,
            });
        }
        self.notify.notify_waiters();
    }

    pub fn get(&self, idx: usize) -> Option<Received> {
        self.lock().get(idx).cloned()
    }

    /// Everything received so far.
    pub fn all(&self) -> Vec<Received> {
        self.lock().clone()
    }

    /// Claims and returns the first unclaimed entry that matches.
    pub fn take(&self, m: &Matcher) -> Option<Received> {
        let mut g = self.lock();
        let r = g.iter_mut().find(|r| !r.claimed && m.matches(r))?;
        r.claimed = true;
        Some(r.clone())
    }

    /// Every entry that matches, claimed or not (for counting
    /// retransmissions).
    pub fn matching(&self, m: &Matcher) -> Vec<Received> {
        self.lock()
            .iter()
            .filter(|r| m.matches(r))
            .cloned()
            .collect()
    }

    /// Waits until an unclaimed entry matches, or `deadline`.
    pub async fn wait(&self, m: &Matcher, deadline: Instant) -> Option<Received> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.take(m) {
                return Some(r);
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.take(m);
            }
        }
    }

    /// Waits until at least `n` entries (claimed or not) match, or
    /// `deadline`; returns those seen.
    pub async fn wait_count(&self, m: &Matcher, n: usize, deadline: Instant) -> Vec<Received> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let seen = self.matching(m);
            if seen.len() >= n {
                return seen;
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.matching(m);
            }
        }
    }
}
