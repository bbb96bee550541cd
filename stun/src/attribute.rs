//! STUN attributes (RFC 5389 §15, RFC 5780 §7): the typed subset this
//! project uses, and raw bytes for everything else.
//!
//! Values are decoded strictly: a known attribute whose value does not follow
//! its format is an error, because a responder must answer it with 400
//! (RFC 5389 §7.3) rather than guess. Unknown attributes are kept raw so a
//! responder can list the comprehension-required ones in a 420 answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::MAGIC_COOKIE;
use crate::error::{DecodeError, EncodeError};
use crate::message::TransactionId;

/// Attribute type codes (IANA "STUN Attributes" registry).
pub mod types {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// RFC 5780 §7.2.
    pub const CHANGE_REQUEST: u16 = 0x0003;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    /// RFC 5780 §7.3.
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    /// RFC 5780 §7.4.
    pub const OTHER_ADDRESS: u16 = 0x802C;
}

/// The CHANGE-REQUEST flags (RFC 5780 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChangeRequest {
    /// Answer from the other IP address (flag bit A, 0x4).
    pub change_ip: bool,
    /// Answer from the other port (flag bit B, 0x2).
    pub change_port: bool,
}

/// ERROR-CODE (RFC 5389 §15.6): a code in 300..=699 and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    pub code: u16,
    pub reason: String,
}

impl ErrorCode {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        ErrorCode {
            code,
            reason: reason.into(),
        }
    }
}

/// Well-known error codes (RFC 5389 §15.6).
pub mod codes {
    pub const TRY_ALTERNATE: u16 = 300;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    pub const STALE_NONCE: u16 = 438;
    pub const SERVER_ERROR: u16 = 500;
}

/// One attribute of a message. FINGERPRINT is not an attribute here: it is
/// the [`Message::fingerprint`](crate::Message::fingerprint) flag, because its
/// value is a function of the rest of the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribute {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    Username(String),
    /// Kept as received; this codec does not compute HMACs. Attributes after
    /// it, other than FINGERPRINT, are ignored on decode (RFC 5389 §15.4).
    MessageIntegrity([u8; 20]),
    ErrorCode(ErrorCode),
    UnknownAttributes(Vec<u16>),
    ChangeRequest(ChangeRequest),
    ResponseOrigin(SocketAddr),
    OtherAddress(SocketAddr),
    Software(String),
    /// Any other attribute, value without padding.
    Other {
        attr_type: u16,
        value: Vec<u8>,
    },
}

/// Whether an attribute type is one this codec decodes into a typed variant.
pub fn is_known_type(attr_type: u16) -> bool {
    use types::*;
    matches!(
        attr_type,
        MAPPED_ADDRESS
            | CHANGE_REQUEST
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | XOR_MAPPED_ADDRESS
            | SOFTWARE
            | FINGERPRINT
            | RESPONSE_ORIGIN
            | OTHER_ADDRESS
    )
}

/// Types below 0x8000 must be understood by the receiver (RFC 5389 §15).
pub fn is_comprehension_required(attr_type: u16) -> bool {
    attr_type < 0x8000
}

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;
/// SOFTWARE and reason phrases: fewer than 128 characters (§15.6, §15.10).
pub(crate) const MAX_TEXT_CHARS: usize = 127;
/// USERNAME: fewer than 513 bytes (§15.3).
const MAX_USERNAME_BYTES: usize = 512;

impl Attribute {
    /// The type code this attribute is encoded with.
    pub fn attr_type(&self) -> u16 {
        use types::*;
        match self {
            Attribute::MappedAddress(_) => MAPPED_ADDRESS,
            Attribute::XorMappedAddress(_) => XOR_MAPPED_ADDRESS,
            Attribute::Username(_) => USERNAME,
            Attribute::MessageIntegrity(_) => MESSAGE_INTEGRITY,
            Attribute::ErrorCode(_) => ERROR_CODE,
            Attribute::UnknownAttributes(_) => UNKNOWN_ATTRIBUTES,
            Attribute::ChangeRequest(_) => CHANGE_REQUEST,
            Attribute::ResponseOrigin(_) => RESPONSE_ORIGIN,
            Attribute::OtherAddress(_) => OTHER_ADDRESS,
            Attribute::Software(_) => SOFTWARE,
            Attribute::Other { attr_type, .. } => *attr_type,
        }
    }

