/*!
Typed header values (RFC 3261 §20, §25.1, RFC 3581, and the profile's
DHT-PeerID and DHT-Link of WIRE-4/WIRE-5).

Each function takes the value of one header line (after `HCOLON`, possibly
holding folds) and pushes one model entry per comma-separated value.
*/

use std::borrow::Cow;

use memchr::memchr3;
use nom::Parser;
use nom::bytes::complete::{tag_no_case, take_while1};

use super::Cx;
use super::lex::{self, Res, WORD, err, sep, sws};
use super::uri::{Other, Place, uri};
use crate::error::{Deviation, ErrorKind};
use crate::message::{
    CSeq, Contact, ContactAddr, DhtLink, DhtPeerId, FromTo, Header, IdentityHeader, LinkKind,
    LinkType, Method, NameAddr, ParamAddr, Rport, Via,
};

/// `name-addr / addr-spec`:
/// `name-addr = [ display-name ] LAQUOT addr-spec RAQUOT`,
/// `display-name = *(token LWS) / quoted-string`.
pub(crate) fn name_addr<'a>(cx: &mut Cx<'a>, i: &'a [u8]) -> Res<'a, NameAddr<'a>> {
    let (i, ()) = sws(i)?;
    let (i, display) = if i.first() == Some(&b'"') {
        let (i, q) = lex::quoted_string(i)?;
        let (i, ()) = sws(i)?;
        (i, Some(q))
    } else {
        // Tokens up to '<' are a display name; with no '<' before the
        // first ';' or ',' this is the addr-spec form.
        match memchr3(b'<', b';', b',', i) {
            Some(j) if i[j] == b'<' => {
                let d = trim(&i[..j]);
                (&i[j..], (!d.is_empty()).then_some(d))
            }
            _ => {
                let (i, u) = uri(cx, i, Place::AddrSpec)?;
                return Ok((
                    i,
                    NameAddr {
                        display: None,
                        uri: u,
                    },
                ));
            }
        }
    };
    if i.first() != Some(&b'<') {
        return Err(err(i, nom::error::ErrorKind::Char));
    }
    let (i, u) = uri(cx, &i[1..], Place::Angle)?;
    if i.first() != Some(&b'>') {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Char,
        )));
    }
    Ok((
        &i[1..],
        NameAddr {
            display: display.map(lex::text),
            uri: u,
        },
    ))
}

fn trim(s: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// `*( SEMI generic-param )`: each parameter goes to `known` first, which
/// returns false for the ones it does not type; those are kept verbatim.
fn header_params<'a>(
    cx: &mut Cx<'a>,
    mut i: &'a [u8],
    mut known: impl FnMut(&mut Cx<'a>, &'a [u8], Option<&'a [u8]>) -> Result<bool, &'a [u8]>,
) -> Res<'a, Cow<'a, str>> {
    let mut other = Other::default();
    loop {
        let Ok((after_semi, ())) = sep(';')(i) else {
            break;
        };
        let (rest, (name, value)) = lex::generic_param(after_semi)?;
        match known(cx, name, value) {
            Ok(true) => {}
            Ok(false) => {
                // Kept verbatim from the ';' on, without the white space
                // before it (`sep` consumed exactly one ';').
                let consumed = &i[..i.len() - after_semi.len()];
                let semi = consumed.iter().position(|b| *b == b';').unwrap_or(0);
                other.push(cx.base, &i[semi..i.len() - rest.len()]);
            }
            Err(at) => {
                return Err(nom::Err::Failure(nom::error::Error::new(
                    at,
                    nom::error::ErrorKind::Verify,
                )));
            }
        }
        i = rest;
    }
    Ok((i, other.finish()))
}

fn param_number<'a>(value: Option<&'a [u8]>, name: &'a [u8]) -> Result<u32, &'a [u8]> {
    let v = value.ok_or(name)?;
    match lex::number_saturating(v) {
        Ok(([], n)) => Ok(n),
        _ => Err(v),
    }
}

/// Runs `one` for every comma-separated value of `i`, which must be used up.
fn comma_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    mut one: impl FnMut(&mut Cx<'a>, &'a [u8]) -> Res<'a, Header<'a>>,
) -> Result<(), &'a [u8]> {
    let mut i = i;
    loop {
        let (rest, h) = one(cx, i).map_err(|e| failed_at(e, i))?;
        out.push(h);
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
    comma_list(cx, i, out, |cx, i| {
        let (i, v) = via_parm(cx, i)?;
        Ok((i, Header::Via(v)))
    })
}

