/*!
The checks of the senders' rules (PROFILE §1-2) that the parse of one
header cannot make alone: each header value's own rules (WIRE-3, WIRE-4,
WIRE-5, ID-2) as soon as it is parsed, a tally of the headers that must
come once, and at the end what only the whole message shows (WIRE-1,
WIRE-2, WIRE-4).

The checks run in header order, as the values come, so each deviation
keeps the offset of its first occurrence.
*/

use std::net::{IpAddr, Ipv4Addr};

use super::Cx;
use crate::error::Deviation;
use crate::id::Id;
use crate::message::{Contact, DhtPeerId, Header, Host, StartLine, Uri};
use crate::profile::{ParseOptions, Profile, Transport};

/// What the end checks need to know of the headers, gathered as they are
/// parsed.
#[derive(Default)]
pub(crate) struct Tally {
    /// From, To, Call-ID, CSeq, Max-Forwards, Expires, Content-Length.
    counts: [u8; 7],
    vias: u32,
    dht_ids: u32,
    /// The first Via, From and CSeq, by index in the header list.
    top_via: Option<usize>,
    from: Option<usize>,
    cseq: Option<usize>,
    requires_dht: bool,
    supports_dht: bool,
}

/// The single headers, by slot in [`Tally::counts`].
pub(crate) const FROM: usize = 0;
pub(crate) const TO: usize = 1;
pub(crate) const CALL_ID: usize = 2;
const CSEQ: usize = 3;
pub(crate) const MAX_FORWARDS: usize = 4;
pub(crate) const EXPIRES: usize = 5;
pub(crate) const CONTENT_LENGTH: usize = 6;

impl Tally {
    #[inline(always)]
    pub(crate) fn count(&mut self, slot: usize) {
        self.counts[slot] = self.counts[slot].saturating_add(1);
    }

    /// A From at `index`.
    #[inline(always)]
    pub(crate) fn from(&mut self, index: usize) {
        self.count(FROM);
        self.from.get_or_insert(index);
    }

    /// A CSeq at `index`.
    #[inline(always)]
    pub(crate) fn cseq(&mut self, index: usize) {
        self.count(CSEQ);
        self.cseq.get_or_insert(index);
    }

    /// A Via at `index`.
    #[inline(always)]
    pub(crate) fn via(&mut self, index: usize) {
        self.vias += 1;
        self.top_via.get_or_insert(index);
    }

    #[inline(always)]
    pub(crate) fn dht_id(&mut self) {
        self.dht_ids += 1;
    }

    /// Whether a Require and a Supported `dht` were seen.
    #[cfg(test)]
    pub(crate) fn dht_tags(&self) -> (bool, bool) {
        (self.requires_dht, self.supports_dht)
    }

    /// A Require (`require`) or Supported option tag, `dht` or not
    /// (WIRE-2).
    #[inline(always)]
    pub(crate) fn option_tag(&mut self, require: bool, dht: bool) {
        if require {
            self.requires_dht |= dht;
        } else {
            self.supports_dht |= dht;
        }
    }
}

/// The checks of one header value just parsed, at `index` in the list,
/// and its part of the tally.
pub(crate) fn entry(cx: &mut Cx<'_>, h: &Header<'_>, index: usize) {
    let slot = match h {
        Header::From(f) => {
            cx.tally.from(index);
            if has_peer_id(&f.addr.uri) {
                check_addr_peer_uri(cx, &f.addr.uri);
            }
            return;
        }
        Header::To(t) => {
            if has_peer_id(&t.addr.uri) {
                check_addr_peer_uri(cx, &t.addr.uri);
            }
            TO
        }
        Header::CallId(_) => CALL_ID,
        Header::CSeq(_) => {
            cx.tally.cseq(index);
            return;
        }
        Header::MaxForwards(_) => MAX_FORWARDS,
        Header::Expires(_) => EXPIRES,
        Header::ContentLength(_) => CONTENT_LENGTH,
        Header::Via(_) => {
            cx.tally.via(index);
            return;
        }
        Header::DhtPeerId(d) => {
            check_dht_peer_id(cx, d);
            cx.tally.dht_id();
            return;
        }
        Header::DhtLink(l) => {
            let at = offset_of_uri(cx, &l.addr.uri);
            match l.expires {
                None => cx.warnings.record(Deviation::LinkWithoutExpires, at),
                Some(0) => cx.warnings.record(Deviation::LinkExpired, at),
                Some(_) => {}
            }
            let verify = cx.verify;
            check_peer_uri(cx, &l.addr.uri, at, Deviation::LinkWithoutId, verify);
            return;
        }
        Header::Contact(Contact::Addr(c)) => {
            if has_peer_id(&c.addr.uri) {
                check_addr_peer_uri(cx, &c.addr.uri);
            }
            return;
        }
        // Option tags compare case-insensitively (WIRE-2).
        Header::Require(t) => {
            cx.tally.option_tag(true, t.eq_ignore_ascii_case("dht"));
            return;
        }
        Header::Supported(t) => {
            cx.tally.option_tag(false, t.eq_ignore_ascii_case("dht"));
            return;
        }
        _ => return,
    };
    cx.tally.count(slot);
}

