/*!
Node checks: liveness (the OPTIONS probe of TXN-4, used after torture to
show the receiver "stays up", WIRE-7).
*/

use std::time::Duration;

use super::{CheckDef, CheckFuture, CheckInput, Subject, finding};
use crate::engine::ctx::Ctx;
use crate::probe;

pub static CHECKS: &[CheckDef] = &[CheckDef {
    name: "node.alive",
    requirements: &["TXN-4", "WIRE-7"],
    subject: Subject::None,
    args: &["node", "within_ms", "requirement"],
    doc: "the node (default iut1) answers an OPTIONS probe with 200 within `within_ms` (default 2000)",
    run: alive,
}];

fn alive<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a> {
    Box::pin(async move {
        let node = input.str("node").unwrap_or("iut1").to_string();
        let req = input
            .str("requirement")
            .map(str::to_string)
            .unwrap_or_else(|| cx.primary_requirement());
        let addr = cx.contact_of(&node)?;
        let within = Duration::from_millis(input.int("within_ms").unwrap_or(2000).max(1) as u64);
        let deadline = cx.until(within);
        let interval = cx.params.t1().max(Duration::from_millis(50)) * 2;
        match probe::options(&cx.observer, addr, deadline, interval).await {
            Ok(_) => Ok(()),
            Err(e) => Err(finding(
                &req,
                format!("{node} still answers OPTIONS with 200 (it stays up)"),
                e.to_string(),
            )),
        }
    })
}
