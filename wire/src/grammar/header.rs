/*!
Typed header values (RFC 3261 §20, §25.1, RFC 3581, and the profile's
DHT-PeerID and DHT-Link of WIRE-4/WIRE-5).

Each function takes the value of one header line (after `HCOLON`, possibly
holding folds) and pushes one model entry per comma-separated value, then
fills it in place.

The parameters of the profile's headers are first tried in the exact form
senders emit (`plain_param` and the `*_params` functions): one pass, no
name scanning. Anything else -- other spellings, letter cases, white space,
order, extra parameters, or an error -- is read by the general rules from
the start, so the results, warnings and error offsets are theirs.
*/

use std::net::IpAddr;

use memchr::memchr3;

use super::Cx;
use super::lex::{self, Res, Spelling, err, sep, sws};
use super::uri::{self, Other, Place, uri_into};
use crate::error::{Deviation, ErrorKind};
use crate::message::{
    CSeq, Contact, ContactAddr, DhtLink, DhtPeerId, FromTo, Header, Host, IdentityHeader, LinkKind,
    LinkType, Method, NameAddr, ParamAddr, Rport, Via,
};
use crate::text::Text;

/// The header parameters the model types.
const ALGORITHM: Spelling = Spelling::of("algorithm");
const BRANCH: Spelling = Spelling::of("branch");
const DHT: Spelling = Spelling::of("dht");
const DHT_PARAM: Spelling = Spelling::of("dht-param");
const EXPIRES: Spelling = Spelling::of("expires");
const LINK: Spelling = Spelling::of("link");
const OVERLAY: Spelling = Spelling::of("overlay");
const Q: Spelling = Spelling::of("q");
const RECEIVED: Spelling = Spelling::of("received");
const RPORT: Spelling = Spelling::of("rport");
const TAG: Spelling = Spelling::of("tag");

/// A name-addr with nothing parsed into it yet (see [`uri::empty`]).
#[inline(always)]
fn empty_addr<'a>() -> NameAddr<'a> {
    NameAddr {
        display: None,
        uri: uri::empty(),
    }
}

/// Appends the entry `make` builds and returns it, for the rules to fill
/// in place. A header value is large: building it on the stack and moving
/// it into the list would cost more than parsing most of its fields, while
/// extending the list makes room first and then builds it in place.
#[inline(always)]
fn push_entry<'a, 'v>(
    out: &'v mut Vec<Header<'a>>,
    make: impl FnOnce() -> Header<'a>,
) -> &'v mut Header<'a> {
    if out.len() == out.capacity() {
        out.reserve(1);
    }
    let len = out.len();
    let entry: *mut Header<'a> = out.spare_capacity_mut()[0].write(make());
    // SAFETY: the element at `len`, the first of the spare capacity, was
    // just written, so the first `len + 1` elements are initialised. The
    // pointer is to that element, which stays where it is (no
    // reallocation happens while the borrow of `out` it is returned
    // under lasts).
    unsafe {
        out.set_len(len + 1);
        &mut *entry
    }
}

/// Appends a header value built by `make` (see [`push_entry`]).
#[inline(always)]
pub(crate) fn push<'a>(out: &mut Vec<Header<'a>>, make: impl FnOnce() -> Header<'a>) {
    push_entry(out, make);
}

/// `name-addr / addr-spec`:
/// `name-addr = [ display-name ] LAQUOT addr-spec RAQUOT`,
/// `display-name = *(token LWS) / quoted-string`; parsed into `out`
/// (which holds [`empty_addr`]).
pub(crate) fn name_addr<'a>(cx: &mut Cx<'a>, i: &'a [u8], out: &mut NameAddr<'a>) -> Res<'a, ()> {
    let (i, ()) = sws(i)?;
    let (i, display) = match i.first() {
        Some(b'<') => {
            if let Some(rest) = uri::peer_uri(cx, &i[1..], &mut out.uri) {
                return Ok((&rest[1..], ()));
            }
            (i, None)
        }
        Some(b'"') => {
            let (i, q) = lex::quoted_string(i)?;
            let (i, ()) = sws(i)?;
            (i, Some(q))
        }
        // Tokens up to '<' are a display name; with no '<' before the
        // first ';' or ',' this is the addr-spec form.
        _ => match memchr3(b'<', b';', b',', i) {
            Some(j) if i[j] == b'<' => {
                let d = trim(&i[..j]);
                (&i[j..], (!d.is_empty()).then_some(d))
            }
            _ => return uri_into(cx, i, Place::AddrSpec, &mut out.uri),
        },
    };
    if i.first() != Some(&b'<') {
        return Err(err(i, nom::error::ErrorKind::Char));
    }
    let (i, ()) = uri_into(cx, &i[1..], Place::Angle, &mut out.uri)?;
    if i.first() != Some(&b'>') {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Char,
        )));
    }
    out.display = display.map(|d| cx.text(d));
    Ok((&i[1..], ()))
}

