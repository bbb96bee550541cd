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

use std::net::Ipv4Addr;

use super::Cx;
use super::check::{self, FROM, TO};
use super::header::{link_params, plain_param, push, via_params};
use super::lex::{self, PARAMCHAR, TOKEN, USER};
use super::uri::{host, ipv4_prefix};
use crate::error::Deviation;
use crate::id::Id;
use crate::message::{
    ContactAddr, DhtLink, DhtPeerId, FromTo, Header, Host, IdentityHeader, LinkKind, LinkType,
    NameAddr, Scheme, Uri, UriParams, Via,
};
use crate::profile::Profile;
use crate::text::Text;

/// The parts of `<sip:USER@IPv4address:PORT;peer-ID=ID>` (WIRE-3); the
/// port may be left out only from `0.0.0.0`, the address of a key.
#[derive(Clone, Copy)]
struct PeerAddr<'a> {
    user: &'a [u8],
    addr: Ipv4Addr,
    port: Option<u16>,
    id: Id,
}

/// A Peer URI in angle brackets at the start of `i`, its ID in lower case,
/// and the rest after the `>`.
#[inline(always)]
fn peer_addr(i: &[u8]) -> Option<(PeerAddr<'_>, &[u8])> {
    let rest = lex::lit(i, b"<sip:")?;
    // Most often the user part is `peer`.
    let (user, hostport) = match lex::lit(rest, b"peer@") {
        Some(hostport) => (&rest[..4], hostport),
        None => {
            let n = lex::span(rest, &USER);
            if n == 0 || rest.get(n) != Some(&b'@') {
                return None;
            }
            (&rest[..n], &rest[n + 1..])
        }
    };
    let (addr, len) = ipv4_prefix(hostport)?;
    let (port, after_port) = match &hostport[len..] {
        [b':', digits @ ..] => {
            let (port, rest) = lex::short_port(digits)?;
            (Some(port), rest)
        }
        rest if addr.is_unspecified() => (None, rest),
        _ => return None,
    };
    let value = lex::lit(after_port, b";peer-ID=")?;
    let (digits, rest) = value.split_first_chunk::<40>()?;
    let rest = lex::lit(rest, b">")?;
    let id = Id::lower_hex40(digits)?;
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

/// A user's address as senders write it, `<sip:[USER@]HOST[:PORT]>`, with
/// only the URI parameters below (each once, names in lower case): read to
/// local values. Nothing in it has a rule to check.
struct UserAddr<'a> {
    user: Option<&'a [u8]>,
    host: Host<'a>,
    port: Option<u16>,
    transport: Option<&'a [u8]>,
    replica: Option<u32>,
    lr: bool,
}

/// The [`UserAddr`] at the start of `i`, and the rest after the `>`.
#[inline(always)]
fn user_addr<'a>(cx: &Cx<'a>, i: &'a [u8]) -> Option<(UserAddr<'a>, &'a [u8])> {
    let rest = lex::lit(i, b"<sip:")?;
    let n = lex::span(rest, &USER);
    let (user, hostport) = match rest.get(n) {
        Some(b'@') if n > 0 => (Some(&rest[..n]), &rest[n + 1..]),
        // No user part, unless one that holds other bytes ends at an `@`
        // further on (the general rules read that).
        _ if !rest[..memchr::memchr(b'>', rest)?].contains(&b'@') => (None, rest),
        _ => return None,
    };
    let (rest, host) = host(cx, hostport).ok()?;
    let (port, mut rest) = match rest {
        [b':', digits @ ..] => {
            let (port, rest) = lex::short_port(digits)?;
            (Some(port), rest)
        }
        _ => (None, rest),
    };
    let mut addr = UserAddr {
        user,
        host,
        port,
        transport: None,
        replica: None,
        lr: false,
    };
    while let [b';', param @ ..] = rest {
        rest = if let Some(v) = lex::lit(param, b"transport=")
            && addr.transport.is_none()
        {
            let n = lex::span(v, &PARAMCHAR);
            addr.transport = Some(&v[..n]).filter(|t| !t.is_empty());
            addr.transport?;
            &v[n..]
        } else if let Some(v) = lex::lit(param, b"replica=")
            && addr.replica.is_none()
        {
            let (n, v) = lex::digits::<9>(v)?;
            addr.replica = Some(n);
            v
        } else if let Some(v) = lex::lit(param, b"lr")
            && !addr.lr
        {
            addr.lr = true;
            v
        } else {
            return None;
        };
    }
    Some((addr, lex::lit(rest, b">")?))
}

