//! `report.html`: one self-contained page (inline CSS and a little inline
//! JS, no external resource) readable from `file://`.
//!
//! The page is rendered by minijinja from `templates/report.html`, which is
//! embedded in the binary. The template is named `*.html`, so minijinja
//! escapes every interpolated value for HTML; nothing from the report is
//! marked safe. Layout decisions (ladder columns, anchors, which links are
//! safe to follow) are made here, in a view model, so the template stays
//! simple.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;

use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::RenderError;
use crate::model::{CaseResult, LadderEntry, Outcome, RawMessage, Report};
use crate::text::{duration, time_ms};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("../templates/report.html");

/// Messages drawn per case; the rest are in `report.json`.
pub const MAX_LADDER_ROWS: usize = 2000;
/// Log lines shown per instance; the rest are in `report.json`.
pub const MAX_LOG_LINES: usize = 5000;

/// Writes the HTML report.
pub fn write(report: &Report, mut w: impl Write) -> Result<(), RenderError> {
    w.write_all(to_string(report)?.as_bytes())?;
    Ok(())
}

/// The HTML report as a string.
pub fn to_string(report: &Report) -> Result<String, RenderError> {
    let mut env = Environment::new();
    // A typo in the template must fail loudly, not render blank.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    let view = View::new(report);
    let tmpl = env.get_template(TEMPLATE_NAME)?;
    Ok(tmpl.render(Value::from(Serde(&view)))?)
}

#[derive(Serialize)]
struct View<'a> {
    r: &'a Report,
    status: String,
    exit_code: i32,
    started: String,
    duration: String,
    iut: String,
    counts: Vec<Count>,
    requirements: Vec<ReqView<'a>>,
    cases: Vec<CaseView<'a>>,
}

#[derive(Serialize)]
struct Count {
    label: &'static str,
    n: usize,
    class: &'static str,
}

#[derive(Serialize)]
struct Link {
    id: String,
    anchor: String,
    class: String,
}

#[derive(Serialize)]
struct ReqView<'a> {
    id: &'a str,
    anchor: String,
    level: &'static str,
    verdict: &'static str,
    title: Option<&'a str>,
    cases: Vec<Link>,
}

#[derive(Serialize)]
struct CaseView<'a> {
    c: &'a CaseResult,
    anchor: String,
    /// Sections of cases that need no attention start collapsed.
    open: bool,
    requirements: Vec<Link>,
    duration: String,
    attempts: Option<String>,
    at_ms: Option<String>,
    pcap_href: Option<String>,
    ladder: Option<LadderView>,
    logs: Vec<LogView<'a>>,
}

#[derive(Serialize)]
struct LogView<'a> {
    instance: &'a str,
    count: usize,
    text: String,
    cut: usize,
}

#[derive(Serialize)]
struct LadderView {
    endpoints: Vec<Endpoint>,
    /// Two grid columns per endpoint; its lifeline is between them.
    columns: usize,
    rows: Vec<Row>,
    cut: usize,
}

#[derive(Serialize)]
struct Endpoint {
    label: String,
    addr: String,
}

#[derive(Serialize)]
struct Row {
    t: String,
    cells: Vec<Cell>,
    raw_id: String,
    raw: Option<String>,
    raw_binary: bool,
}

#[derive(Serialize)]
struct Cell {
    /// `gap`, `right`, `left` or `self`.
    kind: &'static str,
    colspan: usize,
    /// The cell's left edge is a lifeline.
    lane: bool,
    summary: String,
    transport: &'static str,
}

