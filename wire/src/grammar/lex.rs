/*!
Lexical rules of RFC 3261 §25.1: character classes, linear white space,
tokens, quoted strings, numbers.

Character classes are 256-entry tables, so a scan over a class costs one
load per byte; the rules scan by hand rather than through combinators,
which keeps them free of the combinators' per-call and error-building
costs.
*/

use nom::IResult;

use crate::text::Text;

/// The nom result of every grammar rule: the cheap, allocation-free error.
pub(crate) type Res<'a, T> = IResult<&'a [u8], T>;

const fn class(extra: &[u8], alnum: bool) -> [bool; 256] {
    let mut t = [false; 256];
    if alnum {
        let mut c = b'0';
        while c <= b'9' {
            t[c as usize] = true;
            c += 1;
        }
        let mut c = b'a';
        while c <= b'z' {
            t[c as usize] = true;
            t[(c - 32) as usize] = true;
            c += 1;
        }
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")`
pub(crate) static TOKEN: [bool; 256] = class(b"-.!%*_+`'~", true);
/// `hostname` characters (labels and dots); IPv6 references are separate.
pub(crate) static HOST: [bool; 256] = class(b"-._", true);
/// `user = 1*( unreserved / escaped / user-unreserved )`
/// `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"`
/// (`;` and `?` excluded here: we end the user part at `@`, see `uri`.)
pub(crate) static USER: [bool; 256] = class(b"-_.!~*'()%&=+$,;?/", true);
/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`
pub(crate) static PASSWORD: [bool; 256] = class(b"-_.!~*'()%&=+$,", true);
/// `paramchar = param-unreserved / unreserved / escaped`
/// `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"`
pub(crate) static PARAMCHAR: [bool; 256] = class(b"[]/:&+$-_.!~*'()%", true);
/// `hnv-unreserved / unreserved / escaped` plus `=` and `&` separators.
pub(crate) static URI_HEADERS: [bool; 256] = class(b"[]/?:+$-_.!~*'()%=&", true);
/// `word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
/// "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" /
/// "]" / "?" / "{" / "}" )`, and the `@` between the two words of a
/// Call-ID.
pub(crate) static CALLID: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}@", true);
/// Characters of an IPv6 reference body.
pub(crate) static IPV6: [bool; 256] = class(b":.", true);
/// `gen-value` characters outside quotes and brackets: `token` and `host`
/// characters plus `:`.
pub(crate) static GEN_VALUE: [bool; 256] = class(b"-.!%*_+`'~:", true);
/// Characters an opaque (non-SIP) URI may hold inside angle brackets.
pub(crate) static OPAQUE: [bool; 256] = class(b"-_.!~*'()%;/?:@&=+$,[]#", true);

/// A name (of a header or parameter) to compare with input in any letter
/// case, eight bytes at a time.
pub(crate) struct Spelling {
    /// The name with the 0x20 bit of its letters cleared (so either case
    /// compares equal), little-endian, zero past its end.
    lower: [u64; 3],
    /// The bits that count: 0x20 is left out of letters (case), and
    /// nothing past the end counts.
    care: [u64; 3],
    pub(crate) len: usize,
}

impl Spelling {
    pub(crate) const fn of(name: &str) -> Spelling {
        let name = name.as_bytes();
        assert!(name.len() <= 24);
        let mut s = Spelling {
            lower: [0; 3],
            care: [0; 3],
            len: name.len(),
        };
        let mut i = 0;
        while i < name.len() {
            let (b, care) = if name[i].is_ascii_alphabetic() {
                (name[i].to_ascii_lowercase(), 0xdf)
            } else {
                (name[i], 0xff)
            };
            s.lower[i / 8] |= ((b & care) as u64) << (8 * (i % 8));
            s.care[i / 8] |= (care as u64) << (8 * (i % 8));
            i += 1;
        }
        s
    }

    /// Whether `name` is this name.
    #[inline(always)]
    pub(crate) fn is(&self, name: &[u8]) -> bool {
        name.len() == self.len && self.prefix_of(name)
    }

    /// Whether `line` starts with this name, as a whole token.
    #[inline(always)]
    pub(crate) fn starts(&self, line: &[u8]) -> bool {
        match line.get(self.len) {
            Some(b) if !TOKEN[*b as usize] => {}
            _ => return false,
        }
        // Whole words of the line where it has them: the bytes past the
        // name do not count.
        let mut k = 0;
        while k * 8 < self.len {
            let w = match line.get(k * 8..k * 8 + 8) {
                Some(w) => word(w),
                None => word(&line[k * 8..]),
            };
            if w & self.care[k] != self.lower[k] {
                return false;
            }
            k += 1;
        }
        true
    }

    /// Whether `s` starts with the name.
    #[inline(always)]
    pub(crate) fn begins(&self, s: &[u8]) -> bool {
        s.len() >= self.len && self.prefix_of(s)
    }

    /// Whether `s`, at least as long as the name, starts with it.
    #[inline(always)]
    fn prefix_of(&self, s: &[u8]) -> bool {
        let mut k = 0;
        while k * 8 < self.len {
            let end = (k * 8 + 8).min(self.len);
            if word(&s[k * 8..end]) & self.care[k] != self.lower[k] {
                return false;
            }
            k += 1;
        }
        true
    }
}

/// Up to eight bytes, little-endian.
#[inline(always)]
fn word(s: &[u8]) -> u64 {
    match *s {
        [a, b, c, d, e, f, g, h, ..] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => s.iter().rev().fold(0, |w, b| w << 8 | u64::from(*b)),
    }
}

pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The number of leading bytes of `i` in `class`.
#[inline]
pub(crate) fn span(i: &[u8], class: &[bool; 256]) -> usize {
    let is = |b: u8| class[b as usize];
    let mut n = 0;
    // Four at a time while all four belong.
    while let Some(&[a, b, c, d]) = i.get(n..n + 4) {
        if !(is(a) & is(b) & is(c) & is(d)) {
            break;
        }
        n += 4;
    }
    while n < i.len() && is(i[n]) {
        n += 1;
    }
    n
}

/// `LWS = [*WSP CRLF] 1*WSP` and `SWS = [LWS]`, as one skip. A fold inside
/// a header value is CRLF (or a bare LF) followed by white space.
#[inline]
pub(crate) fn sws(i: &[u8]) -> Res<'_, ()> {
    match i.first() {
        Some(b' ' | b'\t' | b'\r' | b'\n') => Ok((skip_lws(i), ())),
        _ => Ok((i, ())),
    }
}

