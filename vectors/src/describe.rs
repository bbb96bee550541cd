/*!
The JSON description of one parse: what `p2psip parse --json` prints and
what the message vectors expect.

```text
{"ok":true,"kind":"request"|"response","method":..|null,"status":..|null,
 "class":"join"|"query"|"notify"|"leave"|"resource-register"|"lookup"|"transfer"|"plain",
 "peer":{"peer_id","host","port","overlay","dht","algorithm","expires"}|null,
 "links":[{"type":"P"|"S"|"F","depth","peer_id","host","port","expires"}],
 "contacts":N,"expires":N|null,
 "via":[{"host","port","rport","received","branch"}],
 "require_dht":bool,
 "warnings":[{"offset","requirement","message"}]}
{"ok":false,"error":{"offset":N,"requirement":"WIRE-n","message":".."}}
```

IDs are 40 lower-case hex digits; `contacts` counts Contact values (a lone
`*` counts as one); `expires` is the Expires header's value; a Via's
`rport` is its filled-in value (null when absent or only requested).
*/

use p2psip_wire::{
    Class, ErrorKind, Host, Message, ParseError, ParseOptions, Parsed, Rport, StartLine, Uri, parse,
};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Description {
    Ok(Box<Success>),
    Err(Failure),
}

impl Description {
    pub fn is_ok(&self) -> bool {
        matches!(self, Description::Ok(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Success {
    pub ok: bool,
    pub kind: &'static str,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub class: &'static str,
    pub peer: Option<PeerInfo>,
    pub links: Vec<LinkInfo>,
    pub contacts: usize,
    pub expires: Option<u32>,
    pub via: Vec<ViaInfo>,
    pub require_dht: bool,
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    pub peer_id: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub overlay: Option<String>,
    pub dht: Option<String>,
    pub algorithm: Option<String>,
    pub expires: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub depth: u8,
    pub peer_id: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub expires: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViaInfo {
    pub host: String,
    pub port: Option<u16>,
    pub rport: Option<u16>,
    pub received: Option<String>,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub offset: usize,
    pub requirement: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub ok: bool,
    pub error: Problem,
}

/// Parses `bytes` and describes the outcome.
pub fn describe(bytes: &[u8], opts: ParseOptions) -> Description {
    match parse(bytes, opts) {
        Ok(p) => Description::Ok(Box::new(success(&p))),
        Err(e) => Description::Err(Failure {
            ok: false,
            error: problem(&e, bytes),
        }),
    }
}

fn problem(e: &ParseError, bytes: &[u8]) -> Problem {
    let message = match e.kind {
        ErrorKind::Stun => format!("not SIP: STUN {} (RFC 5389)", stun_kind(bytes)),
        _ => e.message().to_owned(),
    };
    Problem {
        offset: e.offset,
        requirement: e.requirement(),
        message,
    }
}

/// The STUN message class and method of the first two bytes.
fn stun_kind(bytes: &[u8]) -> &'static str {
    match bytes.get(..2) {
        Some([0x00, 0x01]) => "Binding Request",
        Some([0x01, 0x01]) => "Binding Success Response",
        Some([0x01, 0x11]) => "Binding Error Response",
        Some([0x00, 0x11]) => "Binding Indication",
        _ => "message",
    }
}

fn host_text(h: &Host<'_>) -> String {
    h.to_string()
}

fn id_text(uri: &Uri<'_>) -> Option<String> {
    uri.peer_id().map(|id| id.to_string())
}

fn success(p: &Parsed<'_>) -> Success {
    let m: &Message<'_> = &p.message;
    let (kind, method, status) = match &m.start {
        StartLine::Request { method, .. } => ("request", Some(method.as_str().to_owned()), None),
        StartLine::Response { code, .. } => ("response", None, Some(*code)),
    };
    let peer = m.dht_peer_id().map(|d| PeerInfo {
        peer_id: id_text(&d.addr.uri),
        host: host_text(&d.addr.uri.host),
        port: d.addr.uri.port,
        overlay: d.overlay.as_deref().map(str::to_owned),
        dht: d.dht.as_deref().map(str::to_owned),
        algorithm: d.algorithm.as_deref().map(str::to_owned),
        expires: d.expires,
    });
    let links = m
        .dht_links()
        .map(|l| LinkInfo {
            kind: l.link.kind.letter().to_string(),
            depth: l.link.depth,
            peer_id: id_text(&l.addr.uri),
            host: host_text(&l.addr.uri.host),
            port: l.addr.uri.port,
            expires: l.expires,
        })
        .collect();
    let via = m
        .vias()
        .map(|v| ViaInfo {
            host: host_text(&v.host),
            port: v.port,
            rport: match v.rport {
                Rport::Filled(p) => Some(p),
                Rport::Absent | Rport::Requested => None,
            },
            received: v.received.map(|r| r.to_string()),
            branch: v.branch.as_deref().map(str::to_owned),
        })
        .collect();
    let warnings = p
        .warnings
        .iter()
        .map(|(d, offset)| Problem {
            offset,
            requirement: d.requirement(),
            message: d.message().to_owned(),
        })
        .collect();
    Success {
        ok: true,
        kind,
        method,
        status,
        class: Class::of(m).name(),
        peer,
        links,
        contacts: m.contacts().count(),
        expires: m.expires(),
        via,
        require_dht: m.requires_dht(),
        warnings,
    }
}