fn trim(s: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// `*( SEMI generic-param )`: each parameter goes to `known` first, which
/// returns false for the ones it does not type; those are kept verbatim in
/// `other_params`.
#[inline]
fn header_params<'a>(
    cx: &mut Cx<'a>,
    mut i: &'a [u8],
    other_params: &mut Text<'a>,
    mut known: impl FnMut(&mut Cx<'a>, &'a [u8], Option<&'a [u8]>) -> Result<bool, &'a [u8]>,
) -> Res<'a, ()> {
    let mut other = Other::default();
    loop {
        // SEMI = SWS ";" SWS
        let (at_semi, ()) = sws(i)?;
        let [b';', after_semi @ ..] = at_semi else {
            break;
        };
        let (after_semi, ()) = sws(after_semi)?;
        let (rest, (name, value)) = lex::generic_param(after_semi)?;
        match known(cx, name, value) {
            Ok(true) => {}
            // Kept verbatim from the ';' on, without the white space
            // before it.
            Ok(false) => other.push(cx.base, &at_semi[..at_semi.len() - rest.len()]),
            Err(at) => {
                return Err(nom::Err::Failure(nom::error::Error::new(
                    at,
                    nom::error::ErrorKind::Verify,
                )));
            }
        }
        i = rest;
    }
    if !other.is_empty() {
        *other_params = other.finish(cx);
    }
    Ok((i, ()))
}

fn param_number<'a>(value: Option<&'a [u8]>, name: &'a [u8]) -> Result<u32, &'a [u8]> {
    let v = value.ok_or(name)?;
    match lex::number_saturating(v) {
        Ok(([], n)) => Ok(n),
        _ => Err(v),
    }
}

/// Runs `one` for every comma-separated value of `i`, which must be used
/// up; `one` appends its entry to `out`.
#[inline]
fn comma_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    mut one: impl FnMut(&mut Cx<'a>, &'a [u8], &mut Vec<Header<'a>>) -> Res<'a, ()>,
) -> Result<(), &'a [u8]> {
    let mut i = i;
    loop {
        let (rest, ()) = one(cx, i, out).map_err(|e| failed_at(e, i))?;
        let (rest, ()) = sws(rest).map_err(|e| failed_at(e, rest))?;
        match rest.first() {
            None => return Ok(()),
            Some(b',') => {
                let (rest, ()) = sws(&rest[1..]).map_err(|e| failed_at(e, rest))?;
                i = rest;
            }
            Some(_) => return Err(rest),
        }
    }
}

/// Where a nom error happened.
pub(crate) fn failed_at<'a>(
    e: nom::Err<nom::error::Error<&'a [u8]>>,
    fallback: &'a [u8],
) -> &'a [u8] {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.input,
        nom::Err::Incomplete(_) => fallback,
    }
}

/// `Via = ( "Via" / "v" ) HCOLON via-parm *(COMMA via-parm)`
pub(crate) fn via_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), &'a [u8]> {
    comma_list(cx, i, out, |cx, i, out| {
        let entry = push_entry(out, || {
            Header::Via(Via {
                transport: Text::EMPTY,
                host: Host::Domain(Text::EMPTY),
                port: None,
                branch: None,
                rport: Rport::Absent,
                received: None,
                other: Text::EMPTY,
            })
        });
        let Header::Via(via) = entry else {
            unreachable!("a Via was just appended")
        };
        via_parm(cx, i, via)
    })
}

