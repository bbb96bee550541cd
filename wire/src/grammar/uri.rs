/*!
URIs (RFC 3261 §19.1, §25.1) with the profile's parameters (WIRE-3, ID-5).

```text
SIP-URI          =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
userinfo         =  ( user / telephone-subscriber ) [ ":" password ] "@"
hostport         =  host [ ":" port ]
host             =  hostname / IPv4address / IPv6reference
uri-parameters   =  *( ";" uri-parameter)
other-param      =  pname [ "=" pvalue ]
headers          =  "?" header *( "&" header )
```

Where a URI ends depends on where it stands: inside `<...>` it runs to the
`>`, on the request line to the space, and bare in a header (`addr-spec`
form) it cannot hold `;`, `,` or `?` (RFC 3261 §20), so it ends at the first
of those.
*/

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;

use super::Cx;
use super::lex::{self, HOST, IPV6, OPAQUE, PARAMCHAR, PASSWORD, Res, URI_HEADERS, USER, err};
use crate::error::{Deviation, ErrorKind};
use crate::id::{HexCase, Id};
use crate::message::{Host, Scheme, Uri, UriParams};
use crate::text::Text;

/// Where the URI stands, which decides where it ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Inside `<` `>`.
    Angle,
    /// On the request line, up to the space before `SIP/2.0`.
    RequestLine,
    /// Bare `addr-spec` in a header: no parameters, no headers.
    AddrSpec,
}

/// A URI with nothing parsed into it yet: the rules fill a URI in place,
/// because it is large and moving it costs more than parsing most fields.
#[inline(always)]
pub(crate) fn empty<'a>() -> Uri<'a> {
    Uri {
        scheme: Scheme::Sip,
        user: None,
        password: None,
        host: Host::Domain(Text::EMPTY),
        port: None,
        params: UriParams {
            peer_id: None,
            resource_id: None,
            replica: None,
            transport: None,
            user: None,
            lr: false,
            other: Text::EMPTY,
        },
        headers: None,
        opaque: None,
    }
}

/// Parses the URI at the start of `i` and returns the rest after it.
pub(crate) fn uri<'a>(cx: &mut Cx<'a>, i: &'a [u8], place: Place) -> Res<'a, Uri<'a>> {
    let mut out = empty();
    let (rest, ()) = uri_into(cx, i, place, &mut out)?;
    Ok((rest, out))
}

/// [`uri`], parsed into `out` (which holds [`empty`]).
pub(crate) fn uri_into<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    place: Place,
    out: &mut Uri<'a>,
) -> Res<'a, ()> {
    let result = match place {
        // Inside angle brackets and on the request line the URI ends at a
        // character that none of its parts holds, so it is read straight
        // from the input.
        Place::Angle => uri_span(cx, i, Some(b'>'), out),
        Place::RequestLine => uri_span(cx, i, Some(b' '), out),
        // An addr-spec ends at characters that its parts do hold, so it is
        // cut out first.
        Place::AddrSpec => {
            let end = i
                .iter()
                .position(|b| matches!(b, b';' | b',' | b'?' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(i.len());
            uri_span(cx, &i[..end], None, out).map(|_| &i[end..])
        }
    };
    match result {
        Ok(rest) => Ok((rest, ())),
        Err(at) => {
            cx.fail(ErrorKind::Uri);
            Err(nom::Err::Failure(nom::error::Error::new(
                at,
                nom::error::ErrorKind::Verify,
            )))
        }
    }
}

/// The Peer URI in the form senders emit (WIRE-3),
/// `sip:user@IPv4address:port;peer-ID=ID` and then `>`, read in one go
/// into `out` (which holds [`empty`]). Returns the rest from the `>` on;
/// None, with nothing read, for anything else, which [`uri_into`] reads.
#[inline]
pub(crate) fn peer_uri<'a>(cx: &mut Cx<'a>, i: &'a [u8], out: &mut Uri<'a>) -> Option<&'a [u8]> {
    let rest = i.strip_prefix(b"sip:")?;
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
    let rest = &value[40..];
    if rest.first() != Some(&b'>') {
        return None;
    }
    if case == HexCase::Upper {
        cx.deviate(Deviation::UpperHexId, value);
    }
    out.user = Some(cx.text(user));
    out.host = Host::V4(addr);
    out.port = Some(port);
    out.params.peer_id = Some(id);
    Some(rest)
}

