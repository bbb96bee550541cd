/*!
Detaching a parsed message from its input buffer (`Message::into_owned`),
for state that outlives the datagram: stored registrations, evidence.
*/

use std::borrow::Cow;

use crate::message::{
    CSeq, Contact, ContactAddr, DhtLink, DhtPeerId, FromTo, Header, Message, NameAddr, ParamAddr,
    Scheme, StartLine, Uri, UriParams, Via,
};
use crate::text::Text;

fn t(c: Text<'_>) -> Text<'static> {
    c.into_owned()
}

fn ot(c: Option<Text<'_>>) -> Option<Text<'static>> {
    c.map(t)
}

pub(crate) fn message(m: Message<'_>) -> Message<'static> {
    Message {
        start: match m.start {
            StartLine::Request { method, uri: u } => StartLine::Request {
                method: method.into_owned(),
                uri: uri(u),
            },
            StartLine::Response { code, reason } => StartLine::Response {
                code,
                reason: t(reason),
            },
        },
        headers: m.headers.into_iter().map(header).collect(),
        body: Cow::Owned(m.body.into_owned()),
    }
}

pub(crate) fn header(h: Header<'_>) -> Header<'static> {
    match h {
        Header::Via(v) => Header::Via(via(v)),
        Header::From(f) => Header::From(from_to(f)),
        Header::To(f) => Header::To(from_to(f)),
        Header::CallId(c) => Header::CallId(t(c)),
        Header::CSeq(c) => Header::CSeq(CSeq {
            seq: c.seq,
            method: c.method.into_owned(),
        }),
        Header::Contact(c) => Header::Contact(contact(c)),
        Header::Expires(n) => Header::Expires(n),
        Header::MaxForwards(n) => Header::MaxForwards(n),
        Header::ContentLength(n) => Header::ContentLength(n),
        Header::Require(x) => Header::Require(t(x)),
        Header::Supported(x) => Header::Supported(t(x)),
        Header::Unsupported(x) => Header::Unsupported(t(x)),
        Header::RecordRoute(r) => Header::RecordRoute(param_addr(r)),
        Header::Route(r) => Header::Route(param_addr(r)),
        Header::RequestDisposition(x) => Header::RequestDisposition(t(x)),
        Header::DhtPeerId(d) => Header::DhtPeerId(dht_peer_id(d)),
        Header::DhtLink(l) => Header::DhtLink(dht_link(l)),
        Header::Other { name, value } => Header::Other {
            name: t(name),
            value: t(value),
        },
    }
}

pub fn uri(u: Uri<'_>) -> Uri<'static> {
    Uri {
        scheme: match u.scheme {
            Scheme::Sip => Scheme::Sip,
            Scheme::Sips => Scheme::Sips,
            Scheme::Other(s) => Scheme::Other(t(s)),
        },
        user: ot(u.user),
        password: ot(u.password),
        host: u.host.into_owned(),
        port: u.port,
        params: UriParams {
            peer_id: u.params.peer_id,
            resource_id: u.params.resource_id,
            replica: u.params.replica,
            transport: ot(u.params.transport),
            user: ot(u.params.user),
            lr: u.params.lr,
            other: t(u.params.other),
        },
        headers: ot(u.headers),
        opaque: ot(u.opaque),
    }
}

pub fn name_addr(n: NameAddr<'_>) -> NameAddr<'static> {
    NameAddr {
        display: ot(n.display),
        uri: uri(n.uri),
    }
}

pub fn via(v: Via<'_>) -> Via<'static> {
    Via {
        transport: t(v.transport),
        host: v.host.into_owned(),
        port: v.port,
        branch: ot(v.branch),
        rport: v.rport,
        received: v.received,
        other: t(v.other),
    }
}

pub fn from_to(f: FromTo<'_>) -> FromTo<'static> {
    FromTo {
        addr: name_addr(f.addr),
        tag: ot(f.tag),
        other: t(f.other),
    }
}

pub fn contact(c: Contact<'_>) -> Contact<'static> {
    match c {
        Contact::Star => Contact::Star,
        Contact::Addr(a) => Contact::Addr(contact_addr(a)),
    }
}

pub fn contact_addr(a: ContactAddr<'_>) -> ContactAddr<'static> {
    ContactAddr {
        addr: name_addr(a.addr),
        expires: a.expires,
        q: ot(a.q),
        other: t(a.other),
    }
}

fn param_addr(p: ParamAddr<'_>) -> ParamAddr<'static> {
    ParamAddr {
        addr: name_addr(p.addr),
        other: t(p.other),
    }
}

pub fn dht_peer_id(d: DhtPeerId<'_>) -> DhtPeerId<'static> {
    DhtPeerId {
        header: d.header,
        addr: name_addr(d.addr),
        algorithm: ot(d.algorithm),
        dht: ot(d.dht),
        overlay: ot(d.overlay),
        expires: d.expires,
        other: t(d.other),
    }
}

pub fn dht_link(l: DhtLink<'_>) -> DhtLink<'static> {
    DhtLink {
        addr: name_addr(l.addr),
        link: l.link,
        expires: l.expires,
        other: t(l.other),
    }
}
