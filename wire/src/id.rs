/*!
160-bit identifiers and the arithmetic of the Chord ring (ID-1, ID-2, ID-6).

Peer-IDs and Resource-IDs live in the same space, numbers modulo 2^160, so
one type serves both. The bytes are kept big-endian, which makes the derived
`Ord` the numeric order.
*/

use std::fmt;
use std::net::IpAddr;

use sha1::{Digest, Sha1};

/// A 160-bit ring position: a Peer-ID or a Resource-ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 20]);

/// Peer-IDs are ring positions of peers.
pub type PeerId = Id;
/// Resource-IDs are ring positions of stored resources.
pub type ResourceId = Id;

/// Why a text is not an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// ID-1: exactly 40 hex digits.
    #[error("an ID has exactly 40 hex digits, this one has {0}")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("not a hex digit at position {0}")]
    NotHex(usize),
}

/// How the hex digits of a parsed ID were written (ID-1 wants lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexCase {
    Lower,
    /// At least one digit `A`-`F`: accepted by receivers, never sent (ID-1).
    Upper,
}

impl Id {
    pub const ZERO: Id = Id([0; 20]);
    pub const MAX: Id = Id([0xff; 20]);

    /// SHA-1 of `data` as a ring position.
    pub fn hash(data: &[u8]) -> Id {
        Id(Sha1::digest(data).into())
    }

    /// Parses exactly 40 hex digits, either case, and says which case was used.
    #[inline]
    pub fn parse_hex(text: &[u8]) -> Result<(Id, HexCase), IdError> {
        let Ok(digits) = <&[u8; 40]>::try_from(text) else {
            return Err(IdError::Length(text.len()));
        };
        match hex40(digits) {
            Some((bytes, upper)) => {
                let case = if upper {
                    HexCase::Upper
                } else {
                    HexCase::Lower
                };
                Ok((Id(bytes), case))
            }
            // Not all hex digits: the slow way finds the first bad one.
            None => Id::parse_hex_slow(text),
        }
    }

