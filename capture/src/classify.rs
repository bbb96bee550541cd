//! Recognising payloads: STUN by its header, SIP by its start line
//! (RFC 3261 §7.1/§7.2), keep-alives by their exact bytes.

use memchr::memchr;

use crate::PayloadKind;

/// The STUN magic cookie (RFC 5389 §6).
pub const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Start lines longer than this are not looked for (a request-URI of
/// several kilobytes is not a start line anyone sends).
pub const MAX_START_LINE: usize = 8192;

const MAX_METHOD: usize = 32;

/// A STUN message: at least a header, message type starting with 0b00
/// (first byte 0x00 or 0x01), and the magic cookie.
pub fn is_stun(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] <= 0x01 && p[4..8] == STUN_MAGIC_COOKIE
}

/// How much of a SIP start line the front of a buffer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine {
    /// A complete request or status line.
    Complete,
    /// The buffer ends inside what is so far a plausible start line (at
    /// least a method, a space and a URI scheme, or `SIP/`).
    Partial,
    /// The buffer is too short to tell: an upper-case word, maybe
    /// followed by a space and the start of a URI scheme.
    Prefix,
    No,
}

/// Does `buf` begin with a SIP request line (`METHOD SP URI SP SIP/2.0`)
/// or status line (`SIP/2.0 SP 3DIGIT ...`)?
pub fn start_line(buf: &[u8]) -> StartLine {
    let window = &buf[..buf.len().min(MAX_START_LINE)];
    let (line, complete) = match memchr(b'\n', window) {
        Some(nl) => (
            window[..nl].strip_suffix(b"\r").unwrap_or(&window[..nl]),
            true,
        ),
        None if buf.len() > MAX_START_LINE => return StartLine::No,
        // A CR at the very end may be the first half of the CRLF.
        None => (window.strip_suffix(b"\r").unwrap_or(window), false),
    };
    let verdict = |ok: bool| match (ok, complete) {
        (false, _) => StartLine::No,
        (true, true) => StartLine::Complete,
        (true, false) => StartLine::Partial,
    };
    const VERSION: &[u8] = b"SIP/2.0";
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status line: SIP/2.0 SP 3DIGIT [SP reason].
        let seen = line.len().min(VERSION.len());
        if !line[..seen].eq_ignore_ascii_case(&VERSION[..seen]) {
            return StartLine::No;
        }
        let rest = &line[seen..];
        let code_ok = match rest {
            [] => !complete,
            [b' ', code @ ..] => {
                let digits = code.len().min(3);
                code[..digits].iter().all(u8::is_ascii_digit)
                    && (code.len() <= 3 || code[3] == b' ')
                    && (!complete || code.len() >= 3)
            }
            _ => false,
        };
        return verdict(code_ok);
    }
    // Request line: the method is a token; SIP methods are upper case.
    let Some(sp1) = memchr(b' ', line) else {
        let undecided = !complete
            && !line.is_empty()
            && line.len() <= MAX_METHOD
            && line.iter().all(u8::is_ascii_uppercase);
        return if undecided {
            StartLine::Prefix
        } else {
            StartLine::No
        };
    };
    let method = &line[..sp1];
    if method.is_empty() || method.len() > MAX_METHOD || !method.iter().all(|&b| is_token(b)) {
        return StartLine::No;
    }
    let rest = &line[sp1 + 1..];
    let (uri, version) = match memchr(b' ', rest) {
        Some(sp2) => (&rest[..sp2], Some(&rest[sp2 + 1..])),
        None => (rest, None),
    };
    let uri_ok = !uri.is_empty() && uri.iter().all(|&b| b > b' ' && b != 0x7f);
    let scheme_ok = match memchr(b':', uri) {
        Some(colon) => colon > 0 && uri[0].is_ascii_alphabetic(),
        None => false,
    };
    match version {
        Some(v) => {
            let ok = uri_ok && scheme_ok && {
                let seen = v.len().min(VERSION.len());
                v[..seen].eq_ignore_ascii_case(&VERSION[..seen])
                    && (v.len() == VERSION.len() || (!complete && v.len() < VERSION.len()))
            };
            verdict(ok)
        }
        // The line went on without a second space.
        None if complete => StartLine::No,
        None => {
            // A partial line must already show a scheme and an upper-case
            // method, or plain text would pass for a start line.
            let upper = method.iter().all(|b| b.is_ascii_uppercase());
            if upper && uri_ok && scheme_ok {
                StartLine::Partial
            } else if upper && uri.iter().all(|&b| is_scheme_char(b)) {
                // "INVITE si": the scheme may still come.
                StartLine::Prefix
            } else {
                StartLine::No
            }
        }
    }
}

/// Characters of a URI scheme (RFC 3986 §3.1).
fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// RFC 3261 token characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The kind of a whole UDP payload.
pub fn classify_datagram(p: &[u8]) -> PayloadKind {
    if is_stun(p) {
        PayloadKind::Stun
    } else if p == b"\r\n\r\n" {
        PayloadKind::KeepAlivePing
    } else if p == b"\r\n" {
        PayloadKind::KeepAlivePong
    } else if start_line(p) == StartLine::Complete {
        PayloadKind::Sip
    } else {
        PayloadKind::Other
    }
}

