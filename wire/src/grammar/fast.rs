/*!
Whole header values in the exact form the profile's senders emit, read in
one go and stored with one write.

The general rules (`header`, `uri`) fill an entry in place field by field,
which costs a check of the old value of every field written. The forms
below hold nothing to check: one value, a Peer URI in angle brackets with
a lower-case ID, the parameters in the usual order and spelling. When a
value has that form, every general rule would read it to the same entry
without a deviation, so it is read here to local values and the entry is
written once. Anything else (a display name, a list, another URI, an
upper-case ID, white space, other parameters) returns `false` having read
nothing, and the general rules read the value from the start.
*/

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::Cx;
use super::check::{self, FROM, TO};
use super::header::{link_params, plain_number, plain_param, push, via_params};
use super::lex::{self, TOKEN, USER};
use super::uri::{hex_id_value, ipv4_prefix};
use crate::error::Deviation;
use crate::id::{HexCase, Id};
use crate::message::{
    ContactAddr, DhtLink, DhtPeerId, FromTo, Header, Host, IdentityHeader, NameAddr, Scheme, Uri,
    UriParams, Via,
};

/// The parts of `<sip:USER@IPv4address:PORT;peer-ID=ID>` (WIRE-3).
#[derive(Clone, Copy)]
struct PeerAddr<'a> {
    user: &'a [u8],
    addr: Ipv4Addr,
    port: u16,
    id: Id,
}

/// A Peer URI in angle brackets at the start of `i`, its ID in lower case,
/// and the rest after the `>`.
#[inline(always)]
fn peer_addr(i: &[u8]) -> Option<(PeerAddr<'_>, &[u8])> {
    let rest = i.strip_prefix(b"<sip:")?;
    let n = lex::span(rest, &USER);
    if n == 0 || rest.get(n) != Some(&b'@') {
        return None;
    }
    let (user, hostport) = (&rest[..n], &rest[n + 1..]);
    let (addr, len) = ipv4_prefix(hostport)?;
    let [b':', port @ ..] = &hostport[len..] else {
        return None;
    };
    let (after_port, port) = lex::port(port).ok()?;
    let value = after_port.strip_prefix(b";peer-ID=")?;
    let (id, case) = hex_id_value(value)?;
    if case != HexCase::Lower {
        return None;
    }
    let rest = value[40..].strip_prefix(b">")?;
    Some((
        PeerAddr {
            user,
            addr,
            port,
            id,
        },
        rest,
    ))
}

/// The name-addr of a [`PeerAddr`] (its user part as text), as the
/// general rules build it. Called inside the closure that makes the entry,
/// so that the entry is built where it is stored.
#[inline(always)]
fn name_addr<'a>(user: Cow<'a, str>, p: &PeerAddr<'a>) -> NameAddr<'a> {
    NameAddr {
        display: None,
        uri: Uri {
            scheme: Scheme::Sip,
            user: Some(user),
            password: None,
            host: Host::V4(p.addr),
            port: Some(p.port),
            params: UriParams {
                peer_id: Some(p.id),
                resource_id: None,
                replica: None,
                transport: None,
                user: None,
                lr: false,
                other: Cow::Borrowed(""),
            },
            headers: None,
            opaque: None,
        },
    }
}

/// The checks of a Peer URI of this form (see [`check::peer`]).
#[inline(always)]
fn check_peer(cx: &mut Cx<'_>, p: &PeerAddr<'_>) {
    let at = cx.offset(p.user);
    check::peer(cx, p.addr, p.port, &p.id, at);
}

/// WIRE-5: `<PeerURI>;link=TYPEDEPTH;expires=SECS`.
#[inline]
pub(crate) fn dht_link<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let legacy = cx.profile == crate::profile::Profile::Sipping02;
    let Some((p, rest)) = peer_addr(value) else {
        return false;
    };
    let Some((link, expires, [])) = link_params(rest, legacy) else {
        return false;
    };
    let user = cx.text(p.user);
    push(out, || {
        Header::DhtLink(DhtLink {
            addr: name_addr(user, &p),
            link,
            expires: Some(expires),
            other: Cow::Borrowed(""),
        })
    });
    if expires == 0 {
        let at = cx.offset(p.user);
        cx.warnings.record(Deviation::LinkExpired, at);
    }
    check_peer(cx, &p);
    true
}