/// The Request-URI of the profile's requests, `sip:IPv4address:PORT` and
/// then the space before the version, read in one go: the URI and the rest
/// from the space on. None, with nothing read, for anything else, which
/// [`uri`] reads (to the same URI, with nothing to record).
#[inline]
pub(crate) fn plain_request_uri<'a>(i: &'a [u8], out: &mut Uri<'_>) -> Option<&'a [u8]> {
    let hostport = lex::lit(i, b"sip:")?;
    let (addr, len) = ipv4_prefix(hostport)?;
    let (port, rest) = lex::short_port(lex::lit(&hostport[len..], b":")?)?;
    if rest.first() != Some(&b' ') {
        return None;
    }
    out.host = Host::V4(addr);
    out.port = Some(port);
    Some(rest)
}

/// `SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]`
/// (and `SIPS-URI`, and any `absoluteURI` kept opaque), up to the first
/// `end` byte (or all of `i` without one), which it must fill. Returns the
/// rest from that byte on; on error, the input where it failed.
fn uri_span<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    end: Option<u8>,
    out: &mut Uri<'a>,
) -> Result<&'a [u8], &'a [u8]> {
    // The URI's own bytes, for the rules that search it.
    let span = |s: &'a [u8]| match end.and_then(|b| memchr(b, s)) {
        Some(e) => &s[..e],
        None => s,
    };
    let rest = match i {
        [s, i, p, b':', rest @ ..] if eq3(*s, *i, *p, b"sip") => rest,
        [s, i, p, s2, b':', rest @ ..] if eq3(*s, *i, *p, b"sip") && (*s2 | 0x20) == b's' => {
            out.scheme = Scheme::Sips;
            rest
        }
        _ => {
            let span = span(i);
            other_scheme(cx, span, out)?;
            return Ok(&i[span.len()..]);
        }
    };

    // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    // It ends at the first '@' of the URI; the user part may itself hold
    // ';' and '?'. Most often the user is all there is before that '@'.
    let n = lex::span(rest, &USER);
    let hostport = if rest.get(n) == Some(&b'@') {
        if n == 0 {
            return Err(&rest[..0]);
        }
        out.user = Some(cx.text(&rest[..n]));
        &rest[n + 1..]
    } else {
        userinfo(cx, rest, span(rest), out)?
    };

    // hostport = host [ ":" port ]
    // None of these parts holds the end byte, so each stops before it.
    let (after_host, host) = host(cx, hostport).map_err(|_| hostport)?;
    out.host = host;
    let after_port = match after_host {
        [b':', digits @ ..] => {
            let (r, p) = lex::port(digits).map_err(|_| digits)?;
            out.port = Some(p);
            r
        }
        _ => after_host,
    };
    let after_params = uri_parameters(cx, after_port, &mut out.params)?;
    // headers = "?" header *( "&" header )
    let after_headers = match after_params {
        [b'?', h @ ..] => {
            let n = lex::span(h, &URI_HEADERS);
            out.headers = Some(cx.text(&h[..n]));
            &h[n..]
        }
        _ => after_params,
    };
    match after_headers.first() {
        None => Ok(after_headers),
        Some(b) if Some(*b) == end => Ok(after_headers),
        Some(_) => Err(after_headers),
    }
}

/// `userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"`, in
/// general: up to the first '@' of the URI's own bytes `span` (a prefix of
/// `rest`), if there is one. Returns the rest after it.
#[inline(never)]
fn userinfo<'a>(
    cx: &mut Cx<'a>,
    rest: &'a [u8],
    span: &'a [u8],
    out: &mut Uri<'a>,
) -> Result<&'a [u8], &'a [u8]> {
    let Some(at) = memchr(b'@', span) else {
        return Ok(rest);
    };
    let info = &rest[..at];
    let (user, password) = match memchr(b':', info) {
        Some(c) => (&info[..c], Some(&info[c + 1..])),
        None => (info, None),
    };
    if user.is_empty() || !user.iter().all(|b| USER[*b as usize]) {
        return Err(info);
    }
    if let Some(p) = password {
        if !p.iter().all(|b| PASSWORD[*b as usize]) {
            return Err(p);
        }
        out.password = Some(cx.text(p));
    }
    out.user = Some(cx.text(user));
    Ok(&rest[at + 1..])
}