fn skip_lws(i: &[u8]) -> &[u8] {
    let mut n = 0;
    loop {
        match i.get(n) {
            Some(b' ' | b'\t') => n += 1,
            Some(b'\r')
                if i.get(n + 1) == Some(&b'\n') && i.get(n + 2).is_some_and(|b| is_wsp(*b)) =>
            {
                n += 3
            }
            Some(b'\n') if i.get(n + 1).is_some_and(|b| is_wsp(*b)) => n += 2,
            _ => return &i[n..],
        }
    }
}

/// `LWS`: at least one white space.
#[inline]
pub(crate) fn lws(i: &[u8]) -> Res<'_, ()> {
    // Most often one space.
    if let [b' ', rest @ ..] = i
        && !matches!(rest.first(), Some(b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Ok((rest, ()));
    }
    let (rest, ()) = sws(i)?;
    if rest.len() == i.len() {
        return Err(err(i, nom::error::ErrorKind::Space));
    }
    Ok((rest, ()))
}

/// A separator with optional white space around it: SEMI, EQUAL, COMMA,
/// SLASH, COLON of RFC 3261 §25.1 (`SEMI = SWS ";" SWS`).
#[inline]
pub(crate) fn sep(c: u8) -> impl Fn(&[u8]) -> Res<'_, ()> {
    move |i| {
        let (i, ()) = sws(i)?;
        match i.first() {
            Some(b) if *b == c => sws(&i[1..]),
            _ => Err(err(i, nom::error::ErrorKind::Char)),
        }
    }
}

/// `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")`
#[inline]
pub(crate) fn token(i: &[u8]) -> Res<'_, &[u8]> {
    match span(i, &TOKEN) {
        0 => Err(err(i, nom::error::ErrorKind::TakeWhile1)),
        n => Ok((&i[n..], &i[..n])),
    }
}

/// The literal `tag` in any letter case.
#[inline]
pub(crate) fn tag_no_case<'a>(i: &'a [u8], tag: &[u8]) -> Res<'a, ()> {
    match i.get(..tag.len()) {
        Some(head) if head.eq_ignore_ascii_case(tag) => Ok((&i[tag.len()..], ())),
        _ => Err(err(i, nom::error::ErrorKind::Tag)),
    }
}

/// `quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE`, returned
/// with its quotes (as sent).
pub(crate) fn quoted_string(i: &[u8]) -> Res<'_, &[u8]> {
    if i.first() != Some(&b'"') {
        return Err(err(i, nom::error::ErrorKind::Char));
    }
    let mut n = 1;
    while n < i.len() {
        match i[n] {
            b'\\' => n += 2,
            b'"' => return Ok((&i[n + 1..], &i[..n + 1])),
            _ => n += 1,
        }
    }
    Err(err(i, nom::error::ErrorKind::Eof))
}

