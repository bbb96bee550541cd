/*!
The message grammar (RFC 3261 §7, §25) and the checks of the senders'
rules (PROFILE §1-2).

```text
SIP-message    =  Request / Response
Request        =  Request-Line *( message-header ) CRLF [ message-body ]
Response       =  Status-Line *( message-header ) CRLF [ message-body ]
Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
Status-Line    =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
message-header =  header-name HCOLON header-value CRLF
```

A header line runs to the first line end not followed by white space (a
fold, RFC 3261 §7.3.1). The parser reads what is there; `check` records
every departure from the senders' rules, each header's as it is parsed and
the whole message's at the end, and the mode decides which ones are errors.

The parse is made to cost little per byte and nothing per header: one pass
over the head (`scan`) finds its lines, sizes the header list (the one
allocation) and checks that it is text, so no slice is checked again; a
header value in the exact form senders emit is read to local values and
stored with one write (`fast`), any other is built in place in the list by
the general rules; the rules scan bytes by hand (one function per rule, as
nom's rules are).
*/

mod check;
mod fast;
pub(crate) mod header;
pub(crate) mod lex;
mod scan;
pub(crate) mod uri;

use header::push;
use scan::Head;

use std::borrow::Cow;
use std::cell::Cell;
use std::net::IpAddr;

use crate::error::{Deviation, ErrorKind, ParseError, Warnings};
use crate::framer::{Frame, Framer};
use crate::message::{Header, Headers, IdentityHeader, Message, Peer, StartLine, Uri};
use crate::profile::{ParseOptions, Profile, Transport};
use crate::text::Text;

/// A parsed message, the deviations it showed, and how many input bytes
/// it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub message: Message<'a>,
    pub warnings: Warnings,
    pub len: usize,
}

