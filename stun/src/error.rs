//! Typed errors of the codec: why a datagram is not a well-formed STUN
//! message ([`DecodeError`]) and why a [`Message`](crate::Message) cannot be
//! put on the wire ([`EncodeError`]).

use thiserror::Error;

/// Why [`decode`](crate::decode) rejected a datagram.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than the 20-byte header (RFC 5389 §6).
    #[error("{0} bytes is shorter than the 20-byte STUN header")]
    TooShort(usize),
    /// The two most significant bits of a STUN message are zero (§6).
    #[error("the first two bits are not zero: not a STUN message")]
    LeadingBits,
    /// The magic cookie is fixed to 0x2112A442 (§6).
    #[error("magic cookie is {0:#010x}, expected 0x2112a442")]
    BadMagicCookie(u32),
    /// Attributes are padded to 4 bytes, so the length is too (§6).
    #[error("message length {0} is not a multiple of 4")]
    LengthNotAligned(u16),
    /// The header's length must match the datagram exactly.
    #[error("header says {header} bytes of attributes, datagram carries {actual}")]
    LengthMismatch { header: usize, actual: usize },
    /// An attribute (with its padding) runs past the end of the message.
    #[error("attribute {attr_type:#06x} at offset {offset} runs past the end of the message")]
    AttributeOverrun { attr_type: u16, offset: usize },
    /// A known attribute whose value does not follow its format.
    #[error("malformed attribute {attr_type:#06x}: {reason}")]
    MalformedAttribute {
        attr_type: u16,
        reason: &'static str,
    },
    /// FINGERPRINT is always the last attribute (§15.5).
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
    /// FINGERPRINT does not match the CRC-32 of the message (§15.5).
    #[error("FINGERPRINT is {got:#010x}, the message's is {computed:#010x}")]
    FingerprintMismatch { got: u32, computed: u32 },
}

/// Why [`Message::encode`](crate::Message::encode) refused a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// An attribute value longer than the 16-bit length field allows.
    #[error("attribute {attr_type:#06x} value is {len} bytes, more than 65535")]
    AttributeTooLong { attr_type: u16, len: usize },
    /// The attributes do not fit the 16-bit message length.
    #[error("attributes take {0} bytes, more than the 65532 a STUN message can carry")]
    MessageTooLong(usize),
    /// ERROR-CODE codes are 300..=699 (RFC 5389 §15.6).
    #[error("error code {0} is outside 300..=699")]
    InvalidErrorCode(u16),
    /// SOFTWARE and the ERROR-CODE reason are bounded (RFC 5389 §15.6, §15.10).
    #[error("{what} has {chars} characters, at most {max} allowed")]
    TextTooLong {
        what: &'static str,
        chars: usize,
        max: usize,
    },
    /// The caller put a known attribute type in [`Attribute::Other`](crate::Attribute::Other):
    /// it would decode as the typed variant, so it is refused.
    #[error("attribute type {0:#06x} has a typed variant; use it instead of Other")]
    ReservedType(u16),
}