/// `via-parm = sent-protocol LWS sent-by *( SEMI via-params )`
/// `sent-protocol = protocol-name SLASH protocol-version SLASH transport`
/// `sent-by = host [ COLON port ]`
fn via_parm<'a>(cx: &mut Cx<'a>, i: &'a [u8]) -> Res<'a, Via<'a>> {
    let (i, _) = (
        tag_no_case(&b"SIP"[..]),
        sep('/'),
        tag_no_case(&b"2.0"[..]),
        sep('/'),
    )
        .parse(i)?;
    let (i, transport) = lex::token(i)?;
    let (i, ()) = lex::lws(i)?;
    let (i, host) = super::uri::host(i)?;
    let (i, port) = if let Ok((i, ())) = sep(':')(i) {
        let (i, p) = lex::port(i)?;
        (i, Some(p))
    } else {
        (i, None)
    };
    let mut branch = None;
    let mut rport = Rport::Absent;
    let mut received = None;
    let (i, other) = header_params(cx, i, |_, name, value| {
        if name.eq_ignore_ascii_case(b"branch") && branch.is_none() {
            branch = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"rport") && rport == Rport::Absent {
            rport = match value {
                None => Rport::Requested,
                Some(v) => match lex::port(v) {
                    Ok(([], p)) => Rport::Filled(p),
                    _ => return Err(v),
                },
            };
        } else if name.eq_ignore_ascii_case(b"received") && received.is_none() {
            let v = value.ok_or(name)?;
            let t = v
                .strip_prefix(b"[")
                .and_then(|v| v.strip_suffix(b"]"))
                .unwrap_or(v);
            received = Some(
                std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(v)?,
            );
        } else {
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok((
        i,
        Via {
            transport: lex::text(transport),
            host,
            port,
            branch,
            rport,
            received,
            other,
        },
    ))
}

/// `From = ( "From" / "f" ) HCOLON from-spec`,
/// `from-spec = ( name-addr / addr-spec ) *( SEMI from-param )` (To alike).
pub(crate) fn from_to<'a>(cx: &mut Cx<'a>, i: &'a [u8]) -> Result<FromTo<'a>, &'a [u8]> {
    let (rest, addr) = name_addr(cx, i).map_err(|e| failed_at(e, i))?;
    let mut tag = None;
    let (rest, other) = header_params(cx, rest, |_, name, value| {
        if name.eq_ignore_ascii_case(b"tag") && tag.is_none() {
            tag = Some(lex::text(value.ok_or(name)?));
            Ok(true)
        } else {
            Ok(false)
        }
    })
    .map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    Ok(FromTo { addr, tag, other })
}

fn end(rest: &[u8]) -> Result<(), &[u8]> {
    let (rest, ()) = sws(rest).map_err(|e| failed_at(e, rest))?;
    if rest.is_empty() { Ok(()) } else { Err(rest) }
}

/// `Call-ID = ( "Call-ID" / "i" ) HCOLON callid`, `callid = word [ "@" word ]`
pub(crate) fn call_id(i: &[u8]) -> Result<Cow<'_, str>, &[u8]> {
    let n = i
        .iter()
        .take_while(|b| WORD[**b as usize] || **b == b'@')
        .count();
    let (id, rest) = i.split_at(n);
    if id.is_empty() || id.first() == Some(&b'@') || id.last() == Some(&b'@') {
        return Err(i);
    }
    end(rest)?;
    Ok(lex::text(id))
}

/// `CSeq = "CSeq" HCOLON 1*DIGIT LWS Method`
pub(crate) fn cseq(i: &[u8]) -> Result<CSeq<'_>, &[u8]> {
    let (rest, seq) = lex::number_max(i, u32::MAX).map_err(|e| failed_at(e, i))?;
    let (rest, ()) = lex::lws(rest).map_err(|e| failed_at(e, rest))?;
    let (rest, m) = lex::token(rest).map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    let method = match Method::from_token(std::str::from_utf8(m).map_err(|_| m)?) {
        Method::Other(_) => Method::Other(lex::text(m)),
        known => known.into_owned(),
    };
    Ok(CSeq { seq, method })
}