/// Parse state shared by the rules: where the message starts (for
/// offsets), the deviations seen, and the kind of the first failure.
pub(crate) struct Cx<'a> {
    pub(crate) base: &'a [u8],
    /// The start of `base` already known to be UTF-8 (the header section
    /// of a message), so that its slices become text without another
    /// check.
    checked: &'a str,
    /// The length of `checked` when every byte of it is ASCII, else 0.
    ascii_len: usize,
    pub(crate) warnings: Warnings,
    pub(crate) profile: Profile,
    pub(crate) failure: Option<ErrorKind>,
    /// The value of the first Content-Length header.
    pub(crate) content_length: Option<u32>,
    /// Whether Peer URIs' IDs are checked against their addresses (ID-2).
    pub(crate) verify: bool,
    /// The headers seen, for the checks of the whole message.
    pub(crate) tally: check::Tally,
    /// Whether a rule made owned text (bytes that are not UTF-8, or
    /// parameters joined from apart): the header list must then drop its
    /// entries one by one.
    pub(crate) made_owned: Cell<bool>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(base: &'a [u8], profile: Profile) -> Cx<'a> {
        Cx {
            base,
            checked: "",
            ascii_len: 0,
            warnings: Warnings::default(),
            profile,
            failure: None,
            content_length: None,
            verify: false,
            tally: check::Tally::default(),
            made_owned: Cell::new(false),
        }
    }

    /// A context whose whole input is text.
    pub(crate) fn of_text(base: &'a str, profile: Profile) -> Cx<'a> {
        Cx {
            checked: base,
            ..Cx::new(base.as_bytes(), profile)
        }
    }

    /// Checks once that the head of the message is UTF-8 (as far as it
    /// is).
    fn check_text(&mut self, head: &Head) {
        let text = &self.base[..head.end.min(self.base.len())];
        self.ascii_len = if head.ascii { text.len() } else { 0 };
        self.checked = if head.ascii {
            // SAFETY: `Head::scan` found every byte of the head below 0x80,
            // and ASCII is UTF-8.
            unsafe { std::str::from_utf8_unchecked(text) }
        } else {
            match std::str::from_utf8(text) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or(""),
            }
        };
    }

    /// `s`, a slice of the input, as text: borrowed from the checked part
    /// without a second check, else checked (and made readable when it is
    /// not UTF-8).
    #[inline(always)]
    pub(crate) fn text(&self, s: &'a [u8]) -> Text<'a> {
        let start = (s.as_ptr() as usize).wrapping_sub(self.base.as_ptr() as usize);
        if start <= self.ascii_len && s.len() <= self.ascii_len - start {
            // SAFETY: `s` starts `start` bytes into `base` (had its address
            // been before `base`, `start` would have wrapped above any
            // length) and ends within the first `ascii_len` bytes of
            // `checked`, a prefix of `base` that is all ASCII; ASCII is
            // UTF-8.
            return Text::borrowed(unsafe { std::str::from_utf8_unchecked(s) });
        }
        match self.checked.get(start..start.wrapping_add(s.len())) {
            Some(t) => Text::borrowed(t),
            None => self.note_owned(lex::text(s)),
        }
    }

    /// `t`, noting whether it is owned (see `made_owned`).
    pub(crate) fn note_owned(&self, t: Text<'a>) -> Text<'a> {
        if t.is_owned() {
            self.made_owned.set(true);
        }
        t
    }

    /// The offset of `at`, a slice of the input.
    pub(crate) fn offset(&self, at: &[u8]) -> usize {
        let start = self.base.as_ptr() as usize;
        let p = at.as_ptr() as usize;
        if p >= start && p <= start + self.base.len() {
            p - start
        } else {
            self.base.len()
        }
    }

    pub(crate) fn deviate(&mut self, d: Deviation, at: &[u8]) {
        let offset = self.offset(at);
        self.warnings.record(d, offset);
    }

    /// Names the kind of a failure before it is returned through nom.
    pub(crate) fn fail(&mut self, kind: ErrorKind) {
        self.failure.get_or_insert(kind);
    }
}

/// Parses one whole message from a datagram (or a framed stream message).
///
/// The body is what Content-Length says; extra bytes after it are ignored,
/// as RFC 3261 §18.3 says for datagrams.
pub fn parse(input: &[u8], opts: ParseOptions) -> Result<Parsed<'_>, ParseError> {
    if input.len() > opts.max_size {
        return Err(ParseError::new(opts.max_size, ErrorKind::TooLarge));
    }
    let mut cx = Cx::new(input, opts.profile);
    cx.verify = opts.verify_peer_ids;
    message(&mut cx, input, opts)
}

/// What the start of a stream buffer holds (WIRE-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streamed<'a> {
    /// A message and the bytes after it.
    Message(Parsed<'a>, &'a [u8]),
    /// A CRLF CRLF keep-alive (answer CRLF) and the bytes after it.
    Ping(&'a [u8]),
    /// A CRLF keep-alive answer and the bytes after it.
    Pong(&'a [u8]),
    /// The buffer ends inside a message.
    NeedMore,
}

/// Parses the first message of a stream buffer, returning the rest.
pub fn parse_one(input: &[u8], opts: ParseOptions) -> Result<Streamed<'_>, ParseError> {
    let mut framer = Framer::new(opts.max_size);
    match framer.next_frame(input) {
        Frame::NeedMore => Ok(Streamed::NeedMore),
        Frame::Ping { len } => Ok(Streamed::Ping(&input[len..])),
        Frame::Pong { len } => Ok(Streamed::Pong(&input[len..])),
        Frame::TooLarge { .. } => Err(ParseError::new(
            opts.max_size.min(input.len()),
            ErrorKind::TooLarge,
        )),
        Frame::BadContentLength { offset } => Err(ParseError::new(
            offset,
            ErrorKind::HeaderValue("Content-Length"),
        )),
        Frame::Message { len, .. } => {
            let opts = ParseOptions {
                transport: opts.transport.or(Some(Transport::Tcp)),
                ..opts
            };
            let parsed = parse(&input[..len], opts)?;
            Ok(Streamed::Message(parsed, &input[len..]))
        }
    }
}

/// Parses a whole URI (`sip:alice@example.org;transport=tcp`, or any
/// absolute URI), as written inside angle brackets.
pub fn parse_uri(text: &str) -> Result<Uri<'_>, ParseError> {
    let mut cx = Cx::of_text(text, Profile::DsipChord);
    match uri::uri(&mut cx, text.as_bytes(), uri::Place::Angle) {
        Ok(([], u)) => Ok(u),
        Ok((rest, _)) => Err(ParseError::new(cx.offset(rest), ErrorKind::Uri)),
        Err(e) => {
            let at = header::failed_at(e, text.as_bytes());
            let kind = cx.failure.take().unwrap_or(ErrorKind::Uri);
            Err(ParseError::new(cx.offset(at), kind))
        }
    }
}