    fn parse_hex_slow(text: &[u8]) -> Result<(Id, HexCase), IdError> {
        let mut out = [0u8; 20];
        let mut upper = false;
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(IdError::NotHex(2 * i))?;
            let lo = hex_value(pair[1]).ok_or(IdError::NotHex(2 * i + 1))?;
            upper |= pair[0].is_ascii_uppercase() || pair[1].is_ascii_uppercase();
            out[i] = hi << 4 | lo;
        }
        Ok((
            Id(out),
            if upper {
                HexCase::Upper
            } else {
                HexCase::Lower
            },
        ))
    }

    /// 40 hex digits in lower case (what senders emit, ID-1); None for
    /// anything else, upper case included.
    #[inline(always)]
    pub(crate) fn lower_hex40(text: &[u8; 40]) -> Option<Id> {
        lower_hex40(text).map(Id)
    }

    /// Parses an ID written in lower case only (what senders must emit, ID-1).
    pub fn from_hex(text: &str) -> Result<Id, IdError> {
        Id::parse_hex(text.as_bytes()).map(|(id, _)| id)
    }

    /// The 40 lower-case hex digits (ID-1), without allocating.
    pub fn to_hex(&self) -> HexBuf {
        let mut buf = [0u8; 40];
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[(b >> 4) as usize];
            buf[2 * i + 1] = DIGITS[(b & 0xf) as usize];
        }
        HexBuf(buf)
    }

    /// `self + other` modulo 2^160.
    pub fn wrapping_add(&self, other: &Id) -> Id {
        let mut out = [0u8; 20];
        let mut carry = 0u16;
        for i in (0..20).rev() {
            let s = self.0[i] as u16 + other.0[i] as u16 + carry;
            out[i] = s as u8;
            carry = s >> 8;
        }
        Id(out)
    }

    /// `self - other` modulo 2^160.
    pub fn wrapping_sub(&self, other: &Id) -> Id {
        let mut out = [0u8; 20];
        let mut borrow = 0i16;
        for i in (0..20).rev() {
            let mut d = self.0[i] as i16 - other.0[i] as i16 - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        Id(out)
    }

    /// 2^i for i in 0..160.
    pub fn pow2(i: u8) -> Id {
        assert!(i < 160, "finger index {i} out of 0..160");
        let mut out = [0u8; 20];
        out[19 - (i / 8) as usize] = 1 << (i % 8);
        Id(out)
    }

    /// `self + 2^i`: the start of finger `i` (STAB-3).
    pub fn finger_start(&self, i: u8) -> Id {
        self.wrapping_add(&Id::pow2(i))
    }

    /// The clockwise distance from `self` to `to`.
    pub fn distance_to(&self, to: &Id) -> Id {
        to.wrapping_sub(self)
    }

    /// `self + 1` modulo 2^160.
    pub fn successor(&self) -> Id {
        self.wrapping_add(&Id::pow2(0))
    }

    /// `self - 1` modulo 2^160.
    pub fn predecessor(&self) -> Id {
        self.wrapping_sub(&Id::pow2(0))
    }

    /// Is `self` in the clockwise arc `(from, to]`? With `from == to` the arc
    /// is the whole ring: a peer that is its own successor owns every key.
    pub fn in_open_closed(&self, from: &Id, to: &Id) -> bool {
        if from == to {
            return true;
        }
        from.distance_to(self) <= from.distance_to(to) && self != from
    }

    /// Is `self` in the clockwise arc `(from, to)`? With `from == to` that is
    /// every position but `from`.
    pub fn in_open(&self, from: &Id, to: &Id) -> bool {
        if from == to {
            return self != from;
        }
        self != from && from.distance_to(self) < from.distance_to(to)
    }

    /// The last 16 bits, where ID-2 puts the port.
    pub fn port_bits(&self) -> u16 {
        u16::from_be_bytes([self.0[18], self.0[19]])
    }

    /// The high 144 bits, shared by all peers of one IP address (ID-2).
    pub fn ip_bits(&self) -> &[u8] {
        &self.0[..18]
    }

    /// The number of leading bits `self` and `other` share.
    pub fn common_prefix_bits(&self, other: &Id) -> u32 {
        for (i, (a, b)) in self.0.iter().zip(other.0.iter()).enumerate() {
            let x = a ^ b;
            if x != 0 {
                return i as u32 * 8 + x.leading_zeros();
            }
        }
        160
    }
}

/// 40 hex digits as 20 bytes, and whether any was an upper-case letter;
/// None if any is not a hex digit. Sixteen digits at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn hex40(text: &[u8; 40]) -> Option<([u8; 20], bool)> {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si64,
        _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi16, _mm_set1_epi8,
        _mm_set1_epi16, _mm_slli_epi16, _mm_srli_epi16, _mm_sub_epi8,
    };
    /// Sixteen digits: the eight bytes they spell (in order, little-endian),
    /// a bit per digit that is a hex digit, and a bit per upper-case letter.
    ///
    /// # Safety
    ///
    /// SSE2 must be enabled.
    #[inline(always)]
    unsafe fn sixteen(v: __m128i) -> (u64, i32, i32) {
        // SAFETY: SSE2 is enabled (the caller's contract); these intrinsics
        // only compute on registers.
        unsafe {
            let digit = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            // Unsigned `x <= n` is `min(x, n) == x`.
            let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(digit, _mm_set1_epi8(9)), digit);
            // Setting the 0x20 bit folds 'A'..='F' onto 'a'..='f' and nothing
            // else onto them.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let letter = _mm_sub_epi8(folded, _mm_set1_epi8(b'a' as i8));
            let is_letter = _mm_cmpeq_epi8(_mm_min_epu8(letter, _mm_set1_epi8(5)), letter);
            let valid = _mm_movemask_epi8(_mm_or_si128(is_digit, is_letter));
            let bit = _mm_set1_epi8(0x20);
            let has_bit = _mm_cmpeq_epi8(_mm_and_si128(v, bit), bit);
            let upper = _mm_movemask_epi8(_mm_andnot_si128(has_bit, is_letter));
            let nibble = _mm_or_si128(
                _mm_and_si128(is_digit, digit),
                _mm_andnot_si128(is_digit, _mm_add_epi8(letter, _mm_set1_epi8(10))),
            );
            // Each 16-bit lane holds two digits, the first in its low byte.
            let high = _mm_and_si128(_mm_slli_epi16(nibble, 4), _mm_set1_epi16(0x00f0));
            let pairs = _mm_or_si128(high, _mm_srli_epi16(nibble, 8));
            let bytes = _mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)) as u64;
            (bytes, valid, upper)
        }
    }
    let [x, y, z] = three_loads(text);
    // SAFETY: this function is compiled only where SSE2 is enabled (the cfg
    // above; it is part of every x86_64 target).
    let ((a, va, ua), (b, vb, ub), (c, vc, uc)) = unsafe { (sixteen(x), sixteen(y), sixteen(z)) };
    if va & vb & vc != 0xffff {
        return None;
    }
    Some((twenty(a, b, c), (ua | ub | uc) != 0))
}