/// The name-addr of a [`UserAddr`].
#[inline(always)]
fn user_name_addr<'a>(cx: &Cx<'a>, a: UserAddr<'a>) -> NameAddr<'a> {
    NameAddr {
        display: None,
        uri: Uri {
            scheme: Scheme::Sip,
            user: a.user.map(|u| cx.text(u)),
            password: None,
            host: a.host,
            port: a.port,
            params: UriParams {
                transport: a.transport.map(|t| cx.text(t)),
                replica: a.replica,
                lr: a.lr,
                ..UriParams::default()
            },
            headers: None,
            opaque: None,
        },
    }
}

/// The name-addr of a [`PeerAddr`] (its user part as text), as the
/// general rules build it. Called inside the closure that makes the entry,
/// so that the entry is built where it is stored.
#[inline(always)]
fn name_addr<'a>(user: Text<'a>, p: &PeerAddr<'a>) -> NameAddr<'a> {
    NameAddr {
        display: None,
        uri: Uri {
            scheme: Scheme::Sip,
            user: Some(user),
            password: None,
            host: Host::V4(p.addr),
            port: p.port,
            params: UriParams {
                peer_id: Some(p.id),
                resource_id: None,
                replica: None,
                transport: None,
                user: None,
                lr: false,
                other: Text::EMPTY,
            },
            headers: None,
            opaque: None,
        },
    }
}

/// The checks of a Peer URI of this form (see [`check::peer`]): with an ID
/// and a port (or the address of a key), only the ID itself is left to
/// check, when IDs are checked at all.
#[inline(always)]
fn check_peer(cx: &mut Cx<'_>, p: &PeerAddr<'_>) {
    if cx.verify {
        let at = cx.offset(p.user);
        check::peer(cx, p.addr, p.port.unwrap_or(5060), &p.id, at);
    }
}

/// WIRE-5: `<PeerURI>;link=TYPEDEPTH;expires=SECS`.
#[inline]
pub(crate) fn dht_link<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let legacy = cx.profile == crate::profile::Profile::Sipping02;
    let Some((p, rest)) = peer_addr(value) else {
        return false;
    };
    let Some((link, expires)) = link_tail(rest).or_else(|| match link_params(rest, legacy) {
        Some((link, expires, [])) => Some((link, expires)),
        _ => None,
    }) else {
        return false;
    };
    let user = cx.text(p.user);
    push(out, || {
        Header::DhtLink(DhtLink {
            addr: name_addr(user, &p),
            link,
            expires: Some(expires),
            other: Text::EMPTY,
        })
    });
    if expires == 0 {
        let at = cx.offset(p.user);
        cx.warnings.record(Deviation::LinkExpired, at);
    }
    check_peer(cx, &p);
    true
}

/// The parameters of a DHT-Link as senders write them, `;link=TD;expires=N`
/// to the end of the value (a depth of one to three digits, an expiry of
/// one to nine), tested as one shape. None, for anything else, which
/// `link_params` reads.
#[inline(always)]
fn link_tail(rest: &[u8]) -> Option<(LinkType, u32)> {
    let (head, rest) = rest.split_first_chunk::<7>()?;
    let (letter, name) = head.split_last()?;
    if name != b";link=" {
        return None;
    }
    let (kind, max) = match *letter | 0x20 {
        b'p' => (LinkKind::P, 255),
        b's' => (LinkKind::S, 255),
        b'f' => (LinkKind::F, 159),
        _ => return None,
    };
    let d = |b: u8| u32::from(b.wrapping_sub(b'0'));
    let (depth, rest) = match *rest {
        [a, b';', ref r @ ..] if d(a) <= 9 => (d(a), r),
        [a, b, b';', ref r @ ..] if d(a) <= 9 && d(b) <= 9 => (d(a) * 10 + d(b), r),
        [a, b, c, b';', ref r @ ..] if d(a) <= 9 && d(b) <= 9 && d(c) <= 9 => {
            (d(a) * 100 + d(b) * 10 + d(c), r)
        }
        _ => return None,
    };
    if depth > max {
        return None;
    }
    let expires = lex::short_number(lex::lit(rest, b"expires=")?)?;
    Some((
        LinkType {
            kind,
            depth: depth as u8,
        },
        expires,
    ))
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
    if let Some((p, rest)) = peer_addr(value) {
        let Some(tag) = tag(cx, rest) else {
            return false;
        };
        let user = cx.text(p.user);
        push(out, || {
            make(FromTo {
                addr: name_addr(user, &p),
                tag,
                other: Text::EMPTY,
            })
        });
        check_peer(cx, &p);
    } else {
        let Some((addr, rest)) = user_addr(cx, value) else {
            return false;
        };
        let Some(tag) = tag(cx, rest) else {
            return false;
        };
        push(out, || {
            make(FromTo {
                addr: user_name_addr(cx, addr),
                tag,
                other: Text::EMPTY,
            })
        });
    }
    match slot {
        FROM => cx.tally.from(out.len() - 1),
        _ => cx.tally.count(TO),
    }
    true
}

