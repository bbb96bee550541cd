//! RFC 5780 NAT behaviour discovery, client side: a sans-I/O state machine
//! ([`Probe`]) and a small tokio driver ([`run_probe`]).
//!
//! Order of the tests, and why:
//! 1. Filtering test I (§4.4): a plain request to the primary address; gives
//!    the mapped address X1 and the server's OTHER-ADDRESS.
//! 2. Filtering test II: ask for an answer from the other IP and port. An
//!    answer means endpoint-independent filtering.
//! 3. Filtering test III: ask for an answer from the other port only. An
//!    answer means address-dependent filtering; none, address-and-port.
//! 4. Mapping test II (§4.3): a request to (other IP, primary port); X2 = X1
//!    means endpoint-independent mapping.
//! 5. Mapping test III: a request to OTHER-ADDRESS; X3 = X2 means
//!    address-dependent mapping, else address-and-port-dependent.
//! 6. Hairpinning (§4.5, optional): a request sent to X1 must come back to us.
//!
//! The filtering tests run first, from the only socket there is: the mapping
//! tests contact the other IP, and under endpoint-independent mapping that
//! would open the filter for the answers the filtering tests expect to be
//! dropped.
//!
//! Answers of tests II and III must come from where CHANGE-REQUEST asked,
//! else the server is not honouring it and the probe fails rather than
//! guessing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2psip_stun::{
    Attribute, ChangeRequest, Class, Message, TransactionId, decode, looks_like_stun,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;

use crate::config::Behaviour;

/// Timing and randomness of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// Retransmission interval of a request.
    pub rto: Duration,
    /// How long one test waits for its answer; a filtering test that gets
    /// none takes this long.
    pub test_timeout: Duration,
    /// Seed of the transaction IDs.
    pub seed: u64,
    /// Run the hairpinning test.
    pub hairpinning: bool,
}

impl Default for ProbeConfig {
    /// Loopback timing: generous enough for a loaded machine, short enough
    /// that a probe stays around a second.
    fn default() -> Self {
        ProbeConfig {
            rto: Duration::from_millis(100),
            test_timeout: Duration::from_millis(500),
            seed: 0,
            hairpinning: true,
        }
    }
}

impl ProbeConfig {
    /// An upper bound of a whole probe: six tests.
    pub fn max_duration(&self) -> Duration {
        self.test_timeout.saturating_mul(6) + Duration::from_secs(1)
    }
}

/// The discovered behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub mapping: Behaviour,
    pub filtering: Behaviour,
    /// `None` when not tested.
    pub hairpinning: Option<bool>,
    /// The client's socket.
    pub local: SocketAddr,
    /// X1: the mapped address the primary address saw.
    pub mapped: SocketAddr,
    /// X1 differs from the local address.
    pub behind_nat: bool,
    /// X1 has the local port.
    pub port_preserved: bool,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ProbeError {
    #[error("no answer to {0} within the test timeout")]
    NoResponse(String),
    #[error("{test}: error response {code}")]
    ErrorResponse { test: String, code: u16 },
    #[error("{0}: the answer lacks XOR-MAPPED-ADDRESS")]
    NoMappedAddress(String),
    #[error("the server gave no OTHER-ADDRESS: it does not support RFC 5780")]
    NoOtherAddress,
    #[error("OTHER-ADDRESS {0} has the primary IP: the server has a single address")]
    SingleAddress(SocketAddr),
    #[error("{test}: answer came from {got}, CHANGE-REQUEST asked for {expected}")]
    ChangeIgnored {
        test: String,
        expected: SocketAddr,
        got: SocketAddr,
    },
    #[error("socket error: {0}")]
    Io(String),
    #[error("the probe did not finish within {0:?}")]
    Deadline(Duration),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    FilterI,
    FilterII,
    FilterIII,
    MapII,
    MapIII,
    Hairpin,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::FilterI => "filtering test I (RFC 5780 §4.4)",
            Step::FilterII => "filtering test II",
            Step::FilterIII => "filtering test III",
            Step::MapII => "mapping test II (RFC 5780 §4.3)",
            Step::MapIII => "mapping test III",
            Step::Hairpin => "hairpinning test (RFC 5780 §4.5)",
        }
    }
}

#[derive(Debug)]
struct Pending {
    step: Step,
    tid: TransactionId,
    dst: SocketAddr,
    /// Where the answer must come from, if it matters.
    expect_from: Option<SocketAddr>,
    payload: Vec<u8>,
    next_send: Instant,
    deadline: Instant,
}

