/*!
Join checks: the shape of a joiner's REGISTER (JOIN-1) and of the
admitting peer's 200 (JOIN-4, JOIN-5).
*/

use p2psip_wire::{Class, Peer, peer_id};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};
use crate::oracle::links_of;

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "join.request-shape",
        requirements: &["JOIN-1"],
        subject: Subject::Required,
        args: &[],
        doc: "a join REGISTER: Request-URI sip:HOST:PORT of the contacted peer, To = From = Contact = the joiner's Peer URI (ID-2 of its source), Expires > 0, DHT-PeerID, Require/Supported: dht",
        run: request_shape,
    },
    CheckDef {
        name: "join.admitted",
        requirements: &["JOIN-4", "JOIN-5"],
        subject: Subject::Required,
        args: &["pred"],
        doc: "the admitting 200: echoes the joiner's Contact with an expiry, carries the responder's DHT-PeerID and S1, and a P1 that is not the joiner (JOIN-5); with `pred`, P1 is that node or \"none\"",
        run: admitted,
    },
    CheckDef {
        name: "join.probe-first",
        requirements: &["JOIN-10"],
        subject: Subject::Required,
        args: &["probe"],
        doc: "the subject (a join) arrived after the saved message `probe` (the joiner's OPTIONS to its bootstrap)",
        run: probe_first,
    },
];

fn probe_first<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let join = input.subject(cx, "join.probe-first")?;
        let name = input
            .str("probe")
            .ok_or_else(|| Stop::Error("join.probe-first needs probe (a saved message)".into()))?;
        let probe = cx
            .saved
            .get(name)
            .ok_or_else(|| Stop::Error(format!("no saved message {name:?}")))?;
        if probe.at > join.at {
            return Err(finding(
                "JOIN-10",
                "the OPTIONS to the bootstrap before the join REGISTER",
                format!(
                    "the join arrived {:.0} ms before the OPTIONS",
                    probe.at.duration_since(join.at).as_secs_f64() * 1000.0
                ),
            ));
        }
        Ok(())
    })
}

fn request_shape<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "join.request-shape")?;
        let bad = |expected: &str, actual: String| finding("JOIN-1", expected, actual);
        let Some(m) = r.message.as_ref() else {
            return Err(bad("a join REGISTER", r.describe()));
        };
        if Class::of_request(m) != Class::Join {
            return Err(bad(
                "a join REGISTER (To = From = Contact = a Peer URI, Expires > 0)",
                r.describe(),
            ));
        }
        let uri = m.request_uri().and_then(|u| u.socket_addr());
        let uri_ok = m
            .request_uri()
            .is_some_and(|u| u.user.is_none() && u.params.peer_id.is_none());
        if uri != Some(r.local) || !uri_ok {
            return Err(bad(
                &format!("Request-URI sip:{}", r.local),
                format!(
                    "Request-URI {}",
                    m.request_uri().map(|u| u.to_string()).unwrap_or_default()
                ),
            ));
        }
        let joiner = Peer::at(r.from);
        let peers = [
            ("To", m.to().and_then(|t| t.addr.uri.peer())),
            ("From", m.from().and_then(|t| t.addr.uri.peer())),
            (
                "Contact",
                m.contact_addrs().next().and_then(|c| c.addr.uri.peer()),
            ),
            ("DHT-PeerID", m.sender_peer()),
        ];
        for (h, p) in peers {
            if p != Some(joiner) {
                return Err(bad(
                    &format!(
                        "{h} = the joiner's Peer URI {} (ID-2 of its source {})",
                        joiner.id, r.from
                    ),
                    format!(
                        "{h} names {}",
                        p.map_or("no peer".to_string(), |p| format!("{} at {}", p.id, p.addr))
                    ),
                ));
            }
        }
        if m.expires().is_none_or(|e| e == 0) {
            return Err(bad("Expires > 0", format!("Expires {:?}", m.expires())));
        }
        if !m.requires_dht() || !m.supports_dht() {
            return Err(bad("Require: dht and Supported: dht", r.describe()));
        }
        let _ = peer_id;
        Ok(())
    })
}

fn admitted<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "join.admitted")?.clone();
        let Some(m) = r.message.as_ref() else {
            return Err(finding("JOIN-4", "200 OK to the join", r.describe()));
        };
        if m.status() != Some(200) {
            return Err(finding("JOIN-4", "200 OK to the join", r.describe()));
        }
        let joiner = cx
            .puppets
            .iter()
            // Over TCP the puppet's end is an ephemeral port on its IP
            // (each puppet has an IP of its own).
            .find(|(_, p)| {
                p.addr() == r.local
                    || (r.transport == p2psip_wire::Transport::Tcp && p.addr().ip() == r.local.ip())
            })
            .map(|(_, p)| p.peer())
            .ok_or_else(|| {
                Stop::Error("join.admitted: the subject was not received by a puppet".into())
            })?;
        let echoed = m
            .contact_addrs()
            .find(|c| c.addr.uri.peer_id() == Some(joiner.id));
        let Some(c) = echoed else {
            return Err(finding(
                "JOIN-4",
                format!("the 200 echoes the joiner's Contact {}", cx.show(&joiner)),
                r.describe(),
            ));
        };
        let expiry = c.expires.or(m.expires());
        if expiry.is_none_or(|e| e == 0) {
            return Err(finding(
                "JOIN-4",
                "the echoed Contact with an expiry (expires parameter or Expires > 0)",
                format!("expiry {expiry:?}"),
            ));
        }
        if m.sender_peer().is_none() {
            return Err(finding(
                "JOIN-4",
                "the responder's DHT-PeerID in the 200",
                r.describe(),
            ));
        }
        let l = links_of(&r).ok_or_else(|| Stop::Error("no links".into()))?;
        if l.pred.is_some_and(|p| p.id == joiner.id) {
            return Err(finding(
                "JOIN-5",
                "P1 in the 200 = the admitting peer's predecessor before the join, not the joiner (it adopts the joiner only after sending the 200)",
                format!("P1 = {}", cx.show(&joiner)),
            ));
        }
        // A first peer (no predecessor) is its own successor: reporting
        // itself is optional (PROFILE §14 leaves it open; the reference
        // node omits it).
        if l.succ.is_empty() && l.pred.is_some() {
            return Err(finding(
                "JOIN-4",
                "S1 in the 200 (the admitting peer's successor)",
                "no S link",
            ));
        }
        if let Some(want) = input.str("pred") {
            let ok = match want {
                "none" => l.pred.is_none(),
                name => {
                    let w = cx.peer_of(name)?;
                    l.pred.is_some_and(|p| p.id == w.id)
                }
            };
            if !ok {
                return Err(finding(
                    "JOIN-4",
                    format!("P1 in the 200 = {want} (the admitting peer's predecessor)"),
                    format!("P1 = {}", cx.show_opt(l.pred.as_ref())),
                ));
            }
        }
        Ok(())
    })
}
