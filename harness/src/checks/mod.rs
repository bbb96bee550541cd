/*!
Named checks: the measurable checks of CHECKS.md (C-*) and the message
verifiers the suites use, written in Rust and called by name from the
suite TOML (`{ do = "check", check = "ring.converged" }`, or in an
`expect`'s `checks = [...]` list, where the matched message is the
check's subject).

Each check returns `Ok(())` or a [`Finding`] (h2spec-style: requirement,
expected, actual). Checks may wait (every wait bounded by the case
deadline), query nodes through the case's observer, and read the oracle.

# Adding a check

1. Write `fn my_check<'a>(cx: &'a mut Ctx, input: &'a CheckInput) -> CheckFuture<'a>`
   in the module of its area, returning `Box::pin(async move { ... })`.
2. Add a [`CheckDef`] for it to that module's `CHECKS` list (name,
   requirements, whether it needs a subject, one-line doc), and make
   sure the module's list is chained in [`all`].
3. Use it from a suite; the loader refuses unknown check names.
*/

pub mod join;
pub mod leave;
pub mod links;
pub mod lookup;
pub mod msg;
pub mod nat;
pub mod node;
pub mod query;
pub mod replicas;
pub mod ring;
pub mod security;
pub mod stab;
pub mod txn;
pub mod wire;

use std::future::Future;
use std::pin::Pin;

use crate::engine::ctx::{Ctx, Finding, StepResult, Stop};
use crate::puppet::Received;

/// What a check is given.
#[derive(Debug, Clone, Default)]
pub struct CheckInput {
    /// The message the check looks at: the match of the `expect` it is
    /// listed in, or a saved message (`subject = "name"`).
    pub subject: Option<Received>,
    pub args: toml::Table,
}

impl CheckInput {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(|v| v.as_str())
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.args.get(key).and_then(|v| v.as_integer())
    }

    pub fn subject(&self, cx: &Ctx, check: &str) -> Result<&Received, Stop> {
        self.subject.as_ref().ok_or_else(|| {
            Stop::Error(format!(
                "check {check} needs a subject message (list it in an expect's checks, or give subject = \"saved-name\") in case {}",
                cx.case.def.id
            ))
        })
    }
}

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;
pub type CheckFn = for<'a> fn(&'a mut Ctx, &'a CheckInput) -> CheckFuture<'a>;

/// Whether a check looks at a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// It needs one.
    Required,
    /// It uses one when given, else queries nodes itself.
    Optional,
    /// It works on the case state only.
    None,
}

/// A named check.
pub struct CheckDef {
    pub name: &'static str,
    /// The requirements (and C-* checks) it verifies.
    pub requirements: &'static [&'static str],
    pub subject: Subject,
    /// Argument names it accepts.
    pub args: &'static [&'static str],
    pub doc: &'static str,
    pub run: CheckFn,
}

/// Every check, by area.
pub fn all() -> impl Iterator<Item = &'static CheckDef> {
    msg::CHECKS
        .iter()
        .chain(links::CHECKS)
        .chain(ring::CHECKS)
        .chain(lookup::CHECKS)
        .chain(txn::CHECKS)
        .chain(wire::CHECKS)
        .chain(node::CHECKS)
        .chain(join::CHECKS)
        .chain(nat::CHECKS)
        .chain(leave::CHECKS)
        .chain(replicas::CHECKS)
        .chain(security::CHECKS)
        .chain(query::CHECKS)
        .chain(stab::CHECKS)
}

pub fn find(name: &str) -> Option<&'static CheckDef> {
    all().find(|c| c.name == name)
}

/// Runs a check by name.
pub async fn run(cx: &mut Ctx, name: &str, input: &CheckInput) -> StepResult {
    let Some(def) = find(name) else {
        return Err(Stop::Error(format!("unknown check {name:?}")));
    };
    (def.run)(cx, input).await
}

/// A finding charged to `req`.
pub fn finding(req: &str, expected: impl Into<String>, actual: impl Into<String>) -> Stop {
    Stop::Fail(Finding::new(req, expected, actual))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for c in super::all() {
            assert!(seen.insert(c.name), "duplicate check {}", c.name);
            assert!(
                !c.doc.is_empty() && !c.requirements.is_empty(),
                "{}",
                c.name
            );
            assert!(c.name.contains('.'), "{}", c.name);
        }
    }

    #[test]
    fn the_suite_guide_lists_every_check() {
        let guide = include_str!("../../../suites/README.md");
        for c in super::all() {
            assert!(
                guide.contains(&format!("| `{}` |", c.name)),
                "suites/README.md does not list check {}",
                c.name
            );
        }
    }
}
