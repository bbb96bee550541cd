/*!
The message model: what a SIP message means to the profile, borrowed from
the bytes it was parsed from.

Every text field is a [`Text`]: the parser fills them with slices of its
input (no copy), the builders with owned strings, and the printer does not
care which. Headers are one flat list ([`Headers`]) in message order, one
entry per header value: `Contact: <a>, <b>` becomes two `Contact` entries,
which is what RFC 3261 §7.3.1 says it means. That list is the only
allocation of a parse, and dropping a parsed message does not visit it.
A parsed value holds its input borrowed until it is dropped.

Parameters that the profile gives a meaning to are typed fields; all the
others are kept verbatim, in order, in an `other` text that starts with
`;` (or is empty), so nothing a sender wrote is lost.
*/

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::id::Id;

pub use crate::text::Text;

/// A SIP message: start line, headers in order, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub headers: Headers<'a>,
    pub body: Cow<'a, [u8]>,
}

/// The header list of a message: a `Vec<Header>` (it derefs to one) that
/// knows when none of its entries owns text.
///
/// A parsed message borrows all its text, so dropping its entries does
/// nothing, yet walking a list of a few dozen entries to find that out
/// costs as much as a quarter of the parse. The parser says when it made
/// no owned text, and the list is then dropped without a visit to its
/// entries. Any mutable access makes no such claim any more.
pub struct Headers<'a> {
    entries: Vec<Header<'a>>,
    /// No entry owns heap memory: set only by the parser, cleared by
    /// every mutable access.
    borrows_only: bool,
}

impl<'a> Headers<'a> {
    pub fn new() -> Headers<'a> {
        Headers::from(Vec::new())
    }

    /// The list of a parse that made no owned text (`borrows_only`).
    pub(crate) fn parsed(entries: Vec<Header<'a>>, borrows_only: bool) -> Headers<'a> {
        Headers {
            entries,
            borrows_only,
        }
    }

    /// Whether the list is known to own no text (a parse's list, not
    /// touched since).
    pub fn borrows_only(&self) -> bool {
        self.borrows_only
    }

    pub fn into_vec(self) -> Vec<Header<'a>> {
        let mut this = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut this.entries)
    }
}

impl Default for Headers<'_> {
    fn default() -> Self {
        Headers::new()
    }
}

impl Drop for Headers<'_> {
    fn drop(&mut self) {
        if self.borrows_only {
            // SAFETY: a length of 0 is within the capacity, and the entries
            // it drops from the list own nothing (`borrows_only`), so
            // dropping them would have done nothing.
            unsafe { self.entries.set_len(0) }
        } else {
            self.entries.clear();
        }
        // The buffer is kept for the next parse on this thread.
        crate::spare::keep(std::mem::take(&mut self.entries));
    }
}

impl<'a> std::ops::Deref for Headers<'a> {
    type Target = Vec<Header<'a>>;
    #[inline]
    fn deref(&self) -> &Vec<Header<'a>> {
        &self.entries
    }
}

impl<'a> std::ops::DerefMut for Headers<'a> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<Header<'a>> {
        self.borrows_only = false;
        &mut self.entries
    }
}

impl<'a> From<Vec<Header<'a>>> for Headers<'a> {
    fn from(entries: Vec<Header<'a>>) -> Self {
        Headers {
            entries,
            borrows_only: false,
        }
    }
}

impl<'a> FromIterator<Header<'a>> for Headers<'a> {
    fn from_iter<I: IntoIterator<Item = Header<'a>>>(iter: I) -> Self {
        Headers::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = std::vec::IntoIter<Header<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'h, 'a> IntoIterator for &'h Headers<'a> {
    type Item = &'h Header<'a>;
    type IntoIter = std::slice::Iter<'h, Header<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<'h, 'a> IntoIterator for &'h mut Headers<'a> {
    type Item = &'h mut Header<'a>;
    type IntoIter = std::slice::IterMut<'h, Header<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl Clone for Headers<'_> {
    fn clone(&self) -> Self {
        // A clone of borrowed text borrows too.
        Headers {
            entries: self.entries.clone(),
            borrows_only: self.borrows_only,
        }
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Headers<'_> {}

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entries.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: Method<'a>, uri: Uri<'a> },
    Response { code: u16, reason: Text<'a> },
}

/// Request methods (RFC 3261 §7.1 `Method`); the profile uses REGISTER,
/// OPTIONS and MESSAGE, the rest are named for readable evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method<'a> {
    Register,
    Options,
    Message,
    Invite,
    Ack,
    Bye,
    Cancel,
    Subscribe,
    Notify,
    Other(Text<'a>),
}

impl Method<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Other(m) => m,
        }
    }

    /// Method names are case-sensitive (RFC 3261 §7.1).
    pub fn from_token(token: &str) -> Method<'_> {
        match token {
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "MESSAGE" => Method::Message,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            other => Method::Other(Text::borrowed(other)),
        }
    }

    pub fn into_owned(self) -> Method<'static> {
        match self {
            Method::Register => Method::Register,
            Method::Options => Method::Options,
            Method::Message => Method::Message,
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Other(m) => Method::Other(m.into_owned()),
        }
    }
}

