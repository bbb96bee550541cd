/*!
C-NAT0 once per run for each distinct NAT configuration: before a case
puts anything behind a NAT, an RFC 5780 behaviour-discovery probe
([`p2psip_nat::self_check`]) through a fresh relay with the same mapping,
filtering, hairpinning and port preservation must classify it as
configured. Otherwise the case is void: the emulator, not the IUT, is
wrong, so nothing can be concluded about the IUT.

The result is cached per process (one run) and per configuration; cases
that need the same configuration wait for the one probe in flight. A
misclassification is confirmed by a second probe before it voids anything
(a probe answer lost on a loaded machine looks like stricter filtering);
both attempts are in the verdict's text.

The mapping timeout is not part of the key: RFC 5780 does not classify
it, and the probe needs mappings that outlive it (the probe runs with a
timeout long enough for its six tests; the timeout and its refresh rule
are the relay's own tests).
*/

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use p2psip_nat::{Behaviour, NatConfig, ProbeConfig, SelfCheckReport, self_check};
use tokio::sync::OnceCell;

/// What C-NAT0 concluded about one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Classified as configured: the text says what was observed.
    Confirmed(String),
    /// Classified otherwise, twice: the cases of this configuration are void.
    Void(String),
    /// The probe could not run at all (setup trouble).
    Broken(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    mapping: Behaviour,
    filtering: Behaviour,
    hairpinning: bool,
    port_preservation: bool,
}

type Cell = Arc<OnceCell<Verdict>>;

static CACHE: LazyLock<Mutex<HashMap<Key, Cell>>> = LazyLock::new(Default::default);

/// The probe's timing: an answer that takes longer than `test_timeout` is
/// taken as filtered, so it is generous for a loaded machine.
fn probe_config() -> ProbeConfig {
    ProbeConfig {
        rto: Duration::from_millis(100),
        test_timeout: Duration::from_millis(1000),
        seed: 0,
        hairpinning: true,
    }
}

/// C-NAT0 for `config` (its public IP and timeout are not used: each
/// probe gets a fresh relay). The second value says whether the verdict
/// came from the cache.
pub async fn verify(config: &NatConfig) -> (Verdict, bool) {
    let key = Key {
        mapping: config.mapping,
        filtering: config.filtering,
        hairpinning: config.hairpinning,
        port_preservation: config.port_preservation,
    };
    let cell: Cell = {
        let mut map = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    };
    let mut ran = false;
    let verdict = cell
        .get_or_init(|| {
            ran = true;
            probe_twice(config.clone())
        })
        .await
        .clone();
    (verdict, !ran)
}

async fn probe_twice(mut nat: NatConfig) -> Verdict {
    let probe = probe_config();
    // Mappings must outlive the probe; the classification does not depend
    // on the timeout.
    nat.mapping_timeout = nat
        .mapping_timeout
        .max(probe.max_duration() + Duration::from_secs(5));
    let mut attempts = Vec::new();
    for _ in 0..2 {
        nat.public_ip = crate::net::next_loopback().into();
        let r = self_check(nat.clone(), probe.clone())
            .await
            .map_err(|e| e.to_string());
        let passed = matches!(&r, Ok(r) if r.passed());
        attempts.push(r);
        if passed {
            break;
        }
    }
    conclude(&nat, &attempts)
}

