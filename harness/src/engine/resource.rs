/*!
Resources of a case (PROFILE §8): resource URIs named by `aor` steps
(chosen so that their copies land on the nodes a case wants), the
registrations `register` steps make through a node, and what the replica
checks need later (C-R1..C-R5): the Contacts, the lifetime, and when it
was granted.

A `register` step goes through the node's adapter role when it has one
(the reference node does; an IUT when its file lists the `adapter`
feature): a puppet acting as user agent sends a plain SIP REGISTER
(RES-4). An IUT without it is driven through its file's
`register_command` (`crate::iut::register`); with neither, the case is
skipped with the reason.
*/

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2psip_wire::build;
use p2psip_wire::resource::{replica_id, resource_id};
use p2psip_wire::{ContactAddr, Header, Id, Method, NameAddr, Ring, Transport, Uri, parse_uri};

use super::ctx::{Ctx, Finding, Role, StepResult, Stop};
use super::model::{AorStep, RegisterStep};
use crate::iut::{Feature, Launch, RegisterError};
use crate::puppet::{Matcher, Received};

/// A resource of the case and the registration made for it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The resource URI (the AOR), e.g. `sip:alice-3@example.com`.
    pub aor: String,
    /// The Contact URIs registered last, as printed.
    pub contacts: Vec<String>,
    /// The lifetime granted (seconds); 0 after a removal.
    pub expires: u32,
    /// When the registration was made (the answer arrived, the command
    /// ended, or the puppet sent it).
    pub at: Option<Instant>,
}

impl Resource {
    pub fn uri(&self) -> Uri<'static> {
        // Checked when the resource was named.
        parse_uri(&self.aor)
            .map(|u| u.into_owned())
            .unwrap_or_else(|_| build::addr_uri(SocketAddr::from(([0, 0, 0, 0], 0))))
    }

    /// The Resource-ID of copy `copy` (0 = primary, ID-4; n = replica n,
    /// ID-5).
    pub fn key(&self, copy: u32) -> Id {
        copy_key(&self.uri(), copy)
    }

    /// Seconds of lifetime left now, when a registration was made.
    pub fn remaining(&self, now: Instant) -> Option<f64> {
        let at = self.at?;
        Some(f64::from(self.expires) - now.saturating_duration_since(at).as_secs_f64())
    }
}

/// The Resource-ID of copy `copy` of `uri`.
pub fn copy_key(uri: &Uri<'_>, copy: u32) -> Id {
    if copy == 0 {
        resource_id(uri)
    } else {
        replica_id(uri, copy)
    }
}

/// The copy a `held_by` key names: `primary` is 0, `replicaN` is N.
pub fn copy_of(key: &str) -> Option<u32> {
    if key == "primary" {
        return Some(0);
    }
    key.strip_prefix("replica")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 1)
}

/// The resource `name` refers to: one an `aor` step named, else `name`
/// itself as a URI (`sip:...`), else `sip:NAME@example.com`. A name used
/// for the first time is remembered.
pub fn resource(cx: &mut Ctx, name: &str) -> Result<Resource, Stop> {
    if let Some(r) = cx.resources.get(name) {
        return Ok(r.clone());
    }
    let aor = if name.contains(':') {
        name.to_string()
    } else {
        format!("sip:{name}@example.com")
    };
    if parse_uri(&aor).is_err() {
        return Err(Stop::Error(format!("{aor:?} is not a resource URI")));
    }
    let r = Resource {
        aor,
        contacts: Vec::new(),
        expires: 0,
        at: None,
    };
    cx.resources.insert(name.to_string(), r.clone());
    Ok(r)
}

/// Records a registration (or removal, `expires` 0) of `name` made now.
pub fn record(cx: &mut Ctx, name: &str, contacts: Vec<String>, expires: u32) {
    if let Some(r) = cx.resources.get_mut(name) {
        r.contacts = if expires == 0 { Vec::new() } else { contacts };
        r.expires = expires;
        r.at = Some(Instant::now());
    }
}

/// The Contact URI a step names: a URI as written (`sip:`/`sips:`), or
/// a party's `sip:ua@ip:port`; `None` gives `default`'s.
pub fn contact_uri(cx: &Ctx, spec: Option<&str>, default: SocketAddr) -> Result<String, Stop> {
    match spec {
        Some(s) if s.starts_with("sip:") || s.starts_with("sips:") => {
            parse_uri(s).map_err(|e| Stop::Error(format!("contact {s:?}: {e}")))?;
            Ok(s.to_string())
        }
        Some(name) => Ok(ua_uri(cx.addr_of(name)?)),
        None => Ok(ua_uri(default)),
    }
}

fn ua_uri(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(_) => format!("sip:ua@{a}"),
        SocketAddr::V6(v) => format!("sip:ua@[{}]:{}", v.ip(), v.port()),
    }
}

