/*!
The IUT file (TOML): how to start an implementation under test.

```toml
[iut]
name = "acme-p2psip"                 # shown in reports
version = "1.4.2"                    # optional
command = ["./target/release/acme-node", "--listen", "{ip}:{port}",
           "--bootstrap", "{bootstrap}", "--overlay", "{overlay}",
           "--stabilize-ms", "{stabilize_ms}", "--t1-ms", "{t1_ms}",
           "--data-dir", "{data_dir}"]
env = { RUST_LOG = "info" }          # optional, values are templates too
transports = ["udp", "tcp"]          # default ["udp"]
features = ["adapter"]               # optional roles it claims
ready_timeout_ms = 5000              # default 5000
stop = "sigterm"                     # sigterm (default) | sigkill
stop_grace_ms = 2000                 # default 2000: SIGKILL after this
register_command = ["./acme-ctl", "register", "{aor}", "{contact}", "--node", "{ip}:{port}"]
```

No shell is involved: `command` is the argv, each element a template.
The placeholders are those of [`Placeholder`]; `{{` and `}}` write a
literal brace. Relative program paths resolve against the harness's
working directory, as in a shell.

Everything is checked when the file is loaded: an unknown key, a wrong
type, a bad or unknown placeholder, an empty command are errors that name
the file, line and column.
*/

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::template::{Template, TemplateError};

/// A validated IUT description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IutSpec {
    pub name: String,
    pub version: Option<String>,
    pub command: Vec<Template>,
    pub env: Vec<(String, Template)>,
    pub transports: Vec<TransportName>,
    pub features: Vec<Feature>,
    pub ready_timeout: Duration,
    pub stop: StopMode,
    pub stop_grace: Duration,
    pub register_command: Option<Vec<Template>>,
    /// Where the description came from (a path, or "built-in").
    pub origin: String,
}

impl IutSpec {
    pub fn supports_tcp(&self) -> bool {
        self.transports.contains(&TransportName::Tcp)
    }

    pub fn has_feature(&self, f: Feature) -> bool {
        self.features.contains(&f)
    }

    /// The command as written, for reports.
    pub fn command_text(&self) -> Vec<String> {
        self.command
            .iter()
            .map(|t| t.source().to_string())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportName {
    Udp,
    Tcp,
}

/// Optional roles an IUT may claim (IUT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Adapter,
    Recursive,
    Stun,
    Enrollment,
    Offline,
}

impl Feature {
    pub fn from_name(s: &str) -> Option<Feature> {
        match s {
            "adapter" => Some(Feature::Adapter),
            "recursive" => Some(Feature::Recursive),
            "stun" => Some(Feature::Stun),
            "enrollment" => Some(Feature::Enrollment),
            "offline" => Some(Feature::Offline),
            _ => None,
        }
    }
}

/// How the harness stops an instance at the end of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// SIGTERM to the process group (a graceful leave is expected), then
    /// SIGKILL after the grace period.
    Sigterm,
    /// SIGKILL at once.
    Sigkill,
}