impl<'a> View<'a> {
    fn new(r: &'a Report) -> Self {
        let s = &r.summary;
        let counts = vec![
            Count {
                label: "passed",
                n: s.passed,
                class: "pass",
            },
            Count {
                label: "failed",
                n: s.failed,
                class: "fail",
            },
            Count {
                label: "warned",
                n: s.warned,
                class: "warn",
            },
            Count {
                label: "skipped",
                n: s.skipped,
                class: "skip",
            },
            Count {
                label: "errored",
                n: s.errored,
                class: "error",
            },
            Count {
                label: "xfailed",
                n: s.xfailed,
                class: "xfailed",
            },
            Count {
                label: "xpassed",
                n: s.xpassed,
                class: "xpassed",
            },
            Count {
                label: "unsupported",
                n: s.unsupported,
                class: "unsupported",
            },
            Count {
                label: "flaky",
                n: s.flaky,
                class: "flaky",
            },
            Count {
                label: "total",
                n: s.total,
                class: "total",
            },
        ];
        let mut anchors = Anchors::default();
        let case_anchors: Vec<String> = r
            .cases
            .iter()
            .map(|c| anchors.make("case", &c.id))
            .collect();
        let req_anchors: Vec<String> = r
            .requirements
            .iter()
            .map(|q| anchors.make("req", &q.id))
            .collect();
        // Indexes below come from `position` over the same slices the
        // anchors were made from, so they are in bounds.
        let case_link = |id: &str| -> Option<Link> {
            let i = r.cases.iter().position(|c| c.id == id)?;
            Some(Link {
                id: id.to_string(),
                anchor: case_anchors[i].clone(),
                class: r.cases[i].outcome.as_str().to_string(),
            })
        };
        let req_link = |id: &str| -> Link {
            match r.requirements.iter().position(|q| q.id == id) {
                Some(i) => Link {
                    id: id.to_string(),
                    anchor: req_anchors[i].clone(),
                    class: r.requirements[i].verdict.as_str().to_string(),
                },
                None => Link {
                    id: id.to_string(),
                    anchor: String::new(),
                    class: String::new(),
                },
            }
        };
        let requirements = r
            .requirements
            .iter()
            .zip(&req_anchors)
            .map(|(q, a)| ReqView {
                id: &q.id,
                anchor: a.clone(),
                level: q.level.as_str(),
                verdict: q.verdict.as_str(),
                title: q.title.as_deref(),
                cases: q.cases.iter().filter_map(|id| case_link(id)).collect(),
            })
            .collect();
        let cases = r
            .cases
            .iter()
            .zip(&case_anchors)
            .enumerate()
            .map(|(i, (c, a))| CaseView {
                c,
                anchor: a.clone(),
                open: !matches!(
                    c.outcome,
                    Outcome::Passed | Outcome::Skipped | Outcome::Unsupported
                ),
                requirements: c.requirements.iter().map(|id| req_link(id)).collect(),
                duration: duration(c.duration_ms),
                attempts: (c.attempts.len() > 1).then(|| attempts_text(c)),
                at_ms: c
                    .evidence
                    .failure
                    .as_ref()
                    .and_then(|f| f.at_ms)
                    .map(time_ms),
                pcap_href: c.evidence.pcap.as_deref().and_then(safe_relative_href),
                ladder: ladder(i, &c.evidence.ladder),
                logs: c
                    .evidence
                    .logs
                    .iter()
                    .map(|l| LogView {
                        instance: &l.instance,
                        count: l.lines.len(),
                        text: l
                            .lines
                            .iter()
                            .take(MAX_LOG_LINES)
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join("\n"),
                        cut: l.lines.len().saturating_sub(MAX_LOG_LINES),
                    })
                    .collect(),
            })
            .collect();
        View {
            r,
            status: s.verdict.as_str().to_uppercase(),
            exit_code: s.verdict.exit_code(),
            started: r.started.to_string(),
            duration: duration(r.duration_ms),
            iut: match &r.iut.version {
                Some(v) => format!("{} {}", r.iut.name, v),
                None => r.iut.name.clone(),
            },
            counts,
            requirements,
            cases,
        }
    }
}

fn attempts_text(c: &CaseResult) -> String {
    let list: Vec<&str> = c.attempts.iter().map(|v| v.as_str()).collect();
    let mut t = list.join(", ");
    if c.flaky
        && let Some(rate) = c.flake_rate
    {
        let _ = write!(t, " (flaky: {:.0}% did not pass)", rate * 100.0);
    }
    t
}

/// Unique, URL-fragment-safe element ids.
#[derive(Default)]
struct Anchors {
    used: HashSet<String>,
}

