/*!
Security checks (PROFILE §10, §1 ID-7; CHECKS C-S2): arc containment.
A source may only claim the one Peer-ID of its address: not another
port's ID inside its IP's arc of 2^16 IDs, and no ID outside that arc.
*/

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use p2psip_wire::build::{self, Identity};
use p2psip_wire::{Peer, Transport, peer_id};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};
use crate::puppet::Matcher;

pub static CHECKS: &[CheckDef] = &[CheckDef {
    name: "security.arc-containment",
    requirements: &["ID-7", "C-S2"],
    subject: Subject::None,
    args: &["from", "node", "requirement"],
    doc: "from puppet `from`'s socket, joins to `node` claiming (a) the Peer-ID of another port on the same IP (inside the source's arc) and (b) the Peer-ID of the same port on another IP (outside it) each get 493",
    run: arc_containment,
}];

/// Another address of the same family: the last bit of the IP flipped.
fn other_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mut o = v4.octets();
            o[3] ^= 1;
            IpAddr::from(o)
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[15] ^= 1;
            IpAddr::from(o)
        }
    }
}

fn arc_containment<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let req = input.str("requirement").unwrap_or("ID-7").to_string();
        let from = input
            .str("from")
            .ok_or_else(|| Stop::Error("security.arc-containment needs from (a puppet)".into()))?
            .to_string();
        let p = cx.puppet(&from)?;
        let node = input.str("node").unwrap_or("iut1").to_string();
        let target = cx.peer_of(&node)?;
        let src = p.addr();
        let port = if src.port() == u16::MAX {
            src.port() - 1
        } else {
            src.port() + 1
        };
        let same_ip = SocketAddr::new(src.ip(), port);
        let other = SocketAddr::new(other_ip(src.ip()), src.port());
        let claims = [
            (
                format!(
                    "the Peer-ID of {same_ip} (same IP, another port: inside the source's arc)"
                ),
                Peer::at(same_ip),
            ),
            (
                format!("the Peer-ID of {other} (another IP: outside the source's arc)"),
                Peer::at(other),
            ),
        ];
        for (what, claimed) in claims {
            debug_assert_eq!(claimed.id, peer_id(claimed.addr.ip(), claimed.addr.port()));
            let me =
                Identity::new(claimed, &cx.params.overlay).with_expires(cx.params.peer_expires_s);
            let txn = p.txn();
            let m = build::join(&me, target.addr, &txn, cx.params.expires_s);
            let bytes = p2psip_wire::print(&m);
            let matcher = Matcher::response_to(&txn.branch, &[]).from(target.addr);
            let deadline = cx.until(Duration::from_millis(2000).max(cx.params.t1() * 8));
            let mut gap = cx.params.t1().max(Duration::from_millis(10));
            let mut answer = None;
            'send: loop {
                p.send_bytes(target.addr, Transport::Udp, &bytes, &[], Duration::ZERO)
                    .await
                    .map_err(|e| Stop::Error(format!("{from} could not send: {e}")))?;
                let next = (Instant::now() + gap).min(deadline);
                while let Some(r) = p.inbox().wait(&matcher, next).await {
                    if r.status().is_some_and(|s| s >= 200) {
                        answer = Some(r);
                        break 'send;
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
                gap = (gap * 2).min(cx.params.t2());
            }
            let expected = format!(
                "493 to a join from {src} claiming {what} (C-S2: a source owns only its own Peer-ID)"
            );
            match answer {
                Some(r) if r.status() == Some(493) => {}
                Some(r) => {
                    return Err(match finding(&req, expected, r.describe()) {
                        Stop::Fail(f) => Stop::Fail(f.at(r.at)),
                        other => other,
                    });
                }
                None => return Err(finding(&req, expected, "no final response")),
            }
        }
        Ok(())
    })
}
