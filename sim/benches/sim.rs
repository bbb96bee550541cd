//! Simulator throughput: a ring of 256 peers joining from one bootstrap
//! until it is ideal, and a converged ring of 256 peers idling for ten
//! stabilisation intervals (the steady-state event rate that decides how
//! long a large run takes).
//!
//! `cargo bench -p p2psip-sim --bench sim`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use p2psip_sim::runner::{self, Options};
use p2psip_sim::{Scenario, Sim, SimConfig};

const PEERS: usize = 256;

fn join_and_converge(c: &mut Criterion) {
    let scenario = Scenario::new("bench").join(PEERS, Some(64.0)).converge();
    let opts = Options {
        measured: false,
        ..Options::default()
    };
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.bench_function("join_and_converge_256", |b| {
        b.iter(|| {
            let r = runner::run(SimConfig::new(1), opts.clone(), &scenario).expect("runs");
            assert!(r.passed, "{}", r.summary());
            black_box(r.totals.counters.node_messages)
        })
    });
    g.bench_function("steady_state_256_for_10_t", |b| {
        let mut sim = Sim::new(SimConfig::new(2));
        let first = sim.add_node(None);
        for _ in 1..PEERS {
            sim.run_for(Duration::from_millis(16)).expect("no runaway");
            sim.add_node(Some(first));
        }
        sim.run_for(Duration::from_secs(30)).expect("no runaway");
        b.iter(|| {
            sim.run_for(Duration::from_secs(10)).expect("no runaway");
            black_box(sim.now())
        })
    });
    g.finish();
}

criterion_group!(benches, join_and_converge);
criterion_main!(benches);