impl Anchors {
    fn make(&mut self, prefix: &str, id: &str) -> String {
        let clean: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = format!("{prefix}-{clean}");
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.used.insert(candidate.clone()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }
}

/// A pcap path is linked only when it is relative and has no scheme, so a
/// report cannot point the reader at a remote or `javascript:` URL.
fn safe_relative_href(path: &str) -> Option<String> {
    let p = path.trim();
    let has_scheme = p
        .split(['/', '\\'])
        .next()
        .is_some_and(|first| first.contains(':'));
    let ok = !p.is_empty()
        && !has_scheme
        && !p.starts_with('/')
        && !p.starts_with('\\')
        && !p.chars().any(char::is_control);
    ok.then(|| {
        // Percent-encode what would end or alter the URL.
        let mut out = String::with_capacity(p.len());
        for c in p.chars() {
            match c {
                ' ' | '"' | '\'' | '<' | '>' | '#' | '?' | '%' | '`' => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
                '\\' => out.push('/'),
                c => out.push(c),
            }
        }
        out
    })
}

fn ladder(case_index: usize, entries: &[LadderEntry]) -> Option<LadderView> {
    if entries.is_empty() {
        return None;
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut index_of = |addr: &str, label: Option<&str>| -> usize {
        let label = label.filter(|l| !l.is_empty());
        match endpoints.iter().position(|e| e.addr == addr) {
            Some(i) => {
                if endpoints[i].label.is_empty()
                    && let Some(l) = label
                {
                    endpoints[i].label = l.to_string();
                }
                i
            }
            None => {
                endpoints.push(Endpoint {
                    label: label.unwrap_or("").to_string(),
                    addr: addr.to_string(),
                });
                endpoints.len() - 1
            }
        }
    };
    let shown = &entries[..entries.len().min(MAX_LADDER_ROWS)];
    let mut spans = Vec::with_capacity(shown.len());
    for e in shown {
        let from = index_of(&e.from, e.from_label.as_deref());
        let to = index_of(&e.to, e.to_label.as_deref());
        spans.push((from, to));
    }
    let n = endpoints.len();
    let columns = 2 * n;
    let rows = shown
        .iter()
        .zip(spans)
        .enumerate()
        .map(|(k, (e, (from, to)))| {
            let (lo, hi) = (from.min(to), from.max(to));
            let kind = if from == to {
                "self"
            } else if from < to {
                "right"
            } else {
                "left"
            };
            // Endpoint i's lifeline is the left edge of grid column 2i+1.
            let start = 2 * lo + 1;
            let span = if from == to { 1 } else { 2 * (hi - lo) };
            let mut cells: Vec<Cell> = (0..start).map(gap).collect();
            cells.push(Cell {
                kind,
                colspan: span,
                lane: true,
                summary: e.summary.clone(),
                transport: e.transport.as_str(),
            });
            cells.extend((start + span..columns).map(gap));
            let (raw, raw_binary) = match &e.raw {
                None => (None, false),
                Some(RawMessage::Text(t)) => (Some(t.clone()), false),
                Some(RawMessage::Binary(b)) => (Some(hexdump(b)), true),
            };
            Row {
                t: time_ms(e.t_ms),
                cells,
                raw_id: format!("raw-{case_index}-{k}"),
                raw,
                raw_binary,
            }
        })
        .collect();
    Some(LadderView {
        endpoints,
        columns,
        rows,
        cut: entries.len() - shown.len(),
    })
}

fn gap(col: usize) -> Cell {
    Cell {
        kind: "gap",
        colspan: 1,
        lane: col % 2 == 1,
        summary: String::new(),
        transport: "",
    }
}

/// Offset, hex bytes and printable ASCII, 16 bytes a line.
fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_links_must_be_relative() {
        assert_eq!(
            safe_relative_href("pcaps/join a.pcap").as_deref(),
            Some("pcaps/join%20a.pcap")
        );
        assert_eq!(
            safe_relative_href("x.pcap#f").as_deref(),
            Some("x.pcap%23f")
        );
        assert_eq!(safe_relative_href("http://evil/x.pcap"), None);
        assert_eq!(safe_relative_href("javascript:alert(1)"), None);
        assert_eq!(safe_relative_href("/etc/x.pcap"), None);
        assert_eq!(safe_relative_href("C:\\x.pcap"), None);
        assert_eq!(safe_relative_href("//evil/x"), None);
        assert_eq!(safe_relative_href(""), None);
    }

    #[test]
    fn anchors_are_unique_and_clean() {
        let mut a = Anchors::default();
        assert_eq!(a.make("case", "join.a-b"), "case-join.a-b");
        assert_eq!(a.make("case", "join.a-b"), "case-join.a-b-2");
        assert_eq!(a.make("case", "x \"y\""), "case-x__y_");
    }

    #[test]
    fn ladder_columns_span_between_lifelines() {
        use crate::model::Transport;
        let e = |f: &str, t: &str| LadderEntry::new(1.0, f, t, Transport::Udp, "M");
        let l = ladder(0, &[e("a", "b"), e("c", "a"), e("b", "b")]).unwrap();
        assert_eq!(l.columns, 6);
        let widths = |r: &Row| r.cells.iter().map(|c| c.colspan).sum::<usize>();
        for r in &l.rows {
            assert_eq!(widths(r), 6);
        }
        let arrow = |r: &Row| {
            let mut col = 0;
            for c in &r.cells {
                if c.kind != "gap" {
                    return (c.kind, col, c.colspan);
                }
                col += c.colspan;
            }
            unreachable!("every row has an arrow")
        };
        assert_eq!(arrow(&l.rows[0]), ("right", 1, 2));
        assert_eq!(arrow(&l.rows[1]), ("left", 1, 4));
        assert_eq!(arrow(&l.rows[2]), ("self", 3, 1));
    }

    #[test]
    fn hexdump_lines() {
        let d = hexdump(b"AB\x00");
        assert!(d.starts_with("00000000  41 42 00 "), "{d}");
        assert!(d.trim_end().ends_with("AB."), "{d}");
    }
}
