//! Wire encoding and decoding (RFC 5389 §6, §15), FINGERPRINT (§15.5) and
//! the cheap demultiplexing test for ports shared with SIP (§8).

use crate::attribute::{Attribute, types};
use crate::error::{DecodeError, EncodeError};
use crate::message::{Class, Message, Method, TransactionId};
use crate::{HEADER_LEN, MAGIC_COOKIE};

/// FINGERPRINT is the CRC-32 of the message XOR this constant (§15.5).
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// The 16-bit length field, rounded down to the 4-byte alignment.
const MAX_BODY: usize = 0xFFFC;

/// Whether `datagram` is plausibly one whole STUN message: the first two
/// bits are zero, the magic cookie is present, and the length field is a
/// multiple of 4 that accounts for every byte (RFC 5389 §8). A SIP message
/// starts with a letter, so this separates the two on a shared UDP port
/// without parsing. `decode` may still reject what passes this test.
pub fn looks_like_stun(datagram: &[u8]) -> bool {
    message_len(datagram) == Some(datagram.len())
}

/// For stream transports: the total length of the STUN message that starts
/// `buf`, read from its header, or `None` if `buf` does not start with a
/// STUN header (fewer than 20 bytes, leading bits, cookie, alignment).
pub fn message_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < HEADER_LEN || buf[0] & 0xC0 != 0 {
        return None;
    }
    let body = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    (cookie == MAGIC_COOKIE && body % 4 == 0).then_some(HEADER_LEN + body)
}

/// Decodes one STUN message occupying all of `datagram`.
///
/// Unknown attributes are kept as [`Attribute::Other`]; attributes after
/// MESSAGE-INTEGRITY other than FINGERPRINT are skipped (§15.4); a
/// FINGERPRINT must be last and must match.
pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(datagram.len()));
    }
    if datagram[0] & 0xC0 != 0 {
        return Err(DecodeError::LeadingBits);
    }
    let msg_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    let length = u16::from_be_bytes([datagram[2], datagram[3]]);
    let cookie = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(DecodeError::BadMagicCookie(cookie));
    }
    if !length.is_multiple_of(4) {
        return Err(DecodeError::LengthNotAligned(length));
    }
    let actual = datagram.len() - HEADER_LEN;
    if usize::from(length) != actual {
        return Err(DecodeError::LengthMismatch {
            header: usize::from(length),
            actual,
        });
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&datagram[8..HEADER_LEN]);
    let transaction_id = TransactionId::new(tid);
    let (class, method) = split_type(msg_type);

    let mut message = Message::new(class, method, transaction_id);
    let mut after_integrity = false;
    let mut offset = HEADER_LEN;
    while offset < datagram.len() {
        // `length` is a multiple of 4, so a whole 4-byte header is here.
        let attr_type = u16::from_be_bytes([datagram[offset], datagram[offset + 1]]);
        let value_len = usize::from(u16::from_be_bytes([
            datagram[offset + 2],
            datagram[offset + 3],
        ]));
        let start = offset + 4;
        let end = start + value_len;
        let next = start + padded(value_len);
        if next > datagram.len() {
            return Err(DecodeError::AttributeOverrun { attr_type, offset });
        }
        let value = &datagram[start..end];
        if attr_type == types::FINGERPRINT {
            if next != datagram.len() {
                return Err(DecodeError::FingerprintNotLast);
            }
            let got: [u8; 4] = value
                .try_into()
                .map_err(|_| DecodeError::MalformedAttribute {
                    attr_type,
                    reason: "FINGERPRINT is not 4 bytes",
                })?;
            let got = u32::from_be_bytes(got);
            // The CRC covers everything before the attribute, with the
            // header length already counting it, as received.
            let computed = crc32fast::hash(&datagram[..offset]) ^ FINGERPRINT_XOR;
            if got != computed {
                return Err(DecodeError::FingerprintMismatch { got, computed });
            }
            message.fingerprint = true;
            break;
        }
        if !after_integrity {
            let attribute = Attribute::decode(attr_type, value, &transaction_id)?;
            after_integrity = matches!(attribute, Attribute::MessageIntegrity(_));
            message.attributes.push(attribute);
        }
        offset = next;
    }
    Ok(message)
}

impl Message {
    /// Encodes the message, padding values with zeros and appending
    /// FINGERPRINT when [`Message::fingerprint`] is set.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.extend_from_slice(&join_type(self.class, self.method).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(self.transaction_id.as_bytes());
        let mut value = Vec::new();
        for attribute in &self.attributes {
            value.clear();
            attribute.encode_value(&self.transaction_id, &mut value)?;
            let attr_type = attribute.attr_type();
            let len = u16::try_from(value.len()).map_err(|_| EncodeError::AttributeTooLong {
                attr_type,
                len: value.len(),
            })?;
            out.extend_from_slice(&attr_type.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&value);
            out.resize(out.len() + padded(value.len()) - value.len(), 0);
            if out.len() - HEADER_LEN > MAX_BODY {
                return Err(EncodeError::MessageTooLong(out.len() - HEADER_LEN));
            }
        }
        let fingerprint_len = if self.fingerprint { 8 } else { 0 };
        let body = out.len() - HEADER_LEN + fingerprint_len;
        if body > MAX_BODY {
            return Err(EncodeError::MessageTooLong(body));
        }
        // `body` fits: checked against MAX_BODY just above.
        out[2..4].copy_from_slice(&(body as u16).to_be_bytes());
        if self.fingerprint {
            let crc = crc32fast::hash(&out) ^ FINGERPRINT_XOR;
            out.extend_from_slice(&types::FINGERPRINT.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&crc.to_be_bytes());
        }
        Ok(out)
    }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// The type field interleaves method bits M0-M11 with class bits C0, C1
/// at positions 4 and 8 (§6, figure 3).
fn join_type(class: Class, method: Method) -> u16 {
    let m = method.value();
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

fn split_type(t: u16) -> (Class, Method) {
    let class = Class::from_bits(((t >> 4) & 1) | ((t >> 7) & 2));
    let m = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    // 12 bits by construction.
    let method = Method::new(m).unwrap_or(Method::BINDING);
    (class, method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_field_layout() {
        // Binding request / success / error / indication (§6, §18.1).
        assert_eq!(join_type(Class::Request, Method::BINDING), 0x0001);
        assert_eq!(join_type(Class::Indication, Method::BINDING), 0x0011);
        assert_eq!(join_type(Class::SuccessResponse, Method::BINDING), 0x0101);
        assert_eq!(join_type(Class::ErrorResponse, Method::BINDING), 0x0111);
        for m in [0u16, 1, 0x0F, 0x10, 0x70, 0x80, 0xABC, 0xFFF] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::SuccessResponse,
                Class::ErrorResponse,
            ] {
                let method = Method::new(m).unwrap();
                let t = join_type(c, method);
                assert_eq!(t & 0xC000, 0);
                assert_eq!(split_type(t), (c, method));
            }
        }
    }

    #[test]
    fn message_len_reads_the_header() {
        let m = Message::binding_request(TransactionId::new([7; 12]))
            .with(Attribute::Software("x".into()))
            .encode()
            .unwrap();
        assert_eq!(message_len(&m), Some(28));
        assert_eq!(message_len(&m[..19]), None);
        let mut sip = m.clone();
        sip[0] = b'R';
        assert_eq!(message_len(&sip), None);
    }
}
