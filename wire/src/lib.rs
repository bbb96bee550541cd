/*!
The wire format of the P2P-SIP overlay (profile `dsip-chord/1`, and the
legacy `sipping-02` syntax): a zero-copy nom parser of SIP/2.0 messages with
typed views of every header the profile uses, a printer of the canonical
form, builders for every P2P message, 160-bit IDs and ring math.

No I/O, no clock: everything here is a pure function of its input, so the
reference node, the harness's scripted peers and the offline capture checks
all read and write messages through the same code.

```
use p2psip_wire::{parse, ParseOptions, Class};

let bytes = b"REGISTER sip:10.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:peer@0.0.0.0;peer-ID=0123456789abcdef0123456789abcdef01234567>\r\n\
From: <sip:peer@10.0.0.2:5060;peer-ID=5e6f77b0a1a5d1d64e0d8f5e5e7e9a7e2c5913c4>;tag=1\r\n\
Call-ID: q1\r\nCSeq: 1 REGISTER\r\nRequire: dht\r\nSupported: dht\r\n\
DHT-PeerID: <sip:peer@10.0.0.2:5060;peer-ID=5e6f77b0a1a5d1d64e0d8f5e5e7e9a7e2c5913c4>;algorithm=sha1;dht=Chord1.0;overlay=chat;expires=600\r\n\
Content-Length: 0\r\n\r\n";
let parsed = parse(bytes, ParseOptions::lenient()).unwrap();
assert_eq!(Class::of(&parsed.message), Class::Query);
// The sender's ID is not the one of 10.0.0.2:5060 (ID-2): a warning here,
// an error in strict mode.
assert!(!parsed.warnings.is_empty());
assert!(parse(bytes, ParseOptions::strict()).is_err());
```
*/

// The model is a flat list of by-value enums on purpose: boxing the large
// variants would cost an allocation per header, and a parse makes one.
#![allow(clippy::large_enum_variant)]

pub mod build;
pub mod classify;
pub mod error;
pub mod framer;
pub mod fuzzing;
mod grammar;
pub mod id;
pub mod message;
mod owned;
pub mod print;
pub mod profile;
pub mod resource;
pub mod ring;
mod spare;
mod text;

pub use build::{Identity, Link, QueryKey, Txn};
pub use classify::Class;
pub use error::{Deviation, ErrorKind, ParseError, Requirement, Warnings};
pub use framer::{Frame, Framer};
pub use grammar::{Parsed, Streamed, looks_like_stun, parse, parse_one, parse_uri, peer_of};
pub use id::{HexCase, Id, IdError, PeerId, ResourceId, peer_id};
pub use message::*;
pub use print::{print, print_into, summary};
pub use profile::{ParseOptions, Profile, Transport};
pub use ring::{Ring, closest_preceding, is_responsible};
