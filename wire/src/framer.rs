/*!
Stream framing: where one SIP message ends in a TCP byte stream (WIRE-9).

RFC 3261 §18.3: on a stream the header section ends at the first empty line
and the body is exactly `Content-Length` bytes. RFC 5626 §3.5.1 adds
keep-alives between messages: a double CRLF "ping" that the receiver answers
with a single CRLF "pong".

The framer only finds boundaries; the parser then sees complete messages.
It remembers how far it has already scanned, so a stream that trickles in
byte by byte costs linear time, and it gives up once a header section
outgrows the size limit, so nothing larger than the limit is ever buffered
(WIRE-8).
*/

use memchr::memchr_iter;

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of `len` bytes (header section, empty line, body).
    Message {
        len: usize,
        /// The header section had no Content-Length; the body was taken as
        /// empty (RFC 3261 §18.3 makes the header mandatory on streams).
        content_length_missing: bool,
    },
    /// A CRLF CRLF keep-alive ping of `len` bytes: answer with CRLF.
    Ping { len: usize },
    /// A lone CRLF: the answer to our own ping.
    Pong { len: usize },
    /// Not enough bytes yet to tell.
    NeedMore,
    /// The message would exceed the limit: `declared` is its size when the
    /// header section was complete, `None` when the header section itself
    /// outgrew the limit. The stream cannot be resynchronised.
    TooLarge { declared: Option<usize> },
    /// A Content-Length that is not a number; the stream cannot be
    /// resynchronised. `offset` points at the value.
    BadContentLength { offset: usize },
}

/// Finds message boundaries in a stream, resuming where it left off.
#[derive(Debug, Clone)]
pub struct Framer {
    limit: usize,
    /// Bytes of the current buffer already known not to end the headers.
    scanned: usize,
}

impl Framer {
    /// A framer for messages of at most `limit` bytes.
    pub fn new(limit: usize) -> Framer {
        Framer { limit, scanned: 0 }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Looks at the start of `buf`. After a frame is returned the caller
    /// drops its `len` bytes from the front of the buffer before calling
    /// again; after `NeedMore` it appends bytes and calls again.
    pub fn next_frame(&mut self, buf: &[u8]) -> Frame {
        let frame = self.look(buf);
        if !matches!(frame, Frame::NeedMore) {
            self.scanned = 0;
        }
        frame
    }

    fn look(&mut self, buf: &[u8]) -> Frame {
        if buf.is_empty() {
            return Frame::NeedMore;
        }
        if buf[0] == b'\r' || buf[0] == b'\n' {
            return keep_alive(buf);
        }
        let Some(head_end) = self.header_end(buf) else {
            if buf.len() > self.limit {
                return Frame::TooLarge { declared: None };
            }
            return Frame::NeedMore;
        };
        let (body_len, missing) = match content_length(&buf[..head_end]) {
            Ok(Some(n)) => (n, false),
            Ok(None) => (0, true),
            Err(offset) => return Frame::BadContentLength { offset },
        };
        let total = head_end.saturating_add(body_len);
        if total > self.limit {
            return Frame::TooLarge {
                declared: Some(total),
            };
        }
        if buf.len() < total {
            return Frame::NeedMore;
        }
        Frame::Message {
            len: total,
            content_length_missing: missing,
        }
    }

    /// The offset just past the empty line that ends the header section,
    /// accepting bare LF line ends too (the parser decides whether those
    /// are allowed).
    fn header_end(&mut self, buf: &[u8]) -> Option<usize> {
        // Restart one byte early: the end may straddle the previous scan.
        let from = self.scanned.saturating_sub(3);
        for nl in memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
            match buf.get(nl + 1) {
                Some(b'\n') => return Some(nl + 2),
                Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
                Some(b'\r') if nl + 2 >= buf.len() => {
                    self.scanned = nl;
                    return None;
                }
                None => {
                    self.scanned = nl;
                    return None;
                }
                _ => {}
            }
        }
        self.scanned = buf.len();
        None
    }
}

