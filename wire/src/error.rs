/*!
Parse errors and deviations, each tied to the requirement it breaks.

A *deviation* is something a sender must not emit but a receiver can still
read: a `pID` parameter name, upper-case hex, a bare LF. The parser always
records them; strict mode (the checker of what an implementation sends)
turns the first one into an error, lenient mode (what a robust receiver
accepts) reports them as warnings when the profile allows tolerating them.
Recording is allocation-free: a bit per kind plus the offset of its first
occurrence.
*/

use std::fmt;

/// A requirement ID of the profile, e.g. `WIRE-5`.
pub type Requirement = &'static str;

macro_rules! deviations {
    ($( $(#[$doc:meta])* $name:ident = $req:literal, $tolerated:literal, $msg:literal; )*) => {
        /// A way a message departs from the senders' rules (PROFILE §1-2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Deviation { $( $(#[$doc])* $name, )* }

        impl Deviation {
            pub const ALL: &'static [Deviation] = &[ $( Deviation::$name, )* ];

            /// The requirement a sender breaks with it.
            pub fn requirement(self) -> Requirement {
                match self { $( Deviation::$name => $req, )* }
            }

            /// Whether a lenient receiver accepts the message anyway.
            pub const fn tolerated(self) -> bool {
                match self { $( Deviation::$name => $tolerated, )* }
            }

            pub fn message(self) -> &'static str {
                match self { $( Deviation::$name => $msg, )* }
            }
        }
    };
}

deviations! {
    /// Lines end in LF without CR (WIRE-6 SHOULD tolerate).
    BareLf = "WIRE-6", true, "bare LF line ending";
    /// Hex digits `A`-`F` in an ID (ID-1).
    UpperHexId = "ID-1", true, "upper-case hex digits in an ID";
    /// `dht-param=` instead of `dht=` (WIRE-6).
    DhtParamAlias = "WIRE-6", true, "dht-param= used instead of dht=";
    /// `ChordIter1.0` in the dsip-chord profile (WIRE-6).
    LegacyDhtToken = "WIRE-6", true, "legacy DHT token ChordIter1.0";
    /// `pID`, `rID` or another spelling of the ID parameter names (WIRE-3).
    ShortIdParam = "WIRE-3", true, "peer-ID/resource-ID parameter not in its long form";
    /// A Peer URI without a port (WIRE-3).
    PeerUriWithoutPort = "WIRE-3", true, "Peer URI without port";
    /// A Peer-ID that is not ID-2 of the URI's own host and port.
    PeerIdNotOfAddress = "ID-2", true, "Peer-ID does not match the URI's address";
    /// A Via branch without the `z9hG4bK` magic cookie (WIRE-1).
    BranchWithoutCookie = "WIRE-1", true, "Via branch does not start with z9hG4bK";
    /// A top Via without a branch at all (WIRE-1).
    MissingBranch = "WIRE-1", false, "top Via has no branch";
    /// A request whose From has no tag (WIRE-1).
    MissingFromTag = "WIRE-1", true, "From of a request has no tag";
    /// A request without Max-Forwards (WIRE-1).
    MissingMaxForwards = "WIRE-1", true, "request has no Max-Forwards";
    /// No Content-Length (WIRE-1: always on TCP, SHOULD on UDP).
    MissingContentLength = "WIRE-1", true, "no Content-Length";
    /// A mandatory header is missing (WIRE-1): Via, From, To, Call-ID, CSeq.
    MissingMandatoryHeader = "WIRE-1", false, "a mandatory header (Via, From, To, Call-ID or CSeq) is missing";
    /// A mandatory single header appears twice.
    DuplicateHeader = "WIRE-1", false, "From, To, Call-ID, CSeq, Max-Forwards, Expires or Content-Length appears twice";
    /// CSeq method differs from the request method.
    CSeqMethodMismatch = "WIRE-1", false, "CSeq method differs from the request method";
    /// A P2P request without `Require: dht` (WIRE-2).
    MissingRequireDht = "WIRE-2", true, "P2P request without Require: dht";
    /// A P2P message without `Supported: dht` (WIRE-2).
    MissingSupportedDht = "WIRE-2", true, "P2P message without Supported: dht";
    /// A P2P message without a DHT-PeerID (WIRE-4).
    MissingDhtPeerId = "WIRE-4", false, "P2P message without DHT-PeerID";
    /// More than one DHT-PeerID (WIRE-4).
    DuplicateDhtPeerId = "WIRE-4", false, "more than one DHT-PeerID";
    /// DHT-PeerID lacks algorithm, dht or overlay (WIRE-4).
    DhtPeerIdMissingParam = "WIRE-4", false, "DHT-PeerID lacks algorithm, dht or overlay";
    /// DHT-PeerID's URI has no peer-ID (WIRE-4).
    DhtPeerIdWithoutId = "WIRE-4", false, "DHT-PeerID URI has no peer-ID";
    /// DHT-Link without `expires` (WIRE-5).
    LinkWithoutExpires = "WIRE-5", true, "DHT-Link without expires";
    /// DHT-Link with `expires=0` (WIRE-5: expired entries are never reported).
    LinkExpired = "WIRE-5", true, "DHT-Link with expires=0";
    /// DHT-Link whose URI has no peer-ID (WIRE-5).
    LinkWithoutId = "WIRE-5", false, "DHT-Link URI has no peer-ID";
    /// `algorithm` other than sha1 or `dht` other than the profile's (WIRE-10).
    UnknownDhtOrAlgorithm = "WIRE-10", true, "unknown dht or algorithm value";
    /// No Content-Length on a stream, where RFC 3261 §18.3 requires it.
    MissingContentLengthOnStream = "WIRE-1", false, "no Content-Length on a stream transport";
}

/// The deviations found in one message: which kinds, and where each first
/// occurred. Copy, fixed size, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Warnings {
    seen: u32,
    /// One slot per kind: a message's warnings are moved with it, and
    /// at most 128 bytes move without a call to `memcpy`.
    first_offset: [u32; KINDS],
}

