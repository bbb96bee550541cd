/*!
What the analysis needs to know that a capture does not say: the wire
profile, the overlay parameters the peers ran with (PROFILE §12), whose
messages to judge, and the bounds of its own state.
*/

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use p2psip_capture::Limits;
use p2psip_wire::Profile;

/// Options of [`check`](crate::check).
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    /// TXN-1 T1 the peers ran with. `None`: the profile default (500 ms)
    /// for deciding that a request waited too long without a copy; a
    /// sender's own retransmissions always give its T1 when it made any.
    pub t1: Option<Duration>,
    /// TXN-1 T2 (RFC 3261: 4 s).
    pub t2: Duration,
    /// STAB-1 interval the peers ran with (60 s by default, 1 s in the
    /// harness's fast runs). Sets the grace after which a peer known to
    /// have left or failed may no longer be reported (C-L3), and the time
    /// a peer has to adopt its observed address (NAT-3).
    pub stabilize: Duration,
    /// NAT-5 keep-alive interval (failure detection of fingers).
    pub keepalive: Duration,
    /// R, the replica count (REPL-1).
    pub replicas: u32,
    /// Judge only messages sent by these endpoints (empty: every sender).
    /// Rules about a response judge its sender (the responder); rules
    /// about a request judge the requester.
    pub subjects: Vec<Subject>,
    /// Findings kept with their evidence per check family; the rest are
    /// counted.
    pub max_findings: usize,
    /// Transactions tracked at once; the oldest are dropped beyond it.
    pub max_transactions: usize,
    /// Peers tracked at once; new peers are not tracked beyond it.
    pub max_peers: usize,
    /// The capture reader's bounds.
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            profile: Profile::DsipChord,
            t1: None,
            t2: Duration::from_secs(4),
            stabilize: Duration::from_secs(60),
            keepalive: Duration::from_secs(25),
            replicas: 2,
            subjects: Vec::new(),
            max_findings: 50,
            max_transactions: 200_000,
            max_peers: 100_000,
            limits: Limits::default(),
        }
    }
}

impl Options {
    /// The harness's fast values (PROFILE §12): T1 100 ms, T = 1 s, K = 1 s.
    pub fn fast() -> Options {
        Options {
            t1: Some(Duration::from_millis(100)),
            stabilize: Duration::from_secs(1),
            keepalive: Duration::from_secs(1),
            ..Options::default()
        }
    }

    /// T1 assumed when a sender gives no evidence of its own.
    pub fn t1_or_default(&self) -> Duration {
        self.t1.unwrap_or(Duration::from_millis(500))
    }

    /// Timer F = 64·T1.
    pub fn timer_f(&self) -> Duration {
        self.t1_or_default() * 64
    }

    /// How long after a peer left or stopped answering its neighbours may
    /// still report it (CHECKS C-L3: detection within Timer F, then a
    /// stabilisation, fix-fingers or keep-alive round), plus one second of
    /// slack for scheduling.
    pub fn stale_grace(&self) -> Duration {
        self.timer_f() + 2 * self.stabilize.max(self.keepalive) + Duration::from_secs(1)
    }

    /// Is `addr` one of the endpoints to judge?
    pub fn judges(&self, addr: SocketAddr) -> bool {
        self.subjects.is_empty() || self.subjects.iter().any(|s| s.matches(addr))
    }
}

/// An endpoint to judge: an IP address, with or without a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl Subject {
    pub fn matches(&self, addr: SocketAddr) -> bool {
        addr.ip() == self.ip && self.port.is_none_or(|p| p == addr.port())
    }
}

impl FromStr for Subject {
    type Err = String;

    /// `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address.
    fn from_str(s: &str) -> Result<Subject, String> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Subject {
                ip: a.ip(),
                port: Some(a.port()),
            });
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(Subject { ip, port: None }),
            Err(_) => Err(format!("{s:?} is not IP or IP:PORT")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_parse_and_match() {
        let s: Subject = "127.0.0.1:5060".parse().unwrap();
        assert!(s.matches("127.0.0.1:5060".parse().unwrap()));
        assert!(!s.matches("127.0.0.1:5061".parse().unwrap()));
        let s: Subject = "127.0.0.1".parse().unwrap();
        assert!(s.matches("127.0.0.1:9".parse().unwrap()));
        let s: Subject = "[::1]".parse().unwrap();
        assert!(s.matches("[::1]:9".parse().unwrap()));
        assert!("nope".parse::<Subject>().is_err());
    }
}
