/*!
Builders for every P2P message of the profile, in canonical form.

The reference node and the harness's scripted peers both build their
messages here. Nothing random happens here: branches, tags and Call-IDs
come in through [`Txn`], so a sans-I/O caller stays deterministic.

```
use p2psip_wire::build::{self, Identity, Txn};
use p2psip_wire::{Peer, print};

let me = Identity::new(Peer::at("127.0.0.1:5070".parse().unwrap()), "chat");
let txn = Txn::udp("z9hG4bK-1", "call-1", "tag-1", 1, me.peer.addr);
let join = build::join(&me, "127.0.0.2:5060".parse().unwrap(), &txn, 600);
let bytes = print(&join);
assert!(bytes.starts_with(b"REGISTER sip:127.0.0.2:5060 SIP/2.0\r\n"));
```
*/

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::id::Id;
use crate::message::{
    CSeq, Contact, ContactAddr, DhtLink, DhtPeerId, FromTo, Header, Host, IdentityHeader, LinkType,
    Message, Method, NameAddr, Peer, Rport, Scheme, StartLine, Uri, UriParams, Via,
};
use crate::profile::Transport;
use crate::text::Text;

/// The sender's identity (WIRE-4): its peer, overlay and how long others
/// may cache it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub peer: Peer,
    pub overlay: String,
    /// `expires` of DHT-PeerID (seconds others may cache this peer).
    pub expires: u32,
    /// The `dht` token (Chord1.0 in the dsip-chord profile).
    pub dht: String,
    /// The `algorithm` token (sha1).
    pub algorithm: String,
}

impl Identity {
    pub fn new(peer: Peer, overlay: &str) -> Identity {
        Identity {
            peer,
            overlay: overlay.to_owned(),
            expires: 3600,
            dht: "Chord1.0".to_owned(),
            algorithm: "sha1".to_owned(),
        }
    }

    pub fn with_expires(mut self, expires: u32) -> Identity {
        self.expires = expires;
        self
    }

    /// The `DHT-PeerID` header of this identity.
    pub fn header(&self) -> Header<'static> {
        Header::DhtPeerId(DhtPeerId {
            header: IdentityHeader::PeerId,
            addr: name_addr(peer_uri(&self.peer)),
            algorithm: Some(Text::owned(self.algorithm.clone())),
            dht: Some(Text::owned(self.dht.clone())),
            overlay: Some(Text::owned(self.overlay.clone())),
            expires: Some(self.expires),
            other: Text::EMPTY,
        })
    }
}

/// The identifiers of one client transaction, supplied by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Must start with `z9hG4bK` (WIRE-1).
    pub branch: String,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    pub transport: Transport,
    /// The Via sent-by: where the sender listens.
    pub via: SocketAddr,
}

impl Txn {
    pub fn udp(branch: &str, call_id: &str, from_tag: &str, cseq: u32, via: SocketAddr) -> Txn {
        Txn {
            branch: branch.to_owned(),
            call_id: call_id.to_owned(),
            from_tag: from_tag.to_owned(),
            cseq,
            transport: Transport::Udp,
            via,
        }
    }

    pub fn over(mut self, transport: Transport) -> Txn {
        self.transport = transport;
        self
    }
}

/// One neighbour report (WIRE-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub link: LinkType,
    pub peer: Peer,
    /// Seconds; never 0 (an expired entry is not reported).
    pub expires: u32,
}

impl Link {
    pub fn header(&self) -> Header<'static> {
        Header::DhtLink(DhtLink {
            addr: name_addr(peer_uri(&self.peer)),
            link: self.link,
            expires: Some(self.expires),
            other: Text::EMPTY,
        })
    }
}

fn bare_uri(host: Host<'static>, port: Option<u16>, user: Option<&'static str>) -> Uri<'static> {
    Uri {
        scheme: Scheme::Sip,
        user: user.map(Text::borrowed),
        password: None,
        host,
        port,
        params: UriParams::default(),
        headers: None,
        opaque: None,
    }
}