/// Whether `a b c` spell `lower` in any letter case.
#[inline]
fn eq3(a: u8, b: u8, c: u8, lower: &[u8; 3]) -> bool {
    // For letters, setting the 0x20 bit is exact case folding.
    [a | 0x20, b | 0x20, c | 0x20] == *lower
}

/// `absoluteURI = scheme ":" ( hier-part / opaque-part )`: a scheme other
/// than `sip:` and `sips:` keeps the rest opaque (and `SIP:` spelled with
/// more letters or symbols is such a scheme too).
/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
#[cold]
fn other_scheme<'a>(cx: &mut Cx<'a>, span: &'a [u8], out: &mut Uri<'a>) -> Result<(), &'a [u8]> {
    let colon = memchr(b':', span).ok_or(span)?;
    let scheme_text = &span[..colon];
    let valid_scheme = !scheme_text.is_empty()
        && scheme_text[0].is_ascii_alphabetic()
        && scheme_text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(span);
    }
    let rest = &span[colon + 1..];
    if rest.is_empty() || !rest.iter().all(|b| OPAQUE[*b as usize]) {
        return Err(rest);
    }
    out.scheme = Scheme::Other(cx.text(scheme_text));
    out.opaque = Some(cx.text(rest));
    Ok(())
}

/// `host = hostname / IPv4address / IPv6reference`
#[inline]
pub(crate) fn host<'a>(cx: &Cx<'a>, i: &'a [u8]) -> Res<'a, Host<'a>> {
    if i.first() == Some(&b'[') {
        // IPv6reference = "[" IPv6address "]"
        let inner = &i[1..];
        let n = lex::span(inner, &IPV6);
        if n == 0 {
            return Err(err(inner, nom::error::ErrorKind::TakeWhile1));
        }
        let rest = &inner[n..];
        if rest.first() != Some(&b']') {
            return Err(err(rest, nom::error::ErrorKind::Char));
        }
        let addr = std::str::from_utf8(&inner[..n])
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| err(i, nom::error::ErrorKind::Verify))?;
        return Ok((&rest[1..], Host::V6(addr)));
    }
    // An IPv4address is a hostname's worth of digits and dots that reads
    // as an address, all the way to the end of the host.
    if i.first().is_some_and(u8::is_ascii_digit)
        && let Some((v4, n)) = ipv4_prefix(i)
        && !i.get(n).is_some_and(|b| HOST[*b as usize])
    {
        return Ok((&i[n..], Host::V4(v4)));
    }
    let n = lex::span(i, &HOST);
    if n == 0 {
        return Err(err(i, nom::error::ErrorKind::TakeWhile1));
    }
    let (name, rest) = i.split_at(n);
    Ok((rest, Host::Domain(cx.text(name))))
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, all
/// of `s` (see [`ipv4_prefix`]).
pub(crate) fn ipv4_address(s: &[u8]) -> Option<Ipv4Addr> {
    match ipv4_prefix(s) {
        Some((a, n)) if n == s.len() => Some(a),
        _ => None,
    }
}

/// The `IPv4address` at the start of `s`, and its length, read as
/// `Ipv4Addr::from_str` reads one: each part at most 255, and no leading
/// zero (which some readers take for octal). None also when digits go on
/// where the address must end (a part of four digits, a leading zero),
/// since such a text cannot be an address at all.
#[inline(always)]
pub(crate) fn ipv4_prefix(s: &[u8]) -> Option<(Ipv4Addr, usize)> {
    match s.first_chunk::<16>() {
        // An address is at most 15 bytes, so every byte the rule looks at
        // (up to the one after the address) is among the first 16: the
        // index needs no check (the mask only shows the compiler so).
        Some(w) => ipv4_with(|k| w[k & 15]),
        // Past the end reads as a byte no address holds.
        None => ipv4_with(|k| s.get(k).copied().unwrap_or(0xff)),
    }
}

/// [`ipv4_prefix`] of the bytes `byte` gives by offset.
#[inline(always)]
fn ipv4_with(byte: impl Fn(usize) -> u8) -> Option<(Ipv4Addr, usize)> {
    let (a, at) = ipv4_part(&byte, 0)?;
    let (b, at) = ipv4_part(&byte, ipv4_dot(&byte, at)?)?;
    let (c, at) = ipv4_part(&byte, ipv4_dot(&byte, at)?)?;
    let (d, at) = ipv4_part(&byte, ipv4_dot(&byte, at)?)?;
    Some((Ipv4Addr::new(a, b, c, d), at))
}