/// The RFC 5780 client state machine. Feed it datagrams received on the
/// probing socket and timeouts; send what [`Probe::poll_transmit`] gives.
#[derive(Debug)]
pub struct Probe {
    config: ProbeConfig,
    server: SocketAddr,
    local: SocketAddr,
    rng: ChaCha8Rng,
    pending: Option<Pending>,
    due: bool,
    x1: Option<SocketAddr>,
    x2: Option<SocketAddr>,
    other: Option<SocketAddr>,
    mapping: Option<Behaviour>,
    filtering: Option<Behaviour>,
    hairpinning: Option<bool>,
    outcome: Option<Result<Classification, ProbeError>>,
}

impl Probe {
    /// A probe of the NAT between `local` (the probing socket) and the
    /// RFC 5780 server whose primary address is `server`.
    pub fn new(server: SocketAddr, local: SocketAddr, config: ProbeConfig, now: Instant) -> Probe {
        let mut probe = Probe {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            server,
            local,
            pending: None,
            due: false,
            x1: None,
            x2: None,
            other: None,
            mapping: None,
            filtering: None,
            hairpinning: None,
            outcome: None,
        };
        probe.start(Step::FilterI, server, ChangeRequest::default(), None, now);
        probe
    }

    /// The next datagram to send now, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.due {
            return None;
        }
        self.due = false;
        self.pending.as_ref().map(|p| Transmit {
            dst: p.dst,
            payload: p.payload.clone(),
        })
    }

    /// When to call [`Probe::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.next_send.min(p.deadline))
    }

    /// The result, once there is one.
    pub fn outcome(&self) -> Option<&Result<Classification, ProbeError>> {
        self.outcome.as_ref()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if now >= p.deadline {
            let step = p.step;
            self.pending = None;
            self.on_silence(step, now);
        } else if now >= p.next_send {
            // Retransmit (RFC 5389 §7.2.1), at a fixed interval: loopback
            // does not need backoff.
            p.next_send = now + self.config.rto;
            self.due = true;
        }
    }

    /// A datagram received on the probing socket from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        if !looks_like_stun(data) {
            return;
        }
        let Ok(message) = decode(data) else { return };
        let Some(p) = self.pending.as_ref() else {
            return;
        };
        if message.transaction_id != p.tid {
            return;
        }
        let step = p.step;
        if step == Step::Hairpin {
            // Our own request, delivered back through the NAT.
            if message.class == Class::Request {
                self.pending = None;
                self.hairpinning = Some(true);
                self.finish();
            }
            return;
        }
        let expect_from = p.expect_from;
        match message.class {
            Class::SuccessResponse => {}
            Class::ErrorResponse => {
                let code = message.error_code().map_or(0, |e| e.code);
                return self.fail(ProbeError::ErrorResponse {
                    test: step.name().into(),
                    code,
                });
            }
            Class::Request | Class::Indication => return,
        }
        if let Some(expected) = expect_from
            && from != expected
        {
            return self.fail(ProbeError::ChangeIgnored {
                test: step.name().into(),
                expected,
                got: from,
            });
        }
        let Some(mapped) = message.reflexive_address() else {
            return self.fail(ProbeError::NoMappedAddress(step.name().into()));
        };
        self.pending = None;
        self.on_answer(step, &message, mapped, now);
    }

    fn on_answer(&mut self, step: Step, message: &Message, mapped: SocketAddr, now: Instant) {
        match step {
            Step::FilterI => {
                let Some(other) = message.other_address() else {
                    return self.fail(ProbeError::NoOtherAddress);
                };
                if other.ip() == self.server.ip() || other.port() == self.server.port() {
                    return self.fail(ProbeError::SingleAddress(other));
                }
                self.x1 = Some(mapped);
                self.other = Some(other);
                let change = ChangeRequest {
                    change_ip: true,
                    change_port: true,
                };
                self.start(Step::FilterII, self.server, change, Some(other), now);
            }
            Step::FilterII => {
                self.filtering = Some(Behaviour::EndpointIndependent);
                self.start_mapping(now);
            }
            Step::FilterIII => {
                self.filtering = Some(Behaviour::AddressDependent);
                self.start_mapping(now);
            }
            Step::MapII => {
                if Some(mapped) == self.x1 {
                    self.mapping = Some(Behaviour::EndpointIndependent);
                    self.start_hairpin(now);
                } else if let Some(other) = self.other {
                    self.x2 = Some(mapped);
                    self.start(Step::MapIII, other, ChangeRequest::default(), None, now);
                }
            }
            Step::MapIII => {
                self.mapping = Some(if Some(mapped) == self.x2 {
                    Behaviour::AddressDependent
                } else {
                    Behaviour::AddressAndPortDependent
                });
                self.start_hairpin(now);
            }
            Step::Hairpin => {}
        }
    }

    fn on_silence(&mut self, step: Step, now: Instant) {
        match step {
            Step::FilterII => {
                let change = ChangeRequest {
                    change_ip: false,
                    change_port: true,
                };
                let expected = self
                    .other
                    .map(|o| SocketAddr::new(self.server.ip(), o.port()));
                self.start(Step::FilterIII, self.server, change, expected, now);
            }
            Step::FilterIII => {
                self.filtering = Some(Behaviour::AddressAndPortDependent);
                self.start_mapping(now);
            }
            Step::Hairpin => {
                self.hairpinning = Some(false);
                self.finish();
            }
            Step::FilterI | Step::MapII | Step::MapIII => {
                self.fail(ProbeError::NoResponse(step.name().into()));
            }
        }
    }

    fn start_mapping(&mut self, now: Instant) {
        if let Some(other) = self.other {
            let dst = SocketAddr::new(other.ip(), self.server.port());
            self.start(Step::MapII, dst, ChangeRequest::default(), None, now);
        }
    }

    fn start_hairpin(&mut self, now: Instant) {
        match (self.config.hairpinning, self.x1) {
            (true, Some(x1)) => self.start(Step::Hairpin, x1, ChangeRequest::default(), None, now),
            _ => self.finish(),
        }
    }

    fn start(
        &mut self,
        step: Step,
        dst: SocketAddr,
        change: ChangeRequest,
        expect_from: Option<SocketAddr>,
        now: Instant,
    ) {
        let tid = TransactionId::new(self.rng.random());
        let mut request = Message::binding_request(tid);
        if change.change_ip || change.change_port {
            request = request.with(Attribute::ChangeRequest(change));
        }
        let payload = match request.with_fingerprint().encode() {
            Ok(p) => p,
            Err(e) => return self.fail(ProbeError::Io(e.to_string())),
        };
        self.pending = Some(Pending {
            step,
            tid,
            dst,
            expect_from,
            payload,
            next_send: now + self.config.rto,
            deadline: now + self.config.test_timeout,
        });
        self.due = true;
    }

    fn finish(&mut self) {
        self.pending = None;
        let (Some(mapping), Some(filtering), Some(mapped)) =
            (self.mapping, self.filtering, self.x1)
        else {
            return self.fail(ProbeError::NoResponse("an earlier test".into()));
        };
        self.outcome = Some(Ok(Classification {
            mapping,
            filtering,
            hairpinning: self.hairpinning,
            local: self.local,
            mapped,
            behind_nat: mapped != self.local,
            port_preserved: mapped.port() == self.local.port(),
        }));
    }

    fn fail(&mut self, error: ProbeError) {
        self.pending = None;
        self.due = false;
        if self.outcome.is_none() {
            self.outcome = Some(Err(error));
        }
    }
}