/// A Peer URI: `sip:peer@HOST:PORT;peer-ID=<id>` (WIRE-3).
pub fn peer_uri(peer: &Peer) -> Uri<'static> {
    let mut u = bare_uri(
        Host::from_ip(peer.addr.ip()),
        Some(peer.addr.port()),
        Some("peer"),
    );
    u.params.peer_id = Some(peer.id);
    u
}

/// The To of a query for a bare key: `sip:peer@0.0.0.0;peer-ID=<key>`
/// (PROFILE §4: host 0.0.0.0 when only the ID is known).
pub fn key_uri(key: Id) -> Uri<'static> {
    let mut u = bare_uri(Host::V4(Ipv4Addr::UNSPECIFIED), None, Some("peer"));
    u.params.peer_id = Some(key);
    u
}

/// The Request-URI `sip:HOST:PORT` of a contacted peer (JOIN-1).
pub fn addr_uri(addr: SocketAddr) -> Uri<'static> {
    bare_uri(Host::from_ip(addr.ip()), Some(addr.port()), None)
}

pub fn name_addr(uri: Uri<'static>) -> NameAddr<'static> {
    NameAddr { display: None, uri }
}

fn from_to(uri: Uri<'static>, tag: Option<&str>) -> FromTo<'static> {
    FromTo {
        addr: name_addr(uri),
        tag: tag.map(|t| Text::owned(t.to_owned())),
        other: Text::EMPTY,
    }
}

fn host_of(ip: IpAddr) -> Host<'static> {
    Host::from_ip(ip)
}

/// A request with the RFC 3261 mandatory headers (WIRE-1) and `rport` in
/// its Via (NAT-1); `Content-Length: 0` closes it.
pub fn request(
    method: Method<'static>,
    request_uri: Uri<'static>,
    from: Uri<'static>,
    to: Uri<'static>,
    txn: &Txn,
) -> Message<'static> {
    let headers = vec![
        Header::Via(Via {
            transport: Text::borrowed(match txn.transport {
                Transport::Udp => "UDP",
                Transport::Tcp => "TCP",
            }),
            host: host_of(txn.via.ip()),
            port: Some(txn.via.port()),
            branch: Some(Text::owned(txn.branch.clone())),
            rport: Rport::Requested,
            received: None,
            other: Text::EMPTY,
        }),
        Header::MaxForwards(70),
        Header::To(from_to(to, None)),
        Header::From(from_to(from, Some(&txn.from_tag))),
        Header::CallId(Text::owned(txn.call_id.clone())),
        Header::CSeq(CSeq {
            seq: txn.cseq,
            method: method.clone(),
        }),
        Header::ContentLength(0),
    ];
    Message {
        start: StartLine::Request {
            method,
            uri: request_uri,
        },
        headers: headers.into(),
        body: Cow::Borrowed(b""),
    }
}

impl Message<'static> {
    /// Adds a header before the closing Content-Length.
    pub fn push_header(&mut self, h: Header<'static>) {
        let at = self
            .headers
            .iter()
            .rposition(|h| matches!(h, Header::ContentLength(_)))
            .unwrap_or(self.headers.len());
        self.headers.insert(at, h);
    }

    /// Marks a message as P2P: `Require: dht` (requests), `Supported: dht`
    /// (WIRE-2) and the sender's DHT-PeerID (WIRE-4).
    pub fn make_p2p(&mut self, me: &Identity) {
        if self.is_request() {
            self.push_header(Header::Require(Text::borrowed("dht")));
        }
        self.push_header(Header::Supported(Text::borrowed("dht")));
        self.push_header(me.header());
    }

    pub fn push_links(&mut self, links: &[Link]) {
        for l in links {
            self.push_header(l.header());
        }
    }

    pub fn push_contact(&mut self, uri: Uri<'static>, expires: Option<u32>) {
        self.push_header(Header::Contact(Contact::Addr(ContactAddr {
            addr: name_addr(uri),
            expires,
            q: None,
            other: Text::EMPTY,
        })));
    }

    /// Sets the body, its Content-Type, and Content-Length to match.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers
            .retain(|h| !matches!(h, Header::Other { name, .. } if name.eq_ignore_ascii_case("Content-Type")));
        self.push_header(Header::Other {
            name: Text::borrowed("Content-Type"),
            value: Text::owned(content_type.to_owned()),
        });
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        for h in &mut self.headers {
            if let Header::ContentLength(n) = h {
                *n = len;
            }
        }
        self.body = Cow::Owned(body);
    }
}

