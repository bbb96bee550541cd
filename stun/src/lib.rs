/*!
STUN message codec (RFC 5389, with the RFC 5780 behaviour-discovery
attributes). No I/O, no clock: bytes in, [`Message`] out, and back.

The P2P-SIP peers share their SIP port with STUN, so a receiver first asks
[`looks_like_stun`] (two zero bits, magic cookie, consistent length) and
only then [`decode`]s; a SIP message starts with a letter and never passes.

Covered: the header (class, 12-bit method, magic cookie, 96-bit transaction
ID); MAPPED-ADDRESS, XOR-MAPPED-ADDRESS (IPv4 and IPv6), USERNAME,
ERROR-CODE, UNKNOWN-ATTRIBUTES, SOFTWARE, FINGERPRINT (computed and
verified), CHANGE-REQUEST, RESPONSE-ORIGIN, OTHER-ADDRESS. MESSAGE-INTEGRITY
is carried as raw bytes and not verified (no credentials in this project);
anything else is kept raw, and [`Message::unknown_comprehension_required`]
lists what a server must reject with 420.

```
use p2psip_stun::{decode, looks_like_stun, Attribute, Message, TransactionId};

let tid = TransactionId::new([1; 12]);
let request = Message::binding_request(tid).with_fingerprint().encode().unwrap();
assert!(looks_like_stun(&request));
assert!(!looks_like_stun(b"REGISTER sip:10.0.0.1 SIP/2.0\r\n\r\n"));

let observed = "192.0.2.1:32853".parse().unwrap();
let response = Message::success_response(&decode(&request).unwrap())
    .with(Attribute::XorMappedAddress(observed))
    .encode()
    .unwrap();
assert_eq!(decode(&response).unwrap().xor_mapped_address(), Some(observed));
```
*/

mod attribute;
mod codec;
mod error;
mod message;

pub use attribute::{
    Attribute, ChangeRequest, ErrorCode, codes, is_comprehension_required, is_known_type, types,
};
pub use codec::{decode, looks_like_stun, message_len};
pub use error::{DecodeError, EncodeError};
pub use message::{Class, Message, Method, TransactionId};

/// What [`decode`] fails with.
pub type Error = DecodeError;

/// The fixed magic cookie of RFC 5389 §6.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Every STUN message starts with a 20-byte header (RFC 5389 §6).
pub const HEADER_LEN: usize = 20;