/// `1*3DIGIT` at `at`: its value and where it ends.
#[inline(always)]
fn ipv4_part(byte: &impl Fn(usize) -> u8, at: usize) -> Option<(u8, usize)> {
    // The value of the digit at `k`, or 10 and more for anything else.
    let digit = |k: usize| byte(k).wrapping_sub(b'0');
    let d0 = digit(at);
    if d0 > 9 {
        return None;
    }
    let d1 = digit(at + 1);
    if d1 > 9 {
        return Some((d0, at + 1));
    }
    if d0 == 0 {
        return None;
    }
    let d2 = digit(at + 2);
    if d2 > 9 {
        return Some((d0 * 10 + d1, at + 2));
    }
    let n = u32::from(d0) * 100 + u32::from(d1) * 10 + u32::from(d2);
    if n > 255 || digit(at + 3) <= 9 {
        return None;
    }
    Some((n as u8, at + 3))
}

#[inline(always)]
fn ipv4_dot(byte: &impl Fn(usize) -> u8, at: usize) -> Option<usize> {
    (byte(at) == b'.').then_some(at + 1)
}

/// The usual spelling of the Peer-ID parameter and its `=`.
const PEER_ID_EQ: [u8; 8] = *b"peer-ID=";

/// The URI parameters the model types (RFC 3261 §19.1.1, WIRE-3, ID-5).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ParamName {
    /// `peer-ID`, or (`long` false) another spelling a receiver accepts:
    /// `pID`, `peerID`, any letter case.
    PeerId {
        long: bool,
    },
    /// `resource-ID`, or `rID`, `resourceID`.
    ResourceId {
        long: bool,
    },
    Replica,
    Transport,
    User,
    Lr,
    Other,
}

impl ParamName {
    /// Names compare case-insensitively (RFC 3261 §19.1.4).
    fn of(name: &[u8]) -> ParamName {
        let is = |s: &[u8]| name.eq_ignore_ascii_case(s);
        match name.len() {
            2 if is(b"lr") => ParamName::Lr,
            3 if is(b"pID") => ParamName::PeerId { long: false },
            3 if is(b"rID") => ParamName::ResourceId { long: false },
            4 if is(b"user") => ParamName::User,
            6 if is(b"peerID") => ParamName::PeerId { long: false },
            7 if is(b"peer-ID") => ParamName::PeerId {
                long: name == b"peer-ID",
            },
            7 if is(b"replica") => ParamName::Replica,
            9 if is(b"transport") => ParamName::Transport,
            10 if is(b"resourceID") => ParamName::ResourceId { long: false },
            11 if is(b"resource-ID") => ParamName::ResourceId {
                long: name == b"resource-ID",
            },
            _ => ParamName::Other,
        }
    }
}

/// `uri-parameters = *( ";" uri-parameter)`
/// `other-param = pname [ "=" pvalue ]`, `pname = 1*paramchar`,
/// `pvalue = 1*paramchar`
#[inline(always)]
fn uri_parameters<'a>(
    cx: &mut Cx<'a>,
    i: &'a [u8],
    params: &mut UriParams<'a>,
) -> Result<&'a [u8], &'a [u8]> {
    // A Peer URI's one parameter (WIRE-3), and nothing else.
    if let [b';', body @ ..] = i
        && let Some(&PEER_ID_EQ) = body.first_chunk::<8>()
        && let Some((id, case)) = hex_id_value(&body[8..])
    {
        let rest = &body[48..];
        if rest.first() != Some(&b';') {
            if case == HexCase::Upper {
                cx.deviate(Deviation::UpperHexId, &body[8..]);
            }
            params.peer_id = Some(id);
            return Ok(rest);
        }
    }
    match i.first() {
        Some(b';') => uri_parameter_list(cx, i, params),
        _ => Ok(i),
    }
}

