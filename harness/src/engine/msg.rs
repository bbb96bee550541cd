/*!
What a `send` step puts on the wire: a message built with the wire
builders (with the step's deliberate changes), a raw template, raw hex,
or the previous bytes again.

Raw template placeholders (checked when the suite is loaded):

| placeholder | value |
|---|---|
| `{branch}` `{call_id}` `{tag}` `{cseq}` | a fresh transaction of the sending puppet |
| `{me}` `{me_ip}` `{me_port}` `{me_id}` `{me_uri}` | the sending puppet: `ip:port`, IP, port, Peer-ID, Peer URI |
| `{to}` `{to_ip}` `{to_port}` `{to_id}` `{to_uri}` | the target, likewise |
| `{addr:NAME}` `{id:NAME}` `{uri:NAME}` | any node or puppet (`{uid:NAME}`: its ID in upper-case hex) |
| `{overlay}` `{expires}` `{peer_expires}` | the case's parameters |
| `{identity}` | the sender's whole DHT-PeerID value |
| `{content_length}` | the length of the body (after the first empty line) |
| `{fill}` | `x`s making the whole message `size` bytes |
| `{{` `}}` | literal braces |
*/

use std::net::SocketAddr;

use p2psip_wire::build::{self, Identity, QueryKey};
use p2psip_wire::{
    Header, Host, Id, Message, Peer, Rport, Scheme, Text, Transport, Uri, UriParams, print,
};
use rand::RngCore;

use super::ctx::{Ctx, Stop};
use super::model::{MsgKind, SendStep};
pub use crate::iut::template::Piece;
use crate::iut::template::{BraceError, pieces};
use crate::puppet::Puppet;

/// Placeholders a raw template may use, besides the `addr:`/`id:`/`uri:`
/// forms.
pub const RAW_PLACEHOLDERS: &[&str] = &[
    "branch",
    "call_id",
    "tag",
    "cseq",
    "me",
    "me_ip",
    "me_port",
    "me_id",
    "me_uri",
    "to",
    "to_ip",
    "to_port",
    "to_id",
    "to_uri",
    "overlay",
    "expires",
    "peer_expires",
    "identity",
    "content_length",
    "fill",
];