/// How many kinds of deviation there are.
const KINDS: usize = Deviation::ALL.len();

const _: () = assert!(KINDS <= 32, "Warnings holds 32 kinds");

/// The kinds a lenient receiver accepts, one bit each.
const TOLERATED: u32 = {
    let mut bits = 0u32;
    let mut i = 0;
    while i < Deviation::ALL.len() {
        if Deviation::ALL[i].tolerated() {
            bits |= 1 << i;
        }
        i += 1;
    }
    bits
};

impl Warnings {
    pub fn record(&mut self, kind: Deviation, offset: usize) {
        let bit = 1u32 << kind as u8;
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.first_offset[kind as usize] = offset.min(u32::MAX as usize) as u32;
        }
    }

    pub fn contains(&self, kind: Deviation) -> bool {
        self.seen & (1 << kind as u8) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    pub fn len(&self) -> usize {
        self.seen.count_ones() as usize
    }

    /// Each deviation with the offset of its first occurrence, in offset
    /// order.
    pub fn iter(&self) -> impl Iterator<Item = (Deviation, usize)> + '_ {
        let mut all: [(u32, u8); 32] = [(u32::MAX, 0); 32];
        let mut n = 0;
        for d in Deviation::ALL {
            if self.contains(*d) {
                all[n] = (self.first_offset[*d as usize], *d as u8);
                n += 1;
            }
        }
        all[..n].sort_unstable();
        (0..n).map(move |i| (Deviation::ALL[all[i].1 as usize], all[i].0 as usize))
    }

    /// The first deviation (by offset) that `strict` or the lenient rules
    /// refuse.
    pub fn first_refused(&self, strict: bool) -> Option<(Deviation, usize)> {
        // The least (offset, kind) among the refused kinds: the order of
        // `iter`, without sorting.
        let mut refused = self.seen;
        if !strict {
            refused &= !TOLERATED;
        }
        let mut first: Option<(u32, u8)> = None;
        while refused != 0 {
            let kind = refused.trailing_zeros() as u8;
            refused &= refused - 1;
            let key = (self.first_offset[kind as usize], kind);
            if first.is_none_or(|f| key < f) {
                first = Some(key);
            }
        }
        first.map(|(offset, kind)| (Deviation::ALL[kind as usize], offset as usize))
    }

    pub fn remove(&mut self, kind: Deviation) {
        self.seen &= !(1 << kind as u8);
    }
}