/// [`uri_parameters`], any of them.
#[inline(never)]
fn uri_parameter_list<'a>(
    cx: &mut Cx<'a>,
    mut i: &'a [u8],
    params: &mut UriParams<'a>,
) -> Result<&'a [u8], &'a [u8]> {
    let mut other = Other::default();
    while let [b';', body @ ..] = i {
        // The usual Peer-ID parameter (WIRE-3), without a scan of its name.
        if let (Some(&PEER_ID_EQ), None) = (body.first_chunk::<8>(), params.peer_id)
            && let Some((id, case)) = hex_id_value(&body[8..])
        {
            if case == HexCase::Upper {
                cx.deviate(Deviation::UpperHexId, &body[8..]);
            }
            params.peer_id = Some(id);
            i = &body[48..];
            continue;
        }
        let start = i;
        let n_name = lex::span(body, &PARAMCHAR);
        if n_name == 0 {
            return Err(body);
        }
        let (name, after_name) = body.split_at(n_name);
        let kind = match ParamName::of(name) {
            ParamName::PeerId { .. } if params.peer_id.is_some() => ParamName::Other,
            ParamName::ResourceId { .. } if params.resource_id.is_some() => ParamName::Other,
            ParamName::Replica if params.replica.is_some() => ParamName::Other,
            ParamName::Transport if params.transport.is_some() => ParamName::Other,
            ParamName::User if params.user.is_some() => ParamName::Other,
            ParamName::Lr if params.lr => ParamName::Other,
            kind => kind,
        };
        // An ID value is most often exactly 40 hex digits: read them
        // without a separate scan for the end of the value.
        if let (ParamName::PeerId { long } | ParamName::ResourceId { long }, [b'=', v @ ..]) =
            (kind, after_name)
            && let Some((id, case)) = hex_id_value(v)
        {
            if !long {
                cx.deviate(Deviation::ShortIdParam, name);
            }
            if case == HexCase::Upper {
                cx.deviate(Deviation::UpperHexId, v);
            }
            match kind {
                ParamName::PeerId { .. } => params.peer_id = Some(id),
                _ => params.resource_id = Some(id),
            }
            i = &v[40..];
            continue;
        }
        let (value, rest) = match after_name {
            [b'=', v @ ..] => {
                let n = lex::span(v, &PARAMCHAR);
                if n == 0 {
                    return Err(v);
                }
                (Some(&v[..n]), &v[n..])
            }
            _ => (None, after_name),
        };
        let whole = &start[..start.len() - rest.len()];
        i = rest;

        match kind {
            ParamName::PeerId { long } => {
                if !long {
                    cx.deviate(Deviation::ShortIdParam, name);
                }
                params.peer_id = Some(id_value(cx, value, name)?);
            }
            ParamName::ResourceId { long } => {
                if !long {
                    cx.deviate(Deviation::ShortIdParam, name);
                }
                params.resource_id = Some(id_value(cx, value, name)?);
            }
            ParamName::Replica => {
                let v = value.ok_or(name)?;
                let (r, n) = lex::number_max(v, u32::MAX).map_err(|_| v)?;
                if !r.is_empty() {
                    return Err(r);
                }
                params.replica = Some(n);
            }
            ParamName::Transport => params.transport = Some(cx.text(value.ok_or(name)?)),
            ParamName::User => params.user = Some(cx.text(value.ok_or(name)?)),
            ParamName::Lr if value.is_none() => params.lr = true,
            ParamName::Lr | ParamName::Other => other.push(cx.base, whole),
        }
    }
    if !other.is_empty() {
        params.other = other.finish(cx);
    }
    Ok(i)
}

/// The ID at the start of a parameter value when the value is exactly 40
/// hex digits.
#[inline(always)]
pub(crate) fn hex_id_value(v: &[u8]) -> Option<(Id, HexCase)> {
    let digits = v.get(..40)?;
    if v.get(40).is_some_and(|b| PARAMCHAR[*b as usize]) {
        return None;
    }
    Id::parse_hex(digits).ok()
}

/// An ID parameter's value: 40 hex digits (ID-1).
fn id_value<'a>(cx: &mut Cx<'a>, value: Option<&'a [u8]>, name: &'a [u8]) -> Result<Id, &'a [u8]> {
    let v = value.ok_or(name)?;
    match Id::parse_hex(v) {
        Ok((id, HexCase::Lower)) => Ok(id),
        Ok((id, HexCase::Upper)) => {
            cx.deviate(Deviation::UpperHexId, v);
            Ok(id)
        }
        Err(_) => {
            cx.fail(ErrorKind::BadId);
            Err(v)
        }
    }
}

