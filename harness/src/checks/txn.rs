/*!
Transaction checks (TXN-1, TXN-2), measured on what a puppet received.

TXN-1 timing: an unanswered request is retransmitted after T1, 2·T1,
4·T1..., capped at T2, until Timer F = 64·T1. Measured gaps may be late
by scheduling noise but not early: each gap must lie in
[0.7·e − 15 ms, 1.5·e + 200 ms] for the expected interval e. That still
tells a doubling schedule from a constant or a missing one.
*/

use std::time::{Duration, Instant};

use p2psip_wire::Header;

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::{Ctx, Stop};
use crate::puppet::{Kind, Matcher, Received};

pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        name: "txn.retransmits",
        requirements: &["TXN-1"],
        subject: Subject::Required,
        args: &["count", "puppet"],
        doc: "the unanswered subject request is retransmitted `count` times (default 4) at T1, 2·T1, 4·T1... capped at T2",
        run: retransmits,
    },
    CheckDef {
        name: "txn.gives-up",
        requirements: &["TXN-1"],
        subject: Subject::Required,
        args: &["puppet"],
        doc: "the unanswered subject request is retransmitted until Timer F (64·T1) and not after",
        run: gives_up,
    },
    CheckDef {
        name: "txn.same-response",
        requirements: &["TXN-2"],
        subject: Subject::Required,
        args: &["first"],
        doc: "the subject (answer to a retransmission) repeats the first final response (`first`, a saved name): same status, To tag and Contacts",
        run: same_response,
    },
];

/// Every transmission of the subject's transaction seen by the puppet
/// that received the subject, in arrival order.
fn transmissions_matcher(r: &Received) -> Option<Matcher> {
    let branch = r.message.as_ref()?.top_via()?.branch.as_ref()?.to_string();
    Some(Matcher {
        kind: Kind::Request {
            method: None,
            class: None,
            branch: Some(branch),
        },
        from: Some(r.from),
        transport: Some(r.transport),
        include_auto: true,
    })
}

fn expected_gaps(cx: &Ctx, n: usize) -> Vec<Duration> {
    let (t1, t2) = (cx.params.t1(), cx.params.t2());
    (0..n)
        .map(|i| (t1 * 2u32.saturating_pow(i as u32).min(1 << 20)).min(t2))
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{}", d.as_millis())
}

fn receiver(
    cx: &Ctx,
    input: &CheckInput,
    r: &Received,
) -> Result<std::sync::Arc<crate::puppet::Puppet>, Stop> {
    if let Some(p) = input.str("puppet") {
        return cx.puppet(p);
    }
    cx.puppets
        .iter()
        .find(|(_, p)| p.addr() == r.local)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| Stop::Error("txn check: no puppet received the subject".into()))
}

fn retransmits<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "txn.retransmits")?.clone();
        let count = input.int("count").unwrap_or(4).clamp(1, 10) as usize;
        let Some(m) = transmissions_matcher(&r) else {
            return Err(finding(
                "WIRE-1",
                "a request with a Via branch",
                r.describe(),
            ));
        };
        let puppet = receiver(cx, input, &r)?;
        let gaps = expected_gaps(cx, count);
        let total: Duration = gaps.iter().sum();
        let wait_until = cx.until(total * 3 / 2 + Duration::from_millis(500));
        let seen = puppet.inbox().wait_count(&m, count + 1, wait_until).await;
        let mut times: Vec<Instant> = seen.iter().map(|x| x.at).collect();
        times.sort();
        let expected = format!(
            "{count} retransmissions, gaps {} ms (T1 = {} ms, doubling, capped at T2)",
            gaps.iter().map(|g| ms(*g)).collect::<Vec<_>>().join(", "),
            cx.params.t1_ms
        );
        let got: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let got_text = if got.is_empty() {
            "no retransmission".to_string()
        } else {
            format!(
                "{} retransmissions, gaps {} ms",
                got.len(),
                got.iter().map(|g| ms(*g)).collect::<Vec<_>>().join(", ")
            )
        };
        if got.len() < count {
            return Err(finding("TXN-1", expected, got_text));
        }
        for (i, (g, e)) in got.iter().zip(&gaps).enumerate() {
            let lo = e.mul_f64(0.7).saturating_sub(Duration::from_millis(15));
            let hi = e.mul_f64(1.5) + Duration::from_millis(200);
            if *g < lo || *g > hi {
                return Err(finding(
                    "TXN-1",
                    expected,
                    format!(
                        "{got_text}: gap {} is {} ms, outside [{}, {}] ms",
                        i + 1,
                        ms(*g),
                        ms(lo),
                        ms(hi)
                    ),
                ));
            }
        }
        cx.rec
            .note(format!("TXN-1 retransmission gaps: {got_text}"));
        Ok(())
    })
}

