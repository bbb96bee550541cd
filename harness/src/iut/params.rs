/*!
The overlay parameters a run sets on every instance (PROFILE §12), with
the harness's fast values as defaults. A case may override some of them
(`params` in the suite TOML); the values reach an IUT only through the
placeholders of its command template.
*/

use std::time::Duration;

use serde::Deserialize;

/// Overlay parameters of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub overlay: String,
    pub replicas: u32,
    pub successors: u32,
    pub stabilize_ms: u64,
    pub fix_fingers_ms: u64,
    pub keepalive_ms: u64,
    /// Registration Expires (seconds).
    pub expires_s: u32,
    /// DHT-PeerID / DHT-Link lifetime the harness's puppets advertise.
    pub peer_expires_s: u32,
    pub t1_ms: u64,
    /// TXN-1 T2 (RFC 3261: 4 s); not passed to IUTs, used for timing checks.
    pub t2_ms: u64,
}

impl Default for Params {
    /// The harness fast values of PROFILE §12.
    fn default() -> Params {
        Params {
            overlay: "chat".to_string(),
            replicas: 2,
            successors: 4,
            stabilize_ms: 1000,
            fix_fingers_ms: 1000,
            keepalive_ms: 1000,
            expires_s: 30,
            peer_expires_s: 30,
            t1_ms: 100,
            t2_ms: 4000,
        }
    }
}

/// A case's overrides, as written in the suite TOML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamOverrides {
    pub overlay: Option<String>,
    pub replicas: Option<u32>,
    pub successors: Option<u32>,
    pub stabilize_ms: Option<u64>,
    pub fix_fingers_ms: Option<u64>,
    pub keepalive_ms: Option<u64>,
    pub expires_s: Option<u32>,
    pub peer_expires_s: Option<u32>,
    pub t1_ms: Option<u64>,
}

impl Params {
    pub fn with(mut self, o: &ParamOverrides) -> Params {
        if let Some(v) = &o.overlay {
            self.overlay = v.clone();
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        set!(
            replicas,
            successors,
            stabilize_ms,
            fix_fingers_ms,
            keepalive_ms,
            expires_s,
            peer_expires_s,
            t1_ms
        );
        self
    }

    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }

    /// Timer F = 64·T1 (TXN-1).
    pub fn timer_f(&self) -> Duration {
        self.t1() * 64
    }

    pub fn stabilize(&self) -> Duration {
        Duration::from_millis(self.stabilize_ms)
    }
}