/// A Contact for the builders.
pub fn contact_addr(uri: &str) -> Result<ContactAddr<'static>, Stop> {
    let u = parse_uri(uri).map_err(|e| Stop::Error(format!("contact {uri:?}: {e}")))?;
    Ok(ContactAddr {
        addr: NameAddr {
            display: None,
            uri: u.into_owned(),
        },
        expires: None,
        q: None,
        other: "".into(),
    })
}

/// The `aor` step: picks `sip:NAME-N@example.com` with the smallest N
/// whose copies land where `held_by` says.
pub fn aor_step(cx: &mut Ctx, s: &AorStep) -> StepResult {
    let names: Vec<String> = if s.among.is_empty() {
        let mut v: Vec<String> = cx.nodes.iter().map(|n| n.name.clone()).collect();
        v.extend(cx.members.iter().cloned());
        v
    } else {
        s.among.clone()
    };
    let ids = names
        .iter()
        .map(|n| cx.peer_of(n).map(|p| p.id))
        .collect::<Result<Vec<Id>, Stop>>()?;
    let ring = Ring::new(ids);
    let mut wants: Vec<(u32, Id)> = Vec::new();
    for (k, holder) in &s.held_by {
        let copy = copy_of(k).ok_or_else(|| Stop::Error(format!("held_by key {k:?}")))?;
        if copy > cx.params.replicas {
            return Err(Stop::Error(format!(
                "held_by {k}: the case has R = {} replicas",
                cx.params.replicas
            )));
        }
        let id = cx.peer_of(holder)?.id;
        if !ring.contains(&id) {
            return Err(Stop::Error(format!(
                "held_by {k} = {holder}, which is not among {names:?}"
            )));
        }
        wants.push((copy, id));
    }
    for n in 0..200_000u32 {
        let aor = format!("sip:{}-{n}@example.com", s.name);
        let uri = parse_uri(&aor).map_err(|e| Stop::Error(format!("{aor:?}: {e}")))?;
        let fits = wants
            .iter()
            .all(|(copy, id)| ring.successor(&copy_key(&uri, *copy)) == Some(*id));
        if fits {
            let keys: Vec<String> = (0..=cx.params.replicas)
                .map(|c| {
                    let k = copy_key(&uri, c);
                    let h = ring
                        .successor(&k)
                        .map(|h| cx.name_of_id(&h))
                        .unwrap_or_default();
                    format!("copy {c} {}… at {h}", &k.to_hex()[..8])
                })
                .collect();
            cx.rec
                .note(format!("resource {} = {aor}: {}", s.name, keys.join(", ")));
            drop(uri); // it borrows `aor`
            cx.resources.insert(
                s.name.clone(),
                Resource {
                    aor,
                    contacts: Vec::new(),
                    expires: 0,
                    at: None,
                },
            );
            return Ok(());
        }
    }
    Err(Stop::Error(format!(
        "no resource URI {}-N@example.com puts its copies where held_by says",
        s.name
    )))
}

/// The `register` step.
pub async fn register_step(cx: &mut Ctx, s: &RegisterStep) -> StepResult {
    let req = s.requirement.clone().unwrap_or_else(|| "RES-4".to_string());
    let (role, target, label, data_dir) = {
        let n = cx
            .node(&s.node)
            .ok_or_else(|| Stop::Error(format!("no node {}", s.node)))?;
        (n.role, n.addr(), n.name.clone(), n.data_dir.clone())
    };
    let res = resource(cx, &s.aor)?;
    let expires = s.expires.unwrap_or(cx.params.expires_s);
    let ua = match &s.ua {
        Some(p) => cx.puppet(p)?,
        None => cx.observer.clone(),
    };
    let contact = contact_uri(cx, s.contact.as_deref(), ua.addr())?;
    let within = Duration::from_millis(
        s.within_ms
            .unwrap_or(cx.timer_f().as_millis() as u64 + 2000),
    );
    let adapter = role == Role::Reference || cx.env.iut.has_feature(Feature::Adapter);
    if adapter {
        let want = s.status.unwrap_or(200);
        let got = plain_register(cx, &ua, target, &res, &contact, expires, within).await;
        let Some(r) = got else {
            return Err(Stop::Fail(Finding::new(
                req,
                format!(
                    "{label} (adapter role) answers a user agent's REGISTER for {} with {want} within {} ms",
                    res.aor,
                    within.as_millis()
                ),
                "no final response",
            )));
        };
        if r.status() != Some(want) {
            return Err(Stop::Fail(
                Finding::new(
                    req,
                    format!(
                        "{label} (adapter role) answers a user agent's REGISTER for {} with {want}",
                        res.aor
                    ),
                    r.describe(),
                )
                .at(r.at),
            ));
        }
        if want == 200 {
            record(cx, &s.aor, vec![contact], expires);
        }
        cx.rec.note(format!(
            "{} registered through {label}'s adapter role (Expires {expires})",
            res.aor
        ));
        return Ok(());
    }
    if cx.env.iut.register_command.is_none() {
        return Err(Stop::Skip(format!(
            "registers a resource through {label}: the IUT file claims no adapter role (features) and has no register_command"
        )));
    }
    if expires == 0 {
        return Err(Stop::Skip(format!(
            "removes a registration through {label}: that needs the adapter role; register_command only registers"
        )));
    }
    if expires != cx.params.expires_s {
        return Err(Stop::Skip(format!(
            "registers through {label} with Expires {expires}; register_command registers with the IUT's own lifetime ({{expires_s}} = {})",
            cx.params.expires_s
        )));
    }
    let dir = match data_dir {
        Some(d) => d,
        None => std::sync::Arc::new(
            tempfile::tempdir().map_err(|e| Stop::Error(format!("data dir: {e}")))?,
        ),
    };
    let launch = Launch {
        label: label.clone(),
        addr: target,
        bootstrap: None,
        advertise: None,
        params: cx.params.clone(),
        data_dir: Some(dir.clone()),
    };
    let spec = cx.env.iut.clone();
    match crate::iut::register(&spec, &launch, dir.path(), &res.aor, &contact, within).await {
        Ok(()) => {
            record(cx, &s.aor, vec![contact], expires);
            cx.rec.note(format!(
                "{} registered through {label}'s register_command",
                res.aor
            ));
            Ok(())
        }
        Err(RegisterError::Failed { status, output }) => Err(Stop::Fail(Finding::new(
            req,
            format!("{label}'s register_command registers {}", res.aor),
            format!("it failed ({status}): {output}"),
        ))),
        Err(RegisterError::Timeout(t)) => Err(Stop::Fail(Finding::new(
            req,
            format!("{label}'s register_command registers {}", res.aor),
            format!("it did not finish within {t:?}"),
        ))),
        Err(e) => Err(Stop::Error(format!("register_command: {e}"))),
    }
}