/// [`check_peer_uri`] for a Peer URI of the usual form
/// (`sip:USER@IPv4address:PORT;peer-ID=ID`), whose user part starts at
/// `at`: it has an ID and a port, so only the ID itself is left to check.
#[inline(always)]
pub(crate) fn peer(cx: &mut Cx<'_>, addr: Ipv4Addr, port: u16, id: &Id, at: usize) {
    if cx.verify && !addr.is_unspecified() && cx.profile.peer_id(IpAddr::V4(addr), port) != *id {
        cx.warnings.record(Deviation::PeerIdNotOfAddress, at);
    }
}

/// Records the departures from the senders' rules that only the whole
/// message shows (WIRE-1, WIRE-2, WIRE-4), from the tally.
pub(crate) fn message(
    cx: &mut Cx<'_>,
    start: &StartLine<'_>,
    headers: &[Header<'_>],
    body_at: usize,
    has_length: bool,
    opts: ParseOptions,
) {
    let at_end = &cx.base[body_at.min(cx.base.len())..];
    let t = std::mem::take(&mut cx.tally);
    let counts = t.counts;
    // WIRE-1: the mandatory headers, once each.
    if t.vias == 0 || counts[..4].contains(&0) {
        cx.deviate(Deviation::MissingMandatoryHeader, at_end);
    }
    if counts.iter().any(|c| *c > 1) {
        cx.deviate(Deviation::DuplicateHeader, at_end);
    }
    // A body longer than Content-Length is fine on UDP (the rest is
    // dropped); a shorter one never reaches here (BodyTruncated).
    match (has_length, opts.transport) {
        (true, _) => {}
        (false, Some(Transport::Tcp)) => {
            cx.deviate(Deviation::MissingContentLengthOnStream, at_end)
        }
        (false, _) => cx.deviate(Deviation::MissingContentLength, at_end),
    }
    let header = |i: Option<usize>| i.and_then(|i| headers.get(i));
    if let Some(Header::Via(via)) = header(t.top_via) {
        match via.branch.as_deref() {
            None => cx.deviate(Deviation::MissingBranch, at_end),
            Some(b) if !b.starts_with("z9hG4bK") => {
                let at = offset_of(cx, b);
                cx.warnings.record(Deviation::BranchWithoutCookie, at);
            }
            Some(_) => {}
        }
    }
    if let StartLine::Request { method, .. } = start {
        if counts[4] == 0 {
            cx.deviate(Deviation::MissingMaxForwards, at_end);
        }
        if let Some(Header::From(f)) = header(t.from)
            && f.tag.is_none()
        {
            cx.deviate(Deviation::MissingFromTag, at_end);
        }
        if let Some(Header::CSeq(c)) = header(t.cseq)
            && c.method != *method
        {
            cx.deviate(Deviation::CSeqMethodMismatch, at_end);
        }
    }

    // WIRE-2 / WIRE-4: what makes a message P2P, and what it must carry.
    let p2p = match start {
        StartLine::Request { .. } => t.requires_dht || t.dht_ids > 0,
        StartLine::Response { .. } => t.supports_dht || t.dht_ids > 0,
    };
    if p2p {
        if matches!(start, StartLine::Request { .. }) && !t.requires_dht {
            cx.deviate(Deviation::MissingRequireDht, at_end);
        }
        if !t.supports_dht {
            cx.deviate(Deviation::MissingSupportedDht, at_end);
        }
        if t.dht_ids == 0 {
            cx.deviate(Deviation::MissingDhtPeerId, at_end);
        }
    }
    if t.dht_ids > 1 {
        cx.deviate(Deviation::DuplicateDhtPeerId, at_end);
    }
}

pub(crate) fn check_dht_peer_id(cx: &mut Cx<'_>, d: &DhtPeerId<'_>) {
    let at = offset_of_uri(cx, &d.addr.uri);
    let needs_dht = cx.profile == Profile::DsipChord;
    if d.algorithm.is_none() || d.overlay.is_none() || (needs_dht && d.dht.is_none()) {
        cx.warnings.record(Deviation::DhtPeerIdMissingParam, at);
    }
    if d.algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("sha1"))
    {
        cx.warnings.record(Deviation::UnknownDhtOrAlgorithm, at);
    }
    if let Some(dht) = d.dht.as_deref() {
        check_dht_token(cx, dht, at);
    }
    let verify = cx.verify;
    check_peer_uri(cx, &d.addr.uri, at, Deviation::DhtPeerIdWithoutId, verify);
}

