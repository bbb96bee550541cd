/*!
The node's configuration: the overlay parameters of PROFILE §12 and the
fault switches that make the node break one requirement on purpose.
*/

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Everything a [`Node`](super::Node) needs to know before it starts.
///
/// [`Config::new`] gives the PROFILE §12 defaults; [`Config::fast`] the
/// harness's fast values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address the node's socket is bound to (the actual port, never 0).
    pub local: SocketAddr,
    /// The public address the node is reachable at (NAT-3). Its Peer-ID and
    /// Peer URI use it until an observed address says otherwise.
    pub advertise: Option<SocketAddr>,
    /// The peer to join through; `None` makes this the first peer (JOIN-8).
    pub bootstrap: Option<SocketAddr>,
    /// The overlay name (WIRE-4, WIRE-10).
    pub overlay: String,
    /// STAB-1 interval.
    pub stabilize: Duration,
    /// STAB-3 interval.
    pub fix_fingers: Duration,
    /// NAT-5 interval.
    pub keepalive: Duration,
    /// TXN-1 T1.
    pub t1: Duration,
    /// TXN-1 T2 (RFC 3261: 4 s).
    pub t2: Duration,
    /// Expires of the REGISTERs this node sends (joins, notifies) and the
    /// default lifetime of a binding registered without one, in seconds.
    pub expires: u32,
    /// Lifetime of this node's DHT-PeerID and of the links it reports, in
    /// seconds (WIRE-4 `expires`).
    pub peer_expires: u32,
    /// R, the replica count (REPL-1).
    pub replicas: u32,
    /// The successor-list length (STAB-4).
    pub successors: usize,
    /// The largest message accepted (WIRE-8), in bytes.
    pub max_message: usize,
    /// How often the adapter re-places every copy of the registrations it
    /// made (REPL-2, REPL-5). `None`: the stabilisation interval.
    pub refresh: Option<Duration>,
    /// Seed of the only randomness the core uses (branches, tags, Call-IDs).
    pub seed: u64,
    /// Requirements to break on purpose.
    pub faults: FaultSet,
}

impl Config {
    /// The PROFILE §12 defaults for a node bound to `local`.
    pub fn new(local: SocketAddr) -> Config {
        Config {
            local,
            advertise: None,
            bootstrap: None,
            overlay: "chat".to_owned(),
            stabilize: Duration::from_secs(60),
            fix_fingers: Duration::from_secs(60),
            keepalive: Duration::from_secs(25),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            expires: 600,
            peer_expires: 3600,
            replicas: 2,
            successors: 4,
            max_message: 8192,
            refresh: None,
            seed: 0,
            faults: FaultSet::EMPTY,
        }
    }

    /// The harness's fast values (PROFILE §12).
    pub fn fast(local: SocketAddr) -> Config {
        Config {
            stabilize: Duration::from_secs(1),
            fix_fingers: Duration::from_secs(1),
            keepalive: Duration::from_secs(1),
            t1: Duration::from_millis(100),
            expires: 30,
            peer_expires: 30,
            ..Config::new(local)
        }
    }

    pub fn with_bootstrap(mut self, bootstrap: Option<SocketAddr>) -> Config {
        self.bootstrap = bootstrap;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Config {
        self.seed = seed;
        self
    }

    pub fn with_fault(mut self, fault: Fault) -> Config {
        self.faults.insert(fault);
        self
    }

    /// Timer F = 64·T1 (TXN-1).
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }

    /// The adapter's refresh interval (REPL-5).
    pub fn refresh_interval(&self) -> Duration {
        self.refresh.unwrap_or(self.stabilize)
    }

    /// What [`Node::new`](super::Node::new) refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local.port() == 0 {
            return Err(ConfigError::UnboundPort);
        }
        if self.overlay.is_empty()
            || self
                .overlay
                .bytes()
                .any(|b| !b.is_ascii_graphic() || b == b';')
        {
            return Err(ConfigError::Overlay);
        }
        if self.t1.is_zero()
            || self.stabilize.is_zero()
            || self.fix_fingers.is_zero()
            || self.keepalive.is_zero()
        {
            return Err(ConfigError::ZeroInterval);
        }
        if self.successors == 0 || self.successors > 32 {
            return Err(ConfigError::Successors(self.successors));
        }
        if self.peer_expires == 0 || self.expires == 0 {
            return Err(ConfigError::ZeroExpires);
        }
        Ok(())
    }
}

/// A configuration the node cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `local` must be the bound address: the Peer-ID depends on the port.
    #[error("the local address must carry the bound port, not 0")]
    UnboundPort,
    #[error("the overlay name must be a non-empty token")]
    Overlay,
    #[error("timer intervals must be greater than zero")]
    ZeroInterval,
    #[error("successor list length {0} is outside 1..=32")]
    Successors(usize),
    #[error("expires values must be greater than zero")]
    ZeroExpires,
}

