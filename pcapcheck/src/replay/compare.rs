/*!
A fresh answer against the recorded one, structurally: status, class,
DHT-PeerID presence, P/S link types, presence of fingers, Contact count
([`ResponseShape::differences`]); for a redirect, whether it names the
peer the recorded one named (through the map); and profile deviations the
fresh answer has and the recorded one had not. Tags, branches, Call-IDs,
addresses and timestamps are not compared.

Some differences follow from the replay itself rather than from the IUT:
the replayed overlay holds every peer the conversation names from the
start, while the captured one changed (peers joined later, left, failed).
A difference is *explained* when the capture shows such a change at that
time; the explanation says which.
*/

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;

use p2psip_capture::Timestamp;
use p2psip_wire::{ParseOptions, Profile, parse};

use super::{Conversation, Exchange, Mapping, first_contact};
use crate::shape::{FingerMatch, shape_of};

/// One way a fresh answer differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub what: String,
    /// Why the replay could not have matched, when the capture tells.
    pub explained: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.explained {
            Some(why) => write!(f, "{} [explained: {why}]", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// What the IUT answered to a replayed request.
#[derive(Debug, Clone, Copy)]
pub enum Fresh<'a> {
    /// A final answer, raw.
    Answer(&'a [u8]),
    /// Nothing final before the deadline.
    Silent,
}

/// What a comparison needs besides the two answers.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub conv: &'a Conversation,
    pub map: &'a Mapping,
    pub profile: Profile,
    /// The P and S neighbours the IUT has in the replayed overlay (new
    /// addresses, the replayed endpoint left out): derived from the
    /// overlay the replay built, never from the IUT's answers, so that
    /// a faulty IUT cannot explain its own differences away.
    pub expected: &'a BTreeSet<SocketAddr>,
}

/// The differences between `fresh` and the recorded answer to `ex`.
pub fn compare(ex: &Exchange, fresh: Fresh<'_>, cx: &Context<'_>) -> Vec<Difference> {
    let (conv, map) = (cx.conv, cx.map);
    let mut out = Vec::new();
    let raw = match (fresh, &ex.response) {
        (Fresh::Silent, None) => return out,
        (Fresh::Silent, Some(r)) => {
            out.push(Difference {
                what: format!(
                    "no final answer before the deadline (recorded {} at frame {})",
                    r.shape.status, r.frame
                ),
                explained: None,
            });
            return out;
        }
        (Fresh::Answer(raw), _) => raw,
    };
    let opts = ParseOptions::lenient()
        .with_profile(cx.profile)
        .without_peer_id_check();
    let parsed = match parse(raw, opts) {
        Ok(p) => p,
        Err(e) => {
            out.push(Difference {
                what: format!("unparsable answer: {e}"),
                explained: None,
            });
            return out;
        }
    };
    let shape = shape_of(&parsed.message, Some(ex.class));
    let Some(rec) = &ex.response else {
        let span = conv.active.get(&conv.counterpart);
        let explained = match span {
            Some((first, _)) if ex.ts < *first => Some(format!(
                "{} sent nothing before this point of the capture (it had not started)",
                conv.counterpart
            )),
            Some((_, last)) if ex.ts > *last => Some(format!(
                "{} sent nothing after this point of the capture (it had stopped)",
                conv.counterpart
            )),
            _ => None,
        };
        out.push(Difference {
            what: format!(
                "answered {} (the capture holds no final answer)",
                shape.status
            ),
            explained,
        });
        return out;
    };
    // The overlay the recorded answer describes, against the replayed one.
    let me = map.addr(conv.endpoint);
    let recorded: BTreeSet<SocketAddr> = rec
        .neighbours
        .iter()
        .filter(|a| **a != conv.endpoint)
        .map(|a| map.addr(*a).unwrap_or(*a))
        .collect();
    let expected: BTreeSet<SocketAddr> = cx
        .expected
        .iter()
        .copied()
        .filter(|a| Some(*a) != me)
        .collect();
    let overlay_differs = (recorded != expected).then(|| {
        let back = |set: &BTreeSet<SocketAddr>| -> BTreeSet<SocketAddr> {
            set.iter().map(|a| map.original(*a).unwrap_or(*a)).collect()
        };
        format!(
            "the recorded answer's P/S links name {}, the replayed overlay gives the IUT {}: the captured overlay was not the replayed one at this point",
            names(&back(&recorded)),
            names(&back(&expected))
        )
    });
    for what in shape.differences(&rec.shape, FingerMatch::Presence) {
        out.push(Difference {
            what,
            explained: overlay_differs.clone(),
        });
    }
    if shape.status / 100 == 3
        && rec.shape.status / 100 == 3
        && let (Some(got), Some(want)) = (first_contact(&parsed.message), rec.contact)
    {
        let mapped = map.addr(want);
        if mapped.is_some() && mapped != Some(got) {
            let named = map.original(got);
            let explained = named
                .filter(|n| !active_at(conv, *n, ex.ts))
                .map(|n| format!("{n} was not in the captured overlay at this point"))
                .or_else(|| overlay_differs.clone());
            out.push(Difference {
                what: format!(
                    "redirects to {} (recorded {want})",
                    named.map_or_else(
                        || format!("{got} (no peer of the capture)"),
                        |n| n.to_string()
                    )
                ),
                explained,
            });
        }
    }
    for (d, _) in parsed.warnings.iter() {
        if !rec.deviations.contains(&d.message()) {
            out.push(Difference {
                what: format!(
                    "{} ({}), the recorded answer had none",
                    d.message(),
                    d.requirement()
                ),
                explained: None,
            });
        }
    }
    out
}

fn names(set: &BTreeSet<SocketAddr>) -> String {
    if set.is_empty() {
        return "no peer".into();
    }
    set.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Was `addr` sending at `ts`: first seen at or before it, last seen at
/// or after it? (Unknown addresses were never active.)
fn active_at(conv: &Conversation, addr: SocketAddr, ts: Timestamp) -> bool {
    conv.active
        .get(&addr)
        .is_some_and(|(first, last)| *first <= ts && ts <= *last)
}