/// URI schemes. Anything but `sip`/`sips` is kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme<'a> {
    Sip,
    Sips,
    Other(Text<'a>),
}

/// A host as written: a domain name (case kept), or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host<'a> {
    Domain(Text<'a>),
    V4(Ipv4Addr),
    /// Written in brackets in URIs and Via sent-by.
    V6(Ipv6Addr),
}

impl Host<'_> {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }

    pub fn from_ip(ip: IpAddr) -> Host<'static> {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }

    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(d.into_owned()),
            Host::V4(a) => Host::V4(a),
            Host::V6(a) => Host::V6(a),
        }
    }
}

impl std::fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A URI (RFC 3261 §19.1), with the profile's parameters typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme<'a>,
    /// The user part exactly as sent (still %-escaped).
    pub user: Option<Text<'a>>,
    pub password: Option<Text<'a>>,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: UriParams<'a>,
    /// The `?` headers part, without the `?`.
    pub headers: Option<Text<'a>>,
    /// Everything after `scheme:` for a non-SIP URI (host is then an empty
    /// domain).
    pub opaque: Option<Text<'a>>,
}

/// URI parameters. Names compare case-insensitively (RFC 3261 §19.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UriParams<'a> {
    /// `peer-ID` (also read from `pID` and other letter cases, WIRE-3).
    pub peer_id: Option<Id>,
    /// `resource-ID` (also `rID`); a courtesy hint only (RES-3).
    pub resource_id: Option<Id>,
    /// `replica=N` (ID-5).
    pub replica: Option<u32>,
    pub transport: Option<Text<'a>>,
    /// `user=` (`node` marks a legacy sipping-02 Node URI).
    pub user: Option<Text<'a>>,
    pub lr: bool,
    /// The other parameters, verbatim, each with its leading `;`.
    pub other: Text<'a>,
}

/// `[display-name] <URI>`; the printer always writes the angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as sent: a quoted string keeps its quotes.
    pub display: Option<Text<'a>>,
    pub uri: Uri<'a>,
}

/// From and To: an address plus the `tag` (RFC 3261 §8.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromTo<'a> {
    pub addr: NameAddr<'a>,
    pub tag: Option<Text<'a>>,
    pub other: Text<'a>,
}

/// `rport` of a Via (RFC 3581).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rport {
    #[default]
    Absent,
    /// `;rport` with no value: the sender asks for it (NAT-1).
    Requested,
    /// `;rport=N`: filled in by the receiver (NAT-2).
    Filled(u16),
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, ... as written after `SIP/2.0/`.
    pub transport: Text<'a>,
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub branch: Option<Text<'a>>,
    pub rport: Rport,
    pub received: Option<IpAddr>,
    pub other: Text<'a>,
}

impl Via<'_> {
    /// The sent-by port, 5060 when absent (RFC 3261 §18.2.2).
    pub fn sent_by_port(&self) -> u16 {
        self.port.unwrap_or(5060)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

/// One Contact value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (only with Expires: 0, RFC 3261 §10.2.2).
    Star,
    Addr(ContactAddr<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAddr<'a> {
    pub addr: NameAddr<'a>,
    pub expires: Option<u32>,
    pub q: Option<Text<'a>>,
    pub other: Text<'a>,
}

/// An address with parameters we do not interpret (Record-Route, Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamAddr<'a> {
    pub addr: NameAddr<'a>,
    pub other: Text<'a>,
}

/// Which header carried the sender identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityHeader {
    /// `DHT-PeerID` (dsip-chord).
    PeerId,
    /// `DHT-NodeID` (legacy sipping-02).
    NodeId,
}

/// The sender identity (WIRE-4):
/// `DHT-PeerID: <PeerURI>;algorithm=sha1;dht=Chord1.0;overlay=NAME;expires=SECS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtPeerId<'a> {
    pub header: IdentityHeader,
    pub addr: NameAddr<'a>,
    pub algorithm: Option<Text<'a>>,
    /// `dht=` (also read from the lenient alias `dht-param=`).
    pub dht: Option<Text<'a>>,
    pub overlay: Option<Text<'a>>,
    pub expires: Option<u32>,
    pub other: Text<'a>,
}

