//! Zave-style schedules (CHECKS: a join into a gap followed by a failure
//! of the joiner), which random churn rarely hits: every round heals to
//! the ideal ring, and so does the ring at the end.

use p2psip_sim::report::StepReport;
use p2psip_sim::runner::{self, Options};
use p2psip_sim::{Scenario, SimConfig};

#[test]
fn joins_into_gaps_then_failures_of_the_joiners_heal() {
    let s = Scenario::new("zave")
        .join(32, Some(8.0))
        .converge()
        .register(8)
        .zave(8)
        .converge()
        .settle()
        .check_replicas()
        .check_registrations()
        .lookups(500, 32);
    let opts = Options {
        measured: false,
        ..Options::default()
    };
    let r = runner::run(SimConfig::new(9), opts, &s).expect("a valid run");
    let StepReport::Zave(z) = &r.steps[3].report else {
        panic!("step 4 is the schedule");
    };
    assert_eq!(z.rounds.len(), 8);
    let variants: std::collections::BTreeSet<&str> = z.rounds.iter().map(|r| r.variant).collect();
    assert_eq!(variants.len(), 4, "every shape ran");
    for round in &z.rounds {
        assert!(round.discarded.is_none(), "{round:?}");
        assert!(round.killed_after_ms.is_some(), "{round:?}");
        assert!(round.healed_intervals.is_some(), "{round:?}");
    }
    assert!(r.passed, "{}", r.summary());
}
