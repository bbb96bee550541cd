/*!
Message verifiers: checks of one received message (the subject), run from
an `expect`'s `checks` list.
*/

use p2psip_wire::{ParseOptions, Rport, parse, peer_id};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::Ctx;

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "msg.strict",
        requirements: &[
            "WIRE-1", "WIRE-2", "WIRE-3", "WIRE-4", "WIRE-5", "ID-1", "ID-2",
        ],
        subject: Subject::Required,
        args: &[],
        doc: "the message passes the strict parser (PROFILE §14.1): no deviation from the senders' rules",
        run: strict,
    },
    CheckDef {
        name: "msg.p2p",
        requirements: &["WIRE-2", "WIRE-4"],
        subject: Subject::Required,
        args: &[],
        doc: "a P2P message: Supported: dht (and Require: dht on requests) and exactly one complete DHT-PeerID",
        run: p2p,
    },
    CheckDef {
        name: "msg.sender-identity",
        requirements: &["WIRE-4", "ID-2"],
        subject: Subject::Required,
        args: &[],
        doc: "the DHT-PeerID describes the sender: its Peer URI is the source address and its Peer-ID the ID-2 ID of it",
        run: sender_identity,
    },
    CheckDef {
        name: "msg.options-200",
        requirements: &["TXN-4"],
        subject: Subject::Required,
        args: &[],
        doc: "an OPTIONS answer is 200 OK with Supported: dht and a DHT-PeerID",
        run: options_200,
    },
    CheckDef {
        name: "msg.via-received-rport",
        requirements: &["NAT-2"],
        subject: Subject::Required,
        args: &[],
        doc: "a response's top Via has received=<source IP> and, when the request asked, rport=<source port>",
        run: via_received_rport,
    },
];

fn strict<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "msg.strict")?;
        let opts = ParseOptions {
            max_size: usize::MAX,
            ..ParseOptions::strict().with_transport(r.transport)
        };
        match parse(&r.bytes, opts) {
            Ok(_) => Ok(()),
            Err(e) => Err(finding(
                e.requirement(),
                "a message that follows the senders' rules (strict parse, PROFILE §14.1)",
                format!("{}: {e}", r.describe()),
            )),
        }
    })
}

fn p2p<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "msg.p2p")?;
        let Some(m) = r.message.as_ref() else {
            return Err(finding("WIRE-4", "a SIP message", r.describe()));
        };
        if !m.supports_dht() {
            return Err(finding(
                "WIRE-2",
                "Supported: dht on every P2P message",
                format!("no Supported: dht in {}", r.describe()),
            ));
        }
        if m.is_request() && !m.requires_dht() {
            return Err(finding(
                "WIRE-2",
                "Require: dht on every P2P request",
                format!("no Require: dht in {}", r.describe()),
            ));
        }
        let ids: Vec<_> = m
            .headers
            .iter()
            .filter_map(|h| match h {
                p2psip_wire::Header::DhtPeerId(d) => Some(d),
                _ => None,
            })
            .collect();
        if ids.len() != 1 {
            return Err(finding(
                "WIRE-4",
                "exactly one DHT-PeerID",
                format!("{} in {}", ids.len(), r.describe()),
            ));
        }
        let d = ids[0];
        if d.algorithm.is_none() || d.dht.is_none() || d.overlay.is_none() {
            return Err(finding(
                "WIRE-4",
                "DHT-PeerID with algorithm, dht and overlay",
                format!(
                    "{:?}",
                    String::from_utf8_lossy(&r.bytes)
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("dht-peerid"))
                        .unwrap_or("")
                ),
            ));
        }
        Ok(())
    })
}

fn sender_identity<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "msg.sender-identity")?;
        let Some(m) = r.message.as_ref() else {
            return Err(finding("WIRE-4", "a SIP message", r.describe()));
        };
        let Some(p) = m.sender_peer() else {
            return Err(finding(
                "WIRE-4",
                "a DHT-PeerID naming the sender's Peer URI",
                format!("none in {}", r.describe()),
            ));
        };
        let tcp = r.transport == p2psip_wire::Transport::Tcp;
        // Over TCP the source port is ephemeral (ID-7): compare the IP only.
        let addr_ok = if tcp {
            p.addr.ip() == r.from.ip()
        } else {
            p.addr == r.from
        };
        if !addr_ok {
            return Err(finding(
                "WIRE-4",
                format!("DHT-PeerID describing the sender at {}", r.from),
                format!("DHT-PeerID names {}", p.addr),
            ));
        }
        if p.id != peer_id(p.addr.ip(), p.addr.port()) {
            return Err(finding(
                "ID-2",
                format!(
                    "Peer-ID {} (ID-2 of {})",
                    peer_id(p.addr.ip(), p.addr.port()),
                    p.addr
                ),
                format!("Peer-ID {}", p.id),
            ));
        }
        Ok(())
    })
}

fn options_200<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "msg.options-200")?;
        let Some(m) = r.message.as_ref() else {
            return Err(finding("TXN-4", "200 OK", r.describe()));
        };
        if m.status() != Some(200) {
            return Err(finding("TXN-4", "200 OK", r.describe()));
        }
        if !m.supports_dht() {
            return Err(finding("TXN-4", "Supported: dht in the 200", r.describe()));
        }
        if m.dht_peer_id().is_none() {
            return Err(finding("TXN-4", "a DHT-PeerID in the 200", r.describe()));
        }
        Ok(())
    })
}

fn via_received_rport<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "msg.via-received-rport")?;
        let Some(v) = r.message.as_ref().and_then(|m| m.top_via()) else {
            return Err(finding("NAT-2", "a response with a Via", r.describe()));
        };
        if v.received != Some(r.local.ip()) {
            return Err(finding(
                "NAT-2",
                format!("received={} in the top Via", r.local.ip()),
                match v.received {
                    Some(x) => format!("received={x}"),
                    None => "no received parameter".to_string(),
                },
            ));
        }
        match v.rport {
            Rport::Filled(p) if p == r.local.port() => Ok(()),
            Rport::Filled(p) => Err(finding(
                "NAT-2",
                format!("rport={} in the top Via", r.local.port()),
                format!("rport={p}"),
            )),
            other => Err(finding(
                "NAT-2",
                format!("rport={} in the top Via", r.local.port()),
                format!("{other:?}"),
            )),
        }
    })
}
