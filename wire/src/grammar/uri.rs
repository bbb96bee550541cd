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

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;
use nom::Parser;
use nom::bytes::complete::take_while1;

use super::Cx;
use super::lex::{self, HOST, IPV6, OPAQUE, PARAMCHAR, PASSWORD, Res, URI_HEADERS, USER, err};
use crate::error::{Deviation, ErrorKind};
use crate::id::{HexCase, Id};
use crate::message::{Host, Scheme, Uri, UriParams};

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

/// Parses the URI at the start of `i` and returns the rest after it.
pub(crate) fn uri<'a>(cx: &mut Cx<'a>, i: &'a [u8], place: Place) -> Res<'a, Uri<'a>> {
    let end = match place {
        Place::Angle => memchr(b'>', i).unwrap_or(i.len()),
        Place::RequestLine => memchr(b' ', i).unwrap_or(i.len()),
        Place::AddrSpec => i
            .iter()
            .position(|b| matches!(b, b';' | b',' | b'?' | b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(i.len()),
    };
    let (span, rest) = i.split_at(end);
    match uri_span(cx, span) {
        Ok(u) => Ok((rest, u)),
        Err(at) => {
            cx.fail(ErrorKind::Uri);
            Err(nom::Err::Failure(nom::error::Error::new(
                at,
                nom::error::ErrorKind::Verify,
            )))
        }
    }
}

/// A whole URI that must fill `span`. On error, the input where it failed.
fn uri_span<'a>(cx: &mut Cx<'a>, span: &'a [u8]) -> Result<Uri<'a>, &'a [u8]> {
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
    let scheme = if scheme_text.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme_text.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else {
        if rest.is_empty() || !rest.iter().all(|b| OPAQUE[*b as usize]) {
            return Err(rest);
        }
        return Ok(Uri {
            scheme: Scheme::Other(lex::text(scheme_text)),
            user: None,
            password: None,
            host: Host::Domain(Cow::Borrowed("")),
            port: None,
            params: UriParams::default(),
            headers: None,
            opaque: Some(lex::text(rest)),
        });
    };

    // userinfo ends at the '@'; the user part may itself hold ';' and '?'.
    let (user, password, hostport) = match memchr(b'@', rest) {
        Some(at) => {
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
            }
            (Some(user), password, &rest[at + 1..])
        }
        None => (None, None, rest),
    };

    let (after_host, host) = host(hostport).map_err(|_| hostport)?;
    let (after_port, port) = if after_host.first() == Some(&b':') {
        let (r, p) = lex::port(&after_host[1..]).map_err(|_| &after_host[1..])?;
        (r, Some(p))
    } else {
        (after_host, None)
    };
    let (after_params, params) = uri_parameters(cx, after_port)?;
    let (after_headers, headers) = if after_params.first() == Some(&b'?') {
        let h = &after_params[1..];
        let n = h.iter().take_while(|b| URI_HEADERS[**b as usize]).count();
        (&h[n..], Some(lex::text(&h[..n])))
    } else {
        (after_params, None)
    };
    if !after_headers.is_empty() {
        return Err(after_headers);
    }
    Ok(Uri {
        scheme,
        user: user.map(lex::text),
        password: password.map(lex::text),
        host,
        port,
        params,
        headers,
        opaque: None,
    })
}

/// `host = hostname / IPv4address / IPv6reference`
pub(crate) fn host(i: &[u8]) -> Res<'_, Host<'_>> {
    if i.first() == Some(&b'[') {
        let (rest, inner) = take_while1(|b| IPV6[b as usize]).parse(&i[1..])?;
        if rest.first() != Some(&b']') {
            return Err(err(rest, nom::error::ErrorKind::Char));
        }
        let addr = ascii(inner)
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| err(i, nom::error::ErrorKind::Verify))?;
        return Ok((&rest[1..], Host::V6(addr)));
    }
    let (rest, name) = take_while1(|b| HOST[b as usize]).parse(i)?;
    if name[0].is_ascii_digit() {
        if let Some(v4) = ascii(name).and_then(|s| s.parse::<Ipv4Addr>().ok()) {
            return Ok((rest, Host::V4(v4)));
        }
    }
    Ok((rest, Host::Domain(lex::text(name))))
}

fn ascii(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// The parameter names of the two ID parameters, in every spelling a
/// receiver accepts (WIRE-3). The first is the one senders emit.
const PEER_ID_NAMES: [&[u8]; 3] = [b"peer-ID", b"pID", b"peerID"];
const RESOURCE_ID_NAMES: [&[u8]; 3] = [b"resource-ID", b"rID", b"resourceID"];

fn names_match(name: &[u8], spellings: &[&[u8]]) -> bool {
    spellings.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// `uri-parameters = *( ";" uri-parameter)`
fn uri_parameters<'a>(
    cx: &mut Cx<'a>,
    mut i: &'a [u8],
) -> Result<(&'a [u8], UriParams<'a>), &'a [u8]> {
    let mut params = UriParams::default();
    let mut other = Other::default();
    while i.first() == Some(&b';') {
        let start = i;
        let body = &i[1..];
        let n_name = body.iter().take_while(|b| PARAMCHAR[**b as usize]).count();
        if n_name == 0 {
            return Err(body);
        }
        let name = &body[..n_name];
        let mut rest = &body[n_name..];
        let value = if rest.first() == Some(&b'=') {
            let v = &rest[1..];
            let n = v.iter().take_while(|b| PARAMCHAR[**b as usize]).count();
            if n == 0 {
                return Err(v);
            }
            rest = &v[n..];
            Some(&v[..n])
        } else {
            None
        };
        let whole = &start[..start.len() - rest.len()];
        i = rest;

        if names_match(name, &PEER_ID_NAMES) && params.peer_id.is_none() {
            if name != PEER_ID_NAMES[0] {
                cx.deviate(Deviation::ShortIdParam, name);
            }
            params.peer_id = Some(id_value(cx, value, name)?);
        } else if names_match(name, &RESOURCE_ID_NAMES) && params.resource_id.is_none() {
            if name != RESOURCE_ID_NAMES[0] {
                cx.deviate(Deviation::ShortIdParam, name);
            }
            params.resource_id = Some(id_value(cx, value, name)?);
        } else if name.eq_ignore_ascii_case(b"replica") && params.replica.is_none() {
            let v = value.ok_or(name)?;
            let (r, n) = lex::number_max(v, u32::MAX).map_err(|_| v)?;
            if !r.is_empty() {
                return Err(r);
            }
            params.replica = Some(n);
        } else if name.eq_ignore_ascii_case(b"transport") && params.transport.is_none() {
            params.transport = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"user") && params.user.is_none() {
            params.user = Some(lex::text(value.ok_or(name)?));
        } else if name.eq_ignore_ascii_case(b"lr") && !params.lr && value.is_none() {
            params.lr = true;
        } else {
            other.push(cx.base, whole);
        }
    }
    params.other = other.finish();
    Ok((i, params))
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
                    let mut s = lex::text(prev).into_owned();
                    s.push_str(&lex::text(param));
                    self.owned = Some(s);
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Cow<'a, str> {
        match (self.owned, self.borrowed) {
            (Some(s), _) => Cow::Owned(s),
            (None, Some(b)) => lex::text(b),
            (None, None) => Cow::Borrowed(""),
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
        assert!(matches!(u.params.other, Cow::Borrowed(_)));
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
        assert_eq!(u.scheme, Scheme::Other(Cow::Borrowed("tel")));
        assert_eq!(u.opaque.as_deref(), Some("+1-201-555-0123"));
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