/// Which neighbour a DHT-Link reports (WIRE-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// `P`: predecessor.
    P,
    /// `S`: successor.
    S,
    /// `F`: finger.
    F,
}

impl LinkKind {
    pub fn letter(self) -> char {
        match self {
            LinkKind::P => 'P',
            LinkKind::S => 'S',
            LinkKind::F => 'F',
        }
    }
}

/// `link=TYPEDEPTH`: `P1`, `S1`..`S4`, `F0`..`F159`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType {
    pub kind: LinkKind,
    pub depth: u8,
}

/// A neighbour report:
/// `DHT-Link: <PeerURI>;link=TYPEDEPTH;expires=SECS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtLink<'a> {
    pub addr: NameAddr<'a>,
    pub link: LinkType,
    pub expires: Option<u32>,
    pub other: Text<'a>,
}

/// One header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header<'a> {
    Via(Via<'a>),
    From(FromTo<'a>),
    To(FromTo<'a>),
    CallId(Text<'a>),
    CSeq(CSeq<'a>),
    Contact(Contact<'a>),
    Expires(u32),
    MaxForwards(u32),
    ContentLength(u32),
    /// One option tag per entry.
    Require(Text<'a>),
    Supported(Text<'a>),
    Unsupported(Text<'a>),
    RecordRoute(ParamAddr<'a>),
    Route(ParamAddr<'a>),
    /// One directive per entry (`proxy`, `redirect`, ...).
    RequestDisposition(Text<'a>),
    DhtPeerId(DhtPeerId<'a>),
    DhtLink(DhtLink<'a>),
    /// Any other header, value verbatim (folds included).
    Other {
        name: Text<'a>,
        value: Text<'a>,
    },
}

impl Header<'_> {
    /// The canonical (long) name of this header.
    pub fn name(&self) -> &str {
        match self {
            Header::Via(_) => "Via",
            Header::From(_) => "From",
            Header::To(_) => "To",
            Header::CallId(_) => "Call-ID",
            Header::CSeq(_) => "CSeq",
            Header::Contact(_) => "Contact",
            Header::Expires(_) => "Expires",
            Header::MaxForwards(_) => "Max-Forwards",
            Header::ContentLength(_) => "Content-Length",
            Header::Require(_) => "Require",
            Header::Supported(_) => "Supported",
            Header::Unsupported(_) => "Unsupported",
            Header::RecordRoute(_) => "Record-Route",
            Header::Route(_) => "Route",
            Header::RequestDisposition(_) => "Request-Disposition",
            Header::DhtPeerId(d) => match d.header {
                IdentityHeader::PeerId => "DHT-PeerID",
                IdentityHeader::NodeId => "DHT-NodeID",
            },
            Header::DhtLink(_) => "DHT-Link",
            Header::Other { name, .. } => name,
        }
    }
}

/// A peer as the profile names it on the wire: its Peer-ID and the address
/// that ID was derived from (`sip:peer@HOST:PORT;peer-ID=<id>`, WIRE-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub id: Id,
    pub addr: SocketAddr,
}

impl Peer {
    /// A peer whose ID follows ID-2 from its address.
    pub fn at(addr: SocketAddr) -> Peer {
        Peer {
            id: crate::id::peer_id(addr.ip(), addr.port()),
            addr,
        }
    }

    /// Does the ID follow ID-2 from the address?
    pub fn id_matches_addr(&self) -> bool {
        self.id == crate::id::peer_id(self.addr.ip(), self.addr.port())
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", &self.id.to_hex()[..8], self.addr)
    }
}

impl<'a> Uri<'a> {
    /// The Peer-ID this URI names: the `peer-ID` parameter, or for a legacy
    /// Node URI (`user=node`) the 40 hex digits of its user part.
    pub fn peer_id(&self) -> Option<Id> {
        if let Some(id) = self.params.peer_id {
            return Some(id);
        }
        let is_node = self
            .params
            .user
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("node"));
        if is_node {
            let user = self.user.as_deref()?;
            return Id::parse_hex(user.as_bytes()).ok().map(|(id, _)| id);
        }
        None
    }

    /// The socket address of an IP-literal host, with the default port
    /// 5060 when none is given.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.host.ip()?, self.port.unwrap_or(5060)))
    }

    /// The peer this URI names, when it has a Peer-ID and an IP host.
    pub fn peer(&self) -> Option<Peer> {
        Some(Peer {
            id: self.peer_id()?,
            addr: self.socket_addr()?,
        })
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// Detaches the URI from the buffer it was parsed from.
    pub fn into_owned(self) -> Uri<'static> {
        crate::owned::uri(self)
    }
}

impl<'a> Message<'a> {
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method<'a>> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&Uri<'a>> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn vias(&self) -> impl Iterator<Item = &Via<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
    }

    pub fn top_via(&self) -> Option<&Via<'a>> {
        self.vias().next()
    }

    pub fn top_via_mut(&mut self) -> Option<&mut Via<'a>> {
        self.headers.iter_mut().find_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
    }

    pub fn from(&self) -> Option<&FromTo<'a>> {
        self.headers.iter().find_map(|h| match h {
            Header::From(f) => Some(f),
            _ => None,
        })
    }

    pub fn to(&self) -> Option<&FromTo<'a>> {
        self.headers.iter().find_map(|h| match h {
            Header::To(t) => Some(t),
            _ => None,
        })
    }

    pub fn to_mut(&mut self) -> Option<&mut FromTo<'a>> {
        self.headers.iter_mut().find_map(|h| match h {
            Header::To(t) => Some(t),
            _ => None,
        })
    }

    pub fn call_id(&self) -> Option<&str> {
        self.headers.iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.as_ref()),
            _ => None,
        })
    }

    pub fn cseq(&self) -> Option<&CSeq<'a>> {
        self.headers.iter().find_map(|h| match h {
            Header::CSeq(c) => Some(c),
            _ => None,
        })
    }

    pub fn contacts(&self) -> impl Iterator<Item = &Contact<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::Contact(c) => Some(c),
            _ => None,
        })
    }

    /// The Contact addresses (without `*`).
    pub fn contact_addrs(&self) -> impl Iterator<Item = &ContactAddr<'a>> {
        self.contacts().filter_map(|c| match c {
            Contact::Addr(a) => Some(a),
            Contact::Star => None,
        })
    }

    pub fn expires(&self) -> Option<u32> {
        self.headers.iter().find_map(|h| match h {
            Header::Expires(e) => Some(*e),
            _ => None,
        })
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.headers.iter().find_map(|h| match h {
            Header::MaxForwards(m) => Some(*m),
            _ => None,
        })
    }

    pub fn content_length(&self) -> Option<u32> {
        self.headers.iter().find_map(|h| match h {
            Header::ContentLength(l) => Some(*l),
            _ => None,
        })
    }

    pub fn requires(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().filter_map(|h| match h {
            Header::Require(t) => Some(t.as_ref()),
            _ => None,
        })
    }

    pub fn supports(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().filter_map(|h| match h {
            Header::Supported(t) => Some(t.as_ref()),
            _ => None,
        })
    }

    /// `Require: dht` present (option tags compare case-insensitively, WIRE-2).
    pub fn requires_dht(&self) -> bool {
        self.requires().any(|t| t.eq_ignore_ascii_case("dht"))
    }

    /// `Supported: dht` present.
    pub fn supports_dht(&self) -> bool {
        self.supports().any(|t| t.eq_ignore_ascii_case("dht"))
    }

    /// The first DHT-PeerID (or legacy DHT-NodeID).
    pub fn dht_peer_id(&self) -> Option<&DhtPeerId<'a>> {
        self.headers.iter().find_map(|h| match h {
            Header::DhtPeerId(d) => Some(d),
            _ => None,
        })
    }

    pub fn dht_links(&self) -> impl Iterator<Item = &DhtLink<'a>> {
        self.headers.iter().filter_map(|h| match h {
            Header::DhtLink(l) => Some(l),
            _ => None,
        })
    }

    /// The link of one type and depth (`P1`, `S2`, `F7`...).
    pub fn link(&self, kind: LinkKind, depth: u8) -> Option<&DhtLink<'a>> {
        self.dht_links()
            .find(|l| l.link.kind == kind && l.link.depth == depth)
    }

    /// The sender peer named by DHT-PeerID.
    pub fn sender_peer(&self) -> Option<Peer> {
        self.dht_peer_id()?.addr.uri.peer()
    }

    /// The first value of a header not typed by the model, by name
    /// (case-insensitive).
    pub fn other_header(&self, wanted: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| match h {
            Header::Other { name, value } if name.eq_ignore_ascii_case(wanted) => {
                Some(value.as_ref())
            }
            _ => None,
        })
    }

    /// Detaches the message from the buffer it was parsed from.
    pub fn into_owned(self) -> Message<'static> {
        crate::owned::message(self)
    }
}
