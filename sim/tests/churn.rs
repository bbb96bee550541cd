//! Seeded churn under the failure rules of CHECKS.md: draws that would
//! break them are discarded and redrawn (counted, never failures), and the
//! ring heals once churn stops.

use std::time::Duration;

use p2psip_sim::churn::{Broken, Lifetimes, Rules};
use p2psip_sim::report::StepReport;
use p2psip_sim::runner::{self, Options};
use p2psip_sim::{Scenario, Sim, SimConfig};

fn churn_run(lifetimes: Lifetimes, seed: u64) -> p2psip_sim::Report {
    let s = Scenario::new("churn")
        .join(48, Some(8.0))
        .converge()
        .register(8)
        .churn(lifetimes, 15.0, 15.0, 0.3, 4.0)
        .converge()
        .settle()
        .check_replicas()
        .check_registrations()
        .lookups(500, 16);
    let opts = Options {
        measured: false,
        ..Options::default()
    };
    runner::run(SimConfig::new(seed), opts, &s).expect("a valid run")
}

fn assert_churned_and_healed(r: &p2psip_sim::Report) {
    let StepReport::Churn(c) = &r.steps[3].report else {
        panic!("step 4 churns");
    };
    assert!(c.failures + c.leaves >= 10, "{c:?}");
    assert_eq!(c.joins, c.failures + c.leaves, "a newcomer per departure");
    assert!(c.lookups.lookups > 0);
    // Discards are counted by rule, never as failures.
    let discarded: usize = c.discarded.values().sum();
    eprintln!(
        "{}: {} failures, {} leaves, {discarded} discarded {:?}, lookups {:.1} % correct",
        c.lifetimes,
        c.failures,
        c.leaves,
        c.discarded,
        c.lookups.success_rate * 100.0
    );
    assert!(r.passed, "{}", r.summary());
}

#[test]
fn exponential_churn_heals() {
    assert_churned_and_healed(&churn_run(Lifetimes::Exponential, 21));
}

#[test]
fn weibull_churn_heals() {
    assert_churned_and_healed(&churn_run(Lifetimes::Weibull { shape: 0.5 }, 22));
}

/// A converged ring of `n` peers with fast timers.
fn ring(n: usize) -> Sim {
    let mut sim = Sim::new(SimConfig::new(3));
    let a = sim.add_node(None);
    for _ in 1..n {
        sim.run_for(Duration::from_millis(125)).unwrap();
        sim.add_node(Some(a));
    }
    sim.run_for(Duration::from_secs(20)).unwrap();
    sim
}

#[test]
fn the_rules_refuse_what_no_implementation_could_survive() {
    let mut sim = ring(8);
    let mut rules = Rules::for_sim(&sim);
    let order = sim.live(); // ring order
    // Four ring-consecutive peers at once: r = 4.
    assert_eq!(rules.check(&sim, &order[2..6]), Err(Broken::ConsecutiveRun));
    // Three are fine.
    assert_eq!(rules.check(&sim, &order[2..5]), Ok(()));
    // Kill two now; within T + F they still count as dead, so two more
    // next to them make a run of four.
    for e in &order[2..4] {
        rules.killed(sim.node(*e).unwrap().me().id, sim.now());
        sim.kill(*e);
    }
    assert_eq!(rules.check(&sim, &order[4..6]), Err(Broken::ConsecutiveRun));
    assert_eq!(rules.check(&sim, &[order[4]]), Ok(()));
    // |L| >= r + 1 before each failure: 6 live, at most 2 more.
    assert_eq!(
        rules.check(&sim, &[order[0], order[6], order[7]]),
        Err(Broken::TooFewPeers)
    );
    // Once healed (beyond T + F) the window has passed.
    sim.run_for(Duration::from_secs(20)).unwrap();
    assert_eq!(rules.check(&sim, &order[4..6]), Ok(()));
}

#[test]
fn the_rules_keep_a_live_successor_for_every_peer_and_joiners_their_bootstrap() {
    let mut sim = ring(8);
    let mut rules = Rules::for_sim(&sim);
    let boot = sim.live()[0];
    // A newcomer knows only its admitting peer at first (JOIN-6) and
    // retries its join through its bootstrap.
    let j = sim.add_node(Some(boot));
    assert_eq!(rules.check(&sim, &[boot]), Err(Broken::JoinerBootstrap));
    sim.run_for(Duration::from_millis(300)).unwrap();
    let node = sim.node(j).unwrap();
    let succs = node.successors();
    if succs.len() == 1 {
        let s1 = sim.truth().endpoint(&succs[0].id).unwrap();
        assert_eq!(rules.check(&sim, &[s1]), Err(Broken::NoLiveSuccessor));
    }
}