/// `gen-value = token / host / quoted-string`
pub(crate) fn gen_value(i: &[u8]) -> Res<'_, &[u8]> {
    match i.first() {
        Some(b'"') => quoted_string(i),
        Some(b'[') => {
            // IPv6reference = "[" IPv6address "]"
            let n = span(&i[1..], &IPV6);
            if n == 0 || i.get(n + 1) != Some(&b']') {
                return Err(err(i, nom::error::ErrorKind::Tag));
            }
            Ok((&i[n + 2..], &i[..n + 2]))
        }
        // token and host share every character but ':' (IPv6 without
        // brackets appears in `received`), which we allow here.
        _ => match span(i, &GEN_VALUE) {
            0 => Err(err(i, nom::error::ErrorKind::TakeWhile1)),
            n => Ok((&i[n..], &i[..n])),
        },
    }
}

/// `generic-param = token [ EQUAL gen-value ]`, after the SEMI.
#[inline(always)]
pub(crate) fn generic_param(i: &[u8]) -> Res<'_, (&[u8], Option<&[u8]>)> {
    let (i, name) = token(i)?;
    // Most often `name=value`, the value a token.
    if let [b'=', v @ ..] = i {
        let n = span(v, &GEN_VALUE);
        if n > 0 {
            return Ok((&v[n..], (name, Some(&v[..n]))));
        }
    }
    // The value is optional: without a whole `EQUAL gen-value`, the input
    // resumes right after the name.
    let value = sep(b'=')(i).and_then(|(i, ())| gen_value(i));
    match value {
        Ok((rest, v)) => Ok((rest, (name, Some(v)))),
        Err(_) => Ok((i, (name, None))),
    }
}

/// `1*DIGIT` as a u32, saturating (RFC 3261 §20.19: a delta-seconds above
/// 2^32-1 means 2^32-1).
pub(crate) fn number_saturating(i: &[u8]) -> Res<'_, u32> {
    let mut n = 0u64;
    let mut len = 0;
    for b in i {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = (n * 10 + u64::from(d)).min(u32::MAX as u64);
        len += 1;
    }
    if len == 0 {
        return Err(err(i, nom::error::ErrorKind::TakeWhile1));
    }
    Ok((&i[len..], n as u32))
}

/// `1*DIGIT` that must fit `max`.
#[inline(always)]
pub(crate) fn number_max(i: &[u8], max: u32) -> Res<'_, u32> {
    let mut n = 0u64;
    let mut len = 0;
    for b in i {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n * 10 + u64::from(d);
        if n > max as u64 {
            return Err(nom::Err::Failure(nom::error::Error::new(
                i,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        len += 1;
    }
    if len == 0 {
        return Err(err(i, nom::error::ErrorKind::TakeWhile1));
    }
    Ok((&i[len..], n as u32))
}

/// `1*DIGIT` of at most nine digits (so it cannot overflow), all of `v`.
#[inline(always)]
pub(crate) fn short_number(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    Some(n)
}

/// The exact bytes `lit` at the start of `i`, and the rest after them. The
/// length is a constant, so the comparison is a word or two, not a loop.
#[inline(always)]
pub(crate) fn lit<'a, const N: usize>(i: &'a [u8], lit: &[u8; N]) -> Option<&'a [u8]> {
    let (head, rest) = i.split_first_chunk::<N>()?;
    (head == lit).then_some(rest)
}

/// `1*DIGIT` of at most `MAX` digits (at most nine, so it cannot
/// overflow) at the start of `i`, when no other digit follows: the value
/// and the rest. None for anything else, longer numbers included (the
/// general rules read those).
#[inline(always)]
pub(crate) fn digits<const MAX: usize>(i: &[u8]) -> Option<(u32, &[u8])> {
    const { assert!(MAX >= 1 && MAX <= 9) };
    let k = match i.first_chunk::<16>() {
        // The digits and the byte after them are among the first 16 (the
        // mask only shows the compiler so).
        Some(w) => digits_with::<MAX>(|k| w[k & 15]),
        None => digits_with::<MAX>(|k| i.get(k).copied().unwrap_or(0xff)),
    };
    let (n, k) = k?;
    Some((n, &i[k..]))
}

/// [`digits`] of the bytes `byte` gives by offset: the value and how many.
#[inline(always)]
fn digits_with<const MAX: usize>(byte: impl Fn(usize) -> u8) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut k = 0;
    while k < MAX {
        let d = byte(k).wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n * 10 + u32::from(d);
        k += 1;
    }
    if k == 0 || byte(k).is_ascii_digit() {
        return None;
    }
    Some((n, k))
}

