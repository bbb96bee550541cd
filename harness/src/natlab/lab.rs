/*!
One case's NAT: the relay, who is behind it, every outside party's front,
and what the names of the case mean on each side of it.

The address model is the relay's (`nat/README.md`): the NAT is the whole
"internet" of the case. Every outside party (reference nodes, outside
IUT instances, puppets) is registered with the relay and known to
everyone, inside and outside, only by its front: a relay socket on a
fresh address whose Peer-ID and Peer URI it advertises (`{advertise}`
for instances, the puppet's identity for puppets). A party behind the NAT
keeps its own socket and is known outside by its public mapping, which
exists once it has sent something and may differ per destination.

So a name means different addresses to different parties
([`NatLab::seen_by`]): to anyone, an outside party is its front; to an
outside party, an inside one is its mapping towards that party's front;
to another inside party (hairpinning), its public endpoint.

The harness's own probes (readiness, liveness, node queries of the
`nat.*` checks) do not cross the NAT: the observer talks to every
instance at its real address, like a management network. By QUERY-1 and
ID-7 nothing is learned from them; they are not "traffic the relay
carried", and nothing NATed ever gets the observer's address to contact.
*/

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use p2psip_nat::{
    Decision, Direction, DropReason, NatConfig, PacketLogEntry, PacketTap, Rebound, Relay,
    RelayConfig, RelayDrop, RelayHandle,
};
use p2psip_reports::LogBlock;
use p2psip_wire::{Id, Peer};

use super::model::NatDef;
use super::selfcheck::{self, Verdict};
use crate::engine::ctx::{Node, Stop};
use crate::evidence::{Dir, Recorder};
use crate::iut::Params;
use crate::puppet::Puppet;

/// Which side of the NAT a party is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Inside,
    /// Known to everyone by this relay front.
    Outside {
        front: SocketAddr,
    },
}

/// A party of the case as the NAT sees it.
#[derive(Clone)]
pub struct Party {
    pub name: String,
    /// Its own socket.
    pub real: SocketAddr,
    pub side: Side,
    pub puppet: Option<Arc<Puppet>>,
}

/// A scripted rebinding (`nat-rebind`).
#[derive(Debug, Clone)]
pub struct Rebind {
    pub at: Instant,
    pub node: String,
    /// The node's public endpoint before and after (the one it used last).
    pub old: SocketAddr,
    pub new: SocketAddr,
    pub all: Vec<Rebound>,
}

#[derive(Default)]
struct State {
    rebinds: Vec<Rebind>,
    adopted: HashMap<String, SocketAddr>,
}

/// The NAT of one case attempt.
pub struct NatLab {
    pub def: NatDef,
    pub config: NatConfig,
    relay: RelayHandle,
    parties: Vec<Party>,
    /// About when the relay started: its log times count from here.
    t0: Instant,
    /// The C-NAT0 verdict's text.
    pub self_check: String,
    state: Mutex<State>,
}

fn drop_text(d: &RelayDrop) -> String {
    match d {
        RelayDrop::Nat(DropReason::NoMapping) => "no mapping on that port".into(),
        RelayDrop::Nat(DropReason::Filtered) => "filtered (the mapping never sent there)".into(),
        RelayDrop::Nat(DropReason::Expired) => "the mapping expired".into(),
        RelayDrop::Nat(DropReason::HairpinDisabled) => "hairpinning is off".into(),
        RelayDrop::Nat(DropReason::PortsExhausted) => "no public port left".into(),
        RelayDrop::UnknownSource => "unknown sender".into(),
        RelayDrop::NoSocket => "relay closing".into(),
        RelayDrop::SendFailed(why) => format!("send failed: {why}"),
    }
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Outbound => "outbound",
        Direction::Inbound => "inbound",
        Direction::Hairpin => "hairpin",
        Direction::OutsideToOutside => "outside-to-outside",
        Direction::Unknown => "unknown",
    }
}