/// Collects the parameters the model does not type, borrowing while they
/// are contiguous in the input and copying only when they are not.
#[derive(Default)]
pub(crate) struct Other<'a> {
    borrowed: Option<&'a [u8]>,
    owned: Option<String>,
}

impl<'a> Other<'a> {
    /// Adds `param` (with its leading `;`), a slice of `base`.
    pub(crate) fn push(&mut self, base: &'a [u8], param: &'a [u8]) {
        if let Some(owned) = &mut self.owned {
            owned.push_str(&lex::text(param));
            return;
        }
        match self.borrowed {
            None => self.borrowed = Some(param),
            Some(prev) => {
                let prev_end = prev.as_ptr() as usize + prev.len();
                if prev_end == param.as_ptr() as usize {
                    // Both are slices of `base`, one right after the other.
                    let start = prev.as_ptr() as usize - base.as_ptr() as usize;
                    self.borrowed = Some(&base[start..start + prev.len() + param.len()]);
                } else {
                    let mut s = lex::text(prev).into_string();
                    s.push_str(&lex::text(param));
                    self.owned = Some(s);
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.borrowed.is_none() && self.owned.is_none()
    }

    #[inline]
    pub(crate) fn finish(self, cx: &Cx<'a>) -> Text<'a> {
        match (self.owned, self.borrowed) {
            (Some(s), _) => cx.note_owned(Text::owned(s)),
            (None, Some(b)) => cx.text(b),
            (None, None) => Text::EMPTY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Cx;
    use crate::profile::Profile;

    fn parse(s: &str, place: Place) -> (Uri<'_>, String, crate::error::Warnings) {
        let mut cx = Cx::new(s.as_bytes(), Profile::DsipChord);
        let (rest, u) = uri(&mut cx, s.as_bytes(), place).unwrap();
        (u, String::from_utf8(rest.to_vec()).unwrap(), cx.warnings)
    }

    #[test]
    fn peer_uri() {
        let (u, rest, w) = parse(
            "sip:peer@10.4.1.2:5060;peer-ID=6c7c752f7592a104b9ba5e48ec077a01385b13c4>;x",
            Place::Angle,
        );
        assert_eq!(rest, ">;x");
        assert_eq!(u.user.as_deref(), Some("peer"));
        assert_eq!(u.host, Host::V4("10.4.1.2".parse().unwrap()));
        assert_eq!(u.port, Some(5060));
        assert_eq!(
            u.params.peer_id.unwrap().to_string(),
            "6c7c752f7592a104b9ba5e48ec077a01385b13c4"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn wire_3_short_and_upper_id_are_deviations() {
        let (u, _, w) = parse(
            "sip:peer@10.4.1.2:5060;PID=6C7C752F7592A104B9BA5E48EC077A01385B13C4",
            Place::Angle,
        );
        assert!(u.params.peer_id.is_some());
        assert!(w.contains(Deviation::ShortIdParam));
        assert!(w.contains(Deviation::UpperHexId));
    }

    #[test]
    fn bad_id_fails() {
        let s = "sip:peer@10.4.1.2:5060;peer-ID=6c7c";
        let mut cx = Cx::new(s.as_bytes(), Profile::DsipChord);
        assert!(uri(&mut cx, s.as_bytes(), Place::Angle).is_err());
        assert_eq!(cx.failure, Some(ErrorKind::BadId));
    }

    #[test]
    fn other_params_kept_in_order_and_copied_only_when_split() {
        let (u, _, _) = parse("sip:a@b.org;transport=tcp;x=1;y", Place::Angle);
        assert_eq!(u.params.transport.as_deref(), Some("tcp"));
        assert_eq!(u.params.other, ";x=1;y");
        assert!(!u.params.other.is_owned());
        let (u, _, _) = parse("sip:a@b.org;x=1;replica=2;y", Place::Angle);
        assert_eq!(u.params.replica, Some(2));
        assert_eq!(u.params.other, ";x=1;y");
    }

    #[test]
    fn ipv6_and_headers_and_password() {
        let (u, _, _) = parse(
            "sips:alice:secret@[2001:db8::1]:5061;lr?subject=x",
            Place::Angle,
        );
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert!(u.params.lr);
        assert_eq!(u.headers.as_deref(), Some("subject=x"));
    }

    #[test]
    fn addr_spec_stops_at_semicolon() {
        let (u, rest, _) = parse("sip:alice@example.org;tag=1", Place::AddrSpec);
        assert_eq!(u.params.other, "");
        assert_eq!(rest, ";tag=1");
    }

    #[test]
    fn opaque_scheme() {
        let (u, _, _) = parse("tel:+1-201-555-0123", Place::Angle);
        assert_eq!(u.scheme, Scheme::Other(Text::borrowed("tel")));
        assert_eq!(u.opaque.as_deref(), Some("+1-201-555-0123"));
    }

    #[test]
    fn ipv4_reads_what_std_reads() {
        // Every string of up to 8 characters over digits and dots, and
        // longer ones built from parts of one to four digits.
        let alphabet = b"0123456789.";
        let mut texts: Vec<Vec<u8>> = vec![vec![]];
        let mut layer: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..6 {
            let mut next = vec![];
            for t in &layer {
                for c in alphabet {
                    let mut t = t.clone();
                    t.push(*c);
                    next.push(t);
                }
            }
            texts.extend(next.iter().cloned());
            layer = next;
        }
        let parts = [
            "0", "00", "1", "01", "9", "10", "99", "100", "199", "255", "256", "300", "999",
            "1000", "0255",
        ];
        for a in parts {
            for b in parts {
                for c in ["0", "1", "255", "256", "01"] {
                    for d in parts {
                        texts.push(format!("{a}.{b}.{c}.{d}").into_bytes());
                        texts.push(format!("{a}.{b}.{c}.{d}.").into_bytes());
                        texts.push(format!("{a}.{b}.{c}.{d}x").into_bytes());
                        texts.push(format!("{a}.{b}.{c}").into_bytes());
                    }
                }
            }
        }
        for t in &texts {
            let std = std::str::from_utf8(t).unwrap().parse::<Ipv4Addr>().ok();
            assert_eq!(ipv4_address(t), std, "{}", String::from_utf8_lossy(t));
            // The same read where 16 bytes or more follow.
            let mut long = t.clone();
            long.extend_from_slice(b":5060;xxxxxxxxxxxx");
            assert_eq!(
                ipv4_prefix(&long),
                ipv4_prefix(t),
                "{}",
                String::from_utf8_lossy(t)
            );
            let cx = Cx::new(t, Profile::DsipChord);
            if let Ok((rest, host)) = host(&cx, t) {
                // A host is an address exactly when its whole name is one.
                let name = &t[..t.len() - rest.len()];
                let std = std::str::from_utf8(name).unwrap().parse::<Ipv4Addr>().ok();
                assert_eq!(
                    matches!(host, Host::V4(_)),
                    std.is_some(),
                    "{}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    #[test]
    fn plain_request_uri_agrees_with_the_general_rule() {
        let mut taken = 0;
        for s in [
            "sip:10.0.0.1:5060 SIP/2.0",
            "sip:10.0.0.1:05060 SIP/2.0",
            "sip:10.0.0.1:65536 SIP/2.0",
            "sip:10.0.0.1 SIP/2.0",
            "sip:10.0.0.1:5060;lr SIP/2.0",
            "sip:10.0.0.1:5060x SIP/2.0",
            "sip:10.0.0.1.5:5060 SIP/2.0",
            "SIP:10.0.0.1:5060 SIP/2.0",
            "sip:a@10.0.0.1:5060 SIP/2.0",
        ] {
            let mut plain = empty();
            let Some(rest) = plain_request_uri(s.as_bytes(), &mut plain) else {
                assert_eq!(plain, empty(), "{s}: a refused URI was written");
                continue;
            };
            taken += 1;
            let mut cx = Cx::new(s.as_bytes(), Profile::DsipChord);
            let (grest, general) = uri(&mut cx, s.as_bytes(), Place::RequestLine).unwrap();
            assert_eq!((rest, plain), (grest, general), "{s}");
            assert!(cx.warnings.is_empty(), "{s}");
        }
        assert_eq!(taken, 2);
    }

    #[test]
    fn malformed() {
        for s in [
            "sip:",
            "sip:a@",
            "sip:host:99999",
            "sip:host;=x",
            "1ip:host",
            "sip:ho st",
        ] {
            let mut cx = Cx::new(s.as_bytes(), Profile::DsipChord);
            assert!(
                uri(&mut cx, s.as_bytes(), Place::RequestLine).is_err() || s == "sip:ho st",
                "{s}"
            );
        }
    }
}