/// `via-parm = sent-protocol LWS sent-by *( SEMI via-params )`
/// `sent-protocol = protocol-name SLASH protocol-version SLASH transport`
/// `sent-by = host [ COLON port ]`
fn via_parm<'a>(cx: &mut Cx<'a>, i: &'a [u8], via: &mut Via<'a>) -> Res<'a, ()> {
    let (i, ()) = match i {
        // The usual spelling, without white space around the slashes.
        [s, i, p, b'/', b'2', b'.', b'0', b'/', rest @ ..]
            if [*s | 0x20, *i | 0x20, *p | 0x20] == *b"sip" =>
        {
            sws(rest)?
        }
        _ => {
            let (i, ()) = lex::tag_no_case(i, b"SIP")?;
            let (i, ()) = sep(b'/')(i)?;
            let (i, ()) = lex::tag_no_case(i, b"2.0")?;
            sep(b'/')(i)?
        }
    };
    let (i, transport) = lex::token(i)?;
    via.transport = cx.text(transport);
    let (i, ()) = lex::lws(i)?;
    let (i, host) = uri::host(cx, i)?;
    via.host = host;
    let i = match sep(b':')(i) {
        Ok((i, ())) => {
            let (i, p) = lex::port(i)?;
            via.port = Some(p);
            i
        }
        Err(_) => i,
    };
    if let Some((branch, rport, received, rest)) = via_params(i) {
        via.branch = Some(cx.text(branch));
        via.rport = rport;
        via.received = received;
        return Ok((rest, ()));
    }
    let (i, ()) = header_params(cx, i, &mut via.other, |cx, name, value| {
        if BRANCH.is(name) && via.branch.is_none() {
            via.branch = Some(cx.text(value.ok_or(name)?));
        } else if RPORT.is(name) && via.rport == Rport::Absent {
            via.rport = match value {
                None => Rport::Requested,
                Some(v) => match lex::port(v) {
                    Ok(([], p)) => Rport::Filled(p),
                    _ => return Err(v),
                },
            };
        } else if RECEIVED.is(name) && via.received.is_none() {
            let v = value.ok_or(name)?;
            let t = v
                .strip_prefix(b"[")
                .and_then(|v| v.strip_suffix(b"]"))
                .unwrap_or(v);
            via.received = Some(match uri::ipv4_address(t) {
                Some(v4) => v4.into(),
                None => std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(v)?,
            });
        } else {
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok((i, ()))
}

/// `From = ( "From" / "f" ) HCOLON from-spec`,
/// `from-spec = ( name-addr / addr-spec ) *( SEMI from-param )` (To alike;
/// `make` says which).
pub(crate) fn from_to<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    make: impl FnOnce(FromTo<'a>) -> Header<'a>,
) -> Result<(), &'a [u8]> {
    let entry = push_entry(out, || {
        make(FromTo {
            addr: empty_addr(),
            tag: None,
            other: Text::EMPTY,
        })
    });
    let (Header::From(f) | Header::To(f)) = entry else {
        unreachable!("a From or To was just appended")
    };
    let (rest, ()) = name_addr(cx, i, &mut f.addr).map_err(|e| failed_at(e, i))?;
    // A lone tag, as senders write it.
    if let Some((tag, [])) = plain_param(rest, b";tag=") {
        f.tag = Some(cx.text(tag));
        return Ok(());
    }
    let (rest, ()) = header_params(cx, rest, &mut f.other, |cx, name, value| {
        if TAG.is(name) && f.tag.is_none() {
            f.tag = Some(cx.text(value.ok_or(name)?));
            Ok(true)
        } else {
            Ok(false)
        }
    })
    .map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    Ok(())
}

fn end(rest: &[u8]) -> Result<(), &[u8]> {
    let (rest, ()) = sws(rest).map_err(|e| failed_at(e, rest))?;
    if rest.is_empty() { Ok(()) } else { Err(rest) }
}

/// `Call-ID = ( "Call-ID" / "i" ) HCOLON callid`, `callid = word [ "@" word ]`
pub(crate) fn call_id<'a>(cx: &Cx<'a>, i: &'a [u8]) -> Result<Text<'a>, &'a [u8]> {
    let n = lex::span(i, &lex::CALLID);
    let (id, rest) = i.split_at(n);
    if id.is_empty() || id.first() == Some(&b'@') || id.last() == Some(&b'@') {
        return Err(i);
    }
    end(rest)?;
    Ok(cx.text(id))
}