/// From and To: `<PeerURI>` and `;tag=TAG` if any; `slot` says which
/// ([`FROM`] or [`TO`]) and `make` makes it.
#[inline]
pub(crate) fn from_to<'a>(
    cx: &mut Cx<'a>,
    value: &'a [u8],
    out: &mut Vec<Header<'a>>,
    slot: usize,
    make: impl FnOnce(FromTo<'a>) -> Header<'a>,
) -> bool {
    let Some((p, rest)) = peer_addr(value) else {
        return false;
    };
    let tag = match rest {
        [] => None,
        _ => match plain_param(rest, b";tag=") {
            Some((tag, [])) => Some(cx.text(tag)),
            _ => return false,
        },
    };
    let user = cx.text(p.user);
    push(out, || {
        make(FromTo {
            addr: name_addr(user, &p),
            tag,
            other: Cow::Borrowed(""),
        })
    });
    match slot {
        FROM => cx.tally.from(out.len() - 1),
        _ => cx.tally.count(TO),
    }
    check_peer(cx, &p);
    true
}

/// Contact: `<PeerURI>` and `;expires=SECS` if any.
#[inline]
pub(crate) fn contact<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let Some((p, rest)) = peer_addr(value) else {
        return false;
    };
    let expires = match rest {
        [] => None,
        _ => match plain_param(rest, b";expires=") {
            Some((v, [])) => match plain_number(v) {
                Some(n) => Some(n),
                None => return false,
            },
            _ => return false,
        },
    };
    let user = cx.text(p.user);
    push(out, || {
        Header::Contact(crate::message::Contact::Addr(ContactAddr {
            addr: name_addr(user, &p),
            expires,
            q: None,
            other: Cow::Borrowed(""),
        }))
    });
    check_peer(cx, &p);
    true
}

/// WIRE-4: `<PeerURI>;algorithm=A;dht=D;overlay=O;expires=SECS`.
#[inline]
pub(crate) fn dht_peer_id<'a>(
    cx: &mut Cx<'a>,
    value: &'a [u8],
    header: IdentityHeader,
    out: &mut Vec<Header<'a>>,
) -> bool {
    let parts = || {
        let (p, rest) = peer_addr(value)?;
        let (algorithm, r) = plain_param(rest, b";algorithm=")?;
        let (dht, r) = plain_param(r, b";dht=")?;
        let (overlay, r) = plain_param(r, b";overlay=")?;
        let (expires, r) = plain_param(r, b";expires=")?;
        r.is_empty()
            .then_some((p, algorithm, dht, overlay, plain_number(expires)?))
    };
    let Some((p, algorithm, dht, overlay, expires)) = parts() else {
        return false;
    };
    let (user, algorithm, dht, overlay) = (
        cx.text(p.user),
        cx.text(algorithm),
        cx.text(dht),
        cx.text(overlay),
    );
    push(out, || {
        Header::DhtPeerId(DhtPeerId {
            header,
            addr: name_addr(user, &p),
            algorithm: Some(algorithm),
            dht: Some(dht),
            overlay: Some(overlay),
            expires: Some(expires),
            other: Cow::Borrowed(""),
        })
    });
    // Its parameters hold values to check (WIRE-4).
    if let Some(Header::DhtPeerId(d)) = out.last() {
        check::check_dht_peer_id(cx, d);
    }
    cx.tally.dht_id();
    true
}

/// Via: `SIP/2.0/TRANSPORT IPv4address:PORT` and the parameters
/// `via_params` reads, one value.
#[inline]
pub(crate) fn via<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let parts = || {
        let rest = match value {
            [s, i, p, b'/', b'2', b'.', b'0', b'/', rest @ ..]
                if [*s | 0x20, *i | 0x20, *p | 0x20] == *b"sip" =>
            {
                rest
            }
            _ => return None,
        };
        let n = lex::span(rest, &TOKEN);
        let (transport, rest) = rest.split_at(n);
        if n == 0 {
            return None;
        }
        let rest = rest.strip_prefix(b" ")?;
        let (addr, len) = ipv4_prefix(rest)?;
        let [b':', port @ ..] = &rest[len..] else {
            return None;
        };
        let (rest, port) = lex::port(port).ok()?;
        let (branch, rport, received, rest) = via_params(rest)?;
        rest.is_empty()
            .then_some((transport, addr, port, branch, rport, received))
    };
    let Some((transport, addr, port, branch, rport, received)) = parts() else {
        return false;
    };
    let (transport, branch) = (cx.text(transport), cx.text(branch));
    push(out, || {
        Header::Via(Via {
            transport,
            host: Host::V4(addr),
            port: Some(port),
            branch: Some(branch),
            rport,
            received,
            other: Cow::Borrowed(""),
        })
    });
    cx.tally.via(out.len() - 1);
    true
}