/// Where SIP framing can start in a chunk of a TCP stream that is not
/// synchronised yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPoint {
    /// At this offset: a complete start line, or a partial one running to
    /// the end of the chunk; or the chunk is nothing but CR/LF
    /// (keep-alives, offset 0).
    At(usize),
    /// The chunk ends, from this offset on, with a few bytes that may
    /// still become a start line: the next chunk will tell.
    Undecided(usize),
    None,
}

/// Looks for a start line at offset 0 and just after every line feed.
pub fn find_sync_point(chunk: &[u8]) -> SyncPoint {
    if !chunk.is_empty() && chunk.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return SyncPoint::At(0);
    }
    let mut at = 0;
    loop {
        match start_line(&chunk[at..]) {
            StartLine::Complete | StartLine::Partial => return SyncPoint::At(at),
            // Prefix means no line feed follows: this is the last line.
            StartLine::Prefix => return SyncPoint::Undecided(at),
            StartLine::No => {}
        }
        match memchr(b'\n', &chunk[at..]) {
            Some(nl) if at + nl + 1 < chunk.len() => at += nl + 1,
            _ => return SyncPoint::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_needs_cookie_and_type_bits() {
        let mut p = [0u8; 20];
        p[0] = 0x01;
        p[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        assert!(is_stun(&p));
        p[0] = 0x02;
        assert!(!is_stun(&p));
        p[0] = 0x00;
        p[7] = 0;
        assert!(!is_stun(&p));
        assert!(!is_stun(&p[..19]));
    }

    #[test]
    fn request_and_status_lines() {
        use StartLine::*;
        assert_eq!(
            start_line(b"INVITE sip:bob@b SIP/2.0\r\nVia: x\r\n"),
            Complete
        );
        assert_eq!(start_line(b"invite sip:bob@b sip/2.0\n"), Complete);
        assert_eq!(start_line(b"SIP/2.0 200 OK\r\n"), Complete);
        assert_eq!(start_line(b"SIP/2.0 100\r\n"), Complete);
        assert_eq!(start_line(b"SIP/2.0 20 OK\r\n"), No);
        assert_eq!(start_line(b"SIP/2.0 2000 OK\r\n"), No);
        assert_eq!(start_line(b"SIP/3.0 200 OK\r\n"), No);
        assert_eq!(start_line(b"GET / HTTP/1.1\r\n"), No);
        assert_eq!(start_line(b"INVITE sip:bob@b SIP/2.0 extra\r\n"), No);
        assert_eq!(start_line(b"INVITE sip:bob@b\r\n"), No);
        assert_eq!(start_line(b"IN VITE sip:b SIP/2.0\r\n"), No);
        assert_eq!(start_line(b""), No);
    }

    #[test]
    fn partial_lines() {
        use StartLine::*;
        assert_eq!(start_line(b"INVITE sip:bo"), Partial);
        assert_eq!(start_line(b"INVITE sip:bob@b SIP/2"), Partial);
        assert_eq!(start_line(b"INVITE sip:bob@b SIP/2.0\r"), Partial);
        assert_eq!(start_line(b"SIP/2.0 200 OK\r"), Partial);
        assert_eq!(start_line(b"SIP/2.0 20"), Partial);
        assert_eq!(start_line(b"SIP/"), Partial);
        assert_eq!(start_line(b"hello world"), No);
        assert_eq!(start_line(b"INVITE "), Prefix);
        assert_eq!(start_line(b"INVITE si"), Prefix);
        assert_eq!(start_line(b"INV"), Prefix);
        assert_eq!(start_line(b"Hello"), No);
        assert_eq!(start_line(b"INVITE /x"), No);
        assert_eq!(start_line(b"INVITE sip:bob@b SIP/2.1"), No);
    }

    #[test]
    fn datagram_kinds() {
        assert_eq!(
            classify_datagram(b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
            PayloadKind::Sip
        );
        assert_eq!(classify_datagram(b"\r\n\r\n"), PayloadKind::KeepAlivePing);
        assert_eq!(classify_datagram(b"\r\n"), PayloadKind::KeepAlivePong);
        assert_eq!(
            classify_datagram(b"OPTIONS sip:x SIP/2.0"),
            PayloadKind::Other
        );
        assert_eq!(classify_datagram(&[0xff; 40]), PayloadKind::Other);
    }

    #[test]
    fn sync_points() {
        use SyncPoint::*;
        assert_eq!(find_sync_point(b"INVITE sip:a SIP/2.0\r\n"), At(0));
        assert_eq!(find_sync_point(b"\r\n\r\n"), At(0));
        let tail = b"a=rtpmap:0 PCMU/8000\r\n\r\nBYE sip:a SIP/2.0\r\nVia: x\r\n";
        assert_eq!(find_sync_point(tail), At(24));
        // The end of a header section is no place to start.
        assert_eq!(find_sync_point(b"\r\nv=0\r\n"), None);
        assert_eq!(find_sync_point(b"body text\r\nmore text\r\n"), None);
        assert_eq!(find_sync_point(b"\x16\x03\x01\x02\x00"), None);
        assert_eq!(find_sync_point(b"OPT"), Undecided(0));
        assert_eq!(find_sync_point(b"v=0\r\nINVITE s"), Undecided(5));
        assert_eq!(find_sync_point(b"v=0\r\nINVITE sip:"), At(5));
    }
}