macro_rules! faults {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $req:literal, $effect:literal; )*) => {
        /// A fault switch: breaks exactly one requirement, so the harness can
        /// prove that a suite catches it (DESIGN "Proving the harness right").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Fault { $( $(#[$doc])* $variant, )* }

        impl Fault {
            pub const ALL: &'static [Fault] = &[ $( Fault::$variant, )* ];
            /// The command-line names, in [`Fault::ALL`] order.
            pub const NAMES: &'static [&'static str] = &[ $( $name, )* ];

            /// The name used by `--fault`.
            pub fn name(self) -> &'static str {
                match self { $( Fault::$variant => $name, )* }
            }

            /// The requirement it breaks.
            pub fn requirement(self) -> &'static str {
                match self { $( Fault::$variant => $req, )* }
            }

            /// What the node does wrong with it.
            pub fn effect(self) -> &'static str {
                match self { $( Fault::$variant => $effect, )* }
            }
        }
    };
}

faults! {
    /// Replicas go to the node's own successors instead of the hashed positions.
    ReplicaSuccessor = "replica-successor", "REPL-3",
        "the adapter hands replica N to its own successor SN (third-party REGISTER) instead of the peer responsible for the replica's Resource-ID";
    /// No stabilisation queries.
    NoStabilize = "no-stabilize", "STAB-1",
        "never queries its successor; the ring is only repaired by joins, notifies and leaves";
    /// The admitting peer adopts the joiner before answering.
    PredBefore200 = "pred-before-200", "JOIN-5",
        "the admitting peer sets its predecessor to the joiner before building the 200, which then reports P1 = the joiner itself";
    /// Responses go to the Via sent-by, without received/rport.
    IgnoreRport = "ignore-rport", "NAT-2 / TXN-3",
        "responses go to the top Via's sent-by address, and received/rport are not filled in";
    /// No ID-7 verification.
    NoIdCheck = "no-id-check", "ID-7",
        "state-changing requests are accepted whatever their source address: no 493";
    /// Redirects that make no progress.
    Wrong302 = "wrong-302", "QUERY-2",
        "302s name the responder's predecessor instead of a peer closer to the key";
    /// Reports links with expires=0.
    StaleLinks = "stale-links", "WIRE-5 / STAB-6",
        "every DHT-Link is reported with expires=0";
    /// No retransmissions.
    NoRetransmit = "no-retransmit", "TXN-1",
        "requests over UDP are sent once; only Timer F ends them";
    /// The Peer-ID stays the one of the local address.
    IdFromPrivate = "id-from-private", "NAT-3",
        "keeps the Peer-ID and Peer URI of its local address after learning the observed one (and ignores --advertise)";
    /// No keep-alives.
    NoKeepalive = "no-keepalive", "NAT-5",
        "sends no keep-alive OPTIONS to its neighbours";
    /// Adopts reported peers without a transaction with them.
    ReportUnverified = "report-unverified", "QUERY-7",
        "adopts (and so reports and redirects to) the successors and the predecessor its successor reports, without a transaction with them";
    /// Exits without leaving.
    NoLeave = "no-leave", "LEAVE-1",
        "a leave command (SIGTERM) stops the node without transfers or leave REGISTERs";
    /// Upper-case hex IDs.
    UpperHex = "upper-hex", "ID-1",
        "writes every ID it sends in upper-case hex";
    /// No transfer of registrations to a joiner.
    NoTransfer = "no-transfer", "JOIN-9",
        "keeps the registrations a new predecessor is now responsible for instead of transferring them";
    /// Queries change the routing state.
    QueryMutates = "query-mutates", "QUERY-1",
        "adopts the sender of a query as predecessor (when closer) and as finger";
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {0:?}; valid faults: {valid}", valid = Fault::NAMES.join(", "))]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// A set of [`Fault`]s; the core asks [`FaultSet::has`] at the one place
/// where each behaviour differs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FaultSet(u32);

const _: () = assert!(Fault::ALL.len() <= 32, "FaultSet holds 32 faults");

impl FaultSet {
    pub const EMPTY: FaultSet = FaultSet(0);

    pub fn has(self, f: Fault) -> bool {
        self.0 & (1 << f as u8) != 0
    }

    pub fn insert(&mut self, f: Fault) {
        self.0 |= 1 << f as u8;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Fault> {
        Fault::ALL.iter().copied().filter(move |f| self.has(*f))
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> FaultSet {
        let mut s = FaultSet::EMPTY;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl fmt::Debug for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Fault::name)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(*f));
        }
        let err = "nope".parse::<Fault>().unwrap_err().to_string();
        assert!(
            err.contains("replica-successor") && err.contains("query-mutates"),
            "{err}"
        );
    }

    #[test]
    fn fault_set() {
        let s: FaultSet = [Fault::NoLeave, Fault::UpperHex].into_iter().collect();
        assert!(s.has(Fault::NoLeave) && s.has(Fault::UpperHex) && !s.has(Fault::NoStabilize));
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn defaults_follow_profile_12() {
        let c = Config::new("127.0.0.1:5060".parse().unwrap());
        assert_eq!(c.overlay, "chat");
        assert_eq!((c.successors, c.replicas), (4, 2));
        assert_eq!(c.stabilize, Duration::from_secs(60));
        assert_eq!(c.keepalive, Duration::from_secs(25));
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!(c.timer_f(), Duration::from_secs(32));
        assert_eq!((c.expires, c.peer_expires), (600, 3600));
        assert!(c.validate().is_ok());
        let unbound = Config::new("127.0.0.1:0".parse().unwrap());
        assert_eq!(unbound.validate(), Err(ConfigError::UnboundPort));
    }
}