/// `CSeq = "CSeq" HCOLON 1*DIGIT LWS Method`
pub(crate) fn cseq<'a>(cx: &Cx<'a>, i: &'a [u8]) -> Result<CSeq<'a>, &'a [u8]> {
    // Most often `NUMBER SP METHOD`, as senders write it.
    if let Some((seq, rest)) = lex::digits::<9>(i)
        && let Some(m) = lex::lit(rest, b" ")
    {
        // A known method is a token.
        if let Some(method) = known_method(m) {
            return Ok(CSeq { seq, method });
        }
        if !m.is_empty() && lex::span(m, &lex::TOKEN) == m.len() {
            return Ok(CSeq {
                seq,
                method: method(cx, m),
            });
        }
    }
    let (rest, seq) = lex::number_max(i, u32::MAX).map_err(|e| failed_at(e, i))?;
    let (rest, ()) = lex::lws(rest).map_err(|e| failed_at(e, rest))?;
    let (rest, m) = lex::token(rest).map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    Ok(CSeq {
        seq,
        method: method(cx, m),
    })
}

/// `Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm /
/// extension-method` (case-sensitive, RFC 3261 §7.1), of a token.
pub(crate) fn method<'a>(cx: &Cx<'a>, token: &'a [u8]) -> Method<'a> {
    known_method(token).unwrap_or_else(|| Method::Other(cx.text(token)))
}

/// The methods named by [`Method`], compared by length and then as one
/// array (a word or two), not byte by byte.
#[inline(always)]
fn known_method(token: &[u8]) -> Option<Method<'static>> {
    let is = |m: &[u8]| token == m;
    Some(match token.len() {
        3 if is(b"ACK") => Method::Ack,
        3 if is(b"BYE") => Method::Bye,
        6 if is(b"INVITE") => Method::Invite,
        6 if is(b"CANCEL") => Method::Cancel,
        6 if is(b"NOTIFY") => Method::Notify,
        7 if is(b"OPTIONS") => Method::Options,
        7 if is(b"MESSAGE") => Method::Message,
        8 if is(b"REGISTER") => Method::Register,
        9 if is(b"SUBSCRIBE") => Method::Subscribe,
        _ => return None,
    })
}

/// A header whose value is one number: Expires, Max-Forwards,
/// Content-Length.
pub(crate) fn number(i: &[u8], saturate: bool) -> Result<u32, &[u8]> {
    // Most often a few digits and nothing else.
    if let Some((n, [])) = lex::digits::<9>(i) {
        return Ok(n);
    }
    let (rest, n) = if saturate {
        lex::number_saturating(i)
    } else {
        lex::number_max(i, u32::MAX)
    }
    .map_err(|e| failed_at(e, i))?;
    end(rest)?;
    Ok(n)
}

/// `Require = "Require" HCOLON option-tag *(COMMA option-tag)` and the
/// other token lists (Supported, Unsupported, Request-Disposition).
/// RFC 3261 allows an empty Supported.
pub(crate) fn token_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    make: impl Fn(Text<'a>) -> Header<'a>,
) -> Result<(), &'a [u8]> {
    if i.is_empty() {
        return Ok(());
    }
    // Most often one token.
    if lex::span(i, &lex::TOKEN) == i.len() {
        let t = cx.text(i);
        push(out, || make(t));
        return Ok(());
    }
    comma_list(cx, i, out, |cx, i, out| {
        let (i, t) = lex::token(i)?;
        let t = cx.text(t);
        push(out, || make(t));
        Ok((i, ()))
    })
}