/// The 40 digits as three sixteen-byte loads: bytes 0..16, 16..32 and
/// 24..40 (the third overlaps the second by eight digits).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn three_loads(text: &[u8; 40]) -> [std::arch::x86_64::__m128i; 3] {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128};
    // SAFETY: SSE2 is enabled (the cfg above); each load reads 16 bytes
    // within the 40 of `text`, and `loadu` has no alignment requirement.
    unsafe {
        let p = text.as_ptr();
        [
            _mm_loadu_si128(p.cast::<__m128i>()),
            _mm_loadu_si128(p.add(16).cast::<__m128i>()),
            _mm_loadu_si128(p.add(24).cast::<__m128i>()),
        ]
    }
}

/// The 20 bytes the three loads of [`three_loads`] spell, eight from each
/// (the third began eight digits, four bytes, early).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn twenty(a: u64, b: u64, c: u64) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..16].copy_from_slice(&b.to_le_bytes());
    out[16..].copy_from_slice(&c.to_le_bytes()[4..]);
    out
}

/// 40 lower-case hex digits as 20 bytes; None if any is not one. Sixteen
/// digits at a time, with less work than [`hex40`]: no letter case to fold
/// or report.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn lower_hex40(text: &[u8; 40]) -> Option<[u8; 20]> {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cvtsi128_si64,
        _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi16, _mm_set1_epi8,
        _mm_set1_epi16, _mm_slli_epi16, _mm_srli_epi16, _mm_sub_epi8,
    };
    /// Sixteen digits: the eight bytes they spell (in order,
    /// little-endian) and a bit per byte that is a lower-case hex digit.
    ///
    /// # Safety
    ///
    /// SSE2 must be enabled.
    #[inline(always)]
    unsafe fn sixteen(v: __m128i) -> (u64, i32) {
        // SAFETY: SSE2 is enabled (the caller's contract); these intrinsics
        // only compute on registers.
        unsafe {
            // Unsigned `x <= n` is `min(x, n) == x`.
            let digit = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(digit, _mm_set1_epi8(9)), digit);
            let letter = _mm_sub_epi8(v, _mm_set1_epi8(b'a' as i8));
            let is_letter = _mm_cmpeq_epi8(_mm_min_epu8(letter, _mm_set1_epi8(5)), letter);
            let valid = _mm_movemask_epi8(_mm_or_si128(is_digit, is_letter));
            // The low four bits of a digit are its value; those of 'a'..='f'
            // are 1..=6, nine short. Letters are above '9'.
            let above_nine = _mm_cmpgt_epi8(v, _mm_set1_epi8(b'9' as i8));
            let nibble = _mm_add_epi8(
                _mm_and_si128(v, _mm_set1_epi8(0x0f)),
                _mm_and_si128(above_nine, _mm_set1_epi8(9)),
            );
            // Each 16-bit lane holds two digits, the first in its low byte.
            let high = _mm_and_si128(_mm_slli_epi16(nibble, 4), _mm_set1_epi16(0x00f0));
            let pairs = _mm_or_si128(high, _mm_srli_epi16(nibble, 8));
            let bytes = _mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)) as u64;
            (bytes, valid)
        }
    }
    let [x, y, z] = three_loads(text);
    // SAFETY: as in `hex40`: SSE2 is enabled here.
    let ((a, va), (b, vb), (c, vc)) = unsafe { (sixteen(x), sixteen(y), sixteen(z)) };
    if va & vb & vc != 0xffff {
        return None;
    }
    Some(twenty(a, b, c))
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn lower_hex40(text: &[u8; 40]) -> Option<[u8; 20]> {
    match hex40(text) {
        Some((bytes, false)) => Some(bytes),
        _ => None,
    }
}