/// Parses a raw template; errors name the bad placeholder.
pub fn parse_raw(text: &str) -> Result<Vec<Piece>, String> {
    let out = pieces(text).map_err(|e| match e {
        BraceError::Unclosed => "unclosed `{` in raw template (write `{{` for a brace)".to_string(),
        BraceError::Stray => "stray `}` in raw template (write `}}` for a brace)".to_string(),
    })?;
    for p in &out {
        let Piece::Var(name) = p else { continue };
        let ok = RAW_PLACEHOLDERS.contains(&name.as_str())
            || ["addr:", "id:", "uid:", "uri:"]
                .iter()
                .any(|p| name.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !ok {
            return Err(format!(
                "unknown placeholder {{{name}}} in raw template; known: {}, {{addr:NAME}}, {{id:NAME}}, {{uid:NAME}}, {{uri:NAME}}",
                RAW_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    Ok(out)
}

/// The names a raw template refers to with `addr:`/`id:`/`uri:`.
pub fn raw_names(pieces: &[Piece]) -> Vec<String> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Var(v) => v.split_once(':').map(|(_, n)| n.to_string()),
            Piece::Lit(_) => None,
        })
        .collect()
}

/// Parses 40 hex digits, `name`, `name+N`, `name-N` or `random` into a key.
pub fn resolve_key(cx: &mut Ctx, spec: &str) -> Result<Id, Stop> {
    if spec == "random" {
        let mut b = [0u8; 20];
        cx.rng.fill_bytes(&mut b);
        return Ok(Id(b));
    }
    if spec.len() == 40
        && let Ok(id) = Id::from_hex(spec)
    {
        return Ok(id);
    }
    let (name, delta) = match spec.rfind(['+', '-']) {
        Some(i) if i > 0 => {
            let n: u64 = spec[i + 1..]
                .parse()
                .map_err(|_| Stop::Error(format!("bad key offset in {spec:?}")))?;
            (
                &spec[..i],
                if &spec[i..i + 1] == "+" {
                    n as i128
                } else {
                    -(n as i128)
                },
            )
        }
        _ => (spec, 0),
    };
    let base = cx.peer_of(name)?.id;
    let mut d = [0u8; 20];
    d[12..].copy_from_slice(&(delta.unsigned_abs() as u64).to_be_bytes());
    Ok(if delta >= 0 {
        base.wrapping_add(&Id(d))
    } else {
        base.wrapping_sub(&Id(d))
    })
}

fn peer_uri_text(p: &Peer) -> String {
    build::peer_uri(p).to_string()
}

/// The bytes a send step puts on the wire, and where they go.
pub struct Outgoing {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Vec<u8>,
}

/// Builds what `step` sends from `puppet`.
pub fn outgoing(cx: &mut Ctx, step: &SendStep, puppet: &Puppet) -> Result<Outgoing, Stop> {
    let transport = step.transport.wire();
    if step.resend {
        let last = puppet
            .last_sent()
            .ok_or_else(|| Stop::Error(format!("{} has sent nothing to resend", step.from)))?;
        return Ok(Outgoing {
            to: last.to,
            transport: last.transport,
            bytes: last.bytes.to_vec(),
        });
    }
    let to_name = step.to.clone().unwrap_or_else(|| "iut1".to_string());
    let target = cx.peer_seen_by(&step.from, &to_name)?;
    if let Some(hex) = &step.raw_hex {
        let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = hex::decode(&clean).map_err(|e| Stop::Error(format!("raw_hex: {e}")))?;
        return Ok(Outgoing {
            to: target.addr,
            transport,
            bytes,
        });
    }
    if let Some(raw) = &step.raw {
        let bytes = expand_raw(cx, step, puppet, &target, raw)?;
        return Ok(Outgoing {
            to: target.addr,
            transport,
            bytes,
        });
    }
    let kind = step.msg.unwrap_or(MsgKind::Options);
    let mut me = puppet.identity();
    if let Some(o) = &step.overlay {
        me.overlay = o.clone();
    }
    if let Some(d) = &step.dht {
        me.dht = d.clone();
    }
    if let Some(a) = &step.algorithm {
        me.algorithm = a.clone();
    }
    if let Some(other) = &step.as_peer {
        me.peer = cx.peer_of(other)?;
    }
    let mut txn = puppet.txn();
    if transport == Transport::Tcp {
        txn = txn.over(Transport::Tcp);
    }
    let expires = step.expires.unwrap_or(cx.params.expires_s);
    let links = puppet.view().links();
    let mut m: Message<'static> = match kind {
        MsgKind::Options => build::options(Some(&me), target.addr, &txn, build::peer_uri(&me.peer)),
        MsgKind::OptionsPlain => build::options(None, target.addr, &txn, plain_uri(puppet.addr())),
        MsgKind::Query => {
            let key = match &step.key {
                Some(k) => resolve_key(cx, k)?,
                None => target.id,
            };
            let qk = if key == target.id {
                QueryKey::Peer(target)
            } else {
                QueryKey::Key(key)
            };
            build::query(&me, target.addr, &txn, qk)
        }
        MsgKind::Join => build::join(&me, target.addr, &txn, expires),
        MsgKind::Notify => build::notify(&me, target.addr, &txn, expires, &links),
        MsgKind::Leave => build::leave(&me, target.addr, &txn, &links),
        MsgKind::Register | MsgKind::Lookup | MsgKind::Transfer => resource_message(
            cx,
            step,
            kind,
            &me,
            target.addr,
            &txn,
            expires,
            puppet.addr(),
        )?,
    };
    if let Some(v) = &step.via {
        let a = cx.addr_of(v)?;
        if let Some(via) = m.top_via_mut() {
            via.host = Host::from_ip(a.ip());
            via.port = Some(a.port());
        }
    }
    if step.no_rport
        && let Some(via) = m.top_via_mut()
    {
        via.rport = Rport::Absent;
    }
    for name in &step.remove_headers {
        m.headers.retain(|h| !h.name().eq_ignore_ascii_case(name));
    }
    for line in &step.add_headers {
        let (n, v) = line.split_once(':').ok_or_else(|| {
            Stop::Error(format!("add_headers entry {line:?} is not `Name: value`"))
        })?;
        m.push_header(Header::Other {
            name: Text::owned(n.trim()),
            value: Text::owned(v.trim()),
        });
    }
    Ok(Outgoing {
        to: target.addr,
        transport,
        bytes: print(&m),
    })
}

/// A resource registration, lookup or transfer (PROFILE §8, JOIN-9,
/// LEAVE-1); a registration or transfer is remembered for the replica
/// checks.
#[allow(clippy::too_many_arguments)]
fn resource_message(
    cx: &mut Ctx,
    step: &SendStep,
    kind: MsgKind,
    me: &Identity,
    to: SocketAddr,
    txn: &build::Txn,
    expires: u32,
    sender: SocketAddr,
) -> Result<Message<'static>, Stop> {
    use super::resource;
    let name = step
        .aor
        .as_deref()
        .ok_or_else(|| Stop::Error("register/lookup/transfer need aor".into()))?;
    let res = resource::resource(cx, name)?;
    let aor = res.uri();
    let contact = resource::contact_uri(cx, step.contact.as_deref(), sender)?;
    let contacts = if expires == 0 && step.contact.is_none() && !res.contacts.is_empty() {
        res.contacts.clone()
    } else {
        vec![contact]
    };
    let addrs = contacts
        .iter()
        .map(|c| resource::contact_addr(c))
        .collect::<Result<Vec<_>, Stop>>()?;
    let mut m = match kind {
        MsgKind::Register => {
            build::resource_register(me, to, txn, &aor, step.replica, &addrs, expires)
        }
        MsgKind::Transfer => build::transfer(me, to, txn, &aor, step.replica, &addrs, expires),
        _ => build::lookup(me, to, txn, &aor, step.replica),
    };
    if let Some(h) = &step.resource_id {
        let key = resolve_key(cx, h)?;
        if let Some(t) = m.to_mut() {
            t.addr.uri.params.resource_id = Some(key);
        }
    }
    // What a puppet registers at a node is what the replica checks then
    // expect there; what it tells another puppet is not.
    if kind != MsgKind::Lookup && cx.nodes.iter().any(|n| n.addr() == to) {
        resource::record(cx, name, contacts, expires);
    }
    Ok(m)
}

