/*!
The two wire profiles and the parse options.

`dsip-chord` is the profile of the live suites: dSIP-00 syntax with Chord1.0
semantics. `sipping-02` is the legacy syntax of draft-bryan-sipping-p2p-02
(`DHT-NodeID`, Node URIs with `user=node`, `ChordIter1.0`, Node-ID =
SHA-1("ip:port")), read by the parser and the offline checks.
*/

use std::net::IpAddr;

use crate::id::{Id, legacy_node_id, peer_id};

/// A wire profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    #[default]
    DsipChord,
    Sipping02,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::DsipChord => "dsip-chord",
            Profile::Sipping02 => "sipping-02",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "dsip-chord" => Some(Profile::DsipChord),
            "sipping-02" => Some(Profile::Sipping02),
            _ => None,
        }
    }

    /// The DHT token this profile's senders emit.
    pub fn dht_token(self) -> &'static str {
        match self {
            Profile::DsipChord => "Chord1.0",
            Profile::Sipping02 => "ChordIter1.0",
        }
    }

    /// The ID a peer at `ip:port` has in this profile (ID-2, or the legacy
    /// Node-ID).
    pub fn peer_id(self, ip: IpAddr, port: u16) -> Id {
        match self {
            Profile::DsipChord => peer_id(ip, port),
            Profile::Sipping02 => legacy_node_id(ip, port),
        }
    }
}

/// Transport the message arrived on, when known (Content-Length is
/// mandatory on streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub profile: Profile,
    /// Strict: every deviation from the senders' rules is an error (the
    /// checker of what an implementation sends). Lenient: deviations a
    /// robust receiver tolerates are warnings.
    pub strict: bool,
    pub transport: Option<Transport>,
    /// Messages larger than this are refused (WIRE-8).
    pub max_size: usize,
    /// Check that every Peer URI's ID is the ID-2 ID of its own address.
    /// It costs a SHA-1 per Peer URI; a receiver verifies identities
    /// against the observed source anyway (ID-7), so hot paths may turn it
    /// off.
    pub verify_peer_ids: bool,
}

impl ParseOptions {
    pub const DEFAULT_MAX_SIZE: usize = 65_535;

    pub fn strict() -> ParseOptions {
        ParseOptions {
            profile: Profile::DsipChord,
            strict: true,
            transport: None,
            max_size: Self::DEFAULT_MAX_SIZE,
            verify_peer_ids: true,
        }
    }

    pub fn lenient() -> ParseOptions {
        ParseOptions {
            strict: false,
            ..ParseOptions::strict()
        }
    }

    pub fn with_profile(self, profile: Profile) -> ParseOptions {
        ParseOptions { profile, ..self }
    }

    /// Skips the ID-2 consistency check of Peer URIs.
    pub fn without_peer_id_check(self) -> ParseOptions {
        ParseOptions {
            verify_peer_ids: false,
            ..self
        }
    }

    pub fn with_transport(self, transport: Transport) -> ParseOptions {
        ParseOptions {
            transport: Some(transport),
            ..self
        }
    }
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions::lenient()
    }
}