fn gives_up<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let r = input.subject(cx, "txn.gives-up")?.clone();
        let Some(m) = transmissions_matcher(&r) else {
            return Err(finding(
                "WIRE-1",
                "a request with a Via branch",
                r.describe(),
            ));
        };
        let puppet = receiver(cx, input, &r)?;
        let f = cx.timer_f();
        let slack = Duration::from_millis(300);
        let watch_until = r.at + f + Duration::from_millis(1000);
        if watch_until > cx.deadline {
            return Err(Stop::Error(format!(
                "txn.gives-up needs the case deadline to leave {} ms after the request",
                ms(f + Duration::from_millis(1000))
            )));
        }
        // Watching a quiet period: nothing to wait for but time.
        tokio::time::sleep_until(tokio::time::Instant::from_std(watch_until)).await;
        let seen = puppet.inbox().matching(&m);
        // The schedule up to Timer F: how many transmissions fit.
        let mut t = Duration::ZERO;
        let mut expected_sends = 1;
        for g in expected_gaps(cx, 64) {
            t += g;
            if t >= f {
                break;
            }
            expected_sends += 1;
        }
        let late: Vec<&Received> = seen.iter().filter(|x| x.at > r.at + f + slack).collect();
        if let Some(l) = late.first() {
            return Err(finding(
                "TXN-1",
                format!("no retransmission after Timer F = {} ms", ms(f)),
                format!(
                    "a retransmission {} ms after the first transmission",
                    ms(l.at.saturating_duration_since(r.at))
                ),
            ));
        }
        // Scheduling noise may cost the last one before F.
        if seen.len() + 1 < expected_sends {
            return Err(finding(
                "TXN-1",
                format!(
                    "retransmissions until Timer F: about {expected_sends} transmissions in {} ms",
                    ms(f)
                ),
                format!("{} transmissions", seen.len()),
            ));
        }
        cx.rec
            .note(format!("TXN-1: {} transmissions until Timer F", seen.len()));
        Ok(())
    })
}

fn to_tag(r: &Received) -> Option<String> {
    r.message
        .as_ref()?
        .to()?
        .tag
        .as_ref()
        .map(|t| t.to_string())
}

fn contacts(r: &Received) -> Vec<String> {
    let Some(m) = r.message.as_ref() else {
        return Vec::new();
    };
    m.headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(format!("{c:?}")),
            _ => None,
        })
        .collect()
}

fn same_response<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let second = input.subject(cx, "txn.same-response")?.clone();
        let Some(first_name) = input.str("first") else {
            return Err(Stop::Error("txn.same-response needs args.first".into()));
        };
        let Some(first) = cx.saved.get(first_name).cloned() else {
            return Err(Stop::Error(format!("no saved message {first_name:?}")));
        };
        if first.status() != second.status() {
            return Err(finding(
                "TXN-2",
                format!("the same final response again ({})", first.describe()),
                second.describe(),
            ));
        }
        if to_tag(&first) != to_tag(&second) {
            return Err(finding(
                "TXN-2",
                format!(
                    "the same To tag {:?} (the same response, not a new transaction)",
                    to_tag(&first)
                ),
                format!("To tag {:?}", to_tag(&second)),
            ));
        }
        if contacts(&first) != contacts(&second) {
            return Err(finding(
                "TXN-2",
                "the same Contacts as the first response",
                "different Contacts",
            ));
        }
        Ok(())
    })
}