/// What follows the address of a From or To: nothing, or `;tag=TAG` and
/// nothing. None for anything else.
#[inline(always)]
fn tag<'a>(cx: &Cx<'a>, rest: &'a [u8]) -> Option<Option<Text<'a>>> {
    match rest {
        [] => Some(None),
        _ => match plain_param(rest, b";tag=") {
            Some((tag, [])) => Some(Some(cx.text(tag))),
            _ => None,
        },
    }
}

/// Contact: `<PeerURI>` or a user's address, and `;expires=SECS` if any.
#[inline]
pub(crate) fn contact<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let expires = |rest: &[u8]| match rest {
        [] => Some(None),
        _ => match lex::lit(rest, b";expires=").and_then(lex::value_number) {
            Some((n, [])) => Some(Some(n)),
            _ => None,
        },
    };
    let entry = |addr, expires| {
        Header::Contact(crate::message::Contact::Addr(ContactAddr {
            addr,
            expires,
            q: None,
            other: Text::EMPTY,
        }))
    };
    if let Some((p, rest)) = peer_addr(value) {
        let Some(expires) = expires(rest) else {
            return false;
        };
        let user = cx.text(p.user);
        push(out, || entry(name_addr(user, &p), expires));
        check_peer(cx, &p);
    } else {
        let Some((addr, rest)) = user_addr(cx, value) else {
            return false;
        };
        let Some(expires) = expires(rest) else {
            return false;
        };
        push(out, || entry(user_name_addr(cx, addr), expires));
    }
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
        // Most often the usual algorithm and DHT, compared at once.
        let (algorithm, dht, r) = match lex::lit(rest, b";algorithm=sha1;dht=Chord1.0") {
            Some(r) => (&rest[11..15], &rest[20..28], r),
            None => {
                let (algorithm, r) = plain_param(rest, b";algorithm=")?;
                let (dht, r) = plain_param(r, b";dht=")?;
                (algorithm, dht, r)
            }
        };
        let (overlay, r) = plain_param(r, b";overlay=")?;
        let (expires, r) = lex::value_number(lex::lit(r, b";expires=")?)?;
        r.is_empty()
            .then_some((p, algorithm, dht, overlay, expires))
    };
    let Some((p, algorithm, dht, overlay, expires)) = parts() else {
        return false;
    };
    // The usual values hold nothing to check but the ID.
    let usual = algorithm == b"sha1" && dht == b"Chord1.0" && cx.profile == Profile::DsipChord;
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
            other: Text::EMPTY,
        })
    });
    if usual {
        check_peer(cx, &p);
    } else if let Some(Header::DhtPeerId(d)) = out.last() {
        // Its parameters hold values to check (WIRE-4).
        check::check_dht_peer_id(cx, d);
    }
    cx.tally.dht_id();
    true
}

/// Require and Supported (`require` says which): one option tag, the
/// tally of `dht` (WIRE-2) kept as it is read.
#[inline]
pub(crate) fn option_tag<'a>(
    cx: &mut Cx<'a>,
    value: &'a [u8],
    out: &mut Vec<Header<'a>>,
    require: bool,
) -> bool {
    if value.is_empty() || lex::span(value, &TOKEN) != value.len() {
        return false;
    }
    // Option tags compare case-insensitively (WIRE-2).
    let dht = value.eq_ignore_ascii_case(b"dht");
    let tag = cx.text(value);
    if require {
        push(out, || Header::Require(tag));
    } else {
        push(out, || Header::Supported(tag));
    }
    cx.tally.option_tag(require, dht);
    true
}