/// The STUN test of RFC 5389 §6 / RFC 7983: first two bits zero and the
/// magic cookie at bytes 4..8.
pub fn looks_like_stun(input: &[u8]) -> bool {
    input.len() >= 20 && input[0] < 2 && input[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

fn message<'a>(
    cx: &mut Cx<'a>,
    input: &'a [u8],
    opts: ParseOptions,
) -> Result<Parsed<'a>, ParseError> {
    if looks_like_stun(input) {
        return Err(ParseError::new(0, ErrorKind::Stun));
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let skip = input
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let start_at = &input[skip..];
    match start_at.first() {
        None => return Err(ParseError::new(input.len(), ErrorKind::Incomplete)),
        Some(b) if !lex::TOKEN[*b as usize] => {
            return Err(ParseError::new(skip, ErrorKind::NotSip));
        }
        _ => {}
    }
    let mut head = Head::new();
    head.scan(input, skip);
    cx.check_text(&head);
    let line_end = head
        .lf_from(input, skip)
        .ok_or_else(|| ParseError::new(input.len(), ErrorKind::Incomplete))?;
    let line = strip_cr(cx, &input[skip..line_end], line_end - skip, start_at);
    // Read in place: the start line is large, and each move of it is a
    // copy.
    let mut start = StartLine::Response {
        code: 0,
        reason: Text::EMPTY,
    };
    start_line(cx, line, &mut start)?;

    let mut pos = line_end + 1;
    let mut headers = crate::spare::list(head.values);
    // Most often every line ends in CRLF and none is folded: the header
    // lines are then what lies between the line ends found. The first line
    // that is not so, and the rest, are read the general way.
    if let Some([_, rest @ ..]) = head.lines() {
        for &lf in rest {
            let lf = lf as usize;
            match (input[lf - 1], input.get(lf + 1)) {
                (b'\r', Some(b' ' | b'\t')) | (_, None) => break,
                (b'\r', _) if lf > pos => {}
                _ => break,
            }
            header_line(cx, &input[pos..lf - 1], &mut headers)?;
            pos = lf + 1;
        }
    }
    loop {
        let rest = &input[pos..];
        match rest {
            [b'\r', b'\n', ..] => {
                pos += 2;
                break;
            }
            [b'\n', ..] => {
                cx.deviate(Deviation::BareLf, rest);
                pos += 1;
                break;
            }
            [] => return Err(ParseError::new(input.len(), ErrorKind::Incomplete)),
            _ => {}
        }
        let end = logical_line_end(cx, &mut head, input, pos)
            .ok_or_else(|| ParseError::new(input.len(), ErrorKind::Incomplete))?;
        let line = strip_cr(cx, &input[pos..end], end - pos, rest);
        any_header_line(cx, line, &mut headers)?;
        pos = end + 1;
    }

    let available = &input[pos..];
    let declared = cx.content_length.map(|n| n as usize);
    let body: &[u8] = match declared {
        Some(n) if n > available.len() => {
            return Err(ParseError::new(input.len(), ErrorKind::BodyTruncated));
        }
        Some(n) => &available[..n],
        None => available,
    };
    check::message(cx, &start, &headers, pos, declared.is_some(), opts);
    if let Some((d, offset)) = cx.warnings.first_refused(opts.strict) {
        return Err(ParseError::new(offset, ErrorKind::Deviation(d)));
    }
    // Built where it is returned: the start line is large.
    Ok(Parsed {
        message: Message {
            start,
            headers: Headers::parsed(headers, !cx.made_owned.get()),
            body: Cow::Borrowed(body),
        },
        warnings: cx.warnings,
        len: pos + body.len(),
    })
}

/// Drops the CR of a CRLF line end, recording a bare LF.
fn strip_cr<'a>(cx: &mut Cx<'a>, line: &'a [u8], lf_at: usize, buf: &'a [u8]) -> &'a [u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => {
            cx.deviate(Deviation::BareLf, &buf[lf_at..]);
            line
        }
    }
}

