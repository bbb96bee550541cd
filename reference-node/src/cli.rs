/*!
The `p2psip-node` command line: raw flags ([`Args`], clap) first, then a
validated [`Plan`] the driver can run (ripgrep's low/high args split).
*/

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::core::{Config, Fault, FaultSet};

const AFTER_HELP: &str = "\
Output:
  When a node's sockets are bound it prints one line to stdout:
      ready <ip:port> <peer-id>
  (with --listen IP:0 the port is the one picked, and the Peer-ID is
  computed from it, or from --advertise). Logs go to stderr, one line per
  event; -v shows every message sent and received.

Signals:
  SIGTERM or Ctrl-C makes every node leave gracefully (LEAVE-1: transfer
  its registrations, tell predecessor and successor), then the process
  exits 0 within a few seconds. A second signal exits at once.

Faults (--fault, repeatable; each breaks one requirement on purpose):
  replica-successor  REPL-3         no-stabilize       STAB-1
  pred-before-200    JOIN-5         ignore-rport       NAT-2/TXN-3
  no-id-check        ID-7           wrong-302          QUERY-2
  stale-links        WIRE-5/STAB-6  no-retransmit      TXN-1
  id-from-private    NAT-3          no-keepalive       NAT-5
  report-unverified  QUERY-7        no-leave           LEAVE-1
  upper-hex          ID-1           no-transfer        JOIN-9
  query-mutates      QUERY-1

Example:
  p2psip-node --listen 127.0.0.1:0 --bootstrap '' --overlay chat \\
      --stabilize-ms 1000 --t1-ms 100";

/// The reference dsip-chord peer (PROFILE.md): a Chord node speaking the
/// P2P-SIP REGISTER protocol over UDP and TCP.
#[derive(Debug, Parser)]
#[command(name = "p2psip-node", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Address to bind for UDP and TCP. Port 0 picks a free port.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: SocketAddr,

    /// Peer to join through. Empty or absent: this is the first peer of a
    /// new overlay.
    #[arg(long, value_name = "IP:PORT", default_value = "")]
    pub bootstrap: MaybeAddr,

    /// Overlay name (DHT-PeerID overlay=).
    #[arg(long, value_name = "NAME", default_value = "chat")]
    pub overlay: String,

    /// Stabilisation interval (STAB-1), milliseconds.
    #[arg(long, value_name = "N", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub stabilize_ms: u64,

    /// Fix-fingers interval (STAB-3), milliseconds.
    #[arg(long, value_name = "N", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub fix_fingers_ms: u64,

    /// Keep-alive interval towards every neighbour (NAT-5), milliseconds.
    #[arg(long, value_name = "N", default_value_t = 25_000, value_parser = clap::value_parser!(u64).range(2..))]
    pub keepalive_ms: u64,

    /// Transaction timer T1 (TXN-1), milliseconds. Timer F is 64*T1.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub t1_ms: u64,

    /// Expires of the REGISTERs this node sends, and the default lifetime
    /// of a binding registered without one, seconds.
    #[arg(long, value_name = "N", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub expires_s: u32,

    /// Lifetime of this node's DHT-PeerID and of the links it reports,
    /// seconds.
    #[arg(long, value_name = "N", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_expires_s: u32,

    /// Replica count R (REPL-1).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub replicas: u32,

    /// Successor-list length (STAB-4).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub successors: u64,

    /// Working directory for this node (created when missing). The
    /// reference node keeps its state in memory and writes nothing there.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The public address the node is reachable at behind a NAT; its
    /// Peer-ID and Peer URI use it (NAT-3). Empty: the bound address.
    #[arg(long, value_name = "IP:PORT", default_value = "")]
    pub advertise: MaybeAddr,

    /// Break one requirement on purpose (repeatable); see below.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(Fault::NAMES))]
    pub fault: Vec<String>,

    /// Run N nodes in this process, on consecutive addresses from
    /// --listen's IP (127.0.0.1, 127.0.0.2, ...). The first uses
    /// --bootstrap; the others join through --bootstrap, or through the
    /// first node when it is empty.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub count: u32,

    /// Largest message accepted, bytes (WIRE-8: larger ones get 513 on
    /// TCP and are dropped on UDP).
    #[arg(long, value_name = "BYTES", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(8192..=65_507))]
    pub max_message: u64,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More logging (-v debug: every message; -vv trace). RUST_LOG, when
    /// set, takes precedence.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An address, or nothing for the empty string (IUT.md passes `""` for
/// the first peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeAddr(pub Option<SocketAddr>);

impl FromStr for MaybeAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<MaybeAddr, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(MaybeAddr(None));
        }
        s.parse()
            .map(|a| MaybeAddr(Some(a)))
            .map_err(|_| format!("{s:?} is not an IP:PORT address"))
    }
}

/// One node to start.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub listen: SocketAddr,
    /// `None`: the first peer; `Some(None)`: join through the first node
    /// of this process once it is bound.
    pub bootstrap: Bootstrap,
    pub advertise: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    None,
    Addr(SocketAddr),
    FirstNode,
}