/// Why an IUT file was refused. Every variant names where.
#[derive(Debug, thiserror::Error)]
pub enum IutFileError {
    #[error("cannot read IUT file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    NoPosition { origin: String, message: String },
    #[error("{origin}:{line}:{column}: in {key}: {source}")]
    Template {
        origin: String,
        line: usize,
        column: usize,
        key: String,
        source: Box<TemplateError>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    iut: Spanned<IutRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IutRepr {
    name: Spanned<String>,
    #[serde(default)]
    version: Option<String>,
    command: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    transports: Option<Vec<TransportName>>,
    #[serde(default)]
    features: Vec<Feature>,
    #[serde(default)]
    ready_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    stop: Option<StopMode>,
    #[serde(default)]
    stop_grace_ms: Option<u64>,
    #[serde(default)]
    register_command: Option<Spanned<Vec<Spanned<String>>>>,
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..crate::text::floor_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

impl IutSpec {
    /// Reads and validates an IUT file.
    pub fn load(path: &Path) -> Result<IutSpec, IutFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| IutFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        IutSpec::parse(&text, &path.display().to_string())
    }

    /// Parses and validates the text of an IUT file; `origin` names it in
    /// errors.
    pub fn parse(text: &str, origin: &str) -> Result<IutSpec, IutFileError> {
        let file: FileRepr = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|Range { start, .. }| line_col(text, start))
                .unwrap_or((1, 1));
            IutFileError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let iut_span = file.iut.span();
        let iut = file.iut.into_inner();
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            IutFileError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        };
        let name_span = iut.name.span();
        let name = iut.name.into_inner();
        if name.trim().is_empty() {
            return Err(at(name_span, "`name` must not be empty".into()));
        }
        let templates = |key: &str,
                         items: Vec<Spanned<String>>,
                         extra: &[&str]|
         -> Result<Vec<Template>, IutFileError> {
            items
                .into_iter()
                .map(|s| {
                    let span = s.span();
                    Template::parse(s.get_ref(), extra).map_err(|source| {
                        let (line, column) = line_col(text, span.start);
                        IutFileError::Template {
                            origin: origin.to_string(),
                            line,
                            column,
                            key: key.to_string(),
                            source: Box::new(source),
                        }
                    })
                })
                .collect()
        };
        let cmd_span = iut.command.span();
        let command = templates("command", iut.command.into_inner(), &[])?;
        if command.is_empty() || command[0].source().trim().is_empty() {
            return Err(at(
                cmd_span,
                "`command` must name a program: a non-empty array whose first element is the executable".into(),
            ));
        }
        let mut env = Vec::new();
        for (k, v) in iut.env {
            let t = templates(&format!("env.{k}"), vec![v], &[])?;
            env.extend(t.into_iter().map(|t| (k.clone(), t)));
        }
        let register_command = match iut.register_command {
            None => None,
            Some(rc) => {
                let span = rc.span();
                let t = templates("register_command", rc.into_inner(), &["aor", "contact"])?;
                if t.is_empty() {
                    return Err(at(span, "`register_command` must not be empty".into()));
                }
                Some(t)
            }
        };
        let ready_timeout = match iut.ready_timeout_ms {
            None => Duration::from_millis(5000),
            Some(v) if *v.get_ref() == 0 || *v.get_ref() > 600_000 => {
                return Err(at(
                    v.span(),
                    "`ready_timeout_ms` must be in 1..=600000".into(),
                ));
            }
            Some(v) => Duration::from_millis(*v.get_ref()),
        };
        let transports = iut.transports.unwrap_or_else(|| vec![TransportName::Udp]);
        if !transports.contains(&TransportName::Udp) {
            return Err(at(
                iut_span,
                "`transports` must include \"udp\": the profile's requests and probes use UDP"
                    .into(),
            ));
        }
        Ok(IutSpec {
            name,
            version: iut.version,
            command,
            env,
            transports,
            features: iut.features,
            ready_timeout,
            stop: iut.stop.unwrap_or(StopMode::Sigterm),
            stop_grace: Duration::from_millis(iut.stop_grace_ms.unwrap_or(2000).min(60_000)),
            register_command,
            origin: origin.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[iut]
name = "acme"
version = "1.0"
command = ["acme-node", "--listen", "{ip}:{port}", "--bootstrap", "{bootstrap}"]
env = { RUST_LOG = "info", DIR = "{data_dir}" }
transports = ["udp", "tcp"]
features = ["adapter"]
ready_timeout_ms = 3000
stop = "sigkill"
register_command = ["acme-ctl", "{aor}", "{contact}"]
"#;

    #[test]
    fn loads_a_good_file() {
        let s = IutSpec::parse(GOOD, "acme.toml").unwrap();
        assert_eq!(s.name, "acme");
        assert_eq!(s.command.len(), 5);
        assert!(s.supports_tcp());
        assert_eq!(s.stop, StopMode::Sigkill);
        assert_eq!(s.ready_timeout, Duration::from_secs(3));
        assert_eq!(s.env.len(), 2);
    }

    fn err(text: &str) -> String {
        IutSpec::parse(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_names_the_line() {
        let e = err("[iut]\nname = \"a\"\ncommand = [\"a\"]\nready_timout_ms = 5\n");
        assert!(e.starts_with("x.toml:4:"), "{e}");
        assert!(e.contains("ready_timout_ms"), "{e}");
    }

    #[test]
    fn bad_placeholder_names_the_line() {
        let e = err("[iut]\nname = \"a\"\ncommand = [\n  \"a\",\n  \"{adress}\",\n]\n");
        assert!(e.starts_with("x.toml:5:"), "{e}");
        assert!(e.contains("{adress}"), "{e}");
        let e = err("[iut]\nname = \"a\"\ncommand = [\"a\", \"{ip\"]\n");
        assert!(e.starts_with("x.toml:3:"), "{e}");
        // {aor} only exists in register_command.
        let e = err("[iut]\nname = \"a\"\ncommand = [\"a\", \"{aor}\"]\n");
        assert!(e.contains("{aor}"), "{e}");
    }

    #[test]
    fn empty_command_and_missing_udp_are_refused() {
        assert!(err("[iut]\nname = \"a\"\ncommand = []\n").contains("x.toml:3:"));
        let e = err("[iut]\nname = \"a\"\ncommand = [\"a\"]\ntransports = [\"tcp\"]\n");
        assert!(e.contains("udp"), "{e}");
        let e = err("[iut]\nname = \"a\"\ncommand = [\"a\"]\ntransports = [\"sctp\"]\n");
        assert!(e.starts_with("x.toml:4:"), "{e}");
    }
}