/// The offset of the LF that ends the logical line starting at `from`
/// (continuation lines begin with white space).
fn logical_line_end(cx: &mut Cx<'_>, head: &mut Head, input: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let nl = head.lf_from(input, at)?;
        match input.get(nl + 1) {
            Some(b' ' | b'\t') => {
                if nl == from || input[nl - 1] != b'\r' {
                    cx.deviate(Deviation::BareLf, &input[nl..]);
                }
                at = nl + 1;
            }
            _ => return Some(nl),
        }
    }
}

/// `Request-Line` or `Status-Line`, read into `out`.
fn start_line<'a>(
    cx: &mut Cx<'a>,
    line: &'a [u8],
    out: &mut StartLine<'a>,
) -> Result<(), ParseError> {
    let bad = |at: &[u8], cx: &Cx<'a>| ParseError::new(cx.offset(at), ErrorKind::StartLine);
    if STATUS_LINE_START.begins(line) {
        // Status-Code = 3DIGIT, Reason-Phrase = *(any text)
        let rest = &line[8..];
        if rest.len() < 3
            || !rest[..3].iter().all(u8::is_ascii_digit)
            || rest.get(3).is_some_and(|b| *b != b' ')
        {
            return Err(bad(rest, cx));
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |n, d| n * 10 + (d - b'0') as u16);
        if !(100..=699).contains(&code) {
            return Err(bad(rest, cx));
        }
        let reason = match rest.get(4..) {
            Some(r) => cx.text(r),
            None => Text::EMPTY,
        };
        *out = StartLine::Response { code, reason };
        return Ok(());
    }
    let (rest, method) = lex::token(line).map_err(|_| bad(line, cx))?;
    let rest = rest.strip_prefix(b" ").ok_or_else(|| bad(rest, cx))?;
    *out = StartLine::Request {
        method: header::method(cx, method),
        uri: uri::empty(),
    };
    let StartLine::Request { uri, .. } = out else {
        unreachable!("written above")
    };
    let rest = match uri::plain_request_uri(rest, uri) {
        Some(rest) => rest,
        None => {
            uri::uri_into(cx, rest, uri::Place::RequestLine, uri)
                .map_err(|e| {
                    let at = header::failed_at(e, rest);
                    ParseError::new(cx.offset(at), ErrorKind::Uri)
                })?
                .0
        }
    };
    let version = rest.strip_prefix(b" ").ok_or_else(|| bad(rest, cx))?;
    if !SIP_VERSION.is(version) {
        return Err(bad(version, cx));
    }
    Ok(())
}

/// Which typed rule reads a header, by name (case-insensitive, compact
/// forms of RFC 3261 §7.3.3 included).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Name {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    Expires,
    MaxForwards,
    ContentLength,
    Require,
    Supported,
    Unsupported,
    RecordRoute,
    Route,
    RequestDisposition,
    DhtPeerId,
    DhtNodeId,
    DhtLink,
    // Headers the model keeps as text, under their canonical names (a
    // compact form reads as its long form).
    ContentType,
    Subject,
    ContentEncoding,
    Event,
    ReferTo,
    AllowEvents,
    Unknown,
}