/// A plain SIP REGISTER (no `Require: dht`, no DHT-PeerID) from `ua`,
/// retransmitted as a UDP client transaction does (TXN-1) until a final
/// response or `within`. With `contact` `None` it is a fetch (RFC 3261
/// §10.2.3: no Contact, no Expires).
pub async fn plain_register(
    cx: &Ctx,
    ua: &crate::puppet::Puppet,
    target: SocketAddr,
    res: &Resource,
    contact: &str,
    expires: u32,
    within: Duration,
) -> Option<Received> {
    let mut m = plain_message(ua, target, res);
    if let Ok(c) = contact_addr(contact) {
        m.push_contact(c.addr.uri, None);
    }
    m.push_header(Header::Expires(expires));
    send_until_final(cx, ua, target, &m, within).await
}

/// A plain REGISTER to `target` for `res`, without Contact and Expires.
pub fn plain_message(
    ua: &crate::puppet::Puppet,
    target: SocketAddr,
    res: &Resource,
) -> p2psip_wire::Message<'static> {
    let txn = ua.txn();
    let aor = res.uri();
    build::request(
        Method::Register,
        build::addr_uri(target),
        aor.clone(),
        aor,
        &txn,
    )
}

/// Sends `m` from `ua` and retransmits it (T1 doubling, capped at T2)
/// until a final response to it arrives, or `within`.
pub async fn send_until_final(
    cx: &Ctx,
    ua: &crate::puppet::Puppet,
    target: SocketAddr,
    m: &p2psip_wire::Message<'static>,
    within: Duration,
) -> Option<Received> {
    let branch = m.top_via().and_then(|v| v.branch.as_deref())?.to_string();
    let bytes = p2psip_wire::print(m);
    let deadline = cx.until(within);
    let matcher = Matcher::response_to(&branch, &[]).from(target);
    let mut gap = cx.params.t1().max(Duration::from_millis(10));
    loop {
        let _ = ua
            .send_bytes(target, Transport::Udp, &bytes, &[], Duration::ZERO)
            .await;
        let next = (Instant::now() + gap).min(deadline);
        while let Some(r) = ua.inbox().wait(&matcher, next).await {
            if r.status().is_some_and(|s| s >= 200) {
                return Some(r);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        gap = (gap * 2).min(cx.params.t2());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named() {
        assert_eq!(copy_of("primary"), Some(0));
        assert_eq!(copy_of("replica2"), Some(2));
        assert_eq!(copy_of("replica0"), None);
        assert_eq!(copy_of("other"), None);
    }

    #[test]
    fn keys_follow_id_4_and_id_5() {
        let r = Resource {
            aor: "sip:alice@example.com".into(),
            contacts: Vec::new(),
            expires: 0,
            at: None,
        };
        assert_eq!(r.key(0), Id::hash(b"sip:alice@example.com"));
        assert_eq!(r.key(2), Id::hash(b"sip:alice@example.com;replica=2"));
    }
}
