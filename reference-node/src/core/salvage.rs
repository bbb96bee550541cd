/*!
Reading enough of a malformed request to answer it (WIRE-7, WIRE-8).

The parser refuses a message as a whole; to send `400` (or `513`) the
node still needs the Via, From, To, Call-ID and CSeq to echo. Each of those
header lines is tried alone inside an otherwise valid request; the ones
that parse are kept, the others replaced by placeholders. Without a
readable Via there is nowhere to answer, and the request is dropped.
*/

use p2psip_wire::{Message, ParseOptions, parse};

/// Is this (the start of) a response? Malformed responses are dropped.
pub(super) fn is_response(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    bytes[start..].len() >= 4 && bytes[start..start + 4].eq_ignore_ascii_case(b"SIP/")
}

/// The request with only the headers a response echoes, when its Via can
/// be read.
pub(super) fn request(bytes: &[u8]) -> Option<Message<'static>> {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    let lines = unfold(&text[..head_end]);
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in lines.iter().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "via" | "v" => vias.push(value.to_owned()),
            "from" | "f" => from = from.or(Some(value.to_owned())),
            "to" | "t" => to = to.or(Some(value.to_owned())),
            "call-id" | "i" => call_id = call_id.or(Some(value.to_owned())),
            "cseq" => cseq = cseq.or(Some(value.to_owned())),
            _ => {}
        }
    }
    if vias.is_empty() {
        return None;
    }
    let method = cseq
        .as_deref()
        .and_then(|c| c.split_whitespace().nth(1))
        .filter(|m| {
            m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        })
        .unwrap_or("OPTIONS")
        .to_owned();
    let defaults = Fields {
        method: method.clone(),
        vias: vec!["SIP/2.0/UDP 0.0.0.0:9;branch=z9hG4bKsalvage".to_owned()],
        from: "<sip:invalid@invalid>;tag=invalid".to_owned(),
        to: "<sip:invalid@invalid>".to_owned(),
        call_id: "invalid".to_owned(),
        cseq: format!("1 {method}"),
    };
    // The Via must parse, or there is no answer at all.
    let with_vias = Fields {
        vias,
        ..defaults.clone()
    };
    try_parse(&with_vias)?;
    let mut best = with_vias;
    let pick = |best: &mut Fields, f: &dyn Fn(&mut Fields)| {
        let mut t = best.clone();
        f(&mut t);
        if try_parse(&t).is_some() {
            *best = t;
        }
    };
    if let Some(v) = from {
        pick(&mut best, &|t| t.from = v.clone());
    }
    if let Some(v) = to {
        pick(&mut best, &|t| t.to = v.clone());
    }
    if let Some(v) = call_id {
        pick(&mut best, &|t| t.call_id = v.clone());
    }
    if let Some(v) = cseq {
        pick(&mut best, &|t| t.cseq = v.clone());
    }
    try_parse(&best)
}

#[derive(Clone)]
struct Fields {
    method: String,
    vias: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: String,
}

fn try_parse(f: &Fields) -> Option<Message<'static>> {
    let mut text = format!("{} sip:invalid SIP/2.0\r\n", f.method);
    for v in &f.vias {
        text.push_str(&format!("Via: {v}\r\n"));
    }
    text.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        f.from, f.to, f.call_id, f.cseq
    ));
    let parsed = parse(text.as_bytes(), ParseOptions::lenient()).ok()?;
    Some(parsed.message.into_owned())
}

/// Logical header lines: continuation lines (starting with white space)
/// joined to the line before.
fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if (line.starts_with(' ') || line.starts_with('\t')) && !out.is_empty() {
            let last = out.len() - 1;
            out[last].push(' ');
            out[last].push_str(line.trim());
        } else {
            out.push(line.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_parses() {
        let raw =
            b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport\r\n\
From: <sip:a@b>;tag=1\r\nTo: <<<broken\r\nCall-ID: c1\r\nCSeq: 4 REGISTER\r\n\r\n";
        let m = request(raw).unwrap();
        assert_eq!(m.call_id(), Some("c1"));
        assert_eq!(m.cseq().unwrap().seq, 4);
        assert_eq!(m.top_via().unwrap().branch.as_deref(), Some("z9hG4bKa"));
        assert_eq!(m.to().unwrap().addr.uri.to_string(), "sip:invalid@invalid");
    }

    #[test]
    fn no_via_no_answer() {
        assert!(request(b"REGISTER sip:x SIP/2.0\r\nVia: garbage\r\n\r\n").is_none());
        assert!(request(b"\x00\x01binary").is_none());
        assert!(is_response(b"\r\nSIP/2.0 200 OK\r\n"));
    }
}