fn p2p_register(
    me: &Identity,
    target: SocketAddr,
    to: Uri<'static>,
    txn: &Txn,
) -> Message<'static> {
    let mut m = request(
        Method::Register,
        addr_uri(target),
        peer_uri(&me.peer),
        to,
        txn,
    );
    m.make_p2p(me);
    m
}

/// JOIN-1: `REGISTER sip:HOST:PORT` with To = From = Contact = the
/// joiner's Peer URI and Expires > 0.
pub fn join(me: &Identity, target: SocketAddr, txn: &Txn, expires: u32) -> Message<'static> {
    let mut m = request(
        Method::Register,
        addr_uri(target),
        peer_uri(&me.peer),
        peer_uri(&me.peer),
        txn,
    );
    m.push_contact(peer_uri(&me.peer), None);
    m.push_header(Header::Expires(expires));
    m.make_p2p(me);
    m
}

/// STAB-2: the join-shaped "notify" to a successor, carrying the sender's
/// links (which tells it apart from a join).
pub fn notify(
    me: &Identity,
    target: SocketAddr,
    txn: &Txn,
    expires: u32,
    links: &[Link],
) -> Message<'static> {
    let mut m = join(me, target, txn, expires);
    m.push_links(links);
    m
}

/// LEAVE-1: join-shaped with `Expires: 0`, carrying P1 and S1..S4.
pub fn leave(me: &Identity, target: SocketAddr, txn: &Txn, links: &[Link]) -> Message<'static> {
    let mut m = join(me, target, txn, 0);
    m.push_links(links);
    m
}

/// What a query asks for: a peer's own ID (its URI is known) or a bare key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKey {
    Peer(Peer),
    Key(Id),
}

impl QueryKey {
    pub fn id(&self) -> Id {
        match self {
            QueryKey::Peer(p) => p.id,
            QueryKey::Key(k) => *k,
        }
    }

    fn uri(&self) -> Uri<'static> {
        match self {
            QueryKey::Peer(p) => peer_uri(p),
            QueryKey::Key(k) => key_uri(*k),
        }
    }
}

/// PROFILE §4: a REGISTER whose To is a Peer URI, without Contact and
/// Expires.
pub fn query(me: &Identity, target: SocketAddr, txn: &Txn, key: QueryKey) -> Message<'static> {
    p2p_register(me, target, key.uri(), txn)
}

/// A resource URI as To, with `;replica=N` for a replica (ID-5).
fn resource_to(aor: &Uri<'_>, replica: Option<u32>) -> Uri<'static> {
    let mut to = crate::owned::uri(aor.clone());
    to.params = UriParams {
        replica,
        ..UriParams::default()
    };
    to.headers = None;
    to
}

/// RES-1 / REPL-1: a resource registration, From = the AOR, with its
/// Contacts and Expires (0 removes).
pub fn resource_register(
    me: &Identity,
    target: SocketAddr,
    txn: &Txn,
    aor: &Uri<'_>,
    replica: Option<u32>,
    contacts: &[ContactAddr<'_>],
    expires: u32,
) -> Message<'static> {
    let mut from = resource_to(aor, None);
    from.params = UriParams::default();
    let mut m = request(
        Method::Register,
        addr_uri(target),
        from,
        resource_to(aor, replica),
        txn,
    );
    push_contacts(&mut m, contacts, expires);
    m.push_header(Header::Expires(expires));
    m.make_p2p(me);
    m
}

/// The Contacts of a registration; none with Expires 0 is a removal of
/// every binding, written `Contact: *` (RFC 3261 §10.2.2, only then).
fn push_contacts(m: &mut Message<'static>, contacts: &[ContactAddr<'_>], expires: u32) {
    if contacts.is_empty() && expires == 0 {
        m.push_header(Header::Contact(Contact::Star));
    }
    for c in contacts {
        m.push_header(Header::Contact(Contact::Addr(crate::owned::contact_addr(
            c.clone(),
        ))));
    }
}