fn keep_alive(buf: &[u8]) -> Frame {
    match buf {
        [b'\r', b'\n', b'\r', b'\n', ..] => Frame::Ping { len: 4 },
        [b'\r', b'\n', b'\r'] => Frame::NeedMore,
        [b'\r', b'\n', ..] => Frame::Pong { len: 2 },
        [b'\r'] => Frame::NeedMore,
        [b'\n', ..] => Frame::Pong { len: 1 },
        // A CR not followed by LF: treat as one stray byte of noise.
        _ => Frame::Pong { len: 1 },
    }
}

/// The Content-Length (or compact `l`) value of a header section, `None`
/// when absent, `Err(offset)` when present but not a number. Folded
/// continuation lines are skipped: the value is a single number.
pub fn content_length(head: &[u8]) -> Result<Option<usize>, usize> {
    let mut line_start = 0;
    while line_start < head.len() {
        let line_end = memchr::memchr(b'\n', &head[line_start..])
            .map(|i| line_start + i)
            .unwrap_or(head.len());
        let line = &head[line_start..line_end];
        if let Some(value_at) = header_value_if(line, b"content-length", b"l") {
            let value = &line[value_at..];
            let digits: &[u8] = trim_lws(value);
            if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(line_start + value_at);
            }
            let n = digits
                .iter()
                .fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
            return Ok(Some(n));
        }
        line_start = line_end + 1;
    }
    Ok(None)
}

/// If `line` is a header named `long` or `short` (case-insensitive, spaces
/// allowed before the colon), the offset of its value.
fn header_value_if(line: &[u8], long: &[u8], short: &[u8]) -> Option<usize> {
    let colon = memchr::memchr(b':', line)?;
    let name = trim_lws(&line[..colon]);
    if name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short) {
        Some(colon + 1)
    } else {
        None
    }
}

fn trim_lws(s: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\nCall-ID: x\r\n\r\nhello";

    #[test]
    fn wire_9_one_message() {
        let mut f = Framer::new(8192);
        assert_eq!(
            f.next_frame(MSG),
            Frame::Message {
                len: MSG.len(),
                content_length_missing: false
            }
        );
    }

    #[test]
    fn wire_9_split_at_every_offset() {
        let mut stream = MSG.to_vec();
        stream.extend_from_slice(MSG);
        for cut in 0..stream.len() {
            let mut f = Framer::new(8192);
            let first = f.next_frame(&stream[..cut]);
            if cut < MSG.len() {
                assert_eq!(first, Frame::NeedMore, "cut {cut}");
            }
            assert!(
                matches!(f.next_frame(&stream), Frame::Message { len, .. } if len == MSG.len())
            );
        }
    }

    #[test]
    fn wire_9_keep_alives() {
        let mut f = Framer::new(8192);
        assert_eq!(f.next_frame(b"\r\n\r\nOPT"), Frame::Ping { len: 4 });
        assert_eq!(f.next_frame(b"\r\n"), Frame::Pong { len: 2 });
        assert_eq!(f.next_frame(b"\r\n\r"), Frame::NeedMore);
    }

    #[test]
    fn wire_8_limit_holds_before_headers_end() {
        let mut f = Framer::new(100);
        let long = vec![b'a'; 101];
        assert_eq!(f.next_frame(&long), Frame::TooLarge { declared: None });
        let mut f = Framer::new(30);
        assert_eq!(
            f.next_frame(b"X sip:a SIP/2.0\r\nl: 99\r\n\r\n"),
            Frame::TooLarge {
                declared: Some(26 + 99)
            }
        );
    }

    #[test]
    fn bad_and_missing_content_length() {
        let mut f = Framer::new(8192);
        assert_eq!(
            f.next_frame(b"X sip:a SIP/2.0\r\nContent-Length : x1\r\n\r\n"),
            Frame::BadContentLength { offset: 33 }
        );
        assert_eq!(
            f.next_frame(b"X sip:a SIP/2.0\r\nCall-ID: 1\r\n\r\nrest"),
            Frame::Message {
                len: 31,
                content_length_missing: true
            }
        );
    }

    #[test]
    fn bare_lf_header_end() {
        let mut f = Framer::new(8192);
        assert_eq!(
            f.next_frame(b"X sip:a SIP/2.0\nl: 1\n\nZ"),
            Frame::Message {
                len: 23,
                content_length_missing: false
            }
        );
    }
}