    /// Decodes one attribute value (without padding).
    pub(crate) fn decode(
        attr_type: u16,
        value: &[u8],
        tid: &TransactionId,
    ) -> Result<Attribute, DecodeError> {
        use types::*;
        let malformed = |reason| DecodeError::MalformedAttribute { attr_type, reason };
        Ok(match attr_type {
            MAPPED_ADDRESS => Attribute::MappedAddress(decode_address(attr_type, value)?),
            XOR_MAPPED_ADDRESS => {
                Attribute::XorMappedAddress(xor_address(decode_address(attr_type, value)?, tid))
            }
            RESPONSE_ORIGIN => Attribute::ResponseOrigin(decode_address(attr_type, value)?),
            OTHER_ADDRESS => Attribute::OtherAddress(decode_address(attr_type, value)?),
            USERNAME => Attribute::Username(decode_text(attr_type, value)?),
            SOFTWARE => Attribute::Software(decode_text(attr_type, value)?),
            MESSAGE_INTEGRITY => Attribute::MessageIntegrity(
                value
                    .try_into()
                    .map_err(|_| malformed("MESSAGE-INTEGRITY is not 20 bytes"))?,
            ),
            ERROR_CODE => {
                if value.len() < 4 {
                    return Err(malformed("ERROR-CODE shorter than 4 bytes"));
                }
                let class = u16::from(value[2] & 0x07);
                let number = u16::from(value[3]);
                if number > 99 {
                    return Err(malformed("ERROR-CODE number above 99"));
                }
                Attribute::ErrorCode(ErrorCode {
                    code: class * 100 + number,
                    reason: decode_text(attr_type, &value[4..])?,
                })
            }
            UNKNOWN_ATTRIBUTES => {
                if !value.len().is_multiple_of(2) {
                    return Err(malformed("UNKNOWN-ATTRIBUTES has an odd length"));
                }
                Attribute::UnknownAttributes(
                    value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            CHANGE_REQUEST => {
                let flags: [u8; 4] = value
                    .try_into()
                    .map_err(|_| malformed("CHANGE-REQUEST is not 4 bytes"))?;
                // Only bits A and B are defined; the rest are ignored (§7.2).
                Attribute::ChangeRequest(ChangeRequest {
                    change_ip: flags[3] & 0x04 != 0,
                    change_port: flags[3] & 0x02 != 0,
                })
            }
            _ => Attribute::Other {
                attr_type,
                value: value.to_vec(),
            },
        })
    }

    /// Appends the value (without padding) to `out`.
    pub(crate) fn encode_value(
        &self,
        tid: &TransactionId,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Attribute::MappedAddress(a)
            | Attribute::ResponseOrigin(a)
            | Attribute::OtherAddress(a) => encode_address(*a, out),
            Attribute::XorMappedAddress(a) => encode_address(xor_address(*a, tid), out),
            Attribute::Username(s) => {
                if s.len() > MAX_USERNAME_BYTES {
                    return Err(EncodeError::TextTooLong {
                        what: "USERNAME",
                        chars: s.len(),
                        max: MAX_USERNAME_BYTES,
                    });
                }
                out.extend_from_slice(s.as_bytes());
            }
            Attribute::Software(s) => {
                check_text("SOFTWARE", s)?;
                out.extend_from_slice(s.as_bytes());
            }
            Attribute::MessageIntegrity(h) => out.extend_from_slice(h),
            Attribute::ErrorCode(e) => {
                if !(300..=699).contains(&e.code) {
                    return Err(EncodeError::InvalidErrorCode(e.code));
                }
                check_text("ERROR-CODE reason", &e.reason)?;
                // Class in the hundreds digit, number in the rest (§15.6).
                out.extend_from_slice(&[0, 0, (e.code / 100) as u8, (e.code % 100) as u8]);
                out.extend_from_slice(e.reason.as_bytes());
            }
            Attribute::UnknownAttributes(list) => {
                for t in list {
                    out.extend_from_slice(&t.to_be_bytes());
                }
            }
            Attribute::ChangeRequest(c) => {
                let flags = (u8::from(c.change_ip) << 2) | (u8::from(c.change_port) << 1);
                out.extend_from_slice(&[0, 0, 0, flags]);
            }
            Attribute::Other { attr_type, value } => {
                if is_known_type(*attr_type) {
                    return Err(EncodeError::ReservedType(*attr_type));
                }
                out.extend_from_slice(value);
            }
        }
        Ok(())
    }
}

fn check_text(what: &'static str, s: &str) -> Result<(), EncodeError> {
    let chars = s.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(EncodeError::TextTooLong {
            what,
            chars,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

fn decode_text(attr_type: u16, value: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(value.to_vec()).map_err(|_| DecodeError::MalformedAttribute {
        attr_type,
        reason: "text is not UTF-8",
    })
}

/// MAPPED-ADDRESS layout (§15.1): reserved byte, family, port, address.
fn decode_address(attr_type: u16, value: &[u8]) -> Result<SocketAddr, DecodeError> {
    let malformed = |reason| DecodeError::MalformedAttribute { attr_type, reason };
    if value.len() < 4 {
        return Err(malformed("address shorter than 4 bytes"));
    }
    let port = u16::from_be_bytes([value[2], value[3]]);
    let ip = match (value[1], &value[4..]) {
        (FAMILY_V4, a) => {
            let a: [u8; 4] = a
                .try_into()
                .map_err(|_| malformed("IPv4 address is not 4 bytes"))?;
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (FAMILY_V6, a) => {
            let a: [u8; 16] = a
                .try_into()
                .map_err(|_| malformed("IPv6 address is not 16 bytes"))?;
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(malformed("unknown address family")),
    };
    Ok(SocketAddr::new(ip, port))
}

fn encode_address(addr: SocketAddr, out: &mut Vec<u8>) {
    let port = addr.port().to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&[0, FAMILY_V4, port[0], port[1]]);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&[0, FAMILY_V6, port[0], port[1]]);
            out.extend_from_slice(&ip.octets());
        }
    }
}

/// XOR-MAPPED-ADDRESS obfuscation (§15.2): the port with the cookie's high
/// 16 bits, IPv4 with the cookie, IPv6 with cookie || transaction ID. It is
/// an involution, so the same function encodes and decodes.
fn xor_address(addr: SocketAddr, tid: &TransactionId) -> SocketAddr {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(ip) => {
            let mut o = ip.octets();
            for (b, k) in o.iter_mut().zip(cookie) {
                *b ^= k;
            }
            IpAddr::V4(Ipv4Addr::from(o))
        }
        IpAddr::V6(ip) => {
            let mut o = ip.octets();
            let key = cookie.iter().chain(tid.as_bytes().iter());
            for (b, k) in o.iter_mut().zip(key) {
                *b ^= k;
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    SocketAddr::new(ip, port)
}