impl fmt::Debug for Warnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside the message.
    Incomplete,
    /// Not SIP at all: a STUN message (NAT-7 traffic on the SIP port).
    Stun,
    /// Not SIP at all: binary or other text.
    NotSip,
    /// Not valid UTF-8 where text is required.
    NotUtf8,
    /// The request line or status line is malformed.
    StartLine,
    /// A URI is malformed.
    Uri,
    /// A header line without a name and colon.
    HeaderLine,
    /// A header's value does not follow its grammar; the name says which.
    HeaderValue(&'static str),
    /// An ID parameter that is not 40 hex digits.
    BadId,
    /// A DHT-Link `link=` value that is not `P`/`S`/`F` plus a depth.
    BadLinkType,
    /// A number too large for its field.
    NumberTooLarge,
    /// The message is larger than the configured limit (WIRE-8).
    TooLarge,
    /// The body is shorter than Content-Length.
    BodyTruncated,
    /// A deviation the mode refuses.
    Deviation(Deviation),
}

/// A parse failure: where, what, and which requirement it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the input.
    pub offset: usize,
    pub kind: ErrorKind,
}

impl ParseError {
    pub fn new(offset: usize, kind: ErrorKind) -> ParseError {
        ParseError { offset, kind }
    }

    /// The requirement ID the input violates.
    pub fn requirement(&self) -> Requirement {
        match self.kind {
            ErrorKind::Deviation(d) => d.requirement(),
            ErrorKind::BadId => "ID-1",
            ErrorKind::BadLinkType => "WIRE-5",
            ErrorKind::TooLarge => "WIRE-8",
            ErrorKind::BodyTruncated => "WIRE-1",
            _ => "WIRE-7",
        }
    }

    /// A short description, fit for a 400 reason phrase (WIRE-7).
    pub fn message(&self) -> &'static str {
        match self.kind {
            ErrorKind::Incomplete => "message incomplete",
            ErrorKind::Stun => "not SIP: STUN message",
            ErrorKind::NotSip => "not SIP",
            ErrorKind::NotUtf8 => "invalid UTF-8",
            ErrorKind::StartLine => "malformed start line",
            ErrorKind::Uri => "malformed URI",
            ErrorKind::HeaderLine => "malformed header line",
            ErrorKind::HeaderValue(name) => header_value_message(name),
            ErrorKind::BadId => "ID is not 40 hex digits",
            ErrorKind::BadLinkType => "bad DHT-Link link type",
            ErrorKind::NumberTooLarge => "number out of range",
            ErrorKind::TooLarge => "message too large",
            ErrorKind::BodyTruncated => "body shorter than Content-Length",
            ErrorKind::Deviation(d) => d.message(),
        }
    }
}

fn header_value_message(name: &'static str) -> &'static str {
    match name {
        "Via" => "malformed Via",
        "From" => "malformed From",
        "To" => "malformed To",
        "Call-ID" => "malformed Call-ID",
        "CSeq" => "malformed CSeq",
        "Contact" => "malformed Contact",
        "Expires" => "malformed Expires",
        "Max-Forwards" => "malformed Max-Forwards",
        "Content-Length" => "malformed Content-Length",
        "DHT-PeerID" => "malformed DHT-PeerID",
        "DHT-Link" => "malformed DHT-Link",
        "Record-Route" => "malformed Record-Route",
        "Route" => "malformed Route",
        _ => "malformed header",
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} ({})",
            self.message(),
            self.offset,
            self.requirement()
        )
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_keep_first_offset_and_order() {
        let mut w = Warnings::default();
        w.record(Deviation::UpperHexId, 50);
        w.record(Deviation::BareLf, 10);
        w.record(Deviation::UpperHexId, 5);
        let all: Vec<_> = w.iter().collect();
        assert_eq!(
            all,
            vec![(Deviation::BareLf, 10), (Deviation::UpperHexId, 50)]
        );
        assert_eq!(w.first_refused(false), None);
        assert_eq!(w.first_refused(true), Some((Deviation::BareLf, 10)));
        w.record(Deviation::MissingDhtPeerId, 70);
        assert_eq!(
            w.first_refused(false),
            Some((Deviation::MissingDhtPeerId, 70))
        );
    }
}