/// `header-name = token`, at the start of `line`, and which rule reads
/// it. None when the line does not start with a token.
#[inline]
fn header_name(line: &[u8], profile: Profile) -> Option<(usize, Name)> {
    let first = *line.first()?;
    // The long forms the model types first (the most common lines): one
    // candidate, picked by a letter or two, compared a word at a time. A
    // name that matches is all token bytes, and at least two of them.
    let at = |k: usize| line.get(k).map_or(0, |b| b | 0x20);
    let known = |s: &lex::Spelling, kind: Name| s.starts(line).then_some((s.len, kind));
    let found = match first | 0x20 {
        b'v' => known(&VIA, Name::Via),
        b't' => known(&TO, Name::To),
        b'f' => known(&FROM, Name::From),
        b'c' => match at(1) {
            b'a' => known(&CALL_ID, Name::CallId),
            b's' => known(&CSEQ, Name::CSeq),
            b'o' => match (at(4), at(8)) {
                (b'a', _) => known(&CONTACT, Name::Contact),
                (b'e', b'l') => known(&CONTENT_LENGTH, Name::ContentLength),
                (b'e', b't') => known(&CONTENT_TYPE, Name::ContentType),
                _ => None,
            },
            _ => None,
        },
        b'm' => known(&MAX_FORWARDS, Name::MaxForwards),
        b'e' => known(&EXPIRES, Name::Expires),
        b'r' => match (at(2), at(4)) {
            (b'u', _) => known(&ROUTE, Name::Route),
            (b'c', _) => known(&RECORD_ROUTE, Name::RecordRoute),
            (b'q', b'i') => known(&REQUIRE, Name::Require),
            (b'q', b'e') => known(&REQUEST_DISPOSITION, Name::RequestDisposition),
            _ => None,
        },
        b's' => known(&SUPPORTED, Name::Supported),
        b'u' => known(&UNSUPPORTED, Name::Unsupported),
        b'd' => match at(4) {
            b'l' => known(&DHT_LINK, Name::DhtLink),
            b'p' => known(&DHT_PEER_ID, Name::DhtPeerId),
            b'n' if profile == Profile::Sipping02 => known(&DHT_NODE_ID, Name::DhtNodeId),
            _ => None,
        },
        _ => None,
    };
    if found.is_some() {
        return found;
    }
    if !lex::TOKEN[first as usize] {
        return None;
    }
    // The compact forms (RFC 3261 §7.3.3).
    if !line.get(1).is_some_and(|b| lex::TOKEN[*b as usize]) {
        let name = match first.to_ascii_lowercase() {
            b'v' => Name::Via,
            b'f' => Name::From,
            b't' => Name::To,
            b'i' => Name::CallId,
            b'm' => Name::Contact,
            b'l' => Name::ContentLength,
            b'k' => Name::Supported,
            b'c' => Name::ContentType,
            b's' => Name::Subject,
            b'e' => Name::ContentEncoding,
            b'o' => Name::Event,
            b'r' => Name::ReferTo,
            b'u' => Name::AllowEvents,
            b'd' => Name::RequestDisposition,
            _ => Name::Unknown,
        };
        return Some((1, name));
    }
    Some((lex::span(line, &lex::TOKEN), Name::Unknown))
}

/// `SIP-Version` (any letter case), and as a Status-Line starts.
const SIP_VERSION: lex::Spelling = lex::Spelling::of("SIP/2.0");
const STATUS_LINE_START: lex::Spelling = lex::Spelling::of("SIP/2.0 ");

/// The long forms of the names the model types.
const VIA: lex::Spelling = lex::Spelling::of("Via");
const TO: lex::Spelling = lex::Spelling::of("To");
const FROM: lex::Spelling = lex::Spelling::of("From");
const CALL_ID: lex::Spelling = lex::Spelling::of("Call-ID");
const CSEQ: lex::Spelling = lex::Spelling::of("CSeq");
const CONTACT: lex::Spelling = lex::Spelling::of("Contact");
const CONTENT_LENGTH: lex::Spelling = lex::Spelling::of("Content-Length");
const CONTENT_TYPE: lex::Spelling = lex::Spelling::of("Content-Type");
const MAX_FORWARDS: lex::Spelling = lex::Spelling::of("Max-Forwards");
const EXPIRES: lex::Spelling = lex::Spelling::of("Expires");
const ROUTE: lex::Spelling = lex::Spelling::of("Route");
const RECORD_ROUTE: lex::Spelling = lex::Spelling::of("Record-Route");
const REQUIRE: lex::Spelling = lex::Spelling::of("Require");
const REQUEST_DISPOSITION: lex::Spelling = lex::Spelling::of("Request-Disposition");
const SUPPORTED: lex::Spelling = lex::Spelling::of("Supported");
const UNSUPPORTED: lex::Spelling = lex::Spelling::of("Unsupported");
const DHT_LINK: lex::Spelling = lex::Spelling::of("DHT-Link");
const DHT_PEER_ID: lex::Spelling = lex::Spelling::of("DHT-PeerID");
const DHT_NODE_ID: lex::Spelling = lex::Spelling::of("DHT-NodeID");