/// WIRE-3 and ID-2 for a To, From or Contact URI that carries a Peer-ID.
fn check_addr_peer_uri(cx: &mut Cx<'_>, uri: &Uri<'_>) {
    let at = offset_of_uri(cx, uri);
    let verify = cx.verify;
    check_peer_uri(cx, uri, at, Deviation::LinkWithoutId, verify);
}

fn check_dht_token(cx: &mut Cx<'_>, dht: &str, at: usize) {
    let known = dht.eq_ignore_ascii_case("Chord1.0");
    let legacy = dht.eq_ignore_ascii_case("ChordIter1.0");
    match cx.profile {
        Profile::DsipChord if legacy => cx.warnings.record(Deviation::LegacyDhtToken, at),
        _ if known || legacy => {}
        _ => cx.warnings.record(Deviation::UnknownDhtOrAlgorithm, at),
    }
}

/// WIRE-3 and ID-2 for a URI that names a peer: it has an ID, a port, and
/// the ID is the one of its own address. A host of 0.0.0.0 names only a
/// key (a query, PROFILE §4), so it is not checked.
fn check_peer_uri(cx: &mut Cx<'_>, uri: &Uri<'_>, at: usize, missing: Deviation, verify: bool) {
    if !has_peer_id(uri) {
        cx.warnings.record(missing, at);
        return;
    }
    let ip = match uri.host {
        Host::V4(a) if a == Ipv4Addr::UNSPECIFIED => return,
        Host::V4(a) => IpAddr::V4(a),
        Host::V6(a) => IpAddr::V6(a),
        Host::Domain(_) => return,
    };
    let port = match uri.port {
        Some(p) => p,
        None => {
            cx.warnings.record(Deviation::PeerUriWithoutPort, at);
            5060
        }
    };
    if verify && Some(cx.profile.peer_id(ip, port)) != uri.peer_id() {
        cx.warnings.record(Deviation::PeerIdNotOfAddress, at);
    }
}

/// `uri.peer_id().is_some()`, without decoding a Node URI's ID when the
/// parameter is there.
#[inline]
fn has_peer_id(uri: &Uri<'_>) -> bool {
    uri.params.peer_id.is_some() || uri.peer_id().is_some()
}

/// The offset of a field borrowed from the input (the end when it was
/// not borrowed).
fn offset_of(cx: &Cx<'_>, s: &str) -> usize {
    cx.offset(s.as_bytes())
}

fn offset_of_uri(cx: &Cx<'_>, uri: &Uri<'_>) -> usize {
    match &uri.host {
        Host::Domain(d) if !d.is_owned() => offset_of(cx, d),
        _ => uri
            .user
            .as_deref()
            .map_or(cx.base.len(), |u| offset_of(cx, u)),
    }
}
