//! `p2psip stub-peer` (hidden): a minimal, scriptable SIP endpoint that
//! stands in for an implementation in the harness's own tests: a well
//! behaved one (answers OPTIONS and node queries as a lone peer), or a
//! bad one (goes silent, exits, answers garbage, ignores SIGTERM, leaves
//! a child process behind). Not a P2P-SIP peer: it never joins anything.

use std::net::{SocketAddr, UdpSocket};

use p2psip_wire::build::{self, Identity};
use p2psip_wire::{Class, Method, ParseOptions, Peer, parse, print};

use crate::cli::Outcome;
use crate::puppet::{View, answer_query};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Then {
    /// Keep answering.
    Answer,
    /// Stop answering (a hung implementation).
    Silent,
    /// Exit with `--exit-code` (a crash).
    Exit,
    /// Answer with bytes that are not SIP.
    Garbage,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub listen: SocketAddr,
    /// Requests answered normally before `--then` applies.
    #[arg(long, default_value_t = u64::MAX)]
    pub answer: u64,
    #[arg(long, value_enum, default_value_t = Then::Answer)]
    pub then: Then,
    #[arg(long, default_value_t = 3)]
    pub exit_code: u8,
    /// Ignore SIGTERM (only SIGKILL stops it).
    #[arg(long)]
    pub ignore_sigterm: bool,
    /// Start a `sleep` child in the same process group.
    #[arg(long)]
    pub spawn_sleeper: bool,
    /// Accepted and ignored, so templates written for nodes work.
    #[arg(long, num_args = 1, allow_hyphen_values = true)]
    pub ignored: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.ignore_sigterm {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe in.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::SigHandler::SigIgn,
            )?;
        }
    }
    let _sleeper = if args.spawn_sleeper {
        let c = std::process::Command::new("sleep").arg("1000").spawn()?;
        println!("sleeper {}", c.id());
        Some(c)
    } else {
        None
    };
    let sock = UdpSocket::bind(args.listen)?;
    let me = Peer::at(sock.local_addr()?);
    let identity = Identity::new(me, "chat").with_expires(30);
    println!("ready {} {}", me.addr, me.id);
    let mut buf = vec![0u8; 65_536];
    let mut count: u64 = 0;
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        let Ok(p) = parse(&buf[..n], ParseOptions::lenient()) else {
            continue;
        };
        let m = p.message;
        if !m.is_request() || m.method() == Some(&Method::Ack) {
            continue;
        }
        count += 1;
        let mode = if count > args.answer {
            args.then
        } else {
            Then::Answer
        };
        match mode {
            Then::Silent => continue,
            Then::Exit => {
                eprintln!(
                    "stub: exiting with {} after {} requests",
                    args.exit_code,
                    count - 1
                );
                std::process::exit(i32::from(args.exit_code));
            }
            Then::Garbage => {
                sock.send_to(b"\x00\xff\xfe garbage, not SIP \x01\x02\r\n", from)?;
                continue;
            }
            Then::Answer => {}
        }
        let tag = format!("stub-{count}");
        let (code, contact) = match (m.method(), Class::of_request(&m)) {
            (Some(Method::Register), Class::Query) => {
                match m.to().and_then(|t| t.addr.uri.peer_id()) {
                    Some(key) => answer_query(&me, &View::default(), &key),
                    None => (400, None),
                }
            }
            _ => (200, None),
        };
        let mut r = build::response(&m, code, build::reason_phrase(code), from, &tag);
        if let Some(c) = contact {
            r.push_contact(build::peer_uri(&c), None);
        }
        r.make_p2p(&identity);
        sock.send_to(&print(&r), from)?;
    }
}