/// One relay log entry as a line of text.
pub fn entry_text(e: &PacketLogEntry) -> String {
    let what = match &e.decision {
        Decision::Forwarded { from, to } => format!("forwarded as {from} -> {to}"),
        Decision::Dropped(d) => format!("dropped: {}", drop_text(d)),
    };
    format!(
        "{} {} -> {} ({} bytes): {what}",
        direction_text(e.direction),
        e.src,
        e.dst,
        e.len
    )
}

/// Records both legs of every relayed packet in the case evidence, each
/// in the ladder and the pcap alike: the packet as the relay received it
/// (with the NAT's decision in the ladder) and, when forwarded, as it sent
/// it on. A forwarded leg whose other end is a puppet is left out: the
/// puppet records that datagram itself, and the relay's other leg shows
/// the NAT's decision. A dropped packet from a puppet is recorded, so the
/// drop is visible (the pcap then holds it as both sockets saw it).
fn tap(
    rec: Arc<Recorder>,
    inside: HashMap<SocketAddr, String>,
    puppets: HashSet<SocketAddr>,
) -> PacketTap {
    PacketTap::new(move |e, bytes| {
        let note = match &e.decision {
            Decision::Forwarded { from, to } => {
                format!(
                    "[nat {}: sent on as {from} -> {to}]",
                    direction_text(e.direction)
                )
            }
            Decision::Dropped(d) => format!(
                "[nat {}: dropped, {}]",
                direction_text(e.direction),
                drop_text(d)
            ),
        };
        let forwarded = matches!(e.decision, Decision::Forwarded { .. });
        if !(forwarded && puppets.contains(&e.src)) {
            rec.relayed(Dir::Received, e.src, e.dst, bytes, &note, true);
        }
        if let Decision::Forwarded { from, to } = e.decision {
            if matches!(e.direction, Direction::Outbound | Direction::Hairpin)
                && rec.label_of(from).is_none()
                && let Some(n) = inside.get(&e.src)
            {
                rec.label(from, format!("{n} (public)"));
            }
            if !puppets.contains(&to) {
                rec.relayed(Dir::Sent, from, to, bytes, "[relayed by the NAT]", true);
            }
        }
    })
}

