/*!
The printer: the canonical form of a message (the senders' rules of
PROFILE §1-2).

Long header names, one value per line, CRLF line ends, angle brackets
around every address, the profile's parameters first in a fixed order
under their long names, lower-case IDs, and every other parameter
verbatim after them. What the builders make, the parser reads back equal
(`parse(print(m)) == m`).
*/

use std::fmt::{self, Display, Formatter, Write as _};

use crate::message::{
    CSeq, Contact, ContactAddr, DhtLink, DhtPeerId, FromTo, Header, LinkType, Message, NameAddr,
    ParamAddr, Rport, Scheme, StartLine, Uri, UriParams, Via,
};

/// The bytes of `msg` in canonical form.
pub fn print(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + msg.headers.len() * 64 + msg.body.len());
    print_into(msg, &mut out);
    out
}

/// Appends the bytes of `msg` to `out`.
pub fn print_into(msg: &Message<'_>, out: &mut Vec<u8>) {
    let mut head = String::with_capacity(256 + msg.headers.len() * 64);
    // Writing to a String cannot fail.
    let _ = write_head(msg, &mut head);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&msg.body);
}

fn write_head(msg: &Message<'_>, out: &mut String) -> fmt::Result {
    match &msg.start {
        StartLine::Request { method, uri } => {
            write!(out, "{} {} SIP/2.0\r\n", method.as_str(), uri)?
        }
        StartLine::Response { code, reason } => write!(out, "SIP/2.0 {code} {reason}\r\n")?,
    }
    for h in &msg.headers {
        write!(out, "{}: {}\r\n", h.name(), HeaderValue(h))?;
    }
    out.push_str("\r\n");
    Ok(())
}

/// The value part of a header line.
pub struct HeaderValue<'h, 'a>(pub &'h Header<'a>);

impl Display for HeaderValue<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Header::Via(v) => v.fmt(f),
            Header::From(x) | Header::To(x) => x.fmt(f),
            Header::CallId(c) => f.write_str(c),
            Header::CSeq(c) => c.fmt(f),
            Header::Contact(c) => c.fmt(f),
            Header::Expires(n) | Header::MaxForwards(n) | Header::ContentLength(n) => n.fmt(f),
            Header::Require(t)
            | Header::Supported(t)
            | Header::Unsupported(t)
            | Header::RequestDisposition(t) => f.write_str(t),
            Header::RecordRoute(r) | Header::Route(r) => r.fmt(f),
            Header::DhtPeerId(d) => d.fmt(f),
            Header::DhtLink(l) => l.fmt(f),
            Header::Other { value, .. } => f.write_str(value),
        }
    }
}

impl Display for Uri<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.scheme {
            Scheme::Sip => f.write_str("sip:")?,
            Scheme::Sips => f.write_str("sips:")?,
            Scheme::Other(s) => {
                return write!(f, "{s}:{}", self.opaque.as_deref().unwrap_or(""));
            }
        }
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            f.write_char('@')?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        self.params.fmt(f)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl Display for UriParams<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.peer_id {
            write!(f, ";peer-ID={id}")?;
        }
        if let Some(id) = &self.resource_id {
            write!(f, ";resource-ID={id}")?;
        }
        if let Some(r) = self.replica {
            write!(f, ";replica={r}")?;
        }
        if let Some(t) = &self.transport {
            write!(f, ";transport={t}")?;
        }
        if let Some(u) = &self.user {
            write!(f, ";user={u}")?;
        }
        if self.lr {
            f.write_str(";lr")?;
        }
        f.write_str(&self.other)
    }
}

impl Display for NameAddr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri)
    }
}

impl Display for Via<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(b) = &self.branch {
            write!(f, ";branch={b}")?;
        }
        match self.rport {
            Rport::Absent => {}
            Rport::Requested => f.write_str(";rport")?,
            Rport::Filled(p) => write!(f, ";rport={p}")?,
        }
        if let Some(r) = &self.received {
            // RFC 3261 `received` holds a bare IPv6address, no brackets.
            write!(f, ";received={r}")?;
        }
        f.write_str(&self.other)
    }
}

impl Display for FromTo<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)?;
        if let Some(t) = &self.tag {
            write!(f, ";tag={t}")?;
        }
        f.write_str(&self.other)
    }
}

impl Display for CSeq<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method.as_str())
    }
}

impl Display for Contact<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_char('*'),
            Contact::Addr(a) => a.fmt(f),
        }
    }
}

impl Display for ContactAddr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)?;
        if let Some(e) = self.expires {
            write!(f, ";expires={e}")?;
        }
        if let Some(q) = &self.q {
            write!(f, ";q={q}")?;
        }
        f.write_str(&self.other)
    }
}

impl Display for ParamAddr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)?;
        f.write_str(&self.other)
    }
}

impl Display for DhtPeerId<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)?;
        if let Some(a) = &self.algorithm {
            write!(f, ";algorithm={a}")?;
        }
        if let Some(d) = &self.dht {
            write!(f, ";dht={d}")?;
        }
        if let Some(o) = &self.overlay {
            write!(f, ";overlay={o}")?;
        }
        if let Some(e) = self.expires {
            write!(f, ";expires={e}")?;
        }
        f.write_str(&self.other)
    }
}

impl Display for LinkType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.letter(), self.depth)
    }
}

impl Display for DhtLink<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{};link={}", self.addr, self.link)?;
        if let Some(e) = self.expires {
            write!(f, ";expires={e}")?;
        }
        f.write_str(&self.other)
    }
}

/// A one-line description of a message for ladders and logs:
/// `REGISTER sip:127.0.0.1:5060` or `302 Moved Temporarily`.
pub fn summary(msg: &Message<'_>) -> String {
    match &msg.start {
        StartLine::Request { method, uri } => format!("{} {}", method.as_str(), uri),
        StartLine::Response { code, reason } => format!("{code} {reason}"),
    }
}