/// `Contact = ("Contact" / "m" ) HCOLON ( STAR / (contact-param *(COMMA contact-param)))`
/// `contact-param = (name-addr / addr-spec) *(SEMI contact-params)`
pub(crate) fn contact_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), &'a [u8]> {
    if i.first() == Some(&b'*') {
        end(&i[1..])?;
        push(out, || Header::Contact(Contact::Star));
        return Ok(());
    }
    comma_list(cx, i, out, |cx, i, out| {
        let entry = push_entry(out, || {
            Header::Contact(Contact::Addr(ContactAddr {
                addr: empty_addr(),
                expires: None,
                q: None,
                other: Text::EMPTY,
            }))
        });
        let Header::Contact(Contact::Addr(c)) = entry else {
            unreachable!("a Contact was just appended")
        };
        let (i, ()) = name_addr(cx, i, &mut c.addr)?;
        let (i, ()) = header_params(cx, i, &mut c.other, |cx, name, value| {
            if EXPIRES.is(name) && c.expires.is_none() {
                c.expires = Some(param_number(value, name)?);
            } else if Q.is(name) && c.q.is_none() {
                c.q = Some(cx.text(value.ok_or(name)?));
            } else {
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok((i, ()))
    })
}

/// `Record-Route = "Record-Route" HCOLON rec-route *(COMMA rec-route)`
/// (Route alike; `make` says which).
pub(crate) fn param_addr_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    make: impl Fn(ParamAddr<'a>) -> Header<'a>,
) -> Result<(), &'a [u8]> {
    comma_list(cx, i, out, |cx, i, out| {
        let entry = push_entry(out, || {
            make(ParamAddr {
                addr: empty_addr(),
                other: Text::EMPTY,
            })
        });
        let (Header::RecordRoute(p) | Header::Route(p)) = entry else {
            unreachable!("a Route or Record-Route was just appended")
        };
        let (i, ()) = name_addr(cx, i, &mut p.addr)?;
        let (i, ()) = header_params(cx, i, &mut p.other, |_, _, _| Ok(false))?;
        Ok((i, ()))
    })
}

/// WIRE-4: `DHT-PeerID: <PeerURI>;algorithm=sha1;dht=Chord1.0;overlay=NAME;expires=SECS`
pub(crate) fn dht_peer_id<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    header: IdentityHeader,
    out: &mut Vec<Header<'a>>,
) -> Result<(), &'a [u8]> {
    let entry = push_entry(out, || {
        Header::DhtPeerId(DhtPeerId {
            header,
            addr: empty_addr(),
            algorithm: None,
            dht: None,
            overlay: None,
            expires: None,
            other: Text::EMPTY,
        })
    });
    let Header::DhtPeerId(d) = entry else {
        unreachable!("a DHT-PeerID was just appended")
    };
    let (rest, ()) = name_addr(cx, i, &mut d.addr).map_err(|e| failed_at(e, i))?;
    // The parameters in the form senders emit, read in one go.
    let usual = || {
        let (algorithm, r) = plain_param(rest, b";algorithm=")?;
        let (dht, r) = plain_param(r, b";dht=")?;
        let (overlay, r) = plain_param(r, b";overlay=")?;
        let (expires, r) = plain_param(r, b";expires=")?;
        r.is_empty()
            .then_some((algorithm, dht, overlay, plain_number(expires)?))
    };
    if let Some((algorithm, dht, overlay, expires)) = usual() {
        d.algorithm = Some(cx.text(algorithm));
        d.dht = Some(cx.text(dht));
        d.overlay = Some(cx.text(overlay));
        d.expires = Some(expires);
        return Ok(());
    }
    let (rest, ()) = header_params(cx, rest, &mut d.other, |cx, name, value| {
        if ALGORITHM.is(name) && d.algorithm.is_none() {
            d.algorithm = Some(cx.text(value.ok_or(name)?));
        } else if DHT.is(name) && d.dht.is_none() {
            d.dht = Some(cx.text(value.ok_or(name)?));
        } else if DHT_PARAM.is(name) && d.dht.is_none() {
            cx.deviate(Deviation::DhtParamAlias, name);
            d.dht = Some(cx.text(value.ok_or(name)?));
        } else if OVERLAY.is(name) && d.overlay.is_none() {
            d.overlay = Some(cx.text(value.ok_or(name)?));
        } else if EXPIRES.is(name) && d.expires.is_none() {
            d.expires = Some(param_number(value, name)?);
        } else {
            return Ok(false);
        }
        Ok(true)
    })
    .map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    Ok(())
}