fn plain_uri(addr: SocketAddr) -> Uri<'static> {
    Uri {
        scheme: Scheme::Sip,
        user: Some("puppet".into()),
        password: None,
        host: Host::from_ip(addr.ip()),
        port: Some(addr.port()),
        params: UriParams::default(),
        headers: None,
        opaque: None,
    }
}

fn identity_value(me: &Identity) -> String {
    format!(
        "<{}>;algorithm={};dht={};overlay={};expires={}",
        peer_uri_text(&me.peer),
        me.algorithm,
        me.dht,
        me.overlay,
        me.expires
    )
}

fn expand_raw(
    cx: &mut Ctx,
    step: &SendStep,
    puppet: &Puppet,
    target: &Peer,
    raw: &str,
) -> Result<Vec<u8>, Stop> {
    let pieces = parse_raw(raw).map_err(Stop::Error)?;
    let txn = puppet.txn();
    let me = puppet.identity();
    let lf_only = step.line_ends.as_deref() == Some("lf");
    let mut fixed: Vec<(String, String)> = vec![
        ("branch".into(), txn.branch.clone()),
        ("call_id".into(), txn.call_id.clone()),
        ("tag".into(), txn.from_tag.clone()),
        ("cseq".into(), txn.cseq.to_string()),
        ("me".into(), me.peer.addr.to_string()),
        ("me_ip".into(), me.peer.addr.ip().to_string()),
        ("me_port".into(), me.peer.addr.port().to_string()),
        ("me_id".into(), me.peer.id.to_string()),
        ("me_uri".into(), peer_uri_text(&me.peer)),
        ("to".into(), target.addr.to_string()),
        ("to_ip".into(), target.addr.ip().to_string()),
        ("to_port".into(), target.addr.port().to_string()),
        ("to_id".into(), target.id.to_string()),
        ("to_uri".into(), peer_uri_text(target)),
        ("overlay".into(), cx.params.overlay.clone()),
        ("expires".into(), cx.params.expires_s.to_string()),
        ("peer_expires".into(), cx.params.peer_expires_s.to_string()),
        ("identity".into(), identity_value(&me)),
    ];
    for p in &pieces {
        if let Piece::Var(v) = p
            && let Some((kind, name)) = v.split_once(':')
        {
            let peer = cx.peer_seen_by(&step.from, name)?;
            let val = match kind {
                "addr" => peer.addr.to_string(),
                "id" => peer.id.to_string(),
                "uid" => peer.id.to_string().to_ascii_uppercase(),
                _ => peer_uri_text(&peer),
            };
            fixed.push((v.clone(), val));
        }
    }
    let render = |fill: usize, cl: usize| -> Vec<u8> {
        let mut s = String::new();
        for p in &pieces {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Var(v) if v == "fill" => s.extend(std::iter::repeat_n('x', fill)),
                Piece::Var(v) if v == "content_length" => s.push_str(&cl.to_string()),
                Piece::Var(v) => {
                    if let Some((_, val)) = fixed.iter().find(|(k, _)| k == v) {
                        s.push_str(val);
                    }
                }
            }
        }
        let s = if lf_only { s } else { crlf(&s) };
        s.into_bytes()
    };
    let body_len = |b: &[u8]| -> usize {
        let sep: &[u8] = if lf_only { b"\n\n" } else { b"\r\n\r\n" };
        b.windows(sep.len())
            .position(|w| w == sep)
            .map_or(0, |i| b.len() - i - sep.len())
    };
    let mut fill = 0usize;
    let mut cl = body_len(&render(0, 0));
    let mut out = render(fill, cl);
    for _ in 0..4 {
        cl = body_len(&out);
        if let Some(size) = step.size {
            let cur = render(fill, cl).len();
            if cur != size {
                let delta = size as i64 - cur as i64;
                if fill as i64 + delta < 0 {
                    return Err(Stop::Error(format!(
                        "raw message is {cur} bytes without fill, larger than size {size}"
                    )));
                }
                fill = (fill as i64 + delta) as usize;
            }
        }
        out = render(fill, cl);
        if body_len(&out) == cl && step.size.is_none_or(|s| s == out.len()) {
            break;
        }
    }
    Ok(out)
}

/// Bare LF → CRLF (a CRLF stays as it is).
fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 20);
    let mut prev = '\0';
    for c in s.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_templates_parse_and_refuse_unknown_placeholders() {
        let p = parse_raw("OPTIONS sip:{to} SIP/2.0\n{{x}} {addr:p}").unwrap();
        assert!(p.contains(&Piece::Var("to".into())));
        assert_eq!(raw_names(&p), vec!["p".to_string()]);
        assert!(parse_raw("{nope}").unwrap_err().contains("{nope}"));
        assert!(parse_raw("{to").is_err());
    }

    #[test]
    fn crlf_conversion() {
        assert_eq!(crlf("a\nb\r\nc"), "a\r\nb\r\nc");
    }
}