/// Runs a [`Probe`] on `socket` against the server's primary address.
/// Finishes within [`ProbeConfig::max_duration`].
pub async fn run_probe(
    socket: &UdpSocket,
    server: SocketAddr,
    config: ProbeConfig,
) -> Result<Classification, ProbeError> {
    let local = socket
        .local_addr()
        .map_err(|e| ProbeError::Io(e.to_string()))?;
    let limit = config.max_duration();
    let mut probe = Probe::new(server, local, config, Instant::now());
    let drive = async {
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(t) = probe.poll_transmit() {
                // A failed send is retransmitted on the next interval.
                let send = socket.send_to(&t.payload, t.dst);
                if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(1), send).await {
                    tracing::debug!(dst = %t.dst, error = %e, "probe send failed");
                }
            }
            if let Some(outcome) = probe.outcome() {
                return outcome.clone();
            }
            let Some(wake) = probe.poll_timeout() else {
                return Err(ProbeError::NoResponse("the probe stalled".into()));
            };
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((len, from)) => probe.handle_datagram(from, &buf[..len], Instant::now()),
                    Err(e) => tracing::debug!(error = %e, "probe recv failed"),
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    probe.handle_timeout(Instant::now());
                }
            }
        }
    };
    tokio::time::timeout(limit, drive)
        .await
        .map_err(|_| ProbeError::Deadline(limit))?
}
