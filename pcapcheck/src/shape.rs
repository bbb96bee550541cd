/*!
The structural summary of a response: what `pcap replay` compares between
a recorded answer and a fresh implementation's answer to the same request.
Status, classification, which link types are present, and how many
Contacts; tags, branches, timestamps, addresses and IDs are volatile and
left out.
*/

use std::fmt;

use p2psip_wire::{Class, LinkKind, Message};

/// Which link types a response carries: P1..P8, S1..S8 and F0..F159 as
/// bits (deeper P/S links are counted in `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkSet {
    pub p: u8,
    pub s: u8,
    pub f: [u64; 3],
    /// Links of a depth outside those ranges.
    pub other: u8,
}

impl LinkSet {
    pub fn insert(&mut self, kind: LinkKind, depth: u8) {
        match kind {
            LinkKind::P if (1..=8).contains(&depth) => self.p |= 1 << (depth - 1),
            LinkKind::S if (1..=8).contains(&depth) => self.s |= 1 << (depth - 1),
            LinkKind::F if depth < 160 => self.f[depth as usize / 64] |= 1 << (depth % 64),
            _ => self.other = self.other.saturating_add(1),
        }
    }

    pub fn contains(&self, kind: LinkKind, depth: u8) -> bool {
        match kind {
            LinkKind::P => (1..=8).contains(&depth) && self.p & (1 << (depth - 1)) != 0,
            LinkKind::S => (1..=8).contains(&depth) && self.s & (1 << (depth - 1)) != 0,
            LinkKind::F => depth < 160 && self.f[depth as usize / 64] & (1 << (depth % 64)) != 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.p == 0 && self.s == 0 && self.f == [0; 3] && self.other == 0
    }

    /// The number of F links.
    pub fn fingers(&self) -> u32 {
        self.f.iter().map(|w| w.count_ones()).sum()
    }

    /// The types present, in order (`P1 S1 S2 F3 ...`).
    pub fn types(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, bits) in [(LinkKind::P, self.p), (LinkKind::S, self.s)] {
            for d in 0..8 {
                if bits & (1 << d) != 0 {
                    out.push(format!("{}{}", kind.letter(), d + 1));
                }
            }
        }
        for d in 0..160u8 {
            if self.contains(LinkKind::F, d) {
                out.push(format!("F{d}"));
            }
        }
        out
    }
}

impl fmt::Display for LinkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.types();
        if t.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&t.join(" "))
        }
    }
}

/// What replay compares of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseShape {
    pub status: u16,
    /// The class of the request it answers (from the request when known,
    /// else guessed from the response, see [`Class::of_response`]).
    pub class: Class,
    /// DHT-PeerID present.
    pub has_peer_id: bool,
    pub links: LinkSet,
    pub contacts: usize,
}

/// The structural summary of a response; `request_class` is the class of
/// the request it answers when the caller has it.
pub fn shape_of(response: &Message<'_>, request_class: Option<Class>) -> ResponseShape {
    let mut links = LinkSet::default();
    for l in response.dht_links() {
        links.insert(l.link.kind, l.link.depth);
    }
    ResponseShape {
        status: response.status().unwrap_or(0),
        class: request_class.unwrap_or_else(|| Class::of_response(response)),
        has_peer_id: response.dht_peer_id().is_some(),
        links,
        contacts: response.contacts().count(),
    }
}

/// How strictly replay compares finger links: their number depends on the
/// ring size and timing, so by default only their presence is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FingerMatch {
    /// Some F link on both sides, or on neither.
    #[default]
    Presence,
    /// The same F depths.
    Exact,
}

impl ResponseShape {
    /// The differences from `other` (the recorded answer), one sentence
    /// each; empty when they match structurally.
    pub fn differences(&self, recorded: &ResponseShape, fingers: FingerMatch) -> Vec<String> {
        let mut out = Vec::new();
        if self.status != recorded.status {
            out.push(format!(
                "status {} (recorded {})",
                self.status, recorded.status
            ));
        }
        if self.class != recorded.class {
            out.push(format!(
                "class {} (recorded {})",
                self.class.name(),
                recorded.class.name()
            ));
        }
        if self.has_peer_id != recorded.has_peer_id {
            out.push(format!(
                "DHT-PeerID {} (recorded {})",
                presence(self.has_peer_id),
                presence(recorded.has_peer_id)
            ));
        }
        let (a, b) = (&self.links, &recorded.links);
        if a.p != b.p || a.s != b.s || a.other != b.other {
            out.push(format!(
                "P/S links {} (recorded {})",
                ps_only(a),
                ps_only(b)
            ));
        }
        let fingers_differ = match fingers {
            FingerMatch::Presence => (a.fingers() > 0) != (b.fingers() > 0),
            FingerMatch::Exact => a.f != b.f,
        };
        if fingers_differ {
            out.push(format!(
                "{} F links (recorded {})",
                a.fingers(),
                b.fingers()
            ));
        }
        if self.contacts != recorded.contacts {
            out.push(format!(
                "{} Contact(s) (recorded {})",
                self.contacts, recorded.contacts
            ));
        }
        out
    }
}

fn presence(b: bool) -> &'static str {
    if b { "present" } else { "absent" }
}

fn ps_only(l: &LinkSet) -> String {
    let only = LinkSet { f: [0; 3], ..*l };
    only.to_string()
}

impl fmt::Display for ResponseShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to {}; links {}; {} Contact(s)",
            self.status,
            self.class.name(),
            self.links,
            self.contacts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2psip_wire::{ParseOptions, parse};

    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport=5060;received=10.0.0.2\r\n\
To: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>;tag=x\r\n\
From: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>;tag=1\r\n\
Call-ID: q1\r\nCSeq: 1 REGISTER\r\nSupported: dht\r\n\
DHT-PeerID: <sip:peer@10.0.0.1:5060;peer-ID=89abcdef0123456789abcdef0123456789abcdef>;algorithm=sha1;dht=Chord1.0;overlay=chat;expires=600\r\n\
DHT-Link: <sip:peer@10.0.0.3:5060;peer-ID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>;link=P1;expires=600\r\n\
DHT-Link: <sip:peer@10.0.0.4:5060;peer-ID=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb>;link=S1;expires=600\r\n\
DHT-Link: <sip:peer@10.0.0.4:5060;peer-ID=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb>;link=F159;expires=600\r\n\
Contact: <sip:peer@10.0.0.2:5060;peer-ID=0123456789abcdef0123456789abcdef01234567>;expires=600\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn shape_of_a_join_200() {
        let m = parse(OK, ParseOptions::lenient().without_peer_id_check())
            .unwrap()
            .message;
        let s = shape_of(&m, Some(Class::Join));
        assert_eq!(s.status, 200);
        assert_eq!(s.contacts, 1);
        assert_eq!(s.links.to_string(), "P1 S1 F159");
        assert!(s.differences(&s, FingerMatch::Exact).is_empty());
        let mut other = s;
        other.links = LinkSet::default();
        other.links.insert(LinkKind::S, 1);
        other.contacts = 2;
        let d = s.differences(&other, FingerMatch::Presence);
        assert_eq!(d.len(), 3, "{d:?}");
    }
}
