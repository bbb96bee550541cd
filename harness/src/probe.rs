/*!
The OPTIONS probe (TXN-4): readiness after start, liveness after every
case.

A probe sends a plain OPTIONS (no DHT-PeerID: the prober is no peer and
must not end up in anyone's tables) from the case's observer socket, a
new transaction every `interval`, until a `200` arrives or the deadline.
What it got instead (another status, garbage, silence) is kept for the
verdict.
*/

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2psip_wire::build::{self};
use p2psip_wire::{Host, Scheme, Transport, Uri, UriParams};

use crate::puppet::{Kind, Matcher, Puppet, Received};

/// Why a probe did not get its 200.
#[derive(Debug, Clone)]
pub enum ProbeFailure {
    /// Nothing came back at all.
    Silent { sent: usize },
    /// Answers came, none a 200: the first one is kept.
    WrongAnswer { sent: usize, first: String },
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Silent { sent } => {
                write!(f, "no answer to {sent} OPTIONS probes")
            }
            ProbeFailure::WrongAnswer { sent, first } => write!(
                f,
                "{sent} OPTIONS probes were answered, never with 200: first answer was {first}"
            ),
        }
    }
}

fn harness_uri(addr: SocketAddr) -> Uri<'static> {
    Uri {
        scheme: Scheme::Sip,
        user: Some("harness".into()),
        password: None,
        host: Host::from_ip(addr.ip()),
        port: Some(addr.port()),
        params: UriParams::default(),
        headers: None,
        opaque: None,
    }
}

/// Probes `target` until it answers 200 or `deadline`; the 200 is returned.
/// Fresh probes go out 20 ms apart at first (a process that is still
/// binding its socket answers the second or third), the gap doubling up
/// to `interval`.
pub async fn options(
    obs: &Puppet,
    target: SocketAddr,
    deadline: Instant,
    interval: Duration,
) -> Result<Received, ProbeFailure> {
    let mut sent = 0;
    let mut branches: Vec<String> = Vec::new();
    let any_answer = Matcher {
        kind: Kind::Any,
        from: Some(target),
        ..Matcher::default()
    };
    let before = obs.inbox().matching(&any_answer).len();
    let mut gap = Duration::from_millis(20).min(interval);
    loop {
        let txn = obs.txn();
        let msg = build::options(None, target, &txn, harness_uri(obs.addr()));
        branches.push(txn.branch.clone());
        sent += 1;
        // A send error (no route) is like silence for the verdict.
        let _ = obs.send_msg(target, Transport::Udp, &msg).await;
        let next = (Instant::now() + gap).min(deadline);
        gap = (gap * 2).min(interval);
        // A 200 to any of our probes counts, however late.
        let ok = Matcher {
            kind: Kind::Response {
                codes: vec![200],
                branches: branches.clone(),
            },
            from: Some(target),
            ..Matcher::default()
        };
        if let Some(r) = obs.inbox().wait(&ok, next).await {
            return Ok(r);
        }
        if Instant::now() >= deadline {
            let answers = obs.inbox().matching(&any_answer);
            return Err(match answers.get(before) {
                None => ProbeFailure::Silent { sent },
                Some(r) => ProbeFailure::WrongAnswer {
                    sent,
                    first: r.describe(),
                },
            });
        }
    }
}