/// WIRE-5: `DHT-Link: <PeerURI>;link=TYPEDEPTH;expires=SECS`.
pub(crate) fn dht_link_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), &'a [u8]> {
    let legacy = cx.profile == crate::profile::Profile::Sipping02;
    comma_list(cx, i, out, |cx, i, out| {
        let at = i;
        let entry = push_entry(out, || {
            Header::DhtLink(DhtLink {
                addr: empty_addr(),
                link: LinkType {
                    kind: LinkKind::P,
                    depth: 0,
                },
                expires: None,
                other: Text::EMPTY,
            })
        });
        let Header::DhtLink(l) = entry else {
            unreachable!("a DHT-Link was just appended")
        };
        let (i, ()) = name_addr(cx, i, &mut l.addr)?;
        if let Some((link, expires, rest)) = link_params(i, legacy) {
            l.link = link;
            l.expires = Some(expires);
            return Ok((rest, ()));
        }
        let mut link = None;
        let (i, ()) = header_params(cx, i, &mut l.other, |cx, name, value| {
            if LINK.is(name) && link.is_none() {
                let v = value.ok_or(name)?;
                link = Some(link_type(v, legacy).ok_or_else(|| {
                    cx.fail(ErrorKind::BadLinkType);
                    v
                })?);
            } else if EXPIRES.is(name) && l.expires.is_none() {
                l.expires = Some(param_number(value, name)?);
            } else {
                return Ok(false);
            }
            Ok(true)
        })?;
        let Some(link) = link else {
            cx.fail(ErrorKind::BadLinkType);
            return Err(nom::Err::Failure(nom::error::Error::new(
                at,
                nom::error::ErrorKind::Verify,
            )));
        };
        l.link = link;
        Ok((i, ()))
    })
}

/// `SEMI generic-param` spelled exactly `;name=value` (as senders write
/// it), the value a token: the value and the rest after it.
#[inline(always)]
pub(crate) fn plain_param<'a, const N: usize>(
    i: &'a [u8],
    semi_name_equal: &[u8; N],
) -> Option<(&'a [u8], &'a [u8])> {
    let v = lex::lit(i, semi_name_equal)?;
    match lex::span(v, &lex::GEN_VALUE) {
        0 => None,
        n => Some(v.split_at(n)),
    }
}

/// A number value of [`plain_param`], all digits.
#[inline(always)]
pub(crate) fn plain_number(v: &[u8]) -> Option<u32> {
    if v.len() <= 9 {
        return lex::short_number(v);
    }
    if !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match lex::number_saturating(v) {
        Ok(([], n)) => Some(n),
        _ => None,
    }
}

/// A Via's parameters in the form senders emit, `;branch=ID`, then
/// `;rport` or `;rport=PORT` if any, then `;received=IPv4address` if any,
/// and then the end of the value, read in one go. None for anything else,
/// which the general parameter rules read.
#[inline]
#[allow(clippy::type_complexity)]
pub(crate) fn via_params(i: &[u8]) -> Option<(&[u8], Rport, Option<IpAddr>, &[u8])> {
    let (branch, mut rest) = plain_param(i, b";branch=")?;
    let mut rport = Rport::Absent;
    if let Some(after) = lex::lit(rest, b";rport") {
        match after {
            [b'=', v @ ..] => {
                let (p, after) = lex::short_port(v)?;
                if after.first().is_some_and(|b| lex::GEN_VALUE[*b as usize]) {
                    return None;
                }
                rport = Rport::Filled(p);
                rest = after;
            }
            [] | [b';' | b',', ..] => {
                rport = Rport::Requested;
                rest = after;
            }
            _ => return None,
        }
    }
    let mut received = None;
    if let Some(v) = lex::lit(rest, b";received=") {
        let (addr, n) = uri::ipv4_prefix(v)?;
        let after = &v[n..];
        if after.first().is_some_and(|b| lex::GEN_VALUE[*b as usize]) {
            return None;
        }
        received = Some(IpAddr::V4(addr));
        rest = after;
    }
    match rest.first() {
        None | Some(b',') => Some((branch, rport, received, rest)),
        Some(_) => None,
    }
}