/// Via: `SIP/2.0/TRANSPORT IPv4address:PORT` and the parameters
/// `via_params` reads, one value.
#[inline]
pub(crate) fn via<'a>(cx: &mut Cx<'a>, value: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
    let parts = || {
        let (protocol, rest) = value.split_first_chunk::<8>()?;
        // The letters of `SIP` in either case.
        if u64::from_le_bytes(*protocol) | 0x20_2020 != u64::from_le_bytes(*b"sip/2.0/") {
            return None;
        }
        let (transport, rest) = match rest.first_chunk::<4>() {
            Some(b"UDP " | b"TCP " | b"TLS ") => (&rest[..3], &rest[4..]),
            _ => {
                let n = lex::span(rest, &TOKEN);
                if n == 0 {
                    return None;
                }
                (&rest[..n], lex::lit(&rest[n..], b" ")?)
            }
        };
        let (addr, len) = ipv4_prefix(rest)?;
        let rest = lex::lit(&rest[len..], b":")?;
        let (port, rest) = lex::short_port(rest)?;
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
            other: Text::EMPTY,
        })
    });
    cx.tally.via(out.len() - 1);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::header;

    type Rule = for<'a> fn(&mut Cx<'a>, &'a [u8], &mut Vec<Header<'a>>) -> bool;
    type General = for<'a> fn(&mut Cx<'a>, &'a [u8], &mut Vec<Header<'a>>) -> Result<(), &'a [u8]>;

    /// Whenever a fast rule takes a value, the general rules read it to the
    /// same entries with the same deviations.
    fn agrees(fast: Rule, general: General, values: &[&str]) -> usize {
        let mut taken = 0;
        for v in values {
            for profile in [Profile::DsipChord, Profile::Sipping02] {
                for verify in [false, true] {
                    let mut fcx = Cx::of_text(v, profile);
                    fcx.verify = verify;
                    let mut fout = vec![];
                    if !fast(&mut fcx, v.as_bytes(), &mut fout) {
                        assert!(fout.is_empty(), "{v}: a refused value left entries");
                        continue;
                    }
                    taken += 1;
                    let mut gcx = Cx::of_text(v, profile);
                    gcx.verify = verify;
                    let mut gout = vec![];
                    general(&mut gcx, v.as_bytes(), &mut gout).unwrap();
                    for (i, h) in gout.iter().enumerate() {
                        check::entry(&mut gcx, h, i);
                    }
                    assert_eq!(fout, gout, "{v}");
                    assert_eq!(fcx.warnings, gcx.warnings, "{v}");
                }
            }
        }
        taken
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    const ID: &str = "6c7c752f7592a104b9ba5e48ec077a01385b13c4";

    fn peer_uris() -> Vec<String> {
        [
            "peer@10.0.0.1:5060",
            "peer@0.0.0.0",
            "peer@0.0.0.0:5060",
            "peer@10.0.0.1",
            "bob@10.0.0.1:05060",
            "p@10.0.0.1:65535",
            "p@10.0.0.1:65536",
            "p@10.0.0.1:000005060",
            "p@010.0.0.1:5060",
            "p@10.0.0.1.2:5060",
            "@10.0.0.1:5060",
        ]
        .iter()
        .flat_map(|a| {
            [
                format!("<sip:{a};peer-ID={ID}>"),
                format!("<sip:{a};peer-ID={}>", ID.to_uppercase()),
                format!("<sip:{a};peer-ID={ID}0>"),
                format!("<sip:{a};pID={ID}>"),
            ]
        })
        .chain(
            [
                "<sip:alice@example.org>",
                "<sip:alice@example.org:5070>",
                "<sip:alice@192.0.2.10:5060>",
                "<sip:alice@192.0.2.10.5:5060>",
                "<sip:alice@192.0.2.10:050600>",
                "<sip:alice@[2001:db8::1]:5060>",
                "<sip:a;b@example.org>",
                "<sip:example.org>",
                "<sip:alice@example.org;transport=tcp>",
                "<sip:alice@example.org;user=node>",
                "<sip:alice@-bad->",
                "<sip:10.0.0.1:5060>",
                "<sip:example.org>",
                "<sip:[2001:db8::1]>",
                "<sip:10.0.0.1:5060;transport=tcp>",
                "<sip:alice@198.51.100.7:5062;transport=tcp>",
                "<sip:alice@198.51.100.7:5062;transport=>",
                "<sip:alice@198.51.100.7:5062;transport=tcp;transport=udp>",
                "<sip:alice@198.51.100.7:5062;Transport=TCP>",
                "<sip:alice@example.org;replica=1>",
                "<sip:alice@example.org;replica=0001>",
                "<sip:alice@example.org;replica=4294967295>",
                "<sip:alice@example.org;replica=4294967296>",
                "<sip:alice@example.org;replica=1x>",
                "<sip:alice@example.org;replica=>",
                "<sip:alice@example.org;replica=1;replica=2>",
                "<sip:alice@example.org;lr>",
                "<sip:alice@example.org;lr;lr>",
                "<sip:alice@example.org;lr=1>",
                "<sip:alice@example.org;lrx>",
                "<sip:alice@example.org;lr;transport=udp;replica=3>",
                "<sip:alice@example.org;user=node>",
                "<sip:alice@example.org;x=1>",
                "<sip:alice@example.org;>",
                "<sip:a;b@example.org;transport=tcp>",
                "<sip:alice@example.org;x=1>",
                "<sip:@example.org>",
                "<sip:alice@example.org?subject=x>",
                "<sip:alice:pw@example.org>",
            ]
            .map(String::from),
        )
        .collect()
    }

    #[test]
    fn dht_link_agrees_with_the_general_rules() {
        let mut values = vec![];
        for u in peer_uris() {
            for p in [
                ";link=S1;expires=600",
                ";link=F159;expires=0",
                ";link=F160;expires=60",
                ";link=f001;expires=60",
                ";link=F0001;expires=60",
                ";link=P;expires=60",
                ";link=S1x;expires=60",
                ";link=S1;expires=4294967296",
                ";link=S1;expires=999999999",
                ";link=S1;expires=60x",
                ";link=S1",
                ";expires=60;link=S1",
                ";link=S1;expires=60;x",
                // The shapes of the fixed-shape tail and its near misses.
                ";link=S/;expires=60",
                ";link=S1/;expires=60",
                ";link=S12/;expires=60",
                ";link=s01;expires=60",
                ";link=P255;expires=1",
                ";link=S256;expires=1",
                ";link=X1;expires=60",
                ";link=S;expires=60",
                ";link=S1;expires=",
                ";link=S1;Expires=60",
                ";link=S1;expires=060",
                ";link=S1,expires=60",
            ] {
                values.push(format!("{u}{p}"));
            }
        }
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        assert!(agrees(dht_link, header::dht_link_list, &values) > 0);
    }

    #[test]
    fn from_contact_and_peer_id_agree_with_the_general_rules() {
        let mut from = vec![];
        let mut contacts = vec![];
        let mut identity = vec![];
        for u in peer_uris() {
            for p in ["", ";tag=1", ";tag=", ";tag=a;x", ";x"] {
                from.push(format!("{u}{p}"));
            }
            for p in ["", ";expires=60", ";expires=6000000000", ";expires=6x"] {
                contacts.push(format!("{u}{p}"));
            }
            for p in [
                ";algorithm=sha1;dht=Chord1.0;overlay=chat;expires=3600",
                ";algorithm=md5;dht=Chord1.0;overlay=chat;expires=3600",
                ";algorithm=sha1;dht=ChordIter1.0;overlay=chat;expires=3600",
                ";algorithm=SHA1;dht=chord1.0;overlay=chat;expires=3600",
                ";algorithm=sha1;dht=Chord1.0;overlay=chat",
                ";algorithm=sha1;dht=Chord1.0;overlay=chat;expires=36000000000",
            ] {
                identity.push(format!("{u}{p}"));
            }
        }
        fn fast_from<'a>(cx: &mut Cx<'a>, v: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
            from_to(cx, v, out, FROM, Header::From)
        }
        fn general_from<'a>(
            cx: &mut Cx<'a>,
            v: &'a [u8],
            out: &mut Vec<Header<'a>>,
        ) -> Result<(), &'a [u8]> {
            header::from_to(cx, v, out, Header::From)
        }
        fn fast_id<'a>(cx: &mut Cx<'a>, v: &'a [u8], out: &mut Vec<Header<'a>>) -> bool {
            dht_peer_id(cx, v, IdentityHeader::PeerId, out)
        }
        fn general_id<'a>(
            cx: &mut Cx<'a>,
            v: &'a [u8],
            out: &mut Vec<Header<'a>>,
        ) -> Result<(), &'a [u8]> {
            header::dht_peer_id(cx, v, IdentityHeader::PeerId, out)
        }
        assert!(agrees(fast_from, general_from, &strs(&from)) > 0);
        assert!(agrees(contact, header::contact_list, &strs(&contacts)) > 0);
        assert!(agrees(fast_id, general_id, &strs(&identity)) > 0);
    }

    #[test]
    fn users_addresses_with_parameters_or_without_user_are_taken() {
        for v in [
            "<sip:10.0.0.1:5060>",
            "<sip:alice@example.org;replica=1>",
            "<sip:alice@198.51.100.7:5062;transport=tcp>",
            "<sip:alice@example.org;lr;transport=udp;replica=3>",
        ] {
            let mut cx = Cx::of_text(v, Profile::DsipChord);
            let mut out = vec![];
            assert!(
                from_to(&mut cx, v.as_bytes(), &mut out, TO, Header::To),
                "{v}"
            );
            let mut out = vec![];
            assert!(contact(&mut cx, v.as_bytes(), &mut out), "{v}");
        }
        for v in [
            "<sip:alice@example.org;user=node>",
            "<sip:alice@example.org;Transport=tcp>",
            "<sip:alice@example.org;x=1>",
        ] {
            let mut cx = Cx::of_text(v, Profile::DsipChord);
            assert!(!contact(&mut cx, v.as_bytes(), &mut vec![]), "{v}");
        }
    }

    #[test]
    fn option_tags_agree_with_the_general_rules() {
        let mut taken = 0;
        for v in [
            "dht", "DHT", "dHt", "dhtx", "dh", "foo", "", "dht, foo", "dht foo", "d;ht",
        ] {
            for require in [true, false] {
                let mut fcx = Cx::of_text(v, Profile::DsipChord);
                let mut fout = vec![];
                if !option_tag(&mut fcx, v.as_bytes(), &mut fout, require) {
                    assert!(fout.is_empty(), "{v}");
                    continue;
                }
                taken += 1;
                let mut gcx = Cx::of_text(v, Profile::DsipChord);
                let mut gout = vec![];
                let make = if require {
                    Header::Require
                } else {
                    Header::Supported
                };
                header::token_list(&mut gcx, v.as_bytes(), &mut gout, make).unwrap();
                for (i, h) in gout.iter().enumerate() {
                    check::entry(&mut gcx, h, i);
                }
                assert_eq!(fout, gout, "{v}");
                assert_eq!(fcx.tally.dht_tags(), gcx.tally.dht_tags(), "{v}");
                assert_eq!(fcx.warnings, gcx.warnings, "{v}");
            }
        }
        assert_eq!(taken, 2 * 6);
    }

    #[test]
    fn via_agrees_with_the_general_rules() {
        let mut values = vec![];
        for sent in [
            "SIP/2.0/UDP 10.0.0.1:5060",
            "sip/2.0/tcp 10.0.0.1:5060",
            "SIP/2.0/SCTP 10.0.0.1:5060",
            "SIP/2.0/UDP 10.0.0.1",
            "SIP/2.0/UDP 10.0.0.1:050600",
            "SIP/2.0/UDP  10.0.0.1:5060",
            "SIP/2.0/UDP host:5060",
        ] {
            for p in [
                ";branch=z9hG4bK1",
                ";branch=z9hG4bK1;rport",
                ";branch=z9hG4bK1;rport=5060",
                ";branch=z9hG4bK1;rport=05060",
                ";branch=z9hG4bK1;rport=65536",
                ";branch=z9hG4bK1;rport=1x",
                ";branch=z9hG4bK1;rportx",
                ";branch=z9hG4bK1;rport;received=10.0.0.2",
                ";branch=z9hG4bK1;rport=7;received=10.0.0.2x",
                ";branch=z9hG4bK1;received=10.0.0.2.3",
                ";branch=z9hG4bK1;received=",
                ";branch=z9hG4bK1;ttl=3",
                ";rport;branch=z9hG4bK1",
            ] {
                values.push(format!("{sent}{p}"));
            }
        }
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        assert!(agrees(via, header::via_list, &values) > 0);
    }
}
