/*!
Wire checks over everything an IUT sent to the harness in a case: every
message is strict-parsed (PROFILE §14.1) and each deviation is a finding
tied to the requirement it breaks (WIRE-1..WIRE-5, ID-1, ID-2).

Only meaningful in cases where the harness itself sends conformant
messages: a response echoes the request's From and To, so a deviation
the harness put there on purpose would come back.
*/

use p2psip_wire::{ParseOptions, Transport, looks_like_stun, parse};

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Role};
use crate::evidence::Dir;

pub static CHECKS: &[CheckDef] = &[CheckDef {
    name: "wire.iut-sent-strict",
    requirements: &[
        "WIRE-1", "WIRE-2", "WIRE-3", "WIRE-4", "WIRE-5", "ID-1", "ID-2",
    ],
    subject: Subject::None,
    args: &[],
    doc: "every message an IUT instance sent to a harness socket in this case passes the strict parser",
    run: iut_sent_strict,
}];

fn iut_sent_strict<'a>(cx: &'a mut Ctx, _input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let iuts: Vec<(String, std::net::SocketAddr)> = cx
            .nodes
            .iter()
            .filter(|n| n.role == Role::Iut)
            .map(|n| (n.name.clone(), n.addr()))
            .collect();
        let mut checked = 0;
        for p in cx.rec.packets() {
            if p.dir != Dir::Received {
                continue;
            }
            let Some((name, _)) = iuts.iter().find(|(_, a)| *a == p.from) else {
                continue;
            };
            let b = &p.bytes;
            if b.iter().all(|c| *c == b'\r' || *c == b'\n') || looks_like_stun(b) {
                continue;
            }
            checked += 1;
            let opts = ParseOptions {
                max_size: usize::MAX,
                ..ParseOptions::strict().with_transport(p.transport)
            };
            if let Err(e) = parse(b, opts) {
                let what = crate::evidence::summarize(b, p.transport);
                return Err(finding(
                    e.requirement(),
                    format!("every message {name} sends follows the senders' rules (strict parse)"),
                    format!(
                        "{what} at {:.1} ms{}: {e}",
                        cx.rec.ms(p.at),
                        if p.transport == Transport::Tcp {
                            " over TCP"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        cx.rec.note(format!(
            "wire.iut-sent-strict: {checked} IUT messages strict-parsed, all clean"
        ));
        Ok(())
    })
}
