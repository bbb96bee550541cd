//! The acceptance run: 64 peers join from one bootstrap, converge, take
//! registrations and lookups, lose peers within the failure rules and
//! heal. One run (harness fast timers, virtual time) is shared by the
//! tests below, each asserting its own checks.

use std::sync::OnceLock;

use p2psip_sim::report::{Check, StepReport};
use p2psip_sim::runner::{self, Options};
use p2psip_sim::{Report, Scenario, SimConfig};

const PEERS: usize = 64;

/// CHECKS C-Q1 asks for 100 random keys from every peer; debug builds
/// look up fewer so the suite stays quick there.
fn random_lookups() -> usize {
    if cfg!(debug_assertions) {
        1_000
    } else {
        100 * PEERS
    }
}

fn report() -> &'static Report {
    static R: OnceLock<Report> = OnceLock::new();
    R.get_or_init(|| {
        let s = Scenario::new("acceptance")
            .join(PEERS, Some(8.0))
            .converge()
            .register(16)
            .check_replicas()
            .lookups(random_lookups(), PEERS)
            .fail(6)
            .converge()
            .settle()
            .check_replicas()
            .check_registrations()
            .lookups(random_lookups() / 4, PEERS);
        let opts = Options {
            measured: false,
            ..Options::default()
        };
        runner::run(SimConfig::new(11), opts, &s).expect("a valid run")
    })
}

/// The checks `id` made, failing when there are none.
fn checks(id: &str) -> Vec<&'static Check> {
    let r = report();
    let found: Vec<&Check> = r.checks.iter().filter(|c| c.id == id).collect();
    assert!(!found.is_empty(), "no {id} check in\n{}", r.summary());
    found
}

fn assert_passed(id: &str) {
    for c in checks(id) {
        assert!(
            c.passed,
            "{id} failed: {}\n{}",
            c.detail,
            report().summary()
        );
    }
}

#[test]
fn sixty_four_peers_from_one_bootstrap_reach_the_ideal_ring_in_time() {
    // C-G5 ideal, C-G6 within log2 N + 3 intervals of the last join, C-G7
    // ideal for 10 T after.
    assert_passed("C-G5");
    assert_passed("C-G6");
    assert_passed("C-G7");
    let r = report();
    let StepReport::Converge(c) = &r.steps[1].report else {
        panic!("step 2 is the convergence");
    };
    assert_eq!(c.live, PEERS);
    let bound = (PEERS as f64).log2() + 3.0;
    assert!(c.intervals.is_some_and(|i| i <= bound), "{c:?}");
    assert!(c.stable);
}

#[test]
fn lookups_are_all_correct_at_quiescence_with_few_hops() {
    assert_passed("C-Q1");
    assert_passed("C-Q2");
    assert_passed("C-Q3");
    let r = report();
    let StepReport::Lookups(l) = &r.steps[4].report else {
        panic!("step 5 looks up");
    };
    assert!(l.quiescent);
    assert_eq!(l.stats.lookups, random_lookups() + 3 * PEERS);
    assert_eq!(l.stats.correct, l.stats.lookups, "C-Q1: 100 %");
    let bound = (PEERS as f64).log2() / 2.0 + 1.5;
    assert!(
        l.stats.hops_mean <= bound,
        "mean hops {}",
        l.stats.hops_mean
    );
    assert_eq!(l.stats.loops, 0);
}

#[test]
fn replicas_sit_on_the_hashed_holders() {
    assert_passed("registered");
    assert_passed("C-R1");
    assert_passed("C-R2");
    let r = report();
    let StepReport::CheckReplicas(c) = &r.steps[3].report else {
        panic!("step 4 checks replicas");
    };
    assert_eq!((c.registrations, c.copies), (16, 48));
    assert_eq!((c.placed, c.exact, c.answered), (48, 48, 48));
    assert!(c.expiry_checked && c.expiry_drift_max_s <= 2.0);
}

#[test]
fn failures_within_the_rules_heal_and_lose_no_registration() {
    let r = report();
    let StepReport::Fail(f) = &r.steps[5].report else {
        panic!("step 6 kills");
    };
    assert_eq!(f.peers.len(), 6, "{f:?}");
    assert_eq!(f.live, PEERS - 6);
    // The ring heals: the second convergence passes C-G5..C-G7.
    let after: Vec<&Check> = r.checks.iter().filter(|c| c.step == 6).collect();
    assert!(after.iter().any(|c| c.id == "C-G5"), "{after:?}");
    assert!(after.iter().all(|c| c.passed), "{after:?}");
    assert_passed("C-R3");
    assert_passed("kept");
    let StepReport::CheckRegistrations(k) = &r.steps[9].report else {
        panic!("step 10 looks for the registrations");
    };
    assert_eq!((k.acknowledged, k.found, k.lost), (16, 16, 0));
    // Lookups after healing are all correct again.
    assert_eq!(checks("C-Q1").len(), 2);
}

#[test]
fn the_whole_run_passes() {
    let r = report();
    assert!(r.passed, "{}", r.summary());
    assert_eq!(r.totals.counters.stuck_timers, 0);
    assert_eq!(r.totals.counters.unroutable, 0);
}