/// What to run, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub nodes: Vec<NodePlan>,
    /// The settings shared by every node (its `local`, `bootstrap`,
    /// `advertise` and `seed` are filled in per node).
    pub config: Config,
    pub data_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub verbose: u8,
}

impl Args {
    pub fn plan(self) -> Result<Plan, String> {
        if self.overlay.is_empty()
            || self
                .overlay
                .bytes()
                .any(|b| !b.is_ascii_graphic() || b == b';')
        {
            return Err(format!("--overlay {:?} is not a token", self.overlay));
        }
        if self.count > 1 && self.advertise.0.is_some() {
            return Err("--advertise names one address; it cannot be used with --count > 1".into());
        }
        let faults: FaultSet = self
            .fault
            .iter()
            .map(|f| f.parse::<Fault>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .collect();
        let mut config = Config::new(self.listen);
        config.overlay = self.overlay;
        config.stabilize = Duration::from_millis(self.stabilize_ms);
        config.fix_fingers = Duration::from_millis(self.fix_fingers_ms);
        config.keepalive = Duration::from_millis(self.keepalive_ms);
        config.t1 = Duration::from_millis(self.t1_ms);
        config.expires = self.expires_s;
        config.peer_expires = self.peer_expires_s;
        config.replicas = self.replicas;
        config.successors = self.successors as usize;
        config.max_message = self.max_message as usize;
        config.faults = faults;
        let mut nodes = Vec::with_capacity(self.count as usize);
        for i in 0..self.count {
            let ip = nth_ip(self.listen.ip(), i)
                .ok_or("--count runs past the end of the address space")?;
            let bootstrap = match (self.bootstrap.0, i) {
                (Some(b), _) => Bootstrap::Addr(b),
                (None, 0) => Bootstrap::None,
                (None, _) => Bootstrap::FirstNode,
            };
            nodes.push(NodePlan {
                listen: SocketAddr::new(ip, self.listen.port()),
                bootstrap,
                advertise: self.advertise.0,
            });
        }
        Ok(Plan {
            nodes,
            config,
            data_dir: self.data_dir,
            log_format: self.log_format,
            verbose: self.verbose,
        })
    }
}

/// `ip` + `n`, as a number.
fn nth_ip(ip: IpAddr, n: u32) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a).checked_add(n).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(u128::from(n))
            .map(|x| IpAddr::V6(x.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut all = vec!["p2psip-node"];
        all.extend_from_slice(args);
        Args::try_parse_from(all).map_err(|e| e.to_string())?.plan()
    }

    #[test]
    fn help_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn iut_template_flags() {
        let p = plan(&[
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            "",
            "--overlay",
            "o1",
            "--stabilize-ms",
            "1000",
            "--fix-fingers-ms",
            "1000",
            "--keepalive-ms",
            "1000",
            "--t1-ms",
            "100",
            "--expires-s",
            "30",
            "--replicas",
            "2",
            "--successors",
            "4",
            "--data-dir",
            "/tmp/x",
            "--advertise",
            "127.0.0.1:5060",
        ])
        .unwrap();
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.nodes[0].bootstrap, Bootstrap::None);
        assert_eq!(p.config.t1, Duration::from_millis(100));
        assert_eq!(p.config.overlay, "o1");
        assert_eq!(
            p.nodes[0].advertise,
            Some("127.0.0.1:5060".parse().unwrap())
        );
    }

    #[test]
    fn defaults_are_profile_12() {
        let p = plan(&["--listen", "127.0.0.1:5060"]).unwrap();
        assert_eq!(p.config, {
            let mut c = Config::new("127.0.0.1:5060".parse().unwrap());
            c.max_message = 8192;
            c
        });
    }

    #[test]
    fn count_spreads_over_addresses() {
        let p = plan(&["--listen", "127.0.0.254:0", "--count", "3"]).unwrap();
        let ips: Vec<String> = p.nodes.iter().map(|n| n.listen.ip().to_string()).collect();
        assert_eq!(ips, ["127.0.0.254", "127.0.0.255", "127.0.1.0"]);
        assert_eq!(p.nodes[1].bootstrap, Bootstrap::FirstNode);
    }

    #[test]
    fn unknown_fault_lists_the_valid_ones() {
        let e = plan(&["--listen", "127.0.0.1:0", "--fault", "bogus"]).unwrap_err();
        assert!(
            e.contains("replica-successor") && e.contains("query-mutates"),
            "{e}"
        );
        let p = plan(&[
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "no-leave",
            "--fault",
            "upper-hex",
        ])
        .unwrap();
        assert!(p.config.faults.has(Fault::NoLeave) && p.config.faults.has(Fault::UpperHex));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(plan(&["--listen", "nowhere"]).is_err());
        assert!(plan(&["--listen", "127.0.0.1:0", "--max-message", "100"]).is_err());
        assert!(plan(&["--listen", "127.0.0.1:0", "--bootstrap", "x:y"]).is_err());
        assert!(
            plan(&[
                "--listen",
                "127.0.0.1:0",
                "--count",
                "2",
                "--advertise",
                "1.2.3.4:5"
            ])
            .is_err()
        );
    }
}