impl Name {
    fn label(self) -> &'static str {
        match self {
            Name::Via => "Via",
            Name::From => "From",
            Name::To => "To",
            Name::CallId => "Call-ID",
            Name::CSeq => "CSeq",
            Name::Contact => "Contact",
            Name::Expires => "Expires",
            Name::MaxForwards => "Max-Forwards",
            Name::ContentLength => "Content-Length",
            Name::Require => "Require",
            Name::Supported => "Supported",
            Name::Unsupported => "Unsupported",
            Name::RecordRoute => "Record-Route",
            Name::Route => "Route",
            Name::RequestDisposition => "Request-Disposition",
            Name::DhtPeerId => "DHT-PeerID",
            Name::DhtNodeId => "DHT-PeerID",
            Name::DhtLink => "DHT-Link",
            Name::ContentType => "Content-Type",
            Name::Subject => "Subject",
            Name::ContentEncoding => "Content-Encoding",
            Name::Event => "Event",
            Name::ReferTo => "Refer-To",
            Name::AllowEvents => "Allow-Events",
            Name::Unknown => "header",
        }
    }
}

/// [`header_line`] for the lines read the general way (folds, bare LFs),
/// kept out of the loop over plain lines.
#[inline(never)]
fn any_header_line<'a>(
    cx: &mut Cx<'a>,
    line: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), ParseError> {
    header_line(cx, line, out)
}

/// `message-header = header-name HCOLON header-value`, one logical line
/// without its line end.
#[inline(always)]
fn header_line<'a>(
    cx: &mut Cx<'a>,
    line: &'a [u8],
    out: &mut Vec<Header<'a>>,
) -> Result<(), ParseError> {
    let (n, kind) = header_name(line, cx.profile)
        .ok_or_else(|| ParseError::new(cx.offset(line), ErrorKind::HeaderLine))?;
    // HCOLON = *( SP / HTAB ) ":" SWS
    let (name, after_name) = line.split_at(n);
    let value = match after_name {
        // Most often ": " and the value, which ends the line.
        [b':', b' ', v @ ..]
            if !v.first().is_some_and(is_lws_byte) && !v.last().is_some_and(is_lws_byte) =>
        {
            v
        }
        _ => {
            let (after_ws, _) = lex::spaces(after_name).unwrap_or((after_name, &[]));
            let Some(value) = after_ws.strip_prefix(b":") else {
                return Err(ParseError::new(cx.offset(after_ws), ErrorKind::HeaderLine));
            };
            trim_value(value)
        }
    };
    // The forms senders emit first, checked as they are read.
    let start = out.len();
    let fast = match kind {
        Name::Via => fast::via(cx, value, out),
        Name::From => fast::from_to(cx, value, out, check::FROM, Header::From),
        Name::To => fast::from_to(cx, value, out, check::TO, Header::To),
        Name::Contact => fast::contact(cx, value, out),
        Name::DhtPeerId => fast::dht_peer_id(cx, value, IdentityHeader::PeerId, out),
        Name::DhtLink => fast::dht_link(cx, value, out),
        Name::Require => fast::option_tag(cx, value, out, true),
        Name::Supported => fast::option_tag(cx, value, out, false),
        _ => false,
    };
    if fast {
        return Ok(());
    }
    let result = match kind {
        Name::Via => header::via_list(cx, value, out),
        Name::From => header::from_to(cx, value, out, Header::From),
        Name::To => header::from_to(cx, value, out, Header::To),
        // The headers of one value with nothing to check but the tally.
        Name::CallId => {
            let c = header::call_id(cx, value).map_err(|at| fail(cx, at, kind))?;
            push(out, || Header::CallId(c));
            cx.tally.count(check::CALL_ID);
            return Ok(());
        }
        Name::CSeq => {
            let c = header::cseq(cx, value).map_err(|at| fail(cx, at, kind))?;
            push(out, || Header::CSeq(c));
            cx.tally.cseq(out.len() - 1);
            return Ok(());
        }
        Name::Expires => {
            let n = header::number(value, true).map_err(|at| fail(cx, at, kind))?;
            push(out, || Header::Expires(n));
            cx.tally.count(check::EXPIRES);
            return Ok(());
        }
        Name::MaxForwards => {
            let n = header::number(value, true).map_err(|at| fail(cx, at, kind))?;
            push(out, || Header::MaxForwards(n));
            cx.tally.count(check::MAX_FORWARDS);
            return Ok(());
        }
        Name::ContentLength => {
            let n = header::number(value, false).map_err(|at| fail(cx, at, kind))?;
            cx.content_length.get_or_insert(n);
            push(out, || Header::ContentLength(n));
            cx.tally.count(check::CONTENT_LENGTH);
            return Ok(());
        }
        Name::Contact => header::contact_list(cx, value, out),
        Name::Require => header::token_list(cx, value, out, Header::Require),
        Name::Supported => header::token_list(cx, value, out, Header::Supported),
        Name::Unsupported => header::token_list(cx, value, out, Header::Unsupported),
        Name::RequestDisposition => header::token_list(cx, value, out, Header::RequestDisposition),
        Name::RecordRoute => header::param_addr_list(cx, value, out, Header::RecordRoute),
        Name::Route => header::param_addr_list(cx, value, out, Header::Route),
        Name::DhtPeerId => header::dht_peer_id(cx, value, IdentityHeader::PeerId, out),
        Name::DhtNodeId => header::dht_peer_id(cx, value, IdentityHeader::NodeId, out),
        Name::DhtLink => header::dht_link_list(cx, value, out),
        Name::ContentType
        | Name::Subject
        | Name::ContentEncoding
        | Name::Event
        | Name::ReferTo
        | Name::AllowEvents => {
            let value = cx.text(value);
            push(out, || Header::Other {
                name: Text::borrowed(kind.label()),
                value,
            });
            Ok(())
        }
        Name::Unknown => {
            let (name, value) = (cx.text(name), cx.text(value));
            push(out, || Header::Other { name, value });
            Ok(())
        }
    };
    result.map_err(|at| fail(cx, at, kind))?;
    for (index, h) in out.iter().enumerate().skip(start) {
        check::entry(cx, h, index);
    }
    Ok(())
}