/// A DHT-Link's parameters in the form senders emit,
/// `;link=TYPEDEPTH;expires=SECS` and then the end of the value, read in
/// one go: the link type, the expiry and the rest. None for anything else,
/// which the general parameter rules read.
#[inline(always)]
pub(crate) fn link_params(i: &[u8], legacy: bool) -> Option<(LinkType, u32, &[u8])> {
    let rest = lex::lit(i, b";link=")?;
    let (link, rest) = link_value(rest, legacy)?;
    let rest = lex::lit(rest, b";expires=")?;
    let (expires, rest) = lex::value_number(rest)?;
    match rest.first() {
        None | Some(b',') => Some((link, expires, rest)),
        Some(_) => None,
    }
}

/// The `link` value at the start of `i` (see [`link_type`]) and the rest
/// after it.
#[inline(always)]
fn link_value(i: &[u8], legacy: bool) -> Option<(LinkType, &[u8])> {
    if let [letter, digits @ ..] = i {
        // A type and one to three digits, as senders write it.
        let kind = match *letter | 0x20 {
            b'p' => LinkKind::P,
            b's' => LinkKind::S,
            b'f' => LinkKind::F,
            _ => return None,
        };
        if let Some((depth, rest)) = lex::digits::<3>(digits)
            && !rest.first().is_some_and(|b| lex::GEN_VALUE[*b as usize])
        {
            let max = if kind == LinkKind::F { 159 } else { 255 };
            return (depth <= max).then_some((
                LinkType {
                    kind,
                    depth: depth as u8,
                },
                rest,
            ));
        }
    }
    let n = lex::span(i, &lex::GEN_VALUE);
    let (v, rest) = i.split_at(n);
    link_type(v, legacy).map(|l| (l, rest))
}

