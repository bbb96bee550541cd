/*!
Leave checks (PROFILE §7): the shape of a leaving peer's REGISTER
(LEAVE-1) and its place after the transfers.
*/

use p2psip_wire::{Class, LinkKind, Peer};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};

pub static CHECKS: &[CheckDef] = &[CheckDef {
    name: "leave.request-shape",
    requirements: &["LEAVE-1"],
    subject: Subject::Required,
    args: &["P1", "S1", "S2", "S3", "S4", "after", "requirement"],
    doc: "a leave: a join-shaped REGISTER (To = From = Contact = the sender's Peer URI, ID-2 of its source) with Expires: 0, the sender's DHT-PeerID, DHT-Link P1 and S1; P1/S1.. = the named peers when given; with `after`, it arrived after that saved message (the transfers come first)",
    run: request_shape,
}];

fn request_shape<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = input
            .str("requirement")
            .map(str::to_string)
            .unwrap_or_else(|| "LEAVE-1".to_string());
        let r = input.subject(cx, "leave.request-shape")?.clone();
        let bad = |expected: String, actual: String| -> Stop {
            match finding(&req, expected, actual) {
                Stop::Fail(f) => Stop::Fail(f.at(r.at)),
                other => other,
            }
        };
        let Some(m) = r.message.as_ref() else {
            return Err(bad("a leave REGISTER".into(), r.describe()));
        };
        if Class::of_request(m) != Class::Leave {
            return Err(bad(
                "a leave: join-shaped (To = From = the sender's Peer URI) with Expires: 0".into(),
                format!(
                    "a {} request: {}",
                    Class::of_request(m).name(),
                    r.describe()
                ),
            ));
        }
        let sender = Peer::at(r.from);
        let heads = [
            ("To", m.to().and_then(|t| t.addr.uri.peer())),
            ("From", m.from().and_then(|t| t.addr.uri.peer())),
            (
                "Contact",
                m.contact_addrs().next().and_then(|c| c.addr.uri.peer()),
            ),
            ("DHT-PeerID", m.sender_peer()),
        ];
        for (h, p) in heads {
            if p.map(|p| p.id) != Some(sender.id) {
                return Err(bad(
                    format!(
                        "{h} = the leaver's Peer URI (Peer-ID {}…, ID-2 of its source {})",
                        &sender.id.to_hex()[..8],
                        r.from
                    ),
                    format!(
                        "{h} names {}",
                        p.map_or("no peer".to_string(), |p| cx.show(&p))
                    ),
                ));
            }
        }
        if m.expires() != Some(0) {
            return Err(bad(
                "Expires: 0".into(),
                format!("Expires {:?}", m.expires()),
            ));
        }
        let link = |kind: LinkKind, depth: u8| {
            m.dht_links()
                .find(|l| l.link.kind == kind && l.link.depth == depth)
                .and_then(|l| l.addr.uri.peer())
        };
        for (key, kind, depth) in [
            ("P1", LinkKind::P, 1),
            ("S1", LinkKind::S, 1),
            ("S2", LinkKind::S, 2),
            ("S3", LinkKind::S, 3),
            ("S4", LinkKind::S, 4),
        ] {
            let got = link(kind, depth);
            let must = matches!(key, "P1" | "S1");
            if must && got.is_none() {
                return Err(bad(
                    format!("DHT-Link {key} (the leaver's current {key})"),
                    "none".into(),
                ));
            }
            if let Some(want) = input.str(key) {
                let ok = match want {
                    "none" => got.is_none(),
                    name => got.is_some_and(|g| cx.peer_of(name).is_ok_and(|w| w.id == g.id)),
                };
                if !ok {
                    return Err(bad(
                        format!("DHT-Link {key} = {want}"),
                        format!("{key} = {}", cx.show_opt(got.as_ref())),
                    ));
                }
            }
        }
        if let Some(name) = input.str("after") {
            let Some(before) = cx.saved.get(name) else {
                return Err(Stop::Error(format!("no saved message {name:?}")));
            };
            if before.at > r.at {
                return Err(bad(
                    format!("the leave sent after {name} (the hand-over comes first)"),
                    format!(
                        "the leave arrived {:.0} ms before it",
                        before.at.duration_since(r.at).as_secs_f64() * 1000.0
                    ),
                ));
            }
        }
        Ok(())
    })
}