/// A number that is a whole `gen-value` in the form senders emit: at most
/// nine digits, then the end of the value (a byte no `gen-value` holds).
#[inline(always)]
pub(crate) fn value_number(i: &[u8]) -> Option<(u32, &[u8])> {
    let (n, rest) = digits::<9>(i)?;
    match rest.first() {
        Some(b) if GEN_VALUE[*b as usize] => None,
        _ => Some((n, rest)),
    }
}

/// A port of at most five digits, at most 65535, that no digit follows.
#[inline(always)]
pub(crate) fn short_port(i: &[u8]) -> Option<(u16, &[u8])> {
    let (n, rest) = digits::<5>(i)?;
    Some((u16::try_from(n).ok()?, rest))
}

/// `port = 1*DIGIT`, at most 65535.
#[inline]
pub(crate) fn port(i: &[u8]) -> Res<'_, u16> {
    let (rest, n) = number_max(i, u16::MAX as u32)?;
    Ok((rest, n as u16))
}

/// `*WSP`
pub(crate) fn spaces(i: &[u8]) -> Res<'_, &[u8]> {
    let n = i.iter().position(|b| !is_wsp(*b)).unwrap_or(i.len());
    Ok((&i[n..], &i[..n]))
}

pub(crate) fn err(i: &[u8], kind: nom::error::ErrorKind) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(i, kind))
}

/// Bytes as text, checked: only input the parser has not validated as a
/// whole comes here (see `Cx::text`).
pub(crate) fn text(s: &[u8]) -> Text<'_> {
    match std::str::from_utf8(s) {
        Ok(t) => Text::borrowed(t),
        // Only reachable for free text (display names, reason phrases,
        // unknown headers); such bytes are kept readable rather than refused.
        Err(_) => String::from_utf8_lossy(s).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sws_skips_folds() {
        assert_eq!(sws(b" \r\n\t x").unwrap().0, b"x");
        assert_eq!(sws(b"\r\nx").unwrap().0, b"\r\nx"); // a line end, not a fold
        assert_eq!(sws(b" \n x").unwrap().0, b"x");
        assert!(lws(b"x").is_err());
    }

    #[test]
    fn quoted_string_with_escapes() {
        assert_eq!(
            quoted_string(br#""a \"b\" c" rest"#).unwrap(),
            (&b" rest"[..], &br#""a \"b\" c""#[..])
        );
        assert!(quoted_string(b"\"open").is_err());
    }

    #[test]
    fn generic_param_with_spaces() {
        let (rest, (n, v)) = generic_param(b"expires = 600;x").unwrap();
        assert_eq!(
            (n, v, rest),
            (&b"expires"[..], Some(&b"600"[..]), &b";x"[..])
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            number_saturating(b"99999999999x").unwrap(),
            (&b"x"[..], u32::MAX)
        );
        assert!(port(b"65536").is_err());
        assert_eq!(port(b"65535").unwrap().1, 65535);
    }

    #[test]
    fn senders_numbers() {
        assert_eq!(lit(b";tag=x", b";tag="), Some(&b"x"[..]));
        assert_eq!(lit(b";ta", b";tag="), None);
        assert_eq!(digits::<3>(b"159;"), Some((159, &b";"[..])));
        assert_eq!(digits::<3>(b"1590"), None);
        assert_eq!(digits::<3>(b";"), None);
        assert_eq!(value_number(b"3600"), Some((3600, &b""[..])));
        assert_eq!(value_number(b"3600,x"), Some((3600, &b",x"[..])));
        assert_eq!(value_number(b"36x"), None);
        assert_eq!(value_number(b"4294967296"), None);
        assert_eq!(short_port(b"65535>"), Some((65535, &b">"[..])));
        assert_eq!(short_port(b"65536"), None);
        assert_eq!(short_port(b"005060"), None);
        // The same where 16 bytes or more follow.
        assert_eq!(
            digits::<3>(b"159;xxxxxxxxxxxxxxxx"),
            Some((159, &b";xxxxxxxxxxxxxxxx"[..]))
        );
        assert_eq!(digits::<3>(b"1590xxxxxxxxxxxxxxxx"), None);
        assert_eq!(
            digits::<9>(b"123456789;xxxxxxxxxx"),
            Some((123456789, &b";xxxxxxxxxx"[..]))
        );
        assert_eq!(digits::<9>(b"1234567890xxxxxxxxxx"), None);
        assert_eq!(digits::<9>(b"x234567890xxxxxxxxxx"), None);
    }
}
