/*!
The NAT part of a case in the suite TOML: `topology.nat` (which NAT, who
sits behind it) and the steps that act on it (`nat-rebind`, `nat-adopt`).
Every struct refuses unknown keys; [`validate`] checks the rest when the
suites load.
*/

use std::time::Duration;

use p2psip_nat::{Behaviour, NatConfig};
use serde::Deserialize;

use crate::engine::load::Case;
use crate::engine::model::Step;
use crate::iut::Params;

/// `topology.nat`: one emulated NAT between the parties named in `inside`
/// and everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatDef {
    /// RFC 4787 mapping/filtering, e.g. `EIM/EIF`, `EIM/ADF`, `EIM/APDF`,
    /// `APDM/APDF` (any of EI, AD, APD for either).
    #[serde(rename = "type")]
    pub kind: String,
    /// Deliver packets sent to the NAT's own public address back inside
    /// (RFC 4787 §6). Default off.
    #[serde(default)]
    pub hairpinning: bool,
    /// Keep the internal port as the public port when free (RFC 4787
    /// §4.2.1). Default off (the internal port is then never used).
    #[serde(default)]
    pub port_preservation: bool,
    /// Mapping timeout, refreshed by outbound packets only. Default
    /// 1.2·K (K = the case's `keepalive_ms`): C-NAT4's "K + 5 s" at the
    /// profile's K = 25 s, scaled with K.
    pub timeout_ms: Option<u64>,
    /// Instances and puppets behind the NAT (default `["iut1"]`); every
    /// other instance and puppet is an outside node with a relay front.
    pub inside: Option<Vec<String>>,
    /// `userspace` (default: the relay, no privileges) or `kernel` (a
    /// network namespace behind nftables masquerade; skipped with the
    /// reason where that is not permitted).
    pub backend: Option<String>,
}

/// Mapping timeout as a multiple of the keep-alive interval K when the
/// case does not set one: (25 s + 5 s) / 25 s (PROFILE §12, C-NAT4).
pub const TIMEOUT_PER_K: f64 = 1.2;

impl NatDef {
    /// (mapping, filtering) from `type`.
    pub fn behaviours(&self) -> Result<(Behaviour, Behaviour), String> {
        let bad = || {
            format!(
                "nat type {:?} is not MAPPING/FILTERING with EIM|ADM|APDM and EIF|ADF|APDF (e.g. \"EIM/APDF\")",
                self.kind
            )
        };
        let (m, f) = self.kind.split_once('/').ok_or_else(bad)?;
        let one = |s: &str, suffix: char| -> Option<Behaviour> {
            let stem = s.trim().strip_suffix(suffix)?;
            Behaviour::ALL.into_iter().find(|b| b.short() == stem)
        };
        Ok((one(m, 'M').ok_or_else(bad)?, one(f, 'F').ok_or_else(bad)?))
    }

    /// The names behind the NAT.
    pub fn inside(&self) -> Vec<String> {
        self.inside.clone().unwrap_or_else(|| vec!["iut1".into()])
    }

    pub fn timeout(&self, params: &Params) -> Duration {
        match self.timeout_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_millis(params.keepalive_ms).mul_f64(TIMEOUT_PER_K),
        }
    }

    pub fn is_kernel(&self) -> bool {
        self.backend.as_deref() == Some("kernel")
    }

    /// The emulator's configuration for a case.
    pub fn config(&self, params: &Params, public_ip: std::net::Ipv4Addr, seed: u64) -> NatConfig {
        // Validated when the suites load.
        let (mapping, filtering) = self.behaviours().unwrap_or((
            Behaviour::EndpointIndependent,
            Behaviour::EndpointIndependent,
        ));
        NatConfig {
            mapping,
            filtering,
            port_preservation: self.port_preservation,
            hairpinning: self.hairpinning,
            mapping_timeout: self.timeout(params),
            public_ip: public_ip.into(),
            ports: 1024..=65535,
            seed,
        }
    }
}

/// `nat-rebind`: the NAT moves every mapping of `node` (default `iut1`) to
/// a new public port (RFC 4787 §4.3's reassignment), as a NAT that lost
/// its state would; the old ports answer nothing from then on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatRebindStep {
    pub node: Option<String>,
}