impl NatLab {
    /// Sets up the NAT of a case: C-NAT0 for its configuration (a
    /// misclassification voids the case: [`Stop::Skip`]), the relay, the
    /// fronts of every outside party, and the puppets' advertised
    /// addresses. Nothing is started yet.
    pub async fn start(
        def: &NatDef,
        params: &Params,
        nodes: &[Node],
        puppets: &[(String, Arc<Puppet>)],
        rec: &Arc<Recorder>,
        seed: u64,
    ) -> Result<Arc<NatLab>, Stop> {
        let config = def.config(params, crate::net::next_loopback(), seed);
        let (verdict, cached) = selfcheck::verify(&config).await;
        let self_check = match verdict {
            Verdict::Confirmed(t) => t,
            Verdict::Void(t) => {
                rec.note(t.clone());
                return Err(Stop::Skip(format!(
                    "void, not failed: the NAT emulator is not what the case needs ({t})"
                )));
            }
            Verdict::Broken(t) => return Err(Stop::Error(t)),
        };
        rec.note(format!(
            "{self_check}{}",
            if cached {
                " [verified earlier in this run]"
            } else {
                ""
            }
        ));
        let inside_names = def.inside();
        let mut parties: Vec<Party> = Vec::new();
        for n in nodes {
            parties.push(Party {
                name: n.name.clone(),
                real: n.addr(),
                side: Side::Inside,
                puppet: None,
            });
        }
        for (name, p) in puppets {
            parties.push(Party {
                name: name.clone(),
                real: p.socket_addr(),
                side: Side::Inside,
                puppet: Some(p.clone()),
            });
        }
        let inside: HashMap<SocketAddr, String> = parties
            .iter()
            .filter(|p| inside_names.contains(&p.name))
            .map(|p| (p.real, p.name.clone()))
            .collect();
        let puppet_socks: HashSet<SocketAddr> = parties
            .iter()
            .filter(|p| p.puppet.is_some())
            .map(|p| p.real)
            .collect();
        // The relay needs one internal host to start; a case with nobody
        // inside gets an address nothing is bound to.
        let primary = parties
            .iter()
            .find(|p| inside_names.contains(&p.name))
            .map(|p| p.real)
            .unwrap_or_else(|| SocketAddr::new(crate::net::next_loopback().into(), 9));
        let relay_config = RelayConfig {
            front_ips: (0..parties.len().max(1))
                .map(|_| crate::net::next_loopback())
                .collect(),
            tap: Some(tap(rec.clone(), inside.clone(), puppet_socks)),
            ..RelayConfig::new(config.clone())
        };
        let t0 = Instant::now();
        let relay = Relay::start(relay_config, primary)
            .map_err(|e| Stop::Error(format!("starting the NAT relay: {e}")))?;
        for p in parties.iter_mut() {
            if inside_names.contains(&p.name) {
                relay
                    .add_internal(p.real)
                    .map_err(|e| Stop::Error(format!("{} behind the NAT: {e}", p.name)))?;
                continue;
            }
            let front = relay
                .add_outside_node(p.real)
                .map_err(|e| Stop::Error(format!("a relay front for {}: {e}", p.name)))?;
            p.side = Side::Outside { front };
            rec.label(front, format!("{} (front)", p.name));
            if let Some(pup) = &p.puppet {
                pup.advertise(front);
            }
        }
        let describe = |outside: bool| -> Vec<String> {
            parties
                .iter()
                .filter(|p| matches!(p.side, Side::Outside { .. }) == outside)
                .map(|p| match p.side {
                    Side::Inside => format!("{} at {}", p.name, p.real),
                    Side::Outside { front } => format!("{} at {} (front {front})", p.name, p.real),
                })
                .collect()
        };
        rec.note(format!(
            "NAT {} (userspace relay), mapping timeout {} ms, public IP {}; inside: {}; outside: {}",
            selfcheck::describe(&config),
            config.mapping_timeout.as_millis(),
            config.public_ip,
            describe(false).join(", "),
            describe(true).join(", ")
        ));
        Ok(Arc::new(NatLab {
            def: def.clone(),
            config,
            relay,
            parties,
            t0,
            self_check,
            state: Mutex::new(State::default()),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn party(&self, name: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.name == name)
    }

    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    pub fn is_inside(&self, name: &str) -> bool {
        self.party(name).is_some_and(|p| p.side == Side::Inside)
    }

    pub fn front_of(&self, name: &str) -> Option<SocketAddr> {
        match self.party(name)?.side {
            Side::Outside { front } => Some(front),
            Side::Inside => None,
        }
    }

    /// `{advertise}` of an instance: its front when it is outside.
    pub fn advertise_of(&self, name: &str) -> Option<SocketAddr> {
        self.front_of(name)
    }

    pub fn public_ip(&self) -> IpAddr {
        self.config.public_ip
    }

    /// The public endpoint an inside party used last.
    pub fn public_of(&self, name: &str) -> Option<SocketAddr> {
        let p = self.party(name)?;
        if p.side != Side::Inside {
            return None;
        }
        self.relay.public_endpoint_of(p.real)
    }

    /// The public endpoint inside party `name` uses towards `dst`.
    pub fn public_towards(&self, name: &str, dst: SocketAddr) -> Option<SocketAddr> {
        let p = self.party(name)?;
        self.relay.public_endpoint_towards(p.real, dst)
    }

    fn no_mapping(name: &str) -> String {
        format!(
            "{name} is behind the NAT and has no public mapping yet (it has sent nothing through the NAT), so nobody outside can know its address"
        )
    }

    /// What everyone outside calls `name`: the front of an outside party,
    /// the public endpoint of an inside one (for an inside puppet, the
    /// address it adopted). `None` when the name is no party of the NAT.
    pub fn identity(&self, name: &str) -> Option<Result<Peer, String>> {
        let p = self.party(name)?;
        Some(match p.side {
            Side::Outside { front } => Ok(Peer::at(front)),
            Side::Inside => match self.lock().adopted.get(name) {
                Some(a) => Ok(Peer::at(*a)),
                None => self
                    .relay
                    .public_endpoint_of(p.real)
                    .map(Peer::at)
                    .ok_or_else(|| Self::no_mapping(name)),
            },
        })
    }

    /// What `viewer` calls `name`, i.e. where its packets to `name` must
    /// go and where `name`'s packets come from for it. `None`: no NAT
    /// view (the name or the viewer is no party, or they are the same).
    pub fn seen_by(&self, viewer: &str, name: &str) -> Option<Result<Peer, String>> {
        let target = self.party(name)?;
        let Some(v) = self.party(viewer) else {
            return self.identity(name);
        };
        if v.name == target.name {
            return None;
        }
        Some(match (v.side, target.side) {
            (_, Side::Outside { front }) => Ok(Peer::at(front)),
            (Side::Outside { front: vf }, Side::Inside) => self
                .relay
                .public_endpoint_towards(target.real, vf)
                .or_else(|| self.relay.public_endpoint_of(target.real))
                .map(Peer::at)
                .ok_or_else(|| Self::no_mapping(name)),
            // Another host behind the same NAT: its public endpoint
            // (hairpinning).
            (Side::Inside, Side::Inside) => self
                .relay
                .public_endpoint_of(target.real)
                .map(Peer::at)
                .ok_or_else(|| Self::no_mapping(name)),
        })
    }

    /// The source address `receiver` sees `sender`'s packets come from.
    pub fn observed_source(&self, sender: &str, receiver: &str) -> Option<SocketAddr> {
        let s = self.party(sender)?;
        let r = self.party(receiver)?;
        match (s.side, r.side) {
            (Side::Outside { front }, _) => Some(front),
            (Side::Inside, Side::Outside { front }) => {
                self.relay.public_endpoint_towards(s.real, front)
            }
            (Side::Inside, Side::Inside) => {
                let target = self.relay.public_endpoint_of(r.real)?;
                self.relay.public_endpoint_towards(s.real, target)
            }
        }
    }

    /// The party an address belongs to: its socket, its front, a public
    /// endpoint it has now or had before a rebinding.
    pub fn name_of_addr(&self, addr: SocketAddr) -> Option<String> {
        for p in &self.parties {
            if p.real == addr || p.side == (Side::Outside { front: addr }) {
                return Some(p.name.clone());
            }
        }
        if let Some(name) = self.behind_mapping(|public| public == addr) {
            return name;
        }
        let st = self.lock();
        st.rebinds
            .iter()
            .find(|r| r.old == addr || r.all.iter().any(|b| b.old == addr))
            .map(|r| format!("{} (before the rebinding)", r.node))
    }

    /// For the first NAT mapping whose public address satisfies `hit`:
    /// the name of the party behind it (`Some(None)` when no party is).
    fn behind_mapping(&self, hit: impl Fn(SocketAddr) -> bool) -> Option<Option<String>> {
        let m = self.relay.mappings().into_iter().find(|m| hit(m.public))?;
        Some(
            self.parties
                .iter()
                .find(|p| p.real == m.internal)
                .map(|p| p.name.clone()),
        )
    }

    pub fn name_of_id(&self, id: &Id) -> Option<String> {
        for p in &self.parties {
            if Peer::at(p.real).id == *id {
                return Some(match p.side {
                    Side::Inside => format!("{} (private address)", p.name),
                    Side::Outside { .. } => format!("{} (own address, not its front)", p.name),
                });
            }
            if let Side::Outside { front } = p.side
                && Peer::at(front).id == *id
            {
                return Some(p.name.clone());
            }
        }
        if let Some(name) = self.behind_mapping(|public| Peer::at(public).id == *id) {
            return name;
        }
        let st = self.lock();
        st.rebinds
            .iter()
            .find(|r| Peer::at(r.old).id == *id)
            .map(|r| format!("{} (old ID, before the rebinding)", r.node))
    }

    /// The relay's packet log so far, each entry with its time.
    pub fn log(&self) -> Vec<(Instant, PacketLogEntry)> {
        self.relay
            .packet_log()
            .into_iter()
            .map(|e| (self.t0 + e.at, e))
            .collect()
    }

    pub fn mapping_timeout(&self) -> Duration {
        self.config.mapping_timeout
    }

    pub fn rebinds(&self) -> Vec<Rebind> {
        self.lock().rebinds.clone()
    }

    /// `nat-rebind`.
    pub fn rebind(&self, node: &str) -> Result<Rebind, Stop> {
        let p = self
            .party(node)
            .filter(|p| p.side == Side::Inside)
            .ok_or_else(|| Stop::Error(format!("{node} is not behind the NAT")))?;
        let old = self.relay.public_endpoint_of(p.real).ok_or_else(|| {
            Stop::Error(format!(
                "nat-rebind: {node} has no mapping to rebind (it sent nothing through the NAT, or its mappings expired)"
            ))
        })?;
        let all = self
            .relay
            .rebind_host(p.real)
            .map_err(|e| Stop::Error(format!("nat-rebind: {e}")))?;
        let new = all
            .iter()
            .find(|b| b.old == old)
            .map(|b| b.new)
            .ok_or_else(|| Stop::Error(format!("nat-rebind: no new port for {old}")))?;
        let r = Rebind {
            at: Instant::now(),
            node: node.to_string(),
            old,
            new,
            all,
        };
        self.lock().rebinds.push(r.clone());
        Ok(r)
    }

    /// `nat-adopt`: the inside puppet advertises its mapping towards `towards`.
    pub fn adopt(&self, puppet: &str, towards: &str) -> Result<SocketAddr, Stop> {
        let p = self
            .party(puppet)
            .filter(|p| p.side == Side::Inside)
            .ok_or_else(|| Stop::Error(format!("{puppet} is not behind the NAT")))?;
        let pup = p
            .puppet
            .clone()
            .ok_or_else(|| Stop::Error(format!("{puppet} is not a puppet")))?;
        let front = self
            .front_of(towards)
            .ok_or_else(|| Stop::Error(format!("{towards} is not outside the NAT")))?;
        let public = self
            .relay
            .public_endpoint_towards(p.real, front)
            .ok_or_else(|| {
                Stop::Error(format!(
                    "nat-adopt: {puppet} has no mapping towards {towards} (send there first)"
                ))
            })?;
        pup.advertise(public);
        self.lock().adopted.insert(puppet.to_string(), public);
        Ok(public)
    }

    /// The evidence block: configuration, C-NAT0, parties, mappings,
    /// rebindings and the relay's whole packet log with its decisions.
    pub fn log_block(&self, rec: &Recorder) -> LogBlock {
        const MAX: usize = 5_000;
        let mut lines = vec![
            format!(
                "NAT {}, mapping timeout {} ms (refreshed by outbound packets only), public IP {}",
                selfcheck::describe(&self.config),
                self.config.mapping_timeout.as_millis(),
                self.config.public_ip
            ),
            self.self_check.clone(),
        ];
        for p in &self.parties {
            lines.push(match p.side {
                Side::Inside => format!("inside: {} at {}", p.name, p.real),
                Side::Outside { front } => {
                    format!("outside: {} at {}, front {front}", p.name, p.real)
                }
            });
        }
        for m in self.relay.mappings() {
            lines.push(format!(
                "mapping at the end: {} -> {} ({:?}), sent to {} destination(s)",
                m.internal,
                m.public,
                m.scope,
                m.destinations.len()
            ));
        }
        for r in self.rebinds() {
            lines.push(format!(
                "{:9.1} ms rebinding of {}: {} -> {}",
                rec.ms(r.at),
                r.node,
                r.old,
                r.new
            ));
        }
        let log = self.log();
        let skipped = log.len().saturating_sub(MAX);
        for (at, e) in log.iter().skip(skipped) {
            lines.push(format!("{:9.1} ms {}", rec.ms(*at), entry_text(e)));
        }
        if skipped > 0 || self.relay.log_overflow() > 0 {
            lines.push(format!(
                "({} earlier entries not shown)",
                skipped as u64 + self.relay.log_overflow()
            ));
        }
        LogBlock {
            instance: "nat".into(),
            lines,
        }
    }
}