/// The error of a header value that failed at `at`.
#[cold]
fn fail(cx: &mut Cx<'_>, at: &[u8], name: Name) -> ParseError {
    let kind = cx
        .failure
        .take()
        .unwrap_or(ErrorKind::HeaderValue(name.label()));
    ParseError::new(cx.offset(at), kind)
}

/// The value after HCOLON without leading LWS or trailing white space.
fn trim_value(v: &[u8]) -> &[u8] {
    let (v, ()) = lex::sws(v).unwrap_or((v, ()));
    let end = v.iter().rposition(|b| !is_lws_byte(b)).map_or(0, |e| e + 1);
    &v[..end]
}

fn is_lws_byte(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A peer named by a URI, when the URI carries an ID and an IP host.
pub fn peer_of(uri: &Uri<'_>) -> Option<Peer> {
    let id = uri.peer_id()?;
    let ip: IpAddr = uri.host.ip()?;
    Some(Peer {
        id,
        addr: std::net::SocketAddr::new(ip, uri.port.unwrap_or(5060)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user's registration with a Contact of `contact` and an extra
    /// header line `extra`.
    fn register(contact: &str, extra: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "REGISTER sip:10.0.0.11:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ua1;rport\r\n\
             Max-Forwards: 70\r\nTo: <sip:alice@example.org>\r\n\
             From: <sip:alice@example.org>;tag=uat1\r\nCall-ID: ua-call-1\r\n\
             CSeq: 1 REGISTER\r\nContact: {contact}\r\n"
        )
        .into_bytes();
        m.extend_from_slice(extra);
        m.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        m
    }

    #[test]
    fn sip_version_in_any_letter_case_and_nothing_else() {
        fn line(l: &str) -> Result<StartLine<'_>, ParseError> {
            let mut start = StartLine::Response {
                code: 0,
                reason: Text::EMPTY,
            };
            start_line(
                &mut Cx::of_text(l, Profile::DsipChord),
                l.as_bytes(),
                &mut start,
            )?;
            Ok(start)
        }
        for ok in ["SIP/2.0 200 OK", "sip/2.0 200 OK", "Sip/2.0 180 "] {
            assert!(matches!(line(ok), Ok(StartLine::Response { .. })), "{ok}");
        }
        for ok in ["OPTIONS sip:a SIP/2.0", "OPTIONS sip:a sIp/2.0"] {
            assert!(
                matches!(line(ok), Ok(StartLine::Request { .. })),
                "{ok}: {:?}",
                line(ok)
            );
        }
        for bad in [
            "SIP/2.1 200 OK",
            "SIP/2.0200 OK",
            "SIP/2.0",
            "SIP/2.",
            "OPTIONS sip:a SIP/2.1",
            "OPTIONS sip:a SIP/2.0 ",
            "OPTIONS sip:a SIP/2.",
        ] {
            assert!(line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_lists_say_when_they_own_text() {
        let opts = ParseOptions::lenient();
        let plain = register("<sip:alice@192.0.2.10:5060;x=1;transport=tcp>", b"");
        let parsed = parse(&plain, opts).unwrap();
        assert!(!parsed.message.headers.is_empty());
        assert!(parsed.message.headers.borrows_only());
        // Parameters joined from apart, and bytes that are not UTF-8, are
        // owned text.
        let joined = register("<sip:alice@192.0.2.10:5060;x=1;transport=tcp;y=2>", b"");
        let parsed = parse(&joined, opts).unwrap();
        let other = &parsed
            .message
            .contact_addrs()
            .next()
            .unwrap()
            .addr
            .uri
            .params
            .other;
        assert_eq!((other.as_ref(), other.is_owned()), (";x=1;y=2", true));
        assert!(!parsed.message.headers.borrows_only());
        let latin1 = register("<sip:alice@192.0.2.10:5060>", b"Subject: caf\xe9\r\n");
        let parsed = parse(&latin1, opts).unwrap();
        assert!(!parsed.message.headers.borrows_only());
        // A mutable access gives up the claim.
        let mut parsed = parse(&plain, opts).unwrap();
        parsed.message.headers.truncate(3);
        assert!(!parsed.message.headers.borrows_only());
    }

    #[test]
    fn header_names_in_any_case_and_near_misses() {
        let named = [
            ("Via", Name::Via),
            ("To", Name::To),
            ("From", Name::From),
            ("Call-ID", Name::CallId),
            ("CSeq", Name::CSeq),
            ("Contact", Name::Contact),
            ("Content-Length", Name::ContentLength),
            ("Content-Type", Name::ContentType),
            ("Max-Forwards", Name::MaxForwards),
            ("Expires", Name::Expires),
            ("Route", Name::Route),
            ("Record-Route", Name::RecordRoute),
            ("Require", Name::Require),
            ("Request-Disposition", Name::RequestDisposition),
            ("Supported", Name::Supported),
            ("Unsupported", Name::Unsupported),
            ("DHT-Link", Name::DhtLink),
            ("DHT-PeerID", Name::DhtPeerId),
        ];
        for (name, kind) in named {
            for spelled in [name.to_owned(), name.to_lowercase(), name.to_uppercase()] {
                for after in [": x", ":x", " : x", ":"] {
                    let line = format!("{spelled}{after}");
                    let (n, k) = header_name(line.as_bytes(), Profile::DsipChord).unwrap();
                    assert_eq!((n, k), (spelled.len(), kind), "{line}");
                }
                // A longer token is another header.
                for more in ["s", "-X", "1"] {
                    let line = format!("{spelled}{more}: x");
                    let (n, k) = header_name(line.as_bytes(), Profile::DsipChord).unwrap();
                    assert_eq!(n, spelled.len() + more.len(), "{line}");
                    assert_eq!(k, Name::Unknown, "{line}");
                }
            }
            // A shorter one too.
            let line = format!("{}: x", &name[..name.len() - 1]);
            if name.len() > 2 {
                let (_, k) = header_name(line.as_bytes(), Profile::DsipChord).unwrap();
                assert_ne!(k, kind, "{line}");
            }
        }
        let node = b"dht-nodeid: x";
        assert_eq!(
            header_name(node, Profile::DsipChord).unwrap().1,
            Name::Unknown
        );
        assert_eq!(
            header_name(node, Profile::Sipping02).unwrap().1,
            Name::DhtNodeId
        );
        assert_eq!(
            header_name(b"v: x", Profile::DsipChord).unwrap().1,
            Name::Via
        );
        assert_eq!(
            header_name(b"X-Y: x", Profile::DsipChord).unwrap(),
            (3, Name::Unknown)
        );
        assert_eq!(header_name(b": x", Profile::DsipChord), None);
    }
}