/// RES-2: a lookup, the resource URI as To, no Contact, no Expires.
pub fn lookup(
    me: &Identity,
    target: SocketAddr,
    txn: &Txn,
    aor: &Uri<'_>,
    replica: Option<u32>,
) -> Message<'static> {
    p2p_register(me, target, resource_to(aor, replica), txn)
}

/// JOIN-9 / LEAVE-1 / REPL-5: a third-party REGISTER from a peer (From =
/// its Peer URI) handing over stored Contacts with their remaining
/// lifetime.
pub fn transfer(
    me: &Identity,
    target: SocketAddr,
    txn: &Txn,
    aor: &Uri<'_>,
    replica: Option<u32>,
    contacts: &[ContactAddr<'_>],
    expires: u32,
) -> Message<'static> {
    let mut m = p2p_register(me, target, resource_to(aor, replica), txn);
    // Contacts and Expires go before the P2P headers in canonical order.
    let at = m
        .headers
        .iter()
        .position(|h| matches!(h, Header::Require(_)))
        .unwrap_or(m.headers.len());
    let mut extra: Vec<Header<'static>> = contacts
        .iter()
        .map(|c| Header::Contact(Contact::Addr(crate::owned::contact_addr(c.clone()))))
        .collect();
    if extra.is_empty() && expires == 0 {
        extra.push(Header::Contact(Contact::Star));
    }
    extra.push(Header::Expires(expires));
    m.headers.splice(at..at, extra);
    m
}

/// TXN-4: the OPTIONS probe; P2P (with the sender's identity) when `me`
/// is given.
pub fn options(
    me: Option<&Identity>,
    target: SocketAddr,
    txn: &Txn,
    from: Uri<'static>,
) -> Message<'static> {
    let mut m = request(
        Method::Options,
        addr_uri(target),
        from,
        addr_uri(target),
        txn,
    );
    match me {
        Some(me) => m.make_p2p(me),
        None => m.push_header(Header::Supported(Text::borrowed("dht"))),
    }
    m
}

/// RFC 3261 §8.2.6 + RFC 3581: a response to `req`, which arrived from
/// `source`. The top Via gets `received` always and `rport` filled when
/// the request asked for it (NAT-2); To gets `to_tag` unless it has one.
pub fn response(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    source: SocketAddr,
    to_tag: &str,
) -> Message<'static> {
    let mut headers: Vec<Header<'static>> = Vec::with_capacity(12);
    let mut first = true;
    for h in &req.headers {
        match h {
            Header::Via(v) => {
                let mut v = crate::owned::via(v.clone());
                if first {
                    v.received = Some(source.ip());
                    if v.rport != Rport::Absent {
                        v.rport = Rport::Filled(source.port());
                    }
                    first = false;
                }
                headers.push(Header::Via(v));
            }
            Header::To(t) => {
                let mut t = crate::owned::from_to(t.clone());
                if t.tag.is_none() && !to_tag.is_empty() {
                    t.tag = Some(Text::owned(to_tag.to_owned()));
                }
                headers.push(Header::To(t));
            }
            Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(crate::owned::header(h.clone()));
            }
            _ => {}
        }
    }
    headers.push(Header::ContentLength(0));
    Message {
        start: StartLine::Response {
            code,
            reason: Text::owned(reason.to_owned()),
        },
        headers: headers.into(),
        body: Cow::Borrowed(b""),
    }
}

/// The usual reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        202 => "Accepted",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        488 => "Not Acceptable Here",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        _ => "Unknown",
    }
}