/// [`hex40`] without vector registers: branch-free over all 40 digits.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn hex40_portable(text: &[u8; 40]) -> Option<([u8; 20], bool)> {
    let mut nibbles = [0u8; 40];
    let mut bad = false;
    let mut upper = false;
    for (n, &c) in nibbles.iter_mut().zip(text) {
        let digit = c.wrapping_sub(b'0');
        // Setting the 0x20 bit folds 'A'..='F' onto 'a'..='f' and nothing
        // else onto them.
        let letter = (c | 0x20).wrapping_sub(b'a');
        let is_digit = digit < 10;
        let is_letter = letter < 6;
        bad |= !(is_digit | is_letter);
        upper |= is_letter & (c & 0x20 == 0);
        *n = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    if bad {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Some((out, upper))
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(crate) fn hex40(text: &[u8; 40]) -> Option<([u8; 20], bool)> {
    hex40_portable(text)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The 40 hex digits of an [`Id`], held on the stack.
#[derive(Clone, Copy)]
pub struct HexBuf([u8; 40]);

impl HexBuf {
    pub fn as_str(&self) -> &str {
        // The buffer only ever holds ASCII hex digits.
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl std::ops::Deref for HexBuf {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_hex().as_str())
    }
}

impl std::str::FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Id, IdError> {
        Id::from_hex(s)
    }
}

/// The text ID-2 hashes: IPv4 dotted quad, IPv6 in RFC 5952 form, no brackets.
///
/// Rust's `Ipv6Addr` display already follows RFC 5952 (lower case, the
/// longest zero run compressed, a lone zero group kept).
pub fn ip_text(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// ID-2: SHA-1 of the address text with the low 16 bits replaced by the port.
pub fn peer_id(ip: IpAddr, port: u16) -> PeerId {
    // The longest address text (an IPv4-mapped IPv6 address) is 45 bytes;
    // formatting on the stack keeps this free of allocation.
    let mut buf = [0u8; 64];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // Writing at most 45 bytes into 64 cannot fail.
        let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{ip}"));
        cursor.position() as usize
    };
    let mut id = Id::hash(&buf[..len]);
    id.0[18..].copy_from_slice(&port.to_be_bytes());
    id
}

/// The legacy sipping-02 Node-ID: SHA-1 of `"ip:port"` (IPv6 in brackets).
pub fn legacy_node_id(ip: IpAddr, port: u16) -> PeerId {
    let text = match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };
    Id::hash(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::from_hex(s).unwrap()
    }

    #[test]
    fn id_2_profile_example() {
        // PROFILE ID-2: SHA-1("10.4.1.2") with port 5060 in the low 16 bits.
        let p = peer_id("10.4.1.2".parse().unwrap(), 5060);
        assert_eq!(p.to_string(), "6c7c752f7592a104b9ba5e48ec077a01385b13c4");
        assert_eq!(
            Id::hash(b"10.4.1.2").to_string(),
            "6c7c752f7592a104b9ba5e48ec077a01385b2e89"
        );
    }

    #[test]
    fn id_2_ipv6_uses_rfc5952_text() {
        let ip: IpAddr = "2001:DB8:0:0:0:0:0:1".parse().unwrap();
        assert_eq!(ip_text(&ip), "2001:db8::1");
        let p = peer_id(ip, 0xffff);
        assert_eq!(&p.0[..18], &Id::hash(b"2001:db8::1").0[..18]);
        assert_eq!(p.port_bits(), 0xffff);
    }

    #[test]
    fn hex_parse_agrees_with_the_digit_loop() {
        // Every byte value at every position of a valid ID.
        let base = *b"0123456789abcdefABCDEF0123456789abcdef01";
        for at in 0..40 {
            for b in 0..=255u8 {
                let mut text = base;
                text[at] = b;
                assert_eq!(
                    Id::parse_hex(&text),
                    Id::parse_hex_slow(&text),
                    "{b} at {at}"
                );
                assert_eq!(hex40(&text), hex40_portable(&text), "{b} at {at}");
            }
        }
        // The lower-case decoder takes exactly what the general one reads
        // as lower case.
        let lower = *b"0123456789abcdef0123456789abcdef01234567";
        for at in 0..40 {
            for b in 0..=255u8 {
                let mut text = lower;
                text[at] = b;
                let expected = match hex40_portable(&text) {
                    Some((bytes, false)) => Some(bytes),
                    _ => None,
                };
                assert_eq!(lower_hex40(&text), expected, "{b} at {at}");
            }
        }
        for text in [
            &base[..],
            b"0000000000000000000000000000000000000000",
            b"ffffffffffffffffffffffffffffffffffffffff",
            b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        ] {
            assert_eq!(Id::parse_hex(text), Id::parse_hex_slow(text));
            assert!(Id::parse_hex(text).is_ok());
        }
    }

    #[test]
    fn id_1_hex_parse_and_case() {
        let (a, case) = Id::parse_hex(b"6C7C752F7592A104B9BA5E48EC077A01385B13C4").unwrap();
        assert_eq!(case, HexCase::Upper);
        assert_eq!(a, id("6c7c752f7592a104b9ba5e48ec077a01385b13c4"));
        assert_eq!(Id::parse_hex(b"abc"), Err(IdError::Length(3)));
        assert_eq!(
            Id::parse_hex(b"6c7c752f7592a104b9ba5e48ec077a01385b13cg"),
            Err(IdError::NotHex(39))
        );
    }

    #[test]
    fn ring_arithmetic_wraps() {
        assert_eq!(Id::MAX.successor(), Id::ZERO);
        assert_eq!(Id::ZERO.predecessor(), Id::MAX);
        assert_eq!(Id::ZERO.finger_start(159).0[0], 0x80);
        assert_eq!(Id::MAX.finger_start(0), Id::ZERO);
        let a = Id::hash(b"a");
        let b = Id::hash(b"b");
        assert_eq!(a.wrapping_add(&a.distance_to(&b)), b);
    }

    #[test]
    fn id_6_arcs() {
        let (a, b, c) = (Id::pow2(10), Id::pow2(20), Id::pow2(30));
        assert!(b.in_open_closed(&a, &c));
        assert!(c.in_open_closed(&a, &c));
        assert!(!a.in_open_closed(&a, &c));
        assert!(!b.in_open(&c, &a)); // the arc (c, a) wraps through zero
        assert!(Id::ZERO.in_open(&c, &a));
        assert!(Id::MAX.in_open_closed(&c, &a));
        // A lone peer's arc is the whole ring.
        assert!(b.in_open_closed(&a, &a));
        assert!(a.in_open_closed(&a, &a));
        assert!(!a.in_open(&a, &a));
        assert!(b.in_open(&a, &a));
    }
}
