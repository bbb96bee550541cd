/*!
Scenarios: what happens to the overlay, step by step.

A scenario is a list of [`Step`]s run in order by [`crate::runner`]. Build
one in Rust:

```
use p2psip_sim::Scenario;

let s = Scenario::new("heal")
    .join(64, Some(16.0))
    .converge()
    .register(16)
    .check_replicas()
    .lookups(1_000, 64)
    .fail(6)
    .converge()
    .settle()
    .check_replicas()
    .check_registrations();
assert_eq!(s.steps.len(), 10);
```

or write it in TOML (`p2psip sim --scenario FILE`), one `[[step]]` table
per step, named by `action`:

```toml
name = "heal"

[[step]]
action = "join"
count = 64
rate = 16.0        # peers per second of virtual time; omitted: all at once

[[step]]
action = "converge"

[[step]]
action = "fail"
count = 6          # random peers within the failure rules
# peers = [3, 9]   # or these, by start order (0 = the first peer)
```

Unknown keys are errors (a typo must not pass silently).
*/

use serde::{Deserialize, Serialize};

use crate::churn::Lifetimes;

/// Through whom a new peer joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The first peer started (one bootstrap for all).
    #[default]
    Bootstrap,
    /// A live member drawn at random.
    Random,
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Starts `count` peers, `rate` per second of virtual time (all at once
    /// when absent). The first peer of an empty overlay is its own
    /// (JOIN-8); the others join through `via`.
    Join {
        count: usize,
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default)]
        via: Via,
    },
    /// Lets virtual time pass.
    Wait { secs: f64 },
    /// Waits the time copies need to be re-placed after a change:
    /// refresh + T + Timer F (C-R3).
    Settle,
    /// Runs until C-G1..C-G5 hold, measured from the last membership event
    /// (C-G6), then 10 T more checking that they keep holding (C-G7).
    Converge,
    /// Registers `count` AORs, each through a different random peer's
    /// adapter role (`Command::Register`, RES-4, REPL-1).
    Register {
        count: usize,
        #[serde(default = "default_expires")]
        expires_s: u32,
    },
    /// Lookups on the network (C-Q1..C-Q3): `random` keys, each from a
    /// random live peer, and the IDs of `ids` peers, each with ID-1 and
    /// ID+1.
    Lookups {
        #[serde(default)]
        random: usize,
        #[serde(default)]
        ids: usize,
    },
    /// C-R1 and C-R2 for every acknowledged registration: the peers holding
    /// each copy are exactly succ_L(Rid_i), and each answers a lookup with
    /// the Contact.
    CheckReplicas,
    /// No acknowledged registration is lost: a live peer's adapter finds
    /// each (REPL-4), and a live peer stores a copy.
    CheckRegistrations,
    /// Kills peers at once (a crash): `count` drawn at random within the
    /// failure rules, or the listed ones (by start order). Peers that made
    /// registrations as adapters are spared unless `spare_adapters` is
    /// false (their registrations would have no one to refresh them).
    Fail {
        #[serde(default)]
        count: usize,
        #[serde(default)]
        peers: Vec<u32>,
        #[serde(default = "yes")]
        spare_adapters: bool,
    },
    /// Graceful leaves (LEAVE-1), chosen like [`Step::Fail`].
    Leave {
        #[serde(default)]
        count: usize,
        #[serde(default)]
        peers: Vec<u32>,
        #[serde(default = "yes")]
        spare_adapters: bool,
    },
    /// Seeded churn for `duration_s`: every live peer gets a lifetime
    /// drawn from `lifetimes` with mean `mean_lifetime_s`; at its end the
    /// peer fails (or leaves, with probability `leave_fraction`) and a new
    /// peer joins through a random live member. Failures follow the
    /// failure rules: a draw that breaks them is discarded and the
    /// lifetime redrawn. `lookups_per_s` lookups run meanwhile (C-Q1 under
    /// churn: the success rate is reported).
    Churn {
        lifetimes: Lifetimes,
        mean_lifetime_s: f64,
        duration_s: f64,
        #[serde(default)]
        leave_fraction: f64,
        #[serde(default)]
        lookups_per_s: f64,
    },
    /// Zave-style schedules: `rounds` times a peer joins into a gap of the
    /// ring and then fails at a chosen moment (just admitted; adopted as
    /// S1 by its predecessor; one interval later; or with a second joiner
    /// in the same gap), each followed by healing.
    Zave { rounds: usize },
}

fn default_expires() -> u32 {
    3600
}

fn yes() -> bool {
    true
}

impl Step {
    /// The step's `action` name.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Join { .. } => "join",
            Step::Wait { .. } => "wait",
            Step::Settle => "settle",
            Step::Converge => "converge",
            Step::Register { .. } => "register",
            Step::Lookups { .. } => "lookups",
            Step::CheckReplicas => "check_replicas",
            Step::CheckRegistrations => "check_registrations",
            Step::Fail { .. } => "fail",
            Step::Leave { .. } => "leave",
            Step::Churn { .. } => "churn",
            Step::Zave { .. } => "zave",
        }
    }
}

/// A named list of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default = "unnamed")]
    pub name: String,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