/// A header whose value is one number: Expires, Max-Forwards,
/// Content-Length.
pub(crate) fn number(i: &[u8], saturate: bool) -> Result<u32, &[u8]> {
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
    make: fn(Cow<'a, str>) -> Header<'a>,
) -> Result<(), &'a [u8]> {
    if i.is_empty() {
        return Ok(());
    }
    comma_list(cx, i, out, |_, i| {
        let (i, t) = lex::token(i)?;
        Ok((i, make(lex::text(t))))
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
        out.push(Header::Contact(Contact::Star));
        return Ok(());
    }
    comma_list(cx, i, out, |cx, i| {
        let (i, addr) = name_addr(cx, i)?;
        let mut expires = None;
        let mut q = None;
        let (i, other) = header_params(cx, i, |_, name, value| {
            if name.eq_ignore_ascii_case(b"expires") && expires.is_none() {
                expires = Some(param_number(value, name)?);
            } else if name.eq_ignore_ascii_case(b"q") && q.is_none() {
                q = Some(lex::text(value.ok_or(name)?));
            } else {
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok((
            i,
            Header::Contact(Contact::Addr(ContactAddr {
                addr,
                expires,
                q,
                other,
            })),
        ))
    })
}

/// `Record-Route = "Record-Route" HCOLON rec-route *(COMMA rec-route)`
/// (Route alike).
pub(crate) fn param_addr_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
    make: fn(ParamAddr<'a>) -> Header<'a>,
) -> Result<(), &'a [u8]> {
    comma_list(cx, i, out, |cx, i| {
        let (i, addr) = name_addr(cx, i)?;
        let (i, other) = header_params(cx, i, |_, _, _| Ok(false))?;
        Ok((i, make(ParamAddr { addr, other })))
    })
}

/// WIRE-4: `DHT-PeerID: <PeerURI>;algorithm=sha1;dht=Chord1.0;overlay=NAME;expires=SECS`
pub(crate) fn dht_peer_id<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    header: IdentityHeader,
) -> Result<DhtPeerId<'a>, &'a [u8]> {
    let (rest, addr) = name_addr(cx, i).map_err(|e| failed_at(e, i))?;
    let mut d = DhtPeerId {
        header,
        addr,
        algorithm: None,
        dht: None,
        overlay: None,
        expires: None,
        other: Cow::Borrowed(""),
    };
    let (rest, other) = header_params(cx, rest, |cx, name, value| {
        if name.eq_ignore_ascii_case(b"algorithm") && d.algorithm.is_none() {
            d.algorithm = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"dht") && d.dht.is_none() {
            d.dht = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"dht-param") && d.dht.is_none() {
            cx.deviate(Deviation::DhtParamAlias, name);
            d.dht = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"overlay") && d.overlay.is_none() {
            d.overlay = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"expires") && d.expires.is_none() {
            d.expires = Some(param_number(value, name)?);
        } else {
            return Ok(false);
        }
        Ok(true)
    })
    .map_err(|e| failed_at(e, rest))?;
    end(rest)?;
    d.other = other;
    Ok(d)
}

/// WIRE-5: `DHT-Link: <PeerURI>;link=TYPEDEPTH;expires=SECS`.
pub(crate) fn dht_link_list<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), &'a [u8]> {
    comma_list(cx, i, out, |cx, i| {
        let at = i;
        let (i, addr) = name_addr(cx, i)?;
        let mut link = None;
        let mut expires = None;
        let legacy = cx.profile == crate::profile::Profile::Sipping02;
        let (i, other) = header_params(cx, i, |cx, name, value| {
            if name.eq_ignore_ascii_case(b"link") && link.is_none() {
                let v = value.ok_or(name)?;
                link = Some(link_type(v, legacy).ok_or_else(|| {
                    cx.fail(ErrorKind::BadLinkType);
                    v
                })?);
            } else if name.eq_ignore_ascii_case(b"expires") && expires.is_none() {
                expires = Some(param_number(value, name)?);
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
        Ok((
            i,
            Header::DhtLink(DhtLink {
                addr,
                link,
                expires,
                other,
            }),
        ))
    })
}

/// `TYPE DEPTH`: `P`/`S`/`F` (any case) and a decimal depth, F below 160.
/// The legacy profile allows a bare type (depth 1).
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
    let (rest, n) = take_while1::<_, _, nom::error::Error<&[u8]>>(|b: u8| b.is_ascii_digit())
        .parse(digits)
        .ok()?;
    if !rest.is_empty() || n.len() > 3 {
        return None;
    }
    let depth: u32 = std::str::from_utf8(n).ok()?.parse().ok()?;
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
        let f = from_to(&mut cx(s), s.as_bytes()).unwrap();
        assert_eq!(f.addr.display.as_deref(), Some("\"Alice \\\"A\\\"\""));
        assert_eq!(f.tag.as_deref(), Some("88"));
        assert_eq!(f.other, ";x");
        let s = "Bob Smith <sip:bob@b.org;lr> ; tag = 9";
        let f = from_to(&mut cx(s), s.as_bytes()).unwrap();
        assert_eq!(f.addr.display.as_deref(), Some("Bob Smith"));
        assert!(f.addr.uri.params.lr);
        assert_eq!(f.tag.as_deref(), Some("9"));
        let s = "sip:carol@c.org;tag=1";
        let f = from_to(&mut cx(s), s.as_bytes()).unwrap();
        assert_eq!(f.tag.as_deref(), Some("1"));
        assert!(from_to(&mut cx("<sip:a@b"), b"<sip:a@b").is_err());
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
        assert_eq!(cseq(b"42 REGISTER").unwrap().seq, 42);
        assert!(cseq(b"42").is_err());
        assert!(cseq(b"99999999999 REGISTER").is_err());
        assert_eq!(call_id(b"abc@host").unwrap(), "abc@host");
        assert!(call_id(b"a b").is_err());
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
        let d = dht_peer_id(&mut c, s.as_bytes(), IdentityHeader::PeerId).unwrap();
        assert_eq!(d.dht.as_deref(), Some("Chord1.0"));
        assert!(c.warnings.contains(Deviation::DhtParamAlias));
    }
}
