//! The message model (RFC 5389 §6): class, method, transaction ID and an
//! ordered list of attributes, with builder-style constructors for the
//! Binding transactions and accessors for the attributes RFC 5780 uses.

use std::fmt;
use std::net::SocketAddr;

use crate::attribute::{Attribute, ChangeRequest, ErrorCode, is_comprehension_required};

/// The two class bits C1 C0 of the message type (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

impl Class {
    pub(crate) fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::SuccessResponse => 0b10,
            Class::ErrorResponse => 0b11,
        }
    }

    pub(crate) fn from_bits(bits: u16) -> Class {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        }
    }
}

/// A 12-bit STUN method (§6). Only Binding is defined by RFC 5389.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(u16);

impl Method {
    pub const BINDING: Method = Method(0x001);

    /// `None` when the value does not fit 12 bits.
    pub fn new(value: u16) -> Option<Method> {
        (value <= 0x0FFF).then_some(Method(value))
    }

    pub fn value(self) -> u16 {
        self.0
    }
}

/// The 96-bit transaction ID (§6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId([u8; 12]);

impl TransactionId {
    pub const fn new(bytes: [u8; 12]) -> Self {
        TransactionId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl From<[u8; 12]> for TransactionId {
    fn from(bytes: [u8; 12]) -> Self {
        TransactionId(bytes)
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({self})")
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A STUN message. Build one with the constructors and [`Message::with`],
/// put it on the wire with [`Message::encode`], read one with
/// [`decode`](crate::decode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    pub class: Class,
    pub method: Method,
    pub transaction_id: TransactionId,
    /// In wire order, FINGERPRINT excluded.
    pub attributes: Vec<Attribute>,
    /// On encode: append a FINGERPRINT. On decode: one was present and
    /// matched (a mismatch is a decode error).
    pub fingerprint: bool,
}

impl Message {
    pub fn new(class: Class, method: Method, transaction_id: TransactionId) -> Self {
        Message {
            class,
            method,
            transaction_id,
            attributes: Vec::new(),
            fingerprint: false,
        }
    }

    pub fn binding_request(transaction_id: TransactionId) -> Self {
        Message::new(Class::Request, Method::BINDING, transaction_id)
    }

    pub fn binding_indication(transaction_id: TransactionId) -> Self {
        Message::new(Class::Indication, Method::BINDING, transaction_id)
    }

    /// A success response to `request`: same method and transaction ID.
    pub fn success_response(request: &Message) -> Self {
        Message::new(
            Class::SuccessResponse,
            request.method,
            request.transaction_id,
        )
    }

    /// An error response to `request` carrying ERROR-CODE.
    pub fn error_response(request: &Message, code: u16, reason: impl Into<String>) -> Self {
        Message::new(Class::ErrorResponse, request.method, request.transaction_id)
            .with(Attribute::ErrorCode(ErrorCode::new(code, reason)))
    }

    /// Appends an attribute.
    #[must_use]
    pub fn with(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Asks [`Message::encode`] to append FINGERPRINT.
    #[must_use]
    pub fn with_fingerprint(mut self) -> Self {
        self.fingerprint = true;
        self
    }

    pub fn is_request(&self) -> bool {
        self.class == Class::Request
    }

    pub fn is_response(&self) -> bool {
        matches!(self.class, Class::SuccessResponse | Class::ErrorResponse)
    }

    /// XOR-MAPPED-ADDRESS, the reflexive address of RFC 5389 clients.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::XorMappedAddress(x) => Some(*x),
            _ => None,
        })
    }

    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MappedAddress(x) => Some(*x),
            _ => None,
        })
    }

    /// The reflexive address: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS for
    /// RFC 3489 servers (RFC 5389 §12.2).
    pub fn reflexive_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address().or_else(|| self.mapped_address())
    }

    pub fn change_request(&self) -> Option<ChangeRequest> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ChangeRequest(c) => Some(*c),
            _ => None,
        })
    }

    pub fn response_origin(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ResponseOrigin(x) => Some(*x),
            _ => None,
        })
    }

    pub fn other_address(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::OtherAddress(x) => Some(*x),
            _ => None,
        })
    }

    pub fn software(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Software(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn error_code(&self) -> Option<&ErrorCode> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ErrorCode(e) => Some(e),
            _ => None,
        })
    }

    /// Types of the comprehension-required attributes this codec does not
    /// know, in order, without duplicates: what a server lists in
    /// UNKNOWN-ATTRIBUTES of a 420 answer (RFC 5389 §7.3.1).
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for a in &self.attributes {
            if let Attribute::Other { attr_type, .. } = a
                && is_comprehension_required(*attr_type)
                && !out.contains(attr_type)
            {
                out.push(*attr_type);
            }
        }
        out
    }
}