/// `nat-adopt`: puppet `puppet`, behind the NAT, takes the public mapping
/// its packets to `towards` (default `iut1`) leave from as its own address
/// (Peer-ID, Peer URI, Via), as a client does once it has learned it
/// (NAT-3); it must have sent there before.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatAdoptStep {
    pub puppet: String,
    pub towards: Option<String>,
}

type Invalid = (Option<usize>, String);

/// Checks a case's NAT parts: the type, the names behind the NAT, no
/// placement (placement is computed on real addresses, and outside nodes
/// are known by their fronts), NAT steps only with a NAT.
pub fn validate(case: &Case) -> Result<(), Invalid> {
    let t = &case.def.topology;
    let instances = case.instance_names();
    let puppets: Vec<&str> = case.puppets.iter().map(|p| p.name.as_str()).collect();
    let inside: Vec<String> = t.nat.as_ref().map(|n| n.inside()).unwrap_or_default();
    if let Some(nat) = &t.nat {
        nat.behaviours().map_err(|e| (None, e))?;
        if let Some(ms) = nat.timeout_ms
            && !(100..=600_000).contains(&ms)
        {
            return Err((None, "nat.timeout_ms must be in 100..=600000".into()));
        }
        match nat.backend.as_deref() {
            None | Some("userspace") | Some("kernel") => {}
            Some(b) => {
                return Err((
                    None,
                    format!("nat.backend {b:?} is not \"userspace\" or \"kernel\""),
                ));
            }
        }
        for n in &inside {
            if !instances.contains(n) && !puppets.contains(&n.as_str()) {
                return Err((
                    None,
                    format!("nat.inside: {n:?} is not an instance or puppet of the case"),
                ));
            }
        }
        if !t.place.is_empty() || case.puppets.iter().any(|p| p.place.is_some()) {
            return Err((
                None,
                "a case with a NAT cannot place peers: outside nodes are known by their relay fronts and NATed ones by their public mappings, which placement cannot foresee".into(),
            ));
        }
    }
    for s in &case.steps {
        let at = |m: String| -> Invalid { (Some(s.line), m) };
        match &s.step {
            Step::NatRebind(x) => {
                if t.nat.is_none() {
                    return Err(at("nat-rebind needs topology.nat".into()));
                }
                let node = x.node.clone().unwrap_or_else(|| "iut1".into());
                if !inside.contains(&node) || !instances.contains(&node) {
                    return Err(at(format!(
                        "nat-rebind: {node:?} is not an instance behind the NAT"
                    )));
                }
            }
            Step::NatAdopt(x) => {
                if t.nat.is_none() {
                    return Err(at("nat-adopt needs topology.nat".into()));
                }
                if !inside.contains(&x.puppet) || !puppets.contains(&x.puppet.as_str()) {
                    return Err(at(format!(
                        "nat-adopt: {:?} is not a puppet behind the NAT",
                        x.puppet
                    )));
                }
                let towards = x.towards.clone().unwrap_or_else(|| "iut1".into());
                if inside.contains(&towards)
                    || (!instances.contains(&towards) && !puppets.contains(&towards.as_str()))
                {
                    return Err(at(format!(
                        "nat-adopt: towards {towards:?} is not an outside instance or puppet"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: &str) -> NatDef {
        NatDef {
            kind: kind.into(),
            hairpinning: false,
            port_preservation: false,
            timeout_ms: None,
            inside: None,
            backend: None,
        }
    }

    #[test]
    fn types_parse() {
        use Behaviour::*;
        assert_eq!(
            def("EIM/APDF").behaviours(),
            Ok((EndpointIndependent, AddressAndPortDependent))
        );
        assert_eq!(
            def("APDM/ADF").behaviours(),
            Ok((AddressAndPortDependent, AddressDependent))
        );
        assert_eq!(
            def(" ADM / EIF ").behaviours(),
            Ok((AddressDependent, EndpointIndependent))
        );
        for bad in ["EIM", "EIF/EIM", "XM/EIF", "EIM/APD", ""] {
            assert!(def(bad).behaviours().is_err(), "{bad}");
        }
    }

    #[test]
    fn timeout_defaults_to_k_plus_a_fifth() {
        let p = Params::default();
        assert_eq!(def("EIM/EIF").timeout(&p), Duration::from_millis(1200));
        let mut d = def("EIM/EIF");
        d.timeout_ms = Some(5000);
        assert_eq!(d.timeout(&p), Duration::from_secs(5));
    }
}