fn unnamed() -> String {
    "file".to_owned()
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_owned(),
            steps: Vec::new(),
        }
    }

    /// Reads a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Refuses what cannot run: no steps, a step before any peer exists,
    /// rates and probabilities out of range.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |s: String| Err(ScenarioError::Invalid(s));
        if self.steps.is_empty() {
            return bad("no steps".into());
        }
        if !matches!(self.steps[0], Step::Join { .. }) {
            return bad("the first step must start peers (action = \"join\")".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            let at = i + 1;
            match s {
                Step::Join { count, rate, .. } => {
                    if *count == 0 {
                        return bad(format!("step {at}: join of 0 peers"));
                    }
                    if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                        return bad(format!("step {at}: rate must be > 0"));
                    }
                }
                Step::Wait { secs } if !(secs.is_finite() && *secs >= 0.0) => {
                    return bad(format!("step {at}: secs must be >= 0"));
                }
                Step::Churn {
                    lifetimes,
                    mean_lifetime_s,
                    duration_s,
                    leave_fraction,
                    lookups_per_s,
                } => {
                    if !(mean_lifetime_s.is_finite() && *mean_lifetime_s > 0.0) {
                        return bad(format!("step {at}: mean_lifetime_s must be > 0"));
                    }
                    if !(duration_s.is_finite() && *duration_s >= 0.0) {
                        return bad(format!("step {at}: duration_s must be >= 0"));
                    }
                    if !(0.0..=1.0).contains(leave_fraction) {
                        return bad(format!("step {at}: leave_fraction must be in [0, 1]"));
                    }
                    if !(lookups_per_s.is_finite() && *lookups_per_s >= 0.0) {
                        return bad(format!("step {at}: lookups_per_s must be >= 0"));
                    }
                    if let Lifetimes::Weibull { shape } = lifetimes
                        && !(shape.is_finite() && *shape > 0.0)
                    {
                        return bad(format!("step {at}: the Weibull shape must be > 0"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn step(mut self, s: Step) -> Scenario {
        self.steps.push(s);
        self
    }

    pub fn join(self, count: usize, rate: Option<f64>) -> Scenario {
        self.step(Step::Join {
            count,
            rate,
            via: Via::Bootstrap,
        })
    }

    pub fn join_via(self, count: usize, rate: Option<f64>, via: Via) -> Scenario {
        self.step(Step::Join { count, rate, via })
    }

    pub fn wait(self, secs: f64) -> Scenario {
        self.step(Step::Wait { secs })
    }

    pub fn settle(self) -> Scenario {
        self.step(Step::Settle)
    }

    pub fn converge(self) -> Scenario {
        self.step(Step::Converge)
    }

    pub fn register(self, count: usize) -> Scenario {
        self.step(Step::Register {
            count,
            expires_s: default_expires(),
        })
    }

    pub fn lookups(self, random: usize, ids: usize) -> Scenario {
        self.step(Step::Lookups { random, ids })
    }

    pub fn check_replicas(self) -> Scenario {
        self.step(Step::CheckReplicas)
    }

    pub fn check_registrations(self) -> Scenario {
        self.step(Step::CheckRegistrations)
    }

    pub fn fail(self, count: usize) -> Scenario {
        self.step(Step::Fail {
            count,
            peers: Vec::new(),
            spare_adapters: true,
        })
    }

    pub fn fail_peers(self, peers: &[u32]) -> Scenario {
        self.step(Step::Fail {
            count: 0,
            peers: peers.to_vec(),
            spare_adapters: true,
        })
    }

    pub fn leave(self, count: usize) -> Scenario {
        self.step(Step::Leave {
            count,
            peers: Vec::new(),
            spare_adapters: true,
        })
    }

    pub fn churn(
        self,
        lifetimes: Lifetimes,
        mean_lifetime_s: f64,
        duration_s: f64,
        leave_fraction: f64,
        lookups_per_s: f64,
    ) -> Scenario {
        self.step(Step::Churn {
            lifetimes,
            mean_lifetime_s,
            duration_s,
            leave_fraction,
            lookups_per_s,
        })
    }

    pub fn zave(self, rounds: usize) -> Scenario {
        self.step(Step::Zave { rounds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_errors() {
        let text = r#"
            name = "t"
            [[step]]
            action = "join"
            count = 8
            rate = 4.0
            [[step]]
            action = "converge"
            [[step]]
            action = "churn"
            lifetimes = { kind = "weibull", shape = 0.5 }
            mean_lifetime_s = 60
            duration_s = 30
            [[step]]
            action = "fail"
            peers = [2, 5]
        "#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(s.steps.len(), 4);
        assert_eq!(
            s.steps[3],
            Step::Fail {
                count: 0,
                peers: vec![2, 5],
                spare_adapters: true
            }
        );
        let back = Scenario::from_toml(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);

        let typo = "[[step]]\naction = \"join\"\ncount = 3\nrat = 2.0\n";
        assert!(Scenario::from_toml(typo).is_err(), "unknown key");
        let first = "[[step]]\naction = \"converge\"\n";
        assert!(
            Scenario::from_toml(first)
                .unwrap_err()
                .to_string()
                .contains("first step")
        );
        let rate = "[[step]]\naction = \"join\"\ncount = 3\nrate = 0.0\n";
        assert!(Scenario::from_toml(rate).is_err());
    }
}