/// `TYPE DEPTH`: `P`/`S`/`F` (any case) and a decimal depth, F below 160.
/// The legacy profile allows a bare type (depth 1).
#[inline]
fn link_type(v: &[u8], legacy: bool) -> Option<LinkType> {
    let (&letter, digits) = v.split_first()?;
    let kind = match letter.to_ascii_uppercase() {
        b'P' => LinkKind::P,
        b'S' => LinkKind::S,
        b'F' => LinkKind::F,
        _ => return None,
    };
    if digits.is_empty() {
        return (legacy && kind != LinkKind::F).then_some(LinkType { kind, depth: 1 });
    }
    if digits.len() > 3 {
        return None;
    }
    let depth = lex::short_number(digits)?;
    let max = if kind == LinkKind::F { 159 } else { 255 };
    (depth <= max).then_some(LinkType {
        kind,
        depth: depth as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Host;
    use crate::profile::Profile;

    fn cx(s: &str) -> Cx<'_> {
        Cx::new(s.as_bytes(), Profile::DsipChord)
    }

    fn from(s: &str) -> Result<FromTo<'_>, &[u8]> {
        let mut out = vec![];
        from_to(&mut cx(s), s.as_bytes(), &mut out, Header::From)?;
        match out.pop() {
            Some(Header::From(f)) => Ok(f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn via_with_rport_received_branch() {
        let s = "SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK77;rport=4000;received=192.0.2.1;ttl=3, SIP / 2.0 / TCP [2001:db8::1]";
        let mut c = cx(s);
        let mut out = vec![];
        via_list(&mut c, s.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let Header::Via(v) = &out[0] else { panic!() };
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bK77"));
        assert_eq!(v.rport, Rport::Filled(4000));
        assert_eq!(v.received, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(v.other, ";ttl=3");
        let Header::Via(v) = &out[1] else { panic!() };
        assert_eq!(v.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(v.rport, Rport::Absent);
    }

    #[test]
    fn from_to_forms() {
        let s = "\"Alice \\\"A\\\"\" <sip:alice@example.org>;tag=88;x";
        let f = from(s).unwrap();
        assert_eq!(f.addr.display.as_deref(), Some("\"Alice \\\"A\\\"\""));
        assert_eq!(f.tag.as_deref(), Some("88"));
        assert_eq!(f.other, ";x");
        let s = "Bob Smith <sip:bob@b.org;lr> ; tag = 9";
        let f = from(s).unwrap();
        assert_eq!(f.addr.display.as_deref(), Some("Bob Smith"));
        assert!(f.addr.uri.params.lr);
        assert_eq!(f.tag.as_deref(), Some("9"));
        let s = "sip:carol@c.org;tag=1";
        let f = from(s).unwrap();
        assert_eq!(f.tag.as_deref(), Some("1"));
        assert!(from("<sip:a@b").is_err());
    }

    #[test]
    fn contact_star_and_list() {
        let mut out = vec![];
        contact_list(&mut cx("*"), b"*", &mut out).unwrap();
        assert_eq!(out, vec![Header::Contact(Contact::Star)]);
        let s = "<sip:a@1.2.3.4>;expires=60, \"B\" <sip:b@5.6.7.8:5070>;q=0.5";
        let mut out = vec![];
        contact_list(&mut cx(s), s.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn cseq_and_call_id() {
        let c = cx("");
        assert_eq!(cseq(&c, b"42 REGISTER").unwrap().seq, 42);
        assert!(cseq(&c, b"42").is_err());
        assert!(cseq(&c, b"99999999999 REGISTER").is_err());
        assert_eq!(cseq(&c, b"4294967295 FOO").unwrap().seq, u32::MAX);
        assert_eq!(cseq(&c, b"7 \r\n OPTIONS").unwrap().method, Method::Options);
        assert!(cseq(&c, b"7 OPTIONS x").is_err());
        assert!(cseq(&c, b"7 OPT@ONS").is_err());
        assert_eq!(number(b"70", true), Ok(70));
        assert_eq!(number(b"0123456789", false), Ok(123456789));
        assert!(number(b"4294967296", false).is_err());
        assert_eq!(number(b"99999999999", true), Ok(u32::MAX));
        assert_eq!(number(b"7 ", true), Ok(7));
        assert!(number(b"7x", true).is_err());
        let mut out = vec![];
        token_list(&mut cx(""), b"dht", &mut out, Header::Require).unwrap();
        token_list(&mut cx(""), b"dht , foo,bar", &mut out, Header::Require).unwrap();
        assert_eq!(out.len(), 4);
        assert!(token_list(&mut cx(""), b"dht foo", &mut out, Header::Require).is_err());
        assert_eq!(call_id(&c, b"abc@host").unwrap(), "abc@host");
        assert!(call_id(&c, b"a b").is_err());
    }

    #[test]
    fn wire_5_link_types() {
        assert_eq!(
            link_type(b"S4", false),
            Some(LinkType {
                kind: LinkKind::S,
                depth: 4
            })
        );
        assert_eq!(
            link_type(b"F159", false),
            Some(LinkType {
                kind: LinkKind::F,
                depth: 159
            })
        );
        assert_eq!(link_type(b"F160", false), None);
        assert_eq!(link_type(b"X1", false), None);
        assert_eq!(link_type(b"P", false), None);
        assert_eq!(
            link_type(b"P", true),
            Some(LinkType {
                kind: LinkKind::P,
                depth: 1
            })
        );
    }

    #[test]
    fn wire_4_dht_param_alias_is_a_deviation() {
        let s = "<sip:peer@10.4.1.2:5060;peer-ID=6c7c752f7592a104b9ba5e48ec077a01385b13c4>;algorithm=sha1;dht-param=Chord1.0;overlay=chat";
        let mut c = cx(s);
        let mut out = vec![];
        dht_peer_id(&mut c, s.as_bytes(), IdentityHeader::PeerId, &mut out).unwrap();
        let [Header::DhtPeerId(d)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(d.dht.as_deref(), Some("Chord1.0"));
        assert!(c.warnings.contains(Deviation::DhtParamAlias));
    }
}