/// The verdict of up to two probe attempts: the first that classified the
/// NAT as configured confirms it; misclassifications void it; a probe that
/// never ran at all is a setup error.
fn conclude(nat: &NatConfig, attempts: &[Result<SelfCheckReport, String>]) -> Verdict {
    let mut notes = Vec::new();
    for (i, a) in attempts.iter().enumerate() {
        let attempt = i + 1;
        match a {
            Ok(r) if r.passed() => {
                let o = &r.observed;
                let mut text = format!(
                    "C-NAT0: {} classified as configured by RFC 5780 probing (mapping {}, filtering {}, hairpinning {}, port preservation {}; mapped {} for local {})",
                    nat.describe_full(),
                    o.mapping,
                    o.filtering,
                    o.hairpinning.map_or("untested".into(), |h| h.to_string()),
                    o.port_preserved,
                    o.mapped,
                    o.local
                );
                if !notes.is_empty() {
                    text.push_str(&format!(" (after: {})", notes.join("; ")));
                }
                return Verdict::Confirmed(text);
            }
            Ok(r) => notes.push(format!("attempt {attempt}: {}", r.mismatches.join(", "))),
            Err(e) => notes.push(format!("attempt {attempt}: probe failed: {e}")),
        }
    }
    let text = format!(
        "C-NAT0: the RFC 5780 probe does not classify {} as configured: {}",
        nat.describe_full(),
        notes.join("; ")
    );
    if attempts.iter().all(|a| a.is_err()) {
        Verdict::Broken(text)
    } else {
        Verdict::Void(text)
    }
}

/// `describe` with the explicit "no" settings.
trait DescribeFull {
    fn describe_full(&self) -> String;
}

impl DescribeFull for NatConfig {
    fn describe_full(&self) -> String {
        format!(
            "{}M/{}F, hairpinning {}, port preservation {}",
            self.mapping.short(),
            self.filtering.short(),
            if self.hairpinning { "on" } else { "off" },
            if self.port_preservation { "on" } else { "off" },
        )
    }
}

/// The one-line name of a configuration, for notes and logs.
pub fn describe(config: &NatConfig) -> String {
    config.describe_full()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verdicts_are_cached_per_configuration() {
        let cfg =
            NatConfig::with_behaviour(Behaviour::EndpointIndependent, Behaviour::AddressDependent);
        let (a, b) = tokio::join!(verify(&cfg), verify(&cfg));
        assert!(matches!(a.0, Verdict::Confirmed(_)), "{:?}", a.0);
        assert_eq!(a.0, b.0);
        // Exactly one of the two ran the probe.
        assert!(a.1 != b.1);
        let (c, cached) = verify(&cfg).await;
        assert_eq!(c, a.0);
        assert!(cached);
    }

    fn report(nat: &NatConfig, observed_filtering: Behaviour) -> SelfCheckReport {
        let observed = p2psip_nat::Classification {
            mapping: nat.mapping,
            filtering: observed_filtering,
            hairpinning: Some(nat.hairpinning),
            local: "127.0.0.2:4000".parse().unwrap(),
            mapped: std::net::SocketAddr::new(nat.public_ip, 5000),
            behind_nat: true,
            port_preserved: false,
        };
        SelfCheckReport {
            config: nat.clone(),
            mismatches: p2psip_nat::compare(nat, &observed, true),
            observed,
        }
    }

    /// A misclassification twice voids the configuration (its cases are
    /// skipped as void, not failed); once, followed by a right one,
    /// confirms it and says so; probes that never ran are a setup error.
    #[test]
    fn misclassifications_void_and_failed_probes_break() {
        let nat =
            NatConfig::with_behaviour(Behaviour::EndpointIndependent, Behaviour::AddressDependent);
        let wrong = report(&nat, Behaviour::AddressAndPortDependent);
        let right = report(&nat, Behaviour::AddressDependent);
        assert!(!wrong.passed() && right.passed());
        match conclude(&nat, &[Ok(wrong.clone()), Ok(wrong.clone())]) {
            Verdict::Void(t) => {
                assert!(t.contains("filtering: configured address-dependent"), "{t}");
                assert!(t.contains("attempt 2"), "{t}");
            }
            v => panic!("{v:?}"),
        }
        match conclude(&nat, &[Ok(wrong.clone()), Ok(right)]) {
            Verdict::Confirmed(t) => assert!(t.contains("after: attempt 1"), "{t}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            conclude(&nat, &[Err("no answer".into()), Ok(wrong)]),
            Verdict::Void(_)
        ));
        assert!(matches!(
            conclude(&nat, &[Err("a".into()), Err("b".into())]),
            Verdict::Broken(_)
        ));
    }
}
