/*!
Churn: peer lifetimes and the failure-injection rules of CHECKS.md.

Lifetimes are exponential (memoryless, for reproducible averages) or
Weibull (shape about 0.5: many short lives and a few very long ones, the
stress model), both parameterised by their mean.

The rules decide whether a set of peers may be killed now without making
the case impossible for any implementation:

- |L| >= r + 1 before every failure;
- never r ring-consecutive peers dead at once, counting peers killed
  within the healing window (T + Timer F, STAB-4) as still dead;
- never a set that leaves a live peer with no live entry among its
  S1..Sr (its own list, as it holds it now);
- and one rule of the simulator's own: never the bootstrap of a peer
  still joining (the core retries its join through the same bootstrap,
  so that peer could never join).

A draw that breaks them is discarded and redrawn, never counted as a
failure.
*/

use std::time::Duration;

use p2psip_node::{PhaseKind, Time};
use p2psip_wire::Id;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::net::Endpoint;
use crate::sim::Sim;

/// The lifetime distribution of churn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lifetimes {
    Exponential,
    Weibull { shape: f64 },
}

impl Lifetimes {
    /// A lifetime with the given mean.
    pub fn draw(self, rng: &mut impl Rng, mean: Duration) -> Duration {
        // 1 - U is in (0, 1]: the logarithm stays finite.
        let u: f64 = 1.0 - rng.random::<f64>();
        let m = mean.as_secs_f64();
        let secs = match self {
            Lifetimes::Exponential => -m * u.ln(),
            Lifetimes::Weibull { shape } => {
                let scale = m / gamma(1.0 + 1.0 / shape);
                scale * (-u.ln()).powf(1.0 / shape)
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, 1e9))
    }

    pub fn name(self) -> String {
        match self {
            Lifetimes::Exponential => "exponential".to_owned(),
            Lifetimes::Weibull { shape } => format!("weibull(shape {shape})"),
        }
    }
}

/// Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 digits).
pub fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// Which rule a proposed failure breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Broken {
    /// |L| would be below r + 1 before a failure.
    TooFewPeers,
    /// r ring-consecutive peers would be dead at once.
    ConsecutiveRun,
    /// A live peer would have no live entry among its S1..Sr.
    NoLiveSuccessor,
    /// A peer still joining would lose its bootstrap.
    JoinerBootstrap,
}

/// The rules, with the recent failures they remember.
#[derive(Debug, Clone)]
pub struct Rules {
    /// r, the successor-list length.
    pub r: usize,
    /// How long a killed peer counts as "dead at once" with later ones.
    pub window: Duration,
    /// Recently killed peers: (ID, when).
    recent: Vec<(Id, Time)>,
}

impl Rules {
    pub fn new(r: usize, window: Duration) -> Rules {
        Rules {
            r,
            window,
            recent: Vec::new(),
        }
    }

    /// The rules for a simulator's configuration: r, and T + Timer F.
    pub fn for_sim(sim: &Sim) -> Rules {
        let c = &sim.config().node;
        Rules::new(c.successors, c.stabilize + c.timer_f())
    }

    /// Records that `id` was killed at `at`.
    pub fn killed(&mut self, id: Id, at: Time) {
        self.recent.push((id, at));
    }

    fn prune(&mut self, now: Time) {
        let w = self.window;
        self.recent.retain(|(_, t)| now.saturating_since(*t) < w);
    }

    /// May the peers `set` (live now) all be killed now?
    pub fn check(&mut self, sim: &Sim, set: &[Endpoint]) -> Result<(), Broken> {
        self.prune(sim.now());
        let truth = sim.truth();
        let ids: Vec<Id> = set
            .iter()
            .filter_map(|e| sim.node(*e).map(|n| n.me().id))
            .collect();
        // |L| >= r + 1 before each failure of the set, in turn.
        if truth.len() < self.r + ids.len() {
            return Err(Broken::TooFewPeers);
        }
        let dead = |id: &Id| ids.contains(id) || self.recent.iter().any(|(d, _)| d == id);
        // Runs of dead peers on the ring of L plus the recently killed.
        for v in &ids {
            let mut run = 1;
            let mut cur = *v;
            for _ in 1..self.r {
                cur = self.union_next(sim, &cur, true);
                if cur == *v || !dead(&cur) {
                    break;
                }
                run += 1;
            }
            let mut cur = *v;
            for _ in 1..self.r {
                cur = self.union_next(sim, &cur, false);
                if cur == *v || !dead(&cur) {
                    break;
                }
                run += 1;
            }
            if run >= self.r {
                return Err(Broken::ConsecutiveRun);
            }
        }
        // Every live peer keeps a live entry among its S1..Sr.
        for (id, e) in truth.iter() {
            if ids.contains(id) {
                continue;
            }
            let Some(node) = sim.node(*e) else { continue };
            match node.phase() {
                PhaseKind::Member => {
                    let succs = node.successors();
                    if !succs.is_empty()
                        && succs
                            .iter()
                            .all(|s| ids.contains(&s.id) || !truth.contains(&s.id))
                    {
                        return Err(Broken::NoLiveSuccessor);
                    }
                }
                PhaseKind::Joining => {
                    let boot = node.config().bootstrap;
                    if set.iter().any(|v| Some(sim.addr(*v)) == boot) {
                        return Err(Broken::JoinerBootstrap);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The next peer clockwise (`forward`) or anticlockwise from `from` on
    /// the ring of the live peers and the recently killed ones.
    fn union_next(&self, sim: &Sim, from: &Id, forward: bool) -> Id {
        let truth = sim.truth();
        let live = if forward {
            truth.next_after(from)
        } else {
            truth.prev_before(from)
        }
        .map(|(i, _)| i);
        let dist = |x: &Id| {
            if forward {
                from.distance_to(x)
            } else {
                x.distance_to(from)
            }
        };
        let mut best = live.filter(|l| l != from);
        for (d, _) in &self.recent {
            if d != from && best.is_none_or(|b| dist(d) < dist(&b)) {
                best = Some(*d);
            }
        }
        best.unwrap_or(*from)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn gamma_matches_known_values() {
        assert!((gamma(1.0) - 1.0).abs() < 1e-12);
        assert!((gamma(3.0) - 2.0).abs() < 1e-12);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
        assert!((gamma(5.0) - 24.0).abs() < 1e-9);
    }

    #[test]
    fn lifetimes_have_the_mean_asked_for() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mean = Duration::from_secs(100);
        for model in [Lifetimes::Exponential, Lifetimes::Weibull { shape: 0.5 }] {
            let n = 200_000;
            let sum: f64 = (0..n)
                .map(|_| model.draw(&mut rng, mean).as_secs_f64())
                .sum();
            let m = sum / n as f64;
            assert!((m - 100.0).abs() < 3.0, "{model:?}: mean {m}");
        }
        // Weibull 0.5 is heavy-tailed: the median is far below the mean
        // (scale * ln2^2 = 50 * 0.48).
        let mut v: Vec<f64> = (0..50_001)
            .map(|_| {
                Lifetimes::Weibull { shape: 0.5 }
                    .draw(&mut rng, mean)
                    .as_secs_f64()
            })
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((v[25_000] - 24.0).abs() < 2.0, "median {}", v[25_000]);
    }
}
